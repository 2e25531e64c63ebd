//! The storage driver without a daemon (libvirt: src/storage/storage_driver.c with the `dir`
//! backend, storage_backend_fs.c and storage_util.c): pools that persist like domains do and
//! volumes that are files in a pool's directory.
//!
//! Layout, like libvirt's `/etc/libvirt/storage` and `/run/libvirt/storage`:
//! `CONFIG/storage/NAME.xml` is a persistent pool's definition,
//! `CONFIG/storage/autostart/NAME.xml` its autostart link, and `RUN/storage/NAME.xml` the
//! state of an active pool (its live definition and figures in `<poolstate>`): a pool is
//! active while that file exists, so the state outlives the vsh that started it. A transient
//! pool has only the state file. Volumes are not recorded anywhere: the pool's directory is
//! read each time, which is what libvirt's refresh does.
//!
//! Only `dir` pools have a backend here; the others are refused where libvirt refuses a
//! type whose backend is not loaded (define, create, start). Like domains, nothing starts
//! autostart pools when the host boots: the mark is recorded and shown.

pub mod discover;
pub mod probe;
pub mod vol;

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::libc::{ENOENT, ENOTDIR};

use super::config::{self, ConfigLock, config_path};
use super::{Connect, DriverError};
use crate::storage::pool::{PoolDef, PoolType, type_number};

/// How a start or create builds the pool first (libvirt:
/// VIR_STORAGE_POOL_CREATE_WITH_BUILD*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Build {
    #[default]
    No,
    Plain,
    Overwrite,
    NoOverwrite,
}

/// A pool's state as libvirt reports it (virStoragePoolState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    Inactive,
    Running,
}

impl PoolState {
    /// virsh's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Inactive => "inactive",
            PoolState::Running => "running",
        }
    }
}

/// virStoragePoolGetInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolInfo {
    pub state: PoolState,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

/// One storage pool of a connection.
#[derive(Debug, Clone)]
pub struct StoragePool<'c> {
    conn: &'c Connect,
    /// The live definition of an active pool, else the persistent one.
    def: PoolDef,
    /// The persistent definition, when there is one.
    config: Option<PoolDef>,
    active: bool,
}

fn no_pool_name(name: &str) -> DriverError {
    DriverError::NoStoragePool(format!("no storage pool with matching name '{name}'"))
}

fn not_active(name: &str) -> DriverError {
    DriverError::OperationInvalid(format!("storage pool '{name}' is not active"))
}

fn still_active(name: &str) -> DriverError {
    DriverError::OperationInvalid(format!("storage pool '{name}' is still active"))
}

fn system(msg: String, err: std::io::Error) -> DriverError {
    DriverError::System { msg, err }
}

/// The backend of pool type `t` (libvirt: virStorageBackendForType): only `dir` here.
pub(crate) fn backend(t: PoolType) -> Result<(), DriverError> {
    if t == PoolType::Dir {
        return Ok(());
    }
    Err(DriverError::Internal(format!(
        "missing backend for pool type {} ({})",
        type_number(t),
        t.as_str()
    )))
}

impl Connect {
    /// Where persistent pool definitions live.
    pub fn storage_config_dir(&self) -> PathBuf {
        self.dirs.config.join("storage")
    }

    /// Where active pools' state files live.
    pub fn storage_run_dir(&self) -> PathBuf {
        self.dirs.run.join("storage")
    }

