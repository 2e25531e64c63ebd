//! Domains as libvirt's API shows them: define, look up, list and undefine persistent domains,
//! and the lifecycle verbs, on top of the config files ([`super::config`]) and the process layer
//! ([`super::process`]).
//!
//! There is no daemon holding domain objects, so a [`Domain`] is only a name and a UUID: every
//! call reads the files again. A domain exists while it has a config (persistent) or a live
//! QEMU with a status file (running; transient when it has no config). A handle whose files
//! now describe another UUID is stale and gets libvirt's "no domain with matching uuid".

use std::cmp::Ordering;
use std::ops::BitOr;
use std::time::Duration;

use uuid::Uuid;

use super::config::{self, ConfigLock};
use super::monitor::proto::{ErrorCode, PowerModes, StopReason};
use super::process::{
    Attach, DomainState, Guest, GuestError, LaunchSpec, State, monitor_alive, state_of_status,
};
use super::status::{GuestStatus, is_guest_process};
use super::{Connect, DriverError};
use crate::domain::{self, DomainDef, FormatFlags};

/// How long `destroy` lets QEMU handle SIGTERM before SIGKILL (libvirt: 10 s).
const DESTROY_GRACE: Duration = Duration::from_secs(10);

/// Filters of [`Connect::list_all_domains`], with libvirt's values
/// (`VIR_CONNECT_LIST_DOMAINS_*`). Within a group (active/inactive, persistent/transient,
/// running/paused/shutoff/other) a domain matches when it matches any flag set; a group with
/// no flag set does not filter. No flags lists every domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListFlags(pub u32);

impl ListFlags {
    pub const ALL: ListFlags = ListFlags(0);
    pub const ACTIVE: ListFlags = ListFlags(1);
    pub const INACTIVE: ListFlags = ListFlags(2);
    pub const PERSISTENT: ListFlags = ListFlags(4);
    pub const TRANSIENT: ListFlags = ListFlags(8);
    pub const RUNNING: ListFlags = ListFlags(16);
    pub const PAUSED: ListFlags = ListFlags(32);
    pub const SHUTOFF: ListFlags = ListFlags(64);
    pub const OTHER: ListFlags = ListFlags(128);
    const KNOWN: u32 = 255;

    fn has(self, f: ListFlags) -> bool {
        self.0 & f.0 != 0
    }
}

impl BitOr for ListFlags {
    type Output = ListFlags;
    fn bitor(self, o: ListFlags) -> ListFlags {
        ListFlags(self.0 | o.0)
    }
}

/// Flags of [`Connect::create_domain_xml`], with libvirt's values (`VIR_DOMAIN_START_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreateFlags(pub u32);

impl CreateFlags {
    pub const NONE: CreateFlags = CreateFlags(0);
    /// Leave the vCPUs paused (`virsh create --paused`).
    pub const PAUSED: CreateFlags = CreateFlags(1);
    /// Recreate a UEFI guest's varstore from its template (`virsh start --reset-nvram`).
    pub const RESET_NVRAM: CreateFlags = CreateFlags(32);

    pub fn contains(self, f: CreateFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl BitOr for CreateFlags {
    type Output = CreateFlags;
    fn bitor(self, o: CreateFlags) -> CreateFlags {
        CreateFlags(self.0 | o.0)
    }
}

/// `true` is [`CreateFlags::PAUSED`]: what `create_with_flags` took before it took flags.
impl From<bool> for CreateFlags {
    fn from(paused: bool) -> CreateFlags {
        if paused {
            CreateFlags::PAUSED
        } else {
            CreateFlags::NONE
        }
    }
}

/// Flags of [`Domain::undefine_flags`], with libvirt's values (`VIR_DOMAIN_UNDEFINE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UndefineFlags(pub u32);

impl UndefineFlags {
    pub const NONE: UndefineFlags = UndefineFlags(0);
    /// Let a shut-off domain with snapshots go, with their metadata
    /// (`virsh undefine --snapshots-metadata`).
    pub const SNAPSHOTS_METADATA: UndefineFlags =
        UndefineFlags(super::snapshot::UNDEFINE_SNAPSHOTS_METADATA);
    /// Let a shut-off domain with checkpoints go, with their metadata
    /// (`virsh undefine --checkpoints-metadata`).
    pub const CHECKPOINTS_METADATA: UndefineFlags =
        UndefineFlags(super::checkpoint::UNDEFINE_CHECKPOINTS_METADATA);
    /// Remove the varstore of a UEFI guest too (`virsh undefine --nvram`).
    pub const NVRAM: UndefineFlags = UndefineFlags(4);
    /// Keep the varstore (`virsh undefine --keep-nvram`).
    pub const KEEP_NVRAM: UndefineFlags = UndefineFlags(8);
    /// Remove an emulated TPM's state (`virsh undefine --tpm`), which is the default.
    pub const TPM: UndefineFlags = UndefineFlags(32);
    /// Keep an emulated TPM's state (`virsh undefine --keep-tpm`).
    pub const KEEP_TPM: UndefineFlags = UndefineFlags(64);

    pub fn contains(self, f: UndefineFlags) -> bool {
        self.0 & f.0 == f.0
    }
}

impl BitOr for UndefineFlags {
    type Output = UndefineFlags;
    fn bitor(self, o: UndefineFlags) -> UndefineFlags {
        UndefineFlags(self.0 | o.0)
    }
}

/// A running domain's QEMU and live definition, for the console module.
pub(crate) struct LiveProcess {
    pub def: DomainDef,
    pub pid: i32,
    pub start_time: u64,
}

/// `virDomainGetInfo`'s answer. Memory in KiB, CPU time in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub state: State,
    pub max_mem: u64,
    pub memory: u64,
    pub nr_virt_cpu: u32,
    pub cpu_time: u64,
}

/// A running QEMU as its status file describes it.
struct Live {
    status: GuestStatus,
    /// The live definition; `None` when the status file holds no (parseable) XML.
    def: Option<DomainDef>,
}

/// What the files say about one domain at one moment.
struct Snapshot {
    name: String,
    uuid: Uuid,
    config: Option<DomainDef>,
    live: Option<Live>,
    state: DomainState,
}

impl Snapshot {
    /// The definition that describes the domain now: the live one while running.
    fn current_def(&self) -> Option<&DomainDef> {
        self.live
            .as_ref()
            .and_then(|l| l.def.as_ref())
            .or(self.config.as_ref())
    }

