//! passt per `<interface type='user'><backend type='passt'/>` (libvirt: qemu_passt.c).
//!
//! passt listens on a UNIX socket (see `xml2argv::helper_sockets`), QEMU connects to it with
//! a `stream` netdev, and passt forwards the host ports of the interface's `<portForward>`s to
//! the guest. `--one-off` ends it when QEMU hangs up.

use std::path::PathBuf;

use super::{HelperKind, HelperSpec, Where, find_binary, private_dir};
use crate::domain::DomainDef;
use crate::domain::devices::Interface;
use crate::domain::xml::XmlNode;
use crate::driver::DriverError;

/// One `<range start= end= to= exclude=/>` of a port forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: Option<u16>,
    pub to: Option<u16>,
    pub exclude: bool,
}

/// `<portForward proto= address= dev=>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub udp: bool,
    pub address: Option<String>,
    pub dev: Option<String>,
    pub ranges: Vec<PortRange>,
}

fn port(n: &XmlNode, attr: &str) -> Result<Option<u16>, DriverError> {
    n.attr(attr)
        .map(|v| {
            v.parse::<u16>().map_err(|_| {
                DriverError::InvalidArg(format!("Invalid {attr} port '{v}' in portForward"))
            })
        })
        .transpose()
}

impl PortForward {
    /// The interface's `<portForward>`s (kept by the parser as unknown children).
    pub fn of(n: &Interface) -> Result<Vec<PortForward>, DriverError> {
        n.extra
            .children
            .iter()
            .filter(|c| c.name == "portForward")
            .map(|pf| {
                let ranges = pf
                    .children
                    .iter()
                    .filter(|c| c.name == "range")
                    .map(|r| {
                        Ok(PortRange {
                            start: port(r, "start")?.ok_or_else(|| {
                                DriverError::InvalidArg(
                                    "missing required start attribute in portForward range".into(),
                                )
                            })?,
                            end: port(r, "end")?,
                            to: port(r, "to")?,
                            exclude: r.attr("exclude") == Some("yes"),
                        })
                    })
                    .collect::<Result<Vec<_>, DriverError>>()?;
                Ok(PortForward {
                    udp: pf.attr("proto") == Some("udp"),
                    address: pf.attr("address").map(String::from),
                    dev: pf.attr("dev").map(String::from),
                    ranges,
                })
            })
            .collect()
    }

    /// passt's port spec: `[ADDR][%DEV]/` then `all` or ranges, `~` for an exclusion,
    /// `:TO[-TOEND]` for a remapped one (libvirt: qemuPasstBuildCommand).
    pub fn spec(&self) -> String {
        let mut s = String::new();
        if let Some(a) = &self.address {
            s.push_str(a);
        }
        if let Some(d) = &self.dev {
            s.push('%');
            s.push_str(d);
        }
        if !s.is_empty() {
            s.push('/');
        }
        if self.ranges.is_empty() {
            s.push_str("all");
            return s;
        }
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|r| {
                let mut p = String::new();
                if r.exclude {
                    p.push('~');
                }
                p.push_str(&r.start.to_string());
                if let Some(e) = r.end {
                    p.push_str(&format!("-{e}"));
                }
                if let Some(to) = r.to {
                    p.push_str(&format!(":{to}"));
                    if let Some(e) = r.end {
                        let last = u32::from(e) + u32::from(to) - u32::from(r.start);
                        p.push_str(&format!("-{last}"));
                    }
                }
                p
            })
            .collect();
        s.push_str(&parts.join(","));
        s
    }
}

fn is_passt(n: &Interface) -> bool {
    n.itype == "user" && n.backend_type.as_deref() == Some("passt")
}

