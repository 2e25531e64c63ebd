use super::*;

#[test]
fn names_are_built_as_the_udev_backend_builds_them() {
    assert_eq!(
        generate_name("pci", "0000:00:1f.2", None),
        "pci_0000_00_1f_2"
    );
    assert_eq!(
        generate_name("net", "eth0", Some("52:54:00:12:34:56")),
        "net_eth0_52_54_00_12_34_56"
    );
    assert_eq!(generate_name("usb", "1-2", None), "usb_1_2");
    // One `_` per byte of a non-ASCII character, as libvirt's byte loop gives.
    assert_eq!(generate_name("net", "é", None), "net___");
}

#[test]
fn a_minimal_pci_device_reads_and_writes_back() {
    let xml = "<device>\n  <name>pci_0000_00_01_0</name>\n  <parent>computer</parent>\n  <capability type='pci'>\n    <domain>0</domain>\n    <bus>0</bus>\n    <slot>1</slot>\n    <function>0</function>\n    <product id='0x1045'/>\n    <vendor id='0x1af4'/>\n  </capability>\n</device>\n";
    let d = parse(xml).unwrap();
    assert_eq!(d.pci().unwrap().vendor, 0x1af4);
    assert_eq!(d.format(false), xml);
    assert_eq!(d.cap_types(), vec![CapType::Pci]);
}

#[test]
fn errors_are_libvirts() {
    let e = |x: &str| parse(x).unwrap_err().to_string();
    assert_eq!(e("<device/>"), "missing name information");
    assert_eq!(
        e("<nodedev><name>x</name></nodedev>"),
        "XML error: expecting root element of 'device', not 'nodedev'"
    );
    assert_eq!(
        e("<device><name>x</name></device>"),
        "internal error: no device capabilities for 'x'"
    );
    assert_eq!(
        e("<device><name>x</name><capability type='pci'><bus>0</bus></capability></device>"),
        "internal error: no PCI domain ID supplied for 'x'"
    );
    assert_eq!(
        e("<device><name>x</name><capability type='pci'><domain>z</domain></capability></device>"),
        "internal error: invalid PCI domain ID supplied for 'x'"
    );
    assert_eq!(
        e("<device><name>x</name><capability type='drm'><type>odd</type></capability></device>"),
        "unsupported configuration: unknown drm type 'odd' for 'x'"
    );
    assert_eq!(
        e("<device><name>x</name><capability type='bogus'/></device>"),
        "XML error: Invalid value for attribute 'type' in element 'capability': 'bogus'."
    );
    assert_eq!(
        e("<device><name>x</name><capability type='mdev_types'/></device>"),
        "internal error: unknown capability type '13' for 'x'"
    );
    assert!(e("<device><name>x</name><capability type='ccw'/></device>").contains("ccw"));
    assert_eq!(
        e(
            "<device><name>x</name><parent wwnn='1'>p</parent><capability type='drm'><type>render</type></capability></device>"
        ),
        "XML error: when providing parent wwnn='1', the wwpn must also be provided"
    );
    assert!(e("<device><name>").starts_with("XML error"));
}

#[test]
fn inactive_leaves_out_what_only_a_present_device_has() {
    let d = NodeDeviceDef {
        name: "drm_renderD128".into(),
        path: Some("/sys/devices/x/drm/renderD128".into()),
        devnode: Some("/dev/dri/renderD128".into()),
        devlinks: vec!["/dev/dri/by-path/x-render".into()],
        parent: Some("pci_0000_00_02_0".into()),
        driver: Some("i915".into()),
        caps: vec![Cap::Drm(DrmType::Render)],
    };
    let full = d.format(false);
    assert!(full.contains("<devnode type='link'>/dev/dri/by-path/x-render</devnode>"));
    assert!(full.contains("<driver>\n    <name>i915</name>\n  </driver>"));
    assert_eq!(
        d.format(true),
        "<device>\n  <name>drm_renderD128</name>\n  <parent>pci_0000_00_02_0</parent>\n  <capability type='drm'>\n    <type>render</type>\n  </capability>\n</device>\n"
    );
    // The driver is the device's binding: libvirt never reads it back from a document.
    let back = parse(&full).unwrap();
    assert_eq!(back.driver, None);
    assert_eq!(back.format(true), d.format(true));
}

#[test]
fn drm_minor_kinds() {
    assert_eq!(DrmType::from_minor(0), Some(DrmType::Primary));
    assert_eq!(DrmType::from_minor(64), Some(DrmType::Control));
    assert_eq!(DrmType::from_minor(129), Some(DrmType::Render));
    assert_eq!(DrmType::from_minor(200), None);
}
