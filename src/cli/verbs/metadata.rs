//! What `desc`/`metadata` and `net-desc`/`net-metadata` share: virsh words them the same
//! with the object's noun (libvirt: tools/virsh-domain.c cmdDesc, cmdMetadata;
//! tools/virsh-network.c cmdNetworkDesc, cmdNetworkMetadata).

use anyhow::{Context, Result, bail};

use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::OptDef;
use crate::driver::DriverError;
use crate::driver::metadata::{Affect, MetadataKind};

/// The options of `desc` and `net-desc`: `object` names the object, `affect` are its
/// `--live`/`--config`/`--current` (virsh words them differently for the two).
pub const fn desc_opts(object: OptDef, affect: [OptDef; 3]) -> [OptDef; 7] {
    let [live, config, current] = affect;
    [
        object,
        live,
        config,
        current,
        OptDef::flag("title", "modify/get the title instead of description"),
        OptDef::flag("edit", "open an editor to modify the description"),
        OptDef::argv("new-desc", "message"),
    ]
}

/// The options of `metadata` and `net-metadata`, as [`desc_opts`].
pub const fn metadata_opts(object: OptDef, affect: [OptDef; 3]) -> [OptDef; 9] {
    let [live, config, current] = affect;
    [
        object,
        OptDef::data("uri", "URI of the namespace"),
        live,
        config,
        current,
        OptDef::flag("edit", "use an editor to change the metadata"),
        OptDef::string("key", "key to be used as a namespace identifier"),
        OptDef::string("set", "new metadata to set"),
        OptDef::flag("remove", "remove the metadata corresponding to an uri"),
    ]
}

/// An object whose title, description and metadata the verbs show and change.
pub trait Described {
    /// "domain" or "network", as virsh's messages name it.
    const NOUN: &'static str;
    fn object_name(&self) -> String;
    /// What a read with both `--live` and `--config` reads: the domain verbs read the config
    /// (virsh's rule for them); the network API refuses both, and virsh passes them on.
    fn read_affect(aff: Affect) -> Affect;
    /// Whether virsh's read of the current text before a set can fail on its own: the
    /// network's reads the definition the flags name (virNetworkGetMetadata), the domain's
    /// its XML, which is always there.
    const READ_BEFORE_SET: bool;
    fn get(
        &self,
        kind: MetadataKind,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<String, DriverError>;
    fn set(
        &mut self,
        kind: MetadataKind,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        aff: Affect,
    ) -> Result<(), DriverError>;
}

/// The definition `--live`/`--config`/`--current` select (libvirt's VSH_EXCLUSIVE_OPTIONS).
pub fn affect(args: &ParsedArgs) -> Result<Affect> {
    args.exclusive("current", "live")?;
    args.exclusive("current", "config")?;
    Ok(Affect {
        live: args.flag("live"),
        config: args.flag("config"),
    })
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `desc` / `net-desc`: show the title or description, or set it from the words given or
/// an editor.
pub fn desc<T: Described>(ctx: &CmdCtx, args: &ParsedArgs, obj: &mut T) -> Result<()> {
    let aff = affect(args)?;
    let title = args.flag("title");
    let (kind, what) = if title {
        (MetadataKind::Title, "title")
    } else {
        (MetadataKind::Description, "description")
    };
    let noun = T::NOUN;
    let words = args.all("new-desc");
    let get = T::read_affect(aff);
    let current = |obj: &T| match obj.get(kind, None, get) {
        Ok(t) => Ok(t),
        Err(DriverError::NoMetadata) => Ok(String::new()),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    if !words.is_empty() || args.flag("edit") {
        let mut text = if words.is_empty() {
            current(obj)?
        } else {
            if T::READ_BEFORE_SET {
                current(obj)?;
            }
            words.join(" ")
        };
        if args.flag("edit") {
            let mut edited = crate::cli::edit::edit_text(&text)?;
            // Editors end files with a newline; a title is one line (virsh's rule).
            if title && edited.ends_with('\n') {
                edited.pop();
            }
            if edited == text {
                ctx.println_extra(format!("{} {what} not changed", capitalized(noun)));
                return Ok(());
            }
            text = edited;
        }
        obj.set(kind, Some(&text), None, None, aff)
            .with_context(|| format!("Failed to set new {noun} {what}"))?;
        ctx.println_extra(format!("{} {what} updated successfully", capitalized(noun)));
        return Ok(());
    }
    let text = current(obj)?;
    let name = obj.object_name();
    ctx.emit(&text, |t| {
        if t.is_empty() {
            format!("No {what} for {noun}: {name}")
        } else {
            t.clone()
        }
    });
    Ok(())
}

/// `metadata` / `net-metadata`: show, set (`--set`, `--edit`, with `--key`) or remove the
/// metadata element of namespace URI.
pub fn metadata<T: Described>(ctx: &CmdCtx, args: &ParsedArgs, obj: &mut T) -> Result<()> {
    let aff = affect(args)?;
    let uri = args.required("uri")?;
    let key = args.string("key");
    let set = args.string("set");
    let edit = args.flag("edit");
    if (set.is_some() || edit) && key.is_none() {
        bail!("namespace key is required when modifying metadata");
    }
    if edit {
        // No metadata yet: an empty line to start from (libvirt: virshDomainGetEditMetadata).
        let doc = obj
            .get(MetadataKind::Element, Some(uri), T::read_affect(aff))
            .unwrap_or_else(|_| "\n".into());
        let edited = crate::cli::edit::edit_text(&doc)?;
        if edited == doc {
            // virsh prints this one without its own newline (libvirt: cmdMetadata).
            if !ctx.globals.quiet {
                ctx.print("Metadata not changed");
            }
            return Ok(());
        }
        obj.set(MetadataKind::Element, Some(&edited), key, Some(uri), aff)?;
        ctx.println_extra("Metadata modified");
        return Ok(());
    }
    if set.is_some() || args.flag("remove") {
        obj.set(MetadataKind::Element, set, key, Some(uri), aff)?;
        ctx.println_extra(if set.is_some() {
            "Metadata modified"
        } else {
            "Metadata removed"
        });
        return Ok(());
    }
    let xml = obj.get(MetadataKind::Element, Some(uri), T::read_affect(aff))?;
    ctx.emit(&xml, |x| format!("{x}\n"));
    Ok(())
}
