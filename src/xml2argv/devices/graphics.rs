//! Graphics displays: VNC, SPICE, egl-headless (libvirt: qemuBuildGraphicsCommandLine).

use super::*;

/// SPICE channel names in libvirt's order (virDomainGraphicsSpiceChannelName).
const SPICE_CHANNELS: [&str; 8] = [
    "main",
    "display",
    "inputs",
    "cursor",
    "playback",
    "record",
    "smartcard",
    "usbredir",
];

impl Builder<'_> {
    pub(super) fn graphics(&mut self) -> R {
        for g in &self.def.devices.graphics {
            match g.gtype.as_str() {
                "vnc" => {
                    let mut o = KvOpts::new();
                    let listen = g.listens.first();
                    let ltype = listen_type(g, self.ctx.conf.vnc_auto_unix_socket);
                    if ltype == "socket" {
                        let sock = listen
                            .and_then(|l| l.socket.clone())
                            .unwrap_or(format!("{}/vnc.sock", self.ctx.lib_dir));
                        o.kv("vnc", format!("unix:{sock}"));
                    } else if ltype == "none" {
                        o.raw("none");
                    } else {
                        let addr = listen
                            .and_then(|l| l.address.clone())
                            .or(g.listen.clone())
                            .unwrap_or_else(|| "127.0.0.1".into());
                        let port: i64 = g
                            .port
                            .as_deref()
                            .and_then(|p| p.parse().ok())
                            .filter(|p: &i64| *p >= 5900)
                            .map(|p| p - 5900)
                            .unwrap_or(0);
                        let addr = if addr.contains(':') {
                            format!("[{addr}]")
                        } else {
                            addr
                        };
                        let display = format!("{addr}:{port}");
                        // QEMU reads a first element holding `=` as key=value: such an
                        // address needs its key spelled out.
                        if display.contains('=') {
                            o.kv("vnc", display);
                        } else {
                            o = KvOpts::with_head(&display);
                        }
                    }
                    if let Some(ws) = &g.websocket {
                        o.kv("websocket", ws);
                    }
                    if let Some(sp) = &g.share_policy {
                        o.kv("share", sp);
                    }
                    if g.passwd.is_some() {
                        o.raw("password=on");
                    }
                    // qemu.conf's vnc_tls: the server's x509 credentials, with the key's
                    // password secret when one is configured (libvirt:
                    // qemuBuildGraphicsVNCCommandLine).
                    if self.ctx.conf.vnc_tls {
                        let id = "vnc-tls-creds0";
                        let objs = crate::xml2argv::storage::tls_objects(
                            self.ctx,
                            id,
                            &self.ctx.conf.vnc_tls_dir,
                            true,
                            self.ctx.conf.vnc_tls_x509_verify,
                            self.ctx.conf.vnc_tls_x509_secret_uuid.as_deref(),
                        )?;
                        for obj in &objs {
                            self.object(obj);
                        }
                        o.kv("tls-creds", id);
                    }
                    if self.ctx.conf.vnc_sasl {
                        o.raw("sasl=on");
                    }
                    if g.extra
                        .attrs
                        .iter()
                        .any(|(k, v)| k == "powerControl" && v == "yes")
                    {
                        o.raw("power-control=on");
                    }
                    let audio = g
                        .audio_id
                        .or_else(|| self.def.devices.audios.first().and_then(|a| a.id));
                    if let Some(a) = audio {
                        o.kv("audiodev", format!("audio{a}"));
                    }
                    self.opt("-vnc", o.build());
                    // libvirt gives the keymap as QEMU's own option, after the display.
                    if let Some(k) = &g.keymap {
                        self.opt("-k", k);
                    }
                }
                "spice" => self.spice(g)?,
                "egl-headless" => {
                    let mut o = KvOpts::with_head("egl-headless");
                    o.kv("rendernode", self.render_node(g)?);
                    self.opt("-display", o.build());
                }
                "sdl" => {
                    return Err(unsupported("sdl not supported yet"));
                }
                other => {
                    return Err(unsupported(format!("graphics '{other}' not supported yet")));
                }
            }
        }
        Ok(())
    }

    /// The render node of an OpenGL display: its own, else the host's first (libvirt:
    /// virHostGetDRMRenderNode, with its message when the host has none).
    fn render_node(&self, g: &crate::domain::devices::Graphics) -> R<String> {
        g.gl_rendernode
            .clone()
            .or_else(|| self.ctx.render_node.clone())
            .ok_or_else(|| Xml2ArgvError::Internal("No DRM render nodes available".into()))
    }

    pub(super) fn spice(&mut self, g: &crate::domain::devices::Graphics) -> R {
        let mut o = KvOpts::new();
        let listen = g.listens.first();
        let ltype = listen_type(g, self.ctx.conf.spice_auto_unix_socket);
        let parse = |v: &Option<String>| v.as_deref().and_then(|p| p.parse::<i64>().ok());
        // Automatic ports were filled in before the build: allocated by a start, libvirt's
        // placeholders in a pretend one (see `graphics_ports`).
        let port = parse(&g.port).unwrap_or(0);
        let tls_port = parse(&g.tls_port).unwrap_or(0);
        if ltype == "socket" {
            let sock = listen
                .and_then(|l| l.socket.clone())
                .unwrap_or(format!("{}/spice.sock", self.ctx.lib_dir));
            o.raw("unix");
            o.kv("addr", sock);
        } else {
            if port > 0 {
                o.kv("port", port);
            }
            if tls_port > 0 {
                o.kv("tls-port", tls_port);
            }
            if port <= 0 && tls_port <= 0 {
                o.raw("port=0");
            }
            if port > 0 || tls_port > 0 {
                let addr = listen
                    .and_then(|l| l.address.clone())
                    .or(g.listen.clone())
                    .unwrap_or_else(|| "127.0.0.1".into());
                o.kv("addr", addr);
            }
        }
        if self.ctx.conf.spice_sasl {
            o.raw("sasl=on");
        }
        // A password is set over QMP after start (never on the command line); without one,
        // QEMU must be told not to expect tickets.
        if g.passwd.is_none() && self.ctx.conf.spice_password.is_none() {
            o.raw("disable-ticketing=on");
        }
        if tls_port > 0 {
            o.kv("x509-dir", &self.ctx.conf.spice_tls_dir);
        }
        if let Some(m) = &g.mouse_mode {
            o.kv("agent-mouse", if m == "client" { "on" } else { "off" });
        }
        match g.default_mode.as_deref() {
            Some("secure") => {
                o.raw("tls-channel=default");
            }
            Some("insecure") => {
                o.raw("plaintext-channel=default");
            }
            _ => {}
        }
        // In libvirt's channel order, whatever the XML's.
        let mut channels: Vec<&(String, String)> = g.channels.iter().collect();
        channels.sort_by_key(|(name, _)| SPICE_CHANNELS.iter().position(|c| c == name));
        for (name, mode) in channels {
            match mode.as_str() {
                "secure" => {
                    o.kv("tls-channel", name);
                }
                "insecure" => {
                    o.kv("plaintext-channel", name);
                }
                _ => {}
            }
        }
        o.kv_opt("image-compression", g.image_compression.as_ref());
        o.kv_opt("jpeg-wan-compression", g.jpeg_compression.as_ref());
        o.kv_opt("zlib-glz-wan-compression", g.zlib_compression.as_ref());
        o.kv_opt("playback-compression", g.playback_compression.as_ref());
        o.kv_opt("streaming-video", g.streaming_mode.as_ref());
        if g.clipboard_copypaste.as_deref() == Some("no") {
            o.raw("disable-copy-paste=on");
        }
        if g.filetransfer_enable.as_deref() == Some("no") {
            o.raw("disable-agent-file-xfer=on");
        }
        if g.gl_enable.as_deref() == Some("yes") {
            o.raw("gl=on");
            o.kv("rendernode", self.render_node(g)?);
        }
        o.raw("seamless-migration=on");
        self.opt("-spice", o.build());
        if let Some(k) = &g.keymap {
            self.opt("-k", k);
        }
        Ok(())
    }
}

/// How a VNC or SPICE server listens: its first listen's type, where an address listen
/// without an address becomes the domain's own socket when qemu.conf's `*_auto_unix_socket`
/// says so (libvirt: qemuProcessGraphicsSetupListen).
fn listen_type(g: &crate::domain::devices::Graphics, auto_unix_socket: bool) -> &str {
    let listen = g.listens.first();
    let ltype = listen.map(|l| l.ltype.as_str()).unwrap_or("address");
    if ltype == "address"
        && listen.and_then(|l| l.address.as_ref()).is_none()
        && g.listen.is_none()
        && auto_unix_socket
    {
        return "socket";
    }
    ltype
}
