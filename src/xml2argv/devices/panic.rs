//! Panic notifiers (libvirt: qemuBuildPanicCommandLine).

use super::*;

impl Builder<'_> {
    pub(super) fn panics(&mut self) {
        for p in &self.def.devices.panics {
            match p.model.as_deref() {
                Some("isa") | None if self.is_x86() => {
                    let mut j = JsonOpts::new();
                    j.s("driver", "pvpanic");
                    if let Some(Address::Isa {
                        iobase: Some(io), ..
                    }) = &p.info.address
                        && let Some(v) = io
                            .strip_prefix("0x")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                    {
                        j.u("ioport", v);
                    }
                    self.device(&j);
                }
                _ => {}
            }
        }
    }
}
