//! Save images (`virsh save`, `managedsave`): libvirt's layout, so that the domain XML can be
//! read back without QEMU and libvirt's tools recognise the file (libvirt:
//! qemu_saveimage.c).
//!
//! A fixed header, then the domain XML (NUL-terminated, zero-padded so that
//! `save-image-define` can grow it in place), then QEMU's migration stream. The header's
//! magic says `LibvirtQemudPart` while the stream is written and `LibvirtQemudSave` once it
//! is whole, so an interrupted save is refused at restore instead of half-loaded.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::DriverError;

pub const MAGIC: &[u8; 16] = b"LibvirtQemudSave";
pub const PARTIAL: &[u8; 16] = b"LibvirtQemudPart";
/// Version 2: the header as below, uncompressed stream.
pub const VERSION: u32 = 2;
/// magic, then version, data_len, was_running, compressed, cookie_offset, 15 unused u32s.
pub const HEADER_LEN: usize = 16 + 4 * 20;
/// The XML gets at least this much room to grow, rounded up to a multiple of it (readers go
/// by `data_len`, so any padding is valid).
const PAD: usize = 1024;

/// What the header and data of a save image say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveImage {
    /// The domain XML (live, secure), as the guest was saved.
    pub xml: String,
    /// Whether the guest ran when saved: `restore` resumes it unless told otherwise.
    pub was_running: bool,
    /// Where QEMU's migration stream begins.
    pub stream_offset: u64,
}

fn sys(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> DriverError {
    let msg = format!("{what} '{}'", path.display());
    move |err| DriverError::System { msg, err }
}

/// The header and padded XML for a new image, with the partial magic.
pub fn encode(xml: &str, was_running: bool) -> Vec<u8> {
    let mut data = xml.as_bytes().to_vec();
    data.push(0);
    let padded = (data.len() + PAD).div_ceil(PAD) * PAD;
    data.resize(padded, 0);
    let mut out = Vec::with_capacity(HEADER_LEN + data.len());
    out.extend_from_slice(PARTIAL);
    for v in [
        VERSION,
        data.len() as u32,
        u32::from(was_running),
        0, // compressed: raw
        0, // cookie offset: no cookie
    ] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    out.resize(HEADER_LEN, 0);
    out.extend_from_slice(&data);
    out
}

/// Create `path` (0600, replacing a file there) holding the header and XML, with the partial
/// magic; QEMU appends its stream.
pub fn create(path: &Path, xml: &str, was_running: bool) -> Result<(), DriverError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(sys(path, "failed to create"))?;
    f.write_all(&encode(xml, was_running))
        .and_then(|()| f.sync_all())
        .map_err(sys(path, "failed to write"))
}

/// Mark the image of `path` whole (after QEMU's stream is in).
pub fn mark_complete(path: &Path) -> Result<(), DriverError> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(sys(path, "failed to open"))?;
    f.sync_all()
        .and_then(|()| f.write_all(MAGIC))
        .and_then(|()| f.sync_all())
        .map_err(sys(path, "failed to write"))
}

