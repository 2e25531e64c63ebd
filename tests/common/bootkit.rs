//! Bootable guests for tests that run real QEMU.
//!
//! [`linux`] builds, once, a Debian kernel and a busybox initramfs whose `/init` prints
//! [`GUEST_MARKER`] on the serial console and powers off on an ACPI power button press (so
//! `system_powerdown` works). Everything comes from Debian packages fetched with
//! `apt-get download` (the only network use) and is cached under `CARGO_TARGET_TMPDIR`.
//! [`boot_sector`] is a 512-byte real-mode program for a quick KVM smoke test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// What the guest's `/init` prints once it is up and ready for an ACPI power button press.
pub const GUEST_MARKER: &str = "DOMDRIVER-GUEST-UP";

/// What the boot sector prints on COM1.
pub const BOOT_SECTOR_MARKER: &str = "DOMDRIVER-BOOTSECTOR-UP";

/// Modules the initramfs loads (with their dependencies): evdev for /dev/input/event*, which
/// busybox acpid reads, and button for the ACPI power button; then what test guests use:
/// virtio disks (vvfat views) and FAT, 9p shares, virtio and e1000 NICs, the virtio RNG,
/// pvpanic (a guest panic reaches QEMU), virtio serial ports (the guest agent's channel),
/// virtiofs and the virtio balloon (`setmem` on a running guest).
const MODULES: &[&str] = &[
    "evdev",
    "button",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "e1000",
    "virtio_rng",
    "9pnet_virtio",
    "9p",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "pvpanic_mmio",
    "virtio_console",
    "virtiofs",
    "virtio_balloon",
];

/// Modules in the initramfs (under `/lib/modules/NAME.ko`) that `/init` does not load: a
/// test script loads them (dependencies first: `insmod /lib/modules/watchdog.ko; insmod
/// /lib/modules/i6300esb.ko heartbeat=2`) with its own parameters. `/etc/modules-extra`
/// lists them and their dependencies in load order. The USB ones serve USB disks
/// hotplugged on an xHCI controller; efivarfs a UEFI guest's variables.
const EXTRA_MODULES: &[&str] = &["i6300esb", "xhci_pci", "usb_storage", "sd_mod", "efivarfs"];

/// Bumped whenever the initramfs contents change, so that a cached kit is rebuilt.
const KIT_VERSION: u32 = 9;

/// What `/init` prints before running the test script it was given (see [`run_cmdline`]).
pub const RUN_BEGIN: &str = "DOMDRIVER-RUN-BEGIN";

/// What `/init` prints after the test script, followed by ` rc=STATUS`.
pub const RUN_END: &str = "DOMDRIVER-RUN-END";

/// The 9p mount tag `/init` looks for: a share with this tag holding `run.sh` is run as the
/// test script when the command line carries none.
pub const RUN_TAG: &str = "domdriver-run";

/// A kernel command line argument that makes `/init` run `script` (sh) once the guest is up.
pub fn run_cmdline(script: &str) -> String {
    domdriver::fleet::run_script_arg(script)
}

/// A kernel and an initramfs for direct kernel boot (`-kernel`, `-initrd`).
#[derive(Debug, Clone)]
pub struct LinuxKit {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel package it came from, e.g. `linux-image-6.1.0-56-amd64`.
    pub package: String,
}

impl LinuxKit {
    /// Kernel command line: console on the first serial port, and no reboot loop on panic.
    pub fn cmdline(&self) -> &'static str {
        "console=ttyS0 panic=-1 quiet"
    }

    /// A one-vCPU TCG `pc` guest named `name` with `memory_mib` MiB that boots this kit into
    /// [`TICKING`]; `serial` is its `<serial>` element.
    pub fn ticking_domain(&self, name: &str, memory_mib: u64, serial: &str) -> String {
        format!(
            "<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    {}
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {serial}
    <memballoon model='none'/>
  </devices>
</domain>
",
            self.os_xml(TICKING)
        )
    }

    /// The `<os>` children that boot this kit directly and run `script` once up.
    pub fn os_xml(&self, script: &str) -> String {
        format!(
            "<kernel>{}</kernel><initrd>{}</initrd><cmdline>{} {}</cmdline>",
            self.kernel.display(),
            self.initrd.display(),
            self.cmdline(),
            run_cmdline(script)
        )
    }
}

