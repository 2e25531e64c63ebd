//! libvirt's domain events, as the monitor derives them from QMP events, and virsh's way of
//! printing them (`virsh event`).

use serde::{Deserialize, Serialize};

use crate::driver::blockjob::BlockJobType;

/// libvirt's lifecycle event types (`virDomainEventType`) with their details
/// (`virDomainEvent*DetailType`), as virsh names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    StartedBooted,
    StartedRestored,
    StartedWakeup,
    StartedMigrated,
    SuspendedPaused,
    SuspendedMigrated,
    SuspendedIoError,
    SuspendedWatchdog,
    ResumedUnpaused,
    ResumedMigrated,
    StoppedShutdown,
    StoppedDestroyed,
    StoppedCrashed,
    StoppedFailed,
    StoppedSaved,
    StoppedMigrated,
    StoppedFromSnapshot,
    ShutdownFinished,
    ShutdownGuest,
    ShutdownHost,
    CrashedPanicked,
    CrashedCrashloaded,
    PmSuspendedMemory,
    PmSuspendedDisk,
}

impl Lifecycle {
    /// virsh's words for the event and its detail (libvirt: virshDomainEventToString,
    /// virshDomainEventDetailToString).
    pub fn words(self) -> (&'static str, &'static str) {
        use Lifecycle::*;
        match self {
            StartedBooted => ("Started", "Booted"),
            StartedRestored => ("Started", "Restored"),
            StartedWakeup => ("Started", "Event wakeup"),
            StartedMigrated => ("Started", "Migrated"),
            SuspendedMigrated => ("Suspended", "Migrated"),
            ResumedMigrated => ("Resumed", "Migrated"),
            StoppedMigrated => ("Stopped", "Migrated"),
            SuspendedPaused => ("Suspended", "Paused"),
            SuspendedIoError => ("Suspended", "I/O Error"),
            SuspendedWatchdog => ("Suspended", "Watchdog"),
            ResumedUnpaused => ("Resumed", "Unpaused"),
            StoppedShutdown => ("Stopped", "Shutdown"),
            StoppedDestroyed => ("Stopped", "Destroyed"),
            StoppedCrashed => ("Stopped", "Crashed"),
            StoppedFailed => ("Stopped", "Failed"),
            StoppedSaved => ("Stopped", "Saved"),
            StoppedFromSnapshot => ("Stopped", "From snapshot"),
            ShutdownFinished => ("Shutdown", "Finished"),
            ShutdownGuest => ("Shutdown", "Finished after guest request"),
            ShutdownHost => ("Shutdown", "Finished after host request"),
            CrashedPanicked => ("Crashed", "Panicked"),
            CrashedCrashloaded => ("Crashed", "Crashloaded"),
            PmSuspendedMemory => ("PMSuspended", "Memory"),
            PmSuspendedDisk => ("PMSuspended", "Disk"),
        }
    }
}

/// How a block job changed (libvirt: virConnectDomainEventBlockJobStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockJobStatus {
    Completed,
    Failed,
    Canceled,
    Ready,
}

impl BlockJobStatus {
    /// virsh's word for it (virshDomainBlockJobStatus).
    pub fn word(self) -> &'static str {
        match self {
            BlockJobStatus::Completed => "completed",
            BlockJobStatus::Failed => "failed",
            BlockJobStatus::Canceled => "canceled",
            BlockJobStatus::Ready => "ready",
        }
    }
}

/// Every event name virsh knows, in its order (libvirt: virshDomainEventCallbacks); `vsh
/// event --list` prints them. The ones a QEMU guest here produces are [`EventKind`]'s.
pub const EVENT_NAMES: &[&str] = &[
    "lifecycle",
    "reboot",
    "rtc-change",
    "watchdog",
    "io-error",
    "graphics",
    "io-error-reason",
    "control-error",
    "block-job",
    "disk-change",
    "tray-change",
    "pm-wakeup",
    "pm-suspend",
    "balloon-change",
    "pm-suspend-disk",
    "device-removed",
    "block-job-2",
    "tunable",
    "agent-lifecycle",
    "device-added",
    "migration-iteration",
    "job-completed",
    "device-removal-failed",
    "metadata-change",
    "block-threshold",
    "memory-failure",
    "memory-device-size-change",
];

