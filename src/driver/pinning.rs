//! Which host CPUs a guest's vCPU threads and emulator may run on, live (the threads'
//! affinity, `sched_setaffinity`) and in `<cputune>` (libvirt: qemuDomainGetVcpuPinInfo,
//! qemuDomainPinVcpuFlags, qemuDomainGetEmulatorPinInfo, qemuDomainPinEmulator).

use nix::sched::{CpuSet as SchedSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags, qmp};
use crate::capabilities::cpuset::CpuSet;
use crate::domain::DomainDef;
use crate::domain::model::{Cputune, VcpuPin};

/// Every host CPU (libvirt: virHostCPUGetAvailableCPUsBitmap): the default affinity.
pub fn host_cpus() -> CpuSet {
    let mut s = CpuSet::new();
    for i in 0..super::stats::host_cpu_count() as u32 {
        s.insert(i);
    }
    s
}

/// The pinning a definition gives vCPU `vcpu`: its `<vcpupin>`, else `<vcpu cpuset>`, else
/// every host CPU (libvirt: qemuDomainGetVcpuPinInfo, virDomainDefGetVcpuPinInfoHelper).
pub fn def_vcpu_pin(def: &DomainDef, vcpu: u32) -> CpuSet {
    let pinned = def
        .cputune
        .as_ref()
        .and_then(|t| t.vcpupin.iter().find(|p| p.vcpu == vcpu))
        .map(|p| p.cpuset.as_str());
    def_set(def, pinned)
}

/// The emulator's pinning in a definition (`<emulatorpin>`, else `<vcpu cpuset>`).
pub fn def_emulator_pin(def: &DomainDef) -> CpuSet {
    let pinned = def.cputune.as_ref().and_then(|t| t.emulatorpin.as_deref());
    def_set(def, pinned)
}

pub(crate) fn def_set(def: &DomainDef, pinned: Option<&str>) -> CpuSet {
    pinned
        .or(def.vcpu.cpuset.as_deref())
        .and_then(|s| CpuSet::parse(s).ok())
        .unwrap_or_else(host_cpus)
}

pub(crate) fn thread_affinity(tid: i32) -> Result<CpuSet, DriverError> {
    let set = sched_getaffinity(Pid::from_raw(tid)).map_err(|e| DriverError::System {
        msg: format!("cannot get CPU affinity of process {tid}"),
        err: std::io::Error::from(e),
    })?;
    let mut out = CpuSet::new();
    for i in 0..SchedSet::count() {
        if set.is_set(i).unwrap_or(false) {
            out.insert(i as u32);
        }
    }
    Ok(out)
}

pub(crate) fn set_thread_affinity(tid: i32, cpus: &CpuSet) -> Result<(), DriverError> {
    let mut set = SchedSet::new();
    for c in cpus.iter() {
        set.set(c as usize).map_err(|e| DriverError::System {
            msg: format!("cannot set CPU affinity on process {tid}"),
            err: std::io::Error::from(e),
        })?;
    }
    // libvirt: virProcessSetAffinity
    sched_setaffinity(Pid::from_raw(tid), &set).map_err(|e| DriverError::System {
        msg: format!("cannot set CPU affinity on process {tid}"),
        err: std::io::Error::from(e),
    })
}

/// Record `cpus` for vCPU `vcpu` (or the emulator, `None`) in `def`'s `<cputune>`.
fn record_pin(def: &mut DomainDef, vcpu: Option<u32>, cpus: &CpuSet) {
    let t = def.cputune.get_or_insert_with(Cputune::default);
    let text = cpus.to_string();
    match vcpu {
        None => t.emulatorpin = Some(text),
        Some(v) => match t.vcpupin.iter_mut().find(|p| p.vcpu == v) {
            Some(p) => p.cpuset = text,
            None => {
                t.vcpupin.push(VcpuPin {
                    vcpu: v,
                    cpuset: text,
                });
                t.vcpupin.sort_by_key(|p| p.vcpu);
            }
        },
    }
}

