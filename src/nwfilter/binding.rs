//! The `<filterbinding>` document: which filter, with which parameters, applies to which
//! guest port (libvirt: src/conf/virnwfilterbindingdef.c).

use super::proto::{format_mac, parse_mac};
use super::{NwfilterError, Params, parse_root};
use crate::xmlfmt::XmlWriter;

/// A filter binding (libvirt: virNWFilterBindingDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingDef {
    pub owner_name: String,
    /// Canonical UUID of the owning domain.
    pub owner_uuid: String,
    pub portdev: String,
    pub linkdev: Option<String>,
    pub mac: [u8; 6],
    pub filter: String,
    pub params: Params,
}

impl BindingDef {
    /// libvirt: virNWFilterBindingDefParseXML.
    pub fn parse(xml: &str) -> Result<BindingDef, NwfilterError> {
        let root = parse_root(xml, "filterbinding")?;
        let internal = |m: &str| NwfilterError::Internal(m.to_string());
        let Some(portdev) = root
            .child("portdev")
            .and_then(|p| p.attr("name"))
            .filter(|n| !n.is_empty())
        else {
            return Err(internal("filter binding has no port dev name"));
        };
        let linkdev = match root.child("linkdev") {
            None => None,
            Some(l) => match l.attr("name").filter(|n| !n.is_empty()) {
                Some(n) => Some(n.to_string()),
                None => return Err(internal("filter binding has no link dev name")),
            },
        };
        let owner = root.child("owner");
        let text = |name: &str| {
            owner
                .and_then(|o| o.child(name))
                .map(|n| n.text.clone())
                .filter(|t| !t.is_empty())
        };
        let Some(owner_name) = text("name") else {
            return Err(internal("filter binding has no owner name"));
        };
        let Some(uuid) = text("uuid") else {
            return Err(internal("filter binding has no owner UUID"));
        };
        let owner_uuid = uuid::Uuid::parse_str(uuid.trim())
            .map_err(|_| NwfilterError::Internal(format!("Unable to parse UUID '{uuid}'")))?
            .hyphenated()
            .to_string();
        let Some(mac) = root
            .child("mac")
            .and_then(|m| m.attr("address"))
            .filter(|m| !m.is_empty())
        else {
            return Err(internal("filter binding has no MAC address"));
        };
        let mac = parse_mac(mac)
            .ok_or_else(|| NwfilterError::Internal(format!("Unable to parse MAC '{mac}'")))?;
        let fref = root.child("filterref");
        let Some(filter) = fref
            .and_then(|f| f.attr("filter"))
            .filter(|f| !f.is_empty())
        else {
            return Err(internal("filter binding has no filter reference"));
        };
        Ok(BindingDef {
            owner_name,
            owner_uuid,
            portdev: portdev.to_string(),
            linkdev,
            mac,
            filter: filter.to_string(),
            params: fref.map(Params::parse).unwrap_or_default(),
        })
    }

    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }

    /// libvirt: virNWFilterBindingDefFormatBuf.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("filterbinding").open();
        w.elem("owner").open();
        w.text_elem("name", &self.owner_name);
        w.text_elem("uuid", &self.owner_uuid);
        w.close();
        w.elem("portdev").attr("name", &self.portdev).empty();
        if let Some(l) = &self.linkdev {
            w.elem("linkdev").attr("name", l).empty();
        }
        w.elem("mac").attr("address", self.mac_string()).empty();
        self.params.format(&mut w, &self.filter);
        w.close();
        w.finish()
    }
}
