//! Connection URIs: `qemu:///session`, `qemu:///system`, `qemu:///embed?root=DIR`.

use std::path::PathBuf;

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while, take_while1},
    combinator::{all_consuming, opt, rest},
    sequence::preceded,
};

use super::DriverError;

/// Which instance of the driver a connection talks to; decides every directory it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectUri {
    /// Per-user directories (`qemu:///session`).
    Session,
    /// System-wide directories (`qemu:///system`).
    System,
    /// Every path under one root directory (`qemu:///embed?root=DIR`).
    Embed { root: PathBuf },
}

struct Parts<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn parts(input: &str) -> IResult<&str, Parts<'_>> {
    let scheme = take_while1(|c: char| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority = take_while(|c: char| c != '/' && c != '?');
    let path = take_while(|c: char| c != '?');
    let (input, (scheme, _, authority, path, query)) = all_consuming((
        scheme,
        tag("://"),
        authority,
        path,
        opt(preceded(tag("?"), rest)),
    ))
    .parse(input)?;
    Ok((
        input,
        Parts {
            scheme,
            authority,
            path,
            query,
        },
    ))
}

/// Decode `%XX` escapes in a query value.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape at '{}'", &s[i..]))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "query is not UTF-8".to_string())
}

impl ConnectUri {
    /// Parse a URI as `virsh -c` takes it.
    pub fn parse(uri: &str) -> Result<Self, DriverError> {
        let bad = |why: &str| DriverError::Uri(format!("invalid URI '{uri}': {why}"));
        let (_, p) = parts(uri)
            .map_err(|_| bad("expected the form DRIVER:///PATH, e.g. qemu:///session"))?;
        if p.scheme != "qemu" {
            return Err(DriverError::Uri(format!(
                "unsupported URI '{uri}': only the qemu driver (qemu:///session, qemu:///system, qemu:///embed?root=DIR) is available"
            )));
        }
        if !p.authority.is_empty() {
            return Err(bad("remote hosts are not supported; use qemu:///PATH"));
        }
        let mut root = None;
        if let Some(q) = p.query {
            for pair in q.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                match k {
                    "root" => root = Some(percent_decode(v).map_err(|e| bad(&e))?),
                    other => return Err(bad(&format!("unknown parameter '{other}'"))),
                }
            }
        }
        match (p.path, root) {
            ("/session", None) => Ok(ConnectUri::Session),
            ("/system", None) => Ok(ConnectUri::System),
            ("/session" | "/system", Some(_)) => {
                Err(bad("'root' is only accepted by qemu:///embed"))
            }
            ("/embed", None) => Err(DriverError::Uri(format!(
                "URI '{uri}' must specify a root directory: qemu:///embed?root=DIR"
            ))),
            ("/embed", Some(r)) if r.is_empty() => Err(DriverError::Uri(format!(
                "URI '{uri}' must specify a root directory: qemu:///embed?root=DIR"
            ))),
            ("/embed", Some(r)) => {
                let root = PathBuf::from(&r);
                if !root.is_absolute() {
                    return Err(DriverError::Uri(format!(
                        "URI '{uri}': root directory '{r}' must be an absolute path"
                    )));
                }
                Ok(ConnectUri::Embed { root })
            }
            (path, _) => Err(DriverError::Uri(format!(
                "unexpected QEMU URI path '{path}', try qemu:///system, qemu:///session or qemu:///embed?root=DIR"
            ))),
        }
    }

    /// The URI a caller gets when it names none: `VSH_DEFAULT_URI` if set, else system for
    /// root and session for everyone else, as virsh does with `LIBVIRT_DEFAULT_URI`.
    pub fn default_for_process() -> Result<Self, DriverError> {
        if let Some(u) = std::env::var_os("VSH_DEFAULT_URI").filter(|u| !u.is_empty()) {
            let u = u
                .into_string()
                .map_err(|_| DriverError::Uri("VSH_DEFAULT_URI is not UTF-8".into()))?;
            return Self::parse(&u);
        }
        Ok(if nix::unistd::geteuid().is_root() {
            ConnectUri::System
        } else {
            ConnectUri::Session
        })
    }
}

impl std::fmt::Display for ConnectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectUri::Session => f.write_str("qemu:///session"),
            ConnectUri::System => f.write_str("qemu:///system"),
            ConnectUri::Embed { root } => {
                use std::os::unix::ffi::OsStrExt;
                f.write_str("qemu:///embed?root=")?;
                // Escape what the query syntax gives meaning to, so the printed URI parses
                // back to the same root; plain paths print as they are.
                for &b in root.as_os_str().as_bytes() {
                    if b.is_ascii_alphanumeric() || b"/-._~:@!$'()*,;=".contains(&b) {
                        write!(f, "{}", b as char)?;
                    } else {
                        write!(f, "%{b:02X}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        assert_eq!(
            ConnectUri::parse("qemu:///session").unwrap(),
            ConnectUri::Session
        );
        assert_eq!(
            ConnectUri::parse("qemu:///system").unwrap(),
            ConnectUri::System
        );
        assert_eq!(
            ConnectUri::parse("qemu:///embed?root=/tmp/a%20b").unwrap(),
            ConnectUri::Embed {
                root: PathBuf::from("/tmp/a b")
            }
        );
        assert_eq!(
            ConnectUri::parse("qemu:///embed?root=/x")
                .unwrap()
                .to_string(),
            "qemu:///embed?root=/x"
        );
    }

    #[test]
    fn rejects_bad_uris_clearly() {
        for (uri, want) in [
            ("", "expected the form"),
            ("qemu", "expected the form"),
            ("qemu:/session", "expected the form"),
            ("xen:///system", "only the qemu driver"),
            ("qemu://host/system", "remote hosts"),
            ("qemu:///bogus", "unexpected QEMU URI path '/bogus'"),
            ("qemu:///embed", "must specify a root"),
            ("qemu:///embed?root=", "must specify a root"),
            ("qemu:///embed?root=rel/dir", "must be an absolute path"),
            ("qemu:///embed?root=/x&foo=1", "unknown parameter 'foo'"),
            ("qemu:///embed?root=/x%zz", "bad percent escape"),
            ("qemu:///session?root=/x", "only accepted by qemu:///embed"),
        ] {
            let e = ConnectUri::parse(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri:?}: {e}");
        }
    }
}
