//! A running network's ports (libvirt: networkPortCreateXML, networkListAllPorts,
//! networkPortLookupByUUID, networkPortDelete, and virNetworkObj's port records).
//!
//! Two kinds, listed together:
//! - ports made with `net-port-create`: one file each, `RUN/networks/NAME.ports/UUID.xml`,
//!   gone with the network's run files when it stops (libvirt: virNetworkObjDeleteAllPorts);
//! - the ports of the running guests' `<interface type='network'>` on the network, read from
//!   their live definitions (the `portid` their start gave them, see
//!   [`Connect::connect_network_interfaces`]): a guest's port lasts exactly as long as its
//!   interface, with nothing to clean up when the guest stops.

use std::path::PathBuf;

use super::config::{self, ConfigLock};
use super::domain::ListFlags;
use super::network::Network;
use super::{Connect, DriverError};
use crate::domain::FormatFlags;
use crate::network::NetworkDef;
use crate::network::port::{Plug, PortDef};

fn not_active(name: &str) -> DriverError {
    DriverError::OperationInvalid(format!("network '{name}' is not active"))
}

fn no_port(uuid: &str) -> DriverError {
    DriverError::NoNetworkPort(format!("Network port with UUID {uuid} does not exist"))
}

/// The plug a port of `def` gets (libvirt: networkAllocatePort for the bridge-based modes):
/// the network's own bridge, or the host bridge a `bridge` network names.
fn plug_for(def: &NetworkDef) -> Result<Plug, DriverError> {
    let bridge = def.bridge.clone().ok_or_else(|| {
        DriverError::Internal(format!(
            "network '{}' does not have a bridge name.",
            def.name
        ))
    })?;
    Ok(if def.makes_bridge() {
        Plug::Network {
            bridge,
            mac_table_manager: None,
        }
    } else {
        Plug::Bridge {
            bridge,
            mac_table_manager: None,
        }
    })
}

/// A port and who holds it.
struct Held {
    port: PortDef,
    /// The running guest whose interface it is; None for a port made by `net-port-create`.
    guest: Option<String>,
}

