//! A domain's or a network's title, description and `<metadata>` elements
//! (`virDomainGetMetadata`, `virDomainSetMetadata`, `virNetworkGetMetadata`,
//! `virNetworkSetMetadata`), on its live definition or its persistent config. The rules on
//! one definition are shared ([`HasMetadata`]); which definitions a call reaches is each
//! object's.

use serde::Serialize;

use super::DriverError;
use super::domain::Domain;
use crate::domain::xml::{XmlNode, parse_document};
use crate::domain::{DomainDef, FormatFlags};

/// What `virDomainGetMetadata` / `virDomainSetMetadata` work on (`virDomainMetadataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetadataKind {
    Description,
    Title,
    /// The `<metadata>` child in one XML namespace.
    Element,
}

/// Which definition (`VIR_DOMAIN_AFFECT_*`): neither flag means the current one (the live
/// definition while running, else the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Affect {
    pub live: bool,
    pub config: bool,
}

/// libvirt's VIR_ERR_NO_DOMAIN_METADATA.
pub fn no_metadata() -> DriverError {
    DriverError::NoMetadata
}

/// The namespace URI of metadata child `n`: the one its prefix (or default) is bound to.
fn namespace_of(n: &XmlNode) -> Option<&str> {
    let attr = match n.name.split_once(':') {
        Some((p, _)) => format!("xmlns:{p}"),
        None => "xmlns".to_string(),
    };
    n.attr(&attr)
}

/// The children of a `<metadata>` text as the model keeps it.
fn metadata_children(m: &str) -> Result<Vec<XmlNode>, DriverError> {
    let root = parse_document(&format!("<metadata>{m}</metadata>"))?;
    Ok(root.children)
}

fn format_children(children: &[XmlNode]) -> String {
    let mut s = String::new();
    for c in children {
        c.to_libxml_string(2, &mut s);
    }
    s
}

/// A definition with a title, a description and a `<metadata>` element.
pub trait HasMetadata {
    /// "Domain" or "Network": the object in libvirt's API names and messages.
    const OBJECT: &'static str;
    fn title(&self) -> Option<&str>;
    fn description(&self) -> Option<&str>;
    /// The children of `<metadata>`, as the model keeps them.
    fn metadata(&self) -> Option<&str>;
    fn set_title(&mut self, v: Option<String>);
    fn set_description(&mut self, v: Option<String>);
    fn set_metadata(&mut self, v: Option<String>);
}

/// [`HasMetadata`] for a definition keeping the three in fields of those names.
macro_rules! has_metadata_fields {
    ($def:ty, $object:literal) => {
        impl HasMetadata for $def {
            const OBJECT: &'static str = $object;
            fn title(&self) -> Option<&str> {
                self.title.as_deref()
            }
            fn description(&self) -> Option<&str> {
                self.description.as_deref()
            }
            fn metadata(&self) -> Option<&str> {
                self.metadata.as_deref()
            }
            fn set_title(&mut self, v: Option<String>) {
                self.title = v;
            }
            fn set_description(&mut self, v: Option<String>) {
                self.description = v;
            }
            fn set_metadata(&mut self, v: Option<String>) {
                self.metadata = v;
            }
        }
    };
}

has_metadata_fields!(DomainDef, "Domain");
has_metadata_fields!(crate::network::NetworkDef, "Network");

/// `def`'s metadata of `kind` (`uri` names an element's namespace).
// libvirt: virDomainDefGetMetadata, virNetworkObjGetMetadata
pub fn get_metadata<D: HasMetadata>(
    def: &D,
    kind: MetadataKind,
    uri: Option<&str>,
) -> Result<String, DriverError> {
    match kind {
        MetadataKind::Description => def.description().map(String::from).ok_or_else(no_metadata),
        MetadataKind::Title => def.title().map(String::from).ok_or_else(no_metadata),
        MetadataKind::Element => {
            let uri = uri.ok_or_else(|| {
                DriverError::InvalidArg(format!(
                    "uri in vir{}GetMetadata must not be NULL",
                    D::OBJECT
                ))
            })?;
            let children = metadata_children(def.metadata().unwrap_or(""))?;
            let n = children
                .iter()
                .find(|c| namespace_of(c) == Some(uri))
                .ok_or_else(no_metadata)?;
            let mut s = String::new();
            n.to_libxml_string(0, &mut s);
            Ok(s.trim_end().to_string())
        }
    }
}

