//! Disks: the storage nodes behind them and the front-end devices
//! (libvirt: qemuBuildDisksCommandLine, qemuBuildDiskDeviceProps).

use super::*;

impl Builder<'_> {
    pub(super) fn disks(&mut self) -> R {
        let disks = &self.def.devices.disks;
        // The boot index of each floppy drive, by its letter.
        let floppy_boot: Vec<(char, u32)> = disks
            .iter()
            .enumerate()
            .filter(|(_, d)| d.target.bus.as_deref() == Some("fdc"))
            .filter_map(|(i, d)| {
                let boot = d.info.boot.as_ref().map(|b| b.order);
                let boot = boot.or(self.disk_boot.get(&i).copied())?;
                match &d.info.address {
                    Some(Address::Drive { unit, .. }) => {
                        Some((if *unit == 0 { 'A' } else { 'B' }, boot))
                    }
                    _ => None,
                }
            })
            .collect();
        let has_floppy = disks.iter().any(|d| d.target.bus.as_deref() == Some("fdc"));
        if !self.is_q35() {
            // The built-in floppy controller of i440fx takes boot indexes for its drives.
            for (letter, b) in &floppy_boot {
                self.args.push("-global".into());
                self.args.push(format!("isa-fdc.bootindex{letter}={b}"));
            }
        } else if has_floppy && !q35_has_builtin_fdc(self.machine()) {
            // Newer q35 machines have no floppy controller of their own: it is added before
            // the drives, with their boot indexes (libvirt: qemuDomainNeedsFDC).
            let mut j = JsonOpts::new();
            j.s("driver", "isa-fdc");
            for (letter, b) in &floppy_boot {
                j.u(&format!("bootindex{letter}"), *b as u64);
            }
            self.device(&j);
        }
        let disks = &self.def.devices.disks;
        let names = node_numbers(disks);
        for (i, d) in disks.iter().enumerate() {
            if shares_backing(d) {
                // libvirt adds such a disk over QMP once QEMU runs, on an overlay of its
                // own (qemuBuildDiskCommandLine); a start that cannot do that refuses it
                // rather than start the guest without it.
                if !self.ctx.pretend {
                    return Err(unsupported(format!(
                        "transient disk '{}' with shareBacking='yes' is not supported yet",
                        d.target.dev
                    )));
                }
                continue;
            }
            if d.target.bus.as_deref() == Some("sd") {
                let drive = self.sd_drive(d)?;
                self.opt("-drive", drive);
                continue;
            }
            self.disk(i, d, &names[i])?;
        }
        self.fdset += fd_nodes(disks, &names).len() as u32;
        Ok(())
    }

    /// The fd group and `-add-fd` set of the local source of node `n` passed by fd, if it
    /// is: sets are numbered in the order libvirt prepares the sources, which is the order
    /// of their node numbers (libvirt: qemuDomainPrepareStorageSourceFDs).
    fn fd_source(
        &self,
        src: Option<&DiskSource>,
        ty: Option<&str>,
        n: u32,
    ) -> R<Option<(u32, &FdGroup)>> {
        let Some(name) = src.and_then(|s| s.fdgroup.as_deref()) else {
            return Ok(None);
        };
        if !matches!(ty.unwrap_or("file"), "file" | "block") {
            return Ok(None);
        }
        let Some(group) = self.ctx.fd_groups.iter().find(|g| g.name == name) else {
            return Err(Xml2ArgvError::Other(format!(
                "invalid argument: file descriptor group '{name}' was not associated with the domain"
            )));
        };
        let disks = &self.def.devices.disks;
        let rank = fd_nodes(disks, &node_numbers(disks))
            .iter()
            .position(|x| *x == n)
            .unwrap_or(0) as u32;
        Ok(Some((self.fdset + rank, group)))
    }

    pub(super) fn disk(&mut self, i: usize, d: &Disk, nodes: &[u32]) -> R {
        let parts = self.disk_parts(i, d, nodes)?;
        if let Some(c) = &parts.chardev {
            self.opt("-chardev", c.clone());
        }
        for a in &parts.add_fds {
            self.opt("-add-fd", a.clone());
        }
        for l in &parts.layers {
            for o in &l.objects {
                self.object(o);
            }
            self.opt("-blockdev", l.storage.build());
            if let Some(sl) = &l.slice {
                self.opt("-blockdev", sl.build());
            }
            self.opt("-blockdev", l.format.build());
        }
        if let Some(c) = &parts.copy_on_read {
            self.opt("-blockdev", c.build());
        }
        self.opt("-device", parts.device.build());
        Ok(())
    }

    /// Everything QEMU gets for disk `i`: per layer of its chain, bottom up, the objects
    /// (secrets, TLS) and the storage and format nodes, then the front-end device. The
    /// command line prints them, hotplug sends them over QMP: one source for both (libvirt:
    /// qemuBuildStorageSourceChainAttachPrepareBlockdev, qemuBuildDiskDeviceProps).
    pub(super) fn disk_parts(&self, i: usize, d: &Disk, nodes: &[u32]) -> R<DiskParts> {
        let device = d.device.as_deref().unwrap_or("disk");
        let mut out = DiskParts::default();
        let readonly = d.readonly || device == "cdrom";
        let alias = self.alias(&d.info)?;
        // Chain layers: top image then backing stores.
        // Per layer: its source, type, format and qcow2 metadata cache limit in bytes.
        type Layer<'a> = (
            Option<&'a DiskSource>,
            Option<String>,
            Option<String>,
            Option<u64>,
        );
        let mut layers: Vec<Layer> = Vec::new();
        let driver = d.driver.as_ref();
        layers.push((
            d.source.as_ref(),
            d.dtype.clone(),
            driver.and_then(|x| x.dtype.clone()),
            driver
                .and_then(|x| x.metadata_cache.as_ref())
                .and_then(|m| m.max_size_bytes),
        ));
        let mut bs = d.backing_store.as_ref();
        while let Some(b) = bs {
            if b.source.is_none() && b.btype.is_none() {
                break;
            }
            layers.push((
                b.source.as_ref(),
                b.btype.clone(),
                b.format.clone(),
                b.format_metadata_cache
                    .as_ref()
                    .and_then(|m| m.max_size_bytes),
            ));
            bs = b.backing.as_deref();
        }
        // Sources passed by fd: their sets, top of the chain first.
        let mut fd_sets: HashMap<u32, (u32, usize)> = HashMap::new();
        if !is_vhost_user(d) {
            for (li, (src, ty, _, _)) in layers.iter().enumerate().take(nodes.len()) {
                if let Some((set, group)) = self.fd_source(*src, ty.as_deref(), nodes[li])? {
                    let storage = format!("libvirt-{}-storage", nodes[li]);
                    for (k, fd) in group.fds.iter().enumerate() {
                        out.add_fds
                            .push(format!("set={set},fd={fd},opaque={storage}{k}"));
                    }
                    fd_sets.insert(nodes[li], (set, group.fds.len()));
                }
            }
        }
        let mut top_format: Option<String> = None;
        if is_vhost_user(d) {
            // No block nodes: QEMU talks to the back-end process that serves the image.
            out.chardev = Some(vhost_user::disk_chardev(&alias, d.source.as_ref())?);
        } else if !nodes.is_empty() {
            // Print from the bottom of the chain up.
            for li in (0..nodes.len().min(layers.len())).rev() {
                let n = nodes[li];
                let (src, ty, fmt, metadata_cache) = &layers[li];
                let storage = format!("libvirt-{n}-storage");
                let format = format!("libvirt-{n}-format");
                // The older placement of <auth> and <encryption> (beside <source>) belongs to
                // the top image.
                let auth = src.and_then(|x| x.auth.as_ref()).or(if li == 0 {
                    d.auth.as_ref()
                } else {
                    None
                });
                let enc = src
                    .and_then(|x| x.encryption.as_ref())
                    .or(if li == 0 { d.encryption.as_ref() } else { None })
                    .filter(|e| !e.secrets.is_empty());
                let mut pre = Vec::new();
                let mut enc_id = None;
                if let Some(e) = enc {
                    let (id, obj) = storage::encryption_secret(self.ctx, e, &format)?;
                    pre.push((storage::PRE_ENCRYPTION, obj));
                    enc_id = Some(id);
                }
                let rbd_enc = enc
                    .filter(|e| e.engine.as_deref() == Some("librbd"))
                    .zip(enc_id.as_deref());
                let mut s = if ty.as_deref() == Some("network") {
                    let src =
                        src.ok_or_else(|| Xml2ArgvError::Internal("missing disk source".into()))?;
                    storage::network_props(self.ctx, src, auth, rbd_enc, &storage, &mut pre)?
                } else {
                    let pr = pr_manager::pr_manager(*src).map(|p| {
                        let (alias, obj) = pr_manager::pr_props(&p, &storage);
                        if let Some(o) = obj {
                            pre.push((storage::PRE_PR_MANAGER, o));
                        }
                        alias
                    });
                    self.storage_props(d, *src, ty.as_deref(), device, pr.as_deref())?
                };
                pre.sort_by_key(|(rank, _)| *rank);
                let objects = pre.into_iter().map(|(_, o)| o).collect();
                s.s("node-name", storage.clone());
                let fd_set = fd_sets.get(&n);
                if let Some((set, _)) = fd_set {
                    s.s("filename", format!("/dev/fdset/{set}"));
                }
                if let Some(c) = self.cache_props(d) {
                    s.v("cache", c);
                }
                // QEMU picks an fd of the set by access mode: auto-read-only needs a
                // read-only and a read-write one, so a single fd is opened as the image
                // is used (libvirt: qemuBlockStorageSourceGetBlockdevStorageProps).
                match fd_set {
                    Some((_, 1)) => {
                        let writable = src
                            .and_then(|x| x.fdgroup.as_deref())
                            .and_then(|g| self.ctx.fd_groups.iter().find(|f| f.name == g))
                            .is_some_and(|g| g.writable);
                        s.b("read-only", !writable && (li != 0 || readonly));
                    }
                    _ => {
                        s.b("auto-read-only", true);
                    }
                }
                s.s("discard", "unmap");
                let mut f = JsonOpts::new();
                f.s("node-name", format.clone());
                f.b("read-only", if li == 0 { readonly } else { true });
                // libvirt: qemuBlockStorageSourceGetBlockdevFormatCommonProps
                if let Some(disc) = d.driver.as_ref().and_then(|x| x.discard.as_deref()) {
                    f.s("discard", disc);
                }
                if let Some(c) = self.cache_props(d) {
                    f.v("cache", c);
                }
                let fmt = fmt.clone().unwrap_or_else(|| "raw".into());
                let slice = src.and_then(|x| x.slices.iter().find(|s| s.stype == "storage"));
                // A raw image read in place takes the slice itself; any other format (a LUKS
                // layer included) reads through a raw slice node of its own (libvirt 9.0:
                // qemuBlockStorageSourceNeedsStorageSliceLayer).
                let luks = storage::qemu_encryption(enc).is_some() && enc_id.is_some();
                let slice_layer = slice.filter(|_| fmt != "raw" || luks);
                match (storage::qemu_encryption(enc), enc_id) {
                    (Some(_), Some(id)) if fmt == "raw" => {
                        f.s("driver", "luks").s("key-secret", id);
                    }
                    (Some(e), Some(id)) => {
                        let mut x = JsonOpts::new();
                        x.s("format", e.format.clone().unwrap_or_else(|| "luks".into()))
                            .s("key-secret", id);
                        f.s("driver", fmt.clone()).v("encrypt", x.into_value());
                    }
                    _ => {
                        // vvfat is the FAT image itself; a raw layer goes on top.
                        f.s("driver", if fmt == "fat" { "raw" } else { fmt.as_str() });
                        if let Some(sl) = slice.filter(|_| slice_layer.is_none()) {
                            f.u("offset", sl.offset).u("size", sl.size);
                        }
                    }
                }
                // libvirt: qemuBlockStorageSourceGetFormatQcow2Props
                if fmt == "qcow2"
                    && let Some(sz) = metadata_cache
                {
                    f.u("cache-size", *sz);
                }
                // libvirt: qemuBlockStorageSourceGetBlockdevStorageSliceProps
                let slice_node = slice_layer.map(|sl| {
                    let node = format!("libvirt-{n}-slice-sto");
                    let mut j = JsonOpts::new();
                    j.s("driver", "raw")
                        .s("node-name", node.clone())
                        .u("offset", sl.offset)
                        .u("size", sl.size)
                        .s("file", storage.clone())
                        .b("auto-read-only", true)
                        .s("discard", "unmap");
                    if let Some(c) = self.cache_props(d) {
                        j.v("cache", c);
                    }
                    (node, j)
                });
                let (file, slice_node) = match slice_node {
                    Some((node, j)) => (node, Some(j)),
                    None => (storage, None),
                };
                f.s("file", file);
                // A chain that is known to end here says so; an unknown one (no
                // <backingStore> at all) is left to QEMU to open.
                if li + 1 < nodes.len().min(layers.len()) {
                    f.s("backing", format!("libvirt-{}-format", nodes[li + 1]));
                } else if matches!(fmt.as_str(), "qcow2" | "qed" | "vmdk" | "qcow")
                    && chain_terminated(d)
                {
                    f.v("backing", serde_json::Value::Null);
                }
                out.layers.push(BlockLayer {
                    objects,
                    storage: s,
                    slice: slice_node,
                    format: f,
                });
                if li == 0 {
                    top_format = Some(format);
                }
            }
        }
        // Reads pulled from the backing chain are written to the image (libvirt:
        // qemuBuildStorageSourceChainAttachPrepareBlockdevTop, the `libvirt-CoR-<dst>` layer).
        let copy_on_read = d.driver.as_ref().and_then(|x| x.copy_on_read.as_deref()) == Some("on");
        if copy_on_read && let Some(top) = top_format.take() {
            let node = format!("libvirt-CoR-{}", d.target.dev);
            let mut j = JsonOpts::new();
            j.s("driver", "copy-on-read")
                .s("node-name", node.clone())
                .s("file", top)
                .s("discard", "unmap");
            out.copy_on_read = Some(j);
            top_format = Some(node);
        }
        out.device = self.disk_device(i, d, &alias, top_format.as_deref())?;
        Ok(out)
    }

    /// Where a device sits on a SCSI bus: a virtio-scsi controller's one bus takes channel,
    /// target and LUN; other HBAs have a bus per channel and a unit as the SCSI id (libvirt:
    /// qemuBuildDeviceAddressDriveProps).
    pub(super) fn scsi_address_props(&self, j: &mut JsonOpts, address: &Option<Address>) {
        if let Some(Address::Drive {
            controller,
            bus: b,
            target,
            unit,
        }) = address
        {
            if self.scsi_is_virtio(*controller) {
                j.s("bus", format!("scsi{controller}.0"))
                    .u("channel", *b as u64)
                    .u("scsi-id", *target as u64)
                    .u("lun", *unit as u64);
            } else {
                j.s("bus", format!("scsi{controller}.{b}"))
                    .u("scsi-id", *unit as u64);
            }
        }
    }

    pub(super) fn cache_props(&self, d: &Disk) -> Option<serde_json::Value> {
        let mode = cache_mode(d)?;
        let (direct, no_flush) = match mode {
            "none" => (true, false),
            "writethrough" => (false, false),
            "writeback" => (false, false),
            "directsync" => (true, false),
            "unsafe" => (false, true),
            _ => return None,
        };
        Some(serde_json::json!({"direct": direct, "no-flush": no_flush}))
    }

    pub(super) fn storage_props(
        &self,
        d: &Disk,
        src: Option<&DiskSource>,
        ty: Option<&str>,
        device: &str,
        pr_manager: Option<&str>,
    ) -> R<JsonOpts> {
        let mut j = JsonOpts::new();
        let src = src.ok_or_else(|| Xml2ArgvError::Internal("missing disk source".into()))?;
        match ty.unwrap_or("file") {
            "file" => {
                j.s("driver", "file")
                    .s("filename", src.file.clone().unwrap_or_default());
                j.s_opt("aio", d.driver.as_ref().and_then(|x| x.io.clone()));
                j.s_opt("pr-manager", pr_manager.map(String::from));
            }
            "block" => {
                let p = src.dev.clone().unwrap_or_default();
                // libvirt asks the host whether the node is a CD-ROM drive; its tests say so
                // for /dev/cdrom only.
                let drv = if device == "cdrom" && p == "/dev/cdrom" {
                    "host_cdrom"
                } else {
                    "host_device"
                };
                j.s("driver", drv).s("filename", p);
                j.s_opt("aio", d.driver.as_ref().and_then(|x| x.io.clone()));
                j.s_opt("pr-manager", pr_manager.map(String::from));
            }
            "dir" => {
                crate::xml2argv::fsdev::check_vvfat(d)?;
                j.s("driver", "vvfat")
                    .s("dir", src.dir.clone().unwrap_or_default())
                    .b("floppy", device == "floppy")
                    .b("rw", !d.readonly);
            }
            "nvme" => return self.nvme_props(d, src),
            other => {
                return Err(unsupported(format!(
                    "disk type '{other}' not supported yet"
                )));
            }
        }
        Ok(j)
    }

    /// QEMU's userspace NVMe driver on a host controller and namespace (libvirt:
    /// qemuBlockStorageSourceGetNVMeProps). A real start would first have to detach the
    /// controller from the host and hand it to vfio, as libvirt's hostdev code does; that is
    /// not done, so only a pretend start builds it.
    fn nvme_props(&self, d: &Disk, src: &DiskSource) -> R<JsonOpts> {
        if !self.ctx.pretend {
            return Err(unsupported(format!(
                "disk '{}' of type 'nvme' needs its controller detached to vfio, which is not supported yet",
                d.target.dev
            )));
        }
        let Some(crate::domain::devices::HostAddress::Pci {
            domain,
            bus,
            slot,
            function,
        }) = &src.address
        else {
            return Err(unsupported(format!(
                "disk '{}' of type 'nvme' has no PCI address of its controller",
                d.target.dev
            )));
        };
        let namespace = src.extra.attr("namespace").unwrap_or("1");
        let namespace: u64 = namespace.parse().map_err(|_| {
            unsupported(format!(
                "invalid NVMe namespace '{namespace}' of disk '{}'",
                d.target.dev
            ))
        })?;
        let mut j = JsonOpts::new();
        j.s("driver", "nvme")
            .s(
                "device",
                format!("{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"),
            )
            .u("namespace", namespace);
        Ok(j)
    }

    /// The front-end device of a disk, `<qemu:override>` applied (libvirt:
    /// qemuBuildDiskDeviceProps).
    pub(super) fn disk_device(
        &self,
        i: usize,
        d: &Disk,
        alias: &str,
        drive: Option<&str>,
    ) -> R<JsonOpts> {
        let device = d.device.as_deref().unwrap_or("disk");
        let bus = d.target.bus.as_deref().unwrap_or("ide");
        let boot = d
            .info
            .boot
            .as_ref()
            .map(|b| b.order)
            .or(self.disk_boot.get(&i).copied());
        let mut j = JsonOpts::new();
        match bus {
            "ide" | "sata" => {
                let drv = if device == "cdrom" {
                    "ide-cd"
                } else {
                    "ide-hd"
                };
                j.s("driver", drv);
                if let Some(Address::Drive {
                    controller,
                    bus: b,
                    unit,
                    ..
                }) = &d.info.address
                {
                    if bus == "sata" {
                        if self.is_q35() && *controller == 0 {
                            j.s("bus", format!("ide.{unit}"));
                        } else {
                            j.s("bus", format!("sata{controller}.{unit}"));
                        }
                    } else {
                        j.s("bus", format!("ide.{b}")).u("unit", *unit as u64);
                    }
                }
                drive_props(&mut j, d, drive);
                j.s("id", alias);
            }
            "virtio" => {
                // libvirt: qemuBuildVirtioDevGetConfig, `vhost-user-blk` for a vhost-user disk
                let base = if is_vhost_user(d) {
                    "vhost-user-blk"
                } else {
                    "virtio-blk"
                };
                j.s(
                    "driver",
                    virtio_driver(base, VirtioModel::of(d.model.as_deref()), &d.info.address)?,
                );
                if device == "lun" {
                    j.b("scsi", true);
                }
                self.virtio_opts(&mut j, d.driver.as_ref().map(|x| &x.virtio));
                if let Some(dr) = &d.driver {
                    if let Some(t) = dr.iothread {
                        j.s("iothread", format!("iothread{t}"));
                    }
                    j.tristate("ioeventfd", dr.ioeventfd.as_deref());
                    j.tristate("event_idx", dr.event_idx.as_deref());
                    j.u_opt("num-queues", dr.queues.map(u64::from));
                    j.u_opt("queue-size", dr.queue_size.map(u64::from));
                }
                self.info_props(&mut j, &d.info)?;
                drive_props(&mut j, d, drive);
                if is_vhost_user(d) {
                    j.s("chardev", vhost_user::chr_alias(alias));
                }
                j.s("id", alias);
            }
            "fdc" => {
                j.s("driver", "floppy");
                if let Some(Address::Drive { unit, .. }) = &d.info.address {
                    j.u("unit", *unit as u64);
                }
                drive_props(&mut j, d, drive);
                j.s("id", alias);
            }
            "scsi" => {
                let drv = match device {
                    "cdrom" => "scsi-cd",
                    "lun" => "scsi-block",
                    _ => "scsi-hd",
                };
                j.s("driver", drv);
                self.scsi_address_props(&mut j, &d.info.address);
                if drv != "scsi-block" {
                    j.s(
                        "device_id",
                        d.serial.clone().unwrap_or_else(|| format!("drive-{alias}")),
                    );
                }
                drive_props(&mut j, d, drive);
                j.s("id", alias);
            }
            "usb" => {
                j.s("driver", "usb-storage");
                self.usb_props(&mut j, "disk", i, &d.info)?;
                drive_props(&mut j, d, drive);
                j.s("id", alias);
            }
            other => {
                return Err(unsupported(format!("disk bus '{other}' not supported yet")));
            }
        }
        // Floppies on the built-in controller take their boot index through a -global.
        if let Some(b) = boot
            && bus != "fdc"
        {
            j.u("bootindex", b as u64);
        }
        if let Some(bio) = &d.blockio {
            j.u_opt("logical_block_size", bio.logical_block_size.map(u64::from));
            j.u_opt(
                "physical_block_size",
                bio.physical_block_size.map(u64::from),
            );
        }
        if let Some(w) = &d.wwn {
            match u64::from_str_radix(w.trim_start_matches("0x"), 16) {
                Ok(v) => {
                    j.u("wwn", v);
                }
                Err(_) => {
                    j.s("wwn", w.clone());
                }
            }
        }
        if let Some(r) = d.target.rotation_rate {
            j.u("rotation_rate", r as u64);
        }
        j.s_opt("vendor", d.vendor.clone());
        j.s_opt("product", d.product.clone());
        if bus == "usb" {
            j.b("removable", d.target.removable.as_deref() == Some("on"));
        }
        // `default` leaves the device's write cache to QEMU (libvirt: qemuDiskCacheV2).
        if let Some(c) = cache_mode(d) {
            let wc = matches!(c, "writeback" | "none" | "unsafe");
            j.s("write-cache", if wc { "on" } else { "off" });
        }
        if let Some(g) = &d.geometry {
            j.u_opt("cyls", g.cyls.map(u64::from));
            j.u_opt("heads", g.heads.map(u64::from));
            j.u_opt("secs", g.secs.map(u64::from));
            if let Some(t) = &g.trans {
                j.s("bios-chs-trans", t.clone());
            }
        }
        // Spaces in a serial are backslash-escaped, as libvirt has always passed them
        // (libvirt: qemuBuildDiskDeviceProps, virBufferEscape of ' ').
        if let Some(s) = &d.serial {
            j.s("serial", s.replace(' ', "\\ "));
        }
        let drv = d.driver.as_ref();
        let wpolicy = drv.and_then(|x| x.error_policy.clone());
        let rpolicy = drv.and_then(|x| x.rerror_policy.clone()).or_else(|| {
            // QEMU has no 'enospace' for reads.
            wpolicy.clone().filter(|w| w != "enospace")
        });
        if let Some(w) = wpolicy {
            j.s(
                "werror",
                if w == "enospace" {
                    "enospc".to_string()
                } else {
                    w
                },
            );
        }
        if let Some(r) = rpolicy {
            j.s("rerror", r);
        }
        Ok(self.with_overrides(&j).unwrap_or(j))
    }
}

