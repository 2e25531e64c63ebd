//! Random number generators (libvirt: qemuBuildRNGCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn rngs(&mut self) -> R {
        for r in self.def.devices.rngs.iter() {
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
                    let chr = format!("char{alias}");
                    self.chardev(&chr, &crate::xml2argv::rng::egd_chardev(r))?;
                    o.s("qom-type", "rng-egd")
                        .s("id", obj.clone())
                        .s("chardev", chr);
                }
                other => {
                    return Err(unsupported(format!(
                        "rng backend '{other}' not supported yet"
                    )));
                }
            }
            self.object(&o);
            let drv = virtio_driver(
                "virtio-rng",
                VirtioModel::of(r.model.as_deref()),
                &r.info.address,
            )?;
            let mut j = JsonOpts::new();
            j.s("driver", drv);
            self.virtio_opts(&mut j, r.driver.as_ref().map(|x| &x.virtio));
            j.s("rng", obj);
            j.s("id", alias.clone());
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
            self.device(&j);
        }
        Ok(())
    }
}
