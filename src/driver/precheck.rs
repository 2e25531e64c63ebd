//! Host checks made just before QEMU starts, on the prepared definition.
//!
//! Each of these would otherwise surface as an exit of QEMU with its own wording, after the
//! process, its monitor and its files were set up. Checking first names the element at fault
//! and leaves nothing to clean up. The checks only look (stat, a bind released at once); they
//! change nothing on the host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;

use super::DriverError;
use crate::domain::DomainDef;

/// Run every check; the first failure is returned.
pub(super) fn check(def: &DomainDef) -> Result<(), DriverError> {
    super::nwfilter::refuse_filterrefs(&def.devices.interfaces)?;
    check_directories(def)?;
    check_listen_ports(def)
}

/// A directory the guest is given must exist and be a directory.
fn check_dir(what: &str, dir: &str) -> Result<(), DriverError> {
    match std::fs::metadata(Path::new(dir)) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(DriverError::OperationFailed(format!(
            "{what} source '{dir}' is not a directory"
        ))),
        Err(source) => Err(DriverError::System {
            msg: format!("cannot access {what} source directory '{dir}'"),
            err: source,
        }),
    }
}

fn check_directories(def: &DomainDef) -> Result<(), DriverError> {
    for fs in &def.devices.filesystems {
        // Only mount-type shares name a host directory.
        if !matches!(fs.ftype.as_deref(), None | Some("mount")) {
            continue;
        }
        if let Some(dir) = fs.source.as_ref().and_then(|s| s.dir.as_deref()) {
            check_dir("filesystem", dir)?;
        }
    }
    for d in &def.devices.disks {
        if d.dtype.as_deref() != Some("dir") {
            continue;
        }
        if let Some(dir) = d.source.as_ref().and_then(|s| s.dir.as_deref()) {
            check_dir(&format!("disk '{}'", d.target.dev), dir)?;
        }
    }
    Ok(())
}

/// A `server` interface makes QEMU listen; a port already taken would make it exit at start.
/// Binding the same address (with SO_REUSEADDR, as QEMU does) and releasing it at once tells.
fn check_listen_ports(def: &DomainDef) -> Result<(), DriverError> {
    for (i, n) in def.devices.interfaces.iter().enumerate() {
        if n.itype != "server" {
            continue;
        }
        let Some(src) = &n.source else { continue };
        let Some(port) = src.port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        let ip = match src.address.as_deref() {
            None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(a) => match a.parse::<IpAddr>() {
                Ok(ip) => ip,
                // A host name: QEMU resolves it; nothing to probe here.
                Err(_) => continue,
            },
        };
        let addr = SocketAddr::new(ip, port);
        if let Err(e) = TcpListener::bind(addr) {
            return Err(DriverError::OperationFailed(format!(
                "interface {i} (type 'server'): cannot listen on {addr}: {e}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_on(port: u16) -> DomainDef {
        crate::domain::parse(&format!(
            "<domain type='qemu'><name>p</name><memory>65536</memory><os><type>hvm</type></os><devices>\
             <interface type='server'><source address='127.0.0.1' port='{port}'/></interface>\
             </devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn free_port_passes_and_is_released() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        check(&server_on(port)).unwrap();
        // The probe let go of the port: QEMU (here, us) can take it.
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn taken_port_is_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let err = check(&server_on(port)).unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
