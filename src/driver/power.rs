//! A guest's power and lifecycle beyond start and stop: an NMI, suspend to RAM or disk
//! through the guest agent and wakeup, the lifecycle actions of a defined or running
//! guest, and the signal to a guest process libvirt's QEMU driver does not send (libvirt:
//! qemuDomainInjectNMI, qemuDomainPMSuspendForDuration, qemuDomainPMWakeup,
//! qemuDomainSetLifecycleAction).

use super::DriverError;
use super::domain::{Domain, guest_err};
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use super::monitor::proto::Request;
use crate::domain::{DomainDef, FormatFlags};

/// libvirt's `virDomainLifecycle`: the guest event an action is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleType {
    Poweroff,
    Reboot,
    Crash,
}

impl LifecycleType {
    pub const ALL: [LifecycleType; 3] = [Self::Poweroff, Self::Reboot, Self::Crash];

    /// libvirt: virDomainLifecycleTypeToString
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Crash => "crash",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// libvirt's `virDomainLifecycleAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleAction {
    Destroy,
    Restart,
    RenameRestart,
    Preserve,
    CoredumpDestroy,
    CoredumpRestart,
}

impl LifecycleAction {
    pub const ALL: [LifecycleAction; 6] = [
        Self::Destroy,
        Self::Restart,
        Self::RenameRestart,
        Self::Preserve,
        Self::CoredumpDestroy,
        Self::CoredumpRestart,
    ];

    /// libvirt: virDomainLifecycleActionTypeToString
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Destroy => "destroy",
            Self::Restart => "restart",
            Self::RenameRestart => "rename-restart",
            Self::Preserve => "preserve",
            Self::CoredumpDestroy => "coredump-destroy",
            Self::CoredumpRestart => "coredump-restart",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Whether `action` may follow `ty`: a core dump only after a crash.
// libvirt: virDomainDefLifecycleActionAllowed
fn action_allowed(ty: LifecycleType, action: LifecycleAction) -> Result<(), DriverError> {
    let coredump = matches!(
        action,
        LifecycleAction::CoredumpDestroy | LifecycleAction::CoredumpRestart
    );
    if coredump && ty != LifecycleType::Crash {
        return Err(DriverError::Unsupported(format!(
            "Lifecycle event '{}' doesn't support '{}' action",
            ty.as_str(),
            action.as_str()
        )));
    }
    Ok(())
}

fn check_actions(def: &DomainDef) -> Result<(), DriverError> {
    crate::domain::validate::lifecycle_actions_valid(
        def.on_poweroff.as_deref(),
        def.on_reboot.as_deref(),
        def.on_crash.as_deref(),
    )
    .map_err(DriverError::Unsupported)
}

fn set_action(def: &mut DomainDef, ty: LifecycleType, action: LifecycleAction) {
    let slot = match ty {
        LifecycleType::Poweroff => &mut def.on_poweroff,
        LifecycleType::Reboot => &mut def.on_reboot,
        LifecycleType::Crash => &mut def.on_crash,
    };
    *slot = Some(action.as_str().to_string());
}

/// libvirt's `virNodeSuspendTarget`, as `virsh dompmsuspend` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendTarget {
    /// S3, suspend to RAM.
    Mem,
    /// S4, suspend to disk.
    Disk,
    /// Both: RAM saved to disk, then S3.
    Hybrid,
}

impl SuspendTarget {
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "mem" => Some(Self::Mem),
            "disk" => Some(Self::Disk),
            "hybrid" => Some(Self::Hybrid),
            _ => None,
        }
    }

    /// The guest agent's command for it (libvirt: qemuAgentSuspend).
    fn agent_command(self) -> &'static str {
        match self {
            Self::Mem => "guest-suspend-ram",
            Self::Disk => "guest-suspend-disk",
            Self::Hybrid => "guest-suspend-hybrid",
        }
    }
}

