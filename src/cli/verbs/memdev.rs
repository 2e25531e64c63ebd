//! `update-memory-device`: change a `<memory>` device's requested size, found in the domain
//! XML by alias or NUMA node (libvirt: tools/virsh-domain.c cmdUpdateMemoryDevice,
//! virshGetUpdatedMemoryXML).

use anyhow::{Result, bail};

use super::hotplug::{CONFIG, CURRENT, LIVE, affect_flags};
use super::util::{DOMAIN, lookup_domain};
use crate::cli::ctx::CmdCtx;
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{Access, CmdDef, Group, OptDef};
use crate::domain::FormatFlags;
use crate::domain::xml::{XmlNode, parse_document};
use crate::driver::hotplug::AFFECT_CONFIG;

pub const CMDS: &[CmdDef] = &[CmdDef::new(
    Group::DomainManagement,
    "update-memory-device",
    "update memory device of a domain",
    "Update values of a memory device of a domain",
    &[
        DOMAIN,
        CONFIG,
        LIVE,
        CURRENT,
        OptDef::flag(
            "print-xml",
            "print updated memory device XML instead of executing the change",
        ),
        OptDef::string("alias", "memory device alias"),
        OptDef::int("node", "memory device target node"),
        OptDef::int(
            "requested-size",
            "new value of <requested/> size, as scaled integer (default KiB)",
        ),
    ],
    cmd_update_memory_device,
)
.with_access(Access::Write("virDomainUpdateDeviceFlags"))];

/// The one `<memory>` device of `domain_xml` that `node` or `alias` selects, with its
/// requested size set to `requested_kib`, as XML (libvirt: virshGetUpdatedMemoryXML).
pub fn updated_memory_xml(
    domain_xml: &str,
    alias: Option<&str>,
    node: Option<u32>,
    requested_kib: Option<u64>,
) -> Result<String> {
    let doc = parse_document(domain_xml)?;
    let mems: Vec<&XmlNode> = doc
        .child("devices")
        .into_iter()
        .flat_map(|d| d.children.iter())
        .filter(|c| c.name == "memory")
        .filter(|m| match (node, alias) {
            (Some(n), _) => m
                .child("target")
                .and_then(|t| t.child("node"))
                .is_some_and(|x| x.text.trim() == n.to_string()),
            (None, Some(a)) => m.child("alias").and_then(|x| x.attr("name")) == Some(a),
            (None, None) => true,
        })
        .collect();
    let mut mem = match mems.as_slice() {
        [] => bail!("no memory device found"),
        [m] => (*m).clone(),
        _ => bail!("multiple memory devices found, use --alias or --node to select one"),
    };
    if let Some(kib) = requested_kib {
        let Some(req) = mem
            .children
            .iter_mut()
            .find(|c| c.name == "target")
            .and_then(|t| t.children.iter_mut().find(|c| c.name == "requested"))
        else {
            bail!("virtio-mem device is missing <requested/>");
        };
        req.text = kib.to_string();
        req.children.clear();
    }
    let mut out = String::new();
    mem.to_libxml_string(0, &mut out);
    Ok(out)
}

fn cmd_update_memory_device(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let flags = affect_flags(args, false)?;
    args.exclusive("node", "alias")?;
    let dom = lookup_domain(ctx.conn()?, args.required("domain")?)?;
    let xml = dom.xml_desc(FormatFlags {
        inactive: flags & AFFECT_CONFIG != 0,
        secure: false,
    })?;
    let node = args.int::<u32>("node")?;
    let requested = match args.string("requested-size") {
        Some(s) => Some(
            super::resources::scaled(s, "requested-size", 1024)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "Scaled numeric value '{s}' for <requested-size> option is malformed or out of range"
                    )
                })?
                .div_ceil(1024),
        ),
        None => None,
    };
    let mem = updated_memory_xml(&xml, args.string("alias"), node, requested)?;
    if args.flag("print-xml") {
        ctx.print(mem);
        return Ok(());
    }
    dom.update_device_flags(&mem, flags)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOM: &str = "<domain><devices>\
        <memory model='virtio-mem'><target><size unit='KiB'>1048576</size><node>0</node>\
        <block unit='KiB'>2048</block><requested unit='KiB'>0</requested></target>\
        <alias name='virtiomem0'/></memory>\
        <memory model='dimm'><target><size unit='KiB'>524288</size><node>1</node></target>\
        <alias name='dimm0'/></memory></devices></domain>";

    #[test]
    fn selection_as_virsh() {
        let x = updated_memory_xml(DOM, Some("virtiomem0"), None, Some(4096)).unwrap();
        assert!(
            x.contains("<requested unit=\"KiB\">4096</requested>"),
            "{x}"
        );
        let x = updated_memory_xml(DOM, None, Some(0), None).unwrap();
        assert!(x.contains("<requested unit=\"KiB\">0</requested>"), "{x}");
        let e = updated_memory_xml(DOM, None, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "multiple memory devices found, use --alias or --node to select one"
        );
        let e = updated_memory_xml(DOM, Some("nope"), None, None).unwrap_err();
        assert_eq!(e.to_string(), "no memory device found");
        let e = updated_memory_xml(DOM, None, Some(1), Some(1)).unwrap_err();
        assert_eq!(e.to_string(), "virtio-mem device is missing <requested/>");
    }
}