    fn id(&self) -> Option<i32> {
        self.live.as_ref().and_then(|l| l.def.as_ref()?.id)
    }
}

/// One row of [`Connect::list_all_domains_with_state`].
#[derive(Debug, Clone)]
pub struct Listed<'c> {
    pub domain: Domain<'c>,
    /// The id while running.
    pub id: Option<i32>,
    pub state: DomainState,
}

/// A domain of a connection.
#[derive(Debug, Clone)]
pub struct Domain<'c> {
    pub(crate) conn: &'c Connect,
    name: String,
    uuid: Uuid,
}

fn no_such_name(name: &str) -> DriverError {
    DriverError::NoDomain(format!("no domain with matching name '{name}'"))
}

/// libvirt's refusal to pause or resume the vCPUs of a guest that suspended itself.
fn pmsuspended() -> DriverError {
    DriverError::OperationInvalid("domain is pmsuspended".into())
}

fn not_running() -> DriverError {
    DriverError::OperationInvalid("domain is not running".into())
}

/// The process layer says "domain 'X' is not running"; libvirt's API says it without the name.
/// The per-start private directory QEMU gets as HOME, with the master key its command line
/// names (libvirt hands secrets to QEMU encrypted with it). Both are private to the user.
fn prepare_lib_dir(
    dir: &std::path::Path,
    key: &[u8; 32],
    sec: Option<&crate::domain::model::LaunchSecurity>,
) -> Result<(), DriverError> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let sys = |msg: String| move |source| DriverError::System { msg, err: source };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(sys(format!("cannot create directory '{}'", dir.display())))?;
    let write = |name: &str, data: &[u8]| {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(data))
            .map_err(sys(format!("cannot write file '{}'", path.display())))
    };
    write("master-key.aes", key)?;
    // A SEV guest's owner certificate and session blob, which QEMU reads from files
    // (libvirt: qemuProcessPrepareSEVGuestInput).
    use crate::xml2argv::{SEV_DH_CERT_FILE, SEV_SESSION_FILE};
    if let Some(sec) = sec.filter(|s| s.ltype == "sev") {
        if let Some(c) = &sec.dh_cert {
            write(SEV_DH_CERT_FILE, c.as_bytes())?;
        }
        if let Some(s) = &sec.session {
            write(SEV_SESSION_FILE, s.as_bytes())?;
        }
    }
    Ok(())
}

/// The descriptor QEMU finds its monitor socket on; the process layer puts the listening
/// socket there in the child, and the command line names it.
const MONITOR_FD: std::os::fd::RawFd = 3;

/// libvirt's virDomainShutdownFlagValues (virDomainRebootFlagValues has the same bits).
pub const SHUTDOWN_ACPI_POWER_BTN: u32 = 1 << 0;
pub const SHUTDOWN_GUEST_AGENT: u32 = 1 << 1;
pub const SHUTDOWN_INITCTL: u32 = 1 << 2;
pub const SHUTDOWN_SIGNAL: u32 = 1 << 3;
pub const SHUTDOWN_PARAVIRT: u32 = 1 << 4;

/// The ways QEMU's driver knows; other bits are refused as libvirt's virCheckFlags does in
/// `function`.
fn power_modes(flags: u32, function: &str) -> Result<PowerModes, DriverError> {
    let known = SHUTDOWN_ACPI_POWER_BTN | SHUTDOWN_GUEST_AGENT;
    if flags & !known != 0 {
        return Err(DriverError::InvalidArg(format!(
            "unsupported flags (0x{:x}) in function {function}",
            flags & !known
        )));
    }
    Ok(PowerModes {
        acpi: flags & SHUTDOWN_ACPI_POWER_BTN != 0,
        agent: flags & SHUTDOWN_GUEST_AGENT != 0,
    })
}

pub(crate) fn guest_err(e: GuestError) -> DriverError {
    match e {
        GuestError::NotRunning { .. } => not_running(),
        GuestError::Refused { code, desc, .. } => match code {
            ErrorCode::OperationInvalid => DriverError::OperationInvalid(desc),
            ErrorCode::OperationFailed => DriverError::OperationFailed(desc),
            ErrorCode::ArgumentUnsupported => DriverError::ArgumentUnsupported(desc),
            ErrorCode::AgentUnresponsive => DriverError::AgentUnresponsive(desc),
            ErrorCode::Internal => DriverError::Internal(desc),
            ErrorCode::OperationTimeout => DriverError::Timeout(desc),
            ErrorCode::OperationAborted => DriverError::OperationAborted(desc),
            ErrorCode::OperationUnsupported => DriverError::OperationUnsupported(desc),
            ErrorCode::System => DriverError::Guest(GuestError::HostRefused {
                guest: String::new(),
                msg: desc,
            }),
        },
        e => DriverError::Guest(e),
    }
}

/// virsh's order: running domains by id, then the others by name, case-insensitively.
fn virsh_order(a: &(Option<i32>, String), b: &(Option<i32>, String)) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => {
            a.1.to_ascii_lowercase()
                .cmp(&b.1.to_ascii_lowercase())
                .then_with(|| a.1.cmp(&b.1))
        }
    }
}

/// utime + stime of `pid` in nanoseconds, if it is still the process started at `start_time`.
fn cpu_time_ns(pid: i32, start_time: u64) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): utime, stime and starttime are fields 14, 15 and 22.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let started: u64 = f.get(19)?.parse().ok()?;
    if started != start_time {
        return None;
    }
    // SAFETY: sysconf takes an integer and reads no memory of ours.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some((utime + stime).saturating_mul(1_000_000_000 / hz))
}

