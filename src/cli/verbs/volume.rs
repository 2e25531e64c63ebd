//! Storage Volume: virsh's volume verbs, worded as virsh's (libvirt:
//! tools/virsh-volume.c).

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use super::pool::lookup as lookup_pool;
use super::readfmt::pretty_capacity;
use super::util::{read_xml_file, render_table};
use crate::Connect;
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::storage::vol::{ResizeFlags, StorageVol, WIPE_ALGORITHMS};

const POOL_NAME: OptDef = OptDef::data("pool", "pool name").complete(Completer::Pool);
const POOL_FULL: OptDef = OptDef::data("pool", "pool name or uuid").complete(Completer::Pool);
const POOL_OPT: OptDef = OptDef::string("pool", "pool name or uuid").complete(Completer::Pool);
const VOL: OptDef = OptDef::data("vol", "vol name, key or path");
const VOL_BY_KEY: OptDef = OptDef::data("vol", "volume key or path");
const PREALLOC: OptDef = OptDef::flag(
    "prealloc-metadata",
    "preallocate metadata (for qcow2 instead of full allocation)",
);
const VOL_FILE: OptDef =
    OptDef::data("file", "file containing an XML vol description").complete(Completer::File);

const FORMATS: &[&str] = &["raw", "bochs", "qcow", "qcow2", "qed", "vmdk"];

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::StorageVolume, name, info, desc, opts, handler).with_access(access)
}

