//! The `nodedev-` verbs through `vsh`, on this host's real devices (read only: nothing here
//! changes a device; the verbs that would are run on devices they refuse, with libvirt's
//! and virsh's messages).

mod common;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;

use vshrun::Vsh;

fn vsh(dir: &tempfile::TempDir) -> Vsh {
    Vsh::new(dir.path().join("r"))
}

/// This host's PCI devices as sysfs lists them: (libvirt name, sysfs dir).
fn sysfs_pci() -> Vec<(String, std::path::PathBuf)> {
    let mut v: Vec<_> = std::fs::read_dir("/sys/bus/pci/devices")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (format!("pci_{}", n.replace([':', '.'], "_")), e.path())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    parent: Option<String>,
    capabilities: Vec<String>,
}

fn list_json(v: &Vsh, extra: &[&str]) -> Vec<Entry> {
    let mut args = vec!["nodedev-list", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&v.ok(&args)).unwrap()
}

#[test]
fn the_list_holds_the_root_and_every_pci_device_sysfs_shows() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let out = v.ok(&["-q", "nodedev-list"]);
    let names: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(names.contains(&"computer"), "{out}");
    for (n, _) in sysfs_pci() {
        assert!(names.contains(&n.as_str()), "{n} missing in {out}");
    }
    // Sorted by name, each once.
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    sorted.dedup();
    assert_eq!(sorted, names);
    // The JSON form lists the same devices, each parent a listed device.
    let j = list_json(&v, &[]);
    assert_eq!(j.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), names);
    for e in &j {
        match &e.parent {
            None => assert_eq!(e.name, "computer"),
            Some(p) => assert!(names.contains(&p.as_str()), "{}: parent {p}", e.name),
        }
    }
    // The loopback interface is a net device named after its address.
    assert!(names.contains(&"net_lo_00_00_00_00_00_00"), "{out}");
}

/// Every device of this host is described as libvirt's schema allows.
#[test]
fn every_host_device_follows_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let out = v.ok(&["-q", "nodedev-list"]);
    for name in out.lines().filter(|l| !l.is_empty()) {
        let xml = v.ok(&["-q", "nodedev-dumpxml", name]);
        common::assert_schema_valid("nodedev.rng", &xml, name);
    }
}

#[test]
fn a_pci_devices_xml_has_sysfs_ids() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let pci = sysfs_pci();
    if pci.is_empty() {
        return;
    }
    for (name, path) in pci.iter().take(3) {
        let xml = v.ok(&["nodedev-dumpxml", name]);
        let id = |f: &str| {
            let raw = std::fs::read_to_string(path.join(f)).unwrap();
            u32::from_str_radix(raw.trim().trim_start_matches("0x"), 16).unwrap()
        };
        assert!(xml.contains(&format!("<name>{name}</name>")), "{xml}");
        assert!(
            xml.contains(&format!("<vendor id='0x{:04x}'", id("vendor"))),
            "{xml}"
        );
        assert!(
            xml.contains(&format!("<product id='0x{:04x}'", id("device"))),
            "{xml}"
        );
        let real = std::fs::canonicalize(path).unwrap();
        assert!(
            xml.contains(&format!("<path>{}</path>", real.display())),
            "{xml}"
        );
        // --xpath reads the same document.
        let vendor = v.ok(&["-q", "nodedev-dumpxml", name, "--xpath", "//vendor"]);
        assert!(
            // virsh prints xpath results as libxml2 does, in double quotes.
            vendor.starts_with(&format!("<vendor id=\"0x{:04x}\"", id("vendor"))),
            "{vendor}"
        );
    }
    let wrapped = v.ok(&[
        "nodedev-dumpxml",
        &pci[0].0,
        "--xpath",
        "//domain",
        "--wrap",
    ]);
    assert!(wrapped.starts_with("<nodes>\n"), "{wrapped}");
}

/// Each name of `--tree` and its depth (the root's is 0).
fn tree_depths(out: &str) -> Vec<(String, usize)> {
    out.lines()
        .filter_map(|l| match l.find("+- ") {
            Some(i) => Some((l[i + 3..].to_string(), (i - 2) / 4 + 1)),
            None if !l.trim().is_empty() && !l.contains('|') => Some((l.to_string(), 0)),
            None => None,
        })
        .collect()
}