impl Connect {
    /// Every name that may be a domain: configs and status files.
    fn domain_names(&self) -> Result<Vec<String>, DriverError> {
        let mut names = config::config_names(&self.dirs.config)?;
        names.extend(config::status_names(&self.dirs.run)?);
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Read the config and status file of `name` (already validated). `None` when it is not a
    /// domain: no config and no live QEMU. A config that cannot be read or parsed, or that
    /// names another domain, is left out with a warning, as libvirtd leaves it out when
    /// loading configs: one bad file must not hide every domain.
    fn load(&self, name: &str) -> Result<Option<Snapshot>, DriverError> {
        let path = config::config_path(&self.dirs.config, name)?;
        let text = config::read_small(&path).unwrap_or_else(|e| {
            self.warn([format!("{}: skipped: {e}", path.display())]);
            None
        });
        let config = match text {
            None => None,
            Some(text) => match domain::parse(&text) {
                Ok(d) if d.name == name => Some(d),
                Ok(d) => {
                    self.warn([format!(
                        "{}: skipped: it defines domain '{}'",
                        path.display(),
                        d.name
                    )]);
                    None
                }
                Err(e) => {
                    self.warn([format!("{}: skipped: {e}", path.display())]);
                    None
                }
            },
        };
        let (live, state) = self.live_state(name);
        // The running QEMU's UUID wins: a config redefined while it runs keeps the UUID anyway
        // (a different one is refused), but a stale config must not rename the live guest.
        let uuid = live
            .as_ref()
            .and_then(|l| {
                Uuid::parse_str(&l.status.uuid)
                    .ok()
                    .or(l.def.as_ref().map(|d| d.uuid))
            })
            .or(config.as_ref().map(|c| c.uuid));
        let Some(uuid) = uuid else { return Ok(None) };
        Ok(Some(Snapshot {
            name: name.to_string(),
            uuid,
            config,
            live,
            state,
        }))
    }

    /// The live QEMU of `name` (from its status file) and the state it is in. The status
    /// file, QEMU's liveness and the shutoff note are three reads that a start or destroy in
    /// another thread or process can run between: the note is read only after QEMU was seen
    /// gone (a destroy writes it before killing), and the status file is read again after
    /// the note; if it changed, a start or stop ran in between and the reads are done again.
    fn live_state(&self, name: &str) -> (Option<Live>, DomainState) {
        // The process layer's status file, RUN/NAME.json. Read here rather than through
        // Guest::peek so that the pid, UUID, live XML and state all come from one read.
        let status_path = self.dirs.run.join(format!("{name}.json"));
        let mut tries = 0;
        let mut adopted = false;
        loop {
            tries += 1;
            // A status file that cannot be read is skipped with a warning, as libvirtd skips
            // one it cannot parse when it reconnects: one bad file must not hide every domain.
            let status = GuestStatus::read(name, &status_path).unwrap_or_else(|e| {
                self.warn([format!("{}: skipped: {e}", status_path.display())]);
                None
            });
            if let Some(st) = status {
                if is_guest_process(&st) && !adopted && !monitor_alive(&st) {
                    // Its monitor died: the file tells what the guest did while watched. A
                    // new monitor takes over and catches up (a guest that powered off
                    // meanwhile gets on_poweroff), then the files are read again. Only
                    // here does reading a state cost more than reading files.
                    adopted = true;
                    if let Err(e) = Guest::attach(&self.dirs, name) {
                        self.warn([format!("domain '{name}': cannot adopt the guest: {e}")]);
                    }
                    continue;
                }
                if is_guest_process(&st) {
                    let state = state_of_status(&st);
                    let def = if st.xml.trim().is_empty() {
                        None
                    } else {
                        domain::parse(&st.xml).ok()
                    };
                    return (Some(Live { status: st, def }), state);
                }
                let note = self.shutoff_note(name);
                let again = GuestStatus::read(name, &status_path).ok().flatten();
                if again.as_ref() == Some(&st) || tries >= 5 {
                    // QEMU is gone but left its status file: it died behind our back, unless
                    // we asked the guest to power off and QEMU exited once it had, or a
                    // destroy is removing it.
                    let reason = note
                        .as_deref()
                        .filter(|r| matches!(*r, "shutdown" | "destroyed"))
                        .unwrap_or("crashed");
                    return (None, DomainState::new(State::Shutoff, reason));
                }
            } else {
                let note = self.shutoff_note(name);
                let again = GuestStatus::read(name, &status_path).ok().flatten();
                if again.is_none() || tries >= 5 {
                    let reason = note.as_deref().unwrap_or("unknown");
                    return (None, DomainState::new(State::Shutoff, reason));
                }
            }
        }
    }

    fn shutoff_note(&self, name: &str) -> Option<String> {
        config::read_shutoff_reason(&self.dirs.run, name).unwrap_or_else(|e| {
            self.warn([e.to_string()]);
            None
        })
    }

    fn handle(&self, s: &Snapshot) -> Domain<'_> {
        Domain {
            conn: self,
            name: s.name.clone(),
            uuid: s.uuid,
        }
    }

