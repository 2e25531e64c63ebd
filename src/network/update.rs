//! `net-update` on a definition (libvirt: virNetworkDefUpdateSection): the sections this
//! driver can change, with libvirt's matching rules and messages. Only `ip-dhcp-host` is
//! supported; the other sections libvirt knows are refused as not supported.

use super::{DhcpHost, NetworkDef, NetworkError, parse_host};
use crate::domain::xml::parse_document;

/// `net-update`'s command (libvirt: virNetworkUpdateCommand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateCommand {
    Modify,
    Delete,
    AddFirst,
    AddLast,
}

impl UpdateCommand {
    /// virsh's names (`add` is `add-last`).
    pub fn from_name(s: &str) -> Option<UpdateCommand> {
        Some(match s {
            "modify" => UpdateCommand::Modify,
            "delete" => UpdateCommand::Delete,
            "add-first" => UpdateCommand::AddFirst,
            "add-last" | "add" => UpdateCommand::AddLast,
            _ => return None,
        })
    }
}

/// The section names virsh accepts (libvirt: virNetworkSection).
pub const SECTIONS: &[&str] = &[
    "bridge",
    "domain",
    "ip",
    "ip-dhcp-host",
    "ip-dhcp-range",
    "forward",
    "forward-interface",
    "forward-pf",
    "portgroup",
    "dns-host",
    "dns-txt",
    "dns-srv",
];

fn invalid(m: String) -> NetworkError {
    NetworkError::OperationInvalid(m)
}

