//! Tap devices for `<interface type='bridge'>` and `<interface type='ethernet'>`, made as
//! libvirt makes them (libvirt: virDomainInterfaceBridgeConnect,
//! virDomainInterfaceEthernetConnect, virNetDevTapCreateInBridgePort, qemuInterfaceOpenVhostNet).
//!
//! The start plans them (which interface, which fd number QEMU's argv names, the bridge, the
//! host-side MAC); the guest's monitor creates them right before it spawns QEMU and hands the
//! descriptors down at those numbers. Taps are never made persistent: the kernel removes a tap
//! when its last descriptor closes, so none outlives its QEMU, even after `kill -9`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use super::DriverError;
use crate::domain::DomainDef;
use crate::domain::devices::Interface;
use crate::xml2argv::LaunchContext;

/// The bridge ioctl that adds a port (linux/sockios.h); the libc crate has it only for Android.
const SIOCBRADDIF: nix::libc::c_ulong = 0x89a2;

/// One tap the monitor makes for interface `index` of the live definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TapSpec {
    /// The interface's position among the definition's interfaces (for the live XML).
    pub index: usize,
    /// `<target dev=>`, or none for the next free `vnetN`.
    pub ifname: Option<String>,
    /// `<target managed='no'>`: the tap must exist already and is only opened.
    pub existing: bool,
    /// The bridge a `type='bridge'` interface joins.
    pub bridge: Option<String>,
    /// The tap's own MAC (the guest's with its first byte made 0xFE, as libvirt does), set on
    /// a tap we create.
    pub host_mac: Option<[u8; 6]>,
    /// `IFF_VNET_HDR`: the model is virtio.
    pub vnet_hdr: bool,
    /// `<mtu size=>`; without it a bridge port takes the bridge's MTU.
    pub mtu: Option<u32>,
    /// `/dev/net/tun`, or `<backend tap=>`.
    pub tun_path: String,
    /// The fd number QEMU's `-netdev tap,fd=` names.
    pub fd: RawFd,
    /// The fd number of its `vhostfd=`, when the argv asks for vhost-net.
    pub vhost_fd: Option<RawFd>,
    /// `<backend vhost=>`, or `/dev/vhost-net`.
    pub vhost_path: String,
}

/// A tap made for QEMU: its descriptors (QEMU gets them at the spec's fd numbers) and its name.
#[derive(Debug)]
pub struct Tap {
    pub index: usize,
    pub ifname: String,
    pub fd: OwnedFd,
    pub target_fd: RawFd,
    pub vhost: Option<(OwnedFd, RawFd)>,
}

/// Whether `/dev/vhost-net` can be opened here (libvirt opens it for each virtio interface of
/// a KVM guest and leaves vhost out when it cannot).
pub fn vhost_net_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/vhost-net")
        .is_ok()
}

fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// libvirt's host-side MAC: the guest's with the first byte 0xFE (0xFA if it was 0xFE), so
/// the bridge does not take the guest's address as its own.
fn host_mac(guest: [u8; 6]) -> [u8; 6] {
    let mut m = guest;
    m[0] = if m[0] == 0xFE { 0xFA } else { 0xFE };
    m
}

fn is_virtio(n: &Interface) -> bool {
    n.model.as_deref().is_some_and(|m| m.starts_with("virtio"))
}