    /// Define (or redefine) a persistent domain from XML (`virsh define`). The name is
    /// checked before any path is built from it; a missing UUID is generated. Another domain
    /// with the same UUID, or the same name and another UUID, is refused with libvirt's
    /// errors. Redefining replaces the config; a running domain keeps its live definition
    /// until it stops. Concurrent defines are serialised by the config dir's lock.
    pub fn define_domain_xml(&self, xml: &str) -> Result<Domain<'_>, DriverError> {
        let def = domain::parse_unprepared(xml)?;
        config::validate_name(&def.name)?;
        // The stored config is the post-parse result, as libvirtd stores it; prepare runs
        // libvirt's caps validation on it too.
        let (def, _) = self.prepare_domain(def, super::prepare::Purpose::Define)?;
        let path = config::config_path(&self.dirs.config, &def.name)?;
        let _lock = ConfigLock::acquire(&self.dirs.config)?;
        // libvirt's virDomainObjListAddLocked: UUID first, then name.
        for name in self.domain_names()? {
            if name == def.name {
                continue;
            }
            if let Some(s) = self.load(&name)?
                && s.uuid == def.uuid
            {
                return Err(DriverError::OperationFailed(format!(
                    "domain '{}' is already defined with uuid {}",
                    s.name,
                    s.uuid.hyphenated()
                )));
            }
        }
        if let Some(s) = self.load(&def.name)?
            && s.uuid != def.uuid
        {
            return Err(DriverError::OperationFailed(format!(
                "domain '{}' already exists with uuid {}",
                def.name,
                s.uuid.hyphenated()
            )));
        }
        let text = def.to_xml(FormatFlags {
            inactive: true,
            secure: true,
        });
        config::write_atomic(&path, text.as_bytes())?;
        Ok(Domain {
            conn: self,
            name: def.name,
            uuid: def.uuid,
        })
    }

    /// Create and start a transient domain from XML (`virsh create`): it has no config, and
    /// is gone once QEMU stops. A persistent domain of the same name and UUID that is not
    /// running starts with this definition instead of its config, as in libvirt.
    pub fn create_domain_xml(
        &self,
        xml: &str,
        flags: CreateFlags,
    ) -> Result<Domain<'_>, DriverError> {
        if flags.0 & !CreateFlags::PAUSED.0 != 0 {
            return Err(DriverError::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function create_domain_xml",
                flags.0 & !CreateFlags::PAUSED.0
            )));
        }
        let def = domain::parse_unprepared(xml)?;
        self.create_domain_def(def, flags.0 & CreateFlags::PAUSED.0 != 0, None, None)
    }

    /// Start `def` as [`Connect::create_domain_xml`] does; with `incoming`, QEMU loads the
    /// guest's state from that migration URI before it runs (`virsh restore`).
    pub(crate) fn create_domain_def(
        &self,
        def: DomainDef,
        paused: bool,
        incoming: Option<super::process::Incoming>,
        ram: Option<crate::xml2argv::RamFile>,
    ) -> Result<Domain<'_>, DriverError> {
        config::validate_name(&def.name)?;
        let dom = {
            let _lock = ConfigLock::acquire(&self.dirs.config)?;
            for name in self.domain_names()? {
                if let Some(s) = self.load(&name)?
                    && (s.uuid == def.uuid || name == def.name)
                {
                    if s.live.is_some() {
                        return Err(DriverError::OperationInvalid(format!(
                            "domain '{}' is already active",
                            s.name
                        )));
                    }
                    if name != def.name {
                        return Err(DriverError::OperationFailed(format!(
                            "domain '{}' is already defined with uuid {}",
                            s.name,
                            s.uuid.hyphenated()
                        )));
                    }
                    if s.uuid != def.uuid {
                        return Err(DriverError::OperationFailed(format!(
                            "domain '{}' already exists with uuid {}",
                            def.name,
                            s.uuid.hyphenated()
                        )));
                    }
                }
            }
            Domain {
                conn: self,
                name: def.name.clone(),
                uuid: def.uuid,
            }
        };
        dom.start_def(def, paused, incoming, ram)?;
        Ok(dom)
    }

    /// `virDomainLookupByName`. Names that cannot be domain names are simply not found.
    pub fn lookup_domain_by_name(&self, name: &str) -> Result<Domain<'_>, DriverError> {
        if config::validate_name(name).is_err() {
            return Err(no_such_name(name));
        }
        match self.load(name)? {
            Some(s) => Ok(self.handle(&s)),
            None => Err(no_such_name(name)),
        }
    }

    /// `virDomainLookupByID`: only running domains have ids.
    pub fn lookup_domain_by_id(&self, id: i32) -> Result<Domain<'_>, DriverError> {
        for name in config::status_names(&self.dirs.run)? {
            if let Some(s) = self.load(&name)?
                && s.id() == Some(id)
            {
                return Ok(self.handle(&s));
            }
        }
        Err(DriverError::NoDomain(format!(
            "no domain with matching id {id}"
        )))
    }

    /// `virDomainLookupByUUIDString`.
    pub fn lookup_domain_by_uuid(&self, uuid: &str) -> Result<Domain<'_>, DriverError> {
        let u = Uuid::parse_str(uuid.trim()).map_err(|_| {
            DriverError::InvalidArg(
                "uuidstr in virDomainLookupByUUIDString must be a valid UUID".into(),
            )
        })?;
        for name in self.domain_names()? {
            if let Some(s) = self.load(&name)?
                && s.uuid == u
            {
                return Ok(self.handle(&s));
            }
        }
        Err(DriverError::NoDomain(format!(
            "no domain with matching uuid '{}'",
            u.hyphenated()
        )))
    }

    /// `virConnectListAllDomains`, in virsh's order: running domains by id, then the others
    /// by name (case-insensitively).
    pub fn list_all_domains(&self, flags: ListFlags) -> Result<Vec<Domain<'_>>, DriverError> {
        Ok(self
            .list_all_domains_with_state(flags)?
            .into_iter()
            .map(|l| l.domain)
            .collect())
    }

    /// [`Connect::list_all_domains`] with each domain's id and state, all three from one read
    /// of its files (`virsh list`): asking each domain again would read and parse every file
    /// three times, and the id and state could come from different moments.
    pub fn list_all_domains_with_state(
        &self,
        flags: ListFlags,
    ) -> Result<Vec<Listed<'_>>, DriverError> {
        if flags.0 & !ListFlags::KNOWN != 0 {
            return Err(DriverError::InvalidArg(format!(
                "unsupported flags (0x{:x}) in function list_all_domains",
                flags.0 & !ListFlags::KNOWN
            )));
        }
        let group = |a: ListFlags, b: ListFlags, is_a: bool| {
            !(flags.has(a) || flags.has(b)) || (is_a && flags.has(a)) || (!is_a && flags.has(b))
        };
        let mut found = Vec::new();
        for name in self.domain_names()? {
            let Some(s) = self.load(&name)? else { continue };
            let active = s.live.is_some();
            let st = s.state.state;
            let state_group = ListFlags::RUNNING | ListFlags::PAUSED | ListFlags::SHUTOFF;
            let by_state = if flags.has(state_group | ListFlags::OTHER) {
                match st {
                    State::Running => flags.has(ListFlags::RUNNING),
                    State::Paused => flags.has(ListFlags::PAUSED),
                    State::Shutoff => flags.has(ListFlags::SHUTOFF),
                    _ => flags.has(ListFlags::OTHER),
                }
            } else {
                true
            };
            if group(ListFlags::ACTIVE, ListFlags::INACTIVE, active)
                && group(
                    ListFlags::PERSISTENT,
                    ListFlags::TRANSIENT,
                    s.config.is_some(),
                )
                && by_state
            {
                let listed = Listed {
                    domain: self.handle(&s),
                    id: s.id(),
                    state: s.state.clone(),
                };
                found.push(((s.id(), s.name.clone()), listed));
            }
        }
        found.sort_by(|a, b| virsh_order(&a.0, &b.0));
        Ok(found.into_iter().map(|(_, d)| d).collect())
    }
}

