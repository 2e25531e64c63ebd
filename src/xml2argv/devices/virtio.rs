//! The one place a virtio device's QEMU driver name is chosen (libvirt:
//! qemuBuildVirtioDevGetConfigGeneric, used by qemuBuildVirtioDevProps): the transport from
//! the device's address (`-pci`, `-ccw`, or `-device` on virtio-mmio) and the
//! `-transitional`/`-non-transitional` variant from its model.

use super::*;

/// The virtio variant a device's `model` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VirtioModel {
    Default,
    Transitional,
    NonTransitional,
}

impl VirtioModel {
    /// `virtio-transitional` and `virtio-non-transitional`; every other model is the default.
    pub(super) fn of(model: Option<&str>) -> Self {
        match model {
            Some("virtio-transitional") => VirtioModel::Transitional,
            Some("virtio-non-transitional") => VirtioModel::NonTransitional,
            _ => VirtioModel::Default,
        }
    }
}

/// QEMU's driver name for virtio device `base` (`virtio-blk`, `virtio-net`, ...) at `address`
/// with `model`. A device without an address is placed on PCI (prepare assigns one wherever
/// the machine has PCI). An address type virtio cannot use, or a (non-)transitional model
/// off PCI, is refused with libvirt's message.
pub(super) fn virtio_driver(
    base: &str,
    model: VirtioModel,
    address: &Option<Address>,
) -> R<String> {
    let transport = match address {
        None | Some(Address::Pci { .. }) => "pci",
        Some(Address::VirtioMmio) => "device",
        Some(Address::Ccw { .. }) => "ccw",
        Some(_) => {
            return Err(Xml2ArgvError::Internal(format!(
                "Unexpected address type for '{base}'"
            )));
        }
    };
    if model != VirtioModel::Default && transport != "pci" {
        let ty = address.as_ref().map_or("none", |a| a.type_name());
        return Err(unsupported(format!(
            "virtio (non-)transitional models are not supported for address type={ty}"
        )));
    }
    let variant = match model {
        VirtioModel::Default => "",
        VirtioModel::Transitional => "-transitional",
        VirtioModel::NonTransitional => "-non-transitional",
    };
    Ok(format!("{base}-{transport}{variant}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pci() -> Option<Address> {
        Some(Address::Pci {
            domain: 0,
            bus: 0,
            slot: 3,
            function: 0,
            multifunction: None,
            zpci: None,
        })
    }

    #[test]
    fn transport_and_variant() {
        let d = VirtioModel::Default;
        assert_eq!(
            virtio_driver("virtio-blk", d, &pci()).unwrap(),
            "virtio-blk-pci"
        );
        assert_eq!(
            virtio_driver("virtio-blk", d, &None).unwrap(),
            "virtio-blk-pci"
        );
        let mmio = Some(Address::VirtioMmio);
        assert_eq!(
            virtio_driver("virtio-net", d, &mmio).unwrap(),
            "virtio-net-device"
        );
        let ccw = Some(Address::Ccw {
            cssid: "0xfe".into(),
            ssid: "0x0".into(),
            devno: "0x0001".into(),
        });
        assert_eq!(
            virtio_driver("virtio-rng", d, &ccw).unwrap(),
            "virtio-rng-ccw"
        );
        let nt = VirtioModel::of(Some("virtio-non-transitional"));
        assert_eq!(
            virtio_driver("virtio-blk", nt, &pci()).unwrap(),
            "virtio-blk-pci-non-transitional"
        );
        let t = VirtioModel::of(Some("virtio-transitional"));
        assert_eq!(
            virtio_driver("virtio-balloon", t, &pci()).unwrap(),
            "virtio-balloon-pci-transitional"
        );
    }

    #[test]
    fn refusals_use_libvirts_messages() {
        let t = VirtioModel::Transitional;
        let e = virtio_driver("virtio-blk", t, &Some(Address::VirtioMmio)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: virtio (non-)transitional models are not supported for address type=virtio-mmio"
        );
        let isa = Some(Address::Isa {
            iobase: None,
            irq: None,
        });
        let e = virtio_driver("virtio-net", VirtioModel::Default, &isa).unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: Unexpected address type for 'virtio-net'"
        );
    }
}
