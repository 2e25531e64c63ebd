//! A network namespace of a test's own, for the tests that put guests on taps and bridges
//! (`net_tap`, `net_network`): nothing they make, and no traffic of their guests, leaves it.
//! Includers also include `common/bootkit.rs` as `bootkit`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use crate::bootkit;

pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// A network namespace, deleted when dropped.
pub struct Netns(pub String);

impl Netns {
    /// Namespace `PREFIX-PID` with lo up, then each of `setup` (an `ip` command line, split at
    /// spaces) run inside it.
    pub fn new(prefix: &str, setup: &[&str]) -> Netns {
        let ns = Netns(format!("{prefix}-{}", std::process::id()));
        // A namespace of an earlier run of this pid, if any (usually none: quiet).
        let _ = Command::new("ip")
            .args(["netns", "del", &ns.0])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &ns.0]);
        for a in std::iter::once(&"ip link set lo up").chain(setup) {
            let mut args = vec!["netns", "exec", &ns.0];
            args.extend(a.split(' '));
            ip(&args);
        }
        ns
    }

    /// `CMD ARGS` inside the namespace: (success, stdout + stderr).
    pub fn exec(&self, cmd: &str, args: &[&str]) -> (bool, String) {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.0, cmd])
            .args(args)
            .output()
            .unwrap();
        let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&o.stderr));
        (o.status.success(), s)
    }

    /// The `vshrun::Vsh::wrapper` that runs vsh (and so the guests it starts) inside.
    pub fn wrapper(&self) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.0.clone()]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

pub fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?} failed");
}

pub fn have(prog: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .any(|d| Path::new(d).join(prog).exists())
}

/// True (after saying why) when the test cannot run here: not root (`needs` says what for),
/// no tun device, no QEMU, or one of `tools` missing.
pub fn skip(needs: &str, tools: &[&str]) -> bool {
    let why = if !nix::unistd::Uid::effective().is_root() {
        format!("not root ({needs} CAP_NET_ADMIN)")
    } else if !Path::new("/dev/net/tun").exists() {
        "/dev/net/tun is missing".into()
    } else if !Path::new(QEMU).exists() {
        "qemu-system-x86_64 is not installed".into()
    } else if !tools.iter().all(|t| have(t)) {
        format!("{} is not installed", tools.join(", "))
    } else {
        return false;
    };
    eprintln!("\n*** SKIPPED: {why} ***\n");
    true
}

/// A TCG guest with `nics`, its serial console in `serial`; with `kit`, it boots the kit's
/// kernel and runs `guest`, otherwise it has no OS (enough for the refusals).
pub fn domain(
    name: &str,
    kit: Option<&bootkit::LinuxKit>,
    guest: &str,
    serial: &Path,
    nics: &str,
) -> String {
    let os = kit.map(|k| k.os_xml(guest)).unwrap_or_default();
    format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>
  <features><acpi/></features>
  <os><type arch='x86_64' machine='pc'>hvm</type>{os}</os>
  <devices><emulator>{QEMU}</emulator>{nics}
    <serial type='file'><source path='{}'/><target port='0'/></serial>
    <memballoon model='none'/></devices></domain>",
        serial.display()
    )
}
