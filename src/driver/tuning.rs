//! Per-device knobs of a guest that virsh reaches outside attach/detach: an interface's link,
//! a disk's I/O throttle and write threshold, the disks' I/O errors and the control
//! interface's state (libvirt: qemuDomainUpdateDeviceFlags for `<link>`,
//! qemuDomainSetBlockIoTune, qemuDomainGetBlockIoTune, qemuDomainSetBlockThreshold,
//! qemuDomainGetDiskErrors, qemuDomainGetControlInfo).

use serde_json::{Map, Value, json};

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags, qmp};
use super::process::InitCommand;
use crate::domain::DomainDef;
use crate::domain::devices::{Disk, IOTUNE_ORDER, IoTune};

/// The largest throttle value libvirt accepts (libvirt: QEMU_BLOCK_IOTUNE_MAX).
pub const BLOCK_IOTUNE_MAX: u64 = 1_000_000_000_000_000;

/// libvirt's names of the throttle values and QEMU's (`block_set_io_throttle`,
/// `query-block`), in libvirt's order, `group_name` apart.
const QEMU_NAMES: &[(&str, &str)] = &[
    ("total_bytes_sec", "bps"),
    ("read_bytes_sec", "bps_rd"),
    ("write_bytes_sec", "bps_wr"),
    ("total_iops_sec", "iops"),
    ("read_iops_sec", "iops_rd"),
    ("write_iops_sec", "iops_wr"),
    ("total_bytes_sec_max", "bps_max"),
    ("read_bytes_sec_max", "bps_rd_max"),
    ("write_bytes_sec_max", "bps_wr_max"),
    ("total_iops_sec_max", "iops_max"),
    ("read_iops_sec_max", "iops_rd_max"),
    ("write_iops_sec_max", "iops_wr_max"),
    ("size_iops_sec", "iops_size"),
    ("total_bytes_sec_max_length", "bps_max_length"),
    ("read_bytes_sec_max_length", "bps_rd_max_length"),
    ("write_bytes_sec_max_length", "bps_wr_max_length"),
    ("total_iops_sec_max_length", "iops_max_length"),
    ("read_iops_sec_max_length", "iops_rd_max_length"),
    ("write_iops_sec_max_length", "iops_wr_max_length"),
];

/// One throttle setting as `virDomainGetBlockIoTune` returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum IoTuneValue {
    Number(u64),
    Text(String),
}

impl std::fmt::Display for IoTuneValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoTuneValue::Number(n) => write!(f, "{n}"),
            IoTuneValue::Text(s) => f.write_str(s),
        }
    }
}

/// What went wrong on a disk (libvirt: virDomainDiskErrorCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskErrorCode {
    /// `VIR_DOMAIN_DISK_ERROR_UNSPEC`.
    Unspec,
    /// `VIR_DOMAIN_DISK_ERROR_NO_SPACE`.
    NoSpace,
}

impl DiskErrorCode {
    /// virsh's words (libvirt: virshDomainIOErrorToString).
    pub fn as_virsh(self) -> &'static str {
        match self {
            DiskErrorCode::Unspec => "unspecified error",
            DiskErrorCode::NoSpace => "no space",
        }
    }
}

/// One disk with an I/O error (`virDomainGetDiskErrors`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiskError {
    pub disk: String,
    pub error: DiskErrorCode,
}

/// The state of the control interface (libvirt: virDomainControlState).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlState {
    Ok,
}

impl ControlState {
    /// virsh's words (libvirt: virshDomainControlStateToString).
    pub fn as_virsh(self) -> &'static str {
        match self {
            ControlState::Ok => "ok",
        }
    }
}

/// The disk named by target or source path (libvirt: qemuDomainDiskByName).
fn disk_by_name<'d>(def: &'d DomainDef, name: &str) -> Result<&'d Disk, DriverError> {
    let i = disk_index(def, name).ok_or_else(|| not_found(name))?;
    Ok(&def.devices.disks[i])
}

fn not_found(name: &str) -> DriverError {
    DriverError::InvalidArg(format!("disk '{name}' not found in domain"))
}

fn disk_index(def: &DomainDef, name: &str) -> Option<usize> {
    super::stats::find_disk(def, name).ok()
}

