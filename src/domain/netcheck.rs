//! Checks on `<interface>` elements: the type must be one libvirt knows, and socket
//! interfaces need the endpoints QEMU will be given. A multicast group that is not a
//! multicast address would only fail inside QEMU, after the guest was set up, so it is
//! refused here with the interface named.

use std::net::IpAddr;

use super::DomainError;
use super::devices::Interface;
use super::model::DomainDef;

/// Every `<interface type=..>` libvirt 9.0.0 accepts.
const TYPES: &[&str] = &[
    "user",
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "network",
    "bridge",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
    "null",
    "vds",
];

fn unsupported(msg: String) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {msg}"))
}

/// How an interface is named in messages: its position, type and MAC when it has one (aliases
/// are only given when the domain starts).
fn describe(i: usize, n: &Interface) -> String {
    match &n.mac {
        Some(m) => format!("interface {i} (type '{}', mac {m})", n.itype),
        None => format!("interface {i} (type '{}')", n.itype),
    }
}

fn is_multicast(addr: &str) -> bool {
    addr.parse::<IpAddr>().is_ok_and(|a| a.is_multicast())
}

/// Ports are decimal numbers QEMU can bind; 0 would leave the peer nothing to reach.
fn check_port(what: &str, port: Option<&String>, name: &str) -> Result<(), DomainError> {
    let Some(p) = port else {
        return Err(unsupported(format!(
            "{name}: no {what} 'port' attribute specified with socket interface"
        )));
    };
    match p.parse::<u16>() {
        Ok(v) if v > 0 => Ok(()),
        _ => Err(unsupported(format!(
            "{name}: invalid {what} port '{p}' (expected 1-65535)"
        ))),
    }
}

pub(super) fn validate_interfaces(def: &DomainDef) -> Result<(), DomainError> {
    for (i, n) in def.devices.interfaces.iter().enumerate() {
        if !n.itype.is_empty() && !TYPES.contains(&n.itype.as_str()) {
            return Err(DomainError::Xml(format!(
                "XML error: Invalid value for attribute 'type' in element 'interface': '{}'.",
                n.itype
            )));
        }
        if !matches!(n.itype.as_str(), "server" | "client" | "mcast" | "udp") {
            continue;
        }
        let name = describe(i, n);
        let src = n.source.clone().unwrap_or_default();
        check_port("<source>", src.port.as_ref(), &name)?;
        // A server may listen on every address; the other kinds need a peer or group.
        if n.itype != "server" && src.address.is_none() {
            return Err(unsupported(format!(
                "{name}: no <source> 'address' attribute specified with socket interface"
            )));
        }
        if n.itype == "mcast"
            && let Some(a) = &src.address
            && !is_multicast(a)
        {
            return Err(unsupported(format!(
                "{name}: source address '{a}' is not a multicast address (224.0.0.0/4 or ff00::/8)"
            )));
        }
        if n.itype == "udp" {
            if src.local_address.is_none() {
                return Err(unsupported(format!(
                    "{name}: no <local> 'address' attribute specified with udp interface"
                )));
            }
            check_port("<local>", src.local_port.as_ref(), &name)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_ranges() {
        assert!(is_multicast("230.0.0.1"));
        assert!(is_multicast("ff02::1"));
        assert!(!is_multicast("127.0.0.1"));
        assert!(!is_multicast("::1"));
        assert!(!is_multicast("not-an-ip"));
    }
}

#[cfg(test)]
mod errors {
    fn err(iface: &str) -> String {
        crate::domain::parse(&format!(
            "<domain type='qemu'><name>n</name><memory>65536</memory><os><type>hvm</type></os><devices>{iface}</devices></domain>"
        ))
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn mcast_needs_a_multicast_group() {
        let e = err(
            "<interface type='mcast'><mac address='52:54:00:00:00:09'/><source address='10.0.0.1' port='5558'/></interface>",
        );
        assert!(
            e.contains("interface 0 (type 'mcast', mac 52:54:00:00:00:09)"),
            "{e}"
        );
        assert!(e.contains("'10.0.0.1' is not a multicast address"), "{e}");
    }

    #[test]
    fn socket_interfaces_need_their_endpoints() {
        let e = err("<interface type='client'><source address='127.0.0.1'/></interface>");
        assert!(e.contains("no <source> 'port'"), "{e}");
        let e =
            err("<interface type='client'><source address='127.0.0.1' port='70000'/></interface>");
        assert!(e.contains("invalid <source> port '70000'"), "{e}");
        let e = err("<interface type='mcast'><source port='5558'/></interface>");
        assert!(e.contains("no <source> 'address'"), "{e}");
        let e = err("<interface type='udp'><source address='127.0.0.1' port='1'/></interface>");
        assert!(e.contains("no <local> 'address'"), "{e}");
        let e = err(
            "<interface type='udp'><source address='127.0.0.1' port='1'><local address='127.0.0.1'/></source></interface>",
        );
        assert!(e.contains("no <local> 'port'"), "{e}");
    }

    #[test]
    fn unknown_type_is_refused() {
        let e = err("<interface type='bogus'/>");
        assert_eq!(
            e,
            "XML error: Invalid value for attribute 'type' in element 'interface': 'bogus'."
        );
    }

    #[test]
    fn server_without_address_listens_everywhere() {
        crate::domain::parse(
            "<domain type='qemu'><name>n</name><memory>65536</memory><os><type>hvm</type></os><devices>\
             <interface type='server'><source port='2015'/></interface></devices></domain>",
        )
        .unwrap();
    }
}
