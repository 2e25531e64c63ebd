//! A guest's block I/O weights and limits, `<blkiotune>` (`virsh blkiotune`; libvirt:
//! qemuDomainGetBlkioParameters, qemuDomainSetBlkioParameters, qemuDomainParseBlkioDeviceStr,
//! qemuDomainMergeBlkioDevice).
//!
//! libvirt applies them to the running guest through its blkio cgroup; this driver keeps
//! QEMU in none of its own, so the running guest's are refused with libvirt's words for a
//! host without that controller. The config's are read and written as libvirt does.

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags};
use crate::domain::model::{BlkioDevice, Blkiotune};

/// The per-device parameters, in libvirt's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkioField {
    Weight,
    ReadIops,
    WriteIops,
    ReadBytes,
    WriteBytes,
}

impl BlkioField {
    pub const ALL: [BlkioField; 5] = [
        BlkioField::Weight,
        BlkioField::ReadIops,
        BlkioField::WriteIops,
        BlkioField::ReadBytes,
        BlkioField::WriteBytes,
    ];

    /// The typed parameter's name.
    pub fn param(self) -> &'static str {
        match self {
            BlkioField::Weight => "device_weight",
            BlkioField::ReadIops => "device_read_iops_sec",
            BlkioField::WriteIops => "device_write_iops_sec",
            BlkioField::ReadBytes => "device_read_bytes_sec",
            BlkioField::WriteBytes => "device_write_bytes_sec",
        }
    }

    fn get(self, d: &BlkioDevice) -> u64 {
        match self {
            BlkioField::Weight => d.weight.map_or(0, u64::from),
            BlkioField::ReadIops => d.read_iops_sec.unwrap_or(0),
            BlkioField::WriteIops => d.write_iops_sec.unwrap_or(0),
            BlkioField::ReadBytes => d.read_bytes_sec.unwrap_or(0),
            BlkioField::WriteBytes => d.write_bytes_sec.unwrap_or(0),
        }
    }

    fn set(self, d: &mut BlkioDevice, v: u64) {
        let v = (v != 0).then_some(v);
        match self {
            BlkioField::Weight => d.weight = v.map(|v| v as u32),
            BlkioField::ReadIops => d.read_iops_sec = v,
            BlkioField::WriteIops => d.write_iops_sec = v,
            BlkioField::ReadBytes => d.read_bytes_sec = v,
            BlkioField::WriteBytes => d.write_bytes_sec = v,
        }
    }

    /// Weights and IOPS are unsigned ints, byte rates unsigned long longs.
    fn max(self) -> u64 {
        match self {
            BlkioField::ReadBytes | BlkioField::WriteBytes => u64::MAX,
            _ => u32::MAX as u64,
        }
    }
}

/// One parameter as `virDomainGetBlkioParameters` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlkioParam {
    Weight(u32),
    Devices(BlkioField, String),
}

impl BlkioParam {
    pub fn name(&self) -> &'static str {
        match self {
            BlkioParam::Weight(_) => "weight",
            BlkioParam::Devices(f, _) => f.param(),
        }
    }
}

impl std::fmt::Display for BlkioParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlkioParam::Weight(w) => write!(f, "{w}"),
            BlkioParam::Devices(_, s) => f.write_str(s),
        }
    }
}

/// A change: the weight and per-device strings (`path,value,...`) to merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioChange {
    pub weight: Option<u32>,
    pub devices: Vec<(BlkioField, String)>,
}

fn no_cgroup() -> DriverError {
    DriverError::OperationInvalid("blkio cgroup isn't mounted".into())
}