/// One domain event. `virsh event --event NAME` names the kinds as [`DomainEvent::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum EventKind {
    Lifecycle {
        event: Lifecycle,
    },
    Reboot,
    /// `action` as virsh prints it: none, pause, reset, poweroff, shutdown, debug, inject-nmi.
    Watchdog {
        action: String,
    },
    /// A disk's I/O error: its source path and alias (empty when QEMU named no disk of
    /// ours), and `action` in libvirt's words (`none`, `pause`, `report`).
    IoError {
        path: String,
        alias: String,
        action: String,
    },
    /// The same error with QEMU's reason (`enospc`, or empty).
    IoErrorReason {
        path: String,
        alias: String,
        action: String,
        reason: String,
    },
    DeviceRemoved {
        alias: String,
    },
    /// The guest suspended itself to RAM (QMP SUSPEND), woke up (WAKEUP), or suspended to
    /// disk (SUSPEND_DISK); virsh prints no reason for them.
    PmSuspend,
    PmWakeup,
    PmSuspendDisk,
    /// The guest agent connected or went away: `state` is `connected` or `disconnected`,
    /// `reason` as virsh words it (`channel event`, `domain started`, `unknown`).
    AgentLifecycle {
        state: String,
        reason: String,
    },
    /// A block job reached its synchronised phase or ended: `disk` is the disk's source
    /// path (libvirt: VIR_DOMAIN_EVENT_ID_BLOCK_JOB, sent only for local disks).
    BlockJob {
        disk: String,
        job: BlockJobType,
        status: BlockJobStatus,
    },
    /// The same, `disk` being the disk's target name (VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2).
    BlockJob2 {
        disk: String,
        job: BlockJobType,
        status: BlockJobStatus,
    },
    /// A job (a backup) ended: its statistics, names and values as virsh prints them
    /// (VIR_DOMAIN_EVENT_ID_JOB_COMPLETED).
    JobCompleted {
        params: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub domain: String,
    /// Milliseconds since the epoch when the monitor saw it.
    pub time_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl DomainEvent {
    /// The name `virsh event --event` takes.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            EventKind::Lifecycle { .. } => "lifecycle",
            EventKind::Reboot => "reboot",
            EventKind::Watchdog { .. } => "watchdog",
            EventKind::IoError { .. } => "io-error",
            EventKind::IoErrorReason { .. } => "io-error-reason",
            EventKind::DeviceRemoved { .. } => "device-removed",
            EventKind::PmSuspend => "pm-suspend",
            EventKind::PmWakeup => "pm-wakeup",
            EventKind::PmSuspendDisk => "pm-suspend-disk",
            EventKind::AgentLifecycle { .. } => "agent-lifecycle",
            EventKind::BlockJob { .. } => "block-job",
            EventKind::BlockJob2 { .. } => "block-job-2",
            EventKind::JobCompleted { .. } => "job-completed",
        }
    }

    /// The line virsh prints for it, without the timestamp prefix of `--timestamp` (libvirt:
    /// virshEventLifecyclePrint and its siblings).
    pub fn virsh_line(&self) -> String {
        let d = &self.domain;
        match &self.kind {
            EventKind::Lifecycle { event } => {
                let (e, detail) = event.words();
                format!("event 'lifecycle' for domain '{d}': {e} {detail}")
            }
            EventKind::Reboot => format!("event 'reboot' for domain '{d}'"),
            EventKind::Watchdog { action } => {
                format!("event 'watchdog' for domain '{d}': {action}")
            }
            EventKind::IoError {
                path,
                alias,
                action,
            } => format!("event 'io-error' for domain '{d}': {path} ({alias}) {action}"),
            // libvirt: virshEventIOErrorReasonPrint, which names it 'io-error' too.
            EventKind::IoErrorReason {
                path,
                alias,
                action,
                reason,
            } => format!(
                "event 'io-error' for domain '{d}': {path} ({alias}) {action} due to {reason}"
            ),
            EventKind::DeviceRemoved { alias } => {
                format!("event 'device-removed' for domain '{d}': {alias}")
            }
            // libvirt: virshEventPMChangePrint
            EventKind::PmSuspend | EventKind::PmWakeup | EventKind::PmSuspendDisk => {
                format!("event '{}' for domain '{d}'", self.kind())
            }
            EventKind::AgentLifecycle { state, reason } => {
                format!(
                    "event 'agent-lifecycle' for domain '{d}': state: '{state}' reason: '{reason}'"
                )
            }
            // libvirt: virshEventBlockJobPrint
            EventKind::BlockJob { disk, job, status }
            | EventKind::BlockJob2 { disk, job, status } => {
                format!(
                    "event '{}' for domain '{d}': {} for {disk} {}",
                    self.kind(),
                    job.label(),
                    status.word()
                )
            }
            // libvirt: virshEventJobCompletedPrint
            EventKind::JobCompleted { params } => {
                let mut s = format!("event 'job-completed' for domain '{d}':");
                for (k, v) in params {
                    s.push_str(&format!("\n\t{k}: {v}"));
                }
                s
            }
        }
    }

    /// Whether the guest is gone after this event (`vsh await --condition domain-inactive`).
    pub fn is_stop(&self) -> bool {
        matches!(
            self.kind,
            EventKind::Lifecycle {
                event: Lifecycle::StoppedShutdown
                    | Lifecycle::StoppedDestroyed
                    | Lifecycle::StoppedCrashed
                    | Lifecycle::StoppedFailed
                    | Lifecycle::StoppedSaved
                    | Lifecycle::StoppedFromSnapshot
            }
        )
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virsh_words() {
        let e = DomainEvent {
            domain: "g1".into(),
            time_ms: 0,
            kind: EventKind::Lifecycle {
                event: Lifecycle::StoppedShutdown,
            },
        };
        assert_eq!(
            e.virsh_line(),
            "event 'lifecycle' for domain 'g1': Stopped Shutdown"
        );
        assert!(e.is_stop());
        let r = DomainEvent {
            kind: EventKind::Reboot,
            ..e.clone()
        };
        assert_eq!(r.virsh_line(), "event 'reboot' for domain 'g1'");
        let io = DomainEvent {
            kind: EventKind::IoErrorReason {
                path: "/dev/full".into(),
                alias: "virtio-disk0".into(),
                action: "pause".into(),
                reason: "enospc".into(),
            },
            ..e.clone()
        };
        assert_eq!(io.kind(), "io-error-reason");
        assert_eq!(
            io.virsh_line(),
            "event 'io-error' for domain 'g1': /dev/full (virtio-disk0) pause due to enospc"
        );
        let bj = DomainEvent {
            kind: EventKind::BlockJob2 {
                disk: "vda".into(),
                job: BlockJobType::Copy,
                status: BlockJobStatus::Ready,
            },
            ..e.clone()
        };
        assert_eq!(bj.kind(), "block-job-2");
        assert_eq!(
            bj.virsh_line(),
            "event 'block-job-2' for domain 'g1': Block Copy for vda ready"
        );
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<DomainEvent>(&s).unwrap(), e);
    }
}
