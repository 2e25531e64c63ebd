//! Guest NUMA post-parse: vCPUs no cell names go to the first cell (libvirt:
//! qemuDomainDefNumaCPUsRectify, virDomainNumaFillCPUsInNode), so every vCPU has a node.

use crate::domain::DomainDef;

/// CPU numbers of a libvirt cpuset (`0-3,^2,8`); None when it does not parse.
fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut set = std::collections::BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (neg, part) = match part.strip_prefix('^') {
            Some(p) => (true, p),
            None => (false, part),
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let v: u32 = part.parse().ok()?;
                (v, v)
            }
        };
        if lo > hi {
            return None;
        }
        for c in lo..=hi {
            if neg {
                set.remove(&c);
            } else {
                set.insert(c);
            }
        }
    }
    Some(set.into_iter().collect())
}

/// `0-15,18`: consecutive runs as ranges, as libvirt formats a bitmap.
fn format_cpuset(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// When the cells name fewer CPUs than the domain's maximum vCPU count, the first cell gets
/// every vCPU no other cell names.
pub(crate) fn rectify_cpus(def: &mut DomainDef) {
    let max = def.vcpu.count;
    let Some(cpu) = def.cpu.as_mut() else { return };
    if cpu.numa.is_empty() {
        return;
    }
    let mut cells = Vec::with_capacity(cpu.numa.len());
    for c in &cpu.numa {
        match c.cpus.as_deref().map(parse_cpuset) {
            Some(Some(v)) => cells.push(v),
            Some(None) => return,
            None => cells.push(Vec::new()),
        }
    }
    let total: usize = cells.iter().map(Vec::len).sum();
    if total >= max as usize {
        return;
    }
    let others: std::collections::BTreeSet<u32> = cells[1..].iter().flatten().copied().collect();
    let first: Vec<u32> = (0..max).filter(|c| !others.contains(c)).collect();
    if first != cells[0] {
        cpu.numa[0].cpus = Some(format_cpuset(&first));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpusets_round_trip() {
        assert_eq!(parse_cpuset("0-3,^2,8"), Some(vec![0, 1, 3, 8]));
        assert_eq!(parse_cpuset("x"), None);
        assert_eq!(format_cpuset(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn missing_vcpus_go_to_the_first_cell() {
        let mut d = crate::domain::parse(
            "<domain type='qemu'><name>n</name><memory>65536</memory><vcpu>16</vcpu>\
             <os><type arch='x86_64'>hvm</type></os><cpu><numa>\
             <cell id='0' cpus='0' memory='32768'/><cell id='1' cpus='4-5' memory='32768'/>\
             </numa></cpu></domain>",
        )
        .unwrap();
        rectify_cpus(&mut d);
        let cells = &d.cpu.as_ref().unwrap().numa;
        assert_eq!(cells[0].cpus.as_deref(), Some("0-3,6-15"));
        assert_eq!(cells[1].cpus.as_deref(), Some("4-5"));
    }
}
