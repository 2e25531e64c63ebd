//! Fast fresh boots: a bzImage's kernel, uncompressed once and booted through its PVH entry
//! point. Under TCG most of a test guest's boot goes to the decompressor inside the bzImage;
//! QEMU boots an ELF `vmlinux` that carries a PVH entry note (Xen's `PHYS32_ENTRY`, which
//! every x86 kernel built with `CONFIG_PVH` has) directly, with no decompression at all.
//!
//! [`pvh_kernel`] extracts the `vmlinux` from a bzImage (the payload's compressor is found by
//! its magic and run as the distribution ships it: `xz`, `gzip`, `zstd`, `lz4`, `bzip2`),
//! checks that it has a PVH entry, and caches it by the bzImage's content hash, so every
//! later boot of the same kernel costs one `stat`. libvirt and the test-VM tools have
//! nothing like it; in domain XML, pass the returned path as `<kernel>`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a bzImage cannot be booted the fast way; each says what was wrong with which file.
#[derive(Debug, thiserror::Error)]
pub enum PvhError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a bzImage ({why})")]
    NotBzImage { path: PathBuf, why: String },
    #[error("{path}: the kernel payload is compressed in a way we cannot undo ({magic})")]
    UnknownCompression { path: PathBuf, magic: String },
    #[error("{path}: decompressing the kernel with {tool} failed: {why}")]
    Decompress {
        path: PathBuf,
        tool: &'static str,
        why: String,
    },
    #[error("{path}: the kernel has no PVH entry point (built without CONFIG_PVH)")]
    NoPvhEntry { path: PathBuf },
}

/// The compressors a bzImage payload may use: magic, tool, its arguments to decompress
/// stdin to stdout.
const COMPRESSORS: &[(&[u8], &str, &[&str])] = &[
    (b"\xfd7zXZ\x00", "xz", &["-dc", "--single-stream"]),
    (b"\x1f\x8b", "gzip", &["-dc"]),
    (b"\x28\xb5\x2f\xfd", "zstd", &["-dcq"]),
    (b"\x02\x21\x4c\x18", "lz4", &["-dc"]),
    (b"BZh", "bzip2", &["-dc"]),
    (b"\x5d\x00\x00", "xz", &["-dc", "--format=lzma"]),
];

/// The uncompressed, PVH-bootable kernel of `bzimage`, from the cache in `cache_dir` (made
/// on first use: `vmlinux-HASH`, HASH the bzImage's content hash).
pub fn pvh_kernel(bzimage: &Path, cache_dir: &Path) -> Result<PathBuf, PvhError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PvhError::Io { path, source }
    };
    let image = std::fs::read(bzimage).map_err(io(bzimage))?;
    let cached = cache_dir.join(format!("vmlinux-{}", content_hash(&image)));
    if cached.is_file() {
        return Ok(cached);
    }
    let vmlinux = extract(bzimage, &image)?;
    if !has_pvh_entry(&vmlinux) {
        return Err(PvhError::NoPvhEntry {
            path: bzimage.to_path_buf(),
        });
    }
    std::fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    // Atomically: a concurrent boot sees the whole kernel or none.
    let mut tmp = tempfile::NamedTempFile::new_in(cache_dir).map_err(io(cache_dir))?;
    tmp.write_all(&vmlinux).map_err(io(tmp.path()))?;
    tmp.persist(&cached).map_err(|e| PvhError::Io {
        path: cached.clone(),
        source: e.error,
    })?;
    Ok(cached)
}

