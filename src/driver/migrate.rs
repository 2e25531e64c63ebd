//! Migration to another connection on this host (libvirt: qemuMigrationSrcPerform and
//! qemuMigrationDstPrepare in one process, virDomainMigrate3 for the checks) and the
//! migration tunables (qemuDomainMigrateSetMaxSpeed, qemuDomainMigrateSetMaxDowntime,
//! qemuDomainMigrateSetCompressionCache, qemuDomainMigrateStartPostCopy).
//!
//! There is no daemon and no remote transport: the destination is another connection URI
//! that [`super::Connect::open`] accepts (another embed root, the session). The
//! destination starts QEMU for the same definition with `-incoming defer`, as `restore`
//! does, listening on a unix socket in its run dir; the source's monitor runs QMP `migrate`
//! to it as its job, so `domjobinfo` and `domjobabort` work meanwhile. Disks are shared:
//! both sides see the same paths.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::domain::{Domain, guest_err};
use super::monitor::proto::{MigrateParams, Reply, Request, StopReason};
use super::process::Incoming;
use super::{Connect, DriverError};
use crate::domain::{self, FormatFlags};

/// libvirt's QEMU_DOMAIN_MIG_BANDWIDTH_MAX on a 64-bit host (MiB/s): the default, which
/// means unlimited.
pub const MIG_BANDWIDTH_MAX: u64 = i64::MAX as u64 / (1024 * 1024);
/// The largest post-copy bandwidth libvirt accepts (MiB/s).
const MIG_BANDWIDTH_POSTCOPY_MAX: u64 = u64::MAX / 1024 / 1024;
const MIB: u64 = 1024 * 1024;

/// `virsh migrate`'s flags (libvirt's virDomainMigrateFlags this driver reads).
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    pub live: bool,
    pub offline: bool,
    pub p2p: bool,
    pub direct: bool,
    pub tunnelled: bool,
    /// Define the domain at the destination (VIR_MIGRATE_PERSIST_DEST).
    pub persistent: bool,
    pub undefine_source: bool,
    /// Leave the guest paused at the destination (VIR_MIGRATE_PAUSED).
    pub suspend: bool,
    pub copy_storage_all: bool,
    pub copy_storage_inc: bool,
    pub abort_on_error: bool,
    pub postcopy: bool,
    pub auto_converge: bool,
    pub compressed: bool,
    /// The name at the destination (`--dname`).
    pub dname: Option<String>,
    /// The domain XML for the destination (`--xml`).
    pub xml: Option<String>,
    /// The persistent XML defined at the destination (`--persistent-xml`).
    pub persistent_xml: Option<String>,
    /// `--migrateuri`: only a unix socket path fits a migration on one host.
    pub migrate_uri: Option<String>,
    /// `--bandwidth` (MiB/s) for this migration instead of `migrate-setspeed`'s.
    pub bandwidth: Option<u64>,
}

/// Where the guest's `migrate-setspeed` value is kept (libvirt keeps it in the domain's
/// private data, which lives as long as the daemon; here the run dir does). By UUID: a
/// domain defined later under the same name starts from the default, as in libvirt.
fn speed_path(dom: &Domain<'_>) -> PathBuf {
    dom.conn
        .dirs()
        .run
        .join(format!("{}.migspeed", dom.uuid().hyphenated()))
}

