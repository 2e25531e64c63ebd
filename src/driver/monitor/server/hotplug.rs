//! Device hotplug on the running guest (libvirt: qemu_hotplug.c): the QMP sequences the
//! driver prepared, run here because this process alone talks to QEMU and owns the live
//! XML. An attach is all or nothing: a failed step takes back the ones done. An unplug
//! asks QEMU (`device_del`) and finishes when QEMU reports DEVICE_DELETED, which may come
//! after the caller stopped waiting (libvirt: qemuDomainWaitForDeviceRemoval, then the
//! removal in processDeviceDeletedEvent).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ErrorCode, Reply, Server, log_line};
use crate::driver::monitor::proto::{QmpCall, QmpStep};
use crate::qmp::QmpError;

/// The caller's reply slot: answered by whichever comes first, QEMU's event or the timer.
type Slot = Arc<Mutex<Option<oneshot::Sender<Reply>>>>;

/// An unplug QEMU was asked for and has not confirmed.
pub(super) struct PendingUnplug {
    alias: String,
    cleanup: Vec<QmpCall>,
    slot: Slot,
}

/// The unplugs in flight.
#[derive(Default)]
pub(super) struct Unplugs(Vec<PendingUnplug>);

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
    pub(super) async fn hotplug(&mut self, steps: Vec<QmpStep>, xml: String) -> Reply {
        for (k, step) in steps.iter().enumerate() {
            let c = &step.call;
            if let Err(e) = self.exec(&c.command, c.args.clone()).await {
                if !self.qemu_alive() {
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
                return refusal(&c.command, &e);
            }
        }
        self.status.xml = xml;
        self.write_status();
        Reply::Ok { value: Value::Null }
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
            let r = if self.qemu_alive() {
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

    /// QEMU removed device `alias`: free its backends, drop it from the live XML, answer
    /// the caller still waiting (libvirt: qemuDomainRemoveDevice).
    pub(super) async fn device_deleted(&mut self, alias: &str) {
        let pending = self
            .unplugs
            .0
            .iter()
            .position(|p| p.alias == alias)
            .map(|i| self.unplugs.0.remove(i));
        // An unplug asked for before this monitor started: its backends from the live XML.
        let cleanup = match &pending {
            Some(p) => p.cleanup.clone(),
            None => crate::domain::parse(&self.status.xml)
                .map(|def| crate::driver::hotplug::backend_cleanup_of(&def, alias))
                .unwrap_or_default(),
        };
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
        answer(
            &p.slot,
            Reply::Refused {
                code: ErrorCode::OperationFailed,
                desc: "unplug of device was rejected by the guest".into(),
            },
        );
    }
}
