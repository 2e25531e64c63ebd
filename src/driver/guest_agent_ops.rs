//! Guest agent calls that act on the guest: filesystem freeze, thaw and trim, the guest's
//! own view of its vCPUs, and authorized SSH keys (libvirt: qemuDomainFSFreeze,
//! qemuDomainFSThaw, qemuDomainFSTrim, qemuDomainGetGuestVcpus, qemuDomainSetGuestVcpus,
//! qemuDomainAuthorizedSSHKeysGet/Set and the qemuAgent* calls under them).

use serde_json::{Value, json};

use super::DriverError;
use super::domain::Domain;
use super::guest_agent::DEFAULT_WAIT;
use crate::capabilities::cpuset::CpuSet;

/// `VIR_DOMAIN_AUTHORIZED_SSH_KEYS_SET_APPEND`: add to the file rather than replace it.
pub const SSH_KEYS_APPEND: u32 = 1;
/// `VIR_DOMAIN_AUTHORIZED_SSH_KEYS_SET_REMOVE`: remove the keys given.
pub const SSH_KEYS_REMOVE: u32 = 2;

/// The guest's vCPUs as its agent sees them (`virDomainGetGuestVcpus`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GuestVcpus {
    pub vcpus: CpuSet,
    pub online: CpuSet,
    pub offlinable: CpuSet,
}

impl GuestVcpus {
    /// libvirt's typed parameters, in its order.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("vcpus", self.vcpus.to_string()),
            ("online", self.online.to_string()),
            ("offlinable", self.offlinable.to_string()),
        ]
    }
}

/// One vCPU in `guest-get-vcpus`' answer.
struct AgentVcpu {
    id: u32,
    online: bool,
    can_offline: bool,
}

