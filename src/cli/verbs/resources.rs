//! Verbs that resize a guest: memory, vCPUs and block devices, live or in its config
//! (libvirt: tools/virsh-domain.c, cmdSetmem, cmdSetmaxmem, cmdSetvcpus, cmdBlockresize).

use anyhow::{Context, Result, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags, verb};
use super::util::DOMAIN;
use super::util::lookup_domain;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, DomainFilter, OptDef};
use crate::driver::hotplug::{MEM_MAXIMUM, VCPU_MAXIMUM};

pub const CMDS: &[CmdDef] = &[
    verb(
        "blockresize",
        "Resize block device of domain.",
        "Resize block device of domain.",
        &[
            OptDef::domain("domain name, id or uuid", DomainFilter::Active),
            OptDef::data("path", "Fully-qualified path of block device"),
            OptDef::data(
                "size",
                "New size of the block device, as scaled integer (default KiB)",
            ),
        ],
        cmd_blockresize,
        "virDomainBlockResize",
    ),
    verb(
        "setmaxmem",
        "change maximum memory limit",
        "Change the maximum memory allocation limit in the guest domain.",
        &[
            DOMAIN,
            OptDef::data(
                "size",
                "new maximum memory size, as scaled integer (default KiB)",
            ),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_setmaxmem,
        "virDomainSetMemoryFlags",
    ),
    verb(
        "setmem",
        "change memory allocation",
        "Change the current memory allocation in the guest domain.",
        &[
            DOMAIN,
            OptDef::data("size", "new memory size, as scaled integer (default KiB)"),
            CONFIG,
            LIVE,
            CURRENT,
        ],
        cmd_setmem,
        "virDomainSetMemoryFlags",
    ),
    verb(
        "setvcpus",
        "change number of virtual CPUs",
        "Change the number of virtual CPUs in the guest domain.",
        &[
            DOMAIN,
            OptDef::data("count", "number of virtual CPUs"),
            OptDef::flag("maximum", "set maximum limit on next boot"),
            CONFIG,
            LIVE,
            CURRENT,
            OptDef::flag("guest", "modify cpu state in the guest"),
            OptDef::flag("hotpluggable", "make added vcpus hot(un)pluggable"),
        ],
        cmd_setvcpus,
        "virDomainSetVcpusFlags",
    ),
];

/// A scaled integer as virsh reads it (libvirt: vshCommandOptScaledInt, virScaleInteger):
/// `unit` bytes when no suffix is given.
pub(super) fn scaled(text: &str, name: &str, unit: u64) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!("Numeric value '{text}' for <{name}> option is malformed or out of range")
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, suffix) = text.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let scale: u64 = match suffix {
        "" => unit,
        "b" | "B" | "byte" | "bytes" => 1,
        s => {
            let (letter, rest) = s.split_at(1);
            let exp = match letter.to_ascii_lowercase().as_str() {
                "k" => 1,
                "m" => 2,
                "g" => 3,
                "t" => 4,
                "p" => 5,
                "e" => 6,
                _ => return Err(bad()),
            };
            let base: u64 = match rest {
                "" | "iB" | "ib" => 1024,
                "B" | "b" => 1000,
                _ => return Err(bad()),
            };
            base.pow(exp)
        }
    };
    n.checked_mul(scale).ok_or_else(bad)
}

fn cmd_setmem(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let flags = affect_flags(args, false)?;
    let bytes = scaled(args.required("size")?, "size", 1024)?;
    dom.set_memory_flags(bytes.div_ceil(1024), flags)?;
    Ok(())
}

fn cmd_setmaxmem(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let flags = affect_flags(args, false)?;
    let bytes = scaled(args.required("size")?, "size", 1024)?;
    dom.set_memory_flags(bytes.div_ceil(1024), flags | MEM_MAXIMUM)
        .context("Unable to change MaxMemorySize")?;
    Ok(())
}

fn cmd_setvcpus(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("guest", "config")?;
    args.exclusive("hotpluggable", "guest")?;
    args.exclusive("hotpluggable", "config")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut flags = affect_flags(args, false)?;
    let count: u32 = args
        .int::<u32>("count")?
        .ok_or_else(|| anyhow::anyhow!("command 'setvcpus' requires <count> option"))?;
    if args.flag("guest") {
        bail!("argument unsupported: QEMU guest agent is not configured");
    }
    if args.flag("maximum") {
        flags |= VCPU_MAXIMUM;
    }
    dom.set_vcpus_flags(count, flags)?;
    Ok(())
}

fn cmd_blockresize(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let path = args.required("path")?;
    let bytes = scaled(args.required("size")?, "size", 1024)?;
    dom.block_resize(path, bytes)
        .with_context(|| format!("Failed to resize block device '{path}'"))?;
    ctx.println_extra(format!("Block device '{path}' is resized"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::scaled;

    #[test]
    fn scaled_integers_as_virsh_reads_them() {
        assert_eq!(scaled("10", "size", 1024).unwrap(), 10240);
        assert_eq!(scaled("10M", "size", 1024).unwrap(), 10 << 20);
        assert_eq!(scaled("1GiB", "size", 1024).unwrap(), 1 << 30);
        assert_eq!(scaled("2KB", "size", 1024).unwrap(), 2000);
        assert_eq!(scaled("512b", "size", 1024).unwrap(), 512);
        assert!(scaled("x", "size", 1024).is_err());
        assert!(scaled("1Q", "size", 1024).is_err());
    }
}
