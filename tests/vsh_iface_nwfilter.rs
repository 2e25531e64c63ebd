//! Host interfaces and network filters through the real binary: this host's interfaces
//! listed and dumped as libvirt's udev backend shows them, the netcf verbs refused as that
//! backend refuses them, and the filter and binding store with libvirt's rules and words; a
//! guest asking for a filter is refused rather than started unfiltered.

mod common;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::path::Path;

use vshrun::Vsh;

fn vsh(d: &tempfile::TempDir) -> Vsh {
    Vsh::new(d.path().join("r"))
}

fn write(d: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = d.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const IFACE_VERBS: &[&str] = &[
    "iface-begin",
    "iface-bridge",
    "iface-commit",
    "iface-define",
    "iface-destroy",
    "iface-dumpxml",
    "iface-edit",
    "iface-list",
    "iface-mac",
    "iface-name",
    "iface-rollback",
    "iface-start",
    "iface-unbridge",
    "iface-undefine",
];

const NWFILTER_VERBS: &[&str] = &[
    "nwfilter-define",
    "nwfilter-undefine",
    "nwfilter-dumpxml",
    "nwfilter-list",
    "nwfilter-edit",
    "nwfilter-binding-create",
    "nwfilter-binding-delete",
    "nwfilter-binding-dumpxml",
    "nwfilter-binding-list",
];

#[test]
fn every_verb_has_help_and_a_group() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    for verb in IFACE_VERBS.iter().chain(NWFILTER_VERBS) {
        let out = v.ok(&[verb, "--help"]);
        assert!(out.contains("  NAME\n"), "{verb}: {out}");
        assert!(out.contains(verb), "{verb}: {out}");
    }
    let help = v.ok(&["help", "interface"]);
    assert!(
        help.contains("Interface") && help.contains("iface-list"),
        "{help}"
    );
    let help = v.ok(&["help", "filter"]);
    assert!(
        help.contains("Network Filter") && help.contains("nwfilter-binding-list"),
        "{help}"
    );
}