impl<'c> Domain<'c> {
    /// The connection this domain belongs to.
    pub fn connect(&self) -> &'c Connect {
        self.conn
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The UUID as libvirt prints it.
    pub fn uuid_string(&self) -> String {
        self.uuid.hyphenated().to_string()
    }

    /// The files as they are now, if they still describe this domain.
    fn snapshot(&self) -> Result<Snapshot, DriverError> {
        match self.conn.load(&self.name)? {
            Some(s) if s.uuid == self.uuid => Ok(s),
            _ => Err(DriverError::NoDomain(format!(
                "no domain with matching uuid '{}' ({})",
                self.uuid_string(),
                self.name
            ))),
        }
    }

    /// The domain id while running (`virDomainGetID`); `None` when inactive.
    pub fn id(&self) -> Result<Option<i32>, DriverError> {
        Ok(self.snapshot()?.id())
    }

    pub fn is_active(&self) -> Result<bool, DriverError> {
        Ok(self.snapshot()?.live.is_some())
    }

    pub fn is_persistent(&self) -> Result<bool, DriverError> {
        Ok(self.snapshot()?.config.is_some())
    }

    /// `virDomainGetOSType`: `hvm`, ...
    pub fn os_type(&self) -> Result<String, DriverError> {
        let s = self.snapshot()?;
        Ok(s.current_def()
            .map(|d| d.os.os_type.kind.clone())
            .unwrap_or_else(|| "hvm".into()))
    }

    /// The domain XML (`virsh dumpxml`): the live definition while running, unless
    /// `flags.inactive` asks for the persistent one (the live one for a transient domain).
    pub fn xml_desc(&self, flags: FormatFlags) -> Result<String, DriverError> {
        let s = self.snapshot()?;
        let live = s.live.as_ref().and_then(|l| l.def.as_ref());
        let def = if flags.inactive {
            s.config.as_ref().or(live)
        } else {
            live.or(s.config.as_ref())
        };
        def.map(|d| d.to_xml(flags)).ok_or_else(|| {
            DriverError::Internal(format!(
                "the status file of running domain '{}' holds no definition",
                self.name
            ))
        })
    }

    /// State and reason (`virsh domstate --reason`), from the files alone: it works while
    /// another process runs an operation on the domain.
    pub fn state(&self) -> Result<DomainState, DriverError> {
        Ok(self.snapshot()?.state)
    }

    /// `virDomainGetInfo`: state, memory (KiB), vCPUs, and CPU time used by QEMU so far.
    pub fn info(&self) -> Result<DomainInfo, DriverError> {
        let s = self.snapshot()?;
        let (max_mem, memory, nr_virt_cpu) = match s.current_def() {
            Some(d) => (
                d.memory.kib,
                d.current_memory.unwrap_or(d.memory.kib),
                d.vcpu.current.unwrap_or(d.vcpu.count),
            ),
            None => (0, 0, 0),
        };
        let cpu_time = s
            .live
            .as_ref()
            .and_then(|l| cpu_time_ns(l.status.pid, l.status.start_time))
            .unwrap_or(0);
        Ok(DomainInfo {
            state: s.state.state,
            max_mem,
            memory,
            nr_virt_cpu,
            cpu_time,
        })
    }

    /// Remove the persistent config (`virsh undefine`). A running domain keeps running and
    /// becomes transient, as in libvirt; a transient one cannot be undefined.
    pub fn undefine(&self) -> Result<(), DriverError> {
        self.undefine_flags(UndefineFlags::NONE)
    }

    /// [`Domain::undefine`] with libvirt's flags. What a domain leaves behind is not lost
    /// silently: a shut-off domain with snapshots needs `SNAPSHOTS_METADATA` (their metadata
    /// goes), and one with a varstore `NVRAM` (remove it) or `KEEP_NVRAM`.
    pub fn undefine_flags(&self, flags: UndefineFlags) -> Result<(), DriverError> {
        let _lock = ConfigLock::acquire(&self.conn.dirs.config)?;
        let s = self.snapshot()?;
        if s.config.is_none() {
            return Err(DriverError::OperationInvalid(
                "cannot undefine transient domain".into(),
            ));
        }
        if self.has_managed_save_image()? {
            return Err(DriverError::OperationInvalid(
                "Refusing to undefine while domain managed save image exists".into(),
            ));
        }
        self.undefine_snapshots(s.live.is_some(), flags.0)?;
        self.undefine_checkpoints(s.live.is_some(), flags.0)?;
        // libvirt: qemuDomainUndefineFlags, the NVRAM part.
        let nvram = s
            .config
            .as_ref()
            .and_then(|c| self.conn.nvram_path_of(c))
            .filter(|p| p.exists());
        if let Some(p) = &nvram {
            if flags.contains(UndefineFlags::NVRAM) {
                std::fs::remove_file(p).map_err(|err| DriverError::System {
                    msg: format!("failed to remove nvram: {}", p.display()),
                    err,
                })?;
            } else if !flags.contains(UndefineFlags::KEEP_NVRAM) {
                return Err(DriverError::OperationInvalid(
                    "cannot undefine domain with nvram".into(),
                ));
            }
        }
        super::autostart::forget(&self.conn.dirs.config, &self.name)?;
        config::remove(&config::config_path(&self.conn.dirs.config, &self.name)?)?;
        // A running guest still uses its state: it stays (libvirt removes it only when inactive).
        let keep_tpm = flags.contains(UndefineFlags::KEEP_TPM);
        if let Some(def) = s.config.as_ref().filter(|_| !keep_tpm && s.live.is_none()) {
            super::helpers::swtpm::remove_state(&self.conn.dirs.lib, def)?;
        }
        if s.live.is_none() {
            config::clear_shutoff_reason(&self.conn.dirs.run, &self.name)?;
        }
        Ok(())
    }