/// What QEMU gets for one disk (see [`Builder::disk_parts`]).
#[derive(Debug, Clone, Default)]
pub(super) struct DiskParts {
    /// `-add-fd` values for sources passed as fd groups, top of the chain first.
    pub add_fds: Vec<String>,
    /// Bottom of the chain first, the order they must be added in.
    pub layers: Vec<BlockLayer>,
    /// A vhost-user disk's `-chardev` to its back-end, in place of layers.
    pub chardev: Option<String>,
    /// The copy-on-read filter node above the chain, which the device then reads.
    pub copy_on_read: Option<JsonOpts>,
    pub device: JsonOpts,
}

/// One image of a disk's chain: the objects it needs first, its storage and format nodes.
#[derive(Debug, Clone)]
pub(super) struct BlockLayer {
    pub objects: Vec<JsonOpts>,
    pub storage: JsonOpts,
    /// The raw node between storage and format that exposes only a slice of the storage.
    pub slice: Option<JsonOpts>,
    pub format: JsonOpts,
}

/// The numbers of each disk's nodes (`libvirt-N-storage`, `libvirt-N-format`) at a start:
/// counted over the disks in reverse order, each chain from the top.
pub(super) fn node_numbers(disks: &[Disk]) -> Vec<Vec<u32>> {
    number_nodes(disks).0
}

