//! A `<disk type='volume'>` resolved, at start, into the storage its pool's volume is: a path
//! of the right type, or the pool's iSCSI target reached directly (libvirt:
//! virDomainStorageSourceTranslateSourcePool).

use crate::domain::DomainError;
use crate::domain::devices::{Disk, Host};
use crate::domain::storage_pool::{PoolDef, PoolType, VolType};

/// A volume as the storage driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolInfo {
    pub vtype: VolType,
    pub path: String,
}

/// Whether `d` names a pool's volume that still has to be resolved.
pub fn is_volume(d: &Disk) -> bool {
    d.dtype.as_deref() == Some("volume") && d.source.as_ref().is_some_and(|s| s.pool.is_some())
}

/// Resolve volume disk `d` with its pool's definition and the volume's info. The disk keeps
/// what it says of itself (format, encryption, device) and takes its storage from the pool;
/// a `<auth>` of its own is dropped, as the pool's applies.
pub fn translate_volume(d: &mut Disk, pool: &PoolDef, vol: &VolInfo) -> Result<(), DomainError> {
    if !is_volume(d) {
        return Ok(());
    }
    let Some(src) = d.source.as_mut() else {
        return Ok(());
    };
    if src.mode.is_some() && pool.ptype != PoolType::Iscsi {
        return Err(DomainError::Xml(
            "XML error: disk source mode is only valid when storage pool is of iscsi type".into(),
        ));
    }
    src.file = None;
    src.dev = None;
    src.dir = None;
    src.hosts.clear();
    src.auth = None;
    d.auth = None;
    let local = |d: &mut Disk, actual: &str| {
        let src = d.source.as_mut().expect("checked above");
        match actual {
            "file" => src.file = Some(vol.path.clone()),
            "dir" => src.dir = Some(vol.path.clone()),
            _ => src.dev = Some(vol.path.clone()),
        }
        d.dtype = Some(actual.to_string());
    };
    match pool.ptype {
        PoolType::Dir
        | PoolType::Fs
        | PoolType::Netfs
        | PoolType::Logical
        | PoolType::Disk
        | PoolType::Scsi
        | PoolType::Zfs
        | PoolType::Vstorage => {
            let actual = match vol.vtype {
                VolType::File | VolType::Ploop => "file",
                VolType::Dir => "dir",
                VolType::Block => "block",
                VolType::Network | VolType::Netdir => {
                    return Err(DomainError::Xml(format!(
                        "internal error: unexpected storage volume type '{}' for storage pool type '{}'",
                        vol.vtype.as_str(),
                        pool.ptype.as_str()
                    )));
                }
            };
            local(d, actual);
        }
        PoolType::IscsiDirect => iscsi_direct(d, pool)?,
        PoolType::Iscsi => match src.mode.as_deref() {
            Some("direct") => iscsi_direct(d, pool)?,
            _ => {
                src.mode = Some("host".into());
                local(d, "block");
            }
        },
        PoolType::Mpath | PoolType::Rbd | PoolType::Sheepdog | PoolType::Gluster => {
            return Err(DomainError::Config(format!(
                "unsupported configuration: using '{}' pools for backing 'volume' disks isn't yet supported",
                pool.ptype.as_str()
            )));
        }
    }
    Ok(())
}

