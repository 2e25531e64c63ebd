//! `<guest>` blocks of the host capabilities document, derived from probed emulators.
//!
//! libvirt walks every architecture it knows, in its enumeration order, and asks which
//! emulator serves it: `qemu-system-<arch>` itself, or failing that a binary that can run it
//! natively (an x86_64 host runs i686 guests with qemu-system-x86_64, an aarch64 host runs
//! armv7l guests with qemu-system-aarch64, and qemu-system-ppc64 serves ppc64le guests). The
//! same binary can therefore appear under several `<guest>` elements.

use super::{ARCHES, QemuCaps, arch_to_qemu};
use crate::xmlfmt::XmlWriter;

/// How the `<guest>` blocks are written.
#[derive(Debug, Clone)]
pub struct GuestOptions {
    /// `/dev/kvm` is usable by the user QEMU runs as.
    pub kvm_usable: bool,
    /// Hypervisor.framework is usable (macOS).
    pub hvf_usable: bool,
    /// Write the `<machine>` lines (libvirt's qemucaps2xml test data has none).
    pub machines: bool,
}

/// Word size of a libvirt architecture, `None` for names libvirt does not know.
pub fn wordsize(arch: &str) -> Option<u32> {
    ARCHES.iter().find(|(a, _)| *a == arch).map(|(_, w)| *w)
}

fn is_ppc64(a: &str) -> bool {
    a == "ppc64" || a == "ppc64le"
}

fn is_x86(a: &str) -> bool {
    a == "x86_64" || a == "i686"
}

/// Whether a guest of `guest` arch runs natively (with KVM) on a `host` machine.
fn native(host: &str, guest: &str) -> bool {
    host == guest
        || (host == "x86_64" && guest == "i686")
        || (host == "aarch64" && guest == "armv7l")
        || (is_ppc64(host) && is_ppc64(guest))
}

/// The emulator libvirt picks for `guest` on `host`, among probed ones.
pub fn emulator_for<'a>(caps: &'a [QemuCaps], host: &str, guest: &str) -> Option<&'a QemuCaps> {
    // libvirt looks for qemu-system-TARGET by name; variants serving the same target
    // (qemu-system-x86_64-microvm, other machines) only stand in when it is missing. A ppc64
    // binary serves both byte orders, so qemu-system-ppc64le (a link to it on Debian) is
    // found by that name, and the guest names that path.
    let by_target = |t: &str| {
        let plain = format!("qemu-system-{t}");
        let serving = || {
            caps.iter().filter(move |c| {
                let ct = arch_to_qemu(&c.arch);
                ct == t || (is_ppc64(ct) && is_ppc64(t))
            })
        };
        serving()
            .find(|c| {
                std::path::Path::new(&c.emulator)
                    .file_name()
                    .is_some_and(|n| *n == *plain)
            })
            .or_else(|| serving().next())
    };
    // armv7l guests get KVM on aarch64 hosts only through qemu-system-aarch64.
    if host == "aarch64"
        && guest == "armv7l"
        && let Some(c) = by_target("aarch64")
    {
        return Some(c);
    }
    if let Some(c) = by_target(arch_to_qemu(guest)) {
        return Some(c);
    }
    let mut target = if native(host, guest) { host } else { guest };
    if is_ppc64(target) {
        target = "ppc64";
    }
    if target != guest {
        return by_target(arch_to_qemu(target));
    }
    None
}

/// libvirt's name for the architecture this program runs on (Rust's names differ: `x86`,
/// `powerpc64`, ... and do not carry the byte order).
pub fn host_arch() -> &'static str {
    let little = cfg!(target_endian = "little");
    match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc" => "ppc",
        "powerpc64" if little => "ppc64le",
        "powerpc64" => "ppc64",
        "mips" if little => "mipsel",
        "mips64" if little => "mips64el",
        other => super::arch_from_qemu(other).unwrap_or("none"),
    }
}

