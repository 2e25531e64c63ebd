//! Guest power management as libvirt's QEMU driver follows it: the guest suspending itself
//! to RAM or disk and waking up (QMP SUSPEND, SUSPEND_DISK, WAKEUP), and `virsh
//! dompmsuspend` through the guest agent, which answers once QEMU saw the guest suspend.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{EventKind, Lifecycle, Push, Reply, Server, agent_refusal};
use crate::driver::agent::{self, Agent, AgentError};

/// The QMP events that tell a suspend requested through the agent happened (libvirt:
/// QEMU_AGENT_EVENT_SUSPEND, raised by both suspend handlers; a guest that hibernated then
/// powers off).
const SUSPENDED: &[&str] = &["SUSPEND", "SUSPEND_DISK", "SHUTDOWN"];

/// How long a guest agent may take to suspend the guest: qemu-ga sends no reply when it
/// succeeds, QEMU's event is the answer, and a TCG guest may take its time to get there.
const SUSPEND_WAIT: Duration = agent::SHUTDOWN_WAIT;

impl Server {
    /// QMP SUSPEND, SUSPEND_DISK and WAKEUP: libvirt's pm events, and the state change when
    /// the guest was running (suspend) or suspended (wakeup).
    // libvirt: qemuProcessHandlePMSuspend, qemuProcessHandlePMSuspendDisk,
    // qemuProcessHandlePMWakeup
    pub(super) fn on_pm_event(&mut self, name: &str) {
        let running = !self.status.paused && self.status.state.is_empty();
        match name {
            "SUSPEND" | "SUSPEND_DISK" => {
                let disk = name == "SUSPEND_DISK";
                self.broadcast_kind(if disk {
                    EventKind::PmSuspendDisk
                } else {
                    EventKind::PmSuspend
                });
                if running {
                    self.set_state("pmsuspended", false, "unknown");
                    self.broadcast_lifecycle(if disk {
                        Lifecycle::PmSuspendedDisk
                    } else {
                        Lifecycle::PmSuspendedMemory
                    });
                }
            }
            "WAKEUP" => {
                self.broadcast_kind(EventKind::PmWakeup);
                // A wakeup of a guest that did not suspend itself changes nothing.
                if self.status.state == "pmsuspended" {
                    self.set_state("", false, "wakeup");
                    self.broadcast_lifecycle(Lifecycle::StartedWakeup);
                }
            }
            _ => {}
        }
    }

    /// `virsh dompmsuspend`: run the agent's `command` (`guest-suspend-ram`, `-disk`,
    /// `-hybrid`) and answer once QEMU reports the guest suspended, or with the agent's
    /// refusal. libvirt's errors when no agent listens or the guest is not running.
    // libvirt: qemuDomainPMSuspendAgent, qemuAgentSuspend
    pub(super) fn pm_suspend(&mut self, command: String, reply: oneshot::Sender<Reply>) {
        let path = match self.agent_available() {
            Ok(p) => p,
            Err(r) => {
                let _ = reply.send(r);
                return;
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Push>();
        self.hub.subscribe(tx, None);
        // Off the loop: the event that answers comes through it.
        tokio::spawn(async move {
            let suspended = async {
                while let Some(p) = rx.recv().await {
                    if let Push::Qmp(e) = p
                        && SUSPENDED.contains(&e.name.as_str())
                    {
                        return true;
                    }
                }
                // The monitor ends: the guest is gone, not suspended.
                false
            };
            let asked = async {
                let mut a = Agent::connect(&path).await?;
                a.command(&command, None, SUSPEND_WAIT).await
            };
            tokio::pin!(suspended);
            let ok = Reply::Ok { value: Value::Null };
            let r = tokio::select! {
                done = &mut suspended => if done {
                    ok
                } else {
                    agent_refusal(AgentError::Disappeared)
                },
                r = asked => match r {
                    // An agent that answers at all did it (old qemu-ga replies first).
                    Ok(_) => ok,
                    // The channel closes as the guest goes to sleep: QEMU's event decides.
                    Err(AgentError::Disappeared) => {
                        match tokio::time::timeout(Duration::from_secs(5), suspended).await {
                            Ok(true) => ok,
                            _ => agent_refusal(AgentError::Disappeared),
                        }
                    }
                    Err(e) => agent_refusal(e),
                },
            };
            let _ = reply.send(r);
        });
    }
}