/// The bzImage's payload, decompressed.
fn extract(path: &Path, image: &[u8]) -> Result<Vec<u8>, PvhError> {
    let not = |why: &str| PvhError::NotBzImage {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    // The x86 boot protocol's setup header: "HdrS" at 0x202, payload fields from 2.08.
    if image.len() < 0x250 || &image[0x202..0x206] != b"HdrS" {
        return Err(not("no boot protocol header"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
    let u32_at =
        |o: usize| u32::from_le_bytes([image[o], image[o + 1], image[o + 2], image[o + 3]]);
    if u16_at(0x206) < 0x208 {
        return Err(not("boot protocol older than 2.08 has no payload fields"));
    }
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248) as usize;
    let len = u32_at(0x24c) as usize;
    let Some(payload) = image.get(start..start.saturating_add(len)) else {
        return Err(not(
            "the payload runs past the end of the file (truncated?)",
        ));
    };
    let Some(&(_, tool, args)) = COMPRESSORS.iter().find(|(m, ..)| payload.starts_with(m)) else {
        let magic: String = payload.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(PvhError::UnknownCompression {
            path: path.to_path_buf(),
            magic,
        });
    };
    // The build appends the uncompressed size (4 bytes) after the compressed stream.
    let stream = &payload[..payload.len().saturating_sub(4)];
    let failed = |why: String| PvhError::Decompress {
        path: path.to_path_buf(),
        tool,
        why,
    };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = stream.to_vec();
    // Fed from a thread: the tool's output may fill its pipe before it read all input.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    let mut stdout = child.stdout.take().expect("piped stdout");
    stdout
        .read_to_end(&mut out)
        .map_err(|e| failed(e.to_string()))?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| failed(e.to_string()))?;
    let fed = feeder.join().unwrap_or(Ok(()));
    // gzip says 2 for "trailing garbage ignored", which a payload may well have.
    let ok = status.success() || (tool == "gzip" && status.code() == Some(2));
    if !ok || out.is_empty() {
        let why = match (err.trim(), fed) {
            ("", Err(e)) => e.to_string(),
            ("", Ok(())) => format!("{status}"),
            (e, _) => e.to_string(),
        };
        return Err(failed(why));
    }
    if !out.starts_with(b"\x7fELF") {
        return Err(failed("the result is not an ELF kernel".into()));
    }
    Ok(out)
}

/// Whether ELF `elf` (64-bit little-endian, as x86-64 kernels are) has Xen's
/// `XEN_ELFNOTE_PHYS32_ENTRY` note, QEMU's sign that it boots through PVH.
pub fn has_pvh_entry(elf: &[u8]) -> bool {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    if elf.len() < 64 || !elf.starts_with(b"\x7fELF") || elf[4] != 2 || elf[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    for i in 0..usize::from(phnum) {
        let ph = phoff as usize + i * usize::from(phentsize);
        if u32_at(ph) != Some(PT_NOTE) {
            continue;
        }
        let (Some(off), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            continue;
        };
        let (mut at, end) = (off as usize, (off + size) as usize);
        // Notes: namesz, descsz, type, then name and desc, each padded to 4 bytes.
        while at + 12 <= end {
            let (Some(namesz), Some(descsz), Some(ntype)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8))
            else {
                break;
            };
            let name = elf
                .get(at + 12..at + 12 + namesz as usize)
                .unwrap_or_default();
            if ntype == XEN_ELFNOTE_PHYS32_ENTRY && name.starts_with(b"Xen") {
                return true;
            }
            let pad = |n: u32| (n as usize).div_ceil(4) * 4;
            at += 12 + pad(namesz) + pad(descsz);
        }
    }
    false
}

/// FNV-1a over 128 bits, as hex: stable across builds and Rust versions (unlike std's
/// hasher), plenty to tell kernels apart in a cache.
fn content_hash(data: &[u8]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for &b in data {
        h ^= u128::from(b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_bzimage() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k");
        std::fs::write(&f, b"hello").unwrap();
        let e = pvh_kernel(&f, dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("not a bzImage (no boot protocol header)"),
            "{e}"
        );
        let e = pvh_kernel(&dir.path().join("absent"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("No such file or directory"), "{e}");
        // A header whose payload runs past the end of the file.
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        img[0x1f1] = 1;
        img[0x24c..0x250].copy_from_slice(&0x10000u32.to_le_bytes());
        std::fs::write(&f, &img).unwrap();
        let e = pvh_kernel(&f, dir.path()).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        // A payload in no known format, right after the one setup sector.
        img[0x24c..0x250].copy_from_slice(&0x10u32.to_le_bytes());
        img.extend_from_slice(&[0xaa; 0x10]);
        std::fs::write(&f, &img).unwrap();
        let e = pvh_kernel(&f, dir.path()).unwrap_err().to_string();
        assert!(e.contains("compressed in a way we cannot undo"), "{e}");
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(content_hash(b""), "6c62272e07bb014262b821756295c58d");
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