/// A read names one definition (libvirt: virDomainObjGetOneDefState).
pub(crate) fn one_def(flags: u32) -> Result<(), DriverError> {
    if flags & AFFECT_LIVE != 0 && flags & AFFECT_CONFIG != 0 {
        return Err(DriverError::InvalidArg(
            "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"
                .into(),
        ));
    }
    Ok(())
}

/// The IOThread ids of a definition: `<iothreadids>`, else 1 to `<iothreads>`.
fn iothread_ids(def: &DomainDef) -> Vec<u32> {
    match &def.iothreadids {
        Some(ids) => ids.iter().map(|t| t.id).collect(),
        None => (1..=def.iothreads.unwrap_or(0)).collect(),
    }
}

/// The vCPU threads of the running guest, by vCPU number (`query-cpus-fast`).
fn vcpu_threads(v: &serde_json::Value) -> Vec<(u32, i32)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["cpu-index"].as_u64()? as u32,
                c["thread-id"].as_i64()? as i32,
            ))
        })
        .collect()
}

impl Domain<'_> {
    /// `virDomainGetVcpuPinInfo`: for every vCPU up to the maximum, the host CPUs it may
    /// run on: the running guest's threads (offline vCPUs: their pinning in the live
    /// definition), or the config's `<cputune>`.
    pub fn vcpu_pin_info(&self, flags: u32) -> Result<Vec<CpuSet>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetVcpuPinInfo",
        )?;
        one_def(flags)?;
        let impact = self.impact(flags)?;
        if impact.config {
            let def = self.config_def()?;
            return Ok((0..def.vcpu.count).map(|v| def_vcpu_pin(&def, v)).collect());
        }
        let mut lg = self.live_guest()?;
        let threads = vcpu_threads(&qmp(&mut lg.guest, "query-cpus-fast", None)?);
        (0..lg.def.vcpu.count)
            .map(|v| match threads.iter().find(|(n, _)| *n == v) {
                Some((_, tid)) => thread_affinity(*tid),
                None => Ok(def_vcpu_pin(&lg.def, v)),
            })
            .collect()
    }

    /// `virDomainPinVcpuFlags`: pin vCPU `vcpu` to `cpus` in the running guest (its
    /// thread's affinity) and/or the config.
    pub fn pin_vcpu_flags(&self, vcpu: u32, cpus: &CpuSet, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainPinVcpuFlags")?;
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                if vcpu >= def.vcpu.count {
                    return Err(DriverError::InvalidArg(format!(
                        "vcpu {vcpu} is out of range of persistent cpu count {}",
                        def.vcpu.count
                    )));
                }
                record_pin(def, Some(vcpu), cpus);
                Ok(())
            },
            |lg| {
                if vcpu >= lg.def.vcpu.count {
                    return Err(DriverError::InvalidArg(format!(
                        "vcpu {vcpu} is out of range of live cpu count {}",
                        lg.def.vcpu.count
                    )));
                }
                let threads = vcpu_threads(&qmp(&mut lg.guest, "query-cpus-fast", None)?);
                let Some((_, tid)) = threads.iter().find(|(n, _)| *n == vcpu) else {
                    return Err(DriverError::OperationInvalid(format!(
                        "setting cpu pinning for inactive vcpu '{vcpu}' is not supported"
                    )));
                };
                set_thread_affinity(*tid, cpus)?;
                record_pin(&mut lg.def, Some(vcpu), cpus);
                Ok(())
            },
        )
    }

    /// `virDomainGetIOThreadInfo`: each IOThread's id and the host CPUs its thread may run
    /// on (live: QEMU's `query-iothreads` and the threads' affinity; config: the
    /// definition's ids, with their `<iothreadpin>`, `<vcpu cpuset>` or every host CPU).
    pub fn iothread_info(&self, flags: u32) -> Result<Vec<(u32, CpuSet)>, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetIOThreadInfo",
        )?;
        one_def(flags)?;
        let impact = self.impact(flags)?;
        if impact.config {
            let def = self.config_def()?;
            return Ok(iothread_ids(&def)
                .into_iter()
                .map(|id| (id, super::iothread_tune::def_iothread_pin(&def, id)))
                .collect());
        }
        let mut lg = self.live_guest()?;
        let list = qmp(&mut lg.guest, "query-iothreads", None)?;
        let mut out = Vec::new();
        for t in list.as_array().into_iter().flatten() {
            let Some(id) = t["id"]
                .as_str()
                .and_then(|i| i.strip_prefix("iothread"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let tid = t["thread-id"].as_i64().unwrap_or(0) as i32;
            out.push((id, thread_affinity(tid)?));
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// `virDomainGetEmulatorPinInfo`: QEMU's main thread's affinity, or the config's.
    pub fn emulator_pin_info(&self, flags: u32) -> Result<CpuSet, DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainGetEmulatorPinInfo",
        )?;
        one_def(flags)?;
        let impact = self.impact(flags)?;
        if impact.config {
            return Ok(def_emulator_pin(&self.config_def()?));
        }
        let lg = self.live_guest()?;
        thread_affinity(lg.guest.pid())
    }

    /// `virDomainPinEmulator`: pin QEMU's main thread (libvirt without cgroups:
    /// virProcessSetAffinity on the QEMU pid) and/or the config's `<emulatorpin>`.
    pub fn pin_emulator(&self, cpus: &CpuSet, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainPinEmulator")?;
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                record_pin(def, None, cpus);
                Ok(())
            },
            |lg| {
                set_thread_affinity(lg.guest.pid(), cpus)?;
                record_pin(&mut lg.def, None, cpus);
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(xml: &str) -> DomainDef {
        crate::domain::parse_unprepared(&format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>{xml}\
             <os><type>hvm</type></os></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn pinning_of_a_definition() {
        let d = def("<vcpu cpuset='1-2'>2</vcpu><cputune><vcpupin vcpu='1' cpuset='0'/></cputune>");
        assert_eq!(def_vcpu_pin(&d, 1).to_string(), "0");
        assert_eq!(def_vcpu_pin(&d, 0).to_string(), "1-2");
        assert_eq!(def_emulator_pin(&d).to_string(), "1-2");
        let mut d = def("<vcpu>2</vcpu>");
        assert_eq!(def_vcpu_pin(&d, 0), host_cpus());
        record_pin(&mut d, Some(1), &CpuSet::parse("0,2").unwrap());
        record_pin(&mut d, Some(0), &CpuSet::parse("1").unwrap());
        record_pin(&mut d, None, &CpuSet::parse("0").unwrap());
        let t = d.cputune.as_ref().unwrap();
        assert_eq!(t.vcpupin[0].vcpu, 0);
        assert_eq!(t.vcpupin[1].cpuset, "0,2");
        assert_eq!(t.emulatorpin.as_deref(), Some("0"));
        assert!(one_def(AFFECT_LIVE | AFFECT_CONFIG).is_err());
        assert_eq!(iothread_ids(&def("<iothreads>2</iothreads>")), vec![1, 2]);
        assert_eq!(
            iothread_ids(&def(
                "<iothreads>2</iothreads><iothreadids><iothread id='5'/><iothread id='7'/></iothreadids>"
            )),
            vec![5, 7]
        );
    }

    #[test]
    fn own_thread_affinity_round_trips() {
        let tid = nix::unistd::gettid().as_raw();
        let before = thread_affinity(tid).unwrap();
        assert!(!before.is_empty());
        set_thread_affinity(tid, &before).unwrap();
        assert_eq!(thread_affinity(tid).unwrap(), before);
        let e = set_thread_affinity(tid, &CpuSet::parse("1000").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("cannot set CPU affinity"), "{e}");
    }
}
