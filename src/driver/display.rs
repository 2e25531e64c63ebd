//! Where a running domain's displays and text console are: `domdisplay`, `vncdisplay` and
//! `ttyconsole`. QEMU is asked for the VNC port it bound (`query-vnc`), as an autoport
//! display's port is only known once QEMU runs.

use serde::Serialize;
use serde_json::Value;

use super::DriverError;
use super::domain::Domain;
use crate::domain::DomainDef;

/// One graphical display of a running domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Display {
    /// `vnc`, `spice`, `rdp`.
    #[serde(rename = "type")]
    pub gtype: String,
    /// The listen address as configured (`None`: QEMU's default, the loopback).
    pub listen: Option<String>,
    /// The TCP port, when it listens on one.
    pub port: Option<u32>,
    pub tls_port: Option<u32>,
    /// The UNIX socket, when it listens on one.
    pub socket: Option<String>,
    #[serde(skip)]
    pub passwd: Option<String>,
}

/// The URI virsh prints for `d` (without `include_password`, no password).
// libvirt: cmdDomDisplay
pub fn display_uri(d: &Display, include_password: bool) -> Option<String> {
    if d.port.is_none() && d.tls_port.is_none() && d.socket.is_none() {
        return None;
    }
    let mut uri = match &d.socket {
        Some(s) => format!("{}+unix://{s}", d.gtype),
        None => {
            let host = match d.listen.as_deref() {
                None | Some("") | Some("0.0.0.0") | Some("::") => "localhost".to_string(),
                Some(h) if h.contains(':') => format!("[{h}]"),
                Some(h) => h.to_string(),
            };
            let mut u = format!("{}://{host}", d.gtype);
            if let Some(p) = d.port {
                let p = if d.gtype == "vnc" {
                    p.saturating_sub(5900)
                } else {
                    p
                };
                u.push_str(&format!(":{p}"));
            }
            u
        }
    };
    let mut params = Vec::new();
    if let Some(t) = d.tls_port {
        params.push(format!("tls-port={t}"));
    }
    if include_password && let Some(p) = &d.passwd {
        params.push(format!("password={p}"));
    }
    if !params.is_empty() {
        uri.push('?');
        uri.push_str(&params.join("&"));
    }
    Some(uri)
}

/// The line `virsh vncdisplay` prints for a VNC display: `:N`, or `ADDRESS:N`.
// libvirt: cmdVNCDisplay
pub fn vnc_display(d: &Display) -> Option<String> {
    let port = d.port?.checked_sub(5900)?;
    Some(match d.listen.as_deref() {
        None | Some("0.0.0.0") => format!(":{port}"),
        Some(a) => format!("{a}:{port}"),
    })
}

fn graphics_of(def: &DomainDef, vnc: Option<&Value>) -> Vec<Display> {
    def.devices
        .graphics
        .iter()
        .filter(|g| matches!(g.gtype.as_str(), "vnc" | "spice" | "rdp"))
        .map(|g| {
            let first = g.listens.first();
            let socket = g.socket.clone().or_else(|| {
                first
                    .filter(|l| l.ltype == "socket")
                    .and_then(|l| l.socket.clone())
            });
            let listen = g
                .listen
                .clone()
                .or_else(|| first.and_then(|l| l.address.clone()));
            let num = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|p| p.parse::<i64>().ok())
                    .filter(|p| *p > 0)
                    .map(|p| p as u32)
            };
            let mut port = num(&g.port);
            if g.gtype == "vnc"
                && socket.is_none()
                && let Some(v) = vnc
            {
                // The port QEMU bound: an autoport display has none in the XML.
                port = v["service"].as_str().and_then(|s| s.parse().ok()).or(port);
            }
            Display {
                gtype: g.gtype.clone(),
                listen,
                port,
                tls_port: num(&g.tls_port),
                socket,
                passwd: g.passwd.clone(),
            }
        })
        .collect()
}

impl Domain<'_> {
    /// The graphical displays of the running domain, in the definition's order.
    pub fn displays(&self) -> Result<Vec<Display>, DriverError> {
        let live = self.live_process()?;
        let has_vnc = live.def.devices.graphics.iter().any(|g| g.gtype == "vnc");
        let vnc = if has_vnc {
            self.qmp_call("query-vnc", None)
                .ok()
                .filter(|v| v["enabled"] == true)
        } else {
            None
        };
        Ok(graphics_of(&live.def, vnc.as_ref()))
    }

    /// The pty of the domain's first text console (`virsh ttyconsole`), if it has one.
    pub fn tty_console(&self) -> Result<Option<String>, DriverError> {
        let live = self.live_process()?;
        let d = &live.def.devices;
        let pty = |c: &crate::domain::devices::Chardev| {
            (c.stype.as_deref().unwrap_or("pty") == "pty")
                .then(|| c.sources.first()?.path.clone())
                .flatten()
        };
        // A console that is serial port 0 in another guise shares the port's pty.
        Ok(d.consoles.iter().find_map(pty).or_else(|| {
            d.consoles
                .is_empty()
                .then(|| d.serials.first().and_then(pty))
                .flatten()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vnc(listen: Option<&str>, port: Option<u32>) -> Display {
        Display {
            gtype: "vnc".into(),
            listen: listen.map(String::from),
            port,
            tls_port: None,
            socket: None,
            passwd: Some("s3cret".into()),
        }
    }

    #[test]
    fn uris_as_virsh_builds_them() {
        assert_eq!(
            display_uri(&vnc(None, Some(5901)), false).unwrap(),
            "vnc://localhost:1"
        );
        assert_eq!(
            display_uri(&vnc(Some("127.0.0.1"), Some(5900)), false).unwrap(),
            "vnc://127.0.0.1:0"
        );
        assert_eq!(
            display_uri(&vnc(Some("::1"), Some(5902)), false).unwrap(),
            "vnc://[::1]:2"
        );
        assert_eq!(
            display_uri(&vnc(Some("0.0.0.0"), Some(5900)), true).unwrap(),
            "vnc://localhost:0?password=s3cret"
        );
        assert_eq!(display_uri(&vnc(None, None), false), None);
        let mut s = vnc(None, None);
        s.socket = Some("/run/vnc.sock".into());
        assert_eq!(display_uri(&s, false).unwrap(), "vnc+unix:///run/vnc.sock");
    }

    #[test]
    fn vnc_displays() {
        assert_eq!(vnc_display(&vnc(None, Some(5901))).unwrap(), ":1");
        assert_eq!(
            vnc_display(&vnc(Some("0.0.0.0"), Some(5900))).unwrap(),
            ":0"
        );
        assert_eq!(
            vnc_display(&vnc(Some("127.0.0.1"), Some(5903))).unwrap(),
            "127.0.0.1:3"
        );
        assert_eq!(vnc_display(&vnc(None, None)), None);
    }
}
