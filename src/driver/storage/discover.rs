//! Finding the sources a pool of a type could use (`virConnectFindStoragePoolSources`,
//! libvirt: storageConnectFindStoragePoolSources and each backend's findPoolSources): the
//! volume groups `pvs` lists for `logical`, the exports `showmount` lists for `netfs`, the
//! targets `iscsiadm` discovers for `iscsi`. The other types have no discovery.

use crate::domain::xml::parse_document;
use crate::driver::network::{find_prog, run};
use crate::driver::{Connect, DriverError};
use crate::storage::PoolType;
use crate::xmlfmt::XmlWriter;

/// One `<host>` of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Host {
    name: String,
    port: Option<u16>,
}

/// One `<source>` found (virStoragePoolSource, the parts discovery fills in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Found {
    host: Option<Host>,
    devices: Vec<String>,
    dir: Option<String>,
    name: Option<String>,
    initiator: Option<String>,
}

/// The `<sources>` document (libvirt: virStoragePoolSourceListFormat), each source with
/// what its pool type has (virStoragePoolOptions' flags and format).
fn format_sources(t: PoolType, found: &[Found]) -> String {
    let mut w = XmlWriter::new();
    w.elem("sources").open();
    for s in found {
        w.elem("source").open();
        if let Some(h) = &s.host {
            w.elem("host")
                .attr("name", &h.name)
                .attr_opt("port", h.port)
                .empty();
        }
        for d in &s.devices {
            w.elem("device").attr("path", d).empty();
        }
        if t == PoolType::Netfs
            && let Some(d) = &s.dir
        {
            w.elem("dir").attr("path", d).empty();
        }
        if let Some(n) = &s.name {
            w.text_elem("name", n);
        }
        if let Some(i) = &s.initiator {
            w.elem("initiator").open();
            w.elem("iqn").attr("name", i).empty();
            w.close();
        }
        match t {
            PoolType::Netfs => w.elem("format").attr("type", "nfs").empty(),
            PoolType::Logical => w.elem("format").attr("type", "lvm2").empty(),
            _ => {}
        }
        w.close();
    }
    w.close();
    w.finish()
}

/// The host (and for iSCSI the initiator) of a `<source>` spec (libvirt:
/// virStoragePoolDefParseSourceString, the parts discovery reads).
fn parse_spec(spec: &str) -> Result<(Vec<Host>, Option<String>), DriverError> {
    let root = parse_document(spec)?;
    let mut hosts = Vec::new();
    for h in root.children.iter().filter(|c| c.name == "host") {
        let name = h.attr("name").ok_or_else(|| {
            DriverError::Xml(crate::domain::DomainError::Xml(
                "XML error: missing storage pool host name".into(),
            ))
        })?;
        let port = match h.attr("port") {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| DriverError::Internal(format!("Invalid port number: {p}")))?,
            ),
        };
        hosts.push(Host {
            name: name.to_string(),
            port,
        });
    }
    let initiator = root
        .children
        .iter()
        .find(|c| c.name == "initiator")
        .and_then(|i| i.children.iter().find(|c| c.name == "iqn"))
        .and_then(|q| q.attr("name"))
        .map(String::from);
    Ok((hosts, initiator))
}

/// The one host a spec must name (libvirt's words).
fn one_host(spec: Option<&str>, t: PoolType) -> Result<(Host, Option<String>), DriverError> {
    let spec = spec.ok_or_else(|| {
        DriverError::InvalidArg(format!(
            "hostname must be specified for {} sources",
            t.as_str()
        ))
    })?;
    let (mut hosts, initiator) = parse_spec(spec)?;
    if hosts.len() != 1 {
        return Err(DriverError::Unsupported(
            "Expected exactly 1 host for the storage pool".into(),
        ));
    }
    Ok((hosts.remove(0), initiator))
}

/// `pvs --noheadings -o pv_name,vg_name` lines: each volume group with its physical volumes,
/// in the order first seen (libvirt: virStorageBackendLogicalFindPoolSourcesFunc). A PV in
/// no group has one field and is left out.
fn parse_pvs(out: &str) -> Vec<Found> {
    let mut found: Vec<Found> = Vec::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [pv, vg] = f[..] else { continue };
        match found.iter_mut().find(|s| s.name.as_deref() == Some(vg)) {
            Some(s) => s.devices.push(pv.to_string()),
            None => found.push(Found {
                devices: vec![pv.to_string()],
                name: Some(vg.to_string()),
                ..Found::default()
            }),
        }
    }
    found
}

/// `showmount --no-headers --exports HOST` lines: the exported directories (libvirt:
/// virStorageBackendFileSystemNetFindPoolSourcesFunc's regex `^(/.*\S) +\S+$`).
fn parse_showmount(out: &str, host: &str) -> Result<Vec<Found>, DriverError> {
    let mut found = Vec::new();
    for line in out.lines() {
        if !line.starts_with('/') {
            continue;
        }
        let Some((path, clients)) = line.trim_end().rsplit_once(' ') else {
            continue;
        };
        let path = path.trim_end();
        if clients.is_empty() || path.is_empty() {
            continue;
        }
        if path.ends_with('/') {
            return Err(DriverError::Internal(format!(
                "invalid netfs path (ends in /): {path}"
            )));
        }
        found.push(Found {
            host: Some(Host {
                name: host.to_string(),
                port: None,
            }),
            dir: Some(path.to_string()),
            ..Found::default()
        });
    }
    Ok(found)
}

