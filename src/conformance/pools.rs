//! The storage driver of libvirt's `qemuxml2argvtest`: pools are the definitions in
//! `tests/storagepoolxml2xmlout/<pool>.xml`, and a volume named `TYPE+NAME` (plain `NAME`:
//! a block volume) is of that type at `/some/TYPE/device/NAME` (CONFORMANCE §2.5).

use std::path::{Path, PathBuf};

use crate::domain::DomainDef;
use crate::domain::DomainError;
use crate::domain::prepare::volume::{VolInfo, is_volume, translate_volume};
use crate::domain::storage_pool::{PoolDef, VolType};

/// The harness's storage pool definitions under the libvirt test data `root`.
fn pool_file(root: &Path, pool: &str) -> PathBuf {
    root.join("tests/storagepoolxml2xmlout")
        .join(format!("{pool}.xml"))
}

/// The volume `name` of the harness's storage driver.
fn volume(name: &str) -> Result<VolInfo, DomainError> {
    if name == "nonexistent" {
        return Err(DomainError::Xml(format!(
            "Storage volume not found: no storage vol with matching name '{name}'"
        )));
    }
    let (key, vol) = name.split_once('+').unwrap_or(("block", name));
    let vtype = VolType::parse(key)
        .ok_or_else(|| DomainError::Xml(format!("internal error: Invalid volume type '{key}'")))?;
    Ok(VolInfo {
        vtype,
        path: format!("/some/{key}/device/{vol}"),
    })
}

/// Resolve every volume disk of `def` as libvirt's test does at its pretend start.
pub fn translate_volumes(def: &mut DomainDef, root: &Path) -> Result<(), DomainError> {
    for d in def.devices.disks.iter_mut().filter(|d| is_volume(d)) {
        let src = d.source.as_ref().expect("a volume disk has a source");
        let pool_name = src.pool.clone().unwrap_or_default();
        let file = pool_file(root, &pool_name);
        let xml = std::fs::read_to_string(&file).map_err(|_| {
            DomainError::Xml(format!(
                "Storage pool not found: no storage pool with matching name '{pool_name}'"
            ))
        })?;
        let pool = PoolDef::parse(&xml)?;
        let vol = volume(src.volume.as_deref().unwrap_or_default())?;
        translate_volume(d, &pool, &vol)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_give_type_and_path() {
        let v = volume("dir+vol1").unwrap();
        assert_eq!(v.vtype, VolType::Dir);
        assert_eq!(v.path, "/some/dir/device/vol1");
        let v = volume("unit:0:0:1").unwrap();
        assert_eq!(v.vtype, VolType::Block);
        assert_eq!(v.path, "/some/block/device/unit:0:0:1");
        assert_eq!(
            volume("odd+x").unwrap_err().to_string(),
            "internal error: Invalid volume type 'odd'"
        );
        assert_eq!(
            volume("nonexistent").unwrap_err().to_string(),
            "Storage volume not found: no storage vol with matching name 'nonexistent'"
        );
    }
}
