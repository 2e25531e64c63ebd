//! Machine-wide sections: name, machine type, accelerator, CPU, memory, SMP, NUMA,
//! monitor, clock, SMBIOS, kernel, boot and IOMMU (everything before the device list).

use super::*;
use crate::timefmt::format_epoch;

impl Builder<'_> {
    pub(super) fn name(&mut self) {
        let mut o = KvOpts::new();
        o.kv("guest", &self.def.name);
        o.raw("debug-threads=on");
        self.opt("-name", o.build());
    }

    /// `<qemu:deprecation>`: every behavior but `none` hides deprecated output; `reject` and
    /// `crash` also set what QEMU does with deprecated input.
    pub(super) fn compat_deprecated(&mut self) {
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

    pub(super) fn master_key(&mut self) {
        let mut j = JsonOpts::new();
        j.s("qom-type", "secret")
            .s("id", "masterKey0")
            .s("format", "raw")
            .s("file", format!("{}/master-key.aes", self.ctx.lib_dir));
        self.object(&j);
    }

    pub(super) fn feature_state(&self, name: &str) -> Option<String> {
        let f = self.def.features.as_ref()?;
        f.others
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.attr("state").unwrap_or("on").to_string())
    }

    pub(super) fn machine_ram_id(&self) -> Option<String> {
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

    /// Whether the machine type still takes a NUMA node's memory as a plain size
    /// (`-numa node,mem=`), which machines before 5.1 do (libvirt:
    /// virQEMUCapsGetMachineNumaMemSupported).
    fn numa_mem_supported(&self) -> bool {
        let m = self.machine();
        let accel = accel_of(self.def);
        self.caps.accel(accel).is_some_and(|ac| {
            ac.machines
                .iter()
                .find(|x| x.name == m || x.alias.as_deref() == Some(m))
                .is_some_and(|x| x.numa_mem_supported)
        })
    }

    /// Whether NUMA cell `id` needs a memory backend object: hugepages, a `<numatune>`
    /// memnode, a memory access mode or file/memfd memory do (libvirt:
    /// qemuBuildMemoryBackendProps, which reports the others as not needing one). Hugepages
    /// anywhere keep the backend, so that no `-mem-path` is needed.
    fn cell_needs_backend(&self, id: u32, cell: &crate::domain::model::NumaCell) -> bool {
        let mb = self.def.memory_backing.as_ref();
        let memnode = self
            .def
            .numatune
            .as_ref()
            .is_some_and(|t| t.memnodes.iter().any(|m| m.cellid == id));
        let access = cell
            .mem_access
            .as_deref()
            .or(mb.and_then(|m| m.access_mode.as_deref()));
        self.hugepage_kib(Some(id)).is_some()
            || mb.is_some_and(|m| m.hugepages.is_some())
            || memnode
            || access.is_some()
            || matches!(
                mb.and_then(|m| m.source_type.as_deref()),
                Some("file" | "memfd")
            )
    }

    pub(super) fn has_numa(&self) -> bool {
        self.def.cpu.as_ref().is_some_and(|c| !c.numa.is_empty())
    }

    /// Flash firmware images as block nodes; returns the `-machine` properties naming them.
    pub(super) fn pflash(&mut self) -> R<Vec<(String, String)>> {
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
        let ro_loader = loader.readonly.as_deref() == Some("yes");
        let mut images = vec![(code, ro_loader)];
        if let Some(nv) = &os.nvram {
            let src = match (&nv.path, &nv.source) {
                (Some(p), _) => Some(DiskSource {
                    file: Some(p.clone()),
                    ..Default::default()
                }),
                (None, Some(s)) => Some(s.clone()),
                // A template alone: the varstore is created from it in the NVRAM directory,
                // for a read-only loader only (libvirt 9.0 names no varstore for a writable
                // one, and QEMU gets the code flash alone).
                (None, None) if nv.template.is_some() && ro_loader => Some(DiskSource {
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

    /// The loader's own options: a ROM image by `-bios`; for pflash, varstore writes
    /// restricted to SMM when the loader is secure.
    // libvirt: qemuBuildDomainLoaderCommandLine
    pub(super) fn bios(&mut self) {
        let Some(l) = &self.def.os.loader else {
            return;
        };
        if l.ltype.as_deref() == Some("pflash") {
            if l.secure.as_deref() == Some("yes") {
                self.opt("-global", "driver=cfi.pflash01,property=secure,value=on");
            }
        } else if let Some(p) = &l.path {
            self.opt("-bios", p.clone());
        }
    }

    pub(super) fn machine_opts(&mut self, pflash: &[(String, String)]) -> R {
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
        if self.has_launch_security() {
            o.kv(
                "confidential-guest-support",
                super::launch_security::LSEC_ID,
            );
        }
        for (k, v) in pflash {
            o.kv(k, v);
        }
        if self.hmat()?.is_present() {
            o.raw("hmat=on");
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
        // `<bios useserial='yes'/>`: on x86, graphics=off is what turns the firmware's serial
        // console output on; elsewhere it would do other things, so it is x86 only (libvirt:
        // qemuBuildMachineCommandLine).
        if self.is_x86() && self.def.os.bios_useserial.as_deref() == Some("yes") {
            o.raw("graphics=off");
        }
        self.opt("-machine", o.build());
        Ok(())
    }

    pub(super) fn accel(&mut self) {
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

    /// What a start does to the features of a custom x86 CPU (libvirt:
    /// qemuProcessUpdateGuestCPU): features QEMU removed from the model are disabled
    /// explicitly unless the domain names them (virCPUx86Update), and disabled features
    /// QEMU's host CPU does not know are dropped, as they are off anyway
    /// (qemuProcessDropUnknownCPUFeatures).
    fn x86_start_features(
        &self,
        c: &crate::domain::model::Cpu,
        features: &mut Vec<(String, bool)>,
    ) {
        let model = c
            .model
            .as_ref()
            .and_then(|m| crate::capabilities::host::cpu_x86_models::X86Model::find(&m.name));
        if let Some(m) = model {
            for f in m.removed_features() {
                if !features.iter().any(|(n, _)| n == f) {
                    features.push((f.to_string(), false));
                }
            }
        }
        let known = self
            .caps
            .accel(accel_of(self.def))
            .and_then(|a| a.host_cpu.as_ref())
            .map(|h| &h.props);
        if let Some(props) = known.filter(|p| !p.is_empty()) {
            features
                .retain(|(name, on)| *on || props.iter().any(|p| p.name == qemu_cpu_feature(name)));
        }
    }

    /// CPU model name for a QOM type name, through the caps' model list.
    pub(super) fn cpu_name_for_type(&self, typename: &str) -> Option<String> {
        let accel = accel_of(self.def);
        let ac = self.caps.accel(accel)?;
        ac.cpus
            .as_ref()?
            .iter()
            .find(|c| c.typename.as_deref() == Some(typename))
            .map(|c| c.name.clone())
    }

    pub(super) fn default_cpu(&self) -> Option<String> {
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

    pub(super) fn cpu(&mut self) -> R {
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
            let mut features: Vec<(String, bool)> = c
                .features
                .iter()
                .map(|f| {
                    let on = matches!(
                        f.policy.as_deref(),
                        Some("require") | Some("force") | None | Some("optional")
                    );
                    (f.name.clone(), on)
                })
                .collect();
            if mode == "custom" && self.is_x86() {
                self.x86_start_features(c, &mut features);
            }
            for (name, on) in features {
                o.kv(&qemu_cpu_feature(&name), if on { "on" } else { "off" });
            }
        }
        self.cpu_features_domain(&mut o);
        if !o.is_empty() {
            self.opt("-cpu", o.build());
        }
        Ok(())
    }

    /// `<features>` that libvirt expresses as CPU properties.
    pub(super) fn cpu_features_domain(&self, o: &mut KvOpts) {
        // Paravirtual timers first, in the order the domain lists them.
        // libvirt: qemuBuildCpuCommandLine (its timer loop)
        if let Some(c) = &self.def.clock {
            for t in &c.timers {
                match (t.name.as_str(), t.present.as_deref()) {
                    ("kvmclock", Some("yes")) => o.raw("kvmclock=on"),
                    ("kvmclock", Some("no")) => o.raw("kvmclock=off"),
                    ("hypervclock", Some("yes")) => o.raw("hv-time=on"),
                    ("tsc", _) => match t.frequency.as_deref() {
                        Some(f) if f.parse::<u64>().is_ok_and(|f| f > 0) => {
                            o.kv("tsc-frequency", f)
                        }
                        _ => continue,
                    },
                    // The vtimer is adjusted while the VM is paused unless the guest
                    // asked for its ticks to be discarded.
                    ("armvtimer", _) => match t.tickpolicy.as_deref() {
                        Some("delay") => o.raw("kvm-no-adjvtime=off"),
                        Some("discard") => o.raw("kvm-no-adjvtime=on"),
                        _ => continue,
                    },
                    _ => continue,
                };
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
        // The <kvm> features in libvirt's order (hidden, hint-dedicated, poll-control, pv-ipi),
        // whatever order the domain lists them in, then the PMU switch.
        if let Some(kvm) = &f.kvm {
            let state = |name: &str| {
                kvm.items
                    .iter()
                    .find(|i| i.name == name)
                    .and_then(|i| i.state.as_deref())
            };
            if state("hidden") == Some("on") {
                o.raw("kvm=off");
            }
            if state("hint-dedicated") == Some("on") {
                o.raw("kvm-hint-dedicated=on");
            }
            if let Some(s) = state("poll-control") {
                o.kv("kvm-poll-control", s);
            }
            if let Some(s) = state("pv-ipi") {
                o.kv("kvm-pv-ipi", s);
            }
        }
        if let Some(Some(st)) = &f.pmu {
            o.kv("pmu", if st == "off" { "off" } else { "on" });
        }
    }

    /// A Hyper-V panic device is a CPU feature.
    pub(super) fn hv_crash(&self, o: &mut KvOpts) {
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
    pub(super) fn initial_memory_kib(&self) -> u64 {
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

    pub(super) fn memory(&mut self) -> R {
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
        let ctx = self.ctx;
        if let Some(rf) = &ctx.ram_file {
            self.ram_file_backend(rf, mem_kib)?;
        } else if !self.has_numa()
            && let Some(id) = self.machine_ram_id()
        {
            let size = mib_round_up(mem_kib) * 1024 * 1024;
            let (j, tc) = self.ram_backend(&id, size, None)?;
            if let Some(tc) = tc {
                self.object(&tc);
            }
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
        Ok(())
    }

    /// The machine's RAM in the caller's file (`LaunchContext::ram_file`), under the
    /// machine's own RAM id, so that its RAM block is named as without the file (a clone's
    /// block must match its template's). No libvirt counterpart: a guest whose memory the
    /// XML already places (NUMA cells, hugepages, a memoryBacking source or access mode) is
    /// refused rather than placed twice.
    fn ram_file_backend(&mut self, rf: &crate::xml2argv::RamFile, mem_kib: u64) -> R {
        let mb = self.def.memory_backing.as_ref();
        let placed = self.has_numa()
            || mb.is_some_and(|m| {
                m.hugepages.is_some() || m.source_type.is_some() || m.access_mode.is_some()
            });
        let Some(id) = self.machine_ram_id().filter(|_| !placed) else {
            return Err(Xml2ArgvError::Unsupported(
                "guest RAM in a file needs plain memory (no NUMA cells, hugepages, memory \
                 source or access mode) on a machine with a RAM backend"
                    .into(),
            ));
        };
        let mut j = JsonOpts::new();
        j.s("qom-type", "memory-backend-file")
            .s("id", &id)
            .s("mem-path", &rf.path)
            .b("share", rf.shared);
        if self.has("x-use-canonical-path-for-ramblock-id")
            || self.has("memory-backend-file.x-use-canonical-path-for-ramblock-id")
        {
            j.b("x-use-canonical-path-for-ramblock-id", false);
        }
        j.u("size", mib_round_up(mem_kib) * 1024 * 1024);
        self.object(&j);
        Ok(())
    }

    /// The huge page size (KiB) `<memoryBacking>` gives the memory of guest NUMA node `node`
    /// (any node: `None`): the page whose nodeset has the node, else the one without a
    /// nodeset; `None` for ordinary memory (pages of the system's own size are ordinary),
    /// 0 for the host's default huge page size.
    pub(super) fn hugepage_kib(&self, node: Option<u32>) -> Option<u64> {
        let pages = self.def.memory_backing.as_ref()?.hugepages.as_ref()?;
        if pages.is_empty() {
            return Some(0);
        }
        let in_set = |p: &crate::domain::model::HugePage| match (&p.nodeset, node) {
            (None, _) | (Some(_), None) => true,
            (Some(set), Some(id)) => {
                crate::capabilities::cpuset::CpuSet::parse(set).is_ok_and(|v| v.contains(id))
            }
        };
        let chosen = pages
            .iter()
            .find(|p| p.nodeset.is_some() && in_set(p))
            .or_else(|| pages.iter().find(|p| p.nodeset.is_none()))?;
        (chosen.size_kib != 4).then_some(chosen.size_kib)
    }

    /// Huge pages of `kib`, or for 0 the host's default huge page size: the size of the
    /// default hugetlbfs mount, else of the first (libvirt: qemuBuildMemoryGetDefaultPagesize).
    pub(super) fn hugepage_size(&self, kib: u64) -> R<u64> {
        if kib != 0 {
            return Ok(kib);
        }
        let mounts = &self.ctx.hugetlbfs;
        let Some(first) = mounts.first() else {
            return Err(Xml2ArgvError::Internal(
                "hugetlbfs filesystem is not mounted or disabled by administrator config".into(),
            ));
        };
        Ok(mounts.iter().find(|m| m.default).unwrap_or(first).page_kib)
    }

    /// memfd memory from huge pages of `kib` (0: the default size): QEMU asks the kernel
    /// for them directly, no hugetlbfs mount is needed for a given size (libvirt:
    /// qemuBuildMemoryBackendProps' memfd case).
    pub(super) fn memfd_hugetlb(&self, j: &mut JsonOpts, kib: u64) -> R {
        let kib = self.hugepage_size(kib)?;
        j.b("hugetlb", true).u("hugetlbsize", kib * 1024);
        Ok(())
    }

    /// The directory on the host's hugetlbfs mount for pages of `kib` (0: the default huge
    /// page size) where the domain's memory files go (libvirt: qemuGetDomainHupageMemPath,
    /// with qemuBuildMemoryGetDefaultPagesize for an unsized page).
    pub(super) fn hugepage_dir(&self, kib: u64) -> R<String> {
        let mounts = &self.ctx.hugetlbfs;
        let kib = self.hugepage_size(kib)?;
        let Some(mount) = mounts.iter().find(|m| m.page_kib == kib) else {
            return Err(Xml2ArgvError::Internal(format!(
                "Unable to find any usable hugetlbfs mount for {kib} KiB"
            )));
        };
        Ok(format!(
            "{}/libvirt/qemu/{}",
            mount.dir,
            self.ctx.short_name(self.def)
        ))
    }

    /// The memory backend object for guest RAM (`pc.ram`) or one NUMA cell: hugepages
    /// come from a file on the hugetlbfs mount, shared or file-backed memory from a file in
    /// libvirt's RAM directory, memfd when asked, anonymous memory otherwise.
    pub(super) fn ram_backend(
        &self,
        id: &str,
        size: u64,
        cell: Option<(u32, &crate::domain::model::NumaCell)>,
    ) -> R<(JsonOpts, Option<JsonOpts>)> {
        let mut j = JsonOpts::new();
        let mb = self.def.memory_backing.as_ref();
        let hp = self.hugepage_kib(cell.map(|(id, _)| id));
        let access = cell
            .and_then(|(_, c)| c.mem_access.as_deref())
            .or(mb.and_then(|m| m.access_mode.as_deref()));
        let share = match access {
            Some("shared") => Some(true),
            Some("private") => Some(false),
            _ => None,
        };
        let source = mb.and_then(|m| m.source_type.as_deref());
        // A cell's own discard setting, else `<memoryBacking><discard/>` (libvirt:
        // virDomainNumaGetNodeDiscard); only file-backed memory can discard its data.
        let discard = match cell.and_then(|(_, c)| c.discard.as_deref()) {
            Some(d) => Some(d == "yes"),
            None => mb.is_some_and(|m| m.discard).then_some(true),
        };
        // Only the machine's own RAM id keeps its migration-compatible block name.
        let canonical = cell.is_none()
            && (self.has("x-use-canonical-path-for-ramblock-id")
                || self.has("memory-backend-file.x-use-canonical-path-for-ramblock-id"));
        let short = self.ctx.short_name(self.def);
        // memfd before huge pages: memfd memory can itself come from huge pages (libvirt:
        // qemuBuildMemoryBackendProps).
        if source == Some("memfd") {
            j.s("qom-type", "memory-backend-memfd").s("id", id);
            if let Some(size_kib) = hp {
                self.memfd_hugetlb(&mut j, size_kib)?;
            }
            if let Some(sh) = share {
                j.b("share", sh);
            }
            if canonical {
                j.b("x-use-canonical-path-for-ramblock-id", false);
            }
            if hp.is_some() {
                j.b("prealloc", true);
            }
            j.u("size", size);
        } else if let Some(size_kib) = hp {
            j.s("qom-type", "memory-backend-file")
                .s("id", id)
                .s("mem-path", self.hugepage_dir(size_kib)?);
            discard_data(&mut j, discard);
            if let Some(sh) = share {
                j.b("share", sh);
            }
            if canonical {
                j.b("x-use-canonical-path-for-ramblock-id", false);
            }
            j.b("prealloc", true).u("size", size);
        } else if source == Some("file") || share.is_some() {
            j.s("qom-type", "memory-backend-file").s("id", id).s(
                "mem-path",
                format!("{}/{short}/{id}", self.ctx.memory_backing_dir),
            );
            discard_data(&mut j, discard);
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
        let binding = self.host_binding(cell.map(|(id, _)| id), None)?;
        let tc = self.bind_backend(&mut j, id, hp.is_some(), binding);
        Ok((j, tc))
    }

    /// The host NUMA nodes and policy guest memory of node `node` (guest RAM without NUMA:
    /// `None`) is bound to: `explicit` nodes (a memory module's own nodemask, bound strictly),
    /// else the `<numatune>` memnode of that node, else `<numatune><memory>`; none for the
    /// `restrictive` mode, which leaves it to cgroups (libvirt: qemuBuildMemoryBackendProps).
    pub(super) fn host_binding(
        &self,
        node: Option<u32>,
        explicit: Option<&str>,
    ) -> R<Option<(Vec<u32>, &'static str)>> {
        let nt = self.def.numatune.as_ref();
        let (mode, set) = match explicit {
            Some(set) => (Some("strict"), Some(set)),
            None => {
                let memnode =
                    node.and_then(|n| nt.and_then(|t| t.memnodes.iter().find(|m| m.cellid == n)));
                match memnode {
                    Some(m) => (m.mode.as_deref(), m.nodeset.as_deref()),
                    None => match nt.and_then(|t| t.memory.as_ref()) {
                        Some(m) if m.placement.as_deref() != Some("auto") => {
                            (m.mode.as_deref(), m.nodeset.as_deref())
                        }
                        _ => (None, None),
                    },
                }
            }
        };
        let Some(set) = set else { return Ok(None) };
        let nodes: Vec<u32> = parse_nodeset(set)?;
        // Even memory the cgroups place (restrictive) must name nodes the host has.
        self.nodes_available(&nodes)?;
        let policy = match mode.unwrap_or("strict") {
            "strict" => "bind",
            "preferred" => "preferred",
            "interleave" => "interleave",
            _ => return Ok(None),
        };
        Ok(Some((nodes, policy)))
    }

    /// Every node of `nodes` exists on the host (libvirt: virNumaNodesetIsAvailable).
    pub(super) fn nodes_available(&self, nodes: &[u32]) -> R {
        match nodes.iter().find(|n| !self.ctx.host_numa_nodes.contains(n)) {
            Some(n) => Err(Xml2ArgvError::Unsupported(format!(
                "NUMA node {n} is unavailable"
            ))),
            None => Ok(()),
        }
    }

    /// The `<numatune>` nodesets, `<memory>` first and then each memnode, all name host
    /// nodes (libvirt: virDomainNumatuneNodesetIsAvailable).
    fn numatune_available(&self) -> R {
        let Some(nt) = &self.def.numatune else {
            return Ok(());
        };
        let memory = nt
            .memory
            .as_ref()
            .filter(|m| m.placement.as_deref() != Some("auto"))
            .and_then(|m| m.nodeset.as_deref());
        for set in memory
            .into_iter()
            .chain(nt.memnodes.iter().filter_map(|m| m.nodeset.as_deref()))
        {
            self.nodes_available(&parse_nodeset(set)?)?;
        }
        Ok(())
    }

    /// Bind backend `j` (object `id`) to host nodes; memory preallocated there is touched by
    /// threads on those nodes, through a thread context where QEMU has one.
    pub(super) fn bind_backend(
        &self,
        j: &mut JsonOpts,
        id: &str,
        prealloc: bool,
        binding: Option<(Vec<u32>, &'static str)>,
    ) -> Option<JsonOpts> {
        let (nodes, policy) = binding?;
        let list = serde_json::Value::from(nodes);
        j.v("host-nodes", list.clone()).s("policy", policy);
        if !(prealloc && self.has("thread-context")) {
            return None;
        }
        let tc_id = format!("tc-{id}");
        let mut tc = JsonOpts::new();
        tc.s("qom-type", "thread-context")
            .s("id", tc_id.clone())
            .v("node-affinity", list);
        j.s("prealloc-context", tc_id);
        Some(tc)
    }

    pub(super) fn smp(&mut self) {
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

    pub(super) fn numa(&mut self) -> R {
        let Some(cpu) = &self.def.cpu else {
            return Ok(());
        };
        if cpu.numa.is_empty() {
            return Ok(());
        }
        self.numatune_available()?;
        let hmat = self.hmat()?;
        // The first cell with vCPUs initiates for cells that have no better one (libvirt:
        // qemuBuildNumaCommandLine). Prepare gives vCPUs no cell names to cell 0, so
        // one always has some and libvirt's "At least one NUMA node has to have CPUs"
        // cannot happen here.
        let has_cpus = |c: &crate::domain::model::NumaCell| {
            c.cpus.as_deref().is_some_and(|s| !s.trim().is_empty())
        };
        let master = cpu
            .numa
            .iter()
            .enumerate()
            .find(|(_, c)| has_cpus(c))
            .map(|(i, c)| c.id.unwrap_or(i as u32));
        // Backends for every cell, unless the machine takes plain sizes and no cell needs one
        // (libvirt: qemuBuildNumaCommandLine's needBackend).
        let need_backend = !self.numa_mem_supported()
            || hmat.is_present()
            || cpu
                .numa
                .iter()
                .enumerate()
                .any(|(i, c)| self.cell_needs_backend(c.id.unwrap_or(i as u32), c));
        if !need_backend
            && self
                .def
                .memory_backing
                .as_ref()
                .and_then(|m| m.allocation_mode.as_deref())
                == Some("immediate")
        {
            // libvirt: qemuBuildMemPathStr
            self.arg("-mem-prealloc");
        }
        for (i, cell) in cpu.numa.iter().enumerate() {
            let id = cell.id.unwrap_or(i as u32);
            let size = cell.memory_kib.div_ceil(1024) * 1024 * 1024;
            if need_backend {
                let (j, tc) = self.ram_backend(&format!("ram-node{id}"), size, Some((id, cell)))?;
                if let Some(tc) = tc {
                    self.object(&tc);
                }
                self.object(&j);
            }
            let mut o = KvOpts::new();
            o.raw("node");
            o.kv("nodeid", id);
            if let Some(cpus) = &cell.cpus {
                for part in cpus.split(',') {
                    o.kv("cpus", part);
                }
            }
            if hmat.is_present() {
                let initiator = hmat.initiator(id, has_cpus(cell)).or(master);
                o.kv("initiator", initiator.unwrap_or(id));
            }
            if need_backend {
                o.kv("memdev", format!("ram-node{id}"));
            } else {
                o.kv("mem", cell.memory_kib / 1024);
            }
            self.opt("-numa", o.build());
        }
        if hmat.is_present() {
            self.hmat_options(&hmat, cpu);
        }
        Ok(())
    }

    pub(super) fn monitor(&mut self) {
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

    pub(super) fn clock(&mut self) {
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
        for t in clock
            .iter()
            .flat_map(|c| &c.timers)
            .filter(|t| t.name == "rtc")
        {
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
        self.opt("-rtc", o.build());
        // The other timers follow, in the definition's order (libvirt: qemuBuildClockCommandLine).
        for t in clock.iter().flat_map(|c| &c.timers) {
            match t.name.as_str() {
                "pit" => match t.tickpolicy.as_deref() {
                    Some("delay") => self.opt("-global", "kvm-pit.lost_tick_policy=delay"),
                    Some("catchup") => self.opt("-global", "kvm-pit.lost_tick_policy=slew"),
                    Some("discard") => self.opt("-global", "kvm-pit.lost_tick_policy=discard"),
                    _ => {}
                },
                // QEMU has the HPET on by default; before the machine's `hpet` property
                // (QEMU 8.0) the way to turn it off is `-no-hpet`.
                "hpet" if t.present.as_deref() == Some("no") && !self.has("machine-hpet") => {
                    self.arg("-no-hpet");
                }
                _ => {}
            }
        }
    }

    pub(super) fn no_shutdown(&mut self) {
        self.arg("-no-shutdown");
    }

    pub(super) fn pm_and_acpi(&mut self) {
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
    pub(super) fn smbios(&mut self) {
        if self.def.os.smbios_mode.as_deref() != Some("sysinfo") {
            return;
        }
        let Some(si) = self.def.sysinfo.iter().find(|s| s.stype == "smbios") else {
            return;
        };
        // Tables in SMBIOS type order, fields in libvirt's order; empty entries are absent
        // and a table without a field is left out (libvirt: qemuBuildSmbiosCommandLine).
        for (block, ty) in [
            ("bios", 0),
            ("system", 1),
            ("baseBoard", 2),
            ("chassis", 3),
            ("oemStrings", 11),
        ] {
            for (_, entries) in si.blocks.iter().filter(|(b, _)| b == block) {
                let mut o = KvOpts::new();
                o.raw(&format!("type={ty}"));
                let mut any = false;
                if ty == 11 {
                    for e in entries.iter().filter(|e| e.name.is_none()) {
                        o.kv("value", &e.value);
                        any = true;
                    }
                } else {
                    // Entry names become option keys: only SMBIOS's own fields, so a name
                    // cannot write another option.
                    for field in smbios_fields(ty) {
                        let value = entries
                            .iter()
                            .find(|e| e.name.as_deref() == Some(field) && !e.value.is_empty());
                        if let Some(e) = value {
                            o.kv(field, &e.value);
                            any = true;
                        }
                    }
                }
                if any {
                    self.opt("-smbios", o.build());
                }
            }
        }
    }

    pub(super) fn kernel(&mut self) {
        let os = &self.def.os;
        let items = [
            ("-kernel", os.kernel.clone()),
            ("-initrd", os.initrd.clone()),
            ("-append", os.cmdline.clone()),
            ("-dtb", os.dtb.clone()),
        ];
        // An empty element is no element (libvirt reads `<kernel/>` as absent).
        for (o, v) in items {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                self.opt(o, v);
            }
        }
    }

    pub(super) fn boot(&mut self) {
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

    pub(super) fn iothreads(&mut self) {
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
        // The thread pool of QEMU's main loop (`<defaultiothread>`).
        if let Some((min, max)) = self.def.defaultiothread
            && (min.is_some() || max.is_some())
        {
            let mut j = JsonOpts::new();
            j.s("qom-type", "main-loop").s("id", "main-loop");
            if let Some(m) = min {
                j.i("thread-pool-min", m);
            }
            if let Some(m) = max {
                j.i("thread-pool-max", m);
            }
            self.object(&j);
        }
    }

    pub(super) fn host_model_cpu(&self) -> Option<crate::capabilities::domcaps::x86::DecodedCpu> {
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

/// `discard-data` of a file memory backend, when the memory is set to discard or keep it.
pub(super) fn discard_data(j: &mut JsonOpts, discard: Option<bool>) {
    if let Some(d) = discard {
        j.b("discard-data", d);
    }
}

/// The node ids of a nodeset string (`0-3,^2`).
fn parse_nodeset(set: &str) -> R<Vec<u32>> {
    crate::capabilities::cpuset::CpuSet::parse(set)
        .map(|n| n.iter().collect())
        .map_err(|e| Xml2ArgvError::Xml(format!("invalid NUMA nodeset '{set}': {e}")))
}
