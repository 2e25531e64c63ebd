//! Memory checks that need no capabilities: libvirt's virDomainDefMemtuneValidate (huge page
//! node sets against the guest's NUMA cells).

use super::DomainError;
use crate::capabilities::cpuset::CpuSet;
use crate::domain::model::DomainDef;

/// libvirt reports these as bare details (VIR_ERR_XML_DETAIL), without a prefix.
fn detail(msg: String) -> DomainError {
    DomainError::Xml(msg)
}

/// libvirt: virDomainDefMemtuneValidate. Huge page node sets may not overlap, at most one
/// size may apply to all nodes, and a node set may only name existing guest NUMA cells.
pub(super) fn validate_hugepages(def: &DomainDef) -> Result<(), DomainError> {
    let Some(pages) = def
        .memory_backing
        .as_ref()
        .and_then(|m| m.hugepages.as_ref())
    else {
        return Ok(());
    };
    let cells = def.cpu.as_ref().map_or(0, |c| c.numa.len()) as u32;
    // An unparsable node set is the parser's to report.
    let sets: Vec<Option<CpuSet>> = pages
        .iter()
        .map(|p| p.nodeset.as_deref().and_then(|s| CpuSet::parse(s).ok()))
        .collect();
    for (i, page) in pages.iter().enumerate() {
        for (j, other) in pages[..i].iter().enumerate() {
            match (&sets[i], &sets[j]) {
                (Some(a), Some(b)) if a.iter().any(|n| b.contains(n)) => {
                    return Err(detail(format!(
                        "nodeset attribute of hugepages of sizes {} and {} intersect",
                        page.size_kib, other.size_kib
                    )));
                }
                (None, None) => {
                    return Err(detail(format!(
                        "two master hugepages detected: {} and {}",
                        page.size_kib, other.size_kib
                    )));
                }
                _ => {}
            }
        }
        if let Some(node) = sets[i]
            .as_ref()
            .and_then(|s| s.iter().find(|n| *n >= cells))
        {
            return Err(detail(format!("hugepages: node {node} not found")));
        }
    }
    Ok(())
}

/// libvirt: qemuValidateDomainDefVhostUserRequireSharedMemory, for virtiofs shares. The
/// daemon maps the guest's RAM, so all of it must be shared: without NUMA cells the
/// domain's `<access mode='shared'/>`, else every cell's `memAccess` (the domain's mode
/// standing in for a cell that sets none).
pub(super) fn validate_virtiofs_memory(def: &DomainDef) -> Result<(), DomainError> {
    let virtiofs = def
        .devices
        .filesystems
        .iter()
        .any(|f| f.driver.as_ref().and_then(|d| d.dtype.as_deref()) == Some("virtiofs"));
    if !virtiofs {
        return Ok(());
    }
    let domain = def
        .memory_backing
        .as_ref()
        .and_then(|m| m.access_mode.as_deref());
    let cells = def.cpu.as_ref().map(|c| c.numa.as_slice()).unwrap_or(&[]);
    let shared = if cells.is_empty() {
        domain == Some("shared")
    } else {
        cells
            .iter()
            .all(|c| c.mem_access.as_deref().or(domain) == Some("shared"))
    };
    if shared {
        Ok(())
    } else {
        Err(super::config("'virtiofs' requires shared memory"))
    }
}