/// This host's interfaces, from /sys/class/net as libvirt's udev backend reads them.
fn host_ifaces() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .filter(|e| !e.path().join("brport").exists() && !e.path().join("tun_flags").exists())
        .map(|e| {
            let mac = std::fs::read_to_string(e.path().join("address")).unwrap_or_default();
            (
                e.file_name().to_string_lossy().to_string(),
                mac.trim().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// This host's interfaces, and filters and bindings as they are stored, are described as
/// libvirt's schemas allow.
#[test]
fn documents_follow_the_schemas() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    for (name, _) in host_ifaces() {
        let xml = v.ok(&["-q", "iface-dumpxml", &name]);
        common::assert_schema_valid("interface.rng", &xml, &name);
    }
    let (a, b) = (write(&d, "a.xml", FILTER_A), write(&d, "b.xml", FILTER_B));
    v.ok(&["nwfilter-define", &b]);
    v.ok(&["nwfilter-define", &a]);
    for f in ["vsh-a", "vsh-b"] {
        let xml = v.ok(&["-q", "nwfilter-dumpxml", f]);
        common::assert_schema_valid("nwfilter.rng", &xml, f);
    }
    let bx = write(&d, "bind.xml", &binding_xml("vnet-s0", "vsh-a"));
    v.ok(&["nwfilter-binding-create", &bx]);
    let xml = v.ok(&["-q", "nwfilter-binding-dumpxml", "vnet-s0"]);
    common::assert_schema_valid("nwfilterbinding.rng", &xml, "binding vnet-s0");
    v.ok(&["nwfilter-binding-delete", "vnet-s0"]);
}

#[test]
fn host_interfaces_are_listed_and_dumped() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let all = v.ok(&["iface-list", "--all"]);
    assert!(all.starts_with(" Name"), "{all}");
    assert!(all.contains("MAC Address"), "{all}");
    let host = host_ifaces();
    assert!(host.iter().any(|(n, _)| n == "lo"), "{host:?}");
    for (name, mac) in &host {
        let line = all
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not in {all}"));
        assert!(line.ends_with(mac.as_str()), "{line}");
        assert_eq!(v.ok(&["iface-mac", name]), format!("{mac}\n\n"));
        let xml = v.ok(&["iface-dumpxml", name]);
        assert!(
            xml.starts_with("<interface type='") && xml.contains(&format!(" name='{name}'>")),
            "{xml}"
        );
        let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu")).unwrap();
        assert!(
            xml.contains(&format!("<mtu size='{}'/>", mtu.trim())),
            "{xml}"
        );
    }
    // lo's operstate is "unknown": listed with --all and --inactive, not by default.
    let lo_line = all
        .lines()
        .find(|l| l.trim_start().starts_with("lo "))
        .unwrap();
    assert!(lo_line.contains("inactive"), "{lo_line}");
    assert!(
        !v.ok(&["iface-list"])
            .lines()
            .any(|l| l.trim_start().starts_with("lo "))
    );
    assert!(
        v.ok(&["iface-list", "--inactive"])
            .lines()
            .any(|l| l.trim_start().starts_with("lo "))
    );
    let lo = v.ok(&["iface-dumpxml", "lo"]);
    assert!(
        lo.starts_with("<interface type='ethernet' name='lo'>\n")
            && lo.contains(
                "  <link state='unknown'/>\n  <mac address='00:00:00:00:00:00'/>\n</interface>\n"
            ),
        "{lo}"
    );
    assert!(
        v.ok(&["iface-dumpxml", "lo", "--xpath", "//mac"])
            .contains("00:00:00:00:00:00")
    );
    // iface-name by a MAC that only one interface has.
    let unique: Vec<&(String, String)> = host
        .iter()
        .filter(|(_, m)| host.iter().filter(|(_, o)| o == m).count() == 1)
        .collect();
    if let Some((name, mac)) = unique.first() {
        assert_eq!(v.ok(&["iface-name", mac]), format!("{name}\n\n"));
    }
    let json = v.ok(&["iface-list", "--all", "--json"]);
    assert!(
        json.contains("\"name\":\"lo\"") || json.contains("\"name\": \"lo\""),
        "{json}"
    );

    let err = v.fails(&["iface-dumpxml", "nosuch0"]);
    assert!(
        err.contains("error: failed to get interface 'nosuch0'\nerror: Interface not found: couldn't find interface named 'nosuch0'"),
        "{err}"
    );
    let err = v.fails(&["iface-name", "00:11:22:33:44:5f"]);
    assert!(
        err.contains("error: Interface not found: couldn't find interface with MAC address '00:11:22:33:44:5f'"),
        "{err}"
    );
    let err = v.fails(&["iface-list", "--all", "--inactive"]);
    assert!(
        err.contains("Options --all and --inactive are mutually exclusive"),
        "{err}"
    );
}

#[test]
fn netcf_verbs_are_refused_as_libvirts_udev_backend_refuses_them() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let file = write(&d, "i.xml", "<interface type='ethernet' name='eth9'/>");
    let nosup = "error: this function is not supported by the connection driver:";
    for (args, first, api) in [
        (
            vec!["iface-define", file.as_str()],
            format!("Failed to define interface from {file}"),
            "virInterfaceDefineXML",
        ),
        (
            vec!["iface-undefine", "lo"],
            "Failed to undefine interface lo".to_string(),
            "virInterfaceUndefine",
        ),
        (
            vec!["iface-start", "lo"],
            "Failed to start interface lo".to_string(),
            "virInterfaceCreate",
        ),
        (
            vec!["iface-destroy", "lo"],
            "Failed to destroy interface lo".to_string(),
            "virInterfaceDestroy",
        ),
        (
            vec!["iface-begin"],
            "Failed to begin network config change transaction".to_string(),
            "virInterfaceChangeBegin",
        ),
        (
            vec!["iface-commit"],
            "Failed to commit network config change transaction".to_string(),
            "virInterfaceChangeCommit",
        ),
        (
            vec!["iface-rollback"],
            "Failed to rollback network config change transaction".to_string(),
            "virInterfaceChangeRollback",
        ),
        (
            vec!["iface-bridge", "lo", "br-vsh-test"],
            "Failed to define new bridge interface br-vsh-test".to_string(),
            "virInterfaceDefineXML",
        ),
    ] {
        let err = v.fails(&args);
        assert!(
            err.contains(&format!("error: {first}\n{nosup} {api}")),
            "{args:?}: {err}"
        );
    }
    let err = v.fails(&["iface-unbridge", "lo"]);
    assert!(err.contains("error: Device lo is not a bridge"), "{err}");
    let err = v.fails(&["iface-bridge", "lo", "lo"]);
    assert!(
        err.contains("error: Network device lo already exists"),
        "{err}"
    );
    let err = v.fails(&["iface-undefine", "nosuch0"]);
    assert!(
        err.contains("error: failed to get interface 'nosuch0'"),
        "{err}"
    );
    // Read-only connections refuse them first, naming the API.
    let (ok, _, err) = v.run(&["-r", "iface-begin"]);
    assert!(!ok && err.contains("virInterfaceChangeBegin"), "{err}");
}

