//! Test fleets: guests for tests and CI, described in Rust rather than XML.
//!
//! What u-root's `qemu` package and LAVA's QEMU device give their users: boot a kernel (any
//! architecture QEMU emulates) with an initramfs and a command line, share host directories
//! with it, wire guests together over loopback sockets, and wait for lines on its serial
//! console. A [`GuestBuilder`] becomes an ordinary [`DomainDef`] (so [`DomainDef::to_xml`]
//! shows exactly what runs) and [`GuestBuilder::start`] runs it through the driver like any
//! other domain; the [`StartedGuest`] it returns destroys the guest when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use domdriver::Connect;
//! use domdriver::fleet::GuestBuilder;
//!
//! let conn = Connect::open(Some("qemu:///embed?root=/tmp/fleet"))?;
//! let mut guest = GuestBuilder::new("smoke")
//!     .arch("amd64")
//!     .kernel("/boot/vmlinuz")
//!     .initrd("/tmp/initrd.gz")
//!     .cmdline("console=ttyS0 panic=-1")
//!     .memory_mib(256)
//!     .start(&conn)?;
//! guest.expect("login:", Duration::from_secs(120))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A guest booted once can be saved as a [`Template`] ([`StartedGuest::save_template`]) and
//! started again as many clones, each carrying on from where it was saved without booting
//! ([`Template::clone_guest`]).
//!
//! The console is a `<serial type='file'>`: QEMU writes it to a file and
//! [`StartedGuest::expect`] reads that file, so nothing here needs a terminal or a socket.
//! Timeouts given to `expect` are multiplied by `VSH_TIMEOUT_MULTIPLIER` (slow CI hosts,
//! TCG on a busy machine).

pub mod pvh;
pub mod template;

pub use template::Template;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Connect;
use crate::domain::{DomainDef, DomainError, FormatFlags};
use crate::driver::DriverError;
use crate::driver::domain::Domain;
use crate::driver::status::{GuestStatus, is_same_live_process};
use crate::xmlfmt::XmlWriter;

/// Errors of the fleet layer.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The builder was given something that cannot make a guest.
    #[error("guest '{guest}': {msg}")]
    Invalid { guest: String, msg: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The kernel cannot be booted the fast way ([`GuestBuilder::pvh_boot`]).
    #[error(transparent)]
    Pvh(#[from] pvh::PvhError),
    #[error("guest '{guest}': {path}: {source}")]
    Io {
        guest: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `expect` gave up; `tail` is the end of the console output for the report.
    #[error(
        "guest '{guest}': '{pattern}' not seen on the console within {waited:?}; last output:\n{tail}"
    )]
    Timeout {
        guest: String,
        pattern: String,
        waited: Duration,
        tail: String,
    },
    /// QEMU is gone while `expect` waited.
    #[error("guest '{guest}': QEMU exited before '{pattern}' was seen; last output:\n{tail}")]
    Exited {
        guest: String,
        pattern: String,
        tail: String,
    },
}

/// libvirt's name for an architecture as users type it: Debian's and Go's names (`arm64`,
/// `amd64`, `armhf`, `ppc64el`, ...) are mapped, libvirt's own names kept. `None` when it is
/// neither.
pub fn canonical_arch(arch: &str) -> Option<&'static str> {
    let alias = match arch {
        "arm64" => "aarch64",
        "amd64" | "x64" | "x86-64" => "x86_64",
        "386" | "i386" | "i486" | "i586" | "x86" => "i686",
        "arm" | "armhf" | "armel" => "armv7l",
        "ppc64el" => "ppc64le",
        "loong64" => "loongarch64",
        "mips64le" => "mips64el",
        "mipsle" => "mipsel",
        other => other,
    };
    crate::capabilities::qemu::ARCHES
        .iter()
        .map(|(a, _)| *a)
        .find(|a| *a == alias)
}

/// The multiplier for every timeout here, the console's: `VSH_TIMEOUT_MULTIPLIER` (a positive
/// number), else 1.
pub use crate::driver::console::timeout_multiplier;

/// `d` scaled by [`timeout_multiplier`].
pub fn scaled(d: Duration) -> Duration {
    d.mul_f64(timeout_multiplier())
}

