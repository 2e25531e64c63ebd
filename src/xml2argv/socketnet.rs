//! `-netdev socket` for `<interface type='server|client|mcast|udp'>`: guests joined by a TCP
//! stream, a multicast group or a UDP pair, with no host networking involved.

use super::opts::JsonOpts;
use crate::domain::devices::Interface;

/// `host:port` the way libvirt prints it: a missing address is left empty (QEMU then binds
/// every address for `listen`), so `listen=:2015` is a valid spelling.
fn endpoint(addr: Option<&String>, port: Option<&String>) -> String {
    format!(
        "{}:{}",
        addr.map(String::as_str).unwrap_or(""),
        port.map(String::as_str).unwrap_or("0")
    )
}

/// The socket properties of `n` (before the `id`), in libvirt's key order.
pub(super) fn socket_netdev(nd: &mut JsonOpts, n: &Interface) {
    let src = n.source.clone().unwrap_or_default();
    let remote = endpoint(src.address.as_ref(), src.port.as_ref());
    nd.s("type", "socket");
    match n.itype.as_str() {
        "server" => {
            nd.s("listen", remote);
        }
        "client" => {
            nd.s("connect", remote);
        }
        "mcast" => {
            nd.s("mcast", remote);
        }
        _ => {
            nd.s("udp", remote).s(
                "localaddr",
                endpoint(src.local_address.as_ref(), src.local_port.as_ref()),
            );
        }
    }
}
