//! `virDomainBackupBegin` and `virDomainBackupGetXMLDesc` (libvirt: src/qemu/qemu_backup.c).
//!
//! Push mode: QEMU copies each disk into a new (or reused) image with `blockdev-backup`,
//! `sync=full`, or `sync=incremental` with a temporary bitmap merged from the checkpoint's.
//! Pull mode: a qcow2 scratch image backed by the disk takes the old contents of what the
//! guest overwrites (`sync=none`, fleecing), and QEMU's NBD server exports it, with the
//! merged bitmap for an incremental backup, until `domjobabort` ends the job.
//!
//! This side checks, creates the images, opens them and starts the jobs in one transaction
//! (with the bitmap of a checkpoint made with the backup), then hands the job to the
//! guest's monitor ([`Request::BackupBegun`]), which follows it to its end and cleans up
//! (see `monitor/server/backup.rs`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::DriverError;
use super::checkpoint::{
    bitmap_valid, bitmaps, disk_chain, disk_node, merge_sources, prepare_create,
};
use super::domain::{Domain, guest_err};
use super::hotplug::qmp;
use super::monitor::proto::{Reply, Request};
use super::snapshot::check_flags;
use crate::domain::FormatFlags;
use crate::domain::backup::{BackupMode, DiskBackupMode, Server, parse};
use crate::domain::checkpoint::ParseFlags;

/// `VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL`: the targets exist, made by the caller.
pub const BACKUP_BEGIN_REUSE_EXTERNAL: u32 = 1;

/// One disk of a running backup, as the monitor needs it to follow and clean up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupJobDisk {
    pub dst: String,
    /// QEMU's job id.
    pub job: String,
    /// The target's nodes, format node first: removed when the job ends.
    pub nodes: Vec<String>,
    /// The target (push) or scratch (pull) file this backup created.
    pub file: Option<String>,
    /// A temporary bitmap left on the disk's node by an incremental push: (node, name).
    pub disk_bitmap: Option<(String, String)>,
}

/// A running backup as the client hands it to the guest's monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupJob {
    /// `backup-dumpxml`'s document.
    pub xml: String,
    pub mode: BackupMode,
    pub disks: Vec<BackupJobDisk>,
    /// The targets were the caller's (`--reuse-external`): never removed.
    pub reuse: bool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What one disk's backup needs, found before anything is made.
struct Prepared {
    dst: String,
    disk_file: String,
    disk_node: String,
    disk_format: String,
    size: u64,
    store: String,
    store_format: String,
    /// The store reads what it lacks from the disk (pull scratch, incremental qcow2 push).
    backed: bool,
    /// The temporary bitmap: on the disk's node (push) or the store's (pull), and the
    /// checkpoint's bitmaps in the disk's chain it is merged from.
    bitmap: Option<(String, Vec<Value>)>,
    job: String,
    fmt_node: String,
    file_node: String,
}

