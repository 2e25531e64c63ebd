//! Snapshot verbs (libvirt: tools/virsh-snapshot.c): create, list, inspect, revert, delete
//! and edit domain snapshots, with virsh's output lines and table layout.

use anyhow::{Context, Result, bail};

use super::util::DOMAIN;
use super::util::{lookup_domain, print_table, read_xml_file};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Completer, Group, OptDef};
use crate::driver::domain::Domain;
use crate::driver::snapshot::{self as snap, DomainSnapshot};
use crate::xmlfmt::escape_attr;

const fn verb(
    name: &'static str,
    info: &'static str,
    desc: &'static str,
    opts: &'static [OptDef],
    handler: crate::cli::table::Handler,
    access: Access,
) -> CmdDef {
    CmdDef::new(Group::Snapshot, name, info, desc, opts, handler).with_access(access)
}

const NAME_ARG: OptDef = OptDef::string("snapshotname", "snapshot name").positional();
const NO_METADATA: OptDef = OptDef::flag("no-metadata", "take snapshot but create no metadata");
const HALT: OptDef = OptDef::flag("halt", "halt domain after snapshot is created");
const DISK_ONLY: OptDef = OptDef::flag("disk-only", "capture disk state but not vm state");
const REUSE: OptDef = OptDef::flag("reuse-external", "reuse any existing external files");
const QUIESCE: OptDef = OptDef::flag("quiesce", "quiesce guest's file systems");
const ATOMIC: OptDef = OptDef::flag("atomic", "require atomic operation");
const LIVE: OptDef = OptDef::flag("live", "take a live snapshot");
const VALIDATE: OptDef = OptDef::flag("validate", "validate the XML against the schema");
const SECURITY: OptDef = OptDef::flag(
    "security-info",
    "include security sensitive information in XML dump",
);

