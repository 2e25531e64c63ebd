//! Which device of a definition a detach names, for the kinds beyond disks and interfaces,
//! with libvirt's refusals when there is none (libvirt: virDomainControllerFind,
//! virDomainRNGFind, virDomainWatchdogDefFind, virDomainChrFind, virDomainFSDefFind).

use crate::domain::DomainDef;
use crate::domain::devices::{Chardev, Controller, Filesystem, Rng, Watchdog};
use crate::driver::DriverError;

/// A device the caller named by its alias matches only that alias.
fn alias_matches(want: &crate::domain::DeviceInfo, have: &crate::domain::DeviceInfo) -> bool {
    want.alias.is_none() || want.alias == have.alias
}

/// The controller of `want`'s type and index.
pub(super) fn controller(def: &DomainDef, want: &Controller) -> Result<usize, DriverError> {
    let idx = want.index.unwrap_or(0);
    def.devices
        .controllers
        .iter()
        .position(|c| c.ctype == want.ctype && c.index.unwrap_or(0) == idx)
        .ok_or_else(|| {
            // libvirt: qemuDomainDetachPrepController
            DriverError::DeviceMissing(format!("controller {}:{idx} not found", want.ctype))
        })
}

/// The rng with `want`'s model and backend.
pub(super) fn rng(def: &DomainDef, want: &Rng) -> Result<usize, DriverError> {
    let model = |r: &Rng| r.model.clone().unwrap_or_else(|| "virtio".into());
    let backend = |r: &Rng| r.backend_model.clone().unwrap_or_else(|| "random".into());
    def.devices
        .rngs
        .iter()
        .position(|r| {
            model(r) == model(want)
                && backend(r) == backend(want)
                && (want.backend_path.is_none() || want.backend_path == r.backend_path)
                && alias_matches(&want.info, &r.info)
        })
        .ok_or_else(|| {
            // libvirt: qemuDomainDetachPrepRNG names the model through the backend
            // type's names, so a virtio rng is reported as 'random'.
            let shown = match model(want).as_str() {
                "virtio" => "random",
                "virtio-transitional" => "egd",
                "virtio-non-transitional" => "builtin",
                _ => "",
            };
            DriverError::DeviceMissing(format!(
                "model '{shown}' RNG device not present in domain configuration"
            ))
        })
}

/// The watchdog of `want`'s model.
pub(super) fn watchdog(def: &DomainDef, want: &Watchdog) -> Result<usize, DriverError> {
    let model = |w: &Watchdog| w.model.clone().unwrap_or_else(|| "i6300esb".into());
    def.devices
        .watchdogs
        .iter()
        .position(|w| model(w) == model(want) && alias_matches(&want.info, &w.info))
        .ok_or_else(|| {
            // libvirt: qemuDomainDetachPrepWatchdog
            DriverError::OperationInvalid("no matching watchdog was found".into())
        })
}

/// The channel with `want`'s target (type and name) and, when given, source path.
pub(super) fn channel(def: &DomainDef, want: &Chardev) -> Result<usize, DriverError> {
    let ttype = |c: &Chardev| {
        c.target
            .as_ref()
            .and_then(|t| t.ttype.clone())
            .unwrap_or_else(|| "virtio".into())
    };
    let name = |c: &Chardev| c.target.as_ref().and_then(|t| t.name.clone());
    let path = |c: &Chardev| c.sources.first().and_then(|s| s.path.clone());
    def.devices
        .channels
        .iter()
        .position(|c| {
            ttype(c) == ttype(want)
                && name(c) == name(want)
                && (path(want).is_none() || path(want) == path(c))
                && alias_matches(&want.info, &c.info)
        })
        .ok_or_else(|| {
            // libvirt: qemuDomainDetachDeviceChr
            DriverError::DeviceMissing(
                "chr type 'channel' device not present in domain configuration".into(),
            )
        })
}

/// The filesystem exported at `want`'s target.
pub(super) fn filesystem(def: &DomainDef, want: &Filesystem) -> Result<usize, DriverError> {
    def.devices
        .filesystems
        .iter()
        .position(|f| f.target_dir == want.target_dir)
        .ok_or_else(|| {
            // libvirt: qemuDomainDetachPrepFS
            DriverError::DeviceMissing("matching filesystem not found".into())
        })
}
