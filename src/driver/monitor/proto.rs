//! The protocol on a guest monitor's control socket: JSON, one message per line.
//!
//! The client opens with [`Request::Hello`] naming [`VERSION`]; the monitor answers with its
//! own version and refuses a client of another major version, so a `vsh` of one build never
//! misreads a monitor left running by another. Then each request gets exactly one
//! [`Reply`], in order. After [`Request::Subscribe`] the monitor also sends [`Push`] lines,
//! interleaved with replies: every line is a [`Line`], tagged so the two never mix up.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::qmp::Event;

/// Protocol version; bumped on any incompatible change.
pub const VERSION: u32 = 1;

/// Longest line either side accepts: a `query-*` reply of a big guest is tens of KiB.
pub const MAX_LINE: usize = 16 << 20;

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    Hello {
        version: u32,
    },
    /// Pass a command to QEMU's QMP as is (`virsh qemu-monitor-command`, stats, ...).
    Qmp {
        command: String,
        args: Option<Value>,
    },
    /// State and reason as the monitor knows them.
    State,
    Suspend,
    Resume,
    /// ACPI power button or the guest agent, as `modes` and libvirt's rules pick; the ACPI
    /// way returns at once, the agent's once QEMU reports the guest's SHUTDOWN. The
    /// guest's `on_poweroff` applies when it is off.
    Shutdown {
        #[serde(default)]
        modes: PowerModes,
    },
    /// libvirt's fake reboot (power button, then reset and resume once the guest is off;
    /// returns at once), or the guest agent's reboot (returns at QEMU's RESET).
    Reboot {
        #[serde(default)]
        modes: PowerModes,
    },
    /// One command to the QEMU guest agent (sync first), `timeout_ms` for its reply.
    Agent {
        command: String,
        args: Option<Value>,
        timeout_ms: u64,
    },
    /// Hard reset (`virsh reset`).
    Reset,
    /// Suspend the guest through its agent's `command` (`guest-suspend-ram`, ...); the
    /// reply comes once QEMU reports the guest suspended (`virsh dompmsuspend`).
    PmSuspend {
        command: String,
    },
    /// Replace the live XML in the status file (the monitor owns that file).
    SetXml {
        xml: String,
    },
    /// SIGTERM, SIGKILL after `grace_ms`; the reply comes once QEMU is reaped. `reason`:
    /// why, as the shut-off state and the Stopped event name it.
    Destroy {
        grace_ms: u64,
        #[serde(default)]
        reason: StopReason,
    },
    /// Pause, write the guest's state onto the end of the save image at `path` (whose header
    /// the client wrote), and end QEMU as `saved`; the reply comes once QEMU is gone.
    /// `ignore_shared`: leave RAM in shared files out of the stream (`x-ignore-shared`).
    Save {
        path: String,
        #[serde(default)]
        ignore_shared: bool,
    },
    /// Run QEMU's internal snapshot job `job` with the vCPUs stopped; the reply comes when
    /// the job has ended.
    Snapshot {
        job: SnapshotJob,
    },
    /// Send QMP events and libvirt domain events as they come. With `since_ms`, the domain
    /// events the monitor saw at or after that time (milliseconds since the epoch; it keeps
    /// the last [`BACKLOG`]) come first, so that a subscriber that found the guest only
    /// after it started still sees it start.
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_ms: Option<u64>,
    },
    /// Take the console session of chardev `alias` (`virsh console`): one per device, held
    /// as long as this connection stays open. `force` takes it from the connection holding
    /// it, which the monitor then closes (libvirt's `--force`).
    Console {
        alias: String,
        #[serde(default)]
        force: bool,
        /// After the `Ok` reply (`{"pty": PATH}`), the connection carries the console's
        /// bytes both ways, the monitor reading and writing the pty, until either side
        /// closes it, a `force` elsewhere takes the console, or the guest ends.
        #[serde(default)]
        stream: bool,
    },
    /// Change the running guest's devices (hotplug, media change): run `steps` in order;
    /// when one fails, undo the ones done, last first, and refuse with QEMU's error. On
    /// success the live XML becomes `xml`.
    Hotplug {
        steps: Vec<QmpStep>,
        xml: String,
        /// Helper processes the new device needs (virtiofsd, passt), started before the
        /// steps and stopped again when they fail.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        helpers: Vec<crate::driver::helpers::HelperSpec>,
        /// Taps the new interface needs, made and passed to QEMU before the steps.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        taps: Vec<crate::driver::tap::HotTap>,
    },
    /// Unplug device `alias` (`device_del`). Once QEMU reports DEVICE_DELETED, `cleanup` runs
    /// (the device's backends) and the device leaves the live XML. The reply comes then, or
    /// after `wait_ms`: `{"removed": false}`, the removal still pending (libvirt's
    /// qemuDomainWaitForDeviceRemoval), or with `strict` a timeout refusal (vCPUs).
    Unplug {
        alias: String,
        cleanup: Vec<QmpCall>,
        wait_ms: u64,
        #[serde(default)]
        strict: bool,
    },
    /// Write the guest's memory to `path` (an existing file, whose mode stays) in QEMU's
    /// dump `format` (`elf`, `kdump-zlib`, ...) as the monitor's job; the vCPUs stop for it
    /// unless `live` (`virsh dump --memory-only`).
    Dump {
        path: String,
        format: String,
        #[serde(default)]
        live: bool,
    },
    /// The running job's statistics (`domjobinfo`): `{"type": "none"|"unbounded", "params":
    /// [[name, value], ...]}` with libvirt's job statistic names, in its order.
    JobInfo,
    /// Cancel the running job (`domjobabort`).
    JobAbort,
    /// Follow the backup a client has just started (`backup-begin`): the monitor's job from
    /// now on, ended when QEMU's jobs conclude (a pull backup's, by `JobAbort`), then its
    /// nodes and files cleaned up and `job-completed` sent. Refused while another job runs.
    BackupBegun {
        backup: crate::driver::backup::BackupJob,
    },
    /// The running backup's XML (`backup-dumpxml`): a string, or null when none runs.
    BackupXml,
    /// Live-migrate the guest to the QEMU listening on unix socket `socket` as the
    /// monitor's job (`virsh migrate`). The reply comes when the stream has ended: on
    /// success QEMU stays, its vCPUs stopped (`paused (migration)`), for the caller to end
    /// it once the destination runs ([`StopReason::Migrated`]) or resume it when that
    /// failed; on failure the guest runs on as it did.
    Migrate {
        socket: String,
        params: MigrateParams,
    },
    /// Switch the running migration to post-copy (`virsh migrate-postcopy`).
    MigratePostcopy,
}

