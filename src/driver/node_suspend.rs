//! Suspending the host (`virsh nodesuspend`; libvirt: virNodeSuspendForDuration,
//! virNodeSuspend). A library that drives guests has no business putting the machine it
//! runs on to sleep: every target is refused as one the host does not support, after
//! libvirt's own checks of the arguments.

use super::{Connect, DriverError};

/// libvirt's `virNodeSuspendTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeSuspendTarget {
    /// Suspend-to-RAM.
    Mem,
    /// Suspend-to-Disk.
    Disk,
    /// Hybrid-Suspend.
    Hybrid,
}

impl NodeSuspendTarget {
    /// virsh's word for a target (`mem`, `disk`, `hybrid`).
    pub fn from_virsh(s: &str) -> Option<NodeSuspendTarget> {
        match s {
            "mem" => Some(NodeSuspendTarget::Mem),
            "disk" => Some(NodeSuspendTarget::Disk),
            "hybrid" => Some(NodeSuspendTarget::Hybrid),
            _ => None,
        }
    }

    /// libvirt's name of the target in its refusal.
    fn name(self) -> &'static str {
        match self {
            NodeSuspendTarget::Mem => "Suspend-to-RAM",
            NodeSuspendTarget::Disk => "Suspend-to-Disk",
            NodeSuspendTarget::Hybrid => "Hybrid-Suspend",
        }
    }
}

impl Connect {
    /// `virNodeSuspendForDuration`: always refused (see the module's comment), as libvirt
    /// refuses a target the host cannot do.
    pub fn node_suspend_for_duration(
        &self,
        target: NodeSuspendTarget,
        _duration: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        super::hotplug::check_flags(flags, 0, "virNodeSuspendForDuration")?;
        Err(DriverError::ArgumentUnsupported(target.name().into()))
    }
}