/// A kernel argument carrying shell script `script` as `domdriver.run=BASE64`, for initramfs
/// images whose init runs it (this project's test boot kit does, once the guest is up). The
/// whole kernel command line is limited to 2 KiB on most architectures: keep scripts short,
/// or put them on a 9p share.
pub fn run_script_arg(script: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("domdriver.run=");
    for c in script.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(c.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

/// How a NIC reaches its peers: QEMU's socket networks, always on 127.0.0.1, so guests talk
/// to each other and never to the host's networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketNet {
    /// Listen on 127.0.0.1:`port` (`<interface type='server'>`); one `Client` connects.
    Server { port: u16 },
    /// Connect to a `Server` on 127.0.0.1:`port` (`<interface type='client'>`).
    Client { port: u16 },
    /// Send datagrams to 127.0.0.1:`port` from 127.0.0.1:`local_port`
    /// (`<interface type='udp'>`); the peer has the two ports the other way round.
    Udp { port: u16, local_port: u16 },
}

#[derive(Debug, Clone)]
struct Nic {
    net: SocketNet,
    mac: String,
    model: String,
}

#[derive(Debug, Clone)]
struct Share {
    host_dir: PathBuf,
    tag: String,
    readonly: bool,
    /// virtiofs (a virtiofsd per share) rather than 9p.
    virtiofs: bool,
}

impl Share {
    fn kind(&self) -> &'static str {
        if self.virtiofs { "virtiofs" } else { "9p" }
    }
}

/// A guest described in Rust: everything a kernel-booting test needs, as a domain.
///
/// Each setter returns the builder; nothing is checked until [`GuestBuilder::build`] (or
/// `start`), which names the first problem. Defaults: the host's architecture, TCG
/// (`<domain type='qemu'>`), 256 MiB, one vCPU, `virt` machine on ARM (the rest take their
/// emulator's default), console log in the connection's log directory.
#[derive(Debug, Clone)]
pub struct GuestBuilder {
    name: String,
    arch: Option<String>,
    virt_type: String,
    machine: Option<String>,
    cpu_model: Option<String>,
    emulator: Option<PathBuf>,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    cmdline: Option<String>,
    memory_mib: u64,
    cpus: u32,
    serial_log: Option<PathBuf>,
    qemu_args: Vec<String>,
    qemu_env: Vec<(String, String)>,
    shares: Vec<Share>,
    vfat_dirs: Vec<PathBuf>,
    disk_images: Vec<(PathBuf, String)>,
    rng: bool,
    nics: Vec<Nic>,
    pvh: bool,
    template_ram: bool,
}

impl GuestBuilder {
    /// A guest called `name` (a domain name: it must be unique on the connection).
    pub fn new(name: impl Into<String>) -> Self {
        GuestBuilder {
            name: name.into(),
            arch: None,
            virt_type: "qemu".into(),
            machine: None,
            cpu_model: None,
            emulator: None,
            kernel: None,
            initrd: None,
            cmdline: None,
            memory_mib: 256,
            cpus: 1,
            serial_log: None,
            qemu_args: Vec::new(),
            qemu_env: Vec::new(),
            shares: Vec::new(),
            vfat_dirs: Vec::new(),
            disk_images: Vec::new(),
            rng: false,
            nics: Vec::new(),
            pvh: false,
            template_ram: true,
        }
    }

    /// Whether the guest's RAM lives in a file of its own (`LIB/fleet-ram/NAME.ram`, mapped
    /// shared, removed with the guest), on by default. It is what makes clones cheap:
    /// [`StartedGuest::save_template`] then keeps that file as the template's RAM and saves
    /// only the device state, and each clone maps the file copy-on-write instead of loading
    /// the RAM from a migration stream. Off, or for a guest whose memory the XML places
    /// itself (virtiofs shares need shared memfd memory), a template holds the whole RAM in
    /// its stream, as `virsh save` writes it.
    pub fn template_ram(mut self, on: bool) -> Self {
        self.template_ram = on;
        self
    }

    /// Boot the kernel uncompressed through its PVH entry point: [`GuestBuilder::kernel`]'s
    /// bzImage is extracted once into the connection's cache (see [`pvh::pvh_kernel`]) and
    /// that `vmlinux` is what QEMU loads. Under TCG this skips the kernel's own
    /// decompression, most of a small guest's boot. x86 only.
    pub fn pvh_boot(mut self, on: bool) -> Self {
        self.pvh = on;
        self
    }

    /// The guest architecture, in libvirt's spelling or a common alias (`arm64`, `amd64`,
    /// ...; see [`canonical_arch`]). The emulator is the one the connection's capabilities
    /// list for it, unless [`GuestBuilder::emulator`] names one.
    pub fn arch(mut self, arch: impl Into<String>) -> Self {
        self.arch = Some(arch.into());
        self
    }

    /// `qemu` (TCG, the default) or `kvm`.
    pub fn virt_type(mut self, t: impl Into<String>) -> Self {
        self.virt_type = t.into();
        self
    }

    /// The machine type (`pc`, `q35`, `virt`, ...).
    pub fn machine(mut self, m: impl Into<String>) -> Self {
        self.machine = Some(m.into());
        self
    }

    /// A named CPU model (`cortex-a57`, `Skylake-Client`, ...).
    pub fn cpu_model(mut self, m: impl Into<String>) -> Self {
        self.cpu_model = Some(m.into());
        self
    }

