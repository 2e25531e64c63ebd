//! Devices added to and removed from the running guest (libvirt: qemuDomainAttachDeviceLive,
//! qemuDomainDetachDeviceLive). The definition is prepared as at a start (defaults, a free
//! PCI slot, the alias), the QMP sequence built from the command line's own builders, and
//! the guest's monitor runs it and keeps the live XML.

use serde_json::{Value, json};

use super::{DeviceDef, LIVE_XML, UNPLUG_WAIT_MS};
use crate::domain::DomainDef;
use crate::domain::devices::{Disk, Interface};
use crate::driver::DriverError;
use crate::driver::domain::{Domain, guest_err};
use crate::driver::monitor::proto::{QmpCall, QmpStep, Reply, Request};
use crate::driver::prepare::Purpose;
use crate::driver::process::Guest;
use crate::xml2argv::props::{self, Plug};

pub(super) fn call(command: &str, args: Value) -> QmpCall {
    QmpCall {
        command: command.into(),
        args: Some(args),
    }
}

/// One QMP command on the guest; a refusal by QEMU is libvirt's `unable to execute QEMU
/// command` (libvirt: qemuMonitorJSONCheckErrorFull).
pub(crate) fn qmp(g: &mut Guest, command: &str, args: Option<Value>) -> Result<Value, DriverError> {
    match g.qmp(command, args) {
        Ok(v) => Ok(v),
        Err(crate::driver::process::GuestError::Monitor {
            source: crate::qmp::QmpError::Command { desc, .. },
            ..
        }) => Err(DriverError::Internal(format!(
            "unable to execute QEMU command '{command}': {desc}"
        ))),
        Err(e) => Err(guest_err(e)),
    }
}

/// A step and how to take it back.
pub(super) fn step(c: QmpCall, undo: Option<QmpCall>) -> QmpStep {
    QmpStep { call: c, undo }
}

/// The running guest with its live definition.
pub(crate) struct LiveGuest {
    pub guest: Guest,
    pub def: DomainDef,
}

impl LiveGuest {
    /// Make `def`, as changed, the guest's live XML.
    pub(crate) fn save_live(&mut self) -> Result<(), DriverError> {
        self.guest
            .set_live_xml(self.def.to_xml(LIVE_XML))
            .map_err(guest_err)
    }
}

