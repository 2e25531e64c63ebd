//! The section builders, in libvirt's order.

use std::collections::HashMap;

use super::opts::{JsonOpts, KvOpts};
use super::socketnet::socket_netdev;
use super::{LaunchContext, MonitorSource, Xml2ArgvError, accel_of, pci_addr, storage};
use crate::capabilities::qemu::QemuCaps;
use crate::domain::devices::{Chardev, ChrSource, Disk, DiskSource};
use crate::domain::{Address, DeviceInfo, DomainDef};

type R<T = ()> = Result<T, Xml2ArgvError>;

fn unsupported(msg: impl Into<String>) -> Xml2ArgvError {
    Xml2ArgvError::Unsupported(msg.into())
}

pub(super) struct Builder<'a> {
    def: &'a DomainDef,
    caps: &'a QemuCaps,
    ctx: &'a LaunchContext,
    pub args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    /// Boot indexes derived from `<os><boot dev=..>` when no device has its own `<boot>`.
    disk_boot: HashMap<usize, u32>,
    net_boot: HashMap<usize, u32>,
    /// `-add-fd` set numbers handed out so far.
    fdset: u32,
    /// USB ports for devices without a USB address, keyed by (device kind, index).
    usb_ports: HashMap<(&'static str, usize), String>,
}

fn mib_round_up(kib: u64) -> u64 {
    kib.div_ceil(1024)
}

fn hex(v: u32) -> String {
    format!("0x{v:x}")
}

impl<'a> Builder<'a> {
    pub fn new(def: &'a DomainDef, caps: &'a QemuCaps, ctx: &'a LaunchContext) -> Self {
        Builder {
            def,
            caps,
            ctx,
            args: Vec::new(),
            extra_env: Vec::new(),
            disk_boot: HashMap::new(),
            net_boot: HashMap::new(),
            fdset: 0,
            usb_ports: assign_usb_ports(def),
        }
    }

    /// `"bus"`/`"port"` of a USB device: its own address, else the port handed out at start.
    fn usb_props(&self, j: &mut JsonOpts, kind: &'static str, idx: usize, info: &DeviceInfo) {
        match &info.address {
            Some(Address::Usb { bus, port }) => {
                j.s("bus", format!("usb.{bus}"));
                if let Some(p) = port {
                    j.s("port", p.clone());
                }
            }
            _ => {
                if let Some(p) = self.usb_ports.get(&(kind, idx)) {
                    j.s("bus", "usb.0").s("port", p.clone());
                }
            }
        }
    }

    fn arg(&mut self, a: impl Into<String>) {
        self.args.push(a.into());
    }

    fn opt(&mut self, o: &str, v: impl Into<String>) {
        self.args.push(o.to_string());
        self.args.push(v.into());
    }

    fn has(&self, flag: &str) -> bool {
        self.caps.has_flag(flag)
    }

    fn machine(&self) -> &str {
        self.def.os.os_type.machine.as_deref().unwrap_or("")
    }

    fn is_q35(&self) -> bool {
        let m = self.machine();
        m == "q35" || m.starts_with("pc-q35")
    }

    fn is_x86(&self) -> bool {
        matches!(
            self.def
                .os
                .os_type
                .arch
                .as_deref()
                .unwrap_or(&self.caps.arch),
            "x86_64" | "i686"
        )
    }

    fn is_arm(&self) -> bool {
        matches!(
            self.def
                .os
                .os_type
                .arch
                .as_deref()
                .unwrap_or(&self.caps.arch),
            "aarch64" | "armv7l"
        )
    }

    /// Emit a `-device` (JSON when QEMU takes it).
    fn device(&mut self, j: &JsonOpts) {
        match self.with_overrides(j) {
            Some(o) => self.opt("-device", o.build()),
            None => self.opt("-device", j.build()),
        }
    }

    /// `<qemu:override>` of the device whose id is `j`'s: each property is removed, then
    /// set again (at the end) unless its type is `remove`, as libvirt does.
    fn with_overrides(&self, j: &JsonOpts) -> Option<JsonOpts> {
        let id = j.get_str("id")?;
        let props = self
            .def
            .qemu_override
            .as_ref()?
            .iter()
            .find(|o| o.alias == id)?
            .frontend
            .as_ref()?;
        let mut out = j.clone();
        for p in props {
            out.remove(&p.name);
            let v = p.value.as_deref().unwrap_or("");
            match p.ptype.as_str() {
                "string" => {
                    out.s(&p.name, v);
                }
                "signed" => {
                    if let Ok(n) = v.parse::<i64>() {
                        out.i(&p.name, n);
                    }
                }
                "unsigned" => {
                    if let Ok(n) = v.parse::<u64>() {
                        out.u(&p.name, n);
                    }
                }
                "bool" => {
                    out.b(&p.name, v == "true");
                }
                _ => {}
            }
        }
        Some(out)
    }

    fn object(&mut self, j: &JsonOpts) {
        self.opt("-object", j.build());
    }

    /// The bus alias QEMU knows a PCI controller index by.
    fn pci_bus_name(&self, bus: u32) -> String {
        if bus == 0 {
            let root_is_pcie = self
                .def
                .devices
                .controllers
                .iter()
                .any(|c| c.ctype == "pci" && c.model.as_deref() == Some("pcie-root"))
                || self.is_q35();
            if root_is_pcie {
                "pcie.0".into()
            } else {
                "pci.0".into()
            }
        } else {
            format!("pci.{bus}")
        }
    }

    /// `"bus"`, `["multifunction"]`, `"addr"` of a device on PCI.
    fn pci_props(&self, j: &mut JsonOpts, info: &DeviceInfo) {
        if let Some((bus, slot, func, mf)) = pci_addr(&info.address) {
            j.s("bus", self.pci_bus_name(bus));
            if let Some(mf) = mf {
                j.b("multifunction", mf);
            }
            let addr = if func == 0 {
                hex(slot)
            } else {
                format!("{}.{}", hex(slot), hex(func))
            };
            j.s("addr", addr);
        }
    }

    fn info_props(&self, j: &mut JsonOpts, info: &DeviceInfo) {
        self.pci_props(j, info);
        if let Some(Address::Usb { bus, port }) = &info.address {
            j.s("bus", format!("usb.{bus}"));
            if let Some(p) = port {
                j.s("port", p.clone());
            }
        }
        if let Some(i) = info.acpi_index {
            j.u("acpi-index", i as u64);
        }
    }

    pub fn build_all(&mut self) -> R {
        self.compute_boot_order();
        self.name();
        self.compat_deprecated();
        self.arg("-S");
        self.master_key();
        let pflash = self.pflash()?;
        self.machine_opts(&pflash)?;
        self.accel();
        self.cpu()?;
        self.bios();
        self.memory();
        self.smp();
        self.iothreads();
        self.numa();
        self.opt("-uuid", self.def.uuid.to_string());
        self.smbios();
        if let Some(g) = &self.def.genid {
            // libvirt's tests draw the generated id from a counting random source.
            let guid = if g.is_empty() {
                "00010203-0405-4607-8809-0a0b0c0d0e0f".to_string()
            } else {
                g.clone()
            };
            let mut j = JsonOpts::new();
            j.s("driver", "vmgenid").s("guid", guid).s("id", "vmgenid0");
            self.device(&j);
        }
        if self.def.devices.graphics.is_empty() {
            self.opt("-display", "none");
        }
        self.arg("-no-user-config");
        self.arg("-nodefaults");
        self.monitor();
        self.clock();
        self.no_shutdown();
        self.pm_and_acpi();
        self.boot();
        self.kernel();
        self.iommu();
        self.controllers()?;
        self.disks()?;
        self.filesystems()?;
        self.nets()?;
        self.serials()?;
        self.parallels()?;
        self.channels()?;
        self.consoles()?;
        self.tpms()?;
        self.inputs()?;
        self.audio();
        self.graphics()?;
        self.videos()?;
        self.sounds()?;
        self.watchdogs()?;
        self.redirdevs()?;
        self.hostdevs()?;
        self.memballoon();
        self.rngs()?;
        self.qemu_commandline();
        if self.has("seccomp-sandbox") {
            self.opt(
                "-sandbox",
                "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
            );
        }
        self.panics();
        self.vsock();
        self.opt("-msg", "timestamp=on");
        Ok(())
    }

    // ---- boot order ------------------------------------------------------------------

    /// libvirt turns `<os><boot dev=..>` into per-device boot indexes: each listed device
    /// class gives its first device the next index.
    fn compute_boot_order(&mut self) {
        let d = &self.def.devices;
        let any_device_boot = d.disks.iter().any(|x| x.info.boot.is_some())
            || d.interfaces.iter().any(|x| x.info.boot.is_some())
            || d.hostdevs.iter().any(|x| x.info.boot.is_some());
        if any_device_boot {
            return;
        }
        // Each <boot dev> entry's index is its position, whether or not a device takes it.
        for (pos, dev) in self.def.os.boot_devs.iter().enumerate() {
            let idx = pos as u32 + 1;
            match dev.as_str() {
                "hd" | "cdrom" | "fd" => {
                    let want = match dev.as_str() {
                        "hd" => "disk",
                        "cdrom" => "cdrom",
                        _ => "floppy",
                    };
                    d.disks
                        .iter()
                        .position(|x| {
                            let dev = x.device.as_deref().unwrap_or("disk");
                            // A LUN boots as a disk.
                            dev == want || (want == "disk" && dev == "lun")
                        })
                        .map(|i| {
                            self.disk_boot.insert(i, idx);
                        })
                }
                "network" => (!d.interfaces.is_empty()).then(|| {
                    self.net_boot.insert(0, idx);
                }),
                _ => None,
            };
        }
    }

    // ---- domain-wide sections ---------------------------------------------------------

    fn name(&mut self) {
        let mut o = KvOpts::new();
        o.kv("guest", &self.def.name);
        o.raw("debug-threads=on");
        self.opt("-name", o.build());
    }

    /// `<qemu:deprecation>`: every behavior but `none` hides deprecated output; `reject` and
    /// `crash` also set what QEMU does with deprecated input.
    fn compat_deprecated(&mut self) {
        let input = match self.def.qemu_deprecation.as_deref() {
            Some("omit") => None,
            Some(b @ ("reject" | "crash")) => Some(b),
            _ => return,
        };
        if !self.caps.has_flag("compat-deprecated") {
            return;
        }
        let mut j = JsonOpts::new();
        j.s("deprecated-output", "hide");
        j.s_opt("deprecated-input", input);
        self.opt("-compat", j.build());
    }

    fn master_key(&mut self) {
        let mut j = JsonOpts::new();
        j.s("qom-type", "secret")
            .s("id", "masterKey0")
            .s("format", "raw")
            .s("file", format!("{}/master-key.aes", self.ctx.lib_dir));
        self.object(&j);
    }

