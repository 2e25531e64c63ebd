//! Device hotplug on the running guest (libvirt: qemu_hotplug.c): the QMP sequences the
//! driver prepared, run here because this process alone talks to QEMU and owns the live
//! XML. An attach is all or nothing: a failed step takes back the ones done. An unplug
//! asks QEMU (`device_del`) and finishes when QEMU reports DEVICE_DELETED, which may come
//! after the caller stopped waiting (libvirt: qemuDomainWaitForDeviceRemoval, then the
//! removal in processDeviceDeletedEvent).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ErrorCode, Reply, Server, log_line};
use crate::driver::helpers::HelperSpec;
use crate::driver::monitor::proto::{QmpCall, QmpStep};
use crate::qmp::QmpError;

/// The caller's reply slot: answered by whichever comes first, QEMU's event or the timer.
type Slot = Arc<Mutex<Option<oneshot::Sender<Reply>>>>;

/// How long a hotplugged device's helper may take to create its socket.
const HELPER_WAIT: Duration = Duration::from_secs(30);

/// An unplug QEMU was asked for and has not confirmed.
pub(super) struct PendingUnplug {
    alias: String,
    cleanup: Vec<QmpCall>,
    slot: Slot,
}

/// The unplugs in flight.
#[derive(Default)]
pub(super) struct Unplugs(Vec<PendingUnplug>);

/// Where the unplugs in flight are kept in the guest's run dir, so that the monitor that
/// follows a killed one finishes them, freeing what the caller named (a disk's nodes among
/// them) as libvirt does from its status XML.
const KEPT_UNPLUGS: &str = "unplugs.json";

/// One unplug in flight, as kept.
#[derive(Serialize, Deserialize)]
struct KeptUnplug {
    alias: String,
    cleanup: Vec<QmpCall>,
}

impl Unplugs {
    /// The unplugs an earlier monitor of the guest in run dir `dir` left in flight; nobody
    /// waits for them any more.
    pub(super) fn load(dir: &Path) -> Unplugs {
        let kept: Vec<KeptUnplug> = std::fs::read(dir.join(KEPT_UNPLUGS))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Unplugs(
            kept.into_iter()
                .map(|k| PendingUnplug {
                    alias: k.alias,
                    cleanup: k.cleanup,
                    slot: Arc::new(Mutex::new(None)),
                })
                .collect(),
        )
    }

    /// Keep the unplugs in flight in run dir `dir` (0600; none: no file).
    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(KEPT_UNPLUGS);
        if self.0.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let kept: Vec<KeptUnplug> = self
            .0
            .iter()
            .map(|p| KeptUnplug {
                alias: p.alias.clone(),
                cleanup: p.cleanup.clone(),
            })
            .collect();
        let data = serde_json::to_vec(&kept).map_err(std::io::Error::other)?;
        let tmp = dir.join(format!("{KEPT_UNPLUGS}.new"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)?
            .write_all(&data)?;
        std::fs::rename(&tmp, &path)
    }
}

fn answer(slot: &Slot, r: Reply) {
    let tx = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(tx) = tx {
        let _ = tx.send(r);
    }
}

/// QEMU's refusal of `command` as libvirt reports it (qemuMonitorJSONCheckError).
fn refusal(command: &str, e: &QmpError) -> Reply {
    let desc = match e {
        QmpError::Command { desc, .. } => desc.clone(),
        other => other.to_string(),
    };
    Reply::Refused {
        code: ErrorCode::Internal,
        desc: format!("unable to execute QEMU command '{command}': {desc}"),
    }
}

