//! Enabling and disabling individual vCPUs (`virsh setvcpu`; libvirt: qemuDomainSetVcpu,
//! qemuDomainSetVcpuInternal, qemuDomainFilterHotplugVcpuEntities,
//! qemuDomainVcpuValidateConfig, qemuDomainSetVcpuConfig).
//!
//! The config gets libvirt's per-vCPU `<vcpus>` list; the running guest plugs or unplugs
//! the one hotpluggable entity selected, numbered as `setvcpus` numbers them (QEMU's slots
//! in topology order, hotplugged ones named `vcpuN`).

use serde_json::{Value, json};

use super::DriverError;
use super::domain::{Domain, guest_err};
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, LIVE_XML, UNPLUG_WAIT_MS, check_flags, qmp};
use super::monitor::proto::Request;
use crate::capabilities::cpuset::CpuSet;
use crate::domain::DomainDef;
use crate::domain::model::VcpuInfo;

fn invalid(msg: String) -> DriverError {
    DriverError::InvalidArg(msg)
}

/// The config's vCPUs one by one: its `<vcpus>` list, or, without one, libvirt's defaults
/// (the first `current` online and not hotpluggable, the rest offline and hotpluggable).
fn vcpu_list(def: &DomainDef) -> Vec<VcpuInfo> {
    if let Some(v) = &def.vcpus {
        return v.clone();
    }
    let online = def.vcpu.current.unwrap_or(def.vcpu.count);
    (0..def.vcpu.count)
        .map(|id| VcpuInfo {
            id,
            enabled: Some(if id < online { "yes" } else { "no" }.into()),
            hotpluggable: Some(if id < online { "no" } else { "yes" }.into()),
            order: None,
        })
        .collect()
}

/// libvirt: qemuDomainVcpuValidateConfig.
fn validate_config(list: &[VcpuInfo], map: &CpuSet) -> Result<(), DriverError> {
    if map.contains(0) {
        return Err(invalid("vCPU '0' can't be modified".into()));
    }
    for id in map.iter() {
        if let Some(v) = list.iter().find(|v| v.id == id)
            && v.hotpluggable.as_deref() == Some("no")
        {
            return Err(invalid(format!("vcpu '{id}' is not hotpluggable")));
        }
    }
    Ok(())
}

/// libvirt: qemuDomainSetVcpuConfig. The order goes: it may no longer hold.
fn set_config(def: &mut DomainDef, map: &CpuSet, state: bool) {
    let mut list = vcpu_list(def);
    for v in list.iter_mut() {
        v.order = None;
        if map.contains(v.id) {
            v.enabled = Some(if state { "yes" } else { "no" }.into());
            v.hotpluggable = Some("yes".into());
        }
    }
    let online = list
        .iter()
        .filter(|v| v.enabled.as_deref() == Some("yes"))
        .count() as u32;
    def.vcpu.current = (online != def.vcpu.count).then_some(online);
    def.vcpus = Some(list);
}

/// QEMU's vCPU slots in libvirt's numbering (topology order).
fn slots(g: &mut crate::driver::process::Guest) -> Result<Vec<Value>, DriverError> {
    let v = qmp(g, "query-hotpluggable-cpus", None)?;
    let mut slots: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    slots.sort_by_key(|s| {
        let p = &s["props"];
        let n = |k: &str| p[k].as_u64().unwrap_or(0);
        (
            n("node-id"),
            n("socket-id"),
            n("die-id"),
            n("core-id"),
            n("thread-id"),
        )
    });
    Ok(slots)
}