/// Set (or with `None` remove) `def`'s metadata of `kind`. An element gets namespace `uri`
/// under prefix `key` and replaces the element of that namespace.
// libvirt: virDomainDefSetMetadata, virNetworkDefSetMetadata
pub fn set_metadata<D: HasMetadata>(
    def: &mut D,
    kind: MetadataKind,
    value: Option<&str>,
    key: Option<&str>,
    uri: Option<&str>,
) -> Result<(), DriverError> {
    let value = value.filter(|v| !v.is_empty());
    match kind {
        MetadataKind::Description => def.set_description(value.map(String::from)),
        MetadataKind::Title => {
            // libvirt's network driver takes one and then cannot read its own config back
            // (its parser refuses it, as ours does): refused here, as for domains.
            if value.is_some_and(|v| v.contains('\n')) {
                return Err(DriverError::InvalidArg(format!(
                    "{} title can't contain newlines",
                    D::OBJECT
                )));
            }
            def.set_title(value.map(String::from));
        }
        MetadataKind::Element => {
            let api = format!("vir{}SetMetadata", D::OBJECT);
            let uri = uri
                .ok_or_else(|| DriverError::InvalidArg(format!("uri in {api} must not be NULL")))?;
            let mut children = metadata_children(def.metadata().unwrap_or(""))?;
            children.retain(|c| namespace_of(c) != Some(uri));
            if let Some(v) = value {
                let key = key.ok_or_else(|| {
                    DriverError::InvalidArg(format!("key in {api} must not be NULL"))
                })?;
                let mut n = parse_document(v).map_err(|_| {
                    DriverError::InvalidArg("metadata is not a valid XML document".into())
                })?;
                let local = n.name.rsplit(':').next().unwrap_or(&n.name).to_string();
                n.name = format!("{key}:{local}");
                n.attrs
                    .retain(|(k, _)| k != "xmlns" && !k.starts_with("xmlns:"));
                n.attrs.insert(0, (format!("xmlns:{key}"), uri.to_string()));
                children.push(n);
            }
            def.set_metadata(if children.is_empty() {
                None
            } else {
                Some(format_children(&children))
            });
        }
    }
    Ok(())
}

const LIVE: FormatFlags = FormatFlags {
    inactive: false,
    secure: true,
};
const CONFIG: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

impl Domain<'_> {
    /// `virDomainGetMetadata`: from the config when `affect.config`, else the current
    /// definition.
    pub fn metadata(
        &self,
        kind: MetadataKind,
        uri: Option<&str>,
        affect: Affect,
    ) -> Result<String, DriverError> {
        if affect.live && affect.config {
            return Err(DriverError::InvalidArg(
                "Flags 'live' and 'config' are mutually exclusive".into(),
            ));
        }
        if affect.live && !self.is_active()? {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        let flags = if affect.config { CONFIG } else { LIVE };
        let def = crate::domain::parse(&self.xml_desc(flags)?)?;
        get_metadata(&def, kind, uri)
    }

    /// `virDomainSetMetadata`: change the live definition, the config, or both; neither
    /// flag means the current one.
    pub fn set_metadata(
        &self,
        kind: MetadataKind,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        affect: Affect,
    ) -> Result<(), DriverError> {
        let active = self.is_active()?;
        let (live, config) = match (affect.live, affect.config) {
            (false, false) => (active, !active),
            f => f,
        };
        if live && !active {
            return Err(DriverError::OperationInvalid(
                "domain is not running".into(),
            ));
        }
        if config && !self.is_persistent()? {
            return Err(DriverError::OperationInvalid(
                "cannot change persistent config of a transient domain".into(),
            ));
        }
        // Both checked before either is changed, so one failing changes nothing.
        let mut conf_def = if config {
            let mut d = crate::domain::parse(&self.xml_desc(CONFIG)?)?;
            set_metadata(&mut d, kind, value, key, uri)?;
            Some(d)
        } else {
            None
        };
        if live {
            let (mut g, _) = self.guest()?;
            let mut d = crate::domain::parse(&g.status().xml)?;
            set_metadata(&mut d, kind, value, key, uri)?;
            g.set_live_xml(d.to_xml(LIVE)).map_err(DriverError::Guest)?;
        }
        if let Some(d) = conf_def.take() {
            self.connect().define_domain_xml(&d.to_xml(CONFIG))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> DomainDef {
        crate::domain::parse(
            "<domain type='qemu'><name>m</name><memory>1024</memory><os><type>hvm</type></os>\
             <metadata><app1:foo xmlns:app1=\"http://app1.org/\">bar</app1:foo></metadata></domain>",
        )
        .unwrap()
    }

    #[test]
    fn elements_by_namespace() {
        let mut d = def();
        assert_eq!(
            get_metadata(&d, MetadataKind::Element, Some("http://app1.org/")).unwrap(),
            "<app1:foo xmlns:app1=\"http://app1.org/\">bar</app1:foo>"
        );
        assert!(matches!(
            get_metadata(&d, MetadataKind::Element, Some("http://x/")),
            Err(DriverError::NoMetadata)
        ));
        set_metadata(
            &mut d,
            MetadataKind::Element,
            Some("<n a='1'>x</n>"),
            Some("k"),
            Some("http://x/"),
        )
        .unwrap();
        assert_eq!(
            get_metadata(&d, MetadataKind::Element, Some("http://x/")).unwrap(),
            "<k:n xmlns:k=\"http://x/\" a=\"1\">x</k:n>"
        );
        set_metadata(
            &mut d,
            MetadataKind::Element,
            None,
            None,
            Some("http://app1.org/"),
        )
        .unwrap();
        set_metadata(&mut d, MetadataKind::Element, None, None, Some("http://x/")).unwrap();
        assert_eq!(d.metadata, None);
    }

    #[test]
    fn titles_and_descriptions() {
        let mut d = def();
        assert!(get_metadata(&d, MetadataKind::Title, None).is_err());
        set_metadata(&mut d, MetadataKind::Title, Some("T"), None, None).unwrap();
        assert_eq!(get_metadata(&d, MetadataKind::Title, None).unwrap(), "T");
        assert!(set_metadata(&mut d, MetadataKind::Title, Some("a\nb"), None, None).is_err());
        set_metadata(&mut d, MetadataKind::Description, Some("D\nE"), None, None).unwrap();
        assert_eq!(d.description.as_deref(), Some("D\nE"));
        set_metadata(&mut d, MetadataKind::Description, Some(""), None, None).unwrap();
        assert_eq!(d.description, None);
    }
}