/// `path,value[,path,value...]` (libvirt: qemuDomainParseBlkioDeviceStr).
pub fn parse_devices(text: &str, field: BlkioField) -> Result<Vec<(String, u64)>, DriverError> {
    let bad = || {
        DriverError::InvalidArg(format!(
            "unable to parse blkio device '{text}' '{}'",
            field.param()
        ))
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = text.split(',').collect();
    if !parts.len().is_multiple_of(2) {
        return Err(bad());
    }
    parts
        .chunks(2)
        .map(|c| {
            let v = c[1].parse::<u64>().ok().filter(|v| *v <= field.max());
            match v {
                Some(v) if !c[0].is_empty() => Ok((c[0].to_string(), v)),
                _ => Err(DriverError::InvalidArg(format!(
                    "invalid value '{}' for parameter '{}' of device '{}'",
                    c[1],
                    field.param(),
                    c[0]
                ))),
            }
        })
        .collect()
}

/// Merge `new` into `devs` (libvirt: qemuDomainMergeBlkioDevice); devices left with no
/// value go, as libvirt writes none of them.
fn merge(devs: &mut Vec<BlkioDevice>, field: BlkioField, new: &[(String, u64)]) {
    for (path, v) in new {
        if let Some(d) = devs.iter_mut().find(|d| &d.path == path) {
            field.set(d, *v);
        } else {
            let mut d = BlkioDevice {
                path: path.clone(),
                ..Default::default()
            };
            field.set(&mut d, *v);
            devs.push(d);
        }
    }
    devs.retain(|d| BlkioField::ALL.iter().any(|f| f.get(d) != 0));
}

/// The `path,value,...` text of one field (libvirt:
/// virDomainGetBlkioParametersAssignFromDef).
fn devices_text(devs: &[BlkioDevice], field: BlkioField) -> String {
    devs.iter()
        .filter(|d| field.get(d) != 0)
        .map(|d| format!("{},{}", d.path, field.get(d)))
        .collect::<Vec<_>>()
        .join(",")
}

impl Domain<'_> {
    /// `virDomainGetBlkioParameters`.
    pub fn blkio_parameters(&self, flags: u32) -> Result<Vec<BlkioParam>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetBlkioParameters",
        )?;
        self.check_privileged("Block I/O tuning")?;
        if !self.impact(flags)?.config {
            return Err(no_cgroup());
        }
        let b = self.config_def()?.blkiotune.unwrap_or_default();
        let mut out = vec![BlkioParam::Weight(b.weight.unwrap_or(0))];
        out.extend(
            BlkioField::ALL
                .iter()
                .map(|f| BlkioParam::Devices(*f, devices_text(&b.devices, *f))),
        );
        Ok(out)
    }

    /// `virDomainSetBlkioParameters`.
    pub fn set_blkio_parameters(&self, c: &BlkioChange, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetBlkioParameters",
        )?;
        self.check_privileged("Block I/O tuning")?;
        if self.impact(flags)?.live {
            return Err(no_cgroup());
        }
        let mut def = self.config_def()?;
        let mut b = def.blkiotune.take().unwrap_or_default();
        if let Some(w) = c.weight {
            b.weight = Some(w);
        }
        for (field, text) in &c.devices {
            let new = parse_devices(text, *field)?;
            merge(&mut b.devices, *field, &new);
        }
        def.blkiotune = (b != Blkiotune::default()).then_some(b);
        self.save_config(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_as_libvirt_parses_and_merges_them() {
        let mut devs = Vec::new();
        let w = parse_devices("/dev/sda,500,/dev/sdb,300", BlkioField::Weight).unwrap();
        merge(&mut devs, BlkioField::Weight, &w);
        let r = parse_devices("/dev/sda,1000", BlkioField::ReadBytes).unwrap();
        merge(&mut devs, BlkioField::ReadBytes, &r);
        assert_eq!(
            devices_text(&devs, BlkioField::Weight),
            "/dev/sda,500,/dev/sdb,300"
        );
        assert_eq!(devices_text(&devs, BlkioField::ReadBytes), "/dev/sda,1000");
        merge(
            &mut devs,
            BlkioField::Weight,
            &[("/dev/sdb".to_string(), 0)],
        );
        assert_eq!(devs.len(), 1);
        assert_eq!(
            parse_devices("/dev/sda", BlkioField::Weight)
                .unwrap_err()
                .to_string(),
            "invalid argument: unable to parse blkio device '/dev/sda' 'device_weight'"
        );
        assert_eq!(
            parse_devices("/dev/sda,x", BlkioField::WriteIops)
                .unwrap_err()
                .to_string(),
            "invalid argument: invalid value 'x' for parameter 'device_write_iops_sec' of device '/dev/sda'"
        );
    }
}
