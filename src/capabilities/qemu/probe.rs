//! The probe conversation: libvirt 9.0.0's exact command sequence, over any session source.
//!
//! A probe is one accelerated session (`-machine none,accel=kvm:tcg`) asking everything, and,
//! when that session ran under KVM, a second TCG-only session asking what differs per
//! accelerator (CPU models, host CPU expansion, machines). Which commands are sent depends on
//! earlier answers (QOM types present, commands present, the target architecture), exactly as
//! in libvirt, so that recorded `.replies` conversations replay command for command.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::flags::{self, Prop};
use super::schema::Schema;
use super::{
    Accel, AccelCaps, CpuModel, CpuProp, CpuPropValue, CpuUsable, GicCap, HostCpu, Machine,
    QemuCaps, SevCaps, SgxCaps, SgxSection, arch_from_qemu,
};
use crate::capabilities::CapsError;
use crate::qmp::replay::Replayer;
use crate::qmp::{Conversation, Monitor, MonitorOptions, QmpError};

/// A source of QEMU monitor sessions for one emulator.
pub trait SessionOpener {
    /// The emulator path reported in [`QemuCaps::emulator`] and in errors.
    fn emulator(&self) -> &str;

    /// Start a session and return its monitor (greeting read, not yet negotiated).
    /// `tcg_only` asks for the second session, with KVM off.
    fn open(&mut self, tcg_only: bool) -> impl Future<Output = Result<Monitor, CapsError>> + Send;

    /// End the current session (stop the process, if any).
    fn close(&mut self) -> impl Future<Output = ()> + Send;

    /// Turn a monitor failure into an error that says why, with what the source knows
    /// (exit status and stderr of a process, the first mismatch of a replay).
    fn explain(&mut self, err: QmpError) -> impl Future<Output = CapsError> + Send;
}

/// Run the full probe over `sessions`.
pub async fn probe_sessions<S: SessionOpener>(sessions: &mut S) -> Result<QemuCaps, CapsError> {
    let emulator = sessions.emulator().to_string();
    let mut p = Probe::new(emulator);

    let mut mon = sessions.open(false).await?;
    let r = p.main_session(&mut mon).await;
    drop(mon);
    end_session(sessions, r).await?;

    // A second, TCG-only session is needed when the first one ran accelerated and the
    // binary can also run without acceleration.
    if p.caps.kvm && p.caps.flags.contains("tcg") {
        let mut mon = sessions.open(true).await?;
        let r = p.tcg_session(&mut mon).await;
        drop(mon);
        end_session(sessions, r).await?;
    }
    Ok(p.finish())
}

/// Close a session, explaining a monitor failure with what the source knows about it.
async fn end_session<S: SessionOpener>(
    sessions: &mut S,
    r: Result<(), Fail>,
) -> Result<(), CapsError> {
    let r = match r {
        Ok(()) => Ok(()),
        Err(Fail::Qmp(q)) => Err(sessions.explain(q).await),
        Err(Fail::Caps(c)) => Err(c),
    };
    sessions.close().await;
    r
}

enum Fail {
    Qmp(QmpError),
    Caps(CapsError),
}

impl From<QmpError> for Fail {
    fn from(e: QmpError) -> Self {
        Fail::Qmp(e)
    }
}

/// Run a command; a QEMU error reply is `Ok(None)` (the caller decides what absence means),
/// transport failures are errors.
async fn ask(mon: &mut Monitor, cmd: &str, args: Option<Value>) -> Result<Option<Value>, Fail> {
    match mon.execute(cmd, args).await {
        Ok(v) => Ok(Some(v)),
        Err(QmpError::Command { .. }) => Ok(None),
        Err(e) => Err(Fail::Qmp(e)),
    }
}

/// A JSON number as u32, saturating (QEMU reports e.g. INT32_MAX CPUs for pseries).
fn u32_of(v: &Value) -> u32 {
    v.as_u64()
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn strs<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(move |e| e.get(key).and_then(Value::as_str))
}

fn is_x86(a: &str) -> bool {
    matches!(a, "x86_64" | "i686")
}

fn is_arm(a: &str) -> bool {
    matches!(a, "armv6l" | "armv7l" | "armv7b" | "aarch64")
}

fn is_s390(a: &str) -> bool {
    matches!(a, "s390" | "s390x")
}

/// libvirt's spelling of ppc64 CPU models, which QEMU 2.11 lower-cased.
const PPC64_MODELS: &[&str] = &[
    "POWER6",
    "POWER7",
    "POWER8",
    "POWER9",
    "POWER10",
    "POWERPC_e5500",
    "POWERPC_e6500",
];

