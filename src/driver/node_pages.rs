//! Free pages per NUMA cell and the size of the huge page pools, read from and written to
//! sysfs (libvirt: virHostMemGetFreePages, virHostMemAllocPages, virNumaGetPageInfo,
//! virNumaSetPagePoolSize).

use std::path::{Path, PathBuf};

use super::DriverError;
use crate::Connect;
use crate::capabilities::host::{HostRoot, system_page_kib};

/// How [`Connect::alloc_pages`] treats the counts (virNodeAllocPagesFlags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocPagesMode {
    /// Add the count to the pool (VIR_NODE_ALLOC_PAGES_ADD).
    Add,
    /// Make the count the pool's new size (VIR_NODE_ALLOC_PAGES_SET).
    Set,
}

/// A sysfs number file as libvirt reads it: digits and one newline, else `bad` says why.
fn read_count(path: &Path, bad: impl Fn(&str) -> DriverError) -> Result<u64, DriverError> {
    let text = std::fs::read_to_string(path).map_err(|e| DriverError::System {
        msg: format!("Failed to open file '{}'", path.display()),
        err: e,
    })?;
    text.strip_suffix('\n')
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or_else(|| bad(&text))
}

/// `MemTotal`/`MemFree` (bytes) of a meminfo file, node (`Node 0 MemFree:`) or host.
fn meminfo_bytes(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.split_once(field)?.1;
        Some(rest.split_whitespace().next()?.parse::<u64>().ok()? * 1024)
    })
}

/// The host's sysfs as the page functions see it.
struct PageDirs<'a> {
    proc_dir: &'a Path,
    sys: &'a Path,
    /// Whether the host has NUMA nodes in sysfs (libvirt: virNumaIsAvailable).
    numa: bool,
    /// The highest NUMA cell (libvirt: virCapabilitiesHostNUMAGetMaxNode).
    last_cell: i32,
}

impl PageDirs<'_> {
    fn node_dir(&self, node: i32) -> PathBuf {
        self.sys.join(format!("devices/system/node/node{node}"))
    }

    /// The directory of huge page pools: the whole host's for node -1
    /// (libvirt: virNumaGetHugePageInfoDir).
    fn huge_dir(&self, node: i32) -> PathBuf {
        if node == -1 {
            self.sys.join("kernel/mm/hugepages")
        } else {
            self.node_dir(node).join("hugepages")
        }
    }

    /// One file of a pool, which must exist (libvirt: virNumaGetHugePageInfoPath).
    fn pool_file(&self, node: i32, size_kib: u32, file: &str) -> Result<PathBuf, DriverError> {
        let path = self
            .huge_dir(node)
            .join(format!("hugepages-{size_kib}kB"))
            .join(file);
        if path.exists() {
            return Ok(path);
        }
        Err(DriverError::OperationFailed(if node == -1 {
            format!("page size {size_kib} is not available")
        } else if !(0..=self.last_cell).contains(&node) || !self.node_dir(node).exists() {
            format!("NUMA node {node} is not available")
        } else {
            format!("page size {size_kib} is not available on node {node}")
        }))
    }

    fn pool_count(&self, node: i32, size_kib: u32, file: &str) -> Result<u64, DriverError> {
        let path = self.pool_file(node, size_kib, file)?;
        read_count(&path, |t| {
            DriverError::Internal(format!("unable to parse: {t}"))
        })
    }

    /// Free pages of `size_kib` on `node` (-1: the whole host). Ordinary pages are the free
    /// memory divided by their size (libvirt: virNumaGetPageInfo).
    fn free(&self, node: i32, size_kib: u32) -> Result<u64, DriverError> {
        let system = system_page_kib(&HostRoot::with_dirs(self.proc_dir, self.sys, "/etc"));
        if u64::from(size_kib) != system {
            return self.pool_count(node, size_kib, "free_hugepages");
        }
        let free = if node == -1 && !self.numa {
            let p = self.proc_dir.join("meminfo");
            let text = std::fs::read_to_string(&p).map_err(|e| DriverError::System {
                msg: format!("cannot read '{}'", p.display()),
                err: e,
            })?;
            meminfo_bytes(&text, "MemFree:")
        } else {
            let nodes: Vec<i32> = if node == -1 {
                (0..=self.last_cell).collect()
            } else {
                vec![node]
            };
            let mut sum = 0;
            for n in nodes {
                let text =
                    std::fs::read_to_string(self.node_dir(n).join("meminfo")).map_err(|_| {
                        DriverError::OperationFailed(format!("NUMA node {n} is not available"))
                    })?;
                sum += meminfo_bytes(&text, "MemFree:").unwrap_or(0);
            }
            Some(sum)
        };
        Ok(free.unwrap_or(0) / (system * 1024))
    }

    /// Size the pool of `size_kib` pages on `node` (libvirt: virNumaSetPagePoolSize): nothing
    /// is written when the pool has the size asked for already.
    fn set_pool(
        &self,
        node: i32,
        size_kib: u32,
        count: u64,
        mode: AllocPagesMode,
    ) -> Result<(), DriverError> {
        let system = system_page_kib(&HostRoot::with_dirs(self.proc_dir, self.sys, "/etc"));
        if u64::from(size_kib) == system {
            return Err(DriverError::OperationUnsupported(
                "system pages pool can't be modified".into(),
            ));
        }
        let path = self.pool_file(node, size_kib, "nr_hugepages")?;
        let invalid = |t: &str| {
            DriverError::OperationFailed(format!("invalid number '{t}' in '{}'", path.display()))
        };
        let now = read_count(&path, invalid)?;
        let want = match mode {
            AllocPagesMode::Add if count == 0 => return Ok(()),
            AllocPagesMode::Add => now.saturating_add(count),
            AllocPagesMode::Set if now == count => return Ok(()),
            AllocPagesMode::Set => count,
        };
        std::fs::write(&path, want.to_string()).map_err(|e| DriverError::System {
            msg: format!("Unable to write to: {}", path.display()),
            err: e,
        })?;
        // The kernel may reserve fewer pages than asked: read back what it did.
        let got = read_count(&path, invalid)?;
        if got != want {
            return Err(DriverError::OperationFailed(format!(
                "Unable to allocate {want} pages. Allocated only {got}"
            )));
        }
        Ok(())
    }
}

