//! Mediated host devices: a slice of a physical device (vGPU, crypto adapter queue) handed to
//! the guest through VFIO (libvirt: qemuBuildHostdevMediatedDevProps).

use super::*;
use crate::domain::devices::{HostAddress, Hostdev};

/// The VFIO front-end a mediated device is given to the guest with (`<hostdev model=..>`:
/// `vfio-pci`, `vfio-ccw`, `vfio-ap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MdevModel {
    Pci,
    Ccw,
    Ap,
}

impl MdevModel {
    fn parse(model: Option<&str>) -> R<Self> {
        match model {
            Some("vfio-pci") => Ok(MdevModel::Pci),
            Some("vfio-ccw") => Ok(MdevModel::Ccw),
            Some("vfio-ap") => Ok(MdevModel::Ap),
            // libvirt: virDomainHostdevSubsysMediatedDevDefParseXML
            Some(m) => Err(Xml2ArgvError::Xml(format!("unknown hostdev model '{m}'"))),
            None => Err(Xml2ArgvError::Xml(
                "Missing 'model' attribute in mediated device's <hostdev> element".into(),
            )),
        }
    }

    /// The QEMU device. A PCI device with a ramfb display cannot be unplugged, and QEMU has
    /// its own name for that (libvirt: qemuBuildHostdevMdevModelTypeString).
    fn driver(self, ramfb: bool) -> &'static str {
        match self {
            MdevModel::Pci if ramfb => "vfio-pci-nohotplug",
            MdevModel::Pci => "vfio-pci",
            MdevModel::Ccw => "vfio-ccw",
            MdevModel::Ap => "vfio-ap",
        }
    }
}

/// Where the host's mediated device `uuid` lives (libvirt: virMediatedDeviceGetSysfsPath).
fn sysfs_path(uuid: &str) -> String {
    format!("/sys/bus/mdev/devices/{uuid}")
}

impl Builder<'_> {
    /// The `-device` of a `<hostdev type='mdev'>` (libvirt: qemuBuildHostdevMediatedDevProps).
    pub(super) fn mdev_props(&self, h: &Hostdev, alias: &str) -> R<JsonOpts> {
        let uuid = match h.source.as_ref().and_then(|s| s.address.as_ref()) {
            Some(HostAddress::Mdev { uuid }) => uuid.clone(),
            _ => {
                return Err(Xml2ArgvError::Xml(
                    "Missing 'uuid' attribute for element <address>".into(),
                ));
            }
        };
        let model = MdevModel::parse(h.model.as_deref())?;
        let ramfb = h.ramfb.as_deref() == Some("on");
        let mut j = JsonOpts::new();
        j.s("driver", model.driver(ramfb))
            .s("id", alias)
            .s("sysfsdev", sysfs_path(&uuid));
        // `display='off'` is the default and not passed on.
        if let Some(d @ ("on" | "auto")) = h.display.as_deref() {
            j.s("display", d);
        }
        if ramfb {
            j.b("ramfb", true);
        }
        if let Some(b) = h.info.boot.as_ref() {
            j.u("bootindex", b.order as u64);
        }
        self.info_props(&mut j, &h.info)?;
        Ok(j)
    }
}
