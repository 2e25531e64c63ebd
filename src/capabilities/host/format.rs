//! `<host>` in libvirt's element order and spelling.

use super::{CacheAssociativity, CachePolicy, HostCaps, InterconnectKind, ResctrlMonitor};
use crate::capabilities::host::{AccessType, CacheControl, HostCpu};
use crate::xmlfmt::XmlWriter;

/// The largest binary unit that divides `bytes` exactly, as libvirt prints cache sizes
/// (`15 MiB`, `768 KiB`, `10 B`).
pub(crate) fn pretty_size(bytes: u64) -> (u64, &'static str) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes == 0 || !bytes.is_multiple_of(1024) {
        return (bytes, "B");
    }
    let mut v = bytes / 1024;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if !v.is_multiple_of(1024) {
            break;
        }
        v /= 1024;
        unit = next;
    }
    (v, unit)
}

pub(crate) fn format_host(caps: &HostCaps, w: &mut XmlWriter) {
    w.elem("host").open();
    if let Some(u) = &caps.uuid {
        w.text_elem("uuid", u);
    }
    format_cpu(&caps.cpu, w);

    let pm = &caps.power_management;
    if pm.suspend_mem || pm.suspend_disk || pm.suspend_hybrid {
        w.elem("power_management").open();
        for (on, name) in [
            (pm.suspend_mem, "suspend_mem"),
            (pm.suspend_disk, "suspend_disk"),
            (pm.suspend_hybrid, "suspend_hybrid"),
        ] {
            if on {
                w.elem(name).empty();
            }
        }
        w.close();
    } else {
        w.elem("power_management").empty();
    }

    w.elem("iommu")
        .attr("support", if caps.iommu { "yes" } else { "no" })
        .empty();

    if let Some(m) = &caps.migration {
        // Always open/close, even when empty: that is how libvirt prints offline-only
        // migration support.
        w.elem("migration_features").open();
        if m.live {
            w.elem("live").empty();
        }
        if !m.uri_transports.is_empty() {
            w.elem("uri_transports").open();
            for t in &m.uri_transports {
                w.text_elem("uri_transport", t);
            }
            w.close();
        }
        w.close();
    }

    format_topology(caps, w);
    format_cache(caps, w);
    format_memory_bandwidth(caps, w);

    for s in &caps.secmodels {
        w.elem("secmodel").open();
        w.text_elem("model", &s.model);
        w.text_elem("doi", &s.doi);
        for (ty, label) in &s.base_labels {
            w.elem("baselabel").attr("type", ty).text(label);
        }
        w.close();
    }
    w.close();
}

fn format_cpu(cpu: &HostCpu, w: &mut XmlWriter) {
    w.elem("cpu").open();
    w.text_elem("arch", &cpu.arch);
    if let Some(m) = &cpu.model {
        w.text_elem("model", m);
    }
    if let Some(v) = &cpu.vendor {
        w.text_elem("vendor", v);
    }
    if let Some(mc) = cpu.microcode {
        w.elem("microcode").attr("version", mc).empty();
    }
    if let Some(s) = &cpu.signature {
        w.elem("signature")
            .attr("family", s.family)
            .attr("model", s.model)
            .attr("stepping", s.stepping)
            .empty();
    }
    if let Some(t) = &cpu.tsc {
        w.elem("counter")
            .attr("name", "tsc")
            .attr("frequency", t.frequency)
            .attr_opt("scaling", t.scaling.map(|s| if s { "yes" } else { "no" }))
            .empty();
    }
    if let Some(t) = &cpu.topology {
        w.elem("topology")
            .attr("sockets", t.sockets)
            .attr("dies", t.dies)
            .attr("cores", t.cores)
            .attr("threads", t.threads)
            .empty();
    }
    if let Some(bits) = cpu.max_phys_addr_bits {
        w.elem("maxphysaddr")
            .attr("mode", "emulate")
            .attr("bits", bits)
            .empty();
    }
    for f in &cpu.features {
        w.elem("feature").attr("name", f).empty();
    }
    for p in &cpu.page_sizes_kib {
        w.elem("pages").attr("unit", "KiB").attr("size", p).empty();
    }
    w.close();
}

