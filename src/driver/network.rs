//! Virtual networks without a daemon, as libvirt's bridge driver runs them (libvirt:
//! src/network/bridge_driver.c): `net-start` makes the bridge, gives it its address, adds the
//! iptables rules of its forward mode (see [`crate::network::firewall`]), turns on
//! `ip_forward` for `nat` and `route`, and starts a dnsmasq for DHCP and DNS with a config of
//! its own; `net-destroy` undoes all of it.
//!
//! Layout (libvirt keeps the same things in /etc/libvirt/qemu/networks, /run/libvirt/network
//! and /var/lib/libvirt/dnsmasq):
//! - `CONFIG/networks/NAME.xml`: the persistent definition; `CONFIG/networks/autostart/NAME.xml`
//!   a symlink to it when autostart is set (recorded only: nothing starts networks at boot);
//! - `RUN/networks/NAME.xml`: the live definition, present while the network is active;
//!   `NAME.state` what the start did (the rules added, whether it turned `ip_forward` on),
//!   so that a destroy undoes exactly that; `NAME.conf`, `NAME.pid`
//!   dnsmasq's files (the static DHCP hosts are in the conf, see
//!   [`crate::network::dnsmasq`]);
//! - `LIB/networks/NAME.leases`: dnsmasq's lease file (kept across restarts, as libvirt's).
//!
//! Everything is done with the `ip`, `iptables` and `dnsmasq` programs, run directly (no
//! shell), so a network is made in whatever network namespace vsh runs in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{self, ConfigLock, config_path};
use super::metadata::{Affect, MetadataKind, get_metadata, set_metadata};
use super::{Connect, DriverError};
use crate::network::dnsmasq::{self, DnsmasqPaths, Lease};
use crate::network::firewall::{self, Rule};
use crate::network::{NetworkDef, NetworkError};

impl From<NetworkError> for DriverError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Xml(m) => {
                DriverError::Xml(crate::domain::DomainError::Xml(format!("XML error: {m}")))
            }
            NetworkError::Unsupported(m) => DriverError::Unsupported(m),
            NetworkError::NoName => DriverError::InvalidName("missing name information".into()),
            NetworkError::Internal(m) => DriverError::Internal(m),
            NetworkError::OperationInvalid(m) => DriverError::OperationInvalid(m),
            NetworkError::OperationUnsupported(m) => DriverError::OperationUnsupported(m),
        }
    }
}

fn no_network_name(name: &str) -> DriverError {
    DriverError::NoNetwork(format!("no network with matching name '{name}'"))
}

fn not_active(name: &str) -> DriverError {
    DriverError::OperationInvalid(format!("network '{name}' is not active"))
}

/// What a start did, for the destroy that undoes it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StartState {
    /// The bridge this start made (none for `bridge` networks, which use an existing one).
    bridge: Option<String>,
    /// The iptables rules added, in the order they were added.
    rules: Vec<Rule>,
    /// `net.ipv4.ip_forward` was 0 and this start set it.
    ip_forward_set: bool,
    /// dnsmasq's pid, also in its pid file.
    dnsmasq_pid: Option<i32>,
}

/// A network of a connection (libvirt's virNetworkPtr).
#[derive(Debug)]
pub struct Network<'c> {
    conn: &'c Connect,
    name: String,
    config: Option<NetworkDef>,
    live: Option<NetworkDef>,
}

impl<'c> Network<'c> {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The definition in effect: the live one while active, else the persistent one.
    fn def(&self) -> &NetworkDef {
        self.live
            .as_ref()
            .or(self.config.as_ref())
            .expect("a network has a live or a persistent definition")
    }

    pub fn uuid_string(&self) -> &str {
        &self.def().uuid
    }

