//! One device's QEMU properties, outside a whole command line: what hotplug sends over QMP
//! (`object-add`, `blockdev-add`, `netdev_add`, `device_add`). They come from the very
//! builders the command line uses, so a device started cold and the same device hotplugged
//! get the same properties (libvirt: qemuBuildDiskDeviceProps, qemuBuildHostNetProps,
//! qemuBuildNicDevProps serve both too).

use serde_json::Value;

use super::Builder;
use crate::capabilities::qemu::QemuCaps;
use crate::domain::DomainDef;
use crate::xml2argv::{LaunchContext, Xml2ArgvError};

/// What QEMU gets for one disk.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskProps {
    /// The images of its chain, bottom first: the order `blockdev-add` needs.
    pub layers: Vec<BlockLayerProps>,
    /// `device_add`'s arguments (`-device`'s JSON).
    pub device: Value,
}

/// One image: the objects it needs first (secrets, TLS), then its storage and format nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockLayerProps {
    pub objects: Vec<Value>,
    pub storage: Value,
    pub format: Value,
}

/// What QEMU gets for one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct NetProps {
    /// `netdev_add`'s arguments (`-netdev`'s JSON).
    pub netdev: Value,
    pub device: Value,
}

/// Whether the device is in the definition QEMU starts with (`Cold`), where `<os><boot
/// dev>` hands out boot indexes, or added to a running guest (`Hot`), where only the
/// device's own `<boot order>` counts, as in libvirt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plug {
    Cold,
    Hot,
}

fn builder<'a>(
    def: &'a DomainDef,
    caps: &'a QemuCaps,
    ctx: &'a LaunchContext,
    plug: Plug,
) -> Builder<'a> {
    let mut b = Builder::new(def, caps, ctx);
    if plug == Plug::Cold {
        b.compute_boot_order();
    }
    b
}

/// The properties of disk `index` of `def` (prepared, aliases assigned), its chain's nodes
/// numbered `nodes` from the top (`libvirt-N-storage`, `libvirt-N-format`).
pub fn disk_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
    nodes: &[u32],
    plug: Plug,
) -> Result<DiskProps, Xml2ArgvError> {
    let d = def
        .devices
        .disks
        .get(index)
        .ok_or_else(|| Xml2ArgvError::Internal(format!("no disk {index}")))?;
    let cor = d.driver.as_ref().and_then(|x| x.copy_on_read.as_deref()) == Some("on");
    if cor {
        // The filter node would have to be added after the chain; nothing here sends it yet.
        return Err(Xml2ArgvError::Unsupported(
            "hotplug of a disk with copy_on_read='on' is not supported yet".into(),
        ));
    }
    if super::disk::is_vhost_user(d) {
        // Its chardev would have to be added first; nothing here sends one yet.
        return Err(Xml2ArgvError::Unsupported(
            "hotplug of a vhostuser disk is not supported yet".into(),
        ));
    }
    if plug == Plug::Hot
        && !super::disk::fd_nodes(std::slice::from_ref(d), &[nodes.to_vec()]).is_empty()
    {
        // Its descriptors would have to reach QEMU first (libvirt: `add-fd` per set); the
        // monitor's control socket carries no descriptors yet.
        return Err(Xml2ArgvError::Unsupported(
            "hotplug of a disk from a file descriptor group is not supported yet".into(),
        ));
    }
    let b = builder(def, caps, ctx, plug);
    let p = b.disk_parts(index, d, nodes)?;
    // The live attach sends storage and format nodes only; a slice node between them would
    // be lost, so such a disk is refused rather than attached whole.
    if p.layers.iter().any(|l| l.slice.is_some()) {
        return Err(Xml2ArgvError::Unsupported(format!(
            "hotplug of disk '{}' with a storage slice on a non-raw image is not supported yet",
            d.target.dev
        )));
    }
    Ok(DiskProps {
        layers: p
            .layers
            .into_iter()
            .map(|l| BlockLayerProps {
                objects: l.objects.into_iter().map(|o| o.into_value()).collect(),
                storage: l.storage.into_value(),
                format: l.format.into_value(),
            })
            .collect(),
        device: p.device.into_value(),
    })
}

/// The node numbers each disk of `def` gets at a start, top of its chain first.
pub fn cold_node_numbers(def: &DomainDef) -> Vec<Vec<u32>> {
    super::disk::node_numbers(&def.devices.disks)
}

/// How many images disk `index`'s chain has (nodes it needs), 0 for an empty drive.
pub fn disk_chain_len(def: &DomainDef, index: usize) -> usize {
    match def.devices.disks.get(index) {
        Some(d) if !super::disk::disk_source_is_empty(d) => super::disk::chain_len(d),
        _ => 0,
    }
}