pub const CMDS: &[CmdDef] = &[
    verb(
        "vol-clone",
        "clone a volume.",
        "Clone an existing volume within the parent pool.",
        &[
            VOL,
            OptDef::data("newname", "clone name"),
            POOL_OPT,
            PREALLOC,
            OptDef::flag("reflink", "use btrfs COW lightweight copy"),
            OptDef::flag(
                "print-xml",
                "print XML document rather than clone the volume",
            ),
        ],
        cmd_clone,
        Access::Write("virStorageVolCreateXMLFrom"),
    ),
    verb(
        "vol-create-as",
        "create a volume from a set of args",
        "Create a vol.",
        &[
            POOL_NAME,
            OptDef::data("name", "name of the volume"),
            OptDef::data(
                "capacity",
                "size of the vol, as scaled integer (default bytes)",
            ),
            OptDef::string(
                "allocation",
                "initial allocation size, as scaled integer (default bytes)",
            )
            .positional(),
            OptDef::string("format", "file format type raw,bochs,qcow,qcow2,qed,vmdk")
                .positional()
                .complete(Completer::Words(FORMATS)),
            OptDef::string("backing-vol", "the backing volume if taking a snapshot").positional(),
            OptDef::string(
                "backing-vol-format",
                "format of backing volume if taking a snapshot",
            )
            .positional()
            .complete(Completer::Words(FORMATS)),
            PREALLOC,
            OptDef::flag("print-xml", "print XML document, but don't define/create"),
        ],
        cmd_create_as,
        Access::Write("virStorageVolCreateXML"),
    ),
    verb(
        "vol-create",
        "create a vol from an XML file",
        "Create a vol.",
        &[
            POOL_NAME,
            VOL_FILE,
            PREALLOC,
            OptDef::flag("validate", "validate the XML against the schema"),
        ],
        cmd_create,
        Access::Write("virStorageVolCreateXML"),
    ),
    verb(
        "vol-create-from",
        "create a vol, using another volume as input",
        "Create a vol from an existing volume.",
        &[
            POOL_FULL,
            VOL_FILE,
            VOL,
            OptDef::string("inputpool", "pool name or uuid of the input volume's pool")
                .complete(Completer::Pool),
            PREALLOC,
            OptDef::flag("reflink", "use btrfs COW lightweight copy"),
            OptDef::flag("validate", "validate the XML against the schema"),
        ],
        cmd_create_from,
        Access::Write("virStorageVolCreateXMLFrom"),
    ),
    verb(
        "vol-delete",
        "delete a vol",
        "Delete a given vol.",
        &[
            VOL,
            POOL_OPT,
            OptDef::flag(
                "delete-snapshots",
                "delete snapshots associated with volume (must be supported by storage driver)",
            ),
        ],
        cmd_delete,
        Access::Write("virStorageVolDelete"),
    ),
    verb(
        "vol-download",
        "download volume contents to a file",
        "Download volume contents to a file",
        &[
            VOL,
            OptDef::data("file", "file").complete(Completer::File),
            POOL_OPT,
            OptDef::string("offset", "volume offset to download from"),
            OptDef::string("length", "amount of data to download"),
            OptDef::flag("sparse", "preserve sparseness of volume"),
        ],
        cmd_download,
        Access::Read,
    ),
    verb(
        "vol-dumpxml",
        "vol information in XML",
        "Output the vol information as an XML dump to stdout.",
        &[
            VOL,
            POOL_OPT,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    CmdDef {
        json: true,
        ..verb(
            "vol-info",
            "storage vol information",
            "Returns basic information about the storage vol.",
            &[
                VOL,
                POOL_OPT,
                OptDef::flag(
                    "bytes",
                    "sizes are represented in bytes rather than pretty units",
                ),
                OptDef::flag(
                    "physical",
                    "return the physical size of the volume in allocation field",
                ),
            ],
            cmd_info,
            Access::Read,
        )
    },
    verb(
        "vol-key",
        "returns the volume key for a given volume name or path",
        "",
        &[OptDef::data("vol", "volume name or path"), POOL_OPT],
        cmd_key,
        Access::Read,
    ),
    CmdDef {
        json: true,
        ..verb(
            "vol-list",
            "list vols",
            "Returns list of vols by pool.",
            &[
                POOL_FULL,
                OptDef::flag("details", "display extended details for volumes"),
            ],
            cmd_list,
            Access::Read,
        )
    },
    verb(
        "vol-name",
        "returns the volume name for a given volume key or path",
        "",
        &[VOL_BY_KEY],
        cmd_name,
        Access::Read,
    ),
    verb(
        "vol-path",
        "returns the volume path for a given volume name or key",
        "",
        &[OptDef::data("vol", "volume name or key"), POOL_OPT],
        cmd_path,
        Access::Read,
    ),
    verb(
        "vol-pool",
        "returns the storage pool for a given volume key or path",
        "",
        &[
            VOL_BY_KEY,
            OptDef::flag("uuid", "return the pool uuid rather than pool name"),
        ],
        cmd_pool,
        Access::Read,
    ),
    verb(
        "vol-resize",
        "resize a vol",
        "Resizes a storage volume. This is safe only for storage volumes not in use by an active guest.\n    See blockresize for live resizing.",
        &[
            VOL,
            OptDef::data(
                "capacity",
                "new capacity for the vol, as scaled integer (default bytes)",
            ),
            POOL_OPT,
            OptDef::flag(
                "allocate",
                "allocate the new capacity, rather than leaving it sparse",
            ),
            OptDef::flag(
                "delta",
                "use capacity as a delta to current size, rather than the new size",
            ),
            OptDef::flag("shrink", "allow the resize to shrink the volume"),
        ],
        cmd_resize,
        Access::Write("virStorageVolResize"),
    ),
    verb(
        "vol-upload",
        "upload file contents to a volume",
        "Upload file contents to a volume",
        &[
            VOL,
            OptDef::data("file", "file").complete(Completer::File),
            POOL_OPT,
            OptDef::string("offset", "volume offset to upload to"),
            OptDef::string("length", "amount of data to upload"),
            OptDef::flag("sparse", "preserve sparseness of volume"),
        ],
        cmd_upload,
        Access::Write("virStorageVolUpload"),
    ),
    verb(
        "vol-wipe",
        "wipe a vol",
        "Ensure data previously on a volume is not accessible to future reads",
        &[
            VOL,
            POOL_OPT,
            OptDef::string("algorithm", "perform selected wiping algorithm")
                .positional()
                .complete(Completer::Words(WIPE_ALGORITHMS)),
        ],
        cmd_wipe,
        Access::Write("virStorageVolWipePattern"),
    ),
];

/// virsh's virshVolSize: a number with an optional unit suffix, libvirt's scales
/// (virScaleInteger); `None` when malformed.
pub fn vol_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, suffix) = s.split_at(digits);
    let v: u64 = num.parse().ok()?;
    let scale: u64 = if suffix.is_empty()
        || suffix.eq_ignore_ascii_case("b")
        || suffix.eq_ignore_ascii_case("byte")
        || suffix.eq_ignore_ascii_case("bytes")
    {
        1
    } else {
        let rest = &suffix[1..];
        let base: u64 = if rest.is_empty() || rest.eq_ignore_ascii_case("ib") {
            1024
        } else if rest.eq_ignore_ascii_case("b") {
            1000
        } else {
            return None;
        };
        let pow = match suffix.chars().next()?.to_ascii_lowercase() {
            'k' => 1,
            'm' => 2,
            'g' => 3,
            't' => 4,
            'p' => 5,
            'e' => 6,
            _ => return None,
        };
        base.checked_pow(pow)?
    };
    v.checked_mul(scale)
}

