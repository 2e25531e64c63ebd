//! Renaming a shut-off persistent domain (libvirt: qemuDomainRename,
//! virDomainObjListRename, qemuDomainRenameCallback). The config moves to the new name;
//! an explicit `<nvram>` path stays what it was, as in libvirt.

use super::DriverError;
use super::config::{self, ConfigLock, config_path, write_atomic};
use super::domain::Domain;
use super::hotplug::check_flags;
use crate::domain::FormatFlags;

impl Domain<'_> {
    /// `virDomainRename`: the domain is called `new_name` from now on.
    pub fn rename(&self, new_name: &str, flags: u32) -> Result<(), DriverError> {
        check_flags(flags, 0, "qemuDomainRename")?;
        let invalid = |m: &str| Err(DriverError::OperationInvalid(m.into()));
        if !self.is_persistent()? {
            return invalid("cannot rename a transient domain");
        }
        if self.has_managed_save_image()? {
            return invalid("domain with a managed saved state can't be renamed");
        }
        if self.is_active()? {
            return invalid("cannot rename active domain");
        }
        if self.snapshot_num(0)? > 0 {
            return invalid("cannot rename domain with snapshots");
        }
        if new_name == self.name() {
            return invalid("Can't rename domain to itself");
        }
        let conn = self.connect();
        if conn.lookup_domain_by_name(new_name).is_ok() {
            return Err(DriverError::OperationInvalid(format!(
                "domain with name '{new_name}' already exists"
            )));
        }
        let mut def = self.config_def()?;
        def.name = new_name.to_string();
        // The new name passes define's checks (characters, length) before anything moves.
        let (def, _) = conn.prepare_domain(def, super::prepare::Purpose::Define)?;
        let dir = &conn.dirs().config;
        let new_path = config_path(dir, new_name)?;
        let old_path = config_path(dir, self.name())?;
        let _lock = ConfigLock::acquire(dir)?;
        if new_path.exists() {
            return Err(DriverError::OperationInvalid(format!(
                "domain with name '{new_name}' already exists"
            )));
        }
        let xml = def.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        });
        write_atomic(&new_path, xml.as_bytes())?;
        if let Err(e) = config::remove(&old_path) {
            // Never two domains with one UUID: the new file goes again.
            let _ = config::remove(&new_path);
            return Err(e);
        }
        super::autostart::rename(dir, self.name(), new_name)?;
        config::clear_shutoff_reason(&conn.dirs().run, self.name())?;
        Ok(())
    }
}