/// The machine libvirt 9.0 prefers per arch: the historical first machine of each target, so
/// that QEMU reordering or changing its default does not change what new guests get. QEMU's
/// own default is used when this one is compiled out.
fn preferred_machine(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "alpha" => "clipper",
        "armv6l" | "armv7l" | "armv7b" | "aarch64" => "integratorcp",
        "cris" => "axis-dev88",
        "i686" | "x86_64" => "pc",
        "lm32" => "lm32-evr",
        "m68k" => "mcf5208evb",
        "microblaze" | "microblazeel" => "petalogix-s3adsp1800",
        "mips" | "mipsel" | "mips64" | "mips64el" => "malta",
        "or32" => "or1k-sim",
        "ppc" | "ppcle" => "g3beige",
        "ppc64" | "ppc64le" => "pseries",
        "ppcemb" => "bamboo",
        "riscv32" | "riscv64" => "spike_v1.10",
        "s390x" => "s390-ccw-virtio",
        "sh4" | "sh4eb" => "shix",
        "sparc" => "SS-5",
        "sparc64" => "sun4u",
        "unicore32" => "puv3",
        "xtensa" | "xtensaeb" => "sim",
        _ => return None,
    })
}

/// libvirt's Hyper-V enlightenment names, in its order, with QEMU's property names.
const HYPERV: &[(&str, &str)] = &[
    ("relaxed", "hv-relaxed"),
    ("vapic", "hv-vapic"),
    ("spinlocks", "hv-spinlocks"),
    ("vpindex", "hv-vpindex"),
    ("runtime", "hv-runtime"),
    ("synic", "hv-synic"),
    ("stimer", "hv-stimer"),
    ("reset", "hv-reset"),
    ("vendor_id", "hv-vendor-id"),
    ("frequencies", "hv-frequencies"),
    ("reenlightenment", "hv-reenlightenment"),
    ("tlbflush", "hv-tlbflush"),
    ("ipi", "hv-ipi"),
    ("evmcs", "hv-evmcs"),
    ("avic", "hv-avic"),
];

struct Probe {
    caps: QemuCaps,
}

impl Probe {
    fn new(emulator: String) -> Self {
        Probe {
            caps: QemuCaps {
                emulator,
                version: 0,
                package: None,
                arch: String::new(),
                kvm: false,
                accels: Vec::new(),
                commands: BTreeSet::new(),
                qom_types: BTreeSet::new(),
                flags: BTreeSet::new(),
                gic: Vec::new(),
                sev: None,
                sgx: None,
                hyperv: None,
            },
        }
    }

    fn err(&self, msg: impl Into<String>) -> Fail {
        Fail::Caps(CapsError::Probe {
            emulator: self.caps.emulator.clone(),
            msg: msg.into(),
        })
    }

    fn unsupported(&self, msg: impl Into<String>) -> Fail {
        Fail::Caps(CapsError::Unsupported {
            emulator: self.caps.emulator.clone(),
            msg: msg.into(),
        })
    }

    fn set(&mut self, f: &str) {
        self.caps.flags.insert(f.to_string());
    }

    fn has(&self, f: &str) -> bool {
        self.caps.flags.contains(f)
    }

    /// Whether QEMU's command list names `cmd`. Target-specific queries are sent only then:
    /// a binary built for several targets may list another target's commands, so what they
    /// answer still decides (an error reply counts as absent).
    fn knows(&self, cmd: &str) -> bool {
        self.caps.commands.contains(cmd)
    }

    fn accel_mut(&mut self, a: Accel) -> &mut AccelCaps {
        let i = match self.caps.accels.iter().position(|x| x.accel == a) {
            Some(i) => i,
            None => {
                self.caps.accels.push(AccelCaps {
                    accel: a,
                    host_cpu: None,
                    cpus: None,
                    machines: Vec::new(),
                });
                self.caps.accels.sort_by_key(|x| x.accel);
                self.caps
                    .accels
                    .iter()
                    .position(|x| x.accel == a)
                    .unwrap_or(0)
            }
        };
        &mut self.caps.accels[i]
    }

    fn finish(self) -> QemuCaps {
        self.caps
    }