/// One passt per passt interface of `def`.
pub(super) fn plan(def: &DomainDef, at: &Where) -> Result<Vec<HelperSpec>, DriverError> {
    let nets: Vec<&Interface> = def
        .devices
        .interfaces
        .iter()
        .filter(|n| is_passt(n))
        .collect();
    if nets.is_empty() {
        return Ok(Vec::new());
    }
    // libvirt: virCommandRunAsync's report for a program not on PATH.
    let bin = find_binary("passt").ok_or_else(|| DriverError::System {
        msg: "Cannot find 'passt' in path".into(),
        err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
    })?;
    let run = at.run.display().to_string();
    private_dir(&PathBuf::from(crate::xml2argv::helper_sockets::passt_dir(
        &run,
    )))?;
    let mut out = Vec::new();
    for n in nets {
        let alias = n.info.alias.clone().unwrap_or_else(|| "net0".into());
        let socket = crate::xml2argv::helper_sockets::passt_socket(&run, &at.short_name, &alias);
        let pid = format!(
            "{}/{}-{alias}-passt.pid",
            crate::xml2argv::helper_sockets::passt_dir(&run),
            at.short_name
        );
        // libvirt: qemuPasstBuildCommand. passt stays in the foreground as the monitor's
        // child (libvirt lets it daemonize), and runs as we do: started by root it would
        // otherwise switch to nobody before it binds its socket in our private dir.
        let mut argv = vec![
            bin.display().to_string(),
            "--one-off".into(),
            "--socket".into(),
            socket.clone(),
            "--pid".into(),
            pid.clone(),
            "--foreground".into(),
            "--runas".into(),
            format!("{}:{}", nix::unistd::geteuid(), nix::unistd::getegid()),
        ];
        if let Some(m) = &n.mtu {
            argv.extend(["--mtu".into(), m.clone()]);
        }
        if let Some(d) = n.source.as_ref().and_then(|s| s.dev.as_ref()) {
            argv.extend(["--interface".into(), d.clone()]);
        }
        if let Some(f) = &n.backend_logfile {
            argv.extend(["--log-file".into(), f.clone()]);
        }
        for ip in &n.ips {
            argv.extend(["--address".into(), ip.address.clone()]);
            let v4 = !ip.address.contains(':');
            if let Some(p) = ip.prefix
                && v4
            {
                argv.extend(["--netmask".into(), p.to_string()]);
            }
        }
        for pf in PortForward::of(n)? {
            let flag = if pf.udp { "--udp-ports" } else { "--tcp-ports" };
            argv.extend([flag.to_string(), pf.spec()]);
        }
        out.push(HelperSpec {
            kind: HelperKind::Passt,
            device: alias.clone(),
            argv,
            setup: vec![],
            socket: socket.into(),
            log: at.log.join(format!("{}-{alias}-passt.log", def.name)),
            files: vec![pid.into()],
            pass_fds: Vec::new(),
            setup_fds: Vec::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(xml: &str) -> Vec<PortForward> {
        let d = crate::domain::parse(&format!(
            "<domain type='qemu'><name>p</name><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os><devices>\
             <interface type='user'><backend type='passt'/>{xml}</interface></devices></domain>"
        ))
        .unwrap();
        PortForward::of(&d.devices.interfaces[0]).unwrap()
    }

    #[test]
    fn port_specs_as_libvirt_writes_them() {
        let f = pf("<portForward proto='tcp' address='127.0.0.1'>\
                    <range start='2222' to='22'/></portForward>\
                    <portForward proto='udp' dev='eth0'>\
                    <range start='5000' end='5020' to='6000'/><range start='5010' end='5015' exclude='yes'/>\
                    </portForward><portForward proto='tcp'/>");
        assert_eq!(f[0].spec(), "127.0.0.1/2222:22");
        assert!(f[1].udp);
        assert_eq!(f[1].spec(), "%eth0/5000-5020:6000-6020,~5010-5015");
        assert_eq!(f[2].spec(), "all");
    }

    #[test]
    fn bad_port_is_refused() {
        let d = crate::domain::parse(
            "<domain type='qemu'><name>p</name><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os><devices>\
             <interface type='user'><backend type='passt'/><portForward proto='tcp'>\
             <range start='99999'/></portForward></interface></devices></domain>",
        )
        .unwrap();
        assert!(PortForward::of(&d.devices.interfaces[0]).is_err());
    }
}