    pub(crate) fn connect(&self) -> &'c Connect {
        self.conn
    }

    /// The live definition, while active.
    pub(crate) fn live(&self) -> Option<&NetworkDef> {
        self.live.as_ref()
    }

    pub fn title(&self) -> Option<String> {
        self.def().title.clone()
    }

    pub fn is_active(&self) -> bool {
        self.live.is_some()
    }

    pub fn is_persistent(&self) -> bool {
        self.config.is_some()
    }

    /// The bridge guests join (`virNetworkGetBridgeName`).
    pub fn bridge_name(&self) -> Result<String, DriverError> {
        self.def().bridge.clone().ok_or_else(|| {
            DriverError::Internal(format!(
                "network '{}' does not have a bridge name.",
                self.name
            ))
        })
    }

    /// The network's XML (`virNetworkGetXMLDesc`); `inactive` gives the persistent
    /// definition of an active network.
    pub fn xml_desc(&self, inactive: bool) -> String {
        let d = if inactive {
            self.config.as_ref().unwrap_or(self.def())
        } else {
            self.def()
        };
        d.to_xml(None)
    }

    pub fn autostart(&self) -> bool {
        let dir = self.conn.networks_config_dir();
        match (
            config_path(&dir, &self.name),
            autostart_link(&dir, &self.name),
        ) {
            (Ok(c), Ok(l)) => self.is_persistent() && std::fs::read_link(l).is_ok_and(|t| t == c),
            _ => false,
        }
    }

    /// Mark or unmark the network to start at boot (`virNetworkSetAutostart`). Recorded
    /// only, as for domains.
    pub fn set_autostart(&self, on: bool) -> Result<(), DriverError> {
        if !self.is_persistent() {
            return Err(DriverError::OperationInvalid(
                "cannot set autostart for transient network".into(),
            ));
        }
        let dir = self.conn.networks_config_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        let link = autostart_link(&dir, &self.name)?;
        let _ = std::fs::remove_file(&link);
        if on {
            let adir = dir.join("autostart");
            config::make_dir(&adir)?;
            std::os::unix::fs::symlink(config_path(&dir, &self.name)?, &link).map_err(|err| {
                DriverError::System {
                    msg: format!("Failed to create symlink '{}'", link.display()),
                    err,
                }
            })?;
        }
        Ok(())
    }

    /// Start the network (`virNetworkCreate`, `net-start`).
    pub fn create(&mut self) -> Result<(), DriverError> {
        let def = self
            .config
            .clone()
            .ok_or_else(|| no_network_name(&self.name))?;
        let live = self.conn.start_network(def)?;
        self.live = Some(live);
        Ok(())
    }

    /// Stop the network (`virNetworkDestroy`, `net-destroy`); a transient one is gone.
    pub fn destroy(&mut self) -> Result<(), DriverError> {
        let run = self.conn.networks_run_dir();
        config::make_dir(&run)?;
        let _lock = ConfigLock::acquire(&run)?;
        if config::read_small(&config_path(&run, &self.name)?)?.is_none() {
            return Err(not_active(&self.name));
        }
        self.conn.teardown(&self.name)?;
        self.live = None;
        Ok(())
    }

    /// Remove the persistent definition (`virNetworkUndefine`); an active network runs on,
    /// transient.
    pub fn undefine(&mut self) -> Result<(), DriverError> {
        let dir = self.conn.networks_config_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        if !config::remove(&config_path(&dir, &self.name)?)? {
            return Err(DriverError::OperationInvalid(
                "can't undefine transient network".into(),
            ));
        }
        let _ = std::fs::remove_file(autostart_link(&dir, &self.name)?);
        self.config = None;
        Ok(())
    }

    /// Change one section of the definition (`virNetworkUpdate`, `net-update`): the live
    /// one (`live`), the persistent one (`config`), or with neither the one in effect. A live
    /// change of the DHCP hosts restarts the network's dnsmasq with the new config (its
    /// leases stay in its lease file). Returns which were changed: (live, config).
    pub fn update(
        &mut self,
        command: crate::network::update::UpdateCommand,
        section: &str,
        parent_index: Option<usize>,
        xml: &str,
        live: bool,
        config: bool,
    ) -> Result<(bool, bool), DriverError> {
        use crate::network::update::apply;
        let (live, config) = self.affected_defs(Affect { live, config })?;
        let mut new_config = None;
        if let Some(c) = self.config.clone().filter(|_| config) {
            let mut c = c;
            apply(&mut c, command, section, parent_index, xml)?;
            new_config = Some(c);
        }
        let mut new_live = None;
        if let Some(l) = self.live.clone().filter(|_| live) {
            let mut l = l;
            apply(&mut l, command, section, parent_index, xml)?;
            new_live = Some(l);
        }
        if let Some(l) = new_live {
            self.conn.restart_dnsmasq(&l)?;
            self.live = Some(l);
        }
        if let Some(c) = new_config {
            self.store_config_change(c)?;
        }
        Ok((live, config))
    }

    /// Writes `c` as the persistent definition and keeps it: a change that is no definition,
    /// for the event watchers ([`config::write_atomic_change`]).
    fn store_config_change(&mut self, c: NetworkDef) -> Result<(), DriverError> {
        let dir = self.conn.networks_config_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        config::write_atomic_change(&config_path(&dir, &c.name)?, c.to_xml(None).as_bytes())?;
        self.config = Some(c);
        Ok(())
    }

    /// Which definitions an update or a metadata call reaches (libvirt: virNetworkObjGetDefs
    /// and virNetworkObjConfigChangeSetup): neither flag means the current one; (live, config).
    fn affected_defs(&self, affect: Affect) -> Result<(bool, bool), DriverError> {
        let (live, config) = match (affect.live, affect.config) {
            (false, false) => (self.is_active(), !self.is_active()),
            f => f,
        };
        if live && !self.is_active() {
            return Err(DriverError::OperationInvalid(
                "network is not running".into(),
            ));
        }
        if config && !self.is_persistent() {
            return Err(DriverError::OperationInvalid(
                "cannot change persistent config of a transient network".into(),
            ));
        }
        Ok((live, config))
    }

    /// `virNetworkGetMetadata`: from the live definition or the config (one of them).
    // libvirt: networkGetMetadata, virNetworkObjGetMetadata
    pub fn metadata(
        &self,
        kind: MetadataKind,
        uri: Option<&str>,
        affect: Affect,
    ) -> Result<String, DriverError> {
        if affect.live && affect.config {
            return Err(DriverError::InvalidArg(
                "Flags 'VIR_NETWORK_UPDATE_AFFECT_LIVE' and 'VIR_NETWORK_UPDATE_AFFECT_CONFIG' are mutually exclusive".into(),
            ));
        }
        let (_, config) = self.affected_defs(affect)?;
        let def = if config {
            self.config.as_ref()
        } else {
            self.live.as_ref()
        };
        get_metadata(def.unwrap_or(self.def()), kind, uri)
    }

    /// `virNetworkSetMetadata`: change the live definition, the config, or both; neither
    /// flag means the current one. Both are changed in memory before either is written, so
    /// a refused value changes nothing.
    // libvirt: networkSetMetadata, virNetworkObjSetMetadata
    pub fn set_metadata(
        &mut self,
        kind: MetadataKind,
        value: Option<&str>,
        key: Option<&str>,
        uri: Option<&str>,
        affect: Affect,
    ) -> Result<(), DriverError> {
        let (live, config) = self.affected_defs(affect)?;
        let change = |d: &Option<NetworkDef>, on: bool| -> Result<_, DriverError> {
            match d.clone().filter(|_| on) {
                Some(mut d) => {
                    set_metadata(&mut d, kind, value, key, uri)?;
                    Ok(Some(d))
                }
                None => Ok(None),
            }
        };
        let new_live = change(&self.live, live)?;
        let new_config = change(&self.config, config)?;
        if let Some(l) = new_live {
            let run = self.conn.networks_run_dir();
            let _lock = ConfigLock::acquire(&run)?;
            let path = config_path(&run, &self.name)?;
            if config::read_small(&path)?.is_none() {
                return Err(not_active(&self.name));
            }
            config::write_atomic(&path, l.to_xml(None).as_bytes())?;
            self.live = Some(l);
        }
        if let Some(c) = new_config {
            self.store_config_change(c)?;
        }
        Ok(())
    }

    /// The network's DHCP leases (`virNetworkGetDHCPLeases`), only those of `mac` if given.
    /// Expired leases are left out, as libvirt does.
    pub fn dhcp_leases(&self, mac: Option<&str>) -> Result<Vec<(Lease, u8)>, DriverError> {
        if !self.is_active() {
            return Err(not_active(&self.name));
        }
        let text = config::read_small(&self.conn.lease_file(&self.name)?)?.unwrap_or_default();
        let prefix = self.def().dhcp_ip().map_or(24, |i| i.prefix);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Ok(dnsmasq::parse_leases(&text)
            .into_iter()
            .filter(|l| l.expiry == 0 || l.expiry > now)
            .filter(|l| mac.is_none_or(|m| m.eq_ignore_ascii_case(&l.mac)))
            .map(|l| (l, prefix))
            .collect())
    }
}

