//! A minimal secret store, as libvirt's secret driver keeps one: `<secret>` definitions and
//! their values, which domains name by UUID (or usage) for disk passphrases and storage
//! passwords. Starting a domain hands the values it needs to QEMU encrypted with that start's
//! master key ([`Connect::secret_context`]), never in clear.
//!
//! Layout, like libvirt's `/etc/libvirt/secrets`: `CONFIG/secrets/UUID.xml` (the definition)
//! and `CONFIG/secrets/UUID.base64` (the value), both 0600 in a 0700 dir, written atomically.
//! File names are only ever built from a UUID that parsed, so no user text reaches a path.
//!
//! libvirt keeps `ephemeral='yes'` secrets in the daemon's memory only; without a daemon such a
//! secret would vanish with the call that defined it, so it is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::config::{self, ConfigLock};
use super::{Connect, DriverError};
use crate::domain::xml::{Rd, parse_document};
use crate::xml2argv::SecretContext;
use crate::xmlfmt::XmlWriter;

/// Usage types libvirt knows, with the child element naming each one's usage id.
const USAGE_TYPES: &[(&str, &str)] = &[
    ("volume", "volume"),
    ("ceph", "name"),
    ("iscsi", "target"),
    ("tls", "name"),
    ("vtpm", "name"),
];

/// A parsed `<secret>` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDef {
    /// Canonical (lowercase, hyphenated) UUID.
    pub uuid: String,
    pub private: bool,
    pub description: Option<String>,
    /// `(usage type, usage id)`; `None` for usage type `none` or no `<usage>`.
    pub usage: Option<(String, String)>,
}

fn xml_err(m: impl std::fmt::Display) -> DriverError {
    DriverError::Xml(crate::domain::DomainError::Xml(format!("XML error: {m}")))
}

fn no_secret_uuid(uuid: &str) -> DriverError {
    DriverError::NoSecret(format!("no secret with matching uuid '{uuid}'"))
}

fn yes_no(rd: &Rd, attr: &str, default: bool) -> Result<bool, DriverError> {
    match rd.attr(attr).as_deref() {
        None => Ok(default),
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        Some(v) => Err(xml_err(format!(
            "Invalid value for attribute '{attr}' in element 'secret': '{v}'. Expected 'yes' or 'no'"
        ))),
    }
}

impl SecretDef {
    /// Parse secret XML as libvirt's `virSecretDefParse` does (the subset a store needs). A
    /// definition without `<uuid>` gets a new random one.
    pub fn parse(xml: &str) -> Result<SecretDef, DriverError> {
        let root = parse_document(xml)?;
        if root.name != "secret" {
            return Err(xml_err(format!(
                "expecting root element of 'secret', not '{}'",
                root.name
            )));
        }
        let rd = Rd::new(&root);
        if yes_no(&rd, "ephemeral", false)? {
            return Err(DriverError::Unsupported(
                "ephemeral secrets live in a daemon's memory and there is no daemon: define the secret with ephemeral='no'".into(),
            ));
        }
        let private = yes_no(&rd, "private", false)?;
        let uuid = match rd.child_text("uuid") {
            None => uuid::Uuid::new_v4(),
            Some(t) => uuid::Uuid::parse_str(t.trim())
                .map_err(|_| DriverError::Internal("malformed uuid element".into()))?,
        };
        let description = rd.child_text("description");
        let usage = match rd.child("usage") {
            None => None,
            Some(u) => {
                let urd = Rd::new(u);
                let Some(t) = urd.attr("type") else {
                    return Err(xml_err(
                        "Missing required attribute 'type' in element 'usage'",
                    ));
                };
                if t == "none" {
                    None
                } else {
                    let Some((_, child)) = USAGE_TYPES.iter().find(|(n, _)| *n == t) else {
                        return Err(xml_err(format!(
                            "Invalid value for attribute 'type' in element 'usage': '{t}'."
                        )));
                    };
                    let Some(id) = urd.child_text(child) else {
                        return Err(DriverError::Internal(match t.as_str() {
                            "volume" => "volume usage specified, but volume path is missing".into(),
                            "ceph" => "Ceph usage specified, but name is missing".into(),
                            "iscsi" => "iSCSI usage specified, but target is missing".into(),
                            "tls" => "TLS usage specified, but name is missing".into(),
                            _ => "vTPM usage specified, but name is missing".into(),
                        }));
                    };
                    Some((t, id))
                }
            }
        };
        Ok(SecretDef {
            uuid: uuid.hyphenated().to_string(),
            private,
            description,
            usage,
        })
    }

