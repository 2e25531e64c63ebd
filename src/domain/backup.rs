//! libvirt's `domainbackup` XML (docs/formatbackup.rst): typed model, parse, format and
//! the alignment with the domain's disks (libvirt: src/conf/backup_conf.c). Pure data.

use super::xml::{XmlNode, parse_document};
use super::{DomainDef, DomainError};
use crate::xmlfmt::XmlWriter;

/// Push (QEMU writes the backup) or pull (a client reads it over NBD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupMode {
    #[default]
    Push,
    Pull,
}

impl BackupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupMode::Push => "push",
            BackupMode::Pull => "pull",
        }
    }
}

/// A disk's backup mode (libvirt: virDomainBackupDiskBackupMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskBackupMode {
    Full,
    Incremental,
}

impl DiskBackupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBackupMode::Full => "full",
            DiskBackupMode::Incremental => "incremental",
        }
    }
}

/// The NBD server of a pull backup (libvirt: virStorageNetHostDef as `<server>` takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    Tcp { name: String, port: Option<u16> },
    Unix { socket: String },
}

/// One `<disk>` (libvirt: virDomainBackupDiskDef).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupDisk {
    pub name: String,
    pub backup: bool,
    pub backupmode: Option<DiskBackupMode>,
    pub incremental: Option<String>,
    pub exportname: Option<String>,
    pub exportbitmap: Option<String>,
    /// The store is a block device (`type='block'`), else a file.
    pub block: bool,
    /// `<driver type>`: the target's (push) or scratch's (pull) format.
    pub format: Option<String>,
    /// The target (push) or scratch (pull) image.
    pub path: Option<String>,
}

/// A `<domainbackup>` (libvirt: virDomainBackupDef).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupDef {
    pub mode: BackupMode,
    pub incremental: Option<String>,
    pub server: Option<Server>,
    /// `<server tls=...>`, as given.
    pub tls: Option<bool>,
    pub disks: Vec<BackupDisk>,
}

