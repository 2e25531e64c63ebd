//! Fleets from a saved guest: boot one guest to a marker, save it once, and start clones
//! that carry on from that moment without booting.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use domdriver::Connect;
//! # use domdriver::fleet::GuestBuilder;
//! # let conn = Connect::open(Some("qemu:///embed?root=/tmp/fleet"))?;
//! let mut guest = GuestBuilder::new("base").kernel("/boot/vmlinuz").start(&conn)?;
//! guest.expect("READY", Duration::from_secs(120))?;
//! let template = guest.save_template("/tmp/fleet-template")?;
//! let clones: Vec<_> = (0..10)
//!     .map(|i| template.clone_guest(&conn, &format!("c{i}")))
//!     .collect::<Result<_, _>>()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A template directory holds the save image ([`STATE_FILE`], the guest's device state
//! through QEMU's migration, with the domain XML in its header), the guest's RAM
//! ([`RAM_FILE`]) and a copy of each writable disk image the guest had (`base-vdX.FMT`,
//! read-only). A clone is the save image restored under the clone's own host-side identity:
//! its name, a new UUID, a new MAC per NIC, its own console log, and a copy-on-write qcow2
//! overlay on each base disk. Everything the guest sees (devices, memory, disk contents) is
//! the template's, which is what lets QEMU load the migration stream. The guest's kernel
//! keeps the MAC it read at boot: clones that share a network set theirs in the guest (`ip
//! link set dev eth0 address ...`).
//!
//! The RAM is not loaded, it is mapped (the "VM templating" of Kata Containers): the
//! template's guest ran with its RAM in a file mapped shared ([`GuestBuilder::template_ram`],
//! on by default), and was saved with QEMU's `x-ignore-shared` capability, so the stream
//! holds device state only (a few MiB: ROMs and devices). Each clone maps [`RAM_FILE`]
//! privately: its pages come from the page cache the clones share until a clone writes one,
//! which then becomes that clone's own copy; the file never changes. A template of a guest
//! without a RAM file (`template_ram(false)`, virtiofs shares, or saved by an older version)
//! has no [`RAM_FILE`] and its stream holds the whole RAM, which each clone loads.
//!
//! [`GuestBuilder::template_ram`]: super::GuestBuilder::template_ram

use std::path::{Path, PathBuf};

use super::{FleetError, StartedGuest, live_pid};
use crate::Connect;
use crate::domain::{self, DomainDef, FormatFlags};
use crate::driver::DriverError;
use crate::driver::save::RestoreState;
use crate::driver::saveimage::{self, SaveImage};

/// The save image's name in a template directory.
pub const STATE_FILE: &str = "state.save";

/// The guest's RAM in a template directory, when its stream leaves the RAM out.
pub const RAM_FILE: &str = "ram";

/// A saved guest to start clones from (see the module documentation).
#[derive(Debug, Clone)]
pub struct Template {
    dir: PathBuf,
    image: SaveImage,
    def: DomainDef,
    /// [`RAM_FILE`], when the template has one.
    ram: Option<PathBuf>,
}