/// The volume of option `opt` (libvirt: virshCommandOptVolBy): by name in `--POOLOPT`'s
/// pool, then by key, then by path; a volume found in another pool than the one named is
/// refused.
fn lookup_vol<'c>(
    conn: &'c Connect,
    args: &ParsedArgs,
    opt: &str,
    pool_opt: Option<&str>,
) -> Result<StorageVol<'c>> {
    let n = args.required(opt)?;
    let pool = match pool_opt.and_then(|p| args.string(p).map(|v| (p, v))) {
        Some((popt, pname)) => {
            let p = lookup_pool(conn, args, popt)?;
            if !p.is_active() {
                bail!("pool '{pname}' is not active");
            }
            Some(p)
        }
        None => None,
    };
    let mut found = Err(anyhow!("no volume"));
    if let Some(p) = &pool {
        found = p.lookup_volume_by_name(n).map_err(anyhow::Error::from);
    }
    if found.is_err() {
        found = conn
            .lookup_storage_vol_by_key(n)
            .map_err(anyhow::Error::from);
    }
    if found.is_err() {
        found = conn
            .lookup_storage_vol_by_path(n)
            .map_err(anyhow::Error::from);
    }
    let vol = match (found, &pool, pool_opt) {
        (Ok(v), _, _) => v,
        (Err(e), Some(_), _) | (Err(e), None, None) => {
            return Err(e.context(format!("failed to get vol '{n}'")));
        }
        (Err(e), None, Some(popt)) => {
            return Err(e.context(format!(
                "failed to get vol '{n}', specifying --{popt} might help"
            )));
        }
    };
    if let Some(p) = &pool
        && vol.pool().name() != p.name()
    {
        bail!("Requested volume '{n}' is not in pool '{}'", p.name());
    }
    Ok(vol)
}

fn size_arg(args: &ParsedArgs, name: &str) -> Result<Option<u64>> {
    match args.string(name) {
        None => Ok(None),
        Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
            anyhow!("Numeric value '{s}' for <{name}> option is malformed or out of range")
        }),
    }
}