#[test]
fn tree_puts_each_device_under_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let out = v.ok(&["-q", "nodedev-list", "--tree"]);
    assert!(out.starts_with("computer\n  |\n  +- "), "{out}");
    let depths = tree_depths(&out);
    let j = list_json(&v, &[]);
    assert_eq!(depths.len(), j.len(), "{out}");
    let depth_of = |n: &str| depths.iter().find(|(d, _)| d == n).map(|(_, k)| *k);
    for e in &j {
        let d = depth_of(&e.name).unwrap_or_else(|| panic!("{} not in tree:\n{out}", e.name));
        match &e.parent {
            None => assert_eq!(d, 0),
            Some(p) => assert_eq!(d, depth_of(p).unwrap() + 1, "{}:\n{out}", e.name),
        }
    }
    // A child follows its parent, before the parent's next sibling.
    for (i, (name, d)) in depths.iter().enumerate().skip(1) {
        let parent = &j.iter().find(|e| &e.name == name).unwrap().parent;
        let above = depths[..i].iter().rev().find(|(_, k)| *k == d - 1).unwrap();
        assert_eq!(Some(&above.0), parent.as_ref(), "{name}:\n{out}");
    }
}

#[test]
fn capability_filters() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let names = |cap: &str| -> Vec<String> {
        v.ok(&["-q", "nodedev-list", "--cap", cap])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let pci: Vec<String> = sysfs_pci().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names("pci"), pci);
    assert_eq!(names("system"), ["computer"]);
    let net = names("net");
    assert!(
        !net.is_empty() && net.iter().all(|n| n.starts_with("net_")),
        "{net:?}"
    );
    let mut both = [pci.clone(), net.clone()].concat();
    both.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(names("pci,net"), both);
    for e in list_json(&v, &["--cap", "net"]) {
        assert_eq!(e.capabilities, ["net"], "{}", e.name);
    }
    // Every device is present: none is inactive, --all is the default list.
    assert_eq!(v.ok(&["-q", "nodedev-list", "--inactive"]).trim(), "");
    assert_eq!(
        v.ok(&["-q", "nodedev-list", "--all"]),
        v.ok(&["-q", "nodedev-list"])
    );
    assert_eq!(
        v.fails(&["nodedev-list", "--cap", "pci,bogus"]),
        "error: Invalid capability type\n"
    );
    assert_eq!(
        v.fails(&["nodedev-list", "--all", "--inactive"]),
        "error: Option --all is incompatible with --inactive\n"
    );
    assert_eq!(
        v.fails(&["nodedev-list", "--tree", "--cap", "pci"]),
        "error: Option --tree is incompatible with --cap, --inactive, --persistent and --transient\n"
    );
}

#[test]
fn info_of_the_root_and_of_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    assert_eq!(
        v.ok(&["-q", "nodedev-info", "computer"]),
        "Name:           computer\nParent:         \nActive:         yes\nPersistent:     yes\nAutostart:      yes\n"
    );
    let lo = v.ok(&["-q", "nodedev-info", "net_lo_00_00_00_00_00_00"]);
    assert!(lo.contains("Parent:         computer\nActive:         yes\nPersistent:     no\nAutostart:      no\n"), "{lo}");
    let j: serde_json::Value =
        serde_json::from_str(&v.ok(&["nodedev-info", "computer", "--json"])).unwrap();
    assert_eq!(j["persistent"], true);
    assert!(
        v.ok(&["nodedev-dumpxml", "computer"])
            .contains("<capability type='system'>")
    );
}

#[test]
fn unknown_devices_get_libvirts_errors() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let not_found = "error: Could not find matching device 'nosuch'\nerror: Node device not found: no node device with matching name 'nosuch'\n";
    for verb in [
        "nodedev-dumpxml",
        "nodedev-info",
        "nodedev-detach",
        "nodedev-reattach",
        "nodedev-reset",
        "nodedev-destroy",
        "nodedev-undefine",
        "nodedev-start",
        "nodedev-autostart",
    ] {
        assert_eq!(v.fails(&[verb, "nosuch"]), not_found, "{verb}");
    }
    assert_eq!(
        v.fails(&["nodedev-dumpxml", "a,b,c"]),
        "error: Malformed device value 'a,b,c'\n"
    );
}

