//! What libvirt's parser leaves out of a definition read as a persistent config
//! (`VIR_DOMAIN_DEF_PARSE_INACTIVE`, used by define and domxml-to-native): the state a
//! running domain's XML carries, which a new start hands out again.

use crate::domain::address::DeviceInfo;
use crate::domain::devices::{Chardev, Devices};
use crate::domain::model::DomainDef;

/// Interface names libvirt generates (libvirt: VIR_NET_GENERATED_*_PREFIX); a config keeps
/// only names the user chose.
const GENERATED_IFNAME_PREFIXES: &[&str] = &["vnet", "macvtap", "macvlan"];

/// Drop the live-only parts of `def` as libvirt's inactive parse does.
pub fn drop_live_state(def: &mut DomainDef) {
    let d = &mut def.devices;
    // libvirt: virDomainDeviceInfoParseXML keeps only user aliases (`ua-`) in a config.
    for_each_info(d, |i| {
        if i.alias.as_deref().is_some_and(|a| !a.starts_with("ua-")) {
            i.alias = None;
        }
    });
    // A pty's path is the one QEMU opened on the last start.
    let pty = |c: &mut Chardev| {
        if c.stype.as_deref() == Some("pty") {
            for s in &mut c.sources {
                s.path = None;
            }
            c.sources.retain(|s| *s != Default::default());
        }
    };
    d.serials.iter_mut().for_each(pty);
    d.parallels.iter_mut().for_each(pty);
    d.consoles.iter_mut().for_each(pty);
    d.channels.iter_mut().for_each(pty);
    for n in &mut d.interfaces {
        if n.target_dev
            .as_deref()
            .is_some_and(|t| GENERATED_IFNAME_PREFIXES.iter().any(|p| t.starts_with(p)))
        {
            n.target_dev = None;
        }
    }
    for g in &mut d.graphics {
        // An automatic port is picked at each start (libvirt: virDomainGraphicsDefParseXML*):
        // SPICE keeps neither port, VNC writes `port='-1'`.
        if g.gtype == "spice" && g.autoport.as_deref() == Some("yes") {
            g.port = None;
            g.tls_port = None;
        }
    }
}

fn for_each_info(d: &mut Devices, mut f: impl FnMut(&mut DeviceInfo)) {
    d.disks.iter_mut().for_each(|x| f(&mut x.info));
    d.controllers.iter_mut().for_each(|x| f(&mut x.info));
    d.filesystems.iter_mut().for_each(|x| f(&mut x.info));
    d.interfaces.iter_mut().for_each(|x| f(&mut x.info));
    d.smartcards.iter_mut().for_each(|x| f(&mut x.info));
    d.serials.iter_mut().for_each(|x| f(&mut x.info));
    d.parallels.iter_mut().for_each(|x| f(&mut x.info));
    d.consoles.iter_mut().for_each(|x| f(&mut x.info));
    d.channels.iter_mut().for_each(|x| f(&mut x.info));
    d.inputs.iter_mut().for_each(|x| f(&mut x.info));
    d.tpms.iter_mut().for_each(|x| f(&mut x.info));
    d.sounds.iter_mut().for_each(|x| f(&mut x.info));
    d.videos.iter_mut().for_each(|x| f(&mut x.info));
    d.hostdevs.iter_mut().for_each(|x| f(&mut x.info));
    d.redirdevs.iter_mut().for_each(|x| f(&mut x.info));
    d.hubs.iter_mut().for_each(|x| f(&mut x.info));
    d.watchdogs.iter_mut().for_each(|x| f(&mut x.info));
    d.memballoon.iter_mut().for_each(|x| f(&mut x.info));
    d.rngs.iter_mut().for_each(|x| f(&mut x.info));
    d.nvram.iter_mut().for_each(|x| f(&mut x.info));
    d.panics.iter_mut().for_each(|x| f(&mut x.info));
    d.shmems.iter_mut().for_each(|x| f(&mut x.info));
    d.memories.iter_mut().for_each(|x| f(&mut x.info));
    d.iommu.iter_mut().for_each(|x| f(&mut x.info));
    d.vsock.iter_mut().for_each(|x| f(&mut x.info));
    d.cryptos.iter_mut().for_each(|x| f(&mut x.info));
}
