//! Migration to and from a file: `virsh save` (and `managedsave`) on the source side, and
//! `virsh restore` on the incoming side (libvirt: qemuSaveImageCreate, qemuMigrationSrcToFile,
//! qemuProcessIncoming). As libvirt, the file goes to QEMU as a descriptor (`getfd`, then
//! the `fd:` transport): QEMU's sandbox forbids spawning helpers for `exec:`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::jobs::{Operation, Running, Then, Wait};
use super::{ErrorCode, KILL_GRACE, Lifecycle, Reply, Server};
use crate::driver::monitor::proto::MigrateParams;
use crate::driver::process::Incoming;

/// The name QEMU knows the passed descriptor by.
const FD_NAME: &str = "migrate";

impl Server {
    /// Hand `file` to QEMU as [`FD_NAME`].
    async fn pass_file(&mut self, file: &File) -> Result<(), String> {
        self.exec_with_fd("getfd", Some(json!({ "fdname": FD_NAME })), file.as_fd())
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot pass the save file to QEMU: {e}"))
    }

    /// Set QEMU's `x-ignore-shared` migration capability: a stream then leaves out (or, on
    /// the incoming side, expects no copy of) RAM blocks mapped shared from a file; QEMU wants
    /// it on both sides, as it changes the stream's RAM header.
    async fn set_ignore_shared(&mut self, on: bool) -> Result<(), String> {
        self.set_capabilities(vec![capability("x-ignore-shared", on)])
            .await
            .map_err(|e| format!("cannot set migration capability x-ignore-shared: {e}"))
    }