/// `vsh vol-create-as POOL NAME CAPACITY ...` (libvirt: cmdVolCreateAs).
fn cmd_create_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let pool = lookup_pool(conn, args, "pool")?;
    let name = args.required("name")?;
    let cap_s = args.required("capacity")?;
    let capacity = vol_size(cap_s).ok_or_else(|| anyhow!("Malformed size {cap_s}"))?;
    let allocation = match args.string("allocation") {
        Some(a) => Some(vol_size(a).ok_or_else(|| anyhow!("Malformed size {a}"))?),
        None => None,
    };
    let mut x = format!("<volume>\n  <name>{name}</name>\n  <capacity>{capacity}</capacity>\n");
    if let Some(a) = allocation {
        x.push_str(&format!("  <allocation>{a}</allocation>\n"));
    }
    if let Some(f) = args.string("format") {
        x.push_str(&format!(
            "  <target>\n    <format type='{f}'/>\n  </target>\n"
        ));
    }
    if let Some(b) = args.string("backing-vol") {
        let path = {
            let mut found = pool.lookup_volume_by_name(b).map(|v| v.path().to_string());
            if found.is_err() {
                found = conn
                    .lookup_storage_vol_by_key(b)
                    .map(|v| v.path().to_string());
            }
            if found.is_err() {
                found = conn
                    .lookup_storage_vol_by_path(b)
                    .map(|v| v.path().to_string());
            }
            found
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed to get vol '{b}'"))?
        };
        x.push_str(&format!("  <backingStore>\n    <path>{path}</path>\n"));
        if let Some(f) = args.string("backing-vol-format") {
            x.push_str(&format!("    <format type='{f}'/>\n"));
        }
        x.push_str("  </backingStore>\n");
    }
    x.push_str("</volume>\n");
    if args.flag("print-xml") {
        ctx.print(x);
        return Ok(());
    }
    pool.create_volume_xml(&x, args.flag("prealloc-metadata"))
        .with_context(|| format!("Failed to create vol {name}"))?;
    ctx.println_extra(format!("Vol {name} created"));
    Ok(())
}

/// `vsh vol-create POOL FILE` (libvirt: cmdVolCreate).
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup_pool(ctx.conn()?, args, "pool")?;
    let file = args.required("file")?;
    let xml = read_xml_file(file)?;
    let vol = pool
        .create_volume_xml(&xml, args.flag("prealloc-metadata"))
        .with_context(|| format!("Failed to create vol from {file}"))?;
    ctx.println_extra(format!("Vol {} created from {file}", vol.name()));
    Ok(())
}

/// `vsh vol-create-from POOL FILE VOL [--inputpool P]` (libvirt: cmdVolCreateFrom).
fn cmd_create_from(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let pool = lookup_pool(conn, args, "pool")?;
    let file = args.required("file")?;
    let input = lookup_vol(conn, args, "vol", Some("inputpool"))?;
    let xml = read_xml_file(file)?;
    let vol = pool
        .create_volume_xml_from(&xml, &input, args.flag("prealloc-metadata"))
        .with_context(|| format!("Failed to create vol from {file}"))?;
    ctx.println_extra(format!(
        "Vol {} created from input vol {}",
        vol.name(),
        input.name()
    ));
    Ok(())
}

/// `vsh vol-clone VOL NEWNAME [--pool P]` (libvirt: cmdVolClone): the volume's XML under
/// the new name, created from it in its pool.
fn cmd_clone(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let conn = ctx.conn()?;
    let orig = lookup_vol(conn, args, "vol", Some("pool"))?;
    let newname = args.required("newname")?;
    let mut def = orig.def().clone();
    def.name = newname.to_string();
    def.key = None;
    let xml = def.format();
    if args.flag("print-xml") {
        ctx.print(xml);
        return Ok(());
    }
    orig.pool()
        .create_volume_xml_from(&xml, &orig, args.flag("prealloc-metadata"))
        .with_context(|| format!("Failed to clone vol from {}", orig.name()))?;
    ctx.println_extra(format!("Vol {newname} cloned from {}", orig.name()));
    Ok(())
}