/// How a [`Request::Migrate`] runs (libvirt's migration flags and parameters that reach
/// QEMU on the source side).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MigrateParams {
    /// QEMU's `max-bandwidth`, bytes per second.
    pub max_bandwidth: u64,
    /// `--postcopy`: QEMU's `postcopy-ram` capability (the destination sets it too).
    #[serde(default)]
    pub postcopy: bool,
    /// `--auto-converge`.
    #[serde(default)]
    pub auto_converge: bool,
    /// `--compressed`: xbzrle.
    #[serde(default)]
    pub compressed: bool,
    /// Not `--live`: the vCPUs stop for the whole migration.
    #[serde(default)]
    pub offline_vcpus: bool,
}

/// One QMP command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QmpCall {
    pub command: String,
    pub args: Option<Value>,
}

/// A step of [`Request::Hotplug`] and how to take it back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QmpStep {
    pub call: QmpCall,
    pub undo: Option<QmpCall>,
}

/// An internal snapshot job (QEMU's `snapshot-save`, `snapshot-load`, `snapshot-delete`)
/// of tag `tag` on the block nodes `devices`, the guest's memory in node `vmstate`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SnapshotJob {
    Save {
        tag: String,
        vmstate: String,
        devices: Vec<String>,
    },
    /// `run`: whether the vCPUs run once the state is loaded.
    Load {
        tag: String,
        vmstate: String,
        devices: Vec<String>,
        run: bool,
    },
    Delete {
        tag: String,
        devices: Vec<String>,
    },
    /// The guest's memory and device state through migration onto the end of file `path`
    /// (an external memory snapshot). QEMU stays, its vCPUs stopped; the caller resumes.
    SaveMemory {
        path: String,
    },
}

/// How `shutdown` and `reboot` may reach the guest (libvirt's VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN
/// and _GUEST_AGENT flags). Neither: libvirt's default, the agent when one is connected,
/// else the power button.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PowerModes {
    pub acpi: bool,
    pub agent: bool,
}

/// How many domain events a monitor keeps for late subscribers.
pub const BACKLOG: usize = 64;

/// A failure, with QMP's error class when QEMU refused a command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub class: Option<String>,
    pub desc: String,
    /// The guest is not running (any more).
    #[serde(default)]
    pub not_running: bool,
}

