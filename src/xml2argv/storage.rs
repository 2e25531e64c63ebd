//! Network storage (`<disk type='network'>` and network backing stores) as `-blockdev`
//! properties, with the secrets and TLS objects each layer needs printed before it.
//!
//! Object order before a layer's storage node follows libvirt: the auth secret, the encryption
//! secret, the HTTP cookie secret, the TLS key secret, then the TLS credentials.

use super::opts::JsonOpts;
use super::{LaunchContext, Xml2ArgvError};
use crate::domain::common::{Auth, Encryption, Secret};
use crate::domain::devices::{DiskSource, Host};

type R<T = ()> = Result<T, Xml2ArgvError>;

fn unsupported(msg: impl Into<String>) -> Xml2ArgvError {
    Xml2ArgvError::Unsupported(msg.into())
}

/// The value of `secret` for this launch.
pub(super) fn secret_value<'c>(ctx: &'c LaunchContext, secret: &Secret) -> R<&'c [u8]> {
    match &ctx.secrets {
        Some(s) => s.value(secret),
        None => Err(Xml2ArgvError::Other(format!(
            "Secret not found: no secret with matching {}",
            match (&secret.uuid, &secret.usage) {
                (Some(u), _) => format!("uuid '{u}'"),
                (None, Some(u)) => format!("usage '{u}'"),
                (None, None) => "uuid ''".to_string(),
            }
        ))),
    }
}

/// The `-object secret` named `id` holding `plain`.
pub(super) fn secret_object(ctx: &LaunchContext, id: &str, plain: &[u8]) -> R<JsonOpts> {
    match &ctx.secrets {
        Some(s) => Ok(s.object(id, plain)),
        None => Err(Xml2ArgvError::Internal(format!(
            "no master key to encrypt secret '{id}'"
        ))),
    }
}

/// The objects of an x509 TLS client: its key password secret (when qemu.conf names one) and
/// the credentials object `id`.
pub(super) fn tls_client_objects(
    ctx: &LaunchContext,
    id: &str,
    dir: &str,
    verify: bool,
    secret_uuid: Option<&str>,
) -> R<Vec<JsonOpts>> {
    tls_objects(ctx, id, dir, false, verify, secret_uuid)
}

/// The objects of an x509 TLS endpoint, a server when `listen` (libvirt:
/// qemuBuildTLSx509BackendProps).
pub(super) fn tls_objects(
    ctx: &LaunchContext,
    id: &str,
    dir: &str,
    listen: bool,
    verify: bool,
    secret_uuid: Option<&str>,
) -> R<Vec<JsonOpts>> {
    let mut out = Vec::new();
    let mut creds = JsonOpts::new();
    creds
        .s("qom-type", "tls-creds-x509")
        .s("id", id)
        .s("dir", dir)
        .s("endpoint", if listen { "server" } else { "client" })
        .b("verify-peer", verify);
    if let Some(uuid) = secret_uuid {
        let secret = Secret {
            uuid: Some(uuid.to_string()),
            ..Default::default()
        };
        let sid = format!("{id}-secret0");
        out.push(secret_object(ctx, &sid, secret_value(ctx, &secret)?)?);
        creds.s("passwordid", sid);
    }
    out.push(creds);
    Ok(out)
}

/// The `<encryption>` of a layer that QEMU's LUKS layer decrypts (not librbd).
pub(super) fn qemu_encryption(enc: Option<&Encryption>) -> Option<&Encryption> {
    enc.filter(|e| e.engine.as_deref() != Some("librbd") && !e.secrets.is_empty())
}

/// The secret object of a layer's encryption, named after its format node.
pub(super) fn encryption_secret(
    ctx: &LaunchContext,
    enc: &Encryption,
    format_node: &str,
) -> R<(String, JsonOpts)> {
    let id = format!("{format_node}-encryption-secret0");
    let secret = enc
        .secrets
        .first()
        .ok_or_else(|| unsupported("missing encryption secret"))?;
    let obj = secret_object(ctx, &id, secret_value(ctx, secret)?)?;
    Ok((id, obj))
}

fn host_name(h: Option<&Host>) -> String {
    h.and_then(|h| h.name.clone()).unwrap_or_default()
}

