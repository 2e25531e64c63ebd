//! The shape of vsh's command table: one [`CmdDef`] per verb with its [`OptDef`]s, as virsh's
//! `vshCmdDef`/`vshCmdOptDef` (libvirt: tools/vsh.h). Data only; the parser, help and
//! completion read it.

use super::ctx::CmdCtx;
use super::parse::ParsedArgs;

/// What every verb's handler looks like.
pub type Handler = fn(&mut CmdCtx, &ParsedArgs) -> anyhow::Result<()>;

/// virsh's command groups (libvirt: virsh.c cmdGroups), in virsh's order, plus ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    DomainManagement,
    DomainMonitoring,
    DomainEvents,
    HostAndHypervisor,
    Checkpoint,
    Interface,
    NwFilter,
    Network,
    NodeDevice,
    Secret,
    Snapshot,
    StoragePool,
    StorageVolume,
    /// Verbs of our own, without a virsh counterpart (emulator probing, `.replies` files).
    Tools,
    VirshItself,
}

impl Group {
    /// Every group, in the order help lists them.
    pub const ALL: &[Group] = &[
        Group::DomainManagement,
        Group::DomainMonitoring,
        Group::DomainEvents,
        Group::HostAndHypervisor,
        Group::Checkpoint,
        Group::Interface,
        Group::NwFilter,
        Group::Network,
        Group::NodeDevice,
        Group::Secret,
        Group::Snapshot,
        Group::StoragePool,
        Group::StorageVolume,
        Group::Tools,
        Group::VirshItself,
    ];

    /// The name help shows (virsh's VIRSH_CMD_GRP_* strings).
    pub fn name(self) -> &'static str {
        match self {
            Group::DomainManagement => "Domain Management",
            Group::DomainMonitoring => "Domain Monitoring",
            Group::DomainEvents => "Domain Events",
            Group::HostAndHypervisor => "Host and Hypervisor",
            Group::Checkpoint => "Checkpoint",
            Group::Interface => "Interface",
            Group::NwFilter => "Network Filter",
            Group::Network => "Networking",
            Group::NodeDevice => "Node Device",
            Group::Secret => "Secret",
            Group::Snapshot => "Snapshot",
            Group::StoragePool => "Storage Pool",
            Group::StorageVolume => "Storage Volume",
            Group::Tools => "Domdriver tools",
            Group::VirshItself => "Virsh itself",
        }
    }

    /// The keyword `help KEYWORD` takes.
    pub fn keyword(self) -> &'static str {
        match self {
            Group::DomainManagement => "domain",
            Group::DomainMonitoring => "monitor",
            Group::DomainEvents => "events",
            Group::HostAndHypervisor => "host",
            Group::Checkpoint => "checkpoint",
            Group::Interface => "interface",
            Group::NwFilter => "filter",
            Group::Network => "network",
            Group::NodeDevice => "nodedev",
            Group::Secret => "secret",
            Group::Snapshot => "snapshot",
            Group::StoragePool => "pool",
            Group::StorageVolume => "volume",
            Group::Tools => "tools",
            Group::VirshItself => "virsh",
        }
    }
}

/// An option's type (virsh's vshCmdOptType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    /// A flag, `--name`.
    Bool,
    /// `--name VALUE`, a string.
    String,
    /// `--name VALUE`, a number (checked when the handler reads it).
    Int,
    /// The verb's main argument (a domain, a file): virsh's VSH_OT_DATA.
    Data,
    /// Every remaining argument; must be the last option.
    Argv,
    /// Another name for option `target`; `"target=value"` makes a flag set `target` to value.
    Alias(&'static str),
}

/// What completion offers for an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completer {
    /// Nothing (free text).
    None,
    /// Domain names (libvirt: virshDomainNameCompleter), filtered by state.
    Domain(DomainFilter),
    /// Secret UUIDs.
    Secret,
    /// Network names.
    Network,
    /// Node device names (libvirt: virshNodeDeviceNameCompleter).
    NodeDevice,
    /// Storage pool names (libvirt: virshStoragePoolNameCompleter).
    Pool,
    /// Host interface names (libvirt: virshInterfaceNameCompleter).
    Interface,
    /// Network filter names (libvirt: virshNWFilterNameCompleter).
    NwFilter,
    /// Filter binding port devs (libvirt: virshNWFilterBindingNameCompleter).
    NwFilterBinding,
    /// File names: left to the shell.
    File,
    /// A fixed list of words.
    Words(&'static [&'static str]),
}

/// Which domains a [`Completer::Domain`] offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainFilter {
    All,
    Active,
    Inactive,
}