impl Domain<'_> {
    pub(crate) fn live_guest(&self) -> Result<LiveGuest, DriverError> {
        let (guest, _) = self.guest()?;
        let def = crate::domain::parse_unprepared(&guest.status().xml)?;
        Ok(LiveGuest { guest, def })
    }

    /// Run `steps` through the guest's monitor; the live XML becomes `def` once done.
    pub(super) fn run_hotplug(
        &self,
        g: &mut Guest,
        steps: Vec<QmpStep>,
        def: &DomainDef,
    ) -> Result<(), DriverError> {
        self.run_hotplug_with(g, steps, def, Vec::new())
    }

    /// [`Self::run_hotplug`] with the helper processes the device needs, which the
    /// monitor starts first.
    pub(super) fn run_hotplug_with(
        &self,
        g: &mut Guest,
        steps: Vec<QmpStep>,
        def: &DomainDef,
        helpers: Vec<crate::driver::helpers::HelperSpec>,
    ) -> Result<(), DriverError> {
        self.run_hotplug_taps(g, steps, def, helpers, Vec::new())
    }

    /// [`Self::run_hotplug_with`] with taps the monitor makes and passes first.
    pub(super) fn run_hotplug_taps(
        &self,
        g: &mut Guest,
        steps: Vec<QmpStep>,
        def: &DomainDef,
        helpers: Vec<crate::driver::helpers::HelperSpec>,
        taps: Vec<crate::driver::tap::HotTap>,
    ) -> Result<(), DriverError> {
        let req = Request::Hotplug {
            steps,
            xml: def.to_xml(LIVE_XML),
            helpers,
            taps,
        };
        g.call(&req).map(|_| ()).map_err(guest_err)
    }

    /// Unplug `alias` and wait for QEMU to let it go, up to `wait_ms`; whether it did. The
    /// backends in `cleanup` go once it did.
    pub(super) fn run_unplug(
        &self,
        g: &mut Guest,
        alias: &str,
        cleanup: Vec<QmpCall>,
        wait_ms: u64,
        strict: bool,
    ) -> Result<bool, DriverError> {
        let req = Request::Unplug {
            alias: alias.to_string(),
            cleanup,
            wait_ms,
            strict,
        };
        match g.call(&req).map_err(guest_err)? {
            Reply::Ok { value } => Ok(value["removed"].as_bool().unwrap_or(false)),
            other => Err(DriverError::Internal(format!(
                "unexpected reply from the guest monitor: {other:?}"
            ))),
        }
    }

    pub(super) fn attach_live(&self, dev: DeviceDef) -> Result<(), DriverError> {
        let mut lg = self.live_guest()?;
        check_alias_free(&lg.def, &dev)?;
        match dev {
            DeviceDef::Disk(d) => {
                let dev_kind = d.device.as_deref().unwrap_or("disk");
                if matches!(dev_kind, "cdrom" | "floppy") {
                    // An existing drive gets the medium (libvirt: qemuDomainAttachDeviceDiskLive).
                    if lg
                        .def
                        .devices
                        .disks
                        .iter()
                        .any(|x| x.target.dev == d.target.dev)
                    {
                        return self.change_medium(&mut lg, &d, false);
                    }
                    return Err(DriverError::OperationUnsupported(
                        "cdrom/floppy device hotplug isn't supported".into(),
                    ));
                }
                if lg
                    .def
                    .devices
                    .disks
                    .iter()
                    .any(|x| x.target.dev == d.target.dev)
                {
                    return Err(DriverError::OperationFailed(format!(
                        "target {} already exists",
                        d.target.dev
                    )));
                }
                self.attach_disk_live(lg, *d)
            }
            DeviceDef::Interface(n) => self.attach_net_live(lg, *n),
            DeviceDef::Controller(c) => self.attach_controller_live(lg, *c),
            DeviceDef::Rng(r) => self.attach_rng_live(lg, *r),
            DeviceDef::Watchdog(w) => self.attach_watchdog_live(lg, *w),
            DeviceDef::Channel(c) => self.attach_channel_live(lg, *c),
            DeviceDef::Hostdev(h) => Err(super::live_more::hostdev_refusal(&h)),
            DeviceDef::Filesystem(f) => self.attach_fs_live(lg, *f),
        }
    }

    /// The definition with `push` applied, prepared as a start prepares it; refuses when the
    /// device found no free slot (the post-parse would add a bridge, which cannot be
    /// hotplugged).
    pub(super) fn prepared_with(
        &self,
        live: &DomainDef,
        push: impl FnOnce(&mut DomainDef),
    ) -> Result<(DomainDef, crate::capabilities::qemu::QemuCaps), DriverError> {
        let mut cand = live.clone();
        push(&mut cand);
        let pushed = cand.devices.controllers.len();
        let (prep, caps) = self.connect().prepare_domain(cand, Purpose::Start)?;
        if prep.devices.controllers.len() > pushed {
            // libvirt: virDomainPCIAddressGetNextAddr
            return Err(DriverError::Internal("No more available PCI slots".into()));
        }
        Ok((prep, caps))
    }

    fn attach_disk_live(&self, mut lg: LiveGuest, d: Disk) -> Result<(), DriverError> {
        let bus = d.target.bus.clone();
        let dst = d.target.dev.clone();
        let (prep, caps) = self.prepared_with(&lg.def, |def| def.devices.disks.push(d))?;
        let Some(mut disk) = prep
            .devices
            .disks
            .iter()
            .find(|x| x.target.dev == dst)
            .cloned()
        else {
            return Err(DriverError::Internal(format!(
                "disk {dst} lost in preparation"
            )));
        };
        let bus = disk.target.bus.clone().or(bus).unwrap_or_default();
        if matches!(bus.as_str(), "ide" | "fdc" | "sata") {
            return Err(DriverError::OperationUnsupported(format!(
                "disk bus '{bus}' cannot be hotplugged."
            )));
        }
        if bus == "scsi" && !lg.def.devices.controllers.iter().any(|c| c.ctype == "scsi") {
            return Err(DriverError::OperationUnsupported(
                "hotplug of a SCSI disk needs a SCSI controller in the guest".into(),
            ));
        }
        if disk.info.alias.is_none() {
            let mut one = prep.clone();
            crate::domain::prepare::assign_aliases(&mut one);
            disk.info.alias = one
                .devices
                .disks
                .iter()
                .find(|x| x.target.dev == dst)
                .and_then(|x| x.info.alias.clone());
        }
        let mut next = lg.def.clone();
        next.devices.disks.push(disk);
        // A volume disk becomes its volume's path, as at start (libvirt:
        // qemuDomainPrepareDiskSource); the running disks are resolved already.
        self.connect().translate_volume_disks(&mut next)?;
        let index = next.devices.disks.len() - 1;
        let nodes = fresh_nodes(&mut lg.guest, props::disk_chain_len(&next, index))?;
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let p = props::disk_props(&next, &caps, &ctx, index, &nodes, Plug::Hot)?;
        let mut steps = layer_steps(&p.layers);
        steps.push(step(call("device_add", p.device), None));
        self.run_hotplug(&mut lg.guest, steps, &next)
    }

    fn attach_net_live(&self, mut lg: LiveGuest, n: Interface) -> Result<(), DriverError> {
        let t = n.itype.clone();
        if !matches!(
            t.as_str(),
            "user" | "server" | "client" | "mcast" | "udp" | "bridge" | "ethernet" | "network"
        ) {
            return Err(DriverError::OperationUnsupported(format!(
                "live attach of interface type '{t}' is not supported"
            )));
        }
        crate::driver::nwfilter::refuse_filterrefs(std::slice::from_ref(&n))?;
        let before = lg.def.devices.interfaces.len();
        let (prep, caps) = self.prepared_with(&lg.def, |def| def.devices.interfaces.push(n))?;
        let Some(mut net) = prep.devices.interfaces.get(before).cloned() else {
            return Err(DriverError::Internal(
                "interface lost in preparation".into(),
            ));
        };
        if net.info.alias.is_none() {
            net.info.alias = Some(next_net_alias(&lg.def));
        }
        let mut next = lg.def.clone();
        next.devices.interfaces.push(net);
        let index = next.devices.interfaces.len() - 1;
        self.connect()
            .connect_network_interfaces(&mut next, Some(index))?;
        let ctx = self.connect().launch_context(&next, next.id.unwrap_or(-1));
        let mut p = props::net_props(&next, &caps, &ctx, index, Plug::Hot)?;
        let id = p.netdev["id"].clone();
        let helpers = super::live_helpers::net_helpers(self, &next, index)?;
        let alias = next.devices.interfaces[index]
            .info
            .alias
            .clone()
            .unwrap_or_default();
        let taps: Vec<_> = crate::driver::tap::plan(&next, &ctx)?
            .into_iter()
            .filter(|t| t.index == index)
            .map(|t| crate::driver::tap::HotTap::new(t, &alias, &mut p.netdev))
            .collect();
        let steps = vec![
            step(
                call("netdev_add", p.netdev),
                Some(call("netdev_del", json!({ "id": id }))),
            ),
            step(call("device_add", p.device), None),
        ];
        self.run_hotplug_taps(&mut lg.guest, steps, &next, helpers, taps)
    }

    pub(super) fn detach_live(&self, dev: &DeviceDef) -> Result<(), DriverError> {
        let mut lg = self.live_guest()?;
        let alias = match dev {
            DeviceDef::Disk(d) => {
                let Some(x) = lg
                    .def
                    .devices
                    .disks
                    .iter()
                    .find(|x| x.target.dev == d.target.dev)
                else {
                    return Err(DriverError::DeviceMissing(format!(
                        "disk {} not found",
                        d.target.dev
                    )));
                };
                check_disk_unpluggable(x)?;
                x.info.alias.clone()
            }
            DeviceDef::Interface(n) => {
                let i = super::config::find_net(&lg.def.devices.interfaces, n)?;
                lg.def.devices.interfaces[i].info.alias.clone()
            }
            other => super::live_more::detach_target(&lg.def, other)?,
        };
        let Some(alias) = alias else {
            return Err(DriverError::OperationFailed(
                "device has no alias: it cannot be unplugged".into(),
            ));
        };
        let cleanup = backend_cleanup(&mut lg.guest, &lg.def, &alias)?;
        self.run_unplug(&mut lg.guest, &alias, cleanup, UNPLUG_WAIT_MS, false)?;
        Ok(())
    }

    /// Ask QEMU to unplug the device named `alias`, waiting `wait_ms` at most.
    pub(super) fn detach_live_alias(&self, alias: &str, wait_ms: u64) -> Result<(), DriverError> {
        let mut lg = self.live_guest()?;
        let d = &lg.def.devices;
        if let Some(x) = d
            .disks
            .iter()
            .find(|x| x.info.alias.as_deref() == Some(alias))
        {
            check_disk_unpluggable(x)?;
        } else if !d
            .interfaces
            .iter()
            .any(|x| x.info.alias.as_deref() == Some(alias))
            && !super::live_more::has_alias(&lg.def, alias)
        {
            return Err(DriverError::DeviceMissing(format!(
                "no device found with alias {alias}"
            )));
        }
        let cleanup = backend_cleanup(&mut lg.guest, &lg.def, alias)?;
        self.run_unplug(&mut lg.guest, alias, cleanup, wait_ms, false)?;
        Ok(())
    }
}

