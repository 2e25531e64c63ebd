//! A guest's CPU scheduler parameters, `<cputune>`'s shares, periods and quotas (`virsh
//! schedinfo`; libvirt: qemuDomainGetSchedulerType, qemuDomainGetSchedulerParametersFlags,
//! qemuDomainSetSchedulerParametersFlags).
//!
//! libvirt applies them to the running guest through its CPU cgroup. This driver keeps
//! QEMU in no cgroup of its own, so the running guest's are refused with libvirt's words
//! for a host without that controller; the config's are read and written as libvirt does.

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use crate::domain::model::{CPUTUNE_BW, Cputune};
use crate::domain::xml::XmlNode;

/// A scheduler parameter's value, typed as libvirt types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedValue {
    ULLong(u64),
    LLong(i64),
}

impl std::fmt::Display for SchedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedValue::ULLong(v) => write!(f, "{v}"),
            SchedValue::LLong(v) => write!(f, "{v}"),
        }
    }
}

/// The parameters, in libvirt's order, with whether each is a quota (signed).
pub const SCHED_PARAMS: &[(&str, bool)] = &[
    ("cpu_shares", false),
    ("vcpu_period", false),
    ("vcpu_quota", true),
    ("emulator_period", false),
    ("emulator_quota", true),
    ("global_period", false),
    ("global_quota", true),
    ("iothread_period", false),
    ("iothread_quota", true),
];

/// libvirt's bounds (QEMU_SCHED_MIN_PERIOD .. QEMU_SCHED_MAX_QUOTA).
const MIN_PERIOD: i128 = 1000;
const MAX_PERIOD: i128 = 1_000_000;
const MIN_QUOTA: i128 = 1000;
const MAX_QUOTA: i128 = 17_592_186_044_415;

fn no_cgroup() -> DriverError {
    DriverError::OperationInvalid("cgroup CPU controller is not mounted".into())
}

/// The element of `<cputune>` holding parameter `name`.
fn element(name: &str) -> &str {
    match name {
        "cpu_shares" => "shares",
        "vcpu_period" => "period",
        "vcpu_quota" => "quota",
        other => other,
    }
}

fn read(ct: &Cputune, name: &str) -> Option<String> {
    match element(name) {
        "shares" => ct.shares.clone(),
        "period" => ct.period.clone(),
        "quota" => ct.quota.clone(),
        e => ct
            .extra
            .children
            .iter()
            .find(|c| c.name == e)
            .map(|c| c.text.trim().to_string()),
    }
}

fn write(ct: &mut Cputune, name: &str, value: String) {
    match element(name) {
        "shares" => ct.shares = Some(value),
        "period" => ct.period = Some(value),
        "quota" => ct.quota = Some(value),
        e => {
            ct.extra.children.retain(|c| c.name != e);
            // Kept in libvirt's order among the other periods and quotas.
            let rank = |n: &str| CPUTUNE_BW.iter().position(|x| *x == n);
            let at = ct
                .extra
                .children
                .iter()
                .position(|c| rank(&c.name).is_some_and(|r| Some(r) > rank(e)))
                .unwrap_or(ct.extra.children.len());
            ct.extra.children.insert(at, XmlNode::new(e).t(value));
        }
    }
}

/// Apply one parameter with libvirt's range checks (libvirt: SCHED_RANGE_CHECK). A period
/// or quota of 0 means "not set" and is stored as nothing.
fn apply(ct: &mut Cputune, name: &str, value: SchedValue) -> Result<(), DriverError> {
    let v: i128 = match value {
        SchedValue::ULLong(u) => u as i128,
        SchedValue::LLong(l) => l as i128,
    };
    let range = match name {
        "cpu_shares" => None,
        n if n.ends_with("_period") => Some((MIN_PERIOD, MAX_PERIOD)),
        _ => Some((MIN_QUOTA, MAX_QUOTA)),
    };
    if let Some((min, max)) = range {
        if (v > 0 && v < min) || v > max {
            return Err(DriverError::InvalidArg(format!(
                "value of '{name}' is out of range [{min}, {max}]"
            )));
        }
        if v == 0 {
            match element(name) {
                "period" => ct.period = None,
                "quota" => ct.quota = None,
                e => ct.extra.children.retain(|c| c.name != e),
            }
            return Ok(());
        }
    }
    write(ct, name, v.to_string());
    Ok(())
}

