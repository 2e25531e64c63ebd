//! A guest's memory limits, `<memtune>` (`virsh memtune`; libvirt:
//! qemuDomainGetMemoryParameters, qemuDomainSetMemoryParameters,
//! virDomainCgroupSetMemoryLimitParameters).
//!
//! libvirt applies the limits to the running guest through its memory cgroup. This driver
//! keeps QEMU in no cgroup of its own, so the running guest's limits are refused with
//! libvirt's words for a host without that controller; the config's are read and written
//! as libvirt does.

use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use super::{ConnectUri, DriverError};
use crate::domain::model::Memtune;

/// libvirt's `VIR_DOMAIN_MEMORY_PARAM_UNLIMITED`: no limit (KiB).
pub const MEMORY_PARAM_UNLIMITED: u64 = 9_007_199_254_740_991;

/// One limit and its value in KiB ([`MEMORY_PARAM_UNLIMITED`] when unset).
pub type MemoryParam = (&'static str, u64);

/// A change of limits, in KiB ([`MEMORY_PARAM_UNLIMITED`] removes one); `None` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemtuneChange {
    pub hard_limit: Option<u64>,
    pub soft_limit: Option<u64>,
    pub swap_hard_limit: Option<u64>,
    /// Not a QEMU parameter: libvirt's typed-parameter check refuses it.
    pub min_guarantee: Option<u64>,
}

fn no_cgroup() -> DriverError {
    DriverError::OperationInvalid("cgroup memory controller is not mounted".into())
}

/// Apply `c` to `m` (libvirt: virDomainCgroupSetMemoryLimitParameters for a persistent
/// definition), with libvirt's check that the hard limit stays within swap's.
fn apply(m: &mut Memtune, c: &MemtuneChange) -> Result<(), DriverError> {
    let limit = |v: u64| (v < MEMORY_PARAM_UNLIMITED).then_some(v);
    let hard = c.hard_limit.map_or(m.hard_limit, limit);
    let swap = c.swap_hard_limit.map_or(m.swap_hard_limit, limit);
    if let (Some(h), Some(s)) = (hard, swap)
        && h > s
    {
        return Err(DriverError::InvalidArg(
            "memory hard_limit tunable value must be lower than or equal to swap_hard_limit".into(),
        ));
    }
    m.hard_limit = hard;
    m.swap_hard_limit = swap;
    if let Some(v) = c.soft_limit {
        m.soft_limit = limit(v);
    }
    Ok(())
}

impl Domain<'_> {
    /// libvirt's QEMU driver tunes cgroups only when privileged (root, or the system URI).
    pub(crate) fn check_privileged(&self, what: &str) -> Result<(), DriverError> {
        let privileged = match &self.connect().uri {
            ConnectUri::System => true,
            ConnectUri::Embed { .. } => nix::unistd::geteuid().is_root(),
            _ => false,
        };
        if !privileged {
            return Err(DriverError::OperationUnsupported(format!(
                "{what} is not available in session mode"
            )));
        }
        Ok(())
    }

    /// `virDomainGetMemoryParameters`: hard, soft and swap limits in KiB.
    pub fn memory_parameters(&self, flags: u32) -> Result<Vec<MemoryParam>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetMemoryParameters",
        )?;
        self.check_privileged("Memory tuning")?;
        let impact = self.impact(flags)?;
        if !impact.config {
            return Err(no_cgroup());
        }
        let m = self.config_def()?.memtune.unwrap_or_default();
        let v = |x: Option<u64>| x.unwrap_or(MEMORY_PARAM_UNLIMITED);
        Ok(vec![
            ("hard_limit", v(m.hard_limit)),
            ("soft_limit", v(m.soft_limit)),
            ("swap_hard_limit", v(m.swap_hard_limit)),
        ])
    }

    /// `virDomainSetMemoryParameters`: change the config's limits.
    pub fn set_memory_parameters(&self, c: &MemtuneChange, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetMemoryParameters",
        )?;
        if c.min_guarantee.is_some() {
            return Err(DriverError::ArgumentUnsupported(
                "parameter 'min_guarantee' not supported".into(),
            ));
        }
        self.check_privileged("Memory tuning")?;
        let impact = self.impact(flags)?;
        if impact.live {
            return Err(no_cgroup());
        }
        let mut def = self.config_def()?;
        let mut m = def.memtune.take().unwrap_or_default();
        apply(&mut m, c)?;
        def.memtune = (m != Memtune::default()).then_some(m);
        self.save_config(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_libvirt_sets_them() {
        let mut m = Memtune::default();
        apply(
            &mut m,
            &MemtuneChange {
                hard_limit: Some(1024),
                soft_limit: Some(512),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((m.hard_limit, m.soft_limit), (Some(1024), Some(512)));
        let e = apply(
            &mut m,
            &MemtuneChange {
                swap_hard_limit: Some(100),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: memory hard_limit tunable value must be lower than or equal to swap_hard_limit"
        );
        apply(
            &mut m,
            &MemtuneChange {
                hard_limit: Some(MEMORY_PARAM_UNLIMITED),
                swap_hard_limit: Some(100),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((m.hard_limit, m.swap_hard_limit), (None, Some(100)));
    }
}