impl Domain<'_> {
    /// `virDomainBackupBegin` (libvirt: qemuBackupBegin, its checks in its order): start
    /// the backup `backup_xml` describes (`<domainbackup/>`: a full push backup of every
    /// writable disk to `PATH.TIMESTAMP`), creating checkpoint `checkpoint_xml` with it.
    /// Returns once QEMU's jobs run; `domjobinfo` follows them.
    pub fn backup_begin(
        &self,
        backup_xml: &str,
        checkpoint_xml: Option<&str>,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(flags, BACKUP_BEGIN_REUSE_EXTERNAL, "qemuBackupBegin")?;
        let reuse = flags & BACKUP_BEGIN_REUSE_EXTERNAL != 0;
        let mut def = parse(backup_xml)?;
        let mut chk = match checkpoint_xml {
            Some(x) => Some(crate::domain::checkpoint::parse(
                x,
                ParseFlags {
                    now: now(),
                    ..Default::default()
                },
            )?),
            None => None,
        };
        let suffix = match &chk {
            Some(c) => c.name.clone(),
            None => now().to_string(),
        };
        let pull = def.mode == BackupMode::Pull;
        if !self.is_active()? {
            return Err(DriverError::OperationUnsupported(
                "cannot perform disk backup for inactive domain".into(),
            ));
        }
        let mut lg = self.live_guest()?;
        def.align_disks(&lg.def, &suffix)?;
        let g = &mut lg.guest;
        if let Reply::Ok { value } = g.call(&Request::BackupXml).map_err(guest_err)?
            && value.is_string()
        {
            return Err(DriverError::OperationInvalid(
                "another backup job is already running".into(),
            ));
        }
        // Another job (a save, a snapshot, a dump) holds the domain: libvirt's async job
        // lock refuses the backup, here without waiting for it.
        if let Reply::Ok { value } = g.call(&Request::JobInfo).map_err(guest_err)?
            && value["type"].as_str().is_some_and(|t| t != "none")
        {
            let op = value["params"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p[0] == "operation")
                .and_then(|p| p[1].as_u64());
            let api = match op {
                Some(2) => " (held by monitor=remoteDispatchDomainSave)",
                Some(6) => " (held by monitor=remoteDispatchDomainSnapshotCreateXML)",
                Some(7) => " (held by monitor=remoteDispatchDomainRevertToSnapshot)",
                Some(8) => " (held by monitor=remoteDispatchDomainCoreDumpWithFormat)",
                _ => "",
            };
            return Err(DriverError::Timeout(format!(
                "cannot acquire state change lock{api}"
            )));
        }
        // libvirt: qemuBackupPrepare
        if pull {
            let server = def.server.get_or_insert(Server::Tcp {
                name: "localhost".into(),
                port: None,
            });
            if let Server::Tcp { port: None, .. } = server {
                return Err(DriverError::OperationUnsupported(
                    "<domainbackup> must specify TCP port for now".into(),
                ));
            }
        }
        if def.tls == Some(true) {
            // libvirt: qemuBackupBeginPrepareTLS; no backup_tls_x509_cert_dir here.
            return Err(DriverError::OperationInvalid(
                "backup TLS directory not configured".into(),
            ));
        }
        let mut store = self.checkpoints()?;
        let mut actions: Vec<Value> = Vec::new();
        if let Some(c) = chk.as_mut() {
            if store.get(&c.name).is_ok() {
                return Err(DriverError::OperationFailed(format!(
                    "domain moment {} already exists",
                    c.name
                )));
            }
            let config = self.xml_desc(FormatFlags {
                inactive: true,
                secure: true,
            })?;
            actions.extend(prepare_create(g, &lg.def, &config, c)?);
            c.parent = store.current().map(|p| p.name.clone());
        }
        let all_bitmaps = bitmaps(g)?;
        let nodes = super::snapshot::live_nodes(g)?;
        let mut prepared: Vec<Prepared> = Vec::new();
        for b in def.disks.iter_mut().filter(|b| b.backup) {
            let (disk_node, disk_format) = disk_node(g, &lg.def, &b.name)?;
            let domdisk = lg
                .def
                .devices
                .disks
                .iter()
                .find(|d| d.target.dev == b.name)
                .ok_or_else(|| DriverError::InvalidArg(format!("no disk named '{}'", b.name)))?;
            let disk_file = domdisk
                .source
                .as_ref()
                .and_then(|s| s.file.clone())
                .ok_or_else(|| {
                    DriverError::OperationUnsupported(format!(
                        "block jobs are supported only for disks of type 'file' ({})",
                        b.name
                    ))
                })?;
            let store_format = b.format.get_or_insert_with(|| "qcow2".into()).clone();
            if store_format != "qcow2" && pull {
                return Err(DriverError::Unsupported(format!(
                    "pull mode backup for disk '{}' requires qcow2 driver",
                    b.name
                )));
            }
            let incremental = b
                .incremental
                .clone()
                .filter(|_| b.backupmode == Some(DiskBackupMode::Incremental));
            let backed = pull || (incremental.is_some() && store_format == "qcow2");
            let mut bitmap = None;
            if let Some(inc) = &incremental {
                if store.get(inc).is_err() {
                    return Err(DriverError::NoCheckpoint(format!(
                        "Checkpoint '{inc}' for incremental backup of disk '{}' not found",
                        b.name
                    )));
                }
                let name = b
                    .exportbitmap
                    .clone()
                    .unwrap_or_else(|| format!("backup-{}", b.name));
                let chain = disk_chain(g, &lg.def, &b.name)?;
                if !bitmap_valid(&all_bitmaps, &chain, inc) {
                    return Err(DriverError::CheckpointInconsistent(format!(
                        "missing or broken bitmap '{inc}' for disk '{}'",
                        b.name
                    )));
                }
                bitmap = Some((name, merge_sources(&all_bitmaps, &chain, inc)));
            }
            if pull {
                b.exportname.get_or_insert_with(|| b.name.clone());
                if b.exportbitmap.is_none() {
                    b.exportbitmap = bitmap.as_ref().map(|(n, _)| n.clone());
                }
            }
            let size = nodes
                .iter()
                .find(|n| n.node == disk_node)
                .map_or(0, |n| n.virtual_size);
            prepared.push(Prepared {
                dst: b.name.clone(),
                job: format!("backup-{}-{disk_node}", b.name),
                fmt_node: format!("backup-{}-f", b.name),
                file_node: format!("backup-{}-s", b.name),
                disk_file,
                disk_node,
                disk_format,
                size,
                store: b.path.clone().unwrap_or_default(),
                store_format,
                backed,
                bitmap,
            });
        }
        if prepared.is_empty() {
            return Err(DriverError::Unsupported(
                "no disks selected for backup".into(),
            ));
        }
        for p in &prepared {
            // The bitmap of what changed since the checkpoint, on the node the job or the
            // export reads it from (libvirt: qemuBackupDiskPrepareOneBitmapsChain).
            if let Some((bm, sources)) = &p.bitmap {
                let node = if pull { &p.fmt_node } else { &p.disk_node };
                actions.push(json!({"type": "block-dirty-bitmap-add",
                    "data": {"node": node, "name": bm, "persistent": false, "disabled": true}}));
                actions.push(json!({"type": "block-dirty-bitmap-merge",
                    "data": {"node": node, "target": bm, "bitmaps": sources}}));
            }
            let mut data = json!({"device": p.disk_node, "job-id": p.job,
                "target": p.fmt_node, "auto-dismiss": false});
            data["sync"] = json!(match (pull, &p.bitmap) {
                (true, _) => "none",
                (false, Some(_)) => "incremental",
                (false, None) => "full",
            });
            if let (false, Some((bm, _))) = (pull, &p.bitmap) {
                data["bitmap"] = json!(bm);
            }
            actions.push(json!({"type": "blockdev-backup", "data": data}));
        }
        // Storage: made and opened (libvirt: qemuBackupDiskPrepareStorage).
        let mut created: Vec<String> = Vec::new();
        let mut added: Vec<String> = Vec::new();
        let mut nbd = false;
        let domdef = lg.def.clone();
        let res = (|| -> Result<(), DriverError> {
            for p in &prepared {
                if !reuse {
                    if std::path::Path::new(&p.store).exists() {
                        return Err(DriverError::InvalidArg(format!(
                            "store '{}' for backup of '{}' exists",
                            p.store, p.dst
                        )));
                    }
                    let size = p.size.to_string();
                    let mut args = vec!["create", "-q", "-f", p.store_format.as_str()];
                    if p.backed {
                        args.extend(["-F", p.disk_format.as_str(), "-b", p.disk_file.as_str()]);
                        args.push("-u");
                    }
                    args.extend([p.store.as_str(), size.as_str()]);
                    super::snapshot::disks::run_qemu_img(&domdef, &args)?;
                    created.push(p.store.clone());
                }
                qmp(
                    g,
                    "blockdev-add",
                    Some(json!({"driver": "file", "filename": p.store, "node-name": p.file_node})),
                )?;
                added.push(p.file_node.clone());
                let mut fmt =
                    json!({"driver": p.store_format, "node-name": p.fmt_node, "file": p.file_node});
                if p.store_format == "qcow2" {
                    fmt["backing"] = if p.backed {
                        json!(p.disk_node)
                    } else {
                        json!(null)
                    };
                }
                qmp(g, "blockdev-add", Some(fmt))?;
                added.push(p.fmt_node.clone());
            }
            if pull {
                let addr = match def.server.as_ref() {
                    Some(Server::Unix { socket }) => {
                        json!({"type": "unix", "data": {"path": socket}})
                    }
                    Some(Server::Tcp { name, port }) => json!({"type": "inet",
                        "data": {"host": name, "port": port.unwrap_or(0).to_string()}}),
                    None => json!(null),
                };
                qmp(g, "nbd-server-start", Some(json!({ "addr": addr })))?;
                nbd = true;
            }
            qmp(g, "transaction", Some(json!({ "actions": actions }))).map(drop)
        })();
        if let Err(e) = res {
            // Best effort: the refusal is the news.
            if nbd {
                let _ = qmp(g, "nbd-server-stop", None);
            }
            for n in added.iter().rev() {
                let _ = qmp(g, "blockdev-del", Some(json!({ "node-name": n })));
            }
            for f in &created {
                let _ = std::fs::remove_file(f);
            }
            return Err(e);
        }
        let job = BackupJob {
            xml: def.to_xml(),
            mode: def.mode,
            disks: prepared
                .iter()
                .map(|p| BackupJobDisk {
                    dst: p.dst.clone(),
                    job: p.job.clone(),
                    nodes: vec![p.fmt_node.clone(), p.file_node.clone()],
                    file: created.iter().find(|f| **f == p.store).cloned(),
                    disk_bitmap: match (&p.bitmap, pull) {
                        (Some((bm, _)), false) => Some((p.disk_node.clone(), bm.clone())),
                        _ => None,
                    },
                })
                .collect(),
            reuse,
        };
        if let Err(e) = g.call(&Request::BackupBegun {
            backup: job.clone(),
        }) {
            // A job came in between: the backup's own QEMU jobs must not stay behind.
            undo_started(g, &job);
            return Err(guest_err(e));
        }
        if let Some(c) = chk {
            self.checkpoint_finalize(&mut store, c)?;
        }
        if pull {
            // libvirt: qemuBackupBeginPullExportDisks
            let res = (|| -> Result<(), DriverError> {
                for (p, b) in prepared.iter().zip(def.disks.iter().filter(|b| b.backup)) {
                    let mut args = json!({"type": "nbd", "id": format!("libvirt-nbd-{}", p.fmt_node),
                        "node-name": p.fmt_node, "writable": false,
                        "name": b.exportname.clone().unwrap_or_else(|| p.dst.clone())});
                    if let Some(bm) = &b.exportbitmap {
                        args["bitmaps"] = json!([bm]);
                    }
                    qmp(g, "block-export-add", Some(args))?;
                }
                Ok(())
            })();
            if let Err(e) = res {
                let _ = g.call(&Request::JobAbort);
                return Err(e);
            }
        }
        Ok(())
    }

    /// `virDomainBackupGetXMLDesc`: the running backup's definition.
    pub fn backup_xml_desc(&self, flags: u32) -> Result<String, DriverError> {
        check_flags(flags, 0, "qemuBackupGetXMLDesc")?;
        let (mut g, _) = self.guest()?;
        match g.call(&Request::BackupXml).map_err(guest_err)? {
            Reply::Ok {
                value: Value::String(x),
            } => Ok(x),
            _ => Err(DriverError::NoBackup("no domain backup job present".into())),
        }
    }
}

