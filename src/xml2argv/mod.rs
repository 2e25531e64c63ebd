//! Domain + capabilities + launch context → QEMU command line. Pure functions, no I/O.
//!
//! [`build`] expects a *prepared* definition: post-parse defaults applied and device addresses
//! assigned (libvirt's `qemuxml2xmloutdata` documents are such definitions). It walks the
//! sections in the order libvirt emits them (CONFORMANCE §2.6) and renders values through the
//! builders of [`opts`], so user text in key=value options is always comma-escaped.
//! [`QemuCommand::to_args_file`] renders the result the way libvirt's `.args` test files are
//! written.

mod checks;
pub(crate) mod devices;

pub use devices::launch_security::{SEV_DH_CERT_FILE, SEV_SESSION_FILE};
pub mod explain;
mod fsdev;
pub mod graphics_ports;
pub mod helper_sockets;
pub mod opts;
pub mod render;
mod rng;
pub mod secrets;
mod socketnet;
mod storage;
mod tpm;

pub use crate::capabilities::host::HugetlbfsMount;
use crate::capabilities::qemu::{Accel, QemuCaps};
use crate::domain::{Address, DomainDef};

pub use devices::net::uses_vhost_net;
pub use devices::props;
pub use opts::{JsonOpts, KvOpts, escape_commas};
pub use secrets::SecretContext;

/// Errors of the command-line layer. The text is libvirt's message, prefix included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Xml2ArgvError {
    /// `unsupported configuration: ...`
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// `internal error: ...`
    #[error("internal error: {0}")]
    Internal(String),
    /// `XML error: ...`
    #[error("XML error: {0}")]
    Xml(String),
    /// A message libvirt prints without a prefix.
    #[error("{0}")]
    Other(String),
}

/// How the QMP monitor reaches QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MonitorSource {
    /// A listening socket passed as an inherited fd (libvirt's test harness uses 1729).
    Fd(i32),
    /// A UNIX socket path QEMU creates and listens on.
    Path(String),
}

/// Host-side settings libvirt reads from `qemu.conf`; the ones that change the command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QemuConf {
    pub dump_guest_core: bool,
    pub vnc_tls: bool,
    pub vnc_tls_x509_verify: bool,
    pub vnc_tls_x509_secret_uuid: Option<String>,
    pub vnc_sasl: bool,
    pub vnc_auto_unix_socket: bool,
    pub vnc_allow_host_audio: bool,
    pub nogfx_allow_host_audio: bool,
    pub spice_sasl: bool,
    pub spice_auto_unix_socket: bool,
    pub spice_tls: bool,
    pub spice_password: Option<String>,
    pub sasl_conf_dir: Option<String>,
    pub chardev_tls: bool,
    pub chardev_tls_x509_verify: bool,
    pub chardev_tls_x509_secret_uuid: Option<String>,
    pub audio_driver: Option<String>,
    pub sdl_audio_driver: Option<String>,
    pub vnc_tls_dir: String,
    pub spice_tls_dir: String,
    pub chardev_tls_dir: String,
    pub nbd_tls_dir: String,
    pub nbd_tls_x509_verify: bool,
    pub nbd_tls_x509_secret_uuid: Option<String>,
}

