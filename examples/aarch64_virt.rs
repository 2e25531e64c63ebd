//! An aarch64 `virt` guest with a Cortex-A57 CPU, booting a kernel directly, as in LAVA's QEMU
//! example; runs under TCG on any host.
//!
//! ```text
//! cargo run --example aarch64_virt -- --kernel PATH [--initrd PATH] [--append ARGS]
//!     [--expect TEXT] [--timeout SECS] [--root DIR]
//! ```
//!
//! The kernel is an arm64 `Image` or Debian's gzip-compressed `vmlinuz-*-arm64`; one way to
//! get it on Debian:
//!
//! ```text
//! dpkg --add-architecture arm64 && apt-get update
//! apt-get download linux-image-arm64:arm64   # then the linux-image-*-arm64 it depends on
//! dpkg-deb -x linux-image-*-arm64_*.deb x && ls x/boot/vmlinuz-*
//! ```
//!
//! Without an initramfs the kernel boots to its console and stops at mounting a root file
//! system, which is enough to see it work: the default expectation is `Linux version`.

#[path = "common/args.rs"]
mod args;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use domdriver::fleet::GuestBuilder;

const USAGE: &str = "usage: aarch64_virt --kernel PATH [--initrd PATH] [--append ARGS] \
[--expect TEXT] [--timeout SECS] [--root DIR]  (or DOMDRIVER_ARM64_KERNEL, ...)";

fn main() -> anyhow::Result<()> {
    let a = args::Args::parse(USAGE, &[])?;
    let Some(kernel) = a.get("kernel", "DOMDRIVER_ARM64_KERNEL") else {
        bail!(
            "missing: an arm64 kernel. Pass --kernel PATH or set DOMDRIVER_ARM64_KERNEL \
             (see this example's header for getting Debian's).\n{USAGE}"
        );
    };
    if !Path::new(&kernel).is_file() {
        bail!("missing: kernel {kernel} is not a file");
    }
    let mut b = GuestBuilder::new("aarch64-virt-example")
        .arch("arm64")
        .machine("virt")
        .cpu_model("cortex-a57")
        .memory_mib(512)
        .kernel(&kernel);
    if let Some(i) = a.get("initrd", "DOMDRIVER_ARM64_INITRD") {
        b = b.initrd(i);
    }
    let append = a
        .get("append", "DOMDRIVER_APPEND")
        .unwrap_or_else(|| "console=ttyAMA0 panic=-1".into());
    b = b.cmdline(append);
    let expect = a
        .get("expect", "DOMDRIVER_EXPECT")
        .unwrap_or_else(|| "Linux version".into());
    let secs: u64 = a
        .get("timeout", "DOMDRIVER_TIMEOUT")
        .map(|s| s.parse())
        .transpose()
        .context("--timeout takes whole seconds")?
        .unwrap_or(180);
    let conn = args::connection(&a)?;
    println!("{}", b.to_xml_for(&conn)?);
    // With qemu-system-aarch64 missing this says which Debian package to install.
    let mut guest = b.start(&conn)?;
    let out = guest.expect(&expect, Duration::from_secs(secs))?;
    println!("--- console up to '{expect}' ---\n{out}");
    Ok(())
}