pub const CMDS: &[CmdDef] = &[
    verb(
        "snapshot-create",
        "Create a snapshot from XML",
        "Create a snapshot (disk and RAM) from XML",
        &[
            DOMAIN,
            OptDef::string("xmlfile", "domain snapshot XML")
                .positional()
                .complete(Completer::File),
            OptDef::flag("redefine", "redefine metadata for existing snapshot"),
            OptDef::flag("current", "with redefine, set current snapshot"),
            NO_METADATA,
            HALT,
            DISK_ONLY,
            REUSE,
            QUIESCE,
            ATOMIC,
            LIVE,
            VALIDATE,
        ],
        cmd_create,
        Access::Write("virDomainSnapshotCreateXML"),
    ),
    verb(
        "snapshot-create-as",
        "Create a snapshot from a set of args",
        "Create a snapshot (disk and RAM) from arguments",
        &[
            DOMAIN,
            OptDef::string("name", "name of snapshot").positional(),
            OptDef::string("description", "description of snapshot").positional(),
            OptDef::flag("print-xml", "print XML document rather than create"),
            NO_METADATA,
            HALT,
            DISK_ONLY,
            REUSE,
            QUIESCE,
            ATOMIC,
            LIVE,
            VALIDATE,
            OptDef::string("memspec", "memory attributes: [file=]name[,snapshot=type]"),
            OptDef::argv(
                "diskspec",
                "disk attributes: disk[,snapshot=type][,driver=type][,stype=type][,file=name]",
            ),
        ],
        cmd_create_as,
        Access::Write("virDomainSnapshotCreateXML"),
    ),
    verb(
        "snapshot-current",
        "Get or set the current snapshot",
        "Get or set the current snapshot",
        &[
            DOMAIN,
            OptDef::flag("name", "list the name, rather than the full xml"),
            SECURITY,
            OptDef::string("snapshotname", "name of existing snapshot to make current")
                .positional(),
        ],
        cmd_current,
        Access::Write("virDomainSnapshotCreateXML"),
    ),
    verb(
        "snapshot-delete",
        "Delete a domain snapshot",
        "Snapshot Delete",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag("current", "delete current snapshot"),
            OptDef::flag("children", "delete snapshot and all children"),
            OptDef::flag("children-only", "delete children but not snapshot"),
            OptDef::flag(
                "metadata",
                "delete only libvirt metadata, leaving snapshot contents behind",
            ),
        ],
        cmd_delete,
        Access::Write("virDomainSnapshotDelete"),
    ),
    verb(
        "snapshot-dumpxml",
        "Dump XML for a domain snapshot",
        "Snapshot Dump XML",
        &[
            DOMAIN,
            OptDef::data("snapshotname", "snapshot name"),
            SECURITY,
            OptDef::string("xpath", "xpath expression to filter the XML document"),
            OptDef::flag("wrap", "wrap xpath results in an common root element"),
        ],
        cmd_dumpxml,
        Access::Read,
    ),
    verb(
        "snapshot-edit",
        "edit XML for a snapshot",
        "Edit the domain snapshot XML for a named snapshot",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag("current", "also set edited snapshot as current"),
            OptDef::flag("rename", "allow renaming an existing snapshot"),
            OptDef::flag("clone", "allow cloning to new name"),
        ],
        cmd_edit,
        Access::Write("virDomainSnapshotCreateXML"),
    ),
    verb(
        "snapshot-info",
        "snapshot information",
        "Returns basic information about a snapshot.",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag("current", "info on current snapshot"),
        ],
        cmd_info,
        Access::Read,
    ),
    verb(
        "snapshot-list",
        "List snapshots for a domain",
        "Snapshot List",
        &[
            DOMAIN,
            OptDef::flag("parent", "add a column showing parent snapshot"),
            OptDef::flag("roots", "list only snapshots without parents"),
            OptDef::flag("leaves", "list only snapshots without children"),
            OptDef::flag(
                "no-leaves",
                "list only snapshots that are not leaves (with children)",
            ),
            OptDef::flag(
                "metadata",
                "list only snapshots that have metadata that would prevent undefine",
            ),
            OptDef::flag(
                "no-metadata",
                "list only snapshots that have no metadata managed by libvirt",
            ),
            OptDef::flag("inactive", "filter by snapshots taken while inactive"),
            OptDef::flag(
                "active",
                "filter by snapshots taken while active (full system snapshots)",
            ),
            OptDef::flag("disk-only", "filter by disk-only snapshots"),
            OptDef::flag("internal", "filter by internal snapshots"),
            OptDef::flag("external", "filter by external snapshots"),
            OptDef::flag("tree", "list snapshots in a tree"),
            OptDef::string("from", "limit list to children of given snapshot"),
            OptDef::flag("current", "limit list to children of current snapshot"),
            OptDef::flag("descendants", "with --from, list all descendants"),
            OptDef::flag("name", "list snapshot names only"),
            OptDef::flag("topological", "sort list topologically rather than by name"),
        ],
        cmd_list,
        Access::Read,
    ),
    verb(
        "snapshot-parent",
        "Get the name of the parent of a snapshot",
        "Extract the snapshot's parent, if any",
        &[
            DOMAIN,
            OptDef::string("snapshotname", "find parent of snapshot name").positional(),
            OptDef::flag("current", "find parent of current snapshot"),
        ],
        cmd_parent,
        Access::Read,
    ),
    verb(
        "snapshot-revert",
        "Revert a domain to a snapshot",
        "Revert domain to snapshot",
        &[
            DOMAIN,
            NAME_ARG,
            OptDef::flag("current", "revert to current snapshot"),
            OptDef::flag("running", "after reverting, change state to running"),
            OptDef::flag("paused", "after reverting, change state to paused"),
            OptDef::flag("force", "try harder on risky reverts"),
            OptDef::flag(
                "reset-nvram",
                "re-initialize NVRAM from its pristine template",
            ),
        ],
        cmd_revert,
        Access::Write("virDomainRevertToSnapshot"),
    ),
];

