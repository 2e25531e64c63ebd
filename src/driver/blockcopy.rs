//! `virDomainBlockCopy`: copy a running guest's disk to a new image through QEMU's
//! `blockdev-mirror` (libvirt: qemuDomainBlockCopy, qemuDomainBlockCopyCommon).
//!
//! The target is created with `qemu-img` unless it is reused, opened with `blockdev-add`,
//! and mirrored as job `copy-<disk>`; the live XML shows the disk's `<mirror>` while the job
//! runs. Its end (pivot or abort, through `blockjob`) is applied by the guest's monitor
//! (see `monitor/server/blockjob.rs`).

use std::os::unix::fs::FileTypeExt;

use serde_json::json;

use super::DriverError;
use super::blockjob::{BlockJobType, job_id};
use super::blockjob_chain::chain_of;
use super::domain::Domain;
use super::hotplug::{LIVE_XML, check_flags, qmp};
use crate::domain::XmlNode;

/// `VIR_DOMAIN_BLOCK_COPY_SHALLOW`: the copy shares the disk's backing chain.
pub const BLOCK_COPY_SHALLOW: u32 = 1;
/// `VIR_DOMAIN_BLOCK_COPY_REUSE_EXT`: the target exists and is used as it is.
pub const BLOCK_COPY_REUSE_EXT: u32 = 2;
/// `VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB`: the job need not survive the guest's end.
pub const BLOCK_COPY_TRANSIENT_JOB: u32 = 4;
/// `VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES`: guest writes reach the copy before they
/// complete.
pub const BLOCK_COPY_SYNCHRONOUS_WRITES: u32 = 8;

/// virDomainBlockCopy's typed parameters; 0 leaves QEMU's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCopyParams {
    /// Bytes per second.
    pub bandwidth: u64,
    /// A power of two, in bytes.
    pub granularity: u32,
    /// Bytes in flight at most.
    pub buf_size: u64,
}

/// The copy's target, from a `<disk>` (libvirt: virDomainDiskDefParseSource).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// A block device (`<disk type='block'>`) rather than a file.
    block: bool,
    path: String,
    format: Option<String>,
    /// The XML names a backing chain for it.
    has_backing: bool,
}

fn parse_target(xml: &str) -> Result<Target, DriverError> {
    let body = xml.trim_start();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or("", |(_, r)| r),
        None => body,
    };
    let root = crate::domain::xml::parse_document(body)?;
    if root.name != "disk" {
        return Err(DriverError::Unsupported(format!(
            "expecting <disk> element for the block copy destination, not <{}>",
            root.name
        )));
    }
    let block = match root.attr("type").unwrap_or("file") {
        "file" => false,
        "block" => true,
        t => {
            return Err(DriverError::Unsupported(format!(
                "block copy to a disk of type '{t}' is not supported"
            )));
        }
    };
    let path = root
        .child("source")
        .and_then(|s| s.attr(if block { "dev" } else { "file" }))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            DriverError::InvalidArg("the block copy destination names no source".into())
        })?
        .to_string();
    let format = root
        .child("driver")
        .and_then(|d| d.attr("type"))
        .map(str::to_string);
    let has_backing = root
        .child("backingStore")
        .is_some_and(|b| b.child("source").is_some());
    Ok(Target {
        block,
        path,
        format,
        has_backing,
    })
}

/// The image format of an existing file, as far as a reused target's format may be
/// guessed (libvirt: virStorageFileProbeFormat, here qcow2 or raw).
fn probe_format(path: &str) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic).ok()?;
    Some(if n == 4 && magic == *b"QFI\xfb" {
        "qcow2".into()
    } else {
        "raw".into()
    })
}

/// Formats whose images may have a backing file (QEMU takes `backing` only for them).
fn has_backing_option(format: &str) -> bool {
    matches!(format, "qcow2" | "qed" | "vmdk" | "qcow")
}

/// libvirt's `<mirror>` of a copy job (virDomainDiskDefFormatMirror).
fn mirror_node(t: &Target, format: &str, shallow: bool) -> XmlNode {
    let (kind, attr) = if t.block {
        ("block", "dev")
    } else {
        ("file", "file")
    };
    let mut m = XmlNode::new("mirror").a("type", kind);
    if !t.block {
        m = m.a("file", &t.path).a("format", format);
    }
    m = m
        .a("job", "copy")
        .c(XmlNode::new("format").a("type", format))
        .c(XmlNode::new("source").a(attr, &t.path));
    if !shallow {
        // A deep copy's chain ends with its image.
        m = m.c(XmlNode::new("backingStore"));
    }
    m
}

