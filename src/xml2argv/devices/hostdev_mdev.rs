//! Mediated host devices: a slice of a physical device (vGPU, crypto adapter queue) handed to
//! the guest through VFIO (libvirt: qemuBuildHostdevMediatedDevProps).

use super::*;
use crate::domain::devices::{HostAddress, Hostdev};

/// The VFIO front-end a mediated device is given to the guest with (`<hostdev model=..>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MdevModel {
    VfioPci,
    VfioCcw,
    VfioAp,
}

impl MdevModel {
    fn parse(model: Option<&str>) -> R<Self> {
        match model {
            Some("vfio-pci") => Ok(MdevModel::VfioPci),
            Some("vfio-ccw") => Ok(MdevModel::VfioCcw),
            Some("vfio-ap") => Ok(MdevModel::VfioAp),
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
            MdevModel::VfioPci if ramfb => "vfio-pci-nohotplug",
            MdevModel::VfioPci => "vfio-pci",
            MdevModel::VfioCcw => "vfio-ccw",
            MdevModel::VfioAp => "vfio-ap",
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
        match h.display.as_deref() {
            Some(d @ ("on" | "auto")) => {
                j.s("display", d);
            }
            _ => {}
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