fn autostart_link(dir: &Path, name: &str) -> Result<PathBuf, DriverError> {
    config_path(&dir.join("autostart"), name)
}

fn exists_link(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The first of `dirs` holding an executable `prog`, else the usual sbin path (for the error).
pub(crate) fn find_prog(prog: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin".into(), "/sbin".into(), "/usr/bin".into()]);
    dirs.iter()
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin").join(prog))
}

/// Run `prog args`; a failure is worded as libvirt's virCommandRun words one.
pub(crate) fn run(prog: &str, args: &[&str]) -> Result<String, DriverError> {
    let path = find_prog(prog);
    let out = Command::new(&path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| DriverError::System {
            msg: format!("Cannot run {}", path.display()),
            err,
        })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let cmd = std::iter::once(path.display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    Err(DriverError::Internal(format!(
        "Child process ({cmd}) unexpected exit status {}: {}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn iptables(table: &str, args: &[&str]) -> Result<String, DriverError> {
    let mut a = vec!["-w", "-t", table];
    a.extend_from_slice(args);
    run("iptables", &a)
}

/// Make the private chains and their jumps that are missing (libvirt:
/// iptablesSetupPrivateChains).
fn setup_chains() -> Result<(), DriverError> {
    // Reverse: each jump goes first, so the last made ends up on top.
    for (table, chain, parent) in firewall::CHAINS.iter().rev() {
        if iptables(table, &["-S", chain]).is_err() {
            iptables(table, &["-N", chain])?;
        }
        if iptables(table, &["-C", parent, "-j", chain]).is_err() {
            iptables(table, &["-I", parent, "1", "-j", chain])?;
        }
    }
    Ok(())
}

fn rule_args<'a>(op: &'a str, r: &'a Rule, insert: bool) -> Vec<&'a str> {
    let mut a = vec![op, r.chain.as_str()];
    if insert {
        a.push("1");
    }
    a.extend(r.args.iter().map(String::as_str));
    a
}

/// Remove `rules` (each one that is there) and then every private chain left empty, with its
/// jump. Errors are collected, not fatal: a destroy removes all it can.
fn remove_rules(rules: &[Rule]) -> Vec<String> {
    let mut errs = Vec::new();
    for r in rules {
        let spec = rule_args("-C", r, false);
        if iptables(&r.table, &spec).is_ok()
            && let Err(e) = iptables(&r.table, &rule_args("-D", r, false))
        {
            errs.push(e.to_string());
        }
    }
    if rules.is_empty() {
        return errs;
    }
    for (table, chain, parent) in firewall::CHAINS {
        let Ok(listing) = iptables(table, &["-S", chain]) else {
            continue;
        };
        if listing.lines().any(|l| l.starts_with("-A ")) {
            continue;
        }
        let _ = iptables(table, &["-D", parent, "-j", chain]);
        if let Err(e) = iptables(table, &["-X", chain]) {
            errs.push(e.to_string());
        }
    }
    errs
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

fn pid_alive_as_dnsmasq(pid: i32, conf: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let c = String::from_utf8_lossy(&c);
        c.contains("dnsmasq") && c.contains(&*conf.to_string_lossy())
    })
}

/// Whether process `pid` still runs (is neither gone nor a zombie): an exiting process
/// loses its command line before it closes its sockets, so identity is checked once, before
/// the signal, and the end by its state.
fn pid_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
    })
}

fn kill_dnsmasq(pid: i32, conf: &Path) {
    if !pid_alive_as_dnsmasq(pid, conf) {
        return;
    }
    let p = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
    let until = Instant::now() + Duration::from_secs(5);
    while pid_running(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    if pid_running(pid) {
        let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        let until = Instant::now() + Duration::from_secs(5);
        while pid_running(pid) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Connect {
    /// Where persistent network definitions live.
    pub fn networks_config_dir(&self) -> PathBuf {
        self.dirs.config.join("networks")
    }

    pub(crate) fn networks_run_dir(&self) -> PathBuf {
        self.dirs.run.join("networks")
    }

    fn lease_file(&self, name: &str) -> Result<PathBuf, DriverError> {
        config::validate_name(name)?;
        Ok(self
            .dirs
            .lib
            .join("networks")
            .join(format!("{name}.leases")))
    }

    fn run_file(&self, name: &str, ext: &str) -> Result<PathBuf, DriverError> {
        config::validate_name(name)?;
        Ok(self.networks_run_dir().join(format!("{name}.{ext}")))
    }

    fn read_def(path: &Path) -> Result<Option<NetworkDef>, DriverError> {
        match config::read_small(path)? {
            None => Ok(None),
            Some(x) => Ok(Some(NetworkDef::parse(&x)?)),
        }
    }

    fn network(&self, name: &str) -> Result<Option<Network<'_>>, DriverError> {
        if config::validate_name(name).is_err() {
            return Ok(None);
        }
        let config = Self::read_def(&config_path(&self.networks_config_dir(), name)?)?;
        let live = Self::read_def(&config_path(&self.networks_run_dir(), name)?)?;
        if config.is_none() && live.is_none() {
            return Ok(None);
        }
        Ok(Some(Network {
            conn: self,
            name: name.to_string(),
            config,
            live,
        }))
    }

    /// The network named `name` (`virNetworkLookupByName`).
    pub fn lookup_network_by_name(&self, name: &str) -> Result<Network<'_>, DriverError> {
        self.network(name)?.ok_or_else(|| no_network_name(name))
    }

    /// The network with this UUID (`virNetworkLookupByUUIDString`).
    pub fn lookup_network_by_uuid_string(&self, uuid: &str) -> Result<Network<'_>, DriverError> {
        let want = uuid::Uuid::parse_str(uuid.trim())
            .map(|u| u.hyphenated().to_string())
            .ok();
        self.list_all_networks()?
            .into_iter()
            .find(|n| Some(n.uuid_string()) == want.as_deref())
            .ok_or_else(|| {
                DriverError::NoNetwork(format!("no network with matching uuid '{uuid}'"))
            })
    }

    /// Every network, persistent or active, by name (`virConnectListAllNetworks`).
    pub fn list_all_networks(&self) -> Result<Vec<Network<'_>>, DriverError> {
        let mut names = config::config_names(&self.networks_config_dir())?;
        names.extend(config::config_names(&self.networks_run_dir())?);
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            match self.network(&n) {
                Ok(Some(net)) => out.push(net),
                Ok(None) => {}
                Err(e) => self.warn([format!("network '{n}': {e}")]),
            }
        }
        Ok(out)
    }

    /// Check a new definition against the others (libvirt: virNetworkObjAssignDef's and
    /// networkValidate's checks) and fill in its defaults.
    fn admit(&self, mut def: NetworkDef, live: bool) -> Result<NetworkDef, DriverError> {
        config::validate_name(&def.name)?;
        let others = self.list_all_networks()?;
        if let Some(o) = others.iter().find(|o| o.uuid_string() == def.uuid) {
            if o.name != def.name {
                return Err(DriverError::OperationFailed(format!(
                    "network '{}' is already defined with uuid {}",
                    o.name, def.uuid
                )));
            }
            if live && o.is_active() {
                return Err(DriverError::OperationInvalid(format!(
                    "network is already active as '{}'",
                    o.name
                )));
            }
        } else if let Some(o) = others.iter().find(|o| o.name == def.name) {
            return Err(DriverError::OperationFailed(format!(
                "network '{}' already exists with uuid {}",
                def.name,
                o.uuid_string()
            )));
        }
        let same = |o: &Network| o.name == def.name;
        // A redefinition keeps the bridge and MAC libvirt filled in before.
        if let Some(o) = others.iter().find(|o| same(o)) {
            let old = o.config.as_ref().unwrap_or(o.def());
            if def.bridge.is_none() && def.makes_bridge() {
                def.bridge.clone_from(&old.bridge);
            }
            if def.mac.is_none() && def.makes_bridge() {
                def.mac.clone_from(&old.mac);
            }
        }
        if let Some(b) = &def.bridge
            && def.makes_bridge()
            && others.iter().any(|o| {
                !same(o)
                    && [o.config.as_ref(), o.live.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|d| d.bridge.as_ref() == Some(b))
            })
        {
            return Err(DriverError::Internal(format!(
                "bridge name '{b}' already in use."
            )));
        }
        let used: Vec<String> = others
            .iter()
            .filter(|o| !same(o))
            .flat_map(|o| [o.config.as_ref(), o.live.as_ref()])
            .flatten()
            .filter_map(|d| d.bridge.clone())
            .collect();
        let rnd = super::secret::random_bytes::<3>()?;
        def.fill_defaults(|n| used.iter().any(|u| u == n) || exists_link(n), rnd);
        Ok(def)
    }

    /// Define (or redefine) a persistent network (`virNetworkDefineXML`, `net-define`).
    pub fn define_network_xml(&self, xml: &str) -> Result<Network<'_>, DriverError> {
        let def = NetworkDef::parse(xml)?;
        let dir = self.networks_config_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        let def = self.admit(def, false)?;
        config::write_atomic(&config_path(&dir, &def.name)?, def.to_xml(None).as_bytes())?;
        self.lookup_network_by_name(&def.name)
    }

    /// Create and start a transient network (`virNetworkCreateXML`, `net-create`).
    pub fn create_network_xml(&self, xml: &str) -> Result<Network<'_>, DriverError> {
        let def = NetworkDef::parse(xml)?;
        let def = {
            let dir = self.networks_config_dir();
            config::make_dir(&dir)?;
            let _lock = ConfigLock::acquire(&dir)?;
            self.admit(def, true)?
        };
        let name = def.name.clone();
        self.start_network(def)?;
        self.lookup_network_by_name(&name)
    }

    /// The bridge a guest interface on network `name` joins (libvirt: networkAllocatePort's
    /// lookups and checks, with its errors).
    pub(crate) fn network_bridge_for_port(&self, name: &str) -> Result<String, DriverError> {
        let net = self.lookup_network_by_name(name)?;
        if !net.is_active() {
            return Err(not_active(name));
        }
        net.bridge_name()
    }

    /// Give each `<interface type='network'>` of `def` (or only interface `only`) its
    /// network's bridge and a port id, as libvirt's live XML shows them (libvirt:
    /// networkAllocatePort); an unknown or inactive network is refused with libvirt's words.
    pub(crate) fn connect_network_interfaces(
        &self,
        def: &mut crate::domain::DomainDef,
        only: Option<usize>,
    ) -> Result<(), DriverError> {
        for (i, n) in def.devices.interfaces.iter_mut().enumerate() {
            if n.itype != "network" || only.is_some_and(|o| o != i) {
                continue;
            }
            let src = n.source.get_or_insert_with(Default::default);
            let name = src.network.clone().unwrap_or_default();
            let bridge = self.network_bridge_for_port(&name)?;
            src.bridge = Some(bridge);
            if src.portid.is_none() {
                src.portid = Some(uuid::Uuid::new_v4().hyphenated().to_string());
            }
        }
        Ok(())
    }

    /// Leases of every active network, as `(mac, ip, prefix)`, for `domifaddr --source lease`.
    pub(crate) fn all_network_leases(&self) -> Vec<(String, String, u8)> {
        self.list_all_networks()
            .unwrap_or_default()
            .iter()
            .filter(|n| n.is_active())
            .flat_map(|n| n.dhcp_leases(None).unwrap_or_default())
            .map(|(l, p)| (l.mac, l.ip.to_string(), p))
            .collect()
    }

    /// Bring up `def` (libvirt: networkStartNetworkVirtual); on failure everything done is
    /// undone. Returns the live definition.
    fn start_network(&self, def: NetworkDef) -> Result<NetworkDef, DriverError> {
        let run = self.networks_run_dir();
        config::make_dir(&run)?;
        let _lock = ConfigLock::acquire(&run)?;
        let live_path = config_path(&run, &def.name)?;
        if config::read_small(&live_path)?.is_some() {
            return Err(DriverError::OperationInvalid(
                "network is already active".into(),
            ));
        }
        let mut st = StartState::default();
        let r = self.bring_up(&def, &mut st);
        // The state is written even on failure, for the teardown below to read.
        config::write_atomic(
            &self.run_file(&def.name, "state")?,
            serde_json::to_vec(&st).unwrap_or_default().as_slice(),
        )?;
        match r {
            Ok(()) => {
                config::write_atomic(&live_path, def.to_xml(None).as_bytes())?;
                Ok(def)
            }
            Err(e) => {
                let _ = self.teardown(&def.name);
                Err(e)
            }
        }
    }

    fn bring_up(&self, def: &NetworkDef, st: &mut StartState) -> Result<(), DriverError> {
        let Some(br) = def.bridge.clone() else {
            return Err(DriverError::Internal(format!(
                "network '{}' does not have a bridge name.",
                def.name
            )));
        };
        if !def.makes_bridge() {
            // libvirt: networkStartNetworkBridge: the bridge is the host's; nothing to make.
            return Ok(());
        }
        if exists_link(&br) {
            return Err(DriverError::System {
                msg: format!("error creating bridge interface {br}"),
                err: std::io::Error::from_raw_os_error(nix::libc::EEXIST),
            });
        }
        let delay = (def.delay * 100).to_string();
        let mut add = vec!["link", "add", br.as_str()];
        if let Some(m) = &def.mac {
            add.extend(["address", m.as_str()]);
        }
        add.extend(["type", "bridge", "forward_delay", &delay]);
        add.extend(["stp_state", if def.stp { "1" } else { "0" }]);
        run("ip", &add)?;
        st.bridge = Some(br.clone());
        if let Some(m) = def.mtu {
            run("ip", &["link", "set", &br, "mtu", &m.to_string()])?;
        }
        for ip in &def.ips {
            let a = format!("{}/{}", ip.address, ip.prefix);
            let bcast =
                std::net::Ipv4Addr::from(u32::from(ip.network()) | !u32::from(ip.netmask()));
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &a,
                    "broadcast",
                    &bcast.to_string(),
                    "dev",
                    &br,
                ],
            )?;
        }
        run("ip", &["link", "set", &br, "up"])?;

        let rules = firewall::rules(def);
        if !rules.is_empty() {
            setup_chains()?;
            for r in rules.iter().rev() {
                iptables(&r.table, &rule_args("-I", r, true))?;
                st.rules.push(r.clone());
            }
        }
        if firewall::forwards(def) {
            let cur = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
            if cur.trim() != "1" {
                std::fs::write(IP_FORWARD, "1\n").map_err(|err| DriverError::System {
                    msg: "cannot enable /proc/sys/net/ipv4/ip_forward".into(),
                    err,
                })?;
                st.ip_forward_set = true;
            }
        }
        if dnsmasq::needed(def) {
            st.dnsmasq_pid = Some(self.start_dnsmasq(def)?);
        }
        Ok(())
    }

    /// Replace the live definition of active network `def.name` and its dnsmasq by `def`'s.
    fn restart_dnsmasq(&self, def: &NetworkDef) -> Result<(), DriverError> {
        let run = self.networks_run_dir();
        let _lock = ConfigLock::acquire(&run)?;
        let live_path = config_path(&run, &def.name)?;
        if config::read_small(&live_path)?.is_none() {
            return Err(DriverError::OperationInvalid(
                "network is not running".into(),
            ));
        }
        let state_path = self.run_file(&def.name, "state")?;
        let mut st: StartState = config::read_small(&state_path)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        if let Some(pid) = st.dnsmasq_pid.take() {
            kill_dnsmasq(pid, &self.run_file(&def.name, "conf")?);
        }
        let started = if dnsmasq::needed(def) {
            self.start_dnsmasq(def).map(Some)
        } else {
            Ok(None)
        };
        st.dnsmasq_pid = started.as_ref().ok().copied().flatten();
        config::write_atomic(
            &state_path,
            serde_json::to_vec(&st).unwrap_or_default().as_slice(),
        )?;
        started?;
        config::write_atomic(&live_path, def.to_xml(None).as_bytes())
    }

    fn start_dnsmasq(&self, def: &NetworkDef) -> Result<i32, DriverError> {
        let leases = self.lease_file(&def.name)?;
        if let Some(d) = leases.parent() {
            config::make_dir(d)?;
        }
        let path = |ext: &str| -> Result<String, DriverError> {
            Ok(self.run_file(&def.name, ext)?.display().to_string())
        };
        let paths = DnsmasqPaths {
            pid_file: path("pid")?,
            lease_file: leases.display().to_string(),
        };
        let conf = self.run_file(&def.name, "conf")?;
        config::write_atomic(&conf, dnsmasq::conf(def, &paths).as_bytes())?;
        let _ = std::fs::remove_file(&paths.pid_file);
        let bin = find_prog("dnsmasq");
        if !bin.is_file() {
            return Err(DriverError::System {
                msg: format!("Cannot check dnsmasq binary {}", bin.display()),
                err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
            });
        }
        // dnsmasq forks into the background once it is ready and writes its pid file; its
        // first process exits non-zero (with the reason on stderr) when it cannot start.
        run("dnsmasq", &[&format!("--conf-file={}", conf.display())])?;
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = std::fs::read_to_string(&paths.pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                return Ok(pid);
            }
            if Instant::now() > until {
                return Err(DriverError::Internal(format!(
                    "dnsmasq did not write its pid file {}",
                    paths.pid_file
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Undo a start (libvirt: networkShutdownNetworkVirtual): dnsmasq, the rules, the
    /// bridge, ip_forward, the run files. Goes on past failures and reports the first.
    fn teardown(&self, name: &str) -> Result<(), DriverError> {
        let st: StartState = config::read_small(&self.run_file(name, "state")?)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let conf = self.run_file(name, "conf")?;
        let pid = st.dnsmasq_pid.or_else(|| {
            std::fs::read_to_string(self.run_file(name, "pid").ok()?)
                .ok()?
                .trim()
                .parse()
                .ok()
        });
        if let Some(pid) = pid {
            kill_dnsmasq(pid, &conf);
        }
        let mut errs = remove_rules(&st.rules);
        if let Some(br) = &st.bridge
            && exists_link(br)
        {
            let _ = run("ip", &["link", "set", br, "down"]);
            if let Err(e) = run("ip", &["link", "del", br]) {
                errs.push(e.to_string());
            }
        }
        if st.ip_forward_set {
            // Back to off, unless another active network still routes.
            let others_forward = self
                .list_all_networks()
                .unwrap_or_default()
                .iter()
                .any(|n| n.name != name && n.live.as_ref().is_some_and(firewall::forwards));
            if !others_forward {
                let _ = std::fs::write(IP_FORWARD, "0\n");
            }
        }
        self.delete_all_ports(name);
        for ext in ["conf", "pid", "state", "xml"] {
            let _ = std::fs::remove_file(self.run_file(name, ext)?);
        }
        match errs.into_iter().next() {
            None => Ok(()),
            Some(e) => Err(DriverError::Internal(format!(
                "network '{name}' was not entirely removed: {e}"
            ))),
        }
    }
}
