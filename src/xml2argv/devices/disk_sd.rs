//! Disks on an SD card bus: QEMU wires them up from a legacy `-drive if=sd`, with no
//! `-blockdev` and no `-device` (libvirt: qemuBuildDriveStr, qemuDiskBusIsSD).

use super::*;

impl Builder<'_> {
    /// The `-drive` of SD disk `d`: its image, the card slot named by its target
    /// (`sda` is slot 0), then the options that only apply to a drive with media.
    pub(super) fn sd_drive(&self, d: &Disk) -> R<String> {
        let mut o = KvOpts::new();
        let src = d.source.as_ref();
        let empty = super::disk::disk_source_is_empty(d);
        if !empty {
            let path = match d.dtype.as_deref().unwrap_or("file") {
                "file" => src.and_then(|s| s.file.clone()),
                "block" => src.and_then(|s| s.dev.clone()),
                other => {
                    return Err(unsupported(format!(
                        "disk type '{other}' on bus 'sd' not supported yet"
                    )));
                }
            };
            o.kv("file", path.unwrap_or_default());
            let drv = d.driver.as_ref();
            o.kv_opt("format", drv.and_then(|x| x.dtype.clone()));
        }
        let index = crate::domain::prepare::disk_index(&d.target.dev)
            .ok_or_else(|| Xml2ArgvError::Xml(format!("invalid disk target '{}'", d.target.dev)))?;
        o.raw("if=sd");
        o.kv("index", index);
        if d.readonly {
            o.raw("readonly=on");
        }
        if !empty && let Some(drv) = d.driver.as_ref() {
            o.kv_opt("cache", drv.cache.as_deref().filter(|c| *c != "default"));
            o.kv_opt("copy-on-read", drv.copy_on_read.as_deref());
            o.kv_opt("discard", drv.discard.as_deref());
            o.kv_opt("detect-zeroes", detect_zeroes(drv));
            o.kv_opt("aio", drv.io.as_deref());
        }
        Ok(o.build())
    }
}

/// `detect_zeroes='unmap'` only means unmap where discards are passed down; elsewhere QEMU
/// writes the zeroes as `on` (libvirt: virDomainDiskGetDetectZeroesMode).
fn detect_zeroes(drv: &crate::domain::devices::Driver) -> Option<&str> {
    match drv.detect_zeroes.as_deref() {
        Some("unmap") if drv.discard.as_deref() != Some("unmap") => Some("on"),
        Some("default") => None,
        other => other,
    }
}
