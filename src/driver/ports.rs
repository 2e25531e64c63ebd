//! TCP ports for automatic VNC and SPICE displays (libvirt: virPortAllocator).
//!
//! libvirt keeps one allocator in its daemon. vsh has no daemon: several processes may start
//! guests at the same time, so a port is reserved in the file system before it is tested and
//! handed out. A reservation is a file `ports/PORT` in the connection's runtime dir, created
//! with `O_EXCL` (atomic between processes) and holding the reserving process's pid. It lives
//! until the start that took it is over (its [`Reservation`] is dropped): by then QEMU listens
//! on the port, and the bind test sees it taken. A reservation whose process is gone is stale
//! and taken over.
//!
//! "Free" is what libvirt tests: binding the port on the IPv4 and IPv6 wildcard addresses
//! (with `SO_REUSEADDR`, as QEMU listens) succeeds. A wildcard bind fails when anything
//! listens on the port at any address, so a port that passes is free for any listen address.

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use super::{Connect, DriverError};
use crate::domain::DomainDef;
use crate::xml2argv::QemuConf;
use crate::xml2argv::graphics_ports::{self, PortPool};

impl Connect {
    /// Give `def`'s automatic VNC/SPICE ports (and VNC websockets) free ports, written into
    /// the definition. Hold the result until QEMU listens on them (the end of the start).
    pub fn reserve_graphics_ports(
        &self,
        def: &mut DomainDef,
        conf: &QemuConf,
    ) -> Result<Reservation, DriverError> {
        let alloc = PortAllocator::new(&self.dirs.run);
        let mut held = Reservation::default();
        graphics_ports::assign(def, conf, |pool| alloc.acquire(pool, &mut held))?;
        Ok(held)
    }
}

/// The ports one start holds; dropping it ends their reservations.
#[derive(Debug, Default)]
pub struct Reservation {
    files: Vec<PathBuf>,
}

impl Reservation {
    /// The ports held, in the order they were taken.
    pub fn ports(&self) -> Vec<u16> {
        self.files
            .iter()
            .filter_map(|f| f.file_name()?.to_str()?.parse().ok())
            .collect()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        for f in &self.files {
            // Best effort: a leftover file names a pid that will be gone, so it goes stale.
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Reserves ports under one runtime dir.
#[derive(Debug, Clone)]
pub struct PortAllocator {
    dir: PathBuf,
}

impl PortAllocator {
    /// The allocator whose reservations live in `run_dir/ports`.
    pub fn new(run_dir: &Path) -> PortAllocator {
        PortAllocator {
            dir: run_dir.join("ports"),
        }
    }

    /// The first free port of `pool`'s range, reserved into `held`.
    pub fn acquire(&self, pool: PortPool, held: &mut Reservation) -> Result<u16, DriverError> {
        let (name, lo, hi) = pool.range();
        self.acquire_in(name, lo, hi, held)
    }

    /// The first free port in `lo..=hi`; `name` is the range's name for the error.
    pub fn acquire_in(
        &self,
        name: &str,
        lo: u16,
        hi: u16,
        held: &mut Reservation,
    ) -> Result<u16, DriverError> {
        std::fs::create_dir_all(&self.dir).map_err(|err| DriverError::System {
            msg: format!(
                "cannot create port reservation dir '{}'",
                self.dir.display()
            ),
            err,
        })?;
        for port in lo..=hi {
            let Some(file) = self.reserve(port)? else {
                continue;
            };
            if port_is_free(port) {
                held.files.push(file);
                return Ok(port);
            }
            let _ = std::fs::remove_file(&file);
        }
        // libvirt: virPortAllocatorAcquire
        Err(DriverError::Internal(format!(
            "Unable to find an unused port in range '{name}' ({lo}-{hi})"
        )))
    }

    /// Create the reservation file of `port`, taking over a stale one. None when another
    /// live process holds it.
    fn reserve(&self, port: u16) -> Result<Option<PathBuf>, DriverError> {
        let file = self.dir.join(port.to_string());
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Some(file));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if holder_alive(&file) {
                        return Ok(None);
                    }
                    // Stale: its process is gone. Whoever removes it first may retry.
                    let _ = std::fs::remove_file(&file);
                }
                Err(err) => {
                    return Err(DriverError::System {
                        msg: format!("cannot reserve port {port} in '{}'", self.dir.display()),
                        err,
                    });
                }
            }
        }
        Ok(None)
    }
}

