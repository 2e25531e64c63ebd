//! UEFI guests on this host's OVMF (Debian's `ovmf`, installed by scripts/test): firmware
//! autoselection from the descriptors in /usr/share/qemu/firmware, a varstore made from its
//! template at the first start and kept across starts, `start --reset-nvram`, `undefine
//! --nvram/--keep-nvram`, and libvirt's refusals. One real boot through OVMF (TCG, ~20 s);
//! the other starts stay paused. Descriptors are masked or added per test through the
//! session's `$XDG_CONFIG_HOME/qemu/firmware`, which takes precedence over the host's.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use vshrun::{Reaper, Vsh};

const HOST_DESCRIPTOR: &str = "/usr/share/qemu/firmware/60-edk2-x86_64.json";
const TEMPLATE: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    xdg: PathBuf,
    vsh: Vsh,
}

impl Env {
    fn new() -> Env {
        assert!(
            Path::new(HOST_DESCRIPTOR).exists(),
            "{HOST_DESCRIPTOR} is missing: install Debian's ovmf (scripts/test does)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let xdg = tmp.path().join("xdg");
        std::fs::create_dir_all(xdg.join("qemu/firmware")).unwrap();
        let mut vsh = Vsh::new(root.clone());
        vsh.env.push(("XDG_CONFIG_HOME".into(), xdg.clone()));
        Env {
            root,
            xdg,
            vsh,
            _tmp: tmp,
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        self.vsh.ok(args)
    }

    fn fails(&self, args: &[&str]) -> String {
        self.vsh.fails(args)
    }

    fn define(&self, name: &str, xml: &str) {
        let f = self.root.with_file_name(format!("{name}.xml"));
        std::fs::write(&f, xml).unwrap();
        self.ok(&["define", f.to_str().unwrap()]);
    }

    /// Hide a host descriptor (an empty file of the same name masks it).
    fn mask(&self, file: &str) {
        std::fs::write(self.xdg.join("qemu/firmware").join(file), "").unwrap();
    }

    fn varstore(&self, name: &str) -> PathBuf {
        self.root.join(format!("lib/qemu/nvram/{name}_VARS.fd"))
    }
}

fn efi_xml(name: &str, machine: &str, os_extra: &str, features: &str, kernel: &str) -> String {
    format!(
        "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='{machine}'>hvm</type>
    {os_extra}
    {kernel}
  </os>
  <features><acpi/>{features}</features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
"
    )
}

const NO_SECBOOT: &str = "<firmware><feature enabled='no' name='secure-boot'/></firmware>";

#[test]
fn uefi_guest_boots_through_ovmf_and_keeps_its_varstore() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let env = Env::new();
    let _reaper = Reaper(env.root.clone(), vec!["efi"]);
    // Debian's kernel is not signed with the keys an enrolled OVMF trusts: no Secure Boot.
    let kernel = format!(
        "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{} {}</cmdline>",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        bootkit::run_cmdline("test -d /sys/firmware/efi && echo UEFI-BOOTED"),
    );
    env.define("efi", &efi_xml("efi", "q35", NO_SECBOOT, "", &kernel));
    // The firmware is chosen at define (libvirt 9.2+): the config names its files, and the
    // varstore is made at the first start.
    let store = env.varstore("efi");
    let inactive = env.ok(&["dumpxml", "--inactive", "efi"]);
    assert!(
        inactive.contains(
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
        ),
        "{inactive}"
    );
    assert!(
        inactive.contains(&format!(
            "<nvram template='{TEMPLATE}'>{}</nvram>",
            store.display()
        )),
        "{inactive}"
    );
    assert!(!store.exists());

    env.ok(&["start", "--paused", "efi"]);
    let live = env.ok(&["dumpxml", "efi"]);
    assert!(
        live.contains(
            "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"
        ),
        "{live}"
    );
    assert!(
        live.contains(&format!(
            "<nvram template='{TEMPLATE}'>{}</nvram>",
            store.display()
        )),
        "{live}"
    );
    let template = std::fs::read(TEMPLATE).unwrap();
    assert_eq!(std::fs::read(&store).unwrap(), template, "a fresh varstore");
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    env.ok(&["resume", "efi"]);
    let timeout = 180 * vshrun::multiplier();
    env.ok(&[
        "console",
        "efi",
        "--expect",
        "UEFI-BOOTED",
        "--timeout",
        &timeout.to_string(),
    ]);
    env.ok(&["destroy", "efi"]);
    // OVMF wrote its variables (boot options, counters) into the guest's own store.
    let booted = std::fs::read(&store).unwrap();
    assert_ne!(booted, template, "OVMF wrote no variable");

    // The next start keeps them; --reset-nvram starts over from the template.
    env.ok(&["start", "--paused", "efi"]);
    assert_eq!(std::fs::read(&store).unwrap(), booted);
    env.ok(&["destroy", "efi"]);
    env.ok(&["start", "--paused", "--reset-nvram", "efi"]);
    assert_eq!(std::fs::read(&store).unwrap(), template);
    env.ok(&["destroy", "efi"]);

    // The varstore is not lost silently.
    let err = env.fails(&["undefine", "efi"]);
    assert!(
        err.contains("error: Requested operation is not valid: cannot undefine domain with nvram"),
        "{err}"
    );
    let err = env.fails(&["undefine", "--nvram", "--keep-nvram", "efi"]);
    assert!(
        err.contains("Options --nvram and --keep-nvram are mutually exclusive"),
        "{err}"
    );
    env.ok(&["undefine", "--nvram", "efi"]);
    assert!(!store.exists());
}

#[test]
fn firmware_wishes_pick_descriptors_as_libvirt() {
    let env = Env::new();
    let _reaper = Reaper(env.root.clone(), vec!["sb", "sb2", "kept"]);
    // Secure Boot on q35: the enrolled one comes first, SMM goes on, the flash is secure.
    env.define(
        "sb",
        &efi_xml(
            "sb",
            "q35",
            "<firmware><feature enabled='yes' name='secure-boot'/></firmware>",
            "",
            "",
        ),
    );
    let argv = env.ok(&["domxml-to-native", "qemu-argv", "--domain", "sb"]);
    assert!(argv.contains("OVMF_CODE_4M.ms.fd"), "{argv}");
    assert!(argv.contains("smm=on"), "{argv}");
    assert!(
        argv.contains("-global driver=cfi.pflash01,property=secure,value=on"),
        "{argv}"
    );
    // Without enrolled keys the next one serves a new definition; the one defined before
    // keeps the firmware it was given.
    env.mask("40-edk2-x86_64-secure-enrolled.json");
    let argv = env.ok(&["domxml-to-native", "qemu-argv", "--domain", "sb"]);
    assert!(argv.contains("OVMF_CODE_4M.ms.fd"), "{argv}");
    env.define(
        "sb2",
        &efi_xml(
            "sb2",
            "q35",
            "<firmware><feature enabled='yes' name='secure-boot'/></firmware>",
            "",
            "",
        ),
    );
    let argv = env.ok(&["domxml-to-native", "qemu-argv", "--domain", "sb2"]);
    assert!(argv.contains("OVMF_CODE_4M.secboot.fd"), "{argv}");

    // --keep-nvram leaves the store behind.
    env.define("kept", &efi_xml("kept", "q35", NO_SECBOOT, "", ""));
    env.ok(&["start", "--paused", "kept"]);
    env.ok(&["destroy", "kept"]);
    env.ok(&["undefine", "--keep-nvram", "kept"]);
    assert!(env.varstore("kept").exists());
}

#[test]
fn firmware_refusals_name_what_is_wrong() {
    let env = Env::new();
    let _reaper = Reaper(
        env.root.clone(),
        vec!["i440sb", "smmoff", "bios", "tmpl", "old"],
    );
    // Secure Boot needs SMM, which only q35 firmware offers here.
    env.define(
        "i440sb",
        &efi_xml(
            "i440sb",
            "pc",
            "<firmware><feature enabled='yes' name='secure-boot'/></firmware>",
            "",
            "",
        ),
    );
    let err = env.fails(&["start", "i440sb"]);
    assert!(
        err.contains("error: operation failed: Unable to find any firmware to satisfy 'efi'"),
        "{err}"
    );
    let err = env.fails(&["domxml-to-native", "qemu-argv", "--domain", "i440sb"]);
    assert!(
        err.contains("Unable to find any firmware to satisfy 'efi'"),
        "{err}"
    );
    // Secure Boot with SMM turned off.
    env.define(
        "smmoff",
        &efi_xml(
            "smmoff",
            "q35",
            "<firmware><feature enabled='yes' name='secure-boot'/></firmware>",
            "<smm state='off'/>",
            "",
        ),
    );
    let err = env.fails(&["start", "smmoff"]);
    assert!(
        err.contains(
            "error: Requested operation is not valid: domain has SMM turned off but chosen firmware requires it"
        ),
        "{err}"
    );
    // No BIOS descriptor on this host (Debian's seabios installs none).
    env.define(
        "bios",
        &efi_xml("bios", "pc", "", "", "").replace("firmware='efi'", "firmware='bios'"),
    );
    let err = env.fails(&["start", "bios"]);
    assert!(
        err.contains("Unable to find any firmware to satisfy 'bios'"),
        "{err}"
    );
    // A template that is not there: nothing starts, no varstore is left.
    let manual = |name: &str, nvram: &str| {
        format!(
            "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>
             <os><type arch='x86_64' machine='q35'>hvm</type>
             <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
             {nvram}</os><features><acpi/></features>
             <devices><memballoon model='none'/></devices></domain>"
        )
    };
    env.define(
        "tmpl",
        &manual("tmpl", "<nvram template='/nonexistent/VARS.fd'/>"),
    );
    let err = env.fails(&["start", "tmpl"]);
    assert!(
        err.contains("Failed to open file '/nonexistent/VARS.fd': No such file or directory"),
        "{err}"
    );
    assert!(!env.varstore("tmpl").exists());
    // An old-style loader no descriptor names has no template to make a varstore from.
    env.define(
        "old",
        &manual("old", "").replace(
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_CODE.fd",
        ),
    );
    env.mask("60-edk2-x86_64.json");
    let err = env.fails(&["start", "old"]);
    assert!(
        err.contains(
            "error: operation failed: unable to find any master var store for loader: /usr/share/OVMF/OVMF_CODE.fd"
        ),
        "{err}"
    );
}