/// One option of a verb (virsh's vshCmdOptDef).
#[derive(Debug, Clone, Copy)]
pub struct OptDef {
    pub name: &'static str,
    pub kind: OptKind,
    /// The verb fails without it (virsh's VSH_OFLAG_REQ). Required options come before
    /// optional non-flag ones, as virsh requires.
    pub required: bool,
    /// May be given without `--name`, taking the next free argument in declared order
    /// (virsh's options without VSH_OFLAG_REQ_OPT). Ignored for flags.
    pub positional: bool,
    pub help: &'static str,
    pub completer: Completer,
}

impl OptDef {
    /// A flag.
    pub const fn flag(name: &'static str, help: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::Bool,
            required: false,
            positional: false,
            help,
            completer: Completer::None,
        }
    }

    /// The verb's required main argument, positional: `<domain>`, `<file>`.
    pub const fn data(name: &'static str, help: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::Data,
            required: true,
            positional: true,
            help,
            completer: Completer::None,
        }
    }

    /// `--name VALUE`, optional, named only (virsh's VSH_OFLAG_REQ_OPT).
    pub const fn string(name: &'static str, help: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::String,
            required: false,
            positional: false,
            help,
            completer: Completer::None,
        }
    }

    /// `--name NUMBER`, optional, named only.
    pub const fn int(name: &'static str, help: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::Int,
            required: false,
            positional: false,
            help,
            completer: Completer::None,
        }
    }

    /// Every remaining argument.
    pub const fn argv(name: &'static str, help: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::Argv,
            required: false,
            positional: true,
            help,
            completer: Completer::None,
        }
    }

    /// `--name` meaning `--target` (or, with `"target=value"`, `--target value`).
    pub const fn alias(name: &'static str, target: &'static str) -> OptDef {
        OptDef {
            name,
            kind: OptKind::Alias(target),
            required: false,
            positional: false,
            help: "",
            completer: Completer::None,
        }
    }

    /// The domain argument most verbs take, completing domain names.
    pub const fn domain(help: &'static str, filter: DomainFilter) -> OptDef {
        OptDef {
            completer: Completer::Domain(filter),
            ..OptDef::data("domain", help)
        }
    }

    /// The same option, required.
    pub const fn required(self) -> OptDef {
        OptDef {
            required: true,
            ..self
        }
    }

    /// The same option, optional.
    pub const fn optional(self) -> OptDef {
        OptDef {
            required: false,
            ..self
        }
    }

    /// The same option, also accepted without `--name`.
    pub const fn positional(self) -> OptDef {
        OptDef {
            positional: true,
            ..self
        }
    }

    /// The same option, only given as `--name VALUE` (virsh's VSH_OFLAG_REQ_OPT); for an
    /// argv option, one that may be repeated.
    pub const fn named_only(self) -> OptDef {
        OptDef {
            positional: false,
            ..self
        }
    }

    /// The same option, completing with `c`.
    pub const fn complete(self, c: Completer) -> OptDef {
        OptDef {
            completer: c,
            ..self
        }
    }
}

/// Whether a verb changes anything: `-r/--readonly` refuses those that do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads.
    Read,
    /// Changes state through this libvirt API (named in the read-only refusal).
    Write(&'static str),
}

/// One verb (virsh's vshCmdDef).
#[derive(Debug, Clone, Copy)]
pub struct CmdDef {
    pub name: &'static str,
    pub group: Group,
    /// The one-line summary (virsh's "help" info).
    pub info: &'static str,
    /// The longer description (virsh's "desc" info); lines after the first start with
    /// four spaces, as virsh's do.
    pub desc: &'static str,
    pub opts: &'static [OptDef],
    pub handler: Handler,
    pub access: Access,
    /// Prints data that `--json` can render as one JSON document; the verb then also takes
    /// `--json` itself.
    pub json: bool,
    /// Another name for the verb (`exit` for `quit`): listed nowhere, resolved by lookup.
    pub alias_of: Option<&'static str>,
}

impl CmdDef {
    /// A read-only verb of `group` with no JSON form and no alias: the shape most rows of the
    /// table share, adjusted with [`CmdDef::with_access`] and [`CmdDef::with_json`].
    pub const fn new(
        group: Group,
        name: &'static str,
        info: &'static str,
        desc: &'static str,
        opts: &'static [OptDef],
        handler: Handler,
    ) -> CmdDef {
        CmdDef {
            name,
            group,
            info,
            desc,
            opts,
            handler,
            access: Access::Read,
            json: false,
            alias_of: None,
        }
    }

    pub const fn with_access(mut self, access: Access) -> CmdDef {
        self.access = access;
        self
    }

    pub const fn with_json(mut self, json: bool) -> CmdDef {
        self.json = json;
        self
    }

    /// The option named `name` (aliases not resolved).
    pub fn opt(&self, name: &str) -> Option<&'static OptDef> {
        self.opts.iter().find(|o| o.name == name)
    }
}