    /// An explicit emulator binary (`<emulator>`).
    pub fn emulator(mut self, p: impl Into<PathBuf>) -> Self {
        self.emulator = Some(p.into());
        self
    }

    /// Direct kernel boot: the kernel image.
    pub fn kernel(mut self, p: impl Into<PathBuf>) -> Self {
        self.kernel = Some(p.into());
        self
    }

    /// The initramfs for direct kernel boot.
    pub fn initrd(mut self, p: impl Into<PathBuf>) -> Self {
        self.initrd = Some(p.into());
        self
    }

    /// The kernel command line. See [`GuestBuilder::console_arg`] for the console.
    pub fn cmdline(mut self, c: impl Into<String>) -> Self {
        self.cmdline = Some(c.into());
        self
    }

    pub fn memory_mib(mut self, m: u64) -> Self {
        self.memory_mib = m;
        self
    }

    pub fn cpus(mut self, n: u32) -> Self {
        self.cpus = n;
        self
    }

    /// Where QEMU writes the first serial port (truncated at each start).
    pub fn serial_log(mut self, p: impl Into<PathBuf>) -> Self {
        self.serial_log = Some(p.into());
        self
    }

    /// An argument appended to QEMU's command line as is (`<qemu:arg>`).
    pub fn qemu_arg(mut self, a: impl Into<String>) -> Self {
        self.qemu_args.push(a.into());
        self
    }