    fn read_pool(&self, name: &str) -> Result<Option<StoragePool<'_>>, DriverError> {
        let config = match config::read_small(&config_path(&self.storage_config_dir(), name)?)? {
            Some(x) => Some(PoolDef::parse(&x)?),
            None => None,
        };
        let state = match config::read_small(&config_path(&self.storage_run_dir(), name)?)? {
            Some(x) => Some(PoolDef::parse_state(&x)?),
            None => None,
        };
        Ok(match (state, config) {
            (Some(live), config) => Some(StoragePool {
                conn: self,
                def: live,
                config,
                active: true,
            }),
            (None, Some(c)) => Some(StoragePool {
                conn: self,
                def: c.clone(),
                config: Some(c),
                active: false,
            }),
            (None, None) => None,
        })
    }

    /// Every pool, active or not, sorted by name. Definitions that cannot be read are left
    /// out with a warning naming the file.
    pub fn list_storage_pools(&self) -> Result<Vec<StoragePool<'_>>, DriverError> {
        let mut names = config::config_names(&self.storage_config_dir())?;
        names.extend(config::config_names(&self.storage_run_dir())?);
        names.sort_by_key(|n| n.to_lowercase());
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            match self.read_pool(&n) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => {}
                Err(e) => self.warn([format!("storage pool '{n}': {e}")]),
            }
        }
        Ok(out)
    }

    /// The pool named `name` (virStoragePoolLookupByName).
    pub fn lookup_storage_pool_by_name(&self, name: &str) -> Result<StoragePool<'_>, DriverError> {
        if config::validate_name(name).is_err() {
            return Err(no_pool_name(name));
        }
        self.read_pool(name)?.ok_or_else(|| no_pool_name(name))
    }

    /// The pool with this UUID (virStoragePoolLookupByUUID).
    pub fn lookup_storage_pool_by_uuid(&self, uuid: &str) -> Result<StoragePool<'_>, DriverError> {
        let want = uuid::Uuid::parse_str(uuid.trim()).ok();
        self.list_storage_pools()?
            .into_iter()
            .find(|p| want.is_some_and(|w| p.def.uuid == w.hyphenated().to_string()))
            .ok_or_else(|| {
                DriverError::NoStoragePool(format!("no storage pool with matching uuid '{uuid}'"))
            })
    }

    /// virsh's lookup of a pool argument: as a UUID when it has a UUID's length, then as a
    /// name.
    pub fn lookup_storage_pool(&self, arg: &str) -> Result<StoragePool<'_>, DriverError> {
        if arg.len() == 36
            && let Ok(p) = self.lookup_storage_pool_by_uuid(arg)
        {
            return Ok(p);
        }
        self.lookup_storage_pool_by_name(arg)
    }

    /// libvirt's virStoragePoolObjIsDuplicate and virStoragePoolObjSourceFindDuplicate:
    /// the pool `def` would replace, if any.
    fn check_duplicate(
        &self,
        def: &PoolDef,
        check_active: bool,
    ) -> Result<Option<StoragePool<'_>>, DriverError> {
        let pools = self.list_storage_pools()?;
        let mut same = None;
        if let Some(p) = pools.iter().find(|p| p.def.uuid == def.uuid) {
            if p.def.name != def.name {
                return Err(DriverError::OperationFailed(format!(
                    "pool '{}' is already defined with uuid {}",
                    p.def.name, p.def.uuid
                )));
            }
            if check_active && p.active {
                return Err(DriverError::OperationInvalid(format!(
                    "pool is already active as '{}'",
                    p.def.name
                )));
            }
            same = Some(p.clone());
        } else if let Some(p) = pools.iter().find(|p| p.def.name == def.name) {
            return Err(DriverError::OperationFailed(format!(
                "pool '{}' already exists with uuid {}",
                def.name, p.def.uuid
            )));
        }
        for p in &pools {
            if p.def.name == def.name {
                continue;
            }
            let dir_like = matches!(
                p.def.ptype,
                PoolType::Dir | PoolType::Gluster | PoolType::Netfs
            );
            let conflict = if dir_like {
                p.def.ptype == def.ptype
                    && match p.def.ptype {
                        PoolType::Dir => p.def.target_path == def.target_path,
                        _ => {
                            p.def.source.dir == def.source.dir
                                && p.def.source.hosts.first().map(|h| &h.name)
                                    == def.source.hosts.first().map(|h| &h.name)
                        }
                    }
            } else {
                false
            };
            if conflict {
                return Err(DriverError::OperationFailed(format!(
                    "Storage source conflict with pool: '{}'",
                    p.def.name
                )));
            }
        }
        Ok(same)
    }

    /// Define (or redefine) a persistent pool (virStoragePoolDefineXML). Redefining an active
    /// pool changes its next start, not the running one.
    pub fn define_storage_pool_xml(&self, xml: &str) -> Result<StoragePool<'_>, DriverError> {
        let def = PoolDef::parse(xml)?;
        config::validate_name(&def.name)?;
        backend(def.ptype)?;
        let dir = self.storage_config_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        self.check_duplicate(&def, false)?;
        config::write_atomic(&config_path(&dir, &def.name)?, def.format().as_bytes())?;
        self.lookup_storage_pool_by_name(&def.name)
    }

    /// Create and start a pool from XML (virStoragePoolCreateXML): transient unless a
    /// persistent pool of that name and UUID is there.
    pub fn create_storage_pool_xml(
        &self,
        xml: &str,
        build: Build,
    ) -> Result<StoragePool<'_>, DriverError> {
        let def = PoolDef::parse(xml)?;
        config::validate_name(&def.name)?;
        backend(def.ptype)?;
        let dir = self.storage_config_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        let existing = self.check_duplicate(&def, true)?;
        let pool = StoragePool {
            conn: self,
            def,
            config: existing.and_then(|p| p.config),
            active: false,
        };
        pool.start_locked(build)?;
        self.lookup_storage_pool_by_name(&pool.def.name)
    }

    /// `<storagepoolCapabilities>` (virConnectGetStoragePoolCapabilities).
    pub fn storage_pool_capabilities(&self) -> String {
        crate::storage::pool::capabilities(|t| backend(t).is_ok())
    }
}