/// A guest script that prints `tick-N-BOOTID` once a second: the count shows a guest running
/// on, the boot id tells one restored or migrated from one booted again.
pub const TICKING: &str = "id=$(cat /proc/sys/kernel/random/uuid); i=0; \
                           while true; do i=$((i+1)); echo tick-$i-$id; sleep 1; done";

/// The last tick [`TICKING`] printed in `text`: its count and boot id.
pub fn last_tick(text: &str) -> Option<(u64, String)> {
    let re = regex::Regex::new(r"tick-(\d+)-([0-9a-f-]{36})").unwrap();
    let c = re.captures_iter(text).last()?;
    Some((c[1].parse().ok()?, c[2].to_string()))
}

/// The last tick [`TICKING`] printed in console log `file`.
pub fn last_tick_in(file: &Path) -> Option<(u64, String)> {
    last_tick(&String::from_utf8_lossy(&std::fs::read(file).ok()?))
}

fn cache_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bootkit")
}

/// The Linux kit, built on first use. `None` (after a loud message) when the packages cannot
/// be downloaded: the caller skips its test.
pub fn linux() -> Option<LinuxKit> {
    static KIT: OnceLock<Mutex<Option<Option<LinuxKit>>>> = OnceLock::new();
    let cell = KIT.get_or_init(|| Mutex::new(None));
    let mut g = cell.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = &*g {
        return k.clone();
    }
    let kit = match build_linux() {
        Ok(k) => Some(k),
        Err(e) => {
            eprintln!(
                "\n========================================================================\n\
                 SKIPPED: cannot build the Linux boot kit: {e}\n\
                 (needs apt-get download of linux-image-*-amd64 and busybox-static)\n\
                 ========================================================================\n"
            );
            None
        }
    };
    *g = Some(kit.clone());
    kit
}

/// Debian's arm64 kernel (`vmlinuz-*-arm64`, an uncompressed `Image`), for aarch64 guests:
/// `DOMDRIVER_ARM64_KERNEL` when set, else fetched once with apt using package lists of its
/// own (`APT::Architectures=arm64` in a private state dir: the host's dpkg and apt
/// configuration are left alone). `None`, after a loud message, when that fails.
pub fn arm64_kernel() -> Option<PathBuf> {
    if let Some(k) = std::env::var_os("DOMDRIVER_ARM64_KERNEL") {
        return Some(PathBuf::from(k));
    }
    static KERNEL: OnceLock<Option<PathBuf>> = OnceLock::new();
    KERNEL
        .get_or_init(|| match fetch_arm64_kernel() {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!(
                    "\n========================================================================\n\
                     SKIPPED: cannot fetch an arm64 Debian kernel: {e}\n\
                     (set DOMDRIVER_ARM64_KERNEL to an arm64 Image to run this test)\n\
                     ========================================================================\n"
                );
                None
            }
        })
        .clone()
}