impl Domain<'_> {
    /// `virDomainGetSchedulerType`: the scheduler's name and how many parameters it has.
    pub fn scheduler_type(&self) -> Result<(String, usize), DriverError> {
        self.check_privileged("CPU tuning")?;
        if self.is_active()? {
            return Err(no_cgroup());
        }
        Ok(("posix".into(), SCHED_PARAMS.len()))
    }

    /// `virDomainGetSchedulerParametersFlags`.
    pub fn scheduler_parameters_flags(
        &self,
        flags: u32,
    ) -> Result<Vec<(&'static str, SchedValue)>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetSchedulerParametersFlags",
        )?;
        self.check_privileged("CPU tuning")?;
        let impact = self.impact(flags)?;
        if !impact.config {
            return Err(no_cgroup());
        }
        let ct = self.config_def()?.cputune.unwrap_or_default();
        Ok(SCHED_PARAMS
            .iter()
            .map(|&(name, signed)| {
                let text = read(&ct, name).unwrap_or_default();
                let v = if signed {
                    SchedValue::LLong(text.parse().unwrap_or(0))
                } else {
                    SchedValue::ULLong(text.parse().unwrap_or(0))
                };
                (name, v)
            })
            .collect())
    }

    /// `virDomainSetSchedulerParametersFlags`.
    pub fn set_scheduler_parameters_flags(
        &self,
        params: &[(&str, SchedValue)],
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetSchedulerParametersFlags",
        )?;
        for (name, v) in params {
            let Some(&(_, signed)) = SCHED_PARAMS.iter().find(|(n, _)| n == name) else {
                return Err(DriverError::ArgumentUnsupported(format!(
                    "parameter '{name}' not supported"
                )));
            };
            if signed != matches!(v, SchedValue::LLong(_)) {
                let (got, want) = if signed {
                    ("ullong", "llong")
                } else {
                    ("llong", "ullong")
                };
                return Err(DriverError::InvalidArg(format!(
                    "invalid type '{got}' for parameter '{name}', expected '{want}'"
                )));
            }
        }
        self.check_privileged("CPU tuning")?;
        let impact = self.impact(flags)?;
        if impact.live {
            return Err(no_cgroup());
        }
        let mut def = self.config_def()?;
        let mut ct = def.cputune.take().unwrap_or_default();
        for (name, v) in params {
            apply(&mut ct, name, *v)?;
        }
        def.cputune = (ct != Cputune::default()).then_some(ct);
        self.save_config(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_ranges_as_libvirt_checks_them() {
        let mut ct = Cputune::default();
        apply(&mut ct, "cpu_shares", SchedValue::ULLong(2048)).unwrap();
        apply(&mut ct, "iothread_quota", SchedValue::LLong(5000)).unwrap();
        apply(&mut ct, "emulator_period", SchedValue::ULLong(20000)).unwrap();
        assert_eq!(read(&ct, "cpu_shares").as_deref(), Some("2048"));
        let names: Vec<_> = ct.extra.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["emulator_period", "iothread_quota"]);
        let e = apply(&mut ct, "vcpu_period", SchedValue::ULLong(10)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: value of 'vcpu_period' is out of range [1000, 1000000]"
        );
        apply(&mut ct, "emulator_period", SchedValue::ULLong(0)).unwrap();
        assert_eq!(read(&ct, "emulator_period"), None);
        // A negative quota is "no limit" and stays as given.
        apply(&mut ct, "vcpu_quota", SchedValue::LLong(-1)).unwrap();
        assert_eq!(ct.quota.as_deref(), Some("-1"));
    }
}