    /// Set migration capabilities `caps` (each from [`capability`]) in one command.
    async fn set_capabilities(&mut self, caps: Vec<Value>) -> Result<(), String> {
        self.exec(
            "migrate-set-capabilities",
            Some(json!({ "capabilities": caps })),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Start streaming the guest's state onto the end of `path`; with `ignore_shared`,
    /// without the RAM the guest has in shared files.
    pub(super) async fn migrate_to(
        &mut self,
        path: &str,
        ignore_shared: bool,
    ) -> Result<(), String> {
        // Set either way: a capability stays on in QEMU, and a save that failed with it
        // on must not make a later snapshot's stream leave the RAM out.
        match self.set_ignore_shared(ignore_shared).await {
            Err(e) if ignore_shared => return Err(e),
            _ => {}
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open '{path}': {e}"))?;
        self.pass_file(&file).await?;
        drop(file);
        // Its end then comes as a `MIGRATION` event (libvirt sets the same capability).
        let events = json!({ "capabilities": [{ "capability": "events", "state": true }] });
        let _ = self.exec("migrate-set-capabilities", Some(events)).await;
        self.exec("migrate", Some(json!({ "uri": format!("fd:{FD_NAME}") })))
            .await
            .map_err(|e| format!("cannot start the migration: {e}"))?;
        Ok(())
    }

    /// Pause and start streaming the guest's state onto the end of `path` as the monitor's
    /// job: the loop serves other requests meanwhile and ends it in [`Server::save_ended`].
    pub(super) async fn save(
        &mut self,
        path: &str,
        ignore_shared: bool,
        reply: oneshot::Sender<Reply>,
    ) {
        let was_running = !self.status.paused;
        if was_running && let Err(r) = self.stop_for_job("saving").await {
            let _ = reply.send(r);
            return;
        }
        if let Err(desc) = self.migrate_to(path, ignore_shared).await {
            self.save_ended(was_running, Err((ErrorCode::OperationFailed, desc)), reply)
                .await;
            return;
        }
        let then = Then::Save { was_running, reply };
        self.begin_job(Running::new(Operation::Save, Wait::Migration, then));
    }

    /// The save's stream ended: end QEMU as `saved` (the reply comes once QEMU is reaped),
    /// or, when it failed or was cancelled, resume a guest that ran and leave it as it was.
    pub(super) async fn save_ended(
        &mut self,
        was_running: bool,
        res: Result<(), (ErrorCode, String)>,
        reply: oneshot::Sender<Reply>,
    ) {
        if let Err((code, desc)) = res {
            if was_running {
                self.own_resume = true;
                if self.exec("cont", None).await.is_ok() {
                    self.set_state("", false, "save canceled");
                    self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
                }
            } else {
                self.set_state("", true, "user");
            }
            let _ = reply.send(Reply::Refused { code, desc });
            return;
        }
        self.terminate("saved", KILL_GRACE);
        self.destroy_waiters.push(reply);
    }

    /// Start loading the guest's state from the save image `inc` names into a QEMU started
    /// with `-incoming defer`, as the monitor's job (libvirt's restore, an async job of
    /// operation `restore`): the loop serves `domjobinfo` and `domjobabort` meanwhile, and the
    /// start is reported once it ends ([`Server::restore_ended`]). An error here is the
    /// start's, reported at once. When `inc` listens, the stream is a live migration's
    /// that connects to its socket (libvirt: qemuMigrationDstRun).
    pub(super) async fn begin_restore(&mut self, inc: &Incoming) -> Result<(), String> {
        if inc.listen {
            return self.migrate_in(inc).await;
        }
        let shown = inc.path.display();
        let mut file = File::open(&inc.path).map_err(|e| format!("cannot open '{shown}': {e}"))?;
        let size = file
            .metadata()
            .map_err(|e| format!("cannot read '{shown}': {e}"))?
            .len();
        file.seek(SeekFrom::Start(inc.offset))
            .map_err(|e| format!("cannot read '{shown}': {e}"))?;
        let (stream, qemu_end) = Stream::open(file, inc, size.saturating_sub(inc.offset))
            .map_err(|e| format!("cannot read '{shown}': {e}"))?;
        self.pass_file(&qemu_end).await?;
        // QEMU's copy is the one that reads: with a pipe, a QEMU that goes ends the feeding.
        drop(qemu_end);
        // With events, its end comes as a `MIGRATION` event, on the incoming side too. One
        // command for both: a fleet clone's whole load takes a few milliseconds.
        let mut caps = vec![capability("events", true)];
        if inc.ignore_shared {
            caps.push(capability("x-ignore-shared", true));
        }
        self.set_capabilities(caps)
            .await
            .map_err(|e| format!("cannot set migration capabilities: {e}"))?;
        self.exec(
            "migrate-incoming",
            Some(json!({ "uri": format!("fd:{FD_NAME}") })),
        )
        .await
        .map_err(|e| format!("cannot restore the guest's state: {e}"))?;
        self.begin_job(Running::new(
            Operation::Restore,
            Wait::Incoming(Box::new(stream)),
            Then::Restore,
        ));
        Ok(())
    }
}

/// The save image's stream on its way into QEMU, and how far QEMU has read it: QEMU reads
/// the file itself, through the same open file as ours, so our offset is its; with a
/// bandwidth limit (tests that look at a restore midway), a thread of ours feeds it a pipe
/// at that pace and counts.
pub(super) struct Stream {
    source: Source,
    start: u64,
    total: u64,
}

enum Source {
    /// Our handle on QEMU's open file: its offset is QEMU's.
    File(File),
    /// The bytes the feeding thread wrote into the pipe.
    Fed(Arc<AtomicU64>),
}

impl Stream {
    /// The stream of `file` (positioned at its start, `total` bytes long), and the file to
    /// give QEMU: a second handle on the same open file, or the read end of the pipe a
    /// thread started here feeds.
    fn open(file: File, inc: &Incoming, total: u64) -> std::io::Result<(Stream, File)> {
        let Some(bps) = inc.bandwidth.filter(|b| *b > 0) else {
            let qemu_end = file.try_clone()?;
            let stream = Stream {
                source: Source::File(file),
                start: inc.offset,
                total,
            };
            return Ok((stream, qemu_end));
        };
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        let fed = Arc::new(AtomicU64::new(0));
        let counter = fed.clone();
        let pipe = File::from(w);
        std::thread::spawn(move || feed(file, pipe, bps, &counter));
        let stream = Stream {
            source: Source::Fed(fed),
            start: 0,
            total,
        };
        Ok((stream, File::from(r)))
    }

    /// The stream's bytes QEMU has read so far, and its size.
    pub(super) fn progress(&self) -> (u64, u64) {
        let read = match &self.source {
            // lseek(SEEK_CUR) on the open file QEMU reads through.
            Source::File(f) => {
                let mut f: &File = f;
                f.stream_position()
                    .map_or(0, |p| p.saturating_sub(self.start))
            }
            Source::Fed(n) => n.load(Ordering::Relaxed),
        };
        (read.min(self.total), self.total)
    }
}

/// Copy `file` into `pipe` at `bps` bytes per second, counting into `fed`; ends at the end
/// of the file or when the reader is gone.
fn feed(mut file: File, mut pipe: File, bps: u64, fed: &AtomicU64) {
    let chunk = (bps / 20).clamp(4096, 1 << 20) as usize;
    let mut buf = vec![0u8; chunk];
    let began = std::time::Instant::now();
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if pipe.write_all(&buf[..n]).is_err() {
            return;
        }
        total += n as u64;
        fed.store(total, Ordering::Relaxed);
        let due = Duration::from_secs_f64(total as f64 / bps as f64);
        if let Some(wait) = due.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// libvirt's migration capabilities as QEMU names them.
fn capability(name: &str, on: bool) -> Value {
    json!({ "capability": name, "state": on })
}

impl Server {
    /// The incoming side of a live migration: listen on the socket, then wait for the
    /// stream to end.
    async fn migrate_in(&mut self, inc: &Incoming) -> Result<(), String> {
        let mut caps = vec![capability("events", true)];
        if inc.postcopy {
            caps.push(capability("postcopy-ram", true));
        }
        self.set_capabilities(caps)
            .await
            .map_err(|e| format!("cannot set migration capabilities: {e}"))?;
        let uri = format!("unix:{}", inc.path.display());
        self.exec("migrate-incoming", Some(json!({ "uri": uri })))
            .await
            .map_err(|e| format!("cannot listen for the incoming migration: {e}"))?;
        // The start's job, as a restore's (libvirt's migration-in job): the start is reported
        // once the stream is in.
        self.begin_job(Running::new(
            Operation::MigrationIn,
            Wait::Migration,
            Then::Restore,
        ));
        Ok(())
    }

    /// Start the outgoing migration to `socket` as the monitor's job (libvirt:
    /// qemuMigrationSrcRun): capabilities and the bandwidth first, as libvirt applies its
    /// migration parameters before `migrate`.
    pub(super) async fn migrate_out(
        &mut self,
        socket: &str,
        params: MigrateParams,
        reply: oneshot::Sender<Reply>,
    ) {
        let was_running = !self.status.paused;
        let refuse = |desc: String| Reply::Refused {
            code: ErrorCode::OperationFailed,
            desc,
        };
        let caps = vec![
            capability("events", true),
            capability("x-ignore-shared", false),
            capability("postcopy-ram", params.postcopy),
            capability("auto-converge", params.auto_converge),
            capability("xbzrle", params.compressed),
        ];
        if let Err(e) = self.set_capabilities(caps).await {
            let _ = reply.send(refuse(format!("cannot set migration capabilities: {e}")));
            return;
        }
        let bw = json!({ "max-bandwidth": params.max_bandwidth });
        if let Err(e) = self.exec("migrate-set-parameters", Some(bw)).await {
            let _ = reply.send(refuse(format!("cannot set the migration bandwidth: {e}")));
            return;
        }
        if params.offline_vcpus
            && was_running
            && let Err(r) = self.stop_for_job("migration").await
        {
            let _ = reply.send(r);
            return;
        }
        // QEMU stops the vCPUs itself at the end of a live migration: libvirt's state
        // is then `paused (migration)`, its event Suspended Migrated.
        self.pause_reason = Some("migration");
        let uri = format!("unix:{socket}");
        if let Err(e) = self.exec("migrate", Some(json!({ "uri": uri }))).await {
            let res = Err((
                ErrorCode::OperationFailed,
                format!("cannot start the migration: {e}"),
            ));
            self.migrate_out_ended(was_running, res, reply).await;
            return;
        }
        let then = Then::Migrate {
            was_running,
            postcopy: params.postcopy,
            reply,
        };
        self.begin_job(Running::new(Operation::MigrationOut, Wait::Migration, then));
    }

    /// The outgoing stream ended. On success the guest stays paused for the caller, who
    /// ends it once the destination runs; on failure a guest that ran runs again
    /// (libvirt: qemuMigrationSrcRestoreDomainState).
    pub(super) async fn migrate_out_ended(
        &mut self,
        was_running: bool,
        res: Result<(), (ErrorCode, String)>,
        reply: oneshot::Sender<Reply>,
    ) {
        self.pause_reason = None;
        match res {
            Ok(()) => {
                self.set_state("", true, "migration");
                let _ = reply.send(Reply::Ok { value: Value::Null });
            }
            Err((code, desc)) => {
                let running = match self.exec("query-status", None).await {
                    Ok(v) => v["running"].as_bool().unwrap_or(false),
                    Err(_) => false,
                };
                // A guest paused for the migration runs again; one the user paused meanwhile
                // (`suspend`, `migrate --timeout`) stays paused.
                let ours = !self.status.paused || self.status.reason == "migration";
                if was_running && !running && ours {
                    self.own_resume = true;
                    if self.exec("cont", None).await.is_ok() {
                        self.set_state("", false, "migration canceled");
                        self.broadcast_lifecycle(Lifecycle::ResumedMigrated);
                    }
                }
                let _ = reply.send(Reply::Refused { code, desc });
            }
        }
    }

    /// `migrate-postcopy` (libvirt: qemuDomainMigrateStartPostCopy).
    pub(super) async fn start_postcopy(&mut self) -> Reply {
        let invalid = |desc: &str| Reply::Refused {
            code: ErrorCode::OperationInvalid,
            desc: desc.into(),
        };
        match self.jobs.migration_postcopy() {
            None => {
                invalid("post-copy can only be started while outgoing migration is in progress")
            }
            Some(false) => invalid(
                "switching to post-copy requires migration to be started with VIR_MIGRATE_POSTCOPY flag",
            ),
            Some(true) => match self.exec("migrate-start-postcopy", None).await {
                Ok(_) => Reply::Ok { value: Value::Null },
                Err(e) => self.failure(e),
            },
        }
    }
}
