//! Connections and guests: URIs, state and config dirs, processes. The only layer with side
//! effects besides probing.

pub mod agent;
pub mod agent_timeout;
pub mod autostart;
pub mod backup;
pub mod blkiotune;
pub mod blockcopy;
pub mod blockjob;
mod blockjob_chain;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod control;
pub mod cpu_compare;
pub mod cpu_models;
pub mod cpu_stats;
pub mod define_flags;
pub mod dirs;
pub mod dirtyrate;
pub mod display;
pub mod domain;
pub mod domcaps;
pub mod domstats;
pub mod domstats_qemu;
pub mod dump;
pub mod events;
pub mod fdpass;
pub mod graphics;
pub mod guest_agent;
pub mod guest_agent_ops;
pub mod helpers;
pub mod hotplug;
pub mod iface;
pub mod ifaddr;
pub mod iftune;
mod inotify_queue;
pub mod iothread_tune;
pub mod iothreads;
pub mod jobs;
pub mod keycodes;
pub mod launch;
pub mod launch_sec;
pub mod lock;
pub mod memdev;
pub mod memtune;
pub mod metadata;
pub mod migrate;
pub mod monitor;
pub mod network;
pub mod network_port;
pub mod node;
pub mod node_cells;
pub mod node_memory;
pub mod node_pages;
pub mod node_suspend;
pub mod nodedev;
pub mod numatune;
pub mod nvram;
pub mod nwfilter;
pub mod object_events;
pub mod perf;
pub mod pinning;
pub mod ports;
pub mod power;
mod precheck;
pub mod prepare;
pub mod process;
mod qmp_route;
pub mod rename;
pub mod save;
pub mod save_abi;
pub mod saveimage;
pub mod schedinfo;
pub mod schema;
pub mod secret;
pub mod secret_events;
pub mod setvcpu;
pub mod snapshot;
pub mod stats;
pub mod status;
pub mod storage;
pub mod tap;
mod tree_store;
pub mod tuning;
pub mod uri;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use dirs::Dirs;
pub use uri::ConnectUri;

use crate::capabilities::{
    accel,
    cache::{self, ProbeCache},
    document::Capabilities,
    emulators,
    host::{HostCaps, HostRoot},
    inventory::{self, Inventory, StampContext},
    qemu::{self, QemuCaps},
};

/// The private dir of start `id` of domain `name` under lib dir `lib` (libvirt's
/// `domain-ID-SHORTNAME`); the guest's monitor removes it when QEMU is gone.
pub(crate) fn lib_dir_of(lib: &Path, name: &str, id: i32) -> PathBuf {
    let short: String = name.chars().take(20).collect();
    lib.join(format!("domain-{id}-{short}"))
}