/// `host:port`, with an IPv6 address in brackets.
fn host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A URI path as libvirt formats it (libxml2's rules): unreserved characters and `/;@&=+$,`
/// stay, anything else becomes `%XX`.
fn uri_path_escape(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()/;@&=+$,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn inet_or_unix(h: &Host, default_port: &str, with_type: bool) -> serde_json::Value {
    let mut s = JsonOpts::new();
    if let Some(sock) = &h.socket {
        s.s("type", "unix").s("path", sock.clone());
    } else {
        if with_type {
            s.s("type", "inet");
        }
        s.s("host", h.name.clone().unwrap_or_default()).s(
            "port",
            h.port.clone().unwrap_or_else(|| default_port.to_string()),
        );
    }
    s.into_value()
}

/// `(user, password-secret id)` of a layer with `<auth>`, after queueing the secret object.
fn auth_secret(
    ctx: &LaunchContext,
    auth: Option<&Auth>,
    id: &str,
    pre: &mut Vec<(u8, JsonOpts)>,
) -> R<Option<(String, String)>> {
    let Some(a) = auth else { return Ok(None) };
    let Some(secret) = &a.secret else {
        return Ok(None);
    };
    let id = id.to_string();
    pre.push((
        PRE_AUTH,
        secret_object(ctx, &id, secret_value(ctx, secret)?)?,
    ));
    Ok(Some((a.username.clone().unwrap_or_default(), id)))
}

/// Where an object printed before a layer goes among the others.
pub(super) const PRE_PR_MANAGER: u8 = 0;
pub(super) const PRE_AUTH: u8 = 1;
pub(super) const PRE_ENCRYPTION: u8 = 2;
const PRE_COOKIE: u8 = 3;
const PRE_TLS: u8 = 4;

/// Storage properties of an iSCSI LUN (`target/lun` in the source name, LUN 0 when none),
/// its `<auth>` secret queued in `pre` under `secret_id` (libvirt:
/// qemuBlockStorageSourceGetISCSIProps). Disks and SCSI hostdevs both use it.
pub(super) fn iscsi_props(
    ctx: &LaunchContext,
    src: &DiskSource,
    auth: Option<&Auth>,
    secret_id: &str,
    pre: &mut Vec<(u8, JsonOpts)>,
) -> R<JsonOpts> {
    let name = src.name.clone().unwrap_or_default();
    let first = src.hosts.first();
    let mut j = JsonOpts::new();
    let (target, lun) = match name.rsplit_once('/') {
        Some((t, l)) => (
            t.to_string(),
            l.parse::<u64>().map_err(|_| {
                unsupported(format!("invalid iSCSI LUN '{l}' in source name '{name}'"))
            })?,
        ),
        None => (name.clone(), 0),
    };
    let port = first
        .and_then(|h| h.port.clone())
        .unwrap_or_else(|| "3260".into());
    j.s("driver", "iscsi")
        .s("portal", host_port(&host_name(first), &port))
        .s("target", target)
        .u("lun", lun)
        .s("transport", "tcp");
    if let Some((user, id)) = auth_secret(ctx, auth, secret_id, pre)? {
        j.s("user", user).s("password-secret", id);
    }
    j.s_opt("initiator-name", src.initiator_iqn.clone());
    Ok(j)
}

/// Storage properties of a network layer: `driver` and protocol keys, leaving `node-name` and
/// the common tail to the caller. `pre` receives the objects to print before the layer, each
/// with its rank (`PRE_*`); `rbd_encryption` is the layer's encryption with the id of its
/// secret when librbd decrypts it.
pub(super) fn network_props(
    ctx: &LaunchContext,
    src: &DiskSource,
    auth: Option<&Auth>,
    rbd_encryption: Option<(&Encryption, &str)>,
    node: &str,
    pre: &mut Vec<(u8, JsonOpts)>,
) -> R<JsonOpts> {
    let proto = src.protocol.clone().unwrap_or_default();
    let name = src.name.clone().unwrap_or_default();
    let first = src.hosts.first();
    let mut j = JsonOpts::new();
    match proto.as_str() {
        "nbd" => {
            j.s("driver", "nbd");
            let h = first.cloned().unwrap_or_default();
            j.v("server", inet_or_unix(&h, "10809", true));
            j.s_opt("export", src.name.clone());
            if src.tls.as_deref() == Some("yes") {
                let id = format!("obj{node}_tls0");
                let c = &ctx.conf;
                let objs = tls_client_objects(
                    ctx,
                    &id,
                    &c.nbd_tls_dir,
                    c.nbd_tls_x509_verify,
                    c.nbd_tls_x509_secret_uuid.as_deref(),
                )?;
                pre.extend(objs.into_iter().map(|o| (PRE_TLS, o)));
                j.s("tls-creds", id);
                j.s_opt("tls-hostname", src.tls_hostname.clone());
            }
        }
        "iscsi" => {
            j = iscsi_props(ctx, src, auth, &format!("{node}-auth-secret0"), pre)?;
        }
        "rbd" => {
            let (pool, image) = name.split_once('/').ok_or_else(|| {
                unsupported(format!(
                    "can't split path '{name}' into pool name and image name"
                ))
            })?;
            j.s("driver", "rbd");
            match image.split_once('/') {
                Some((ns, img)) => {
                    j.s("pool", pool).s("namespace", ns).s("image", img);
                }
                None => {
                    j.s("pool", pool).s("image", image);
                }
            }
            j.s_opt("snapshot", src.snapshot.clone());
            j.s_opt("conf", src.config_file.clone());
            if !src.hosts.is_empty() {
                let servers: Vec<_> = src
                    .hosts
                    .iter()
                    .map(|h| inet_or_unix(h, "6789", false))
                    .collect();
                j.v("server", serde_json::Value::Array(servers));
            }
            if let Some((user, id)) = auth_secret(ctx, auth, &format!("{node}-auth-secret0"), pre)?
            {
                j.s("user", user)
                    .v("auth-client-required", serde_json::json!(["cephx", "none"]))
                    .s("key-secret", id);
            }
            if let Some((enc, id)) = rbd_encryption {
                let mut e = JsonOpts::new();
                e.s(
                    "format",
                    enc.format.clone().unwrap_or_else(|| "luks".into()),
                )
                .s("key-secret", id);
                j.v("encrypt", e.into_value());
            }
        }
        "gluster" => {
            let (volume, path) = name.split_once('/').ok_or_else(|| {
                unsupported(format!(
                    "missing volume name or file name in gluster source path '{name}'"
                ))
            })?;
            let servers: Vec<_> = src
                .hosts
                .iter()
                .map(|h| inet_or_unix(h, "24007", true))
                .collect();
            j.s("driver", "gluster")
                .s("volume", volume)
                .s("path", path)
                .v("server", serde_json::Value::Array(servers))
                .u("debug", 4);
        }
        "nfs" => {
            let mut server = JsonOpts::new();
            server.s("host", host_name(first)).s("type", "inet");
            j.s("driver", "nfs")
                .v("server", server.into_value())
                .s("path", name.clone());
            let id_num =
                |v: Option<&String>| v.and_then(|s| s.trim_start_matches('+').parse::<u64>().ok());
            if let Some((u, g)) = &src.identity {
                j.u_opt("user", id_num(u.as_ref()));
                j.u_opt("group", id_num(g.as_ref()));
            }
        }
        "http" | "https" | "ftp" | "ftps" => {
            let default_port = match proto.as_str() {
                "http" => "80",
                "https" => "443",
                "ftp" => "21",
                _ => "990",
            };
            let port = first
                .and_then(|h| h.port.clone())
                .unwrap_or_else(|| default_port.into());
            let mut url = format!(
                "{proto}://{}/{}",
                host_port(&host_name(first), &port),
                uri_path_escape(name.trim_start_matches('/'))
            );
            if let Some(q) = &src.query {
                url.push('?');
                url.push_str(q);
            }
            j.s("driver", proto.clone()).s("url", url);
            if let Some((user, id)) = auth_secret(ctx, auth, &format!("{node}-auth-secret0"), pre)?
            {
                j.s("username", user).s("password-secret", id);
            }
            if matches!(proto.as_str(), "https" | "ftps")
                && let Some(v) = src.ssl_verify.as_deref()
            {
                j.b("sslverify", v == "yes");
            }
            if !src.cookies.is_empty() {
                let jar = src
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let id = format!("{node}-httpcookie-secret0");
                pre.push((PRE_COOKIE, secret_object(ctx, &id, jar.as_bytes())?));
                j.s("cookie-secret", id);
            }
            j.u_opt("timeout", src.timeout);
            j.u_opt("readahead", src.readahead);
        }
        _ => {
            return Err(unsupported(format!(
                "disk protocol '{proto}' not supported yet"
            )));
        }
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_secret_store_a_secret_is_not_found() {
        let mut ctx =
            crate::conformance::harness::harness_context(&crate::domain::DomainDef::default());
        ctx.secrets = None;
        let s = Secret {
            usage: Some("mycluster".into()),
            ..Default::default()
        };
        let e = secret_value(&ctx, &s).unwrap_err().to_string();
        assert_eq!(
            e,
            "Secret not found: no secret with matching usage 'mycluster'"
        );
        assert!(secret_object(&ctx, "x", b"v").is_err());
    }

    #[test]
    fn ipv6_portals_are_bracketed() {
        assert_eq!(host_port("::1", "3260"), "[::1]:3260");
        assert_eq!(host_port("example.org", "80"), "example.org:80");
        assert_eq!(uri_path_escape("a b/c%d.iso"), "a%20b/c%25d.iso");
    }
}
