use super::*;

const DEFAULT: &str = "<network><name>default</name><forward mode='nat'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp>
  <range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>";

#[test]
fn define_fills_bridge_mac_and_nat_ports_as_libvirt() {
    let mut d = NetworkDef::parse(DEFAULT).unwrap();
    assert_eq!(d.uuid.len(), 36);
    d.fill_defaults(|n| n == "virbr0", [0xab, 0xcd, 0xef]);
    let x = d.to_xml(None);
    let want = format!(
        "<network>
  <name>default</name>
  <uuid>{}</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='virbr1' stp='on' delay='0'/>
  <mac address='52:54:00:ab:cd:ef'/>
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
    </dhcp>
  </ip>
</network>
",
        d.uuid
    );
    assert_eq!(x, want);
    // A round trip keeps everything.
    assert_eq!(NetworkDef::parse(&x).unwrap(), d);
}

#[test]
fn bridge_mode_names_an_existing_bridge_and_isolated_has_no_forward() {
    let mut d = NetworkDef::parse(
        "<network><name>host</name><forward mode='bridge'/><bridge name='br0'/></network>",
    )
    .unwrap();
    d.fill_defaults(|_| false, [0; 3]);
    assert!(!d.makes_bridge());
    assert!(d.mac.is_none());
    assert!(
        d.to_xml(None)
            .contains("<forward mode='bridge'/>\n  <bridge name='br0'/>")
    );
    let mut i = NetworkDef::parse(
        "<network><name>iso</name><ip address='10.0.0.1' prefix='24'/></network>",
    )
    .unwrap();
    i.fill_defaults(|_| false, [0; 3]);
    assert_eq!(i.mode_name(), "isolated");
    assert!(!i.to_xml(None).contains("forward"));
    assert!(
        i.to_xml(None)
            .contains("<ip address='10.0.0.1' prefix='24'/>")
    );
}

#[test]
fn refusals_in_libvirts_words() {
    let cases = [
        ("<network/>", "missing name information"),
        (
            "<domain/>",
            "XML error: expecting root element of 'network', not 'domain'",
        ),
        (
            "<network><name>a/b</name></network>",
            "XML error: name a/b cannot contain '/'",
        ),
        (
            "<network><name>n</name><forward mode='bogus'/></network>",
            "unsupported configuration: unknown forwarding type 'bogus'",
        ),
        (
            "<network><name>n</name><forward mode='nat'/></network>",
            "XML error: nat forwarding requested, but no IP address provided for network 'n'",
        ),
        (
            "<network><name>n</name><uuid>zz</uuid></network>",
            "internal error: malformed uuid element",
        ),
        (
            "<network><name>n</name><ip address='10.0.0.1' netmask='255.0.255.0'/></network>",
            "XML error: Invalid netmask '255.0.255.0' in network 'n'",
        ),
        (
            "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><range end='10.0.0.9'/></dhcp></ip></network>",
            "XML error: Missing 'start' attribute in dhcp range for network 'n'",
        ),
        (
            "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>",
            "internal error: range 10.0.1.2 - 10.0.1.9 is not entirely within network 10.0.0.1/24",
        ),
        (
            "<network><name>n</name><ip address='10.0.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:01'/></dhcp></ip></network>",
            "XML error: Missing IP address in static host definition for network 'n'",
        ),
        (
            "<network><name>n</name><mac address='01:00:00:00:00:01'/></network>",
            "XML error: Invalid multicast bridge mac address '01:00:00:00:00:01' in network 'n'",
        ),
        (
            "<network><name>n</name><forward mode='bridge'/><bridge name='br0' stp='on'/></network>",
            "XML error: bridge delay/stp/zone options only allowed in route, nat, and isolated mode, not in bridge (network 'n')",
        ),
    ];
    for (xml, msg) in cases {
        assert_eq!(
            NetworkDef::parse(xml).unwrap_err().to_string(),
            msg,
            "{xml}"
        );
    }
}