impl<'c> StoragePool<'c> {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn uuid_string(&self) -> &str {
        &self.def.uuid
    }

    pub fn pool_type(&self) -> PoolType {
        self.def.ptype
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn is_persistent(&self) -> bool {
        self.config.is_some()
    }

    pub fn connect(&self) -> &'c Connect {
        self.conn
    }

    /// The live definition of an active pool, else the persistent one.
    pub fn def(&self) -> &PoolDef {
        &self.def
    }

    /// The pool's directory (its `<target><path>`).
    pub fn target_path(&self) -> &str {
        self.def.target_path.as_deref().unwrap_or_default()
    }

    /// virStoragePoolGetInfo.
    pub fn info(&self) -> PoolInfo {
        if !self.active {
            return PoolInfo {
                state: PoolState::Inactive,
                capacity: 0,
                allocation: 0,
                available: 0,
            };
        }
        PoolInfo {
            state: PoolState::Running,
            capacity: self.def.capacity,
            allocation: self.def.allocation,
            available: self.def.available,
        }
    }

    /// virStoragePoolGetXMLDesc; `inactive`: the persistent definition when there is one.
    pub fn xml_desc(&self, inactive: bool) -> String {
        match (&self.config, inactive) {
            (Some(c), true) => c.format(),
            _ => self.def.format(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.conn.storage_config_dir()
    }

    fn state_path(&self) -> Result<PathBuf, DriverError> {
        config_path(&self.conn.storage_run_dir(), &self.def.name)
    }

    fn link_path(&self) -> Result<PathBuf, DriverError> {
        config_path(&self.config_dir().join("autostart"), &self.def.name)
    }

    /// Whether the pool is marked to start at boot: its link points at its config.
    pub fn autostart(&self) -> Result<bool, DriverError> {
        if self.config.is_none() {
            return Ok(false);
        }
        let cfg = config_path(&self.config_dir(), &self.def.name)?;
        Ok(std::fs::read_link(self.link_path()?).is_ok_and(|t| t == cfg))
    }

    /// virStoragePoolSetAutostart.
    pub fn set_autostart(&self, on: bool) -> Result<(), DriverError> {
        let dir = self.config_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        if self.config.is_none() {
            return Err(DriverError::InvalidArg("pool has no config file".into()));
        }
        if self.autostart()? == on {
            return Ok(());
        }
        let link = self.link_path()?;
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(ENOENT | ENOTDIR)) => {}
            Err(err) => {
                return Err(system(
                    format!("Failed to delete symlink '{}'", link.display()),
                    err,
                ));
            }
        }
        if on {
            let adir = dir.join("autostart");
            std::fs::create_dir_all(&adir).map_err(|err| {
                system(
                    format!("cannot create autostart directory {}", adir.display()),
                    err,
                )
            })?;
            let cfg = config_path(&dir, &self.def.name)?;
            std::os::unix::fs::symlink(&cfg, &link).map_err(|err| {
                system(
                    format!(
                        "Failed to create symlink '{}' to '{}'",
                        link.display(),
                        cfg.display()
                    ),
                    err,
                )
            })?;
        }
        Ok(())
    }

