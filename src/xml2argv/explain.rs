//! Which part of the domain definition each argument of a built command comes from
//! (`vsh domxml-to-native qemu-argv FILE --explain`).
//!
//! The builders are not told to record where their output comes from; the command is mapped back
//! afterwards, so the builders stay as they are. Devices are found by the ids QEMU sees: every
//! device's alias is its `id`, and the backends libvirt gives a device carry its alias with a
//! prefix (`charserial0`, `hostnet0`, `fsdev-fs0`, `objrng0`), or are block nodes that a
//! device's `drive` reaches through `file`/`backing` links. Options that stand for a section
//! (`-m`, `-smp`, `-cpu`, ...) map to that section's element. Paths index elements of the same
//! name from 1, in the definition as prepared (defaults and implicit devices included), which is
//! what `dumpxml` shows.

use std::collections::HashMap;

use serde_json::Value;

use super::QemuCommand;
use super::opts::parse_kv;
use super::render::shell_escape;
use crate::domain::DomainDef;

/// One option with its value (or one environment variable, or the binary) and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// An element path such as `/domain/devices/disk[1]`, or a parenthesised origin outside
    /// the definition (`(libvirt)`, `(environment)`).
    pub path: String,
    /// The words, as given to QEMU.
    pub words: Vec<String>,
}

/// Origin of what libvirt adds on its own (monitor, defaults, policy).
const LIBVIRT: &str = "(libvirt)";

/// alias → element path, for every device the definition has.
fn device_paths(def: &DomainDef) -> HashMap<String, String> {
    let d = &def.devices;
    let mut map = HashMap::new();
    macro_rules! list {
        ($items:expr, $elem:literal) => {
            for (i, x) in $items.iter().enumerate() {
                // First come wins: a serial console shares its serial port's alias.
                if let Some(a) = &x.info.alias {
                    map.entry(a.clone())
                        .or_insert_with(|| format!("/domain/devices/{}[{}]", $elem, i + 1));
                }
            }
        };
    }
    list!(d.disks, "disk");
    list!(d.controllers, "controller");
    list!(d.filesystems, "filesystem");
    list!(d.interfaces, "interface");
    list!(d.smartcards, "smartcard");
    list!(d.serials, "serial");
    list!(d.parallels, "parallel");
    list!(d.consoles, "console");
    list!(d.channels, "channel");
    list!(d.inputs, "input");
    list!(d.tpms, "tpm");
    list!(d.sounds, "sound");
    list!(d.videos, "video");
    list!(d.hostdevs, "hostdev");
    list!(d.redirdevs, "redirdev");
    list!(d.hubs, "hub");
    list!(d.watchdogs, "watchdog");
    list!(d.rngs, "rng");
    list!(d.panics, "panic");
    list!(d.shmems, "shmem");
    list!(d.memories, "memory");
    list!(d.cryptos, "crypto");
    let single = [
        (d.memballoon.as_ref().map(|m| &m.info), "memballoon"),
        (d.iommu.as_ref().map(|m| &m.info), "iommu"),
        (d.vsock.as_ref().map(|m| &m.info), "vsock"),
        (d.nvram.as_ref().map(|m| &m.info), "nvram"),
    ];
    for (info, elem) in single {
        if let Some(a) = info.and_then(|i| i.alias.as_ref()) {
            map.insert(a.clone(), format!("/domain/devices/{elem}"));
        }
    }
    for (i, a) in d.audios.iter().enumerate() {
        if let Some(id) = a.id {
            map.insert(
                format!("audio{id}"),
                format!("/domain/devices/audio[{}]", i + 1),
            );
        }
    }
    map
}

/// The `id` (or block `node-name`) an option value declares, and the JSON object if it is one.
fn declared_id(value: &str) -> (Option<String>, Option<Value>) {
    if value.starts_with('{') {
        let v: Option<Value> = serde_json::from_str(value).ok();
        let id = v.as_ref().and_then(|v| {
            v.get("id")
                .or_else(|| v.get("node-name"))
                .and_then(Value::as_str)
                .map(String::from)
        });
        return (id, v);
    }
    let id = parse_kv(value)
        .into_iter()
        .find_map(|p| p.strip_prefix("id=").map(String::from));
    (id, None)
}