/// Errors of the driver layer.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Uri(String),
    #[error(transparent)]
    Caps(#[from] crate::capabilities::CapsError),
    #[error(transparent)]
    DomCaps(#[from] crate::capabilities::domcaps::DomCapsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A domain XML error, with libvirt's message.
    #[error(transparent)]
    Xml(#[from] crate::domain::DomainError),
    /// A process-layer error about one guest.
    #[error(transparent)]
    Guest(#[from] process::GuestError),
    /// A domain name that cannot be used (message complete, libvirt's prefix included).
    #[error("{0}")]
    InvalidName(String),
    /// libvirt's VIR_ERR_NO_DOMAIN.
    #[error("Domain not found: {0}")]
    NoDomain(String),
    /// libvirt's VIR_ERR_NO_DOMAIN_METADATA.
    #[error("metadata not found: Requested metadata element is not present")]
    NoMetadata,
    /// libvirt's VIR_ERR_ARGUMENT_UNSUPPORTED.
    #[error("argument unsupported: {0}")]
    ArgumentUnsupported(String),
    /// libvirt's VIR_ERR_AGENT_UNRESPONSIVE.
    #[error("Guest agent is not responding: {0}")]
    AgentUnresponsive(String),
    /// libvirt's VIR_ERR_XML_INVALID_SCHEMA.
    #[error("XML document failed to validate against schema: {0}")]
    InvalidSchema(String),
    /// libvirt's VIR_ERR_NO_SECRET.
    #[error("Secret not found: {0}")]
    NoSecret(String),
    /// libvirt's VIR_ERR_NO_DOMAIN_SNAPSHOT.
    #[error("Domain snapshot not found: {0}")]
    NoSnapshot(String),

    #[error("Domain checkpoint not found: {0}")]
    NoCheckpoint(String),

    #[error("checkpoint inconsistent: {0}")]
    CheckpointInconsistent(String),

    #[error("Domain backup job id not found: {0}")]
    NoBackup(String),
    /// libvirt's VIR_ERR_OPERATION_FAILED.
    #[error("operation failed: {0}")]
    OperationFailed(String),
    /// libvirt's VIR_ERR_OPERATION_INVALID.
    #[error("Requested operation is not valid: {0}")]
    OperationInvalid(String),
    /// libvirt's VIR_ERR_INVALID_ARG.
    /// libvirt's VIR_ERR_BLOCK_COPY_ACTIVE.
    #[error("block copy still active: {0}")]
    BlockCopyActive(String),
    /// libvirt's VIR_ERR_OVERFLOW.
    #[error("numerical overflow: {0}")]
    Overflow(String),
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// libvirt's VIR_ERR_OPERATION_ABORTED.
    #[error("operation aborted: {0}")]
    OperationAborted(String),
    /// libvirt's VIR_ERR_OPERATION_TIMEOUT.
    #[error("Timed out during operation: {0}")]
    Timeout(String),
    /// libvirt's VIR_ERR_DEVICE_MISSING.
    #[error("device not found: {0}")]
    DeviceMissing(String),
    /// libvirt's VIR_ERR_OPERATION_UNSUPPORTED.
    #[error("Operation not supported: {0}")]
    OperationUnsupported(String),
    /// libvirt's VIR_ERR_NO_SUPPORT: the driver lacks the API named.
    #[error("this function is not supported by the connection driver: {0}")]
    NoSupport(String),
    /// libvirt's VIR_ERR_CPU_INCOMPATIBLE, with why when known.
    #[error("the CPU is incompatible with host CPU{}", .0.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    CpuIncompatible(Option<String>),
    /// libvirt's VIR_ERR_NO_NETWORK.
    #[error("Network not found: {0}")]
    NoNetwork(String),
    /// libvirt's VIR_ERR_NO_NETWORK_PORT.
    #[error("network port not found: {0}")]
    NoNetworkPort(String),
    /// libvirt's VIR_ERR_NETWORK_PORT_EXIST.
    #[error("network port {0} exists already")]
    NetworkPortExist(String),
    /// libvirt's VIR_ERR_NO_INTERFACE.
    #[error("Interface not found: {0}")]
    NoInterface(String),
    /// libvirt's VIR_ERR_MULTIPLE_INTERFACES.
    #[error("multiple matching interfaces found: {0}")]
    MultipleInterfaces(String),
    /// libvirt's VIR_ERR_NO_NWFILTER.
    #[error("Network filter not found: {0}")]
    NoNwfilter(String),
    /// libvirt's VIR_ERR_NO_NWFILTER_BINDING.
    #[error("Network filter binding not found: {0}")]
    NoNwfilterBinding(String),
    /// libvirt's VIR_ERR_NO_NODE_DEVICE.
    #[error("Node device not found: {0}")]
    NoNodeDevice(String),
    /// A node device document libvirt refuses, with libvirt's message.
    #[error(transparent)]
    NodeDevXml(#[from] crate::nodedev::NodeDevError),
    /// libvirt's VIR_ERR_PARSE_FAILED.
    #[error("failed to parse configuration file {0}")]
    ParseFailed(String),
    /// libvirt's VIR_ERR_NO_STORAGE_POOL.
    #[error("Storage pool not found: {0}")]
    NoStoragePool(String),
    /// libvirt's VIR_ERR_NO_STORAGE_VOL.
    #[error("Storage volume not found: {0}")]
    NoStorageVol(String),
    /// libvirt's VIR_ERR_STORAGE_VOL_EXIST.
    #[error("storage volume {0} exists already")]
    StorageVolExist(String),
    /// libvirt's VIR_ERR_INTERNAL_ERROR.
    #[error("internal error: {0}")]
    Internal(String),
    /// libvirt's VIR_ERR_CONFIG_UNSUPPORTED.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// Building QEMU's command line failed (message with libvirt's prefix).
    #[error(transparent)]
    Argv(#[from] crate::xml2argv::Xml2ArgvError),
    /// A failed system call, worded as libvirt's virReportSystemError: `{msg}: {strerror}`.
    // Not `source`: the message already carries the OS error's words, and a source would
    // make vsh print them again on a line of their own.
    #[error("{msg}: {}", config::strerror(err))]
    System { msg: String, err: std::io::Error },
}

/// Where a connection looks for facts; the defaults are the real host's.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The /proc and /sys the host facts come from.
    pub host_root: HostRoot,
    /// Directories searched for emulators (default: `VSH_EMULATOR_PATH`, else PATH and the
    /// usual libexec dirs).
    pub emulator_dirs: Vec<PathBuf>,
    /// The KVM device whose usability decides `<domain type='kvm'/>`.
    pub kvm_device: PathBuf,
    /// Bound on probing one emulator (default 15 s, `VSH_PROBE_TIMEOUT` in seconds).
    pub probe_timeout: Duration,
    /// Environment given to every QEMU this connection starts, over the domain's own: the
    /// operator's word (a proxy, `QEMU_AUDIO_DRV`, ...), like LAVA's per-device `env.yaml`.
    pub qemu_env: Vec<(String, String)>,
    /// Whether a domain's `<qemu:commandline><qemu:env>` may set QEMU's environment. When
    /// false, such a domain fails to start rather than running without its variables.
    pub allow_domain_env: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        let probe_timeout = std::env::var("VSH_PROBE_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(15));
        ConnectOptions {
            host_root: HostRoot::real(),
            emulator_dirs: emulators::search_dirs(),
            kvm_device: PathBuf::from("/dev/kvm"),
            probe_timeout,
            qemu_env: Vec::new(),
            allow_domain_env: true,
        }
    }
}

/// A connection to the QEMU driver. There is no daemon: the connection is the driver, and
/// everything it knows lives in the directories its URI names.
#[derive(Debug)]
pub struct Connect {
    uri: ConnectUri,
    dirs: Dirs,
    opts: ConnectOptions,
    warnings: Mutex<Vec<String>>,
    /// File descriptor groups associated through this connection (see [`fdpass`]).
    fds: fdpass::FdStore,
}

impl Connect {
    /// Open a connection. `None` picks the default URI (`VSH_DEFAULT_URI`, else system for
    /// root and session otherwise).
    pub fn open(uri: Option<&str>) -> Result<Connect, DriverError> {
        Self::open_with(uri, ConnectOptions::default())
    }

    /// [`Connect::open`] with explicit host facts and search paths (tests, embedding).
    pub fn open_with(uri: Option<&str>, opts: ConnectOptions) -> Result<Connect, DriverError> {
        let uri = match uri {
            Some(u) => ConnectUri::parse(u)?,
            None => ConnectUri::default_for_process()?,
        };
        let dirs = Dirs::for_uri(&uri)?;
        Ok(Connect {
            uri,
            dirs,
            opts,
            warnings: Mutex::new(Vec::new()),
            fds: fdpass::FdStore::default(),
        })
    }

    /// The canonical URI of this connection (`virsh uri`).
    pub fn uri(&self) -> String {
        self.uri.to_string()
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }

    /// Warnings gathered since the last call (emulators left out, cache problems), each
    /// naming the file concerned.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn warn(&self, w: impl IntoIterator<Item = String>) {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(w);
    }

    /// The probe cache of this connection.
    pub fn probe_cache(&self) -> ProbeCache {
        ProbeCache::new(inventory::cache_dir(&self.dirs.cache))
    }

    fn stamp_context(&self) -> (StampContext, qemu::ProbeOptions) {
        let kvm = accel::kvm_status(&self.opts.kvm_device).usable();
        let ctx = StampContext {
            kvm_usable: kvm,
            hvf_usable: accel::hvf_supported(),
            self_stamp: cache::self_stamp(),
        };
        let probe = qemu::ProbeOptions {
            timeout: self.opts.probe_timeout,
            kvm,
            record: None,
        };
        (ctx, probe)
    }

    /// Every installed emulator, from the cache or probed now in parallel, as much of each
    /// as `view` keeps. Emulators that fail are left out with a warning (see
    /// [`Connect::take_warnings`]).
    fn inventory<S>(&self, view: (&str, &dyn Fn(&QemuCaps) -> S)) -> Inventory<S>
    where
        S: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let paths = emulators::find_in(&self.opts.emulator_dirs);
        let inv = self.probe_paths(&paths, view);
        self.warn(inv.warnings.iter().cloned());
        inv
    }

    /// `paths` probed (or read from the probe cache) in parallel, seen through `view`.
    fn probe_paths<S>(
        &self,
        paths: &[PathBuf],
        view: (&str, &dyn Fn(&QemuCaps) -> S),
    ) -> Inventory<S>
    where
        S: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let (ctx, probe_opts) = self.stamp_context();
        inventory::collect(
            paths,
            Some(&self.probe_cache()),
            &ctx,
            // The probe bounds itself; this outer bound is a backstop that also covers
            // killing and reaping a stuck QEMU.
            self.opts.probe_timeout + Duration::from_secs(2),
            |p| {
                let o = probe_opts.clone();
                async move { qemu::probe_binary(&p, &o).await }
            },
            view,
        )
    }

    /// The capabilities document's emulator for `arch` when it is the binary named
    /// `qemu-system-TARGET`, found by probing that one binary only. Probing every installed
    /// QEMU costs seconds on a cold cache (a new embed root, a QEMU upgrade), and a start
    /// needs just one. The name only picks what to ask first: the binary is chosen only if
    /// it says (query-target) that it serves the arch, which is the choice
    /// [`qemu::emulator_for`] makes over all emulators too, since it prefers that name.
    fn named_emulator_for(&self, arch: &str) -> Option<PathBuf> {
        let host = qemu::host_arch();
        if host == "aarch64" && arch == "armv7l" {
            // Served through qemu-system-aarch64 on such hosts: the full rules decide.
            return None;
        }
        let plain = format!("qemu-system-{}", qemu::arch_to_qemu(arch));
        let path = emulators::find_in(&self.opts.emulator_dirs)
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| *n == *plain))?;
        let inv = self.probe_paths(
            std::slice::from_ref(&path),
            ("guest", &QemuCaps::guest_view),
        );
        let caps: Vec<QemuCaps> = inv.emulators.into_iter().map(|(_, c)| c).collect();
        qemu::emulator_for(&caps, host, arch)
            .filter(|c| Path::new(&c.emulator).file_name() == path.file_name())
            .map(|c| PathBuf::from(&c.emulator))
    }

    /// Every installed emulator's full caps (machines, CPU models, flags, ...).
    pub fn emulators(&self) -> Inventory<QemuCaps> {
        self.inventory((inventory::FULL, &QemuCaps::clone))
    }

    /// Every installed emulator, with what the capabilities document needs of it
    /// ([`QemuCaps::guest_view`]): cheap to load from the cache.
    pub fn emulator_summaries(&self) -> Inventory<QemuCaps> {
        self.inventory(("guest", &QemuCaps::guest_view))
    }

    /// Whether this connection may run KVM guests (its KVM device is usable).
    pub fn kvm_usable(&self) -> bool {
        accel::kvm_status(&self.opts.kvm_device).usable()
    }

    /// Full caps of the emulator a domain runs on: its `<emulator>`, else the first installed
    /// emulator serving its architecture (the host's when it names none).
    pub fn emulator_caps_for(
        &self,
        def: &crate::domain::DomainDef,
    ) -> Result<QemuCaps, DriverError> {
        let path = match &def.devices.emulator {
            Some(e) => PathBuf::from(e),
            None => {
                let arch = def
                    .os
                    .os_type
                    .arch
                    .clone()
                    .unwrap_or_else(|| qemu::host_arch().to_string());
                match self.named_emulator_for(&arch) {
                    Some(p) => p,
                    None => {
                        let inv = self.emulator_summaries();
                        let caps: Vec<QemuCaps> =
                            inv.emulators.into_iter().map(|(_, c)| c).collect();
                        // The capabilities document's choice, so that what `virsh
                        // capabilities` lists for an arch is what its domains run on.
                        match qemu::emulator_for(&caps, qemu::host_arch(), &arch) {
                            Some(c) => PathBuf::from(&c.emulator),
                            None => return Err(no_emulator(&arch)),
                        }
                    }
                }
            }
        };
        if !path.exists() {
            return Err(DriverError::System {
                msg: format!("Cannot check QEMU binary {}", path.display()),
                // An OS error, so strerror words it as libvirt does.
                err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
            });
        }
        let mut inv = self.probe_paths(
            std::slice::from_ref(&path),
            (inventory::FULL, &QemuCaps::clone),
        );
        match inv.emulators.pop() {
            Some((_, caps)) => Ok(caps),
            None => Err(DriverError::Internal(format!(
                "Failed to probe QEMU binary {}: {}",
                path.display(),
                inv.warnings.join("; ")
            ))),
        }
    }

    /// The QEMU command this host would run for domain XML `xml` (`virsh domxml-to-native
    /// qemu-argv`): prepared with the caps of its emulator, as a domain with id -1.
    pub fn domain_xml_to_native(
        &self,
        xml: &str,
    ) -> Result<crate::xml2argv::QemuCommand, DriverError> {
        Ok(self.domain_xml_to_native_with_def(xml)?.1)
    }

    /// [`Connect::domain_xml_to_native`] with the prepared definition the command was built
    /// from (for `--explain`).
    pub fn domain_xml_to_native_with_def(
        &self,
        xml: &str,
    ) -> Result<(crate::domain::DomainDef, crate::xml2argv::QemuCommand), DriverError> {
        let def = crate::domain::parse_unprepared(xml)?;
        let (mut def, caps) = self.prepare_domain(def, prepare::Purpose::Native)?;
        crate::domain::prepare::assign_aliases(&mut def);
        self.translate_volume_disks(&mut def)?;
        let mut ctx = self.pretend_launch_context(&def);
        // Opened as a start opens them, closed when the command is built.
        let _passed = self.open_passed_fds(&def, &mut ctx)?;
        // As libvirt's: a throwaway master key, so the secrets print as a start would pass them.
        ctx.secrets = Some(
            self.secret_context(secret::random_bytes::<32>()?, secret::random_bytes::<16>()?)?,
        );
        let mut cmd = crate::xml2argv::build(&def, &caps, &ctx)?;
        self.apply_qemu_env(&def, &mut cmd.env)?;
        Ok((def, cmd))
    }

    /// The private dir (QEMU's HOME, the master key) of domain `name` started as `id`:
    /// libvirt's `domain-<id>-<name truncated to 20 characters>`.
    pub fn lib_dir_for(&self, name: &str, id: i32) -> PathBuf {
        lib_dir_of(&self.dirs.lib, name, id)
    }

    /// Apply this connection's QEMU environment policy to `env`, the environment xml2argv built
    /// for `def`: refuse a domain's `<qemu:env>` when the connection forbids it, then set the
    /// connection's own variables, which replace same-named ones.
    pub fn apply_qemu_env(
        &self,
        def: &crate::domain::DomainDef,
        env: &mut Vec<(String, String)>,
    ) -> Result<(), DriverError> {
        if !self.opts.allow_domain_env
            && let Some(e) = def.qemu_commandline.as_ref().and_then(|c| c.env.first())
        {
            return Err(DriverError::OperationInvalid(format!(
                "domain '{}' sets QEMU's environment (<qemu:env name='{}'/>), which this connection forbids",
                def.name, e.name
            )));
        }
        for (k, v) in &self.opts.qemu_env {
            match env.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        Ok(())
    }

    /// The parts of the capabilities document, for callers that want data rather than XML.
    pub fn capabilities_data(&self) -> Result<Capabilities, DriverError> {
        let host = HostCaps::probe(&self.opts.host_root)?;
        let inv = self.emulator_summaries();
        let mut caps = Capabilities {
            host,
            emulators: inv.emulators.into_iter().map(|(_, c)| c).collect(),
            kvm_usable: accel::kvm_status(&self.opts.kvm_device).usable(),
            hvf_usable: accel::hvf_supported(),
        };
        caps.settle_host_cpu_model();
        Ok(caps)
    }

    /// libvirt's capabilities XML for this host (`virsh capabilities`).
    pub fn capabilities(&self) -> Result<String, DriverError> {
        Ok(self.capabilities_data()?.to_xml())
    }
}

/// libvirt's error-free answer to "nothing runs this arch": what to install, by name.
fn no_emulator(arch: &str) -> DriverError {
    let target = qemu::arch_to_qemu(arch);
    DriverError::Unsupported(format!(
        "no emulator found for arch '{arch}': install qemu-system-{target} (Debian package {})",
        debian_package(target)
    ))
}

/// The Debian package that ships `qemu-system-TARGET`.
fn debian_package(target: &str) -> &'static str {
    match target {
        "x86_64" | "i386" => "qemu-system-x86",
        "aarch64" | "arm" => "qemu-system-arm",
        "ppc" | "ppc64" | "ppc64le" => "qemu-system-ppc",
        "mips" | "mipsel" | "mips64" | "mips64el" => "qemu-system-mips",
        "sparc" | "sparc64" => "qemu-system-sparc",
        _ => "qemu-system-misc",
    }
}
