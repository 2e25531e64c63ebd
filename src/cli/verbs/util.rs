//! Helpers the verbs share: domain lookup, reading XML files, virsh's tables.

use anyhow::{Context, Result, bail};

use crate::Connect;
use crate::cli::table::{DomainFilter, OptDef};
use crate::driver::domain::Domain;

/// The DOMAIN argument of most verbs, completed with any domain or with running ones.
pub(super) const DOMAIN: OptDef = OptDef::domain("domain name, id or uuid", DomainFilter::All);
pub(super) const DOMAIN_ACTIVE: OptDef =
    OptDef::domain("domain name, id or uuid", DomainFilter::Active);

/// virsh's domain lookup: by id when the argument is a number, then by UUID, then by name
/// (libvirt: virshLookupDomainBy).
pub fn lookup_domain<'c>(conn: &'c Connect, arg: &str) -> Result<Domain<'c>> {
    let mut found = Err(anyhow::anyhow!("no domain"));
    if let Ok(id) = arg.parse::<i32>()
        && id >= 0
    {
        found = conn.lookup_domain_by_id(id).map_err(anyhow::Error::from);
    }
    if found.is_err() && uuid::Uuid::parse_str(arg).is_ok() {
        found = conn.lookup_domain_by_uuid(arg).map_err(anyhow::Error::from);
    }
    if found.is_err() {
        found = conn.lookup_domain_by_name(arg).map_err(anyhow::Error::from);
    }
    found.with_context(|| format!("failed to get domain '{arg}'"))
}

/// Read an XML file as virsh does: at most 10 MiB, libvirt's messages
/// (libvirt: virFileReadAll).
pub fn read_xml_file(file: &str) -> Result<String> {
    use std::io::Read;
    const MAX: u64 = 10 << 20;
    let f = std::fs::File::open(file).map_err(|e| {
        anyhow::anyhow!(
            "Failed to open file '{file}': {}",
            crate::driver::config::strerror(&e)
        )
    })?;
    let mut data = Vec::new();
    f.take(MAX + 1).read_to_end(&mut data).map_err(|e| {
        anyhow::anyhow!(
            "Failed to read file '{file}': {}",
            crate::driver::config::strerror(&e)
        )
    })?;
    if data.len() as u64 > MAX {
        bail!("File '{file}' is too large");
    }
    String::from_utf8(data).map_err(|_| anyhow::anyhow!("File '{file}' is not UTF-8"))
}

/// Prints a vshTable; with `-q` without its header and dashed line, which virsh prints with
/// vshPrintExtra (snapshot-list, checkpoint-list).
pub fn print_table(ctx: &crate::cli::ctx::CmdCtx, header: &[&str], rows: &[Vec<String>]) {
    let text = render_table(header, rows);
    if ctx.globals.quiet {
        ctx.print(
            text.lines()
                .skip(2)
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        );
    } else {
        ctx.print(text);
    }
}

/// virsh's vshTable: each cell after one space, columns padded to the widest cell plus two,
/// and under the header a dashed line as wide as every column plus three
/// (libvirt: vshTablePrint).
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cells = |r: &[String]| r.iter().map(|c| table_cell(c)).collect::<Vec<_>>();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let all: Vec<Vec<String>> = std::iter::once(cells(&header))
        .chain(rows.iter().map(|r| cells(r)))
        .collect();
    let mut widths = vec![0; header.len()];
    for r in &all {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (n, r) in all.iter().enumerate() {
        for (i, c) in r.iter().enumerate() {
            out.push(' ');
            out.push_str(c);
            if i + 1 < r.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
        if n == 0 {
            let dashes: usize = widths.iter().map(|w| w + 3).sum();
            out.extend(std::iter::repeat_n('-', dashes));
            out.push('\n');
        }
    }
    out
}

/// vshTableSafeEncode: control characters as `\xNN`, so a name cannot break the table.
fn table_cell(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_control() {
            let mut b = [0; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Replace `path` with `data` in one step, world-readable.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(data)?;
    // Recordings are meant to be shared (committed as test data): not the temp file's 0600.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The end of `net-autostart`, `pool-autostart` and `nodedev-autostart` (libvirt:
/// cmdNetworkAutostart, cmdPoolAutostart, cmdNodeDeviceAutostart): `res`, the marking
/// (`on`) or unmarking, said in virsh's words; `object` names the object in the error,
/// `title` in the message.
pub fn autostart_said<E: std::error::Error + Send + Sync + 'static>(
    ctx: &crate::cli::ctx::CmdCtx,
    object: &str,
    title: &str,
    name: &str,
    on: bool,
    res: std::result::Result<(), E>,
) -> Result<()> {
    res.with_context(|| {
        if on {
            format!("failed to mark {object} {name} as autostarted")
        } else {
            format!("failed to unmark {object} {name} as autostarted")
        }
    })?;
    ctx.println_extra(if on {
        format!("{title} {name} marked as autostarted")
    } else {
        format!("{title} {name} unmarked as autostarted")
    });
    Ok(())
}