/// virsh's vshPrintExtra without a newline of its own (the shell ends the output).
fn print_extra(ctx: &CmdCtx, s: String) {
    if !ctx.globals.quiet {
        ctx.print(s);
    }
}

/// `{--ARG NAME | --current}` (libvirt: virshLookupSnapshot).
fn lookup_snapshot<'c>(
    args: &ParsedArgs,
    arg: &str,
    exclusive: bool,
    dom: &Domain<'c>,
) -> Result<DomainSnapshot<'c>> {
    let current = args.flag("current");
    let name = args.string(arg);
    if exclusive && current && name.is_some() {
        bail!("--{arg} and --current are mutually exclusive");
    }
    Ok(match name {
        Some(n) => dom.snapshot_lookup_by_name(n, 0)?,
        None if current => dom.snapshot_current(0)?,
        None => bail!("--{arg} or --current is required"),
    })
}

/// The creation flags shared by both create verbs.
fn create_flags(args: &ParsedArgs) -> Result<u32> {
    let mut flags = 0;
    for (opt, f) in [
        ("no-metadata", snap::CREATE_NO_METADATA),
        ("halt", snap::CREATE_HALT),
        ("disk-only", snap::CREATE_DISK_ONLY),
        ("reuse-external", snap::CREATE_REUSE_EXT),
        ("quiesce", snap::CREATE_QUIESCE),
        ("atomic", snap::CREATE_ATOMIC),
        ("live", snap::CREATE_LIVE),
        ("validate", snap::CREATE_VALIDATE),
    ] {
        if args.flag(opt) {
            flags |= f;
        }
    }
    Ok(flags)
}

/// libvirt: virshSnapshotCreate.
fn create(ctx: &CmdCtx, dom: &Domain<'_>, xml: &str, flags: u32, from: Option<&str>) -> Result<()> {
    let s = dom.snapshot_create_xml(xml, flags)?;
    match from {
        Some(f) => print_extra(
            ctx,
            format!("Domain snapshot {} created from '{f}'", s.name()),
        ),
        None => print_extra(ctx, format!("Domain snapshot {} created", s.name())),
    }
    Ok(())
}