/// Read and check the image at `path` (libvirt: virQEMUSaveImageOpen's checks and messages).
pub fn read(path: &Path) -> Result<SaveImage, DriverError> {
    let mut f = File::open(path).map_err(sys(path, "cannot open saved image"))?;
    let mut h = [0u8; HEADER_LEN];
    if f.read_exact(&mut h).is_err() {
        return Err(DriverError::OperationFailed(
            "failed to read qemu header".into(),
        ));
    }
    let magic = &h[..16];
    if magic == PARTIAL {
        return Err(DriverError::OperationFailed(
            "save image is incomplete".into(),
        ));
    }
    if magic != MAGIC {
        return Err(DriverError::InvalidArg("image magic is incorrect".into()));
    }
    let word = |i: usize| u32::from_ne_bytes(h[16 + 4 * i..20 + 4 * i].try_into().unwrap());
    let (version, data_len, was_running, compressed) = (word(0), word(1), word(2), word(3));
    if version != VERSION && version != 1 {
        return Err(DriverError::OperationFailed(format!(
            "image version is not supported ({version} > {VERSION})"
        )));
    }
    if data_len == 0 {
        return Err(DriverError::OperationFailed(
            "invalid header data length: 0".into(),
        ));
    }
    if compressed != 0 {
        return Err(DriverError::Unsupported(format!(
            "compressed save images (format {compressed}) are not supported"
        )));
    }
    let len = f.metadata().map_err(sys(path, "cannot stat"))?.len();
    let stream_offset = HEADER_LEN as u64 + u64::from(data_len);
    if stream_offset >= len {
        return Err(DriverError::OperationFailed(
            "failed to read domain XML".into(),
        ));
    }
    let mut data = vec![0u8; data_len as usize];
    f.seek(SeekFrom::Start(HEADER_LEN as u64))
        .and_then(|_| f.read_exact(&mut data))
        .map_err(|_| DriverError::OperationFailed("failed to read domain XML".into()))?;
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let xml = String::from_utf8(data[..end].to_vec())
        .map_err(|_| DriverError::OperationFailed("failed to read domain XML".into()))?;
    Ok(SaveImage {
        xml,
        was_running: was_running != 0,
        stream_offset,
    })
}

/// Replace the XML of the image at `path` in place (`save-image-define`); it must fit the
/// room the image has.
pub fn replace_xml(path: &Path, xml: &str) -> Result<(), DriverError> {
    let img = read(path)?;
    let room = img.stream_offset as usize - HEADER_LEN;
    if xml.len() + 1 > room {
        return Err(DriverError::OperationFailed(
            "new xml too large to fit in file".into(),
        ));
    }
    let mut data = xml.as_bytes().to_vec();
    data.resize(room, 0);
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(sys(path, "failed to open"))?;
    f.seek(SeekFrom::Start(HEADER_LEN as u64))
        .and_then(|_| f.write_all(&data))
        .and_then(|()| f.sync_all())
        .map_err(sys(path, "failed to write"))
}

/// Set whether `restore` resumes the guest of the image at `path` (the header's
/// `was_running`; `save-image-define --running|--paused`).
pub fn set_running(path: &Path, running: bool) -> Result<(), DriverError> {
    read(path)?;
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(sys(path, "failed to open"))?;
    // After the magic: version, data_len, then was_running.
    f.seek(SeekFrom::Start(16 + 8))
        .and_then(|_| f.write_all(&u32::from(running).to_ne_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(sys(path, "failed to write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_checks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.save");
        create(&p, "<domain/>", true).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"QEVM stream")
            .unwrap();
        // Still partial.
        assert_eq!(
            read(&p).unwrap_err().to_string(),
            "operation failed: save image is incomplete"
        );
        mark_complete(&p).unwrap();
        let img = read(&p).unwrap();
        assert_eq!(img.xml, "<domain/>");
        assert!(img.was_running);
        assert_eq!(img.stream_offset, (HEADER_LEN + 2 * PAD) as u64);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[img.stream_offset as usize..], b"QEVM stream");
        assert_eq!(&bytes[..16], MAGIC);
        // The XML can be replaced in place.
        replace_xml(&p, "<domain type='qemu'/>").unwrap();
        assert_eq!(read(&p).unwrap().xml, "<domain type='qemu'/>");
        let big = "x".repeat(PAD * 4);
        assert!(replace_xml(&p, &big).is_err());
        // Foreign and truncated files.
        std::fs::write(&p, "not a save image ".repeat(20)).unwrap();
        assert_eq!(
            read(&p).unwrap_err().to_string(),
            "invalid argument: image magic is incorrect"
        );
        std::fs::write(&p, b"short").unwrap();
        assert_eq!(
            read(&p).unwrap_err().to_string(),
            "operation failed: failed to read qemu header"
        );
    }
}
