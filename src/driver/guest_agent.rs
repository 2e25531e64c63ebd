//! What a running guest's QEMU guest agent answers, through the guest's monitor (which owns
//! the agent's channel and knows whether an agent listens): arbitrary commands and libvirt's
//! typed calls on top of them. Named as the `virt` crate's (`qemu_agent_command`, ...).

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::DriverError;
use super::domain::{Domain, guest_err};

/// libvirt's `VIR_DOMAIN_QEMU_AGENT_COMMAND_*` timeouts (seconds, or these).
pub const AGENT_COMMAND_BLOCK: i32 = -2;
pub const AGENT_COMMAND_DEFAULT: i32 = -1;
pub const AGENT_COMMAND_NOWAIT: i32 = 0;

/// libvirt's `QEMU_AGENT_WAIT_TIME`: the default wait for an agent's reply.
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// What "blocking" waits for at most: long enough for anything an agent does in a test or
/// a script, short of forever (a dead agent must not hang `vsh`).
const BLOCK_WAIT: Duration = Duration::from_secs(24 * 3600);

/// One mounted filesystem as the agent reports it (`virsh domfsinfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FsInfo {
    pub mountpoint: String,
    pub name: String,
    pub fstype: String,
    /// The guest's disk targets behind it (`vda`, ...), as far as the agent says.
    pub dev_aliases: Vec<String>,
}