    fn feature_state(&self, name: &str) -> Option<String> {
        let f = self.def.features.as_ref()?;
        f.others
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.attr("state").unwrap_or("on").to_string())
    }

    fn machine_ram_id(&self) -> Option<String> {
        let m = self.machine();
        let accel = accel_of(self.def);
        let ac = self
            .caps
            .accel(accel)
            .or_else(|| self.caps.primary_accel().and_then(|a| self.caps.accel(a)))?;
        ac.machines
            .iter()
            .find(|x| x.name == m || x.alias.as_deref() == Some(m))
            .and_then(|x| x.default_ram_id.clone())
    }

    fn has_numa(&self) -> bool {
        self.def.cpu.as_ref().is_some_and(|c| !c.numa.is_empty())
    }

    /// Flash firmware images as block nodes; returns the `-machine` properties naming them.
    fn pflash(&mut self) -> R<Vec<(String, String)>> {
        let os = &self.def.os;
        let Some(loader) = &os.loader else {
            return Ok(Vec::new());
        };
        if loader.ltype.as_deref() != Some("pflash") {
            return Ok(Vec::new());
        }
        let Some(path) = &loader.path else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let code = DiskSource {
            file: Some(path.clone()),
            ..Default::default()
        };
        let mut images = vec![(code, loader.readonly.as_deref() == Some("yes"))];
        if let Some(nv) = &os.nvram {
            let src = match (&nv.path, &nv.source) {
                (Some(p), _) => Some(DiskSource {
                    file: Some(p.clone()),
                    ..Default::default()
                }),
                (None, Some(s)) => Some(s.clone()),
                // A template alone: the varstore is created from it in the NVRAM directory.
                (None, None) if nv.template.is_some() => Some(DiskSource {
                    file: Some(format!("{}/{}_VARS.fd", self.ctx.nvram_dir, self.def.name)),
                    ..Default::default()
                }),
                (None, None) => None,
            };
            images.extend(src.map(|s| (s, false)));
        }
        for (i, (src, ro)) in images.into_iter().enumerate() {
            let node = format!("libvirt-pflash{i}-storage");
            let mut st = if src.protocol.is_some() {
                let mut pre = Vec::new();
                let j = storage::network_props(
                    self.ctx,
                    &src,
                    src.auth.as_ref(),
                    None,
                    &node,
                    &mut pre,
                )?;
                pre.sort_by_key(|(rank, _)| *rank);
                for (_, o) in &pre {
                    self.object(o);
                }
                j
            } else {
                let mut j = JsonOpts::new();
                j.s("driver", "file")
                    .s("filename", src.file.clone().unwrap_or_default());
                j
            };
            st.s("node-name", node.clone())
                .b("auto-read-only", true)
                .s("discard", "unmap");
            self.opt("-blockdev", st.build());
            let mut f = JsonOpts::new();
            f.s("node-name", format!("libvirt-pflash{i}-format"))
                .b("read-only", ro)
                .s("driver", "raw")
                .s("file", node);
            self.opt("-blockdev", f.build());
            out.push((format!("pflash{i}"), format!("libvirt-pflash{i}-format")));
        }
        Ok(out)
    }

    fn bios(&mut self) {
        if let Some(l) = &self.def.os.loader
            && l.ltype.as_deref() != Some("pflash")
            && let Some(p) = &l.path
        {
            self.opt("-bios", p.clone());
        }
    }

    fn machine_opts(&mut self, pflash: &[(String, String)]) -> R {
        let mut o = KvOpts::with_head(self.machine());
        // QEMU must not create its own USB controller; libvirt adds the ones defined.
        if self.is_x86() || self.is_arm() {
            o.raw("usb=off");
        }
        if let Some(Some(g)) = self.def.features.as_ref().and_then(|f| f.gic.clone()) {
            o.kv("gic-version", g);
        }
        if let Some(i) = &self.def.devices.iommu
            && i.model == "smmuv3"
        {
            o.raw("iommu=smmuv3");
        }
        if let Some(Some(ioapic)) = self.def.features.as_ref().and_then(|f| f.ioapic.clone())
            && ioapic == "qemu"
        {
            o.raw("kernel_irqchip=split");
        }
        if let Some(f) = &self.def.features {
            if let Some(v) = &f.vmport {
                o.kv("vmport", v.as_deref().unwrap_or("on"));
            }
            if let Some(smm) = &f.smm {
                o.kv("smm", smm.state.as_deref().unwrap_or("on"));
            }
        }
        let dump = match self.def.memory.dump_core.as_deref() {
            Some(v) => v == "on",
            None => self.ctx.conf.dump_guest_core,
        };
        o.on_off("dump-guest-core", dump);
        if self
            .def
            .memory_backing
            .as_ref()
            .is_some_and(|m| m.nosharepages)
        {
            o.raw("mem-merge=off");
        }
        if let Some(kw) = &self.def.keywrap {
            for (name, state) in kw {
                o.kv(&format!("{name}-key-wrap"), state);
            }
        }
        if self
            .def
            .devices
            .memories
            .iter()
            .any(|m| m.model.as_deref() == Some("nvdimm"))
        {
            o.raw("nvdimm=on");
        }
        if !self.has_numa()
            && let Some(id) = self.machine_ram_id()
        {
            o.kv("memory-backend", id);
        }
        for (k, v) in pflash {
            o.kv(k, v);
        }
        if let Some(clock) = &self.def.clock {
            for t in &clock.timers {
                if t.name == "hpet"
                    && t.present.as_deref() == Some("no")
                    && self.has("machine-hpet")
                {
                    o.raw("hpet=off");
                }
            }
        }
        if let Some(st) = self.feature_state("cfpc") {
            o.kv("cap-cfpc", st);
        }
        self.opt("-machine", o.build());
        Ok(())
    }

    fn accel(&mut self) {
        let a = match accel_of(self.def) {
            crate::capabilities::qemu::Accel::Kvm => "kvm",
            crate::capabilities::qemu::Accel::Hvf => "hvf",
            _ => "tcg",
        };
        let mut o = KvOpts::with_head(a);
        if let Some(Some(tb)) = self.def.features.as_ref().and_then(|f| f.tcg) {
            o.kv("tb-size", tb / 1024);
        }
        self.opt("-accel", o.build());
        // An explicit extended TSEG size is a property of q35's host bridge.
        if let Some(kib) = self
            .def
            .features
            .as_ref()
            .and_then(|f| f.smm.as_ref())
            .filter(|s| s.state.as_deref() == Some("on"))
            .and_then(|s| s.tseg_kib)
        {
            self.opt(
                "-global",
                format!("mch.extended-tseg-mbytes={}", kib / 1024),
            );
        }
    }

    /// CPU model name for a QOM type name, through the caps' model list.
    fn cpu_name_for_type(&self, typename: &str) -> Option<String> {
        let accel = accel_of(self.def);
        let ac = self.caps.accel(accel)?;
        ac.cpus
            .as_ref()?
            .iter()
            .find(|c| c.typename.as_deref() == Some(typename))
            .map(|c| c.name.clone())
    }

    fn default_cpu(&self) -> Option<String> {
        let m = self.machine();
        let accel = accel_of(self.def);
        let mach = self
            .caps
            .accel(accel)?
            .machines
            .iter()
            .find(|x| x.name == m || x.alias.as_deref() == Some(m))?;
        let t = mach.default_cpu.as_ref()?;
        self.cpu_name_for_type(t)
    }

    fn cpu(&mut self) -> R {
        let mut o = KvOpts::new();
        let cpu = self.def.cpu.as_ref();
        let mode = cpu.and_then(|c| c.mode.as_deref()).unwrap_or("custom");
        match mode {
            "host-passthrough" => {
                o.raw("host");
                let m = cpu.and_then(|c| c.migratable.as_deref()).unwrap_or("on");
                if self.has("cpu.migratable") {
                    o.kv("migratable", m);
                }
            }
            "maximum" => {
                o.raw("max");
            }
            "host-model" => match self.host_model_cpu() {
                // libvirt names the host's CPU by the closest model plus feature changes, as its
                // domain capabilities describe it; invtsc cannot migrate, so it stays out.
                Some(m) => {
                    o = KvOpts::with_head(&m.model);
                    for (f, policy) in m.features.iter().filter(|(f, _)| f != "invtsc") {
                        o.kv(
                            &qemu_cpu_feature(f),
                            if *policy == "disable" { "off" } else { "on" },
                        );
                    }
                }
                None => {
                    o.raw("host");
                }
            },
            _ => match cpu.and_then(|c| c.model.as_ref()) {
                Some(m) => {
                    o = KvOpts::with_head(&m.name);
                }
                // libvirt fills in the machine's default CPU for x86 only.
                None if self.is_x86() => {
                    if let Some(n) = self.default_cpu() {
                        o = KvOpts::with_head(&n);
                    }
                }
                None => {}
            },
        }
        if let Some(c) = cpu {
            if let Some(v) = &c.vendor
                && mode == "custom"
                && c.model
                    .as_ref()
                    .and_then(|m| m.vendor_id.as_ref())
                    .is_none()
            {
                let _ = v;
            }
            if let Some(vid) = c.model.as_ref().and_then(|m| m.vendor_id.as_ref()) {
                o.kv("vendor", vid);
            }
            for f in &c.features {
                let on = matches!(
                    f.policy.as_deref(),
                    Some("require") | Some("force") | None | Some("optional")
                );
                o.kv(&qemu_cpu_feature(&f.name), if on { "on" } else { "off" });
            }
        }
        self.cpu_features_domain(&mut o);
        if !o.is_empty() {
            self.opt("-cpu", o.build());
        }
        Ok(())
    }

    /// `<features>` that libvirt expresses as CPU properties.
    fn cpu_features_domain(&self, o: &mut KvOpts) {
        if let Some(c) = &self.def.clock {
            for t in &c.timers {
                if t.name == "kvmclock" && t.present.as_deref() == Some("no") {
                    o.raw("kvmclock=off");
                }
            }
        }
        let Some(f) = &self.def.features else {
            self.hv_crash(o);
            return;
        };
        if let Some(Some(eoi)) = &f.apic {
            o.kv("kvm-pv-eoi", eoi);
        }
        if let Some(Some(st)) = &f.pvspinlock {
            o.kv("kvm-pv-unhalt", st);
        }
        if let Some(c) = &self.def.clock
            && c.timers
                .iter()
                .any(|t| t.name == "hypervclock" && t.present.as_deref() == Some("yes"))
        {
            o.raw("hv-time=on");
        }
        if let Some(hv) = &f.hyperv {
            if hv.mode.as_deref() == Some("passthrough") {
                o.raw("hv-passthrough=on");
            }
            for item in &hv.items {
                if item.state.as_deref() != Some("on") {
                    continue;
                }
                let name = match item.name.as_str() {
                    "relaxed" => "hv-relaxed".to_string(),
                    "vapic" => "hv-vapic".to_string(),
                    "spinlocks" => {
                        o.kv("hv-spinlocks", format!("0x{:x}", item.retries.unwrap_or(0)));
                        continue;
                    }
                    "vpindex" | "runtime" | "synic" | "stimer" | "reset" | "frequencies"
                    | "reenlightenment" | "tlbflush" | "ipi" | "evmcs" | "avic" => {
                        format!("hv-{}", item.name)
                    }
                    "vendor_id" => {
                        if let Some(v) = &item.value {
                            o.kv("hv-vendor-id", v);
                        }
                        continue;
                    }
                    other => format!("hv-{other}"),
                };
                o.kv(&name, "on");
                if item.name == "stimer"
                    && item
                        .children
                        .iter()
                        .any(|(n, st)| n == "direct" && st.as_deref() == Some("on"))
                {
                    o.kv("hv-stimer-direct", "on");
                }
            }
        }
        self.hv_crash(o);
        if let Some(Some(st)) = &f.pmu {
            o.kv("pmu", if st == "off" { "off" } else { "on" });
        }
        if let Some(kvm) = &f.kvm {
            for item in &kvm.items {
                match (item.name.as_str(), item.state.as_deref()) {
                    ("hidden", Some("on")) => {
                        o.raw("kvm=off");
                    }
                    ("poll-control", Some(s)) => {
                        o.kv("kvm-poll-control", s);
                    }
                    ("pv-ipi", Some(s)) => {
                        o.kv("kvm-pv-ipi", s);
                    }
                    _ => {}
                }
            }
        }
    }

    /// A Hyper-V panic device is a CPU feature.
    fn hv_crash(&self, o: &mut KvOpts) {
        if self
            .def
            .devices
            .panics
            .iter()
            .any(|p| p.model.as_deref() == Some("hyperv"))
        {
            o.raw("hv-crash");
        }
    }

    /// Initial memory: the NUMA cells (each aligned up to a MiB) when there are any, else
    /// the total minus hot-plugged memory devices.
    fn initial_memory_kib(&self) -> u64 {
        if let Some(cpu) = &self.def.cpu
            && !cpu.numa.is_empty()
        {
            return cpu
                .numa
                .iter()
                .map(|c| c.memory_kib.div_ceil(1024) * 1024)
                .sum();
        }
        let devs: u64 = self
            .def
            .devices
            .memories
            .iter()
            .filter_map(|m| m.target.as_ref().and_then(|t| t.size_kib))
            .sum();
        self.def.memory.kib.saturating_sub(devs)
    }

    fn memory(&mut self) {
        let mem_kib = self.initial_memory_kib();
        let mut o = KvOpts::new();
        if let Some(mm) = &self.def.max_memory {
            o.kv("size", format!("{}k", mib_round_up(mem_kib) * 1024));
            o.kv_opt("slots", mm.slots);
            o.kv("maxmem", format!("{}k", mm.kib));
        } else {
            o.raw(&mib_round_up(mem_kib).to_string());
        }
        self.opt("-m", o.build());
        if !self.has_numa()
            && let Some(id) = self.machine_ram_id()
        {
            let size = mib_round_up(mem_kib) * 1024 * 1024;
            let j = self.ram_backend(&id, size, None);
            self.object(&j);
        }
        let locked = self.def.memory_backing.as_ref().is_some_and(|m| m.locked);
        self.opt(
            "-overcommit",
            if locked {
                "mem-lock=on"
            } else {
                "mem-lock=off"
            },
        );
    }

    /// The memory backend object for guest RAM (`pc.ram`) or one NUMA cell: hugepages
    /// come from a file on the hugetlbfs mount, shared or file-backed memory from a file in
    /// libvirt's RAM directory, memfd when asked, anonymous memory otherwise.
    fn ram_backend(
        &self,
        id: &str,
        size: u64,
        cell: Option<(u32, &crate::domain::model::NumaCell)>,
    ) -> JsonOpts {
        let mut j = JsonOpts::new();
        let mb = self.def.memory_backing.as_ref();
        let hp = mb.and_then(|m| m.hugepages.as_ref()).and_then(|pages| {
            if pages.is_empty() {
                return Some(2048);
            }
            let in_set = |p: &crate::domain::model::HugePage| match (&p.nodeset, cell) {
                (None, _) => true,
                (Some(_), None) => true,
                (Some(set), Some((cid, _))) => {
                    crate::capabilities::cpuset::CpuSet::parse(set).is_ok_and(|v| v.contains(cid))
                }
            };
            let chosen = pages
                .iter()
                .find(|p| p.nodeset.is_some() && in_set(p))
                .or_else(|| pages.iter().find(|p| p.nodeset.is_none()))?;
            Some(if chosen.size_kib == 0 {
                2048
            } else {
                chosen.size_kib
            })
        });
        // Pages of the system's own size are ordinary memory.
        let hp = hp.filter(|s| *s != 4);
        let access = cell
            .and_then(|(_, c)| c.mem_access.as_deref())
            .or(mb.and_then(|m| m.access_mode.as_deref()));
        let share = match access {
            Some("shared") => Some(true),
            Some("private") => Some(false),
            _ => None,
        };
        let source = mb.and_then(|m| m.source_type.as_deref());
        // Only the machine's own RAM id keeps its migration-compatible block name.
        let canonical = cell.is_none()
            && (self.has("x-use-canonical-path-for-ramblock-id")
                || self.has("memory-backend-file.x-use-canonical-path-for-ramblock-id"));
        let short = self.ctx.short_name(self.def);
        if let Some(size_kib) = hp {
            let mount = if size_kib == 1048576 {
                "/dev/hugepages1G"
            } else {
                "/dev/hugepages2M"
            };
            j.s("qom-type", "memory-backend-file")
                .s("id", id)
                .s("mem-path", format!("{mount}/libvirt/qemu/{short}"));
            if let Some(sh) = share {
                j.b("share", sh);
            }
            if canonical {
                j.b("x-use-canonical-path-for-ramblock-id", false);
            }
            j.b("prealloc", true).u("size", size);
        } else if source == Some("memfd") {
            j.s("qom-type", "memory-backend-memfd").s("id", id);
            if let Some(sh) = share {
                j.b("share", sh);
            }
            if canonical {
                j.b("x-use-canonical-path-for-ramblock-id", false);
            }
            j.u("size", size);
        } else if source == Some("file") || share.is_some() {
            j.s("qom-type", "memory-backend-file").s("id", id).s(
                "mem-path",
                format!("/var/lib/libvirt/qemu/ram/{short}/{id}"),
            );
            if let Some(sh) = share {
                j.b("share", sh);
            }
            if canonical {
                j.b("x-use-canonical-path-for-ramblock-id", false);
            }
            j.u("size", size);
        } else {
            j.s("qom-type", "memory-backend-ram")
                .s("id", id)
                .u("size", size);
        }
        j
    }

    fn smp(&mut self) {
        let v = &self.def.vcpu;
        let mut o = KvOpts::new();
        let current = v.current.unwrap_or(v.count);
        o.raw(&current.to_string());
        if current != v.count {
            o.kv("maxcpus", v.count);
        }
        if let Some(t) = self.def.cpu.as_ref().and_then(|c| c.topology.as_ref()) {
            o.kv("sockets", t.sockets);
            if t.dies.is_none() && self.has("smp-dies") {
                o.raw("dies=1");
            }
            if let Some(d) = t.dies
                && (d != 1 || self.has("smp-dies"))
            {
                o.kv("dies", d);
            }
            o.kv("cores", t.cores);
            o.kv("threads", t.threads);
        } else {
            o.kv("sockets", v.count);
            o.raw("cores=1,threads=1");
        }
        self.opt("-smp", o.build());
    }

    fn numa(&mut self) {
        let Some(cpu) = &self.def.cpu else { return };
        if cpu.numa.is_empty() {
            return;
        }
        for (i, cell) in cpu.numa.iter().enumerate() {
            let id = cell.id.unwrap_or(i as u32);
            let size = cell.memory_kib.div_ceil(1024) * 1024 * 1024;
            let j = self.ram_backend(&format!("ram-node{id}"), size, Some((id, cell)));
            self.object(&j);
            let mut o = KvOpts::new();
            o.raw("node");
            o.kv("nodeid", id);
            if let Some(cpus) = &cell.cpus {
                for part in cpus.split(',') {
                    o.kv("cpus", part);
                }
            }
            o.kv("memdev", format!("ram-node{id}"));
            self.opt("-numa", o.build());
        }
    }

    fn monitor(&mut self) {
        let mut o = KvOpts::with_head("socket");
        o.kv("id", "charmonitor");
        match &self.ctx.monitor {
            MonitorSource::Fd(fd) => {
                o.kv("fd", fd);
            }
            MonitorSource::Path(p) => {
                o.kv("path", p);
            }
        }
        o.raw("server=on,wait=off");
        self.opt("-chardev", o.build());
        self.opt("-mon", "chardev=charmonitor,id=monitor,mode=control");
    }

    fn clock(&mut self) {
        let clock = self.def.clock.as_ref();
        let mut o = KvOpts::new();
        let offset = clock.and_then(|c| c.offset.as_deref()).unwrap_or("utc");
        match offset {
            "localtime" => {
                o.raw("base=localtime");
            }
            "variable" | "absolute" => {
                // Only the fixed test time is known here: libvirt computes the base from
                // "now" (1234567890 in its tests) plus the adjustment.
                let base = if offset == "absolute" {
                    clock
                        .and_then(|c| c.start.as_deref())
                        .and_then(|s| s.parse::<i64>().ok())
                        .unwrap_or(0)
                } else {
                    1234567890
                        + clock
                            .and_then(|c| c.adjustment.as_deref())
                            .and_then(|s| s.parse::<i64>().ok())
                            .unwrap_or(0)
                };
                o.kv("base", format_epoch(base));
            }
            _ => {
                o.raw("base=utc");
            }
        }
        let mut pit_delay = None;
        if let Some(c) = clock {
            for t in &c.timers {
                match t.name.as_str() {
                    "rtc" => {
                        if t.track.as_deref() == Some("guest") {
                            o.raw("clock=vm");
                        }
                        if t.track.as_deref() == Some("wall") {
                            o.raw("clock=rt");
                        }
                        if t.tickpolicy.as_deref() == Some("catchup") {
                            o.raw("driftfix=slew");
                        }
                    }
                    "pit" => pit_delay = t.tickpolicy.clone(),
                    _ => {}
                }
            }
        }
        self.opt("-rtc", o.build());
        match pit_delay.as_deref() {
            Some("delay") => self.opt("-global", "kvm-pit.lost_tick_policy=delay"),
            Some("catchup") => self.opt("-global", "kvm-pit.lost_tick_policy=slew"),
            Some("discard") => self.opt("-global", "kvm-pit.lost_tick_policy=discard"),
            _ => {}
        }
    }

    fn no_shutdown(&mut self) {
        self.arg("-no-shutdown");
    }

    fn pm_and_acpi(&mut self) {
        let acpi = self.def.features.as_ref().is_some_and(|f| f.acpi);
        if !acpi && (self.is_x86() || self.is_arm()) {
            self.arg("-no-acpi");
        }
        let pm_dev = if self.is_q35() {
            "ICH9-LPC"
        } else {
            "PIIX4_PM"
        };
        if let Some(pm) = &self.def.pm {
            if let Some(v) = &pm.suspend_to_mem {
                let d = if v == "yes" { 0 } else { 1 };
                self.opt("-global", format!("{pm_dev}.disable_s3={d}"));
            }
            if let Some(v) = &pm.suspend_to_disk {
                let d = if v == "yes" { 0 } else { 1 };
                self.opt("-global", format!("{pm_dev}.disable_s4={d}"));
            }
        }
    }

    /// `<smbios mode='sysinfo'/>`: the SMBIOS tables from `<sysinfo type='smbios'>`.
    fn smbios(&mut self) {
        if self.def.os.smbios_mode.as_deref() != Some("sysinfo") {
            return;
        }
        let Some(si) = self.def.sysinfo.iter().find(|s| s.stype == "smbios") else {
            return;
        };
        for (block, entries) in &si.blocks {
            let ty = match block.as_str() {
                "bios" => 0,
                "system" => 1,
                "baseBoard" => 2,
                "chassis" => 3,
                "oemStrings" => 11,
                _ => continue,
            };
            let mut o = KvOpts::new();
            o.raw(&format!("type={ty}"));
            for e in entries {
                match &e.name {
                    // Entry names become option keys: only SMBIOS's own fields, as libvirt
                    // reads only those, so a name cannot write another option.
                    Some(n) if smbios_field(ty, n) => {
                        o.kv(n, &e.value);
                    }
                    Some(_) => {}
                    None => {
                        o.kv("value", &e.value);
                    }
                }
            }
            self.opt("-smbios", o.build());
        }
    }

    fn kernel(&mut self) {
        let os = &self.def.os;
        let items = [
            ("-kernel", os.kernel.clone()),
            ("-initrd", os.initrd.clone()),
            ("-append", os.cmdline.clone()),
            ("-dtb", os.dtb.clone()),
        ];
        for (o, v) in items {
            if let Some(v) = v {
                self.opt(o, v);
            }
        }
    }

    fn boot(&mut self) {
        let os = &self.def.os;
        let mut o = KvOpts::new();
        if let Some(m) = &os.bootmenu_enable {
            o.kv("menu", if m == "yes" { "on" } else { "off" });
            if let Some(t) = &os.bootmenu_timeout {
                o.kv("splash-time", t);
            }
        }
        if let Some(t) = &os.bios_reboot_timeout {
            o.kv("reboot-timeout", t);
        }
        o.raw("strict=on");
        self.opt("-boot", o.build());
    }

    fn iommu(&mut self) {
        let Some(iommu) = &self.def.devices.iommu else {
            return;
        };
        if iommu.model != "intel" {
            return;
        }
        let mut j = JsonOpts::new();
        j.s("driver", "intel-iommu").s("id", "iommu0");
        j.s_opt("intremap", iommu.intremap.clone());
        j.tristate("caching-mode", iommu.caching_mode.as_deref());
        match iommu.eim.as_deref() {
            Some("on") => {
                j.s("eim", "on");
            }
            Some("off") => {
                j.s("eim", "off");
            }
            _ => {}
        }
        j.tristate("device-iotlb", iommu.iotlb.as_deref());
        if let Some(aw) = iommu.aw_bits {
            j.u("aw-bits", aw as u64);
        }
        self.device(&j);
    }

    // ---- controllers -------------------------------------------------------------------

    fn iothreads(&mut self) {
        let ids: Vec<(u32, Option<i64>, Option<i64>)> = match &self.def.iothreadids {
            Some(v) => v
                .iter()
                .map(|t| (t.id, t.thread_pool_min, t.thread_pool_max))
                .collect(),
            None => (1..=self.def.iothreads.unwrap_or(0))
                .map(|i| (i, None, None))
                .collect(),
        };
        for (id, min, max) in ids {
            let mut j = JsonOpts::new();
            j.s("qom-type", "iothread").s("id", format!("iothread{id}"));
            if let Some(m) = min {
                j.i("thread-pool-min", m);
            }
            if let Some(m) = max {
                j.i("thread-pool-max", m);
            }
            self.object(&j);
        }
    }

    fn controllers(&mut self) -> R {
        // The PCI root's hotplug switch is a property of the PM device.
        if let Some(root) = self
            .def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "pci" && c.model.as_deref() == Some("pci-root"))
            && let Some(h) = root.target.as_ref().and_then(|t| t.hotplug.as_deref())
        {
            let pm = if self.is_q35() {
                "ICH9-LPC"
            } else {
                "PIIX4_PM"
            };
            self.opt("-global", format!("{pm}.acpi-root-pci-hotplug={h}"));
        }
        const ORDER: &[&str] = &[
            "pci",
            "usb",
            "scsi",
            "ide",
            "sata",
            "fdc",
            "ccid",
            "virtio-serial",
        ];
        for ty in ORDER {
            for c in self
                .def
                .devices
                .controllers
                .iter()
                .filter(|c| c.ctype == *ty)
            {
                self.controller(c)?;
            }
        }
        Ok(())
    }

    fn controller(&mut self, c: &crate::domain::devices::Controller) -> R {
        let idx = c.index.unwrap_or(0);
        let model = c.model.as_deref();
        let mut j = JsonOpts::new();
        match c.ctype.as_str() {
            "pci" => {
                let t = c.target.clone().unwrap_or_default();
                let driver = match model {
                    Some("pci-root") | Some("pcie-root") | None => return Ok(()),
                    _ if c.model_name.is_some() => c.model_name.as_deref().unwrap_or_default(),
                    Some("pcie-root-port") => "pcie-root-port",
                    Some("pci-bridge") => "pci-bridge",
                    Some("dmi-to-pci-bridge") => "i82801b11-bridge",
                    Some("pcie-switch-upstream-port") => "x3130-upstream",
                    Some("pcie-switch-downstream-port") => "xio3130-downstream",
                    Some("pci-expander-bus") => "pxb",
                    Some("pcie-expander-bus") => "pxb-pcie",
                    Some("pcie-pci-bridge") => "pcie-pci-bridge",
                    Some(other) => other,
                };
                j.s("driver", driver);
                match driver {
                    "pcie-root-port" | "ioh3420" => {
                        j.u_opt("port", t.port.map(u64::from));
                        j.u_opt("chassis", t.chassis.map(u64::from));
                    }
                    "xio3130-downstream" => {
                        j.u_opt("port", t.port.map(u64::from));
                        j.u_opt("chassis", t.chassis.map(u64::from));
                    }
                    "pci-bridge" => {
                        j.u("chassis_nr", t.chassis_nr.unwrap_or(idx) as u64);
                    }
                    "pxb" | "pxb-pcie" => {
                        j.u_opt("bus_nr", t.bus_nr.map(u64::from));
                    }
                    _ => {}
                }
                j.s("id", self.ctrl_alias(c));
                if let Some(h) = &t.hotplug {
                    j.tristate("hotplug", Some(h.as_str()));
                }
                self.pci_props(&mut j, &c.info);
            }
            "usb" => {
                let driver = match model {
                    Some("none") => return Ok(()),
                    Some("piix3-uhci") | None => "piix3-usb-uhci",
                    Some("piix4-uhci") => "piix4-usb-uhci",
                    Some("ehci") => "usb-ehci",
                    Some("ich9-ehci1") => "ich9-usb-ehci1",
                    Some("ich9-uhci1") => "ich9-usb-uhci1",
                    Some("ich9-uhci2") => "ich9-usb-uhci2",
                    Some("ich9-uhci3") => "ich9-usb-uhci3",
                    Some("vt82c686b-uhci") => "vt82c686b-usb-uhci",
                    Some("pci-ohci") => "pci-ohci",
                    Some("nec-xhci") => "nec-usb-xhci",
                    Some("qemu-xhci") => "qemu-xhci",
                    Some(other) => other,
                };
                j.s("driver", driver);
                if matches!(driver, "qemu-xhci" | "nec-usb-xhci")
                    && let Some(p) = c.ports
                {
                    j.u("p2", p as u64).u("p3", p as u64);
                }
                // Companion controllers share their master's bus and get no id.
                let alias = self.ctrl_alias(c);
                let companion = c.info.master_startport.is_some();
                if let Some(sp) = &c.info.master_startport {
                    let master = if idx == 0 {
                        "usb".to_string()
                    } else {
                        format!("usb{idx}")
                    };
                    j.s("masterbus", format!("{master}.0"));
                    if let Ok(n) = sp.parse::<u64>() {
                        j.u("firstport", n);
                    }
                }
                if !companion {
                    j.s("id", alias);
                }
                self.pci_props(&mut j, &c.info);
            }
            "scsi" => {
                let driver = match model {
                    Some("virtio-scsi") | None => "virtio-scsi-pci",
                    Some("virtio-transitional") => "virtio-scsi-pci-transitional",
                    Some("virtio-non-transitional") => "virtio-scsi-pci-non-transitional",
                    Some("lsilogic") => "lsi",
                    Some("lsisas1068") => "mptsas1068",
                    Some("lsisas1078") => "megasas",
                    Some("ibmvscsi") => "spapr-vscsi",
                    Some("vmpvscsi") => "pvscsi",
                    Some("am53c974") => "am53c974",
                    Some("dc390") => "dc390",
                    Some(other) => other,
                };
                j.s("driver", driver);
                if driver.starts_with("virtio") {
                    self.virtio_opts(&mut j, c.driver.as_ref().map(|d| &d.virtio));
                }
                if driver.starts_with("virtio-scsi")
                    && let Some(d) = &c.driver
                {
                    j.u_opt("num_queues", d.queues.map(u64::from));
                    j.u_opt("cmd_per_lun", d.cmd_per_lun.map(u64::from));
                    j.u_opt("max_sectors", d.max_sectors.map(u64::from));
                    j.tristate("ioeventfd", d.ioeventfd.as_deref());
                    if let Some(t) = d.iothread {
                        j.s("iothread", format!("iothread{t}"));
                    }
                }
                j.s("id", self.ctrl_alias(c));
                if driver == "spapr-vscsi" {
                    // libvirt's first VIO address for a SCSI adapter is 0x2000.
                    let reg = match &c.info.address {
                        Some(Address::SpaprVio { reg: Some(r) }) => {
                            let h = r.trim_start_matches("0x");
                            u64::from_str_radix(h, 16).unwrap_or(0x2000)
                        }
                        _ => 0x2000,
                    };
                    j.u("reg", reg);
                }
                self.pci_props(&mut j, &c.info);
            }
            "sata" => {
                if self.is_q35() && idx == 0 {
                    return Ok(());
                }
                j.s("driver", "ahci").s("id", self.ctrl_alias(c));
                self.pci_props(&mut j, &c.info);
            }
            "ide" => {
                // The primary IDE controller is built into i440fx.
                return Ok(());
            }
            "fdc" => return Ok(()),
            "ccid" => {
                j.s("driver", "usb-ccid").s("id", self.ctrl_alias(c));
                self.info_props(&mut j, &c.info);
            }
            "virtio-serial" => {
                let driver = match model {
                    Some("virtio-transitional") => "virtio-serial-pci-transitional",
                    Some("virtio-non-transitional") => "virtio-serial-pci-non-transitional",
                    _ => "virtio-serial-pci",
                };
                j.s("driver", driver);
                self.virtio_opts(&mut j, c.driver.as_ref().map(|d| &d.virtio));
                j.s("id", self.ctrl_alias(c));
                if let Some(p) = c.ports {
                    j.u("max_ports", p as u64);
                }
                if let Some(v) = c.vectors {
                    j.u("vectors", v as u64);
                }
                if let Some(d) = &c.driver {
                    j.tristate("ioeventfd", d.ioeventfd.as_deref());
                }
                self.pci_props(&mut j, &c.info);
            }
            _ => return Ok(()),
        }
        self.device(&j);
        Ok(())
    }

    fn ctrl_alias(&self, c: &crate::domain::devices::Controller) -> String {
        if let Some(a) = &c.info.alias {
            return a.clone();
        }
        let idx = c.index.unwrap_or(0);
        match c.ctype.as_str() {
            "pci" => {
                if idx == 0 {
                    self.pci_bus_name(0)
                } else {
                    format!("pci.{idx}")
                }
            }
            "usb" if idx == 0 => "usb".into(),
            "ide" => "ide".into(),
            t => format!("{t}{idx}"),
        }
    }

    /// libvirt puts the common virtio options right after the driver name.
    fn virtio_opts(&self, j: &mut JsonOpts, v: Option<&crate::domain::devices::VirtioOptions>) {
        let Some(v) = v else { return };
        j.tristate("iommu_platform", v.iommu.as_deref());
        j.tristate("ats", v.ats.as_deref());
        j.tristate("packed", v.packed.as_deref());
        j.tristate("page-per-vq", v.page_per_vq.as_deref());
    }

    // ---- disks ---------------------------------------------------------------------------

    fn disk_alias(&self, i: usize, d: &Disk) -> String {
        if let Some(a) = &d.info.alias {
            return a.clone();
        }
        let bus = d.target.bus.as_deref().unwrap_or("ide");
        if let Some(Address::Drive {
            controller,
            bus: b,
            target,
            unit,
        }) = &d.info.address
        {
            return match bus {
                "scsi" if !self.scsi_is_virtio(*controller) => {
                    format!("scsi{controller}-{b}-{unit}")
                }
                "scsi" => format!("scsi{controller}-{b}-{target}-{unit}"),
                "sata" => format!("sata{controller}-{b}-{unit}"),
                "fdc" => format!("fdc{controller}-{b}-{unit}"),
                _ => format!("ide{controller}-{b}-{unit}"),
            };
        }
        let idx = disk_index(&d.target.dev).unwrap_or(i as u32);
        match bus {
            "virtio" => format!("virtio-disk{idx}"),
            "usb" => format!("usb-disk{idx}"),
            "sd" => format!("sd-disk{idx}"),
            "xen" => format!("xenblk-disk{idx}"),
            other => format!("{other}-disk{idx}"),
        }
    }

    /// Whether disks on SCSI controller `index` are addressed by channel, target and LUN;
    /// the LSI-style HBAs take a bus per channel and a SCSI id instead.
    fn scsi_is_virtio(&self, index: u32) -> bool {
        self.def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "scsi" && c.index.unwrap_or(0) == index)
            .and_then(|c| c.model.as_deref())
            .is_none_or(|m| !matches!(m, "lsilogic" | "ncr53c90" | "dc390" | "am53c974"))
    }

    fn disks(&mut self) -> R {
        let disks = &self.def.devices.disks;
        // The built-in floppy controller of i440fx takes boot indexes for its drives.
        if !self.is_q35() {
            for (i, d) in disks.iter().enumerate() {
                if d.target.bus.as_deref() != Some("fdc") {
                    continue;
                }
                let boot = d
                    .info
                    .boot
                    .as_ref()
                    .map(|b| b.order)
                    .or(self.disk_boot.get(&i).copied());
                if let (Some(b), Some(Address::Drive { unit, .. })) = (boot, &d.info.address) {
                    let letter = if *unit == 0 { 'A' } else { 'B' };
                    self.args.push("-global".into());
                    self.args.push(format!("isa-fdc.bootindex{letter}={b}"));
                }
            }
        }
        let disks = &self.def.devices.disks;
        // Node names are counted over the disks in reverse order, each chain from the top.
        let mut counter = 1u32;
        let mut names: Vec<Vec<u32>> = vec![Vec::new(); disks.len()];
        for i in (0..disks.len()).rev() {
            let d = &disks[i];
            if d.dtype.as_deref() == Some("vhostuser") {
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
        for (i, d) in disks.iter().enumerate() {
            self.disk(i, d, &names[i])?;
        }
        Ok(())
    }

    fn disk(&mut self, i: usize, d: &Disk, nodes: &[u32]) -> R {
        let device = d.device.as_deref().unwrap_or("disk");
        let readonly = d.readonly || device == "cdrom";
        let alias = self.disk_alias(i, d);
        // Chain layers: top image then backing stores.
        let mut layers: Vec<(Option<&DiskSource>, Option<String>, Option<String>)> = Vec::new();
        layers.push((
            d.source.as_ref(),
            d.dtype.clone(),
            d.driver.as_ref().and_then(|x| x.dtype.clone()),
        ));
        let mut bs = d.backing_store.as_ref();
        while let Some(b) = bs {
            if b.source.is_none() && b.btype.is_none() {
                break;
            }
            layers.push((b.source.as_ref(), b.btype.clone(), b.format.clone()));
            bs = b.backing.as_deref();
        }
        let mut top_format: Option<String> = None;
        if !nodes.is_empty() {
            // Print from the bottom of the chain up.
            for li in (0..nodes.len().min(layers.len())).rev() {
                let n = nodes[li];
                let (src, ty, fmt) = &layers[li];
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
                    self.storage_props(d, *src, ty.as_deref(), device)?
                };
                pre.sort_by_key(|(rank, _)| *rank);
                for (_, o) in &pre {
                    self.object(o);
                }
                s.s("node-name", storage.clone());
                if let Some(c) = self.cache_props(d) {
                    s.v("cache", c);
                }
                s.b("auto-read-only", true);
                s.s("discard", "unmap");
                self.opt("-blockdev", s.build());
                let mut f = JsonOpts::new();
                f.s("node-name", format.clone());
                f.b("read-only", if li == 0 { readonly } else { true });
                if let Some(c) = self.cache_props(d) {
                    f.v("cache", c);
                }
                if let Some(disc) = d.driver.as_ref().and_then(|x| x.discard.as_deref()) {
                    f.s("discard", disc);
                }
                let fmt = fmt.clone().unwrap_or_else(|| "raw".into());
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
                    }
                }
                if li == 0
                    && fmt == "qcow2"
                    && let Some(sz) = d
                        .driver
                        .as_ref()
                        .and_then(|x| x.metadata_cache.as_ref())
                        .and_then(|m| m.max_size_bytes)
                {
                    f.u("cache-size", sz);
                }
                f.s("file", storage);
                // A chain that is known to end here says so; an unknown one (no
                // <backingStore> at all) is left to QEMU to open.
                if li + 1 < nodes.len().min(layers.len()) {
                    f.s("backing", format!("libvirt-{}-format", nodes[li + 1]));
                } else if matches!(fmt.as_str(), "qcow2" | "qed" | "vmdk" | "qcow")
                    && chain_terminated(d)
                {
                    f.v("backing", serde_json::Value::Null);
                }
                self.opt("-blockdev", f.build());
                if li == 0 {
                    top_format = Some(format);
                }
            }
        }
        self.disk_device(i, d, &alias, top_format.as_deref())
    }

    fn cache_props(&self, d: &Disk) -> Option<serde_json::Value> {
        let mode = d.driver.as_ref()?.cache.as_deref()?;
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

    fn storage_props(
        &self,
        d: &Disk,
        src: Option<&DiskSource>,
        ty: Option<&str>,
        device: &str,
    ) -> R<JsonOpts> {
        let mut j = JsonOpts::new();
        let src = src.ok_or_else(|| Xml2ArgvError::Internal("missing disk source".into()))?;
        match ty.unwrap_or("file") {
            "file" => {
                j.s("driver", "file")
                    .s("filename", src.file.clone().unwrap_or_default());
                j.s_opt("aio", d.driver.as_ref().and_then(|x| x.io.clone()));
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
            }
            "dir" => {
                super::fsdev::check_vvfat(d)?;
                j.s("driver", "vvfat")
                    .s("dir", src.dir.clone().unwrap_or_default())
                    .b("floppy", device == "floppy")
                    .b("rw", !d.readonly);
            }
            other => {
                return Err(unsupported(format!(
                    "disk type '{other}' not supported yet"
                )));
            }
        }
        Ok(j)
    }

    fn disk_device(&mut self, i: usize, d: &Disk, alias: &str, drive: Option<&str>) -> R {
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
                j.s_opt("drive", drive);
                j.s("id", alias);
            }
            "virtio" => {
                j.s("driver", "virtio-blk-pci");
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
                self.info_props(&mut j, &d.info);
                j.s_opt("drive", drive);
                j.s("id", alias);
            }
            "fdc" => {
                j.s("driver", "floppy");
                if let Some(Address::Drive { unit, .. }) = &d.info.address {
                    j.u("unit", *unit as u64);
                }
                j.s_opt("drive", drive);
                j.s("id", alias);
            }
            "scsi" => {
                let drv = match device {
                    "cdrom" => "scsi-cd",
                    "lun" => "scsi-block",
                    _ => "scsi-hd",
                };
                j.s("driver", drv);
                if let Some(Address::Drive {
                    controller,
                    bus: b,
                    target,
                    unit,
                }) = &d.info.address
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
                if drv != "scsi-block" {
                    j.s(
                        "device_id",
                        d.serial.clone().unwrap_or_else(|| format!("drive-{alias}")),
                    );
                }
                j.s_opt("drive", drive);
                j.s("id", alias);
            }
            "usb" => {
                j.s("driver", "usb-storage");
                self.usb_props(&mut j, "disk", i, &d.info);
                j.s_opt("drive", drive);
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
        if let Some(c) = d.driver.as_ref().and_then(|x| x.cache.as_deref()) {
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
        if let Some(s) = &d.serial {
            j.s("serial", s.clone());
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
        self.device(&j);
        Ok(())
    }

    // ---- filesystems, nets ---------------------------------------------------------------

    fn filesystems(&mut self) -> R {
        for (i, fs) in self.def.devices.filesystems.iter().enumerate() {
            let alias = fs.info.alias.clone().unwrap_or(format!("fs{i}"));
            let driver = fs.driver.as_ref().and_then(|d| d.dtype.as_deref());
            if driver == Some("virtiofs") {
                return Err(unsupported("virtiofs not supported yet"));
            }
            let o = super::fsdev::fsdev_opts(fs, &alias);
            self.opt("-fsdev", o.build());
            let mut j = JsonOpts::new();
            j.s("driver", super::fsdev::device_driver(fs));
            self.virtio_opts(&mut j, fs.driver.as_ref().map(|x| &x.virtio));
            j.s("id", alias.clone())
                .s("fsdev", format!("fsdev-{alias}"))
                .s("mount_tag", fs.target_dir.clone().unwrap_or_default());
            self.pci_props(&mut j, &fs.info);
            self.device(&j);
        }
        Ok(())
    }

    fn nets(&mut self) -> R {
        let mut tapfd = self.ctx.tap_fd_base;
        let mut vhostfd = self.ctx.vhost_fd_base;
        for (i, n) in self.def.devices.interfaces.iter().enumerate() {
            let alias = n.info.alias.clone().unwrap_or(format!("net{i}"));
            let host = format!("host{alias}");
            let model = n.model.as_deref().unwrap_or("rtl8139");
            let is_virtio = model.starts_with("virtio");
            let mut nd = JsonOpts::new();
            match n.itype.as_str() {
                "user" => {
                    nd.s("type", "user");
                }
                "ethernet" | "bridge" | "network" => {
                    nd.s("type", "tap").s("fd", tapfd.to_string());
                    tapfd += 1;
                    let vhost = n.driver.as_ref().and_then(|d| d.name.as_deref());
                    if is_virtio
                        && vhost != Some("qemu")
                        && accel_of(self.def) == crate::capabilities::qemu::Accel::Kvm
                    {
                        nd.b("vhost", true).s("vhostfd", vhostfd.to_string());
                        vhostfd += 1;
                    }
                }
                "server" | "client" | "mcast" | "udp" => socket_netdev(&mut nd, n),
                other => {
                    return Err(unsupported(format!(
                        "interface type '{other}' not supported yet"
                    )));
                }
            }
            nd.s("id", host.clone());
            let netdev = if self.has("netdev.json") {
                nd.build()
            } else {
                kv_from_json(&nd.into_value())
            };
            self.opt("-netdev", netdev);
            let mut j = JsonOpts::new();
            let driver = match model {
                "virtio" => "virtio-net-pci",
                "virtio-transitional" => "virtio-net-pci-transitional",
                "virtio-non-transitional" => "virtio-net-pci-non-transitional",
                other => other,
            };
            j.s("driver", driver);
            if is_virtio {
                self.virtio_opts(&mut j, n.driver.as_ref().map(|x| &x.virtio));
            }
            if is_virtio && let Some(d) = &n.driver {
                if let Some(q) = d.queues
                    && q > 1
                {
                    j.b("mq", true).u("vectors", 2 * q as u64 + 2);
                }
                if let Some(tm) = &d.txmode {
                    j.s("tx", if tm == "iothread" { "bh" } else { "timer" });
                }
                j.tristate("ioeventfd", d.ioeventfd.as_deref());
                j.tristate("event_idx", d.event_idx.as_deref());
                j.u_opt("rx_queue_size", d.queue_size.map(u64::from));
                let attr = |k: &str| {
                    d.extra
                        .attrs
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.as_str())
                };
                j.tristate("rss", attr("rss"));
                j.tristate("hash", attr("rss_hash_report"));
            }
            j.s("netdev", host).s("id", alias);
            j.s_opt("mac", n.mac.clone());

            let boot = n
                .info
                .boot
                .as_ref()
                .map(|b| b.order)
                .or(self.net_boot.get(&i).copied());
            if let Some(b) = boot {
                j.u("bootindex", b as u64);
            }
            self.info_props(&mut j, &n.info);
            self.device(&j);
        }
        Ok(())
    }

    // ---- character devices -----------------------------------------------------------------

    /// The `-chardev` backend for a source, or an error for kinds not handled yet.
    fn chardev(&mut self, id: &str, c: &Chardev) -> R {
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
            }
            "unix" => {
                o = KvOpts::with_head("socket");
                o.kv("id", id);
                let bind = src.mode.as_deref() != Some("connect");
                if bind {
                    if let Some(fd) = self.ctx.bind_socket_fd {
                        o.kv("fd", fd);
                    } else {
                        o.kv("path", src.path.clone().unwrap_or_default());
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
                if src.mode.as_deref() == Some("bind") {
                    o.raw("server=on,wait=off");
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

    fn serials(&mut self) -> R {
        for (i, s) in self.def.devices.serials.iter().enumerate() {
            let alias = s.info.alias.clone().unwrap_or(format!("serial{i}"));
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
                self.info_props(&mut j, &s.info);
            }
            self.device(&j);
        }
        Ok(())
    }

    fn channels(&mut self) -> R {
        for (i, c) in self.def.devices.channels.iter().enumerate() {
            let alias = c.info.alias.clone().unwrap_or(format!("channel{i}"));
            let chr = format!("char{alias}");
            let ttype = c
                .target
                .as_ref()
                .and_then(|t| t.ttype.as_deref())
                .unwrap_or("virtio");
            if ttype != "virtio" {
                return Err(unsupported(format!(
                    "channel target '{ttype}' not supported yet"
                )));
            }
            self.chardev(&chr, c)?;
            let mut j = JsonOpts::new();
            j.s("driver", "virtserialport");
            virtio_serial_port(&mut j, &c.info.address);
            j.s("chardev", chr).s("id", alias);
            if let Some(n) = c.target.as_ref().and_then(|t| t.name.clone()) {
                j.s("name", n);
            }
            self.device(&j);
        }
        Ok(())
    }

    fn tpms(&mut self) -> R {
        let short = self.ctx.short_name(self.def);
        for (i, t) in self.def.devices.tpms.iter().enumerate() {
            let a = super::tpm::args(t, i, self.ctx, &short, &mut self.fdset)?;
            self.args.extend(a);
        }
        Ok(())
    }

    fn consoles(&mut self) -> R {
        for (i, c) in self.def.devices.consoles.iter().enumerate() {
            let ttype = c
                .target
                .as_ref()
                .and_then(|t| t.ttype.as_deref())
                .unwrap_or("serial");
            // A serial console is the first serial port, already printed.
            if ttype == "serial" {
                continue;
            }
            let alias = c.info.alias.clone().unwrap_or(format!("console{i}"));
            let chr = format!("char{alias}");
            if ttype != "virtio" {
                return Err(unsupported(format!(
                    "console target '{ttype}' not supported yet"
                )));
            }
            self.chardev(&chr, c)?;
            let mut j = JsonOpts::new();
            j.s("driver", "virtconsole");
            virtio_serial_port(&mut j, &c.info.address);
            j.s("chardev", chr).s("id", alias);
            self.device(&j);
        }
        Ok(())
    }

    // ---- inputs, audio, graphics, video, sound -------------------------------------------

    fn inputs(&mut self) -> R {
        for (i, inp) in self.def.devices.inputs.iter().enumerate() {
            let alias = inp.info.alias.clone().unwrap_or(format!("input{i}"));
            let bus = inp.bus.as_deref().unwrap_or("ps2");
            let mut j = JsonOpts::new();
            match (inp.itype.as_str(), bus) {
                (_, "ps2") => continue,
                (t, "usb") => {
                    let drv = match t {
                        "mouse" => "usb-mouse",
                        "tablet" => "usb-tablet",
                        "keyboard" => "usb-kbd",
                        _ => return Err(unsupported(format!("input type '{t}' not supported"))),
                    };
                    j.s("driver", drv).s("id", alias);
                    self.usb_props(&mut j, "input", i, &inp.info);
                }
                (t, "virtio") => {
                    let base = match t {
                        "mouse" => "virtio-mouse",
                        "tablet" => "virtio-tablet",
                        "keyboard" => "virtio-keyboard",
                        "passthrough" => "virtio-input-host",
                        _ => return Err(unsupported(format!("input type '{t}' not supported"))),
                    };
                    let drv = match inp.model.as_deref() {
                        Some("virtio-transitional") => format!("{base}-pci-transitional"),
                        Some("virtio-non-transitional") => format!("{base}-pci-non-transitional"),
                        _ => format!("{base}-pci"),
                    };
                    j.s("driver", drv);
                    self.virtio_opts(&mut j, inp.driver.as_ref().map(|x| &x.virtio));
                    j.s("id", alias);
                    if let Some(ev) = inp.source.as_ref().and_then(|s| s.evdev.clone()) {
                        j.s("evdev", ev);
                    }
                    self.info_props(&mut j, &inp.info);
                }
                (t, b) => {
                    return Err(unsupported(format!(
                        "input {t} on bus {b} not supported yet"
                    )));
                }
            }
            self.device(&j);
        }
        Ok(())
    }

    fn audio(&mut self) {
        for a in &self.def.devices.audios {
            let id = a.id.unwrap_or(1);
            let attr = |n: &str| {
                a.extra
                    .attrs
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            };
            let mut j = JsonOpts::new();
            j.s("id", format!("audio{id}"));
            let drv = match a.atype.as_str() {
                "pulseaudio" => "pa",
                "file" => "wav",
                other => other,
            };
            j.s("driver", drv);
            if let Some(t) = attr("timerPeriod").and_then(|v| v.parse().ok()) {
                j.u("timer-period", t);
            }
            match a.atype.as_str() {
                "file" => {
                    j.s_opt("path", attr("path"));
                }
                "pulseaudio" => {
                    j.s_opt("server", attr("serverName"));
                }
                "oss" => {
                    j.tristate("try-mmap", attr("tryMMap").as_deref());
                    j.tristate("exclusive", attr("exclusive").as_deref());
                    if let Some(v) = attr("dspPolicy").and_then(|v| v.parse().ok()) {
                        j.u("dsp-policy", v);
                    }
                }
                "sdl" => {
                    if let Some(d) = attr("driver") {
                        self.extra_env.push(("SDL_AUDIODRIVER".into(), d));
                    }
                }
                _ => {}
            }
            for (elem, key) in [("input", "in"), ("output", "out")] {
                let Some(n) = a.extra.children.iter().find(|c| c.name == elem) else {
                    continue;
                };
                let mut d = JsonOpts::new();
                d.tristate("mixing-engine", n.attr("mixingEngine"));
                d.tristate("fixed-settings", n.attr("fixedSettings"));
                let num = |d: &mut JsonOpts, k: &str, v: Option<&str>| {
                    if let Some(x) = v.and_then(|v| v.parse::<u64>().ok()) {
                        d.u(k, x);
                    }
                };
                num(&mut d, "voices", n.attr("voices"));
                num(&mut d, "buffer-length", n.attr("bufferLength"));
                if let Some(st) = n.child("settings") {
                    num(&mut d, "frequency", st.attr("frequency"));
                    num(&mut d, "channels", st.attr("channels"));
                    d.s_opt("format", st.attr("format"));
                }
                match a.atype.as_str() {
                    "alsa" => {
                        d.s_opt("dev", n.attr("dev"));
                    }
                    "oss" => {
                        d.s_opt("dev", n.attr("dev"));
                        num(&mut d, "buffer-count", n.attr("bufferCount"));
                        d.tristate("try-poll", n.attr("tryPoll"));
                    }
                    "coreaudio" | "sdl" => {
                        num(&mut d, "buffer-count", n.attr("bufferCount"));
                    }
                    "pulseaudio" => {
                        d.s_opt("name", n.attr("name"));
                        d.s_opt("stream-name", n.attr("streamName"));
                        num(&mut d, "latency", n.attr("latency"));
                    }
                    "jack" => {
                        d.s_opt("server-name", n.attr("serverName"));
                        d.s_opt("client-name", n.attr("clientName"));
                        d.s_opt("connect-ports", n.attr("connectPorts"));
                        d.tristate("exact-name", n.attr("exactName"));
                    }
                    _ => {}
                }
                j.v(key, d.into_value());
            }
            self.opt("-audiodev", j.build());
        }
    }

    fn graphics(&mut self) -> R {
        for g in &self.def.devices.graphics {
            match g.gtype.as_str() {
                "vnc" => {
                    let mut o = KvOpts::new();
                    let listen = g.listens.first();
                    let ltype = listen.map(|l| l.ltype.as_str()).unwrap_or("address");
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
                    if let Some(k) = &g.keymap {
                        o.kv("keymap", k);
                    }
                    let audio = g
                        .audio_id
                        .or_else(|| self.def.devices.audios.first().and_then(|a| a.id));
                    if let Some(a) = audio {
                        o.kv("audiodev", format!("audio{a}"));
                    }
                    self.opt("-vnc", o.build());
                }
                "spice" => self.spice(g),
                "egl-headless" => {
                    let mut o = KvOpts::with_head("egl-headless");
                    // Without a configured node libvirt picks the host's first render
                    // node (/dev/dri/foo in its tests).
                    o.kv(
                        "rendernode",
                        g.gl_rendernode
                            .clone()
                            .unwrap_or_else(|| "/dev/dri/foo".into()),
                    );
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

    fn spice(&mut self, g: &crate::domain::devices::Graphics) {
        let mut o = KvOpts::new();
        let listen = g.listens.first();
        let ltype = listen.map(|l| l.ltype.as_str()).unwrap_or("address");
        let parse = |v: &Option<String>| v.as_deref().and_then(|p| p.parse::<i64>().ok());
        let auto = g.autoport.as_deref() == Some("yes");
        // libvirt's test port allocator hands out 5901 and 5902 for automatic SPICE ports.
        let mut port = parse(&g.port).unwrap_or(0);
        let mut tls_port = parse(&g.tls_port).unwrap_or(0);
        if auto && ltype != "socket" && ltype != "none" {
            port = 5901;
            if self.ctx.conf.spice_tls {
                tls_port = 5902;
            }
        }
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
        for (name, mode) in &g.channels {
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
            o.kv(
                "rendernode",
                g.gl_rendernode
                    .clone()
                    .unwrap_or_else(|| "/dev/dri/foo".into()),
            );
        }
        o.raw("seamless-migration=on");
        self.opt("-spice", o.build());
    }

    fn videos(&mut self) -> R {
        for (i, v) in self.def.devices.videos.iter().enumerate() {
            let alias = v.info.alias.clone().unwrap_or(format!("video{i}"));
            let m = v.model.clone().unwrap_or_default();
            let primary = i == 0;
            let mut j = JsonOpts::new();
            match m.vtype.as_str() {
                "none" => continue,
                "cirrus" => {
                    j.s("driver", "cirrus-vga").s("id", alias);
                }
                "vga" => {
                    j.s("driver", "VGA").s("id", alias);
                    if let Some(vg) = m.vgamem.or(m.vram) {
                        j.u("vgamem_mb", vg as u64 / 1024);
                    }
                }
                "vmvga" => {
                    j.s("driver", "vmware-svga").s("id", alias);
                    if let Some(vg) = m.vgamem.or(m.vram) {
                        j.u("vgamem_mb", vg as u64 / 1024);
                    }
                }
                "qxl" => {
                    j.s("driver", if primary { "qxl-vga" } else { "qxl" })
                        .s("id", alias);
                    j.u("max_outputs", m.heads.unwrap_or(1) as u64);
                    if let Some(r) = m.ram {
                        j.u("ram_size", r as u64 * 1024);
                    }
                    if let Some(r) = m.vram {
                        j.u("vram_size", r as u64 * 1024);
                    }
                    j.u("vram64_size_mb", m.vram64.unwrap_or(0) as u64 / 1024);
                    if let Some(r) = m.vgamem {
                        j.u("vgamem_mb", r as u64 / 1024);
                    }
                }
                "virtio" => {
                    let accel3d = m
                        .extra
                        .children
                        .iter()
                        .any(|c| c.name == "acceleration" && c.attr("accel3d") == Some("yes"));
                    j.s(
                        "driver",
                        match (primary && self.is_x86(), accel3d) {
                            (true, false) => "virtio-vga",
                            (true, true) => "virtio-vga-gl",
                            (false, false) => "virtio-gpu-pci",
                            (false, true) => "virtio-gpu-gl-pci",
                        },
                    )
                    .s("id", alias);
                    if let Some(h) = m.heads {
                        j.u("max_outputs", h as u64);
                    }
                }
                "bochs" => {
                    j.s("driver", "bochs-display").s("id", alias);
                    if let Some(vg) = m.vram {
                        j.u("vgamem", vg as u64 * 1024);
                    }
                }
                "ramfb" => {
                    j.s("driver", "ramfb").s("id", alias);
                }
                other => {
                    return Err(unsupported(format!("video '{other}' not supported yet")));
                }
            }
            self.info_props(&mut j, &v.info);
            self.device(&j);
        }
        Ok(())
    }

    fn sounds(&mut self) -> R {
        for (i, s) in self.def.devices.sounds.iter().enumerate() {
            let alias = s.info.alias.clone().unwrap_or(format!("sound{i}"));
            let audio = s
                .audio_id
                .or_else(|| self.def.devices.audios.first().and_then(|a| a.id))
                .unwrap_or(1);
            let mut j = JsonOpts::new();
            let (drv, hda) = match s.model.as_str() {
                "ich6" => ("intel-hda", true),
                "ich9" => ("ich9-intel-hda", true),
                "ac97" => ("AC97", false),
                "es1370" => ("ES1370", false),
                "sb16" => ("sb16", false),
                "usb" => ("usb-audio", false),
                "ich7" => ("intel-hda", true),
                "pcspk" => return Err(unsupported("pcspk not supported yet")),
                other => return Err(unsupported(format!("sound '{other}' not supported yet"))),
            };
            j.s("driver", drv).s("id", alias.clone());
            if !hda {
                j.s("audiodev", format!("audio{audio}"));
            }
            self.info_props(&mut j, &s.info);
            self.device(&j);
            if hda {
                let codecs = if s.codecs.is_empty() {
                    vec!["duplex".to_string()]
                } else {
                    s.codecs.clone()
                };
                for (ci, c) in codecs.iter().enumerate() {
                    let mut cj = JsonOpts::new();
                    cj.s("driver", format!("hda-{c}"))
                        .s("id", format!("{alias}-codec{ci}"))
                        .s("bus", format!("{alias}.0"))
                        .u("cad", ci as u64)
                        .s("audiodev", format!("audio{audio}"));
                    self.device(&cj);
                }
            }
        }
        Ok(())
    }

    fn watchdogs(&mut self) -> R {
        for (i, w) in self.def.devices.watchdogs.iter().enumerate() {
            let alias = w.info.alias.clone().unwrap_or(format!("watchdog{i}"));
            let drv = match w.model.as_deref().unwrap_or("i6300esb") {
                "i6300esb" => "i6300esb",
                "ib700" => "ib700",
                "diag288" => "diag288",
                "itco" => return Err(unsupported("itco watchdog not supported yet")),
                other => return Err(unsupported(format!("watchdog '{other}' not supported yet"))),
            };
            let mut j = JsonOpts::new();
            j.s("driver", drv).s("id", alias);
            self.pci_props(&mut j, &w.info);
            self.device(&j);
            if i == 0
                && let Some(a) = &w.action
            {
                let act = match a.as_str() {
                    "dump" => "pause",
                    other => other,
                };
                self.opt("-watchdog-action", act);
            }
        }
        Ok(())
    }

    fn parallels(&mut self) -> R {
        for (i, p) in self.def.devices.parallels.iter().enumerate() {
            let alias = p.info.alias.clone().unwrap_or(format!("parallel{i}"));
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

    fn redirdevs(&mut self) -> R {
        for (i, r) in self.def.devices.redirdevs.iter().enumerate() {
            let alias = r.info.alias.clone().unwrap_or(format!("redir{i}"));
            let chr = format!("char{alias}");
            self.chardev(&chr, r)?;
            let mut j = JsonOpts::new();
            j.s("driver", "usb-redir").s("chardev", chr).s("id", alias);
            if let Some(b) = r.info.boot.as_ref() {
                j.u("bootindex", b.order as u64);
            }
            self.usb_props(&mut j, "redirdev", i, &r.info);
            self.device(&j);
        }
        Ok(())
    }

    fn hostdevs(&mut self) -> R {
        use crate::domain::devices::HostAddress;
        for (i, h) in self.def.devices.hostdevs.iter().enumerate() {
            let alias = h.info.alias.clone().unwrap_or(format!("hostdev{i}"));
            let boot = h.info.boot.as_ref().map(|b| b.order);
            let src = h.source.clone().unwrap_or_default();
            let mut j = JsonOpts::new();
            match (h.htype.as_deref(), &src.address) {
                (Some("usb"), Some(HostAddress::Usb { bus, device })) => {
                    let n = |v: &str| v.trim().parse::<u32>().unwrap_or(0);
                    j.s("driver", "usb-host")
                        .s(
                            "hostdevice",
                            format!("/dev/bus/usb/{:03}/{:03}", n(bus), n(device)),
                        )
                        .s("id", alias);
                    if let Some(b) = boot {
                        j.u("bootindex", b as u64);
                    }
                    match src.guest_reset.as_deref() {
                        Some("off") => {
                            j.b("guest-reset", false);
                        }
                        Some("uninitialized") => {
                            j.b("guest-reset", true).b("guest-resets-all", false);
                        }
                        Some("on") => {
                            j.b("guest-reset", true).b("guest-resets-all", true);
                        }
                        _ => {}
                    }
                    self.usb_props(&mut j, "hostdev", i, &h.info);
                }
                (
                    Some("pci"),
                    Some(HostAddress::Pci {
                        domain,
                        bus,
                        slot,
                        function,
                    }),
                ) => {
                    j.s("driver", "vfio-pci")
                        .s(
                            "host",
                            format!("{domain:04x}:{bus:02x}:{slot:02x}.{function:x}"),
                        )
                        .s("id", alias);
                    if let Some(b) = boot {
                        j.u("bootindex", b as u64);
                    }
                    self.pci_props(&mut j, &h.info);
                }
                (t, _) => {
                    return Err(unsupported(format!(
                        "hostdev type '{}' not supported yet",
                        t.unwrap_or("")
                    )));
                }
            }
            self.device(&j);
        }
        Ok(())
    }

    fn memballoon(&mut self) {
        let Some(b) = &self.def.devices.memballoon else {
            return;
        };
        let model = b.model.as_deref().unwrap_or("virtio");
        let drv = match model {
            "virtio" => "virtio-balloon-pci",
            "virtio-transitional" => "virtio-balloon-pci-transitional",
            "virtio-non-transitional" => "virtio-balloon-pci-non-transitional",
            _ => return,
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv);
        self.virtio_opts(&mut j, b.driver.as_ref().map(|x| &x.virtio));
        j.s("id", b.info.alias.clone().unwrap_or("balloon0".into()));
        j.tristate("free-page-reporting", b.free_page_reporting.as_deref());
        self.pci_props(&mut j, &b.info);
        j.tristate("deflate-on-oom", b.autodeflate.as_deref());
        self.device(&j);
    }

    fn rngs(&mut self) -> R {
        for (i, r) in self.def.devices.rngs.iter().enumerate() {
            let alias = r.info.alias.clone().unwrap_or(format!("rng{i}"));
            let obj = format!("obj{alias}");
            let mut o = JsonOpts::new();
            match r.backend_model.as_deref().unwrap_or("random") {
                "random" => {
                    o.s("qom-type", "rng-random").s("id", obj.clone()).s(
                        "filename",
                        r.backend_path.clone().unwrap_or("/dev/urandom".into()),
                    );
                }
                "builtin" => {
                    o.s("qom-type", "rng-builtin").s("id", obj.clone());
                }
                "egd" => {
                    let chr = format!("char{alias}");
                    self.chardev(&chr, &super::rng::egd_chardev(r))?;
                    o.s("qom-type", "rng-egd")
                        .s("id", obj.clone())
                        .s("chardev", chr);
                }
                other => {
                    return Err(unsupported(format!(
                        "rng backend '{other}' not supported yet"
                    )));
                }
            }
            self.object(&o);
            let drv = match r.model.as_deref() {
                Some("virtio-transitional") => "virtio-rng-pci-transitional",
                Some("virtio-non-transitional") => "virtio-rng-pci-non-transitional",
                _ => "virtio-rng-pci",
            };
            let mut j = JsonOpts::new();
            j.s("driver", drv);
            self.virtio_opts(&mut j, r.driver.as_ref().map(|x| &x.virtio));
            j.s("rng", obj);
            j.s("id", alias.clone());
            if let Some(b) = r.rate_bytes.as_deref().and_then(|s| s.parse::<u64>().ok()) {
                j.u("max-bytes", b);
                let period = r
                    .rate_period
                    .as_deref()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(1000);
                j.u("period", period);
            }
            self.pci_props(&mut j, &r.info);
            self.device(&j);
        }
        Ok(())
    }

    fn qemu_commandline(&mut self) {
        if let Some(q) = &self.def.qemu_commandline {
            for a in &q.args {
                self.args.push(a.clone());
            }
            for e in &q.env {
                self.extra_env
                    .push((e.name.clone(), e.value.clone().unwrap_or_default()));
            }
        }
    }

    fn panics(&mut self) {
        for p in &self.def.devices.panics {
            match p.model.as_deref() {
                Some("isa") | None if self.is_x86() => {
                    let mut j = JsonOpts::new();
                    j.s("driver", "pvpanic");
                    if let Some(Address::Isa {
                        iobase: Some(io), ..
                    }) = &p.info.address
                        && let Some(v) = io
                            .strip_prefix("0x")
                            .and_then(|h| u64::from_str_radix(h, 16).ok())
                    {
                        j.u("ioport", v);
                    }
                    self.device(&j);
                }
                _ => {}
            }
        }
    }

    fn vsock(&mut self) {
        let Some(v) = &self.def.devices.vsock else {
            return;
        };
        let drv = match v.model.as_deref() {
            Some("virtio-transitional") => "vhost-vsock-pci-transitional",
            Some("virtio-non-transitional") => "vhost-vsock-pci-non-transitional",
            _ => "vhost-vsock-pci",
        };
        let mut j = JsonOpts::new();
        j.s("driver", drv)
            .s("id", v.info.alias.clone().unwrap_or("vsock0".into()));
        let cid = if v.cid_auto.as_deref() == Some("yes") {
            42
        } else {
            v.cid_address.unwrap_or(3) as u64
        };
        j.u("guest-cid", cid).s("vhostfd", "6789");
        self.pci_props(&mut j, &v.info);
        self.device(&j);
    }
}

fn disk_source_is_empty(d: &Disk) -> bool {
    match &d.source {
        None => true,
        Some(s) => {
            s.file.is_none()
                && s.dev.is_none()
                && s.dir.is_none()
                && s.protocol.is_none()
                && s.pool.is_none()
        }
    }
}

fn chain_len(d: &Disk) -> usize {
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

/// `vda` → 0, `sdb` → 1, `hdaa` → 26: libvirt's disk name index.
pub(super) fn disk_index(dev: &str) -> Option<u32> {
    let prefix_len = ["vd", "sd", "hd", "xvd", "fd", "ubd"]
        .iter()
        .find(|p| dev.starts_with(**p))
        .map(|p| p.len())?;
    let mut idx: i64 = -1;
    for c in dev[prefix_len..].chars() {
        if !c.is_ascii_lowercase() {
            return None;
        }
        idx = (idx + 1) * 26 + (c as i64 - 'a' as i64);
    }
    u32::try_from(idx).ok()
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC).
fn format_epoch(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The key=value form of a flat JSON object, for QEMUs that take no JSON for an option:
/// `type` leads bare, booleans become on/off, strings are comma-escaped.
fn kv_from_json(v: &serde_json::Value) -> String {
    let mut o = KvOpts::new();
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            let text = match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => (if *b { "on" } else { "off" }).to_string(),
                other => other.to_string(),
            };
            if k == "type" {
                o.raw(&super::opts::escape_commas(&text));
            } else {
                o.kv(k, text);
            }
        }
    }
    o.build()
}

/// QEMU's spelling of a libvirt CPU feature name: hyphens, and a few renamed features.
impl Builder<'_> {
    /// The host-model CPU of an x86 guest, from the probed host CPU of its accelerator.
    fn host_model_cpu(&self) -> Option<crate::capabilities::domcaps::x86::DecodedCpu> {
        if !self.is_x86() {
            return None;
        }
        let accel = self.caps.accel(accel_of(self.def))?;
        crate::capabilities::domcaps::x86::decode_host(
            accel.host_cpu.as_ref()?,
            accel.cpus.as_deref().unwrap_or(&[]),
            !self.has("cpu-unavailable-features"),
        )
    }
}

/// `"iobase"` (and `"irq"`) of a device with an ISA address.
fn isa_props(j: &mut JsonOpts, info: &DeviceInfo, with_irq: bool) {
    let num = |v: &Option<String>| {
        v.as_deref().and_then(|x| match x.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => x.parse().ok(),
        })
    };
    if let Some(Address::Isa { iobase, irq }) = &info.address {
        j.u_opt("iobase", num(iobase));
        if with_irq {
            j.u_opt("irq", num(irq));
        }
    }
}

fn qemu_cpu_feature(name: &str) -> String {
    match name {
        "pclmuldq" => "pclmulqdq".into(),
        "sse4.1" => "sse4-1".into(),
        "sse4.2" => "sse4-2".into(),
        other => other.replace('_', "-"),
    }
}

/// Whether the disk's chain is known to end at its last listed image (`<backingStore/>`).
fn chain_terminated(d: &Disk) -> bool {
    let mut bs = d.backing_store.as_ref();
    while let Some(b) = bs {
        if b.source.is_none() && b.btype.is_none() {
            return true;
        }
        bs = b.backing.as_deref();
    }
    false
}

/// libvirt hands out USB ports at start, in this device order: hubs, host devices, disks,
/// CCID controllers, inputs, serials, sounds, redirected devices. Ports count from 1 on the
/// first USB bus, skipping the ones devices already claim.
fn assign_usb_ports(def: &DomainDef) -> HashMap<(&'static str, usize), String> {
    let mut out = HashMap::new();
    let d = &def.devices;
    let has_usb = d
        .controllers
        .iter()
        .any(|c| c.ctype == "usb" && c.model.as_deref() != Some("none"));
    if !has_usb {
        return out;
    }
    let mut taken: Vec<String> = Vec::new();
    let mut want: Vec<(&'static str, usize)> = Vec::new();
    let mut visit = |kind: &'static str, i: usize, info: &DeviceInfo, is_usb: bool| {
        if !is_usb {
            return;
        }
        match &info.address {
            Some(Address::Usb { port: Some(p), .. }) => taken.push(p.clone()),
            Some(Address::Usb { port: None, .. }) | None => want.push((kind, i)),
            _ => {}
        }
    };
    for (i, h) in d.hubs.iter().enumerate() {
        visit("hub", i, &h.info, h.htype == "usb");
    }
    for (i, h) in d.hostdevs.iter().enumerate() {
        visit("hostdev", i, &h.info, h.htype.as_deref() == Some("usb"));
    }
    for (i, x) in d.disks.iter().enumerate() {
        visit("disk", i, &x.info, x.target.bus.as_deref() == Some("usb"));
    }
    for (i, c) in d.controllers.iter().enumerate() {
        visit("controller", i, &c.info, c.ctype == "ccid");
    }
    for (i, x) in d.inputs.iter().enumerate() {
        visit("input", i, &x.info, x.bus.as_deref() == Some("usb"));
    }
    for (i, x) in d.serials.iter().enumerate() {
        let usb = x.target.as_ref().and_then(|t| t.ttype.as_deref()) == Some("usb-serial");
        visit("serial", i, &x.info, usb);
    }
    for (i, x) in d.sounds.iter().enumerate() {
        visit("sound", i, &x.info, x.model == "usb");
    }
    for (i, x) in d.redirdevs.iter().enumerate() {
        visit("redirdev", i, &x.info, true);
    }
    let mut next = 1u32;
    for key in want {
        while taken.contains(&next.to_string()) {
            next += 1;
        }
        out.insert(key, next.to_string());
        next += 1;
    }
    out
}

/// The fields QEMU's `-smbios type=N` takes from libvirt's sysinfo entries.
fn smbios_field(ty: u32, name: &str) -> bool {
    let fields: &[&str] = match ty {
        0 => &["vendor", "version", "date", "release"],
        1 => &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "uuid",
            "sku",
            "family",
        ],
        2 => &[
            "manufacturer",
            "product",
            "version",
            "serial",
            "asset",
            "location",
        ],
        3 => &["manufacturer", "version", "serial", "asset", "sku"],
        _ => &[],
    };
    fields.contains(&name)
}

/// `bus`/`nr` of a port on a virtio-serial controller (channels and virtio consoles).
fn virtio_serial_port(j: &mut JsonOpts, address: &Option<Address>) {
    if let Some(Address::VirtioSerial {
        controller,
        bus,
        port,
    }) = address
    {
        j.s("bus", format!("virtio-serial{controller}.{bus}"));
        if let Some(p) = port {
            j.u("nr", *p as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_indexes() {
        assert_eq!(disk_index("vda"), Some(0));
        assert_eq!(disk_index("sdb"), Some(1));
        assert_eq!(disk_index("hdaa"), Some(26));
    }

    #[test]
    fn epoch() {
        assert_eq!(format_epoch(253402300799), "9999-12-31T23:59:59");
        assert_eq!(format_epoch(0), "1970-01-01T00:00:00");
    }
}