    /// libvirt's formatting of a secret definition.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        w.elem("secret")
            .attr("ephemeral", "no")
            .attr("private", if self.private { "yes" } else { "no" })
            .open();
        w.text_elem("uuid", &self.uuid);
        if let Some(d) = &self.description {
            w.text_elem("description", d);
        }
        match &self.usage {
            Some((t, id)) => {
                let child = USAGE_TYPES
                    .iter()
                    .find(|(n, _)| n == t)
                    .map_or("name", |(_, c)| *c);
                w.elem("usage").attr("type", t).open();
                w.text_elem(child, id);
                w.close();
            }
            None => w.elem("usage").attr("type", "none").empty(),
        }
        w.close();
        w.finish()
    }
}

/// A defined secret of a connection.
#[derive(Debug)]
pub struct Secret<'c> {
    conn: &'c Connect,
    def: SecretDef,
}

impl Secret<'_> {
    pub fn uuid_string(&self) -> &str {
        &self.def.uuid
    }

    /// libvirt's usage type name (`none` when it has no usage).
    pub fn usage_type(&self) -> &str {
        self.def.usage.as_ref().map_or("none", |(t, _)| t.as_str())
    }

    pub fn usage_id(&self) -> Option<&str> {
        self.def.usage.as_ref().map(|(_, id)| id.as_str())
    }

    pub fn xml_desc(&self) -> String {
        self.def.to_xml()
    }

    /// Set the secret's value (`virsh secret-set-value`).
    pub fn set_value(&self, value: &[u8]) -> Result<(), DriverError> {
        let dir = self.conn.secrets_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        // Undefined meanwhile: a value without its definition would be an orphan.
        if config::read_small(&xml_path(&dir, &self.def.uuid))?.is_none() {
            return Err(no_secret_uuid(&self.def.uuid));
        }
        config::write_atomic(
            &value_path(&dir, &self.def.uuid),
            B64.encode(value).as_bytes(),
        )
    }

    /// The secret's value (`virsh secret-get-value`; libvirt: secretGetValue). libvirt
    /// refuses a private secret only to a caller less privileged than the daemon; here the
    /// caller owns the store, so private secrets are readable as by a same-user client.
    pub fn value(&self) -> Result<Vec<u8>, DriverError> {
        read_value(&self.conn.secrets_dir(), &self.def.uuid)?.ok_or_else(|| {
            DriverError::NoSecret(format!("secret '{}' does not have a value", self.def.uuid))
        })
    }

    /// Whether the secret has a value.
    pub fn has_value(&self) -> Result<bool, DriverError> {
        Ok(read_value(&self.conn.secrets_dir(), &self.def.uuid)?.is_some())
    }

    /// Remove the definition and its value (`virsh secret-undefine`).
    pub fn undefine(&self) -> Result<(), DriverError> {
        let dir = self.conn.secrets_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        // The value first: a crash in between leaves a definition without value, never a
        // value nobody can list or remove.
        config::remove(&value_path(&dir, &self.def.uuid))?;
        if !config::remove(&xml_path(&dir, &self.def.uuid))? {
            return Err(no_secret_uuid(&self.def.uuid));
        }
        Ok(())
    }
}

fn xml_path(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.xml"))
}

fn value_path(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.base64"))
}