    /// Several [`GuestBuilder::qemu_arg`]s.
    pub fn qemu_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.qemu_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// A variable in QEMU's environment (`<qemu:env>`); a connection may forbid these
    /// (`ConnectOptions::allow_domain_env`).
    pub fn qemu_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.qemu_env.push((name.into(), value.into()));
        self
    }

    /// Share host directory `host_dir` over virtio-9p with mount tag `tag`: in the guest,
    /// `mount -t 9p -o trans=virtio TAG /mnt`.
    pub fn share_9p(mut self, host_dir: impl Into<PathBuf>, tag: &str, readonly: bool) -> Self {
        self.shares.push(Share {
            host_dir: host_dir.into(),
            tag: tag.to_string(),
            readonly,
            virtiofs: false,
        });
        self
    }

    /// Share host directory `host_dir` over virtiofs with mount tag `tag` (a virtiofsd per
    /// share, started with the guest): in the guest, `mount -t virtiofs TAG /mnt`. The
    /// guest's memory becomes shared memory (memfd), as virtiofs requires.
    pub fn share_virtiofs(mut self, host_dir: impl Into<PathBuf>, tag: &str) -> Self {
        self.shares.push(Share {
            host_dir: host_dir.into(),
            tag: tag.to_string(),
            readonly: false,
            virtiofs: true,
        });
        self
    }

    /// Show host directory `dir` to the guest as a read-only FAT disk (QEMU's vvfat), on
    /// virtio, in the order added: `/dev/vda`, `/dev/vdb`, ...; the FAT file system is on their first
    /// partition (`/dev/vda1`), as vvfat writes a partition table.
    pub fn vfat_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.vfat_dirs.push(dir.into());
        self
    }

    /// A writable virtio disk on image file `path` of format `format` (`raw`, `qcow2`), after
    /// the [`GuestBuilder::vfat_dir`]s: with no vfat dirs the first is `/dev/vda`. A
    /// [`Template`] made from the guest keeps a copy as the read-only base of its clones.
    pub fn disk_image(mut self, path: impl Into<PathBuf>, format: &str) -> Self {
        self.disk_images.push((path.into(), format.to_string()));
        self
    }

    /// A virtio RNG fed from the host's `/dev/urandom`.
    pub fn virtio_rng(mut self) -> Self {
        self.rng = true;
        self
    }

    /// A virtio NIC on a loopback socket network, with MAC address `mac`.
    pub fn socket_net(self, net: SocketNet, mac: &str) -> Self {
        self.socket_net_model(net, mac, "virtio")
    }

    /// [`GuestBuilder::socket_net`] with another NIC model (`e1000`, `rtl8139`, ...).
    pub fn socket_net_model(mut self, net: SocketNet, mac: &str, model: &str) -> Self {
        self.nics.push(Nic {
            net,
            mac: mac.to_string(),
            model: model.to_string(),
        });
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The architecture in libvirt's spelling (the host's when none was given).
    pub fn resolved_arch(&self) -> Result<&'static str, FleetError> {
        let arch = match &self.arch {
            Some(a) => a.as_str(),
            None => crate::capabilities::qemu::host_arch(),
        };
        canonical_arch(arch).ok_or_else(|| {
            self.invalid(format!(
                "unknown architecture '{arch}' (use libvirt's names such as x86_64, aarch64, \
                 or Debian's such as amd64, arm64)"
            ))
        })
    }

    /// The kernel argument that puts the console on the first serial port of this guest's
    /// architecture (`console=ttyS0`, `console=ttyAMA0` on ARM, ...).
    pub fn console_arg(&self) -> Result<&'static str, FleetError> {
        Ok(match self.resolved_arch()? {
            "aarch64" | "armv7l" | "armv6l" => "console=ttyAMA0",
            "ppc64" | "ppc64le" => "console=hvc0",
            "s390x" => "console=ttysclp0",
            _ => "console=ttyS0",
        })
    }

    fn invalid(&self, msg: String) -> FleetError {
        FleetError::Invalid {
            guest: self.name.clone(),
            msg,
        }
    }

    /// The console log path: the one given, else `LOGDIR/NAME.console.log` of `conn`.
    fn serial_path(&self, conn: &Connect) -> PathBuf {
        self.serial_log
            .clone()
            .unwrap_or_else(|| conn.dirs().log.join(format!("{}.console.log", self.name)))
    }

    fn check(&self) -> Result<(), FleetError> {
        if self.memory_mib == 0 {
            return Err(self.invalid("memory must be at least 1 MiB".into()));
        }
        if self.cpus == 0 {
            return Err(self.invalid("a guest needs at least one vCPU".into()));
        }
        if self.initrd.is_some() && self.kernel.is_none() {
            return Err(self.invalid("an initrd needs a kernel".into()));
        }
        for (what, p) in [("kernel", &self.kernel), ("initrd", &self.initrd)] {
            if let Some(p) = p
                && !p.is_file()
            {
                return Err(self.invalid(format!("{what} {} is not a file", p.display())));
            }
        }
        for s in &self.shares {
            if s.tag.is_empty() || s.tag.len() > 31 {
                return Err(self.invalid(format!(
                    "{} mount tag '{}' must be 1 to 31 bytes long",
                    s.kind(),
                    s.tag
                )));
            }
            if !s.host_dir.is_dir() {
                return Err(self.invalid(format!(
                    "{} share {} is not a directory",
                    s.kind(),
                    s.host_dir.display()
                )));
            }
        }
        for d in &self.vfat_dirs {
            if !d.is_dir() {
                return Err(self.invalid(format!("vfat dir {} is not a directory", d.display())));
            }
        }
        for n in &self.nics {
            let ports: &[u16] = match &n.net {
                SocketNet::Server { port } | SocketNet::Client { port } => &[*port],
                SocketNet::Udp { port, local_port } => &[*port, *local_port],
            };
            let octets: Vec<Option<u8>> = n
                .mac
                .split(':')
                .map(|o| {
                    (o.len() == 2)
                        .then(|| u8::from_str_radix(o, 16).ok())
                        .flatten()
                })
                .collect();
            match octets.as_slice() {
                [Some(first), rest @ ..] if rest.len() == 5 && rest.iter().all(Option::is_some) => {
                    if first & 1 == 1 {
                        return Err(self.invalid(format!(
                            "expected unicast mac address, found multicast '{}'",
                            n.mac
                        )));
                    }
                }
                _ => {
                    return Err(self.invalid(format!("unable to parse mac address '{}'", n.mac)));
                }
            }
            if ports.contains(&0) {
                return Err(self.invalid(format!(
                    "socket network of NIC {}: port 0 is not a port",
                    n.mac
                )));
            }
        }
        if self.vfat_dirs.len() + self.disk_images.len() > 26 {
            return Err(self.invalid("at most 26 virtio disks (vda..vdz)".into()));
        }
        for (p, fmt) in &self.disk_images {
            if !p.is_file() {
                return Err(self.invalid(format!("disk image {} is not a file", p.display())));
            }
            if !matches!(fmt.as_str(), "raw" | "qcow2") {
                return Err(self.invalid(format!(
                    "disk image {}: format '{fmt}' is neither raw nor qcow2",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// The domain XML of this guest, with its console log at `serial`.
    fn xml_with(&self, serial: &Path) -> Result<String, FleetError> {
        self.check()?;
        let arch = self.resolved_arch()?;
        let machine = self.machine.clone().or_else(|| {
            matches!(arch, "aarch64" | "armv7l" | "armv6l").then(|| "virt".to_string())
        });
        let path = |p: &Path| p.display().to_string();
        let mut w = XmlWriter::new();
        let mut root = w.elem("domain").attr("type", &self.virt_type);
        if !self.qemu_args.is_empty() || !self.qemu_env.is_empty() {
            root = root.attr("xmlns:qemu", "http://libvirt.org/schemas/domain/qemu/1.0");
        }
        root.open();
        w.text_elem("name", &self.name);
        w.elem("memory")
            .attr("unit", "MiB")
            .text(&self.memory_mib.to_string());
        if self.shares.iter().any(|s| s.virtiofs) {
            w.elem("memoryBacking").open();
            w.elem("source").attr("type", "memfd").empty();
            w.elem("access").attr("mode", "shared").empty();
            w.close();
        }
        w.text_elem("vcpu", &self.cpus.to_string());
        w.elem("os").open();
        w.elem("type")
            .attr("arch", arch)
            .attr_opt("machine", machine.as_deref())
            .text("hvm");
        if let Some(k) = &self.kernel {
            w.text_elem("kernel", &path(k));
        }
        if let Some(i) = &self.initrd {
            w.text_elem("initrd", &path(i));
        }
        if let Some(c) = &self.cmdline {
            w.text_elem("cmdline", c);
        }
        w.close();
        if let Some(m) = &self.cpu_model {
            w.elem("cpu")
                .attr("mode", "custom")
                .attr("match", "exact")
                .open();
            w.elem("model").attr("fallback", "forbid").text(m);
            w.close();
        }
        w.elem("devices").open();
        if let Some(e) = &self.emulator {
            w.text_elem("emulator", &path(e));
        }
        for (i, d) in self.vfat_dirs.iter().enumerate() {
            w.elem("disk")
                .attr("type", "dir")
                .attr("device", "disk")
                .open();
            w.elem("driver")
                .attr("name", "qemu")
                .attr("type", "fat")
                .empty();
            w.elem("source").attr("dir", path(d)).empty();
            let dev = format!("vd{}", char::from(b'a' + i as u8));
            w.elem("target")
                .attr("dev", dev)
                .attr("bus", "virtio")
                .empty();
            w.elem("readonly").empty();
            w.close();
        }
        for (i, (p, fmt)) in self.disk_images.iter().enumerate() {
            w.elem("disk")
                .attr("type", "file")
                .attr("device", "disk")
                .open();
            w.elem("driver")
                .attr("name", "qemu")
                .attr("type", fmt)
                .empty();
            w.elem("source").attr("file", path(p)).empty();
            let dev = format!("vd{}", char::from(b'a' + (self.vfat_dirs.len() + i) as u8));
            w.elem("target")
                .attr("dev", dev)
                .attr("bus", "virtio")
                .empty();
            w.close();
        }
        for s in &self.shares {
            w.elem("filesystem")
                .attr("type", "mount")
                .attr("accessmode", "passthrough")
                .open();
            if s.virtiofs {
                w.elem("driver").attr("type", "virtiofs").empty();
            }
            w.elem("source").attr("dir", path(&s.host_dir)).empty();
            w.elem("target").attr("dir", &s.tag).empty();
            if s.readonly {
                w.elem("readonly").empty();
            }
            w.close();
        }
        for n in &self.nics {
            let (kind, port, local) = match n.net {
                SocketNet::Server { port } => ("server", port, None),
                SocketNet::Client { port } => ("client", port, None),
                SocketNet::Udp { port, local_port } => ("udp", port, Some(local_port)),
            };
            w.elem("interface").attr("type", kind).open();
            w.elem("mac").attr("address", &n.mac).empty();
            let src = w
                .elem("source")
                .attr("address", "127.0.0.1")
                .attr("port", port);
            match local {
                Some(l) => {
                    src.open();
                    w.elem("local")
                        .attr("address", "127.0.0.1")
                        .attr("port", l)
                        .empty();
                    w.close();
                }
                None => src.empty(),
            }
            w.elem("model").attr("type", &n.model).empty();
            w.close();
        }
        w.elem("serial").attr("type", "file").open();
        w.elem("source").attr("path", path(serial)).empty();
        w.elem("target").attr("port", 0).empty();
        w.close();
        if self.rng {
            w.elem("rng").attr("model", "virtio").open();
            w.elem("backend")
                .attr("model", "random")
                .text("/dev/urandom");
            w.close();
        }
        w.elem("memballoon").attr("model", "none").empty();
        w.close();
        if !self.qemu_args.is_empty() || !self.qemu_env.is_empty() {
            w.elem("qemu:commandline").open();
            for a in &self.qemu_args {
                w.elem("qemu:arg").attr("value", a).empty();
            }
            for (k, v) in &self.qemu_env {
                w.elem("qemu:env").attr("name", k).attr("value", v).empty();
            }
            w.close();
        }
        w.close();
        Ok(w.finish())
    }

    /// The guest as a domain definition, with its console log at `serial` (the builder's
    /// [`GuestBuilder::serial_log`] is used by `start`; a definition needs a path).
    pub fn build_with_serial(&self, serial: &Path) -> Result<DomainDef, FleetError> {
        Ok(crate::domain::parse(&self.xml_with(serial)?)?)
    }

    /// The guest as a domain definition. Its console log is the one set with
    /// [`GuestBuilder::serial_log`], else `NAME.console.log` in the working directory (`start`
    /// puts it in the connection's log directory instead).
    pub fn build(&self) -> Result<DomainDef, FleetError> {
        let serial = self
            .serial_log
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.console.log", self.name)));
        self.build_with_serial(&serial)
    }

    /// The domain XML of [`GuestBuilder::build`], as the driver writes it.
    pub fn to_xml(&self) -> Result<String, FleetError> {
        Ok(self.build()?.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        }))
    }

    /// The domain XML [`GuestBuilder::start`] would define on `conn` (console log included).
    pub fn to_xml_for(&self, conn: &Connect) -> Result<String, FleetError> {
        Ok(self
            .build_with_serial(&self.serial_path(conn))?
            .to_xml(FormatFlags {
                inactive: true,
                secure: true,
            }))
    }

    /// Define the guest on `conn` and start it. The old console log is removed first, so
    /// [`StartedGuest::expect`] only sees this boot. A guest that fails to start is
    /// undefined again.
    pub fn start(mut self, conn: &Connect) -> Result<StartedGuest<'_>, FleetError> {
        if self.pvh
            && let Some(k) = &self.kernel
        {
            self.kernel = Some(pvh::pvh_kernel(k, &conn.dirs().cache.join("kernels"))?);
        }
        let serial = self.serial_path(conn);
        let def = self.build_with_serial(&serial)?;
        let io = |path: &Path| {
            let guest = self.name.clone();
            let path = path.to_path_buf();
            move |source| FleetError::Io {
                guest,
                path,
                source,
            }
        };
        if let Some(dir) = serial.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        match std::fs::remove_file(&serial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&serial)(e)),
            _ => {}
        }
        // Under the state dir, as libvirt's memory_backing_dir (/var/lib/libvirt/qemu/ram):
        // not the runtime dir, a tmpfs often too small for a fleet's RAM (a full one would
        // end the guests with SIGBUS).
        let mut ram = (self.template_ram
            && def.memory_backing.is_none()
            && def.cpu.as_ref().is_none_or(|c| c.numa.is_empty()))
        .then(|| {
            conn.dirs()
                .lib
                .join("fleet-ram")
                .join(format!("{}.ram", self.name))
        });
        if let Some(ram) = &ram {
            new_ram_file(ram).map_err(io(ram))?;
        }
        let xml = def.to_xml(FormatFlags {
            inactive: true,
            secure: false,
        });
        let started = conn.define_domain_xml(&xml).and_then(|dom| {
            let res = match ram.clone() {
                Some(p) => {
                    let res = dom.create_in_ram_file(crate::xml2argv::RamFile {
                        path: p.display().to_string(),
                        shared: true,
                    });
                    match res {
                        // A machine without a RAM backend id: the RAM goes in the stream.
                        Err(DriverError::Argv(crate::xml2argv::Xml2ArgvError::Unsupported(m)))
                            if m.starts_with("guest RAM in a file") =>
                        {
                            let _ = std::fs::remove_file(&p);
                            ram = None;
                            dom.create()
                        }
                        res => res,
                    }
                }
                None => dom.create(),
            };
            match res {
                Ok(()) => Ok(dom),
                Err(e) => {
                    let _ = dom.undefine();
                    Err(e)
                }
            }
        });
        let dom = match started {
            Ok(d) => d,
            Err(e) => {
                if let Some(p) = &ram {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e.into());
            }
        };
        let pid = live_pid(conn, &self.name);
        Ok(StartedGuest {
            conn,
            dom,
            serial,
            seen: 0,
            pid,
            keep: false,
            scratch: ram.iter().cloned().collect(),
            ram,
        })
    }
}