impl Domain<'_> {
    /// `virDomainInjectNMI`: a non-maskable interrupt to every vCPU.
    pub fn inject_nmi(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainInjectNMI")?;
        self.qmp_call("inject-nmi", None).map(|_| ())
    }

    /// `virDomainPMSuspendForDuration`: the guest agent suspends the guest to `target`;
    /// returns once QEMU saw it suspend. A `duration` is refused as libvirt's QEMU driver
    /// refuses it, and a state the domain's `<pm>` turned off.
    // libvirt: qemuDomainPMSuspendForDuration, qemuDomainPMSuspendAgent
    pub fn pm_suspend_for_duration(
        &self,
        target: SuspendTarget,
        duration: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainPMSuspendForDuration")?;
        if duration != 0 {
            return Err(DriverError::InvalidArg(
                "Duration not supported. Use 0 for now".into(),
            ));
        }
        let live = self.live_process()?;
        let off = |v: &Option<String>| v.as_deref() == Some("no");
        if let Some(pm) = &live.def.pm {
            if off(&pm.suspend_to_mem)
                && matches!(target, SuspendTarget::Mem | SuspendTarget::Hybrid)
            {
                return Err(DriverError::OperationUnsupported(
                    "S3 state is disabled for this domain".into(),
                ));
            }
            if off(&pm.suspend_to_disk) && target == SuspendTarget::Disk {
                return Err(DriverError::OperationUnsupported(
                    "S4 state is disabled for this domain".into(),
                ));
            }
        }
        let (mut g, _) = self.guest()?;
        g.call(&Request::PmSuspend {
            command: target.agent_command().into(),
        })
        .map(|_| ())
        .map_err(guest_err)
    }

    /// `virDomainPMWakeup`: QEMU's `system_wakeup`; QEMU refuses a guest that is not
    /// suspended.
    pub fn pm_wakeup(&self, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainPMWakeup")?;
        self.qmp_call("system_wakeup", None).map(|_| ())
    }

    /// `virDomainSetLifecycleAction`: `action` on `ty` (`<on_poweroff>`, ...) in the
    /// running guest (its monitor applies it from now on), the config, or both, as
    /// [`AFFECT_LIVE`] and [`AFFECT_CONFIG`] say.
    // libvirt: qemuDomainSetLifecycleAction
    pub fn set_lifecycle_action(
        &self,
        ty: LifecycleType,
        action: LifecycleAction,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetLifecycleAction",
        )?;
        action_allowed(ty, action)?;
        let impact = self.impact(flags)?;
        // Both definitions as they would become are checked before either changes.
        // libvirt: qemuDomainSetLifecycleActionValidate
        let live = if impact.live {
            let (g, _) = self.guest()?;
            let mut def = crate::domain::parse_unprepared(&g.status().xml)?;
            set_action(&mut def, ty, action);
            check_actions(&def)?;
            Some((g, def))
        } else {
            None
        };
        let config = if impact.config {
            let mut def = self.config_def()?;
            set_action(&mut def, ty, action);
            check_actions(&def)?;
            Some(def)
        } else {
            None
        };
        if let Some((mut g, def)) = live {
            let xml = def.to_xml(FormatFlags {
                inactive: false,
                secure: true,
            });
            g.set_live_xml(xml).map_err(guest_err)?;
        }
        if let Some(def) = config {
            self.save_config(def)?;
        }
        Ok(())
    }

    /// `virDomainSendProcessSignal`: libvirt's QEMU driver has none (only LXC guests'
    /// processes can be signalled), so after the API's own checks this is its refusal.
    // libvirt: virDomainSendProcessSignal
    pub fn send_process_signal(
        &self,
        pid: i64,
        _signum: u32,
        _flags: u32,
    ) -> Result<(), DriverError> {
        if pid == 0 {
            return Err(DriverError::InvalidArg(
                "pid_value in virDomainSendProcessSignal must not be zero".into(),
            ));
        }
        Err(DriverError::NoSupport("virDomainSendProcessSignal".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in LifecycleType::ALL {
            assert_eq!(LifecycleType::from_name(t.as_str()), Some(t));
        }
        for a in LifecycleAction::ALL {
            assert_eq!(LifecycleAction::from_name(a.as_str()), Some(a));
        }
        assert_eq!(LifecycleAction::from_name("rename_restart"), None);
        assert_eq!(SuspendTarget::from_name("mem"), Some(SuspendTarget::Mem));
        assert_eq!(SuspendTarget::from_name("ram"), None);
    }

    #[test]
    fn core_dumps_only_after_a_crash() {
        use LifecycleAction::*;
        assert!(action_allowed(LifecycleType::Crash, CoredumpDestroy).is_ok());
        assert!(action_allowed(LifecycleType::Reboot, Preserve).is_ok());
        let e = action_allowed(LifecycleType::Poweroff, CoredumpRestart).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: Lifecycle event 'poweroff' doesn't support 'coredump-restart' action"
        );
    }
}
