//! Character devices and the devices that use them: serials, parallels, channels,
//! consoles, TPMs (libvirt: qemuBuildChardevCommandLine and its users).

use super::*;

impl Builder<'_> {
    /// The path a binding UNIX chardev listens on. A path-less virtio channel binds in the
    /// domain's own channel dir, named after its target (libvirt: qemuDomainPrepareChannel).
    fn unix_bind_path(&self, c: &Chardev, src: &ChrSource) -> R<String> {
        if let Some(p) = src.path.as_ref().filter(|p| !p.is_empty()) {
            return Ok(p.clone());
        }
        let name = c
            .target
            .as_ref()
            .filter(|_| c.kind == "channel")
            .and_then(|t| t.name.as_deref());
        match name {
            Some(name) => Ok(format!(
                "{}/domain-{}/{name}",
                self.ctx.channel_target_dir,
                self.ctx.short_name(self.def)
            )),
            // libvirt: virDomainChrSourceDefValidate
            None => Err(Xml2ArgvError::Xml(
                "Missing source path attribute for char device".into(),
            )),
        }
    }

    /// The `-chardev` backend for a source, or an error for kinds not handled yet.
    pub(super) fn chardev(&mut self, id: &str, c: &Chardev) -> R {
        let ty = c.stype.as_deref().unwrap_or("pty");
        let src: ChrSource = c.sources.first().cloned().unwrap_or_default();
        let mut o;
        match ty {
            "pty" | "null" | "vc" | "stdio" | "spicevmc" | "qemu-vdagent" => {
                let head = ty;
                o = KvOpts::with_head(head);
                o.kv("id", id);
                if ty == "spicevmc" {
                    let redir = c.kind == "redirdev" || id.starts_with("charredir");
                    o.kv("name", if redir { "usbredir" } else { "vdagent" });
                }
                if ty == "qemu-vdagent" {
                    vdagent_opts(&mut o, &src);
                }
            }
            "unix" => {
                o = KvOpts::with_head("socket");
                o.kv("id", id);
                let bind = src.mode.as_deref() != Some("connect");
                if bind {
                    if let Some(fd) = self.ctx.bind_socket_fd {
                        o.kv("fd", fd);
                    } else {
                        o.kv("path", self.unix_bind_path(c, &src)?);
                    }
                    o.raw("server=on,wait=off");
                } else {
                    o.kv("path", src.path.clone().unwrap_or_default());
                }
            }
            "tcp" => {
                o = KvOpts::with_head("socket");
                o.kv("id", id);
                o.kv("host", src.host.clone().unwrap_or_default());
                o.kv("port", src.service.clone().unwrap_or_default());
                if c.protocol.as_deref() == Some("telnet") {
                    o.raw("telnet=on");
                }
                let listen = src.mode.as_deref() == Some("bind");
                if listen {
                    o.raw("server=on,wait=off");
                }
                // TLS when the source asks for it, else as qemu.conf's chardev_tls says
                // (libvirt: qemuBuildChardevCommand). A client always checks the server.
                let conf = &self.ctx.conf;
                let tls = match src.tls.as_deref() {
                    Some(t) => t == "yes",
                    None => conf.chardev_tls,
                };
                if tls {
                    let obj = format!("obj{id}_tls0");
                    let verify = !listen || conf.chardev_tls_x509_verify;
                    let secret = conf.chardev_tls_x509_secret_uuid.as_deref();
                    let objs = crate::xml2argv::storage::tls_objects(
                        self.ctx,
                        &obj,
                        &conf.chardev_tls_dir,
                        listen,
                        verify,
                        secret,
                    )?;
                    for j in &objs {
                        self.object(j);
                    }
                    o.kv("tls-creds", obj);
                }
            }
            "udp" => {
                o = KvOpts::with_head("udp");
                o.kv("id", id);
                let connect = c
                    .sources
                    .iter()
                    .find(|s| s.mode.as_deref() == Some("connect"));
                let bind = c.sources.iter().find(|s| s.mode.as_deref() == Some("bind"));
                o.kv(
                    "host",
                    connect.and_then(|s| s.host.clone()).unwrap_or_default(),
                );
                o.kv(
                    "port",
                    connect.and_then(|s| s.service.clone()).unwrap_or_default(),
                );
                o.kv(
                    "localaddr",
                    bind.and_then(|b| b.host.clone()).unwrap_or_default(),
                );
                o.kv(
                    "localport",
                    bind.and_then(|b| b.service.clone())
                        .unwrap_or_else(|| "0".into()),
                );
            }
            "dev" => {
                o = KvOpts::with_head(if c.kind == "parallel" {
                    "parallel"
                } else {
                    "serial"
                });
                o.kv("id", id);
                o.kv("path", src.path.clone().unwrap_or_default());
            }
            // A SPICE port channel of the given name (libvirt: qemuBuildChardevCommand).
            "spiceport" => {
                let name = src.channel.clone().ok_or_else(|| {
                    // libvirt: virDomainChrSourceDefParseXML
                    Xml2ArgvError::Xml("Missing source channel attribute for char device".into())
                })?;
                o = KvOpts::with_head("spiceport");
                o.kv("id", id);
                o.kv("name", name);
            }
            "pipe" => {
                o = KvOpts::with_head("pipe");
                o.kv("id", id);
                o.kv("path", src.path.clone().unwrap_or_default());
            }
            "file" => match self.ctx.file_chardev_fd {
                // No descriptor prepared by the caller: QEMU opens the file itself.
                None => {
                    o = KvOpts::with_head("file");
                    o.kv("id", id);
                    o.kv("path", src.path.clone().unwrap_or_default());
                    if src.append.as_deref() == Some("on") {
                        o.raw("append=on");
                    }
                }
                Some(fd) => {
                    let set = self.fdset;
                    self.fdset += 1;
                    let dev_alias = id.strip_prefix("char").unwrap_or(id);
                    self.opt(
                        "-add-fd",
                        format!("set={set},fd={fd},opaque={dev_alias}-source"),
                    );
                    o = KvOpts::with_head("file");
                    o.kv("id", id);
                    o.kv("path", format!("/dev/fdset/{set}"));
                    o.raw("append=on");
                }
            },
            other => {
                return Err(unsupported(format!(
                    "chardev type '{other}' not supported yet"
                )));
            }
        }
        if let Some(file) = c.log.as_ref().and_then(|l| l.file.clone()) {
            match self.ctx.file_chardev_fd {
                // libvirt opens the log itself (truncating it unless append='on') and hands
                // QEMU a descriptor to append to.
                Some(fd) => {
                    let set = self.fdset;
                    self.fdset += 1;
                    let dev_alias = id.strip_prefix("char").unwrap_or(id);
                    self.opt(
                        "-add-fd",
                        format!("set={set},fd={},opaque={dev_alias}-log", fd + 1),
                    );
                    o.kv("logfile", format!("/dev/fdset/{set}"));
                    o.raw("logappend=on");
                }
                None => {
                    o.kv("logfile", file);
                    if let Some(a) = c.log.as_ref().and_then(|l| l.append.as_deref()) {
                        o.kv("logappend", a);
                    }
                }
            }
        }
        self.opt("-chardev", o.build());
        Ok(())
    }

    pub(super) fn serials(&mut self) -> R {
        for (i, s) in self.def.devices.serials.iter().enumerate() {
            let alias = self.alias(&s.info)?;
            let chr = format!("char{alias}");
            self.chardev(&chr, s)?;
            let model = s
                .target
                .as_ref()
                .and_then(|t| {
                    t.model.clone().or_else(|| {
                        (t.ttype.as_deref() == Some("isa-debug")).then(|| "isa-debugcon".into())
                    })
                })
                .unwrap_or_else(|| "isa-serial".into());
            // Board-integrated UARTs attach through -serial.
            if model == "pl011" || model == "16550a" {
                self.opt("-serial", format!("chardev:{chr}"));
                continue;
            }
            let mut j = JsonOpts::new();
            j.s("driver", model.clone())
                .s("chardev", chr)
                .s("id", alias);
            if model == "isa-serial" {
                let port = s
                    .target
                    .as_ref()
                    .and_then(|t| t.port.as_deref())
                    .and_then(|p| p.parse::<u64>().ok())
                    .unwrap_or(i as u64);
                j.u("index", port);
                isa_props(&mut j, &s.info, true);
            } else if model == "isa-debugcon" {
                isa_props(&mut j, &s.info, false);
            } else {
                self.info_props(&mut j, &s.info)?;
            }
            self.device(&j);
        }
        Ok(())
    }

    pub(super) fn channels(&mut self) -> R {
        for c in self.def.devices.channels.iter() {
            if channel_target(c) == "guestfwd" {
                let netdev = self.guestfwd_netdev(c)?;
                self.chardev(&format!("char{}", self.alias(&c.info)?), c)?;
                self.opt("-netdev", netdev.build());
                continue;
            }
            let dev = self.channel_device(c)?;
            self.chardev(&format!("char{}", self.alias(&c.info)?), c)?;
            self.opt("-device", dev.build());
        }
        Ok(())
    }

    /// The guest side of channel `c` (`-device`, QMP `device_add`, `<qemu:override>`
    /// applied): one source for the command line and hotplug (libvirt:
    /// qemuBuildChrDeviceProps). Its chardev is `char` + its alias.
    pub(super) fn channel_device(&self, c: &Chardev) -> R<JsonOpts> {
        let alias = self.alias(&c.info)?;
        let ttype = channel_target(c);
        if ttype != "virtio" {
            return Err(unsupported(format!(
                "channel target '{ttype}' not supported yet"
            )));
        }
        let mut j = JsonOpts::new();
        j.s("driver", "virtserialport");
        self.virtio_serial_port(&mut j, &c.info.address)?;
        j.s("chardev", format!("char{alias}")).s("id", alias);
        if let Some(n) = c.target.as_ref().and_then(|t| t.name.clone()) {
            j.s("name", n);
        }
        Ok(self.with_overrides(&j).unwrap_or(j))
    }

    /// QMP `chardev-add`'s arguments for the backend `id` of `c`: the same source the
    /// command line's `-chardev` gets, in QMP's shape (libvirt: qemuMonitorJSONAttachCharDev
    /// from the one chardev source definition). The kinds a running guest can take without
    /// descriptors libvirt would pass.
    pub(super) fn chardev_backend(&self, id: &str, c: &Chardev) -> R<serde_json::Value> {
        use serde_json::json;
        let ty = c.stype.as_deref().unwrap_or("pty");
        let src: ChrSource = c.sources.first().cloned().unwrap_or_default();
        let backend = match ty {
            "null" | "pty" => json!({ "type": ty, "data": {} }),
            "unix" => {
                let bind = src.mode.as_deref() != Some("connect");
                let path = if bind {
                    self.unix_bind_path(c, &src)?
                } else {
                    src.path.clone().unwrap_or_default()
                };
                let mut data = json!({
                    "addr": { "type": "unix", "data": { "path": path } },
                    "server": bind,
                });
                if bind {
                    data["wait"] = json!(false);
                }
                json!({ "type": "socket", "data": data })
            }
            "file" => {
                let mut data = json!({ "out": src.path.clone().unwrap_or_default() });
                if src.append.as_deref() == Some("on") {
                    data["append"] = json!(true);
                }
                json!({ "type": "file", "data": data })
            }
            other => {
                return Err(unsupported(format!(
                    "chardev type '{other}' cannot be hotplugged yet"
                )));
            }
        };
        Ok(json!({ "id": id, "backend": backend }))
    }

    pub(super) fn tpms(&mut self) -> R {
        let short = self.ctx.short_name(self.def);
        for t in self.def.devices.tpms.iter() {
            let a = crate::xml2argv::tpm::args(t, self.ctx, &short, &mut self.fdset)?;
            self.args.extend(a);
        }
        Ok(())
    }

    pub(super) fn consoles(&mut self) -> R {
        for c in self.def.devices.consoles.iter() {
            let ttype = c
                .target
                .as_ref()
                .and_then(|t| t.ttype.as_deref())
                .unwrap_or("serial");
            // A serial console is the first serial port, already printed.
            if ttype == "serial" {
                continue;
            }
            let alias = self.alias(&c.info)?;
            let chr = format!("char{alias}");
            if ttype != "virtio" {
                return Err(unsupported(format!(
                    "console target '{ttype}' not supported yet"
                )));
            }
            self.chardev(&chr, c)?;
            let mut j = JsonOpts::new();
            j.s("driver", "virtconsole");
            self.virtio_serial_port(&mut j, &c.info.address)?;
            j.s("chardev", chr).s("id", alias);
            self.device(&j);
        }
        Ok(())
    }

    pub(super) fn parallels(&mut self) -> R {
        for p in self.def.devices.parallels.iter() {
            let alias = self.alias(&p.info)?;
            let chr = format!("char{alias}");
            self.chardev(&chr, p)?;
            let mut j = JsonOpts::new();
            j.s("driver", "isa-parallel")
                .s("chardev", chr)
                .s("id", alias);
            self.device(&j);
        }
        Ok(())
    }
}

/// A channel's target type, virtio when it names none.
fn channel_target(c: &Chardev) -> &str {
    c.target
        .as_ref()
        .and_then(|t| t.ttype.as_deref())
        .unwrap_or("virtio")
}

/// QEMU's own vdagent: the clipboard sharing and mouse mode of its `<source>` (libvirt:
/// qemuBuildChardevCommandLine, VIR_DOMAIN_CHR_TYPE_QEMU_VDAGENT).
fn vdagent_opts(o: &mut KvOpts, src: &ChrSource) {
    o.kv("name", "vdagent");
    let child_attr = |elem: &str, attr: &str| {
        src.extra
            .children
            .iter()
            .find(|c| c.name == elem)
            .and_then(|c| c.attr(attr).map(str::to_string))
    };
    if let Some(copy) = child_attr("clipboard", "copypaste") {
        o.kv("clipboard", if copy == "yes" { "on" } else { "off" });
    }
    match child_attr("mouse", "mode").as_deref() {
        Some("client") => {
            o.kv("mouse", "on");
        }
        Some("server") => {
            o.kv("mouse", "off");
        }
        _ => {}
    }
}