/// A new empty RAM file at `path` (any old one of a guest of that name is gone), private to
/// us (0600): QEMU sizes it when it maps it. Its directory is private too.
fn new_ram_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

/// The pid and start time of `name`'s QEMU, from its status file.
fn live_pid(conn: &Connect, name: &str) -> Option<(i32, u64)> {
    let path = conn.dirs().run.join(format!("{name}.json"));
    GuestStatus::read(name, &path)
        .ok()
        .flatten()
        .map(|s| (s.pid, s.start_time))
}

/// A guest started by [`GuestBuilder::start`]. Dropping it destroys and undefines the
/// domain, unless [`StartedGuest::keep`] was called.
#[derive(Debug)]
pub struct StartedGuest<'c> {
    conn: &'c Connect,
    dom: Domain<'c>,
    serial: PathBuf,
    /// How much of the console log earlier `expect`s consumed.
    seen: usize,
    pid: Option<(i32, u64)>,
    keep: bool,
    /// Files and directories that are this guest's alone (a clone's disk overlays, its RAM
    /// file), removed once it is destroyed.
    scratch: Vec<PathBuf>,
    /// The file the guest's RAM is mapped shared from ([`GuestBuilder::template_ram`]).
    ram: Option<PathBuf>,
}

impl<'c> StartedGuest<'c> {
    pub fn name(&self) -> &str {
        self.dom.name()
    }