/// The throttle of one disk as a full libvirt list, from the config's `<iotune>`
/// (libvirt: qemuDomainGetBlockIoTune on an inactive definition).
pub fn iotune_params(t: Option<&IoTune>) -> Vec<(String, IoTuneValue)> {
    IOTUNE_ORDER
        .iter()
        .map(|&name| {
            let v = if name == "group_name" {
                IoTuneValue::Text(
                    t.and_then(|t| t.values.iter().find(|(k, _)| k == name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                )
            } else {
                IoTuneValue::Number(t.and_then(|t| t.get(name)).unwrap_or(0))
            };
            (name.to_string(), v)
        })
        .collect()
}

/// The same list from a `query-block` entry's `inserted` object.
pub fn iotune_from_qemu(inserted: &Value) -> Vec<(String, IoTuneValue)> {
    IOTUNE_ORDER
        .iter()
        .map(|&name| {
            let v = match QEMU_NAMES.iter().find(|(l, _)| *l == name) {
                Some((_, q)) => IoTuneValue::Number(inserted[*q].as_u64().unwrap_or(0)),
                None => IoTuneValue::Text(inserted["group"].as_str().unwrap_or("").to_string()),
            };
            (name.to_string(), v)
        })
        .collect()
}

/// A change to a disk's throttle (`virDomainSetBlockIoTune`'s parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoTuneChange {
    /// libvirt's names (`total_bytes_sec`, ...) with their new values.
    pub values: Vec<(String, u64)>,
    pub group_name: Option<String>,
}

/// `old` with `change` applied as libvirt does: a total and its read/write pair exclude
/// each other, setting one side clears the other; then libvirt's consistency checks
/// (libvirt: qemuDomainSetBlockIoTuneDefaults, qemuDomainSetBlockIoTune's CHECK_MAX).
pub fn merge_iotune(old: Option<&IoTune>, change: &IoTuneChange) -> Result<IoTune, DriverError> {
    let given = |n: &str| change.values.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    for (name, v) in &change.values {
        if !QEMU_NAMES.iter().any(|(l, _)| l == name) {
            return Err(DriverError::InvalidArg(format!(
                "parameter '{name}' not supported"
            )));
        }
        if *v > BLOCK_IOTUNE_MAX {
            return Err(DriverError::InvalidArg(format!(
                "block I/O throttle limit value must be no more than {BLOCK_IOTUNE_MAX}"
            )));
        }
    }
    for (kind, label) in [
        ("bytes_sec", "bytes_sec"),
        ("iops_sec", "iops_sec"),
        ("bytes_sec_max", "bytes_sec_max"),
        ("iops_sec_max", "iops_sec_max"),
    ] {
        let total = given(&format!("total_{kind}")).unwrap_or(0);
        let read = given(&format!("read_{kind}")).unwrap_or(0);
        let write = given(&format!("write_{kind}")).unwrap_or(0);
        if total != 0 && (read != 0 || write != 0) {
            return Err(DriverError::InvalidArg(format!(
                "total and read/write of {label} cannot be set at the same time"
            )));
        }
    }
    let mut now: Vec<(String, u64)> = QEMU_NAMES
        .iter()
        .map(|(l, _)| (l.to_string(), old.and_then(|t| t.get(l)).unwrap_or(0)))
        .collect();
    let mut set = |n: &str, v: u64| {
        if let Some(e) = now.iter_mut().find(|(k, _)| k == n) {
            e.1 = v;
        }
    };
    for (n, v) in &change.values {
        set(n, *v);
    }
    // Setting a total clears the pair and the other way round, for each family that the
    // change names (libvirt: qemuDomainSetBlockIoTuneDefaults).
    for kind in ["bytes_sec", "iops_sec", "bytes_sec_max", "iops_sec_max"] {
        let t = format!("total_{kind}");
        let r = format!("read_{kind}");
        let w = format!("write_{kind}");
        if given(&t).is_some() {
            set(&r, 0);
            set(&w, 0);
        } else if given(&r).is_some() || given(&w).is_some() {
            set(&t, 0);
        }
    }
    let get = |n: &str| now.iter().find(|(k, _)| k == n).map_or(0, |(_, v)| *v);
    for val in [
        "total_bytes_sec",
        "read_bytes_sec",
        "write_bytes_sec",
        "total_iops_sec",
        "read_iops_sec",
        "write_iops_sec",
    ] {
        let max = format!("{val}_max");
        if get(&max) == 0 {
            continue;
        }
        if get(val) == 0 {
            return Err(DriverError::Unsupported(if given(val).is_some() {
                format!("cannot reset '{val}' when '{max}' is set")
            } else {
                format!("value '{max}' cannot be set if '{val}' is not set")
            }));
        }
        if get(&max) < get(val) {
            return Err(DriverError::Unsupported(format!(
                "value '{max}' cannot be smaller than '{val}'"
            )));
        }
    }
    let group = match &change.group_name {
        Some(g) => Some(g.clone()),
        None => old.and_then(|t| {
            t.values
                .iter()
                .find(|(k, _)| k == "group_name")
                .map(|(_, v)| v.clone())
        }),
    };
    let mut values: Vec<(String, String)> = now
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        values.push(("group_name".into(), g));
    }
    Ok(IoTune { values })
}