/// What the launch needs besides the definition and the capabilities: where the domain's
/// private files live, which fds were prepared, and the environment policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchContext {
    /// Per-domain private directory (`HOME`, `master-key.aes`, sockets).
    pub lib_dir: String,
    /// Domain id used in generated names (`-1` in libvirt's tests).
    pub domain_id: i32,
    pub monitor: MonitorSource,
    /// fd standing in for every UNIX chardev libvirt binds itself (harness: 1729).
    pub bind_socket_fd: Option<i32>,
    /// fd passed for file chardev backends (harness: 1750), and for their logs (1751).
    pub file_chardev_fd: Option<i32>,
    /// First tap fd (harness: 3) and first vhost-net fd (harness: 44).
    pub tap_fd_base: i32,
    pub vhost_fd_base: i32,
    /// Whether `/dev/vhost-net` can be opened (harness: yes, libvirt's tests mock it): a
    /// virtio interface on a tap of a KVM guest then gets a vhost fd.
    pub vhost_net: bool,
    /// A `/dev/vhost-scsi` fd opened by the caller for a vhost-scsi hostdev (harness: 3);
    /// without it QEMU opens the device itself.
    pub vhost_scsi_fd: Option<i32>,
    /// The SCSI generic node every host SCSI device resolves to (harness: `/dev/sg0`, as
    /// libvirt's test mock answers); without it a local SCSI hostdev is refused.
    pub scsi_generic_dev: Option<String>,
    /// `PATH`, `USER` and `LOGNAME` passed on to QEMU; each only when set (libvirt passes
    /// these through from its own environment, and leaves out what it does not have).
    pub path_env: Option<String>,
    pub user: Option<String>,
    pub logname: Option<String>,
    /// Runtime dir for user sockets (passt, dbus).
    pub runtime_dir: String,
    /// fds of a passthrough TPM's device and cancel file, opened by the caller (harness:
    /// 1730, 1731); without them QEMU opens the paths itself.
    pub tpm_passthrough_fds: Option<(i32, i32)>,
    /// The swtpm socket of an emulated TPM (harness: `/dev/test`; default: in the runtime dir).
    pub tpm_emulator_socket: Option<String>,
    /// Where varstores created from an NVRAM template live.
    pub nvram_dir: String,
    /// libvirt's `memory_backing_dir`: file-backed guest RAM goes to
    /// `DIR/<short name>/<backend id>` (harness: `/var/lib/libvirt/qemu/ram`; a real start:
    /// the connection's `LIB/ram`, the per-start dir made by the start, removed at the end).
    pub memory_backing_dir: String,
    pub conf: QemuConf,
    /// Master key and secret values; without them a definition that needs a secret fails.
    pub secrets: Option<SecretContext>,
    /// libvirt's PRETEND start (`domxml-to-native` and its test harness): nothing on the host
    /// is allocated, placeholders stand in. Automatic graphics ports become 5900 (VNC) and
    /// 5901/5902 (SPICE), an emulated TPM's chardev is `null`, an auto vsock CID is 0 and its
    /// vhost fd -1. A real start is not pretend: it writes the ports it allocated into the
    /// definition before the build.
    pub pretend: bool,
    /// Where path-less UNIX channels bind: `DIR/domain-<short name>/<target name>`
    /// (libvirt's `channel_target_dir`, `/var/lib/libvirt/qemu/channel/target`).
    pub channel_target_dir: String,
    /// A vhost-vsock fd opened by the caller (harness: 6789); without it QEMU opens
    /// `/dev/vhost-vsock` itself (pretend: -1).
    pub vsock_fd: Option<i32>,
    /// The opened `/dev/vhost-vdpa-*` fds of the vDPA interfaces, passed to QEMU in fd sets
    /// (harness: 1732 for each, libvirt's mocked open); without them a vDPA interface is
    /// refused.
    pub vdpa_fds: Option<VdpaFds>,
    /// The CID an automatic `<cid auto='yes'/>` gets (harness: 42; pretend: 0).
    pub vsock_auto_cid: Option<u32>,
    /// The host's DRM render node for OpenGL displays that name none (libvirt:
    /// virHostGetDRMRenderNode, the first `/dev/dri/renderD*`; harness: `/dev/dri/foo`).
    pub render_node: Option<String>,
    /// The generation id an empty `<genid/>` gets (harness: libvirt's counting random
    /// source; a start: a fresh random UUID).
    pub generated_genid: String,
    /// The host's hugetlbfs mounts, in mount order (libvirt: the driver config's
    /// `hugetlbfs` list). Huge page backed memory is a file under the mount of its page size;
    /// without one the start fails with libvirt's message.
    pub hugetlbfs: Vec<HugetlbfsMount>,
    /// The host's NUMA nodes (libvirt: virNumaNodeIsAvailable). Memory bound to a node not
    /// listed here is refused with libvirt's `NUMA node N is unavailable`.
    pub host_numa_nodes: Vec<u32>,
    /// File descriptor groups the caller associated with the domain, for disk sources with
    /// `fdgroup='NAME'` (libvirt: virDomainFDAssociate). A start passes none yet, so such a
    /// disk is refused; the harness has libvirt's test fds.
    pub fd_groups: Vec<FdGroup>,
    /// The guest's RAM in a named file instead of anonymous memory: a host-side choice of
    /// the caller (fleet templates and their clones), not part of the domain XML. Only a
    /// guest with plain memory (no NUMA cells, hugepages or `<memoryBacking>` source or
    /// access mode) can take one.
    pub ram_file: Option<RamFile>,
}

