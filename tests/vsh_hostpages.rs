//! `freepages` and `allocpages` through `vsh`, against what sysfs says. The host's huge page
//! pools are never changed: `allocpages` runs only where it fails, or sets a pool to the size
//! it has (which libvirt, and vsh, do without writing).

#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;

use vshrun::Vsh;

const POOL_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

fn sysfs_count(p: &Path) -> u64 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[test]
fn freepages_as_virsh_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    let help = v.ok(&["freepages", "--help"]);
    assert!(
        help.contains("freepages [--cellno <number>] [--pagesize <number>] [--all] [--json]"),
        "{help}"
    );

    // Ordinary pages: the cell's free memory in 4 KiB pages.
    let line = v.ok(&["-q", "freepages", "0", "4"]);
    let n = line
        .strip_prefix("4KiB: ")
        .and_then(|r| r.strip_suffix('\n'));
    assert!(n.is_some_and(|n| n.parse::<u64>().is_ok()), "{line}");
    let same = v.ok(&["freepages", "--cellno", "0", "--pagesize", "4KiB"]);
    assert!(same.starts_with("4KiB: "), "{same}");

    // Huge pages: the pool's free_hugepages, for the whole host with cell -1.
    if Path::new(POOL_2M).exists() {
        let free = sysfs_count(&Path::new(POOL_2M).join("free_hugepages"));
        assert_eq!(
            v.ok(&["-q", "freepages", "-1", "2M"]),
            format!("2048KiB: {free}\n")
        );
        let all = v.ok(&["freepages", "--all"]);
        assert!(all.starts_with("Node 0:\n4KiB: "), "{all}");
        assert!(all.contains("\n2048KiB: "), "{all}");
        assert!(all.ends_with("\n\n\n"), "{all}");
        let only = v.ok(&["freepages", "--all", "--pagesize", "2048"]);
        assert!(only.starts_with("Node 0:\n2048KiB: "), "{only}");
        assert!(!only.contains("4KiB"), "{only}");
        let j: serde_json::Value =
            serde_json::from_str(&v.ok(&["freepages", "--all", "--json"])).unwrap();
        assert_eq!(j[0]["cell"], 0);
        assert_eq!(j[0]["pages"][0]["size_kib"], 4);
        assert!(j[0]["pages"][1]["free"].is_u64(), "{j}");
    }

    assert_eq!(v.fails(&["freepages"]), "error: missing cellno argument\n");
    assert_eq!(
        v.fails(&["freepages", "0"]),
        "error: missing pagesize argument\n"
    );
    assert_eq!(
        v.fails(&["freepages", "-2", "4"]),
        "error: cell number must be non-negative integer or -1\n"
    );
    assert_eq!(
        v.fails(&["freepages", "0", "3"]),
        "error: operation failed: page size 3 is not available on node 0\n"
    );
    assert_eq!(
        v.fails(&["freepages", "-1", "3"]),
        "error: operation failed: page size 3 is not available\n"
    );
    let err = v.fails(&["freepages", "999", "4"]);
    assert!(
        err.starts_with("error: internal error: start cell 999 out of range (0-"),
        "{err}"
    );
    assert_eq!(
        v.fails(&["freepages", "0", "2X"]),
        "error: Scaled numeric value '2X' for <pagesize> option is malformed or out of range\n"
    );
    assert_eq!(
        v.fails(&["freepages", "--all", "--cellno", "0"]),
        "error: Options --all and --cellno are mutually exclusive\n"
    );
}