/// The QOM name QEMU knows disk `d`'s frontend by: virtio disks keep their block backend
/// on the `virtio-backend` child (libvirt: qemuDomainDiskPrivate's qomName).
fn qom_name(d: &Disk, alias: &str) -> String {
    if d.target.bus.as_deref() == Some("virtio") {
        format!("/machine/peripheral/{alias}/virtio-backend")
    } else {
        alias.to_string()
    }
}

/// `block_set_io_throttle`'s arguments for `t` on device `id`.
fn throttle_args(id: &str, t: &IoTune) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    for (l, q) in QEMU_NAMES {
        let v = t.get(l).unwrap_or(0);
        // QEMU refuses a burst length of 0: libvirt sends the lengths only when set.
        if v == 0 && l.ends_with("_length") {
            continue;
        }
        m.insert((*q).into(), json!(v));
    }
    if let Some((_, g)) = t.values.iter().find(|(k, _)| k == "group_name") {
        m.insert("group".into(), json!(g));
    }
    Value::Object(m)
}

/// The `query-block` entry of the disk with alias `alias`.
fn block_entry<'v>(blocks: &'v Value, alias: &str) -> Option<&'v Value> {
    blocks
        .as_array()?
        .iter()
        .find(|e| super::stats::is_disk_entry(e, alias))
}

/// What a start sets over QMP before the vCPUs run: each disk's throttle and each link the
/// definition has down (libvirt: qemuProcessSetupDiskThrottling, qemuProcessSetLinkStates).
pub fn start_commands(def: &DomainDef) -> Vec<InitCommand> {
    let mut out = Vec::new();
    for d in &def.devices.disks {
        if let (Some(t), Some(alias)) = (&d.iotune, &d.info.alias)
            && t.values.iter().any(|(k, v)| k != "group_name" && v != "0")
        {
            out.push(InitCommand {
                command: "block_set_io_throttle".into(),
                args: throttle_args(&qom_name(d, alias), t),
            });
        }
    }
    for n in &def.devices.interfaces {
        if let (Some("down"), Some(alias)) = (n.link_state.as_deref(), &n.info.alias) {
            out.push(InitCommand {
                command: "set_link".into(),
                args: json!({ "name": alias, "up": false }),
            });
        }
    }
    out
}

fn not_running() -> DriverError {
    DriverError::OperationInvalid("domain is not running".into())
}

