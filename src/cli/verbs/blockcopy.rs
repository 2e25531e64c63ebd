//! `blockcopy`: copy a running guest's disk to a new image, then wait for the mirroring
//! phase and pivot or finish (libvirt: tools/virsh-domain.c cmdBlockcopy).

use anyhow::{Context, Result, bail};

use super::blockjob::{Outcome, bail_quiet, bandwidth, extra, subscribe, timeout_ms, wait};
use super::hotplug::verb;
use super::util::{DOMAIN_ACTIVE, lookup_domain, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, OptDef};
use crate::driver::blockcopy::{
    BLOCK_COPY_REUSE_EXT, BLOCK_COPY_SHALLOW, BLOCK_COPY_SYNCHRONOUS_WRITES,
    BLOCK_COPY_TRANSIENT_JOB, BlockCopyParams,
};
use crate::driver::blockjob::{BLOCK_JOB_ABORT_ASYNC, BLOCK_JOB_ABORT_PIVOT};

pub(super) const BLOCKCOPY: CmdDef = verb(
    "blockcopy",
    "Start a block copy operation.",
    "Copy a disk backing image chain to dest.",
    &[
        DOMAIN_ACTIVE,
        OptDef::data("path", "fully-qualified path of source disk"),
        OptDef::string("dest", "path of the copy to create").positional(),
        OptDef::int("bandwidth", "bandwidth limit in MiB/s").positional(),
        OptDef::flag("shallow", "make the copy share a backing chain"),
        OptDef::flag("reuse-external", "reuse existing destination"),
        OptDef::alias("raw", "format=raw"),
        OptDef::flag(
            "blockdev",
            "copy destination is block device instead of regular file",
        ),
        OptDef::flag("wait", "wait for job to reach mirroring phase"),
        OptDef::flag("verbose", "with --wait, display the progress"),
        OptDef::int(
            "timeout",
            "implies --wait, abort if copy exceeds timeout (in seconds)",
        ),
        OptDef::flag("pivot", "implies --wait, pivot when mirroring starts"),
        OptDef::flag("finish", "implies --wait, quit when mirroring starts"),
        OptDef::flag("async", "with --wait, don't wait for cancel to finish"),
        OptDef::string(
            "xml",
            "filename containing XML description of the copy destination",
        ),
        OptDef::string("format", "format of the destination file"),
        OptDef::int(
            "granularity",
            "power-of-two granularity to use during the copy",
        ),
        OptDef::int(
            "buf-size",
            "maximum amount of in-flight data during the copy",
        ),
        OptDef::flag(
            "bytes",
            "the bandwidth limit is in bytes/s rather than MiB/s",
        ),
        OptDef::flag(
            "transient-job",
            "the copy job is not persisted if VM is turned off",
        ),
        OptDef::flag(
            "synchronous-writes",
            "the copy job forces guest writes to be synchronously written to the destination",
        ),
        OptDef::flag(
            "print-xml",
            "print the XML used to start the copy job instead of starting the job",
        ),
    ],
    cmd_blockcopy,
    "virDomainBlockCopy",
);

/// The `<disk>` virsh writes for `--dest` (cmdBlockcopy, virXMLFormatElement's layout).
fn dest_xml(dest: &str, format: Option<&str>, blockdev: bool) -> String {
    let esc = crate::xmlfmt::escape_attr;
    let (kind, attr) = if blockdev {
        ("block", "dev")
    } else {
        ("file", "file")
    };
    let mut x = format!("<disk type='{kind}'>\n  <source {attr}='{}'/>\n", esc(dest));
    if let Some(f) = format {
        x.push_str(&format!("  <driver type='{}'/>\n", esc(f)));
    }
    x.push_str("</disk>\n");
    x
}

fn cmd_blockcopy(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let path = args.required("path")?;
    let dest = args.string("dest");
    let xml = args.string("xml");
    let format = args.string("format");
    let bytes = args.flag("bytes");
    let mut bw = bandwidth(args)?;
    let granularity = args.int::<u32>("granularity")?.unwrap_or(0);
    let buf_size = args.int::<u64>("buf-size")?.unwrap_or(0);
    let mut flags = 0;
    for (o, f) in [
        ("shallow", BLOCK_COPY_SHALLOW),
        ("reuse-external", BLOCK_COPY_REUSE_EXT),
        ("transient-job", BLOCK_COPY_TRANSIENT_JOB),
        ("synchronous-writes", BLOCK_COPY_SYNCHRONOUS_WRITES),
    ] {
        if args.flag(o) {
            flags |= f;
        }
    }
    let timeout = timeout_ms(args)?;
    let (pivot, finish) = (args.flag("pivot"), args.flag("finish"));
    let blocking = args.flag("wait") || pivot || finish || timeout > 0;
    for (a, b) in [
        ("dest", "xml"),
        ("format", "xml"),
        ("blockdev", "xml"),
        ("pivot", "finish"),
    ] {
        args.exclusive(a, b)?;
    }
    if dest.is_none() && xml.is_none() {
        bail!("need either --dest or --xml");
    }
    if !blocking {
        for o in ["verbose", "async"] {
            if args.flag(o) {
                bail!("--{o} requires at least one of --timeout, --wait, --pivot, or --finish");
            }
        }
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let events = if blocking { subscribe(&dom) } else { None };
    let xmlstr = match (xml, dest) {
        (Some(f), _) => read_xml_file(f)?,
        (None, Some(d)) => dest_xml(d, format, args.flag("blockdev")),
        (None, None) => unreachable!("checked above"),
    };
    if args.flag("print-xml") {
        ctx.print(&xmlstr);
        return Ok(());
    }
    if bw > 0 && !bytes {
        // virsh: the MiB/s it takes must fit the bytes/s the API takes.
        let limit = u64::MAX >> 20;
        if bw > limit {
            bail!("bandwidth must be less than {limit}");
        }
        bw <<= 20;
    }
    let params = BlockCopyParams {
        bandwidth: bw,
        granularity,
        buf_size,
    };
    dom.block_copy(path, &xmlstr, &params, flags)?;
    if !blocking {
        extra(ctx, "Block Copy started");
        return Ok(());
    }
    let async_abort = args.flag("async");
    match wait(
        &dom,
        events,
        path,
        "Block Copy",
        args.flag("verbose"),
        timeout,
        async_abort,
    )? {
        Outcome::Canceled => return bail_quiet(ctx, "\nCopy aborted"),
        Outcome::Failed => return bail_quiet(ctx, "\nCopy failed"),
        Outcome::Completed | Outcome::Ready => {}
    }
    let abort_flags = if async_abort {
        BLOCK_JOB_ABORT_ASYNC
    } else {
        0
    };
    if pivot {
        dom.block_job_abort(path, abort_flags | BLOCK_JOB_ABORT_PIVOT)
            .with_context(|| format!("failed to pivot job for disk {path}"))?;
        extra(ctx, "\nSuccessfully pivoted");
    } else if finish {
        dom.block_job_abort(path, abort_flags)
            .with_context(|| format!("failed to finish job for disk {path}"))?;
        extra(ctx, "\nSuccessfully copied");
    } else {
        extra(ctx, "\nNow in mirroring phase");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dest_as_virsh_writes_it() {
        assert_eq!(
            dest_xml("/t/a'b.img", Some("raw"), false),
            "<disk type='file'>\n  <source file='/t/a&apos;b.img'/>\n  <driver type='raw'/>\n</disk>\n"
        );
        assert_eq!(
            dest_xml("/dev/sdx", None, true),
            "<disk type='block'>\n  <source dev='/dev/sdx'/>\n</disk>\n"
        );
    }
}