impl Server {
    /// Run `steps`; on a failure undo the done ones, last first. The live XML becomes `xml`
    /// once all went through.
    pub(super) async fn hotplug(
        &mut self,
        steps: Vec<QmpStep>,
        mut xml: String,
        helpers: Vec<HelperSpec>,
        taps: Vec<crate::driver::tap::HotTap>,
    ) -> Reply {
        // The helpers first: the device's backend connects to their sockets.
        let dir = self.paths.guest_run_dir.clone();
        if let Err(e) =
            crate::driver::helpers::start_more(&dir, &self.paths.log, &helpers, HELPER_WAIT)
        {
            return Reply::Refused {
                code: ErrorCode::OperationFailed,
                desc: e,
            };
        }
        // Then the taps, handed to QEMU by name; ours close when this returns, and a tap
        // QEMU did not take into a netdev is closed by name on failure.
        let mut passed: Vec<String> = Vec::new();
        let mut names = Vec::new();
        for t in &taps {
            let r = match crate::driver::tap::create(&t.spec) {
                Ok(tap) => {
                    names.push((tap.index, tap.ifname.clone()));
                    self.pass_tap(&tap, t, &mut passed).await
                }
                Err(msg) => Err(Reply::Refused {
                    code: ErrorCode::System,
                    desc: msg,
                }),
            };
            if let Err(reply) = r {
                self.close_fds(&passed).await;
                crate::driver::helpers::stop_specs(&dir, &helpers);
                return reply;
            }
        }
        if !names.is_empty()
            && let Ok(mut def) = crate::domain::parse(&xml)
        {
            crate::driver::tap::note_ifnames(&mut def, &names);
            xml = def.to_xml(crate::domain::FormatFlags {
                inactive: false,
                secure: true,
            });
        }
        for (k, step) in steps.iter().enumerate() {
            let c = &step.call;
            if let Err(e) = self.exec(&c.command, c.args.clone()).await {
                if self.qemu_gone_after(&e) {
                    return self.failure(e);
                }
                for done in steps[..k].iter().rev() {
                    if let Some(u) = &done.undo
                        && let Err(ue) = self.exec(&u.command, u.args.clone()).await
                    {
                        log_line(
                            &self.paths,
                            &format!("hotplug rollback: '{}' failed: {ue}", u.command),
                        );
                    }
                }
                crate::driver::helpers::stop_specs(&dir, &helpers);
                self.close_fds(&passed).await;
                return refusal(&c.command, &e);
            }
        }
        self.status.xml = xml;
        self.write_status();
        Reply::Ok { value: Value::Null }
    }

    /// `getfd` the descriptors of `tap` under the names `hot` gives them, noting each in
    /// `passed`.
    async fn pass_tap(
        &mut self,
        tap: &crate::driver::tap::Tap,
        hot: &crate::driver::tap::HotTap,
        passed: &mut Vec<String>,
    ) -> Result<(), Reply> {
        use std::os::fd::AsFd;
        let mut pass = vec![(hot.fdname.clone(), tap.fd.as_fd())];
        if let (Some(name), Some((fd, _))) = (&hot.vhost_fdname, &tap.vhost) {
            pass.push((name.clone(), fd.as_fd()));
        }
        for (name, fd) in pass {
            if let Err(e) = self
                .exec_with_fd("getfd", Some(json!({ "fdname": name })), fd)
                .await
            {
                return Err(if !self.qemu_gone_after(&e) {
                    refusal("getfd", &e)
                } else {
                    self.failure(e)
                });
            }
            passed.push(name);
        }
        Ok(())
    }

    /// Close the named descriptors QEMU still holds (a failed hotplug's); a name a netdev
    /// took is gone already, which QEMU says and we ignore.
    async fn close_fds(&mut self, names: &[String]) {
        for n in names {
            let _ = self.exec("closefd", Some(json!({ "fdname": n }))).await;
        }
    }