/// Check that secret `uuid` of the store `dir` can serve a `usage` (libvirt:
/// virSecretGetSecretString by UUID): it exists, its usage type is `usage` (or none), and
/// it has a value. Returns its canonical UUID; the value stays in the store.
pub(crate) fn check_usable(dir: &Path, uuid: &str, usage: &str) -> Result<String, DriverError> {
    let u = canonical_uuid(uuid).ok_or_else(|| no_secret_uuid(uuid))?;
    let xml = config::read_small(&xml_path(dir, &u))?.ok_or_else(|| no_secret_uuid(uuid))?;
    let def = SecretDef::parse(&xml)?;
    if let Some((t, _)) = &def.usage
        && t != usage
    {
        return Err(DriverError::InvalidArg(format!(
            "secret with uuid {u} is of type '{t}' not expected '{usage}' type"
        )));
    }
    if read_value(dir, &u)?.is_none() {
        return Err(DriverError::NoSecret(format!(
            "secret '{u}' does not have a value"
        )));
    }
    Ok(u)
}

pub(crate) fn read_value(dir: &Path, uuid: &str) -> Result<Option<Vec<u8>>, DriverError> {
    let path = value_path(dir, uuid);
    match config::read_small(&path)? {
        None => Ok(None),
        Some(text) => B64
            .decode(text.trim())
            .map(Some)
            .map_err(|_| DriverError::Internal(format!("invalid base64 in '{}'", path.display()))),
    }
}

/// The UUID in canonical form, or `None` when `text` is no UUID.
fn canonical_uuid(text: &str) -> Option<String> {
    uuid::Uuid::parse_str(text.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// `n` bytes from the OS's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], DriverError> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|err| DriverError::System {
            msg: "cannot read /dev/urandom".into(),
            err,
        })?;
    Ok(b)
}

impl Connect {
    /// Where this connection's secrets live.
    pub fn secrets_dir(&self) -> PathBuf {
        self.dirs.config.join("secrets")
    }

