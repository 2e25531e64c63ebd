//! Small typed elements shared by several parts of the domain: secrets, auth, encryption,
//! disk geometry and block sizes, chardev logs.

use super::DomainError;
use super::address::opt_uint;
use super::xml::{Extra, Rd, XmlNode};

/// `<secret type='ceph|iscsi|passphrase|...' usage='...'|uuid='...'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Secret {
    pub stype: Option<String>,
    pub usage: Option<String>,
    pub uuid: Option<String>,
    pub extra: Extra,
}

impl Secret {
    pub fn parse(n: &XmlNode) -> Secret {
        let rd = Rd::new(n);
        Secret {
            stype: rd.attr("type"),
            usage: rd.attr("usage"),
            uuid: rd.attr("uuid"),
            extra: rd.extra(),
        }
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("secret")
            .ao("type", self.stype.as_ref())
            .ao("usage", self.usage.as_ref())
            .ao("uuid", self.uuid.as_ref())
            .extra_attrs(&self.extra)
            .extra_children(&self.extra)
    }
}

/// `<auth username='...'><secret .../></auth>` of network storage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    pub username: Option<String>,
    pub secret: Option<Secret>,
    pub extra: Extra,
}

impl Auth {
    pub fn parse(n: &XmlNode) -> Auth {
        let rd = Rd::new(n);
        Auth {
            username: rd.attr("username"),
            secret: rd.child("secret").map(Secret::parse),
            extra: rd.extra(),
        }
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("auth")
            .ao("username", self.username.as_ref())
            .extra_attrs(&self.extra)
            .co(self.secret.as_ref().map(Secret::to_node))
            .extra_children(&self.extra)
    }
}

/// `<encryption format='luks' engine='qemu'>` of a disk image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encryption {
    pub format: Option<String>,
    pub engine: Option<String>,
    pub secrets: Vec<Secret>,
    /// `<cipher>` and `<ivgen>` of LUKS volumes created by libvirt, kept verbatim.
    pub extra: Extra,
}

impl Encryption {
    pub fn parse(n: &XmlNode) -> Encryption {
        let rd = Rd::new(n);
        Encryption {
            format: rd.attr("format"),
            engine: rd.attr("engine"),
            secrets: rd
                .children("secret")
                .into_iter()
                .map(Secret::parse)
                .collect(),
            extra: rd.extra(),
        }
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("encryption")
            .ao("format", self.format.as_ref())
            .ao("engine", self.engine.as_ref())
            .extra_attrs(&self.extra)
            .cs(self.secrets.iter().map(Secret::to_node))
            .extra_children(&self.extra)
    }
}

/// `<geometry cyls heads secs trans/>` of IDE disks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Geometry {
    pub cyls: Option<u32>,
    pub heads: Option<u32>,
    pub secs: Option<u32>,
    pub trans: Option<String>,
    pub extra: Extra,
}

impl Geometry {
    pub fn parse(n: &XmlNode) -> Result<Geometry, DomainError> {
        let rd = Rd::new(n);
        Ok(Geometry {
            cyls: opt_uint(&rd, "cyls")?,
            heads: opt_uint(&rd, "heads")?,
            secs: opt_uint(&rd, "secs")?,
            trans: rd.attr("trans"),
            extra: rd.extra(),
        })
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("geometry")
            .ao("cyls", self.cyls)
            .ao("heads", self.heads)
            .ao("secs", self.secs)
            .ao("trans", self.trans.as_ref())
            .extra_attrs(&self.extra)
    }
}

/// `<blockio logical_block_size physical_block_size discard_granularity/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blockio {
    pub logical_block_size: Option<u32>,
    pub physical_block_size: Option<u32>,
    pub discard_granularity: Option<u32>,
    pub extra: Extra,
}

impl Blockio {
    pub fn parse(n: &XmlNode) -> Result<Blockio, DomainError> {
        let rd = Rd::new(n);
        Ok(Blockio {
            logical_block_size: opt_uint(&rd, "logical_block_size")?,
            physical_block_size: opt_uint(&rd, "physical_block_size")?,
            discard_granularity: opt_uint(&rd, "discard_granularity")?,
            extra: rd.extra(),
        })
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("blockio")
            .ao("logical_block_size", self.logical_block_size)
            .ao("physical_block_size", self.physical_block_size)
            .ao("discard_granularity", self.discard_granularity)
            .extra_attrs(&self.extra)
    }
}

/// `<log file='...' append='on|off'/>` of a character device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChrLog {
    pub file: Option<String>,
    pub append: Option<String>,
    pub extra: Extra,
}

impl ChrLog {
    pub fn parse(n: &XmlNode) -> ChrLog {
        let rd = Rd::new(n);
        ChrLog {
            file: rd.attr("file"),
            append: rd.attr("append"),
            extra: rd.extra(),
        }
    }

    pub fn to_node(&self) -> XmlNode {
        XmlNode::new("log")
            .ao("file", self.file.as_ref())
            .ao("append", self.append.as_ref())
            .extra_attrs(&self.extra)
    }
}

/// `<seclabel type='dynamic|static|none' model='selinux|dac|apparmor' relabel='yes|no'>` with
/// `<label>`, `<imagelabel>`, `<baselabel>`; used for the domain and for disk images.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecLabel {
    pub stype: Option<String>,
    pub model: Option<String>,
    pub relabel: Option<String>,
    pub label: Option<String>,
    pub imagelabel: Option<String>,
    pub baselabel: Option<String>,
    pub extra: Extra,
}

impl SecLabel {
    pub fn parse(n: &XmlNode) -> SecLabel {
        let rd = Rd::new(n);
        SecLabel {
            stype: rd.attr("type"),
            model: rd.attr("model"),
            relabel: rd.attr("relabel"),
            label: rd.child_text("label"),
            imagelabel: rd.child_text("imagelabel"),
            baselabel: rd.child_text("baselabel"),
            extra: rd.extra(),
        }
    }

    pub fn to_node(&self) -> XmlNode {
        let text = |name: &str, v: &Option<String>| v.as_ref().map(|v| XmlNode::new(name).t(v));
        XmlNode::new("seclabel")
            .ao("type", self.stype.as_ref())
            .ao("model", self.model.as_ref())
            .ao("relabel", self.relabel.as_ref())
            .extra_attrs(&self.extra)
            .co(text("label", &self.label))
            .co(text("imagelabel", &self.imagelabel))
            .co(text("baselabel", &self.baselabel))
            .extra_children(&self.extra)
    }
}