/// `vsh vol-delete VOL [--pool P] [--delete-snapshots]` (libvirt: cmdVolDelete).
fn cmd_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let name = args.required("vol")?;
    vol.delete(args.flag("delete-snapshots"))
        .with_context(|| format!("Failed to delete vol {name}"))?;
    ctx.println_extra(format!("Vol {name} deleted"));
    Ok(())
}

/// `vsh vol-wipe VOL [--pool P] [--algorithm A]` (libvirt: cmdVolWipe).
fn cmd_wipe(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let name = args.required("vol")?;
    let alg = args.string("algorithm").unwrap_or("zero");
    if !WIPE_ALGORITHMS.contains(&alg) {
        bail!("Unsupported algorithm '{alg}'");
    }
    vol.wipe(alg)
        .with_context(|| format!("Failed to wipe vol {name}"))?;
    ctx.println_extra(format!("Vol {name} wiped"));
    Ok(())
}

/// `vol-info --json`.
#[derive(Serialize)]
struct VolInfoOut {
    name: String,
    /// `file`, `dir`, ...
    #[serde(rename = "type")]
    vtype: String,
    capacity: u64,
    /// The file's size instead with `--physical`.
    allocation: u64,
}

fn pretty(v: u64) -> String {
    let (n, u) = pretty_capacity(v);
    format!("{n:.2} {u}")
}

/// `vsh vol-info VOL [--pool P] [--bytes] [--physical]` (libvirt: cmdVolInfo).
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let physical = args.flag("physical");
    let (t, cap, alloc) = vol.info(physical);
    let out = VolInfoOut {
        name: vol.name().to_string(),
        vtype: t.as_str().to_string(),
        capacity: cap,
        allocation: alloc,
    };
    let bytes = args.flag("bytes");
    ctx.emit(&out, |o| {
        let label = if physical { "Physical:" } else { "Allocation:" };
        let v = |n: u64| {
            if bytes {
                format!("{n} bytes")
            } else {
                pretty(n)
            }
        };
        format!(
            "{:<15} {}\n{:<15} {}\n{:<15} {}\n{label:<15} {}\n",
            "Name:",
            o.name,
            "Type:",
            o.vtype,
            "Capacity:",
            v(o.capacity),
            v(o.allocation)
        )
    });
    Ok(())
}

/// `vsh vol-dumpxml VOL [--pool P] [--xpath E [--wrap]]` (libvirt: cmdVolDumpXML).
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let xml = vol.xml_desc();
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// One row of `vol-list --json`.
#[derive(Serialize)]
struct VolRow {
    name: String,
    path: String,
    #[serde(rename = "type")]
    vtype: String,
    capacity: u64,
    allocation: u64,
}

/// `vsh vol-list POOL [--details]` (libvirt: cmdVolList).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let pool = lookup_pool(ctx.conn()?, args, "pool")?;
    let vols = pool
        .list_volumes()
        .context("Failed to list storage volumes")?;
    let rows: Vec<VolRow> = vols
        .iter()
        .map(|v| {
            let (t, cap, alloc) = v.info(false);
            VolRow {
                name: v.name().to_string(),
                path: v.path().to_string(),
                vtype: t.as_str().to_string(),
                capacity: cap,
                allocation: alloc,
            }
        })
        .collect();
    let details = args.flag("details");
    ctx.emit(&rows, |rows| {
        if !details {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![r.name.clone(), r.path.clone()])
                .collect();
            return render_table(&["Name", "Path"], &cells);
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.path.clone(),
                    r.vtype.clone(),
                    pretty(r.capacity),
                    pretty(r.allocation),
                ]
            })
            .collect();
        render_table(&["Name", "Path", "Type", "Capacity", "Allocation"], &cells)
    });
    Ok(())
}

/// `vsh vol-name KEY|PATH` (libvirt: cmdVolName).
fn cmd_name(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", None)?;
    ctx.println(vol.name());
    Ok(())
}

