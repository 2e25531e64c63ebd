//! Save and restore (libvirt: qemuDomainSaveFlags, qemuDomainRestoreFlags,
//! qemuDomainSaveImageGetXMLDesc, qemuDomainSaveImageDefineXML): the guest's memory and
//! device state go through QEMU's migration into a file that begins with the domain XML
//! ([`super::saveimage`]); restoring starts QEMU with `-incoming defer` and loads it.

use std::path::Path;

use super::saveimage;
use super::{Connect, DriverError};
use crate::domain::{self, FormatFlags};
use crate::driver::domain::Domain;

/// Whether the guest runs after `restore` (`virsh save/restore --running|--paused`); the
/// default is how it was when saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestoreState {
    #[default]
    AsSaved,
    Running,
    Paused,
}

impl Domain<'_> {
    /// Save the running guest to `path` and stop it (`virsh save`); it is then `shut off
    /// (saved)`, and a transient domain is gone. `state` is what `restore` does by default.
    /// A failed save removes the file and leaves the guest as it was.
    pub fn save(&self, path: &Path, state: RestoreState) -> Result<(), DriverError> {
        self.save_with(path, state, false)
    }

    /// [`Domain::save`]; with `ignore_shared`, the image holds no copy of RAM the guest has
    /// in a shared file (a fleet template's guest): only that file, kept as it is, restores
    /// it (see [`Connect::restore_def`]).
    pub(crate) fn save_with(
        &self,
        path: &Path,
        state: RestoreState,
        ignore_shared: bool,
    ) -> Result<(), DriverError> {
        let (mut guest, _) = self.guest()?;
        let live = domain::parse(&guest.status().xml)?;
        // libvirt writes the definition as it would migrate it: inactive, secrets kept out.
        let xml = live.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        });
        let was_running = match state {
            RestoreState::AsSaved => !guest.status().paused,
            RestoreState::Running => true,
            RestoreState::Paused => false,
        };
        saveimage::create(path, &xml, was_running)?;
        let res = guest
            .save_with(path, ignore_shared)
            .map_err(DriverError::Guest)
            .and_then(|_| saveimage::mark_complete(path));
        if res.is_err() {
            let _ = std::fs::remove_file(path);
        }
        res?;
        self.remove_lib_dir(&guest.status().xml);
        Ok(())
    }
}

impl Domain<'_> {
    /// Where the domain's managed save image lives (libvirt: qemuDomainManagedSavePath).
    fn managed_save_path(&self) -> std::path::PathBuf {
        self.conn
            .dirs()
            .lib
            .join("save")
            .join(format!("{}.save", self.name()))
    }

    /// Save the running guest to its managed save image and stop it (`virsh managedsave`);
    /// the next [`Domain::create`] restores it.
    pub fn managed_save(&self, state: RestoreState) -> Result<(), DriverError> {
        if !self.is_persistent()? {
            return Err(DriverError::OperationInvalid(
                "cannot do managed save for transient domain".into(),
            ));
        }
        let path = self.managed_save_path();
        if let Some(dir) = path.parent() {
            super::config::make_dir(dir)?;
        }
        self.save(&path, state)
    }

    /// Whether a managed save image waits for the next start.
    pub fn has_managed_save_image(&self) -> Result<bool, DriverError> {
        Ok(self.managed_save_path().exists())
    }

    /// Drop the managed save image (`virsh managedsave-remove`); the next start boots.
    pub fn managed_save_remove(&self) -> Result<(), DriverError> {
        match std::fs::remove_file(self.managed_save_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DriverError::System {
                msg: format!(
                    "Failed to remove managed save file '{}'",
                    self.managed_save_path().display()
                ),
                err: e,
            }),
        }
    }

    /// Start from the managed save image when there is one (libvirt:
    /// qemuDomainObjStart's managed save branch): the image goes once the guest runs.
    pub(crate) fn start_managed_save(&self, paused: bool) -> Result<bool, DriverError> {
        let path = self.managed_save_path();
        if !path.exists() {
            return Ok(false);
        }
        let img = saveimage::read(&path)?;
        let def = domain::parse_unprepared(&img.xml)?;
        let incoming = super::process::Incoming::new(path.clone(), img.stream_offset, false);
        self.start_def(def, paused || !img.was_running, Some(incoming), None)?;
        self.managed_save_remove()?;
        Ok(true)
    }
}

