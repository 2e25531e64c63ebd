//! Which TCP ports a domain's VNC and SPICE displays need from the host, and libvirt's
//! placeholders for them when nothing is allocated (PRETEND mode: `domxml-to-native`, tests).
//! The rules are pure; the allocation itself (free ports, reservations) is the driver's.

use super::{QemuConf, Xml2ArgvError};
use crate::domain::DomainDef;
use crate::domain::devices::Graphics;

/// The two port ranges of libvirt's `qemu.conf` (`remote_display_port_min/max`,
/// `remote_websocket_port_min/max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPool {
    /// VNC displays and SPICE ports: 5900-65535.
    Display,
    /// VNC websockets: 5700-65535.
    WebSocket,
}

impl PortPool {
    /// libvirt's name of the range and its bounds.
    pub fn range(self) -> (&'static str, u16, u16) {
        match self {
            PortPool::Display => ("display", 5900, 65535),
            PortPool::WebSocket => ("webSocket", 5700, 65535),
        }
    }
}

fn port_of(v: &Option<String>) -> Option<i64> {
    v.as_deref().and_then(|p| p.trim().parse().ok())
}

/// Whether the display listens on a TCP address (only then are ports allocated).
fn on_address(g: &Graphics) -> bool {
    matches!(
        g.listens.first().map(|l| l.ltype.as_str()),
        None | Some("address") | Some("network")
    )
}

/// A VNC display without a port, with port -1 or with `autoport='yes'` gets one.
fn vnc_autoport(g: &Graphics) -> bool {
    match g.autoport.as_deref() {
        Some("yes") => true,
        Some(_) => false,
        None => matches!(port_of(&g.port), None | Some(-1)),
    }
}

fn spice_autoport(g: &Graphics) -> bool {
    match g.autoport.as_deref() {
        Some("yes") => true,
        Some(_) => false,
        // The legacy spelling: both ports -1.
        None => port_of(&g.port) == Some(-1) && port_of(&g.tls_port) == Some(-1),
    }
}

/// Which of a SPICE display's ports need allocating: (plain port, TLS port). The channel
/// modes and the default mode decide; `any` wants TLS only when qemu.conf turns it on
/// (libvirt: qemuProcessSPICEAllocatePorts).
pub fn spice_needs(g: &Graphics, conf: &QemuConf) -> (bool, bool) {
    let (mut port, mut tls) = (false, false);
    if spice_autoport(g) {
        for (_, mode) in &g.channels {
            match mode.as_str() {
                "secure" => tls = true,
                "insecure" => port = true,
                _ => {}
            }
        }
        match g.default_mode.as_deref() {
            Some("secure") => tls = true,
            Some("insecure") => port = true,
            _ => {
                tls |= conf.spice_tls;
                port = true;
            }
        }
    }
    // With autoport, libvirt's parser drops written ports (-1 included): only a display
    // without autoport asks for a port by writing -1.
    else {
        port = port_of(&g.port) == Some(-1);
        tls = port_of(&g.tls_port) == Some(-1);
    }
    (port, tls)
}

/// libvirt's PRETEND values: VNC 5900, SPICE 5901 and TLS 5902, websockets left as written.
pub fn pretend(def: &mut DomainDef, conf: &QemuConf) {
    for g in def.devices.graphics.iter_mut().filter(|g| on_address(g)) {
        match g.gtype.as_str() {
            "vnc" if vnc_autoport(g) => g.port = Some("5900".into()),
            "spice" => {
                let (port, tls) = spice_needs(g, conf);
                if port {
                    g.port = Some("5901".into());
                }
                if tls {
                    g.tls_port = Some("5902".into());
                }
            }
            _ => {}
        }
    }
}

/// Give every display the ports it needs from `alloc`, writing them into `def` (so the live
/// XML shows them). A TLS port is refused when qemu.conf has SPICE TLS off, with libvirt's
/// message.
pub fn assign<E: From<Xml2ArgvError>>(
    def: &mut DomainDef,
    conf: &QemuConf,
    mut alloc: impl FnMut(PortPool) -> Result<u16, E>,
) -> Result<(), E> {
    for g in def.devices.graphics.iter_mut().filter(|g| on_address(g)) {
        match g.gtype.as_str() {
            "vnc" => {
                if vnc_autoport(g) {
                    g.port = Some(alloc(PortPool::Display)?.to_string());
                }
                if port_of(&g.websocket) == Some(-1) {
                    g.websocket = Some(alloc(PortPool::WebSocket)?.to_string());
                }
            }
            "spice" => {
                let (port, tls) = spice_needs(g, conf);
                if tls && !conf.spice_tls {
                    return Err(Xml2ArgvError::Unsupported(
                        "Auto allocation of spice TLS port requested but spice TLS is disabled in qemu.conf"
                            .into(),
                    )
                    .into());
                }
                if port {
                    g.port = Some(alloc(PortPool::Display)?.to_string());
                }
                if tls {
                    g.tls_port = Some(alloc(PortPool::Display)?.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(graphics: &str) -> DomainDef {
        crate::domain::parse(&format!(
            "<domain type='qemu'><name>g</name><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os><devices>{graphics}</devices></domain>"
        ))
        .unwrap()
    }

    fn ports(d: &DomainDef) -> Vec<(Option<String>, Option<String>, Option<String>)> {
        d.devices
            .graphics
            .iter()
            .map(|g| (g.port.clone(), g.tls_port.clone(), g.websocket.clone()))
            .collect()
    }

    #[test]
    fn pretend_values_are_libvirts() {
        let mut d = def(
            "<graphics type='vnc' port='-1' autoport='yes' websocket='-1'/>\
             <graphics type='spice' autoport='yes'/>\
             <graphics type='spice' autoport='yes'><channel name='main' mode='secure'/></graphics>",
        );
        pretend(&mut d, &QemuConf::default());
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            ports(&d),
            [
                (s("5900"), None, s("-1")),
                (s("5901"), None, None),
                (s("5901"), s("5902"), None),
            ]
        );
    }

    #[test]
    fn assign_takes_ports_from_the_allocator() {
        let mut d = def(
            "<graphics type='vnc' websocket='-1'/><graphics type='vnc' port='5999'/>\
             <graphics type='spice' autoport='yes'/>",
        );
        let mut next = 6000;
        let mut asked = Vec::new();
        assign::<Xml2ArgvError>(&mut d, &QemuConf::default(), |p| {
            asked.push(p);
            next += 1;
            Ok(next)
        })
        .unwrap();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            ports(&d),
            [
                (s("6001"), None, s("6002")),
                (s("5999"), None, None),
                (s("6003"), None, None),
            ]
        );
        assert_eq!(
            asked,
            [PortPool::Display, PortPool::WebSocket, PortPool::Display]
        );
    }

    #[test]
    fn tls_port_without_spice_tls_is_refused() {
        let mut d = def("<graphics type='spice' autoport='yes' defaultMode='secure'/>");
        let e = assign::<Xml2ArgvError>(&mut d, &QemuConf::default(), |_| Ok(5900)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: Auto allocation of spice TLS port requested but spice TLS is disabled in qemu.conf"
        );
    }
}