impl Domain<'_> {
    /// Run `command` (`{"execute": ..., "arguments": ...}`) in the guest agent; the agent's
    /// whole reply (`{"return": ...}`) as JSON text. `timeout` is in seconds, or one of the
    /// `AGENT_COMMAND_*` values.
    // libvirt: qemuDomainQemuAgentCommand, qemuAgentArbitraryCommand
    pub fn qemu_agent_command(
        &self,
        command: &str,
        timeout: i32,
        _flags: u32,
    ) -> Result<String, DriverError> {
        let wait = match timeout {
            AGENT_COMMAND_BLOCK => BLOCK_WAIT,
            AGENT_COMMAND_DEFAULT => DEFAULT_WAIT,
            // A reply is still read: the monitor's channel carries one command at a time.
            AGENT_COMMAND_NOWAIT => DEFAULT_WAIT,
            t if t > 0 => Duration::from_secs(t as u64),
            t => {
                return Err(DriverError::InvalidArg(format!(
                    "timeout {t} is out of range"
                )));
            }
        };
        let parsed: Value = serde_json::from_str(command)
            .map_err(|e| DriverError::Internal(format!("cannot parse json {command}: {e}")))?;
        let Some(execute) = parsed.get("execute").and_then(Value::as_str) else {
            return Err(DriverError::Internal(format!(
                "unable to execute QEMU agent command: missing 'execute' in {command}"
            )));
        };
        let value = self.agent_exact(execute, parsed.get("arguments").cloned(), wait)?;
        Ok(json!({ "return": value }).to_string())
    }

    /// The guest's clock: seconds and nanoseconds since the epoch (`virsh domtime`).
    // libvirt: qemuAgentGetTime
    pub fn time(&self) -> Result<(i64, u32), DriverError> {
        let v = self.agent("guest-get-time", None, DEFAULT_WAIT)?;
        let ns = v
            .as_i64()
            .ok_or_else(|| DriverError::Internal("malformed return value".into()))?;
        Ok((
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000) as u32,
        ))
    }

    /// Set the guest's clock to `secs`.`nsecs`, or with `sync` from its RTC.
    // libvirt: qemuAgentSetTime
    pub fn set_time(&self, secs: i64, nsecs: u32, sync: bool) -> Result<(), DriverError> {
        let args = if sync {
            None
        } else {
            let ns = secs
                .checked_mul(1_000_000_000)
                .and_then(|s| s.checked_add(i64::from(nsecs)))
                .ok_or_else(|| {
                    DriverError::InvalidArg(format!("Time '{secs}' is too big for guest agent"))
                })?;
            Some(json!({ "time": ns }))
        };
        self.agent("guest-set-time", args, DEFAULT_WAIT).map(|_| ())
    }

    /// The guest's host name, as its agent tells (`virsh domhostname`).
    // libvirt: qemuAgentGetHostname
    pub fn hostname(&self) -> Result<String, DriverError> {
        let v = self.agent("guest-get-host-name", None, DEFAULT_WAIT)?;
        v["host-name"].as_str().map(str::to_string).ok_or_else(|| {
            DriverError::Internal(
                "malformed return value: 'host-name' missing from guest agent reply".into(),
            )
        })
    }

    /// The guest's mounted filesystems (`virsh domfsinfo`).
    // libvirt: qemuAgentGetFSInfo
    pub fn fs_info(&self) -> Result<Vec<FsInfo>, DriverError> {
        let v = self.agent("guest-get-fsinfo", None, DEFAULT_WAIT)?;
        let Some(list) = v.as_array() else {
            return Err(DriverError::Internal(
                "guest-get-fsinfo reply was missing return data".into(),
            ));
        };
        let s = |x: &Value, k: &str| x[k].as_str().unwrap_or_default().to_string();
        Ok(list
            .iter()
            .map(|fs| FsInfo {
                mountpoint: s(fs, "mountpoint"),
                name: s(fs, "name"),
                fstype: s(fs, "type"),
                dev_aliases: fs["disk"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .filter_map(|x| x["dev"].as_str())
                            .map(|p| p.trim_start_matches("/dev/").to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Set `user`'s password in the guest (`virsh set-user-password`); `encrypted` when
    /// `password` is already crypt(3)-hashed.
    // libvirt: qemuAgentSetUserPassword
    pub fn set_user_password(
        &self,
        user: &str,
        password: &str,
        encrypted: bool,
    ) -> Result<(), DriverError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(password);
        let args = json!({ "username": user, "password": b64, "crypted": encrypted });
        self.agent("guest-set-user-password", Some(args), DEFAULT_WAIT)
            .map(|_| ())
    }

    /// Whether the guest's agent is connected now: its channel is open and it answers a ping.
    pub fn agent_connected(&self) -> Result<bool, DriverError> {
        match self.agent("guest-ping", None, Duration::from_secs(2)) {
            Ok(_) => Ok(true),
            // Not listening yet, or the guest is paused (libvirt's "domain is not running").
            Err(DriverError::AgentUnresponsive(_)) => Ok(false),
            Err(DriverError::OperationInvalid(_)) if self.is_active()? => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn agent(
        &self,
        command: &str,
        args: Option<Value>,
        wait: Duration,
    ) -> Result<Value, DriverError> {
        // The typed calls wait as `guest-agent-timeout` says (libvirt: agent->timeout).
        let wait = if wait == DEFAULT_WAIT {
            self.agent_wait()
        } else {
            wait
        };
        self.agent_exact(command, args, wait)
    }

    /// Run `command` in the guest agent, waiting `wait` whatever the domain's agent timeout.
    fn agent_exact(
        &self,
        command: &str,
        args: Option<Value>,
        wait: Duration,
    ) -> Result<Value, DriverError> {
        let (mut guest, _) = self.guest()?;
        guest.agent_command(command, args, wait).map_err(guest_err)
    }
}

/// What `virsh guestinfo` may ask for (libvirt's `VIR_DOMAIN_GUEST_INFO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestInfoTypes {
    pub users: bool,
    pub os: bool,
    pub timezone: bool,
    pub hostname: bool,
}

impl GuestInfoTypes {
    /// Every kind this driver reports, as `guestinfo` without options asks.
    pub const ALL: GuestInfoTypes = GuestInfoTypes {
        users: true,
        os: true,
        timezone: true,
        hostname: true,
    };
}

impl Domain<'_> {
    /// The guest's own account of itself as libvirt's typed parameters, in libvirt's order
    /// (`virsh guestinfo`). A kind the agent does not support is left out, as libvirt does
    /// when it asks for all of them; asked for alone, its error is reported.
    // libvirt: qemuDomainGetGuestInfo, qemuAgentGetUsers/GetOSInfo/GetTimezone/GetHostname
    pub fn guest_info(&self, want: GuestInfoTypes) -> Result<Vec<(String, String)>, DriverError> {
        let all = want == GuestInfoTypes::ALL;
        let mut out = Vec::new();
        let ask = |cmd: &str| -> Result<Option<Value>, DriverError> {
            match self.agent(cmd, None, DEFAULT_WAIT) {
                Ok(v) => Ok(Some(v)),
                // "The command X has not been found" and kin: skipped when all are asked.
                Err(DriverError::Internal(_)) if all => Ok(None),
                Err(e) => Err(e),
            }
        };
        if want.users
            && let Some(v) = ask("guest-get-users")?
        {
            let users = v.as_array().cloned().unwrap_or_default();
            out.push(("user.count".to_string(), users.len().to_string()));
            for (i, u) in users.iter().enumerate() {
                if let Some(n) = u["user"].as_str() {
                    out.push((format!("user.{i}.name"), n.to_string()));
                }
                if let Some(d) = u["domain"].as_str() {
                    out.push((format!("user.{i}.domain"), d.to_string()));
                }
                if let Some(t) = u["login-time"].as_f64() {
                    out.push((
                        format!("user.{i}.login-time"),
                        ((t * 1000.0) as u64).to_string(),
                    ));
                }
            }
        }
        if want.os
            && let Some(v) = ask("guest-get-osinfo")?
        {
            for key in [
                "id",
                "name",
                "pretty-name",
                "version",
                "version-id",
                "machine",
                "variant",
                "variant-id",
                "kernel-release",
                "kernel-version",
            ] {
                if let Some(s) = v[key].as_str() {
                    out.push((format!("os.{key}"), s.to_string()));
                }
            }
        }
        if want.timezone
            && let Some(v) = ask("guest-get-timezone")?
        {
            if let Some(z) = v["zone"].as_str() {
                out.push(("timezone.name".into(), z.to_string()));
            }
            if let Some(o) = v["offset"].as_i64() {
                out.push(("timezone.offset".into(), o.to_string()));
            }
        }
        if want.hostname
            && let Some(v) = ask("guest-get-host-name")?
            && let Some(h) = v["host-name"].as_str()
        {
            out.push(("hostname".into(), h.to_string()));
        }
        Ok(out)
    }
}