/// The first node number left after the disks': SCSI hostdevs' backends count on from it.
pub(super) fn first_free_node(disks: &[Disk]) -> u32 {
    number_nodes(disks).1
}

fn number_nodes(disks: &[Disk]) -> (Vec<Vec<u32>>, u32) {
    let mut counter = 1u32;
    let mut names: Vec<Vec<u32>> = vec![Vec::new(); disks.len()];
    for i in (0..disks.len()).rev() {
        let d = &disks[i];
        // Neither a vhost-user disk nor a legacy SD `-drive` has block nodes.
        if is_vhost_user(d) || d.target.bus.as_deref() == Some("sd") {
            continue;
        }
        // An empty drive has no nodes but still uses up a number.
        if disk_source_is_empty(d) {
            counter += 1;
            continue;
        }
        let depth = chain_len(d);
        for _ in 0..depth {
            names[i].push(counter);
            counter += 1;
        }
    }
    (names, counter)
}

/// A `<transient shareBacking='yes'/>` disk: guests share its image under per-guest overlays.
fn shares_backing(d: &Disk) -> bool {
    matches!(&d.transient, Some(Some(s)) if s == "yes")
}

/// A disk served by a vhost-user back-end process (`<disk type='vhostuser'>`).
pub(crate) fn is_vhost_user(d: &Disk) -> bool {
    d.dtype.as_deref() == Some("vhostuser")
}

