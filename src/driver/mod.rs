//! Connections and guests: URIs, state and config dirs, processes. The only layer with side
//! effects besides probing.

pub mod config;
pub mod dirs;
pub mod domain;
pub mod domcaps;
pub mod lock;
pub mod process;
pub mod status;
pub mod uri;

use std::path::PathBuf;
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
    /// libvirt's VIR_ERR_OPERATION_FAILED.
    #[error("operation failed: {0}")]
    OperationFailed(String),
    /// libvirt's VIR_ERR_OPERATION_INVALID.
    #[error("Requested operation is not valid: {0}")]
    OperationInvalid(String),
    /// libvirt's VIR_ERR_INVALID_ARG.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// libvirt's VIR_ERR_OPERATION_TIMEOUT.
    #[error("Timed out during operation: {0}")]
    Timeout(String),
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
    #[error("{msg}: {}", config::strerror(source))]
    System { msg: String, source: std::io::Error },
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
        S: serde::Serialize + serde::de::DeserializeOwned,
    {
        let (ctx, probe_opts) = self.stamp_context();
        let paths = emulators::find_in(&self.opts.emulator_dirs);
        let inv = inventory::collect(
            &paths,
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
        );
        self.warn(inv.warnings.iter().cloned());
        inv
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
                let target = qemu::arch_to_qemu(&arch).to_string();
                let inv = self.emulator_summaries();
                let found = inv
                    .emulators
                    .iter()
                    .find(|(_, c)| c.arch == arch)
                    .or_else(|| {
                        inv.emulators
                            .iter()
                            .find(|(_, c)| qemu::arch_to_qemu(&c.arch) == target)
                    });
                match found {
                    Some((p, _)) => p.clone(),
                    None => {
                        return Err(DriverError::Unsupported(format!(
                            "no emulator found for arch '{arch}': install qemu-system-{target} (Debian package {})",
                            debian_package(&target)
                        )));
                    }
                }
            }
        };
        if !path.exists() {
            return Err(DriverError::System {
                msg: format!("Cannot check QEMU binary {}", path.display()),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let (ctx, probe_opts) = self.stamp_context();
        let mut inv = inventory::collect(
            std::slice::from_ref(&path),
            Some(&self.probe_cache()),
            &ctx,
            self.opts.probe_timeout + Duration::from_secs(2),
            |p| {
                let o = probe_opts.clone();
                async move { qemu::probe_binary(&p, &o).await }
            },
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
        let def = crate::domain::parse(xml)?;
        let caps = self.emulator_caps_for(&def)?;
        let opts = crate::domain::PrepareOptions {
            host_arch: qemu::host_arch().to_string(),
            emulator: None,
            canonicalize_machine: false,
            audio: Default::default(),
        };
        let mut def = crate::domain::prepare(def, &caps, &opts)?;
        crate::domain::prepare::assign_aliases(&mut def);
        let ctx = self.launch_context(&def, -1);
        Ok(crate::xml2argv::build(&def, &caps, &ctx)?)
    }

    /// What xml2argv needs from this connection to start domain `def` as id `id`.
    pub fn launch_context(
        &self,
        def: &crate::domain::DomainDef,
        id: i32,
    ) -> crate::xml2argv::LaunchContext {
        let mut ctx = crate::xml2argv::LaunchContext::libvirt_test_harness(def);
        let short: String = def.name.chars().take(20).collect();
        ctx.lib_dir = self
            .dirs
            .lib
            .join(format!("domain-{id}-{short}"))
            .display()
            .to_string();
        ctx.domain_id = id;
        ctx.monitor = crate::xml2argv::MonitorSource::Fd(3);
        // Real sockets and files: QEMU binds and opens them itself by path.
        ctx.bind_socket_fd = None;
        ctx.file_chardev_fd = None;
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        ctx.path_env = env("PATH", "/usr/local/bin:/usr/bin:/bin");
        ctx.user = env("USER", "root");
        ctx.logname = env("LOGNAME", "root");
        ctx.runtime_dir = self.dirs.run.display().to_string();
        ctx.nvram_dir = self.dirs.lib.join("nvram").display().to_string();
        // No secret store yet: the harness's fixed key and values must never reach a guest.
        ctx.secrets = None;
        ctx.tpm_passthrough_fds = None;
        ctx.tpm_emulator_socket = None;
        ctx
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

/// The Debian package that ships `qemu-system-TARGET`.
fn debian_package(target: &str) -> &'static str {
    match target {
        "x86_64" | "i386" => "qemu-system-x86",
        "aarch64" | "arm" => "qemu-system-arm",
        "ppc" | "ppc64" => "qemu-system-ppc",
        "mips" | "mipsel" | "mips64" | "mips64el" => "qemu-system-mips",
        "sparc" | "sparc64" => "qemu-system-sparc",
        _ => "qemu-system-misc",
    }
}
