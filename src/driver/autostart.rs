//! A domain's autostart flag (libvirt: qemuDomainSetAutostart, qemuDomainGetAutostart).
//! As in libvirt the flag is a symlink CONFIG/autostart/NAME.xml to the domain's config.
//! Nothing here starts guests when the host boots (there is no daemon to do it): the flag
//! is recorded, shown by `dominfo` and filtered by `list --autostart`.

use std::path::{Path, PathBuf};

use nix::libc::{ENOENT, ENOTDIR};

use super::DriverError;
use super::config::{ConfigLock, config_path};
use super::domain::Domain;

fn autostart_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("autostart")
}

/// Where the autostart link of domain `name` lives (libvirt: virDomainConfigFile on
/// cfg->autostartDir).
fn link_path(config_dir: &Path, name: &str) -> Result<PathBuf, DriverError> {
    config_path(&autostart_dir(config_dir), name)
}

/// Remove the autostart link of `name` if there is one (libvirt: virDomainDeleteConfig's
/// unlink of the autostart link): an undefined domain defined again starts unmarked.
pub(crate) fn forget(config_dir: &Path, name: &str) -> Result<(), DriverError> {
    unlink(config_dir, name, "Failed to delete autostart link")
}

/// Remove the link, `what '{link}'` naming a failure; no link is no failure.
fn unlink(config_dir: &Path, name: &str, what: &str) -> Result<(), DriverError> {
    let link = link_path(config_dir, name)?;
    match std::fs::remove_file(&link) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(ENOENT | ENOTDIR)) => Ok(()),
        Err(err) => Err(DriverError::System {
            msg: format!("{what} '{}'", link.display()),
            err,
        }),
    }
}

/// Move the autostart link of a renamed domain (libvirt: qemuDomainRenameCallback).
pub(crate) fn rename(config_dir: &Path, old: &str, new: &str) -> Result<(), DriverError> {
    let old_link = link_path(config_dir, old)?;
    if std::fs::symlink_metadata(&old_link).is_err() {
        return Ok(());
    }
    make_link(config_dir, new)?;
    forget(config_dir, old)
}

fn make_link(config_dir: &Path, name: &str) -> Result<(), DriverError> {
    let dir = autostart_dir(config_dir);
    std::fs::create_dir_all(&dir).map_err(|err| DriverError::System {
        msg: format!("cannot create autostart directory {}", dir.display()),
        err,
    })?;
    let (config, link) = (config_path(config_dir, name)?, link_path(config_dir, name)?);
    std::os::unix::fs::symlink(&config, &link).map_err(|err| DriverError::System {
        msg: format!(
            "Failed to create symlink '{}' to '{}'",
            link.display(),
            config.display()
        ),
        err,
    })
}

impl Domain<'_> {
    /// Whether the domain is marked to start at host boot (`virDomainGetAutostart`). Like
    /// libvirt's loader, the mark counts only while the link points at the domain's config.
    pub fn autostart(&self) -> Result<bool, DriverError> {
        if !self.is_persistent()? {
            return Ok(false);
        }
        let dir = &self.connect().dirs().config;
        let config = config_path(dir, self.name())?;
        Ok(std::fs::read_link(link_path(dir, self.name())?).is_ok_and(|t| t == config))
    }

    /// Mark or unmark the domain to start at host boot (`virDomainSetAutostart`).
    pub fn set_autostart(&self, autostart: bool) -> Result<(), DriverError> {
        let dir = &self.connect().dirs().config;
        let _lock = ConfigLock::acquire(dir)?;
        if !self.is_persistent()? {
            return Err(DriverError::OperationInvalid(
                "cannot set autostart for transient domain".into(),
            ));
        }
        if self.autostart()? == autostart {
            return Ok(());
        }
        // A stale link (to a config under another path) gives way in both directions.
        unlink(dir, self.name(), "Failed to delete symlink")?;
        if autostart {
            make_link(dir, self.name())?;
        }
        Ok(())
    }
}
