//! What a volume's file says of itself: its format from the header, the capacity and
//! backing file the header records, sizes, owner, mode and times (libvirt:
//! virStorageBackendUpdateVolTargetInfo with virStorageFileProbeFormat and the qcow2
//! header reader of virstoragefile.c). Read directly, without running qemu-img, as libvirt
//! does.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::storage::vol::{Timestamp, VolDef, VolFormat, VolTarget, VolType};

/// The header facts of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format: VolFormat,
    /// The guest-visible size the header records; `None`: the file's size.
    pub capacity: Option<u64>,
    pub backing: Option<(String, Option<VolFormat>)>,
    pub compat: Option<String>,
    pub cluster_size: Option<u64>,
    pub features: Option<Vec<String>>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes(s.try_into().expect("4 bytes")))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_be_bytes(s.try_into().expect("8 bytes")))
}

/// Read the header of the image in `buf` (its first bytes).
pub fn parse_header(buf: &[u8]) -> Header {
    let raw = Header {
        format: VolFormat::Raw,
        capacity: None,
        backing: None,
        compat: None,
        cluster_size: None,
        features: None,
    };
    if buf.starts_with(b"QFI\xfb") {
        let version = be32(buf, 4).unwrap_or(0);
        let size = be64(buf, 24);
        if version == 1 {
            return Header {
                format: VolFormat::Qcow,
                capacity: size,
                ..raw
            };
        }
        let mut h = Header {
            format: VolFormat::Qcow2,
            capacity: size,
            cluster_size: be32(buf, 20).filter(|b| *b < 64).map(|b| 1u64 << b),
            compat: Some(if version >= 3 { "1.1" } else { "0.10" }.into()),
            ..raw
        };
        if version >= 3 {
            let incompat = be64(buf, 72).unwrap_or(0);
            let compat_bits = be64(buf, 80).unwrap_or(0);
            let mut f = Vec::new();
            if compat_bits & 1 != 0 {
                f.push("lazy_refcounts".to_string());
            }
            if incompat & (1 << 4) != 0 {
                f.push("extended_l2".to_string());
            }
            h.features = Some(f);
        }
        let off = be64(buf, 8).unwrap_or(0) as usize;
        let len = be32(buf, 16).unwrap_or(0) as usize;
        if off != 0
            && let Some(name) = buf.get(off..off + len)
        {
            // The backing format is a header extension (type 0xE2792ACA) after the header.
            let mut ext = if version >= 3 {
                be32(buf, 100).unwrap_or(104) as usize
            } else {
                72
            };
            let mut fmt = None;
            while let (Some(t), Some(l)) = (be32(buf, ext), be32(buf, ext + 4)) {
                if t == 0 {
                    break;
                }
                let l = l as usize;
                if t == 0xE279_2ACA {
                    fmt = buf
                        .get(ext + 8..ext + 8 + l)
                        .and_then(|s| std::str::from_utf8(s).ok())
                        .and_then(VolFormat::parse);
                }
                ext += 8 + l.div_ceil(8) * 8;
            }
            h.backing = Some((String::from_utf8_lossy(name).into_owned(), fmt));
        }
        return h;
    }
    if buf.starts_with(b"QED\0") {
        return Header {
            format: VolFormat::Qed,
            capacity: be64(buf, 40).map(u64::from_le),
            ..raw
        };
    }
    if buf.starts_with(b"KDMV") {
        return Header {
            format: VolFormat::Vmdk,
            ..raw
        };
    }
    if buf.starts_with(b"conectix") {
        return Header {
            format: VolFormat::Vpc,
            ..raw
        };
    }
    if buf.get(32769..32774) == Some(b"CD001") {
        return Header {
            format: VolFormat::Iso,
            ..raw
        };
    }
    raw
}

/// A file's owner, mode and times as a volume's `<permissions>` and `<timestamps>`.
fn file_facts(md: &std::fs::Metadata) -> (crate::storage::Perms, Option<[Timestamp; 4]>) {
    let ts = |s: i64, ns: i64| Some((s, ns));
    (
        crate::storage::Perms {
            mode: Some(md.permissions().mode() & 0o777),
            owner: Some(md.uid()),
            group: Some(md.gid()),
            label: None,
        },
        Some([
            ts(md.atime(), md.atime_nsec()),
            ts(md.mtime(), md.mtime_nsec()),
            ts(md.ctime(), md.ctime_nsec()),
            // stat has no birth time: libvirt leaves btime out then.
            None,
        ]),
    )
}