    /// Ask QEMU to unplug `alias`; the reply goes out from [`Server::device_deleted`], on
    /// rejection, or when `wait` is over.
    pub(super) async fn unplug(
        &mut self,
        alias: String,
        cleanup: Vec<QmpCall>,
        wait: Duration,
        strict: bool,
        reply: oneshot::Sender<Reply>,
    ) {
        if let Err(e) = self.exec("device_del", Some(json!({ "id": alias }))).await {
            let r = if !self.qemu_gone_after(&e) {
                refusal("device_del", &e)
            } else {
                self.failure(e)
            };
            let _ = reply.send(r);
            return;
        }
        let slot: Slot = Arc::new(Mutex::new(Some(reply)));
        self.unplugs.0.push(PendingUnplug {
            alias,
            cleanup,
            slot: slot.clone(),
        });
        self.keep_unplugs();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let r = if strict {
                // libvirt: qemuDomainRemoveVcpuAlias's caller, qemuDomainHotplugDelVcpu
                Reply::Refused {
                    code: ErrorCode::OperationTimeout,
                    desc: "vcpu unplug request timed out. Unplug result must be manually inspected in the domain".into(),
                }
            } else {
                // The removal stays pending: DEVICE_DELETED finishes it whenever it comes.
                Reply::Ok {
                    value: json!({ "removed": false }),
                }
            };
            answer(&slot, r);
        });
    }

    fn keep_unplugs(&self) {
        if let Err(e) = self.unplugs.save(&self.paths.guest_run_dir) {
            log_line(
                &self.paths,
                &format!("cannot keep the unplugs in flight: {e}"),
            );
        }
    }

    /// After adopting QEMU: the kept unplugs whose device QEMU no longer has were
    /// confirmed while no monitor listened; finish them now (libvirt:
    /// qemuProcessUpdateDevices at reconnect).
    pub(super) async fn finish_missed_unplugs(&mut self) {
        if self.unplugs.0.is_empty() {
            return;
        }
        let Ok(list) = self
            .exec("qom-list", Some(json!({ "path": "/machine/peripheral" })))
            .await
        else {
            return;
        };
        let have: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["name"].as_str())
            .collect();
        let gone: Vec<String> = self
            .unplugs
            .0
            .iter()
            .filter(|p| !have.contains(&p.alias.as_str()))
            .map(|p| p.alias.clone())
            .collect();
        for alias in gone {
            log_line(
                &self.paths,
                &format!("'{alias}' was unplugged while no monitor listened"),
            );
            self.device_deleted(&alias).await;
        }
    }

    /// The vCPU unplug in flight a child device's DEVICE_DELETED at `path` belongs to: QEMU
    /// 7.2 reports an x86 vCPU's unplug only through its APIC's
    /// (`/machine/peripheral/vcpuN/lapic`), never the vCPU's own (seen on Debian 12's QEMU).
    pub(super) fn pending_vcpu_of(&self, path: &str) -> Option<String> {
        let (alias, _) = path.strip_prefix("/machine/peripheral/")?.split_once('/')?;
        (crate::driver::hotplug::is_vcpu_alias(alias)
            && self.unplugs.0.iter().any(|p| p.alias == alias))
        .then(|| alias.to_string())
    }

    /// QEMU removed device `alias`: free its backends, drop it from the live XML, answer
    /// the caller still waiting (libvirt: qemuDomainRemoveDevice).
    pub(super) async fn device_deleted(&mut self, alias: &str) {
        let pending = self
            .unplugs
            .0
            .iter()
            .position(|p| p.alias == alias)
            .map(|i| self.unplugs.0.remove(i));
        if pending.is_some() {
            self.keep_unplugs();
        } else if crate::driver::hotplug::is_vcpu_alias(alias) {
            // Counted when its APIC went (see `pending_vcpu_of`), or no unplug of ours.
            return;
        }
        // An unplug asked for before any monitor kept it: its backends from the live XML.
        let cleanup = match &pending {
            Some(p) => p.cleanup.clone(),
            None => crate::domain::parse(&self.status.xml)
                .map(|def| crate::driver::hotplug::backend_cleanup_of(&def, alias))
                .unwrap_or_default(),
        };
        // Its helper goes before its backend, so that the helper's end is no surprise.
        crate::driver::helpers::stop_device(&self.paths.guest_run_dir, alias);
        for c in &cleanup {
            if let Err(e) = self.exec(&c.command, c.args.clone()).await {
                log_line(
                    &self.paths,
                    &format!("after unplugging '{alias}': '{}' failed: {e}", c.command),
                );
            }
        }
        if let Ok(mut def) = crate::domain::parse(&self.status.xml)
            && crate::driver::hotplug::remove_by_alias(&mut def, alias)
        {
            self.status.xml = def.to_xml(crate::domain::FormatFlags {
                inactive: false,
                secure: true,
            });
            self.write_status();
        }
        if let Some(p) = pending {
            answer(
                &p.slot,
                Reply::Ok {
                    value: json!({ "removed": true }),
                },
            );
        }
    }

    /// The guest refused to let the device go (DEVICE_UNPLUG_GUEST_ERROR, libvirt:
    /// qemuProcessHandleDeviceUnplugErr): the device stays.
    pub(super) fn unplug_rejected(&mut self, data: &Value) {
        let alias = data["device"].as_str().unwrap_or("");
        let Some(i) = self.unplugs.0.iter().position(|p| p.alias == alias) else {
            return;
        };
        let p = self.unplugs.0.remove(i);
        self.keep_unplugs();
        answer(
            &p.slot,
            Reply::Refused {
                code: ErrorCode::OperationFailed,
                desc: "unplug of device was rejected by the guest".into(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unplugs_in_flight_are_kept_and_loaded() {
        let d = tempfile::tempdir().unwrap();
        assert!(Unplugs::load(d.path()).0.is_empty());
        let cleanup = vec![QmpCall {
            command: "blockdev-del".into(),
            args: Some(json!({ "node-name": "libvirt-3-format" })),
        }];
        let u = Unplugs(vec![PendingUnplug {
            alias: "virtio-disk1".into(),
            cleanup: cleanup.clone(),
            slot: Arc::new(Mutex::new(None)),
        }]);
        u.save(d.path()).unwrap();
        let path = d.path().join(KEPT_UNPLUGS);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = Unplugs::load(d.path());
        assert_eq!(back.0.len(), 1);
        assert_eq!(back.0[0].alias, "virtio-disk1");
        assert_eq!(back.0[0].cleanup, cleanup);
        // Nothing in flight: no file.
        Unplugs::default().save(d.path()).unwrap();
        assert!(!path.exists());
        Unplugs::default().save(d.path()).unwrap();
        // A damaged file is no unplug, not a failure.
        std::fs::write(&path, "{").unwrap();
        assert!(Unplugs::load(d.path()).0.is_empty());
    }
}
