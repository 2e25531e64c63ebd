//! The `domstats` groups QEMU answers through its monitor: iothread (`query-iothreads`),
//! dirtyrate (`query-dirty-rate`) and vm (`query-stats` read through `query-stats-schemas`).
//! Parsing is apart from the calls so it is tested on QEMU's reply shapes.

use serde_json::{Value, json};

use super::DriverError;
use super::domain::Domain;
use super::domstats::{Rec, TypedValue};

/// One IOThread of `query-iothreads`: its number and, when QEMU reports them, its polling
/// parameters (max-ns, grow, shrink).
#[derive(Debug, Clone, PartialEq)]
pub struct IoThread {
    pub id: u32,
    pub poll: Option<(u64, u32, u32)>,
}

/// The IOThreads of a `query-iothreads` reply; objects not named `iothreadN` are libvirt's
/// business only when they are, so others are skipped.
// libvirt: qemuMonitorJSONGetIOThreads
pub fn parse_iothreads(reply: &Value) -> Result<Vec<IoThread>, DriverError> {
    let Some(list) = reply.as_array() else {
        return Err(DriverError::Internal(
            "query-iothreads reply was missing return data".into(),
        ));
    };
    let mut out = Vec::new();
    for t in list {
        let Some(id) = t["id"].as_str() else {
            return Err(DriverError::Internal(
                "query-iothreads reply data was missing 'id'".into(),
            ));
        };
        let Some(num) = id.strip_prefix("iothread") else {
            continue;
        };
        let id_num = num
            .parse::<u32>()
            .map_err(|_| DriverError::Internal(format!("failed to find iothread id for '{id}'")))?;
        let int = |k: &str| t[k].as_u64();
        let poll = match (int("poll-max-ns"), int("poll-grow"), int("poll-shrink")) {
            (Some(m), Some(g), Some(s)) => Some((m, g as u32, s as u32)),
            _ => None,
        };
        out.push(IoThread { id: id_num, poll });
    }
    Ok(out)
}

/// What `query-dirty-rate` says of the last measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct DirtyRate {
    /// `virDomainDirtyRateStatus`: 0 unstarted, 1 measuring, 2 measured.
    pub status: i32,
    pub start_time: i64,
    pub calc_time: i32,
    pub mode: &'static str,
    /// MiB/s, when measured.
    pub rate: Option<i64>,
    /// (vCPU, MiB/s) in dirty-ring mode.
    pub vcpus: Vec<(i64, u64)>,
}

// libvirt: qemuMonitorJSONExtractDirtyRateInfo
pub fn parse_dirty_rate(data: &Value) -> Result<DirtyRate, DriverError> {
    let err = |m: String| DriverError::Internal(m);
    let status_str = data["status"]
        .as_str()
        .ok_or_else(|| err("query-dirty-rate reply was missing 'status' data".into()))?;
    let status = match status_str {
        "unstarted" => 0,
        "measuring" => 1,
        "measured" => 2,
        other => return Err(err(format!("Unknown dirty rate status: {other}"))),
    };
    let rate =
        if status == 2 {
            Some(data["dirty-rate"].as_i64().ok_or_else(|| {
                err("query-dirty-rate reply was missing 'dirty-rate' data".into())
            })?)
        } else {
            None
        };
    let start_time = data["start-time"]
        .as_i64()
        .ok_or_else(|| err("query-dirty-rate reply was missing 'start-time' data".into()))?;
    let calc_time = data["calc-time"]
        .as_i64()
        .ok_or_else(|| err("query-dirty-rate reply was missing 'calc-time' data".into()))?
        as i32;
    let mode = match data["mode"].as_str() {
        None | Some("page-sampling") => "page-sampling",
        Some("dirty-bitmap") => "dirty-bitmap",
        Some("dirty-ring") => "dirty-ring",
        Some(other) => {
            return Err(err(format!(
                "Unknown dirty page rate calculation mode: {other}"
            )));
        }
    };
    let mut vcpus = Vec::new();
    if mode == "dirty-ring"
        && let Some(list) = data["vcpu-dirty-rate"].as_array()
    {
        for v in list {
            let (Some(id), Some(r)) = (v["id"].as_i64(), v["dirty-rate"].as_u64()) else {
                return Err(err(
                    "query-dirty-rate reply vcpu-dirty-rate data was malformed".into(),
                ));
            };
            vcpus.push((id, r));
        }
    }
    Ok(DirtyRate {
        status,
        start_time,
        calc_time,
        mode,
        rate,
        vcpus,
    })
}