    /// Start an inactive pool (virStoragePoolCreate).
    pub fn create(&self, build: Build) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.config_dir())?;
        backend(self.def.ptype)?;
        let fresh = self
            .conn
            .read_pool(&self.def.name)?
            .ok_or_else(|| no_pool_name(&self.def.name))?;
        if fresh.active {
            return Err(DriverError::OperationInvalid(format!(
                "storage pool '{}' is already active",
                self.def.name
            )));
        }
        fresh.start_locked(build)
    }

    /// Build, then record the pool active and refresh it; a failed refresh leaves it
    /// inactive (libvirt: storagePoolRefreshImpl's cleanup).
    fn start_locked(&self, build: Build) -> Result<(), DriverError> {
        if build != Build::No {
            self.build_dir()?;
        }
        let run = self.conn.storage_run_dir();
        config::make_dir(&run)?;
        let mut live = self.def.clone();
        self.refresh_def(&mut live)?;
        config::write_atomic(&self.state_path()?, live.format_state().as_bytes())
    }

    /// The `dir` backend's refresh (libvirt: virStorageBackendRefreshLocal): the directory
    /// opens, the filesystem's figures, the directory's owner and mode.
    fn refresh_def(&self, def: &mut PoolDef) -> Result<(), DriverError> {
        let path = def.target_path.clone().unwrap_or_default();
        std::fs::read_dir(&path)
            .map_err(|err| system(format!("cannot open directory '{path}'"), err))?;
        let md = std::fs::metadata(&path)
            .map_err(|err| system(format!("cannot stat path '{path}'"), err))?;
        let vfs = nix::sys::statvfs::statvfs(Path::new(&path)).map_err(|e| {
            system(
                format!("cannot statvfs path '{path}'"),
                std::io::Error::from_raw_os_error(e as i32),
            )
        })?;
        let frsize = vfs.fragment_size() as u64;
        def.capacity = frsize * vfs.blocks() as u64;
        def.available = frsize * vfs.blocks_free() as u64;
        def.allocation = def.capacity - def.available;
        def.target_perms.mode = Some(md.permissions().mode() & 0o777);
        def.target_perms.owner = Some(md.uid());
        def.target_perms.group = Some(md.gid());
        Ok(())
    }

    /// virStoragePoolRefresh: figures again; a pool whose directory went away stops.
    pub fn refresh(&self) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.config_dir())?;
        if !self.active {
            return Err(not_active(&self.def.name));
        }
        let mut live = self.def.clone();
        match self.refresh_def(&mut live) {
            Ok(()) => config::write_atomic(&self.state_path()?, live.format_state().as_bytes()),
            Err(e) => {
                config::remove(&self.state_path()?)?;
                Err(e)
            }
        }
    }

    /// virStoragePoolBuild.
    pub fn build(&self, _how: Build) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.config_dir())?;
        backend(self.def.ptype)?;
        if self.active {
            return Err(DriverError::OperationInvalid(format!(
                "storage pool '{}' is already active",
                self.def.name
            )));
        }
        self.build_dir()
    }

    /// The `dir` backend's build (libvirt: virStorageBackendBuildLocal): the parents with
    /// default modes, the directory with the pool's mode (0711 when new and unset) and
    /// owner.
    fn build_dir(&self) -> Result<(), DriverError> {
        let path = self.target_path().to_string();
        let Some(slash) = path.rfind('/') else {
            return Err(DriverError::InvalidArg(format!(
                "path '{path}' is not absolute"
            )));
        };
        if slash > 0 {
            let parent = &path[..slash];
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o777)
                .create(parent)
                .map_err(|err| system(format!("cannot create path '{parent}'"), err))?;
        }
        let perms = &self.def.target_perms;
        let exists = Path::new(&path).exists();
        let mode = perms.mode.or((!exists).then_some(0o711));
        if !exists {
            std::fs::DirBuilder::new()
                .mode(mode.unwrap_or(0o711))
                .create(&path)
                .map_err(|err| system(format!("cannot create path '{path}'"), err))?;
        }
        if let Some(m) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m))
                .map_err(|err| system(format!("cannot set mode of '{path}' to {m:04o}"), err))?;
        }
        if perms.owner.is_some() || perms.group.is_some() {
            std::os::unix::fs::chown(&path, perms.owner, perms.group).map_err(|err| {
                system(
                    format!(
                        "cannot chown '{path}' to ({}, {})",
                        perms.owner.map_or(-1, |u| u as i64),
                        perms.group.map_or(-1, |g| g as i64)
                    ),
                    err,
                )
            })?;
        }
        Ok(())
    }

    /// virStoragePoolDestroy: inactive; a transient pool is gone.
    pub fn destroy(&self) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.config_dir())?;
        if !self.active {
            return Err(not_active(&self.def.name));
        }
        config::remove(&self.state_path()?)?;
        Ok(())
    }

    /// virStoragePoolDelete: remove the (empty) directory of an inactive pool.
    pub fn delete(&self) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.config_dir())?;
        if self.active {
            return Err(still_active(&self.def.name));
        }
        backend(self.def.ptype)?;
        let path = self.target_path();
        std::fs::remove_dir(path)
            .map_err(|err| system(format!("failed to remove pool '{path}'"), err))
    }

    /// virStoragePoolUndefine.
    pub fn undefine(&self) -> Result<(), DriverError> {
        let dir = self.config_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        if self.active {
            return Err(still_active(&self.def.name));
        }
        if !config::remove(&config_path(&dir, &self.def.name)?)? {
            return Err(DriverError::Internal(format!(
                "no config file for {}",
                self.def.name
            )));
        }
        let _ = std::fs::remove_file(self.link_path()?);
        Ok(())
    }

    /// Fail unless the pool is active (what every volume call checks first).
    pub(crate) fn check_active(&self) -> Result<(), DriverError> {
        if self.active {
            Ok(())
        } else {
            Err(not_active(&self.def.name))
        }
    }
}

