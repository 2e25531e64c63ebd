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

/// Ports of a USB hub (libvirt: VIR_DOMAIN_USB_HUB_PORTS).
const HUB_PORTS: u32 = 8;

/// Add the USB hubs a new definition needs when its USB devices outnumber the ports of its
/// USB controllers and hubs (libvirt: qemuDomainUSBAddressAddHubs; like libvirt, every USB
/// controller's ports count, companions included, and every USB device, hubs included).
/// Returns whether it added any.
pub fn add_usb_hubs(def: &mut DomainDef) -> bool {
    let d = &mut def.devices;
    if !d
        .controllers
        .iter()
        .any(|c| c.ctype == "usb" && c.model.as_deref() != Some("none"))
    {
        return false;
    }
    let available: u32 = d
        .controllers
        .iter()
        .filter(|c| c.ctype == "usb")
        .map(ports_of)
        .sum::<u32>()
        + d.hubs.iter().filter(|h| h.htype == "usb").count() as u32 * HUB_PORTS;
    let count = d.hubs.iter().filter(|h| h.htype == "usb").count()
        + d.hostdevs
            .iter()
            .filter(|h| h.htype.as_deref() == Some("usb"))
            .count()
        + d.disks
            .iter()
            .filter(|x| x.target.bus.as_deref() == Some("usb"))
            .count()
        + d.controllers.iter().filter(|c| c.ctype == "ccid").count()
        + d.inputs
            .iter()
            .filter(|x| x.bus.as_deref() == Some("usb"))
            .count()
        + d.serials
            .iter()
            .filter(|x| x.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("usb-serial"))
            .count()
        + d.sounds.iter().filter(|x| x.model == "usb").count()
        + d.redirdevs.len();
    let count = count as u32;
    if count <= available {
        return false;
    }
    let needed = (count - available + 1).div_ceil(HUB_PORTS - 1);
    for _ in 0..needed {
        d.hubs.push(crate::domain::devices::Hub {
            htype: "usb".into(),
            ..Default::default()
        });
    }
    true
}

/// Give every USB device without a port one on bus 0, as libvirt does for a new definition:
/// the first free port of the bus, else the first free port of a hub on it, hubs searched in
/// port order (libvirt: virDomainUSBAddressFindFreePort). Devices beyond every port stay
/// unaddressed.
pub fn assign_usb_ports(def: &mut DomainDef) {
    let d = &mut def.devices;
    let Some(bus0) = d.controllers.iter().find(|c| {
        c.ctype == "usb" && c.index.unwrap_or(0) == 0 && c.model.as_deref() != Some("none")
    }) else {
        return;
    };
    let ports = ports_of(bus0);
    let hub_count = d.hubs.iter().filter(|h| h.htype == "usb").count();
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
    let mut taken: Vec<Vec<u32>> = Vec::new();
    let mut hubs: Vec<Vec<u32>> = Vec::new();
    for (i, info) in infos.iter().enumerate() {
        if let Some(Address::Usb {
            bus: 0,
            port: Some(p),
        }) = &info.address
            && let Some(path) = port_path(p)
        {
            if i < hub_count {
                hubs.push(path.clone());
            }
            taken.push(path);
        }
    }
    for (i, info) in infos.into_iter().enumerate() {
        if !matches!(&info.address, None | Some(Address::Usb { port: None, .. })) {
            continue;
        }
        let Some(path) = free_port(&[], ports, &taken, &hubs) else {
            return;
        };
        if i < hub_count {
            hubs.push(path.clone());
        }
        let text: Vec<String> = path.iter().map(u32::to_string).collect();
        taken.push(path);
        info.address = Some(Address::Usb {
            bus: 0,
            port: Some(text.join(".")),
        });
    }
}

/// `1.2` as `[1, 2]`.
fn port_path(p: &str) -> Option<Vec<u32>> {
    p.split('.').map(|x| x.parse().ok()).collect()
}

/// The first free port under `prefix` (a hub, or the bus for `[]`) with `n` ports: one of its
/// own, else one under the first of its hubs that has any.
fn free_port(prefix: &[u32], n: u32, taken: &[Vec<u32>], hubs: &[Vec<u32>]) -> Option<Vec<u32>> {
    let at = |k: u32| {
        let mut p = prefix.to_vec();
        p.push(k);
        p
    };
    if let Some(k) = (1..=n).find(|k| !taken.contains(&at(*k))) {
        return Some(at(k));
    }
    (1..=n)
        .filter(|k| hubs.contains(&at(*k)))
        .find_map(|k| free_port(&at(k), HUB_PORTS, taken, hubs))
}