/// libvirt: qemuDomainDetachPrepDisk's refusals.
fn check_disk_unpluggable(d: &Disk) -> Result<(), DriverError> {
    let dev = d.device.as_deref().unwrap_or("disk");
    if matches!(dev, "cdrom" | "floppy") {
        return Err(DriverError::OperationUnsupported(format!(
            "disk device type '{dev}' cannot be detached"
        )));
    }
    if matches!(d.target.bus.as_deref(), Some("ide" | "fdc" | "sata")) {
        return Err(DriverError::OperationFailed(
            "This type of disk cannot be hot unplugged".into(),
        ));
    }
    Ok(())
}

/// A user alias must be unique in the domain (libvirt: virDomainDeviceValidateAliasForHotplug).
fn check_alias_free(def: &DomainDef, dev: &DeviceDef) -> Result<(), DriverError> {
    if let Some(a) = dev.info().alias.as_deref()
        && def.devices.infos().any(|i| i.alias.as_deref() == Some(a))
    {
        return Err(DriverError::Xml(crate::domain::DomainError::Xml(format!(
            "XML error: non unique alias detected: {a}"
        ))));
    }
    Ok(())
}

/// `net<N>` after the highest in use (libvirt: qemuAssignDeviceNetAlias with no index).
fn next_net_alias(def: &DomainDef) -> String {
    next_alias(def, "net")
}

