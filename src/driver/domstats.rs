//! `virConnectGetAllDomainStats` / `virDomainListGetStats`: typed records per domain, grouped
//! as libvirt's QEMU driver groups them (state, cpu-total, balloon, vcpu, interface, block,
//! perf, iothread, memory, dirtyrate, vm; the QEMU-queried ones are in `domstats_qemu`).

use serde::Serialize;

use super::Connect;
use super::DriverError;
use super::domain::{Domain, ListFlags};
use super::process::{DomainState, State};
use super::stats::{find_interface, process_cpu_times};
use crate::domain::{DomainDef, FormatFlags};

/// A typed parameter's value (`virTypedParameter`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Bool(bool),
    Str(String),
}

impl TypedValue {
    /// As virsh prints a typed parameter.
    // libvirt: vshGetTypedParamValue
    pub fn render(&self) -> String {
        match self {
            TypedValue::Int(v) => v.to_string(),
            TypedValue::UInt(v) => v.to_string(),
            TypedValue::LLong(v) => v.to_string(),
            TypedValue::ULLong(v) => v.to_string(),
            TypedValue::Double(v) => format!("{v:.6}"),
            TypedValue::Bool(v) => (if *v { "yes" } else { "no" }).to_string(),
            TypedValue::Str(v) => v.clone(),
        }
    }
}

/// One domain's record: its name and fields in libvirt's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRecord {
    pub name: String,
    pub params: Vec<(String, TypedValue)>,
}

/// The statistics groups (`VIR_DOMAIN_STATS_*`) this driver gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsGroups {
    pub state: bool,
    pub cpu_total: bool,
    pub balloon: bool,
    pub vcpu: bool,
    pub interface: bool,
    pub block: bool,
    pub perf: bool,
    pub iothread: bool,
    pub memory: bool,
    pub dirtyrate: bool,
    pub vm: bool,
}

impl StatsGroups {
    pub const ALL: StatsGroups = StatsGroups {
        state: true,
        cpu_total: true,
        balloon: true,
        vcpu: true,
        interface: true,
        block: true,
        perf: true,
        iothread: true,
        memory: true,
        dirtyrate: true,
        vm: true,
    };

    /// No group asked for means every group, as in libvirt.
    pub fn or_all(self) -> StatsGroups {
        if self == StatsGroups::default() {
            StatsGroups::ALL
        } else {
            self
        }
    }
}

/// libvirt's number for a state's reason (`virDomain*Reason`), from its name.
pub fn reason_number(st: &DomainState) -> i32 {
    let r = st.reason.as_str();
    let table: &[&str] = match st.state {
        State::Running => &[
            "unknown",
            "booted",
            "migrated",
            "restored",
            "from snapshot",
            "unpaused",
            "migration canceled",
            "save canceled",
            "wakeup",
            "crashed",
            "post-copy",
            "post-copy failed",
        ],
        State::Paused => &[
            "unknown",
            "user",
            "migration",
            "save",
            "dump",
            "ioerror",
            "watchdog",
            "from snapshot",
            "shutdown",
            "snapshot",
            "crashed",
            "starting up",
            "post-copy",
            "post-copy failed",
            "api error",
        ],
        State::Shutdown => &["unknown", "user"],
        State::Shutoff => &[
            "unknown",
            "shutdown",
            "destroyed",
            "crashed",
            "migrated",
            "saved",
            "failed",
            "from snapshot",
            "daemon",
        ],
        State::Crashed => &["unknown", "panicked"],
        _ => &["unknown"],
    };
    table.iter().position(|t| *t == r).unwrap_or(0) as i32
}

/// libvirt's number for a state (`virDomainState`).
pub fn state_number(s: State) -> i32 {
    match s {
        State::NoState => 0,
        State::Running => 1,
        State::Paused => 3,
        State::Shutdown => 4,
        State::Shutoff => 5,
        State::Crashed => 6,
        State::PmSuspended => 7,
    }
}

pub(crate) struct Rec(pub(crate) Vec<(String, TypedValue)>);

impl Rec {
    pub(crate) fn put(&mut self, k: impl Into<String>, v: TypedValue) {
        self.0.push((k.into(), v));
    }
}

impl Connect {
    /// `virConnectGetAllDomainStats`: every domain the list `flags` select.
    pub fn all_domain_stats(
        &self,
        groups: StatsGroups,
        flags: ListFlags,
    ) -> Result<Vec<StatsRecord>, DriverError> {
        let doms = self.list_all_domains(flags)?;
        domain_list_stats(&doms, groups)
    }
}

