//! `<capabilities><host>` from libvirt's fake sysfs trees (`tests/vircaps2xmldata/linux-*`),
//! compared with the documents libvirt derives from the same trees, plus fake-root and
//! error-path checks.

mod common;

use std::fs;
use std::path::Path;

use domdriver::capabilities::CapsError;
use domdriver::capabilities::cpuset::CpuSet;
use domdriver::capabilities::host::{
    Distance, HostCaps, HostRoot, MigrationFeatures, NumaMemorySource, PageCount, ProbeOptions,
};

/// The figures libvirt's vircaps2xml test injects through its NUMA mock instead of reading
/// sysfs: node N has (N+1) GiB, pages of 4 KiB, 2 MiB and 1 GiB numbering (N+1+i)*2048,
/// and no distances.
struct LibvirtTestNuma;

impl NumaMemorySource for LibvirtTestNuma {
    fn node_memory_kib(&self, _: &HostRoot, node: u32) -> Result<u64, CapsError> {
        Ok(u64::from(node + 1) << 20)
    }
    fn node_pages(&self, _: &HostRoot, node: u32, _: u64) -> Result<Vec<PageCount>, CapsError> {
        Ok([4u64, 2048, 1 << 20]
            .iter()
            .enumerate()
            .map(|(i, size)| PageCount {
                size_kib: *size,
                count: (u64::from(node) + 1 + i as u64) * 2048,
            })
            .collect())
    }
    fn node_distances(&self, _: &HostRoot, _: u32, _: &CpuSet) -> Result<Vec<Distance>, CapsError> {
        Ok(Vec::new())
    }
}

/// (arch, tree, migration features the test harness configures). Trees whose expected
/// document has no `<migration_features>` get `None`; aarch64-basic is offline-only.
fn cases() -> Vec<(&'static str, &'static str, Option<MigrationFeatures>)> {
    let live = || {
        Some(MigrationFeatures {
            live: true,
            uri_transports: vec![],
        })
    };
    vec![
        ("x86_64", "basic", None),
        ("aarch64", "basic", Some(MigrationFeatures::default())),
        ("x86_64", "basic-dies", None),
        ("x86_64", "caches", live()),
        ("x86_64", "hmat", live()),
        ("x86_64", "resctrl", live()),
        ("x86_64", "resctrl-cdp", live()),
        ("x86_64", "resctrl-cmt", live()),
        ("x86_64", "resctrl-fake-feature", live()),
        ("x86_64", "resctrl-skx", live()),
        ("x86_64", "resctrl-skx-twocaches", live()),
    ]
}

/// The `<host>` element of a capabilities document, dedented to column 0.
fn expected_host(doc: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim() == "<host>" {
            inside = true;
        }
        if inside {
            out.push_str(line.strip_prefix("  ").unwrap_or(line));
            out.push('\n');
        }
        if line.trim() == "</host>" {
            break;
        }
    }
    out
}

/// Lines of the element `name` (first occurrence at any depth, including nested copies).
fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = String::new();
    let mut depth = None;
    for line in xml.lines() {
        let t = line.trim();
        if depth.is_none() && t == open {
            depth = Some(line.len() - t.len());
        }
        if let Some(d) = depth {
            out.push_str(line);
            out.push('\n');
            if t == close && line.len() - t.len() == d {
                break;
            }
        }
    }
    out
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: ours {x:?}, libvirt {y:?}", i + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

fn probe_tree(arch: &str, name: &str, migration: Option<MigrationFeatures>) -> HostCaps {
    let tree = common::testdata()
        .join("tests/vircaps2xmldata")
        .join(format!("linux-{name}"));
    assert!(tree.is_dir(), "missing {}", tree.display());
    // Nothing outside the tree may be read: proc/sys/etc point nowhere.
    let root = HostRoot::fake(tree.join("does-not-exist"))
        .with_system_dir(tree.join("system"))
        .with_resctrl_dir(tree.join("resctrl"));
    let opts = ProbeOptions {
        arch: Some(arch.to_string()),
        host_uuid: None,
        numa_memory: Some(&LibvirtTestNuma),
    };
    let mut caps =
        HostCaps::probe_with(&root, &opts).unwrap_or_else(|e| panic!("probing linux-{name}: {e}"));
    // The harness builds a capabilities object with only the arch and migration flags set;
    // everything else in its `<host>` comes from the tree.
    caps.uuid = None;
    caps.cpu.page_sizes_kib.clear();
    caps.cpu.topology = None;
    caps.migration = migration;
    caps.secmodels.clear();
    caps
}