    /// The running QEMU and its live definition, from the files alone (no lock taken).
    pub(crate) fn live_process(&self) -> Result<LiveProcess, DriverError> {
        let s = self.snapshot()?;
        let Some(live) = s.live else {
            return Err(not_running());
        };
        let def = live.def.ok_or_else(|| {
            DriverError::Internal(format!(
                "the status file of running domain '{}' holds no definition",
                self.name
            ))
        })?;
        Ok(LiveProcess {
            def,
            pid: live.status.pid,
            start_time: live.status.start_time,
        })
    }

    /// Take the running guest's lock and monitor; libvirt's error when it is not running.
    pub(crate) fn guest(&self) -> Result<(Guest, bool), DriverError> {
        let s = self.snapshot()?;
        if s.live.is_none() {
            return Err(not_running());
        }
        match Guest::attach(&self.conn.dirs, &self.name).map_err(guest_err)? {
            Attach::Running(g) if g.status().uuid == self.uuid_string() => {
                Ok((*g, s.config.is_some()))
            }
            Attach::Running(_) => Err(DriverError::NoDomain(format!(
                "no domain with matching uuid '{}' ({})",
                self.uuid_string(),
                self.name
            ))),
            Attach::Inactive(_) => Err(not_running()),
        }
    }

    /// Kill QEMU (`virsh destroy`); the domain is then `shut off (destroyed)`.
    pub fn destroy(&self) -> Result<(), DriverError> {
        self.stop(StopReason::Destroyed)
    }

    /// End the guest as [`Domain::destroy`] does, for `reason` (a revert to a snapshot of
    /// the guest shut off ends it `from snapshot`).
    pub(crate) fn stop(&self, reason: StopReason) -> Result<(), DriverError> {
        let (mut g, persistent) = self.guest()?;
        // Noted before QEMU goes: between its death and the removal of its status file a
        // listing would otherwise call it crashed. While QEMU lives the note is not read.
        if persistent {
            config::write_shutoff_reason(&self.conn.dirs.run, &self.name, reason.as_str())?;
        }
        if let Err(e) = g.stop(DESTROY_GRACE, reason) {
            if persistent && g.is_alive() {
                // Best effort: the failure to kill is the news.
                let _ = config::clear_shutoff_reason(&self.conn.dirs.run, &self.name);
            }
            return Err(guest_err(e));
        }
        self.remove_lib_dir(&g.status().xml);
        Ok(())
    }

    /// Pause the vCPUs (`virsh suspend`).
    pub fn suspend(&self) -> Result<(), DriverError> {
        let (mut g, p) = self.guest()?;
        if state_of_status(g.status()).state == State::PmSuspended {
            return Err(pmsuspended());
        }
        g.suspend().map_err(|e| self.failed(&mut g, p, e))
    }

    /// Resume the vCPUs (`virsh resume`); a domain that is running already is left alone.
    pub fn resume(&self) -> Result<(), DriverError> {
        let (mut g, p) = self.guest()?;
        let state = g.state().map_err(|e| self.failed(&mut g, p, e))?;
        match state.state {
            State::Running => return Ok(()),
            // libvirt: qemuDomainResume; dompmwakeup wakes it.
            State::PmSuspended => return Err(pmsuspended()),
            _ => {}
        }
        g.resume().map_err(|e| self.failed(&mut g, p, e))
    }

    /// Press the ACPI power button (`virsh shutdown`) and return, as libvirt does. The reason
    /// is noted so that QEMU exiting after the guest powered off reads as `shut off
    /// (shutdown)`, not as a crash. See [`Domain::shutdown_and_wait`] to see it through.
    pub fn shutdown(&self) -> Result<(), DriverError> {
        self.shutdown_flags(0)
    }

    /// `virDomainShutdownFlags`: [`SHUTDOWN_ACPI_POWER_BTN`], [`SHUTDOWN_GUEST_AGENT`] or
    /// both (the agent, then the button if the agent failed); none: the agent when one is
    /// connected, else the button. The agent's way returns once QEMU saw the guest go down.
    // libvirt: qemuDomainShutdownFlags
    pub fn shutdown_flags(&self, flags: u32) -> Result<(), DriverError> {
        let modes = power_modes(flags, "qemuDomainShutdownFlags")?;
        let (mut g, p) = self.guest()?;
        config::write_shutoff_reason(&self.conn.dirs.run, &self.name, "shutdown")?;
        if let Err(e) = g.request_shutdown_with(modes) {
            // The request did not get through: no shutdown to expect.
            if g.is_alive() {
                let _ = config::clear_shutoff_reason(&self.conn.dirs.run, &self.name);
            }
            return Err(self.failed(&mut g, p, e));
        }
        Ok(())
    }

    /// Press the ACPI power button and wait up to `timeout` for QEMU to be gone (QEMU started
    /// with `-no-shutdown` is ended once the guest powered off, as libvirtd does).
    pub fn shutdown_and_wait(&self, timeout: Duration) -> Result<DomainState, DriverError> {
        let (mut g, p) = self.guest()?;
        config::write_shutoff_reason(&self.conn.dirs.run, &self.name, "shutdown")?;
        let state = g.shutdown(timeout).map_err(|e| self.failed(&mut g, p, e))?;
        self.remove_lib_dir(&g.status().xml);
        Ok(state)
    }