/// The `<guest>` blocks for this host, as libvirt writes them in its capabilities document.
pub fn format_guests(caps: &[QemuCaps], kvm_usable: bool, hvf_usable: bool, w: &mut XmlWriter) {
    let host = host_arch();
    let opts = GuestOptions {
        kvm_usable,
        hvf_usable,
        machines: true,
    };
    format_guests_for_host(caps, host, &opts, w);
}

/// [`format_guests`] for an explicit host architecture. Each `<guest>` is followed by an empty
/// line, as in libvirt's capabilities document.
pub fn format_guests_for_host(
    caps: &[QemuCaps],
    host: &str,
    opts: &GuestOptions,
    w: &mut XmlWriter,
) {
    for (guest, _) in ARCHES {
        if let Some(c) = emulator_for(caps, host, guest) {
            format_guest(c, guest, opts, w);
            w.blank();
        }
    }
}

struct GuestMachine<'a> {
    name: &'a str,
    canonical: Option<&'a str>,
    max_cpus: u32,
    deprecated: bool,
}

/// The machine list of a guest: aliases appear under their alias with `canonical=`, and each
/// canonical name also gets its own line (just before its alias) so that an XPath over machine
/// names finds every machine type.
fn guest_machines(c: &QemuCaps) -> Vec<GuestMachine<'_>> {
    let mut out: Vec<GuestMachine> = c
        .primary_machines()
        .iter()
        .map(|m| match &m.alias {
            Some(a) => GuestMachine {
                name: a,
                canonical: Some(&m.name),
                max_cpus: m.max_cpus,
                deprecated: m.deprecated,
            },
            None => GuestMachine {
                name: &m.name,
                canonical: None,
                max_cpus: m.max_cpus,
                deprecated: m.deprecated,
            },
        })
        .collect();
    let mut i = 0;
    while i < out.len() {
        if let Some(canon) = out[i].canonical
            && !out.iter().any(|m| m.name == canon)
        {
            let entry = GuestMachine {
                name: canon,
                canonical: None,
                max_cpus: out[i].max_cpus,
                deprecated: out[i].deprecated,
            };
            out.insert(i, entry);
            i += 1;
        }
        i += 1;
    }
    out
}

/// One `<guest>` block: `guest_arch` served by the emulator `c`.
pub fn format_guest(c: &QemuCaps, guest_arch: &str, opts: &GuestOptions, w: &mut XmlWriter) {
    w.elem("guest").open();
    w.text_elem("os_type", "hvm");
    w.elem("arch").attr("name", guest_arch).open();
    if let Some(ws) = wordsize(guest_arch) {
        w.text_elem("wordsize", &ws.to_string());
    }
    w.text_elem("emulator", &c.emulator);
    if opts.machines {
        for m in guest_machines(c) {
            w.elem("machine")
                .attr_opt("canonical", m.canonical)
                .attr_opt("maxCpus", (m.max_cpus > 0).then_some(m.max_cpus))
                .attr_opt("deprecated", m.deprecated.then_some("yes"))
                .text(m.name);
        }
    }
    if c.has_flag("tcg") {
        w.elem("domain").attr("type", "qemu").empty();
    }
    if c.kvm && opts.kvm_usable {
        w.elem("domain").attr("type", "kvm").empty();
    }
    if c.has_flag("hvf") && opts.hvf_usable {
        w.elem("domain").attr("type", "hvf").empty();
    }
    w.close();
    // Feature order is libvirt's: pae, nonpae, acpi, apic, cpuselection, deviceboot,
    // disksnapshot.
    w.elem("features").open();
    if guest_arch == "i686" {
        w.elem("pae").empty();
        w.elem("nonpae").empty();
    }
    if is_x86(guest_arch) || guest_arch == "aarch64" {
        w.elem("acpi")
            .attr("default", "on")
            .attr("toggle", "yes")
            .empty();
    }
    if is_x86(guest_arch) {
        w.elem("apic")
            .attr("default", "on")
            .attr("toggle", "no")
            .empty();
    }
    w.elem("cpuselection").empty();
    w.elem("deviceboot").empty();
    w.elem("disksnapshot")
        .attr("default", "on")
        .attr("toggle", "no")
        .empty();
    w.close();
    w.close();
}