#[test]
fn vircaps_trees_match_libvirt() {
    let mut failures = Vec::new();
    for (arch, name, migration) in cases() {
        let expected_path = common::testdata()
            .join("tests/vircaps2xmldata")
            .join(format!("vircaps-{arch}-{name}.xml"));
        let expected = expected_host(&fs::read_to_string(&expected_path).expect("expected XML"));
        let ours = probe_tree(arch, name, migration).host_xml();
        // Part by part first, so a failure names what differs.
        for part in ["topology", "cache", "memory_bandwidth"] {
            let (o, e) = (element(&ours, part), element(&expected, part));
            if o != e {
                failures.push(format!(
                    "{arch}-{name} <{part}>: {}",
                    first_difference(&o, &e)
                ));
            }
        }
        if ours != expected {
            failures.push(format!(
                "{arch}-{name} whole <host>: {}",
                first_difference(&ours, &expected)
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
    fs::write(p, content).expect("write");
}

/// A small non-NUMA machine laid out as a real root, exercising the fabricated cell and the
/// `<cpu>` part.
fn small_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path();
    write(
        r,
        "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 142\nstepping\t: 12\nmicrocode\t: 0xec\nflags\t\t: fpu vme sse4_2 constant_tsc nonstop_tsc vmx hypervisor rep_good\naddress sizes\t: 39 bits physical, 48 bits virtual\n\nprocessor\t: 1\n",
    );
    write(
        r,
        "proc/meminfo",
        "MemTotal:        8000000 kB\nMemFree: 1 kB\n",
    );
    write(
        r,
        "sys/class/dmi/id/product_uuid",
        "7b55704c-29f4-11b2-a85c-9dc6ff50623f\n",
    );
    write(r, "sys/power/state", "freeze mem disk\n");
    write(r, "sys/power/disk", "[platform] shutdown reboot suspend\n");
    write(
        r,
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "0\n",
    );
    write(r, "sys/kernel/iommu_groups/0/type", "DMA\n");
    write(r, "sys/devices/system/cpu/online", "0-1\n");
    for cpu in 0..2 {
        let t = format!("sys/devices/system/cpu/cpu{cpu}/topology");
        write(r, &format!("{t}/physical_package_id"), "0\n");
        write(r, &format!("{t}/core_id"), "0\n");
        write(r, &format!("{t}/thread_siblings_list"), "0-1\n");
    }
    dir
}

#[test]
fn fake_root_without_numa() {
    let dir = small_root();
    let root = HostRoot::fake(dir.path());
    let opts = ProbeOptions {
        arch: Some("x86_64".into()),
        ..Default::default()
    };
    let mut caps = HostCaps::probe_with(&root, &opts).expect("probe");
    caps.set_cpu_model_from_usable(&["qemu64", "Skylake-Client-noTSX-IBRS", "EPYC"]);
    let expected = "\
<host>
  <uuid>7b55704c-29f4-11b2-a85c-9dc6ff50623f</uuid>
  <cpu>
    <arch>x86_64</arch>
    <model>Skylake-Client-noTSX-IBRS</model>
    <vendor>Intel</vendor>
    <microcode version='236'/>
    <signature family='6' model='142' stepping='12'/>
    <topology sockets='1' dies='1' cores='1' threads='2'/>
    <maxphysaddr mode='emulate' bits='39'/>
    <feature name='fpu'/>
    <feature name='vme'/>
    <feature name='sse4.2'/>
    <feature name='invtsc'/>
    <feature name='vmx'/>
    <feature name='hypervisor'/>
    <pages unit='KiB' size='4'/>
    <pages unit='KiB' size='2048'/>
  </cpu>
  <power_management>
    <suspend_mem/>
    <suspend_disk/>
    <suspend_hybrid/>
  </power_management>
  <iommu support='yes'/>
  <migration_features>
    <live/>
    <uri_transports>
      <uri_transport>tcp</uri_transport>
      <uri_transport>rdma</uri_transport>
    </uri_transports>
  </migration_features>
  <topology>
    <cells num='1'>
      <cell id='0'>
        <memory unit='KiB'>8000000</memory>
        <cpus num='2'>
          <cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0-1'/>
          <cpu id='1' socket_id='0' die_id='0' core_id='0' siblings='0-1'/>
        </cpus>
      </cell>
    </cells>
  </topology>
  <secmodel>
    <model>none</model>
    <doi>0</doi>
  </secmodel>
</host>
";
    assert_eq!(caps.host_xml(), expected);

    // Serializable for caching.
    let json = serde_json::to_string(&caps).expect("serialize");
    let back: HostCaps = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, caps);
}

#[test]
fn sysfs_numa_memory_and_pages() {
    let dir = small_root();
    let r = dir.path();
    let n = "sys/devices/system/node";
    write(r, &format!("{n}/online"), "0\n");
    write(r, &format!("{n}/node0/cpulist"), "0-1\n");
    write(
        r,
        &format!("{n}/node0/meminfo"),
        "Node 0 MemTotal:       16175540 kB\nNode 0 MemFree: 5 kB\n",
    );
    write(r, &format!("{n}/node0/distance"), "10\n");
    write(
        r,
        &format!("{n}/node0/hugepages/hugepages-2048kB/nr_hugepages"),
        "2\n",
    );
    write(
        r,
        &format!("{n}/node0/hugepages/hugepages-1048576kB/nr_hugepages"),
        "0\n",
    );
    let caps = HostCaps::probe(&HostRoot::fake(r)).expect("probe");
    let xml = caps.host_xml();
    let cell = element(&xml, "topology");
    let page_kib = domdriver::capabilities::host::system_page_kib(&HostRoot::fake(r));
    assert_eq!(page_kib, 4);
    assert!(
        cell.contains("<memory unit='KiB'>16175540</memory>")
            && cell.contains(&format!(
                "<pages unit='KiB' size='4'>{}</pages>",
                (16175540 - 4096) / 4
            ))
            && cell.contains("<pages unit='KiB' size='2048'>2</pages>")
            && cell.contains("<pages unit='KiB' size='1048576'>0</pages>")
            && cell.contains("<sibling id='0' value='10'/>"),
        "{cell}"
    );
}

#[test]
fn missing_or_bad_files_are_errors_naming_the_path() {
    // NUMA present but a node's cpulist missing.
    let dir = small_root();
    let r = dir.path();
    write(r, "sys/devices/system/node/online", "0\n");
    let err = HostCaps::probe(&HostRoot::fake(r)).expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("node/node0/cpulist") && msg.contains("no such file"),
        "{msg}"
    );

    // Malformed list.
    let dir = small_root();
    let r = dir.path();
    write(r, "sys/devices/system/cpu/online", "0-x\n");
    let msg = HostCaps::probe(&HostRoot::fake(r))
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("cpu/online") && msg.contains("invalid cpuset"),
        "{msg}"
    );

    // Unreadable (a directory where a file is expected).
    let dir = small_root();
    let r = dir.path();
    fs::remove_file(r.join("proc/cpuinfo")).expect("rm");
    fs::create_dir(r.join("proc/cpuinfo")).expect("mkdir");
    let msg = HostCaps::probe(&HostRoot::fake(r))
        .expect_err("must fail")
        .to_string();
    assert!(
        msg.contains("proc/cpuinfo") && msg.contains("cannot read"),
        "{msg}"
    );

    // No NUMA and no meminfo: the fabricated cell has nothing to go on.
    let dir = small_root();
    let r = dir.path();
    fs::remove_file(r.join("proc/meminfo")).expect("rm");
    let msg = HostCaps::probe(&HostRoot::fake(r))
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("proc/meminfo"), "{msg}");

    // Optional facts are skipped: no DMI, power, hugepages, iommu, cpuinfo.
    let dir = small_root();
    let r = dir.path();
    for p in ["sys/class", "sys/power", "sys/kernel"] {
        fs::remove_dir_all(r.join(p)).expect("rm");
    }
    fs::remove_file(r.join("proc/cpuinfo")).expect("rm");
    let caps = HostCaps::probe(&HostRoot::fake(r)).expect("optional facts are optional");
    assert!(caps.uuid.is_some() && !caps.iommu && caps.cpu.vendor.is_none());
}