/// Apply `command` with element `xml` to `section` of `def`, below `<ip>` number
/// `parent_index` (default: the first with `<dhcp>`, else the first).
pub fn apply(
    def: &mut NetworkDef,
    command: UpdateCommand,
    section: &str,
    parent_index: Option<usize>,
    xml: &str,
) -> Result<(), NetworkError> {
    if section != "ip-dhcp-host" {
        return Err(NetworkError::OperationUnsupported(format!(
            "can't update '{section}' section of network '{}'",
            def.name
        )));
    }
    let node = parse_document(xml).map_err(|e| {
        NetworkError::Xml(
            e.to_string()
                .strip_prefix("XML error: ")
                .unwrap_or(&e.to_string())
                .to_string(),
        )
    })?;
    let name = def.name.clone();
    if node.name != "host" {
        return Err(NetworkError::Xml(format!(
            "unexpected element <{}>, expecting <host>, while updating network '{name}'",
            node.name
        )));
    }
    let ip = match parent_index {
        Some(i) => def.ips.get_mut(i).ok_or_else(|| {
            invalid(format!(
                "couldn't update dhcp host entry - no <ip> element found at index {i} in network '{name}'"
            ))
        })?,
        None => {
            let at = def.ips.iter().position(|i| i.dhcp).unwrap_or(0);
            def.ips.get_mut(at).ok_or_else(|| {
                invalid(format!(
                    "couldn't update dhcp host entry - no <ip> element found in network '{name}'"
                ))
            })?
        }
    };
    let host = parse_host(&node, &name, command == UpdateCommand::Delete)?;
    let same_mac = |a: &DhcpHost, b: &DhcpHost| matches!((&a.mac, &b.mac), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y));
    let describe = |h: &DhcpHost| {
        format!(
            "\"<host mac='{}' name='{}' ip='{}'/>\"",
            h.mac.as_deref().unwrap_or("unknown"),
            h.name.as_deref().unwrap_or("(null)"),
            h.ip.map_or("unknown".to_string(), |i| i.to_string())
        )
    };
    match command {
        UpdateCommand::Modify => {
            let Some(at) = ip.hosts.iter().position(|h| {
                same_mac(&host, h)
                    || (host.ip.is_some() && host.ip == h.ip)
                    || (host.name.is_some() && host.name == h.name)
            }) else {
                return Err(invalid(format!(
                    "couldn't locate an existing dhcp host entry with \"mac='{}'\" \"name='{}'\" \"ip='{}'\" in network '{name}'",
                    host.mac.as_deref().unwrap_or("unknown"),
                    host.name.as_deref().unwrap_or("(null)"),
                    host.ip.map_or("unknown".to_string(), |i| i.to_string())
                )));
            };
            ip.hosts[at] = host;
        }
        UpdateCommand::AddFirst | UpdateCommand::AddLast => {
            if ip.hosts.iter().any(|h| {
                same_mac(&host, h)
                    || (host.name.is_some() && host.name == h.name)
                    || (host.ip.is_some() && host.ip == h.ip)
            }) {
                return Err(invalid(format!(
                    "there is an existing dhcp host entry in network '{name}' that matches {}",
                    describe(&host)
                )));
            }
            ip.dhcp = true;
            if command == UpdateCommand::AddFirst {
                ip.hosts.insert(0, host);
            } else {
                ip.hosts.push(host);
            }
        }
        UpdateCommand::Delete => {
            let Some(at) = ip.hosts.iter().position(|h| {
                (host.mac.is_none() || h.mac.is_none() || same_mac(&host, h))
                    && (host.name.is_none() || host.name == h.name)
                    && (host.ip.is_none() || host.ip == h.ip)
            }) else {
                return Err(invalid(format!(
                    "couldn't locate a matching dhcp host entry in network '{name}'"
                )));
            };
            ip.hosts.remove(at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> NetworkDef {
        NetworkDef::parse(
            "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp>
             <range start='10.0.0.100' end='10.0.0.200'/>
             <host mac='52:54:00:00:00:01' ip='10.0.0.5'/></dhcp></ip></network>",
        )
        .unwrap()
    }

    #[test]
    fn hosts_are_added_modified_and_deleted_as_libvirt_matches_them() {
        let mut d = def();
        let add = "<host mac='52:54:00:00:00:02' name='b' ip='10.0.0.6'/>";
        apply(&mut d, UpdateCommand::AddFirst, "ip-dhcp-host", None, add).unwrap();
        assert_eq!(d.ips[0].hosts[0].name.as_deref(), Some("b"));
        assert_eq!(
            apply(&mut d, UpdateCommand::AddLast, "ip-dhcp-host", None, add)
                .unwrap_err()
                .to_string(),
            "Requested operation is not valid: there is an existing dhcp host entry in network 'n' that matches \"<host mac='52:54:00:00:00:02' name='b' ip='10.0.0.6'/>\""
        );
        apply(
            &mut d,
            UpdateCommand::Modify,
            "ip-dhcp-host",
            None,
            "<host mac='52:54:00:00:00:01' ip='10.0.0.9'/>",
        )
        .unwrap();
        assert_eq!(d.ips[0].hosts[1].ip, Some("10.0.0.9".parse().unwrap()));
        apply(
            &mut d,
            UpdateCommand::Delete,
            "ip-dhcp-host",
            None,
            "<host name='b'/>",
        )
        .unwrap();
        assert_eq!(d.ips[0].hosts.len(), 1);
        assert_eq!(
            apply(
                &mut d,
                UpdateCommand::Delete,
                "ip-dhcp-host",
                None,
                "<host name='b'/>"
            )
            .unwrap_err()
            .to_string(),
            "Requested operation is not valid: couldn't locate a matching dhcp host entry in network 'n'"
        );
        assert_eq!(
            apply(&mut d, UpdateCommand::Delete, "dns-host", None, "<host/>")
                .unwrap_err()
                .to_string(),
            "Operation not supported: can't update 'dns-host' section of network 'n'"
        );
        assert_eq!(
            apply(
                &mut d,
                UpdateCommand::Delete,
                "ip-dhcp-host",
                Some(3),
                "<host name='x'/>"
            )
            .unwrap_err()
            .to_string(),
            "Requested operation is not valid: couldn't update dhcp host entry - no <ip> element found at index 3 in network 'n'"
        );
    }
}