    async fn main_session(&mut self, mon: &mut Monitor) -> Result<(), Fail> {
        mon.negotiate().await?;

        let v = mon.execute("query-version", None).await?;
        let q = &v["qemu"];
        let (Some(major), Some(minor), Some(micro)) = (
            q["major"].as_u64(),
            q["minor"].as_u64(),
            q["micro"].as_u64(),
        ) else {
            return Err(self.err(format!("malformed query-version reply: {v}")));
        };
        if (major, minor) < (4, 2) {
            return Err(self.unsupported(format!(
                "QEMU version >= 4.2.0 is required, but {major}.{minor}.{micro} found"
            )));
        }
        self.caps.version = major * 1_000_000 + minor * 1000 + micro;
        self.caps.package = v["package"].as_str().map(str::to_string);

        let t = mon.execute("query-target", None).await?;
        let target = t["arch"].as_str().unwrap_or_default();
        let Some(arch) = arch_from_qemu(target) else {
            return Err(self.unsupported(format!(
                "target '{target}' is not an architecture libvirt knows"
            )));
        };
        self.caps.arch = arch.to_string();

        // -enable-fips was deprecated in 5.2 (FIPS mode follows the crypto library since).
        if self.caps.version < 5_002_000 {
            self.set("enable-fips");
        }

        if let Some(reply) = ask(mon, "query-qmp-schema", None).await? {
            let schema = Schema::new(&reply);
            for (q, f) in flags::SCHEMA_QUERIES {
                if schema.path_exists(q) {
                    self.set(f);
                }
            }
        }

        if let Some(cmds) = ask(mon, "query-commands", None).await? {
            self.caps.commands = strs(&cmds, "name").map(str::to_string).collect();
            for (c, f) in flags::COMMANDS {
                if self.caps.commands.contains(*c) {
                    self.set(f);
                }
            }
        }

        if let Some(k) = ask(mon, "query-kvm", None).await?
            && k["present"].as_bool() == Some(true)
            && k["enabled"].as_bool() == Some(true)
        {
            self.caps.kvm = true;
            self.set("kvm");
        }
        let accel = if self.caps.kvm {
            Accel::Kvm
        } else {
            Accel::Tcg
        };

        if let Some(types) = ask(mon, "qom-list-types", None).await? {
            self.caps.qom_types = strs(&types, "name").map(str::to_string).collect();
            for (t, f) in flags::OBJECT_TYPES {
                if self.caps.qom_types.contains(*t) {
                    self.set(f);
                }
            }
        }

        for (dev, cond, props) in flags::DEVICE_PROPS {
            if cond.is_some_and(|c| !self.has(c)) {
                continue;
            }
            // DeviceNotFound is normal: the table covers devices of every target.
            let args = json!({ "typename": dev });
            let Some(list) = ask(mon, "device-list-properties", Some(args)).await? else {
                continue;
            };
            self.device_props(&list, props);
        }

        for (obj, cond, props) in flags::OBJECT_PROPS {
            if cond.is_some_and(|c| !self.has(c)) {
                continue;
            }
            let args = json!({ "typename": obj });
            let Some(list) = ask(mon, "qom-list-properties", Some(args)).await? else {
                continue;
            };
            self.string_props(&list, props);
        }

        self.machines(mon, accel).await?;

        for (machine, props) in flags::MACHINE_PROPS {
            let machines = &self.accel_mut(accel).machines;
            let canon = machines
                .iter()
                .find(|m| m.alias.as_deref() == Some(machine))
                .map(|m| m.name.clone())
                .unwrap_or_else(|| machine.to_string());
            if canon != "none" && !machines.iter().any(|m| m.name == canon) {
                continue;
            }
            // The QOM type of a machine is its name with a -machine suffix.
            let args = json!({ "typename": format!("{canon}-machine") });
            if let Some(list) = ask(mon, "qom-list-properties", Some(args)).await? {
                self.string_props(&list, props);
            }
        }

        self.cpu_definitions(mon, accel).await?;

        if let Some(models) = ask(mon, "query-tpm-models", None).await? {
            for (m, f) in flags::TPM_MODELS {
                if models.as_array().into_iter().flatten().any(|x| x == m) {
                    self.set(f);
                }
            }
            if let Some(types) = ask(mon, "query-tpm-types", None).await? {
                for (t, f) in flags::TPM_TYPES {
                    if types.as_array().into_iter().flatten().any(|x| x == t) {
                        self.set(f);
                    }
                }
            }
        }

        if let Some(opts) = ask(mon, "query-command-line-options", None).await? {
            for (opt, param, f) in flags::COMMAND_LINE {
                let Some(o) = opts
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| o["option"] == *opt)
                else {
                    continue;
                };
                let found = match param {
                    None => true,
                    Some(p) => strs(&o["parameters"], "name").any(|n| n == *p),
                };
                if found {
                    self.set(f);
                }
            }
        }

        if let Some(caps) = ask(mon, "query-migrate-capabilities", None).await? {
            let have: Vec<&str> = strs(&caps, "capability").collect();
            for (c, f) in flags::MIGRATION {
                if have.contains(c) {
                    self.set(f);
                }
            }
        }

