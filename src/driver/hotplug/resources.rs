//! Memory, vCPUs and disk sizes of a guest, live and in its config (libvirt:
//! qemuDomainSetMemoryFlags, qemuDomainSetVcpusFlags, qemuDomainBlockResize).

use serde_json::{Value, json};

use super::live::qmp;
use super::{
    AFFECT_CONFIG, AFFECT_LIVE, LIVE_XML, MEM_MAXIMUM, UNPLUG_WAIT_MS, VCPU_MAXIMUM, check_flags,
};
use crate::driver::DriverError;
use crate::driver::domain::{Domain, guest_err};

impl Domain<'_> {
    /// `virDomainSetMemoryFlags`: the balloon target (KiB) of the running guest, the
    /// current memory of the config, or with [`MEM_MAXIMUM`] the config's maximum.
    pub fn set_memory_flags(&self, kib: u64, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG | MEM_MAXIMUM,
            "qemuDomainSetMemoryFlags",
        )?;
        let impact = self.impact(flags & !MEM_MAXIMUM)?;
        if flags & MEM_MAXIMUM != 0 {
            if impact.live {
                return Err(DriverError::OperationInvalid(
                    "cannot resize the maximum memory on an active domain".into(),
                ));
            }
            let mut def = self.config_def()?;
            // libvirt: virDomainDefSetMemoryTotal, then the current memory follows.
            def.memory.kib = kib;
            if def.current_memory.is_some_and(|c| c > kib) {
                def.current_memory = Some(kib);
            }
            return self.save_config(def);
        }
        self.modify(
            impact,
            |def| {
                if kib > def.memory.kib {
                    return Err(too_much_memory());
                }
                def.current_memory = Some(kib);
                Ok(())
            },
            |lg| {
                if kib > lg.def.memory.kib {
                    return Err(too_much_memory());
                }
                let balloon =
                    lg.def.devices.memballoon.as_ref().is_some_and(|b| {
                        b.model != Some(crate::domain::devices::MemballoonModel::None)
                    });
                if !balloon {
                    return Err(DriverError::OperationInvalid(
                        "Unable to change memory of active domain without the balloon device and guest OS balloon driver".into(),
                    ));
                }
                qmp(
                    &mut lg.guest,
                    "balloon",
                    Some(json!({ "value": kib * 1024 })),
                )?;
                lg.def.current_memory = Some(kib);
                Ok(())
            },
        )
    }

    /// `virDomainSetMaxMemory`: the config's maximum (KiB).
    pub fn set_max_memory(&self, kib: u64) -> Result<(), DriverError> {
        self.set_memory_flags(kib, MEM_MAXIMUM)
    }

    /// `virDomainSetVcpusFlags`: the vCPUs online in the running guest (hotplugged with
    /// `device_add` of the CPU type QEMU offers), in the config, or with [`VCPU_MAXIMUM`]
    /// the config's maximum.
    pub fn set_vcpus_flags(&self, count: u32, flags: u32) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG | VCPU_MAXIMUM,
            "qemuDomainSetVcpusFlags",
        )?;
        if count == 0 {
            return Err(DriverError::InvalidArg("count must not be zero".into()));
        }
        let impact = self.impact(flags & !VCPU_MAXIMUM)?;
        let maximum = flags & VCPU_MAXIMUM != 0;
        if maximum && impact.live {
            return Err(DriverError::InvalidArg(
                "maximum vcpu count of a live domain can't be modified".into(),
            ));
        }
        self.modify_with(
            impact,
            |mut def| {
                if maximum {
                    def.vcpu.count = count;
                    if def.vcpu.current.is_some_and(|c| c > count) {
                        def.vcpu.current = None;
                    }
                } else {
                    if count > def.vcpu.count {
                        return Err(DriverError::InvalidArg(format!(
                            "requested vcpus is greater than max allowable vcpus for the persistent domain: {count} > {}",
                            def.vcpu.count
                        )));
                    }
                    def.vcpu.current = (count != def.vcpu.count).then_some(count);
                }
                Ok(def)
            },
            || self.set_live_vcpus(count),
        )
    }

    /// Plug or unplug vCPUs until `count` are online (libvirt: qemuDomainSetVcpusLive).
    fn set_live_vcpus(&self, count: u32) -> Result<(), DriverError> {
        let mut lg = self.live_guest()?;
        let max = lg.def.vcpu.count;
        if count > max {
            return Err(DriverError::InvalidArg(format!(
                "requested vcpus is greater than max allowable vcpus for the live domain: {count} > {max}"
            )));
        }
        let slots = qmp(&mut lg.guest, "query-hotpluggable-cpus", None)?;
        let mut slots: Vec<Value> = slots.as_array().cloned().unwrap_or_default();
        // QEMU lists the slots last first; libvirt numbers vCPUs in the topology's order.
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
        let mut online = slots.iter().filter(|s| s.get("qom-path").is_some()).count() as u32;
        let start = online;
        if count > online {
            for (i, s) in slots.iter().enumerate() {
                if online >= count {
                    break;
                }
                if s.get("qom-path").is_some() {
                    continue;
                }
                let mut args = json!({
                    "driver": s["type"].as_str().unwrap_or_default(),
                    "id": format!("vcpu{i}"),
                });
                if let Some(p) = s["props"].as_object() {
                    for (k, v) in p {
                        args[k] = v.clone();
                    }
                }
                qmp(&mut lg.guest, "device_add", Some(args))?;
                online += 1;
            }
        } else if count < start {
            // The hotplugged ones go, the last first. Beware Debian 12's QEMU (7.2) under
            // TCG: an x86 vCPU unplug corrupts its heap, and it dies of SIGSEGV at its next
            // memory-map change (any PCI device_add), reproduced without us; libvirt
            // unplugs all the same, and so do we.
            let plugged: Vec<String> = slots
                .iter()
                .filter_map(|s| s["qom-path"].as_str())
                .filter_map(|p| p.strip_prefix("/machine/peripheral/"))
                .map(str::to_string)
                .collect();
            let need = (start - count) as usize;
            // libvirt: qemuDomainSelectHotplugVcpuEntities passes over the vCPUs the guest
            // booted with (they have no alias), and refuses when the hotplugged ones are
            // too few to reach the count.
            if plugged.len() < need {
                return Err(DriverError::Unsupported(
                    "failed to find appropriate hotpluggable vcpus to reach the desired target vcpu count".into(),
                ));
            }
            for alias in plugged.iter().rev().take(need) {
                self.run_unplug(&mut lg.guest, alias, Vec::new(), UNPLUG_WAIT_MS, true)?;
            }
        }
        lg.def.vcpu.current = (count != max).then_some(count);
        lg.guest
            .set_live_xml(lg.def.to_xml(LIVE_XML))
            .map_err(guest_err)
    }

    /// `virDomainBlockResize`: grow the image behind disk `disk` (target or source path)
    /// to `bytes`.
    pub fn block_resize(&self, disk: &str, bytes: u64) -> Result<(), DriverError> {
        if !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let mut lg = self.live_guest()?;
        let Some(d) = lg.def.devices.disks.iter().find(|d| {
            d.target.dev == disk
                || d.source.as_ref().is_some_and(|s| {
                    s.file.as_deref() == Some(disk) || s.dev.as_deref() == Some(disk)
                })
        }) else {
            return Err(DriverError::InvalidArg(format!(
                "disk '{disk}' was not found in the domain"
            )));
        };
        let alias = d.info.alias.clone().unwrap_or_default();
        let qcow2 = d.driver.as_ref().and_then(|x| x.dtype.as_deref()) == Some("qcow2");
        // QEMU resizes qcow2 images in whole sectors only.
        let bytes = if qcow2 {
            bytes.div_ceil(512) * 512
        } else {
            bytes
        };
        let Some(n) = super::live::medium_node(&mut lg.guest, &alias)? else {
            return Err(DriverError::OperationInvalid(format!(
                "disk '{disk}' does not have an associated node name"
            )));
        };
        qmp(
            &mut lg.guest,
            "block_resize",
            Some(json!({ "node-name": format!("libvirt-{n}-format"), "size": bytes })),
        )?;
        Ok(())
    }
}

fn too_much_memory() -> DriverError {
    DriverError::InvalidArg("cannot set memory higher than max memory".into())
}