impl Connect {
    /// Resolve every `<disk type='volume'>` of `def` to the storage its pool's volume is,
    /// at start (libvirt: qemuDomainPrepareDiskSource's
    /// virDomainStorageSourceTranslateSourcePool).
    pub(crate) fn translate_volume_disks(
        &self,
        def: &mut crate::domain::DomainDef,
    ) -> Result<(), DriverError> {
        use crate::domain::prepare::volume::{VolInfo, is_volume, translate_volume};
        for d in def.devices.disks.iter_mut().filter(|d| is_volume(d)) {
            let Some(src) = d.source.as_ref() else {
                continue;
            };
            let pool_name = src.pool.clone().unwrap_or_default();
            let vol_name = src.volume.clone().unwrap_or_default();
            let pool = self.lookup_storage_pool_by_name(&pool_name)?;
            if !pool.is_active() {
                return Err(DriverError::Unsupported(format!(
                    "storage pool '{pool_name}' containing volume '{vol_name}' is not active"
                )));
            }
            let vol = pool.lookup_volume_by_name(&vol_name)?;
            // The pool as its live XML says, read by the domain side's own reader.
            let pdef = crate::domain::storage_pool::PoolDef::parse(&pool.xml_desc(false))?;
            let info = VolInfo {
                vtype: vol.vol_type(),
                path: vol.path().to_string(),
            };
            translate_volume(d, &pdef, &info)?;
        }
        Ok(())
    }
}