impl Domain<'_> {
    /// `virDomainMigrateSetMaxSpeed` (MiB/s); `postcopy` sets the post-copy phase's.
    pub fn migrate_set_max_speed(&self, bandwidth: u64, postcopy: bool) -> Result<(), DriverError> {
        let max = if postcopy {
            MIG_BANDWIDTH_POSTCOPY_MAX
        } else {
            MIG_BANDWIDTH_MAX
        };
        if bandwidth > max {
            return Err(DriverError::Overflow(format!(
                "bandwidth must be less than {}",
                max as u128 + 1
            )));
        }
        let active = self.is_active()?;
        if postcopy {
            if !active {
                return Err(not_running());
            }
            let bytes = bandwidth.saturating_mul(MIB);
            self.qmp_call(
                "migrate-set-parameters",
                Some(json!({ "max-postcopy-bandwidth": bytes })),
            )?;
            return Ok(());
        }
        if active {
            self.qmp_call(
                "migrate-set-parameters",
                Some(json!({ "max-bandwidth": bandwidth * MIB })),
            )?;
        }
        let path = speed_path(self);
        super::config::make_dir(&self.conn.dirs().run)?;
        super::config::write_atomic(&path, bandwidth.to_string().as_bytes())?;
        Ok(())
    }

    /// `virDomainMigrateGetMaxSpeed` (MiB/s): [`MIG_BANDWIDTH_MAX`] until set.
    pub fn migrate_max_speed(&self, postcopy: bool) -> Result<u64, DriverError> {
        if postcopy {
            if !self.is_active()? {
                return Err(not_running());
            }
            let p = self.qmp_call("query-migrate-parameters", None)?;
            return match p["max-postcopy-bandwidth"].as_u64() {
                Some(b) => Ok(b / MIB),
                None => Err(DriverError::OperationInvalid(
                    "querying maximum post-copy migration speed is not supported by QEMU binary"
                        .into(),
                )),
            };
        }
        // The domain must exist: an unknown one is refused before its value is read.
        self.is_active()?;
        Ok(std::fs::read_to_string(speed_path(self))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(MIG_BANDWIDTH_MAX))
    }

    /// `virDomainMigrateSetMaxDowntime` (milliseconds): QEMU's `downtime-limit`.
    pub fn migrate_set_max_downtime(&self, downtime_ms: u64) -> Result<(), DriverError> {
        self.require_active()?;
        self.qmp_call(
            "migrate-set-parameters",
            Some(json!({ "downtime-limit": downtime_ms })),
        )?;
        Ok(())
    }

    /// `virDomainMigrateGetMaxDowntime` (milliseconds).
    pub fn migrate_max_downtime(&self) -> Result<u64, DriverError> {
        self.require_active()?;
        let p = self.qmp_call("query-migrate-parameters", None)?;
        p["downtime-limit"].as_u64().ok_or_else(|| {
            DriverError::OperationInvalid(
                "Querying migration downtime is not supported by QEMU binary".into(),
            )
        })
    }

    /// Whether QEMU can compress with xbzrle (libvirt checks its migration capability).
    fn require_xbzrle(&self) -> Result<(), DriverError> {
        let caps = self.qmp_call("query-migrate-capabilities", None)?;
        let known = caps
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["capability"] == "xbzrle"));
        if !known {
            return Err(DriverError::OperationUnsupported(
                "Compressed migration is not supported by QEMU binary".into(),
            ));
        }
        Ok(())
    }

    /// `virDomainMigrateSetCompressionCache` (bytes): QEMU's `xbzrle-cache-size`.
    pub fn migrate_set_compression_cache(&self, size: u64) -> Result<(), DriverError> {
        self.require_active()?;
        self.require_xbzrle()?;
        self.qmp_call(
            "migrate-set-parameters",
            Some(json!({ "xbzrle-cache-size": size })),
        )?;
        Ok(())
    }

    /// `virDomainMigrateGetCompressionCache` (bytes).
    pub fn migrate_compression_cache(&self) -> Result<u64, DriverError> {
        self.require_active()?;
        self.require_xbzrle()?;
        let p = self.qmp_call("query-migrate-parameters", None)?;
        Ok(p["xbzrle-cache-size"].as_u64().unwrap_or(0))
    }

    /// `virDomainMigrateStartPostCopy`: the running migration goes on in post-copy.
    pub fn migrate_start_post_copy(&self) -> Result<(), DriverError> {
        let (mut g, _) = self.guest()?;
        g.call(&Request::MigratePostcopy).map_err(guest_err)?;
        Ok(())
    }

    fn require_active(&self) -> Result<(), DriverError> {
        if !self.is_active()? {
            return Err(not_running());
        }
        Ok(())
    }

    /// Migrate the domain to `dconn` (`virsh migrate`); the domain there. A live
    /// migration leaves the source `shut off (migrated)` and the guest running at the
    /// destination; when it fails or is aborted nothing is left at the destination and the
    /// source runs on.
    pub fn migrate<'d>(
        &self,
        dconn: &'d Connect,
        o: &MigrateOptions,
    ) -> Result<Domain<'d>, DriverError> {
        check_flags(o)?;
        if dconn.dirs().run == self.conn.dirs().run {
            // libvirt: qemuMigrationCookieXMLParse, which compares the hosts' UUIDs.
            return Err(DriverError::Internal(format!(
                "Attempt to migrate guest to the same host {}",
                dconn.uri()
            )));
        }
        let active = self.is_active()?;
        if !o.offline && !active {
            return Err(not_running());
        }
        let name = o.dname.clone().unwrap_or_else(|| self.name().to_string());
        if o.offline {
            return self.migrate_offline(dconn, o, &name);
        }
        if o.copy_storage_all || o.copy_storage_inc {
            return Err(DriverError::OperationUnsupported(
                "migration of non-shared storage is not supported: the destination is on this host and uses the same disks".into(),
            ));
        }
        let def = self.destination_def(o, &name)?;
        let socket = match &o.migrate_uri {
            Some(u) => match u.strip_prefix("unix:") {
                Some(p) => PathBuf::from(p),
                None => {
                    return Err(DriverError::ArgumentUnsupported(format!(
                        "migration URI '{u}' is not supported: only unix:PATH reaches a destination on this host"
                    )));
                }
            },
            None => dconn.dirs().run.join(format!("{name}.migrate")),
        };
        let _ = std::fs::remove_file(&socket);
        let params = MigrateParams {
            max_bandwidth: o
                .bandwidth
                .unwrap_or(self.migrate_max_speed(false)?)
                .min(MIG_BANDWIDTH_MAX)
                * MIB,
            postcopy: o.postcopy,
            auto_converge: o.auto_converge,
            compressed: o.compressed,
            offline_vcpus: !o.live,
        };
        let incoming = Incoming {
            path: socket.clone(),
            offset: 0,
            ignore_shared: false,
            bandwidth: None,
            listen: true,
            postcopy: o.postcopy,
        };
        let (mut g, _) = self.guest()?;
        // libvirt: a paused guest stays paused at the destination (doPeer2PeerMigrate3
        // adds VIR_MIGRATE_PAUSED).
        let paused = o.suspend || g.status().paused;
        let res = std::thread::scope(|s| {
            let dest = s.spawn(|| {
                dconn
                    .create_domain_def(def, paused, Some(incoming), None)
                    .map(|_| ())
            });
            let listening = wait_listening(&socket, &dest);
            let started = listening.is_ok();
            let out = listening.and_then(|()| {
                g.call(&Request::Migrate {
                    socket: socket.display().to_string(),
                    params,
                })
                .map_err(guest_err)
            });
            if out.is_err() {
                // The destination QEMU may still wait for a stream that never comes: a
                // connection that closes at once ends its wait, and the destination with it.
                let _ = std::os::unix::net::UnixStream::connect(&socket);
            }
            let dest = dest.join().unwrap_or_else(|_| {
                Err(DriverError::Internal(
                    "the destination's start panicked".into(),
                ))
            });
            (out, dest, started)
        });
        let _ = std::fs::remove_file(&socket);
        match res {
            (Err(_), Err(e), false) => return Err(e),
            (Err(e), _, _) => return Err(e),
            (Ok(_), Err(e), _) => {
                // libvirt's Confirm phase with the migration cancelled: the source resumes.
                let _ = self.resume();
                return Err(e);
            }
            (Ok(Reply::Ok { .. }), Ok(()), _) => {}
            (Ok(other), Ok(()), _) => {
                return Err(DriverError::Internal(format!(
                    "unexpected reply from the guest's monitor: {other:?}"
                )));
            }
        }
        drop(g);
        self.stop(StopReason::Migrated)?;
        let ddom = dconn.lookup_domain_by_name(&name)?;
        if o.persistent {
            let xml = match &o.persistent_xml {
                Some(x) => x.clone(),
                None => ddom.xml_desc(FormatFlags {
                    inactive: true,
                    secure: true,
                })?,
            };
            dconn.define_domain_xml(&xml)?;
        }
        if o.undefine_source && self.is_persistent()? {
            self.undefine()?;
        }
        Ok(ddom)
    }

    /// The definition the destination runs: the live one as libvirt migrates it
    /// (inactive, secrets kept), or `--xml`'s, which must keep the guest's ABI.
    fn destination_def(
        &self,
        o: &MigrateOptions,
        name: &str,
    ) -> Result<domain::DomainDef, DriverError> {
        let (g, _) = self.guest()?;
        let live = domain::parse(&g.status().xml)?;
        drop(g);
        let xml = live.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        });
        let mut def = domain::parse_unprepared(&xml)?;
        if let Some(x) = &o.xml {
            let new = domain::parse_unprepared(x)?;
            super::save_abi::check(&def, &new)?;
            def = new;
        }
        def.name = name.to_string();
        Ok(def)
    }

    /// `--offline`: the definition only (libvirt requires `--persistent`, checked first).
    fn migrate_offline<'d>(
        &self,
        dconn: &'d Connect,
        o: &MigrateOptions,
        name: &str,
    ) -> Result<Domain<'d>, DriverError> {
        let xml = match &o.persistent_xml {
            Some(x) => x.clone(),
            None => {
                let x = self.xml_desc(FormatFlags {
                    inactive: true,
                    secure: true,
                })?;
                let mut def = domain::parse_unprepared(&x)?;
                def.name = name.to_string();
                def.to_xml(FormatFlags {
                    inactive: true,
                    secure: true,
                })
            }
        };
        let ddom = dconn.define_domain_xml(&xml)?;
        let ddom = dconn.lookup_domain_by_name(ddom.name())?;
        if o.undefine_source && !self.is_active()? && self.is_persistent()? {
            self.undefine()?;
        }
        Ok(ddom)
    }
}

