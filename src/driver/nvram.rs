//! A UEFI guest's varstore: created from its template at the first start (or at every start
//! with `--reset-nvram`), kept across starts, removed by `undefine --nvram`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Connect, DriverError};
use crate::domain::DomainDef;

impl Connect {
    /// Where varstores live by default (`NAME_VARS.fd`), libvirt's `nvram_dir`.
    pub(crate) fn nvram_dir(&self) -> PathBuf {
        self.dirs.lib.join("nvram")
    }

    /// The varstore file of a stored config, if it has a local one: the loader's, or for
    /// autoselected EFI firmware the default path a start will give it.
    // libvirt: qemuDomainUndefineFlags picks the path the same way.
    pub(crate) fn nvram_path_of(&self, def: &DomainDef) -> Option<PathBuf> {
        if def.os.firmware.as_deref() == Some("efi") {
            return Some(self.nvram_dir().join(format!("{}_VARS.fd", def.name)));
        }
        local_varstore(def, &self.nvram_dir())
    }
}

/// The local file of `def`'s varstore: its `<nvram>` path or file source, or for a template
/// alone `NAME_VARS.fd` in `nvram_dir` (read-only loaders), as the command line has it. `None` for a network
/// varstore or none at all.
fn local_varstore(def: &DomainDef, nvram_dir: &Path) -> Option<PathBuf> {
    let nv = def.os.nvram.as_ref()?;
    if nv.source.as_ref().is_some_and(|s| s.protocol.is_some()) {
        return None;
    }
    match (&nv.path, &nv.source) {
        (Some(p), _) => Some(PathBuf::from(p)),
        (None, Some(s)) => s.file.as_ref().map(PathBuf::from),
        // Only a read-only loader gets a varstore from a template alone (see xml2argv's
        // pflash images).
        (None, None) => nv
            .template
            .as_ref()
            .filter(|_| {
                def.os
                    .loader
                    .as_ref()
                    .is_some_and(|l| l.readonly.as_deref() == Some("yes"))
            })
            .map(|_| nvram_dir.join(format!("{}_VARS.fd", def.name))),
    }
}

/// Create the varstore of prepared definition `def` from its template unless it exists
/// (always with `reset`). The file is 0600; a half-copied varstore never takes its place.
// libvirt: qemuPrepareNVRAMFile
pub(crate) fn prepare_varstore(
    def: &DomainDef,
    reset: bool,
    nvram_dir: &Path,
) -> Result<(), DriverError> {
    let Some(path) = local_varstore(def, nvram_dir) else {
        return Ok(());
    };
    let path = path.as_path();
    if path.exists() && !reset {
        return Ok(());
    }
    let Some(template) = def.os.nvram.as_ref().and_then(|n| n.template.as_deref()) else {
        let loader = def
            .os
            .loader
            .as_ref()
            .and_then(|l| l.path.as_deref())
            .unwrap_or_default();
        return Err(DriverError::OperationFailed(format!(
            "unable to find any master var store for loader: {loader}"
        )));
    };
    let data = std::fs::read(template).map_err(|err| DriverError::System {
        msg: format!("Failed to open file '{template}'"),
        err,
    })?;
    // Our own directory is made on demand; a path the user named must exist already.
    if path.parent() == Some(nvram_dir) {
        super::config::make_dir(nvram_dir)?;
    }
    let tmp = path.with_extension("fd.new");
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        DriverError::System {
            msg: format!("Failed to create file '{}'", path.display()),
            err,
        }
    })
}
