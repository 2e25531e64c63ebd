//! CPU comparison verbs: `cpu-compare`, `cpu-baseline`, `hypervisor-cpu-compare`,
//! `hypervisor-cpu-baseline` (libvirt: tools/virsh-host.c cmdCPUCompare, cmdCPUBaseline,
//! cmdHypervisorCPUCompare, cmdHypervisorCPUBaseline, vshExtractCPUDefXMLs).

use anyhow::{Context, Result, bail};

use super::util::read_xml_file;
use crate::cli::ctx::{CmdCtx, QuietFailure};
use crate::cli::parse::ParsedArgs;
use crate::cli::table::{CmdDef, Completer, Group, OptDef};
use crate::domain::xml::{XmlNode, parse_document};
use crate::driver::cpu_compare::{
    BASELINE_CPU_EXPAND_FEATURES, BASELINE_CPU_MIGRATABLE, COMPARE_CPU_FAIL_INCOMPATIBLE,
    COMPARE_CPU_VALIDATE_XML, CpuCompareResult,
};

const FILE_ONE: OptDef =
    OptDef::data("file", "file containing an XML CPU description").complete(Completer::File);
const FILE_MANY: OptDef =
    OptDef::data("file", "file containing XML CPU descriptions").complete(Completer::File);
const ERROR: OptDef = OptDef::flag("error", "report error if CPUs are incompatible");
const VALIDATE: OptDef = OptDef::flag("validate", "validate the XML document against schema");
const FEATURES: OptDef = OptDef::flag(
    "features",
    "Show features that are part of the CPU model type",
);
const MIGRATABLE: OptDef =
    OptDef::flag("migratable", "Do not include features that block migration");
const VIRTTYPE: OptDef = OptDef::string("virttype", "virtualization type (/domain/@type)")
    .positional()
    .complete(Completer::Words(&["qemu", "kvm"]));
const EMULATOR: OptDef = OptDef::string(
    "emulator",
    "path to emulator binary (/domain/devices/emulator)",
)
.positional()
.complete(Completer::File);
const ARCH: OptDef =
    OptDef::string("arch", "CPU architecture (/domain/os/type/@arch)").positional();
const MACHINE: OptDef =
    OptDef::string("machine", "machine type (/domain/os/type/@machine)").positional();

pub const CMDS: &[CmdDef] = &[
    CmdDef::new(
        Group::HostAndHypervisor,
        "cpu-baseline",
        "compute baseline CPU",
        "Compute baseline CPU for a set of given CPUs.",
        &[FILE_MANY, FEATURES, MIGRATABLE],
        cmd_cpu_baseline,
    ),
    CmdDef::new(
        Group::HostAndHypervisor,
        "cpu-compare",
        "compare host CPU with a CPU described by an XML file",
        "compare CPU with host CPU",
        &[FILE_ONE, ERROR, VALIDATE],
        cmd_cpu_compare,
    )
    .with_json(true),
    CmdDef::new(
        Group::HostAndHypervisor,
        "hypervisor-cpu-compare",
        "compare a CPU with the CPU created by a hypervisor on the host",
        "compare CPU with hypervisor CPU",
        &[FILE_ONE, VIRTTYPE, EMULATOR, ARCH, MACHINE, ERROR, VALIDATE],
        cmd_hypervisor_cpu_compare,
    )
    .with_json(true),
    CmdDef::new(
        Group::HostAndHypervisor,
        "hypervisor-cpu-baseline",
        "compute baseline CPU usable by a specific hypervisor",
        "Compute baseline CPU for a set of given CPUs. The result will be tailored to the specified hypervisor.",
        &[
            FILE_MANY.optional(),
            VIRTTYPE,
            EMULATOR,
            ARCH,
            MACHINE,
            FEATURES,
            MIGRATABLE,
            OptDef::string(
                "model",
                "Shortcut for calling the command with a single CPU model and no additional features",
            )
            .positional(),
        ],
        cmd_hypervisor_cpu_baseline,
    ),
];

