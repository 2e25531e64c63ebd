//! `<pool>`: a storage pool definition, every pool type libvirt knows (libvirt:
//! virStoragePoolDefParseXML, virStoragePoolDefFormatBuf). Only `dir` pools can run here;
//! the rest are read and written back so that their documents survive a round.

use super::{Lines, Perms, esc, xml_err};
use crate::domain::DomainError;
pub use crate::domain::storage_pool::PoolType;
use crate::domain::xml::{XmlNode, parse_document};

/// What a pool type's `<source>` holds (libvirt: the VIR_STORAGE_POOL_SOURCE_* flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SourceFlags(u8);

const HOST: u8 = 1;
const DEVICE: u8 = 2;
const DIR: u8 = 4;
const ADAPTER: u8 = 8;
const NAME: u8 = 16;
const INITIATOR: u8 = 32;
const NETWORK: u8 = 64;

impl SourceFlags {
    fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }
}

/// The pool types in libvirt's order: the number libvirt prints for a type without a
/// backend is the index here.
pub const POOL_TYPES: &[PoolType] = &[
    PoolType::Dir,
    PoolType::Fs,
    PoolType::Netfs,
    PoolType::Logical,
    PoolType::Disk,
    PoolType::Iscsi,
    PoolType::IscsiDirect,
    PoolType::Scsi,
    PoolType::Mpath,
    PoolType::Rbd,
    PoolType::Sheepdog,
    PoolType::Gluster,
    PoolType::Zfs,
    PoolType::Vstorage,
];

/// libvirt's number for `t` (virStoragePoolType).
pub fn type_number(t: PoolType) -> usize {
    POOL_TYPES.iter().position(|p| *p == t).unwrap_or(0)
}

// libvirt: poolTypeInfo (flags)
fn flags(t: PoolType) -> SourceFlags {
    SourceFlags(match t {
        PoolType::Logical => NAME | DEVICE,
        PoolType::Dir | PoolType::Mpath => 0,
        PoolType::Fs | PoolType::Disk => DEVICE,
        PoolType::Netfs => HOST | DIR,
        PoolType::Iscsi => HOST | DEVICE | INITIATOR,
        PoolType::IscsiDirect => HOST | DEVICE | NETWORK | INITIATOR,
        PoolType::Scsi => ADAPTER,
        PoolType::Rbd | PoolType::Sheepdog => HOST | NETWORK | NAME,
        PoolType::Gluster => HOST | NETWORK | NAME | DIR,
        PoolType::Zfs => NAME | DEVICE,
        PoolType::Vstorage => NAME,
    })
}

/// The source formats a pool type takes and its default (libvirt: poolTypeInfo's
/// formatFromString, defaultFormat); `None` for types without `<format>`.
pub fn source_formats(t: PoolType) -> Option<(&'static [&'static str], &'static str)> {
    match t {
        PoolType::Fs => Some((
            &[
                "auto", "ext2", "ext3", "ext4", "ufs", "iso9660", "udf", "gfs", "gfs2", "vfat",
                "hfs+", "xfs", "ocfs2", "vmfs",
            ],
            "auto",
        )),
        PoolType::Netfs => Some((&["auto", "nfs", "glusterfs", "cifs"], "auto")),
        PoolType::Disk => Some((
            &[
                "unknown", "dos", "dvh", "gpt", "mac", "bsd", "pc98", "sun", "lvm2",
            ],
            "unknown",
        )),
        PoolType::Logical => Some((&["unknown", "lvm2"], "lvm2")),
        _ => None,
    }
}

/// A `<host>` of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHost {
    pub name: String,
    pub port: Option<i32>,
}

/// A `<device>` of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDevice {
    pub path: String,
    pub part_separator: Option<bool>,
}