#[test]
fn real_host_prints() {
    let caps = HostCaps::probe(&HostRoot::real()).expect("probe this machine");
    let xml = caps.host_xml();
    assert!(xml.contains("<cells num="), "{xml}");
    if std::env::var_os("HOST_CAPS_SHOW").is_some() {
        println!("{xml}");
    }
}

/// Validate `<capabilities>` around `host_xml` against libvirt's capability.rng with
/// xmllint (which scripts/test installs).
fn assert_schema_valid(host_xml: &str, what: &str) {
    let schema = common::testdata().join("schemas/capability.rng");
    // libxml2 mis-handles the escaped '.' in the schema's feature-name pattern and rejects
    // names such as 'sse4.1' that libvirt itself uses; swap the dot for validation only.
    let body: String = host_xml
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("<feature name=") {
                l.replace('.', "_")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let doc = dir.path().join("caps.xml");
    fs::write(&doc, format!("<capabilities>\n{body}\n</capabilities>\n")).expect("write");
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(&schema)
        .arg(&doc)
        .output()
        .expect("xmllint must be installed (scripts/test installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{what}: not valid per capability.rng:\n{}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn outputs_follow_the_schema() {
    let real = HostCaps::probe(&HostRoot::real()).expect("probe this machine");
    assert_schema_valid(&real.host_xml(), "this machine");

    let dir = small_root();
    let mut caps = HostCaps::probe(&HostRoot::fake(dir.path())).expect("probe");
    caps.cpu.tsc = Some(domdriver::capabilities::host::TscCounter {
        frequency: 2303997000,
        scaling: Some(false),
    });
    assert_schema_valid(&caps.host_xml(), "small fake root");

    for (arch, name, _) in cases() {
        let caps = probe_tree(arch, name, Some(MigrationFeatures::qemu()));
        assert_schema_valid(&caps.host_xml(), name);
    }
}