/// The `<cpu>` definitions of a file, as virsh finds them: bare `<cpu>` elements, a domain's,
/// a host capabilities document's, or the supported host-model of domain capabilities made
/// into a `<cpu>` (libvirt: vshExtractCPUDefXMLs).
pub fn extract_cpu_xmls(file: &str) -> Result<Vec<String>> {
    let text = read_xml_file(file)?;
    let body = match text.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(text.as_str(), |(_, b)| b),
        None => text.as_str(),
    };
    let doc = parse_document(&format!("<container>{body}</container>"))?;
    let mut found: Vec<XmlNode> = Vec::new();
    for top in &doc.children {
        match top.name.as_str() {
            "cpu" => found.push(top.clone()),
            "domain" => found.extend(top.children.iter().filter(|c| c.name == "cpu").cloned()),
            "capabilities" => found.extend(
                top.child("host")
                    .into_iter()
                    .flat_map(|h| h.children.iter().filter(|c| c.name == "cpu"))
                    .cloned(),
            ),
            "domainCapabilities" => found.extend(
                top.children
                    .iter()
                    .filter(|c| c.name == "cpu")
                    .flat_map(|c| c.children.iter())
                    .filter(|m| {
                        m.name == "mode"
                            && m.attr("name") == Some("host-model")
                            && m.attr("supported") == Some("yes")
                    })
                    .map(|m| {
                        let mut cpu = m.clone();
                        cpu.name = "cpu".into();
                        cpu.attrs.clear();
                        cpu
                    }),
            ),
            _ => {}
        }
    }
    if found.is_empty() {
        bail!(
            "File '{file}' does not contain any <cpu> element or valid domain XML, host capabilities XML, or domain capabilities XML"
        );
    }
    Ok(found
        .iter()
        .map(|n| {
            let mut s = String::new();
            n.to_libxml_string(0, &mut s);
            s
        })
        .collect())
}

fn compare_flags(args: &ParsedArgs) -> u32 {
    let mut flags = 0;
    if args.flag("error") {
        flags |= COMPARE_CPU_FAIL_INCOMPATIBLE;
    }
    if args.flag("validate") {
        flags |= COMPARE_CPU_VALIDATE_XML;
    }
    flags
}

fn baseline_flags(args: &ParsedArgs) -> u32 {
    let mut flags = 0;
    if args.flag("features") {
        flags |= BASELINE_CPU_EXPAND_FEATURES;
    }
    if args.flag("migratable") {
        flags |= BASELINE_CPU_MIGRATABLE;
    }
    flags
}

/// `--json` of the compare verbs.
#[derive(serde::Serialize)]
struct Compared<'a> {
    file: &'a str,
    result: CpuCompareResult,
}

/// Print virsh's sentence for `res` (`lines`: incompatible, identical, superset); an
/// incompatible CPU makes the command fail after it.
fn report(ctx: &CmdCtx, file: &str, res: CpuCompareResult, lines: [&str; 3]) -> Result<()> {
    let v = Compared { file, result: res };
    ctx.emit(&v, |_| {
        let l = match res {
            CpuCompareResult::Incompatible => lines[0],
            CpuCompareResult::Identical => lines[1],
            CpuCompareResult::Superset => lines[2],
        };
        format!("{}\n", l.replace("{}", file))
    });
    if res == CpuCompareResult::Incompatible {
        return Err(QuietFailure.into());
    }
    Ok(())
}

fn cmd_cpu_compare(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let cpus = extract_cpu_xmls(file)?;
    let res = ctx
        .conn()?
        .compare_cpu(&cpus[0], compare_flags(args))
        .with_context(|| format!("Failed to compare host CPU with {file}"))?;
    report(
        ctx,
        file,
        res,
        [
            "CPU described in {} is incompatible with host CPU",
            "CPU described in {} is identical to host CPU",
            "Host CPU is a superset of CPU described in {}",
        ],
    )
}

fn cmd_hypervisor_cpu_compare(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let file = args.required("file")?;
    let cpus = extract_cpu_xmls(file)?;
    let res = ctx
        .conn()?
        .compare_hypervisor_cpu(
            args.string("emulator"),
            args.string("arch"),
            args.string("machine"),
            args.string("virttype"),
            &cpus[0],
            compare_flags(args),
        )
        .with_context(|| format!("Failed to compare hypervisor CPU with {file}"))?;
    report(
        ctx,
        file,
        res,
        [
            "CPU described in {} is incompatible with the CPU provided by hypervisor on the host",
            "CPU described in {} is identical to the CPU provided by hypervisor on the host",
            "The CPU provided by hypervisor on the host is a superset of CPU described in {}",
        ],
    )
}

fn cmd_cpu_baseline(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let cpus = extract_cpu_xmls(args.required("file")?)?;
    let xml = ctx.conn()?.baseline_cpu(&cpus, baseline_flags(args))?;
    ctx.print(xml);
    Ok(())
}

fn cmd_hypervisor_cpu_baseline(ctx: &mut CmdCtx, args: &ParsedArgs) -> Result<()> {
    let (file, model) = (args.string("file"), args.string("model"));
    args.exclusive("file", "model")?;
    let cpus = match (file, model) {
        (Some(f), _) => extract_cpu_xmls(f)?,
        (None, Some(m)) => vec![format!(
            "<cpu><model>{}</model></cpu>",
            crate::xmlfmt::escape_text(m)
        )],
        (None, None) => bail!("Either --file or --model must be provided"),
    };
    let xml = ctx.conn()?.baseline_hypervisor_cpu(
        args.string("emulator"),
        args.string("arch"),
        args.string("machine"),
        args.string("virttype"),
        &cpus,
        baseline_flags(args),
    )?;
    ctx.print(xml);
    Ok(())
}