#[test]
fn changes_are_refused_without_touching_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let lo = "net_lo_00_00_00_00_00_00";
    // Not PCI: nothing to rebind. (Detach first asks whether VFIO is possible at all.)
    for (verb, what) in [
        ("nodedev-reattach", "re-attach"),
        ("nodedev-reset", "reset"),
    ] {
        assert_eq!(
            v.fails(&[verb, lo]),
            format!(
                "error: Failed to {what} device {lo}\nerror: invalid argument: device {lo} is not a PCI device\n"
            )
        );
    }
    let detach = v.fails(&["nodedev-detach", lo]);
    assert!(
        detach.ends_with(&format!("invalid argument: device {lo} is not a PCI device\n"))
            || detach.ends_with(
                "argument unsupported: VFIO device assignment is currently not supported on this system\n"
            ),
        "{detach}"
    );
    assert_eq!(
        v.fails(&["nodedev-detach", lo, "--driver", "kvm"]),
        format!(
            "error: Failed to detach device {lo}\nerror: argument unsupported: 'legacy KVM' device assignment is no longer supported on this system\n"
        )
    );
    assert_eq!(
        v.fails(&["nodedev-destroy", "computer"]),
        "error: Failed to destroy node device 'computer'\nerror: unsupported configuration: Unsupported device type\n"
    );
    assert_eq!(
        v.fails(&["nodedev-undefine", lo]),
        format!(
            "error: Failed to undefine node device '{lo}'\nerror: Requested operation is not valid: Node device '{lo}' is not defined\n"
        )
    );
    assert_eq!(
        v.fails(&["nodedev-start", "computer"]),
        "error: Failed to start device computer\nerror: Requested operation is not valid: Device is already active\n"
    );
    assert_eq!(
        v.fails(&["nodedev-autostart", "computer"]),
        "error: failed to mark device computer as autostarted\nerror: Operation not supported: Unsupported device type\n"
    );
    // New devices: a mediated device needs a parent with an address, others are refused.
    let file = |name: &str, xml: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, xml).unwrap();
        p.display().to_string()
    };
    let drm = file(
        "drm.xml",
        "<device><capability type='drm'><type>render</type></capability></device>",
    );
    assert_eq!(
        v.fails(&["nodedev-create", &drm]),
        format!(
            "error: Failed to create node device from {drm}\nerror: unsupported configuration: Unsupported device type\n"
        )
    );
    assert_eq!(
        v.fails(&["nodedev-define", &drm]),
        format!(
            "error: Failed to define node device from '{drm}'\nerror: unsupported configuration: Unsupported device type\n"
        )
    );
    let orphan = file(
        "orphan.xml",
        "<device><capability type='mdev'><type id='nvidia-35'/></capability></device>",
    );
    assert!(
        v.fails(&["nodedev-create", &orphan])
            .ends_with("error: unsupported configuration: missing parent device\n")
    );
    let rooted = file(
        "rooted.xml",
        "<device><parent>computer</parent><capability type='mdev'><type id='nvidia-35'/></capability></device>",
    );
    assert!(
        v.fails(&["nodedev-define", &rooted]).ends_with(
            "error: failed to parse configuration file Unable to find address for parent device 'computer'\n"
        )
    );
    let bad = file("bad.xml", "<device><name>x</name></device>");
    assert!(
        v.fails(&["nodedev-create", &bad])
            .ends_with("error: internal error: no device capabilities for 'new device'\n")
    );
    // A read-only connection refuses, with virsh's failure line.
    assert_eq!(
        v.fails(&["-r", "nodedev-reset", lo]),
        format!(
            "error: Failed to reset device {lo}\nerror: operation forbidden: read only access prevents virNodeDeviceReset\n"
        )
    );
    // On a host without mdevctl, starting a mediated device under a PCI parent says so.
    if let Some((pci, _)) = sysfs_pci().first()
        && !Path::new("/usr/sbin/mdevctl").exists()
        && !Path::new("/usr/bin/mdevctl").exists()
    {
        let m = file(
            "m.xml",
            &format!(
                "<device><parent>{pci}</parent><capability type='mdev'><type id='nvidia-35'/></capability></device>"
            ),
        );
        assert!(
            v.fails(&["nodedev-create", &m])
                .ends_with("error: Cannot find 'mdevctl' in path: No such file or directory\n")
        );
    }
}

#[test]
fn help_names_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    let h = v.ok(&["nodedev-list", "--help"]);
    for o in ["--tree", "--cap", "--inactive", "--all"] {
        assert!(h.contains(o), "{h}");
    }
    let h = v.ok(&["nodedev-detach", "--help"]);
    assert!(h.contains("--driver"), "{h}");
    let h = v.ok(&["help", "nodedev"]);
    assert!(h.contains("nodedev-dumpxml"), "{h}");
}

#[test]
fn events_list_wait_and_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let v = vsh(&dir);
    assert_eq!(
        v.ok(&["-q", "nodedev-event", "--list"]),
        "lifecycle\nupdate\n"
    );
    assert_eq!(
        v.fails(&["nodedev-event"]),
        "error: either --list or --event <type> is required\n"
    );
    assert_eq!(
        v.fails(&["nodedev-event", "--event", "bogus"]),
        "error: unknown event type bogus\n"
    );
    assert_eq!(
        v.fails(&["nodedev-event", "nosuch", "--event", "lifecycle"]),
        "error: Could not find matching device 'nosuch'\nerror: Node device not found: no node device with matching name 'nosuch'\n"
    );
    // No device comes or goes on this host during the wait (the fake-tree unit tests see
    // them come and go): the wait times out, which virsh reports as a failure.
    let (ok, out, _) = v.run_bounded(
        &[
            "nodedev-event",
            "computer",
            "--event",
            "lifecycle",
            "--timeout",
            "1",
        ],
        30,
    );
    assert!(!ok);
    assert!(
        out.starts_with("event loop timed out\nevents received: 0\n"),
        "{out}"
    );
}