impl Connect {
    /// Start the guest saved in `path` where it was saved (`virsh restore`): `running
    /// (restored)`, or paused as `state` asks. A domain of the same name and UUID that is
    /// defined runs with the image's definition; otherwise the domain is transient.
    pub fn restore(&self, path: &Path, state: RestoreState) -> Result<Domain<'_>, DriverError> {
        let img = saveimage::read(path)?;
        let def = domain::parse_unprepared(&img.xml)?;
        self.restore_def(path, &img, def, state, None)
    }

    /// [`Connect::restore`] of image `img` (read from `path`) as definition `def` instead of
    /// the image's own (as libvirt's `dxml` argument of virDomainRestoreFlags does). The
    /// caller keeps QEMU's device configuration compatible with the stream: only host-side
    /// identity (name, UUID, MACs, file paths) may differ. Fleet clones start this way.
    /// `ram`: the image was saved without the guest's RAM ([`Domain::save_with`]), which is
    /// in that file: the guest maps it privately (copy-on-write, the file stays as it is)
    /// and QEMU loads only the device state.
    pub(crate) fn restore_def(
        &self,
        path: &Path,
        img: &saveimage::SaveImage,
        def: domain::DomainDef,
        state: RestoreState,
        ram: Option<&Path>,
    ) -> Result<Domain<'_>, DriverError> {
        let paused = match state {
            RestoreState::AsSaved => !img.was_running,
            RestoreState::Running => false,
            RestoreState::Paused => true,
        };
        let incoming =
            super::process::Incoming::new(path.to_path_buf(), img.stream_offset, ram.is_some());
        let ram = ram.map(|p| crate::xml2argv::RamFile {
            path: p.display().to_string(),
            shared: false,
        });
        self.create_domain_def(def, paused, Some(incoming), ram)
    }

    /// The domain XML of the save image at `path` (`virsh save-image-dumpxml`).
    pub fn save_image_xml(&self, path: &Path) -> Result<String, DriverError> {
        Ok(saveimage::read(path)?.xml)
    }

    /// Replace the domain XML of the save image at `path` (`virsh save-image-define`): the
    /// new one must describe the same guest (name, and libvirt's ABI stability rules,
    /// [`super::save_abi`]). `state` other than `AsSaved` rewrites whether `restore` resumes.
    pub fn save_image_define_xml(
        &self,
        path: &Path,
        xml: &str,
        state: RestoreState,
    ) -> Result<(), DriverError> {
        define_image_xml(path, xml, state)
    }
}

/// libvirt: qemuDomainSaveImageDefineXML, qemuSaveImageUpdateDef.
fn define_image_xml(path: &Path, xml: &str, state: RestoreState) -> Result<(), DriverError> {
    let old = domain::parse_unprepared(&saveimage::read(path)?.xml)?;
    let new = domain::parse_unprepared(xml)?;
    if old.name != new.name || old.uuid != new.uuid {
        return Err(DriverError::OperationFailed(format!(
            "target domain name '{}' does not match source '{}'",
            new.name, old.name
        )));
    }
    super::save_abi::check(&old, &new)?;
    saveimage::replace_xml(path, xml)?;
    match state {
        RestoreState::AsSaved => Ok(()),
        RestoreState::Running => saveimage::set_running(path, true),
        RestoreState::Paused => saveimage::set_running(path, false),
    }
}

impl Domain<'_> {
    /// The managed save image's path, refused with libvirt's message when there is none.
    fn existing_managed_save(&self) -> Result<std::path::PathBuf, DriverError> {
        let path = self.managed_save_path();
        if !path.exists() {
            return Err(DriverError::OperationInvalid(
                "domain does not have managed save image".into(),
            ));
        }
        Ok(path)
    }

    /// The domain XML of the managed save image (`virsh managedsave-dumpxml`); without
    /// `secure`, secrets are left out (libvirt: qemuDomainManagedSaveGetXMLDesc).
    pub fn managed_save_xml_desc(&self, secure: bool) -> Result<String, DriverError> {
        let xml = saveimage::read(&self.existing_managed_save()?)?.xml;
        if secure {
            return Ok(xml);
        }
        let def = domain::parse_unprepared(&xml)?;
        Ok(def.to_xml(FormatFlags {
            inactive: true,
            secure: false,
        }))
    }

    /// Replace the managed save image's domain XML (`virsh managedsave-define`), under the
    /// rules of [`Connect::save_image_define_xml`].
    pub fn managed_save_define_xml(
        &self,
        xml: &str,
        state: RestoreState,
    ) -> Result<(), DriverError> {
        define_image_xml(&self.existing_managed_save()?, xml, state)
    }
}