fn format_topology(caps: &HostCaps, w: &mut XmlWriter) {
    let Some(numa) = &caps.numa else { return };
    if numa.cells.is_empty() {
        return;
    }
    w.elem("topology").open();
    w.elem("cells").attr("num", numa.cells.len()).open();
    for cell in &numa.cells {
        w.elem("cell").attr("id", cell.id).open();
        if cell.memory_kib != 0 {
            w.elem("memory")
                .attr("unit", "KiB")
                .text(&cell.memory_kib.to_string());
        }
        for p in &cell.pages {
            w.elem("pages")
                .attr("unit", "KiB")
                .attr("size", p.size_kib)
                .text(&p.count.to_string());
        }
        if !cell.distances.is_empty() {
            w.elem("distances").open();
            for d in &cell.distances {
                w.elem("sibling")
                    .attr("id", d.node)
                    .attr("value", d.value)
                    .empty();
            }
            w.close();
        }
        for c in &cell.caches {
            let assoc = match c.associativity {
                CacheAssociativity::None => None,
                CacheAssociativity::Direct => Some("direct"),
                CacheAssociativity::Full => Some("full"),
            };
            let policy = match c.policy {
                CachePolicy::None => None,
                CachePolicy::Writeback => Some("writeback"),
                CachePolicy::Writethrough => Some("writethrough"),
            };
            w.elem("cache")
                .attr("level", c.level)
                .attr_opt("associativity", assoc)
                .attr_opt("policy", policy)
                .open();
            w.elem("size")
                .attr("value", c.size_kib)
                .attr("unit", "KiB")
                .empty();
            if c.line_bytes != 0 {
                w.elem("line")
                    .attr("value", c.line_bytes)
                    .attr("unit", "B")
                    .empty();
            }
            w.close();
        }
        let cpus = w.elem("cpus").attr("num", cell.cpus.len());
        if cell.cpus.is_empty() {
            cpus.empty();
        } else {
            cpus.open();
            for c in &cell.cpus {
                let e = w.elem("cpu").attr("id", c.id);
                match &c.placement {
                    Some(p) => e
                        .attr("socket_id", p.socket_id)
                        .attr("die_id", p.die_id)
                        .attr("core_id", p.core_id)
                        .attr("siblings", &p.siblings)
                        .empty(),
                    None => e.empty(),
                }
            }
            w.close();
        }
        w.close();
    }
    w.close();
    if !numa.interconnects.is_empty() {
        w.elem("interconnects").open();
        for i in &numa.interconnects {
            let name = match i.kind {
                InterconnectKind::Latency => "latency",
                InterconnectKind::Bandwidth => "bandwidth",
            };
            let access = match i.access {
                AccessType::Read => "read",
                AccessType::Write => "write",
            };
            let e = w
                .elem(name)
                .attr("initiator", i.initiator)
                .attr("target", i.target)
                .attr_opt("cache", (i.cache != 0).then_some(i.cache))
                .attr("type", access)
                .attr("value", i.value);
            match i.kind {
                InterconnectKind::Bandwidth => e.attr("unit", "KiB").empty(),
                InterconnectKind::Latency => e.empty(),
            }
        }
        w.close();
    }
    w.close();
}

/// Granularity and minimum in one unit: when they would pretty-print in different units,
/// both use the smaller one so they stay comparable.
fn control_sizes(c: &CacheControl) -> (u64, Option<u64>, &'static str) {
    let (mut gran, mut unit) = pretty_size(c.granularity_bytes);
    if c.min_bytes == 0 {
        return (gran, None, unit);
    }
    let (mut min, min_unit) = pretty_size(c.min_bytes);
    let gran_div = c.granularity_bytes / gran.max(1);
    let min_div = c.min_bytes / min.max(1);
    if min_div > gran_div {
        min *= min_div / gran_div.max(1);
    } else if min_div < gran_div {
        unit = min_unit;
        gran *= gran_div / min_div.max(1);
    }
    (gran, Some(min), unit)
}

fn format_monitor(m: &ResctrlMonitor, w: &mut XmlWriter) {
    let mut e = w.elem("monitor");
    if let Some((level, reuse)) = m.cache {
        e = e.attr("level", level).attr("reuseThreshold", reuse);
    }
    e.attr("maxMonitors", m.max_monitors).open();
    for f in &m.features {
        w.elem("feature").attr("name", f).empty();
    }
    w.close();
}

fn format_cache(caps: &HostCaps, w: &mut XmlWriter) {
    let Some(cache) = &caps.cache else { return };
    if cache.banks.is_empty() {
        return;
    }
    w.elem("cache").open();
    for b in &cache.banks {
        let (size, unit) = pretty_size(b.size_bytes);
        let e = w
            .elem("bank")
            .attr("id", b.id)
            .attr("level", b.level)
            .attr("type", b.kind.as_str())
            .attr("size", size)
            .attr("unit", unit)
            .attr("cpus", &b.cpus);
        if b.controls.is_empty() {
            e.empty();
            continue;
        }
        e.open();
        for c in &b.controls {
            let (gran, min, unit) = control_sizes(c);
            w.elem("control")
                .attr("granularity", gran)
                .attr_opt("min", min)
                .attr("unit", unit)
                .attr("type", c.kind.as_str())
                .attr("maxAllocs", c.max_allocs)
                .empty();
        }
        w.close();
    }
    if let Some(m) = &cache.monitor {
        format_monitor(m, w);
    }
    w.close();
}

fn format_memory_bandwidth(caps: &HostCaps, w: &mut XmlWriter) {
    let Some(mb) = &caps.memory_bandwidth else {
        return;
    };
    if mb.nodes.is_empty() {
        return;
    }
    w.elem("memory_bandwidth").open();
    for n in &mb.nodes {
        w.elem("node").attr("id", n.id).attr("cpus", &n.cpus).open();
        w.elem("control")
            .attr("granularity", n.control.granularity)
            .attr_opt("min", (n.control.min != 0).then_some(n.control.min))
            .attr("maxAllocs", n.control.max_allocs)
            .empty();
        w.close();
    }
    if let Some(m) = &mb.monitor {
        format_monitor(m, w);
    }
    w.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_sizes() {
        assert_eq!(pretty_size(15 << 20), (15, "MiB"));
        assert_eq!(pretty_size(768 << 10), (768, "KiB"));
        assert_eq!(pretty_size(10), (10, "B"));
        assert_eq!(pretty_size(0), (0, "B"));
        assert_eq!(pretty_size(1 << 30), (1, "GiB"));
    }
}
