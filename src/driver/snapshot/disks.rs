//! Which disks a snapshot covers and how (libvirt: virDomainSnapshotAlignDisks,
//! qemuSnapshotPrepare), and `qemu-img` for the disks of a shut-off guest (libvirt:
//! qemuDomainSnapshotForEachQcow2).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::domain::DomainDef;
use crate::domain::XmlNode;
use crate::domain::devices::Disk;
use crate::domain::snapshot::{Location, SnapshotDef, SnapshotDisk};
use crate::driver::DriverError;

fn unsupported(msg: String) -> DriverError {
    DriverError::Unsupported(msg)
}

/// The disk of `dom` a snapshot's `<disk name>` means: its target, or its source path.
fn find_disk(dom: &DomainDef, name: &str) -> Option<usize> {
    dom.devices.disks.iter().position(|d| {
        d.target.dev == name || d.source.as_ref().and_then(|s| s.path()) == Some(name)
    })
}

/// The disk's format (`<driver type>`), `raw` when unsaid as QEMU would probe it for us.
pub(crate) fn format_of(d: &Disk) -> &str {
    d.driver
        .as_ref()
        .and_then(|x| x.dtype.as_deref())
        .unwrap_or("raw")
}

/// Where the default for a disk the snapshot does not name goes.
fn default_location(d: &Disk, default: Location) -> Location {
    if let Some(l) = d.snapshot.as_deref().and_then(Location::parse) {
        return l;
    }
    let empty = d.source.as_ref().and_then(|s| s.path()).is_none();
    let removable = matches!(d.device.as_deref(), Some("cdrom" | "floppy"));
    if d.readonly || empty || removable {
        Location::No
    } else {
        default
    }
}

/// The default overlay of an external snapshot: the image's name with its extension
/// replaced by the snapshot's name (libvirt: virDomainSnapshotDefAssignExternalNames).
pub(crate) fn overlay_name(path: &str, snap: &str) -> String {
    let p = Path::new(path);
    let stem_end = match (p.extension(), path.rfind('/')) {
        (Some(ext), slash) if path.len() - ext.len() - 1 > slash.map_or(0, |s| s + 1) => {
            path.len() - ext.len() - 1
        }
        _ => path.len(),
    };
    format!("{}.{snap}", &path[..stem_end])
}

/// Fill in one `<disk>` per domain disk in the domain's order, with the default location
/// `default`, and check what libvirt checks. Names the user gave must exist.
pub(crate) fn align(
    def: &mut SnapshotDef,
    dom: &DomainDef,
    default: Location,
    active: bool,
) -> Result<(), DriverError> {
    let mut given: Vec<Option<SnapshotDisk>> = vec![None; dom.devices.disks.len()];
    for d in def.disks.drain(..) {
        let Some(i) = find_disk(dom, &d.name) else {
            return Err(unsupported(format!("no disk named '{}'", d.name)));
        };
        if given[i].is_some() {
            return Err(unsupported(format!("disk '{}' specified twice", d.name)));
        }
        given[i] = Some(d);
    }
    for (i, disk) in dom.devices.disks.iter().enumerate() {
        let mut sd = given[i].take().unwrap_or_default();
        sd.name = disk.target.dev.clone();
        let loc = sd
            .snapshot
            .unwrap_or_else(|| default_location(disk, default));
        sd.snapshot = Some(loc);
        match loc {
            Location::Internal => {
                let fmt = format_of(disk);
                if fmt != "qcow2" {
                    return Err(unsupported(format!(
                        "internal snapshot for disk {} unsupported for storage type {fmt}",
                        sd.name
                    )));
                }
            }
            Location::External => {
                sd.source_type.get_or_insert_with(|| "file".into());
                let fmt = sd.driver_type().unwrap_or("qcow2").to_string();
                if fmt != "qcow2" {
                    return Err(unsupported(format!(
                        "external snapshot format for disk {} is unsupported: {fmt}",
                        sd.name
                    )));
                }
                sd.driver = Some(XmlNode::new("driver").a("type", "qcow2"));
                if sd.source_file().is_none() {
                    let Some(base) = disk.source.as_ref().and_then(|s| s.file.as_deref()) else {
                        return Err(unsupported(format!(
                            "cannot generate external snapshot name for disk '{}' without source",
                            sd.name
                        )));
                    };
                    let file = overlay_name(base, &def.name);
                    sd.source = Some(XmlNode::new("source").a("file", file));
                }
                let file = sd.source_file().unwrap_or_default().to_string();
                if std::fs::metadata(&file)
                    .is_ok_and(|m| m.len() > 0 && !m.file_type().is_block_device())
                {
                    return Err(unsupported(format!(
                        "external snapshot file for disk {} already exists and is not a block device: {file}",
                        sd.name
                    )));
                }
                if disk.readonly {
                    return Err(unsupported(format!(
                        "external snapshot for readonly disk {} is not supported",
                        sd.name
                    )));
                }
            }
            Location::No | Location::Manual => {}
        }
        def.disks.push(sd);
    }
    let internal = def
        .disks
        .iter()
        .any(|d| d.snapshot == Some(Location::Internal));
    let external = def
        .disks
        .iter()
        .any(|d| d.snapshot == Some(Location::External));
    let forbid_internal = def.disks.iter().zip(&dom.devices.disks).any(|(s, d)| {
        s.snapshot == Some(Location::No)
            && d.source.as_ref().and_then(|x| x.path()).is_some()
            && !d.readonly
    });
    let disk_only = def.state == Some(crate::domain::snapshot::SnapshotState::DiskSnapshot);
    if disk_only && active && internal {
        let d = def
            .disks
            .iter()
            .find(|d| d.snapshot == Some(Location::Internal));
        return Err(unsupported(format!(
            "active qemu domains require external disk snapshots; disk {} requested internal",
            d.map_or("", |d| d.name.as_str())
        )));
    }
    let memory = def.memory.unwrap_or(Location::No);
    if !internal && !external && memory == Location::No {
        return Err(unsupported("nothing selected for snapshot".into()));
    }
    if (memory == Location::Internal && !internal) || (internal && forbid_internal) {
        return Err(unsupported(
            "internal and full system snapshots require all disks to be selected for snapshot"
                .into(),
        ));
    }
    if disk_only && !external {
        return Err(unsupported(
            "disk-only snapshots require at least one disk to be selected for snapshot".into(),
        ));
    }
    if (external && (internal || memory == Location::Internal))
        || (memory == Location::External && internal)
    {
        return Err(unsupported(
            "mixing internal and external targets for a snapshot is not yet supported".into(),
        ));
    }
    Ok(())
}

