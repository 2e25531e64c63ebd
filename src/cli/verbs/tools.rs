//! Our own verbs, without a virsh counterpart: probing emulators and `.replies` recordings.

use anyhow::{Result, bail};

use super::util::write_atomic;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};

const FILES: OptDef = OptDef::argv("file", ".replies files")
    .required()
    .complete(Completer::File);

pub const CMDS: &[CmdDef] = &[
    CmdDef {
        name: "pvh-kernel",
        group: Group::Tools,
        info: "a bzImage's kernel, uncompressed for a fast PVH boot",
        desc: "Extract the kernel of an x86 bzImage once (cached by content hash in the\n    \
               connection's cache dir) and print the path of the uncompressed vmlinux,\n    \
               which QEMU boots through its PVH entry point: give it as <kernel>.",
        opts: &[OptDef::string("file", "the bzImage")
            .positional()
            .required()
            .complete(Completer::File)],
        handler: cmd_pvh_kernel,
        access: Access::Read,
        json: false,
        alias_of: None,
    },
    CmdDef {
        name: "qemu-caps",
        group: Group::Tools,
        info: "one emulator's capabilities document",
        desc: "Probe one emulator (--emulator PATH), or replay a recorded .replies\n    \
               conversation (--replies FILE), and print its capabilities document as\n    \
               libvirt caches it. --record FILE saves the probe's conversation.",
        opts: &[
            OptDef::string("emulator", "path to the emulator to probe").complete(Completer::File),
            OptDef::string("replies", "a recorded .replies conversation to replay")
                .complete(Completer::File),
            OptDef::string(
                "record",
                "save the probe's conversation to this .replies file",
            )
            .complete(Completer::File),
        ],
        handler: cmd_qemu_caps,
        access: Access::Read,
        json: false,
        alias_of: None,
    },
    CmdDef {
        name: "replies-check",
        group: Group::Tools,
        info: "check .replies files (format and id numbering)",
        desc: "Check that .replies files are laid out and numbered as libvirt's tests\n    \
               expect.",
        opts: &[FILES],
        handler: cmd_replies_check,
        access: Access::Read,
        json: false,
        alias_of: None,
    },
    CmdDef {
        name: "replies-renumber",
        group: Group::Tools,
        info: "renumber ids in .replies files in place",
        desc: "Rewrite the ids and layout of .replies files in place.",
        opts: &[FILES],
        handler: cmd_replies_renumber,
        access: Access::Write("replies-renumber"),
        json: false,
        alias_of: None,
    },
];

/// `vsh qemu-caps`: one emulator's caps document, probed live or replayed from `.replies`.
fn cmd_qemu_caps(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    use crate::capabilities::{accel, qemu};
    use crate::runtime::block_on;
    let record = args.string("record");
    let caps = match (args.string("emulator"), args.string("replies")) {
        (Some(e), None) => {
            let opts = qemu::ProbeOptions {
                kvm: accel::kvm_status(std::path::Path::new("/dev/kvm")).usable(),
                ..Default::default()
            };
            let path = std::path::PathBuf::from(e);
            if let Some(out) = record {
                let (caps, text) = block_on(qemu::capture_replies(&path, &opts))?;
                write_atomic(std::path::Path::new(out), text.as_bytes())?;
                caps
            } else {
                block_on(qemu::probe_binary(&path, &opts))?
            }
        }
        (None, Some(f)) => {
            if record.is_some() {
                bail!("--record goes with --emulator, not --replies");
            }
            let path = std::path::Path::new(f);
            // libvirt's files name no binary; the conventional path keeps documents comparable.
            let emulator = format!(
                "/usr/bin/qemu-system-{}",
                replies_arch(path).unwrap_or("unknown")
            );
            block_on(qemu::probe_replies(path, &emulator))?
        }
        _ => bail!("qemu-caps needs exactly one of --emulator PATH or --replies FILE"),
    };
    ctx.print(caps.to_xml());
    Ok(())
}

/// The QEMU target named in a libvirt-style file name: `caps_7.2.0.x86_64.replies`,
/// `caps_7.2.0_aarch64+hvf.replies`.
fn replies_arch(path: &std::path::Path) -> Option<&str> {
    let stem = path.file_stem()?.to_str()?;
    let rest = stem.strip_prefix("caps_")?;
    let after_version = rest.find(|c: char| c == '_' || c.is_ascii_alphabetic())?;
    let arch = rest[after_version..].trim_start_matches(['_', '.']);
    let arch = arch.split('+').next()?;
    Some(match arch {
        "ppc64le" => "ppc64",
        a => a,
    })
}

/// `vsh replies-check FILE...`.
fn cmd_replies_check(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut bad = 0;
    for f in args.all("file") {
        let report = crate::qmp::check_replies_file(std::path::Path::new(f))?;
        if report.is_ok() {
            ctx.println(report.to_string());
        } else {
            let text = report.to_string();
            let nl = if text.ends_with('\n') { "" } else { "\n" };
            let _ =
                std::io::Write::write_all(&mut std::io::stderr(), format!("{text}{nl}").as_bytes());
            bad += 1;
        }
    }
    if bad > 0 {
        bail!("{bad} file(s) need fixing (vsh replies-renumber rewrites ids and layout)");
    }
    Ok(())
}

/// `vsh replies-renumber FILE...`.
fn cmd_replies_renumber(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    for f in args.all("file") {
        let n = crate::qmp::renumber_replies_file(std::path::Path::new(f))?;
        ctx.println(format!("{f}: {n} ids changed"));
    }
    Ok(())
}

/// `vsh pvh-kernel BZIMAGE`: the cached uncompressed kernel's path.
fn cmd_pvh_kernel(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let cache = ctx.conn()?.dirs().cache.join("kernels");
    let path = crate::fleet::pvh::pvh_kernel(std::path::Path::new(file), &cache)?;
    ctx.println(path.display().to_string());
    Ok(())
}