fn not_running() -> DriverError {
    DriverError::OperationInvalid("domain is not running".into())
}

/// libvirt's checks of the flags (virDomainMigrate3, qemuMigrationSrcBeginPhase).
fn check_flags(o: &MigrateOptions) -> Result<(), DriverError> {
    if o.copy_storage_all && o.copy_storage_inc {
        return Err(DriverError::InvalidArg(
            "Flags 'VIR_MIGRATE_NON_SHARED_DISK' and 'VIR_MIGRATE_NON_SHARED_INC' are mutually exclusive".into(),
        ));
    }
    if o.direct && !o.p2p {
        return Err(DriverError::ArgumentUnsupported(
            "direct migration is not supported by the source host".into(),
        ));
    }
    if o.tunnelled && !o.p2p {
        return Err(DriverError::OperationInvalid(
            "cannot perform tunnelled migration without using peer2peer flag".into(),
        ));
    }
    if o.postcopy && (!o.live || o.suspend) {
        return Err(DriverError::ArgumentUnsupported(
            "post-copy migration is not supported with non-live or paused migration".into(),
        ));
    }
    if o.postcopy && o.tunnelled {
        return Err(DriverError::ArgumentUnsupported(
            "post-copy is not supported with tunnelled migration".into(),
        ));
    }
    if o.offline {
        if o.copy_storage_all || o.copy_storage_inc {
            return Err(DriverError::OperationInvalid(
                "offline migration cannot handle non-shared storage".into(),
            ));
        }
        if !o.persistent {
            return Err(DriverError::OperationInvalid(
                "offline migration must be specified with the persistent flag set".into(),
            ));
        }
        if o.tunnelled {
            return Err(DriverError::OperationInvalid(
                "tunnelled offline migration does not make sense".into(),
            ));
        }
    }
    if o.tunnelled {
        // The stream would go through the daemons' connection; there is none here.
        return Err(DriverError::OperationUnsupported(
            "tunnelled migration is not supported: there is no daemon to tunnel through".into(),
        ));
    }
    Ok(())
}

/// Wait until the destination QEMU listens on `socket`, or its start has ended (failed).
fn wait_listening<T>(
    socket: &Path,
    dest: &std::thread::ScopedJoinHandle<'_, T>,
) -> Result<(), DriverError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if socket.exists() {
            return Ok(());
        }
        if dest.is_finished() {
            // Its error is the one to report: the caller joins it.
            return Err(DriverError::OperationFailed(
                "the destination did not start".into(),
            ));
        }
        if Instant::now() > deadline {
            return Err(DriverError::Timeout(
                "the destination did not listen for the migration".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