pub(crate) fn disk_source_is_empty(d: &Disk) -> bool {
    // An NVMe disk is named by its controller's address, not a path (libvirt:
    // virStorageSourceIsEmpty counts only local storage without a path as empty).
    if d.dtype.as_deref() == Some("nvme") {
        return d.source.is_none();
    }
    match &d.source {
        None => true,
        // An empty path is no path: `<source file=''/>` is an empty drive, as in libvirt.
        Some(s) => {
            let unset = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
            unset(&s.file)
                && unset(&s.dev)
                && unset(&s.dir)
                && s.protocol.is_none()
                && s.pool.is_none()
        }
    }
}

pub(crate) fn chain_len(d: &Disk) -> usize {
    let mut n = 1;
    let mut bs = d.backing_store.as_ref();
    while let Some(b) = bs {
        if b.source.is_none() && b.btype.is_none() {
            break;
        }
        n += 1;
        bs = b.backing.as_deref();
    }
    n
}

/// The image a disk device reads, after `share-rw` for a `<shareable/>` disk (libvirt:
/// qemuBuildDiskDeviceProps writes it just before the drive).
fn drive_props(j: &mut JsonOpts, d: &Disk, drive: Option<&str>) {
    if d.shareable {
        j.b("share-rw", true);
    }
    j.s_opt("drive", drive);
}