/// The fields of one `query-stats` result, named `PREFIX.NAME.TYPE` as the schema types
/// them (cumulative: sum, instant: cur, peak: max; histograms are not reported), in QEMU's
/// order. `schema` is `query-stats-schemas`' reply, `target` the target asked for.
// libvirt: qemuDomainAddStatsFromHashTable
pub fn hypervisor_fields(
    result: &Value,
    schema: &Value,
    target: &str,
    prefix: &str,
) -> Vec<(String, TypedValue)> {
    let provider = result["provider"].as_str().unwrap_or("");
    let schema_stats: Vec<&Value> = schema
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["target"] == target && s["provider"] == provider)
        .flat_map(|s| s["stats"].as_array().into_iter().flatten())
        .collect();
    let mut out = Vec::new();
    for stat in result["stats"].as_array().into_iter().flatten() {
        let Some(name) = stat["name"].as_str() else {
            continue;
        };
        let Some(def) = schema_stats.iter().find(|s| s["name"] == name) else {
            continue;
        };
        let kind = match def["type"].as_str() {
            Some("cumulative") => "sum",
            Some("instant") => "cur",
            Some("peak") => "max",
            _ => continue,
        };
        let key = format!("{prefix}.{name}.{kind}");
        let value = &stat["value"];
        if def["unit"] == "boolean" {
            if let Some(b) = value.as_bool() {
                out.push((key, TypedValue::Bool(b)));
            }
        } else if let Some(n) = value.as_u64() {
            out.push((key, TypedValue::ULLong(n)));
        }
    }
    out
}

/// QEMU's per-vCPU statistics (`query-stats` target vcpu), by vCPU index (matched through
/// `query-cpus-fast`'s QOM paths), with the schema that types them.
pub(crate) struct VcpuStats {
    pub by_index: Vec<(u32, Value)>,
    pub schema: Value,
}

impl VcpuStats {
    /// The `vcpu.N.NAME.TYPE` fields of vCPU `n`.
    pub fn fields(&self, n: u32) -> Vec<(String, TypedValue)> {
        self.by_index
            .iter()
            .filter(|(i, _)| *i == n)
            .flat_map(|(_, r)| hypervisor_fields(r, &self.schema, "vcpu", &format!("vcpu.{n}")))
            .collect()
    }

    /// The sum over vCPUs of one counter (KVM's `halt_poll_success_ns`, ...), if reported.
    pub fn sum(&self, name: &str) -> Option<u64> {
        let values: Vec<u64> = self
            .by_index
            .iter()
            .flat_map(|(_, r)| r["stats"].as_array().into_iter().flatten())
            .filter(|s| s["name"] == name)
            .filter_map(|s| s["value"].as_u64())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }
}

/// Pair `query-stats` vcpu results with vCPU indexes through `query-cpus-fast`'s QOM paths.
pub(crate) fn vcpu_results(stats: &Value, cpus: &Value) -> Vec<(u32, Value)> {
    let index_of = |path: &str| {
        cpus.as_array()
            .into_iter()
            .flatten()
            .find(|c| c["qom-path"] == path)
            .and_then(|c| c["cpu-index"].as_u64())
            .map(|i| i as u32)
    };
    stats
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((index_of(r["qom-path"].as_str()?)?, r.clone())))
        .collect()
}

/// (capacity, physical) of each disk of `def` that `query-block` shows with an image, by
/// target: the image's virtual size, and its size on the host (the virtual size where QEMU
/// reports none, as for a fully allocated image).
// libvirt: qemuMonitorJSONBlockStatsUpdateCapacityData
pub(crate) fn block_sizes(
    def: &crate::domain::DomainDef,
    reply: &Value,
) -> Vec<(String, u64, u64)> {
    let entries = reply.as_array().cloned().unwrap_or_default();
    def.devices
        .disks
        .iter()
        .filter_map(|d| {
            let alias = d.info.alias.as_deref()?;
            let e = entries
                .iter()
                .find(|e| super::stats::is_disk_entry(e, alias))?;
            let image = &e["inserted"]["image"];
            let capacity = image["virtual-size"].as_u64()?;
            let physical = image["actual-size"].as_u64().unwrap_or(capacity);
            Some((d.target.dev.clone(), capacity, physical))
        })
        .collect()
}

