//! Boot a kernel under QEMU and wait for a line on its serial console.
//!
//! ```text
//! cargo run --example boot_kernel -- [--kernel PATH --initrd PATH] [--arch ARCH]
//!     [--append ARGS] [--expect TEXT] [--timeout SECS] [--kvm] [--root DIR] [--keep]
//! ```
//!
//! Without `--kernel` (or `DOMDRIVER_KERNEL`/`DOMDRIVER_INITRD`) it boots the x86_64 test kit
//! that `cargo test --release --test fleet_guests` builds, and waits for its
//! `DOMDRIVER-GUEST-UP`. Timeouts scale with `VSH_TIMEOUT_MULTIPLIER`.

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use anyhow::{Context, bail};
use domdriver::fleet::GuestBuilder;

const USAGE: &str = "usage: boot_kernel [--kernel PATH --initrd PATH] [--arch ARCH] \
[--append ARGS] [--expect TEXT] [--timeout SECS] [--kvm] [--root DIR] [--keep]";

fn main() -> anyhow::Result<()> {
    let a = args::Args::parse(USAGE, &["kvm", "keep"])?;
    let (kernel, initrd, default_expect) = match a.get("kernel", "DOMDRIVER_KERNEL") {
        Some(k) => (
            k.into(),
            a.get("initrd", "DOMDRIVER_INITRD").map(Into::into),
            "Linux version",
        ),
        None => match args::test_kit() {
            Some((k, i)) => (k, Some(i), "DOMDRIVER-GUEST-UP"),
            None => bail!(
                "no kernel: pass --kernel PATH (and --initrd PATH), or build the test kit with \
                 `cargo test --release --test fleet_guests`\n{USAGE}"
            ),
        },
    };
    let mut b = GuestBuilder::new("boot-kernel-example")
        .arch(
            a.get("arch", "DOMDRIVER_ARCH")
                .unwrap_or_else(|| "x86_64".into()),
        )
        .kernel(kernel);
    if let Some(i) = initrd {
        b = b.initrd(i);
    }
    let append = match a.get("append", "DOMDRIVER_APPEND") {
        Some(x) => x,
        None => format!("{} panic=-1", b.console_arg()?),
    };
    b = b.cmdline(append);
    if a.has("kvm") {
        b = b.virt_type("kvm");
    }
    let expect = a
        .get("expect", "DOMDRIVER_EXPECT")
        .unwrap_or_else(|| default_expect.into());
    let secs: u64 = a
        .get("timeout", "DOMDRIVER_TIMEOUT")
        .map(|s| s.parse())
        .transpose()
        .context("--timeout takes whole seconds")?
        .unwrap_or(180);
    let conn = args::connection(&a)?;
    println!("{}", b.to_xml_for(&conn)?);
    let mut guest = b.start(&conn)?;
    println!(
        "started pid {:?}, console in {}",
        guest.pid(),
        guest.serial_log().display()
    );
    let out = guest.expect(&expect, Duration::from_secs(secs))?;
    println!("--- console up to '{expect}' ---\n{out}");
    if a.has("keep") {
        let dom = guest.keep();
        println!("kept running as domain '{}'", dom.name());
    }
    Ok(())
}
