//! The snapshot definition (libvirt: virDomainSnapshotDef, virDomainSnapshotDiskDef).

use crate::domain::XmlNode;

/// Where a disk's (or the memory's) snapshot goes (libvirt: virDomainSnapshotLocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    No,
    Internal,
    External,
    Manual,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::No => "no",
            Location::Internal => "internal",
            Location::External => "external",
            Location::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no" => Location::No,
            "internal" => Location::Internal,
            "external" => Location::External,
            "manual" => Location::Manual,
            _ => return None,
        })
    }
}

/// The domain's state when the snapshot was taken (libvirt: virDomainSnapshotState, the
/// domain states plus `disk-snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotState {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    PmSuspended,
    DiskSnapshot,
}

impl SnapshotState {
    pub const ALL: [SnapshotState; 9] = [
        SnapshotState::NoState,
        SnapshotState::Running,
        SnapshotState::Blocked,
        SnapshotState::Paused,
        SnapshotState::Shutdown,
        SnapshotState::Shutoff,
        SnapshotState::Crashed,
        SnapshotState::PmSuspended,
        SnapshotState::DiskSnapshot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::NoState => "nostate",
            SnapshotState::Running => "running",
            SnapshotState::Blocked => "blocked",
            SnapshotState::Paused => "paused",
            SnapshotState::Shutdown => "shutdown",
            SnapshotState::Shutoff => "shutoff",
            SnapshotState::Crashed => "crashed",
            SnapshotState::PmSuspended => "pmsuspended",
            SnapshotState::DiskSnapshot => "disk-snapshot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the snapshot holds the guest's memory, i.e. reverting gives a running or
    /// paused guest (libvirt: virDomainSnapshotIsExternal's counterpart for state).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            SnapshotState::Running | SnapshotState::Blocked | SnapshotState::Paused
        )
    }
}

/// One `<disk>` of `<disks>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDisk {
    /// The target (`vda`) or the source path the user named.
    pub name: String,
    pub snapshot: Option<Location>,
    /// `file`, `block`, `network`: only for external snapshots (default `file`).
    pub source_type: Option<String>,
    /// `<driver>` (its `type`, the overlay's format), kept as a tree.
    pub driver: Option<XmlNode>,
    /// `<source>` (the overlay), kept as a tree.
    pub source: Option<XmlNode>,
}

impl SnapshotDisk {
    /// The overlay's file for an external snapshot of a file disk.
    pub fn source_file(&self) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.attr("file"))
    }

    /// The overlay's format (`<driver type>`), when given.
    pub fn driver_type(&self) -> Option<&str> {
        self.driver.as_ref().and_then(|d| d.attr("type"))
    }
}

/// A `<domainsnapshot>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDef {
    pub name: String,
    pub description: Option<String>,
    pub state: Option<SnapshotState>,
    /// The parent snapshot's name.
    pub parent: Option<String>,
    /// Seconds since the epoch.
    pub creation_time: Option<i64>,
    /// `<memory snapshot=.. file=..>`.
    pub memory: Option<Location>,
    pub memory_file: Option<String>,
    pub disks: Vec<SnapshotDisk>,
    /// The overlays made when the domain was last reverted to this external snapshot while
    /// it had children (whose images its `disks` stay), so the next revert can drop them
    /// (`<revertDisks>`, libvirt 9.9+).
    pub revert_disks: Vec<SnapshotDisk>,
    /// The domain definition at the time of the snapshot.
    pub domain: Option<XmlNode>,
    /// The inactive definition, for a snapshot of a running persistent domain.
    pub inactive_domain: Option<XmlNode>,
    /// Hypervisor data (`<cookie>`), kept as a tree.
    pub cookie: Option<XmlNode>,
    /// The current-snapshot marker (`<active>1</active>`), only in the driver's own files.
    pub current: bool,
}

impl SnapshotDef {
    /// libvirt: virDomainSnapshotDefIsExternal.
    pub fn is_external(&self) -> bool {
        self.memory == Some(Location::External)
            || self
                .disks
                .iter()
                .any(|d| d.snapshot == Some(Location::External))
    }

    /// The domain's name, from the definition inside.
    pub fn domain_name(&self) -> Option<&str> {
        self.domain
            .as_ref()
            .and_then(|d| d.child("name"))
            .map(|n| n.text.as_str())
    }
}