impl Domain<'_> {
    /// QEMU's per-vCPU statistics, or None when QEMU has none (TCG, a QEMU without
    /// `query-stats`), as libvirt then reports none.
    // libvirt: qemuDomainGetStatsVcpu (its query-stats part)
    pub(crate) fn vcpu_hypervisor_stats(&self) -> Option<VcpuStats> {
        let stats = self
            .qmp_call("query-stats", Some(json!({"target": "vcpu"})))
            .ok()?;
        if stats.as_array().is_none_or(|a| a.is_empty()) {
            return None;
        }
        let cpus = self.qmp_call("query-cpus-fast", None).ok()?;
        let schema = self.qmp_call("query-stats-schemas", None).ok()?;
        Some(VcpuStats {
            by_index: vcpu_results(&stats, &cpus),
            schema,
        })
    }

    // libvirt: qemuDomainGetStatsIOThread
    pub(crate) fn iothread_stats(&self, r: &mut Rec) -> Result<(), DriverError> {
        // libvirt resets a failed query's error and reports nothing.
        let Ok(reply) = self.qmp_call("query-iothreads", None) else {
            return Ok(());
        };
        let threads = parse_iothreads(&reply)?;
        if threads.is_empty() {
            return Ok(());
        }
        r.put("iothread.count", TypedValue::UInt(threads.len() as u32));
        for t in &threads {
            if let Some((max, grow, shrink)) = t.poll {
                let id = t.id;
                r.put(
                    format!("iothread.{id}.poll-max-ns"),
                    TypedValue::ULLong(max),
                );
                r.put(format!("iothread.{id}.poll-grow"), TypedValue::UInt(grow));
                r.put(
                    format!("iothread.{id}.poll-shrink"),
                    TypedValue::UInt(shrink),
                );
            }
        }
        Ok(())
    }

    // libvirt: qemuDomainGetStatsDirtyRate
    pub(crate) fn dirtyrate_stats(&self, r: &mut Rec) -> Result<(), DriverError> {
        let info = parse_dirty_rate(&self.qmp_call("query-dirty-rate", None)?)?;
        r.put("dirtyrate.calc_status", TypedValue::Int(info.status));
        r.put(
            "dirtyrate.calc_start_time",
            TypedValue::LLong(info.start_time),
        );
        r.put("dirtyrate.calc_period", TypedValue::Int(info.calc_time));
        r.put("dirtyrate.calc_mode", TypedValue::Str(info.mode.into()));
        if let Some(rate) = info.rate {
            r.put("dirtyrate.megabytes_per_second", TypedValue::LLong(rate));
            for (id, v) in &info.vcpus {
                r.put(
                    format!("dirtyrate.vcpu.{id}.megabytes_per_second"),
                    TypedValue::ULLong(*v),
                );
            }
        }
        Ok(())
    }

    /// QEMU's own statistics of the whole VM (KVM's; TCG has none), empty when QEMU cannot
    /// give them, as in libvirt.
    // libvirt: qemuDomainGetStatsVm
    pub(crate) fn vm_stats(&self, r: &mut Rec) {
        let Ok(stats) = self.qmp_call("query-stats", Some(json!({"target": "vm"}))) else {
            return;
        };
        let Some([result]) = stats.as_array().map(Vec::as_slice) else {
            return;
        };
        let Ok(schema) = self.qmp_call("query-stats-schemas", None) else {
            return;
        };
        r.0.extend(hypervisor_fields(result, &schema, "vm", "vm"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iothreads_with_and_without_polling() {
        let reply = json!([
            {"id": "iothread1", "thread-id": 10, "poll-max-ns": 32768, "poll-grow": 0, "poll-shrink": 0},
            {"id": "iothread2", "thread-id": 11},
            {"id": "other", "thread-id": 12}
        ]);
        assert_eq!(
            parse_iothreads(&reply).unwrap(),
            vec![
                IoThread {
                    id: 1,
                    poll: Some((32768, 0, 0))
                },
                IoThread { id: 2, poll: None }
            ]
        );
        let bad = json!([{"id": "iothreadX", "thread-id": 1}]);
        assert_eq!(
            parse_iothreads(&bad).unwrap_err().to_string(),
            "internal error: failed to find iothread id for 'iothreadX'"
        );
        assert!(parse_iothreads(&json!([{"thread-id": 1}])).is_err());
    }

    #[test]
    fn dirty_rate_states_and_modes() {
        let unstarted = json!({"status": "unstarted", "start-time": 0, "calc-time": 0,
            "sample-pages": 512, "mode": "page-sampling"});
        let d = parse_dirty_rate(&unstarted).unwrap();
        assert_eq!((d.status, d.mode, d.rate), (0, "page-sampling", None));
        let ring = json!({"status": "measured", "start-time": 7, "calc-time": 1,
            "dirty-rate": 4, "mode": "dirty-ring",
            "vcpu-dirty-rate": [{"id": 0, "dirty-rate": 1}, {"id": 1, "dirty-rate": 3}]});
        let d = parse_dirty_rate(&ring).unwrap();
        assert_eq!(
            (d.status, d.rate, d.vcpus),
            (2, Some(4), vec![(0, 1), (1, 3)])
        );
        let old = json!({"status": "measuring", "start-time": 1, "calc-time": 2});
        assert_eq!(parse_dirty_rate(&old).unwrap().mode, "page-sampling");
        let bad = json!({"status": "lost", "start-time": 1, "calc-time": 2});
        assert_eq!(
            parse_dirty_rate(&bad).unwrap_err().to_string(),
            "internal error: Unknown dirty rate status: lost"
        );
        let no_rate = json!({"status": "measured", "start-time": 1, "calc-time": 2});
        assert!(parse_dirty_rate(&no_rate).is_err());
    }

    #[test]
    fn block_sizes_by_target() {
        let def = crate::domain::parse(
            "<domain type='qemu'><name>d</name><memory>1024</memory><os><type>hvm</type></os>\
             <devices><disk type='file' device='disk'><source file='/a'/>\
             <target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>\
             <disk type='file' device='cdrom'><target dev='sda' bus='sata'/>\
             <alias name='sata0-0-0'/></disk></devices></domain>",
        )
        .unwrap();
        let reply = json!([
            {"qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
             "inserted": {"image": {"virtual-size": 100, "actual-size": 40}}},
            {"qdev": "sata0-0-0", "device": ""}
        ]);
        assert_eq!(
            block_sizes(&def, &reply),
            vec![("vda".to_string(), 100, 40)]
        );
        let full = json!([{"qdev": "/machine/peripheral/virtio-disk0/virtio-backend",
            "inserted": {"image": {"virtual-size": 100}}}]);
        assert_eq!(
            block_sizes(&def, &full),
            vec![("vda".to_string(), 100, 100)]
        );
    }

    #[test]
    fn vcpu_results_pair_by_qom_path() {
        let stats = json!([
            {"provider": "kvm", "qom-path": "/machine/unattached/device[1]",
             "stats": [{"name": "halt_poll_success_ns", "value": 5}]},
            {"provider": "kvm", "qom-path": "/machine/unattached/device[0]",
             "stats": [{"name": "halt_poll_success_ns", "value": 7}]},
            {"provider": "kvm", "qom-path": "/elsewhere", "stats": []}
        ]);
        let cpus = json!([
            {"cpu-index": 0, "qom-path": "/machine/unattached/device[0]"},
            {"cpu-index": 1, "qom-path": "/machine/unattached/device[1]"}
        ]);
        let schema = json!([{"provider": "kvm", "target": "vcpu", "stats": [
            {"name": "halt_poll_success_ns", "type": "cumulative", "unit": "seconds"}]}]);
        let v = VcpuStats {
            by_index: vcpu_results(&stats, &cpus),
            schema,
        };
        assert_eq!(
            v.by_index.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [1, 0]
        );
        assert_eq!(
            v.fields(0),
            [(
                "vcpu.0.halt_poll_success_ns.sum".to_string(),
                TypedValue::ULLong(7)
            )]
        );
        assert_eq!(v.sum("halt_poll_success_ns"), Some(12));
        assert_eq!(v.sum("halt_poll_fail_ns"), None);
    }

    #[test]
    fn hypervisor_fields_follow_the_schema() {
        let schema = json!([{"provider": "kvm", "target": "vm", "stats": [
            {"name": "pages_4k", "type": "instant", "unit": "pages"},
            {"name": "remote_tlb_flush", "type": "cumulative"},
            {"name": "max_mmu_page_hash_collisions", "type": "peak"},
            {"name": "nx_lpage_splits", "type": "linear-histogram"},
            {"name": "halted", "type": "instant", "unit": "boolean"}
        ]}]);
        let result = json!({"provider": "kvm", "stats": [
            {"name": "remote_tlb_flush", "value": 5},
            {"name": "pages_4k", "value": 1024},
            {"name": "max_mmu_page_hash_collisions", "value": 2},
            {"name": "nx_lpage_splits", "value": [1, 2]},
            {"name": "halted", "value": true},
            {"name": "unknown", "value": 3}
        ]});
        let f = hypervisor_fields(&result, &schema, "vm", "vm");
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "vm.remote_tlb_flush.sum",
                "vm.pages_4k.cur",
                "vm.max_mmu_page_hash_collisions.max",
                "vm.halted.cur"
            ]
        );
        assert_eq!(f[3].1.render(), "yes");
    }
}
