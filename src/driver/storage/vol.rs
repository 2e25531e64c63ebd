//! Volumes of a `dir` pool: the files in its directory (libvirt: the volume calls of
//! storage_driver.c with storage_util.c's local-file backend). New raw files are made here,
//! other formats and conversions by `qemu-img`, as libvirt does.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use super::{StoragePool, probe};
use crate::driver::config::ConfigLock;
use crate::driver::{Connect, DriverError};
use crate::storage::pool::sanitize_path;
use crate::storage::vol::{VolDef, VolFormat, VolType};

/// One volume of an active pool.
#[derive(Debug, Clone)]
pub struct StorageVol<'c> {
    pool: StoragePool<'c>,
    def: VolDef,
}

/// Wipe algorithms (virStorageVolWipeAlgorithm), in libvirt's order.
pub const WIPE_ALGORITHMS: &[&str] = &[
    "zero",
    "nnsa",
    "dod",
    "bsi",
    "gutmann",
    "schneier",
    "pfitzner7",
    "pfitzner33",
    "random",
    "trim",
];

/// virStorageVolResize's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResizeFlags {
    pub allocate: bool,
    pub delta: bool,
    pub shrink: bool,
}

fn no_vol_name(name: &str) -> DriverError {
    DriverError::NoStorageVol(format!("no storage vol with matching name '{name}'"))
}

fn system(msg: String, err: std::io::Error) -> DriverError {
    DriverError::System { msg, err }
}

/// Whether `name` can be a file directly in the pool's directory.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}

