//! The parts of a storage pool definition a `<disk type='volume'>` is resolved with: the
//! pool's type, its source hosts and device paths, its auth and initiator (libvirt's
//! virStoragePoolDef, as virDomainDiskTranslateSourcePool reads it).

use super::DomainError;
use super::common::Auth;
use super::xml::{XmlNode, parse_document};

/// libvirt's storage pool types (virStoragePoolType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolType {
    Dir,
    Fs,
    Netfs,
    Logical,
    Disk,
    Iscsi,
    IscsiDirect,
    Scsi,
    Mpath,
    Rbd,
    Sheepdog,
    Gluster,
    Zfs,
    Vstorage,
}

impl PoolType {
    pub fn parse(s: &str) -> Option<PoolType> {
        Some(match s {
            "dir" => PoolType::Dir,
            "fs" => PoolType::Fs,
            "netfs" => PoolType::Netfs,
            "logical" => PoolType::Logical,
            "disk" => PoolType::Disk,
            "iscsi" => PoolType::Iscsi,
            "iscsi-direct" => PoolType::IscsiDirect,
            "scsi" => PoolType::Scsi,
            "mpath" => PoolType::Mpath,
            "rbd" => PoolType::Rbd,
            "sheepdog" => PoolType::Sheepdog,
            "gluster" => PoolType::Gluster,
            "zfs" => PoolType::Zfs,
            "vstorage" => PoolType::Vstorage,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PoolType::Dir => "dir",
            PoolType::Fs => "fs",
            PoolType::Netfs => "netfs",
            PoolType::Logical => "logical",
            PoolType::Disk => "disk",
            PoolType::Iscsi => "iscsi",
            PoolType::IscsiDirect => "iscsi-direct",
            PoolType::Scsi => "scsi",
            PoolType::Mpath => "mpath",
            PoolType::Rbd => "rbd",
            PoolType::Sheepdog => "sheepdog",
            PoolType::Gluster => "gluster",
            PoolType::Zfs => "zfs",
            PoolType::Vstorage => "vstorage",
        }
    }
}

/// libvirt's storage volume types (virStorageVolType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolType {
    File,
    Block,
    Dir,
    Network,
    Netdir,
    Ploop,
}

impl VolType {
    pub fn parse(s: &str) -> Option<VolType> {
        Some(match s {
            "file" => VolType::File,
            "block" => VolType::Block,
            "dir" => VolType::Dir,
            "network" => VolType::Network,
            "netdir" => VolType::Netdir,
            "ploop" => VolType::Ploop,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VolType::File => "file",
            VolType::Block => "block",
            VolType::Dir => "dir",
            VolType::Network => "network",
            VolType::Netdir => "netdir",
            VolType::Ploop => "ploop",
        }
    }
}

/// A pool source host: name and port (0 when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolHost {
    pub name: String,
    pub port: u16,
}

/// A storage pool definition, as far as a volume disk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    pub ptype: PoolType,
    pub name: String,
    pub hosts: Vec<PoolHost>,
    pub device_paths: Vec<String>,
    pub auth: Option<Auth>,
    pub initiator_iqn: Option<String>,
}

impl PoolDef {
    /// Parse a `<pool>` document.
    pub fn parse(xml: &str) -> Result<PoolDef, DomainError> {
        let root = parse_document(xml)?;
        if root.name != "pool" {
            return Err(DomainError::Xml(format!(
                "XML error: unexpected root element <{}>, expecting <pool>",
                root.name
            )));
        }
        let t = root
            .attr("type")
            .ok_or_else(|| DomainError::Xml("XML error: storage pool missing pool type".into()))?;
        let ptype = PoolType::parse(t)
            .ok_or_else(|| DomainError::Xml(format!("XML error: unknown storage pool type {t}")))?;
        let name = root
            .child("name")
            .map(|n| n.text.trim().to_string())
            .unwrap_or_default();
        let empty = XmlNode::new("source");
        let src = root.child("source").unwrap_or(&empty);
        let mut hosts = Vec::new();
        for h in src.children.iter().filter(|c| c.name == "host") {
            let port = match h.attr("port") {
                Some(p) => p.parse().map_err(|_| {
                    DomainError::Xml(format!("XML error: Invalid port number: {p}"))
                })?,
                None => 0,
            };
            hosts.push(PoolHost {
                name: h.attr("name").unwrap_or_default().to_string(),
                port,
            });
        }
        Ok(PoolDef {
            ptype,
            name,
            hosts,
            device_paths: src
                .children
                .iter()
                .filter(|c| c.name == "device")
                .filter_map(|c| c.attr("path").map(String::from))
                .collect(),
            auth: src.child("auth").map(Auth::parse),
            initiator_iqn: src
                .child("initiator")
                .and_then(|i| i.child("iqn"))
                .and_then(|q| q.attr("name"))
                .map(String::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_iscsi_pool_is_read() {
        let p = PoolDef::parse(
            "<pool type='iscsi'><name>p</name><source><host name='h' port='3261'/>\
             <device path='iqn.x'/><auth type='chap' username='u'><secret usage='s'/></auth>\
             <initiator><iqn name='iqn.me'/></initiator></source></pool>",
        )
        .unwrap();
        assert_eq!(p.ptype, PoolType::Iscsi);
        assert_eq!(
            p.hosts,
            vec![PoolHost {
                name: "h".into(),
                port: 3261
            }]
        );
        assert_eq!(p.device_paths, vec!["iqn.x".to_string()]);
        assert_eq!(p.auth.unwrap().username.as_deref(), Some("u"));
        assert_eq!(p.initiator_iqn.as_deref(), Some("iqn.me"));
    }

    #[test]
    fn bad_pools_are_refused() {
        let e = |x: &str| PoolDef::parse(x).unwrap_err().to_string();
        assert_eq!(
            e("<pool><name>p</name></pool>"),
            "XML error: storage pool missing pool type"
        );
        assert_eq!(
            e("<pool type='floppy'/>"),
            "XML error: unknown storage pool type floppy"
        );
        assert_eq!(
            e("<pool type='iscsi'><source><host name='h' port='x'/></source></pool>"),
            "XML error: Invalid port number: x"
        );
        assert_eq!(
            e("<domain/>"),
            "XML error: unexpected root element <domain>, expecting <pool>"
        );
    }
}