impl Domain<'_> {
    /// Set the link of the interface with MAC address `mac` up or down, in the running
    /// guest (QMP `set_link`) and/or the config (libvirt: qemuDomainChangeNetLinkState, as
    /// `virsh domif-setlink` reaches it through virDomainUpdateDeviceFlags).
    pub fn interface_set_link(&self, mac: &str, up: bool, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainUpdateDeviceFlags",
        )?;
        let impact = self.impact(flags)?;
        let state = if up { "up" } else { "down" };
        let missing =
            || DriverError::DeviceMissing(format!("no device matching MAC address {mac} found"));
        let same = |n: &crate::domain::devices::Interface| {
            n.mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        };
        self.modify(
            impact,
            |def| {
                let n = def
                    .devices
                    .interfaces
                    .iter_mut()
                    .find(|n| same(n))
                    .ok_or_else(missing)?;
                n.link_state = Some(state.into());
                Ok(())
            },
            |lg| {
                let n = lg
                    .def
                    .devices
                    .interfaces
                    .iter_mut()
                    .find(|n| same(n))
                    .ok_or_else(missing)?;
                let Some(alias) = n.info.alias.clone() else {
                    return Err(DriverError::Internal(
                        "device alias was not set for interface".into(),
                    ));
                };
                qmp(
                    &mut lg.guest,
                    "set_link",
                    Some(json!({ "name": alias, "up": up })),
                )?;
                n.link_state = Some(state.into());
                Ok(())
            },
        )
    }

    /// `virDomainGetDiskErrors`: the disks whose last I/O failed, from QEMU's io-status.
    pub fn disk_errors(&self) -> Result<Vec<DiskError>, DriverError> {
        if !self.is_active()? {
            return Err(not_running());
        }
        let lg = self.live_guest()?;
        let def = lg.def;
        let blocks = self.qmp_call("query-block", None)?;
        let mut out = Vec::new();
        for d in &def.devices.disks {
            let Some(alias) = d.info.alias.as_deref() else {
                continue;
            };
            let Some(e) = block_entry(&blocks, alias) else {
                continue;
            };
            let error = match e["io-status"].as_str() {
                Some("nospace") => DiskErrorCode::NoSpace,
                Some("failed") => DiskErrorCode::Unspec,
                _ => continue,
            };
            out.push(DiskError {
                disk: d.target.dev.clone(),
                error,
            });
        }
        Ok(out)
    }

    /// `virDomainGetControlInfo`: the monitor answers, so the control interface is ok.
    pub fn control_info(&self) -> Result<ControlState, DriverError> {
        if !self.is_active()? {
            return Err(not_running());
        }
        // A monitor that cannot answer is an error of its own (the guest's lock and
        // monitor are what libvirt's "ok" vouches for).
        self.qmp_call("query-status", None)?;
        Ok(ControlState::Ok)
    }

    /// `virDomainGetBlockIoTune`: every throttle value of disk `disk`, from QEMU for the
    /// running guest, else from the config (`AFFECT_CONFIG`).
    pub fn block_io_tune(
        &self,
        disk: &str,
        flags: u32,
    ) -> Result<Vec<(String, IoTuneValue)>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetBlockIoTune",
        )?;
        super::pinning::one_def(flags)?;
        let impact = self.impact(flags)?;
        if impact.config {
            let def = self.config_def()?;
            return Ok(iotune_params(disk_by_name(&def, disk)?.iotune.as_ref()));
        }
        let mut lg = self.live_guest()?;
        let d = disk_by_name(&lg.def, disk)?;
        let alias = d.info.alias.clone().unwrap_or_default();
        let blocks = qmp(&mut lg.guest, "query-block", None)?;
        let inserted = block_entry(&blocks, &alias)
            .map(|e| e["inserted"].clone())
            .filter(|i| i.is_object())
            .ok_or_else(|| {
                DriverError::Internal(format!("cannot read throttle of disk '{disk}': no medium"))
            })?;
        Ok(iotune_from_qemu(&inserted))
    }

    /// `virDomainSetBlockIoTune`: change disk `disk`'s throttle live (QMP
    /// `block_set_io_throttle`) and/or in its config.
    pub fn set_block_io_tune(
        &self,
        disk: &str,
        change: &IoTuneChange,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetBlockIoTune",
        )?;
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                let idx = disk_index(def, disk).ok_or_else(|| not_found(disk))?;
                let merged = merge_iotune(def.devices.disks[idx].iotune.as_ref(), change)?;
                def.devices.disks[idx].iotune = (!merged.values.is_empty()).then_some(merged);
                Ok(())
            },
            |lg| {
                let d = disk_by_name(&lg.def, disk)?;
                let Some(alias) = d.info.alias.clone() else {
                    return Err(DriverError::Internal(format!("disk '{disk}' has no alias")));
                };
                let merged = merge_iotune(d.iotune.as_ref(), change)?;
                let qom = qom_name(d, &alias);
                qmp(
                    &mut lg.guest,
                    "block_set_io_throttle",
                    Some(throttle_args(&qom, &merged)),
                )?;
                if let Some(d) = lg
                    .def
                    .devices
                    .disks
                    .iter_mut()
                    .find(|d| d.info.alias.as_deref() == Some(alias.as_str()))
                {
                    d.iotune = (!merged.values.is_empty()).then_some(merged);
                }
                Ok(())
            },
        )
    }

    /// `virDomainSetBlockThreshold`: QEMU reports a BLOCK_WRITE_THRESHOLD event once the
    /// guest writes past `bytes` of disk `dev`'s image (libvirt: qemuDomainSetBlockThreshold,
    /// on the storage node as libvirt 9.0 does).
    pub fn set_block_threshold(
        &self,
        dev: &str,
        bytes: u64,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainSetBlockThreshold")?;
        if !self.is_active()? {
            return Err(not_running());
        }
        let mut lg = self.live_guest()?;
        let Some(d) = lg.def.devices.disks.iter().find(|d| d.target.dev == dev) else {
            return Err(DriverError::InvalidArg(format!(
                "failed to find disk '{dev}'"
            )));
        };
        let alias = d.info.alias.clone().unwrap_or_default();
        let blocks = qmp(&mut lg.guest, "query-block", None)?;
        let node = block_entry(&blocks, &alias)
            .and_then(|e| e["inserted"]["node-name"].as_str())
            .map(|n| n.replace("-format", "-storage"))
            .ok_or_else(|| {
                DriverError::OperationInvalid(format!(
                    "threshold currently can't be set for block device '{dev}'"
                ))
            })?;
        qmp(
            &mut lg.guest,
            "block-set-write-threshold",
            Some(json!({ "node-name": node, "write-threshold": bytes })),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(v: &[(&str, u64)]) -> IoTuneChange {
        IoTuneChange {
            values: v.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            group_name: None,
        }
    }

    #[test]
    fn a_start_sets_throttles_and_down_links() {
        let def = crate::domain::parse_unprepared(
            "<domain type='qemu'><name>t</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><disk type='file' device='disk'><source file='/a'/><target dev='vda'/>\
             <iotune><total_iops_sec>9</total_iops_sec></iotune><alias name='virtio-disk0'/></disk>\
             <disk type='file' device='disk'><source file='/b'/><target dev='vdb'/>\
             <alias name='virtio-disk1'/></disk>\
             <interface type='user'><link state='down'/><alias name='net0'/></interface>\
             <interface type='user'><link state='up'/><alias name='net1'/></interface>\
             </devices></domain>",
        )
        .unwrap();
        let c = start_commands(&def);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].command, "block_set_io_throttle");
        assert_eq!(c[0].args["id"], "virtio-disk0");
        let mut d = def.devices.disks[0].clone();
        d.target.bus = Some("virtio".into());
        assert_eq!(
            qom_name(&d, "virtio-disk0"),
            "/machine/peripheral/virtio-disk0/virtio-backend"
        );
        assert_eq!(c[0].args["iops"], 9);
        assert_eq!(c[1].command, "set_link");
        assert_eq!(c[1].args, json!({"name": "net0", "up": false}));
    }

    #[test]
    fn config_throttle_lists_every_value_in_libvirts_order() {
        let t = IoTune {
            values: vec![
                ("read_iops_sec".into(), "7".into()),
                ("group_name".into(), "g".into()),
            ],
        };
        let p = iotune_params(Some(&t));
        assert_eq!(p.len(), 20);
        assert_eq!(p[0], ("total_bytes_sec".into(), IoTuneValue::Number(0)));
        assert_eq!(p[4], ("read_iops_sec".into(), IoTuneValue::Number(7)));
        assert_eq!(p[13], ("group_name".into(), IoTuneValue::Text("g".into())));
    }

    #[test]
    fn qemu_names_map_back() {
        let p = iotune_from_qemu(&json!({"bps": 5, "iops_rd_max": 9, "group": "x"}));
        assert_eq!(p[0].1, IoTuneValue::Number(5));
        assert_eq!(p[10], ("read_iops_sec_max".into(), IoTuneValue::Number(9)));
        assert_eq!(p[13].1, IoTuneValue::Text("x".into()));
    }

    #[test]
    fn merging_follows_libvirts_rules() {
        let old = IoTune {
            values: vec![("read_bytes_sec".into(), "100".into())],
        };
        let t = merge_iotune(Some(&old), &change(&[("total_bytes_sec", 1000)])).unwrap();
        assert_eq!(t.get("total_bytes_sec"), Some(1000));
        assert_eq!(t.get("read_bytes_sec"), None);
        let e = merge_iotune(
            None,
            &change(&[("total_iops_sec", 1), ("read_iops_sec", 2)]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: total and read/write of iops_sec cannot be set at the same time"
        );
        let e = merge_iotune(None, &change(&[("total_bytes_sec_max", 10)])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: value 'total_bytes_sec_max' cannot be set if 'total_bytes_sec' is not set"
        );
        let e = merge_iotune(
            None,
            &change(&[("total_bytes_sec", 10), ("total_bytes_sec_max", 5)]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot be smaller than"), "{e}");
        let e =
            merge_iotune(None, &change(&[("total_bytes_sec", BLOCK_IOTUNE_MAX + 1)])).unwrap_err();
        assert!(
            e.to_string().contains("no more than 1000000000000000"),
            "{e}"
        );
        let t = merge_iotune(
            None,
            &IoTuneChange {
                values: vec![],
                group_name: Some("grp".into()),
            },
        )
        .unwrap();
        assert_eq!(t.values, vec![("group_name".into(), "grp".into())]);
        let args = throttle_args("virtio-disk0", &t);
        assert_eq!(args["group"], "grp");
        assert_eq!(args["bps"], 0);
        assert!(args.get("bps_max_length").is_none());
    }
}