/// Stop and forget QEMU's jobs of a backup the monitor refused, best effort: cancelled,
/// dismissed once concluded, the targets' nodes and the files made removed.
fn undo_started(g: &mut super::process::Guest, job: &BackupJob) {
    for d in &job.disks {
        let _ = qmp(g, "job-cancel", Some(json!({ "id": d.job })));
    }
    if job.mode == BackupMode::Pull {
        let _ = qmp(g, "nbd-server-stop", None);
    }
    for d in &job.disks {
        for _ in 0..100 {
            let concluded = qmp(g, "query-jobs", None).ok().is_some_and(|v| {
                v.as_array().into_iter().flatten().all(|j| {
                    j["id"].as_str() != Some(d.job.as_str())
                        || j["status"].as_str() == Some("concluded")
                })
            });
            if concluded {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = qmp(g, "job-dismiss", Some(json!({ "id": d.job })));
        if let Some((node, name)) = &d.disk_bitmap {
            let _ = qmp(
                g,
                "block-dirty-bitmap-remove",
                Some(json!({ "node": node, "name": name })),
            );
        }
        for n in &d.nodes {
            let _ = qmp(g, "blockdev-del", Some(json!({ "node-name": n })));
        }
        if let Some(f) = &d.file {
            let _ = std::fs::remove_file(f);
        }
    }
}
