//! `<tpm>`: the backend (`-tpmdev`, with its chardev or inherited fds) and the frontend device.

use super::opts::{JsonOpts, KvOpts};
use super::{LaunchContext, Xml2ArgvError};
use crate::domain::devices::Tpm;

/// The arguments of a TPM. `fdset` is the next free `-add-fd` set number.
pub(super) fn args(
    t: &Tpm,
    ctx: &LaunchContext,
    short_name: &str,
    fdset: &mut u32,
) -> Result<Vec<String>, Xml2ArgvError> {
    let alias = t.info.alias.clone().ok_or_else(|| {
        Xml2ArgvError::Internal("device without an alias: assign aliases before the build".into())
    })?;
    let mut out = Vec::new();
    let tpmdev = match t.backend_type.as_deref().unwrap_or("passthrough") {
        "passthrough" => {
            let path = t.device_path.as_deref().unwrap_or("/dev/tpm0");
            let cancel = cancel_path(path);
            let (dev, cancel) = match ctx.tpm_passthrough_fds {
                // libvirt opens the device and its cancel file itself and hands QEMU the fds.
                Some((dev_fd, cancel_fd)) => {
                    let mut sets = Vec::new();
                    for (fd, what) in [(dev_fd, "tpm"), (cancel_fd, "cancel")] {
                        let set = *fdset;
                        *fdset += 1;
                        out.push("-add-fd".to_string());
                        let mut a = KvOpts::new();
                        a.kv("set", set)
                            .kv("fd", fd)
                            .kv("opaque", format!("{alias}-{what}"));
                        out.push(a.build());
                        sets.push(format!("/dev/fdset/{set}"));
                    }
                    (sets[0].clone(), sets[1].clone())
                }
                None => (path.to_string(), cancel),
            };
            let mut o = KvOpts::with_head("passthrough");
            o.kv("id", format!("tpm-{alias}"))
                .kv("path", dev)
                .kv("cancel-path", cancel);
            o
        }
        kind @ ("emulator" | "external") => {
            let path = if kind == "external" {
                t.backend_extra
                    .children
                    .iter()
                    .find(|c| c.name == "source")
                    .and_then(|s| s.attr("path"))
                    .map(String::from)
                    .ok_or_else(|| {
                        Xml2ArgvError::Xml("missing TPM source path for external backend".into())
                    })?
            } else {
                ctx.tpm_emulator_socket
                    .clone()
                    .unwrap_or_else(|| format!("{}/swtpm/{short_name}-swtpm.sock", ctx.runtime_dir))
            };
            out.push("-chardev".to_string());
            // libvirt's PRETEND start runs no swtpm: a null chardev stands in for its socket.
            if kind == "emulator" && ctx.pretend && ctx.tpm_emulator_socket.is_none() {
                out.push("null,id=chrtpm".to_string());
            } else {
                let mut c = KvOpts::with_head("socket");
                c.kv("id", "chrtpm").kv("path", path);
                out.push(c.build());
            }
            let mut o = KvOpts::with_head("emulator");
            o.kv("id", format!("tpm-{alias}")).kv("chardev", "chrtpm");
            o
        }
        other => {
            return Err(Xml2ArgvError::Unsupported(format!(
                "TPM backend '{other}' not supported yet"
            )));
        }
    };
    out.push("-tpmdev".to_string());
    out.push(tpmdev.build());
    let model = t.model.as_deref().unwrap_or("tpm-tis");
    let driver = match model {
        "tpm-tis" | "tpm-crb" | "tpm-spapr" => model,
        other => {
            return Err(Xml2ArgvError::Unsupported(format!(
                "TPM model '{other}' not supported yet"
            )));
        }
    };
    let mut d = JsonOpts::new();
    d.s("driver", driver)
        .s("tpmdev", format!("tpm-{alias}"))
        .s("id", alias);
    out.push("-device".to_string());
    out.push(d.build());
    Ok(out)
}

/// The sysfs file that cancels a TPM command of host device `path` (`/dev/tpmN`).
fn cancel_path(path: &str) -> String {
    let dev = path.rsplit('/').next().unwrap_or("tpm0");
    format!("/sys/class/misc/{dev}/device/cancel")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpm0() -> crate::domain::DeviceInfo {
        crate::domain::DeviceInfo {
            alias: Some("tpm0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_tpm_without_alias_is_an_internal_error() {
        let ctx =
            crate::conformance::harness::harness_context(&crate::domain::DomainDef::default());
        let e = args(&Tpm::default(), &ctx, "-1-g", &mut 0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("internal error: device without an alias")
        );
    }

    #[test]
    fn unknown_backend_is_refused() {
        let ctx =
            crate::conformance::harness::harness_context(&crate::domain::DomainDef::default());
        let t = Tpm {
            backend_type: Some("bogus".into()),
            info: tpm0(),
            ..Default::default()
        };
        let e = args(&t, &ctx, "-1-g", &mut 0).unwrap_err().to_string();
        assert_eq!(
            e,
            "unsupported configuration: TPM backend 'bogus' not supported yet"
        );
    }

    #[test]
    fn passthrough_without_fds_names_the_device() {
        let mut ctx =
            crate::conformance::harness::harness_context(&crate::domain::DomainDef::default());
        ctx.tpm_passthrough_fds = None;
        let t = Tpm {
            backend_type: Some("passthrough".into()),
            device_path: Some("/dev/tpm1".into()),
            info: tpm0(),
            ..Default::default()
        };
        let a = args(&t, &ctx, "-1-g", &mut 0).unwrap();
        assert_eq!(
            a[1],
            "passthrough,id=tpm-tpm0,path=/dev/tpm1,cancel-path=/sys/class/misc/tpm1/device/cancel"
        );
    }
}