/// `<adapter>` of a scsi pool (libvirt: virStorageAdapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adapter {
    ScsiHost {
        name: Option<String>,
        /// `<parentaddr unique_id=>` and its PCI address (domain, bus, slot, function).
        parent: Option<(i32, [u32; 4])>,
    },
    FcHost {
        parent: Option<String>,
        parent_wwnn: Option<String>,
        parent_wwpn: Option<String>,
        parent_fabric_wwn: Option<String>,
        managed: Option<bool>,
        wwnn: String,
        wwpn: String,
    },
}

/// `<auth>` of the source (libvirt: virStorageAuthDef).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolAuth {
    /// `chap` or `ceph`.
    pub auth_type: String,
    pub username: String,
    /// `uuid` or `usage`, and its value.
    pub secret: (String, String),
}

/// `<source>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSource {
    pub hosts: Vec<SourceHost>,
    pub devices: Vec<SourceDevice>,
    pub dir: Option<String>,
    pub adapter: Option<Adapter>,
    pub name: Option<String>,
    pub initiator_iqn: Option<String>,
    pub format: Option<String>,
    pub auth: Option<PoolAuth>,
    pub protocol_ver: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
}

/// Backend options of the pool's own XML namespace (libvirt: the rbd and fs backends'
/// virXMLNamespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolNamespace {
    /// `<rbd:config_opts>`: name and value of each option.
    Rbd(Vec<(String, String)>),
    /// `<fs:mount_opts>`: option names.
    Fs(Vec<String>),
}

const RBD_NS: &str = "http://libvirt.org/schemas/storagepool/rbd/1.0";
const FS_NS: &str = "http://libvirt.org/schemas/storagepool/fs/1.0";

/// A storage pool definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolDef {
    pub ptype: PoolType,
    pub name: String,
    pub uuid: String,
    /// Runtime figures (bytes), filled by a refresh; 0 in a definition.
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
    /// `<features><cow state=>`.
    pub cow: Option<bool>,
    pub source: PoolSource,
    /// `<target><path>`; none for the network types.
    pub target_path: Option<String>,
    pub target_perms: Perms,
    /// `<refresh><volume allocation=>`: `default` or `capacity`.
    pub refresh_allocation: Option<String>,
    pub namespace: Option<PoolNamespace>,
}