impl Network<'_> {
    fn ports_dir(&self) -> Result<PathBuf, DriverError> {
        config::validate_name(self.name())?;
        Ok(self
            .connect()
            .networks_run_dir()
            .join(format!("{}.ports", self.name())))
    }

    fn live_def(&self) -> Result<&NetworkDef, DriverError> {
        self.live().ok_or_else(|| not_active(self.name()))
    }

    /// Every port, the made ones then the guests', each kind in UUID order.
    fn held_ports(&self) -> Result<Vec<Held>, DriverError> {
        let def = self.live_def()?;
        let mut out = Vec::new();
        for path in config::xml_files(&self.ports_dir()?)? {
            if let Some(x) = config::read_small(&path)? {
                out.push(Held {
                    port: PortDef::parse(&x)?,
                    guest: None,
                });
            }
        }
        let conn = self.connect();
        for dom in conn.list_all_domains(ListFlags::ACTIVE)? {
            let Ok(xml) = dom.xml_desc(FormatFlags {
                inactive: false,
                secure: false,
            }) else {
                continue;
            };
            let Ok(d) = crate::domain::parse(&xml) else {
                continue;
            };
            for n in &d.devices.interfaces {
                let Some(src) = n.source.as_ref().filter(|_| n.itype == "network") else {
                    continue;
                };
                let (Some(net), Some(portid)) = (&src.network, &src.portid) else {
                    continue;
                };
                if net != self.name() {
                    continue;
                }
                out.push(Held {
                    port: PortDef {
                        uuid: portid.to_lowercase(),
                        owner_name: d.name.clone(),
                        owner_uuid: d.uuid.hyphenated().to_string(),
                        group: None,
                        mac: n.mac.clone().unwrap_or_default().to_lowercase(),
                        virtualport: None,
                        bandwidth: None,
                        vlan: None,
                        port: None,
                        trust_guest_rx_filters: None,
                        plug: plug_for(def)?,
                    },
                    guest: Some(d.name.clone()),
                });
            }
        }
        out.sort_by(|a, b| a.port.uuid.cmp(&b.port.uuid));
        Ok(out)
    }

    /// Every port of the running network (`virNetworkListAllPorts`), in UUID order.
    pub fn list_all_ports(&self) -> Result<Vec<PortDef>, DriverError> {
        Ok(self.held_ports()?.into_iter().map(|h| h.port).collect())
    }

    /// The port with this UUID (`virNetworkPortLookupByUUIDString`).
    pub fn lookup_port_by_uuid_string(&self, uuid: &str) -> Result<PortDef, DriverError> {
        let u = parse_port_uuid(uuid)?;
        self.held_ports()?
            .into_iter()
            .map(|h| h.port)
            .find(|p| p.uuid == u)
            .ok_or_else(|| no_port(&u))
    }

    /// Add a port from its XML (`virNetworkPortCreateXML`): without `reclaim` an unplugged
    /// port that the network plugs (into its bridge); with it, a plugged one taken as it is.
    pub fn create_port_xml(&self, xml: &str, reclaim: bool) -> Result<PortDef, DriverError> {
        let mut port = PortDef::parse(xml)?;
        let def = self.live_def()?;
        match (&port.plug, reclaim) {
            (Plug::None, true) => {
                return Err(DriverError::InvalidArg(
                    "Port reclaim requested but plug type is none".into(),
                ));
            }
            (Plug::None, false) => port.plug = plug_for(def)?,
            (_, false) => {
                return Err(DriverError::InvalidArg(
                    "Port reclaim not requested but plug type is not none".into(),
                ));
            }
            (_, true) => {}
        }
        let dir = self.ports_dir()?;
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        if self.held_ports()?.iter().any(|h| h.port.uuid == port.uuid) {
            return Err(DriverError::NetworkPortExist(format!(
                "Network port with UUID {} already exists",
                port.uuid
            )));
        }
        // The network may have stopped since it was read: its run files would be gone.
        if !self
            .connect()
            .lookup_network_by_name(self.name())?
            .is_active()
        {
            return Err(not_active(self.name()));
        }
        config::write_atomic(
            &dir.join(format!("{}.xml", port.uuid)),
            port.to_xml().as_bytes(),
        )?;
        Ok(port)
    }

    /// Remove a port (`virNetworkPortDelete`). A running guest's port lasts as long as its
    /// interface: it is refused here (libvirt would release it under the guest).
    pub fn delete_port(&self, uuid: &str) -> Result<(), DriverError> {
        let u = parse_port_uuid(uuid)?;
        let dir = self.ports_dir()?;
        let _lock = ConfigLock::acquire(&dir)?;
        let held = self
            .held_ports()?
            .into_iter()
            .find(|h| h.port.uuid == u)
            .ok_or_else(|| no_port(&u))?;
        if let Some(g) = held.guest {
            return Err(DriverError::OperationInvalid(format!(
                "network port {u} is the port of running domain '{g}'; detach its interface instead"
            )));
        }
        config::remove(&dir.join(format!("{u}.xml")))?;
        Ok(())
    }
}

fn parse_port_uuid(uuid: &str) -> Result<String, DriverError> {
    uuid::Uuid::parse_str(uuid.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| {
            DriverError::InvalidArg(
                "uuidstr in virNetworkPortLookupByUUIDString must be a valid UUID".into(),
            )
        })
}

impl Connect {
    /// Remove a stopped network's port records (libvirt: virNetworkObjDeleteAllPorts).
    pub(crate) fn delete_all_ports(&self, name: &str) {
        if config::validate_name(name).is_ok() {
            let _ = std::fs::remove_dir_all(self.networks_run_dir().join(format!("{name}.ports")));
        }
    }
}
