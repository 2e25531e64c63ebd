//! The launch context of a real host: what xml2argv needs to know about this machine and this
//! connection to build a domain's QEMU command line. Built from scratch, never from libvirt's
//! test harness (that one lives in `conformance::harness`).
//!
//! Environment. libvirtd passes QEMU `PATH`, `USER` and `LOGNAME` from its own environment, and
//! only those it has (a daemon started by systemd has `PATH` and no `USER`/`LOGNAME`). vsh is
//! no daemon: QEMU runs as the caller, so it passes the caller's own `PATH`, `USER` and
//! `LOGNAME`, each only when set, exactly as libvirtd does with its environment. Nothing is
//! invented: a caller without `USER` starts a QEMU without `USER`.

use std::path::PathBuf;

use super::Connect;
use crate::domain::DomainDef;
use crate::xml2argv::{LaunchContext, MonitorSource, QemuConf};

/// The fd the start path hands QEMU its monitor on (see `domain::start_def`).
const MONITOR_FD: i32 = 3;

/// libvirt's default `default_tls_x509_cert_dir`, which every per-service directory inherits.
pub const DEFAULT_TLS_X509_DIR: &str = "/etc/pki/qemu";

/// `qemu.conf` as libvirt reads it when the file sets nothing (libvirt:
/// virQEMUDriverConfigNew): no TLS for VNC, SPICE, chardevs; no SASL; no default SPICE
/// password; every x509 directory `/etc/pki/qemu`, verified when TLS is turned on.
pub fn qemu_conf_defaults() -> QemuConf {
    QemuConf {
        vnc_tls: false,
        vnc_tls_x509_verify: true,
        spice_tls: false,
        spice_password: None,
        chardev_tls: false,
        chardev_tls_x509_verify: true,
        nbd_tls_x509_verify: true,
        vnc_tls_dir: DEFAULT_TLS_X509_DIR.into(),
        spice_tls_dir: DEFAULT_TLS_X509_DIR.into(),
        chardev_tls_dir: DEFAULT_TLS_X509_DIR.into(),
        nbd_tls_dir: DEFAULT_TLS_X509_DIR.into(),
        ..QemuConf::default()
    }
}

/// The host's first DRM render node (`/dev/dri/renderD128`, ...), as libvirt picks one.
fn first_render_node() -> Option<String> {
    let mut nodes: Vec<String> = std::fs::read_dir("/dev/dri")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("renderD"))
        .collect();
    nodes.sort();
    nodes.first().map(|n| format!("/dev/dri/{n}"))
}