    /// Define (or redefine, keeping its value) a secret from its XML (`virsh secret-define`).
    pub fn define_secret_xml(&self, xml: &str) -> Result<Secret<'_>, DriverError> {
        let def = SecretDef::parse(xml)?;
        let dir = self.secrets_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        for other in self.secret_defs(&dir)? {
            if other.uuid == def.uuid {
                if other.usage != def.usage {
                    return Err(DriverError::Internal(format!(
                        "a secret with UUID {} is already defined for use with {}",
                        other.uuid,
                        other.usage.as_ref().map_or("", |(_, id)| id.as_str())
                    )));
                }
            } else if def.usage.is_some() && other.usage == def.usage {
                return Err(DriverError::Internal(format!(
                    "a secret with UUID {} already defined for use with {}",
                    other.uuid,
                    other.usage.as_ref().map_or("", |(_, id)| id.as_str())
                )));
            }
        }
        config::write_atomic(&xml_path(&dir, &def.uuid), def.to_xml().as_bytes())?;
        Ok(Secret { conn: self, def })
    }

    /// The secret with this UUID (`virsh secret-dumpxml UUID` and friends).
    pub fn lookup_secret_by_uuid(&self, uuid: &str) -> Result<Secret<'_>, DriverError> {
        let Some(u) = canonical_uuid(uuid) else {
            return Err(no_secret_uuid(uuid));
        };
        let path = xml_path(&self.secrets_dir(), &u);
        let xml = config::read_small(&path)?.ok_or_else(|| no_secret_uuid(uuid))?;
        let def = SecretDef::parse(&xml)?;
        Ok(Secret { conn: self, def })
    }

    /// Every defined secret, by UUID (`virsh secret-list`). Definitions that cannot be read
    /// are left out with a warning naming the file.
    pub fn list_secrets(&self) -> Result<Vec<Secret<'_>>, DriverError> {
        Ok(self
            .secret_defs(&self.secrets_dir())?
            .into_iter()
            .map(|def| Secret { conn: self, def })
            .collect())
    }

    fn secret_defs(&self, dir: &Path) -> Result<Vec<SecretDef>, DriverError> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(DriverError::System {
                    msg: format!("cannot open directory '{}'", dir.display()),
                    err,
                });
            }
        };
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(uuid) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".xml"))
                .and_then(canonical_uuid)
            else {
                continue;
            };
            let path = entry.path();
            let parsed = config::read_small(&path).and_then(|x| match x {
                Some(x) => SecretDef::parse(&x).map(Some),
                None => Ok(None),
            });
            match parsed {
                Ok(Some(def)) if def.uuid == uuid => out.push(def),
                Ok(None) => {}
                Ok(Some(def)) => self.warn([format!(
                    "{}: holds secret {}, not {uuid}: ignored",
                    path.display(),
                    def.uuid
                )]),
                Err(e) => self.warn([format!("{}: {e}", path.display())]),
            }
        }
        out.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        Ok(out)
    }

    /// The secrets a start may hand to QEMU, encrypted with `master_key` (the bytes of this
    /// start's `master-key.aes`), each with an IV derived from `iv`. Every defined secret is
    /// offered, keyed by UUID and by usage id; xml2argv picks the ones the domain names, and
    /// words a missing one or one without a value as libvirt does.
    pub fn secret_context(
        &self,
        master_key: [u8; 32],
        iv: [u8; 16],
    ) -> Result<SecretContext, DriverError> {
        let dir = self.secrets_dir();
        let mut values = BTreeMap::new();
        let mut unset = BTreeMap::new();
        for def in self.secret_defs(&dir)? {
            let keys = std::iter::once(def.uuid.clone()).chain(def.usage.map(|(_, id)| id));
            match read_value(&dir, &def.uuid)? {
                Some(v) => values.extend(keys.map(|k| (k, v.clone()))),
                None => unset.extend(keys.map(|k| (k, def.uuid.clone()))),
            }
        }
        Ok(SecretContext {
            master_key,
            iv,
            iv_per_object: true,
            values,
            unset,
            fallback: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const UUID: &str = "0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f";

    fn conn(dir: &Path) -> Connect {
        Connect::open(Some(&format!("qemu:///embed?root={}", dir.display()))).unwrap()
    }

    fn vol_xml(uuid: &str, path: &str) -> String {
        format!(
            "<secret ephemeral='no' private='yes'><uuid>{uuid}</uuid>\
             <usage type='volume'><volume>{path}</volume></usage></secret>"
        )
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn define_set_list_undefine() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        assert!(c.list_secrets().unwrap().is_empty());
        let s = c.define_secret_xml(&vol_xml(UUID, "/img/a.luks")).unwrap();
        assert_eq!(s.uuid_string(), UUID);
        assert_eq!(
            (s.usage_type(), s.usage_id()),
            ("volume", Some("/img/a.luks"))
        );
        assert!(!s.has_value().unwrap());
        s.set_value(b"pass phrase").unwrap();
        let dir = c.secrets_dir();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(format!("{UUID}.xml"))), 0o600);
        let vpath = dir.join(format!("{UUID}.base64"));
        assert_eq!(mode(&vpath), 0o600);
        assert_eq!(
            std::fs::read_to_string(&vpath).unwrap(),
            B64.encode(b"pass phrase")
        );
        // Upper case finds the same secret; a redefine keeps the value.
        let again = c.lookup_secret_by_uuid(&UUID.to_uppercase()).unwrap();
        assert!(again.xml_desc().contains("<volume>/img/a.luks</volume>"));
        c.define_secret_xml(&vol_xml(UUID, "/img/a.luks")).unwrap();
        assert!(again.has_value().unwrap());
        let list = c.list_secrets().unwrap();
        assert_eq!(list.len(), 1);
        let ctx = c.secret_context([1; 32], [2; 16]).unwrap();
        assert_eq!(ctx.values[UUID], b"pass phrase");
        assert_eq!(ctx.values["/img/a.luks"], b"pass phrase");
        again.undefine().unwrap();
        assert!(c.list_secrets().unwrap().is_empty());
        assert!(!vpath.exists());
        let e = c.lookup_secret_by_uuid(UUID).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("Secret not found: no secret with matching uuid '{UUID}'")
        );
        assert_eq!(again.undefine().unwrap_err().to_string(), e);
        assert_eq!(again.set_value(b"x").unwrap_err().to_string(), e);
    }

    #[test]
    fn defined_without_value_is_worded_like_libvirt() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        c.define_secret_xml(&vol_xml(UUID, "/img/b")).unwrap();
        let ctx = c.secret_context([0; 32], [0; 16]).unwrap();
        let s = crate::domain::common::Secret {
            uuid: Some(UUID.into()),
            ..Default::default()
        };
        assert_eq!(
            ctx.value(&s).unwrap_err().to_string(),
            format!("Secret not found: secret '{UUID}' does not have a value")
        );
    }

    #[test]
    fn no_uuid_gets_one_and_usage_clashes_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        let s = c
            .define_secret_xml(
                "<secret><usage type='ceph'><name>client.admin</name></usage></secret>",
            )
            .unwrap();
        assert!(canonical_uuid(s.uuid_string()).is_some());
        assert!(
            s.xml_desc().contains("<name>client.admin</name>"),
            "{}",
            s.xml_desc()
        );
        let e = c
            .define_secret_xml(&format!(
                "<secret><uuid>{UUID}</uuid><usage type='ceph'><name>client.admin</name></usage></secret>"
            ))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "internal error: a secret with UUID {} already defined for use with client.admin",
                s.uuid_string()
            )
        );
        let e = c
            .define_secret_xml(&format!(
                "<secret><uuid>{}</uuid><usage type='ceph'><name>other</name></usage></secret>",
                s.uuid_string()
            ))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is already defined for use with client.admin"),
            "{e}"
        );
    }

    #[test]
    fn bad_xml_is_named() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        let cases = [
            (
                "<domain/>",
                "XML error: expecting root element of 'secret', not 'domain'",
            ),
            (
                "<secret><uuid>nope</uuid></secret>",
                "internal error: malformed uuid element",
            ),
            (
                "<secret><usage type='disk'/></secret>",
                "XML error: Invalid value for attribute 'type' in element 'usage': 'disk'.",
            ),
            (
                "<secret><usage/></secret>",
                "XML error: Missing required attribute 'type' in element 'usage'",
            ),
            (
                "<secret><usage type='volume'/></secret>",
                "internal error: volume usage specified, but volume path is missing",
            ),
            (
                "<secret><usage type='iscsi'/></secret>",
                "internal error: iSCSI usage specified, but target is missing",
            ),
            (
                "<secret private='maybe'/>",
                "XML error: Invalid value for attribute 'private' in element 'secret': 'maybe'. Expected 'yes' or 'no'",
            ),
        ];
        for (xml, want) in cases {
            assert_eq!(
                c.define_secret_xml(xml).unwrap_err().to_string(),
                want,
                "{xml}"
            );
        }
        let e = c
            .define_secret_xml("<secret ephemeral='yes'/>")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("unsupported configuration: ephemeral secrets"),
            "{e}"
        );
        assert!(c.define_secret_xml("<secret").is_err());
        // Nothing was stored by the failures.
        assert!(c.list_secrets().unwrap().is_empty());
        // A path-like UUID never becomes a file name.
        let e = c.lookup_secret_by_uuid("../../etc/passwd").unwrap_err();
        assert!(e.to_string().starts_with("Secret not found"), "{e}");
    }

    #[test]
    fn foreign_and_broken_files_are_skipped_with_a_warning() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        c.define_secret_xml(&vol_xml(UUID, "/img/c")).unwrap();
        let dir = c.secrets_dir();
        std::fs::write(dir.join("notes.xml"), "x").unwrap();
        std::fs::write(
            dir.join("11111111-2222-3333-4444-555555555555.xml"),
            "<secret",
        )
        .unwrap();
        assert_eq!(c.list_secrets().unwrap().len(), 1);
        let w = c.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("11111111-2222-3333-4444-555555555555.xml"),
            "{w:?}"
        );
    }
}
