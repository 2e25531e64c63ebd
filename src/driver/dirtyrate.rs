//! `virDomainStartDirtyRateCalc`: QEMU measures how fast the guest dirties its memory
//! (`calc-dirty-rate`); `domstats --dirtyrate` reads the result (libvirt:
//! qemuDomainStartDirtyRateCalc).

use serde_json::json;

use super::DriverError;
use super::domain::Domain;
use super::hotplug::check_flags;

/// `VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING`: sample pages (QEMU's default mode).
pub const DIRTYRATE_MODE_PAGE_SAMPLING: u32 = 0;
/// `VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP`: count through the dirty bitmap.
pub const DIRTYRATE_MODE_DIRTY_BITMAP: u32 = 1;
/// `VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING`: count through KVM's dirty ring.
pub const DIRTYRATE_MODE_DIRTY_RING: u32 = 2;

/// The measuring periods libvirt accepts, in seconds.
const PERIOD: std::ops::RangeInclusive<i32> = 1..=60;

impl Domain<'_> {
    /// Start measuring the guest's memory dirty rate over `seconds` (1 to 60).
    pub fn start_dirty_rate_calc(&self, seconds: i32, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            DIRTYRATE_MODE_DIRTY_BITMAP | DIRTYRATE_MODE_DIRTY_RING,
            "qemuDomainStartDirtyRateCalc",
        )?;
        if !PERIOD.contains(&seconds) {
            return Err(DriverError::Unsupported(format!(
                "seconds={seconds} is invalid, please choose value within [{}, {}].",
                PERIOD.start(),
                PERIOD.end()
            )));
        }
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let mode = if flags & DIRTYRATE_MODE_DIRTY_BITMAP != 0 {
            Some("dirty-bitmap")
        } else if flags & DIRTYRATE_MODE_DIRTY_RING != 0 {
            // KVM's dirty ring exists only when the domain asked for it.
            let def = self.live_guest()?.def;
            let ring = def
                .features
                .as_ref()
                .and_then(|f| f.kvm.as_ref())
                .is_some_and(|k| {
                    k.items
                        .iter()
                        .any(|i| i.name == "dirty-ring" && i.state.as_deref() == Some("on"))
                });
            if !ring {
                return Err(DriverError::OperationUnsupported(
                    "dirty-ring calculation mode requires dirty-ring feature enabled.".into(),
                ));
            }
            Some("dirty-ring")
        } else {
            None
        };
        let mut args = json!({ "calc-time": seconds });
        if let Some(m) = mode {
            args["mode"] = json!(m);
        }
        self.qmp_call("calc-dirty-rate", Some(args)).map(drop)
    }
}