#[test]
fn allocpages_refusals_and_a_pool_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    let help = v.ok(&["help", "allocpages"]);
    assert!(help.contains("Manipulate pages pool size"), "{help}");
    assert_eq!(
        v.fails(&["allocpages", "4", "1"]),
        "error: Operation not supported: system pages pool can't be modified\n"
    );
    assert_eq!(
        v.fails(&["allocpages", "3", "1"]),
        "error: operation failed: page size 3 is not available\n"
    );
    assert_eq!(
        v.fails(&["allocpages", "3", "1", "--cellno", "0"]),
        "error: operation failed: page size 3 is not available on node 0\n"
    );
    let err = v.fails(&["allocpages", "2048", "1", "--cellno", "999"]);
    assert!(
        err.starts_with("error: internal error: start cell 999 out of range (0-"),
        "{err}"
    );
    assert_eq!(
        v.fails(&["allocpages", "2048"]),
        "error: command 'allocpages' requires --pagecount option\n"
    );
    assert_eq!(
        v.fails(&["allocpages", "2048", "x"]),
        "error: Numeric value 'x' for <pagecount> option is malformed or out of range\n"
    );
    assert_eq!(
        v.fails(&["allocpages", "2048", "1", "--all", "--cellno", "0"]),
        "error: Options --all and --cellno are mutually exclusive\n"
    );
    let err = v.fails(&["-r", "allocpages", "2048", "1"]);
    assert!(err.contains("read only"), "{err}");

    // The pool's own size, set again, and nothing added: libvirt writes nothing then.
    if Path::new(POOL_2M).exists() {
        let nr = Path::new(POOL_2M).join("nr_hugepages");
        let before = sysfs_count(&nr);
        assert_eq!(v.ok(&["-q", "allocpages", "2M", &before.to_string()]), "");
        assert_eq!(v.ok(&["-q", "allocpages", "2048", "0", "--add"]), "");
        assert_eq!(sysfs_count(&nr), before);
        let node0 = Path::new("/sys/devices/system/node/node0/hugepages/hugepages-2048kB");
        if node0.exists() {
            let n0 = sysfs_count(&node0.join("nr_hugepages"));
            assert_eq!(
                v.ok(&["-q", "allocpages", "2048", &n0.to_string(), "--cellno", "0"]),
                ""
            );
            assert_eq!(sysfs_count(&node0.join("nr_hugepages")), n0);
        }
    }
}

/// `node-memory-tune` reads the host's KSM files as virsh prints them; setting is checked
/// only where it fails before writing (the host's KSM is never changed here).
#[test]
fn node_memory_tune_reads_ksm() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    let help = v.ok(&["node-memory-tune", "--help"]);
    assert!(
        help.contains("node-memory-tune [--shm-pages-to-scan <number>] [--shm-sleep-millisecs <number>] [--shm-merge-across-nodes <number>]"),
        "{help}"
    );
    let ksm = Path::new("/sys/kernel/mm/ksm");
    if ksm.join("pages_to_scan").exists() {
        let out = v.ok(&["-q", "node-memory-tune"]);
        let scan = sysfs_count(&ksm.join("pages_to_scan"));
        assert!(out.starts_with("Shared memory:\n"), "{out}");
        assert!(
            out.contains(&format!("\tshm_pages_to_scan {scan}\n")),
            "{out}"
        );
        // Short names are padded to 15 columns (virsh's "\t%-15s %s").
        assert!(out.contains("\tshm_full_scans  "), "{out}");
        let j: serde_json::Value =
            serde_json::from_str(&v.ok(&["node-memory-tune", "--json"])).unwrap();
        assert_eq!(j[0]["field"], "shm_pages_to_scan");
        assert_eq!(j[0]["value"], scan);
        // A read-only connection may read them.
        assert!(
            v.ok(&["-r", "node-memory-tune"])
                .starts_with("Shared memory:")
        );
    }
    assert_eq!(
        v.fails(&["-r", "node-memory-tune", "--shm-sleep-millisecs", "20"]),
        "error: operation forbidden: read only access prevents virNodeSetMemoryParameters\n"
    );
    assert_eq!(
        v.fails(&["node-memory-tune", "--shm-pages-to-scan", "-1"]),
        "error: Numeric value '-1' for <shm-pages-to-scan> option is malformed or out of range\n"
    );
}
