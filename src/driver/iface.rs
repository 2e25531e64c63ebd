//! Host interfaces, as libvirt's udev interface backend offers them: read-only. Listing,
//! lookups and the live XML come from sysfs ([`crate::interface::sysfs`]); defining,
//! starting, stopping and transactions need netcf, which that backend lacks, so they fail as
//! libvirt fails an API a driver does not implement (VIR_ERR_NO_SUPPORT naming the API).

use super::{Connect, DriverError};
use crate::interface::sysfs::{HostNet, IfaceEntry, SysfsError};

impl From<SysfsError> for DriverError {
    fn from(e: SysfsError) -> Self {
        match e {
            SysfsError::NotFound(m) => DriverError::NoInterface(m),
            SysfsError::Multiple(m) => DriverError::MultipleInterfaces(m),
            SysfsError::Internal(m) => DriverError::Internal(m),
        }
    }
}

/// Which interfaces [`Connect::list_all_interfaces`] returns
/// (VIR_CONNECT_LIST_INTERFACES_ACTIVE / _INACTIVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfaceFilter {
    Active,
    Inactive,
    All,
}

/// A host interface (libvirt's virInterfacePtr: a name and a MAC).
#[derive(Debug)]
pub struct Interface<'c> {
    conn: &'c Connect,
    entry: IfaceEntry,
}

impl Interface<'_> {
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    pub fn mac_string(&self) -> &str {
        &self.entry.mac
    }

    /// Whether its operstate is `up`, read now (libvirt: udevInterfaceIsActive).
    pub fn is_active(&self) -> Result<bool, DriverError> {
        Ok(self
            .conn
            .host_net()
            .lookup_by_name(&self.entry.name)?
            .active)
    }

    /// The interface's XML, built from sysfs now (libvirt: udevInterfaceGetXMLDesc; the
    /// inactive flag changes nothing there).
    pub fn xml_desc(&self) -> Result<String, DriverError> {
        Ok(self.conn.host_net().def(&self.entry.name)?.to_xml())
    }

    /// virInterfaceUndefine: needs netcf.
    pub fn undefine(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceUndefine"))
    }

    /// virInterfaceCreate: needs netcf.
    pub fn create(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceCreate"))
    }

    /// virInterfaceDestroy: needs netcf.
    pub fn destroy(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceDestroy"))
    }
}

fn no_support(api: &str) -> DriverError {
    DriverError::NoSupport(api.to_string())
}

impl Connect {
    /// The host's network devices, under this connection's sysfs and procfs.
    pub(crate) fn host_net(&self) -> HostNet {
        HostNet::under(&self.opts.host_root.sys_dir, &self.opts.host_root.proc_dir)
    }

    /// `virsh iface-list` (libvirt: udevConnectListAllInterfaces), sorted by name.
    pub fn list_all_interfaces(
        &self,
        filter: IfaceFilter,
    ) -> Result<Vec<Interface<'_>>, DriverError> {
        Ok(self
            .host_net()
            .list()?
            .into_iter()
            .filter(|e| match filter {
                IfaceFilter::All => true,
                IfaceFilter::Active => e.active,
                IfaceFilter::Inactive => !e.active,
            })
            .map(|entry| Interface { conn: self, entry })
            .collect())
    }

    pub fn lookup_interface_by_name(&self, name: &str) -> Result<Interface<'_>, DriverError> {
        let entry = self.host_net().lookup_by_name(name)?;
        Ok(Interface { conn: self, entry })
    }

    pub fn lookup_interface_by_mac_string(&self, mac: &str) -> Result<Interface<'_>, DriverError> {
        let entry = self.host_net().lookup_by_mac(mac)?;
        Ok(Interface { conn: self, entry })
    }

    /// virInterfaceDefineXML: needs netcf. libvirt checks nothing before the missing
    /// callback, so neither does this (not even the XML).
    pub fn define_interface_xml(&self, _xml: &str) -> Result<Interface<'_>, DriverError> {
        Err(no_support("virInterfaceDefineXML"))
    }

    /// virInterfaceChangeBegin: needs netcf.
    pub fn interface_change_begin(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceChangeBegin"))
    }

    /// virInterfaceChangeCommit: needs netcf.
    pub fn interface_change_commit(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceChangeCommit"))
    }

    /// virInterfaceChangeRollback: needs netcf.
    pub fn interface_change_rollback(&self) -> Result<(), DriverError> {
        Err(no_support("virInterfaceChangeRollback"))
    }
}