    /// The domain, for the driver's other verbs (suspend, shutdown, ...).
    pub fn domain(&self) -> &Domain<'c> {
        &self.dom
    }

    pub fn connection(&self) -> &'c Connect {
        self.conn
    }

    /// QEMU's pid, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.pid
            .filter(|(p, t)| is_same_live_process(*p, *t))
            .map(|(p, _)| p)
    }

    /// The console log file.
    pub fn serial_log(&self) -> &Path {
        &self.serial
    }

    /// Everything the guest has written to its console so far (invalid UTF-8 replaced).
    pub fn console_output(&self) -> String {
        String::from_utf8_lossy(&read_from(&self.serial, 0)).into_owned()
    }

    /// Wait until the console shows `pattern` after what earlier `expect`s matched, for up to
    /// `timeout` × `VSH_TIMEOUT_MULTIPLIER`. Returns the console output from the end of the
    /// previous match through the end of the line holding this one (the rest of that line is
    /// waited for up to a second); the next `expect` starts after it. Wakes on each write to
    /// the console log. Fails early, with the console's last lines, when QEMU exits.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> Result<String, FleetError> {
        let limit = scaled(timeout);
        let start = Instant::now();
        let needle = pattern.as_bytes();
        let mut writes = LogWrites::new(&self.serial);
        // When the pattern showed up before the end of its line.
        let mut matched: Option<Instant> = None;
        loop {
            let buf = read_from(&self.serial, self.seen);
            if let Some(at) = find(&buf, needle) {
                let after = at + needle.len();
                // Through the end of the line: the rest of a line the guest is writing comes
                // within moments, so it is waited for, a little.
                let eol = buf[after..].iter().position(|&b| b == b'\n');
                let first = *matched.get_or_insert_with(Instant::now);
                if eol.is_some()
                    || first.elapsed() >= scaled(LINE_END_WAIT)
                    || start.elapsed() >= limit
                    || self.pid().is_none()
                {
                    let end = eol.map_or(after, |n| after + n + 1);
                    self.seen += end;
                    return Ok(String::from_utf8_lossy(&buf[..end]).into_owned());
                }
                writes.wait(Duration::from_millis(50));
                continue;
            }
            if self.pid().is_none() {
                // One last look: QEMU may have written the line just before exiting.
                let buf = read_from(&self.serial, self.seen);
                if find(&buf, needle).is_some() {
                    continue;
                }
                return Err(FleetError::Exited {
                    guest: self.name().to_string(),
                    pattern: pattern.to_string(),
                    tail: tail(&buf),
                });
            }
            if start.elapsed() >= limit {
                return Err(FleetError::Timeout {
                    guest: self.name().to_string(),
                    pattern: pattern.to_string(),
                    waited: limit,
                    tail: tail(&buf),
                });
            }
            // Woken by QEMU's next write to the log; at the latest after 50 ms, to see
            // whether QEMU still runs.
            writes.wait(Duration::from_millis(50).min(limit.saturating_sub(start.elapsed())));
        }
    }

    /// Leave the guest running (and defined) when this handle is dropped.
    pub fn keep(mut self) -> Domain<'c> {
        self.keep = true;
        self.dom.clone()
    }

    /// Destroy and undefine the guest now, reporting errors that dropping would ignore.
    pub fn destroy(mut self) -> Result<(), FleetError> {
        self.keep = true;
        self.teardown()
    }

    fn teardown(&self) -> Result<(), FleetError> {
        if self.dom.is_active()? {
            self.dom.destroy()?;
        }
        if self.dom.is_persistent()? {
            self.dom.undefine()?;
        }
        for p in &self.scratch {
            let res = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
            match res {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(FleetError::Io {
                        guest: self.name().to_string(),
                        path: p.clone(),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for StartedGuest<'_> {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = self.teardown()
        {
            eprintln!("fleet: cannot destroy guest '{}': {e}", self.name());
        }
    }
}

/// The bytes of `path` from `offset` on; nothing when it cannot be read (not created yet).
/// How long [`StartedGuest::expect`] waits for the rest of the line its pattern is on.
const LINE_END_WAIT: Duration = Duration::from_secs(1);

/// Writes to a console log, as inotify reports them; a plain sleep where inotify can't watch
/// the file (not there yet, or no inotify instance left).
struct LogWrites<'p> {
    path: &'p Path,
    watch: Option<nix::sys::inotify::Inotify>,
}

impl<'p> LogWrites<'p> {
    fn new(path: &'p Path) -> Self {
        let mut w = LogWrites { path, watch: None };
        w.arm();
        w
    }

    fn arm(&mut self) {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        if self.watch.is_some() {
            return;
        }
        let Ok(ino) = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) else {
            return;
        };
        // Gone or replaced (unlinked, renamed over): the next `arm` watches the file then at
        // the path.
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ATTRIB;
        if ino.add_watch(self.path, flags).is_ok() {
            self.watch = Some(ino);
        }
    }

    /// Until the log changes or `most` has passed.
    fn wait(&mut self, most: Duration) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        self.arm();
        let Some(ino) = &self.watch else {
            std::thread::sleep(most);
            return;
        };
        let ms = PollTimeout::from(most.as_millis().min(u16::MAX as u128) as u16);
        let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
            return;
        }
        let stale = ino.read_events().is_ok_and(|evs| {
            evs.iter().any(|e| {
                e.mask.intersects(
                    nix::sys::inotify::AddWatchFlags::IN_DELETE_SELF
                        | nix::sys::inotify::AddWatchFlags::IN_MOVE_SELF
                        | nix::sys::inotify::AddWatchFlags::IN_ATTRIB
                        | nix::sys::inotify::AddWatchFlags::IN_IGNORED,
                )
            })
        });
        if stale {
            self.watch = None;
        }
    }
}

