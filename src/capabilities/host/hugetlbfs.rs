//! The host facts a start needs about memory placement: the hugetlbfs mounts huge page backed
//! guest memory lives on, and the NUMA nodes guest memory may be bound to.

use super::HostRoot;
use super::numa::has_numa;
use super::sysfs::read_cpuset_opt;

/// One hugetlbfs mount: where it is and the size of its pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugetlbfsMount {
    pub dir: String,
    pub page_kib: u64,
    /// Mounted with the system's default huge page size (libvirt's `deflt`): the mount an
    /// unsized `<hugepages/>` uses.
    pub default: bool,
}

/// The hugetlbfs mounts of `ROOT/proc/mounts`, in mount order (libvirt:
/// virFileFindHugeTLBFS). A mount's page size is its `pagesize=` option (the kernel always
/// lists it), else the default size `meminfo` gives; unreadable files mean no mounts.
pub fn hugetlbfs_mounts(root: &HostRoot) -> Vec<HugetlbfsMount> {
    let default_kib = std::fs::read_to_string(root.proc_dir.join("meminfo"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Hugepagesize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    let Ok(mounts) = std::fs::read_to_string(root.proc_dir.join("mounts")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[2] != "hugetlbfs" {
            continue;
        }
        let sized = f[3]
            .split(',')
            .find_map(|o| o.strip_prefix("pagesize="))
            .and_then(parse_size_kib);
        let Some(page_kib) = sized.or(default_kib) else {
            continue;
        };
        out.push(HugetlbfsMount {
            dir: unescape_mount_path(f[1]),
            page_kib,
            default: Some(page_kib) == default_kib,
        });
    }
    out
}

/// `2M`, `1G`, `1024K`, `2097152` (bytes) in KiB.
fn parse_size_kib(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1),
        (i, 'M' | 'm') => (&s[..i], 1024),
        (i, 'G' | 'g') => (&s[..i], 1024 * 1024),
        _ => return s.parse::<u64>().ok().map(|b| b / 1024),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// `/proc/mounts` writes space, tab, newline and backslash in paths as octal escapes.
fn unescape_mount_path(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host's NUMA nodes: sysfs's online nodes; a host without NUMA in sysfs has the one
/// node 0 (libvirt with numactl: the library's node mask, node 0 alone on such hosts).
pub fn host_numa_nodes(root: &HostRoot) -> Vec<u32> {
    if !has_numa(root) {
        return vec![0];
    }
    match read_cpuset_opt(&root.system_dir.join("node").join("online")) {
        Ok(Some(set)) => set.iter().collect(),
        _ => vec![0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_with_and_without_page_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_dir = dir.path().join("proc");
        std::fs::create_dir_all(&proc_dir).expect("mkdir");
        std::fs::write(
            proc_dir.join("mounts"),
            "proc /proc proc rw 0 0\n\
             hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n\
             none /mnt/huge\\0401G hugetlbfs rw,pagesize=1024M 0 0\n\
             none /mnt/old hugetlbfs rw 0 0\n",
        )
        .expect("write");
        std::fs::write(proc_dir.join("meminfo"), "Hugepagesize:       2048 kB\n").expect("write");
        let root = HostRoot::fake(dir.path());
        let m = hugetlbfs_mounts(&root);
        let got: Vec<(&str, u64, bool)> = m
            .iter()
            .map(|m| (m.dir.as_str(), m.page_kib, m.default))
            .collect();
        assert_eq!(
            got,
            [
                ("/dev/hugepages", 2048, true),
                ("/mnt/huge 1G", 1048576, false),
                ("/mnt/old", 2048, true)
            ]
        );
    }

    #[test]
    fn no_mounts_file_means_no_mounts_and_node_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = HostRoot::fake(dir.path());
        assert!(hugetlbfs_mounts(&root).is_empty());
        assert_eq!(host_numa_nodes(&root), vec![0]);
    }
}