impl StartedGuest<'_> {
    /// Save this running guest into template directory `dir` (created if missing; it must
    /// not hold a template yet) and make it a [`Template`]: the guest stops, its domain is
    /// undefined, its RAM file (see [`super::GuestBuilder::template_ram`]) moves into `dir`
    /// as [`RAM_FILE`], and each writable disk image it had is copied into `dir` as a
    /// read-only base for the clones (the guest's own images are left as they are). A guest
    /// that is not running is refused; as on every error, the handle is dropped then, which
    /// destroys and undefines the guest, and nothing is left in `dir`.
    pub fn save_template(mut self, dir: impl AsRef<Path>) -> Result<Template, FleetError> {
        let dir = dir.as_ref();
        let name = self.name().to_string();
        let io = |path: &Path| {
            let guest = name.clone();
            let path = path.to_path_buf();
            move |source| FleetError::Io {
                guest,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let image = dir.join(STATE_FILE);
        let ram = dir.join(RAM_FILE);
        if image.exists() || ram.exists() {
            return Err(FleetError::Invalid {
                guest: self.name().to_string(),
                msg: format!("{} holds a template already", dir.display()),
            });
        }
        // Only a RAM file the guest still runs on: a stream without RAM is restorable
        // from it alone.
        let own_ram = self.ram.clone().filter(|p| p.is_file());
        self.dom
            .save_with(&image, RestoreState::Running, own_ram.is_some())?;
        // Saved: the guest is stopped, what is left is the definition.
        self.keep = true;
        // What a failure removes again: only what was made here (the directory may hold the
        // user's other files), and the guest's RAM file wherever it is.
        let mut made = vec![image.clone()];
        made.extend(own_ram.clone());
        let res = (|| {
            if let Some(from) = &own_ram {
                made.push(ram.clone());
                move_file(from, &ram).map_err(io(&ram))?;
            }
            let img = saveimage::read(&image)?;
            let mut def = domain::parse_unprepared(&img.xml)?;
            for disk in writable_disks(&mut def) {
                let fmt = disk_format(disk);
                let base = dir.join(format!("base-{}.{fmt}", disk.target.dev));
                made.push(base.clone());
                std::fs::copy(disk_file_mut(disk).as_str(), &base).map_err(io(&base))?;
                std::fs::set_permissions(
                    &base,
                    std::os::unix::fs::PermissionsExt::from_mode(0o444),
                )
                .map_err(io(&base))?;
                *disk_file_mut(disk) = base.display().to_string();
            }
            let xml = def.to_xml(FormatFlags {
                inactive: true,
                secure: true,
            });
            saveimage::replace_xml(&image, &xml)?;
            Template::open(dir)
        })();
        let undefined = match self.dom.is_persistent() {
            Ok(true) => self.dom.undefine().map_err(FleetError::from),
            _ => Ok(()),
        };
        let res = res.and_then(|t| undefined.map(|()| t));
        if res.is_err() {
            for p in made {
                let _ = std::fs::remove_file(p);
            }
        }
        res
    }
}

/// Move `from` to `to` (a copy when they are on different filesystems), private to us
/// (0600: it is the guest's memory).
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            std::fs::copy(from, to)?;
            std::fs::remove_file(from)?;
        }
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
}

/// The file disks of `def` that the guest may write: these become bases.
fn writable_disks(def: &mut DomainDef) -> impl Iterator<Item = &mut domain::devices::Disk> {
    def.devices.disks.iter_mut().filter(|d| {
        d.dtype.as_deref() == Some("file")
            && !d.readonly
            && !d.shareable
            && d.source.as_ref().and_then(|s| s.file.as_ref()).is_some()
    })
}

fn disk_format(d: &domain::devices::Disk) -> String {
    d.driver
        .as_ref()
        .and_then(|dr| dr.dtype.clone())
        .unwrap_or_else(|| "raw".into())
}

/// The image path of a disk [`writable_disks`] returned.
fn disk_file_mut(d: &mut domain::devices::Disk) -> &mut String {
    d.source
        .as_mut()
        .and_then(|s| s.file.as_mut())
        .expect("writable_disks keeps file disks only")
}

/// A locally administered unicast MAC in QEMU's range, different for every call.
fn fresh_mac() -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