fn agent_vcpus(v: &Value) -> Result<Vec<AgentVcpu>, DriverError> {
    let list = v.as_array().ok_or_else(|| {
        DriverError::Internal("guest-get-vcpus reply was missing return data".into())
    })?;
    list.iter()
        .map(|c| {
            Some(AgentVcpu {
                id: c["logical-id"].as_u64()? as u32,
                online: c["online"].as_bool()?,
                can_offline: c["can-offline"].as_bool().unwrap_or(false),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            DriverError::Internal("agent didn't provide 'logical-id' or 'online'".into())
        })
}

fn count(v: &Value, what: &str) -> Result<u32, DriverError> {
    v.as_u64()
        .map(|n| n as u32)
        .ok_or_else(|| DriverError::Internal(format!("malformed return value of {what}")))
}

impl Domain<'_> {
    /// `virDomainFSFreeze`: freeze the guest's filesystems (all, or those mounted at
    /// `mountpoints`); how many were frozen.
    pub fn fs_freeze(&self, mountpoints: &[&str], flags: u32) -> Result<u32, DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainFSFreeze")?;
        let v = if mountpoints.is_empty() {
            self.agent("guest-fsfreeze-freeze", None, DEFAULT_WAIT)?
        } else {
            self.agent(
                "guest-fsfreeze-freeze-list",
                Some(json!({ "mountpoints": mountpoints })),
                DEFAULT_WAIT,
            )?
        };
        count(&v, "guest-fsfreeze-freeze")
    }

    /// `virDomainFSThaw`: thaw every frozen filesystem; how many were thawed.
    pub fn fs_thaw(&self, mountpoints: &[&str], flags: u32) -> Result<u32, DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainFSThaw")?;
        if !mountpoints.is_empty() {
            return Err(DriverError::ArgumentUnsupported(
                "specifying mountpoints is not supported".into(),
            ));
        }
        let v = self.agent("guest-fsfreeze-thaw", None, DEFAULT_WAIT)?;
        count(&v, "guest-fsfreeze-thaw")
    }

    /// `virDomainFSTrim`: discard the unused blocks of every filesystem, in pieces of at
    /// least `minimum` bytes.
    pub fn fs_trim(
        &self,
        mountpoint: Option<&str>,
        minimum: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainFSTrim")?;
        if mountpoint.is_some() {
            return Err(DriverError::ArgumentUnsupported(
                "Specifying mount point is not supported for now".into(),
            ));
        }
        self.agent(
            "guest-fstrim",
            Some(json!({ "minimum": minimum })),
            DEFAULT_WAIT,
        )
        .map(|_| ())
    }

    /// `virDomainGetGuestVcpus`.
    pub fn guest_vcpus(&self) -> Result<GuestVcpus, DriverError> {
        let list = agent_vcpus(&self.agent("guest-get-vcpus", None, DEFAULT_WAIT)?)?;
        let mut out = GuestVcpus {
            vcpus: CpuSet::new(),
            online: CpuSet::new(),
            offlinable: CpuSet::new(),
        };
        for c in &list {
            out.vcpus.insert(c.id);
            if c.online {
                out.online.insert(c.id);
            }
            if c.can_offline {
                out.offlinable.insert(c.id);
            }
        }
        Ok(out)
    }

    /// `virDomainSetGuestVcpus`: bring the guest's vCPUs `cpumap` (a cpuset text) online
    /// or offline.
    pub fn set_guest_vcpus(
        &self,
        cpumap: &str,
        online: bool,
        flags: u32,
    ) -> Result<(), DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainSetGuestVcpus")?;
        let want = CpuSet::parse(cpumap)
            .map_err(|_| DriverError::InvalidArg(format!("Failed to parse bitmap '{cpumap}'")))?;
        let list = agent_vcpus(&self.agent("guest-get-vcpus", None, DEFAULT_WAIT)?)?;
        let mut change = Vec::new();
        for id in want.iter() {
            let Some(c) = list.iter().find(|c| c.id == id) else {
                let mut missing = CpuSet::new();
                for m in want.iter().filter(|m| !list.iter().any(|c| c.id == *m)) {
                    missing.insert(m);
                }
                return Err(DriverError::InvalidArg(format!(
                    "guest is missing vCPUs '{missing}'"
                )));
            };
            if !online && !c.can_offline {
                return Err(DriverError::InvalidArg(format!(
                    "vCPU '{id}' is not offlinable"
                )));
            }
            if c.online != online {
                change.push(json!({ "logical-id": id, "online": online }));
            }
        }
        if change.is_empty() {
            return Ok(());
        }
        self.agent(
            "guest-set-vcpus",
            Some(json!({ "vcpus": change })),
            DEFAULT_WAIT,
        )
        .map(|_| ())
    }

    /// `virDomainAuthorizedSSHKeysGet`: `user`'s authorized keys in the guest.
    pub fn authorized_ssh_keys(&self, user: &str, flags: u32) -> Result<Vec<String>, DriverError> {
        super::hotplug::check_flags(flags, 0, "qemuDomainAuthorizedSSHKeysGet")?;
        let v = self.agent(
            "guest-ssh-get-authorized-keys",
            Some(json!({ "username": user })),
            DEFAULT_WAIT,
        )?;
        let keys = v["keys"]
            .as_array()
            .ok_or_else(|| DriverError::Internal("malformed return value".into()))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect())
    }

    /// `virDomainAuthorizedSSHKeysSet`: replace `user`'s keys with `keys`, or with
    /// [`SSH_KEYS_APPEND`] add them, or with [`SSH_KEYS_REMOVE`] remove them.
    pub fn set_authorized_ssh_keys(
        &self,
        user: &str,
        keys: &[&str],
        flags: u32,
    ) -> Result<(), DriverError> {
        super::hotplug::check_flags(
            flags,
            SSH_KEYS_APPEND | SSH_KEYS_REMOVE,
            "qemuDomainAuthorizedSSHKeysSet",
        )?;
        let (cmd, args) = if flags & SSH_KEYS_REMOVE != 0 {
            (
                "guest-ssh-remove-authorized-keys",
                json!({ "username": user, "keys": keys }),
            )
        } else {
            (
                "guest-ssh-add-authorized-keys",
                json!({ "username": user, "keys": keys, "reset": flags & SSH_KEYS_APPEND == 0 }),
            )
        };
        self.agent(cmd, Some(args), DEFAULT_WAIT).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_vcpu_lists() {
        let v = json!([
            {"logical-id": 0, "online": true, "can-offline": false},
            {"logical-id": 1, "online": false, "can-offline": true}
        ]);
        let l = agent_vcpus(&v).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l[1].can_offline && !l[1].online);
        assert!(agent_vcpus(&json!([{"online": true}])).is_err());
        assert!(agent_vcpus(&json!({})).is_err());
        let g = GuestVcpus {
            vcpus: CpuSet::parse("0-1").unwrap(),
            online: CpuSet::parse("0").unwrap(),
            offlinable: CpuSet::parse("1").unwrap(),
        };
        assert_eq!(
            g.params(),
            vec![
                ("vcpus", "0-1".to_string()),
                ("online", "0".to_string()),
                ("offlinable", "1".to_string())
            ]
        );
        assert!(count(&json!("x"), "t").is_err());
    }
}