/// Run `qemu-img ARGS`, worded as libvirt's virCommandRun on failure.
fn qemu_img(args: &[&str]) -> Result<(), DriverError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|e| system("Cannot find 'qemu-img' in path".into(), e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(DriverError::Internal(format!(
        "Child process (qemu-img {}) unexpected exit status {}: {}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

impl<'c> StoragePool<'c> {
    fn vol_path(&self, name: &str) -> String {
        format!("{}/{name}", self.target_path())
    }

    /// The volumes, sorted by name (virStoragePoolListAllVolumes as virsh sorts them).
    pub fn list_volumes(&self) -> Result<Vec<StorageVol<'c>>, DriverError> {
        self.check_active()?;
        let dir = self.target_path().to_string();
        let rd = std::fs::read_dir(&dir)
            .map_err(|err| system(format!("cannot open directory '{dir}'"), err))?;
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            // libvirt skips names with control characters.
            .filter(|n| !n.chars().any(char::is_control))
            .collect();
        names.sort_by_key(|n| n.to_lowercase());
        let mut out = Vec::new();
        for n in names {
            if let Some(def) = probe::volume(&n, &self.vol_path(&n))
                .map_err(|err| system(format!("cannot stat file '{}'", self.vol_path(&n)), err))?
            {
                out.push(StorageVol {
                    pool: self.clone(),
                    def,
                });
            }
        }
        Ok(out)
    }

    /// virStorageVolLookupByName.
    pub fn lookup_volume_by_name(&self, name: &str) -> Result<StorageVol<'c>, DriverError> {
        self.check_active()?;
        if !plain_name(name) {
            return Err(no_vol_name(name));
        }
        let path = self.vol_path(name);
        match probe::volume(name, &path) {
            Ok(Some(def)) => Ok(StorageVol {
                pool: self.clone(),
                def,
            }),
            Ok(None) => Err(no_vol_name(name)),
            Err(err) => Err(system(format!("cannot stat file '{path}'"), err)),
        }
    }

    /// virStorageVolCreateXML.
    pub fn create_volume_xml(
        &self,
        xml: &str,
        prealloc_metadata: bool,
    ) -> Result<StorageVol<'c>, DriverError> {
        self.check_active()?;
        super::backend(self.pool_type())?;
        let def = VolDef::parse(xml, false)?;
        self.build_volume(def, None, prealloc_metadata)
    }

    /// virStorageVolCreateXMLFrom: a new volume with `input`'s content.
    pub fn create_volume_xml_from(
        &self,
        xml: &str,
        input: &StorageVol<'_>,
        prealloc_metadata: bool,
    ) -> Result<StorageVol<'c>, DriverError> {
        self.check_active()?;
        input.pool.check_active()?;
        super::backend(self.pool_type())?;
        let mut def = VolDef::parse(xml, true)?;
        if def.capacity < input.def.capacity {
            def.capacity = input.def.capacity;
        }
        if def.allocation < input.def.capacity {
            def.allocation = input.def.capacity;
        }
        self.build_volume(def, Some(input), prealloc_metadata)
    }

    fn build_volume(
        &self,
        mut def: VolDef,
        input: Option<&StorageVol<'_>>,
        prealloc_metadata: bool,
    ) -> Result<StorageVol<'c>, DriverError> {
        let _lock = ConfigLock::acquire(&self.connect().storage_config_dir())?;
        // libvirt: storageVolCreateXML's name check, then virStorageBackendVolCreateLocal.
        if self.lookup_volume_by_name(&def.name).is_ok() {
            return Err(DriverError::StorageVolExist(format!("'{}'", def.name)));
        }
        if def.name.contains('/') {
            return Err(DriverError::OperationInvalid(format!(
                "volume name '{}' cannot contain '/'",
                def.name
            )));
        }
        if !plain_name(&def.name) {
            return Err(DriverError::OperationInvalid(format!(
                "volume name '{}' cannot be used",
                def.name
            )));
        }
        let path = self.vol_path(&def.name);
        if Path::new(&path).symlink_metadata().is_ok() {
            return Err(DriverError::OperationInvalid(format!(
                "volume target path '{path}' already exists"
            )));
        }
        def.target.path = Some(path.clone());
        let made = match (def.target.format, input) {
            (VolFormat::Raw, None) => self.create_raw(&def, None, prealloc_metadata),
            (VolFormat::Raw, Some(i)) if i.def.target.format == VolFormat::Raw => {
                self.create_raw(&def, Some(i), prealloc_metadata)
            }
            (VolFormat::Dir, None) => std::fs::DirBuilder::new()
                .create(&path)
                .map_err(|err| system(format!("cannot create path '{path}'"), err)),
            (_, i) => self.create_qemu_img(&def, i, prealloc_metadata),
        };
        if let Err(e) = made {
            // Nothing half-made stays behind (libvirt: storageVolCreateXML's cleanup).
            if !matches!(&e, DriverError::OperationInvalid(_)) {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
        let perms = &def.target.perms;
        if perms.owner.is_some() || perms.group.is_some() {
            std::os::unix::fs::chown(&path, perms.owner, perms.group)
                .map_err(|err| system(format!("cannot chown '{path}'"), err))?;
        }
        self.lookup_volume_by_name(&def.name)
    }

    /// A raw file (libvirt: storageBackendCreateRaw): the input's bytes, the capacity, and
    /// the allocation written for real.
    fn create_raw(
        &self,
        def: &VolDef,
        input: Option<&StorageVol<'_>>,
        prealloc_metadata: bool,
    ) -> Result<(), DriverError> {
        if prealloc_metadata {
            return Err(DriverError::Unsupported(
                "metadata preallocation is not supported for raw volumes".into(),
            ));
        }
        if def.backing.is_some() {
            return Err(DriverError::NoSupport(
                "backing storage not supported for raw volumes".into(),
            ));
        }
        let path = def.target.path.clone().unwrap_or_default();
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(def.target.perms.mode.unwrap_or(0o600))
            .open(&path)
            .map_err(|err| system(format!("Failed to create file '{path}'"), err))?;
        let mut pos = 0u64;
        if let Some(i) = input {
            let src = i.path();
            let mut r = std::fs::File::open(src)
                .map_err(|err| system(format!("could not open input path '{src}'"), err))?;
            pos = std::io::copy(&mut r, &mut f)
                .map_err(|err| system(format!("failed writing output file '{path}'"), err))?;
        }
        f.set_len(def.capacity.max(pos))
            .map_err(|err| system(format!("cannot extend file '{path}'"), err))?;
        let alloc = def.allocation.min(def.capacity.max(pos));
        if alloc > pos {
            nix::fcntl::posix_fallocate(&f, pos as i64, (alloc - pos) as i64).map_err(|e| {
                system(
                    format!("cannot fill file '{path}'"),
                    std::io::Error::from_raw_os_error(e as i32),
                )
            })?;
        }
        Ok(())
    }

    /// Any other format through qemu-img (libvirt: storageBackendCreateQemuImg).
    fn create_qemu_img(
        &self,
        def: &VolDef,
        input: Option<&StorageVol<'_>>,
        prealloc_metadata: bool,
    ) -> Result<(), DriverError> {
        let path = def.target.path.clone().unwrap_or_default();
        let fmt = def.target.format;
        if def.backing.is_some() && fmt == VolFormat::Raw {
            return Err(DriverError::Unsupported(
                "cannot set backing store for raw volume".into(),
            ));
        }
        let mut opts = Vec::new();
        if prealloc_metadata {
            if def.backing.is_some() {
                return Err(DriverError::Unsupported(
                    "metadata preallocation conflicts with backing store".into(),
                ));
            }
            opts.push("preallocation=metadata".to_string());
        }
        if let Some(cs) = def.target.cluster_size {
            opts.push(format!("cluster_size={cs}"));
        }
        if fmt == VolFormat::Qcow2 {
            opts.push(format!(
                "compat={}",
                def.target.compat.as_deref().unwrap_or("1.1")
            ));
            for f in def.target.features.iter().flatten() {
                opts.push(f.clone());
            }
        }
        let opts = opts.join(",");
        let size = format!("{}K", def.capacity.div_ceil(1024));
        let mut args: Vec<String> = Vec::new();
        match input {
            Some(i) => {
                args.extend(
                    [
                        "convert",
                        "-f",
                        i.def.target.format.as_str(),
                        "-O",
                        fmt.as_str(),
                    ]
                    .map(String::from),
                );
                if !opts.is_empty() {
                    args.extend(["-o".to_string(), opts]);
                }
                args.extend([i.path().to_string(), path.clone()]);
            }
            None => {
                args.extend(["create", "-f", fmt.as_str()].map(String::from));
                if let Some(b) = &def.backing {
                    // libvirt: storageBackendCreateQemuImgSetBacking. The format is the one
                    // the XML gives, raw when it gives none (libvirt does not probe it); a
                    // relative path is checked against the pool's directory.
                    let bpath = b.path.clone().unwrap_or_default();
                    let abs = if bpath.starts_with('/') {
                        bpath.clone()
                    } else {
                        self.vol_path(&bpath)
                    };
                    std::fs::File::open(&abs).map_err(|err| {
                        system(format!("inaccessible backing store volume {bpath}"), err)
                    })?;
                    args.extend([
                        "-b".to_string(),
                        bpath,
                        "-F".into(),
                        b.format.as_str().into(),
                    ]);
                }
                if !opts.is_empty() {
                    args.extend(["-o".to_string(), opts]);
                }
                args.extend([path.clone(), size]);
            }
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        qemu_img(&refs)?;
        if let Some(m) = def.target.perms.mode {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m))
                .map_err(|err| system(format!("cannot set mode of '{path}'"), err))?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }
}

impl Connect {
    /// The volume whose key (for a file volume, its path) is `key` (virStorageVolLookupByKey).
    pub fn lookup_storage_vol_by_key(&self, key: &str) -> Result<StorageVol<'_>, DriverError> {
        self.find_vol(key).ok_or_else(|| {
            DriverError::NoStorageVol(format!("no storage vol with matching key {key}"))
        })
    }

    /// virStorageVolLookupByPath: the path is sanitized first.
    pub fn lookup_storage_vol_by_path(&self, path: &str) -> Result<StorageVol<'_>, DriverError> {
        let clean = sanitize_path(path);
        self.find_vol(&clean).ok_or_else(|| {
            DriverError::NoStorageVol(if clean == path {
                format!("no storage vol with matching path '{path}'")
            } else {
                format!("no storage vol with matching path '{path}' ({clean})")
            })
        })
    }

    fn find_vol(&self, path: &str) -> Option<StorageVol<'_>> {
        let (dir, name) = path.rsplit_once('/')?;
        self.list_storage_pools()
            .ok()?
            .into_iter()
            .filter(|p| p.is_active() && p.target_path() == dir)
            .find_map(|p| p.lookup_volume_by_name(name).ok())
    }
}