        if is_arm(&self.caps.arch)
            && self.knows("query-gic-capabilities")
            && let Some(g) = ask(mon, "query-gic-capabilities", None).await?
        {
            self.caps.gic = g
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some(GicCap {
                        version: u32::try_from(c["version"].as_u64()?).ok()?,
                        kernel: c["kernel"].as_bool().unwrap_or(false),
                        emulated: c["emulated"].as_bool().unwrap_or(false),
                    })
                })
                .collect();
        }

        // A binary may know the SEV/SGX objects without the host supporting them: an error
        // reply means "not here", and the flag goes away.
        if self.has("sev-guest") && self.knows("query-sev-capabilities") {
            match ask(mon, "query-sev-capabilities", None).await? {
                Some(s) => {
                    self.caps.sev = Some(SevCaps {
                        cbitpos: u32_of(&s["cbitpos"]),
                        reduced_phys_bits: u32_of(&s["reduced-phys-bits"]),
                        pdh: s["pdh"].as_str().unwrap_or_default().to_string(),
                        cert_chain: s["cert-chain"].as_str().unwrap_or_default().to_string(),
                        cpu0_id: s["cpu0-id"].as_str().map(str::to_string),
                    })
                }
                None => {
                    self.caps.flags.remove("sev-guest");
                }
            }
        }
        if self.has("sgx-epc") && self.knows("query-sgx-capabilities") {
            match ask(mon, "query-sgx-capabilities", None).await? {
                Some(s) => {
                    self.caps.sgx = Some(SgxCaps {
                        flc: s["flc"].as_bool().unwrap_or(false),
                        sgx1: s["sgx1"].as_bool().unwrap_or(false),
                        sgx2: s["sgx2"].as_bool().unwrap_or(false),
                        section_size: s["section-size"].as_u64().unwrap_or(0) / 1024,
                        sections: s["sections"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|x| SgxSection {
                                node: u32_of(&x["node"]),
                                size: x["size"].as_u64().unwrap_or(0) / 1024,
                            })
                            .collect(),
                    })
                }
                None => {
                    self.caps.flags.remove("sgx-epc");
                }
            }
        }

        self.derived_flags();

        self.host_cpu(mon, accel).await
    }

    async fn tcg_session(&mut self, mon: &mut Monitor) -> Result<(), Fail> {
        mon.negotiate().await?;
        self.cpu_definitions(mon, Accel::Tcg).await?;
        self.host_cpu(mon, Accel::Tcg).await?;
        self.machines(mon, Accel::Tcg).await
    }

    /// Flags implied by the arch or by combinations of other flags.
    fn derived_flags(&mut self) {
        let arch = self.caps.arch.clone();
        if is_x86(&arch) {
            self.set("no-acpi");
            self.set("cpu-cache");
            // -no-hpet is how HPET is turned off until QEMU has the machine property.
            if !self.has("machine-hpet") {
                self.set("no-hpet");
            }
        }
        if arch == "aarch64" {
            self.set("no-acpi");
            self.set("aarch64-off");
            self.set("gic-version");
        }
        if is_s390(&arch) {
            self.set("aes-key-wrap");
            self.set("dea-key-wrap");
            self.set("loadparm");
        }
        if self.has("cpu-unavailable-features") {
            self.set("canonical-cpu-features");
        }
        // The 'esp' SCSI controller is built into these machines only.
        if matches!(arch.as_str(), "sparc" | "m68k" | "mips") {
            self.set("ncr53c90");
        }
        if self.has("blockdev-reopen") && self.has("migration-param.block-bitmap-mapping") {
            self.set("incremental-backup");
        }
        // -compat shows up nowhere in introspection; QAPI-fied -object came with it.
        if self.has("object.qapified") {
            self.set("compat-deprecated");
        }
    }

    fn device_props(&mut self, list: &Value, props: &[Prop]) {
        for p in props {
            let Some(entry) = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == p.name)
            else {
                continue;
            };
            self.set(p.flag);
            if let Some(f) = p.default_off_flag
                && entry.get("default-value").and_then(Value::as_bool) == Some(false)
            {
                self.set(f);
            }
        }
    }

    fn string_props(&mut self, list: &Value, props: &[(&str, &str)]) {
        let names: Vec<&str> = strs(list, "name").collect();
        for (n, f) in props {
            if names.contains(n) {
                self.set(f);
            }
        }
    }

    async fn machines(&mut self, mon: &mut Monitor, accel: Accel) -> Result<(), Fail> {
        let Some(list) = ask(mon, "query-machines", None).await? else {
            return Err(self.err("query-machines failed"));
        };
        let mut machines = Vec::new();
        let mut preferred = None;
        let mut default = None;
        let pref = preferred_machine(&self.caps.arch);
        for m in list.as_array().into_iter().flatten() {
            let Some(name) = m["name"].as_str() else {
                continue;
            };
            if name == "none" {
                continue;
            }
            let alias = m["alias"].as_str().map(str::to_string);
            let mach = Machine {
                name: name.to_string(),
                alias,
                max_cpus: u32_of(&m["cpu-max"]),
                hotplug_cpus: m["hotpluggable-cpus"].as_bool().unwrap_or(false),
                default: m["is-default"].as_bool().unwrap_or(false),
                default_cpu: m["default-cpu-type"].as_str().map(str::to_string),
                numa_mem_supported: m["numa-mem-supported"].as_bool().unwrap_or(false),
                default_ram_id: m["default-ram-id"].as_str().map(str::to_string),
                deprecated: m["deprecated"].as_bool().unwrap_or(false),
            };
            if pref.is_some() && (mach.alias.as_deref() == pref || Some(name) == pref) {
                preferred = Some(machines.len());
            }
            if mach.default {
                default = Some(machines.len());
            }
            machines.push(mach);
        }
        // The preferred (else QEMU's default) machine goes first; QEMU's order otherwise.
        if let Some(i) = preferred.or(default) {
            let m = machines.remove(i);
            machines.insert(0, m);
        }
        self.accel_mut(accel).machines = machines;
        Ok(())
    }

    async fn cpu_definitions(&mut self, mon: &mut Monitor, accel: Accel) -> Result<(), Fail> {
        if !self.has("query-cpu-definitions") {
            return Ok(());
        }
        let Some(list) = ask(mon, "query-cpu-definitions", None).await? else {
            return Ok(());
        };
        let ppc64 = matches!(self.caps.arch.as_str(), "ppc64" | "ppc64le");
        let mut cpus = Vec::new();
        for c in list.as_array().into_iter().flatten() {
            let Some(mut name) = c["name"].as_str().map(str::to_string) else {
                continue;
            };
            if ppc64 && let Some(m) = PPC64_MODELS.iter().find(|m| m.eq_ignore_ascii_case(&name)) {
                name = m.to_string();
            }
            let (usable, blockers) = match c.get("unavailable-features").and_then(Value::as_array) {
                None => (CpuUsable::Unknown, Vec::new()),
                Some(b) if b.is_empty() => (CpuUsable::Yes, Vec::new()),
                Some(b) => (
                    CpuUsable::No,
                    b.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ),
            };
            cpus.push(CpuModel {
                name,
                // Some targets (ppc64) report an empty typename: that is no typename.
                typename: c["typename"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
                usable,
                blockers,
                deprecated: c["deprecated"].as_bool().unwrap_or(false),
            });
        }
        if cpus.iter().any(|c| c.name == "max") {
            self.set("cpu-max");
        }
        self.accel_mut(accel).cpus = Some(cpus);
        Ok(())
    }

    /// `query-cpu-model-expansion`; `None` when QEMU cannot expand this model here.
    async fn expand(
        &self,
        mon: &mut Monitor,
        kind: &str,
        model: Value,
    ) -> Result<Option<(String, Vec<(String, Value)>)>, Fail> {
        let args = json!({ "type": kind, "model": model });
        let Some(r) = ask(mon, "query-cpu-model-expansion", Some(args)).await? else {
            return Ok(None);
        };
        let Some(name) = r["model"]["name"].as_str() else {
            return Ok(None);
        };
        let props = match r["model"].get("props").and_then(Value::as_object) {
            Some(p) => p.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None if is_s390(&self.caps.arch) => Vec::new(),
            // Other targets always report features; an expansion without them is useless.
            None => return Ok(None),
        };
        Ok(Some((name.to_string(), props)))
    }

    async fn host_cpu(&mut self, mon: &mut Monitor, accel: Accel) -> Result<(), Fail> {
        if !self.has("query-cpu-model-expansion") {
            return Ok(());
        }
        let accelerated = accel != Accel::Tcg;
        let model = if accelerated { "host" } else { "max" };
        let arch = self.caps.arch.clone();
        let canonical = self.has("canonical-cpu-features");
        // Static expansion gives QEMU's canonical feature spellings; older x86 QEMU needs a
        // full expansion of that result to see all spellings. ARM has no static models.
        let (kind, static_full) = if is_x86(&arch) && !canonical {
            ("static", true)
        } else if is_arm(&arch) {
            ("full", false)
        } else {
            ("static", false)
        };

        let mut info = self
            .expand_maybe_full(mon, kind, static_full, json!({ "name": model }))
            .await?;
        let mut migratability = false;
        if let (Some((_, props)), true) = (&mut info, is_x86(&arch)) {
            let nm = self
                .expand_maybe_full(
                    mon,
                    kind,
                    static_full,
                    json!({ "name": model, "props": { "migratable": false } }),
                )
                .await?;
            if let Some((_, nm_props)) = nm {
                merge_migratability(props, &nm_props);
                migratability = true;
            }
        }
        let info = info.map(|(name, props)| HostCpu {
            model: name,
            migratability,
            props: props
                .into_iter()
                .filter_map(|(name, v, migratable)| {
                    let value = match v {
                        Value::Bool(b) => CpuPropValue::Boolean(b),
                        Value::String(s) => CpuPropValue::String(s),
                        Value::Number(n) => CpuPropValue::Number(n.as_i64()?),
                        _ => return None,
                    };
                    Some(CpuProp {
                        name,
                        value,
                        migratable,
                    })
                })
                .collect(),
        });

        if accelerated && (is_x86(&arch) || is_arm(&arch)) {
            let full = self
                .expand(
                    mon,
                    "full",
                    json!({ "name": model, "props": { "migratable": false, "hv-passthrough": true } }),
                )
                .await?;
            if let Some((_, props)) = full {
                let have: Vec<&str> = HYPERV
                    .iter()
                    .filter(|(_, q)| {
                        props.iter().any(|(n, v)| {
                            n == q
                                && match v {
                                    Value::Bool(b) => *b,
                                    Value::Number(n) => n.as_f64().is_some_and(|x| x > 0.0),
                                    Value::String(_) => true,
                                    _ => false,
                                }
                        })
                    })
                    .map(|(l, _)| *l)
                    .collect();
                // No enlightenments means an older QEMU that ignored hv-passthrough.
                if !have.is_empty() {
                    self.caps.hyperv = Some(have.into_iter().map(str::to_string).collect());
                }
            }
        }

        self.accel_mut(accel).host_cpu = info;
        Ok(())
    }

    /// An expansion, followed for `static_full` by a full expansion of its result; returns
    /// properties with an (initially unknown) migratability.
    #[allow(clippy::type_complexity)]
    async fn expand_maybe_full(
        &self,
        mon: &mut Monitor,
        kind: &str,
        static_full: bool,
        model: Value,
    ) -> Result<Option<(String, Vec<(String, Value, Option<bool>)>)>, Fail> {
        let Some((mut name, mut props)) = self.expand(mon, kind, model).await? else {
            return Ok(None);
        };
        if static_full {
            let m = json!({ "name": name, "props": props.iter().cloned().collect::<serde_json::Map<_, _>>() });
            match self.expand(mon, "full", m).await? {
                Some((n, p)) => {
                    name = n;
                    props = p;
                }
                None => return Ok(None),
            }
        }
        Ok(Some((
            name,
            props.into_iter().map(|(n, v)| (n, v, None)).collect(),
        )))
    }
}