/// The cache mode a disk runs with, `None` for QEMU's default: the one asked for, else for a
/// disk other guests write too (shareable, not read-only) no host cache, so that writes are
/// seen by the others (libvirt: qemuDomainPrepareDiskCachemode).
fn cache_mode(d: &Disk) -> Option<&str> {
    match d.driver.as_ref().and_then(|x| x.cache.as_deref()) {
        Some(c) if c != "default" => Some(c),
        _ if d.shareable && !d.readonly => Some("none"),
        _ => None,
    }
}

/// q35 machines up to 2.3 have a built-in floppy controller; later ones do not.
fn q35_has_builtin_fdc(machine: &str) -> bool {
    let Some(v) = machine.strip_prefix("pc-q35-") else {
        return false;
    };
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(u32::MAX));
    let (major, minor) = (it.next().unwrap_or(u32::MAX), it.next().unwrap_or(0));
    (major, minor) < (2, 4)
}

/// The node numbers of every local disk source passed by fd, ascending (the order libvirt
/// prepares them in, and numbers their fd sets).
pub(super) fn fd_nodes(disks: &[Disk], names: &[Vec<u32>]) -> Vec<u32> {
    let mut out = Vec::new();
    for (d, nodes) in disks.iter().zip(names) {
        let mut sources: Vec<(Option<&DiskSource>, Option<&str>)> =
            vec![(d.source.as_ref(), d.dtype.as_deref())];
        let mut bs = d.backing_store.as_ref();
        while let Some(b) = bs {
            if b.source.is_none() && b.btype.is_none() {
                break;
            }
            sources.push((b.source.as_ref(), b.btype.as_deref()));
            bs = b.backing.as_deref();
        }
        for ((src, ty), n) in sources.into_iter().zip(nodes) {
            if src.is_some_and(|s| s.fdgroup.is_some())
                && matches!(ty.unwrap_or("file"), "file" | "block")
            {
                out.push(*n);
            }
        }
    }
    out.sort_unstable();
    out
}