/// The volume `name` at `path` of a pool, as a refresh sees it; `None` for what is not a
/// regular file or directory (a dangling link, a socket), which libvirt leaves out too.
pub fn volume(name: &str, path: &str) -> std::io::Result<Option<VolDef>> {
    let md = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (vtype, header) = if md.is_dir() {
        (
            VolType::Dir,
            Header {
                format: VolFormat::Dir,
                ..parse_header(&[])
            },
        )
    } else if md.is_file() {
        let mut buf = vec![0u8; 64 * 1024];
        let mut f = std::fs::File::open(path)?;
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        buf.truncate(n);
        (VolType::File, parse_header(&buf))
    } else {
        return Ok(None);
    };
    let (perms, timestamps) = file_facts(&md);
    let target = VolTarget {
        path: Some(path.to_string()),
        format: header.format,
        perms,
        timestamps,
        compat: header.compat.clone(),
        cluster_size: header.cluster_size,
        features: header.features.clone(),
        nocow: false,
    };
    let backing = header.backing.as_ref().map(|(p, f)| {
        // A relative backing name is relative to the image's directory.
        let full = if p.starts_with('/') || p.contains("://") {
            p.clone()
        } else {
            Path::new(path)
                .parent()
                .unwrap_or(Path::new("/"))
                .join(p)
                .to_string_lossy()
                .into_owned()
        };
        // The backing file's owner, mode and times when it is there; unknown otherwise,
        // as libvirt leaves them (virStorageBackendRefreshVolTargetUpdate).
        let (perms, timestamps) = match std::fs::metadata(&full) {
            Ok(m) => file_facts(&m),
            Err(_) => (Default::default(), None),
        };
        VolTarget {
            path: Some(full),
            format: f.unwrap_or(VolFormat::Raw),
            perms,
            timestamps,
            compat: None,
            cluster_size: None,
            features: None,
            nocow: false,
        }
    });
    Ok(Some(VolDef {
        vtype,
        name: name.to_string(),
        key: Some(path.to_string()),
        capacity: header.capacity.unwrap_or(md.len()),
        allocation: md.blocks() * 512,
        has_allocation: true,
        physical: md.len(),
        target,
        backing,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qcow2(version: u32, size: u64, backing: Option<(&str, &str)>) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..4].copy_from_slice(b"QFI\xfb");
        b[4..8].copy_from_slice(&version.to_be_bytes());
        b[20..24].copy_from_slice(&16u32.to_be_bytes());
        b[24..32].copy_from_slice(&size.to_be_bytes());
        b[100..104].copy_from_slice(&112u32.to_be_bytes());
        if let Some((name, fmt)) = backing {
            // Extension: backing format, then end.
            b[112..116].copy_from_slice(&0xE279_2ACAu32.to_be_bytes());
            b[116..120].copy_from_slice(&(fmt.len() as u32).to_be_bytes());
            b[120..120 + fmt.len()].copy_from_slice(fmt.as_bytes());
            b[512..512 + name.len()].copy_from_slice(name.as_bytes());
            b[8..16].copy_from_slice(&512u64.to_be_bytes());
            b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        }
        b
    }

    #[test]
    fn a_qcow2_header_is_read() {
        let h = parse_header(&qcow2(3, 1 << 30, Some(("base.img", "raw"))));
        assert_eq!(h.format, VolFormat::Qcow2);
        assert_eq!(h.capacity, Some(1 << 30));
        assert_eq!(h.cluster_size, Some(65536));
        assert_eq!(h.compat.as_deref(), Some("1.1"));
        assert_eq!(h.backing, Some(("base.img".into(), Some(VolFormat::Raw))));
        let h = parse_header(&qcow2(2, 5, None));
        assert_eq!(h.compat.as_deref(), Some("0.10"));
        assert_eq!(h.features, None);
        assert_eq!(parse_header(b"hello").format, VolFormat::Raw);
    }
}