/// libvirt's virFileSanitizePath: runs of `/` collapsed (a leading `//` kept, as POSIX
/// allows), no trailing `/`.
pub fn sanitize_path(p: &str) -> String {
    let keep_double = p.starts_with("//") && !p.starts_with("///");
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if keep_double {
        out.insert(0, '/');
    }
    while out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

fn tristate(node: &XmlNode, attr: &str) -> Result<Option<bool>, DomainError> {
    match node.attr(attr) {
        None => Ok(None),
        Some("yes") => Ok(Some(true)),
        Some("no") => Ok(Some(false)),
        Some(v) => Err(xml_err(format!(
            "Invalid value for attribute '{attr}' in element '{}': '{v}'.",
            node.name
        ))),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// libvirt's virXPathString: the text, absent when empty.
fn text_of(node: Option<&XmlNode>) -> Option<String> {
    node.map(|n| n.text.clone()).filter(|t| !t.is_empty())
}

fn attr_of(node: Option<&XmlNode>, attr: &str) -> Option<String> {
    node.and_then(|n| n.attr(attr))
        .filter(|v| !v.is_empty())
        .map(String::from)
}

fn parse_hex(v: &str) -> Option<u32> {
    let v = v.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

/// `<source>` of a pool of type `t` (libvirt: virStoragePoolDefParseSource). Also the
/// argument of `find-storage-pool-sources`, hence public.
pub fn parse_source(node: &XmlNode, t: PoolType) -> Result<PoolSource, DomainError> {
    let mut s = PoolSource {
        name: text_of(node.child("name")),
        ..Default::default()
    };
    if t == PoolType::Rbd && s.name.is_none() {
        return Err(xml_err("element 'name' is mandatory for RBD pool"));
    }
    if let Some((formats, default)) = source_formats(t) {
        let f = attr_of(node.child("format"), "type").unwrap_or_else(|| default.to_string());
        if !formats.contains(&f.as_str()) {
            return Err(DomainError::Config(format!(
                "unsupported configuration: unknown pool format type {f}"
            )));
        }
        s.format = Some(f);
    }
    for h in node.children.iter().filter(|c| c.name == "host") {
        let name = h
            .attr("name")
            .ok_or_else(|| xml_err("missing storage pool host name"))?;
        let port = match h.attr("port") {
            None => None,
            Some(p) => Some(p.trim().parse::<i32>().map_err(|_| {
                xml_err(format!(
                    "Invalid value for attribute 'port' in element 'host': '{p}'. Expected integer value"
                ))
            })?),
        };
        s.hosts.push(SourceHost {
            name: name.to_string(),
            port,
        });
    }
    s.initiator_iqn = attr_of(node.child("initiator").and_then(|i| i.child("iqn")), "name");
    for d in node.children.iter().filter(|c| c.name == "device") {
        let path = d
            .attr("path")
            .ok_or_else(|| xml_err("missing storage pool source device path"))?;
        s.devices.push(SourceDevice {
            path: path.to_string(),
            part_separator: tristate(d, "part_separator")?,
        });
    }
    s.dir = attr_of(node.child("dir"), "path").map(|d| sanitize_path(&d));
    if s.dir.is_none() && t == PoolType::Gluster {
        s.dir = Some("/".into());
    }
    if let Some(a) = node.child("adapter") {
        s.adapter = Some(parse_adapter(a)?);
    }
    if let Some(a) = node.child("auth") {
        let auth_type = a.attr("type").unwrap_or_default();
        if !matches!(auth_type, "chap" | "ceph") {
            if auth_type.is_empty() {
                return Err(DomainError::Config(
                    "unsupported configuration: storage pool missing auth type".into(),
                ));
            }
            return Err(DomainError::Config(format!(
                "unsupported configuration: unknown auth type '{auth_type}'"
            )));
        }
        let username = a
            .attr("username")
            .ok_or_else(|| xml_err("missing username for auth"))?;
        let sec = a.child("secret");
        let secret = match (attr_of(sec, "uuid"), attr_of(sec, "usage")) {
            (Some(u), _) => ("uuid".to_string(), u),
            (None, Some(u)) => ("usage".to_string(), u),
            (None, None) => {
                return Err(xml_err("either secret uuid or usage expected"));
            }
        };
        s.auth = Some(PoolAuth {
            auth_type: auth_type.to_string(),
            username: username.to_string(),
            secret,
        });
    }
    if let Some(v) = attr_of(node.child("protocol"), "ver") {
        let f = s.format.as_deref().unwrap_or("");
        if t != PoolType::Netfs || !matches!(f, "nfs" | "auto") {
            return Err(DomainError::Config(format!(
                "unsupported configuration: storage pool protocol ver unsupported for pool type '{}'",
                if t == PoolType::Netfs { f } else { "auto" }
            )));
        }
        if v.contains(',') {
            return Err(DomainError::Xml(format!(
                "XML error: storage pool protocol ver '{v}' must not contain ','"
            )));
        }
        s.protocol_ver = Some(v);
    }
    s.vendor = attr_of(node.child("vendor"), "name");
    s.product = attr_of(node.child("product"), "name");
    Ok(s)
}

fn parse_adapter(a: &XmlNode) -> Result<Adapter, DomainError> {
    let s = |n: &str| a.attr(n).filter(|v| !v.is_empty()).map(String::from);
    match a.attr("type") {
        Some("fc_host") => {
            let (Some(wwnn), Some(wwpn)) = (s("wwnn"), s("wwpn")) else {
                return Err(xml_err(
                    "'wwnn' and 'wwpn' must be specified for adapter type 'fchost'",
                ));
            };
            Ok(Adapter::FcHost {
                parent: s("parent"),
                parent_wwnn: s("parent_wwnn"),
                parent_wwpn: s("parent_wwpn"),
                parent_fabric_wwn: s("parent_fabric_wwn"),
                managed: tristate(a, "managed")?,
                wwnn,
                wwpn,
            })
        }
        Some("scsi_host") => {
            let parent = match a.child("parentaddr") {
                None => None,
                Some(p) => {
                    let uid = p
                        .attr("unique_id")
                        .and_then(|u| u.trim().parse::<i32>().ok())
                        .ok_or_else(|| {
                            xml_err("Missing or invalid scsi adapter 'unique_id' value")
                        })?;
                    let addr = p.child("address");
                    let f = |n: &str| addr.and_then(|x| x.attr(n)).and_then(parse_hex);
                    let pci = [
                        f("domain").unwrap_or(0),
                        f("bus").unwrap_or(0),
                        f("slot").unwrap_or(0),
                        f("function").unwrap_or(0),
                    ];
                    Some((uid, pci))
                }
            };
            let name = s("name");
            if name.is_none() && parent.is_none() {
                return Err(xml_err(
                    "Either 'name' or 'parent' must be specified for the 'scsi_host' adapter",
                ));
            }
            if name.is_some() && parent.is_some() {
                return Err(xml_err(
                    "Both 'name' and 'parent' cannot be specified for the 'scsi_host' adapter",
                ));
            }
            Ok(Adapter::ScsiHost { name, parent })
        }
        Some(other) => Err(DomainError::Config(format!(
            "unsupported configuration: Unknown pool adapter type '{other}'"
        ))),
        None => Err(xml_err("missing storage pool source adapter type")),
    }
}

/// The prefix the document binds to namespace `uri`, if any.
fn ns_prefix(root: &XmlNode, uri: &str) -> Option<String> {
    root.attrs
        .iter()
        .find(|(k, v)| k.starts_with("xmlns:") && v == uri)
        .map(|(k, _)| k["xmlns:".len()..].to_string())
}

fn parse_namespace(root: &XmlNode, t: PoolType) -> Result<Option<PoolNamespace>, DomainError> {
    match t {
        PoolType::Rbd => {
            let Some(p) = ns_prefix(root, RBD_NS) else {
                return Ok(None);
            };
            let Some(opts) = root.child(&format!("{p}:config_opts")) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for o in opts
                .children
                .iter()
                .filter(|c| c.name == format!("{p}:option"))
            {
                let name = match o.attr("name") {
                    None => return Err(xml_err("no rbd option name specified")),
                    Some("") => return Err(xml_err("empty rbd option name specified")),
                    Some(n) => n.to_string(),
                };
                let value = match o.attr("value") {
                    None => {
                        return Err(xml_err(format!(
                            "no rbd option value specified for name '{name}'"
                        )));
                    }
                    Some("") => {
                        return Err(xml_err(format!(
                            "empty rbd option value specified for name '{name}'"
                        )));
                    }
                    Some(v) => v.to_string(),
                };
                out.push((name, value));
            }
            Ok((!out.is_empty()).then_some(PoolNamespace::Rbd(out)))
        }
        PoolType::Fs | PoolType::Netfs => {
            let Some(p) = ns_prefix(root, FS_NS) else {
                return Ok(None);
            };
            let Some(opts) = root.child(&format!("{p}:mount_opts")) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for o in opts
                .children
                .iter()
                .filter(|c| c.name == format!("{p}:option"))
            {
                match o.attr("name") {
                    Some(n) if !n.is_empty() => out.push(n.to_string()),
                    _ => return Err(xml_err("no fs mount option name specified")),
                }
            }
            Ok((!out.is_empty()).then_some(PoolNamespace::Fs(out)))
        }
        _ => Ok(None),
    }
}

impl PoolDef {
    /// Parse a `<pool>` document (libvirt: virStoragePoolDefParse). A definition without
    /// `<uuid>` gets a new random one.
    pub fn parse(xml: &str) -> Result<PoolDef, DomainError> {
        let root = parse_document(xml)?;
        if root.name != "pool" {
            return Err(xml_err(format!(
                "expecting root element of 'pool', not '{}'",
                root.name
            )));
        }
        Self::from_node(&root)
    }

    fn from_node(root: &XmlNode) -> Result<PoolDef, DomainError> {
        let t = root
            .attr("type")
            .ok_or_else(|| xml_err("Missing required attribute 'type' in element 'pool'"))?;
        let ptype = PoolType::parse(t).ok_or_else(|| {
            xml_err(format!(
                "Invalid value for attribute 'type' in element 'pool': '{t}'."
            ))
        })?;
        let fl = flags(ptype);
        let mut source = match root.child("source") {
            Some(s) => parse_source(s, ptype)?,
            None => PoolSource {
                format: source_formats(ptype).map(|(_, d)| d.to_string()),
                ..Default::default()
            },
        };
        let mut name = text_of(root.child("name"));
        if name.is_none() && fl.has(NAME) {
            name = source.name.clone();
        }
        let name = name.ok_or_else(|| xml_err("missing pool source name element"))?;
        if name.contains('/') {
            return Err(xml_err(format!("name {name} cannot contain '/'")));
        }
        let uuid = match text_of(root.child("uuid")) {
            None => uuid::Uuid::new_v4().hyphenated().to_string(),
            Some(u) => uuid::Uuid::parse_str(u.trim())
                .map_err(|_| xml_err("malformed uuid element"))?
                .hyphenated()
                .to_string(),
        };
        let cow = match root.child("features").and_then(|f| f.child("cow")) {
            None => None,
            Some(c) => {
                let v = tristate(c, "state")?;
                if v.is_some() && !matches!(ptype, PoolType::Fs | PoolType::Dir) {
                    return Err(DomainError::Config(
                        "this function is not supported by the connection driver: cow feature may only be used for 'fs' and 'dir' pools".into(),
                    ));
                }
                v
            }
        };
        if fl.has(HOST) && source.hosts.is_empty() {
            return Err(xml_err("missing storage pool source host name"));
        }
        if fl.has(DIR) && source.dir.is_none() {
            return Err(xml_err("missing storage pool source path"));
        }
        if fl.has(NAME) && source.name.is_none() {
            source.name = Some(name.clone());
        }
        if fl.has(ADAPTER) && source.adapter.is_none() {
            return Err(xml_err("missing storage pool source adapter"));
        }
        if fl.0 == DEVICE && source.devices.is_empty() {
            return Err(xml_err("missing storage pool source device name"));
        }
        let mut target_path = None;
        let mut target_perms = Perms::default();
        if !fl.has(NETWORK) {
            let src_name = source.name.clone().unwrap_or_default();
            let p = match ptype {
                PoolType::Logical => format!("/dev/{src_name}"),
                PoolType::Zfs => format!("/dev/zvol/{src_name}"),
                _ => text_of(root.child("target").and_then(|t| t.child("path")))
                    .ok_or_else(|| xml_err("missing storage pool target path"))?,
            };
            target_path = Some(sanitize_path(&p));
            target_perms = Perms::parse(root.child("target").and_then(|t| t.child("permissions")))?;
        }
        if ptype == PoolType::IscsiDirect && source.initiator_iqn.is_none() {
            return Err(DomainError::Config(
                "unsupported configuration: missing initiator IQN".into(),
            ));
        }
        let refresh_allocation = match attr_of(
            root.child("refresh").and_then(|r| r.child("volume")),
            "allocation",
        ) {
            None => None,
            Some(a) if a == "default" || a == "capacity" => Some(a),
            Some(a) => {
                return Err(DomainError::Config(format!(
                    "unsupported configuration: unknown storage pool volume refresh allocation type {a}"
                )));
            }
        };
        let namespace = parse_namespace(root, ptype)?;
        Ok(PoolDef {
            ptype,
            name,
            uuid,
            capacity: 0,
            allocation: 0,
            available: 0,
            cow,
            source,
            target_path,
            target_perms,
            refresh_allocation,
            namespace,
        })
    }

    /// The document, as libvirt formats it (virStoragePoolDefFormat).
    pub fn format(&self) -> String {
        let mut o = Lines::default();
        self.format_into(&mut o);
        o.finish()
    }

    /// The pool's state file: the definition inside `<poolstate>` (libvirt:
    /// virStoragePoolSaveState).
    pub fn format_state(&self) -> String {
        let mut o = Lines::default();
        o.open("<poolstate>");
        self.format_into(&mut o);
        o.close("</poolstate>");
        o.finish()
    }

    /// Parse a state file written by [`PoolDef::format_state`].
    pub fn parse_state(xml: &str) -> Result<PoolDef, DomainError> {
        let root = parse_document(xml)?;
        let pool = root
            .child("pool")
            .filter(|_| root.name == "poolstate")
            .ok_or_else(|| {
                DomainError::Xml(
                    "internal error: Could not find any 'pool' element in state file".into(),
                )
            })?;
        let mut def = Self::from_node(pool)?;
        let num = |n: &str| {
            pool.child(n)
                .and_then(|c| c.text.trim().parse().ok())
                .unwrap_or(0)
        };
        def.capacity = num("capacity");
        def.allocation = num("allocation");
        def.available = num("available");
        Ok(def)
    }

    fn format_into(&self, o: &mut Lines) {
        let ns = match &self.namespace {
            Some(PoolNamespace::Rbd(_)) => format!(" xmlns:rbd='{RBD_NS}'"),
            Some(PoolNamespace::Fs(_)) => format!(" xmlns:fs='{FS_NS}'"),
            None => String::new(),
        };
        o.open(format!("<pool type='{}'{ns}>", self.ptype.as_str()));
        o.line(format!("<name>{}</name>", esc(&self.name)));
        o.line(format!("<uuid>{}</uuid>", self.uuid));
        o.line(format!(
            "<capacity unit='bytes'>{}</capacity>",
            self.capacity
        ));
        o.line(format!(
            "<allocation unit='bytes'>{}</allocation>",
            self.allocation
        ));
        o.line(format!(
            "<available unit='bytes'>{}</available>",
            self.available
        ));
        if let Some(c) = self.cow {
            o.open("<features>");
            o.line(format!("<cow state='{}'/>", yes_no(c)));
            o.close("</features>");
        }
        format_source(o, flags(self.ptype), &self.source);
        if !matches!(
            self.ptype,
            PoolType::Rbd | PoolType::Sheepdog | PoolType::Gluster | PoolType::IscsiDirect
        ) {
            o.open("<target>");
            if let Some(p) = &self.target_path {
                o.line(format!("<path>{}</path>", esc(p)));
            }
            self.target_perms.format(o);
            o.close("</target>");
        }
        if let Some(a) = &self.refresh_allocation {
            o.open("<refresh>");
            o.line(format!("<volume allocation='{a}'/>"));
            o.close("</refresh>");
        }
        match &self.namespace {
            Some(PoolNamespace::Rbd(opts)) => {
                o.open("<rbd:config_opts>");
                for (n, v) in opts {
                    o.line(format!(
                        "<rbd:option name='{}' value='{}'/>",
                        esc(n),
                        esc(v)
                    ));
                }
                o.close("</rbd:config_opts>");
            }
            Some(PoolNamespace::Fs(opts)) => {
                o.open("<fs:mount_opts>");
                for n in opts {
                    o.line(format!("<fs:option name='{}'/>", esc(n)));
                }
                o.close("</fs:mount_opts>");
            }
            None => {}
        }
        o.close("</pool>");
    }
}

// libvirt: virStoragePoolSourceFormat
fn format_source(o: &mut Lines, fl: SourceFlags, s: &PoolSource) {
    o.open("<source>");
    if fl.has(HOST) {
        for h in &s.hosts {
            let port = h
                .port
                .filter(|p| *p != 0)
                .map(|p| format!(" port='{p}'"))
                .unwrap_or_default();
            o.line(format!("<host name='{}'{port}/>", esc(&h.name)));
        }
    }
    if fl.has(DEVICE) {
        for d in &s.devices {
            let sep = d
                .part_separator
                .map(|b| format!(" part_separator='{}'", yes_no(b)))
                .unwrap_or_default();
            o.line(format!("<device path='{}'{sep}/>", esc(&d.path)));
        }
    }
    if fl.has(DIR)
        && let Some(d) = &s.dir
    {
        o.line(format!("<dir path='{}'/>", esc(d)));
    }
    if fl.has(ADAPTER) {
        match &s.adapter {
            Some(Adapter::FcHost {
                parent,
                parent_wwnn,
                parent_wwpn,
                parent_fabric_wwn,
                managed,
                wwnn,
                wwpn,
            }) => {
                let mut l = "<adapter type='fc_host'".to_string();
                for (k, v) in [
                    ("parent", parent),
                    ("parent_wwnn", parent_wwnn),
                    ("parent_wwpn", parent_wwpn),
                    ("parent_fabric_wwn", parent_fabric_wwn),
                ] {
                    if let Some(v) = v {
                        l.push_str(&format!(" {k}='{}'", esc(v)));
                    }
                }
                if let Some(m) = managed {
                    l.push_str(&format!(" managed='{}'", yes_no(*m)));
                }
                l.push_str(&format!(" wwnn='{wwnn}' wwpn='{wwpn}'/>"));
                o.line(l);
            }
            Some(Adapter::ScsiHost { name: Some(n), .. }) => {
                o.line(format!("<adapter type='scsi_host' name='{n}'/>"));
            }
            Some(Adapter::ScsiHost {
                name: None,
                parent: Some((uid, [d, b, sl, f])),
            }) => {
                o.open("<adapter type='scsi_host'>");
                o.open(format!("<parentaddr unique_id='{uid}'>"));
                o.line(format!(
                    "<address domain='0x{d:04x}' bus='0x{b:02x}' slot='0x{sl:02x}' function='0x{f:x}'/>"
                ));
                o.close("</parentaddr>");
                o.close("</adapter>");
            }
            _ => {}
        }
    }
    if fl.has(NAME)
        && let Some(n) = &s.name
    {
        o.line(format!("<name>{}</name>", esc(n)));
    }
    if fl.has(INITIATOR)
        && let Some(i) = &s.initiator_iqn
    {
        o.open("<initiator>");
        o.line(format!("<iqn name='{}'/>", esc(i)));
        o.close("</initiator>");
    }
    if let Some(f) = &s.format {
        o.line(format!("<format type='{f}'/>"));
    }
    if let Some(a) = &s.auth {
        o.open(format!(
            "<auth type='{}' username='{}'>",
            a.auth_type,
            esc(&a.username)
        ));
        o.line(format!("<secret {}='{}'/>", a.secret.0, esc(&a.secret.1)));
        o.close("</auth>");
    }
    if let Some(v) = &s.protocol_ver {
        o.line(format!("<protocol ver='{}'/>", esc(v)));
    }
    if let Some(v) = &s.vendor {
        o.line(format!("<vendor name='{}'/>", esc(v)));
    }
    if let Some(v) = &s.product {
        o.line(format!("<product name='{}'/>", esc(v)));
    }
    o.close("</source>");
}

/// Volume formats a pool type's volumes take and the default (libvirt: poolTypeInfo's
/// volOptions), in libvirt's order: `None` for types without volume formats.
fn vol_formats(t: PoolType) -> Option<(&'static [&'static str], &'static str)> {
    const FILE: &[&str] = &[
        "none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop",
        "cow", "qcow", "qcow2", "qed", "vmdk",
    ];
    match t {
        PoolType::Dir | PoolType::Fs | PoolType::Netfs | PoolType::Gluster | PoolType::Vstorage => {
            Some((FILE, "raw"))
        }
        // libvirt gives rbd a default but no list.
        PoolType::Rbd => Some((&[], "raw")),
        PoolType::Disk => Some((
            &[
                "none",
                "linux",
                "fat16",
                "fat32",
                "linux-swap",
                "linux-lvm",
                "linux-raid",
                "extended",
            ],
            "none",
        )),
        _ => None,
    }
}

/// `<storagepoolCapabilities>`, `supported` saying which types have a backend (libvirt:
/// virStoragePoolCapsFormat).
pub fn capabilities(supported: impl Fn(PoolType) -> bool) -> String {
    let mut o = Lines::default();
    o.open("<storagepoolCapabilities>");
    for &t in POOL_TYPES {
        o.open(format!(
            "<pool type='{}' supported='{}'>",
            t.as_str(),
            yes_no(supported(t))
        ));
        for (elem, list, formats) in [
            ("poolOptions", "sourceFormatType", source_formats(t)),
            ("volOptions", "targetFormatType", vol_formats(t)),
        ] {
            let Some((values, default)) = formats else {
                continue;
            };
            o.open(format!("<{elem}>"));
            o.line(format!("<defaultFormat type='{default}'/>"));
            o.open(format!("<enum name='{list}'>"));
            for v in values {
                o.line(format!("<value>{v}</value>"));
            }
            o.close("</enum>");
            o.close(format!("</{elem}>"));
        }
        o.close("</pool>");
    }
    o.close("</storagepoolCapabilities>");
    o.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_pool_round_trips() {
        let x = "<pool type='dir'>\n  <name>p</name>\n  <uuid>70a7eb15-6c34-ee9c-bf57-69e8e5ff3fb2</uuid>\n  <capacity unit='bytes'>0</capacity>\n  <allocation unit='bytes'>0</allocation>\n  <available unit='bytes'>0</available>\n  <source>\n  </source>\n  <target>\n    <path>/var/lib/x</path>\n  </target>\n</pool>\n";
        assert_eq!(PoolDef::parse(x).unwrap().format(), x);
    }

    #[test]
    fn paths_are_sanitized() {
        assert_eq!(sanitize_path("/a//b/"), "/a/b");
        assert_eq!(sanitize_path("//a"), "//a");
        assert_eq!(sanitize_path("///a"), "/a");
        assert_eq!(sanitize_path("/"), "/");
    }

    #[test]
    fn bad_pools_are_refused_with_libvirts_words() {
        let e = |x: &str| PoolDef::parse(x).unwrap_err().to_string();
        assert_eq!(
            e("<pool><name>p</name></pool>"),
            "XML error: Missing required attribute 'type' in element 'pool'"
        );
        assert_eq!(
            e("<pool type='floppy'/>"),
            "XML error: Invalid value for attribute 'type' in element 'pool': 'floppy'."
        );
        assert_eq!(
            e("<pool type='dir'><target><path>/x</path></target></pool>"),
            "XML error: missing pool source name element"
        );
        assert_eq!(
            e("<pool type='dir'><name>a/b</name></pool>"),
            "XML error: name a/b cannot contain '/'"
        );
        assert_eq!(
            e("<pool type='dir'><name>a</name></pool>"),
            "XML error: missing storage pool target path"
        );
        assert_eq!(
            e("<pool type='dir'><name>a</name><uuid>zz</uuid></pool>"),
            "XML error: malformed uuid element"
        );
        assert_eq!(
            e("<pool type='netfs'><name>a</name><target><path>/x</path></target></pool>"),
            "XML error: missing storage pool source host name"
        );
        assert_eq!(
            e("<pool type='fs'><name>a</name><target><path>/x</path></target></pool>"),
            "XML error: missing storage pool source device name"
        );
        assert_eq!(
            e(
                "<pool type='dir'><name>a</name><target><path>/x</path><permissions><mode>999</mode></permissions></target></pool>"
            ),
            "XML error: malformed octal mode"
        );
        assert_eq!(
            e("<pool type='rbd'><name>a</name><source><host name='h'/></source></pool>"),
            "XML error: element 'name' is mandatory for RBD pool"
        );
        assert_eq!(
            e("<volume/>"),
            "XML error: expecting root element of 'pool', not 'volume'"
        );
    }
}