fn xml_err(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

fn unsupported(msg: impl Into<String>) -> DomainError {
    DomainError::Config(format!("unsupported configuration: {}", msg.into()))
}

fn yes_no(v: &str, what: &str) -> Result<bool, DomainError> {
    match v {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(xml_err(format!(
            "Invalid value for attribute '{what}': '{v}'"
        ))),
    }
}

/// Parse a backup document (libvirt: virDomainBackupDefParseXML).
pub fn parse(xml: &str) -> Result<BackupDef, DomainError> {
    let root = parse_document(xml)?;
    if root.name != "domainbackup" {
        return Err(xml_err(format!(
            "unexpected root element <{}>, expecting <domainbackup>",
            root.name
        )));
    }
    let mut def = BackupDef::default();
    if let Some(m) = root.attr("mode") {
        def.mode = match m {
            "push" => BackupMode::Push,
            "pull" => BackupMode::Pull,
            _ => return Err(unsupported(format!("unknown backup mode '{m}'"))),
        };
    }
    let push = def.mode == BackupMode::Push;
    def.incremental = root.child("incremental").map(|n| n.text.clone());
    if let Some(s) = root.child("server") {
        if push {
            return Err(unsupported("use of <server> requires pull mode backup"));
        }
        def.server = Some(match s.attr("transport").unwrap_or("tcp") {
            "tcp" => Server::Tcp {
                name: s.attr("name").unwrap_or("").to_string(),
                port: match s.attr("port") {
                    Some(p) => Some(
                        p.parse()
                            .map_err(|_| xml_err(format!("failed to parse port number '{p}'")))?,
                    ),
                    None => None,
                },
            },
            "unix" => {
                let socket = s.attr("socket").unwrap_or("").to_string();
                if !socket.starts_with('/') {
                    return Err(xml_err(format!(
                        "backup socket path '{socket}' must be absolute"
                    )));
                }
                Server::Unix { socket }
            }
            "rdma" => return Err(unsupported("transport rdma is not supported for <server>")),
            t => return Err(xml_err(format!("unknown protocol transport type '{t}'"))),
        });
        if let Some(t) = s.attr("tls") {
            def.tls = Some(yes_no(t, "tls")?);
        }
    }
    if let Some(disks) = root.child("disks") {
        for d in disks.children.iter().filter(|d| d.name == "disk") {
            def.disks.push(parse_disk(d, push)?);
        }
    }
    Ok(def)
}

// libvirt: virDomainBackupDiskDefParseXML
fn parse_disk(d: &XmlNode, push: bool) -> Result<BackupDisk, DomainError> {
    let name = d
        .attr("name")
        .ok_or_else(|| xml_err("missing name from disk backup element"))?;
    let mut disk = BackupDisk {
        name: name.to_string(),
        backup: match d.attr("backup") {
            Some(v) => yes_no(v, "backup")?,
            None => true,
        },
        ..Default::default()
    };
    if !disk.backup {
        return Ok(disk);
    }
    if !push {
        disk.exportname = d.attr("exportname").map(str::to_string);
        disk.exportbitmap = d.attr("exportbitmap").map(str::to_string);
    }
    disk.backupmode = match d.attr("backupmode") {
        None => None,
        Some("full") => Some(DiskBackupMode::Full),
        Some("incremental") => Some(DiskBackupMode::Incremental),
        Some(m) => {
            return Err(xml_err(format!(
                "Invalid value for attribute 'backupmode' in element 'disk': '{m}'."
            )));
        }
    };
    disk.incremental = d.attr("incremental").map(str::to_string);
    let kind = d.attr("type").unwrap_or("file");
    disk.block = match kind {
        "file" => false,
        "block" => true,
        t => return Err(xml_err(format!("unsupported disk backup type '{t}'"))),
    };
    disk.format = d
        .child("driver")
        .and_then(|x| x.attr("type"))
        .map(str::to_string);
    let src = d.child(if push { "target" } else { "scratch" });
    disk.path = src
        .and_then(|s| s.attr(if disk.block { "dev" } else { "file" }))
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    Ok(disk)
}

impl BackupDef {
    /// One entry per disk of `dom`: the ones named checked, stores named `PATH.SUFFIX` where
    /// none is given, the rest backed up (all writable disks when none is named) or not;
    /// every disk's mode decided (libvirt: virDomainBackupAlignDisks).
    pub fn align_disks(&mut self, dom: &DomainDef, suffix: &str) -> Result<(), DomainError> {
        let disks = &dom.devices.disks;
        if disks.is_empty() {
            return Err(unsupported(
                "domain must have at least one disk to perform backup",
            ));
        }
        let backup_all = self.disks.is_empty();
        let mut named: Vec<String> = Vec::new();
        for b in &mut self.disks {
            let Some(d) = disks.iter().find(|d| d.target.dev == b.name) else {
                return Err(unsupported(format!("no disk named '{}'", b.name)));
            };
            if named.contains(&b.name) {
                return Err(unsupported(format!("disk '{}' specified twice", b.name)));
            }
            named.push(b.name.clone());
            if b.backupmode == Some(DiskBackupMode::Incremental)
                && b.incremental.is_none()
                && self.incremental.is_none()
            {
                return Err(unsupported(format!(
                    "'incremental' backup mode of disk '{}' requires setting 'incremental' field for disk or backup",
                    b.name
                )));
            }
            if b.backup {
                assign_store(b, d, suffix)?;
            }
        }
        for d in disks {
            if named.contains(&d.target.dev) {
                continue;
            }
            let mut b = BackupDisk {
                name: d.target.dev.clone(),
                ..Default::default()
            };
            if backup_all && !disk_empty(d) && !d.readonly {
                b.backup = true;
                assign_store(&mut b, d, suffix)?;
            }
            self.disks.push(b);
        }
        for b in &mut self.disks {
            if b.backupmode.is_none() {
                b.backupmode = Some(if self.incremental.is_some() || b.incremental.is_some() {
                    DiskBackupMode::Incremental
                } else {
                    DiskBackupMode::Full
                });
            }
            if b.incremental.is_none() && b.backupmode == Some(DiskBackupMode::Incremental) {
                b.incremental = self.incremental.clone();
            }
        }
        Ok(())
    }

    /// The document (libvirt: virDomainBackupDefFormat, not the status file's form).
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        let push = self.mode == BackupMode::Push;
        w.elem("domainbackup")
            .attr("mode", self.mode.as_str())
            .open();
        if let Some(i) = &self.incremental {
            w.text_elem("incremental", i);
        }
        if let Some(s) = &self.server {
            let tls = self.tls.map(|t| if t { "yes" } else { "no" });
            match s {
                Server::Tcp { name, port } => w
                    .elem("server")
                    .attr("transport", "tcp")
                    .attr_opt("tls", tls)
                    .attr("name", name)
                    .attr_opt("port", *port)
                    .empty(),
                Server::Unix { socket } => w
                    .elem("server")
                    .attr("transport", "unix")
                    .attr_opt("tls", tls)
                    .attr("socket", socket)
                    .empty(),
            }
        }
        if !self.disks.is_empty() {
            w.elem("disks").open();
            for d in &self.disks {
                let e = w
                    .elem("disk")
                    .attr("name", &d.name)
                    .attr("backup", if d.backup { "yes" } else { "no" });
                if !d.backup {
                    e.empty();
                    continue;
                }
                e.attr("type", if d.block { "block" } else { "file" })
                    .attr_opt("backupmode", d.backupmode.map(|m| m.as_str()))
                    .attr_opt("incremental", d.incremental.as_deref())
                    .attr_opt("exportname", d.exportname.as_deref())
                    .attr_opt("exportbitmap", d.exportbitmap.as_deref())
                    .open();
                if let Some(f) = &d.format {
                    w.elem("driver").attr("type", f).empty();
                }
                if let Some(p) = &d.path {
                    w.elem(if push { "target" } else { "scratch" })
                        .attr(if d.block { "dev" } else { "file" }, p)
                        .empty();
                }
                w.close();
            }
            w.close();
        }
        w.close();
        w.finish()
    }
}