impl<'c> StorageVol<'c> {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn key(&self) -> &str {
        self.def.key.as_deref().unwrap_or_default()
    }

    pub fn path(&self) -> &str {
        self.def.target.path.as_deref().unwrap_or_default()
    }

    pub fn pool(&self) -> &StoragePool<'c> {
        &self.pool
    }

    pub fn def(&self) -> &VolDef {
        &self.def
    }

    pub fn vol_type(&self) -> VolType {
        self.def.vtype
    }

    /// virStorageVolGetInfoFlags: type, capacity, and allocation (the file's size with
    /// `physical`).
    pub fn info(&self, physical: bool) -> (VolType, u64, u64) {
        let alloc = if physical {
            self.def.physical
        } else {
            self.def.allocation
        };
        (self.def.vtype, self.def.capacity, alloc)
    }

    /// virStorageVolGetXMLDesc.
    pub fn xml_desc(&self) -> String {
        self.def.format()
    }

    /// virStorageVolDelete; `delete_snapshots` is a flag the dir backend refuses.
    pub fn delete(&self, delete_snapshots: bool) -> Result<(), DriverError> {
        self.pool.check_active()?;
        if delete_snapshots {
            return Err(DriverError::InvalidArg(
                "unsupported flags (0x2) in function virStorageBackendVolDeleteLocal".into(),
            ));
        }
        let path = self.path();
        let r = match self.def.vtype {
            VolType::Dir => std::fs::remove_dir(path)
                .map_err(|err| system(format!("cannot remove directory '{path}'"), err)),
            _ => std::fs::remove_file(path)
                .map_err(|err| system(format!("cannot unlink file '{path}'"), err)),
        };
        match r {
            Err(DriverError::System { err, .. }) if err.kind() == std::io::ErrorKind::NotFound => {
                Ok(())
            }
            r => r,
        }
    }

    /// virStorageVolResize, with storageVolResize's checks in its order.
    pub fn resize(&self, capacity: u64, flags: ResizeFlags) -> Result<(), DriverError> {
        self.pool.check_active()?;
        let cur = self.def.capacity;
        let abs = if flags.delta {
            if flags.shrink {
                cur - capacity.min(cur)
            } else {
                cur.saturating_add(capacity)
            }
        } else {
            capacity
        };
        if abs < self.def.allocation {
            return Err(DriverError::InvalidArg(
                "can't shrink capacity below existing allocation".into(),
            ));
        }
        if abs < cur && !flags.shrink {
            return Err(DriverError::InvalidArg(
                "Can't shrink capacity below current capacity unless shrink flag explicitly specified".into(),
            ));
        }
        if flags.allocate && abs - self.def.allocation > self.pool.info().available {
            return Err(DriverError::OperationFailed(
                "Not enough space left in storage pool".into(),
            ));
        }
        let path = self.path();
        if self.def.target.format == VolFormat::Raw {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|err| system(format!("Unable to open '{path}'"), err))?;
            f.set_len(abs)
                .map_err(|err| system(format!("Failed to truncate file '{path}'"), err))?;
            if flags.allocate && abs > self.def.allocation {
                nix::fcntl::posix_fallocate(&f, 0, abs as i64).map_err(|e| {
                    system(
                        format!("Failed to pre-allocate space for file '{path}'"),
                        std::io::Error::from_raw_os_error(e as i32),
                    )
                })?;
            }
            return Ok(());
        }
        if flags.allocate {
            return Err(DriverError::OperationUnsupported(
                "preallocate is only supported for raw type volume".into(),
            ));
        }
        let size = abs.to_string();
        let mut args = vec!["resize"];
        if abs < cur {
            args.push("--shrink");
        }
        args.extend(["-f", self.def.target.format.as_str(), path, &size]);
        qemu_img(&args)
    }

    /// virStorageVolWipePattern (libvirt: storageBackendVolWipeLocalFile): `zero` writes
    /// zeros here; the other patterns run `scrub` as libvirt does.
    pub fn wipe(&self, algorithm: &str) -> Result<(), DriverError> {
        self.pool.check_active()?;
        let path = self.path();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|err| {
                system(
                    format!("Failed to open storage volume with path '{path}'"),
                    err,
                )
            })?;
        let md = f.metadata().map_err(|err| {
            system(
                format!("Failed to stat storage volume with path '{path}'"),
                err,
            )
        })?;
        match algorithm {
            "zero" => {}
            "trim" => {
                return Err(DriverError::ArgumentUnsupported(
                    "'trim' algorithm not supported".into(),
                ));
            }
            a if WIPE_ALGORITHMS.contains(&a) => {
                let out = Command::new("scrub")
                    .args(["-f", "-p", a, path])
                    .output()
                    .map_err(|e| system("Cannot find 'scrub' in path".into(), e))?;
                if !out.status.success() {
                    return Err(DriverError::Internal(format!(
                        "Child process (scrub -f -p {a} {path}) unexpected exit status {}: {}",
                        out.status.code().unwrap_or(-1),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                return Ok(());
            }
            a => {
                return Err(DriverError::InvalidArg(format!(
                    "unsupported algorithm {a}"
                )));
            }
        }
        use std::os::unix::fs::MetadataExt;
        let size = md.len();
        let werr = |err| system(format!("cannot wipe volume with path '{path}'"), err);
        if md.is_file() && md.blocks() < size / 512 {
            // A sparse file: cut and extend, which reads back as zeros (libvirt:
            // storageBackendVolZeroSparseFileLocal).
            f.set_len(0).map_err(werr)?;
            f.set_len(size).map_err(werr)?;
        } else {
            let mut w = &f;
            let zeros = vec![0u8; 1 << 20];
            let mut left = self.def.allocation.min(size).max(size);
            w.seek(SeekFrom::Start(0)).map_err(werr)?;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                w.write_all(&zeros[..n]).map_err(werr)?;
                left -= n as u64;
            }
        }
        f.sync_data().map_err(|err| {
            system(
                format!("cannot sync data to volume with path '{path}'"),
                err,
            )
        })
    }

    /// virStorageVolUpload: `file`'s bytes into the volume from `offset`, at most `length`
    /// (0: all).
    pub fn upload(&self, file: &mut dyn Read, offset: u64, length: u64) -> Result<(), DriverError> {
        self.pool.check_active()?;
        let path = self.path();
        let mut out = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|err| system(format!("Unable to open '{path}'"), err))?;
        out.seek(SeekFrom::Start(offset))
            .map_err(|err| system(format!("Unable to seek {path} to {offset}"), err))?;
        let werr = |err| system(format!("cannot write to '{path}'"), err);
        if length == 0 {
            std::io::copy(file, &mut out).map_err(werr)?;
        } else {
            std::io::copy(&mut file.take(length), &mut out).map_err(werr)?;
        }
        out.sync_data().map_err(werr)
    }

    /// virStorageVolDownload: the volume's bytes from `offset`, at most `length` (0: to the
    /// end), into `out`; `sparse` leaves holes where the data is zeros.
    pub fn download(
        &self,
        out: &mut std::fs::File,
        offset: u64,
        length: u64,
        sparse: bool,
    ) -> Result<(), DriverError> {
        self.pool.check_active()?;
        let path = self.path();
        let mut f = std::fs::File::open(path)
            .map_err(|err| system(format!("Unable to open '{path}'"), err))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|err| system(format!("Unable to seek {path} to {offset}"), err))?;
        let rerr = |err| system(format!("cannot read from '{path}'"), err);
        let mut left = if length == 0 { u64::MAX } else { length };
        let mut buf = vec![0u8; 1 << 20];
        let mut written = 0u64;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = f.read(&mut buf[..want]).map_err(rerr)?;
            if n == 0 {
                break;
            }
            if sparse && buf[..n].iter().all(|b| *b == 0) {
                out.seek(SeekFrom::Current(n as i64)).map_err(rerr)?;
            } else {
                out.write_all(&buf[..n]).map_err(rerr)?;
            }
            written += n as u64;
            left -= n as u64;
        }
        out.set_len(written).map_err(rerr)
    }
}