/// The taps a start of `def` with context `ctx` needs, in the order xml2argv numbers their
/// fds. Refuses what this driver cannot connect, with libvirt's words.
pub fn plan(def: &DomainDef, ctx: &LaunchContext) -> Result<Vec<TapSpec>, DriverError> {
    let mut out = Vec::new();
    let (mut fd, mut vfd) = (ctx.tap_fd_base, ctx.vhost_fd_base);
    for (index, n) in def.devices.interfaces.iter().enumerate() {
        let bridge = match n.itype.as_str() {
            // The network driver has put the network's bridge in the live definition
            // (`Connect::connect_network_interfaces`); without it, the network is unknown.
            "network" => {
                let src = n.source.as_ref();
                match src.and_then(|s| s.bridge.clone()) {
                    Some(b) if !b.is_empty() => Some(b),
                    _ => {
                        let name = src.and_then(|s| s.network.clone()).unwrap_or_default();
                        return Err(DriverError::NoNetwork(format!(
                            "no network with matching name '{name}'"
                        )));
                    }
                }
            }
            "bridge" => {
                let br = n.source.as_ref().and_then(|s| s.bridge.clone());
                match br {
                    Some(b) if !b.is_empty() => Some(b),
                    _ => {
                        return Err(DriverError::Internal(
                            "Missing bridge name for interface".into(),
                        ));
                    }
                }
            }
            "ethernet" => None,
            _ => continue,
        };
        if n.driver.as_ref().and_then(|d| d.queues).unwrap_or(1) > 1 {
            return Err(DriverError::Unsupported(format!(
                "multiqueue {} interfaces are not supported by this driver yet",
                n.itype
            )));
        }
        let managed_no = n
            .target_extra
            .attrs
            .iter()
            .any(|(k, v)| k == "managed" && v == "no");
        if managed_no && n.target_dev.is_none() {
            return Err(DriverError::Internal(
                "target dev must be supplied when managed='no'".into(),
            ));
        }
        let vhost = crate::xml2argv::uses_vhost_net(def, n, ctx);
        let mac = n.mac.as_deref().and_then(parse_mac);
        out.push(TapSpec {
            index,
            ifname: n.target_dev.clone().filter(|d| !d.is_empty()),
            existing: managed_no,
            bridge,
            host_mac: (!managed_no).then(|| mac.map(host_mac)).flatten(),
            vnet_hdr: is_virtio(n),
            mtu: n.mtu.as_deref().and_then(|m| m.parse().ok()),
            tun_path: n
                .backend_tap
                .clone()
                .unwrap_or_else(|| "/dev/net/tun".into()),
            fd,
            vhost_fd: vhost.then_some(vfd),
            vhost_path: n
                .backend_vhost
                .clone()
                .unwrap_or_else(|| "/dev/vhost-net".into()),
        });
        fd += 1;
        if vhost {
            vfd += 1;
        }
    }
    Ok(out)
}

/// `msg: strerror`, as libvirt's virReportSystemError words it.
fn sys(msg: String, e: nix::errno::Errno) -> String {
    format!("{msg}: {}", e.desc())
}

fn ifreq(name: &str) -> Result<nix::libc::ifreq, String> {
    // SAFETY: ifreq is plain data (a name and a union of integers/arrays); all-zero is valid.
    let mut r: nix::libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= r.ifr_name.len() {
        return Err(format!(
            "Network interface name '{name}' is too long: Numerical result out of range"
        ));
    }
    for (d, s) in r.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as nix::libc::c_char;
    }
    Ok(r)
}