// libvirt: virDomainBackupDefAssignStore
fn assign_store(
    b: &mut BackupDisk,
    d: &crate::domain::devices::Disk,
    suffix: &str,
) -> Result<(), DomainError> {
    if disk_empty(d) {
        return Err(unsupported(format!("disk '{}' has no media", b.name)));
    }
    if b.path.is_none() {
        let file = d.source.as_ref().and_then(|s| s.file.as_deref());
        let Some(file) = file.filter(|_| d.dtype.as_deref().unwrap_or("file") == "file") else {
            return Err(unsupported(format!(
                "refusing to generate file name for disk '{}'",
                b.name
            )));
        };
        b.block = false;
        b.path = Some(format!("{file}.{suffix}"));
    }
    Ok(())
}

fn disk_empty(d: &crate::domain::devices::Disk) -> bool {
    d.source
        .as_ref()
        .is_none_or(|s| s.file.is_none() && s.dev.is_none() && s.name.is_none() && s.dir.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        let b = parse("<domainbackup mode='pull'><incremental>c1</incremental><server transport='tcp' name='127.0.0.1' port='10809'/><disks><disk name='vda' backup='yes' type='file' exportname='x'><driver type='qcow2'/><scratch file='/s'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>").unwrap();
        assert_eq!(b.mode, BackupMode::Pull);
        assert_eq!(b.disks[0].path.as_deref(), Some("/s"));
        let x = b.to_xml();
        assert!(
            x.contains("<server transport='tcp' name='127.0.0.1' port='10809'/>"),
            "{x}"
        );
        assert!(x.contains("<scratch file='/s'/>"), "{x}");
        assert_eq!(parse(&x).unwrap(), b);
        let e = parse("<domainbackup><server name='x' port='1'/></domainbackup>").unwrap_err();
        assert!(
            e.to_string()
                .contains("use of <server> requires pull mode backup")
        );
        assert!(parse("<domainbackup mode='x'/>").is_err());
        assert!(
            parse(
                "<domainbackup mode='pull'><server transport='unix' socket='rel'/></domainbackup>"
            )
            .is_err()
        );
    }
}
