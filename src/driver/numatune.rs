//! A guest's host NUMA memory policy, `<numatune><memory>` (`virsh numatune`; libvirt:
//! qemuDomainGetNumaParameters, qemuDomainSetNumaParameters).
//!
//! Read from the live or persistent definition as libvirt does. libvirt moves the running
//! guest's memory through its cpuset cgroup; this driver keeps QEMU in none of its own, so
//! a live change is refused with libvirt's words for a host without that controller.

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use crate::capabilities::cpuset::CpuSet;
use crate::domain::model::{Numatune, NumatuneMemory};

/// libvirt's memory modes (virDomainNumatuneMemMode), numbered as its typed parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumaMode {
    Strict,
    Preferred,
    Interleave,
    Restrictive,
}

impl NumaMode {
    pub const ALL: [NumaMode; 4] = [
        NumaMode::Strict,
        NumaMode::Preferred,
        NumaMode::Interleave,
        NumaMode::Restrictive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NumaMode::Strict => "strict",
            NumaMode::Preferred => "preferred",
            NumaMode::Interleave => "interleave",
            NumaMode::Restrictive => "restrictive",
        }
    }

    pub fn from_name(s: &str) -> Option<NumaMode> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// libvirt's number of the mode.
    pub fn from_index(i: i64) -> Option<NumaMode> {
        usize::try_from(i)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

/// What `virDomainGetNumaParameters` gives: `numa_mode` and `numa_nodeset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaParams {
    pub mode: NumaMode,
    pub nodeset: String,
}

fn memory_of(nt: Option<&Numatune>) -> NumaParams {
    let m = nt.and_then(|n| n.memory.as_ref());
    NumaParams {
        mode: m
            .and_then(|m| m.mode.as_deref())
            .and_then(NumaMode::from_name)
            .unwrap_or(NumaMode::Strict),
        nodeset: m.and_then(|m| m.nodeset.clone()).unwrap_or_default(),
    }
}

impl Domain<'_> {
    /// `virDomainGetNumaParameters`.
    pub fn numa_parameters(&self, flags: u32) -> Result<NumaParams, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetNumaParameters",
        )?;
        let impact = self.impact(flags)?;
        let def = if impact.live {
            self.live_guest()?.def
        } else {
            self.config_def()?
        };
        Ok(memory_of(def.numatune.as_ref()))
    }

    /// `virDomainSetNumaParameters`: the mode and/or nodeset of guest memory.
    pub fn set_numa_parameters(
        &self,
        mode: Option<NumaMode>,
        nodeset: Option<&str>,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetNumaParameters",
        )?;
        let parsed = nodeset
            .map(|s| {
                CpuSet::parse(s)
                    .map_err(|_| DriverError::InvalidArg(format!("Failed to parse bitmap '{s}'")))
            })
            .transpose()?;
        let impact = self.impact(flags)?;
        if impact.live {
            self.check_privileged("NUMA tuning")?;
            let live = memory_of(self.live_guest()?.def.numatune.as_ref());
            if mode.is_some_and(|m| m != live.mode) {
                return Err(DriverError::OperationInvalid(
                    "can't change numatune mode for running domain".into(),
                ));
            }
            return Err(DriverError::OperationInvalid(
                "cgroup cpuset controller is not mounted".into(),
            ));
        }
        let mut def = self.config_def()?;
        let mut nt = def.numatune.take().unwrap_or_default();
        let mut m = nt.memory.take().unwrap_or_default();
        if let Some(mode) = mode {
            m.mode = Some(mode.name().into());
        }
        if let Some(set) = parsed {
            // libvirt writes the set in its own range form, placed statically.
            m.nodeset = Some(set.to_string());
            m.placement = None;
        }
        if m.mode.is_none() && (m.nodeset.is_some() || m.placement.is_some()) {
            m.mode = Some(NumaMode::Strict.name().into());
        }
        nt.memory = (m != NumatuneMemory::default()).then_some(m);
        def.numatune = (nt != Numatune::default()).then_some(nt);
        self.save_config(def)
    }
}