const FILTER_A: &str = "<filter name='vsh-a' chain='ipv4'>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <rule action='accept' direction='out' priority='100'>
    <tcp srcipaddr='10.0.0.1' srcipmask='255.255.255.0' dstportstart='22'/>
  </rule>
  <filterref filter='vsh-b'>
    <parameter name='IP' value='10.0.0.2'/>
  </filterref>
</filter>
";

const FILTER_B: &str = "<filter name='vsh-b'><uuid>11111111-2222-3333-4444-666666666666</uuid><rule action='drop' direction='in'><mac protocolid='0x0806'/></rule></filter>";

fn binding_xml(port: &str, filter: &str) -> String {
    format!(
        "<filterbinding><owner><name>vm1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='{port}'/><mac address='52:54:00:7b:35:93'/><filterref filter='{filter}'><parameter name='MAC' value='52:54:00:7b:35:93'/></filterref></filterbinding>"
    )
}

#[test]
fn filters_and_bindings_are_stored_with_libvirts_rules() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let (a, b) = (write(&d, "a.xml", FILTER_A), write(&d, "b.xml", FILTER_B));
    assert_eq!(
        v.ok(&["nwfilter-define", &a]),
        format!("Network filter vsh-a defined from {a}\n\n")
    );
    assert_eq!(
        v.ok(&["nwfilter-define", &b, "--validate"]),
        format!("Network filter vsh-b defined from {b}\n\n")
    );
    assert_eq!(
        v.ok(&["nwfilter-dumpxml", "vsh-a"]),
        "<filter name='vsh-a' chain='ipv4' priority='-700'>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <rule action='accept' direction='out' priority='100'>
    <tcp srcipaddr='10.0.0.1' srcipmask='24' dstportstart='22'/>
  </rule>
  <filterref filter='vsh-b'>
    <parameter name='IP' value='10.0.0.2'/>
  </filterref>
</filter>

"
    );
    assert!(
        v.ok(&["nwfilter-dumpxml", "11111111-2222-3333-4444-666666666666"])
            .contains("<mac protocolid='arp'/>")
    );
    let list = v.ok(&["nwfilter-list"]);
    assert!(list.starts_with(" UUID"), "{list}");
    let rows: Vec<&str> = list.lines().skip(2).filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(
        rows[0].contains("vsh-a") && rows[1].contains("vsh-b"),
        "{list}"
    );

    // libvirt's rules and words.
    let dup = write(
        &d,
        "dup.xml",
        &FILTER_B.replace("666666666666", "777777777777"),
    );
    let err = v.fails(&["nwfilter-define", &dup]);
    assert!(err.contains(&format!("error: Failed to define network filter from {dup}\nerror: operation failed: filter 'vsh-b' already exists with uuid 11111111-2222-3333-4444-666666666666")), "{err}");
    let looped = write(
        &d,
        "loop.xml",
        &FILTER_B.replace("</filter>", "<filterref filter='vsh-a'/></filter>"),
    );
    let err = v.fails(&["nwfilter-define", &looped]);
    assert!(
        err.contains("error: operation failed: filter would introduce a loop"),
        "{err}"
    );
    let bad = write(
        &d,
        "bad.xml",
        "<filter name='vsh-c'><rule action='accept' direction='in'><tcp dstportstart='70000'/></rule></filter>",
    );
    let err = v.fails(&["nwfilter-define", &bad]);
    assert!(
        err.contains("error: internal error: dstportstart has illegal value 70000"),
        "{err}"
    );
    let invalid = write(
        &d,
        "inv.xml",
        "<filter name='vsh-c'><rule action='accept' direction='in' bogus='1'/></filter>",
    );
    let err = v.fails(&["nwfilter-define", &invalid, "--validate"]);
    assert!(
        err.contains("XML document failed to validate against schema"),
        "{err}"
    );
    let err = v.fails(&["nwfilter-dumpxml", "nosuch"]);
    assert!(err.contains("error: failed to get nwfilter 'nosuch'\nerror: Network filter not found: no nwfilter with matching name 'nosuch'"), "{err}");

    // Bindings: to existing filters only; a filter in use stays.
    let missing = write(&d, "bm.xml", &binding_xml("vnet7", "nosuch"));
    let err = v.fails(&["nwfilter-binding-create", &missing]);
    assert!(err.contains(&format!("error: Failed to create network filter from {missing}\nerror: internal error: referenced filter 'nosuch' is missing")), "{err}");
    let bind = write(&d, "b1.xml", &binding_xml("vnet7", "vsh-a"));
    assert_eq!(
        v.ok(&["nwfilter-binding-create", &bind, "--validate"]),
        format!("Network filter binding on vnet7 created from {bind}\n\n")
    );
    let err = v.fails(&["nwfilter-binding-create", &bind]);
    assert!(
        err.contains("error: operation failed: binding 'vnet7' already exists"),
        "{err}"
    );
    let list = v.ok(&["nwfilter-binding-list"]);
    assert!(
        list.starts_with(" Port Dev") && list.contains("vnet7") && list.contains("vsh-a"),
        "{list}"
    );
    let dump = v.ok(&["nwfilter-binding-dumpxml", "vnet7"]);
    assert!(dump.contains("  <portdev name='vnet7'/>\n  <mac address='52:54:00:7b:35:93'/>\n  <filterref filter='vsh-a'>\n    <parameter name='MAC' value='52:54:00:7b:35:93'/>\n  </filterref>\n"), "{dump}");
    for f in ["vsh-a", "vsh-b"] {
        let err = v.fails(&["nwfilter-undefine", f]);
        assert!(err.contains(&format!("error: Failed to undefine network filter {f}\nerror: Requested operation is not valid: nwfilter is in use")), "{err}");
    }
    assert_eq!(
        v.ok(&["nwfilter-binding-delete", "vnet7"]),
        "Network filter binding on vnet7 deleted\n\n"
    );
    let err = v.fails(&["nwfilter-binding-delete", "vnet7"]);
    assert!(err.contains("error: failed to get nwfilter binding 'vnet7'\nerror: Network filter binding not found: no nwfilter binding for port dev 'vnet7'"), "{err}");
    assert_eq!(
        v.ok(&["nwfilter-undefine", "vsh-a"]),
        "Network filter vsh-a undefined\n\n"
    );
    let json = v.ok(&["nwfilter-list", "--json"]);
    assert!(json.contains("vsh-b") && !json.contains("vsh-a"), "{json}");
    // The store is the connection's: a filter file under its config dir.
    assert!(Path::new(&d.path().join("r/etc/qemu/nwfilter/vsh-b.xml")).exists());
}