/// `qemu-img` next to the domain's emulator, else from `PATH`.
pub(crate) fn qemu_img(dom: &DomainDef) -> PathBuf {
    dom.devices
        .emulator
        .as_deref()
        .and_then(|e| Path::new(e).parent())
        .map(|d| d.join("qemu-img"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("qemu-img"))
}

/// Run `qemu-img ARGS`; its stderr is the error.
pub(crate) fn run_qemu_img(dom: &DomainDef, args: &[&str]) -> Result<(), DriverError> {
    qemu_img_output(dom, args).map(|_| ())
}

/// Run `qemu-img ARGS` and return its stdout; its stderr is the error.
pub(crate) fn qemu_img_output(dom: &DomainDef, args: &[&str]) -> Result<String, DriverError> {
    let bin = qemu_img(dom);
    let out = Command::new(&bin)
        .args(args)
        .output()
        .map_err(|e| DriverError::System {
            msg: format!("Cannot run {}", bin.display()),
            err: e,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(DriverError::OperationFailed(format!(
        "'{} {}' failed: {}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The image paths of the disks `snap` snapshots internally.
pub(crate) fn internal_paths<'a>(snap: &SnapshotDef, dom: &'a DomainDef) -> Vec<&'a str> {
    dom.devices
        .disks
        .iter()
        .filter(|d| {
            snap.disks
                .iter()
                .any(|s| s.name == d.target.dev && s.snapshot == Some(Location::Internal))
        })
        .filter_map(|d| d.source.as_ref().and_then(|s| s.file.as_deref()))
        .collect()
}

/// `qemu-img snapshot OP NAME` on each internal disk of `snap` (libvirt's `-c`, `-a`,
/// `-d`). A failed `-c` removes what it made; `-d` goes on past disks without the tag.
pub(crate) fn offline(op: &str, snap: &SnapshotDef, dom: &DomainDef) -> Result<(), DriverError> {
    let paths = internal_paths(snap, dom);
    for (i, p) in paths.iter().enumerate() {
        if let Err(e) = run_qemu_img(dom, &["snapshot", op, &snap.name, p]) {
            if op == "-d" {
                continue;
            }
            if op == "-c" {
                for q in &paths[..i] {
                    let _ = run_qemu_img(dom, &["snapshot", "-d", &snap.name, q]);
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::overlay_name;

    #[test]
    fn overlay_names_replace_the_extension() {
        assert_eq!(overlay_name("/a/disk.qcow2", "s1"), "/a/disk.s1");
        assert_eq!(overlay_name("/a/disk", "s1"), "/a/disk.s1");
        assert_eq!(overlay_name("/a.b/disk", "s1"), "/a.b/disk.s1");
    }
}
