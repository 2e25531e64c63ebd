//! `<devices>`: one typed struct per device kind. Each keeps what it does not model in an
//! [`Extra`] and its alias/address/boot order in a [`DeviceInfo`].

use super::DomainError;
use super::address::{DeviceInfo, finish, opt_uint};
use super::common::{Auth, Blockio, ChrLog, Encryption, Geometry, SecLabel};
use super::model::FormatFlags;
use super::units::{MAX_MEMORY_KIB, parse_scaled_bytes, parse_scaled_kib};
use super::xml::{Extra, Rd, XmlNode};

fn xml_err(msg: impl Into<String>) -> DomainError {
    DomainError::Xml(format!("XML error: {}", msg.into()))
}

/// Virtio transport options shared by every virtio device's `<driver>`, written after the
/// device-specific driver attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtioOptions {
    pub iommu: Option<String>,
    pub ats: Option<String>,
    pub packed: Option<String>,
    pub page_per_vq: Option<String>,
}

impl VirtioOptions {
    fn parse(rd: &Rd<'_>) -> Self {
        VirtioOptions {
            iommu: rd.attr("iommu"),
            ats: rd.attr("ats"),
            packed: rd.attr("packed"),
            page_per_vq: rd.attr("page_per_vq"),
        }
    }

    fn apply(&self, n: XmlNode) -> XmlNode {
        n.ao("iommu", self.iommu.as_ref())
            .ao("ats", self.ats.as_ref())
            .ao("packed", self.packed.as_ref())
            .ao("page_per_vq", self.page_per_vq.as_ref())
    }
}

/// A `<driver>` element: the common attributes typed, the rest kept in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Driver {
    pub name: Option<String>,
    pub dtype: Option<String>,
    /// Network drivers: `iothread` or `timer` TX mode.
    pub txmode: Option<String>,
    pub cache: Option<String>,
    pub error_policy: Option<String>,
    pub rerror_policy: Option<String>,
    pub io: Option<String>,
    pub ioeventfd: Option<String>,
    pub event_idx: Option<String>,
    pub copy_on_read: Option<String>,
    pub discard: Option<String>,
    pub iothread: Option<u32>,
    pub detect_zeroes: Option<String>,
    pub queues: Option<u32>,
    pub queue_size: Option<u32>,
    pub virtio: VirtioOptions,
    /// `<metadata_cache><max_size>` of qcow2 images, in bytes.
    pub metadata_cache: Option<MetadataCache>,
    pub extra: Extra,
}

/// `<metadata_cache>`: qcow2 metadata cache limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataCache {
    pub max_size_bytes: Option<u64>,
}

impl MetadataCache {
    fn parse(n: &XmlNode) -> Result<MetadataCache, DomainError> {
        let max_size_bytes = match n.child("max_size") {
            Some(m) => Some(parse_scaled_bytes(
                &m.text,
                m.attr("unit"),
                "bytes",
                i64::MAX as u64,
            )?),
            None => None,
        };
        Ok(MetadataCache { max_size_bytes })
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("metadata_cache").co(self
            .max_size_bytes
            .map(|b| XmlNode::new("max_size").a("unit", "bytes").t(b)))
    }
}

impl Driver {
    fn parse(n: &XmlNode) -> Result<Driver, DomainError> {
        let rd = Rd::new(n);
        Ok(Driver {
            name: rd.attr("name"),
            dtype: rd.attr("type"),
            txmode: rd.attr("txmode"),
            // `default` is the enum's unset value, which libvirt does not write back.
            cache: rd.attr("cache").filter(|c| c != "default"),
            error_policy: rd.attr("error_policy"),
            rerror_policy: rd.attr("rerror_policy"),
            io: rd.attr("io"),
            ioeventfd: rd.attr("ioeventfd"),
            event_idx: rd.attr("event_idx"),
            copy_on_read: rd.attr("copy_on_read"),
            discard: rd.attr("discard"),
            iothread: opt_uint(&rd, "iothread")?,
            detect_zeroes: rd.attr("detect_zeroes"),
            queues: opt_uint(&rd, "queues")?,
            queue_size: opt_uint(&rd, "queue_size")?,
            virtio: VirtioOptions::parse(&rd),
            metadata_cache: rd
                .child("metadata_cache")
                .map(MetadataCache::parse)
                .transpose()?,
            extra: rd.extra(),
        })
    }

    /// Filesystem and video drivers write the virtio options before the (vhost-user) driver name.
    fn to_node_name_last(&self) -> XmlNode {
        let mut d = self.clone();
        let name = d.name.take();
        let n = d.to_node();
        match name {
            Some(v) => n.a("name", v),
            None => n,
        }
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("driver")
            .ao("name", self.name.as_ref())
            .ao("type", self.dtype.as_ref())
            .ao("txmode", self.txmode.as_ref())
            .ao("cache", self.cache.as_ref())
            .ao("error_policy", self.error_policy.as_ref())
            .ao("rerror_policy", self.rerror_policy.as_ref())
            .ao("io", self.io.as_ref())
            .ao("ioeventfd", self.ioeventfd.as_ref())
            .ao("event_idx", self.event_idx.as_ref())
            .ao("copy_on_read", self.copy_on_read.as_ref())
            .ao("discard", self.discard.as_ref())
            .ao("iothread", self.iothread)
            .ao("detect_zeroes", self.detect_zeroes.as_ref())
            .ao("queues", self.queues)
            .ao("queue_size", self.queue_size)
            .extra_attrs(&self.extra);
        self.virtio
            .apply(n)
            .co(self.metadata_cache.as_ref().map(MetadataCache::to_node))
            .extra_children(&self.extra)
    }
}

/// A network storage host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Host {
    pub transport: Option<String>,
    pub name: Option<String>,
    pub port: Option<String>,
    pub socket: Option<String>,
}

/// `<slice type='storage' offset='..' size='..'/>`: the guest sees only part of the image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slice {
    pub stype: String,
    pub offset: u64,
    pub size: u64,
}

/// `<source>` of a disk (or of a backing-chain layer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSource {
    pub file: Option<String>,
    pub dev: Option<String>,
    pub dir: Option<String>,
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub query: Option<String>,
    pub tls: Option<String>,
    pub tls_hostname: Option<String>,
    pub pool: Option<String>,
    pub volume: Option<String>,
    pub mode: Option<String>,
    pub fdgroup: Option<String>,
    pub startup_policy: Option<String>,
    pub index: Option<u32>,
    pub hosts: Vec<Host>,
    /// NFS `<identity user='..' group='..'/>`: (user, group).
    pub identity: Option<(Option<String>, Option<String>)>,
    /// RBD `<snapshot name='..'/>` and `<config file='..'/>`.
    pub snapshot: Option<String>,
    pub config_file: Option<String>,
    /// iSCSI `<initiator><iqn name='..'/></initiator>`.
    pub initiator_iqn: Option<String>,
    /// HTTPS `<ssl verify='yes|no'/>`.
    pub ssl_verify: Option<String>,
    /// HTTP `<cookies><cookie name='..'>value</cookie></cookies>`.
    pub cookies: Vec<(String, String)>,
    /// `<readahead size='..'/>` and `<timeout seconds='..'/>` of curl-based protocols.
    pub readahead: Option<u64>,
    pub timeout: Option<u64>,
    /// NVMe controller PCI address.
    pub address: Option<HostAddress>,
    /// vhost-user `<reconnect enabled='yes' timeout='..'/>`: (enabled, timeout).
    pub reconnect: Option<(Option<String>, Option<String>)>,
    pub slices: Vec<Slice>,
    /// Per-image security labels, kept verbatim.
    pub seclabels: Vec<SecLabel>,
    pub auth: Option<Auth>,
    pub encryption: Option<Encryption>,
    /// Persistent reservations (`<reservations managed='..'>`), kept verbatim.
    pub reservations: Option<XmlNode>,
    pub extra: Extra,
}