    /// Remove the private dir of a start whose QEMU is gone (its live XML names the id), as
    /// libvirt's qemuProcessStop deletes it: ids grow, so every start would leave one behind.
    /// Best effort: QEMU is gone either way, and the dir holds nothing anyone reads again.
    pub(crate) fn remove_lib_dir(&self, live_xml: &str) {
        if let Some(id) = domain::parse(live_xml).ok().and_then(|d| d.id) {
            let _ = std::fs::remove_dir_all(self.conn.lib_dir_for(&self.name, id));
            let _ = std::fs::remove_dir_all(super::launch::ram_dir_of(
                &self.conn.dirs.lib,
                &self.name,
                id,
            ));
        }
    }

    /// An operation on a running guest failed. If QEMU went away meanwhile, a persistent
    /// domain remembers how it ended (`shut off (crashed)`), as libvirtd would.
    fn failed(&self, g: &mut Guest, persistent: bool, e: GuestError) -> DriverError {
        if persistent
            && !g.is_alive()
            && let Ok(s) = g.state()
        {
            // Best effort: the error at hand matters more than the note.
            let _ = config::write_shutoff_reason(&self.conn.dirs.run, &self.name, &s.reason);
        }
        guest_err(e)
    }

    /// Reboot by ACPI (`virsh reboot`), as libvirt's "fake reboot": press the power button
    /// and return; the guest's monitor resets and resumes it once it powered off. A guest
    /// that ignores the button keeps running, as with libvirt.
    pub fn reboot(&self) -> Result<(), DriverError> {
        self.reboot_flags(0)
    }

    /// `virDomainReboot` with flags, as [`Domain::shutdown_flags`] picks the way (the same
    /// bit values); the agent's way returns once QEMU saw the guest reset.
    // libvirt: qemuDomainReboot
    pub fn reboot_flags(&self, flags: u32) -> Result<(), DriverError> {
        let modes = power_modes(flags, "qemuDomainReboot")?;
        let (mut g, p) = self.guest()?;
        g.request_reboot_with(modes)
            .map_err(|e| self.failed(&mut g, p, e))
    }

    /// Reboot and wait up to `wait` for the guest to have been reset (its RESET event).
    pub fn reboot_within(&self, wait: Duration) -> Result<(), DriverError> {
        let (mut g, p) = self.guest()?;
        g.request_reboot().map_err(|e| self.failed(&mut g, p, e))?;
        if g.wait_event("RESET", wait).is_none() {
            return Err(DriverError::Timeout(format!(
                "domain '{}' did not power off within {wait:?} to reboot",
                self.name
            )));
        }
        Ok(())
    }

    /// Start the domain (`virsh start`): the config goes through the prepare stage (defaults,
    /// implicit devices, addresses) and xml2argv with the emulator's probed caps, then QEMU
    /// starts paused with its monitor on a socket we listen on, and runs once QMP answers.
    pub fn create(&self) -> Result<(), DriverError> {
        self.create_with_flags(false)
    }

    /// [`Domain::create`], leaving the guest paused when `paused` (`virsh start --paused`).
    pub fn create_with_flags(&self, flags: impl Into<CreateFlags>) -> Result<(), DriverError> {
        self.create_with_ram(flags.into(), None)
    }

    /// [`Domain::create`] with the guest's RAM in `ram` (see [`crate::xml2argv::RamFile`]):
    /// how a fleet template's guest starts. A managed save image is refused here: its stream
    /// holds RAM that QEMU would load on top of the file.
    pub(crate) fn create_in_ram_file(
        &self,
        ram: crate::xml2argv::RamFile,
    ) -> Result<(), DriverError> {
        if self.has_managed_save_image()? {
            return Err(DriverError::OperationInvalid(
                "domain has a managed save image".into(),
            ));
        }
        self.create_with_ram(CreateFlags::NONE, Some(ram))
    }

    fn create_with_ram(
        &self,
        flags: CreateFlags,
        ram: Option<crate::xml2argv::RamFile>,
    ) -> Result<(), DriverError> {
        let paused = flags.contains(CreateFlags::PAUSED);
        let s = self.snapshot()?;
        if s.live.is_some() {
            return Err(DriverError::OperationInvalid(
                "domain is already running".into(),
            ));
        }
        let Some(def) = s.config else {
            return Err(no_such_name(&self.name));
        };
        if self.start_managed_save(paused)? {
            return Ok(());
        }
        self.start_def_with(def, flags, None, ram)
    }

    /// Start QEMU for definition `def` (the config, or a transient domain's XML).
    pub(crate) fn start_def(
        &self,
        def: DomainDef,
        paused: bool,
        incoming: Option<super::process::Incoming>,
        ram: Option<crate::xml2argv::RamFile>,
    ) -> Result<(), DriverError> {
        self.start_def_with(def, paused.into(), incoming, ram)
    }