/// `vsh snapshot-create DOMAIN [XMLFILE]`.
fn cmd_create(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut flags = create_flags(args)?;
    if args.flag("redefine") {
        flags |= snap::CREATE_REDEFINE;
    }
    if args.flag("current") {
        flags |= snap::CREATE_CURRENT;
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let from = args.string("xmlfile");
    let xml = match from {
        Some(f) => read_xml_file(f)?,
        None => "<domainsnapshot/>".to_string(),
    };
    create(ctx, &dom, &xml, flags, from)
}

/// `--memspec [file=]NAME[,snapshot=TYPE]` (libvirt: virshParseSnapshotMemspec).
fn memspec(s: &str) -> Result<String> {
    let (mut snapshot, mut file) = (None, None);
    for part in split_commas(s) {
        if snapshot.is_none() && part.starts_with("snapshot=") {
            snapshot = Some(part["snapshot=".len()..].to_string());
        } else if file.is_none() && part.starts_with("file=") {
            file = Some(part["file=".len()..].to_string());
        } else if file.is_none() && part.starts_with('/') {
            file = Some(part);
        } else {
            bail!("unable to parse memspec: {s}");
        }
    }
    let mut out = "  <memory".to_string();
    if let Some(v) = snapshot {
        out.push_str(&format!(" snapshot='{}'", escape_attr(&v)));
    }
    if let Some(v) = file {
        out.push_str(&format!(" file='{}'", escape_attr(&v)));
    }
    out.push_str("/>\n");
    Ok(out)
}

/// `--diskspec DISK[,snapshot=TYPE][,driver=TYPE][,stype=TYPE][,file=NAME]` (libvirt:
/// virshParseSnapshotDiskspec).
fn diskspec(s: &str) -> Result<String> {
    let parts = split_commas(s);
    let Some((name, rest)) = parts.split_first() else {
        bail!("unable to parse diskspec: {s}");
    };
    let (mut snapshot, mut driver, mut stype, mut file) = (None, None, None, None);
    for p in rest {
        let slot = if p.starts_with("snapshot=") && snapshot.is_none() {
            &mut snapshot
        } else if p.starts_with("driver=") && driver.is_none() {
            &mut driver
        } else if p.starts_with("stype=") && stype.is_none() {
            &mut stype
        } else if p.starts_with("file=") && file.is_none() {
            &mut file
        } else {
            bail!("unable to parse diskspec: {s}");
        };
        *slot = p.split_once('=').map(|(_, v)| v.to_string());
    }
    let mut out = format!("    <disk name='{}'", escape_attr(name));
    if let Some(v) = &snapshot {
        out.push_str(&format!(" snapshot='{v}'"));
    }
    if let Some(v) = &stype {
        out.push_str(&format!(" type='{v}'"));
    }
    if driver.is_none() && file.is_none() {
        out.push_str("/>\n");
        return Ok(out);
    }
    out.push_str(">\n");
    if let Some(v) = &driver {
        out.push_str(&format!("      <driver type='{v}'/>\n"));
    }
    if let Some(v) = &file {
        let attr = if stype.as_deref() == Some("block") {
            "dev"
        } else {
            "file"
        };
        out.push_str(&format!("      <source {attr}='{}'/>\n", escape_attr(v)));
    }
    out.push_str("    </disk>\n");
    Ok(out)
}

/// virsh's comma-separated list, `,,` standing for a comma (libvirt: vshStringToArray).
pub(super) fn split_commas(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                out.last_mut().unwrap().push(',');
            } else {
                out.push(String::new());
            }
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

/// `vsh snapshot-create-as DOMAIN [NAME] [DESCRIPTION] ...`.
fn cmd_create_as(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    if args.flag("no-metadata") && args.flag("print-xml") {
        bail!("--print-xml is incompatible with --no-metadata");
    }
    let flags = create_flags(args)?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let mut xml = "<domainsnapshot>\n".to_string();
    if let Some(n) = args.string("name") {
        xml.push_str(&format!(
            "  <name>{}</name>\n",
            crate::xmlfmt::escape_text(n)
        ));
    }
    if let Some(d) = args.string("description") {
        xml.push_str(&format!(
            "  <description>{}</description>\n",
            crate::xmlfmt::escape_text(d)
        ));
    }
    if let Some(m) = args.string("memspec") {
        xml.push_str(&memspec(m)?);
    }
    let specs = args.all("diskspec");
    if !specs.is_empty() {
        xml.push_str("  <disks>\n");
        for s in specs {
            xml.push_str(&diskspec(s)?);
        }
        xml.push_str("  </disks>\n");
    }
    xml.push_str("</domainsnapshot>\n");
    if args.flag("print-xml") {
        ctx.println(xml);
        return Ok(());
    }
    create(ctx, &dom, &xml, flags, None)
}

/// `vsh snapshot-current DOMAIN [--name] [SNAPSHOTNAME]`.
fn cmd_current(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("name", "snapshotname")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    if let Some(name) = args.string("snapshotname") {
        let s = dom.snapshot_lookup_by_name(name, 0)?;
        let xml = s.def()?.to_xml(false);
        let mut flags = snap::CREATE_REDEFINE | snap::CREATE_CURRENT;
        if xml.contains("<state>disk-snapshot</state>") {
            flags |= snap::CREATE_DISK_ONLY;
        }
        dom.snapshot_create_xml(&xml, flags & !snap::CREATE_DISK_ONLY)?;
        print_extra(ctx, format!("Snapshot {name} set as current"));
        return Ok(());
    }
    if !dom.has_current_snapshot(0)? {
        bail!("domain '{}' has no current snapshot", dom.name());
    }
    let s = dom.snapshot_current(0)?;
    if args.flag("name") {
        ctx.print(s.name());
    } else {
        ctx.print(s.xml_desc(0)?);
    }
    Ok(())
}

/// `vsh snapshot-delete DOMAIN {SNAPSHOT | --current} [--children | --children-only]`.
fn cmd_delete(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let s = lookup_snapshot(args, "snapshotname", true, &dom)?;
    let mut flags = 0;
    if args.flag("children") {
        flags |= snap::DELETE_CHILDREN;
    }
    if args.flag("children-only") {
        flags |= snap::DELETE_CHILDREN_ONLY;
    }
    if args.flag("metadata") {
        flags |= snap::DELETE_METADATA_ONLY;
    }
    s.delete(flags)
        .with_context(|| format!("Failed to delete snapshot {}", s.name()))?;
    if flags & snap::DELETE_CHILDREN_ONLY != 0 {
        ctx.println_extra(format!("Domain snapshot {} children deleted", s.name()));
    } else {
        ctx.println_extra(format!("Domain snapshot {} deleted", s.name()));
    }
    Ok(())
}

/// `vsh snapshot-dumpxml DOMAIN SNAPSHOT`.
fn cmd_dumpxml(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let name = args.required("snapshotname")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.snapshot_lookup_by_name(name, 0)?.xml_desc(0)?;
    match args.string("xpath") {
        Some(expr) => ctx.print(super::xpath::render(&xml, expr, args.flag("wrap"))?),
        None => ctx.print(xml),
    }
    Ok(())
}

/// `vsh snapshot-edit DOMAIN [SNAPSHOT] [--current] [--rename | --clone]` (libvirt:
/// cmdSnapshotEdit).
fn cmd_edit(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    args.exclusive("rename", "clone")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let s = lookup_snapshot(args, "snapshotname", false, &dom)?;
    let name = s.name().to_string();
    let mut flags = snap::CREATE_REDEFINE;
    if args.flag("current") && args.string("snapshotname").is_some() {
        flags |= snap::CREATE_CURRENT;
    }
    let res = (|| -> Result<()> {
        let doc = s.xml_desc(0)?;
        let edited = crate::cli::edit::edit_text(&doc)?;
        if edited == doc && flags & snap::CREATE_CURRENT == 0 {
            ctx.println_extra(format!("Snapshot {name} XML configuration not changed."));
            return Ok(());
        }
        let new = dom.snapshot_create_xml(&edited, flags)?;
        if new.name() == name {
            ctx.println_extra(format!("Snapshot {name} edited."));
        } else if args.flag("clone") {
            ctx.println_extra(format!("Snapshot {name} cloned to {}.", new.name()));
        } else {
            let rename = args.flag("rename");
            let gone = if rename { &s } else { &new };
            gone.delete(snap::DELETE_METADATA_ONLY)
                .with_context(|| format!("Failed to clean up {}", gone.name()))?;
            if !rename {
                bail!(
                    "Must use --rename or --clone to change {name} to {}",
                    new.name()
                );
            }
        }
        Ok(())
    })();
    res.with_context(|| format!("Failed to update {name}"))
}

/// `vsh snapshot-info DOMAIN {SNAPSHOT | --current}`.
fn cmd_info(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let s = lookup_snapshot(args, "snapshotname", true, &dom)?;
    let def = s.def()?;
    let row = |k: &str, v: &str| format!("{:<15} {v}\n", format!("{k}:"));
    let mut out = String::new();
    out.push_str(&row("Name", s.name()));
    out.push_str(&row("Domain", dom.name()));
    out.push_str(&row("Current", if def.current { "yes" } else { "no" }));
    let state = def.state.map_or("nostate", |s| s.as_str());
    out.push_str(&row("State", state));
    let external = if def.memory.is_some() {
        def.is_external()
    } else {
        state == "disk-snapshot"
    };
    out.push_str(&row(
        "Location",
        if external { "external" } else { "internal" },
    ));
    out.push_str(&row("Parent", def.parent.as_deref().unwrap_or("-")));
    out.push_str(&row("Children", &s.num_children(0)?.to_string()));
    out.push_str(&row(
        "Descendants",
        &s.num_children(snap::LIST_DESCENDANTS)?.to_string(),
    ));
    out.push_str(&row("Metadata", "yes"));
    ctx.print(out);
    Ok(())
}

/// virsh's `--tree` of (name, parent) rows, every root in row order; `start` (the
/// `--from` item) counts as a root.
pub(super) fn forest(
    rows: impl Iterator<Item = (String, Option<String>)>,
    start: Option<&str>,
) -> String {
    let items: Vec<(String, Option<String>)> = rows
        .map(|(name, parent)| {
            let parent = if Some(name.as_str()) == start {
                None
            } else {
                parent
            };
            (name, parent)
        })
        .collect();
    let mut out = String::new();
    for i in 0..items.len() {
        if items[i].1.is_none() {
            tree(&mut out, &items, i, i, true, &mut String::new());
        }
    }
    out
}

/// vshTreePrint: a snapshot and its descendants, `+- ` before each child, `|` joining
/// siblings (libvirt: vshTreePrintInternal).
fn tree(
    out: &mut String,
    items: &[(String, Option<String>)],
    id: usize,
    last: usize,
    root: bool,
    indent: &mut String,
) {
    let name = &items[id].0;
    out.push_str(&format!(
        "{indent}{}{name}\n",
        if root { "" } else { "+- " }
    ));
    if !root {
        indent.push(if id == last { ' ' } else { '|' });
        indent.push(' ');
    }
    let children: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].1.as_deref() == Some(name.as_str()))
        .collect();
    let next_last = children.last().copied();
    if next_last.is_some() {
        out.push_str(&format!("{indent}  |\n"));
    }
    indent.push_str("  ");
    for c in &children {
        tree(
            out,
            items,
            *c,
            next_last.unwrap_or(usize::MAX),
            false,
            indent,
        );
    }
    indent.truncate(indent.len() - 2);
    if next_last.is_none() && id == last {
        out.push_str(&format!("{indent}\n"));
    }
    if !root {
        indent.truncate(indent.len() - 2);
    }
}