/// The properties of interface `index` of `def` (prepared, aliases assigned). A TAP
/// interface's descriptors are numbered from the context's bases.
pub fn net_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
    plug: Plug,
) -> Result<NetProps, Xml2ArgvError> {
    let n = def
        .devices
        .interfaces
        .get(index)
        .ok_or_else(|| Xml2ArgvError::Internal(format!("no interface {index}")))?;
    if n.itype == "vhostuser" {
        // Its chardev would have to be added first; nothing here sends one yet.
        return Err(Xml2ArgvError::Unsupported(
            "hotplug of a vhostuser interface is not supported yet".into(),
        ));
    }
    let b = builder(def, caps, ctx, plug);
    let (mut tapfd, mut vhostfd) = (ctx.tap_fd_base, ctx.vhost_fd_base);
    let (nd, dev) = b.net_parts(index, n, &mut tapfd, &mut vhostfd, None)?;
    Ok(NetProps {
        netdev: nd.into_value(),
        device: dev.into_value(),
    })
}

/// What QEMU gets for one random number generator.
#[derive(Debug, Clone, PartialEq)]
pub struct RngProps {
    /// An `egd` backend's `chardev-add` arguments.
    pub chardev: Option<Value>,
    /// `object-add`'s arguments (`-object`'s JSON).
    pub object: Value,
    pub device: Value,
}

fn nth<'a, T>(list: &'a [T], index: usize, kind: &str) -> Result<&'a T, Xml2ArgvError> {
    list.get(index)
        .ok_or_else(|| Xml2ArgvError::Internal(format!("no {kind} {index}")))
}

/// The properties of rng `index` of `def` (prepared, aliases assigned).
pub fn rng_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
) -> Result<RngProps, Xml2ArgvError> {
    let r = nth(&def.devices.rngs, index, "rng")?;
    let b = builder(def, caps, ctx, Plug::Hot);
    let chardev = match r.backend_model.as_deref() {
        Some("egd") => {
            let id = format!("char{}", b.alias(&r.info)?);
            Some(b.chardev_backend(&id, &crate::xml2argv::rng::egd_chardev(r))?)
        }
        _ => None,
    };
    let (o, d) = b.rng_parts(r)?;
    Ok(RngProps {
        chardev,
        object: o.into_value(),
        device: d.into_value(),
    })
}

/// The device of watchdog `index` of `def` (prepared, aliases assigned).
pub fn watchdog_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
) -> Result<Value, Xml2ArgvError> {
    let w = nth(&def.devices.watchdogs, index, "watchdog")?;
    let b = builder(def, caps, ctx, Plug::Hot);
    Ok(b.watchdog_device(w)?.into_value())
}

pub use super::watchdog::watchdog_action;

/// The device of controller `index` of `def` (prepared, aliases assigned); none for a
/// controller built into the machine.
pub fn controller_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
) -> Result<Option<Value>, Xml2ArgvError> {
    let c = nth(&def.devices.controllers, index, "controller")?;
    let b = builder(def, caps, ctx, Plug::Hot);
    Ok(b.controller_device(c)?.map(|j| j.into_value()))
}

/// What QEMU gets for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelProps {
    /// `chardev-add`'s arguments: the backend `-chardev` describes on the command line.
    pub chardev: Value,
    pub device: Value,
}

/// The properties of channel `index` of `def` (prepared, aliases assigned).
pub fn channel_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
) -> Result<ChannelProps, Xml2ArgvError> {
    let c = nth(&def.devices.channels, index, "channel")?;
    let b = builder(def, caps, ctx, Plug::Hot);
    let device = b.channel_device(c)?;
    let id = format!("char{}", b.alias(&c.info)?);
    Ok(ChannelProps {
        chardev: b.chardev_backend(&id, c)?,
        device: device.into_value(),
    })
}

/// What QEMU gets for one virtiofs share.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesystemProps {
    /// `chardev-add`'s arguments: a client of virtiofsd's socket, as `-chardev` has it.
    pub chardev: Value,
    pub device: Value,
}

/// The properties of filesystem `index` of `def` (prepared, aliases assigned); only a
/// virtiofs share has a device QEMU can take while running (libvirt: qemuDomainAttachFSDevice).
pub fn filesystem_props(
    def: &DomainDef,
    caps: &QemuCaps,
    ctx: &LaunchContext,
    index: usize,
) -> Result<FilesystemProps, Xml2ArgvError> {
    let fs = nth(&def.devices.filesystems, index, "filesystem")?;
    if fs.driver.as_ref().and_then(|d| d.dtype.as_deref()) != Some("virtiofs") {
        return Err(Xml2ArgvError::Internal(format!(
            "filesystem {index} is no virtiofs share"
        )));
    }
    let b = builder(def, caps, ctx, Plug::Hot);
    let alias = b.alias(&fs.info)?;
    let (id, path) = b.virtiofs_chardev(fs, &alias);
    let chr = crate::domain::devices::Chardev {
        stype: Some("unix".into()),
        sources: vec![crate::domain::devices::ChrSource {
            mode: Some("connect".into()),
            path: Some(path),
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(FilesystemProps {
        chardev: b.chardev_backend(&id, &chr)?,
        device: b.virtiofs_device(fs, &alias).into_value(),
    })
}