/// The pool's one iSCSI host and target, the LUN the volume's name ends in (libvirt:
/// virDomainDiskTranslateISCSIDirect, virDomainDiskAddISCSIPoolSourceHost).
fn iscsi_direct(d: &mut Disk, pool: &PoolDef) -> Result<(), DomainError> {
    let src = d.source.as_mut().expect("a volume disk has a source");
    if let Some(a) = &pool.auth {
        let mut a = a.clone();
        // A disk's <auth> has no type.
        a.extra.attrs.retain(|(k, _)| k != "type");
        if let Some(s) = a.secret.as_mut()
            && s.stype.is_none()
        {
            s.stype = Some("iscsi".into());
        }
        src.auth = Some(a);
    }
    let [host] = pool.hosts.as_slice() else {
        return Err(DomainError::Config(
            "unsupported configuration: Expected exactly 1 host for the storage pool".into(),
        ));
    };
    let volume = src.volume.clone().unwrap_or_default();
    let tokens: Vec<&str> = volume.split(':').collect();
    let (4, Some(device)) = (tokens.len(), pool.device_paths.first()) else {
        return Err(DomainError::Xml(format!(
            "internal error: unexpected iscsi volume name '{volume}'"
        )));
    };
    src.hosts = vec![Host {
        transport: Some("tcp".into()),
        name: Some(host.name.clone()),
        port: Some(if host.port == 0 { 3260 } else { host.port }.to_string()),
        socket: None,
    }];
    src.name = Some(format!("{device}/{}", tokens[3]));
    src.protocol = Some("iscsi".into());
    if src.initiator_iqn.is_none() {
        src.initiator_iqn = pool.initiator_iqn.clone();
    }
    d.dtype = Some("network".into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(source: &str) -> Disk {
        let xml = format!(
            "<domain type='qemu'><name>v</name><memory>65536</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
             <disk type='volume' device='disk'>{source}<target dev='vda' bus='virtio'/></disk>\
             </devices></domain>"
        );
        crate::domain::parse(&xml).unwrap().devices.disks.remove(0)
    }

    fn pool(xml: &str) -> PoolDef {
        PoolDef::parse(xml).unwrap()
    }

    const ISCSI: &str = "<pool type='iscsi'><name>p</name><source><host name='h'/>\
        <device path='iqn.t'/><auth type='chap' username='u'><secret usage='s'/></auth>\
        </source></pool>";

    fn vol(vtype: VolType, path: &str) -> VolInfo {
        VolInfo {
            vtype,
            path: path.into(),
        }
    }

    #[test]
    fn a_local_pool_gives_the_volume_path_by_type() {
        let p = pool("<pool type='disk'><name>p</name></pool>");
        for (vt, ty) in [
            (VolType::Block, "block"),
            (VolType::File, "file"),
            (VolType::Dir, "dir"),
            (VolType::Ploop, "file"),
        ] {
            let mut d = disk("<source pool='p' volume='v'/>");
            translate_volume(&mut d, &p, &vol(vt, "/x/v")).unwrap();
            assert_eq!(d.dtype.as_deref(), Some(ty));
            let s = d.source.unwrap();
            assert_eq!(s.file.or(s.dev).or(s.dir).as_deref(), Some("/x/v"));
        }
        let mut d = disk("<source pool='p' volume='v'/>");
        assert_eq!(
            translate_volume(&mut d, &p, &vol(VolType::Network, "/x"))
                .unwrap_err()
                .to_string(),
            "internal error: unexpected storage volume type 'network' for storage pool type 'disk'"
        );
    }

    #[test]
    fn iscsi_host_mode_is_a_block_device() {
        let mut d = disk("<source pool='p' volume='unit:0:0:1'/>");
        translate_volume(&mut d, &pool(ISCSI), &vol(VolType::Block, "/dev/sdx")).unwrap();
        assert_eq!(d.dtype.as_deref(), Some("block"));
        let s = d.source.unwrap();
        assert_eq!(s.dev.as_deref(), Some("/dev/sdx"));
        assert_eq!(s.mode.as_deref(), Some("host"));
    }

    #[test]
    fn iscsi_direct_mode_reaches_the_target() {
        let mut d = disk(
            "<auth username='mine'><secret type='iscsi' usage='m'/></auth>\
             <source pool='p' volume='unit:0:0:3' mode='direct'/>",
        );
        translate_volume(&mut d, &pool(ISCSI), &vol(VolType::Block, "/dev/sdx")).unwrap();
        assert_eq!(d.dtype.as_deref(), Some("network"));
        let s = d.source.unwrap();
        assert_eq!(s.protocol.as_deref(), Some("iscsi"));
        assert_eq!(s.name.as_deref(), Some("iqn.t/3"));
        assert_eq!(s.hosts[0].port.as_deref(), Some("3260"));
        assert_eq!(s.hosts[0].transport.as_deref(), Some("tcp"));
        let a = s.auth.unwrap();
        assert_eq!(a.username.as_deref(), Some("u"));
        assert_eq!(a.secret.unwrap().stype.as_deref(), Some("iscsi"));
        assert!(a.extra.attr("type").is_none());
    }

    #[test]
    fn refusals_have_libvirts_messages() {
        let e = |src: &str, p: &str| {
            let mut d = disk(src);
            translate_volume(&mut d, &pool(p), &vol(VolType::Block, "/d"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e(
                "<source pool='p' volume='v' mode='host'/>",
                "<pool type='dir'><name>p</name></pool>"
            ),
            "XML error: disk source mode is only valid when storage pool is of iscsi type"
        );
        assert_eq!(
            e(
                "<source pool='p' volume='v'/>",
                "<pool type='rbd'><name>p</name></pool>"
            ),
            "unsupported configuration: using 'rbd' pools for backing 'volume' disks isn't yet supported"
        );
        assert_eq!(
            e("<source pool='p' volume='lun1' mode='direct'/>", ISCSI),
            "internal error: unexpected iscsi volume name 'lun1'"
        );
        assert_eq!(
            e(
                "<source pool='p' volume='unit:0:0:1' mode='direct'/>",
                "<pool type='iscsi'><name>p</name><source><device path='t'/></source></pool>"
            ),
            "unsupported configuration: Expected exactly 1 host for the storage pool"
        );
    }
}
