//! `update-memory-device` through `vsh`: a virtio-mem device's requested size in the config,
//! virsh's selection by alias or node and its messages, libvirt's validation of the size.
//! (A virtio-mem guest does not start here yet, so the live change has no running case.)

#[path = "common/vshrun.rs"]
mod vshrun;

use vshrun::Vsh;

const VM: &str = "<domain type='qemu'><name>vm1</name>\
    <maxMemory slots='4' unit='KiB'>4194304</maxMemory><memory unit='KiB'>1179648</memory>\
    <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
    <cpu><numa><cell id='0' cpus='0' memory='131072' unit='KiB'/></numa></cpu>\
    <devices><memballoon model='none'/>\
    <memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node>\
    <block unit='KiB'>2048</block><requested unit='KiB'>0</requested></target></memory>\
    DIMM</devices></domain>";

const DIMM: &str =
    "<memory model='dimm'><target><size unit='KiB'>131072</size><node>0</node></target></memory>";

#[test]
fn requested_size_in_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vsh::new(dir.path().join("r"));
    let help = v.ok(&["update-memory-device", "--help"]);
    assert!(help.contains("update memory device of a domain"), "{help}");
    assert!(help.contains("--requested-size"), "{help}");
    let f = dir.path().join("vm.xml");
    std::fs::write(&f, VM.replace("DIMM", "")).unwrap();
    v.ok(&["define", f.to_str().unwrap()]);

    // --print-xml: the device as it would be sent, nothing changed.
    let x = v.ok(&[
        "-q",
        "update-memory-device",
        "vm1",
        "--print-xml",
        "--requested-size",
        "64M",
    ]);
    assert!(x.starts_with("<memory model=\"virtio-mem\">\n"), "{x}");
    assert!(
        x.contains("<requested unit=\"KiB\">65536</requested>"),
        "{x}"
    );
    let inactive = v.ok(&["dumpxml", "vm1", "--inactive"]);
    assert!(
        inactive.contains("<requested unit='KiB'>0</requested>"),
        "{inactive}"
    );
    // The change, in the config of the shut-off domain (--current means --config then).
    assert_eq!(
        v.ok(&[
            "-q",
            "update-memory-device",
            "vm1",
            "--requested-size",
            "64M"
        ]),
        ""
    );
    let inactive = v.ok(&["dumpxml", "vm1", "--inactive"]);
    assert!(
        inactive.contains("<requested unit='KiB'>65536</requested>"),
        "{inactive}"
    );
    v.ok(&[
        "update-memory-device",
        "vm1",
        "--node",
        "0",
        "--requested-size",
        "2048",
        "--config",
    ]);
    let inactive = v.ok(&["dumpxml", "vm1", "--inactive"]);
    assert!(
        inactive.contains("<requested unit='KiB'>2048</requested>"),
        "{inactive}"
    );

    // libvirt's and virsh's refusals.
    for (args, msg) in [
        (
            &["update-memory-device", "vm1", "--requested-size", "3M"][..],
            "error: unsupported configuration: requested size must be an integer multiple of block size\n",
        ),
        (
            &["update-memory-device", "vm1", "--requested-size", "4G"],
            "error: unsupported configuration: requested size must be smaller than or equal to @size\n",
        ),
        (
            &[
                "update-memory-device",
                "vm1",
                "--live",
                "--requested-size",
                "4M",
            ],
            "error: Requested operation is not valid: domain is not running\n",
        ),
        (
            &["update-memory-device", "vm1", "--alias", "nope"],
            "error: no memory device found\n",
        ),
        (
            &["update-memory-device", "vm1", "--node", "0", "--alias", "a"],
            "error: Options --node and --alias are mutually exclusive\n",
        ),
        (
            &["update-memory-device", "vm1", "--current", "--live"],
            "error: Options --current and --live are mutually exclusive\n",
        ),
        (
            &["update-memory-device", "vm1", "--requested-size", "x"],
            "error: Scaled numeric value 'x' for <requested-size> option is malformed or out of range\n",
        ),
        (
            &["update-memory-device", "nosuch"],
            "error: failed to get domain 'nosuch'\nerror: Domain not found: no domain with matching name 'nosuch'\n",
        ),
    ] {
        assert_eq!(v.fails(args), msg, "{args:?}");
    }
    let err = v.fails(&[
        "-r",
        "update-memory-device",
        "vm1",
        "--requested-size",
        "4M",
    ]);
    assert!(err.contains("read only"), "{err}");

    // Two memory devices: one must be chosen; a DIMM has no requested size.
    std::fs::write(&f, VM.replace("DIMM", DIMM).replace("vm1", "vm2")).unwrap();
    v.ok(&["define", f.to_str().unwrap()]);
    assert_eq!(
        v.fails(&["update-memory-device", "vm2", "--requested-size", "4M"]),
        "error: multiple memory devices found, use --alias or --node to select one\n"
    );
}