fn fetch_arm64_kernel() -> Result<PathBuf, String> {
    let root = cache_root().join("arm64");
    let done = root.join("vmlinuz");
    if done.is_file() {
        return Ok(done);
    }
    let lists = root.join("lists");
    let cache = root.join("cache");
    for d in [lists.join("partial"), cache.join("archives/partial")] {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let lockf = File::create(root.join(".lock")).map_err(|e| e.to_string())?;
    let _lock = nix::fcntl::Flock::lock(lockf, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking the arm64 cache: {e}"))?;
    if done.is_file() {
        return Ok(done);
    }
    let opts = [
        format!("Dir::State::Lists={}", lists.display()),
        format!("Dir::Cache={}", cache.display()),
        "APT::Architectures=arm64".to_string(),
        "APT::Architecture=arm64".to_string(),
    ];
    let apt = |tool: &str| {
        let mut c = Command::new(tool);
        for o in &opts {
            c.arg("-o").arg(o);
        }
        c
    };
    run(apt("apt-get").args(["update", "-qq"]))?;
    let deps = run(apt("apt-cache").args(["depends", "linux-image-arm64"]))?;
    let package = kernel_dependency(&deps, "linux-image-arm64", "-arm64")?;
    let work = tempfile::tempdir_in(&root).map_err(|e| e.to_string())?;
    run(apt("apt-get")
        .args(["download", "-qq", &package])
        .current_dir(work.path()))?;
    let deb = std::fs::read_dir(work.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let x = work.path().join("x");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
    let vmlinuz = find_vmlinuz(&x)?;
    std::fs::copy(&vmlinuz, work.path().join("vmlinuz")).map_err(|e| e.to_string())?;
    std::fs::rename(work.path().join("vmlinuz"), &done).map_err(|e| e.to_string())?;
    // The lists and the .deb are 70 MB that nothing needs any more.
    let _ = std::fs::remove_dir_all(&lists);
    let _ = std::fs::remove_dir_all(&cache);
    eprintln!("bootkit: fetched {package} -> {}", done.display());
    Ok(done)
}

/// `/boot/vmlinuz-*` of a kernel package unpacked in `x`.
fn find_vmlinuz(x: &Path) -> Result<PathBuf, String> {
    std::fs::read_dir(x.join("boot"))
        .map_err(|e| format!("kernel package has no /boot: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .ok_or_else(|| "no /boot/vmlinuz-* in the kernel package".to_string())
}

/// The kernel package metapackage `meta` (`linux-image-amd64`) depends on, from `apt-cache
/// depends` output: the generic flavour (`-cloud-` lacks drivers).
fn kernel_dependency(deps: &str, meta: &str, suffix: &str) -> Result<String, String> {
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with(suffix) && !p.contains("cloud"))
        .map(str::to_string)
        .ok_or_else(|| format!("apt-cache depends {meta} named no kernel: {deps}"))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The generic kernel `linux-image-amd64` depends on (not `-cloud-`, which lacks drivers).
fn kernel_package() -> Result<String, String> {
    let find = || -> Result<String, String> {
        let out = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
        kernel_dependency(&out, "linux-image-amd64", "-amd64")
    };
    find().or_else(|first| {
        // A fresh machine may have no package lists yet.
        eprintln!("bootkit: {first}; running apt-get update");
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        find()
    })
}

fn build_linux() -> Result<LinuxKit, String> {
    let root = cache_root();
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    // Test binaries of other crates' targets share nothing with us, but two test processes of
    // this one may build at once: serialise them.
    let lockf = File::create(root.join(".lock")).map_err(|e| e.to_string())?;
    let _lock = nix::fcntl::Flock::lock(lockf, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking the boot kit cache: {e}"))?;

    let package = match std::fs::read_to_string(root.join("current")) {
        Ok(p)
            if root
                .join(format!("{}-kit{KIT_VERSION}", p.trim()))
                .join("initrd.gz")
                .is_file() =>
        {
            p.trim().to_string()
        }
        _ => kernel_package()?,
    };
    let dir = root.join(format!("{package}-kit{KIT_VERSION}"));
    let kit = LinuxKit {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.gz"),
        package: package.clone(),
    };
    if kit.kernel.is_file() && kit.initrd.is_file() {
        return Ok(kit);
    }
    let t0 = std::time::Instant::now();
    eprintln!("bootkit: building {} (once)", dir.display());
    let work = tempfile::tempdir_in(&root).map_err(|e| e.to_string())?;
    let debs = work.path().join("debs");
    let x = work.path().join("x");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    for pkg in [package.as_str(), "busybox-static"] {
        run(Command::new("apt-get")
            .args(["download", "-qq", pkg])
            .current_dir(&debs))?;
    }
    for deb in std::fs::read_dir(&debs).map_err(|e| e.to_string())? {
        let deb = deb.map_err(|e| e.to_string())?.path();
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
    }
    let vmlinuz = find_vmlinuz(&x)?;

    let mut ko = HashMap::new();
    index_modules(&x.join("lib/modules"), &mut ko)?;
    let mut order = Vec::new();
    for m in MODULES {
        resolve(m, &ko, &mut order, &mut Vec::new())?;
    }
    let mut extra = order.clone();
    for m in EXTRA_MODULES {
        resolve(m, &ko, &mut extra, &mut Vec::new())?;
    }

    let mut cpio = Cpio::default();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "etc/acpi",
        "lib",
        "lib/modules",
        "root",
        "mnt",
        "run-share",
    ] {
        cpio.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    cpio.chardev("dev/console", 5, 1);
    let busybox = std::fs::read(x.join("bin/busybox")).map_err(|e| format!("busybox: {e}"))?;
    cpio.file("bin/busybox", 0o755, &busybox);
    let mut modules_list = String::new();
    for m in &order {
        let data = std::fs::read(&ko[m]).map_err(|e| format!("{}: {e}", ko[m].display()))?;
        let dest = format!("lib/modules/{m}.ko");
        cpio.file(&dest, 0o644, &data);
        modules_list.push_str(&format!("/{dest}\n"));
    }
    cpio.file("etc/modules", 0o644, modules_list.as_bytes());
    let mut extra_list = String::new();
    for m in &extra[order.len()..] {
        let data = std::fs::read(&ko[m]).map_err(|e| format!("{}: {e}", ko[m].display()))?;
        cpio.file(&format!("lib/modules/{m}.ko"), 0o644, &data);
        extra_list.push_str(&format!("/lib/modules/{m}.ko\n"));
    }
    cpio.file("etc/modules-extra", 0o644, extra_list.as_bytes());
    // busybox acpid maps an input event to "button/power PWRF 00000080", then runs, in the
    // -c dir, the action of the first line whose key is a substring of that: so the key is
    // "PWRF" ("PWRF/00000080", its built-in default action, would be a file path).
    cpio.file("etc/acpid.conf", 0o644, b"PWRF power\n");
    cpio.file("etc/acpi/power", 0o755, b"#!/bin/sh\nexec poweroff -f\n");
    let init = format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do insmod "$m" || echo "insmod $m failed"; done
acpid -d -c /etc/acpi -a /etc/acpid.conf &
# The marker promises that a power button press works: wait (up to 10 s) until acpid has
# opened the input devices, rather than sleeping and hoping.
acpid_pid=$!
i=0
while [ $i -lt 100 ] && ! ls -l /proc/$acpid_pid/fd 2>/dev/null | grep -q /dev/input/event; do
    sleep 0.1
    i=$((i + 1))
done
# The test script: base64 on the command line (domdriver.run=), else run.sh on the 9p
# share tagged {RUN_TAG}.
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        domdriver.run=*) echo "${{arg#domdriver.run=}}" | base64 -d > /tmp/run.sh ;;
    esac
done
if [ ! -s /tmp/run.sh ] && mkdir -p /run-share &&
    mount -t 9p -o trans=virtio,version=9p2000.L {RUN_TAG} /run-share 2>/dev/null; then
    cp /run-share/run.sh /tmp/run.sh 2>/dev/null
fi
echo {GUEST_MARKER}
if [ -s /tmp/run.sh ]; then
    echo {RUN_BEGIN}
    sh /tmp/run.sh
    echo "{RUN_END} rc=$?"
fi
while :; do sleep 3600; done
"#
    );
    cpio.file("init", 0o755, init.as_bytes());
    let raw = cpio.finish();

    let stage = work.path().join("kit");
    std::fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
    std::fs::copy(&vmlinuz, stage.join("vmlinuz")).map_err(|e| e.to_string())?;
    let gz = File::create(stage.join("initrd.gz")).map_err(|e| e.to_string())?;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(gz)
        .spawn()
        .map_err(|e| format!("gzip: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("gzip: no stdin")?
        .write_all(&raw)
        .map_err(|e| format!("gzip: {e}"))?;
    let st = child.wait().map_err(|e| format!("gzip: {e}"))?;
    if !st.success() {
        return Err(format!("gzip: {st}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&stage, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cur = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join("current"))
        .map_err(|e| e.to_string())?;
    writeln!(cur, "{package}").map_err(|e| e.to_string())?;
    // Older kits (another kernel, an older KIT_VERSION) are 80 MB each of nothing.
    for e in std::fs::read_dir(&root)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let p = e.path();
        if p != dir && p.is_dir() && e.file_name().to_string_lossy().contains("-kit") {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
    eprintln!(
        "bootkit: built {} (modules {:?}) in {:?}",
        dir.display(),
        order,
        t0.elapsed()
    );
    Ok(kit)
}

/// Every `.ko` under `dir`, by module name (`-` and `_` are the same to the kernel).
fn index_modules(dir: &Path, out: &mut HashMap<String, PathBuf>) -> Result<(), String> {
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.is_dir() {
            index_modules(&p, out)?;
        } else if let Some(stem) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            out.insert(stem.replace('-', "_"), p.clone());
        }
    }
    Ok(())
}

/// Post-order: dependencies before the modules that need them.
fn resolve(
    name: &str,
    ko: &HashMap<String, PathBuf>,
    order: &mut Vec<String>,
    path: &mut Vec<String>,
) -> Result<(), String> {
    let name = name.replace('-', "_");
    if order.contains(&name) {
        return Ok(());
    }
    if path.contains(&name) {
        return Err(format!("module dependency cycle: {path:?} -> {name}"));
    }
    let file = ko
        .get(&name)
        .ok_or_else(|| format!("module {name} not found (built in, or compressed?)"))?;
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    path.push(name.clone());
    for dep in modinfo(&data, "depends")
        .ok_or_else(|| format!("{}: no .modinfo depends=", file.display()))?
        .split(',')
        .filter(|d| !d.is_empty())
    {
        resolve(dep, ko, order, path)?;
    }
    path.pop();
    order.push(name);
    Ok(())
}

/// `key=value` from an ELF64 little-endian module's `.modinfo` section.
fn modinfo(elf: &[u8], key: &str) -> Option<String> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let shstrndx = usize::from(u16_at(0x3e)?);
    let section = |i: usize| -> Option<(u32, usize, usize)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32_at(h)?,
            usize::try_from(u64_at(h + 0x18)?).ok()?,
            usize::try_from(u64_at(h + 0x20)?).ok()?,
        ))
    };
    let (_, stroff, strsize) = section(shstrndx)?;
    let strtab = elf.get(stroff..stroff.checked_add(strsize)?)?;
    for i in 0..shnum {
        let (name, off, size) = section(i)?;
        let n = strtab.get(name as usize..)?;
        let n = &n[..n.iter().position(|&b| b == 0)?];
        if n != b".modinfo" {
            continue;
        }
        let body = elf.get(off..off.checked_add(size)?)?;
        let prefix = format!("{key}=");
        return body
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned());
    }
    None
}

/// A cpio archive in the "newc" format the kernel unpacks as its initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }

    fn chardev(&mut self, name: &str, major: u32, minor: u32) {
        self.entry(name, 0o020600, (major, minor), &[]);
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) {
        self.entry(name, 0o100000 | perm, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// A 512-byte MBR boot sector: writes [`BOOT_SECTOR_MARKER`] and CR LF to COM1 (port 0x3f8)
/// in real mode, then halts forever. The BIOS loads it at 0x7c00.
pub fn boot_sector() -> Vec<u8> {
    let mut msg = BOOT_SECTOR_MARKER.as_bytes().to_vec();
    msg.extend_from_slice(b"\r\n\0");
    let mut code: Vec<u8> = vec![
        0x31, 0xc0, // xor ax, ax
        0x8e, 0xd8, // mov ds, ax       (the BIOS may jump to 07c0:0000 or 0000:7c00)
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xbe, 0x00, 0x00, // mov si, msg    (patched below)
        0xfc, // cld
        // loop:
        0xac, // lodsb
        0x84, 0xc0, // test al, al
        0x74, 0x03, // jz done (skip out + jmp)
        0xee, // out dx, al
        0xeb, 0xf8, // jmp loop (-8: back to lodsb)
        // done:
        0xfa, // cli
        0xf4, // hlt
        0xeb, 0xfd, // jmp hlt (-3)
    ];
    let msg_addr = 0x7c00u16 + code.len() as u16;
    code[8..10].copy_from_slice(&msg_addr.to_le_bytes());
    code.extend_from_slice(&msg);
    assert!(code.len() <= 510);
    code.resize(510, 0);
    code.extend_from_slice(&[0x55, 0xaa]);
    code
}

/// The host's `qemu-ga` (Debian's qemu-guest-agent, which scripts/test installs).
pub const QEMU_GA: &str = "/usr/sbin/qemu-ga";

/// `kit`'s initramfs with the host's QEMU guest agent added (the binary, the libraries `ldd`
/// names, and a `/sbin/shutdown` that powers off as the agent's `guest-shutdown` asks), in
/// `dir`. The kernel unpacks concatenated archives, so the overlay follows the kit's as is.
/// A test script starts the agent with [`AGENT_START`].
pub fn agent_initrd(kit: &LinuxKit, dir: &Path) -> Result<PathBuf, String> {
    let ldd = Command::new("ldd")
        .arg(QEMU_GA)
        .output()
        .map_err(|e| format!("ldd {QEMU_GA}: {e}"))?;
    if !ldd.status.success() {
        return Err(format!(
            "ldd {QEMU_GA}: {} (install qemu-guest-agent)",
            String::from_utf8_lossy(&ldd.stderr).trim()
        ));
    }
    let mut files = vec![QEMU_GA.to_string()];
    for w in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if w.starts_with('/') {
            files.push(w.to_string());
        }
    }
    let mut cpio = Cpio::default();
    let mut dirs = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.trim_start_matches('/');
        let mut p = Path::new(rel).parent();
        let mut chain = Vec::new();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            chain.push(d.to_string_lossy().into_owned());
            p = d.parent();
        }
        for d in chain.into_iter().rev() {
            if dirs.insert(d.clone()) {
                cpio.dir(&d);
            }
        }
        let data = std::fs::read(f).map_err(|e| format!("{f}: {e}"))?;
        cpio.file(rel, 0o755, &data);
    }
    for d in ["sbin", "var", "var/run", "run"] {
        if dirs.insert(d.to_string()) {
            cpio.dir(d);
        }
    }
    // qemu-ga runs `shutdown -P +0 ...` and waits for it: answer, then power off.
    cpio.file(
        "sbin/shutdown",
        0o755,
        b"#!/bin/sh\n(sleep 0.5; poweroff -f) >/dev/null 2>&1 &\nexit 0\n",
    );
    let mut data = std::fs::read(&kit.initrd).map_err(|e| e.to_string())?;
    // The kernel finds the next archive only at a 4-byte boundary (zeros are skipped).
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    data.extend_from_slice(&cpio.finish());
    let out = dir.join("initrd-agent");
    std::fs::write(&out, data).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// A test script's lines that start the agent on its virtio-serial port and say so.
pub const AGENT_START: &str = r#"for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name)" = org.qemu.guest_agent.0 ] && dev=/dev/${p##*/}
done
/usr/sbin/qemu-ga -m virtio-serial -p "$dev" -t /run &
echo AGENT-STARTED
"#;
