//! Sound devices (libvirt: qemuBuildSoundCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn sounds(&mut self) -> R {
        for s in self.def.devices.sounds.iter() {
            let alias = self.alias(&s.info)?;
            let audio = s
                .audio_id
                .or_else(|| self.def.devices.audios.first().and_then(|a| a.id))
                .unwrap_or(1);
            let mut j = JsonOpts::new();
            let (drv, hda) = match s.model.as_str() {
                "ich6" => ("intel-hda", true),
                "ich9" => ("ich9-intel-hda", true),
                "ac97" => ("AC97", false),
                "es1370" => ("ES1370", false),
                "sb16" => ("sb16", false),
                "usb" => ("usb-audio", false),
                "ich7" => ("intel-hda", true),
                "pcspk" => return Err(unsupported("pcspk not supported yet")),
                other => return Err(unsupported(format!("sound '{other}' not supported yet"))),
            };
            j.s("driver", drv).s("id", alias.clone());
            if !hda {
                j.s("audiodev", format!("audio{audio}"));
            }
            self.info_props(&mut j, &s.info)?;
            self.device(&j);
            if hda {
                let codecs = if s.codecs.is_empty() {
                    vec!["duplex".to_string()]
                } else {
                    s.codecs.clone()
                };
                for (ci, c) in codecs.iter().enumerate() {
                    let mut cj = JsonOpts::new();
                    cj.s("driver", format!("hda-{c}"))
                        .s("id", format!("{alias}-codec{ci}"))
                        .s("bus", format!("{alias}.0"))
                        .u("cad", ci as u64)
                        .s("audiodev", format!("audio{audio}"));
                    self.device(&cj);
                }
            }
        }
        Ok(())
    }
}