impl Domain<'_> {
    /// `virDomainSetVcpu`: vCPUs `cpumap` (a cpuset text) enabled (`state`) or disabled,
    /// in the running guest and/or the config as `flags` say.
    pub fn set_vcpu(&self, cpumap: &str, state: bool, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainSetVcpu")?;
        let impact = self.impact(flags)?;
        let map = CpuSet::parse(cpumap)
            .map_err(|_| invalid(format!("Failed to parse bitmap '{cpumap}'")))?;
        let Some(last) = map.iter().last() else {
            return Err(invalid("no vcpus selected for modification".into()));
        };
        let mut live = if impact.live {
            let lg = self.live_guest()?;
            if last >= lg.def.vcpu.count {
                return Err(invalid(format!(
                    "vcpu {last} is not present in live config"
                )));
            }
            Some(lg)
        } else {
            None
        };
        let mut config = if impact.config {
            let def = self.config_def()?;
            if last >= def.vcpu.count {
                return Err(invalid(format!(
                    "vcpu {last} is not present in persistent config"
                )));
            }
            Some(def)
        } else {
            None
        };
        let mut plan = None;
        if let Some(lg) = live.as_mut() {
            plan = Some(live_plan(&mut lg.guest, &map, state)?);
        }
        if let Some(def) = &config {
            validate_config(&vcpu_list(def), &map)?;
        }
        if let (Some(lg), Some((id, slot))) = (live.as_mut(), plan) {
            if state {
                let mut args = json!({
                    "driver": slot["type"].as_str().unwrap_or_default(),
                    "id": format!("vcpu{id}"),
                });
                if let Some(p) = slot["props"].as_object() {
                    for (k, v) in p {
                        args[k] = v.clone();
                    }
                }
                qmp(&mut lg.guest, "device_add", Some(args))?;
            } else {
                let alias = slot["qom-path"]
                    .as_str()
                    .and_then(|p| p.strip_prefix("/machine/peripheral/"))
                    .unwrap_or_default()
                    .to_string();
                let req = Request::Unplug {
                    alias,
                    cleanup: Vec::new(),
                    wait_ms: UNPLUG_WAIT_MS,
                    strict: true,
                };
                lg.guest.call(&req).map_err(guest_err)?;
            }
            let online = slots(&mut lg.guest)?
                .iter()
                .filter(|s| s.get("qom-path").is_some())
                .count() as u32;
            let max = lg.def.vcpu.count;
            lg.def.vcpu.current = (online != max).then_some(online);
            lg.guest
                .set_live_xml(lg.def.to_xml(LIVE_XML))
                .map_err(guest_err)?;
        }
        if let Some(def) = config.as_mut() {
            set_config(def, &map, state);
            self.save_config(def.clone())?;
        }
        Ok(())
    }
}

/// The one hotpluggable entity `map` selects in the running guest and its slot, after
/// libvirt's checks (libvirt: qemuDomainFilterHotplugVcpuEntities and the one-entity rule
/// of qemuDomainSetVcpuInternal). QEMU's x86 and most targets plug single threads, so a
/// vCPU is its own entity.
fn live_plan(
    g: &mut crate::driver::process::Guest,
    map: &CpuSet,
    state: bool,
) -> Result<(u32, Value), DriverError> {
    let slots = slots(g)?;
    for id in map.iter() {
        let Some(s) = slots.get(id as usize) else {
            continue;
        };
        let path = s["qom-path"].as_str();
        let online = path.is_some();
        if online == state {
            return Err(invalid(format!(
                "vcpu '{id}' is already in requested state"
            )));
        }
        let hotplugged = path.is_some_and(|p| p.starts_with("/machine/peripheral/"));
        if online && !hotplugged {
            return Err(invalid(format!("vcpu '{id}' can't be hotunplugged")));
        }
    }
    if map.len() != 1 {
        return Err(invalid(
            "only one hotpluggable entity can be selected".into(),
        ));
    }
    let id = map.iter().next().unwrap_or_default();
    let slot = slots
        .get(id as usize)
        .cloned()
        .ok_or_else(|| invalid(format!("vcpu {id} is not present in live config")))?;
    Ok((id, slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(count: u32, current: Option<u32>) -> DomainDef {
        let mut d = DomainDef::default();
        d.vcpu.count = count;
        d.vcpu.current = current;
        d
    }

    #[test]
    fn config_vcpus_as_libvirt_lists_them() {
        let mut d = def(4, Some(2));
        let map = CpuSet::parse("3").unwrap();
        validate_config(&vcpu_list(&d), &map).unwrap();
        set_config(&mut d, &map, true);
        assert_eq!(d.vcpu.current, Some(3));
        let v = d.vcpus.as_ref().unwrap();
        let en: Vec<_> = v.iter().map(|v| v.enabled.as_deref().unwrap()).collect();
        assert_eq!(en, ["yes", "yes", "no", "yes"]);
        assert_eq!(v[3].hotpluggable.as_deref(), Some("yes"));
        let e = validate_config(v, &CpuSet::parse("1").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: vcpu '1' is not hotpluggable"
        );
        let e = validate_config(v, &CpuSet::parse("0-1").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: vCPU '0' can't be modified"
        );
        set_config(&mut d, &CpuSet::parse("2").unwrap(), true);
        assert_eq!(d.vcpu.current, None);
    }
}
