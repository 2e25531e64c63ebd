//! An existing IOThread's knobs: its host CPUs (`iothreadpin`) and its polling and worker
//! pool bounds (`iothreadset`), live through QMP and the thread's affinity, and in the
//! config's `<cputune><iothreadpin>` and `<iothreadids>` (libvirt: qemuDomainPinIOThread,
//! qemuDomainSetIOThreadParams, qemuDomainIOThreadParseParams, qemuDomainIOThreadValidate,
//! qemuMonitorJSONSetIOThread).

use serde_json::json;

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags, qmp};
use super::iothreads::ids_mut;
use super::pinning::{def_set, set_thread_affinity};
use crate::capabilities::cpuset::CpuSet;
use crate::domain::DomainDef;
use crate::domain::model::{Cputune, IoThread};
use crate::domain::xml::XmlNode;

/// What `iothreadset` changes; `None` leaves a value as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoThreadParams {
    pub poll_max_ns: Option<u64>,
    pub poll_grow: Option<u32>,
    pub poll_shrink: Option<u32>,
    /// Lower bound of the worker pool; -1 removes it from the config.
    pub thread_pool_min: Option<i32>,
    /// Upper bound of the worker pool; -1 removes it from the config.
    pub thread_pool_max: Option<i32>,
}

impl IoThreadParams {
    pub fn is_empty(&self) -> bool {
        *self == IoThreadParams::default()
    }

    /// libvirt: qemuDomainIOThreadParseParams's range checks.
    fn check(&self) -> Result<(), DriverError> {
        if let Some(min) = self.thread_pool_min
            && min < -1
        {
            return Err(DriverError::Unsupported(format!(
                "thread_pool_min ({min}) must be equal to or greater than -1"
            )));
        }
        if let Some(max) = self.thread_pool_max
            && (max < -1 || max == 0)
        {
            return Err(DriverError::Unsupported(format!(
                "thread_pool_max ({max}) must be a positive number or -1"
            )));
        }
        Ok(())
    }
}

/// The `<cputune><iothreadpin>` of IOThread `id`, if any.
fn pin_node(def: &DomainDef, id: u32) -> Option<&XmlNode> {
    let id = id.to_string();
    def.cputune
        .as_ref()?
        .extra
        .children
        .iter()
        .find(|c| c.name == "iothreadpin" && c.attr("iothread") == Some(id.as_str()))
}

/// The host CPUs IOThread `id` of a definition may run on: its `<iothreadpin>`, else
/// `<vcpu cpuset>`, else every host CPU (libvirt: qemuDomainGetIOThreadsConfig).
pub fn def_iothread_pin(def: &DomainDef, id: u32) -> CpuSet {
    def_set(def, pin_node(def, id).and_then(|n| n.attr("cpuset")))
}

/// Record `cpus` for IOThread `id` in `def`'s `<cputune>`, in id order after the other
/// pins (libvirt formats `<iothreadpin>` after `<emulatorpin>`).
fn record_pin(def: &mut DomainDef, id: u32, cpus: &CpuSet) {
    let t = def.cputune.get_or_insert_with(Cputune::default);
    let kids = &mut t.extra.children;
    let ids = id.to_string();
    kids.retain(|c| !(c.name == "iothreadpin" && c.attr("iothread") == Some(ids.as_str())));
    let node = XmlNode::new("iothreadpin")
        .a("iothread", id)
        .a("cpuset", cpus);
    let after = kids
        .iter()
        .rposition(|c| {
            c.name == "iothreadpin"
                && c.attr("iothread")
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|v| v < id)
        })
        .map(|i| i + 1);
    let first_sched = kids
        .iter()
        .position(|c| !matches!(c.name.as_str(), "iothreadpin"));
    let at = after
        .or_else(|| {
            kids.iter()
                .position(|c| c.name == "iothreadpin")
                .or(first_sched)
        })
        .unwrap_or(kids.len());
    kids.insert(at, node);
}

/// IOThread `id` of `def` (ids made explicit), or `None`.
fn find_mut(def: &mut DomainDef, id: u32) -> Option<&mut IoThread> {
    ids_mut(def).iter_mut().find(|t| t.id == id)
}