/// Where the opened vDPA devices are, in the order of the vDPA interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VdpaFds {
    /// Every device at this one number (libvirt's test mock of qemuVDPAConnect).
    Same(i32),
    /// The Nth vDPA interface's device at this number plus N (a start opens each).
    From(i32),
}

/// Open files handed to QEMU for a disk source, through an `-add-fd` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdGroup {
    pub name: String,
    /// The fd numbers QEMU inherits.
    pub fds: Vec<i32>,
    /// The caller vouched that the files are open for writing.
    pub writable: bool,
}

/// Guest RAM backed by file `path` (QEMU's `memory-backend-file`). `shared` maps it
/// `MAP_SHARED`, so the guest's writes reach the file (a fleet template's guest, whose RAM then
/// needs no copy in its migration stream); otherwise `MAP_PRIVATE`, copy-on-write over the
/// file's pages (a clone, which starts from the template's RAM and whose writes stay its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamFile {
    pub path: String,
    pub shared: bool,
}

impl LaunchContext {
    /// libvirt's short domain name: `<id>-<name truncated to 20 characters>`.
    pub fn short_name(&self, def: &DomainDef) -> String {
        let n: String = def.name.chars().take(20).collect();
        format!("{}-{}", self.domain_id, n)
    }
}

/// A QEMU invocation: environment, binary and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    pub env: Vec<(String, String)>,
    pub binary: String,
    pub args: Vec<String>,
}

impl QemuCommand {
    /// libvirt's `.args` rendering, exactly (CONFORMANCE §2.1).
    pub fn to_args_file(&self) -> String {
        render::render(&self.env, &self.binary, &self.args)
    }

    /// One shell-quoted line, environment first, as `virsh domxml-to-native` prints it: ready
    /// to copy and paste.
    pub fn to_shell_line(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", render::shell_escape(v)))
            .collect();
        parts.push(render::shell_escape(&self.binary));
        parts.extend(self.args.iter().map(|a| render::shell_escape(a)));
        parts.join(" ")
    }

    /// The argv to exec: binary first.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.binary.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }
}