/// The environment variables QEMU inherits from us, when we have them.
fn passed(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Connect {
    /// What xml2argv needs from this connection to start domain `def` as id `id` (a real
    /// start: nothing pretend; secrets and graphics ports are filled in by the start itself).
    pub fn launch_context(&self, def: &DomainDef, id: i32) -> LaunchContext {
        LaunchContext {
            lib_dir: self.lib_dir_for(&def.name, id).display().to_string(),
            domain_id: id,
            monitor: MonitorSource::Fd(MONITOR_FD),
            // Real sockets and files: QEMU binds and opens them itself by path.
            bind_socket_fd: None,
            file_chardev_fd: None,
            // The monitor hands QEMU its taps and vhost-net fds at these numbers (see
            // `driver::tap`), after the monitor's own fd.
            tap_fd_base: MONITOR_FD + 1,
            vhost_fd_base: MONITOR_FD + 41,
            vhost_net: super::tap::vhost_net_usable(),
            vhost_scsi_fd: None,
            scsi_generic_dev: None,
            path_env: passed("PATH"),
            user: passed("USER"),
            logname: passed("LOGNAME"),
            runtime_dir: self.dirs.run.display().to_string(),
            nvram_dir: self.nvram_dir().display().to_string(),
            memory_backing_dir: self.dirs.lib.join("ram").display().to_string(),
            // QEMU opens a passthrough TPM's paths itself; an emulated TPM's swtpm socket
            // lives in the runtime dir.
            tpm_passthrough_fds: None,
            tpm_emulator_socket: None,
            conf: qemu_conf_defaults(),
            // A start fills in its own master key and the store's values (see
            // `secret::Connect::secret_context`).
            secrets: None,
            pretend: false,
            channel_target_dir: self.channel_target_dir().display().to_string(),
            // QEMU opens /dev/vhost-vsock itself; an automatic CID is unique among this
            // connection's running domains (ids are), and above the reserved 0-2.
            vsock_fd: None,
            vsock_auto_cid: Some(id.max(0) as u32 + 2),
            // A start opens the vDPA devices and numbers them (see `driver::fdpass`).
            vdpa_fds: None,
            render_node: first_render_node(),
            generated_genid: uuid::Uuid::new_v4().to_string(),
            hugetlbfs: crate::capabilities::host::hugetlbfs_mounts(&self.opts.host_root),
            host_numa_nodes: crate::capabilities::host::host_numa_nodes(&self.opts.host_root),
            // A start fills in the groups associated through this connection (see
            // `driver::fdpass`).
            fd_groups: Vec::new(),
            // Set by the start itself when its caller asks for one (fleet templates).
            ram_file: None,
        }
    }

    /// The context of `domxml-to-native`: this host's context for a domain that is not
    /// started (id -1), in libvirt's PRETEND mode (placeholder ports, no TPM or vsock fds).
    pub fn pretend_launch_context(&self, def: &DomainDef) -> LaunchContext {
        LaunchContext {
            pretend: true,
            vsock_auto_cid: None,
            ..self.launch_context(def, -1)
        }
    }

    /// The helper processes of domain `def` for a start with context `ctx` (swtpm,
    /// virtiofsd, passt): their command lines and the TPM's socket.
    pub fn plan_helpers(
        &self,
        def: &DomainDef,
        ctx: &LaunchContext,
    ) -> Result<super::helpers::Plan, super::DriverError> {
        super::helpers::plan(
            def,
            &super::helpers::Where {
                lib: &self.dirs.lib,
                run: &self.dirs.run,
                log: &self.dirs.log,
                private: std::path::Path::new(&ctx.lib_dir),
                secrets: &self.secrets_dir(),
                short_name: ctx.short_name(def),
            },
        )
    }

    /// Where path-less UNIX channels bind (libvirt: `channel_target_dir`,
    /// `/var/lib/libvirt/qemu/channel/target`): under this connection's state dir.
    pub fn channel_target_dir(&self) -> PathBuf {
        self.dirs.lib.join("channel").join("target")
    }

    /// Create the channel directory of domain `def` started as `id`, where QEMU binds its
    /// path-less UNIX channels (QEMU creates sockets, not directories). libvirt makes it 0750
    /// for the qemu group; here QEMU runs as the caller, so it is private (0700) like every
    /// other dir of ours. The guest's monitor removes it when the guest ends.
    pub fn prepare_channel_dir(&self, def: &DomainDef, id: i32) -> Result<(), super::DriverError> {
        use std::os::unix::fs::DirBuilderExt;
        let made = |what: &str, dir: PathBuf| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|err| super::DriverError::System {
                    msg: format!("cannot create {what} directory '{}'", dir.display()),
                    err,
                })
        };
        made("channel", channel_dir_of(&self.dirs.lib, &def.name, id))?;
        // Where QEMU creates file-backed RAM (libvirt: qemuProcessBuildDestroyMemoryPaths).
        made("memory backing", ram_dir_of(&self.dirs.lib, &def.name, id))
    }
}

/// The channel directory of domain `name` started as `id`, under the state dir `lib`
/// (libvirt: `channel_target_dir/domain-ID-NAME`, the name cut to 20 characters).
pub fn channel_dir_of(lib: &std::path::Path, name: &str, id: i32) -> PathBuf {
    let short: String = name.chars().take(20).collect();
    lib.join("channel")
        .join("target")
        .join(format!("domain-{id}-{short}"))
}

/// The memory backing directory of domain `name` started as `id`, under the state dir `lib`
/// (libvirt: `memory_backing_dir/ID-NAME`, the name cut to 20 characters).
pub fn ram_dir_of(lib: &std::path::Path, name: &str, id: i32) -> PathBuf {
    let short: String = name.chars().take(20).collect();
    lib.join("ram").join(format!("{id}-{short}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_no_tls_and_no_password() {
        let c = qemu_conf_defaults();
        assert!(!c.spice_tls && !c.vnc_tls && !c.chardev_tls);
        assert!(c.spice_password.is_none());
        assert_eq!(c.spice_tls_dir, "/etc/pki/qemu");
        assert_eq!(c.vnc_tls_dir, "/etc/pki/qemu");
    }
}
