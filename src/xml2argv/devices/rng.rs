//! Random number generators (libvirt: qemuBuildRNGCommandLine, qemuBuildRNGBackendProps,
//! qemuBuildRNGDevProps).

use super::*;

impl Builder<'_> {
    pub(super) fn rngs(&mut self) -> R {
        for r in self.def.devices.rngs.iter() {
            if r.backend_model.as_deref() == Some("egd") {
                let chr = format!("char{}", self.alias(&r.info)?);
                self.chardev(&chr, &crate::xml2argv::rng::egd_chardev(r))?;
            }
            let (obj, dev) = self.rng_parts(r)?;
            self.object(&obj);
            self.opt("-device", dev.build());
        }
        Ok(())
    }

    /// The backend object (`-object`, QMP `object-add`) and the device (`-device`,
    /// `device_add`, `<qemu:override>` applied) of `r`: one source for the command line and
    /// hotplug. An `egd` backend's chardev comes first, from `chardev`.
    pub(super) fn rng_parts(&self, r: &Rng) -> R<(JsonOpts, JsonOpts)> {
        let alias = self.alias(&r.info)?;
        let obj = format!("obj{alias}");
        let mut o = JsonOpts::new();
        match r.backend_model.as_deref().unwrap_or("random") {
            "random" => {
                o.s("qom-type", "rng-random").s("id", obj.clone()).s(
                    "filename",
                    // libvirt 9.0's default source (virDomainRNGDefParseXML).
                    r.backend_path.clone().unwrap_or("/dev/random".into()),
                );
            }
            "builtin" => {
                o.s("qom-type", "rng-builtin").s("id", obj.clone());
            }
            "egd" => {
                o.s("qom-type", "rng-egd")
                    .s("id", obj.clone())
                    .s("chardev", format!("char{alias}"));
            }
            other => {
                return Err(unsupported(format!(
                    "rng backend '{other}' not supported yet"
                )));
            }
        }
        let drv = virtio_driver(
            "virtio-rng",
            VirtioModel::of(r.model.as_deref()),
            &r.info.address,
        )?;
        let mut j = JsonOpts::new();
        j.s("driver", drv);
        self.virtio_opts(&mut j, r.driver.as_ref().map(|x| &x.virtio));
        j.s("rng", obj);
        j.s("id", alias);
        if let Some(b) = r.rate_bytes.as_deref().and_then(|s| s.parse::<u64>().ok()) {
            j.u("max-bytes", b);
            let period = r
                .rate_period
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(1000);
            j.u("period", period);
        }
        self.pci_props(&mut j, &r.info);
        let dev = self.with_overrides(&j).unwrap_or(j);
        Ok((o, dev))
    }
}
