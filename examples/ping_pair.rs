//! Two guests on a loopback socket network, one pinging the other.
//!
//! ```text
//! cargo run --example ping_pair -- [--kernel PATH --initrd PATH] [--model virtio|e1000]
//!     [--timeout SECS] [--root DIR]
//! ```
//!
//! Guest `pong` listens on 127.0.0.1:PORT (`<interface type='server'>`), guest `ping`
//! connects to it (`type='client'`): QEMU carries their Ethernet frames over that one TCP
//! connection, so nothing leaves the host's loopback. Inside, the guests use 192.168.77.1
//! and .2 on their own virtual link.
//!
//! The initramfs must run the script of a `domdriver.run=` kernel argument and have `ip` and
//! `ping` (busybox) and the NIC's driver: the test kit `cargo test --release --test
//! fleet_guests` builds is the default.

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use anyhow::{Context, bail};
use domdriver::fleet::{GuestBuilder, SocketNet, run_script_arg};

const USAGE: &str = "usage: ping_pair [--kernel PATH --initrd PATH] [--model virtio|e1000] \
[--timeout SECS] [--root DIR]";

/// A free TCP port on 127.0.0.1 (free when asked: the server guest binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn main() -> anyhow::Result<()> {
    let a = args::Args::parse(USAGE, &[])?;
    let (kernel, initrd) = match (
        a.get("kernel", "DOMDRIVER_KERNEL"),
        a.get("initrd", "DOMDRIVER_INITRD"),
    ) {
        (Some(k), Some(i)) => (k.into(), i.into()),
        _ => args::test_kit().context(
            "no kernel: pass --kernel PATH --initrd PATH, or build the test kit with \
             `cargo test --release --test fleet_guests`",
        )?,
    };
    let model = a
        .get("model", "DOMDRIVER_NIC")
        .unwrap_or_else(|| "virtio".into());
    if !["virtio", "e1000"].contains(&model.as_str()) {
        bail!("--model is virtio or e1000\n{USAGE}");
    }
    let timeout = Duration::from_secs(
        a.get("timeout", "DOMDRIVER_TIMEOUT")
            .map(|s| s.parse())
            .transpose()
            .context("--timeout takes whole seconds")?
            .unwrap_or(240),
    );
    let conn = args::connection(&a)?;
    let port = free_port()?;
    let guest = |name: &str, net: SocketNet, mac: &str, script: &str| {
        GuestBuilder::new(name)
            .arch("x86_64")
            .kernel(&kernel)
            .initrd(&initrd)
            .cmdline(format!(
                "console=ttyS0 panic=-1 quiet {}",
                run_script_arg(script)
            ))
            .memory_mib(256)
            .socket_net_model(net, mac, &model)
    };
    let mut pong = guest(
        "pong",
        SocketNet::Server { port },
        "52:54:00:77:00:01",
        "ip link set eth0 up && ip addr add 192.168.77.1/24 dev eth0 && echo NET-READY",
    )
    .start(&conn)?;
    let mut ping = guest(
        "ping",
        SocketNet::Client { port },
        "52:54:00:77:00:02",
        "ip link set eth0 up && ip addr add 192.168.77.2/24 dev eth0 && \
         for i in $(seq 60); do ping -c 1 -W 1 192.168.77.1 >/dev/null && break; done; \
         ping -c 3 192.168.77.1 && echo PING-OK",
    )
    .start(&conn)?;
    println!("pong listens on 127.0.0.1:{port}; ping connected");
    pong.expect("NET-READY", timeout)?;
    let out = ping.expect("PING-OK", timeout)?;
    println!("--- ping's console ---\n{out}");
    Ok(())
}