    /// [`Domain::start_def`] with the start's flags (`PAUSED`, `RESET_NVRAM`); `ram`: the
    /// guest's RAM in that file rather than in anonymous memory.
    pub(crate) fn start_def_with(
        &self,
        def: DomainDef,
        flags: CreateFlags,
        incoming: Option<super::process::Incoming>,
        ram: Option<crate::xml2argv::RamFile>,
    ) -> Result<(), DriverError> {
        let paused = flags.contains(CreateFlags::PAUSED);
        let reset_nvram = flags.contains(CreateFlags::RESET_NVRAM);
        let (mut def, caps) =
            self.conn
                .prepare_domain_with(def, super::prepare::Purpose::Start, reset_nvram)?;
        if def.virt_type == crate::domain::VirtType::Kvm && !(caps.kvm && self.conn.kvm_usable()) {
            return Err(DriverError::Unsupported(
                "Domain requires KVM, but it is not available. Check that virtualization is enabled in the host BIOS, and host configuration is setup to load the kvm modules.".into(),
            ));
        }
        crate::domain::prepare::assign_aliases(&mut def);
        // Volume disks become their volume's path (libvirt: qemuProcessPrepareDomainStorage).
        self.conn.translate_volume_disks(&mut def)?;
        super::precheck::check(&def)?;
        super::console::add_capture_logs(&mut def, &self.conn.dirs.log)?;
        let id = config::next_domain_id(&self.conn.dirs.run)?;
        def.id = Some(id);
        let mut ctx = self.conn.launch_context(&def, id);
        ctx.ram_file = ram;
        // Held until QEMU listens on them, when this start returns.
        let _ports = self.conn.reserve_graphics_ports(&mut def, &ctx.conf)?;
        self.conn.prepare_channel_dir(&def, id)?;
        // A fresh master key per start (written to `master-key.aes`, which QEMU reads) and a
        // fresh IV: the secrets on the command line are only ever this start's ciphertext.
        let key = super::secret::random_bytes::<32>()?;
        let iv = super::secret::random_bytes::<16>()?;
        ctx.secrets = Some(self.conn.secret_context(key, iv)?);
        let helpers = self.conn.plan_helpers(&def, &ctx)?;
        ctx.tpm_emulator_socket = helpers.tpm_socket.clone();
        self.conn.connect_network_interfaces(&mut def, None)?;
        let taps = super::tap::plan(&def, &ctx)?;
        let passed = self.conn.open_passed_fds(&def, &mut ctx)?;
        let mut cmd = crate::xml2argv::build(&def, &caps, &ctx)?;
        self.conn.apply_qemu_env(&def, &mut cmd.env)?;
        super::nvram::prepare_varstore(&def, reset_nvram, &self.conn.nvram_dir())?;
        let lib_dir = std::path::Path::new(&ctx.lib_dir);
        let started = prepare_lib_dir(lib_dir, &key, def.launch_security.as_ref()).and_then(|()| {
            let mut args = cmd.args;
            if incoming.is_some() {
                args.extend(["-incoming".to_string(), "defer".to_string()]);
            }
            let boot = Boot {
                paused,
                incoming,
                helpers: helpers.specs,
                taps,
                passed,
            };
            self.launch(def, cmd.binary, args, cmd.env, Some(MONITOR_FD), boot)
        });
        if started.is_err() {
            // No QEMU runs with this id: its master key must not outlive the attempt. Best
            // effort, the start's own error is the one to report.
            let _ = std::fs::remove_dir_all(lib_dir);
            let _ = std::fs::remove_dir_all(super::launch::channel_dir_of(
                &self.conn.dirs.lib,
                &self.name,
                id,
            ));
            let _ = std::fs::remove_dir_all(super::launch::ram_dir_of(
                &self.conn.dirs.lib,
                &self.name,
                id,
            ));
        }
        started
    }

    /// Start the domain with a ready command line. `binary` and `args` are QEMU's argv (without
    /// the monitor, which the process layer adds); `args` holding `-S` starts it paused
    /// (`virsh start --paused`). `env` is QEMU's whole environment; empty keeps the process
    /// layer's default (`LC_ALL=C` and a standard `PATH`). The domain gets the next id and its
    /// live XML (the config with that id) goes into the status file.
    pub fn start_with_command(
        &self,
        binary: &str,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<(), DriverError> {
        let s = self.snapshot()?;
        if s.live.is_some() {
            return Err(DriverError::OperationInvalid(
                "domain is already running".into(),
            ));
        }
        let Some(mut def) = s.config else {
            // A snapshot without a live QEMU has a config; kept as an error, not a panic.
            return Err(no_such_name(&self.name));
        };
        let paused = args.iter().any(|a| a == "-S");
        def.id = Some(config::next_domain_id(&self.conn.dirs.run)?);
        let boot = Boot {
            paused,
            incoming: None,
            helpers: Vec::new(),
            taps: Vec::new(),
            passed: Default::default(),
        };
        self.launch(def, binary.to_string(), args, env, None, boot)
    }

    fn launch(
        &self,
        def: DomainDef,
        binary: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
        monitor_fd: Option<std::os::fd::RawFd>,
        boot: Boot,
    ) -> Result<(), DriverError> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(binary);
        argv.extend(args);
        let mut spec = LaunchSpec::new(&self.name, &self.uuid_string(), argv);
        if !env.is_empty() {
            spec.env = env;
        }
        spec.monitor_fd = monitor_fd;
        spec.paused = boot.paused;
        spec.incoming = boot.incoming;
        spec.helpers = boot.helpers;
        spec.taps = boot.taps;
        spec.passed_fds = boot.passed.targets();
        // Whoever built the command line, the passwords the definition asks for are set
        // (over QMP, never on the command line); a command line without `password=on` then
        // fails to start rather than run a display without its password.
        let conf = self.conn.launch_context(&def, def.id.unwrap_or(-1)).conf;
        spec.init = super::graphics::password_commands(&def, &conf);
        spec.init.extend(super::tuning::start_commands(&def));
        spec.xml = def.to_xml(FormatFlags {
            inactive: false,
            secure: true,
        });
        // The last reason is cleared only once the start is decided: cleared before, a
        // listing during the start would see `shut off (unknown)`.
        let started =
            Guest::start_passing(&self.conn.dirs, spec, &boot.passed.pairs()).map_err(guest_err);
        config::clear_shutoff_reason(&self.conn.dirs.run, &self.name)?;
        // The monitor put the ptys QEMU allocated into the live XML already.
        let guest = started?;
        // QEMU lives on under its monitor; dropping the handle releases the lock.
        drop(guest);
        Ok(())
    }
}

/// How QEMU begins: paused or running, and from a migration stream (`restore`) or booting.
struct Boot {
    paused: bool,
    incoming: Option<super::process::Incoming>,
    /// Helper processes the monitor starts before QEMU.
    helpers: Vec<super::helpers::HelperSpec>,
    /// Taps the monitor makes for QEMU.
    taps: Vec<super::tap::TapSpec>,
    /// Descriptors opened here that the monitor hands QEMU (vDPA devices, fd groups).
    passed: super::fdpass::Passed,
}