/// `<prefix><N>` after the highest `<prefix><number>` alias in use (libvirt's
/// qemuAssignDevice*Alias with no index).
pub(super) fn next_alias(def: &DomainDef, prefix: &str) -> String {
    let next = def
        .devices
        .infos()
        .filter_map(|i| {
            i.alias
                .as_deref()?
                .strip_prefix(prefix)?
                .parse::<u32>()
                .ok()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0);
    format!("{prefix}{next}")
}

/// Steps adding a disk's chain, bottom first, each undone by its removal.
pub(super) fn layer_steps(layers: &[props::BlockLayerProps]) -> Vec<QmpStep> {
    let mut steps = Vec::new();
    for l in layers {
        for o in &l.objects {
            let id = o["id"].clone();
            steps.push(step(
                call("object-add", o.clone()),
                Some(call("object-del", json!({ "id": id }))),
            ));
        }
        for node in [&l.storage, &l.format] {
            let name = node["node-name"].clone();
            steps.push(step(
                call("blockdev-add", node.clone()),
                Some(call("blockdev-del", json!({ "node-name": name }))),
            ));
        }
    }
    steps
}

/// `n` node numbers no node of the guest uses, the top of the chain first (libvirt hands
/// out `libvirt-N-*` from a counter that only grows).
pub(super) fn fresh_nodes(g: &mut Guest, n: usize) -> Result<Vec<u32>, DriverError> {
    let nodes = qmp(g, "query-named-block-nodes", Some(json!({ "flat": true })))?;
    let max = nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| node_number(x["node-name"].as_str()?))
        .max()
        .unwrap_or(0);
    Ok((1..=n as u32).map(|k| max + k).collect())
}