impl DiskSource {
    pub(crate) fn parse(n: &XmlNode) -> Result<DiskSource, DomainError> {
        let rd = Rd::new(n);
        let mut s = DiskSource {
            file: rd.attr("file"),
            dev: rd.attr("dev"),
            dir: rd.attr("dir"),
            protocol: rd.attr("protocol"),
            name: rd.attr("name"),
            query: rd.attr("query"),
            tls: rd.attr("tls"),
            tls_hostname: rd.attr("tlsHostname"),
            pool: rd.attr("pool"),
            volume: rd.attr("volume"),
            mode: rd.attr("mode"),
            fdgroup: rd.attr("fdgroup"),
            startup_policy: rd.attr("startupPolicy"),
            index: opt_uint(&rd, "index")?,
            ..Default::default()
        };
        for h in rd.children("host") {
            s.hosts.push(Host {
                transport: h.attr("transport").map(String::from),
                name: h.attr("name").map(String::from),
                port: h.attr("port").map(String::from),
                socket: h.attr("socket").map(String::from),
            });
        }
        s.identity = rd.child("identity").map(|i| {
            (
                i.attr("user").map(String::from),
                i.attr("group").map(String::from),
            )
        });
        s.snapshot = rd
            .child("snapshot")
            .and_then(|c| c.attr("name").map(String::from));
        s.config_file = rd
            .child("config")
            .and_then(|c| c.attr("file").map(String::from));
        s.initiator_iqn = rd
            .child("initiator")
            .and_then(|i| i.child("iqn"))
            .and_then(|q| q.attr("name").map(String::from));
        s.ssl_verify = rd
            .child("ssl")
            .and_then(|c| c.attr("verify").map(String::from));
        if let Some(c) = rd.child("cookies") {
            s.cookies = c
                .children
                .iter()
                .map(|k| (k.attr("name").unwrap_or("").to_string(), k.text.clone()))
                .collect();
        }
        let num = |el: &str, attr: &str| -> Result<Option<u64>, DomainError> {
            match rd.child(el).and_then(|c| c.attr(attr)) {
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| xml_err(format!("invalid value '{v}' for {el} {attr}"))),
                None => Ok(None),
            }
        };
        s.readahead = num("readahead", "size")?;
        s.timeout = num("timeout", "seconds")?;
        s.address = rd.child("address").map(HostAddress::parse).transpose()?;
        s.reconnect = rd.child("reconnect").map(|r| {
            (
                r.attr("enabled").map(String::from),
                r.attr("timeout").map(String::from),
            )
        });
        if let Some(sl) = rd.child("slices") {
            for c in &sl.children {
                let crd = Rd::new(c);
                let big = |a: &str| -> Result<u64, DomainError> {
                    let v = crd.attr(a).unwrap_or_default();
                    v.trim()
                        .parse()
                        .map_err(|_| xml_err(format!("invalid value '{v}' for slice {a}")))
                };
                s.slices.push(Slice {
                    stype: crd.attr("type").unwrap_or_default(),
                    offset: big("offset")?,
                    size: big("size")?,
                });
            }
        }
        s.seclabels = rd
            .children("seclabel")
            .into_iter()
            .map(SecLabel::parse)
            .collect();
        let auths = rd.children("auth");
        if auths.len() > 1 {
            return Err(DomainError::Config(
                "unsupported configuration: an <auth> definition already found for disk source"
                    .to_string(),
            ));
        }
        s.auth = auths.first().map(|a| Auth::parse(a));
        s.encryption = rd.child("encryption").map(Encryption::parse);
        s.reservations = rd.child_node("reservations");
        s.extra = rd.extra();
        Ok(s)
    }

    pub(crate) fn to_node(&self) -> XmlNode {
        let one = |el: &str, attr: &str, v: Option<String>| v.map(|v| XmlNode::new(el).a(attr, v));
        XmlNode::new("source")
            .ao("file", self.file.as_ref())
            .ao("dev", self.dev.as_ref())
            .ao("dir", self.dir.as_ref())
            .ao("protocol", self.protocol.as_ref())
            .ao("name", self.name.as_ref())
            .ao("query", self.query.as_ref())
            .ao("tls", self.tls.as_ref())
            .ao("tlsHostname", self.tls_hostname.as_ref())
            .ao("pool", self.pool.as_ref())
            .ao("volume", self.volume.as_ref())
            .ao("mode", self.mode.as_ref())
            .ao("fdgroup", self.fdgroup.as_ref())
            .ao("startupPolicy", self.startup_policy.as_ref())
            .ao("index", self.index)
            .extra_attrs(&self.extra)
            .cs(self.hosts.iter().map(|h| {
                XmlNode::new("host")
                    .ao("transport", h.transport.as_ref())
                    .ao("name", h.name.as_ref())
                    .ao("port", h.port.as_ref())
                    .ao("socket", h.socket.as_ref())
            }))
            .co(self.identity.as_ref().map(|(u, g)| {
                XmlNode::new("identity")
                    .ao("user", u.as_ref())
                    .ao("group", g.as_ref())
            }))
            .co(one("snapshot", "name", self.snapshot.clone()))
            .co(one("config", "file", self.config_file.clone()))
            .co(self
                .initiator_iqn
                .as_ref()
                .map(|q| XmlNode::new("initiator").c(XmlNode::new("iqn").a("name", q))))
            .co(one("ssl", "verify", self.ssl_verify.clone()))
            .co((!self.cookies.is_empty()).then(|| {
                XmlNode::new("cookies").cs(self
                    .cookies
                    .iter()
                    .map(|(n, v)| XmlNode::new("cookie").a("name", n).t(v)))
            }))
            .co(one(
                "readahead",
                "size",
                self.readahead.map(|v| v.to_string()),
            ))
            .co(one(
                "timeout",
                "seconds",
                self.timeout.map(|v| v.to_string()),
            ))
            .co(self.address.as_ref().map(HostAddress::to_node))
            .co(self.reconnect.as_ref().map(|(e, t)| {
                XmlNode::new("reconnect")
                    .ao("enabled", e.as_ref())
                    .ao("timeout", t.as_ref())
            }))
            .co((!self.slices.is_empty()).then(|| {
                XmlNode::new("slices").cs(self.slices.iter().map(|sl| {
                    XmlNode::new("slice")
                        .a("type", &sl.stype)
                        .a("offset", sl.offset)
                        .a("size", sl.size)
                }))
            }))
            .cs(self.seclabels.iter().map(SecLabel::to_node))
            .co(self.auth.as_ref().map(Auth::to_node))
            .co(self.encryption.as_ref().map(Encryption::to_node))
            .co(self.reservations.clone())
            .extra_children(&self.extra)
    }

    /// The back-end's UNIX socket of a vhost-user disk (`<source type='unix' path='..'/>`).
    pub fn vhost_user_socket(&self) -> Option<&str> {
        (self.extra.attr("type") == Some("unix"))
            .then(|| self.extra.attr("path"))
            .flatten()
            .filter(|p| !p.is_empty())
    }

    /// The local path, whatever the source type.
    pub fn path(&self) -> Option<&str> {
        self.file
            .as_deref()
            .or(self.dev.as_deref())
            .or(self.dir.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskTarget {
    pub dev: String,
    pub bus: Option<String>,
    pub tray: Option<String>,
    pub removable: Option<String>,
    pub rotation_rate: Option<u32>,
    pub extra: Extra,
}

/// `<disk>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    /// `file`, `block`, `dir`, `network`, `volume`, `nvme`, `vhostuser`.
    pub dtype: Option<String>,
    /// `disk`, `cdrom`, `floppy`, `lun`.
    pub device: Option<String>,
    pub model: Option<String>,
    pub rawio: Option<String>,
    pub sgio: Option<String>,
    pub snapshot: Option<String>,
    pub driver: Option<Driver>,
    /// `<auth>` written before `<source>` (the older placement).
    pub auth: Option<Auth>,
    pub source: Option<DiskSource>,
    pub backing_store: Option<BackingStore>,
    pub geometry: Option<Geometry>,
    pub blockio: Option<Blockio>,
    pub mirror: Option<XmlNode>,
    pub target: DiskTarget,
    pub iotune: Option<IoTune>,
    pub readonly: bool,
    pub shareable: bool,
    /// `<transient/>`; the inner value is its `shareBacking` attribute.
    pub transient: Option<Option<String>>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub encryption: Option<Encryption>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Disk {
    fn parse(n: &XmlNode) -> Result<Disk, DomainError> {
        let rd = Rd::new(n);
        let mut d = Disk {
            dtype: rd.attr("type").or_else(|| Some("file".to_string())),
            device: rd.attr("device").or_else(|| Some("disk".to_string())),
            model: rd.attr("model"),
            rawio: rd.attr("rawio"),
            sgio: rd.attr("sgio"),
            snapshot: rd.attr("snapshot"),
            ..Default::default()
        };
        d.driver = rd.child("driver").map(Driver::parse).transpose()?;
        d.auth = rd.child("auth").map(Auth::parse);
        d.source = rd.child("source").map(DiskSource::parse).transpose()?;
        if let Some(src) = d.source.as_mut() {
            // libvirt reads only the attributes of the disk's own source type, and an
            // empty path is no path (a drive without media).
            if d.dtype.as_deref() != Some("network") {
                src.name = None;
            }
            src.file = src.file.take().filter(|f| !f.is_empty());
            src.dev = src.dev.take().filter(|f| !f.is_empty());
        }
        d.backing_store = rd
            .child("backingStore")
            .map(BackingStore::parse)
            .transpose()?;
        d.geometry = rd.child("geometry").map(Geometry::parse).transpose()?;
        d.blockio = rd.child("blockio").map(Blockio::parse).transpose()?;
        d.mirror = rd.child_node("mirror");
        if d.auth.is_some() && d.source.as_ref().is_some_and(|s| s.auth.is_some()) {
            return Err(DomainError::Config(
                "unsupported configuration: an <auth> definition already found for disk source"
                    .to_string(),
            ));
        }
        let no_target = || {
            let what = d
                .source
                .as_ref()
                .and_then(|s| s.path().or(s.name.as_deref()))
                .unwrap_or("");
            DomainError::Xml(format!("missing target information for device {what}"))
        };
        let t = rd.child("target").ok_or_else(no_target)?;
        let trd = Rd::new(t);
        d.target = DiskTarget {
            dev: trd
                .attr("dev")
                .filter(|s| !s.is_empty())
                .ok_or_else(no_target)?,
            bus: trd.attr("bus"),
            // `closed` is the unset value, not written back.
            tray: trd.attr("tray").filter(|t| t != "closed"),
            removable: trd.attr("removable"),
            rotation_rate: opt_uint(&trd, "rotation_rate")?,
            extra: trd.extra(),
        };
        d.iotune = rd.child("iotune").map(IoTune::parse).transpose()?;
        // A CD-ROM is always read-only (libvirt: virDomainDiskDefParseXML).
        d.readonly = rd.child("readonly").is_some() || d.device.as_deref() == Some("cdrom");
        // A read-only disk takes no snapshot anyway: libvirt does not keep snapshot='no'.
        if d.readonly && d.snapshot.as_deref() == Some("no") {
            d.snapshot = None;
        }
        d.shareable = rd.child("shareable").is_some();
        d.transient = rd
            .child("transient")
            .map(|t| t.attr("shareBacking").map(String::from));
        d.serial = rd.child_text("serial");
        d.wwn = rd.child_text("wwn");
        d.vendor = rd.child_text("vendor");
        d.product = rd.child_text("product");
        d.encryption = rd.child("encryption").map(Encryption::parse);
        if d.encryption.is_some() && d.source.as_ref().is_some_and(|s| s.encryption.is_some()) {
            return Err(DomainError::Config(
                "unsupported configuration: an <encryption> definition already found for disk source"
                    .to_string(),
            ));
        }
        d.info = DeviceInfo::parse(&rd)?;
        d.extra = rd.extra();
        Ok(d)
    }

    fn to_node(&self) -> XmlNode {
        let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).t(v));
        let mut n = XmlNode::new("disk")
            .ao("type", self.dtype.as_ref())
            .ao("device", self.device.as_ref())
            .ao("model", self.model.as_ref())
            .ao("rawio", self.rawio.as_ref())
            .ao("sgio", self.sgio.as_ref())
            .ao("snapshot", self.snapshot.as_ref())
            .extra_attrs(&self.extra)
            .co(self.driver.as_ref().map(Driver::to_node))
            .co(self.auth.as_ref().map(Auth::to_node))
            .co(self.source.as_ref().map(DiskSource::to_node))
            .co(self.backing_store.as_ref().map(BackingStore::to_node))
            .co(self.geometry.as_ref().map(Geometry::to_node))
            .co(self.blockio.as_ref().map(Blockio::to_node))
            .co(self.mirror.clone())
            .c(XmlNode::new("target")
                .a("dev", &self.target.dev)
                .ao("bus", self.target.bus.as_ref())
                .ao("tray", self.target.tray.as_ref())
                .ao("removable", self.target.removable.as_ref())
                .ao("rotation_rate", self.target.rotation_rate)
                .extra_attrs(&self.target.extra)
                .extra_children(&self.target.extra))
            .co(self.iotune.as_ref().map(IoTune::to_node));
        if self.readonly {
            n = n.c(XmlNode::new("readonly"));
        }
        if self.shareable {
            n = n.c(XmlNode::new("shareable"));
        }
        n = n
            .co(self
                .transient
                .as_ref()
                .map(|t| XmlNode::new("transient").ao("shareBacking", t.as_ref())))
            .co(text("serial", &self.serial))
            .co(text("wwn", &self.wwn))
            .co(text("vendor", &self.vendor))
            .co(text("product", &self.product))
            .co(self.encryption.as_ref().map(Encryption::to_node));
        finish(n, &self.extra, &self.info)
    }
}

/// `<controller>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Controller {
    pub ctype: String,
    pub index: Option<u32>,
    pub model: Option<String>,
    pub ports: Option<u32>,
    pub vectors: Option<u32>,
    pub max_grant_frames: Option<String>,
    pub max_event_channels: Option<String>,
    /// `<model name='...'/>` of PCI controllers.
    pub model_name: Option<String>,
    pub target: Option<ControllerTarget>,
    pub driver: Option<ControllerDriver>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

/// `<driver>` of a controller (virtio-scsi, virtio-serial, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerDriver {
    pub queues: Option<u32>,
    pub cmd_per_lun: Option<u32>,
    pub max_sectors: Option<u32>,
    pub ioeventfd: Option<String>,
    pub iothread: Option<u32>,
    pub virtio: VirtioOptions,
    pub extra: Extra,
}

impl ControllerDriver {
    fn parse(n: &XmlNode) -> Result<ControllerDriver, DomainError> {
        let rd = Rd::new(n);
        Ok(ControllerDriver {
            queues: opt_uint(&rd, "queues")?,
            cmd_per_lun: opt_uint(&rd, "cmd_per_lun")?,
            max_sectors: opt_uint(&rd, "max_sectors")?,
            ioeventfd: rd.attr("ioeventfd"),
            iothread: opt_uint(&rd, "iothread")?,
            virtio: VirtioOptions::parse(&rd),
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("driver")
            .ao("queues", self.queues)
            .ao("cmd_per_lun", self.cmd_per_lun)
            .ao("max_sectors", self.max_sectors)
            .ao("ioeventfd", self.ioeventfd.as_ref())
            .ao("iothread", self.iothread)
            .extra_attrs(&self.extra);
        self.virtio.apply(n).extra_children(&self.extra)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerTarget {
    pub chassis_nr: Option<u32>,
    pub chassis: Option<u32>,
    pub port: Option<u32>,
    pub bus_nr: Option<u32>,
    pub index: Option<u32>,
    pub hotplug: Option<String>,
    pub extra: Extra,
}

impl Controller {
    fn parse(n: &XmlNode) -> Result<Controller, DomainError> {
        let rd = Rd::new(n);
        let mut c = Controller {
            ctype: rd.attr("type").unwrap_or_else(|| "ide".to_string()),
            index: opt_uint(&rd, "index")?,
            model: rd.attr("model"),
            ports: opt_uint(&rd, "ports")?,
            vectors: opt_uint(&rd, "vectors")?,
            max_grant_frames: rd.attr("maxGrantFrames"),
            max_event_channels: rd.attr("maxEventChannels"),
            ..Default::default()
        };
        c.model_name = rd
            .child("model")
            .and_then(|m| m.attr("name").map(String::from));
        if let Some(t) = rd.child("target") {
            let trd = Rd::new(t);
            c.target = Some(ControllerTarget {
                chassis_nr: opt_uint(&trd, "chassisNr")?,
                chassis: opt_uint(&trd, "chassis")?,
                port: opt_uint(&trd, "port")?,
                bus_nr: opt_uint(&trd, "busNr")?,
                index: opt_uint(&trd, "index")?,
                hotplug: trd.attr("hotplug"),
                extra: trd.extra(),
            });
        }
        c.driver = rd
            .child("driver")
            .map(ControllerDriver::parse)
            .transpose()?;
        c.info = DeviceInfo::parse(&rd)?;
        c.extra = rd.extra();
        Ok(c)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("controller")
            .a("type", &self.ctype)
            .ao("index", self.index)
            .ao("model", self.model.as_ref())
            .ao("ports", self.ports)
            .ao("vectors", self.vectors)
            .ao("maxGrantFrames", self.max_grant_frames.as_ref())
            .ao("maxEventChannels", self.max_event_channels.as_ref())
            .extra_attrs(&self.extra)
            .co(self
                .model_name
                .as_ref()
                .map(|m| XmlNode::new("model").a("name", m)))
            .co(self.target.as_ref().map(|t| {
                XmlNode::new("target")
                    .ao("chassisNr", t.chassis_nr)
                    .ao("chassis", t.chassis)
                    .ao("port", t.port.map(|p| format!("0x{p:x}")))
                    .ao("busNr", t.bus_nr)
                    .ao("index", t.index)
                    .ao("hotplug", t.hotplug.as_ref())
                    .extra_attrs(&t.extra)
                    .extra_children(&t.extra)
            }))
            .co(self.driver.as_ref().map(ControllerDriver::to_node));
        finish(n, &self.extra, &self.info)
    }
}

/// `<source>` of an interface; which attributes apply depends on the interface type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceSource {
    pub network: Option<String>,
    pub portgroup: Option<String>,
    pub portid: Option<String>,
    pub bridge: Option<String>,
    pub dev: Option<String>,
    /// vhost-user socket type (`unix`).
    pub stype: Option<String>,
    pub path: Option<String>,
    pub mode: Option<String>,
    pub address: Option<String>,
    pub port: Option<String>,
    /// `<local address='..' port='..'/>` of UDP sockets.
    pub local_address: Option<String>,
    pub local_port: Option<String>,
    pub extra: Extra,
}

impl InterfaceSource {
    fn parse(n: &XmlNode) -> InterfaceSource {
        let rd = Rd::new(n);
        let mut s = InterfaceSource {
            network: rd.attr("network"),
            portgroup: rd.attr("portgroup"),
            portid: rd.attr("portid"),
            bridge: rd.attr("bridge"),
            dev: rd.attr("dev"),
            stype: rd.attr("type"),
            path: rd.attr("path"),
            mode: rd.attr("mode"),
            address: rd.attr("address"),
            port: rd.attr("port"),
            ..Default::default()
        };
        if let Some(l) = rd.child("local") {
            s.local_address = l.attr("address").map(String::from);
            s.local_port = l.attr("port").map(String::from);
        }
        s.extra = rd.extra();
        s
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("source")
            .ao("network", self.network.as_ref())
            .ao("portgroup", self.portgroup.as_ref())
            .ao("portid", self.portid.as_ref())
            .ao("bridge", self.bridge.as_ref())
            .ao("dev", self.dev.as_ref())
            .ao("type", self.stype.as_ref())
            .ao("path", self.path.as_ref())
            .ao("mode", self.mode.as_ref())
            .ao("address", self.address.as_ref())
            .ao("port", self.port.as_ref())
            .extra_attrs(&self.extra)
            .co(
                if self.local_address.is_some() || self.local_port.is_some() {
                    Some(
                        XmlNode::new("local")
                            .ao("address", self.local_address.as_ref())
                            .ao("port", self.local_port.as_ref()),
                    )
                } else {
                    None
                },
            )
            .extra_children(&self.extra)
    }
}

/// `<virtualport type='openvswitch|802.1Qbg|802.1Qbh|midonet'><parameters .../></virtualport>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VirtualPort {
    pub vtype: Option<String>,
    /// Attributes of `<parameters>` (interfaceid, profileid, managerid, ...), in order.
    pub parameters: Option<Vec<(String, String)>>,
}

impl VirtualPort {
    fn parse(n: &XmlNode) -> VirtualPort {
        VirtualPort {
            vtype: n.attr("type").map(String::from),
            parameters: n.child("parameters").map(|p| p.attrs.clone()),
        }
    }

    fn to_node(&self) -> XmlNode {
        let mut n = XmlNode::new("virtualport").ao("type", self.vtype.as_ref());
        if let Some(p) = &self.parameters {
            let mut params = XmlNode::new("parameters");
            params.attrs = p.clone();
            n = n.c(params);
        }
        n
    }
}

/// Traffic shaping of one direction: `<inbound average='..' peak='..' floor='..' burst='..'/>`,
/// rates in KiB/s and burst in KiB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rate {
    pub average: Option<u64>,
    pub peak: Option<u64>,
    pub floor: Option<u64>,
    pub burst: Option<u64>,
}

/// `<bandwidth>` of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bandwidth {
    pub inbound: Option<Rate>,
    pub outbound: Option<Rate>,
}

