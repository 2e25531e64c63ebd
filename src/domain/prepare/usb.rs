//! USB ports written into a new definition (libvirt: qemuDomainAssignUSBAddresses, which pins
//! them at define and create, the ABI update, and at start). Devices take the free ports of
//! the first USB bus in libvirt's device order; a device already addressed keeps its port.

use crate::domain::address::{Address, DeviceInfo};
use crate::domain::devices::Controller;
use crate::domain::model::DomainDef;

/// Ports of a USB controller (libvirt: virDomainUSBAddressControllerModelToPorts).
fn ports_of(c: &Controller) -> u32 {
    if let Some(p) = c.ports {
        return p;
    }
    match c.model.as_deref().unwrap_or("") {
        "piix3-uhci" | "piix4-uhci" | "vt82c686b-uhci" | "ich9-uhci1" | "ich9-uhci2"
        | "ich9-uhci3" => 2,
        "ehci" | "ich9-ehci1" => 6,
        "pci-ohci" => 3,
        "nec-xhci" | "qemu-xhci" => 4,
        _ => 0,
    }
}

/// Give every USB device without a port one on bus 0, as libvirt does for a new definition.
/// Devices beyond the bus's ports stay unaddressed (libvirt would add a hub there).
pub(crate) fn assign_usb_ports(def: &mut DomainDef) {
    let d = &mut def.devices;
    let Some(bus0) = d.controllers.iter().find(|c| {
        c.ctype == "usb" && c.index.unwrap_or(0) == 0 && c.model.as_deref() != Some("none")
    }) else {
        return;
    };
    let ports = ports_of(bus0);
    // libvirt's order: hubs, host devices, disks, CCID controllers, inputs, serials, sounds,
    // redirected devices.
    let mut infos: Vec<&mut DeviceInfo> = Vec::new();
    infos.extend(
        d.hubs
            .iter_mut()
            .filter(|h| h.htype == "usb")
            .map(|h| &mut h.info),
    );
    infos.extend(
        d.hostdevs
            .iter_mut()
            .filter(|h| h.htype.as_deref() == Some("usb"))
            .map(|h| &mut h.info),
    );
    infos.extend(
        d.disks
            .iter_mut()
            .filter(|x| x.target.bus.as_deref() == Some("usb"))
            .map(|x| &mut x.info),
    );
    infos.extend(
        d.controllers
            .iter_mut()
            .filter(|c| c.ctype == "ccid")
            .map(|c| &mut c.info),
    );
    infos.extend(
        d.inputs
            .iter_mut()
            .filter(|x| x.bus.as_deref() == Some("usb"))
            .map(|x| &mut x.info),
    );
    infos.extend(
        d.serials
            .iter_mut()
            .filter(|x| x.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("usb-serial"))
            .map(|x| &mut x.info),
    );
    infos.extend(
        d.sounds
            .iter_mut()
            .filter(|x| x.model == "usb")
            .map(|x| &mut x.info),
    );
    infos.extend(d.redirdevs.iter_mut().map(|x| &mut x.info));
    let mut taken: Vec<u32> = infos
        .iter()
        .filter_map(|i| match &i.address {
            Some(Address::Usb {
                bus: 0,
                port: Some(p),
            }) => p.split('.').next().and_then(|p| p.parse().ok()),
            _ => None,
        })
        .collect();
    for info in infos {
        if !matches!(&info.address, None | Some(Address::Usb { port: None, .. })) {
            continue;
        }
        let Some(port) = (1..=ports).find(|p| !taken.contains(p)) else {
            return;
        };
        taken.push(port);
        info.address = Some(Address::Usb {
            bus: 0,
            port: Some(port.to_string()),
        });
    }
}