fn read_from(path: &Path, offset: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(offset as u64)).is_ok()
    {
        let _ = f.read_to_end(&mut out);
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The last 20 lines of console output, for error messages.
fn tail(buf: &[u8]) -> String {
    let text = String::from_utf8_lossy(buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_writes_wake_the_waiter_and_follow_a_replaced_file() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("g.log");
        // No file yet: a plain sleep, then the watch once it exists.
        let mut w = LogWrites::new(&log);
        assert!(w.watch.is_none());
        let t = Instant::now();
        w.wait(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
        std::fs::write(&log, b"").unwrap();
        let writer = |log: PathBuf| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                let mut f = std::fs::OpenOptions::new().append(true).open(log).unwrap();
                f.write_all(b"tick\n").unwrap();
            })
        };
        let h = writer(log.clone());
        let t = Instant::now();
        w.wait(Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(20), "woken by the write");
        assert!(w.watch.is_some());
        h.join().unwrap();
        // Replaced by another file at the same path: watched again.
        let other = d.path().join("new.log");
        std::fs::write(&other, b"").unwrap();
        std::fs::rename(&other, &log).unwrap();
        w.wait(Duration::from_millis(10));
        w.wait(Duration::from_millis(10));
        let h = writer(log.clone());
        let t = Instant::now();
        w.wait(Duration::from_secs(30));
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "woken by a write to the new file"
        );
        h.join().unwrap();
    }

    #[test]
    fn arch_aliases() {
        assert_eq!(canonical_arch("arm64"), Some("aarch64"));
        assert_eq!(canonical_arch("amd64"), Some("x86_64"));
        assert_eq!(canonical_arch("x86_64"), Some("x86_64"));
        assert_eq!(canonical_arch("armhf"), Some("armv7l"));
        assert_eq!(canonical_arch("ppc64el"), Some("ppc64le"));
        assert_eq!(canonical_arch("riscv64"), Some("riscv64"));
        assert_eq!(canonical_arch("vax"), None);
    }

    #[test]
    fn virtiofs_share_brings_shared_memory() {
        let dir = tempfile::tempdir().unwrap();
        let xml = GuestBuilder::new("v")
            .arch("x86_64")
            .share_virtiofs(dir.path(), "data")
            .to_xml()
            .unwrap();
        let def = crate::domain::parse(&xml).unwrap();
        let fs = &def.devices.filesystems[0];
        assert_eq!(
            fs.driver.as_ref().and_then(|d| d.dtype.as_deref()),
            Some("virtiofs")
        );
        assert_eq!(fs.target_dir.as_deref(), Some("data"));
        let mb = def.memory_backing.as_ref().unwrap();
        assert_eq!(mb.access_mode.as_deref(), Some("shared"));
        assert_eq!(mb.source_type.as_deref(), Some("memfd"));
        let e = GuestBuilder::new("v")
            .arch("x86_64")
            .share_virtiofs(dir.path(), "")
            .to_xml()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("virtiofs mount tag '' must be 1 to 31 bytes long"),
            "{e}"
        );
    }

    #[test]
    fn script_arg_is_base64() {
        assert_eq!(run_script_arg(""), "domdriver.run=");
        assert_eq!(run_script_arg("f"), "domdriver.run=Zg==");
        assert_eq!(run_script_arg("fo"), "domdriver.run=Zm8=");
        assert_eq!(run_script_arg("foo"), "domdriver.run=Zm9v");
        assert_eq!(run_script_arg("echo hi\n"), "domdriver.run=ZWNobyBoaQo=");
    }

    #[test]
    fn find_and_tail() {
        assert_eq!(find(b"abcdef", b"cd"), Some(2));
        assert_eq!(find(b"abc", b"x"), None);
        let many: String = (0..30).map(|i| format!("l{i}\n")).collect();
        assert!(tail(many.as_bytes()).starts_with("l10\n"));
    }
}