/// The device an id of a backend or helper object belongs to.
fn owner<'a>(id: &str, devices: &'a HashMap<String, String>) -> Option<&'a String> {
    if let Some(p) = devices.get(id) {
        return Some(p);
    }
    [
        "char",
        "host",
        "fsdev-",
        "obj",
        "mem",
        "drive-",
        "tls-creds-",
    ]
    .iter()
    .filter_map(|pre| id.strip_prefix(pre))
    .find_map(|rest| devices.get(rest))
}

/// The element of options that stand for a part of the definition rather than a device.
fn section(def: &DomainDef, opt: &str, value: Option<&str>) -> Option<String> {
    let p = match opt {
        "-name" => "/domain/name",
        "-uuid" => "/domain/uuid",
        "-machine" => "/domain/os/type",
        "-accel" => "/domain",
        "-cpu" if def.cpu.is_some() => "/domain/cpu",
        "-cpu" => "/domain/os/type",
        "-m" => "/domain/memory",
        "-overcommit" => "/domain/memoryBacking",
        "-smp" => "/domain/vcpu",
        "-smbios" => "/domain/sysinfo",
        "-kernel" => "/domain/os/kernel",
        "-initrd" => "/domain/os/initrd",
        "-append" => "/domain/os/cmdline",
        "-dtb" => "/domain/os/dtb",
        "-bios" => "/domain/os/loader",
        "-boot" => "/domain/os",
        "-rtc" | "-no-hpet" => "/domain/clock",
        "-global" if value.is_some_and(|v| v.starts_with("kvm-pit.")) => "/domain/clock",
        "-global" if value.is_some_and(|v| v.contains(".disable_s")) => "/domain/pm",
        "-global" => "/domain/features",
        "-sandbox" | "-msg" | "-S" | "-no-user-config" | "-nodefaults" | "-no-shutdown"
        | "-mon" | "-daemonize" | "-pidfile" => LIBVIRT,
        _ => return None,
    };
    Some(p.to_string())
}

/// The `n`-th (from 1) `<graphics type=gtype>`.
fn graphics(def: &DomainDef, gtype: &str) -> String {
    match def.devices.graphics.iter().position(|g| g.gtype == gtype) {
        Some(i) => format!("/domain/devices/graphics[{}]", i + 1),
        None => "/domain/devices".to_string(),
    }
}

