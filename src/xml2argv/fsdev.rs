//! Directories given to a guest: `-fsdev` of a 9p `<filesystem>` (the host side of the share,
//! in libvirt's option order) and the checks on `<disk type='dir'>` (vvfat).

use super::Xml2ArgvError;
use super::opts::KvOpts;
use crate::domain::devices::{Disk, Filesystem};

/// `fmode`/`dmode` are octal in the XML; QEMU gets four octal digits.
fn mode(v: &str) -> Option<String> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m != 0)
        .map(|m| format!("{m:04o}"))
}

pub(super) fn fsdev_opts(fs: &Filesystem, alias: &str) -> KvOpts {
    let driver = fs.driver.as_ref();
    let mut o;
    if driver.and_then(|d| d.dtype.as_deref()) == Some("handle") {
        o = KvOpts::with_head("handle");
    } else {
        o = KvOpts::with_head("local");
        // 'squash' is passthrough that ignores failed chown & co: QEMU's 'none'.
        let sm = match fs.accessmode.as_deref() {
            Some("mapped") => Some("mapped"),
            Some("squash") => Some("none"),
            Some("passthrough") | None => Some("passthrough"),
            Some(_) => None,
        };
        o.kv_opt("security_model", sm);
        if let Some(m) = fs.multidevs.as_deref()
            && matches!(m, "remap" | "forbid" | "warn")
        {
            o.kv("multidevs", m);
        }
        o.kv_opt("fmode", fs.fmode.as_deref().and_then(mode));
        o.kv_opt("dmode", fs.dmode.as_deref().and_then(mode));
    }
    let wrpolicy = driver.and_then(|d| {
        d.extra
            .attrs
            .iter()
            .find(|(k, _)| k == "wrpolicy")
            .map(|(_, v)| v.as_str())
    });
    o.kv_opt("writeout", wrpolicy);
    o.kv("id", format!("fsdev-{alias}"));
    o.kv(
        "path",
        fs.source
            .as_ref()
            .and_then(|s| s.dir.clone())
            .unwrap_or_default(),
    );
    if fs.readonly {
        o.raw("readonly");
    }
    o
}

/// The 9p device for a `<filesystem model=..>`.
pub(super) fn device_driver(fs: &Filesystem) -> &'static str {
    match fs.model.as_deref() {
        Some("virtio-transitional") => "virtio-9p-pci-transitional",
        Some("virtio-non-transitional") => "virtio-9p-pci-non-transitional",
        _ => "virtio-9p-pci",
    }
}

/// A `<disk type='dir'>` is a FAT image QEMU synthesizes from the directory (vvfat), read
/// through a raw layer; no other image format can sit on it.
pub(super) fn check_vvfat(d: &Disk) -> Result<(), Xml2ArgvError> {
    let fmt = d.driver.as_ref().and_then(|x| x.dtype.as_deref());
    if let Some(f) = fmt.filter(|f| !matches!(*f, "fat" | "raw")) {
        return Err(Xml2ArgvError::Unsupported(format!(
            "unsupported disk driver type for '{f}'"
        )));
    }
    Ok(())
}