#[test]
fn a_guest_asking_for_a_filter_is_refused() {
    if !Path::new("/usr/bin/qemu-system-x86_64").exists() {
        eprintln!("skipped: no qemu-system-x86_64");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    let b = write(&d, "b.xml", FILTER_B);
    v.ok(&["nwfilter-define", &b]);
    let dom = write(
        &d,
        "vm.xml",
        "<domain type='qemu'><name>fvm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<interface type='user'><mac address='52:54:00:00:00:42'/><filterref filter='vsh-b'/></interface>
<memballoon model='none'/></devices></domain>",
    );
    v.ok(&["define", &dom]);
    let err = v.fails(&["start", "fvm"]);
    assert!(
        err.contains("error: unsupported configuration: interface 52:54:00:00:00:42 asks for network filter 'vsh-b', but network filters are stored and validated, not enforced, by this driver yet"),
        "{err}"
    );
    assert!(v.ok(&["domstate", "fvm"]).starts_with("shut off"));
}

/// A vsh on `d`'s root whose editor runs `body` on its file `$1`.
fn with_editor(d: &tempfile::TempDir, name: &str, body: &str) -> Vsh {
    use std::os::unix::fs::PermissionsExt;
    let p = d.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut v = vsh(d);
    v.env.push(("VISUAL".into(), p.clone()));
    v.env.push(("EDITOR".into(), p));
    v
}

#[test]
fn edit_verbs() {
    let d = tempfile::tempdir().unwrap();
    let b = write(&d, "b.xml", FILTER_B);
    vsh(&d).ok(&["nwfilter-define", &b]);
    let same = with_editor(&d, "same.sh", "true");
    assert_eq!(
        same.ok(&["nwfilter-edit", "vsh-b"]),
        "Network filter vsh-b XML configuration not changed.\n\n"
    );
    assert_eq!(
        same.ok(&["iface-edit", "lo"]),
        "Interface lo XML configuration not changed.\n\n"
    );
    let change = with_editor(&d, "change.sh", "sed -i 's/drop/accept/' \"$1\"");
    assert_eq!(
        change.ok(&["nwfilter-edit", "vsh-b"]),
        "Network filter vsh-b XML configuration edited.\n\n"
    );
    assert!(
        vsh(&d)
            .ok(&["nwfilter-dumpxml", "vsh-b"])
            .contains("<rule action='accept' direction='in' priority='500'>")
    );
    let broken = with_editor(
        &d,
        "broken.sh",
        "sed -i 's/protocolid=.arp./protocolid=\"15\"/' \"$1\"",
    );
    let err = broken.fails(&["nwfilter-edit", "vsh-b"]);
    assert!(
        err.contains("error: internal error: protocolid has illegal value 15"),
        "{err}"
    );
    let mtu = with_editor(
        &d,
        "mtu.sh",
        "sed -i 's/<mtu size=.[0-9]*./<mtu size=\"1280\"/' \"$1\"",
    );
    let err = mtu.fails(&["iface-edit", "lo"]);
    assert!(
        err.contains(
            "error: this function is not supported by the connection driver: virInterfaceDefineXML"
        ),
        "{err}"
    );
}

#[test]
fn lists_sort_without_regard_to_case() {
    let d = tempfile::tempdir().unwrap();
    let v = vsh(&d);
    for (i, name) in ["Zeta", "alpha", "Beta"].iter().enumerate() {
        let f = write(
            &d,
            &format!("{name}.xml"),
            &format!(
                "<filter name='{name}'><uuid>11111111-2222-3333-4444-00000000000{i}</uuid></filter>"
            ),
        );
        v.ok(&["nwfilter-define", &f]);
    }
    let list = v.ok(&["nwfilter-list"]);
    let names: Vec<&str> = list
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["alpha", "Beta", "Zeta"], "{list}");
}