/// `virDomainListGetStats`: the records of `doms`, in that order.
pub fn domain_list_stats(
    doms: &[Domain<'_>],
    groups: StatsGroups,
) -> Result<Vec<StatsRecord>, DriverError> {
    domain_list_stats_flags(doms, groups, 0)
}

/// `VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING`: the block group has a record for each
/// image of each disk's backing chain (`block.N.backingIndex` names its place).
pub const GET_ALL_DOMAINS_STATS_BACKING: u32 = 1 << 30;

/// [`domain_list_stats`] with `virDomainListGetStats`'s flags (only
/// [`GET_ALL_DOMAINS_STATS_BACKING`] changes what is reported).
pub fn domain_list_stats_flags(
    doms: &[Domain<'_>],
    groups: StatsGroups,
    flags: u32,
) -> Result<Vec<StatsRecord>, DriverError> {
    doms.iter()
        .map(|d| d.stats_flags(groups.or_all(), flags))
        .collect()
}

impl Domain<'_> {
    /// This domain's stats record. Groups that need a running QEMU are empty for an
    /// inactive domain; a group whose data cannot be had is left out, as libvirt does.
    // libvirt: qemuDomainGetStats
    pub fn stats(&self, groups: StatsGroups) -> Result<StatsRecord, DriverError> {
        self.stats_flags(groups, 0)
    }

    /// [`Domain::stats`] with the flags of [`domain_list_stats_flags`].
    pub fn stats_flags(&self, groups: StatsGroups, flags: u32) -> Result<StatsRecord, DriverError> {
        let st = self.state()?;
        let active = self.is_active()?;
        let def = crate::domain::parse(&self.xml_desc(FormatFlags {
            inactive: false,
            secure: true,
        })?)?;
        let mut r = Rec(Vec::new());
        if groups.state {
            r.put("state.state", TypedValue::Int(state_number(st.state)));
            r.put("state.reason", TypedValue::Int(reason_number(&st)));
        }
        // QEMU's own per-vCPU counters (KVM's), read once for cpu-total and vcpu.
        let hv = if active && (groups.cpu_total || groups.vcpu) {
            self.vcpu_hypervisor_stats()
        } else {
            None
        };
        if groups.cpu_total && active {
            self.cpu_total(&mut r);
            // libvirt: qemuDomainGetStatsCpuHaltPollTime
            if let Some(hv) = &hv
                && let (Some(ok), Some(fail)) =
                    (hv.sum("halt_poll_success_ns"), hv.sum("halt_poll_fail_ns"))
            {
                r.put("cpu.haltpoll.success.time", TypedValue::ULLong(ok));
                r.put("cpu.haltpoll.fail.time", TypedValue::ULLong(fail));
            }
        }
        if groups.balloon {
            self.balloon(&def, active, &mut r);
        }
        if groups.vcpu {
            self.vcpu(&def, active, hv.as_ref(), &mut r);
        }
        if groups.interface && active {
            interfaces(&def, &mut r);
        }
        if groups.block {
            let backing = flags & GET_ALL_DOMAINS_STATS_BACKING != 0;
            self.block(&def, active, backing, &mut r);
        }
        // perf: libvirt reports the events it enabled with perf_event_open when QEMU
        // started; this driver enables none, so the group is empty, as libvirt's is for a
        // domain without enabled events. memory: only resctrl memory-bandwidth monitors
        // (`<memorytune><monitor>`), which this driver does not create, so empty as well.
        if groups.iothread && active {
            self.iothread_stats(&mut r)?;
        }
        if groups.dirtyrate && active {
            self.dirtyrate_stats(&mut r)?;
        }
        if groups.vm && active {
            self.vm_stats(&mut r);
        }
        Ok(StatsRecord {
            name: self.name().to_string(),
            params: r.0,
        })
    }

    fn cpu_total(&self, r: &mut Rec) {
        let Ok(live) = self.live_process() else {
            return;
        };
        if let Some((user, system)) = process_cpu_times(live.pid) {
            r.put("cpu.time", TypedValue::ULLong(user + system));
            r.put("cpu.user", TypedValue::ULLong(user));
            r.put("cpu.system", TypedValue::ULLong(system));
        }
    }

    // libvirt: qemuDomainGetStatsBalloon
    fn balloon(&self, def: &DomainDef, active: bool, r: &mut Rec) {
        let current = def.current_memory.unwrap_or(def.memory.kib);
        let mut cur = current;
        let stats = if active {
            self.memory_stats().unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Some(a) = stats
            .iter()
            .find(|s| s.tag == super::stats::MemoryStatTag::Actual)
        {
            cur = a.val;
        }
        r.put("balloon.current", TypedValue::ULLong(cur));
        r.put("balloon.maximum", TypedValue::ULLong(def.memory.kib));
        for s in &stats {
            if let Some(name) = s.tag.domstats_name() {
                r.put(format!("balloon.{name}"), TypedValue::ULLong(s.val));
            }
        }
    }

    // libvirt: qemuDomainGetStatsVcpu
    fn vcpu(
        &self,
        def: &DomainDef,
        active: bool,
        hv: Option<&super::domstats_qemu::VcpuStats>,
        r: &mut Rec,
    ) {
        r.put(
            "vcpu.current",
            TypedValue::UInt(def.vcpu.current.unwrap_or(def.vcpu.count)),
        );
        r.put("vcpu.maximum", TypedValue::UInt(def.vcpu.count));
        if !active {
            return;
        }
        for v in self.vcpus().unwrap_or_default() {
            let n = v.number;
            if let Some(s) = v.state {
                r.put(format!("vcpu.{n}.state"), TypedValue::Int(s.number()));
            }
            r.put(format!("vcpu.{n}.time"), TypedValue::ULLong(v.cpu_time));
            if let Some(d) = v.delay {
                r.put(format!("vcpu.{n}.delay"), TypedValue::ULLong(d));
            }
            if let Some(hv) = hv {
                r.0.extend(hv.fields(n));
            }
        }
    }

    // libvirt: qemuDomainGetStatsBlock, qemuDomainGetStatsBlockExportDisk
    fn block(&self, def: &DomainDef, active: bool, backing: bool, r: &mut Rec) {
        let disks = &def.devices.disks;
        let stats = if active {
            self.block_stats_all(def).unwrap_or_default()
        } else {
            Vec::new()
        };
        let blocks = if active {
            self.qmp_call("query-block", None).unwrap_or_default()
        } else {
            serde_json::Value::Null
        };
        let sizes = super::domstats_qemu::block_sizes(def, &blocks);
        // The backing images' own stats, by node (query-blockstats with query-nodes).
        let (nodes, named) = if active && backing {
            (
                self.qmp_call(
                    "query-blockstats",
                    Some(serde_json::json!({"query-nodes": true})),
                )
                .unwrap_or_default(),
                self.qmp_call(
                    "query-named-block-nodes",
                    Some(serde_json::json!({"flat": true})),
                )
                .unwrap_or_default(),
            )
        } else {
            Default::default()
        };
        let mut out = Rec(Vec::new());
        let mut i = 0usize;
        for d in disks {
            out.put(
                format!("block.{i}.name"),
                TypedValue::Str(d.target.dev.clone()),
            );
            let path = d
                .source
                .as_ref()
                .and_then(|s| s.file.clone().or(s.dev.clone()).or(s.dir.clone()));
            if let Some(p) = path {
                out.put(format!("block.{i}.path"), TypedValue::Str(p.clone()));
            }
            if let Some((_, s)) = stats.iter().find(|(t, _)| *t == d.target.dev) {
                let mut put = |k: &str, v: i64| {
                    out.put(
                        format!("block.{i}.{k}"),
                        TypedValue::ULLong(v.max(0) as u64),
                    );
                };
                put("rd.reqs", s.rd_req);
                put("rd.bytes", s.rd_bytes);
                put("rd.times", s.rd_total_times);
                put("wr.reqs", s.wr_req);
                put("wr.bytes", s.wr_bytes);
                put("wr.times", s.wr_total_times);
                put("fl.reqs", s.flush_req);
                put("fl.times", s.flush_total_times);
                if let Some(a) = s.wr_highest_offset {
                    out.put(format!("block.{i}.allocation"), TypedValue::ULLong(a));
                }
                // libvirt: qemuDomainGetStatsBlockExportBackendStorage
                if let Some((_, capacity, physical)) =
                    sizes.iter().find(|(t, _, _)| *t == d.target.dev)
                {
                    out.put(format!("block.{i}.capacity"), TypedValue::ULLong(*capacity));
                    out.put(format!("block.{i}.physical"), TypedValue::ULLong(*physical));
                }
            }
            i += 1;
            if !backing {
                continue;
            }
            // Each image below the disk's own: its place in the chain (as `vda[N]` names
            // it), its write high-water mark and sizes.
            let Some(dev) = super::blockjob_chain::device_of(&blocks, d) else {
                continue;
            };
            let chain = super::blockjob_chain::layers_from(dev, &named);
            let mut img = &dev["inserted"]["image"]["backing-image"];
            for (n, layer) in chain.iter().enumerate().skip(1) {
                out.put(
                    format!("block.{i}.name"),
                    TypedValue::Str(d.target.dev.clone()),
                );
                out.put(
                    format!("block.{i}.path"),
                    TypedValue::Str(layer.file.clone()),
                );
                out.put(
                    format!("block.{i}.backingIndex"),
                    TypedValue::UInt(n as u32),
                );
                let node_stats = nodes.as_array().into_iter().flatten().find(|e| {
                    !layer.node.is_empty() && e["node-name"].as_str() == Some(layer.node.as_str())
                });
                if let Some(a) = node_stats.and_then(|e| e["stats"]["wr_highest_offset"].as_u64()) {
                    out.put(format!("block.{i}.allocation"), TypedValue::ULLong(a));
                }
                if let Some(c) = img["virtual-size"].as_u64() {
                    out.put(format!("block.{i}.capacity"), TypedValue::ULLong(c));
                    let p = img["actual-size"].as_u64().unwrap_or(c);
                    out.put(format!("block.{i}.physical"), TypedValue::ULLong(p));
                }
                img = &img["backing-image"];
                i += 1;
            }
            // A copy job's target has a record of its own (libvirt: the disk's mirror).
            let mirror = d
                .mirror
                .as_ref()
                .filter(|m| m.attr("job") == Some("copy"))
                .and_then(|m| m.child("source"))
                .and_then(|s| s.attr("file").or(s.attr("dev")));
            if let Some(path) = mirror {
                out.put(
                    format!("block.{i}.name"),
                    TypedValue::Str(d.target.dev.clone()),
                );
                out.put(format!("block.{i}.path"), TypedValue::Str(path.to_string()));
                let node = named.as_array().into_iter().flatten().find(|n| {
                    n["file"].as_str() == Some(path)
                        && !matches!(n["drv"].as_str(), Some("file" | "host_device"))
                });
                if let Some(n) = node {
                    let name = n["node-name"].as_str();
                    let a = nodes
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|e| name.is_some() && e["node-name"].as_str() == name)
                        .and_then(|e| e["stats"]["wr_highest_offset"].as_u64());
                    if let Some(a) = a {
                        out.put(format!("block.{i}.allocation"), TypedValue::ULLong(a));
                    }
                    if let Some(c) = n["image"]["virtual-size"].as_u64() {
                        out.put(format!("block.{i}.capacity"), TypedValue::ULLong(c));
                        let p = n["image"]["actual-size"].as_u64().unwrap_or(c);
                        out.put(format!("block.{i}.physical"), TypedValue::ULLong(p));
                    }
                }
                i += 1;
            }
        }
        r.put("block.count", TypedValue::UInt(i as u32));
        r.0.extend(out.0);
    }
}

// libvirt: qemuDomainGetStatsInterface
fn interfaces(def: &DomainDef, r: &mut Rec) {
    let nets = &def.devices.interfaces;
    r.put("net.count", TypedValue::UInt(nets.len() as u32));
    for (i, n) in nets.iter().enumerate() {
        let Some(name) = n.target_dev.as_deref() else {
            continue;
        };
        r.put(format!("net.{i}.name"), TypedValue::Str(name.to_string()));
        let Ok(idx) = find_interface(def, name) else {
            continue;
        };
        let Ok(s) = super::stats::interface_stats_for(def, idx) else {
            continue;
        };
        for (k, v) in [
            ("rx.bytes", s.rx_bytes),
            ("rx.pkts", s.rx_packets),
            ("rx.errs", s.rx_errs),
            ("rx.drop", s.rx_drop),
            ("tx.bytes", s.tx_bytes),
            ("tx.pkts", s.tx_packets),
            ("tx.errs", s.tx_errs),
            ("tx.drop", s.tx_drop),
        ] {
            r.put(format!("net.{i}.{k}"), TypedValue::ULLong(v.max(0) as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_render_as_virsh() {
        assert_eq!(TypedValue::Int(-3).render(), "-3");
        assert_eq!(TypedValue::Double(1.5).render(), "1.500000");
        assert_eq!(TypedValue::Bool(true).render(), "yes");
        assert_eq!(TypedValue::Str("vda".into()).render(), "vda");
    }

    #[test]
    fn reasons_have_libvirts_numbers() {
        let n = |s, r| reason_number(&DomainState::new(s, r));
        assert_eq!(n(State::Running, "booted"), 1);
        assert_eq!(n(State::Running, "unpaused"), 5);
        assert_eq!(n(State::Paused, "user"), 1);
        assert_eq!(n(State::Shutoff, "destroyed"), 2);
        assert_eq!(n(State::Shutoff, "crashed"), 3);
        assert_eq!(state_number(State::Shutoff), 5);
    }
}
