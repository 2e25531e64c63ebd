//! The host's interfaces as libvirt's udev interface backend sees them (libvirt:
//! src/interface/interface_backend_udev.c): every `net` device but bridge ports and the tap
//! devices of guests, read from `SYS/class/net` (and a VLAN's parent from
//! `PROC/net/vlan`). The roots are parameters so that tests can use a fake tree.

use std::path::{Path, PathBuf};

use super::{BondMonitor, IfaceDef, IfaceKind, LINK_STATES, Link};

/// Why a lookup failed, with libvirt's error class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysfsError {
    /// VIR_ERR_NO_INTERFACE.
    NotFound(String),
    /// VIR_ERR_MULTIPLE_INTERFACES.
    Multiple(String),
    /// VIR_ERR_INTERNAL_ERROR.
    Internal(String),
}

/// One interface as listed: libvirt's virInterfacePtr holds a name and a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceEntry {
    pub name: String,
    pub mac: String,
    /// `operstate` is `up` (libvirt: udevInterfaceIsActive).
    pub active: bool,
}

/// Where the host's network devices are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNet {
    /// `SYS/class/net`.
    class_net: PathBuf,
    /// `PROC/net/vlan`.
    proc_vlan: PathBuf,
}

impl Default for HostNet {
    fn default() -> Self {
        HostNet::under(Path::new("/sys"), Path::new("/proc"))
    }
}

/// libvirt's VIR_NET_GENERATED_VNET_PREFIX: guests' taps, left out of a bridge's ports.
const VNET_PREFIX: &str = "vnet";

impl HostNet {
    /// The devices under `sys` (normally `/sys`) and `proc` (normally `/proc`).
    pub fn under(sys: &Path, proc: &Path) -> HostNet {
        HostNet {
            class_net: sys.join("class/net"),
            proc_vlan: proc.join("net/vlan"),
        }
    }