/// libvirt's error codes (`virErrorNumber`) the monitor reports; `desc` is the message
/// after libvirt's prefix for the code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    OperationInvalid,
    OperationFailed,
    ArgumentUnsupported,
    AgentUnresponsive,
    Internal,
    OperationTimeout,
    OperationAborted,
    OperationUnsupported,
    /// libvirt's VIR_ERR_SYSTEM_ERROR and others whose whole text the monitor wrote (a tap
    /// it could not make): shown as it is.
    System,
}

impl ErrorCode {
    /// The message as libvirt prints it (virErrorMsg's prefix for the code).
    pub fn message(self, desc: &str) -> String {
        match self {
            ErrorCode::OperationInvalid => format!("Requested operation is not valid: {desc}"),
            ErrorCode::OperationFailed => format!("operation failed: {desc}"),
            ErrorCode::ArgumentUnsupported => format!("argument unsupported: {desc}"),
            ErrorCode::AgentUnresponsive => format!("Guest agent is not responding: {desc}"),
            ErrorCode::Internal => format!("internal error: {desc}"),
            ErrorCode::OperationTimeout => format!("Timed out during operation: {desc}"),
            ErrorCode::OperationAborted => format!("operation aborted: {desc}"),
            ErrorCode::OperationUnsupported => format!("Operation not supported: {desc}"),
            ErrorCode::System => desc.to_string(),
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    Hello {
        version: u32,
        monitor_pid: i32,
    },
    Ok {
        value: Value,
    },
    /// State with libvirt's names (`running`, `booted`).
    State {
        state: String,
        reason: String,
    },
    Err(Failure),
    /// The monitor refused with libvirt's error code and message (`desc` is the text after
    /// libvirt's prefix for the code).
    Refused {
        code: ErrorCode,
        desc: String,
    },
}

/// A QMP event as QEMU sent it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QmpEvent {
    pub name: String,
    pub data: Value,
    pub timestamp: Option<(i64, i64)>,
}

impl From<&Event> for QmpEvent {
    fn from(e: &Event) -> Self {
        QmpEvent {
            name: e.name.clone(),
            data: e.data.clone(),
            timestamp: e.timestamp,
        }
    }
}

impl From<QmpEvent> for Event {
    fn from(e: QmpEvent) -> Self {
        Event {
            name: e.name,
            data: e.data,
            timestamp: e.timestamp,
        }
    }
}

/// Something the monitor sends unasked to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Push {
    Qmp(QmpEvent),
    Domain(super::events::DomainEvent),
}

/// One line on the socket from the monitor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Line {
    Reply(Reply),
    Push(Push),
}

/// What the monitor tells the process that started it, on its stdout, once: the guest runs,
/// or why it does not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum StartResult {
    Ready {
        monitor_pid: i32,
        qemu_pid: i32,
    },
    Failed {
        msg: String,
        log_tail: String,
    },
    /// The host refused what the start needs before QEMU ran (a tap, a bridge): libvirt's
    /// words, shown as they are.
    Refused {
        msg: String,
    },
    /// An adopted guest's lifecycle action ended it before the new monitor was ready (it
    /// powered off or panicked while unmonitored): how it ended, as [`Reply::State`] says it.
    Ended {
        state: String,
        reason: String,
    },
    /// The start's restore was aborted (`domjobabort`): libvirt's aborted-job message.
    Aborted {
        desc: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_roundtrip() {
        let r = Request::Qmp {
            command: "query-status".into(),
            args: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"op":"qmp","command":"query-status","args":null}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        let l = Line::Reply(Reply::State {
            state: "running".into(),
            reason: "booted".into(),
        });
        let s = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Line>(&s).unwrap(), l);
        assert!(serde_json::from_str::<Request>(r#"{"op":"format-disk"}"#).is_err());
    }
}

/// Why a caller ends a guest: `destroy`, a revert to a snapshot of the guest shut off, or
/// `dump --crash` (libvirt: VIR_DOMAIN_SHUTOFF_DESTROYED, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT,
/// VIR_DOMAIN_SHUTOFF_CRASHED).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    #[default]
    Destroyed,
    FromSnapshot,
    Crashed,
    /// Migrated to another connection (libvirt: VIR_DOMAIN_SHUTOFF_MIGRATED).
    Migrated,
}

impl StopReason {
    /// The shut-off reason as the status and `domstate --reason` word it.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Destroyed => "destroyed",
            StopReason::FromSnapshot => "from snapshot",
            StopReason::Crashed => "crashed",
            StopReason::Migrated => "migrated",
        }
    }
}