impl Domain<'_> {
    /// `virDomainBlockCopy`: start copying disk `disk` (a target name or a source path) to
    /// the image `destxml` describes (a `<disk>` with its `<source>` and `<driver type>`).
    /// The job reaches its mirroring phase by itself; `blockjob --pivot` then switches
    /// the disk to the copy, `--abort` leaves the copy as a point-in-time image.
    pub fn block_copy(
        &self,
        disk: &str,
        destxml: &str,
        params: &BlockCopyParams,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            BLOCK_COPY_SHALLOW
                | BLOCK_COPY_REUSE_EXT
                | BLOCK_COPY_TRANSIENT_JOB
                | BLOCK_COPY_SYNCHRONOUS_WRITES,
            "qemuDomainBlockCopy",
        )?;
        // libvirt: qemuDomainBlockCopy's check of its typed parameters.
        if params.granularity != 0 && !params.granularity.is_power_of_two() {
            return Err(DriverError::InvalidArg(
                "granularity must be power of 2".into(),
            ));
        }
        let target = parse_target(destxml)?;
        self.block_copy_common(disk, target, params, flags)
    }

    // libvirt: qemuDomainBlockCopyCommon, its checks in its order.
    fn block_copy_common(
        &self,
        disk: &str,
        target: Target,
        params: &BlockCopyParams,
        flags: u32,
    ) -> Result<(), DriverError> {
        if !target.path.starts_with('/') {
            return Err(DriverError::InvalidArg(
                "absolute path must be used as block copy target".into(),
            ));
        }
        if params.bandwidth > i64::MAX as u64 {
            return Err(DriverError::InvalidArg(format!(
                "bandwidth must be less than '{}' bytes/s ({} MiB/s)",
                i64::MAX,
                i64::MAX >> 20
            )));
        }
        let (mut g, dst, file) = self.block_disk_only(disk)?;
        self.no_job(&mut g, &dst)?;
        if flags & BLOCK_COPY_TRANSIENT_JOB == 0 && self.is_persistent()? {
            // libvirt: QEMU cannot start a guest with a mirror running, so a job that a
            // restart would lose is refused for a domain that outlives it.
            return Err(DriverError::OperationInvalid(
                "domain is not transient".into(),
            ));
        }
        let chain = chain_of(&mut g, &file)?;
        let reuse = flags & BLOCK_COPY_REUSE_EXT != 0;
        // A single-layer disk has no chain to share.
        let shallow = flags & BLOCK_COPY_SHALLOW != 0 && chain.len() > 1;
        if target.has_backing && !shallow {
            return Err(DriverError::InvalidArg(
                "backingStore of mirror without VIR_DOMAIN_BLOCK_COPY_SHALLOW doesn't make sense"
                    .into(),
            ));
        }
        if shallow && !reuse && target.format.as_deref() == Some("raw") {
            return Err(DriverError::Unsupported(format!(
                "shallow copy of disk '{dst}' into a raw file is not possible"
            )));
        }
        let existing = validate_target(&target, &dst, reuse)?;
        let format = match (&target.format, reuse) {
            (Some(f), _) => f.clone(),
            (None, false) => chain[0].format.clone(),
            (None, true) => probe_format(&target.path).ok_or_else(|| {
                DriverError::Unsupported(
                    "reused mirror destination format must be specified".into(),
                )
            })?,
        };
        let def = crate::domain::parse_unprepared(&g.status().xml)?;
        let mut created = false;
        if !existing {
            let size = qmp(&mut g, "query-block", None)?
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["inserted"]["file"].as_str() == Some(file.as_str()))
                .and_then(|d| d["inserted"]["image"]["virtual-size"].as_u64())
                .unwrap_or(0)
                .to_string();
            let mut args = vec!["create", "-q", "-f", format.as_str()];
            if shallow {
                // The new image reads what it lacks from the disk's own backing chain.
                args.extend(["-F", chain[1].format.as_str(), "-b", chain[1].file.as_str()]);
                args.push("-u");
            }
            args.extend([target.path.as_str(), size.as_str()]);
            super::snapshot::disks::run_qemu_img(&def, &args)?;
            created = true;
        }
        let stamp = super::monitor::events::now_ms();
        let storage = format!("copy-{dst}-{stamp}-storage");
        let node = format!("copy-{dst}-{stamp}-format");
        let mut added: Vec<String> = Vec::new();
        let mut mirror_shown = false;
        let res = (|| -> Result<(), DriverError> {
            let driver = if target.block { "host_device" } else { "file" };
            qmp(
                &mut g,
                "blockdev-add",
                Some(json!({"driver": driver, "filename": target.path, "node-name": storage})),
            )?;
            added.push(storage.clone());
            let mut fmt = json!({"driver": format, "node-name": node, "file": storage});
            if has_backing_option(&format) {
                if !shallow {
                    fmt["backing"] = json!(null);
                } else if !reuse {
                    fmt["backing"] = json!(chain[1].node);
                }
                // A reused image of a shallow copy brings the chain its header names.
            }
            qmp(&mut g, "blockdev-add", Some(fmt))?;
            added.push(node.clone());
            // Shown before the job starts: the monitor marks it ready when QEMU says so.
            let mut live = def.clone();
            if let Some(d) = live.devices.disks.iter_mut().find(|d| d.target.dev == dst) {
                d.mirror = Some(mirror_node(&target, &format, shallow));
            }
            g.set_live_xml(live.to_xml(LIVE_XML))
                .map_err(super::domain::guest_err)?;
            mirror_shown = true;
            let mut args = json!({
                "job-id": job_id(BlockJobType::Copy, &dst),
                "device": chain[0].node,
                "target": node,
                "sync": if shallow { "top" } else { "full" },
                "auto-dismiss": false,
            });
            if params.bandwidth > 0 {
                args["speed"] = json!(params.bandwidth);
            }
            if params.granularity > 0 {
                args["granularity"] = json!(params.granularity);
            }
            if params.buf_size > 0 {
                args["buf-size"] = json!(params.buf_size);
            }
            if flags & BLOCK_COPY_SYNCHRONOUS_WRITES != 0 {
                args["copy-mode"] = json!("write-blocking");
            }
            qmp(&mut g, "blockdev-mirror", Some(args)).map(drop)
        })();
        if let Err(e) = res {
            // Best effort: the refusal is the news; the disk is as it was.
            if mirror_shown {
                let _ = g.set_live_xml(def.to_xml(LIVE_XML));
            }
            for n in added.iter().rev() {
                let _ = qmp(&mut g, "blockdev-del", Some(json!({ "node-name": n })));
            }
            if created {
                let _ = std::fs::remove_file(&target.path);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Whether the target exists, and libvirt's refusals of it (libvirt:
/// qemuDomainBlockCopyValidateMirror); a block device is always reused.
fn validate_target(t: &Target, dst: &str, reuse: bool) -> Result<bool, DriverError> {
    match std::fs::metadata(&t.path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if reuse || t.block {
                return Err(DriverError::System {
                    msg: format!("missing destination file for disk {dst}: {}", t.path),
                    err: e,
                });
            }
            Ok(false)
        }
        Err(e) => Err(DriverError::System {
            msg: "unable to verify existence of block copy target".into(),
            err: e,
        }),
        Ok(m) if m.file_type().is_block_device() => Ok(true),
        Ok(m) => {
            if m.len() > 0 && !reuse {
                return Err(DriverError::Unsupported(format!(
                    "external destination file for disk {dst} already exists and is not a block device: {}",
                    t.path
                )));
            }
            if t.block {
                return Err(DriverError::InvalidArg(format!(
                    "blockdev flag requested for disk {dst}, but file '{}' is not a block device",
                    t.path
                )));
            }
            Ok(reuse)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_as_virsh_writes_them() {
        let t = parse_target(
            "<disk type='file'>\n  <source file='/t/c.qcow2'/>\n  <driver type='qcow2'/>\n</disk>\n",
        )
        .unwrap();
        assert_eq!(
            t,
            Target {
                block: false,
                path: "/t/c.qcow2".into(),
                format: Some("qcow2".into()),
                has_backing: false,
            }
        );
        let b = parse_target("<disk type='block'><source dev='/dev/x'/></disk>").unwrap();
        assert!(b.block && b.format.is_none());
        assert!(parse_target("<disk type='network'/>").is_err());
        assert!(parse_target("<disk type='file'/>").is_err());
        let m = mirror_node(&t, "qcow2", false);
        assert_eq!(m.attr("job"), Some("copy"));
        assert!(m.child("backingStore").is_some());
    }
}