/// `vsh snapshot-list DOMAIN [--parent | --roots | --tree | --name] ...` (libvirt:
/// cmdSnapshotList, virshSnapshotListCollect).
fn cmd_list(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (tree_mode, name_mode) = (args.flag("tree"), args.flag("name"));
    for (a, b) in [
        ("tree", "name"),
        ("parent", "roots"),
        ("parent", "tree"),
        ("roots", "tree"),
        ("roots", "from"),
        ("roots", "current"),
    ] {
        args.exclusive(a, b)?;
    }
    let mut flags = 0;
    for (opt, f) in [
        ("leaves", snap::LIST_LEAVES),
        ("no-leaves", snap::LIST_NO_LEAVES),
        ("inactive", snap::LIST_INACTIVE),
        ("active", snap::LIST_ACTIVE),
        ("disk-only", snap::LIST_DISK_ONLY),
        ("internal", snap::LIST_INTERNAL),
        ("external", snap::LIST_EXTERNAL),
    ] {
        if args.flag(opt) {
            if tree_mode {
                bail!("--{opt} and --tree are mutually exclusive");
            }
            flags |= f;
        }
    }
    for (opt, f) in [
        ("roots", snap::LIST_ROOTS),
        ("metadata", snap::LIST_METADATA),
        ("no-metadata", snap::LIST_NO_METADATA),
        ("topological", snap::LIST_TOPOLOGICAL),
    ] {
        if args.flag(opt) {
            flags |= f;
        }
    }
    let from_given = args.string("from").is_some() || args.flag("current");
    let descendants = args.flag("descendants") || (tree_mode && from_given);
    if args.flag("descendants") && !from_given {
        bail!("--descendants requires either --from or --current");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let start = if from_given {
        Some(lookup_snapshot(args, "from", true, &dom)?)
    } else {
        None
    };
    let mut snaps = match &start {
        Some(s) => {
            let f = if descendants {
                flags | snap::LIST_DESCENDANTS
            } else {
                flags
            };
            // LIST_ROOTS shares its bit with LIST_DESCENDANTS; --roots excludes --from.
            let mut v = s.list_all_children(f & !snap::LIST_TOPOLOGICAL)?;
            if tree_mode {
                v.insert(0, s.clone());
            }
            v
        }
        None => dom.list_all_snapshots(flags)?,
    };
    let defs: Vec<_> = snaps
        .iter()
        .map(|s| s.def())
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows: Vec<(crate::domain::snapshot::SnapshotDef, DomainSnapshot)> =
        defs.into_iter().zip(snaps.drain(..)).collect();
    if flags & snap::LIST_TOPOLOGICAL == 0 {
        rows.sort_by(|a, b| {
            a.0.name
                .to_lowercase()
                .cmp(&b.0.name.to_lowercase())
                .then_with(|| a.0.name.cmp(&b.0.name))
        });
    }
    if tree_mode {
        let start_name = start.as_ref().map(|s| s.name().to_string());
        let items = rows.iter().map(|(d, _)| (d.name.clone(), d.parent.clone()));
        ctx.print(forest(items, start_name.as_deref()));
        return Ok(());
    }
    if name_mode {
        let out: String = rows.iter().map(|(d, _)| format!("{}\n", d.name)).collect();
        ctx.print(out);
        return Ok(());
    }
    let parent = args.flag("parent");
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(d, _)| {
            let mut r = vec![
                d.name.clone(),
                d.creation_time.map(local_time).unwrap_or_default(),
                d.state.map_or("nostate", |s| s.as_str()).to_string(),
            ];
            if parent {
                r.push(d.parent.clone().unwrap_or_default());
            }
            r
        })
        .collect();
    let header: &[&str] = if parent {
        &["Name", "Creation Time", "State", "Parent"]
    } else {
        &["Name", "Creation Time", "State"]
    };
    print_table(ctx, header, &table);
    Ok(())
}