impl Bandwidth {
    fn parse(n: &XmlNode) -> Result<Bandwidth, DomainError> {
        let rate = |name: &str| -> Result<Option<Rate>, DomainError> {
            let Some(r) = n.child(name) else {
                return Ok(None);
            };
            let num = |a: &str| -> Result<Option<u64>, DomainError> {
                r.attr(a)
                    .map(|v| {
                        v.trim().parse().map_err(|_| {
                            xml_err(format!("could not convert bandwidth {a} value '{v}'"))
                        })
                    })
                    .transpose()
            };
            Ok(Some(Rate {
                average: num("average")?,
                peak: num("peak")?,
                floor: num("floor")?,
                burst: num("burst")?,
            }))
        };
        Ok(Bandwidth {
            inbound: rate("inbound")?,
            outbound: rate("outbound")?,
        })
    }

    fn to_node(&self) -> XmlNode {
        let rate = |name: &str, r: &Option<Rate>| {
            r.as_ref().map(|r| {
                XmlNode::new(name)
                    .ao("average", r.average)
                    .ao("peak", r.peak)
                    .ao("floor", r.floor)
                    .ao("burst", r.burst)
            })
        };
        XmlNode::new("bandwidth")
            .co(rate("inbound", &self.inbound))
            .co(rate("outbound", &self.outbound))
    }
}

/// `<vlan trunk='yes'><tag id='42' nativeMode='untagged'/></vlan>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vlan {
    pub trunk: Option<String>,
    /// (tag id, nativeMode).
    pub tags: Vec<(u32, Option<String>)>,
}

impl Vlan {
    fn parse(n: &XmlNode) -> Result<Vlan, DomainError> {
        let mut tags = Vec::new();
        for t in n.children.iter().filter(|c| c.name == "tag") {
            let trd = Rd::new(t);
            tags.push((
                opt_uint(&trd, "id")?
                    .ok_or_else(|| xml_err("missing or invalid vlan tag id attribute"))?,
                trd.attr("nativeMode"),
            ));
        }
        Ok(Vlan {
            trunk: n.attr("trunk").map(String::from),
            tags,
        })
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("vlan")
            .ao("trunk", self.trunk.as_ref())
            .cs(self.tags.iter().map(|(id, mode)| {
                XmlNode::new("tag")
                    .a("id", id)
                    .ao("nativeMode", mode.as_ref())
            }))
    }
}

/// `<ip address='..' family='..' prefix='..' peer='..'/>` of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpAddr {
    pub address: String,
    pub family: Option<String>,
    pub prefix: Option<u32>,
    pub peer: Option<String>,
    pub extra: Extra,
}