/// `iscsiadm --mode discovery` lines `PORTAL TARGET`: the targets (libvirt:
/// virISCSIGetTargets).
fn parse_sendtargets(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [_, t] => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

impl Connect {
    /// The sources a pool of type `ptype` could use, as a `<sources>` document
    /// (`virConnectFindStoragePoolSources`); `spec` is a `<source>` naming where to look.
    // libvirt: storageConnectFindStoragePoolSources
    pub fn find_storage_pool_sources(
        &self,
        ptype: &str,
        spec: Option<&str>,
    ) -> Result<String, DriverError> {
        let t = PoolType::parse(ptype)
            .ok_or_else(|| DriverError::Internal(format!("unknown storage pool type {ptype}")))?;
        let found = match t {
            PoolType::Logical => {
                // libvirt runs vgscan first and ignores how it fails.
                let _ = run("vgscan", &[]);
                // Without LVM's tools there is no volume group to find (libvirt's daemon
                // needs them installed to load its logical backend at all).
                if !find_prog("pvs").is_file() {
                    Vec::new()
                } else {
                    parse_pvs(&run("pvs", &["--noheadings", "-o", "pv_name,vg_name"])?)
                }
            }
            PoolType::Netfs => {
                let (host, _) = one_host(spec, t)?;
                // libvirt also asks gluster's CLI; none is run here, so a failing
                // showmount is "none found", as libvirt says when both fail.
                match run("showmount", &["--no-headers", "--exports", &host.name]) {
                    Ok(out) => parse_showmount(&out, &host.name)?,
                    Err(_) => {
                        return Err(DriverError::OperationFailed(format!(
                            "no storage pools were found on host '{}'",
                            host.name
                        )));
                    }
                }
            }
            PoolType::Iscsi => {
                let (mut host, initiator) = one_host(spec, t)?;
                let port = *host.port.get_or_insert(3260);
                let portal = if host.name.contains(':') {
                    format!("[{}]:{port},1", host.name)
                } else {
                    format!("{}:{port},1", host.name)
                };
                let out = run(
                    "iscsiadm",
                    &[
                        "--mode",
                        "discovery",
                        "--type",
                        "sendtargets",
                        "--portal",
                        &portal,
                        "--op",
                        "nonpersistent",
                    ],
                )?;
                parse_sendtargets(&out)
                    .into_iter()
                    .map(|target| Found {
                        host: Some(host.clone()),
                        devices: vec![target],
                        initiator: initiator.clone(),
                        ..Found::default()
                    })
                    .collect()
            }
            PoolType::Gluster | PoolType::IscsiDirect => {
                // Types libvirt discovers with backends this driver does not have.
                super::backend(t)?;
                Vec::new()
            }
            _ => {
                return Err(DriverError::NoSupport(format!(
                    "pool type '{ptype}' does not support source discovery"
                )));
            }
        };
        Ok(format_sources(t, &found))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_groups_from_pvs() {
        let out = "  /dev/sdb\n  /dev/sdc   vg0\n  /dev/sdd vg1\n  /dev/sde vg0 \n";
        assert_eq!(
            format_sources(PoolType::Logical, &parse_pvs(out)),
            "<sources>\n  <source>\n    <device path='/dev/sdc'/>\n    <device path='/dev/sde'/>\n    <name>vg0</name>\n    <format type='lvm2'/>\n  </source>\n  <source>\n    <device path='/dev/sdd'/>\n    <name>vg1</name>\n    <format type='lvm2'/>\n  </source>\n</sources>\n"
        );
        assert_eq!(
            format_sources(PoolType::Logical, &[]),
            "<sources>\n</sources>\n"
        );
    }

    #[test]
    fn nfs_exports_and_iscsi_targets() {
        let f = parse_showmount("/srv/a dir *\n/tmp   10.0.0.0/8\nnoise\n", "nas").unwrap();
        assert_eq!(
            format_sources(PoolType::Netfs, &f),
            "<sources>\n  <source>\n    <host name='nas'/>\n    <dir path='/srv/a dir'/>\n    <format type='nfs'/>\n  </source>\n  <source>\n    <host name='nas'/>\n    <dir path='/tmp'/>\n    <format type='nfs'/>\n  </source>\n</sources>\n"
        );
        assert!(parse_showmount("/a/ *\n", "nas").is_err());
        assert_eq!(
            parse_sendtargets("10.0.0.1:3260,1 iqn.2004-04.com:t0\nbad line here\n"),
            ["iqn.2004-04.com:t0"]
        );
        let (hosts, iqn) =
            parse_spec("<source><host name='h' port='3261'/><initiator><iqn name='iqn.x'/></initiator></source>")
                .unwrap();
        assert_eq!(hosts[0].port, Some(3261));
        assert_eq!(iqn.as_deref(), Some("iqn.x"));
    }
}