/// Every argument of `cmd` (environment and binary first) with the definition part it came
/// from. `def` is the prepared definition `cmd` was built from.
pub fn explain(def: &DomainDef, cmd: &QemuCommand) -> Vec<Explained> {
    let devices = device_paths(def);
    let mut out: Vec<Explained> = cmd
        .env
        .iter()
        .map(|(k, v)| Explained {
            path: "(environment)".into(),
            words: vec![format!("{k}={v}")],
        })
        .collect();
    out.push(Explained {
        path: "/domain/devices/emulator".into(),
        words: vec![cmd.binary.clone()],
    });

    // Group each option with its value.
    let mut groups: Vec<(&str, Option<&str>)> = Vec::new();
    let mut i = 0;
    while i < cmd.args.len() {
        let a = cmd.args[i].as_str();
        let v = cmd.args.get(i + 1).map(String::as_str);
        match v {
            Some(v) if a.starts_with('-') && !v.starts_with('-') => {
                groups.push((a, Some(v)));
                i += 2;
            }
            _ => {
                groups.push((a, None));
                i += 1;
            }
        }
    }

    // Block nodes belong to the device whose `drive` reaches them through `file`/`backing`.
    let mut nodes: HashMap<String, String> = HashMap::new();
    let mut blockdevs: Vec<(String, Vec<String>)> = Vec::new();
    for (opt, v) in &groups {
        let Some(v) = v else { continue };
        let (id, json) = declared_id(v);
        let Some(json) = json else { continue };
        let link = |k: &str| json.get(k).and_then(Value::as_str).map(String::from);
        match *opt {
            "-device" => {
                if let (Some(id), Some(drive)) = (id, link("drive"))
                    && let Some(p) = devices.get(&id)
                {
                    nodes.insert(drive, p.clone());
                }
            }
            "-blockdev" => {
                if let Some(id) = id {
                    let links = ["file", "backing", "data-file"]
                        .iter()
                        .filter_map(|k| link(k))
                        .collect();
                    blockdevs.push((id, links));
                }
            }
            _ => {}
        }
    }
    // Formats come after their storage nodes, so walk from the device end.
    for _ in 0..blockdevs.len().max(1) {
        let mut changed = false;
        for (id, links) in blockdevs.iter().rev() {
            if let Some(p) = nodes.get(id).cloned() {
                for l in links {
                    if !nodes.contains_key(l) {
                        nodes.insert(l.clone(), p.clone());
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }

    let mut numa_cell = 0;
    for (opt, value) in groups {
        let (id, json) = value.map(declared_id).unwrap_or((None, None));
        let by_id = id.as_deref().and_then(|id| {
            owner(id, &devices).cloned().or_else(|| {
                // Secrets and other helpers of a block node: `libvirt-1-storage-secret0`.
                nodes
                    .iter()
                    .filter(|(n, _)| id.starts_with(n.as_str()))
                    .max_by_key(|(n, _)| n.len())
                    .map(|(_, p)| p.clone())
            })
        });
        let qom = json
            .as_ref()
            .and_then(|j| j.get("qom-type"))
            .and_then(Value::as_str);
        let path = match (opt, id.as_deref()) {
            ("-chardev", Some("charmonitor")) => Some(LIBVIRT.to_string()),
            ("-object", Some("masterKey0")) => Some(LIBVIRT.to_string()),
            ("-object", Some("pc.ram" | "mach-virt.ram" | "ppc_spapr.ram" | "s390.ram")) => {
                Some("/domain/memory".to_string())
            }
            ("-object", Some(i)) if i.starts_with("ram-node") => Some(format!(
                "/domain/cpu/numa/cell[{}]",
                i["ram-node".len()..].parse::<usize>().unwrap_or(0) + 1
            )),
            ("-object", Some(i)) if qom == Some("iothread") => {
                Some(format!("/domain/iothreads ({i})"))
            }
            ("-numa", _) => {
                numa_cell += 1;
                Some(format!("/domain/cpu/numa/cell[{numa_cell}]"))
            }
            ("-vnc", _) => Some(graphics(def, "vnc")),
            ("-spice", _) => Some(graphics(def, "spice")),
            ("-display", _) => Some(graphics(def, "egl-headless")),
            ("-serial", Some(_)) | ("-serial", None) => value
                .and_then(|v| v.strip_prefix("chardev:"))
                .and_then(|c| owner(c, &devices).cloned()),
            _ => None,
        };
        let path = path
            .or(by_id)
            .or_else(|| section(def, opt, value))
            .unwrap_or_else(|| {
                if id.is_some() {
                    "/domain/devices".to_string()
                } else {
                    LIBVIRT.to_string()
                }
            });
        let mut words = vec![opt.to_string()];
        words.extend(value.map(String::from));
        out.push(Explained { path, words });
    }
    out
}

/// The explanation as text: the path, padded, then the shell-quoted words, one option a line.
pub fn render(lines: &[Explained]) -> String {
    let width = lines.iter().map(|l| l.path.len()).max().unwrap_or(0);
    let mut out = String::new();
    for l in lines {
        let words: Vec<String> = l.words.iter().map(|w| shell_escape(w)).collect();
        out.push_str(&format!("{:<width$}  {}\n", l.path, words.join(" ")));
    }
    out
}