impl Connect {
    fn page_dirs(&self) -> PageDirs<'_> {
        let (proc_dir, sys) = self.host_dirs();
        let cells = self.numa_cells();
        PageDirs {
            proc_dir,
            sys,
            numa: sys.join("devices/system/node/node0").exists(),
            last_cell: cells.last().copied().unwrap_or(0) as i32,
        }
    }

    /// The cells `start..start+count` as libvirt walks them; a host without NUMA asked for
    /// its one cell 0 answers for the whole host (-1).
    fn page_cells(
        &self,
        d: &PageDirs<'_>,
        start: i32,
        count: u32,
    ) -> Result<Vec<i32>, DriverError> {
        let start = if !d.numa && d.last_cell == 0 && start == 0 && count == 1 {
            -1
        } else {
            start
        };
        if start > d.last_cell {
            return Err(DriverError::Internal(format!(
                "start cell {start} out of range (0-{})",
                d.last_cell
            )));
        }
        let last = d
            .last_cell
            .min(start.saturating_add(count as i32).saturating_sub(1));
        Ok((start..=last).collect())
    }

    /// `virNodeGetFreePages`: the free pages of each size in `pages` (KiB) for each cell
    /// from `start_cell` (-1: the whole host), cell by cell.
    pub fn free_pages(
        &self,
        pages: &[u32],
        start_cell: i32,
        cell_count: u32,
    ) -> Result<Vec<u64>, DriverError> {
        if pages.is_empty() || cell_count == 0 {
            return Err(DriverError::InvalidArg(
                "the page and cell counts must be positive".into(),
            ));
        }
        let d = self.page_dirs();
        let mut counts = Vec::new();
        for cell in self.page_cells(&d, start_cell, cell_count)? {
            for &size in pages {
                counts.push(d.free(cell, size)?);
            }
        }
        if counts.is_empty() {
            return Err(DriverError::Internal("no suitable info found".into()));
        }
        Ok(counts)
    }

    /// `virNodeAllocPages`: size the pools of `page_sizes` (KiB) to `page_counts` (or grow
    /// them by it) on each cell from `start_cell` (-1: the whole host's pools). Returns how
    /// many pools it handled.
    pub fn alloc_pages(
        &self,
        page_sizes: &[u32],
        page_counts: &[u64],
        start_cell: i32,
        cell_count: u32,
        mode: AllocPagesMode,
    ) -> Result<usize, DriverError> {
        if page_sizes.len() != page_counts.len() || page_sizes.is_empty() || cell_count == 0 {
            return Err(DriverError::InvalidArg(
                "one count for each page size, and at least one cell".into(),
            ));
        }
        let d = self.page_dirs();
        let mut done = 0;
        for cell in self.page_cells(&d, start_cell, cell_count)? {
            for (&size, &count) in page_sizes.iter().zip(page_counts) {
                d.set_pool(cell, size, count, mode)?;
                done += 1;
            }
        }
        Ok(done)
    }

    /// The page sizes (KiB) the host offers, smallest first, as its capabilities list them
    /// under `<cpu><pages>`.
    pub fn page_sizes(&self) -> Result<Vec<u32>, DriverError> {
        let (proc_dir, sys) = self.host_dirs();
        let root = HostRoot::with_dirs(proc_dir, sys, "/etc");
        let mut sizes = vec![system_page_kib(&root) as u32];
        if let Ok(dir) = std::fs::read_dir(sys.join("kernel/mm/hugepages")) {
            for e in dir.flatten() {
                let name = e.file_name();
                let Some(n) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("hugepages-")?.strip_suffix("kB"))
                else {
                    continue;
                };
                let size = n.parse::<u32>().map_err(|_| {
                    DriverError::Internal(format!("unable to parse {}", name.to_string_lossy()))
                })?;
                sizes.push(size);
            }
        }
        sizes.sort_unstable();
        sizes.dedup();
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::ConnectOptions;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// A fake host: two NUMA nodes with 2 MiB pools, and the host-wide pools.
    fn fake_host(root: &Path) -> Connect {
        for n in 0..2 {
            let node = root.join(format!("sys/devices/system/node/node{n}"));
            write(
                &node.join("meminfo"),
                &format!("Node {n} MemTotal: 8000 kB\nNode {n} MemFree:  400{n} kB\n"),
            );
            let pool = node.join("hugepages/hugepages-2048kB");
            write(&pool.join("nr_hugepages"), &format!("{}\n", 10 + n));
            write(&pool.join("free_hugepages"), &format!("{}\n", 3 + n));
        }
        let pool = root.join("sys/kernel/mm/hugepages/hugepages-2048kB");
        write(&pool.join("nr_hugepages"), "21\n");
        write(&pool.join("free_hugepages"), "7\n");
        write(
            &root.join("proc/meminfo"),
            "MemTotal: 16000 kB\nMemFree: 8001 kB\n",
        );
        let opts = ConnectOptions {
            host_root: HostRoot::fake(root),
            ..ConnectOptions::default()
        };
        let dir = root.join("state");
        Connect::open_with(Some(&format!("qemu:///embed?root={}", dir.display())), opts).unwrap()
    }

    #[test]
    fn free_pages_per_cell_and_host() {
        let t = tempfile::tempdir().unwrap();
        let c = fake_host(t.path());
        assert_eq!(c.page_sizes().unwrap(), vec![4, 2048]);
        assert_eq!(
            c.free_pages(&[4, 2048], 0, 2).unwrap(),
            vec![1000, 3, 1000, 4]
        );
        assert_eq!(c.free_pages(&[2048], -1, 1).unwrap(), vec![7]);
        assert_eq!(c.free_pages(&[4], -1, 1).unwrap(), vec![2000]);
        let e = c.free_pages(&[4], 2, 1).unwrap_err().to_string();
        assert_eq!(e, "internal error: start cell 2 out of range (0-1)");
        let e = c.free_pages(&[1024], 1, 1).unwrap_err().to_string();
        assert_eq!(
            e,
            "operation failed: page size 1024 is not available on node 1"
        );
        let e = c.free_pages(&[1024], -1, 1).unwrap_err().to_string();
        assert_eq!(e, "operation failed: page size 1024 is not available");
    }

    #[test]
    fn alloc_pages_sets_adds_and_refuses_system_pages() {
        let t = tempfile::tempdir().unwrap();
        let c = fake_host(t.path());
        let nr = t
            .path()
            .join("sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages");
        c.alloc_pages(&[2048], &[11], 1, 1, AllocPagesMode::Set)
            .unwrap();
        // The same size: nothing written (a file we could not write would fail otherwise).
        assert_eq!(std::fs::read_to_string(&nr).unwrap(), "11\n");
        // A plain file keeps what is written, unlike the kernel's: the read-back check sees 13
        // without the newline the kernel adds, and says the number is invalid.
        let e = c
            .alloc_pages(&[2048], &[2], 1, 1, AllocPagesMode::Add)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("operation failed: invalid number '13' in '"),
            "{e}"
        );
        let e = c
            .alloc_pages(&[4], &[1], 0, 1, AllocPagesMode::Set)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "Operation not supported: system pages pool can't be modified"
        );
        let e = c
            .alloc_pages(&[2048], &[1], 5, 1, AllocPagesMode::Set)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "internal error: start cell 5 out of range (0-1)");
    }
}