/// `vsh snapshot-parent DOMAIN {SNAPSHOT | --current}`.
fn cmd_parent(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let s = lookup_snapshot(args, "snapshotname", true, &dom)?;
    match s.def()?.parent {
        Some(p) => ctx.print(p),
        None => bail!("snapshot '{}' has no parent", s.name()),
    }
    Ok(())
}

/// `vsh snapshot-revert DOMAIN {SNAPSHOT | --current} [--running | --paused] [--force]`.
fn cmd_revert(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let mut flags = 0;
    if args.flag("running") {
        flags |= snap::REVERT_RUNNING;
    }
    if args.flag("paused") {
        flags |= snap::REVERT_PAUSED;
    }
    if args.flag("force") {
        flags |= snap::REVERT_FORCE;
    }
    if args.flag("reset-nvram") {
        bail!("this function is not supported by the connection driver: --reset-nvram");
    }
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let s = lookup_snapshot(args, "snapshotname", true, &dom)?;
    s.revert(flags)?;
    Ok(())
}

/// Seconds since the epoch in local time as virsh's `%Y-%m-%d %H:%M:%S %z`.
pub(super) fn local_time(t: i64) -> String {
    let now = nix::libc::time_t::try_from(t).unwrap_or(0);
    // SAFETY: `tm` is plain old data for which all-zero is valid; localtime_r only writes
    // into it and reads `now`, both alive for the call.
    let tm = unsafe {
        let mut tm: nix::libc::tm = std::mem::zeroed();
        nix::libc::localtime_r(&now, &mut tm);
        tm
    };
    let off = tm.tm_gmtoff / 60;
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} {}{:02}{:02}",
        1900 + tm.tm_year,
        1 + tm.tm_mon,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        if off < 0 { '-' } else { '+' },
        off.abs() / 60,
        off.abs() % 60
    )
}