/// `vsh vol-pool KEY|PATH [--uuid]` (libvirt: cmdVolPool).
fn cmd_pool(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", None)?;
    if args.flag("uuid") {
        ctx.println(vol.pool().uuid_string());
    } else {
        ctx.println(vol.pool().name());
    }
    Ok(())
}

/// `vsh vol-key VOL [--pool P]` (libvirt: cmdVolKey).
fn cmd_key(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    ctx.println(vol.key());
    Ok(())
}

/// `vsh vol-path VOL [--pool P]` (libvirt: cmdVolPath).
fn cmd_path(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    ctx.println(vol.path());
    Ok(())
}

/// `vsh vol-resize VOL CAPACITY [--pool P] [--allocate] [--delta] [--shrink]` (libvirt:
/// cmdVolResize). A leading `-` means a shrink by so much, with `--shrink`.
fn cmd_resize(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let mut flags = ResizeFlags {
        allocate: args.flag("allocate"),
        delta: args.flag("delta"),
        shrink: args.flag("shrink"),
    };
    let mut cap = args.required("capacity")?.trim_start();
    if let Some(rest) = cap.strip_prefix('-') {
        if !flags.shrink {
            bail!("negative size requires --shrink");
        }
        cap = rest;
        flags.delta = true;
    }
    let size = vol_size(cap).ok_or_else(|| anyhow!("Malformed size {cap}"))?;
    vol.resize(size, flags).with_context(|| {
        if flags.delta {
            format!("Failed to change size of volume '{}' by {cap}", vol.name())
        } else {
            format!("Failed to change size of volume '{}' to {cap}", vol.name())
        }
    })?;
    ctx.println_extra(if flags.delta {
        format!(
            "Size of volume '{}' successfully changed by {cap}",
            vol.name()
        )
    } else {
        format!(
            "Size of volume '{}' successfully changed to {cap}",
            vol.name()
        )
    });
    Ok(())
}

/// `vsh vol-upload VOL FILE [--pool P] [--offset N] [--length N] [--sparse]` (libvirt:
/// cmdVolUpload).
fn cmd_upload(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let name = args.required("vol")?;
    let offset = size_arg(args, "offset")?.unwrap_or(0);
    let length = size_arg(args, "length")?.unwrap_or(0);
    let file = args.required("file")?;
    let mut f = std::fs::File::open(file).map_err(|_| anyhow!("cannot read {file}"))?;
    vol.upload(&mut f, offset, length)
        .with_context(|| format!("cannot upload to volume {name}"))?;
    Ok(())
}

/// `vsh vol-download VOL FILE [--pool P] [--offset N] [--length N] [--sparse]` (libvirt:
/// cmdVolDownload). A file made here is removed again when the download fails.
fn cmd_download(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let vol = lookup_vol(ctx.conn()?, args, "vol", Some("pool"))?;
    let name = args.required("vol")?;
    let offset = size_arg(args, "offset")?.unwrap_or(0);
    let length = size_arg(args, "length")?.unwrap_or(0);
    let file = args.required("file")?;
    let created = !std::path::Path::new(file).exists();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(file)
        .map_err(|_| anyhow!("cannot create {file}"))?;
    if let Err(e) = vol.download(&mut f, offset, length, args.flag("sparse")) {
        if created {
            let _ = std::fs::remove_file(file);
        }
        return Err(anyhow::Error::from(e).context(format!("cannot download from volume {name}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_scale_as_virsh_does() {
        assert_eq!(vol_size("10"), Some(10));
        assert_eq!(vol_size("1K"), Some(1024));
        assert_eq!(vol_size("1KiB"), Some(1024));
        assert_eq!(vol_size("1KB"), Some(1000));
        assert_eq!(vol_size("2G"), Some(2 << 30));
        assert_eq!(vol_size("3b"), Some(3));
        assert_eq!(vol_size("1x"), None);
        assert_eq!(vol_size("-1"), None);
        assert_eq!(vol_size(""), None);
    }
}
