//! A UEFI variable the guest itself writes (Linux through efivarfs, OVMF into the pflash
//! varstore) survives a restart: the varstore made from the template at the first start
//! is the guest's own from then on, and only `start --reset-nvram` makes it anew. Real
//! OVMF (the host's descriptors pick it at define), a Linux guest under TCG.
//!
//! Every QEMU and monitor under the test's root is killed by pid at the end, also when
//! the test fails; every wait is bounded.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domdriver::Connect;
use domdriver::driver::domain::{CreateFlags, UndefineFlags};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const TEMPLATE: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The variable: a GUID of our own, attributes non-volatile + boot + runtime access.
const VAR: &str = "DomdriverTest-5b2d4c1e-7f3a-4e8b-9a0c-6d1e2f3a4b5c";
const VALUE: &str = "kept-across-starts";

/// Kills every QEMU and monitor under the root at the end.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for what in ["domdriver-monitor", "qemu-system"] {
            for pid in guests::pids_under(&self.0, what) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// The guest's script: mount efivarfs, then report the variable, or write it when absent.
fn script() -> String {
    format!(
        "insmod /lib/modules/efivarfs.ko 2>/dev/null; \
         mount -t efivarfs none /sys/firmware/efi/efivars || echo NO-EFIVARFS\n\
         V=/sys/firmware/efi/efivars/{VAR}\n\
         if [ -e $V ]; then echo \"EFIVAR-SEEN=$(tail -c +5 $V)END\"; \
         else printf '\\007\\000\\000\\000{VALUE}' > $V && echo EFIVAR-WRITTEN; fi\n"
    )
}

fn xml(root: &Path, kit: &bootkit::LinuxKit) -> String {
    format!(
        "<domain type='qemu'><name>efivar</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>\
         <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>\
         <firmware><feature enabled='no' name='secure-boot'/></firmware>\
         <kernel>{}</kernel><initrd>{}</initrd><cmdline>{} {}</cmdline></os>\
         <features><acpi/></features><devices><emulator>{QEMU}</emulator>\
         <serial type='file'><source path='{}'/></serial>\
         <memballoon model='none'/></devices></domain>",
        kit.kernel.display(),
        kit.initrd.display(),
        kit.cmdline(),
        bootkit::run_cmdline(&script()),
        root.join("serial.log").display()
    )
}

/// Waits for `what` on the serial console (a file QEMU truncates at each start).
fn wait_serial(root: &Path, what: &str) -> String {
    let timeout = domdriver::fleet::scaled(Duration::from_secs(240));
    let until = Instant::now() + timeout;
    loop {
        let s = std::fs::read_to_string(root.join("serial.log")).unwrap_or_default();
        if s.contains(what) || s.contains(bootkit::RUN_END) {
            return s;
        }
        assert!(
            Instant::now() < until,
            "no '{what}' within {timeout:?}; console:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_efi_variable_the_guest_writes_survives_a_restart() {
    let Some(kit) = bootkit::linux() else { return };
    if !Path::new(TEMPLATE).exists() {
        eprintln!("SKIP: no OVMF (Debian's ovmf)");
        return;
    }
    let t = tempfile::Builder::new()
        .prefix("me")
        .tempdir_in("/tmp")
        .unwrap();
    let root = t.path();
    let _c = Cleanup(root.to_path_buf());
    let uri = format!("qemu:///embed?root={}", root.display());
    let c = Connect::open(Some(&uri)).unwrap();
    let d = c.define_domain_xml(&xml(root, &kit)).unwrap();
    let store = root.join("lib/qemu/nvram/efivar_VARS.fd");
    let template = std::fs::read(TEMPLATE).unwrap();

    // First start: a fresh varstore; the guest writes the variable.
    d.create().unwrap();
    let con = wait_serial(root, "EFIVAR-WRITTEN");
    assert!(con.contains("EFIVAR-WRITTEN"), "console:\n{con}");
    d.destroy().unwrap();
    let written = std::fs::read(&store).unwrap();
    assert_ne!(written, template);
    assert!(
        contains(&written, VALUE.as_bytes()),
        "the value is not in the varstore"
    );

    // Second start: the same varstore, not a new copy; the guest reads its variable back.
    d.create().unwrap();
    let con = wait_serial(root, "EFIVAR-SEEN=");
    assert!(
        con.contains(&format!("EFIVAR-SEEN={VALUE}END")),
        "console:\n{con}"
    );
    d.destroy().unwrap();

    // --reset-nvram: the template again, before the firmware runs; the variable is gone.
    d.create_with_flags(CreateFlags::PAUSED | CreateFlags::RESET_NVRAM)
        .unwrap();
    assert_eq!(std::fs::read(&store).unwrap(), template);
    d.resume().unwrap();
    let con = wait_serial(root, "EFIVAR-WRITTEN");
    assert!(con.contains("EFIVAR-WRITTEN"), "console:\n{con}");
    d.destroy().unwrap();
    d.undefine_flags(UndefineFlags::NVRAM).unwrap();
    assert!(!store.exists());
}