fn ifr_name(r: &nix::libc::ifreq) -> String {
    let bytes: Vec<u8> = r
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A socket for the interface ioctls (libvirt uses an AF_LOCAL datagram socket as well).
fn ctl_socket() -> Result<OwnedFd, nix::errno::Errno> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// ioctl `req` on `fd` with `r`.
fn ioctl(fd: RawFd, req: nix::libc::c_ulong, r: &mut nix::libc::ifreq) -> nix::Result<()> {
    // SAFETY: every request used here reads or writes one `struct ifreq`, which `r` is.
    let rc = unsafe { nix::libc::ioctl(fd, req as _, r as *mut nix::libc::ifreq) };
    nix::errno::Errno::result(rc).map(drop)
}

fn exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The lowest `vnetN` no interface has (libvirt: virNetDevGenerateName with its `vnet` prefix).
fn free_vnet_name() -> String {
    (0..)
        .map(|i| format!("vnet{i}"))
        .find(|n| !exists(n))
        .expect("an unbounded range has a free name")
}

fn open_tun(spec: &TapSpec, name: &str) -> Result<(OwnedFd, String), String> {
    let path = CString::new(spec.tun_path.as_str())
        .map_err(|_| format!("Unable to open {}", spec.tun_path))?;
    // SAFETY: open with a NUL-terminated path; the result is checked and owned below.
    let fd = unsafe { nix::libc::open(path.as_ptr(), nix::libc::O_RDWR | nix::libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(sys(
            format!("Unable to open {}, is tun module loaded?", spec.tun_path),
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: `fd` was just opened by us and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut r = ifreq(name)?;
    let mut flags = nix::libc::IFF_TAP | nix::libc::IFF_NO_PI;
    if spec.vnet_hdr {
        flags |= nix::libc::IFF_VNET_HDR;
    }
    r.ifr_ifru.ifru_flags = flags as nix::libc::c_short;
    ioctl(fd.as_raw_fd(), nix::libc::TUNSETIFF as _, &mut r)
        .map_err(|e| sys(format!("Unable to create tap device {name}"), e))?;
    Ok((fd, ifr_name(&r)))
}

fn set_mac(sock: RawFd, name: &str, mac: [u8; 6]) -> Result<(), String> {
    let mut r = ifreq(name)?;
    // SAFETY: writing the hwaddr member of a zeroed union; sa_data has room for 6 bytes.
    unsafe {
        r.ifr_ifru.ifru_hwaddr.sa_family = nix::libc::ARPHRD_ETHER;
        for (d, s) in r.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac) {
            *d = s as nix::libc::c_char;
        }
    }
    ioctl(sock, nix::libc::SIOCSIFHWADDR, &mut r).map_err(|e| {
        let m = mac.map(|b| format!("{b:02x}")).join(":");
        sys(format!("Cannot set interface MAC to {m} on '{name}'"), e)
    })
}

fn mtu_of(sock: RawFd, name: &str) -> Result<u32, String> {
    let mut r = ifreq(name)?;
    ioctl(sock, nix::libc::SIOCGIFMTU, &mut r)
        .map_err(|e| sys(format!("Cannot get interface MTU on '{name}'"), e))?;
    // SAFETY: SIOCGIFMTU filled the mtu member.
    Ok(unsafe { r.ifr_ifru.ifru_mtu } as u32)
}

fn set_mtu(sock: RawFd, name: &str, mtu: u32) -> Result<(), String> {
    let mut r = ifreq(name)?;
    r.ifr_ifru.ifru_mtu = mtu as nix::libc::c_int;
    ioctl(sock, nix::libc::SIOCSIFMTU, &mut r)
        .map_err(|e| sys(format!("Cannot set interface MTU on '{name}'"), e))
}

fn add_to_bridge(sock: RawFd, bridge: &str, name: &str) -> Result<(), String> {
    let cname =
        CString::new(name).map_err(|_| format!("Unable to add bridge {bridge} port {name}"))?;
    // SAFETY: a NUL-terminated name; the call only reads it.
    let index = unsafe { nix::libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(sys(
            format!("Unable to add bridge {bridge} port {name}"),
            nix::errno::Errno::last(),
        ));
    }
    let mut r = ifreq(bridge)?;
    r.ifr_ifru.ifru_ifindex = index as nix::libc::c_int;
    ioctl(sock, SIOCBRADDIF, &mut r)
        .map_err(|e| sys(format!("Unable to add bridge {bridge} port {name}"), e))
}

fn set_up(sock: RawFd, name: &str) -> Result<(), String> {
    let mut r = ifreq(name)?;
    ioctl(sock, nix::libc::SIOCGIFFLAGS, &mut r)
        .map_err(|e| sys(format!("Cannot get interface flags on '{name}'"), e))?;
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    let flags = unsafe { r.ifr_ifru.ifru_flags } | nix::libc::IFF_UP as nix::libc::c_short;
    r.ifr_ifru.ifru_flags = flags;
    ioctl(sock, nix::libc::SIOCSIFFLAGS, &mut r)
        .map_err(|e| sys(format!("Cannot set interface flags on '{name}'"), e))
}

/// Make (or, with `managed='no'`, open) the tap of `spec`, join its bridge, bring it up, and
/// open its vhost-net device. Errors are libvirt's whole texts (with their prefix).
pub fn create(spec: &TapSpec) -> Result<Tap, String> {
    let name = match &spec.ifname {
        Some(n) if spec.existing => {
            if !exists(n) {
                return Err(
                    "internal error: target managed='no' but specified dev doesn't exist".into(),
                );
            }
            n.clone()
        }
        // A name the user gave is used as given: the kernel attaches to a tap of that name
        // or refuses (busy, not a tap), as it does for libvirt.
        Some(n) => n.clone(),
        None => free_vnet_name(),
    };
    let (fd, ifname) = open_tun(spec, &name)?;
    if !spec.existing {
        let sock = ctl_socket()
            .map_err(|e| sys("Cannot open network interface control socket".into(), e))?;
        let s = sock.as_raw_fd();
        if let Some(mac) = spec.host_mac {
            set_mac(s, &ifname, mac)?;
        }
        if let Some(br) = &spec.bridge {
            let mtu = match spec.mtu {
                Some(m) => m,
                None => mtu_of(s, br).map_err(|_| {
                    format!("Unable to add bridge {br} port {ifname}: No such device")
                })?,
            };
            set_mtu(s, &ifname, mtu)?;
            add_to_bridge(s, br, &ifname)?;
        } else if let Some(m) = spec.mtu {
            set_mtu(s, &ifname, m)?;
        }
        set_up(s, &ifname)?;
    }
    let vhost = match spec.vhost_fd {
        Some(target) => {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&spec.vhost_path)
                .map_err(|e| {
                    format!(
                        "unsupported configuration: vhost-net was requested for an interface, but is unavailable: {}: {e}",
                        spec.vhost_path
                    )
                })?;
            Some((OwnedFd::from(f), target))
        }
        None => None,
    };
    Ok(Tap {
        index: spec.index,
        ifname,
        fd,
        target_fd: spec.fd,
        vhost,
    })
}

/// Make every tap of `specs`; on the first failure the ones made are closed (and so gone).
pub fn create_all(specs: &[TapSpec]) -> Result<Vec<Tap>, String> {
    specs.iter().map(create).collect()
}

/// The `(descriptor, number in QEMU)` pairs of `taps`, for the child's fd table.
pub fn child_fds(taps: &[Tap]) -> Vec<(RawFd, RawFd)> {
    let mut v = Vec::new();
    for t in taps {
        v.push((t.fd.as_raw_fd(), t.target_fd));
        if let Some((f, n)) = &t.vhost {
            v.push((f.as_raw_fd(), *n));
        }
    }
    v
}

/// A tap for an interface hotplugged into a running guest: the monitor makes it and passes
/// its descriptors to QEMU by name (`getfd`), which the `netdev_add` names instead of numbers
/// (libvirt: qemuDomainAttachNetDevice, `tapfd-ALIAS0` and `vhostfd-ALIAS0`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HotTap {
    pub spec: TapSpec,
    pub fdname: String,
    pub vhost_fdname: Option<String>,
}

impl HotTap {
    /// The hot tap of interface `spec.index`, named after its `alias`; `netdev` (the
    /// builder's `netdev_add` arguments, which number the fds as a command line does) is
    /// rewritten to name them.
    pub fn new(spec: TapSpec, alias: &str, netdev: &mut serde_json::Value) -> HotTap {
        let fdname = format!("tapfd-{alias}0");
        let vhost_fdname = spec.vhost_fd.map(|_| format!("vhostfd-{alias}0"));
        netdev["fd"] = serde_json::Value::String(fdname.clone());
        if let Some(v) = &vhost_fdname {
            netdev["vhostfd"] = serde_json::Value::String(v.clone());
        }
        HotTap {
            spec,
            fdname,
            vhost_fdname,
        }
    }
}

/// Write the taps' names into the live definition as `<target dev=>`, as libvirt shows them.
pub fn note_ifnames(def: &mut DomainDef, taps: &[(usize, String)]) {
    for (i, name) in taps {
        if let Some(n) = def.devices.interfaces.get_mut(*i) {
            n.target_dev = Some(name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_mac_is_the_guests_with_a_high_first_byte() {
        let g = parse_mac("52:54:00:12:34:56").unwrap();
        assert_eq!(host_mac(g), [0xfe, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(host_mac([0xfe, 0, 0, 0, 0, 1])[0], 0xfa);
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:56:78"), None);
    }

    #[test]
    fn too_long_a_name_is_refused_in_libvirts_words() {
        let e = ifreq("a-very-long-interface-name").unwrap_err();
        assert!(e.starts_with("Network interface name 'a-very-long-interface-name' is too long"));
    }
}
