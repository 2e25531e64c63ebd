//! What `domxml-to-native` changes in a definition before it builds the command (libvirt:
//! qemuConnectDomainXMLToNative). A pretend start cannot create the TAP or macvtap devices,
//! nor join networks and bridges, so every interface becomes a plain `ethernet` one, which
//! QEMU gets as an already opened TAP fd.

use crate::domain::devices::Interface;
use crate::domain::model::DomainDef;

/// Replace every interface by an `ethernet` one that keeps only its MAC, model and script
/// (libvirt clears the whole interface, then restores those). Everything else goes with the
/// rest: the driver settings, the alias, the ROM, the PCI address (the address pass of the
/// pretend start gives the interface a new one) and the boot order's effect (libvirt restores
/// the `<boot order>` but not the effective boot index the command line is built from).
pub fn nets_as_ethernet(def: &mut DomainDef) {
    for n in &mut def.devices.interfaces {
        *n = Interface {
            itype: "ethernet".to_string(),
            mac: n.mac.take(),
            model: n.model.take(),
            script: n.script.take(),
            ..Default::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_mac_model_script_only() {
        let xml = "<domain type='kvm'><name>n</name><memory>1024</memory>\
            <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
            <interface type='direct'><mac address='52:54:00:aa:bb:01'/>\
            <source dev='eth0' mode='bridge'/><model type='virtio'/><script path='/bin/up'/>\
            <driver name='vhost' queues='4' iommu='on'/><alias name='ua-net'/><rom enabled='no'/>\
            <boot order='1'/>\
            <address type='pci' domain='0x0000' bus='0x01' slot='0x01' function='0x0'/>\
            </interface></devices></domain>";
        let mut def = crate::domain::parse_unprepared(xml).unwrap();
        nets_as_ethernet(&mut def);
        let n = &def.devices.interfaces[0];
        assert_eq!(n.itype, "ethernet");
        assert_eq!(n.mac.as_deref(), Some("52:54:00:aa:bb:01"));
        assert_eq!(n.model.as_deref(), Some("virtio"));
        assert_eq!(n.script.as_deref(), Some("/bin/up"));
        assert!(n.source.is_none() && n.driver.is_none());
        assert!(n.info.address.is_none() && n.info.alias.is_none() && n.info.boot.is_none());
    }
}