/// libvirt: qemuDomainIOThreadValidate.
fn validate(t: &IoThread, p: &IoThreadParams, live: bool) -> Result<(), DriverError> {
    let mut min = t.thread_pool_min.unwrap_or(-1);
    let mut max = t.thread_pool_max.unwrap_or(-1);
    if let Some(v) = p.thread_pool_min {
        if live && v < 0 {
            return Err(DriverError::OperationInvalid(format!(
                "thread_pool_min ({v}) must be equal to or greater than 0 for live change"
            )));
        }
        min = i64::from(v);
    }
    if let Some(v) = p.thread_pool_max {
        if live && v < 0 {
            return Err(DriverError::OperationInvalid(format!(
                "thread_pool_max ({v}) must be equal to or greater than 0 for live change"
            )));
        }
        max = i64::from(v);
    }
    if min > max {
        return Err(DriverError::OperationInvalid(format!(
            "thread_pool_min ({min}) can't be greater than thread_pool_max ({max})"
        )));
    }
    Ok(())
}

/// Apply the pool bounds of `p` to `t` (-1 removes a bound). Polling values are not part of
/// libvirt 9.0's XML: they only ever reach QEMU.
fn apply(t: &mut IoThread, p: &IoThreadParams) {
    let bound = |v: i32| (v >= 0).then_some(i64::from(v));
    if let Some(v) = p.thread_pool_min {
        t.thread_pool_min = bound(v);
    }
    if let Some(v) = p.thread_pool_max {
        t.thread_pool_max = bound(v);
    }
}

fn qom_set(
    g: &mut crate::driver::process::Guest,
    path: &str,
    prop: &str,
    value: serde_json::Value,
) -> Result<(), DriverError> {
    let args = json!({ "path": path, "property": prop, "value": value });
    qmp(g, "qom-set", Some(args)).map(|_| ())
}

fn no_iothread(id: u32) -> DriverError {
    DriverError::InvalidArg(format!("cannot find IOThread '{id}' in iothreadids"))
}