/// Whether the process named in reservation `file` still runs. A file still being written
/// (no pid yet) counts as held.
fn holder_alive(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return true;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return text.trim().is_empty();
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

/// libvirt's test: the port binds on the IPv4 wildcard and, where the host has IPv6, on the
/// IPv6 wildcard (libvirt: virPortAllocatorBindToPort). std sets `SO_REUSEADDR` on Unix.
fn port_is_free(port: u16) -> bool {
    let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    if TcpListener::bind(v4).is_err() {
        return false;
    }
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    match TcpListener::bind(v6) {
        Ok(_) => true,
        // No IPv6 on this host: the IPv4 answer stands.
        Err(e) => {
            let no_ipv6 = [
                nix::errno::Errno::EAFNOSUPPORT,
                nix::errno::Errno::EADDRNOTAVAIL,
            ];
            no_ipv6.iter().any(|n| e.raw_os_error() == Some(*n as i32))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range of `n` ports starting at a free-looking spot, unique per test run.
    fn range_base() -> u16 {
        // Ports 20000-29999 are outside the displays' usual 5900s and most ephemeral ranges.
        20000 + (std::process::id() % 9000) as u16
    }

    #[test]
    fn busy_port_is_skipped() {
        let run = tempfile::tempdir().unwrap();
        let alloc = PortAllocator::new(run.path());
        let base = range_base();
        // Occupy the first port of the range the way QEMU would: listening.
        let Ok(busy) = TcpListener::bind(("127.0.0.1", base)) else {
            return; // someone else has it; nothing to test against
        };
        let mut held = Reservation::default();
        let got = alloc
            .acquire_in("test", base, base + 20, &mut held)
            .unwrap();
        assert_ne!(got, base);
        assert!(got > base);
        drop(busy);
        assert_eq!(held.ports(), [got]);
    }

    #[test]
    fn reservations_keep_ports_apart_and_end_on_drop() {
        let run = tempfile::tempdir().unwrap();
        let alloc = PortAllocator::new(run.path());
        let base = range_base() + 100;
        let mut a = Reservation::default();
        let mut b = Reservation::default();
        let pa = alloc.acquire_in("test", base, base + 50, &mut a).unwrap();
        let pb = alloc.acquire_in("test", base, base + 50, &mut b).unwrap();
        assert_ne!(pa, pb);
        let file = run.path().join("ports").join(pa.to_string());
        assert!(file.exists());
        drop(a);
        assert!(!file.exists());
        // The released port is handed out again.
        let mut c = Reservation::default();
        assert_eq!(
            alloc.acquire_in("test", base, base + 50, &mut c).unwrap(),
            pa
        );
    }

    #[test]
    fn concurrent_allocations_get_different_ports() {
        let run = tempfile::tempdir().unwrap();
        let base = range_base() + 200;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let alloc = PortAllocator::new(run.path());
                std::thread::spawn(move || {
                    let mut held = Reservation::default();
                    let p = alloc
                        .acquire_in("test", base, base + 100, &mut held)
                        .unwrap();
                    (p, held)
                })
            })
            .collect();
        let got: Vec<(u16, Reservation)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let mut ports: Vec<u16> = got.iter().map(|(p, _)| *p).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 8);
    }

    #[test]
    fn stale_reservation_is_taken_over() {
        let run = tempfile::tempdir().unwrap();
        let alloc = PortAllocator::new(run.path());
        let base = range_base() + 300;
        std::fs::create_dir_all(run.path().join("ports")).unwrap();
        // A pid that cannot run: above the kernel's maximum.
        std::fs::write(
            run.path().join("ports").join(base.to_string()),
            "2147483647\n",
        )
        .unwrap();
        let mut held = Reservation::default();
        assert_eq!(
            alloc.acquire_in("test", base, base, &mut held).unwrap(),
            base
        );
    }

    #[test]
    fn exhausted_range_says_so() {
        let run = tempfile::tempdir().unwrap();
        let alloc = PortAllocator::new(run.path());
        let base = range_base() + 400;
        let mut first = Reservation::default();
        let p = alloc.acquire_in("display", base, base, &mut first).unwrap();
        let mut second = Reservation::default();
        let e = alloc.acquire_in("display", p, p, &mut second).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("internal error: Unable to find an unused port in range 'display' ({p}-{p})")
        );
    }
}
