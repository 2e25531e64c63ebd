//! An interface's bandwidth limits, `<bandwidth>` (`virsh domiftune`; libvirt:
//! qemuDomainGetInterfaceParameters, qemuDomainSetInterfaceParameters).
//!
//! Read from the live or persistent definition as libvirt does. libvirt shapes a running
//! guest's traffic with `tc` on the host side of a tap; this driver does not, so a live
//! change is refused, while types libvirt cannot shape get libvirt's refusal.

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use super::stats::find_interface;
use crate::domain::devices::{Bandwidth, Rate};

/// The parameters, in libvirt's order.
pub const IF_PARAMS: &[&str] = &[
    "inbound.average",
    "inbound.peak",
    "inbound.burst",
    "inbound.floor",
    "outbound.average",
    "outbound.peak",
    "outbound.burst",
];

/// A change of one direction: given means replaced (an average and floor of 0 remove it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateChange {
    pub average: u32,
    pub peak: u32,
    pub burst: u32,
    pub floor: u32,
}

/// Whether libvirt can shape an interface of type `itype` (libvirt:
/// virNetDevSupportsBandwidth).
fn supports_bandwidth(itype: &str) -> bool {
    matches!(itype, "bridge" | "network" | "direct" | "ethernet")
}

fn to_rate(c: &RateChange, with_floor: bool) -> Option<Rate> {
    let keep = c.average != 0 || (with_floor && c.floor != 0);
    let nz = |v: u32| (v != 0).then_some(u64::from(v));
    keep.then(|| Rate {
        average: nz(c.average),
        peak: nz(c.peak),
        burst: nz(c.burst),
        floor: if with_floor { nz(c.floor) } else { None },
    })
}

/// libvirt: virNetDevBandwidthValidate.
fn validate(b: &Bandwidth) -> Result<(), DriverError> {
    if let Some(out) = &b.outbound
        && out.floor.is_some()
    {
        return Err(DriverError::Unsupported(
            "floor attribute is not supported for outbound bandwidth".into(),
        ));
    }
    Ok(())
}

impl Domain<'_> {
    /// `virDomainGetInterfaceParameters`: the seven values, 0 where unset.
    pub fn interface_parameters(
        &self,
        device: &str,
        flags: u32,
    ) -> Result<Vec<(&'static str, u32)>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetInterfaceParameters",
        )?;
        let def = if self.impact(flags)?.live {
            self.live_guest()?.def
        } else {
            self.config_def()?
        };
        let net = &def.devices.interfaces[find_interface(&def, device)?];
        let b = net.bandwidth.clone().unwrap_or_default();
        let v = |r: &Option<Rate>, f: fn(&Rate) -> Option<u64>| {
            r.as_ref().and_then(f).unwrap_or(0) as u32
        };
        let (i, o) = (&b.inbound, &b.outbound);
        Ok(vec![
            (IF_PARAMS[0], v(i, |r| r.average)),
            (IF_PARAMS[1], v(i, |r| r.peak)),
            (IF_PARAMS[2], v(i, |r| r.burst)),
            (IF_PARAMS[3], v(i, |r| r.floor)),
            (IF_PARAMS[4], v(o, |r| r.average)),
            (IF_PARAMS[5], v(o, |r| r.peak)),
            (IF_PARAMS[6], v(o, |r| r.burst)),
        ])
    }

    /// `virDomainSetInterfaceParameters`: replace the inbound and/or outbound limits.
    pub fn set_interface_parameters(
        &self,
        device: &str,
        inbound: Option<RateChange>,
        outbound: Option<RateChange>,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetInterfaceParameters",
        )?;
        let impact = self.impact(flags)?;
        let live = if impact.live {
            let def = self.live_guest()?.def;
            let i = find_interface(&def, device)?;
            Some(def.devices.interfaces[i].itype.clone())
        } else {
            None
        };
        let mut config = if impact.config {
            let def = self.config_def()?;
            let i = find_interface(&def, device)?;
            Some((def, i))
        } else {
            None
        };
        let types = live.iter().cloned().chain(
            config
                .iter()
                .map(|(d, i)| d.devices.interfaces[*i].itype.clone()),
        );
        for t in types {
            if !supports_bandwidth(&t) {
                return Err(DriverError::OperationUnsupported(format!(
                    "setting bandwidth on interfaces of type '{t}' is not implemented yet"
                )));
            }
        }
        if live.is_some() {
            return Err(DriverError::OperationUnsupported(
                "bandwidth of a running guest's interface cannot be changed: this driver does not shape traffic with tc".into(),
            ));
        }
        if let Some((mut def, i)) = config.take() {
            let net = &mut def.devices.interfaces[i];
            let mut b = net.bandwidth.take().unwrap_or_default();
            if let Some(c) = inbound {
                b.inbound = to_rate(&c, true);
            }
            if let Some(c) = outbound {
                b.outbound = to_rate(&c, false);
            }
            validate(&b)?;
            net.bandwidth = (b != Bandwidth::default()).then_some(b);
            self.save_config(def)?;
        }
        Ok(())
    }
}