/// Combine the migratable expansion with the non-migratable one: a feature on in both is
/// migratable; on only without migratability is reported on but not migratable.
fn merge_migratability(
    props: &mut [(String, Value, Option<bool>)],
    nm: &[(String, Value, Option<bool>)],
) {
    for (name, nv, _) in nm {
        let Some(p) = props.iter_mut().find(|p| &p.0 == name) else {
            continue;
        };
        let (Value::Bool(pv), Value::Bool(nv)) = (&p.1, nv) else {
            continue;
        };
        if *pv {
            p.2 = Some(true);
        } else if *nv {
            p.1 = Value::Bool(true);
            p.2 = Some(false);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replayed sessions

/// Sessions served from a recorded conversation.
#[derive(Debug, Clone)]
pub struct ReplaySessions {
    pub replayer: Replayer,
    pub emulator: String,
}

impl ReplaySessions {
    pub fn new(replayer: Replayer, emulator: &str) -> Self {
        ReplaySessions {
            replayer,
            emulator: emulator.to_string(),
        }
    }
}

impl SessionOpener for ReplaySessions {
    fn emulator(&self) -> &str {
        &self.emulator
    }

    async fn open(&mut self, _tcg_only: bool) -> Result<Monitor, CapsError> {
        Ok(self.replayer.connect(MonitorOptions::default()).await?)
    }

    async fn close(&mut self) {}

    async fn explain(&mut self, err: QmpError) -> CapsError {
        let msg = match self.replayer.mismatch() {
            Some(m) => format!("{err} ({m})"),
            None => err.to_string(),
        };
        CapsError::Probe {
            emulator: self.emulator.clone(),
            msg,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real binaries

/// How a real binary is probed.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Bound on the whole probe (both sessions); the process is killed when it expires.
    pub timeout: Duration,
    /// Whether `/dev/kvm` is usable by the user QEMU runs as (decided by the caller): without
    /// it the first session runs with TCG only and no second session is needed.
    pub kvm: bool,
    /// Record every exchange here (to write a `.replies` file).
    pub record: Option<Arc<Mutex<Conversation>>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(60),
            kvm: kvm_usable(Path::new("/dev/kvm")),
            record: None,
        }
    }
}

/// Whether this process may open the KVM device read-write (QEMU runs as we do).
pub fn kvm_usable(dev: &Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(dev, AccessFlags::R_OK | AccessFlags::W_OK).is_ok()
}

/// Probe a binary while recording the conversation; returns the caps and the conversation
/// in libvirt's `.replies` format (ids numbered per session), ready to be written to a file.
pub async fn capture_replies(
    path: &Path,
    opts: &ProbeOptions,
) -> Result<(QemuCaps, String), CapsError> {
    let conv = Arc::new(Mutex::new(Conversation::default()));
    let opts = ProbeOptions {
        record: Some(conv.clone()),
        ..opts.clone()
    };
    let caps = probe_binary(path, &opts).await?;
    let text = conv.lock().unwrap_or_else(|p| p.into_inner()).format();
    Ok((caps, text))
}

/// Sessions served by starting the binary, one process per session.
#[derive(Debug)]
pub struct BinarySessions {
    path: PathBuf,
    emulator: String,
    opts: ProbeOptions,
    child: Option<tokio::process::Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    dir: Option<PathBuf>,
}

/// Keep only the end of QEMU's stderr: it is for error messages, not a log.
const STDERR_KEEP: usize = 4096;

impl BinarySessions {
    pub fn new(path: &Path, opts: &ProbeOptions) -> Self {
        BinarySessions {
            path: path.to_path_buf(),
            emulator: path.display().to_string(),
            opts: opts.clone(),
            child: None,
            stderr: Arc::new(Mutex::new(Vec::new())),
            dir: None,
        }
    }

    fn fail(&self, msg: impl Into<String>) -> CapsError {
        CapsError::Probe {
            emulator: self.emulator.clone(),
            msg: msg.into(),
        }
    }

    fn stderr_tail(&self) -> String {
        let buf = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let s = String::from_utf8_lossy(&buf);
        let s = s.trim();
        if s.is_empty() {
            String::new()
        } else {
            format!("; stderr: {s}")
        }
    }

    /// Kill and reap the current process, remove the socket directory.
    pub async fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&c);
            let _ = c.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    async fn start(&mut self, tcg_only: bool) -> Result<Monitor, CapsError> {
        self.shutdown().await;
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();

        // A private directory (mode 0700) holds the socket: nobody else can connect to it.
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| sweep_stale_dirs(&std::env::temp_dir(), STALE_AFTER));
        let tmpl = std::env::temp_dir().join(format!("{PROBE_DIR_PREFIX}XXXXXX"));
        let dir = nix::unistd::mkdtemp(&tmpl)
            .map_err(|e| self.fail(format!("cannot create a private directory: {e}")))?;
        self.dir = Some(dir.clone());
        let sock = dir.join("qmp.sock");
        // We listen, QEMU inherits the listening socket as fd 3: the socket exists before
        // QEMU starts, so there is no connect-retry loop and no race.
        let listener = std::os::unix::net::UnixListener::bind(&sock)
            .map_err(|e| self.fail(format!("cannot bind {}: {e}", sock.display())))?;

        let accel = if tcg_only || !self.opts.kvm {
            "tcg"
        } else {
            "kvm:tcg"
        };
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.args([
            "-S",
            "-no-user-config",
            "-nodefaults",
            "-nographic",
            "-machine",
            &format!("none,accel={accel}"),
            "-chardev",
            "socket,id=qmp,fd=3,server=on,wait=off",
            "-mon",
            "chardev=qmp,mode=control",
        ])
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // A group of its own: a wrapper script's QEMU dies with the wrapper (see kill_group).
        .process_group(0)
        .kill_on_drop(true);
        {
            use std::os::fd::AsRawFd;
            let fd = listener.as_raw_fd();
            let parent = nix::unistd::getpid().as_raw();
            // SAFETY: between fork and exec we only call prctl, getppid, dup2 and fcntl,
            // which are async-signal-safe, on integers and descriptors we own.
            unsafe {
                cmd.pre_exec(move || {
                    // A probe QEMU must not outlive us: a ^C or SIGTERM to `vsh
                    // capabilities` kills us before any cleanup runs, and its group of its
                    // own keeps the terminal's signal from reaching it. The kernel kills it
                    // when the thread that spawned it dies (runtime threads live as long as
                    // the probe's runtime, which outlives the probe).
                    if nix::libc::prctl(
                        nix::libc::PR_SET_PDEATHSIG,
                        nix::libc::SIGKILL as nix::libc::c_ulong,
                    ) < 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    // We may have died between fork and prctl.
                    if nix::libc::getppid() != parent {
                        return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
                    }
                    if fd != 3 && nix::libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // dup2 onto itself keeps close-on-exec; clear it explicitly.
                    if nix::libc::fcntl(3, nix::libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| self.fail(format!("cannot execute: {e}")))?;
        if let Some(mut err) = child.stderr.take() {
            let buf = self.stderr.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut chunk = [0u8; 1024];
                loop {
                    match err.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                            b.extend_from_slice(&chunk[..n]);
                            if b.len() > STDERR_KEEP {
                                let cut = b.len() - STDERR_KEEP;
                                b.drain(..cut);
                            }
                        }
                    }
                }
            });
        }
        self.child = Some(child);

        let stream = tokio::net::UnixStream::connect(&sock).await;
        // Only QEMU holds the listener from here on: if it dies, our connection fails instead
        // of waiting in a backlog nobody serves.
        drop(listener);
        let stream = stream.map_err(|e| self.fail(format!("cannot connect to QMP socket: {e}")))?;
        let mopts = MonitorOptions {
            command_timeout: self.opts.timeout,
            ..MonitorOptions::default()
        };
        let mut mon = match Monitor::from_stream(stream, mopts).await {
            Ok(m) => m,
            Err(e) => return Err(self.explain_now(e).await),
        };
        if let Some(r) = &self.opts.record {
            mon.record_into(r.clone());
        }
        Ok(mon)
    }

    async fn explain_now(&mut self, err: QmpError) -> CapsError {
        // Give a dying QEMU a moment to finish writing stderr and exit, so the error can say
        // how it ended.
        let mut status = None;
        if let Some(c) = &mut self.child
            && let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(500), c.wait()).await
        {
            status = Some(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let how = match status {
            Some(s) => format!(" (QEMU exited: {s})"),
            None => String::new(),
        };
        let what = match (&err, status) {
            (QmpError::Greeting(_), _) => "no QMP greeting: not a working QEMU",
            (_, Some(_)) => "QEMU exited mid-probe",
            (QmpError::Eof(_), None) => "QEMU closed the monitor mid-probe",
            _ => "probe failed",
        };
        let tail = self.stderr_tail();
        self.fail(format!("{what}: {err}{how}{tail}"))
    }
}

/// The name of a probe's private socket directory, before mkdtemp's suffix.
const PROBE_DIR_PREFIX: &str = "domdriver-probe-";

/// When a probe directory is surely left over: its path only serves QEMU's first
/// connection, made at once, so even a probe still running has no more use for it.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// Remove our probe directories in `tmp` older than `age`. A `vsh` killed mid-probe (^C,
/// SIGTERM) takes its probe QEMUs with it (PR_SET_PDEATHSIG) but cannot remove their
/// directories; the next probe does. Only directories this user may remove go.
fn sweep_stale_dirs(tmp: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PROBE_DIR_PREFIX))
            && e.metadata().is_ok_and(|m| {
                m.is_dir()
                    && m.modified()
                        .is_ok_and(|t| t.elapsed().is_ok_and(|a| a > age))
            });
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// SIGKILL the process group the probe started: the emulator may be a wrapper script whose
/// QEMU runs as its child, and killing the script alone would orphan that QEMU.
fn kill_group(c: &tokio::process::Child) {
    if let Some(pid) = c.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

impl Drop for BinarySessions {
    fn drop(&mut self) {
        // Last resort when a probe future is dropped (timeout): the process must not outlive
        // us. kill_on_drop on the child also reaps it in the background.
        if let Some(c) = &mut self.child {
            kill_group(c);
            let _ = c.start_kill();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl SessionOpener for BinarySessions {
    fn emulator(&self) -> &str {
        &self.emulator
    }

    async fn open(&mut self, tcg_only: bool) -> Result<Monitor, CapsError> {
        self.start(tcg_only).await
    }

    async fn close(&mut self) {
        self.shutdown().await;
    }

    async fn explain(&mut self, err: QmpError) -> CapsError {
        self.explain_now(err).await
    }
}

/// Probe a QEMU binary: start it as libvirt does for probing, ask, stop it. The process is
/// killed and reaped on every path, including timeout.
///
/// A probe that fails short of its time limit is run once more, in a new QEMU, within the
/// time left: on a loaded machine a probe QEMU once answered a command we had sent whole
/// with "JSON parse error", and such a fluke must not leave the emulator out (a binary that
/// cannot be probed fails the same way twice; one that hangs is not tried again).
pub async fn probe_binary(path: &Path, opts: &ProbeOptions) -> Result<QemuCaps, CapsError> {
    let deadline = tokio::time::Instant::now() + opts.timeout;
    match probe_once(path, opts, opts.timeout).await {
        Probed::Failed(_) if deadline > tokio::time::Instant::now() => {
            let left = deadline - tokio::time::Instant::now();
            probe_once(path, opts, left).await.into_result()
        }
        r => r.into_result(),
    }
}

/// How one probe ended.
enum Probed {
    Done(Box<QemuCaps>),
    Failed(CapsError),
    TimedOut(CapsError),
}

impl Probed {
    fn into_result(self) -> Result<QemuCaps, CapsError> {
        match self {
            Probed::Done(c) => Ok(*c),
            Probed::Failed(e) | Probed::TimedOut(e) => Err(e),
        }
    }
}

/// One probe, in a QEMU of its own, within `limit`.
async fn probe_once(path: &Path, opts: &ProbeOptions, limit: Duration) -> Probed {
    let mut sessions = BinarySessions::new(path, opts);
    let r = match tokio::time::timeout(limit, probe_sessions(&mut sessions)).await {
        Ok(Ok(caps)) => Probed::Done(Box::new(caps)),
        Ok(Err(e)) => Probed::Failed(e),
        Err(_) => {
            let tail = sessions.stderr_tail();
            Probed::TimedOut(sessions.fail(format!(
                "probe timed out after {:?} (QEMU hung?){tail}",
                opts.timeout
            )))
        }
    };
    sessions.shutdown().await;
    r
}

/// Probe a recorded `.replies` conversation as if it were `emulator`; the whole recording must
/// be consumed, in order, or the error names the first command that differs.
pub async fn probe_replies(path: &Path, emulator: &str) -> Result<QemuCaps, CapsError> {
    let replayer = Replayer::load(path)?;
    let mut s = ReplaySessions::new(replayer.clone(), emulator);
    let caps = probe_sessions(&mut s).await?;
    replayer.finish()?;
    Ok(caps)
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn old_probe_dirs_go_and_the_others_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join(format!("{PROBE_DIR_PREFIX}old123"));
        let young = tmp.path().join(format!("{PROBE_DIR_PREFIX}new123"));
        let other = tmp.path().join("someone-elses");
        for d in [&old, &young, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("qmp.sock"), b"").unwrap();
        }
        let past = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        for d in [&old, &other] {
            std::fs::File::open(d).unwrap().set_modified(past).unwrap();
        }
        sweep_stale_dirs(tmp.path(), STALE_AFTER);
        assert!(!old.exists(), "a stale probe directory is removed");
        assert!(young.exists(), "a recent one is kept");
        assert!(other.exists(), "what is not ours is kept");
    }
}