impl Template {
    /// The template saved in `dir` by [`StartedGuest::save_template`]. A missing, truncated
    /// or foreign save image, or a missing base disk, is refused here, before any QEMU runs.
    pub fn open(dir: impl AsRef<Path>) -> Result<Template, FleetError> {
        let dir = dir.as_ref().to_path_buf();
        let image = saveimage::read(&dir.join(STATE_FILE))?;
        let mut def = domain::parse_unprepared(&image.xml)?;
        let name = def.name.clone();
        let ram = dir.join(RAM_FILE);
        let ram = match std::fs::metadata(&ram) {
            Ok(m) => {
                // QEMU would refuse a shorter file only once it runs.
                // The machine's RAM: the memory without its modules, whole MiB (as xml2argv
                // sizes the backend).
                let modules: u64 = def
                    .devices
                    .memories
                    .iter()
                    .filter_map(|m| m.target.as_ref().and_then(|t| t.size_kib))
                    .sum();
                let need = def.memory.kib.saturating_sub(modules).div_ceil(1024) * 1024 * 1024;
                if !m.is_file() || m.len() < need {
                    return Err(FleetError::Invalid {
                        guest: name,
                        msg: format!(
                            "template RAM file {} holds {} bytes, the guest has {need}",
                            ram.display(),
                            m.len()
                        ),
                    });
                }
                Some(ram)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(FleetError::Io {
                    guest: name,
                    path: ram,
                    source,
                });
            }
        };
        for disk in writable_disks(&mut def) {
            let base = PathBuf::from(disk_file_mut(disk).as_str());
            if !base.is_file() {
                return Err(FleetError::Invalid {
                    guest: name,
                    msg: format!("template base disk {} is missing", base.display()),
                });
            }
        }
        Ok(Template {
            dir,
            image,
            def,
            ram,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The save image the clones restore.
    pub fn image(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The guest's RAM, which clones map copy-on-write; `None` when the save image holds it.
    pub fn ram_file(&self) -> Option<&Path> {
        self.ram.as_deref()
    }

    /// The saved guest's domain definition (its bases as disks).
    pub fn definition(&self) -> &DomainDef {
        &self.def
    }

    /// The template's definition with the host-side identity of clone `name`: its name, a
    /// new UUID, a new MAC per NIC, console log `serial`. Devices stay as saved.
    fn clone_def(&self, name: &str, serial: &Path) -> Result<DomainDef, FleetError> {
        let mut def = self.def.clone();
        def.name = name.to_string();
        def.uuid = uuid::Uuid::new_v4();
        def.id = None;
        for nic in &mut def.devices.interfaces {
            if nic.mac.is_some() {
                nic.mac = Some(fresh_mac());
            }
        }
        // The first serial port writes `serial` (and so does the console mirroring it, as
        // libvirt lists serial 0 twice); further file serials get files of their own.
        let mut file_serials = 0;
        for c in def.devices.serials.iter_mut() {
            if c.stype.as_deref() != Some("file") {
                continue;
            }
            let path = match file_serials {
                0 => serial.to_path_buf(),
                n => serial.with_extension(format!("serial{n}.log")),
            };
            for s in &mut c.sources {
                s.path = Some(path.display().to_string());
            }
            file_serials += 1;
        }
        if let Some(c) = def.devices.consoles.first_mut()
            && c.stype.as_deref() == Some("file")
        {
            for s in &mut c.sources {
                s.path = Some(serial.display().to_string());
            }
        }
        if file_serials == 0 {
            return Err(FleetError::Invalid {
                guest: name.to_string(),
                msg: "the template's guest has no file console to follow".into(),
            });
        }
        Ok(def)
    }

    /// Start a clone called `name` on `conn` from the saved state: it is defined (persistent,
    /// like [`super::GuestBuilder::start`]'s guests) and runs on from where the template's
    /// guest was saved. Its console log (`LOGDIR/NAME.console.log`) starts empty, so
    /// [`StartedGuest::expect`] sees only what the clone writes. Its disk overlays live in
    /// the connection's `lib/fleet-clones/NAME/` and go with the clone.
    pub fn clone_guest<'c>(
        &self,
        conn: &'c Connect,
        name: &str,
    ) -> Result<StartedGuest<'c>, FleetError> {
        // Before anything is written: a name clash must not touch the other guest's overlays
        // or console log (the define below checks again, under the driver's lock).
        if let Ok(other) = conn.lookup_domain_by_name(name) {
            return Err(DriverError::OperationFailed(format!(
                "domain '{name}' already exists with uuid {}",
                other.uuid().hyphenated()
            ))
            .into());
        }
        crate::driver::config::validate_name(name)?;
        let io = |path: &Path| {
            let guest = name.to_string();
            let path = path.to_path_buf();
            move |source| FleetError::Io {
                guest,
                path,
                source,
            }
        };
        let serial = conn.dirs().log.join(format!("{name}.console.log"));
        let mut def = self.clone_def(name, &serial)?;
        let scratch = conn.dirs().lib.join("fleet-clones").join(name);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
        let started = (|| {
            let qemu_img = crate::driver::snapshot::disks::qemu_img(&def);
            for disk in writable_disks(&mut def) {
                let fmt = disk_format(disk);
                let overlay = scratch.join(format!("{}.qcow2", disk.target.dev));
                let src = disk_file_mut(disk);
                // libvirt: qemuSnapshotCreateQcow2Files (an overlay on a base, by qemu-img)
                let out = std::process::Command::new(&qemu_img)
                    .args(["create", "-q", "-f", "qcow2", "-F", &fmt, "-b"])
                    .arg(&*src)
                    .arg(&overlay)
                    .output()
                    .map_err(io(&qemu_img))?;
                if !out.status.success() {
                    return Err(FleetError::Invalid {
                        guest: name.to_string(),
                        msg: format!(
                            "cannot create overlay {}: {}",
                            overlay.display(),
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                    });
                }
                *src = overlay.display().to_string();
                disk.driver.get_or_insert_with(Default::default).dtype = Some("qcow2".into());
            }
            if let Some(d) = serial.parent() {
                std::fs::create_dir_all(d).map_err(io(d))?;
            }
            match std::fs::remove_file(&serial) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&serial)(e)),
                _ => {}
            }
            let xml = def.to_xml(FormatFlags {
                inactive: true,
                secure: false,
            });
            let dom = conn.define_domain_xml(&xml)?;
            if let Err(e) = conn.restore_def(
                &self.image(),
                &self.image,
                def,
                RestoreState::Running,
                self.ram.as_deref(),
            ) {
                let _ = dom.undefine();
                return Err(e.into());
            }
            Ok(dom)
        })();
        let dom = match started {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        Ok(StartedGuest {
            conn,
            pid: live_pid(conn, name),
            dom,
            serial,
            seen: 0,
            keep: false,
            scratch: vec![scratch],
            ram: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{GuestBuilder, SocketNet};

    #[test]
    fn a_clone_gets_its_own_host_side_identity() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("vmlinuz");
        std::fs::write(&k, b"k").unwrap();
        let def = GuestBuilder::new("base")
            .arch("x86_64")
            .kernel(&k)
            .socket_net(SocketNet::Client { port: 9 }, "52:54:00:00:00:01")
            .socket_net(SocketNet::Client { port: 10 }, "52:54:00:00:00:02")
            .build_with_serial(&d.path().join("base.log"))
            .unwrap();
        let t = Template {
            dir: d.path().to_path_buf(),
            image: SaveImage {
                xml: String::new(),
                was_running: true,
                stream_offset: 0,
            },
            def: def.clone(),
            ram: None,
        };
        let log = d.path().join("c1.console.log");
        let a = t.clone_def("c1", &log).unwrap();
        let b = t.clone_def("c2", &log).unwrap();
        assert_eq!(a.name, "c1");
        assert_ne!(a.uuid, def.uuid);
        assert_ne!(a.uuid, b.uuid);
        let macs = |d: &DomainDef| -> Vec<String> {
            d.devices
                .interfaces
                .iter()
                .map(|i| i.mac.clone().unwrap())
                .collect()
        };
        let (ma, mb, m0) = (macs(&a), macs(&b), macs(&def));
        for m in ma.iter().chain(&mb) {
            assert!(m.starts_with("52:54:00:"), "{m}");
            assert!(!m0.contains(m));
        }
        assert_ne!(ma, mb);
        assert_ne!(ma[0], ma[1]);
        assert_eq!(
            a.devices.serials[0].sources[0].path.as_deref(),
            Some(log.to_str().unwrap())
        );
        // Everything QEMU's migration stream depends on is as saved.
        let mut same = a.clone();
        same.name = def.name.clone();
        same.uuid = def.uuid;
        same.devices.interfaces = def.devices.interfaces.clone();
        same.devices.serials = def.devices.serials.clone();
        assert_eq!(same, def);

        // A guest without a file console cannot be followed.
        let mut t2 = t.clone();
        t2.def.devices.serials.clear();
        assert!(
            t2.clone_def("c3", &log)
                .unwrap_err()
                .to_string()
                .contains("no file console")
        );
    }
}