impl IpAddr {
    fn parse(n: &XmlNode) -> Result<IpAddr, DomainError> {
        let rd = Rd::new(n);
        Ok(IpAddr {
            address: rd
                .attr("address")
                .ok_or_else(|| xml_err("Missing required address in <ip>"))?,
            family: rd.attr("family"),
            prefix: opt_uint(&rd, "prefix")?,
            peer: rd.attr("peer"),
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("ip")
            .a("address", &self.address)
            .ao("family", self.family.as_ref())
            .ao("prefix", self.prefix)
            .ao("peer", self.peer.as_ref())
            .extra_attrs(&self.extra)
    }
}

/// `<route family='..' address='..' prefix='..' gateway='..' metric='..'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub family: Option<String>,
    pub address: Option<String>,
    pub netmask: Option<String>,
    pub prefix: Option<u32>,
    pub gateway: Option<String>,
    pub metric: Option<u32>,
    pub extra: Extra,
}

impl Route {
    fn parse(n: &XmlNode) -> Result<Route, DomainError> {
        let rd = Rd::new(n);
        Ok(Route {
            family: rd.attr("family"),
            address: rd.attr("address"),
            netmask: rd.attr("netmask"),
            prefix: opt_uint(&rd, "prefix")?,
            gateway: rd.attr("gateway"),
            metric: opt_uint(&rd, "metric")?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("route")
            .ao("family", self.family.as_ref())
            .ao("address", self.address.as_ref())
            .ao("netmask", self.netmask.as_ref())
            .ao("prefix", self.prefix)
            .ao("gateway", self.gateway.as_ref())
            .ao("metric", self.metric)
            .extra_attrs(&self.extra)
    }
}

/// `<interface>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    /// `user`, `network`, `bridge`, `ethernet`, `mcast`, `server`, `client`, `udp`, ...
    pub itype: String,
    pub managed: Option<String>,
    pub trust_guest_rx_filters: Option<String>,
    pub mac: Option<String>,
    pub mac_extra: Extra,
    /// `<driver name='vfio'/>` of hostdev interfaces, written before `<source>`.
    pub hostdev_driver: Option<String>,
    /// `<source>` of non-hostdev interfaces.
    pub source: Option<InterfaceSource>,
    /// `<source>` of hostdev interfaces (the PCI device).
    pub hostdev_source: Option<HostdevSource>,
    pub virtualport: Option<VirtualPort>,
    pub bandwidth: Option<Bandwidth>,
    pub vlan: Option<Vlan>,
    pub ips: Vec<IpAddr>,
    pub routes: Vec<Route>,
    pub script: Option<String>,
    pub downscript: Option<String>,
    pub backenddomain: Option<XmlNode>,
    pub target_dev: Option<String>,
    pub target_extra: Extra,
    /// `<guest dev='..' actual='..'/>`.
    pub guest_dev: Option<String>,
    pub guest_actual: Option<String>,
    pub model: Option<String>,
    pub driver: Option<Driver>,
    /// `<backend tap='/dev/net/tun' vhost='/dev/vhost-net'/>`.
    pub backend_tap: Option<String>,
    pub backend_vhost: Option<String>,
    /// `<backend type='passt' logFile='..'/>` of user interfaces (`default` is SLIRP).
    pub backend_type: Option<String>,
    pub backend_logfile: Option<String>,
    pub filterref: Option<XmlNode>,
    /// `<tune><sndbuf>N</sndbuf></tune>`.
    pub tune_sndbuf: Option<u64>,
    /// `<teaming type='persistent|transient' persistent='alias'/>`.
    pub teaming_type: Option<String>,
    pub teaming_persistent: Option<String>,
    pub link_state: Option<String>,
    pub mtu: Option<String>,
    /// `<coalesce><rx><frames max='N'/></rx></coalesce>`.
    pub coalesce_rx_frames_max: Option<u32>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Interface {
    fn parse(n: &XmlNode) -> Result<Interface, DomainError> {
        let rd = Rd::new(n);
        let mut i = Interface {
            // libvirt: virDomainNetDefParseXML reads the type as an optional enum whose
            // zero value is `user`: an interface without one is a user-mode NIC.
            itype: rd.attr("type").unwrap_or_else(|| "user".to_string()),
            managed: rd.attr("managed"),
            trust_guest_rx_filters: rd.attr("trustGuestRxFilters"),
            ..Default::default()
        };
        if let Some(m) = rd.child("mac") {
            let mrd = Rd::new(m);
            i.mac = mrd.attr("address");
            i.mac_extra = mrd.extra();
        }
        if i.itype == "hostdev" {
            i.hostdev_driver = rd
                .child("driver")
                .map(|d| d.attr("name").unwrap_or("").to_string());
            i.hostdev_source = rd.child("source").map(HostdevSource::parse).transpose()?;
        } else {
            // An empty `<source/>` names nothing, and libvirt writes none back.
            i.source = rd
                .child("source")
                .map(InterfaceSource::parse)
                .filter(|s| *s != InterfaceSource::default());
        }
        i.virtualport = rd.child("virtualport").map(VirtualPort::parse);
        // An empty `<bandwidth/>` sets nothing, and libvirt keeps nothing of it.
        i.bandwidth = rd
            .child("bandwidth")
            .map(Bandwidth::parse)
            .transpose()?
            .filter(|b| b.inbound.is_some() || b.outbound.is_some());
        i.vlan = rd.child("vlan").map(Vlan::parse).transpose()?;
        i.ips = rd
            .children("ip")
            .into_iter()
            .map(IpAddr::parse)
            .collect::<Result<_, _>>()?;
        i.routes = rd
            .children("route")
            .into_iter()
            .map(Route::parse)
            .collect::<Result<_, _>>()?;
        i.script = rd
            .child("script")
            .and_then(|s| s.attr("path").map(String::from));
        i.downscript = rd
            .child("downscript")
            .and_then(|s| s.attr("path").map(String::from));
        i.backenddomain = rd.child_node("backenddomain");
        if let Some(t) = rd.child("target") {
            let trd = Rd::new(t);
            i.target_dev = trd.attr("dev");
            i.target_extra = trd.extra();
        }
        if let Some(g) = rd.child("guest") {
            i.guest_dev = g.attr("dev").map(String::from);
            i.guest_actual = g.attr("actual").map(String::from);
        }
        i.model = rd
            .child("model")
            .and_then(|m| m.attr("type").map(String::from));
        if i.itype != "hostdev" {
            i.driver = rd.child("driver").map(Driver::parse).transpose()?;
        }
        if let Some(b) = rd.child("backend") {
            i.backend_tap = b.attr("tap").map(String::from);
            i.backend_vhost = b.attr("vhost").map(String::from);
            i.backend_type = b.attr("type").map(String::from);
            i.backend_logfile = b.attr("logFile").map(String::from);
        }
        i.filterref = rd.child_node("filterref");
        if let Some(t) = rd.child("tune") {
            i.tune_sndbuf =
                match t.child("sndbuf") {
                    Some(b) => Some(b.text.trim().parse().map_err(|_| {
                        xml_err(format!("invalid sndbuf size '{}'", b.text.trim()))
                    })?),
                    None => None,
                };
        }
        if let Some(t) = rd.child("teaming") {
            i.teaming_type = t.attr("type").map(String::from);
            i.teaming_persistent = t.attr("persistent").map(String::from);
        }
        i.link_state = rd
            .child("link")
            .and_then(|l| l.attr("state").map(String::from));
        i.mtu = rd
            .child("mtu")
            .and_then(|l| l.attr("size").map(String::from));
        if let Some(c) = rd.child("coalesce") {
            let frames = c.child("rx").and_then(|rx| rx.child("frames"));
            i.coalesce_rx_frames_max = match frames {
                Some(f) => opt_uint(&Rd::new(f), "max")?,
                None => None,
            };
        }
        i.info = DeviceInfo::parse(&rd)?;
        i.extra = rd.extra();
        Ok(i)
    }

    fn to_node(&self) -> XmlNode {
        let path =
            |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).a("path", v));
        let n = XmlNode::new("interface")
            .a("type", &self.itype)
            .ao("managed", self.managed.as_ref())
            .ao("trustGuestRxFilters", self.trust_guest_rx_filters.as_ref())
            .extra_attrs(&self.extra)
            .co(self.mac.as_ref().map(|m| {
                XmlNode::new("mac")
                    .a("address", m)
                    .extra_attrs(&self.mac_extra)
            }))
            .co(self
                .hostdev_driver
                .as_ref()
                .map(|n| XmlNode::new("driver").ao("name", Some(n).filter(|n| !n.is_empty()))))
            .co(self.hostdev_source.as_ref().map(HostdevSource::to_node))
            .co(self.source.as_ref().map(InterfaceSource::to_node))
            .co(self.virtualport.as_ref().map(VirtualPort::to_node))
            .co(self.bandwidth.as_ref().map(Bandwidth::to_node))
            .co(self.vlan.as_ref().map(Vlan::to_node))
            .cs(self.ips.iter().map(IpAddr::to_node))
            .cs(self.routes.iter().map(Route::to_node))
            .co(path("script", &self.script))
            .co(path("downscript", &self.downscript))
            .co(self.backenddomain.clone())
            .co(
                if self.target_dev.is_some() || !self.target_extra.is_empty() {
                    Some(
                        XmlNode::new("target")
                            .ao("dev", self.target_dev.as_ref())
                            .extra_attrs(&self.target_extra),
                    )
                } else {
                    None
                },
            )
            .co(if self.guest_dev.is_some() || self.guest_actual.is_some() {
                Some(
                    XmlNode::new("guest")
                        .ao("dev", self.guest_dev.as_ref())
                        .ao("actual", self.guest_actual.as_ref()),
                )
            } else {
                None
            })
            .co(self
                .model
                .as_ref()
                .map(|m| XmlNode::new("model").a("type", m)))
            .co(self.driver.as_ref().map(Driver::to_node))
            .co(
                if self.backend_tap.is_some()
                    || self.backend_vhost.is_some()
                    || self.backend_type.is_some()
                    || self.backend_logfile.is_some()
                {
                    Some(
                        XmlNode::new("backend")
                            .ao("type", self.backend_type.as_ref())
                            .ao("tap", self.backend_tap.as_ref())
                            .ao("vhost", self.backend_vhost.as_ref())
                            .ao("logFile", self.backend_logfile.as_ref()),
                    )
                } else {
                    None
                },
            )
            .co(self.filterref.clone())
            .co(self
                .tune_sndbuf
                .map(|b| XmlNode::new("tune").c(XmlNode::new("sndbuf").t(b))))
            .co(self.teaming_type.as_ref().map(|t| {
                XmlNode::new("teaming")
                    .a("type", t)
                    .ao("persistent", self.teaming_persistent.as_ref())
            }))
            .co(self
                .link_state
                .as_ref()
                .map(|s| XmlNode::new("link").a("state", s)))
            .co(self.mtu.as_ref().map(|s| XmlNode::new("mtu").a("size", s)))
            .co(self.coalesce_rx_frames_max.map(|m| {
                XmlNode::new("coalesce").c(XmlNode::new("rx").c(XmlNode::new("frames").a("max", m)))
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// One `<source>` of a character device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChrSource {
    pub mode: Option<String>,
    pub host: Option<String>,
    pub service: Option<String>,
    pub path: Option<String>,
    pub append: Option<String>,
    pub channel: Option<String>,
    pub tls: Option<String>,
    /// `<reconnect>`, `<seclabel>`, ...
    pub extra: Extra,
}

impl ChrSource {
    fn parse(s: &XmlNode) -> ChrSource {
        let srd = Rd::new(s);
        ChrSource {
            mode: srd.attr("mode"),
            host: srd.attr("host"),
            service: srd.attr("service"),
            path: srd.attr("path"),
            append: srd.attr("append"),
            channel: srd.attr("channel"),
            tls: srd.attr("tls"),
            extra: srd.extra(),
        }
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("source")
            .ao("mode", self.mode.as_ref())
            .ao("host", self.host.as_ref())
            .ao("service", self.service.as_ref())
            .ao("path", self.path.as_ref())
            .ao("append", self.append.as_ref())
            .ao("channel", self.channel.as_ref())
            .ao("tls", self.tls.as_ref())
            .extra_attrs(&self.extra)
            .extra_children(&self.extra)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChrTarget {
    pub ttype: Option<String>,
    pub address: Option<String>,
    pub port: Option<String>,
    pub name: Option<String>,
    pub state: Option<String>,
    pub model: Option<String>,
    pub extra: Extra,
}

/// `<serial>`, `<parallel>`, `<console>`, `<channel>`: which one is in `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chardev {
    /// `serial`, `parallel`, `console`, `channel` or `redirdev`.
    pub kind: String,
    /// `bus` of a redirdev.
    pub bus: Option<String>,
    /// Source type: `pty`, `file`, `unix`, `tcp`, `udp`, `null`, `vc`, `stdio`, `spicevmc`, ...
    pub stype: Option<String>,
    pub sources: Vec<ChrSource>,
    /// `<protocol type='telnet'/>` of TCP sources.
    pub protocol: Option<String>,
    pub log: Option<ChrLog>,
    pub target: Option<ChrTarget>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Chardev {
    fn parse(n: &XmlNode) -> Result<Chardev, DomainError> {
        let rd = Rd::new(n);
        let mut c = Chardev {
            kind: n.name.clone(),
            bus: rd.attr("bus"),
            stype: rd.attr("type"),
            ..Default::default()
        };
        c.sources = rd
            .children("source")
            .into_iter()
            .map(ChrSource::parse)
            .collect();
        c.protocol = rd
            .child("protocol")
            .and_then(|p| p.attr("type").map(String::from));
        c.log = rd.child("log").map(ChrLog::parse);
        if let Some(t) = rd.child("target") {
            let trd = Rd::new(t);
            c.target = Some(ChrTarget {
                ttype: trd.attr("type"),
                address: trd.attr("address"),
                port: trd.attr("port"),
                name: trd.attr("name"),
                state: trd.attr("state"),
                model: trd
                    .child("model")
                    .and_then(|m| m.attr("name").map(String::from)),
                extra: trd.extra(),
            });
        }
        c.info = DeviceInfo::parse(&rd)?;
        c.extra = rd.extra();
        Ok(c)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new(&self.kind)
            .ao("bus", self.bus.as_ref())
            .ao("type", self.stype.as_ref())
            .extra_attrs(&self.extra)
            .cs(self.sources.iter().map(ChrSource::to_node))
            .co(self
                .protocol
                .as_ref()
                .map(|p| XmlNode::new("protocol").a("type", p)))
            .co(self.log.as_ref().map(ChrLog::to_node))
            .co(self.target.as_ref().map(|t| {
                XmlNode::new("target")
                    .ao("type", t.ttype.as_ref())
                    .ao("address", t.address.as_ref())
                    .ao("port", t.port.as_ref())
                    .ao("name", t.name.as_ref())
                    .ao("state", t.state.as_ref())
                    .extra_attrs(&t.extra)
                    .co(t.model.as_ref().map(|m| XmlNode::new("model").a("name", m)))
                    .extra_children(&t.extra)
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// `<source>` of passthrough (`evdev`) and evdev (`dev`, `grab`, ...) inputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InputSource {
    pub evdev: Option<String>,
    pub dev: Option<String>,
    pub grab: Option<String>,
    pub grab_toggle: Option<String>,
    pub repeat: Option<String>,
    pub extra: Extra,
}

/// `<input>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Input {
    pub itype: String,
    pub bus: Option<String>,
    pub model: Option<String>,
    pub driver: Option<Driver>,
    pub source: Option<InputSource>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Input {
    fn parse(n: &XmlNode) -> Result<Input, DomainError> {
        let rd = Rd::new(n);
        let i = Input {
            itype: rd.attr("type").unwrap_or_default(),
            bus: rd.attr("bus"),
            model: rd.attr("model"),
            driver: rd.child("driver").map(Driver::parse).transpose()?,
            source: rd.child("source").map(|s| {
                let srd = Rd::new(s);
                InputSource {
                    evdev: srd.attr("evdev"),
                    dev: srd.attr("dev"),
                    grab: srd.attr("grab"),
                    grab_toggle: srd.attr("grabToggle"),
                    repeat: srd.attr("repeat"),
                    extra: srd.extra(),
                }
            }),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        };
        Ok(i)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("input")
            .a("type", &self.itype)
            .ao("bus", self.bus.as_ref())
            .ao("model", self.model.as_ref())
            .extra_attrs(&self.extra)
            .co(self.driver.as_ref().map(Driver::to_node))
            .co(self.source.as_ref().map(|s| {
                XmlNode::new("source")
                    .ao("evdev", s.evdev.as_ref())
                    .ao("dev", s.dev.as_ref())
                    .ao("grab", s.grab.as_ref())
                    .ao("grabToggle", s.grab_toggle.as_ref())
                    .ao("repeat", s.repeat.as_ref())
                    .extra_attrs(&s.extra)
                    .extra_children(&s.extra)
            }));
        finish(n, &self.extra, &self.info)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GraphicsListen {
    pub ltype: String,
    pub address: Option<String>,
    pub network: Option<String>,
    pub socket: Option<String>,
    pub extra: Extra,
}

/// `<graphics>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graphics {
    /// `vnc`, `spice`, `sdl`, `egl-headless`, `dbus`, ...
    pub gtype: String,
    pub socket: Option<String>,
    pub port: Option<String>,
    pub tls_port: Option<String>,
    pub autoport: Option<String>,
    pub websocket: Option<String>,
    /// The legacy `listen` attribute, mirrored from the first `<listen>`.
    pub listen: Option<String>,
    pub keymap: Option<String>,
    pub default_mode: Option<String>,
    pub share_policy: Option<String>,
    pub passwd: Option<String>,
    pub passwd_valid_to: Option<String>,
    pub connected: Option<String>,
    pub listens: Vec<GraphicsListen>,
    /// SPICE `<channel name='main' mode='secure'/>`: (name, mode).
    pub channels: Vec<(String, String)>,
    /// SPICE compression and streaming settings: `<image compression>`, `<jpeg compression>`,
    /// `<zlib compression>`, `<playback compression>`, `<streaming mode>`.
    pub image_compression: Option<String>,
    pub jpeg_compression: Option<String>,
    pub zlib_compression: Option<String>,
    pub playback_compression: Option<String>,
    pub streaming_mode: Option<String>,
    pub clipboard_copypaste: Option<String>,
    pub mouse_mode: Option<String>,
    pub filetransfer_enable: Option<String>,
    /// `<gl enable='yes' rendernode='/dev/dri/...'/>`.
    pub gl_enable: Option<String>,
    pub gl_rendernode: Option<String>,
    pub gl_present: bool,
    /// `<audio id='N'/>` of VNC/SPICE.
    pub audio_id: Option<u32>,
    pub extra: Extra,
}

/// SPICE channel names in libvirt's order (virDomainGraphicsSpiceChannelName).
const SPICE_CHANNELS: &[&str] = &[
    "main",
    "display",
    "inputs",
    "cursor",
    "playback",
    "record",
    "smartcard",
    "usbredir",
];

impl Graphics {
    fn parse(n: &XmlNode) -> Result<Graphics, DomainError> {
        let rd = Rd::new(n);
        let mut g = Graphics {
            gtype: rd.attr("type").unwrap_or_default(),
            socket: rd.attr("socket"),
            port: rd.attr("port"),
            tls_port: rd.attr("tlsPort"),
            autoport: rd.attr("autoport"),
            websocket: rd.attr("websocket"),
            listen: rd.attr("listen"),
            keymap: rd.attr("keymap"),
            default_mode: rd.attr("defaultMode"),
            share_policy: rd.attr("sharePolicy"),
            passwd: rd.attr("passwd"),
            passwd_valid_to: rd.attr("passwdValidTo"),
            connected: rd.attr("connected"),
            ..Default::default()
        };
        for l in rd.children("listen") {
            let lrd = Rd::new(l);
            g.listens.push(GraphicsListen {
                ltype: lrd.attr("type").unwrap_or_default(),
                address: lrd.attr("address"),
                network: lrd.attr("network"),
                socket: lrd.attr("socket"),
                extra: lrd.extra(),
            });
        }
        g.channels = rd
            .children("channel")
            .into_iter()
            .map(|c| {
                (
                    c.attr("name").unwrap_or("").to_string(),
                    c.attr("mode").unwrap_or("").to_string(),
                )
            })
            .collect();
        // libvirt keeps one mode per SPICE channel and writes them in its channel order.
        g.channels.sort_by_key(|(name, _)| {
            SPICE_CHANNELS
                .iter()
                .position(|c| c == name)
                .unwrap_or(SPICE_CHANNELS.len())
        });
        let attr_of =
            |el: &str, attr: &str| rd.child(el).and_then(|c| c.attr(attr).map(String::from));
        g.image_compression = attr_of("image", "compression");
        g.jpeg_compression = attr_of("jpeg", "compression");
        g.zlib_compression = attr_of("zlib", "compression");
        g.playback_compression = attr_of("playback", "compression");
        g.streaming_mode = attr_of("streaming", "mode");
        g.clipboard_copypaste = attr_of("clipboard", "copypaste");
        g.mouse_mode = attr_of("mouse", "mode");
        g.filetransfer_enable = attr_of("filetransfer", "enable");
        if let Some(gl) = rd.child("gl") {
            g.gl_present = true;
            g.gl_enable = gl.attr("enable").map(String::from);
            g.gl_rendernode = gl.attr("rendernode").map(String::from);
        }
        g.audio_id = match rd.child("audio") {
            Some(a) => opt_uint(&Rd::new(a), "id")?,
            None => None,
        };
        g.extra = rd.extra();
        // The legacy attributes mirror the first listen element (libvirt writes them from
        // it): `listen` its address, VNC's `socket` its socket.
        match g.listens.first() {
            Some(l) if l.ltype == "address" && g.listen.is_none() => {
                g.listen = l.address.clone();
            }
            Some(l) if l.ltype == "socket" && g.gtype == "vnc" && g.socket.is_none() => {
                g.socket = l.socket.clone();
            }
            _ => {}
        }
        // The legacy listen attribute stands for a listen element of type address.
        if g.listens.is_empty()
            && let Some(addr) = &g.listen
        {
            g.listens.push(GraphicsListen {
                ltype: "address".to_string(),
                address: Some(addr.clone()),
                ..Default::default()
            });
        }
        let socket_listen = g.socket.is_some()
            || g.listens
                .iter()
                .any(|l| l.ltype == "socket" || l.ltype == "none");
        if g.gtype == "vnc" && !socket_listen {
            // An absent or negative port means "pick one": libvirt records that as autoport.
            let auto = match g.port.as_deref() {
                None | Some("-1") => g.autoport.as_deref() != Some("no"),
                _ => g.autoport.as_deref() == Some("yes"),
            };
            if auto {
                // A running domain's XML keeps the port its start allocated.
                let allocated = g.port.as_deref().and_then(|p| p.parse::<u32>().ok());
                if allocated.is_none_or(|p| p == 0) {
                    g.port = Some("-1".to_string());
                }
                g.autoport = Some("yes".to_string());
            }
        }
        if g.gtype == "spice"
            && g.autoport.as_deref() == Some("no")
            && g.port.is_none()
            && g.tls_port.is_none()
        {
            g.autoport = None;
        }
        Ok(g)
    }

    fn to_node(&self, flags: FormatFlags) -> XmlNode {
        let minus_one = "-1".to_string();
        let one = |el: &str, attr: &str, v: &Option<String>| {
            v.as_ref().map(|v| XmlNode::new(el).a(attr, v))
        };
        XmlNode::new("graphics")
            .a("type", &self.gtype)
            .ao("socket", self.socket.as_ref())
            // An allocated port is state: the inactive XML says "pick one" again.
            .ao(
                "port",
                if flags.inactive && self.gtype == "vnc" && self.autoport.as_deref() == Some("yes")
                {
                    Some(&minus_one)
                } else {
                    self.port.as_ref()
                },
            )
            .ao("tlsPort", self.tls_port.as_ref())
            .ao("autoport", self.autoport.as_ref())
            .ao("websocket", self.websocket.as_ref())
            .ao("listen", self.listen.as_ref())
            .ao("keymap", self.keymap.as_ref())
            .ao("defaultMode", self.default_mode.as_ref())
            .ao("sharePolicy", self.share_policy.as_ref())
            .ao("passwd", self.passwd.as_ref().filter(|_| flags.secure))
            .ao("passwdValidTo", self.passwd_valid_to.as_ref())
            .ao("connected", self.connected.as_ref())
            .extra_attrs(&self.extra)
            .cs(self.listens.iter().map(|l| {
                XmlNode::new("listen")
                    .a("type", &l.ltype)
                    .ao("address", l.address.as_ref())
                    .ao("network", l.network.as_ref())
                    .ao("socket", l.socket.as_ref())
                    .extra_attrs(&l.extra)
            }))
            .cs(self
                .channels
                .iter()
                .map(|(name, mode)| XmlNode::new("channel").a("name", name).a("mode", mode)))
            .co(one("image", "compression", &self.image_compression))
            .co(one("jpeg", "compression", &self.jpeg_compression))
            .co(one("zlib", "compression", &self.zlib_compression))
            .co(one("playback", "compression", &self.playback_compression))
            .co(one("streaming", "mode", &self.streaming_mode))
            .co(one("clipboard", "copypaste", &self.clipboard_copypaste))
            .co(one("mouse", "mode", &self.mouse_mode))
            .co(one("filetransfer", "enable", &self.filetransfer_enable))
            .co(self.gl_present.then(|| {
                XmlNode::new("gl")
                    .ao("enable", self.gl_enable.as_ref())
                    .ao("rendernode", self.gl_rendernode.as_ref())
            }))
            .co(self.audio_id.map(|id| XmlNode::new("audio").a("id", id)))
            .extra_children(&self.extra)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VideoModel {
    pub vtype: String,
    pub ram: Option<u32>,
    pub vram: Option<u32>,
    pub vram64: Option<u32>,
    pub vgamem: Option<u32>,
    pub heads: Option<u32>,
    pub primary: Option<String>,
    pub extra: Extra,
}

/// `<video>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Video {
    pub driver: Option<Driver>,
    pub model: Option<VideoModel>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Video {
    fn parse(n: &XmlNode) -> Result<Video, DomainError> {
        let rd = Rd::new(n);
        let mut v = Video {
            driver: rd.child("driver").map(Driver::parse).transpose()?,
            ..Default::default()
        };
        if let Some(m) = rd.child("model") {
            let mrd = Rd::new(m);
            v.model = Some(VideoModel {
                vtype: mrd.attr("type").unwrap_or_default(),
                ram: opt_uint(&mrd, "ram")?,
                vram: opt_uint(&mrd, "vram")?,
                vram64: opt_uint(&mrd, "vram64")?,
                vgamem: opt_uint(&mrd, "vgamem")?,
                heads: opt_uint(&mrd, "heads")?,
                primary: mrd.attr("primary"),
                extra: mrd.extra(),
            });
        }
        v.info = DeviceInfo::parse(&rd)?;
        v.extra = rd.extra();
        Ok(v)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("video")
            .extra_attrs(&self.extra)
            .co(self.driver.as_ref().map(Driver::to_node_name_last))
            .co(self.model.as_ref().map(|m| {
                // A model without a type (libvirt then picks the default) stays without one:
                // `type=''` would not read back.
                XmlNode::new("model")
                    .ao("type", (!m.vtype.is_empty()).then_some(&m.vtype))
                    .ao("ram", m.ram)
                    .ao("vram", m.vram)
                    .ao("vram64", m.vram64)
                    .ao("vgamem", m.vgamem)
                    .ao("heads", m.heads)
                    .ao("primary", m.primary.as_ref())
                    .extra_attrs(&m.extra)
                    .extra_children(&m.extra)
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// `<audio>` backend.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audio {
    pub id: Option<u32>,
    pub atype: String,
    /// Backend-specific attributes and `<input>`/`<output>`, in document order.
    pub extra: Extra,
}

impl Audio {
    fn parse(n: &XmlNode) -> Result<Audio, DomainError> {
        let rd = Rd::new(n);
        Ok(Audio {
            id: opt_uint(&rd, "id")?,
            atype: rd.attr("type").unwrap_or_default(),
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("audio")
            .ao("id", self.id)
            .a("type", &self.atype)
            .extra_attrs(&self.extra)
            .extra_children(&self.extra)
    }
}

/// A device whose only modelled attribute is its `model` (panic): the model typed, the rest
/// kept, the info typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelDevice {
    pub model: Option<String>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl ModelDevice {
    fn parse(n: &XmlNode) -> Result<ModelDevice, DomainError> {
        let rd = Rd::new(n);
        Ok(ModelDevice {
            model: rd.attr("model"),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self, name: &str) -> XmlNode {
        let n = XmlNode::new(name)
            .ao("model", self.model.as_ref())
            .extra_attrs(&self.extra);
        finish(n, &self.extra, &self.info)
    }

    /// A modelled sub-element, for consumers that need e.g. the rng `<backend>`.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.extra.children.iter().find(|c| c.name == name)
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.extra
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A device we type only as far as its info: attributes and children kept in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenericDevice {
    pub name: String,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl GenericDevice {
    fn parse(n: &XmlNode) -> Result<GenericDevice, DomainError> {
        let rd = Rd::new(n);
        Ok(GenericDevice {
            name: n.name.clone(),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        finish(
            XmlNode::new(&self.name).extra_attrs(&self.extra),
            &self.extra,
            &self.info,
        )
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.extra
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `<binary>`: how libvirt runs virtiofsd for a virtiofs filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsBinary {
    pub path: Option<String>,
    pub xattr: Option<String>,
    pub cache_mode: Option<String>,
    pub sandbox_mode: Option<String>,
    pub lock_posix: Option<String>,
    pub lock_flock: Option<String>,
    pub thread_pool_size: Option<u32>,
    pub extra: Extra,
}

impl FsBinary {
    fn parse(n: &XmlNode) -> Result<FsBinary, DomainError> {
        let rd = Rd::new(n);
        let attr_of = |el: &str, a: &str| rd.child(el).and_then(|c| c.attr(a).map(String::from));
        let lock = rd.child("lock");
        Ok(FsBinary {
            path: rd.attr("path"),
            xattr: rd.attr("xattr"),
            cache_mode: attr_of("cache", "mode"),
            sandbox_mode: attr_of("sandbox", "mode"),
            lock_posix: lock.and_then(|l| l.attr("posix").map(String::from)),
            lock_flock: lock.and_then(|l| l.attr("flock").map(String::from)),
            thread_pool_size: match rd.child("thread_pool") {
                Some(t) => opt_uint(&Rd::new(t), "size")?,
                None => None,
            },
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let one =
            |el: &str, a: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(el).a(a, v));
        XmlNode::new("binary")
            .ao("path", self.path.as_ref())
            .ao("xattr", self.xattr.as_ref())
            .extra_attrs(&self.extra)
            .co(one("cache", "mode", &self.cache_mode))
            .co(one("sandbox", "mode", &self.sandbox_mode))
            .co(if self.lock_posix.is_some() || self.lock_flock.is_some() {
                Some(
                    XmlNode::new("lock")
                        .ao("posix", self.lock_posix.as_ref())
                        .ao("flock", self.lock_flock.as_ref()),
                )
            } else {
                None
            })
            .co(self
                .thread_pool_size
                .map(|n| XmlNode::new("thread_pool").a("size", n)))
            .extra_children(&self.extra)
    }
}

/// `<source>` of a filesystem; which attribute is set depends on the filesystem type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsSource {
    pub dir: Option<String>,
    pub file: Option<String>,
    pub dev: Option<String>,
    pub name: Option<String>,
    pub socket: Option<String>,
    pub usage: Option<String>,
    pub units: Option<String>,
    pub extra: Extra,
}

/// `<filesystem>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filesystem {
    pub ftype: Option<String>,
    pub accessmode: Option<String>,
    pub model: Option<String>,
    pub multidevs: Option<String>,
    pub fmode: Option<String>,
    pub dmode: Option<String>,
    pub driver: Option<Driver>,
    pub binary: Option<FsBinary>,
    pub source: Option<FsSource>,
    pub target_dir: Option<String>,
    pub readonly: bool,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Filesystem {
    fn parse(n: &XmlNode) -> Result<Filesystem, DomainError> {
        let rd = Rd::new(n);
        Ok(Filesystem {
            ftype: rd.attr("type"),
            accessmode: rd.attr("accessmode"),
            model: rd.attr("model"),
            multidevs: rd.attr("multidevs"),
            fmode: rd.attr("fmode"),
            dmode: rd.attr("dmode"),
            driver: rd.child("driver").map(Driver::parse).transpose()?,
            binary: rd.child("binary").map(FsBinary::parse).transpose()?,
            source: rd.child("source").map(|s| {
                let srd = Rd::new(s);
                FsSource {
                    dir: srd.attr("dir"),
                    file: srd.attr("file"),
                    dev: srd.attr("dev"),
                    name: srd.attr("name"),
                    socket: srd.attr("socket"),
                    usage: srd.attr("usage"),
                    units: srd.attr("units"),
                    extra: srd.extra(),
                }
            }),
            target_dir: rd
                .child("target")
                .and_then(|t| t.attr("dir").map(String::from)),
            readonly: rd.child("readonly").is_some(),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let mut n = XmlNode::new("filesystem")
            .ao("type", self.ftype.as_ref())
            .ao("accessmode", self.accessmode.as_ref())
            .ao("model", self.model.as_ref())
            .ao("multidevs", self.multidevs.as_ref())
            .ao("fmode", self.fmode.as_ref())
            .ao("dmode", self.dmode.as_ref())
            .extra_attrs(&self.extra)
            .co(self.driver.as_ref().map(Driver::to_node_name_last))
            .co(self.binary.as_ref().map(FsBinary::to_node))
            .co(self.source.as_ref().map(|s| {
                XmlNode::new("source")
                    .ao("dir", s.dir.as_ref())
                    .ao("file", s.file.as_ref())
                    .ao("dev", s.dev.as_ref())
                    .ao("name", s.name.as_ref())
                    .ao("socket", s.socket.as_ref())
                    .ao("usage", s.usage.as_ref())
                    .ao("units", s.units.as_ref())
                    .extra_attrs(&s.extra)
                    .extra_children(&s.extra)
            }))
            .co(self
                .target_dir
                .as_ref()
                .map(|d| XmlNode::new("target").a("dir", d)));
        if self.readonly {
            n = n.c(XmlNode::new("readonly"));
        }
        finish(n, &self.extra, &self.info)
    }
}

/// The host-side address inside a hostdev `<source>`; its shape depends on the hostdev type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddress {
    Pci {
        domain: u32,
        bus: u32,
        slot: u32,
        function: u32,
    },
    Usb {
        bus: String,
        device: String,
    },
    Scsi {
        bus: u32,
        target: u32,
        unit: u32,
    },
    Mdev {
        uuid: String,
    },
    /// Anything else (e.g. one carrying a `type`), kept verbatim.
    Other(XmlNode),
}

impl HostAddress {
    fn parse(n: &XmlNode) -> Result<HostAddress, DomainError> {
        let rd = Rd::new(n);
        let u = |a: &str| opt_uint(&rd, a).map(|v| v.unwrap_or(0));
        let a = if n.attr("type").is_some() {
            return Ok(HostAddress::Other(n.clone()));
        } else if n.attr("uuid").is_some() {
            HostAddress::Mdev {
                uuid: rd.attr("uuid").unwrap_or_default(),
            }
        } else if n.attr("device").is_some() {
            HostAddress::Usb {
                bus: rd.attr("bus").unwrap_or_default(),
                device: rd.attr("device").unwrap_or_default(),
            }
        } else if n.attr("unit").is_some() || n.attr("target").is_some() {
            HostAddress::Scsi {
                bus: u("bus")?,
                target: u("target")?,
                unit: u("unit")?,
            }
        } else if n.attr("slot").is_some() {
            HostAddress::Pci {
                domain: u("domain")?,
                bus: u("bus")?,
                slot: u("slot")?,
                function: u("function")?,
            }
        } else {
            return Ok(HostAddress::Other(n.clone()));
        };
        if !rd.extra().is_empty() {
            return Ok(HostAddress::Other(n.clone()));
        }
        Ok(a)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("address");
        match self {
            HostAddress::Pci {
                domain,
                bus,
                slot,
                function,
            } => n
                .a("domain", format_args!("0x{domain:04x}"))
                .a("bus", format_args!("0x{bus:02x}"))
                .a("slot", format_args!("0x{slot:02x}"))
                .a("function", format_args!("0x{function:x}")),
            HostAddress::Usb { bus, device } => n.a("bus", bus).a("device", device),
            HostAddress::Scsi { bus, target, unit } => {
                n.a("bus", bus).a("target", target).a("unit", unit)
            }
            HostAddress::Mdev { uuid } => n.a("uuid", uuid),
            HostAddress::Other(o) => o.clone(),
        }
    }
}

/// A hostdev `<source>`: PCI/USB/SCSI/mdev/vhost-scsi host device, or a capabilities
/// (storage/misc/net) source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostdevSource {
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub wwpn: Option<String>,
    pub startup_policy: Option<String>,
    pub guest_reset: Option<String>,
    pub write_filtering: Option<String>,
    /// USB vendor and product ids.
    pub vendor: Option<String>,
    pub product: Option<String>,
    /// SCSI host adapter name.
    pub adapter: Option<String>,
    pub address: Option<HostAddress>,
    /// Capabilities hostdevs: `<block>`, `<char>`, `<interface>` text.
    pub block: Option<String>,
    pub char_dev: Option<String>,
    pub interface: Option<String>,
    /// iSCSI `<host>`, `<auth>`, `<initiator>`, ... in document order.
    pub extra: Extra,
}

impl HostdevSource {
    /// An iSCSI hostdev's source read as the network disk source it has the shape of
    /// (protocol, name, `<host>`, `<auth>`, `<initiator>`).
    pub fn network_source(&self) -> Result<DiskSource, DomainError> {
        DiskSource::parse(&self.to_node())
    }

    fn parse(n: &XmlNode) -> Result<HostdevSource, DomainError> {
        let rd = Rd::new(n);
        let id = |name: &str| rd.child(name).and_then(|c| c.attr("id").map(String::from));
        Ok(HostdevSource {
            protocol: rd.attr("protocol"),
            name: rd.attr("name"),
            wwpn: rd.attr("wwpn"),
            startup_policy: rd.attr("startupPolicy"),
            guest_reset: rd.attr("guestReset"),
            write_filtering: rd.attr("writeFiltering"),
            vendor: id("vendor"),
            product: id("product"),
            adapter: rd
                .child("adapter")
                .and_then(|c| c.attr("name").map(String::from)),
            address: rd.child("address").map(HostAddress::parse).transpose()?,
            block: rd.child_text("block"),
            char_dev: rd.child_text("char"),
            interface: rd.child_text("interface"),
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).t(v));
        let id = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).a("id", v));
        XmlNode::new("source")
            .ao("protocol", self.protocol.as_ref())
            .ao("name", self.name.as_ref())
            .ao("wwpn", self.wwpn.as_ref())
            .ao("startupPolicy", self.startup_policy.as_ref())
            .ao("guestReset", self.guest_reset.as_ref())
            .ao("writeFiltering", self.write_filtering.as_ref())
            .extra_attrs(&self.extra)
            .co(id("vendor", &self.vendor))
            .co(id("product", &self.product))
            .co(self
                .adapter
                .as_ref()
                .map(|a| XmlNode::new("adapter").a("name", a)))
            .co(self.address.as_ref().map(HostAddress::to_node))
            .co(text("block", &self.block))
            .co(text("char", &self.char_dev))
            .co(text("interface", &self.interface))
            .extra_children(&self.extra)
    }
}

/// `<hostdev>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hostdev {
    pub mode: Option<String>,
    pub htype: Option<String>,
    pub managed: Option<String>,
    pub model: Option<String>,
    pub display: Option<String>,
    pub ramfb: Option<String>,
    /// `<driver name='vfio'/>`.
    pub driver_name: Option<String>,
    pub source: Option<HostdevSource>,
    pub readonly: bool,
    pub shareable: bool,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Hostdev {
    fn parse(n: &XmlNode) -> Result<Hostdev, DomainError> {
        let rd = Rd::new(n);
        Ok(Hostdev {
            mode: rd.attr("mode"),
            htype: rd.attr("type"),
            managed: rd.attr("managed"),
            model: rd.attr("model"),
            display: rd.attr("display"),
            ramfb: rd.attr("ramfb"),
            driver_name: rd
                .child("driver")
                .and_then(|d| d.attr("name").map(String::from)),
            source: rd.child("source").map(HostdevSource::parse).transpose()?,
            readonly: rd.child("readonly").is_some(),
            shareable: rd.child("shareable").is_some(),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let mut n = XmlNode::new("hostdev")
            .ao("mode", self.mode.as_ref())
            .ao("type", self.htype.as_ref())
            .ao("managed", self.managed.as_ref())
            .ao("model", self.model.as_ref())
            .ao("display", self.display.as_ref())
            .ao("ramfb", self.ramfb.as_ref())
            .extra_attrs(&self.extra)
            .co(self
                .driver_name
                .as_ref()
                .map(|d| XmlNode::new("driver").a("name", d)))
            .co(self.source.as_ref().map(HostdevSource::to_node));
        if self.readonly {
            n = n.c(XmlNode::new("readonly"));
        }
        if self.shareable {
            n = n.c(XmlNode::new("shareable"));
        }
        // The boot order of a hostdev sits between its source and its alias, as for any device.
        finish(n, &self.extra, &self.info)
    }
}

/// Disks being parsed, kept the way [`Devices::insert_disk`] orders them: one group per bus
/// in order of first appearance, each sorted by target index with ties in document order.
/// Inserting one by one into a flat list is quadratic, which hostile input could exploit.
#[derive(Default)]
struct DiskGroups {
    groups: Vec<DiskGroup>,
}

/// The disks of one bus, each with its target index.
type DiskGroup = (Option<String>, Vec<(i64, Disk)>);

impl DiskGroups {
    fn insert(&mut self, disk: Disk) {
        let idx = disk_name_to_index(&disk.target.dev);
        let group = match self.groups.iter().position(|(b, _)| *b == disk.target.bus) {
            Some(g) => g,
            None => {
                self.groups.push((disk.target.bus.clone(), Vec::new()));
                self.groups.len() - 1
            }
        };
        if let Some((_, list)) = self.groups.get_mut(group) {
            let at = list.partition_point(|(i, _)| *i <= idx);
            list.insert(at, (idx, disk));
        }
    }

    fn into_disks(self) -> Vec<Disk> {
        self.groups
            .into_iter()
            .flat_map(|(_, list)| list.into_iter().map(|(_, d)| d))
            .collect()
    }
}

/// The index encoded in a disk target name (`vda` = 0, `sdz` = 25, `hdaa` = 26), or -1 when
/// the name has no known prefix or a malformed suffix, as libvirt computes it.
pub fn disk_name_to_index(name: &str) -> i64 {
    let Some(rest) = ["fd", "hd", "vd", "sd", "xvd", "ubd"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
    else {
        return -1;
    };
    let letters: &str = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_lowercase()) {
        return -1;
    }
    let mut idx: i64 = 0;
    for (i, b) in letters.bytes().enumerate() {
        let next = if i > 0 { idx + 1 } else { idx };
        idx = match next
            .checked_mul(26)
            .and_then(|v| v.checked_add(i64::from(b - b'a')))
        {
            Some(v) => v,
            None => return -1,
        };
    }
    idx
}

/// All devices, grouped by kind as libvirt stores and formats them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Devices {
    pub emulator: Option<String>,
    pub disks: Vec<Disk>,
    pub controllers: Vec<Controller>,
    pub leases: Vec<Lease>,
    pub filesystems: Vec<Filesystem>,
    pub interfaces: Vec<Interface>,
    pub smartcards: Vec<Smartcard>,
    pub serials: Vec<Chardev>,
    pub parallels: Vec<Chardev>,
    pub consoles: Vec<Chardev>,
    pub channels: Vec<Chardev>,
    pub inputs: Vec<Input>,
    pub tpms: Vec<Tpm>,
    pub graphics: Vec<Graphics>,
    pub sounds: Vec<Sound>,
    pub audios: Vec<Audio>,
    pub videos: Vec<Video>,
    pub hostdevs: Vec<Hostdev>,
    pub redirdevs: Vec<Chardev>,
    pub redirfilters: Vec<RedirFilter>,
    pub hubs: Vec<Hub>,
    pub watchdogs: Vec<Watchdog>,
    pub memballoon: Option<Memballoon>,
    pub rngs: Vec<Rng>,
    pub nvram: Option<GenericDevice>,
    pub panics: Vec<ModelDevice>,
    pub shmems: Vec<Shmem>,
    pub memories: Vec<MemoryDevice>,
    pub iommu: Option<Iommu>,
    pub vsock: Option<Vsock>,
    pub cryptos: Vec<Crypto>,
    /// Device elements we do not know, written last.
    pub others: Vec<XmlNode>,
}

impl Devices {
    pub fn parse(n: &XmlNode) -> Result<Devices, DomainError> {
        let mut d = Devices::default();
        let mut disk_groups = DiskGroups::default();
        for c in &n.children {
            match c.name.as_str() {
                "emulator" => d.emulator = Some(c.text.clone()),
                "disk" => disk_groups.insert(Disk::parse(c)?),
                "controller" => d.controllers.push(Controller::parse(c)?),
                "lease" => d.leases.push(Lease::parse(c)),
                "filesystem" => d.filesystems.push(Filesystem::parse(c)?),
                "interface" => d.interfaces.push(Interface::parse(c)?),
                "smartcard" => d.smartcards.push(Smartcard::parse(c)?),
                "serial" => d.serials.push(Chardev::parse(c)?),
                "parallel" => d.parallels.push(Chardev::parse(c)?),
                "console" => d.consoles.push(Chardev::parse(c)?),
                "channel" => d.channels.push(Chardev::parse(c)?),
                "input" => d.inputs.push(Input::parse(c)?),
                "tpm" => d.tpms.push(Tpm::parse(c)?),
                "graphics" => d.graphics.push(Graphics::parse(c)?),
                "sound" => d.sounds.push(Sound::parse(c)?),
                "audio" => d.audios.push(Audio::parse(c)?),
                "video" => d.videos.push(Video::parse(c)?),
                "hostdev" => d.hostdevs.push(Hostdev::parse(c)?),
                "redirdev" => d.redirdevs.push(Chardev::parse(c)?),
                "redirfilter" => d.redirfilters.push(RedirFilter::parse(c)),
                "hub" => d.hubs.push(Hub::parse(c)?),
                "watchdog" => d.watchdogs.push(Watchdog::parse(c)?),
                "memballoon" => {
                    if d.memballoon.is_some() {
                        return Err(xml_err("only a single memory balloon device is supported"));
                    }
                    d.memballoon = Some(Memballoon::parse(c)?);
                }
                "rng" => d.rngs.push(Rng::parse(c)?),
                "nvram" => d.nvram = Some(GenericDevice::parse(c)?),
                "panic" => d.panics.push(ModelDevice::parse(c)?),
                "shmem" => d.shmems.push(Shmem::parse(c)?),
                "memory" => d.memories.push(MemoryDevice::parse(c)?),
                "iommu" => {
                    if d.iommu.is_some() {
                        return Err(xml_err("only a single IOMMU device is supported"));
                    }
                    d.iommu = Some(Iommu::parse(c)?);
                }
                "vsock" => {
                    if d.vsock.is_some() {
                        return Err(xml_err("only a single vsock device is supported"));
                    }
                    d.vsock = Some(Vsock::parse(c)?);
                }
                "crypto" => d.cryptos.push(Crypto::parse(c)?),
                _ => d.others.push(c.clone()),
            }
        }
        d.disks = disk_groups.into_disks();
        d.check_disk_targets()?;
        let mut orders = std::collections::BTreeSet::new();
        for info in d.infos() {
            if let Some(b) = &info.boot
                && !orders.insert(b.order)
            {
                return Err(xml_err(format!(
                    "boot order '{}' used for more than one device",
                    b.order
                )));
            }
        }
        Ok(d)
    }

    /// Insert a disk where libvirt's parser puts it: disks stay grouped by bus, ordered by
    /// target index within a bus, and a new bus goes last. This order shows in the formatted
    /// XML and in error messages, so it has to match.
    pub fn insert_disk(&mut self, disk: Disk) {
        let idx = disk_name_to_index(&disk.target.dev);
        let mut insert_at: Option<usize> = None;
        for (i, d) in self.disks.iter().enumerate().rev() {
            if d.target.bus != disk.target.bus {
                continue;
            }
            if disk_name_to_index(&d.target.dev) > idx {
                insert_at = Some(i);
            } else if insert_at.is_none() {
                insert_at = Some(i + 1);
            }
        }
        let at = insert_at.unwrap_or(self.disks.len());
        self.disks.insert(at, disk);
    }

    /// Whether any device has a `<boot order>`.
    pub fn has_boot_order(&self) -> bool {
        self.infos().any(|i| i.boot.is_some())
    }

    /// The info of every device that has one.
    pub fn infos(&self) -> impl Iterator<Item = &DeviceInfo> {
        let mut all: Vec<&DeviceInfo> = Vec::new();
        all.extend(self.disks.iter().map(|d| &d.info));
        all.extend(self.controllers.iter().map(|d| &d.info));
        all.extend(self.filesystems.iter().map(|d| &d.info));
        all.extend(self.interfaces.iter().map(|d| &d.info));
        all.extend(self.smartcards.iter().map(|d| &d.info));
        all.extend(self.serials.iter().map(|d| &d.info));
        all.extend(self.parallels.iter().map(|d| &d.info));
        all.extend(self.consoles.iter().map(|d| &d.info));
        all.extend(self.channels.iter().map(|d| &d.info));
        all.extend(self.inputs.iter().map(|d| &d.info));
        all.extend(self.tpms.iter().map(|d| &d.info));
        all.extend(self.sounds.iter().map(|d| &d.info));
        all.extend(self.videos.iter().map(|d| &d.info));
        all.extend(self.hostdevs.iter().map(|d| &d.info));
        all.extend(self.redirdevs.iter().map(|d| &d.info));
        all.extend(self.hubs.iter().map(|d| &d.info));
        all.extend(self.watchdogs.iter().map(|d| &d.info));
        all.extend(self.memballoon.iter().map(|d| &d.info));
        all.extend(self.rngs.iter().map(|d| &d.info));
        all.extend(self.nvram.iter().map(|d| &d.info));
        all.extend(self.panics.iter().map(|d| &d.info));
        all.extend(self.shmems.iter().map(|d| &d.info));
        all.extend(self.memories.iter().map(|d| &d.info));
        all.extend(self.iommu.iter().map(|d| &d.info));
        all.extend(self.vsock.iter().map(|d| &d.info));
        all.extend(self.cryptos.iter().map(|d| &d.info));
        all.into_iter()
    }

    /// libvirt refuses two disks with the same target name.
    fn check_disk_targets(&self) -> Result<(), DomainError> {
        // libvirt compares every disk with the ones after it and reports the first pair found,
        // i.e. the duplicated target whose first use comes earliest, with its second use.
        let mut seen: std::collections::HashMap<&str, (usize, Option<usize>)> =
            std::collections::HashMap::new();
        for (i, d) in self.disks.iter().enumerate() {
            seen.entry(d.target.dev.as_str())
                .and_modify(|e| {
                    e.1.get_or_insert(i);
                })
                .or_insert((i, None));
        }
        let Some((first, second)) = seen.values().filter_map(|&(a, b)| b.map(|b| (a, b))).min()
        else {
            return Ok(());
        };
        let src = |d: &Disk| {
            d.source
                .as_ref()
                .and_then(|s| s.path().or(s.name.as_deref()))
                .unwrap_or("")
                .to_string()
        };
        let (a, b) = (&self.disks[first], &self.disks[second]);
        Err(xml_err(format!(
            "target '{}' duplicated for disk sources '{}' and '{}'",
            a.target.dev,
            src(a),
            src(b)
        )))
    }

    pub fn to_node(&self, flags: FormatFlags) -> XmlNode {
        let mut n = XmlNode::new("devices");
        let mut push = |c: XmlNode| n.children.push(c);
        if let Some(e) = &self.emulator {
            push(XmlNode::new("emulator").t(e));
        }
        self.disks.iter().for_each(|d| push(d.to_node()));
        self.controllers.iter().for_each(|d| push(d.to_node()));
        self.leases.iter().for_each(|d| push(d.to_node()));
        self.filesystems.iter().for_each(|d| push(d.to_node()));
        self.interfaces.iter().for_each(|d| push(d.to_node()));
        self.smartcards.iter().for_each(|d| push(d.to_node()));
        self.serials.iter().for_each(|d| push(d.to_node()));
        self.parallels.iter().for_each(|d| push(d.to_node()));
        self.consoles.iter().for_each(|d| push(d.to_node()));
        self.channels.iter().for_each(|d| push(d.to_node()));
        self.inputs.iter().for_each(|d| push(d.to_node()));
        self.tpms.iter().for_each(|d| push(d.to_node()));
        self.graphics.iter().for_each(|d| push(d.to_node(flags)));
        self.sounds.iter().for_each(|d| push(d.to_node()));
        self.audios.iter().for_each(|d| push(d.to_node()));
        self.videos.iter().for_each(|d| push(d.to_node()));
        self.hostdevs.iter().for_each(|d| push(d.to_node()));
        self.redirdevs.iter().for_each(|d| push(d.to_node()));
        self.redirfilters.iter().for_each(|d| push(d.to_node()));
        self.hubs.iter().for_each(|d| push(d.to_node()));
        self.watchdogs.iter().for_each(|d| push(d.to_node()));
        if let Some(m) = &self.memballoon {
            push(m.to_node());
        }
        self.rngs.iter().for_each(|d| push(d.to_node()));
        if let Some(m) = &self.nvram {
            push(m.to_node());
        }
        self.panics.iter().for_each(|d| push(d.to_node("panic")));
        self.shmems.iter().for_each(|d| push(d.to_node()));
        self.memories.iter().for_each(|d| push(d.to_node()));
        if let Some(m) = &self.iommu {
            push(m.to_node());
        }
        if let Some(m) = &self.vsock {
            push(m.to_node());
        }
        self.cryptos.iter().for_each(|d| push(d.to_node()));
        self.others.iter().for_each(|d| push(d.clone()));
        n
    }
}

fn scaled_child(rd: &Rd<'_>, name: &str) -> Result<Option<u64>, DomainError> {
    match rd.child(name) {
        Some(n) => {
            let unit = n.attr("unit");
            parse_scaled_kib(&n.text, unit, "KiB", MAX_MEMORY_KIB).map(Some)
        }
        None => Ok(None),
    }
}

fn kib_node(name: &str, kib: Option<u64>) -> Option<XmlNode> {
    kib.map(|k| XmlNode::new(name).a("unit", "KiB").t(k))
}

/// One layer of a disk's backing chain. An element with nothing set (`<backingStore/>`)
/// states that the chain ends here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackingStore {
    pub btype: Option<String>,
    pub index: Option<u32>,
    pub format: Option<String>,
    pub format_metadata_cache: Option<MetadataCache>,
    /// Other attributes and children of `<format>`.
    pub format_extra: Extra,
    pub source: Option<DiskSource>,
    pub backing: Option<Box<BackingStore>>,
    pub extra: Extra,
}

impl BackingStore {
    fn parse(n: &XmlNode) -> Result<BackingStore, DomainError> {
        let rd = Rd::new(n);
        let mut b = BackingStore {
            btype: rd.attr("type"),
            index: opt_uint(&rd, "index")?,
            ..Default::default()
        };
        if let Some(f) = rd.child("format") {
            let frd = Rd::new(f);
            b.format = frd.attr("type");
            b.format_metadata_cache = frd
                .child("metadata_cache")
                .map(MetadataCache::parse)
                .transpose()?;
            b.format_extra = frd.extra();
        }
        b.source = rd.child("source").map(DiskSource::parse).transpose()?;
        b.backing = rd
            .child("backingStore")
            .map(|c| BackingStore::parse(c).map(Box::new))
            .transpose()?;
        b.extra = rd.extra();
        Ok(b)
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("backingStore")
            .ao("type", self.btype.as_ref())
            .ao("index", self.index)
            .extra_attrs(&self.extra)
            .co(if self.format.is_some() || !self.format_extra.is_empty() {
                Some(
                    XmlNode::new("format")
                        .ao("type", self.format.as_ref())
                        .extra_attrs(&self.format_extra)
                        .co(self
                            .format_metadata_cache
                            .as_ref()
                            .map(MetadataCache::to_node))
                        .extra_children(&self.format_extra),
                )
            } else {
                None
            })
            .co(self.source.as_ref().map(DiskSource::to_node))
            .co(self.backing.as_ref().map(|b| b.to_node()))
            .extra_children(&self.extra)
    }
}

/// Disk I/O throttling, in libvirt's fixed element order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoTune {
    /// `(element name, value)`; values are numbers except `group_name`.
    pub values: Vec<(String, String)>,
}

pub const IOTUNE_ORDER: &[&str] = &[
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
    "total_bytes_sec_max",
    "read_bytes_sec_max",
    "write_bytes_sec_max",
    "total_iops_sec_max",
    "read_iops_sec_max",
    "write_iops_sec_max",
    "size_iops_sec",
    "group_name",
    "total_bytes_sec_max_length",
    "read_bytes_sec_max_length",
    "write_bytes_sec_max_length",
    "total_iops_sec_max_length",
    "read_iops_sec_max_length",
    "write_iops_sec_max_length",
];

impl IoTune {
    fn parse(n: &XmlNode) -> Result<IoTune, DomainError> {
        let mut values = Vec::new();
        for c in &n.children {
            let v = c.text.trim().to_string();
            if c.name != "group_name" && v.parse::<u64>().is_err() {
                return Err(xml_err(format!(
                    "disk iotune field '{}' must be an integer",
                    c.name
                )));
            }
            values.push((c.name.clone(), v));
        }
        Ok(IoTune { values })
    }

    /// A numeric limit, when set.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
    }

    fn to_node(&self) -> XmlNode {
        let mut v = self.values.clone();
        v.sort_by_key(|(k, _)| {
            IOTUNE_ORDER
                .iter()
                .position(|o| o == k)
                .unwrap_or(IOTUNE_ORDER.len())
        });
        XmlNode::new("iotune").cs(v.into_iter().map(|(k, val)| XmlNode::new(&k).t(val)))
    }
}

/// `<rng>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rng {
    pub model: Option<String>,
    pub rate_bytes: Option<String>,
    pub rate_period: Option<String>,
    /// `random`, `egd`, `builtin`.
    pub backend_model: Option<String>,
    /// Chardev type of an `egd` backend.
    pub backend_type: Option<String>,
    /// Device path of a `random` backend.
    pub backend_path: Option<String>,
    /// `<source>`/`<protocol>` of an `egd` backend.
    pub backend_extra: Extra,
    pub driver: Option<Driver>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Rng {
    fn parse(n: &XmlNode) -> Result<Rng, DomainError> {
        let rd = Rd::new(n);
        let mut r = Rng {
            model: rd.attr("model"),
            ..Default::default()
        };
        if let Some(rate) = rd.child("rate") {
            r.rate_bytes = rate.attr("bytes").map(String::from);
            r.rate_period = rate.attr("period").map(String::from);
        }
        if let Some(b) = rd.child("backend") {
            let brd = Rd::new(b);
            r.backend_model = brd.attr("model");
            r.backend_type = brd.attr("type");
            r.backend_path = Some(b.text.clone()).filter(|t| !t.trim().is_empty());
            r.backend_extra = brd.extra();
        }
        r.driver = rd.child("driver").map(Driver::parse).transpose()?;
        r.info = DeviceInfo::parse(&rd)?;
        r.extra = rd.extra();
        Ok(r)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("rng")
            .ao("model", self.model.as_ref())
            .extra_attrs(&self.extra)
            .co(if self.rate_bytes.is_some() || self.rate_period.is_some() {
                Some(
                    XmlNode::new("rate")
                        .ao("bytes", self.rate_bytes.as_ref())
                        .ao("period", self.rate_period.as_ref()),
                )
            } else {
                None
            })
            .c(XmlNode::new("backend")
                .ao("model", self.backend_model.as_ref())
                .ao("type", self.backend_type.as_ref())
                .extra_attrs(&self.backend_extra)
                .extra_children(&self.backend_extra)
                .t(self.backend_path.clone().unwrap_or_default()))
            .co(self.driver.as_ref().map(Driver::to_node));
        finish(n, &self.extra, &self.info)
    }
}

/// `<tpm>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tpm {
    pub model: Option<String>,
    /// `passthrough`, `emulator`, `external`.
    pub backend_type: Option<String>,
    pub version: Option<String>,
    pub persistent_state: Option<String>,
    pub device_path: Option<String>,
    pub encryption_secret: Option<String>,
    pub active_pcr_banks: Option<Vec<String>>,
    /// `<source>` of external backends, ...
    pub backend_extra: Extra,
    pub extra: Extra,
    pub info: DeviceInfo,
}

/// The PCR banks a TPM's `<active_pcr_banks>` may list, in libvirt's order (its
/// virDomainTPMPcrBank).
pub const PCR_BANKS: [&str; 4] = ["sha1", "sha256", "sha384", "sha512"];

impl Tpm {
    fn parse(n: &XmlNode) -> Result<Tpm, DomainError> {
        let rd = Rd::new(n);
        let mut t = Tpm {
            model: rd.attr("model"),
            ..Default::default()
        };
        if let Some(b) = rd.child("backend") {
            let brd = Rd::new(b);
            t.backend_type = brd.attr("type");
            t.version = brd.attr("version");
            t.persistent_state = brd.attr("persistent_state");
            t.device_path = brd
                .child("device")
                .and_then(|d| d.attr("path").map(String::from));
            t.encryption_secret = brd
                .child("encryption")
                .and_then(|d| d.attr("secret").map(String::from));
            // Kept in libvirt's order, once each: it holds them as a bitmap.
            if let Some(b) = brd.child("active_pcr_banks") {
                if let Some(bad) = b
                    .children
                    .iter()
                    .find(|c| !PCR_BANKS.contains(&c.name.as_str()))
                {
                    return Err(DomainError::Config(format!(
                        "unsupported configuration: Unsupported PCR banks '{}'",
                        bad.name
                    )));
                }
                t.active_pcr_banks = Some(
                    PCR_BANKS
                        .iter()
                        .filter(|k| b.children.iter().any(|c| c.name == **k))
                        .map(|k| k.to_string())
                        .collect(),
                );
            }
            t.backend_extra = brd.extra();
        }
        t.info = DeviceInfo::parse(&rd)?;
        t.extra = rd.extra();
        Ok(t)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("tpm")
            .ao("model", self.model.as_ref())
            .extra_attrs(&self.extra)
            .c(XmlNode::new("backend")
                .ao("type", self.backend_type.as_ref())
                .ao("version", self.version.as_ref())
                .ao("persistent_state", self.persistent_state.as_ref())
                .extra_attrs(&self.backend_extra)
                .co(self
                    .device_path
                    .as_ref()
                    .map(|p| XmlNode::new("device").a("path", p)))
                .co(self
                    .encryption_secret
                    .as_ref()
                    .map(|s| XmlNode::new("encryption").a("secret", s)))
                .co(self.active_pcr_banks.as_ref().map(|b| {
                    XmlNode::new("active_pcr_banks").cs(b.iter().map(|n| XmlNode::new(n)))
                }))
                .extra_children(&self.backend_extra));
        finish(n, &self.extra, &self.info)
    }
}

/// `<vsock>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vsock {
    pub model: Option<String>,
    pub cid_auto: Option<String>,
    pub cid_address: Option<u32>,
    pub driver: Option<Driver>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Vsock {
    fn parse(n: &XmlNode) -> Result<Vsock, DomainError> {
        let rd = Rd::new(n);
        let mut v = Vsock {
            model: rd.attr("model"),
            ..Default::default()
        };
        if let Some(c) = rd.child("cid") {
            let crd = Rd::new(c);
            v.cid_auto = crd.attr("auto");
            v.cid_address = opt_uint(&crd, "address")?;
        }
        v.driver = rd.child("driver").map(Driver::parse).transpose()?;
        v.info = DeviceInfo::parse(&rd)?;
        v.extra = rd.extra();
        Ok(v)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("vsock")
            .ao("model", self.model.as_ref())
            .extra_attrs(&self.extra)
            .co(if self.cid_auto.is_some() || self.cid_address.is_some() {
                Some(
                    XmlNode::new("cid")
                        .ao("auto", self.cid_auto.as_ref())
                        .ao("address", self.cid_address),
                )
            } else {
                None
            });
        // libvirt writes the virtio driver options after the address here.
        finish(n, &self.extra, &self.info).co(self.driver.as_ref().map(Driver::to_node))
    }
}

/// `<memballoon>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memballoon {
    pub model: Option<MemballoonModel>,
    pub autodeflate: Option<String>,
    pub free_page_reporting: Option<String>,
    pub stats_period: Option<String>,
    pub driver: Option<Driver>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

/// The memory balloon's model, libvirt's virDomainMemballoonModel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemballoonModel {
    Virtio,
    Xen,
    None,
    VirtioTransitional,
    VirtioNonTransitional,
}

impl MemballoonModel {
    const ALL: [MemballoonModel; 5] = [
        MemballoonModel::Virtio,
        MemballoonModel::Xen,
        MemballoonModel::None,
        MemballoonModel::VirtioTransitional,
        MemballoonModel::VirtioNonTransitional,
    ];

    /// The XML name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemballoonModel::Virtio => "virtio",
            MemballoonModel::Xen => "xen",
            MemballoonModel::None => "none",
            MemballoonModel::VirtioTransitional => "virtio-transitional",
            MemballoonModel::VirtioNonTransitional => "virtio-non-transitional",
        }
    }

    pub fn from_name(name: &str) -> Option<MemballoonModel> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// One of the virtio models, served by `virtio-balloon`.
    pub fn is_virtio(self) -> bool {
        matches!(
            self,
            MemballoonModel::Virtio
                | MemballoonModel::VirtioTransitional
                | MemballoonModel::VirtioNonTransitional
        )
    }
}

impl Memballoon {
    fn parse(n: &XmlNode) -> Result<Memballoon, DomainError> {
        let rd = Rd::new(n);
        let model = match rd.attr("model") {
            // libvirt: virXMLPropEnum in virDomainMemballoonDefParseXML
            Some(m) => Some(MemballoonModel::from_name(&m).ok_or_else(|| {
                DomainError::Xml(format!(
                    "XML error: Invalid value for attribute 'model' in element 'memballoon': '{m}'."
                ))
            })?),
            None => None,
        };
        Ok(Memballoon {
            model,
            autodeflate: rd.attr("autodeflate"),
            free_page_reporting: rd.attr("freePageReporting"),
            stats_period: rd
                .child("stats")
                .and_then(|s| s.attr("period").map(String::from)),
            driver: rd.child("driver").map(Driver::parse).transpose()?,
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("memballoon")
            .ao("model", self.model.map(MemballoonModel::as_str))
            .ao("autodeflate", self.autodeflate.as_ref())
            .ao("freePageReporting", self.free_page_reporting.as_ref())
            .extra_attrs(&self.extra)
            .co(self
                .stats_period
                .as_ref()
                .map(|p| XmlNode::new("stats").a("period", p)));
        // libvirt writes the virtio driver options after the address here.
        finish(n, &self.extra, &self.info).co(self.driver.as_ref().map(Driver::to_node))
    }
}

/// `<watchdog>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watchdog {
    pub model: Option<String>,
    pub action: Option<String>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Watchdog {
    fn parse(n: &XmlNode) -> Result<Watchdog, DomainError> {
        let rd = Rd::new(n);
        Ok(Watchdog {
            model: rd.attr("model"),
            action: rd.attr("action"),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("watchdog")
            .ao("model", self.model.as_ref())
            .ao("action", self.action.as_ref())
            .extra_attrs(&self.extra);
        finish(n, &self.extra, &self.info)
    }
}

/// `<memory>` device: DIMM, NVDIMM, virtio-pmem, virtio-mem, SGX EPC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryDevice {
    pub model: Option<String>,
    pub access: Option<String>,
    pub discard: Option<String>,
    pub source: Option<MemorySource>,
    pub target: Option<MemoryTarget>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemorySource {
    pub nodemask: Option<String>,
    pub pagesize_kib: Option<u64>,
    pub path: Option<String>,
    pub alignsize_kib: Option<u64>,
    pub pmem: bool,
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryTarget {
    pub size_kib: Option<u64>,
    pub node: Option<u32>,
    pub label_size_kib: Option<u64>,
    pub block_kib: Option<u64>,
    pub requested_kib: Option<u64>,
    pub current_kib: Option<u64>,
    pub readonly: bool,
    pub extra: Extra,
}

impl MemoryDevice {
    fn parse(n: &XmlNode) -> Result<MemoryDevice, DomainError> {
        let rd = Rd::new(n);
        let mut m = MemoryDevice {
            model: rd.attr("model"),
            access: rd.attr("access"),
            discard: rd.attr("discard"),
            ..Default::default()
        };
        if let Some(s) = rd.child("source") {
            let srd = Rd::new(s);
            m.source = Some(MemorySource {
                nodemask: srd.child_text("nodemask"),
                pagesize_kib: scaled_child(&srd, "pagesize")?,
                path: srd.child_text("path"),
                alignsize_kib: scaled_child(&srd, "alignsize")?,
                pmem: srd.child("pmem").is_some(),
                extra: srd.extra(),
            });
        }
        if let Some(t) = rd.child("target") {
            let trd = Rd::new(t);
            let label_size_kib = match trd.child("label") {
                Some(l) => scaled_child(&Rd::new(l), "size")?,
                None => None,
            };
            m.target = Some(MemoryTarget {
                size_kib: scaled_child(&trd, "size")?,
                node: trd
                    .child_text("node")
                    .map(|v| super::address::parse_uint(&v, "node", "target"))
                    .transpose()?,
                label_size_kib,
                block_kib: scaled_child(&trd, "block")?,
                requested_kib: scaled_child(&trd, "requested")?,
                current_kib: scaled_child(&trd, "current")?,
                readonly: trd.child("readonly").is_some(),
                extra: trd.extra(),
            });
        }
        m.info = DeviceInfo::parse(&rd)?;
        m.extra = rd.extra();
        Ok(m)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("memory")
            .ao("model", self.model.as_ref())
            .ao("access", self.access.as_ref())
            .ao("discard", self.discard.as_ref())
            .extra_attrs(&self.extra)
            .co(self.source.as_ref().map(|s| {
                let mut n = XmlNode::new("source")
                    .co(s.nodemask.as_ref().map(|v| XmlNode::new("nodemask").t(v)))
                    .co(kib_node("pagesize", s.pagesize_kib))
                    .co(s.path.as_ref().map(|v| XmlNode::new("path").t(v)))
                    .co(kib_node("alignsize", s.alignsize_kib));
                if s.pmem {
                    n = n.c(XmlNode::new("pmem"));
                }
                n.extra_children(&s.extra)
            }))
            .co(self.target.as_ref().map(|t| {
                let mut n = XmlNode::new("target")
                    .co(kib_node("size", t.size_kib))
                    .co(t.node.map(|v| XmlNode::new("node").t(v)))
                    .co(t
                        .label_size_kib
                        .map(|k| XmlNode::new("label").co(kib_node("size", Some(k)))))
                    .co(kib_node("block", t.block_kib))
                    .co(kib_node("requested", t.requested_kib))
                    .co(kib_node("current", t.current_kib));
                if t.readonly {
                    n = n.c(XmlNode::new("readonly"));
                }
                n.extra_children(&t.extra)
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// `<smartcard>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Smartcard {
    /// `host`, `host-certificates`, `passthrough`.
    pub mode: Option<String>,
    /// Chardev type of passthrough mode.
    pub stype: Option<String>,
    pub certificates: Vec<String>,
    pub database: Option<String>,
    pub sources: Vec<ChrSource>,
    pub protocol: Option<String>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Smartcard {
    fn parse(n: &XmlNode) -> Result<Smartcard, DomainError> {
        let rd = Rd::new(n);
        Ok(Smartcard {
            mode: rd.attr("mode"),
            stype: rd.attr("type"),
            certificates: rd
                .children("certificate")
                .into_iter()
                .map(|c| c.text.clone())
                .collect(),
            database: rd.child_text("database"),
            sources: rd
                .children("source")
                .into_iter()
                .map(ChrSource::parse)
                .collect(),
            protocol: rd
                .child("protocol")
                .and_then(|p| p.attr("type").map(String::from)),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("smartcard")
            .ao("mode", self.mode.as_ref())
            .ao("type", self.stype.as_ref())
            .extra_attrs(&self.extra)
            .cs(self
                .certificates
                .iter()
                .map(|c| XmlNode::new("certificate").t(c)))
            .co(self
                .database
                .as_ref()
                .map(|d| XmlNode::new("database").t(d)))
            .cs(self.sources.iter().map(ChrSource::to_node))
            .co(self
                .protocol
                .as_ref()
                .map(|p| XmlNode::new("protocol").a("type", p)));
        finish(n, &self.extra, &self.info)
    }
}

/// `<shmem>`: ivshmem.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shmem {
    pub name: String,
    pub role: Option<String>,
    pub model: Option<String>,
    pub size_kib: Option<u64>,
    pub server_path: Option<String>,
    /// `<msi vectors='..' ioeventfd='..' enabled='..'/>` of ivshmem-doorbell.
    pub msi_vectors: Option<u32>,
    pub msi_ioeventfd: Option<String>,
    pub msi_enabled: Option<String>,
    pub msi_present: bool,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Shmem {
    fn parse(n: &XmlNode) -> Result<Shmem, DomainError> {
        let rd = Rd::new(n);
        Ok(Shmem {
            name: rd.attr("name").unwrap_or_default(),
            role: rd.attr("role"),
            model: rd
                .child("model")
                .and_then(|m| m.attr("type").map(String::from)),
            size_kib: scaled_child(&rd, "size")?,
            server_path: rd
                .child("server")
                .map(|s| s.attr("path").unwrap_or("").to_string()),
            msi_vectors: match rd.child("msi") {
                Some(m) => opt_uint(&Rd::new(m), "vectors")?,
                None => None,
            },
            msi_ioeventfd: rd
                .node
                .child("msi")
                .and_then(|m| m.attr("ioeventfd").map(String::from)),
            msi_enabled: rd
                .node
                .child("msi")
                .and_then(|m| m.attr("enabled").map(String::from)),
            msi_present: rd.node.child("msi").is_some(),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("shmem")
            .a("name", &self.name)
            .ao("role", self.role.as_ref())
            .extra_attrs(&self.extra)
            .co(self
                .model
                .as_ref()
                .map(|m| XmlNode::new("model").a("type", m)))
            // libvirt writes the size in MiB.
            .co(self
                .size_kib
                .map(|k| XmlNode::new("size").a("unit", "M").t(k >> 10)))
            .co(self
                .server_path
                .as_ref()
                .map(|p| XmlNode::new("server").ao("path", Some(p).filter(|p| !p.is_empty()))))
            .co(self.msi_present.then(|| {
                XmlNode::new("msi")
                    .ao("vectors", self.msi_vectors)
                    .ao("ioeventfd", self.msi_ioeventfd.as_ref())
                    .ao("enabled", self.msi_enabled.as_ref())
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// `<hub>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hub {
    pub htype: String,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Hub {
    fn parse(n: &XmlNode) -> Result<Hub, DomainError> {
        let rd = Rd::new(n);
        Ok(Hub {
            htype: rd.attr("type").unwrap_or_default(),
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("hub")
            .a("type", &self.htype)
            .extra_attrs(&self.extra);
        finish(n, &self.extra, &self.info)
    }
}

/// `<iommu>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Iommu {
    /// `intel`, `smmuv3`, `virtio`.
    pub model: String,
    pub intremap: Option<String>,
    pub caching_mode: Option<String>,
    pub eim: Option<String>,
    pub iotlb: Option<String>,
    pub aw_bits: Option<u32>,
    /// Attributes of `<driver>` we do not model.
    pub driver_extra: Option<Extra>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Iommu {
    fn parse(n: &XmlNode) -> Result<Iommu, DomainError> {
        let rd = Rd::new(n);
        let mut i = Iommu {
            model: rd.attr("model").unwrap_or_default(),
            ..Default::default()
        };
        if let Some(d) = rd.child("driver") {
            let drd = Rd::new(d);
            i.intremap = drd.attr("intremap");
            i.caching_mode = drd.attr("caching_mode");
            i.eim = drd.attr("eim");
            i.iotlb = drd.attr("iotlb");
            i.aw_bits = opt_uint(&drd, "aw_bits")?;
            i.driver_extra = Some(drd.extra());
        }
        i.info = DeviceInfo::parse(&rd)?;
        i.extra = rd.extra();
        Ok(i)
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("iommu")
            .a("model", &self.model)
            .extra_attrs(&self.extra)
            .co(self.driver_extra.as_ref().map(|e| {
                XmlNode::new("driver")
                    .ao("intremap", self.intremap.as_ref())
                    .ao("caching_mode", self.caching_mode.as_ref())
                    .ao("eim", self.eim.as_ref())
                    .ao("iotlb", self.iotlb.as_ref())
                    .ao("aw_bits", self.aw_bits)
                    .extra_attrs(e)
                    .extra_children(e)
            }));
        finish(n, &self.extra, &self.info)
    }
}

/// `<sound>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sound {
    pub model: String,
    /// `<codec type='duplex|micro|output'/>` of HDA models.
    pub codecs: Vec<String>,
    /// `<audio id='N'/>`: the audio backend used.
    pub audio_id: Option<u32>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Sound {
    fn parse(n: &XmlNode) -> Result<Sound, DomainError> {
        let rd = Rd::new(n);
        let codecs = rd
            .children("codec")
            .into_iter()
            .map(|c| c.attr("type").unwrap_or("").to_string())
            .collect();
        let audio_id = match rd.child("audio") {
            Some(a) => opt_uint(&Rd::new(a), "id")?,
            None => None,
        };
        Ok(Sound {
            model: rd.attr("model").unwrap_or_default(),
            codecs,
            audio_id,
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("sound")
            .a("model", &self.model)
            .extra_attrs(&self.extra)
            .cs(self
                .codecs
                .iter()
                .map(|c| XmlNode::new("codec").a("type", c)))
            .co(self.audio_id.map(|id| XmlNode::new("audio").a("id", id)));
        finish(n, &self.extra, &self.info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(bus: &str, dev: &str) -> Disk {
        Disk {
            target: DiskTarget {
                dev: dev.to_string(),
                bus: Some(bus.to_string()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The grouped insertion used while parsing orders disks exactly like inserting them one
    /// by one with libvirt's algorithm ([`Devices::insert_disk`]).
    #[test]
    fn grouped_insert_matches_sequential_insert() {
        let buses = ["virtio", "sata", "scsi", "ide"];
        let names = [
            "vda", "vdb", "sda", "sdz", "hdc", "vdaa", "bogus", "sdb1", "xvda",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..500 {
            let n = (next() % 12) as usize;
            let mut seq = Devices::default();
            let mut groups = DiskGroups::default();
            for _ in 0..n {
                let d = disk(
                    buses[(next() % buses.len() as u64) as usize],
                    names[(next() % names.len() as u64) as usize],
                );
                seq.insert_disk(d.clone());
                groups.insert(d);
            }
            let order = |v: &[Disk]| {
                v.iter()
                    .map(|d| format!("{:?}:{}", d.target.bus, d.target.dev))
                    .collect::<Vec<_>>()
            };
            assert_eq!(order(&seq.disks), order(&groups.into_disks()));
        }
    }

    #[test]
    fn disk_indices() {
        assert_eq!(disk_name_to_index("vda"), 0);
        assert_eq!(disk_name_to_index("sdz"), 25);
        assert_eq!(disk_name_to_index("hdaa"), 26);
        assert_eq!(disk_name_to_index("xvdb"), 1);
        assert_eq!(disk_name_to_index("vdb1"), 1);
        assert_eq!(disk_name_to_index("bogus"), -1);
    }
}

/// `<lease>`: a lock manager lease.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    pub lockspace: Option<String>,
    pub key: Option<String>,
    pub target_path: Option<String>,
    pub target_offset: Option<String>,
    pub extra: Extra,
}

impl Lease {
    fn parse(n: &XmlNode) -> Lease {
        let rd = Rd::new(n);
        let target = rd.child("target");
        Lease {
            lockspace: rd.child_text("lockspace"),
            key: rd.child_text("key"),
            target_path: target.and_then(|t| t.attr("path").map(String::from)),
            target_offset: target.and_then(|t| t.attr("offset").map(String::from)),
            extra: rd.extra(),
        }
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("lease")
            .extra_attrs(&self.extra)
            .co(self
                .lockspace
                .as_ref()
                .map(|l| XmlNode::new("lockspace").t(l)))
            .co(self.key.as_ref().map(|k| XmlNode::new("key").t(k)))
            .co(self.target_path.as_ref().map(|p| {
                XmlNode::new("target")
                    .a("path", p)
                    .ao("offset", self.target_offset.as_ref())
            }))
            .extra_children(&self.extra)
    }
}

/// One `<usbdev class='..' vendor='..' product='..' version='..' allow='yes|no'/>` rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsbDevRule {
    pub class: Option<String>,
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub allow: Option<String>,
}

/// `<redirfilter>`: which USB devices may be redirected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedirFilter {
    pub rules: Vec<UsbDevRule>,
}

impl RedirFilter {
    fn parse(n: &XmlNode) -> RedirFilter {
        RedirFilter {
            rules: n
                .children
                .iter()
                .filter(|c| c.name == "usbdev")
                .map(|u| UsbDevRule {
                    class: u.attr("class").map(String::from),
                    vendor: u.attr("vendor").map(String::from),
                    product: u.attr("product").map(String::from),
                    version: u.attr("version").map(String::from),
                    allow: u.attr("allow").map(String::from),
                })
                .collect(),
        }
    }

    fn to_node(&self) -> XmlNode {
        XmlNode::new("redirfilter").cs(self.rules.iter().map(|r| {
            XmlNode::new("usbdev")
                .ao("class", r.class.as_ref())
                .ao("vendor", r.vendor.as_ref())
                .ao("product", r.product.as_ref())
                .ao("version", r.version.as_ref())
                .ao("allow", r.allow.as_ref())
        }))
    }
}

/// `<crypto model='virtio' type='qemu'><backend model='builtin|lkcf' queues='N'/></crypto>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Crypto {
    pub model: Option<String>,
    pub ctype: Option<String>,
    pub backend_model: Option<String>,
    pub backend_queues: Option<u32>,
    pub extra: Extra,
    pub info: DeviceInfo,
}

impl Crypto {
    fn parse(n: &XmlNode) -> Result<Crypto, DomainError> {
        let rd = Rd::new(n);
        let (backend_model, backend_queues) = match rd.child("backend") {
            Some(b) => {
                let brd = Rd::new(b);
                (brd.attr("model"), opt_uint(&brd, "queues")?)
            }
            None => (None, None),
        };
        Ok(Crypto {
            model: rd.attr("model"),
            ctype: rd.attr("type"),
            backend_model,
            backend_queues,
            info: DeviceInfo::parse(&rd)?,
            extra: rd.extra(),
        })
    }

    fn to_node(&self) -> XmlNode {
        let n = XmlNode::new("crypto")
            .ao("model", self.model.as_ref())
            .ao("type", self.ctype.as_ref())
            .extra_attrs(&self.extra)
            .co(
                if self.backend_model.is_some() || self.backend_queues.is_some() {
                    Some(
                        XmlNode::new("backend")
                            .ao("model", self.backend_model.as_ref())
                            .ao("queues", self.backend_queues),
                    )
                } else {
                    None
                },
            );
        finish(n, &self.extra, &self.info)
    }
}
