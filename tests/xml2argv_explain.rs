//! `--explain`: each argument of a built command beside the element it comes from, golden on
//! libvirt's `x86_64-q35-graphics` case (disk, network, serial, channel, tablet, VNC, video,
//! balloon, RNG, PCIe root ports). `VSH_TEST_REGENERATE_OUTPUT=1` rewrites the golden file.

mod common;

use std::fs;

use domdriver::capabilities::qemu::probe_replies;
use domdriver::conformance::harness::{case_context, case_input, prepare_options};
use domdriver::xml2argv::explain::{Explained, explain, render};

#[test]
fn explain_q35_graphics() {
    let name = "x86_64-q35-graphics";
    let td = common::testdata().join("tests");
    let caps = domdriver::runtime::block_on(probe_replies(
        &td.join("qemucapabilitiesdata/caps_8.0.0.x86_64.replies"),
        "/usr/bin/qemu-system-x86_64",
    ))
    .expect("caps");
    let xml = case_input(
        name,
        "x86_64",
        &td.join("qemuxml2argvdata"),
        Some(&td.join("qemuxml2xmloutdata")),
    )
    .expect("case");
    let def = domdriver::domain::parse(&xml).expect("parse");
    let mut def =
        domdriver::domain::prepare(def, &caps, &prepare_options(name, "x86_64")).expect("prepare");
    domdriver::domain::prepare::assign_aliases(&mut def);
    let cmd = domdriver::xml2argv::build(&def, &caps, &case_context(name, &def)).expect("build");
    let lines = explain(&def, &cmd);

    // Every argument is explained once, in order.
    let words: Vec<String> = lines
        .iter()
        .skip(cmd.env.len() + 1)
        .flat_map(|l| l.words.clone())
        .collect();
    assert_eq!(words, cmd.args);
    let path_of = |needle: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|l: &&Explained| l.words.iter().any(|w| w.contains(needle)))
            .map(|l| l.path.as_str())
            .collect()
    };
    // Both block nodes and the device belong to the disk.
    assert_eq!(path_of("libvirt-1-"), vec!["/domain/devices/disk[1]"; 3]);
    assert_eq!(path_of("hostnet0"), vec!["/domain/devices/interface[1]"; 2]);
    assert_eq!(path_of("charserial0"), vec!["/domain/devices/serial[1]"; 2]);
    assert_eq!(path_of("objrng0"), vec!["/domain/devices/rng[1]"; 2]);
    assert_eq!(path_of("pc.ram")[1], "/domain/memory");
    assert_eq!(path_of("127.0.0.1:0"), vec!["/domain/devices/graphics[1]"]);
    assert_eq!(path_of("charmonitor"), vec!["(libvirt)"; 2]);

    let text = render(&lines);
    let golden = common::data().join(format!("xml2argv/explain/{name}.explain"));
    if common::regenerate() {
        fs::write(&golden, &text).expect("write golden");
        return;
    }
    let want = fs::read_to_string(&golden).expect("golden (VSH_TEST_REGENERATE_OUTPUT=1)");
    assert_eq!(text, want);
}
