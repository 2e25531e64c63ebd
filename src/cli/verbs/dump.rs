//! `dump`: a running guest's core to a file (libvirt: tools/virsh-domain.c cmdDump,
//! doDump).

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::hotplug::verb;
use super::util::{DOMAIN_ACTIVE, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, OptDef};
use crate::driver::dump::{
    DUMP_BYPASS_CACHE, DUMP_CRASH, DUMP_LIVE, DUMP_MEMORY_ONLY, DUMP_RESET, DumpFormat,
};

pub const CMDS: &[CmdDef] = &[verb(
    "dump",
    "dump the core of a domain to a file for analysis",
    "Core dump a domain.",
    &[
        DOMAIN_ACTIVE,
        OptDef::data("file", "where to dump the core").complete(Completer::File),
        OptDef::flag("live", "perform a live core dump if supported"),
        OptDef::flag("crash", "crash the domain after core dump"),
        OptDef::flag("bypass-cache", "avoid file system cache when dumping"),
        OptDef::flag("reset", "reset the domain after core dump"),
        OptDef::flag("verbose", "display the progress of dump"),
        OptDef::flag("memory-only", "dump domain's memory only"),
        OptDef::string("format", "specify the format of memory-only dump"),
    ],
    cmd_dump,
    "virDomainCoreDumpWithFormat",
)];

/// The flags each option sets.
const FLAGS: [(&str, u32); 5] = [
    ("live", DUMP_LIVE),
    ("crash", DUMP_CRASH),
    ("bypass-cache", DUMP_BYPASS_CACHE),
    ("reset", DUMP_RESET),
    ("memory-only", DUMP_MEMORY_ONLY),
];

fn cmd_dump(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let to = args.required("file")?;
    let flags = FLAGS
        .iter()
        .filter(|(o, _)| args.flag(o))
        .fold(0, |f, (_, b)| f | b);
    let format = match args.string("format") {
        None => DumpFormat::Raw,
        Some(f) => {
            if flags & DUMP_MEMORY_ONLY == 0 {
                bail!("--format only works with --memory-only");
            }
            match f {
                "kdump-zlib" => DumpFormat::KdumpZlib,
                "kdump-lzo" => DumpFormat::KdumpLzo,
                "kdump-snappy" => DumpFormat::KdumpSnappy,
                "win-dmp" => DumpFormat::WinDmp,
                "elf" => DumpFormat::Raw,
                other => bail!(
                    "format '{other}' is not supported, expecting 'kdump-zlib', 'kdump-lzo', 'kdump-snappy', 'win-dmp' or 'elf'"
                ),
            }
        }
    };
    dom.core_dump_with_format(Path::new(to), format, flags)
        .with_context(|| format!("Failed to core dump domain '{}' to {to}", dom.name()))?;
    ctx.println_extra(format!("\nDomain '{}' dumped to {to}", dom.name()));
    Ok(())
}