/// `N` of `libvirt-N-storage` / `libvirt-N-format`.
pub(super) fn node_number(name: &str) -> Option<u32> {
    name.strip_prefix("libvirt-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The QMP calls that free what backs device `alias` once QEMU removed it: a disk's nodes
/// (and their objects), an interface's netdev (libvirt: qemuDomainRemoveDiskDevice,
/// qemuDomainRemoveNetDevice).
fn backend_cleanup(
    g: &mut Guest,
    def: &DomainDef,
    alias: &str,
) -> Result<Vec<QmpCall>, DriverError> {
    if def
        .devices
        .interfaces
        .iter()
        .any(|x| x.info.alias.as_deref() == Some(alias))
    {
        return Ok(vec![call(
            "netdev_del",
            json!({ "id": format!("host{alias}") }),
        )]);
    }
    if let Some(calls) = super::live_more::backend_cleanup(def, alias) {
        return Ok(calls);
    }
    let Some(top) = medium_node(g, alias)? else {
        return Ok(Vec::new());
    };
    let chain = def
        .devices
        .disks
        .iter()
        .position(|x| x.info.alias.as_deref() == Some(alias))
        .map_or(1, |i| props::disk_chain_len(def, i).max(1));
    Ok(chain_cleanup(top, chain))
}

/// Removal of a chain whose top is node `top`, `len` images deep, top first.
pub(super) fn chain_cleanup(top: u32, len: usize) -> Vec<QmpCall> {
    let mut out = Vec::new();
    for k in 0..len as u32 {
        for part in ["format", "storage"] {
            out.push(call(
                "blockdev-del",
                json!({ "node-name": format!("libvirt-{}-{part}", top + k) }),
            ));
        }
    }
    out
}

/// The number of the format node device `alias` reads, from QEMU (`query-block`).
pub(super) fn medium_node(g: &mut Guest, alias: &str) -> Result<Option<u32>, DriverError> {
    let blocks = qmp(g, "query-block", None)?;
    let entry = blocks.as_array().into_iter().flatten().find(|b| {
        let q = b["qdev"].as_str().unwrap_or("");
        q == alias || q.ends_with(&format!("/{alias}")) || q.contains(&format!("/{alias}/"))
    });
    Ok(entry
        .and_then(|b| b["inserted"]["node-name"].as_str())
        .and_then(node_number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_and_their_removal() {
        assert_eq!(node_number("libvirt-12-format"), Some(12));
        assert_eq!(node_number("libvirt-3-storage"), Some(3));
        assert_eq!(node_number("#block123"), None);
        let c = chain_cleanup(4, 2);
        let names: Vec<&str> = c
            .iter()
            .map(|x| x.args.as_ref().unwrap()["node-name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "libvirt-4-format",
                "libvirt-4-storage",
                "libvirt-5-format",
                "libvirt-5-storage"
            ]
        );
    }

    #[test]
    fn net_aliases_follow_the_highest() {
        let def = crate::domain::parse(
            "<domain type='qemu'><name>t</name><memory>65536</memory><os><type>hvm</type></os>\
             <devices><interface type='user'><alias name='net3'/></interface>\
             <interface type='user'><alias name='ua-x'/></interface></devices></domain>",
        )
        .unwrap();
        assert_eq!(next_net_alias(&def), "net4");
    }
}