/// Build the QEMU command for a prepared definition.
pub fn build(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
) -> Result<QemuCommand, Xml2ArgvError> {
    checks::cpu_model(def, caps)?;
    let pretend_def;
    let def = if ctx.pretend && !def.devices.graphics.is_empty() {
        let mut d = def.clone();
        graphics_ports::pretend(&mut d, &ctx.conf);
        pretend_def = d;
        &pretend_def
    } else {
        def
    };
    let mut b = devices::Builder::new(def, caps, ctx);
    b.build_all()?;
    let lib = &ctx.lib_dir;
    // libvirt: virCommandAddEnvPassCommon, then qemuBuildCommandLine's HOME and XDG_*.
    let passed = |k: &str, v: &Option<String>| v.clone().map(|v| (k.to_string(), v));
    let mut env: Vec<(String, String)> = [
        Some(("LC_ALL".to_string(), "C".to_string())),
        passed("PATH", &ctx.path_env),
        Some(("HOME".to_string(), lib.clone())),
        passed("USER", &ctx.user),
        passed("LOGNAME", &ctx.logname),
        Some(("XDG_DATA_HOME".to_string(), format!("{lib}/.local/share"))),
        Some(("XDG_CACHE_HOME".to_string(), format!("{lib}/.cache"))),
        Some(("XDG_CONFIG_HOME".to_string(), format!("{lib}/.config"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    // SASL reads its configuration from the directory qemu.conf names.
    let sasl = def.devices.graphics.iter().any(|g| {
        (g.gtype == "vnc" && ctx.conf.vnc_sasl) || (g.gtype == "spice" && ctx.conf.spice_sasl)
    });
    if sasl && let Some(dir) = &ctx.conf.sasl_conf_dir {
        env.push(("SASL_CONF_PATH".to_string(), dir.clone()));
    }
    env.append(&mut b.extra_env);
    let binary = def
        .devices
        .emulator
        .clone()
        .unwrap_or_else(|| caps.emulator.clone());
    Ok(QemuCommand {
        env,
        binary,
        args: b.args,
    })
}

/// The accelerator a domain type asks for.
pub(crate) fn accel_of(def: &DomainDef) -> Accel {
    match def.virt_type {
        crate::domain::VirtType::Kvm => Accel::Kvm,
        crate::domain::VirtType::Hvf => Accel::Hvf,
        _ => Accel::Tcg,
    }
}

/// PCI address of a device, if it has one.
pub(crate) fn pci_addr(a: &Option<Address>) -> Option<(u32, u32, u32, Option<bool>)> {
    match a {
        Some(Address::Pci {
            bus,
            slot,
            function,
            multifunction,
            ..
        }) => Some((
            *bus,
            *slot,
            *function,
            multifunction.as_deref().map(|m| m == "on"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::devices::{Chardev, ChrSource, ChrTarget};
    use proptest::prelude::*;

    fn caps() -> QemuCaps {
        QemuCaps {
            emulator: "/usr/bin/qemu-system-x86_64".into(),
            version: 8_000_000,
            package: None,
            arch: "x86_64".into(),
            kvm: false,
            accels: Vec::new(),
            commands: Default::default(),
            qom_types: Default::default(),
            flags: Default::default(),
            gic: Vec::new(),
            sev: None,
            sgx: None,
            hyperv: None,
        }
    }

    /// The value of option `opt` whose first key=value part starts with `head`.
    fn find<'a>(args: &'a [String], opt: &str, head: &str) -> Option<&'a String> {
        args.windows(2)
            .find(|w| w[0] == opt && w[1].starts_with(head))
            .map(|w| &w[1])
    }

    /// Paravirtual timers come first in `-cpu`, in the domain's order; `<kvm>` features follow
    /// the Hyper-V ones in libvirt's fixed order, and the PMU switch comes last.
    #[test]
    fn cpu_paravirt_feature_order() {
        let mut def = crate::domain::parse(
            "<domain type='qemu'><name>t</name><memory>65536</memory><vcpu>1</vcpu>\
             <os><type machine='pc'>hvm</type></os>\
             <features><pvspinlock state='off'/><hyperv><vapic state='on'/></hyperv>\
             <kvm><hint-dedicated state='on'/><hidden state='on'/></kvm><pmu state='off'/>\
             </features><cpu mode='custom'><model>qemu64</model></cpu>\
             <clock offset='utc'><timer name='kvmclock' present='yes'/>\
             <timer name='hypervclock' present='yes'/></clock></domain>",
        )
        .expect("parse");
        crate::domain::prepare::assign_aliases(&mut def);
        let ctx = crate::conformance::harness::harness_context(&def);
        let cmd = build(&def, &caps(), &ctx).expect("build");
        let cpu = find(&cmd.args, "-cpu", "qemu64").expect("-cpu");
        assert!(
            cpu.ends_with(
                "kvmclock=on,hv-time=on,kvm-pv-unhalt=off,hv-vapic=on,kvm=off,\
                 kvm-hint-dedicated=on,pmu=off"
            ),
            "{cpu}"
        );
    }

    proptest! {
        /// User-controlled names and paths never add options to key=value arguments.
        #[test]
        fn user_text_stays_in_its_value(name in "[^\\x00]{1,40}", path in "[^\\x00]{0,60}") {
            let mut def = DomainDef {
                virt_type: crate::domain::VirtType::Qemu,
                name: name.clone(),
                ..Default::default()
            };
            def.os.os_type.machine = Some("pc".into());
            def.memory.kib = 65536;
            def.vcpu.count = 1;
            def.devices.serials.push(Chardev {
                kind: "serial".into(),
                stype: Some("unix".into()),
                sources: vec![ChrSource {
                    mode: Some("connect".into()),
                    path: Some(path.clone()),
                    ..Default::default()
                }],
                target: Some(ChrTarget {
                    ttype: Some("isa-serial".into()),
                    ..Default::default()
                }),
                ..Default::default()
            });
            crate::domain::prepare::assign_aliases(&mut def);
            let ctx = crate::conformance::harness::harness_context(&def);
            let cmd = build(&def, &caps(), &ctx).expect("build");
            let n = find(&cmd.args, "-name", "guest=").expect("-name");
            let parts = opts::parse_kv(n);
            prop_assert_eq!(parts.len(), 2);
            prop_assert_eq!(&parts[0], &format!("guest={name}"));
            prop_assert_eq!(&parts[1], "debug-threads=on");
            let c = find(&cmd.args, "-chardev", "socket,id=charserial0").expect("-chardev");
            let parts = opts::parse_kv(c);
            prop_assert_eq!(parts.len(), 3);
            prop_assert_eq!(&parts[2], &format!("path={path}"));
            // And the rendered file quotes it back to the same words.
            let text = cmd.to_args_file();
            prop_assert!(text.ends_with("-msg timestamp=on\n"));
        }
    }
}
