//! A guest's perf events, `<perf>` (`virsh perf`; libvirt: qemuDomainGetPerfEvents,
//! qemuDomainSetPerfEvents).
//!
//! libvirt opens the host's perf counters for QEMU's pid in its daemon and keeps them open
//! while the guest runs. This driver has no daemon to hold them (and no counters were
//! opened at start), so the running guest shows every event disabled and enabling one live
//! is refused with libvirt's words for a host without perf; the config's events are read
//! and written as libvirt does.

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};

/// libvirt's perf events (virPerfEvent), in its order.
pub const PERF_EVENTS: &[&str] = &[
    "cmt",
    "mbmt",
    "mbml",
    "cpu_cycles",
    "instructions",
    "cache_references",
    "cache_misses",
    "branch_instructions",
    "branch_misses",
    "bus_cycles",
    "stalled_cycles_frontend",
    "stalled_cycles_backend",
    "ref_cpu_cycles",
    "cpu_clock",
    "task_clock",
    "page_faults",
    "context_switches",
    "cpu_migrations",
    "page_faults_min",
    "page_faults_maj",
    "alignment_faults",
    "emulation_faults",
];

fn check_names(events: &[(&str, bool)]) -> Result<(), DriverError> {
    for (name, _) in events {
        if !PERF_EVENTS.contains(name) {
            return Err(DriverError::ArgumentUnsupported(format!(
                "parameter '{name}' not supported"
            )));
        }
    }
    Ok(())
}

impl Domain<'_> {
    /// `virDomainGetPerfEvents`: every event and whether it is enabled.
    pub fn perf_events(&self, flags: u32) -> Result<Vec<(&'static str, bool)>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetPerfEvents",
        )?;
        if self.impact(flags)?.live {
            return Ok(PERF_EVENTS.iter().map(|e| (*e, false)).collect());
        }
        let def = self.config_def()?;
        let conf = def.perf.unwrap_or_default();
        Ok(PERF_EVENTS
            .iter()
            .map(|e| {
                let on = conf.iter().any(|(n, v)| n == e && v == "yes");
                (*e, on)
            })
            .collect())
    }

    /// `virDomainSetPerfEvents`: enable or disable events.
    pub fn set_perf_events(&self, events: &[(&str, bool)], flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetPerfEvents",
        )?;
        check_names(events)?;
        let impact = self.impact(flags)?;
        // Disabling an event that is not enabled is nothing to do, as in libvirt.
        if impact.live && events.iter().any(|(_, on)| *on) {
            return Err(DriverError::System {
                msg: "Perf not supported on this platform".into(),
                err: std::io::Error::from_raw_os_error(nix::libc::ENXIO),
            });
        }
        if impact.config {
            let mut def = self.config_def()?;
            let mut conf = def.perf.take().unwrap_or_default();
            for (name, on) in events {
                let v = if *on { "yes" } else { "no" }.to_string();
                match conf.iter_mut().find(|(n, _)| n == name) {
                    Some(e) => e.1 = v,
                    None => conf.push((name.to_string(), v)),
                }
            }
            // libvirt keeps the events in its own order.
            conf.sort_by_key(|(n, _)| PERF_EVENTS.iter().position(|e| e == n));
            def.perf = Some(conf);
            self.save_config(def)?;
        }
        Ok(())
    }
}