    /// A device's directory, when `name` names one. Names never reach a path unchecked.
    fn dev(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return None;
        }
        let p = self.class_net.join(name);
        p.exists().then_some(p)
    }

    /// A sysfs attribute, without its trailing newline, as udev gives it.
    fn attr(dev: &Path, attr: &str) -> Option<String> {
        std::fs::read_to_string(dev.join(attr))
            .ok()
            .map(|s| s.trim_end_matches('\n').to_string())
    }

    fn entry(&self, name: &str, dev: &Path) -> IfaceEntry {
        IfaceEntry {
            name: name.to_string(),
            mac: Self::attr(dev, "address").unwrap_or_default(),
            active: Self::attr(dev, "operstate").as_deref() == Some("up"),
        }
    }

    /// Every interface libvirt lists: not a bridge port (`brport`), not a tap device
    /// (`tun_flags`); sorted by name as virsh sorts them.
    pub fn list(&self) -> Result<Vec<IfaceEntry>, SysfsError> {
        let rd = std::fs::read_dir(&self.class_net).map_err(|_| {
            SysfsError::Internal("failed to get list of all interfaces on host".into())
        })?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let dev = e.path();
            if dev.join("brport").exists() || dev.join("tun_flags").exists() {
                continue;
            }
            out.push(self.entry(&name, &dev));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// libvirt: udevInterfaceLookupByName.
    pub fn lookup_by_name(&self, name: &str) -> Result<IfaceEntry, SysfsError> {
        match self.dev(name) {
            Some(dev) => Ok(self.entry(name, &dev)),
            None => Err(not_found(name)),
        }
    }

    /// libvirt: udevInterfaceLookupByMACString (udev compares the text as given).
    pub fn lookup_by_mac(&self, mac: &str) -> Result<IfaceEntry, SysfsError> {
        let mut hits = self.list()?.into_iter().filter(|e| e.mac == mac);
        match (hits.next(), hits.next()) {
            (None, _) => Err(SysfsError::NotFound(format!(
                "couldn't find interface with MAC address '{mac}'"
            ))),
            (Some(e), None) => Ok(e),
            (Some(_), Some(_)) => Err(SysfsError::Multiple(format!(
                "the MAC address '{mac}' matches multiple interfaces"
            ))),
        }
    }

    /// The interface's definition as libvirt's udevGetIfaceDef builds it.
    pub fn def(&self, name: &str) -> Result<IfaceDef, SysfsError> {
        let dev = self.dev(name).ok_or_else(|| not_found(name))?;
        let mac = Self::attr(&dev, "address");
        let link = link_info(&dev)?;
        let mtu_str = Self::attr(&dev, "mtu");
        let mtu = mtu_str
            .as_deref()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| {
                SysfsError::Internal(format!(
                    "Could not parse MTU value '{}'",
                    mtu_str.as_deref().unwrap_or("(null)")
                ))
            })?;
        let devtype = Self::attr(&dev, "uevent").and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_string))
        });
        let mut kind = match devtype.as_deref() {
            Some("vlan") => "vlan",
            Some("bridge") => "bridge",
            Some("bond") => "bond",
            _ => "ethernet",
        };
        // libvirt's fallbacks for kernels without DEVTYPE.
        if kind == "ethernet" {
            if name.contains('.') {
                kind = "vlan";
            }
            if Self::attr(&dev, "bonding/mode").is_some() {
                kind = "bond";
            }
        }
        let kind = match kind {
            "vlan" => self.vlan(name)?,
            "bridge" => self.bridge(name, &dev)?,
            "bond" => self.bond(name, &dev)?,
            _ => IfaceKind::Ethernet { mac },
        };
        Ok(IfaceDef {
            name: name.to_string(),
            start: None,
            mtu,
            protocols: Vec::new(),
            link,
            kind,
        })
    }

    fn required(dev: &Path, attr: &str, name: &str) -> Result<String, SysfsError> {
        Self::attr(dev, attr).ok_or_else(|| {
            SysfsError::Internal(format!("Could not retrieve '{attr}' for '{name}'"))
        })
    }

    fn required_int(dev: &Path, attr: &str, name: &str) -> Result<i32, SysfsError> {
        let v = Self::required(dev, attr, name)?;
        v.parse().map_err(|_| {
            SysfsError::Internal(format!("Could not parse '{attr}' '{v}' for '{name}'"))
        })
    }

    /// The number after the space of `bonding/mode`-like attributes ("balance-rr 0").
    fn word_number(dev: &Path, attr: &str, name: &str) -> Result<i32, SysfsError> {
        let v = Self::required(dev, attr, name)?;
        let Some((_, n)) = v.split_once(' ') else {
            return Err(SysfsError::Internal(format!(
                "Invalid format for '{attr}' for '{name}'"
            )));
        };
        if n.is_empty() {
            return Err(SysfsError::Internal(format!(
                "Unable to find correct value in '{attr}' for '{name}'"
            )));
        }
        n.parse().map_err(|_| {
            SysfsError::Internal(format!("Could not parse '{attr}' ' {n}' for '{name}'"))
        })
    }

    /// libvirt: udevGetIfaceDefBridge. Guests' `vnetN` ports are left out.
    fn bridge(&self, name: &str, dev: &Path) -> Result<IfaceKind, SysfsError> {
        let delay = Self::required(dev, "bridge/forward_delay", name)?;
        let stp_s = Self::required(dev, "bridge/stp_state", name)?;
        let stp: i32 = stp_s.parse().map_err(|_| {
            SysfsError::Internal(format!(
                "Could not parse 'bridge/stp_state' '{stp_s}' for '{name}'"
            ))
        })?;
        let stp = match stp {
            -1 => None,
            0 => Some(false),
            1 => Some(true),
            n => {
                return Err(SysfsError::Internal(format!(
                    "Invalid STP state value {n} received for '{name}'. Must be -1, 0, or 1."
                )));
            }
        };
        let mut members = names_in(&dev.join("brif")).map_err(|e| {
            SysfsError::Internal(format!("Could not get members of bridge '{name}': {e}"))
        })?;
        members.retain(|m| {
            !(m.len() >= 5 && m.starts_with(VNET_PREFIX) && m.as_bytes()[4].is_ascii_digit())
        });
        let ports = members
            .iter()
            .map(|m| {
                self.def(m).map_err(|_| {
                    SysfsError::Internal(format!(
                        "Could not get interface information for '{m}', which is a member of bridge '{name}'"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(IfaceKind::Bridge {
            stp,
            delay: Some(delay),
            ports,
        })
    }

    /// libvirt: udevGetIfaceDefBond.
    fn bond(&self, name: &str, dev: &Path) -> Result<IfaceKind, SysfsError> {
        let downdelay = Self::required_int(dev, "bonding/downdelay", name)?;
        let updelay = Self::required_int(dev, "bonding/updelay", name)?;
        let freq = Self::required_int(dev, "bonding/miimon", name)?;
        let interval = Self::required_int(dev, "bonding/arp_interval", name)?;
        let mode = Self::word_number(dev, "bonding/mode", name)?;
        let validate = Self::word_number(dev, "bonding/arp_validate", name)?;
        let carrier = Self::required_int(dev, "bonding/use_carrier", name)?;
        let target = Self::required(dev, "bonding/arp_ip_target", name)?;
        let monitor = if interval > 0 {
            BondMonitor::Arp {
                interval,
                target,
                validate: ["active", "backup", "all"]
                    .get((validate - 1) as usize)
                    .map(|s| s.to_string()),
            }
        } else if freq > 0 {
            BondMonitor::Mii {
                freq,
                downdelay,
                updelay,
                carrier: Some(if carrier == 0 { "ioctl" } else { "netif" }.to_string()),
            }
        } else {
            BondMonitor::None
        };
        let slaves = names_in(dev)
            .map_err(|e| {
                SysfsError::Internal(format!("Could not get slaves of bond '{name}': {e}"))
            })?
            .into_iter()
            .filter(|n| n.starts_with("slave_"))
            .map(|entry| {
                let slave = &entry["slave_".len()..];
                if slave.is_empty() {
                    return Err(SysfsError::Internal(format!(
                        "Invalid enslaved interface name '{entry}' seen for bond '{name}'"
                    )));
                }
                self.def(slave).map_err(|_| {
                    SysfsError::Internal(format!(
                        "Could not get interface information for '{entry}', which is a enslaved in bond '{name}'"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(IfaceKind::Bond {
            mode: super::BOND_MODES.get(mode as usize).map(|s| s.to_string()),
            monitor,
            slaves,
        })
    }

    /// libvirt: udevGetIfaceDefVlan, from `/proc/net/vlan/NAME`.
    fn vlan(&self, name: &str) -> Result<IfaceKind, SysfsError> {
        let path = self.proc_vlan.join(name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SysfsError::Internal(format!(
                "Failed to open file '{}': {}",
                path.display(),
                crate::driver::config::strerror(&e)
            ))
        })?;
        let no_vid = || {
            SysfsError::Internal(format!(
                "failed to find the VID for the VLAN device '{name}'"
            ))
        };
        let no_dev = || {
            SysfsError::Internal(format!(
                "failed to find the real device for the VLAN device '{name}'"
            ))
        };
        let at = text.find("VID: ").ok_or_else(no_vid)? + "VID: ".len();
        let rest = &text[at..];
        let len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || !rest[len..].starts_with(|c: char| c.is_ascii_whitespace()) {
            return Err(no_vid());
        }
        let tag = rest[..len].to_string();
        let after = &rest[len..];
        let d = after.find("\nDevice: ").ok_or_else(no_dev)? + "\nDevice: ".len();
        let device = after[d..].lines().next().unwrap_or_default();
        if device.is_empty() {
            return Err(no_dev());
        }
        Ok(IfaceKind::Vlan {
            tag,
            device: Some(device.to_string()),
        })
    }
}

fn not_found(name: &str) -> SysfsError {
    SysfsError::NotFound(format!("couldn't find interface named '{name}'"))
}

/// Sorted entry names of a directory (scandir with alphasort).
fn names_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    Ok(v)
}

/// libvirt: virNetDevGetLinkInfo. The speed only of a link that is up: drivers report
/// nonsense for others.
fn link_info(dev: &Path) -> Result<Link, SysfsError> {
    let Ok(state) = std::fs::read_to_string(dev.join("operstate")) else {
        return Err(SysfsError::Internal(format!(
            "unable to read: {}",
            dev.join("operstate").display()
        )));
    };
    let Some(state) = state.strip_suffix('\n') else {
        return Err(SysfsError::Internal(format!("Unable to parse: {state}")));
    };
    if !LINK_STATES.contains(&state) {
        return Err(SysfsError::Internal(format!("Unable to parse: {state}")));
    }
    let mut link = Link {
        speed: 0,
        state: Some(state.to_string()),
    };
    if state == "up" {
        // Devices without a speed (virtual ones) fail the read: no speed then.
        if let Ok(s) = std::fs::read_to_string(dev.join("speed")) {
            match s.strip_suffix('\n').and_then(str_to_ui) {
                Some(n) => link.speed = n,
                None => return Err(SysfsError::Internal(format!("Unable to parse: {s}"))),
            }
        }
    }
    Ok(link)
}

/// libvirt's virStrToLong_ui: a negative number wraps ("-1" is UINT_MAX, what drivers
/// without a known speed report).
fn str_to_ui(s: &str) -> Option<u32> {
    match s.strip_prefix('-') {
        Some(n) => {
            let v: u64 = n.parse().ok()?;
            (v <= u64::from(u32::MAX)).then(|| (v as u32).wrapping_neg())
        }
        None => s.parse().ok(),
    }
}
