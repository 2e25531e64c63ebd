//! Controllers (libvirt: qemuBuildControllersCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn controllers(&mut self) -> R {
        // The PCI root's hotplug switch is a property of the PM device.
        if let Some(root) = self
            .def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "pci" && c.model.as_deref() == Some("pci-root"))
            && let Some(h) = root.target.as_ref().and_then(|t| t.hotplug.as_deref())
        {
            let pm = if self.is_q35() {
                "ICH9-LPC"
            } else {
                "PIIX4_PM"
            };
            self.opt("-global", format!("{pm}.acpi-root-pci-hotplug={h}"));
        }
        self.legacy_usb();
        // libvirt: qemuBuildControllersCommandLine's order. CCID controllers sit on a USB bus
        // and come later, after the memory modules (see `ccid_controllers`).
        const ORDER: &[&str] = &["pci", "usb", "scsi", "ide", "sata", "fdc", "virtio-serial"];
        for ty in ORDER {
            self.controllers_of(ty)?;
        }
        Ok(())
    }

    /// A domain without any USB controller (not even `model='none'`) gets the machine's
    /// legacy USB, except on the legacy-free ARM and RISC-V `virt` machines and s390
    /// (libvirt 9.0: qemuBuildLegacyUSBControllerCommandLine).
    fn legacy_usb(&mut self) {
        if self
            .def
            .devices
            .controllers
            .iter()
            .any(|c| c.ctype == "usb")
        {
            return;
        }
        let arch = self
            .def
            .os
            .os_type
            .arch
            .as_deref()
            .unwrap_or(&self.caps.arch);
        let m = self.machine();
        let virt = m == "virt" || m.starts_with("virt-");
        let legacy_free =
            ((self.is_arm() || arch.starts_with("riscv")) && virt) || arch.starts_with("s390");
        if !legacy_free {
            self.arg("-usb");
        }
    }

    /// The CCID (smartcard reader) controllers, which libvirt adds after the USB hubs
    /// (libvirt: qemuBuildControllersByTypeCommandLine for CCID).
    pub(super) fn ccid_controllers(&mut self) -> R {
        self.controllers_of("ccid")
    }

    fn controllers_of(&mut self, ty: &str) -> R {
        for c in self
            .def
            .devices
            .controllers
            .iter()
            .filter(|c| c.ctype == ty)
        {
            self.controller(c)?;
        }
        Ok(())
    }

    pub(super) fn controller(&mut self, c: &Controller) -> R {
        if let Some(j) = self.controller_device(c)? {
            self.opt("-device", j.build());
        }
        Ok(())
    }

    /// The device of controller `c` (`-device`, QMP `device_add`, `<qemu:override>`
    /// applied), or none for the ones built into the machine: one source for the command
    /// line and hotplug (libvirt: qemuBuildControllerDevProps).
    pub(super) fn controller_device(&self, c: &Controller) -> R<Option<JsonOpts>> {
        let idx = c.index.unwrap_or(0);
        let model = c.model.as_deref();
        let mut j = JsonOpts::new();
        match c.ctype.as_str() {
            "pci" => {
                let t = c.target.clone().unwrap_or_default();
                let driver = match model {
                    Some("pci-root") | Some("pcie-root") | None => return Ok(None),
                    _ if c.model_name.is_some() => c.model_name.as_deref().unwrap_or_default(),
                    Some("pcie-root-port") => "pcie-root-port",
                    Some("pci-bridge") => "pci-bridge",
                    Some("dmi-to-pci-bridge") => "i82801b11-bridge",
                    Some("pcie-switch-upstream-port") => "x3130-upstream",
                    Some("pcie-switch-downstream-port") => "xio3130-downstream",
                    Some("pci-expander-bus") => "pxb",
                    Some("pcie-expander-bus") => "pxb-pcie",
                    Some("pcie-pci-bridge") => "pcie-pci-bridge",
                    Some(other) => other,
                };
                j.s("driver", driver);
                match driver {
                    "pcie-root-port" | "ioh3420" => {
                        j.u_opt("port", t.port.map(u64::from));
                        j.u_opt("chassis", t.chassis.map(u64::from));
                    }
                    "xio3130-downstream" => {
                        j.u_opt("port", t.port.map(u64::from));
                        j.u_opt("chassis", t.chassis.map(u64::from));
                    }
                    "pci-bridge" => {
                        j.u("chassis_nr", t.chassis_nr.unwrap_or(idx) as u64);
                    }
                    "pxb" | "pxb-pcie" => {
                        j.u_opt("bus_nr", t.bus_nr.map(u64::from));
                    }
                    _ => {}
                }
                j.s("id", self.alias(&c.info)?);
                if let Some(h) = &t.hotplug {
                    j.tristate("hotplug", Some(h.as_str()));
                }
                self.pci_props(&mut j, &c.info);
            }
            "usb" => {
                let driver = match model {
                    Some("none") => return Ok(None),
                    Some("piix3-uhci") | None => "piix3-usb-uhci",
                    Some("piix4-uhci") => "piix4-usb-uhci",
                    Some("ehci") => "usb-ehci",
                    Some("ich9-ehci1") => "ich9-usb-ehci1",
                    Some("ich9-uhci1") => "ich9-usb-uhci1",
                    Some("ich9-uhci2") => "ich9-usb-uhci2",
                    Some("ich9-uhci3") => "ich9-usb-uhci3",
                    Some("vt82c686b-uhci") => "vt82c686b-usb-uhci",
                    Some("pci-ohci") => "pci-ohci",
                    Some("nec-xhci") => "nec-usb-xhci",
                    Some("qemu-xhci") => "qemu-xhci",
                    Some(other) => other,
                };
                j.s("driver", driver);
                if matches!(driver, "qemu-xhci" | "nec-usb-xhci")
                    && let Some(p) = c.ports
                {
                    j.u("p2", p as u64).u("p3", p as u64);
                }
                // Companion controllers share their master's bus and get no id.
                let alias = self.alias(&c.info)?;
                let companion = c.info.master_startport.is_some();
                if let Some(sp) = &c.info.master_startport {
                    j.s("masterbus", self.usb_bus(idx)?);
                    if let Ok(n) = sp.parse::<u64>() {
                        j.u("firstport", n);
                    }
                }
                if !companion {
                    j.s("id", alias);
                }
                self.pci_props(&mut j, &c.info);
            }
            "scsi" => {
                let driver = match model {
                    Some("virtio-scsi" | "virtio-transitional" | "virtio-non-transitional")
                    | None => {
                        &virtio_driver("virtio-scsi", VirtioModel::of(model), &c.info.address)?
                    }
                    Some("lsilogic") => "lsi",
                    Some("lsisas1068") => "mptsas1068",
                    Some("lsisas1078") => "megasas",
                    Some("ibmvscsi") => "spapr-vscsi",
                    Some("vmpvscsi") => "pvscsi",
                    Some("am53c974") => "am53c974",
                    Some("dc390") => "dc390",
                    Some(other) => other,
                };
                j.s("driver", driver);
                if driver.starts_with("virtio") {
                    self.virtio_opts(&mut j, c.driver.as_ref().map(|d| &d.virtio));
                }
                // libvirt: qemuBuildControllerSCSIDevProps (iothread, id, then the queues).
                let virtio_scsi = c
                    .driver
                    .as_ref()
                    .filter(|_| driver.starts_with("virtio-scsi"));
                if let Some(t) = virtio_scsi.and_then(|d| d.iothread) {
                    j.s("iothread", format!("iothread{t}"));
                }
                j.s("id", self.alias(&c.info)?);
                if let Some(d) = virtio_scsi {
                    j.u_opt("num_queues", d.queues.map(u64::from));
                    j.u_opt("cmd_per_lun", d.cmd_per_lun.map(u64::from));
                    j.u_opt("max_sectors", d.max_sectors.map(u64::from));
                    j.tristate("ioeventfd", d.ioeventfd.as_deref());
                }
                if driver == "spapr-vscsi" {
                    // libvirt's first VIO address for a SCSI adapter is 0x2000.
                    let reg = match &c.info.address {
                        Some(Address::SpaprVio { reg: Some(r) }) => {
                            let h = r.trim_start_matches("0x");
                            u64::from_str_radix(h, 16).unwrap_or(0x2000)
                        }
                        _ => 0x2000,
                    };
                    j.u("reg", reg);
                }
                self.pci_props(&mut j, &c.info);
            }
            "sata" => {
                if self.is_q35() && idx == 0 {
                    return Ok(None);
                }
                j.s("driver", "ahci").s("id", self.alias(&c.info)?);
                self.pci_props(&mut j, &c.info);
            }
            "ide" => {
                // The primary IDE controller is built into i440fx.
                return Ok(None);
            }
            "fdc" => return Ok(None),
            "ccid" => {
                j.s("driver", "usb-ccid").s("id", self.alias(&c.info)?);
                // A reader is a USB device: its own address, else the port the start hands out.
                let pos = self
                    .def
                    .devices
                    .controllers
                    .iter()
                    .position(|x| std::ptr::eq(x, c))
                    .unwrap_or_default();
                self.usb_props(&mut j, "controller", pos, &c.info)?;
            }
            "virtio-serial" => {
                let driver =
                    virtio_driver("virtio-serial", VirtioModel::of(model), &c.info.address)?;
                j.s("driver", driver);
                self.virtio_opts(&mut j, c.driver.as_ref().map(|d| &d.virtio));
                j.s("id", self.alias(&c.info)?);
                if let Some(p) = c.ports {
                    j.u("max_ports", p as u64);
                }
                if let Some(v) = c.vectors {
                    j.u("vectors", v as u64);
                }
                if let Some(d) = &c.driver {
                    j.tristate("ioeventfd", d.ioeventfd.as_deref());
                }
                self.pci_props(&mut j, &c.info);
            }
            _ => return Ok(None),
        }
        Ok(Some(self.with_overrides(&j).unwrap_or(j)))
    }

    /// Whether disks on SCSI controller `index` are addressed by channel, target and LUN;
    /// the LSI-style HBAs take a bus per channel and a SCSI id instead.
    pub(super) fn scsi_is_virtio(&self, index: u32) -> bool {
        self.def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "scsi" && c.index.unwrap_or(0) == index)
            .and_then(|c| c.model.as_deref())
            .is_none_or(|m| !matches!(m, "lsilogic" | "ncr53c90" | "dc390" | "am53c974"))
    }
}