impl Domain<'_> {
    /// `virDomainPinIOThread`: IOThread `id` may run on `cpus` only, in the running guest
    /// (its thread's affinity) and/or the config.
    pub fn pin_iothread(&self, id: u32, cpus: &CpuSet, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainPinIOThread")?;
        let impact = self.impact(flags)?;
        if cpus.is_empty() {
            return Err(DriverError::InvalidArg(
                "Empty iothread cpumap list for pinning".into(),
            ));
        }
        self.modify(
            impact,
            |def| {
                if find_mut(def, id).is_none() {
                    return Err(DriverError::InvalidArg(format!(
                        "iothreadid {id} not found"
                    )));
                }
                record_pin(def, id, cpus);
                Ok(())
            },
            |lg| {
                let list = qmp(&mut lg.guest, "query-iothreads", None)?;
                let want = format!("iothread{id}");
                let tid = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["id"].as_str() == Some(want.as_str()))
                    .and_then(|t| t["thread-id"].as_i64());
                let Some(tid) = tid else {
                    return Err(DriverError::InvalidArg(format!("iothread {id} not found")));
                };
                set_thread_affinity(tid as i32, cpus)?;
                if find_mut(&mut lg.def, id).is_some() {
                    record_pin(&mut lg.def, id, cpus);
                }
                Ok(())
            },
        )
    }

    /// `virDomainSetIOThreadParams`: change IOThread `id`'s polling (live only) and its
    /// worker pool bounds.
    pub fn set_iothread_params(
        &self,
        id: u32,
        params: &IoThreadParams,
        flags: u32,
    ) -> Result<(), DriverError> {
        check_flags(
            flags,
            AFFECT_LIVE | AFFECT_CONFIG,
            "qemuDomainSetIOThreadParams",
        )?;
        if id == 0 {
            return Err(DriverError::InvalidArg(
                "invalid value of 0 for iothread_id".into(),
            ));
        }
        params.check()?;
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                let t = find_mut(def, id).ok_or_else(|| no_iothread(id))?;
                validate(t, params, false)?;
                apply(t, params);
                Ok(())
            },
            |lg| {
                let t = find_mut(&mut lg.def, id).ok_or_else(|| no_iothread(id))?;
                validate(t, params, true)?;
                apply(t, params);
                let path = format!("/objects/iothread{id}");
                if let Some(v) = params.poll_max_ns {
                    qom_set(&mut lg.guest, &path, "poll-max-ns", json!(v))?;
                }
                if let Some(v) = params.poll_grow {
                    qom_set(&mut lg.guest, &path, "poll-grow", json!(v))?;
                }
                if let Some(v) = params.poll_shrink {
                    qom_set(&mut lg.guest, &path, "poll-shrink", json!(v))?;
                }
                // QEMU refuses a minimum above the current maximum: then the maximum goes
                // first (libvirt: qemuMonitorJSONSetIOThread).
                let mut max_first = false;
                if let (Some(min), Some(_)) = (params.thread_pool_min, params.thread_pool_max) {
                    let cur = qmp(
                        &mut lg.guest,
                        "qom-get",
                        Some(json!({ "path": path, "property": "thread-pool-max" })),
                    )?;
                    max_first = cur.as_i64().unwrap_or(-1) < i64::from(min);
                }
                let order: [(&str, Option<i32>); 2] = if max_first {
                    [
                        ("thread-pool-max", params.thread_pool_max),
                        ("thread-pool-min", params.thread_pool_min),
                    ]
                } else {
                    [
                        ("thread-pool-min", params.thread_pool_min),
                        ("thread-pool-max", params.thread_pool_max),
                    ]
                };
                for (prop, v) in order {
                    if let Some(v) = v {
                        qom_set(&mut lg.guest, &path, prop, json!(v))?;
                    }
                }
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
    fn pins_recorded_in_id_order() {
        let mut d = def("<vcpu cpuset='1'>1</vcpu><iothreads>3</iothreads>");
        assert_eq!(def_iothread_pin(&d, 2).to_string(), "1");
        record_pin(&mut d, 3, &CpuSet::parse("0").unwrap());
        record_pin(&mut d, 1, &CpuSet::parse("0-1").unwrap());
        record_pin(&mut d, 2, &CpuSet::parse("1").unwrap());
        record_pin(&mut d, 1, &CpuSet::parse("0").unwrap());
        let xml = d.to_xml(crate::domain::FormatFlags::default());
        let a = xml.find("<iothreadpin iothread='1' cpuset='0'/>").unwrap();
        let b = xml.find("<iothreadpin iothread='2' cpuset='1'/>").unwrap();
        let c = xml.find("<iothreadpin iothread='3' cpuset='0'/>").unwrap();
        assert!(a < b && b < c, "{xml}");
        assert_eq!(def_iothread_pin(&d, 2).to_string(), "1");
        assert_eq!(def_iothread_pin(&d, 3).to_string(), "0");
    }

    #[test]
    fn pool_bounds_as_libvirt_checks_them() {
        let p = IoThreadParams {
            thread_pool_min: Some(-2),
            ..Default::default()
        };
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "unsupported configuration: thread_pool_min (-2) must be equal to or greater than -1"
        );
        let p = IoThreadParams {
            thread_pool_max: Some(0),
            ..Default::default()
        };
        assert_eq!(
            p.check().unwrap_err().to_string(),
            "unsupported configuration: thread_pool_max (0) must be a positive number or -1"
        );
        let t = IoThread {
            id: 1,
            ..Default::default()
        };
        let p = IoThreadParams {
            thread_pool_min: Some(2),
            ..Default::default()
        };
        assert_eq!(
            validate(&t, &p, false).unwrap_err().to_string(),
            "Requested operation is not valid: thread_pool_min (2) can't be greater than thread_pool_max (-1)"
        );
        let p = IoThreadParams {
            thread_pool_max: Some(-1),
            ..Default::default()
        };
        assert!(validate(&t, &p, true).is_err());
        assert!(validate(&t, &p, false).is_ok());
        let p = IoThreadParams {
            thread_pool_min: Some(1),
            thread_pool_max: Some(4),
            ..Default::default()
        };
        let mut t = t;
        validate(&t, &p, true).unwrap();
        apply(&mut t, &p);
        assert_eq!((t.thread_pool_min, t.thread_pool_max), (Some(1), Some(4)));
        apply(
            &mut t,
            &IoThreadParams {
                thread_pool_min: Some(-1),
                ..Default::default()
            },
        );
        assert_eq!(t.thread_pool_min, None);
    }
}
