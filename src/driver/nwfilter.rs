//! Network filters and their bindings, stored per connection as libvirt's nwfilter driver
//! keeps them (libvirt: src/nwfilter/nwfilter_driver.c, src/conf/virnwfilterobj.c):
//! `CONFIG/nwfilter/NAME.xml` for filters, `RUN/nwfilter-binding/PORTDEV.xml` for bindings
//! (runtime state, as libvirt's). Both written atomically under the dir's lock.
//!
//! Filters are stored and validated, with libvirt's rules (unique names and UUIDs, no
//! reference loops, no undefining a filter a binding uses, no binding to a missing filter),
//! but not enforced: nothing here touches ebtables/iptables. A guest whose interface asks
//! for a filter is therefore refused ([`refuse_filterrefs`]) rather than started without
//! it. libvirt refuses these APIs on a session connection (it could not apply filters
//! unprivileged); here nothing is applied, so every connection keeps its own store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{self, ConfigLock};
use super::{Connect, DriverError};
use crate::nwfilter::binding::BindingDef;
use crate::nwfilter::{FilterDef, NwfilterError};

impl From<NwfilterError> for DriverError {
    fn from(e: NwfilterError) -> Self {
        match e {
            NwfilterError::Xml(m) => DriverError::Xml(crate::domain::DomainError::Xml(m)),
            NwfilterError::Internal(m) => DriverError::Internal(m),
            NwfilterError::InvalidArg(m) => DriverError::InvalidArg(m),
            // DriverError::Uri prints its text bare, as virsh prints this one.
            NwfilterError::Unknown => DriverError::Uri(e.to_string()),
        }
    }
}

/// A name that becomes a file name: libvirt builds the path from it unchecked; here a name
/// that would leave the directory is refused.
fn file_name_ok(kind: &str, name: &str) -> Result<(), DriverError> {
    if name.contains('/') || name == "." || name == ".." || name.starts_with('.') {
        return Err(DriverError::InvalidArg(format!(
            "{kind} name '{name}' cannot be used as a file name"
        )));
    }
    Ok(())
}

/// A defined network filter.
#[derive(Debug)]
pub struct NwFilter<'c> {
    conn: &'c Connect,
    def: FilterDef,
}

impl NwFilter<'_> {
    pub fn name(&self) -> &str {
        &self.def.name
    }

    pub fn uuid_string(&self) -> &str {
        &self.def.uuid
    }

    pub fn xml_desc(&self) -> String {
        self.def.to_xml()
    }

    /// `virsh nwfilter-undefine` (libvirt: nwfilterUndefine): refused while a binding uses
    /// the filter, directly or through another filter.
    pub fn undefine(&self) -> Result<(), DriverError> {
        let dir = self.conn.nwfilter_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        let filters = self.conn.nwfilter_defs()?;
        if !filters.contains_key(&self.def.name) {
            return Err(no_filter_name(&self.def.name));
        }
        for b in self.conn.binding_defs()? {
            if closure(&filters, &b.filter).0.contains(&self.def.name) {
                return Err(DriverError::OperationInvalid("nwfilter is in use".into()));
            }
        }
        if !config::remove(&filter_path(&dir, &self.def.name))? {
            return Err(DriverError::Internal(format!(
                "cannot remove config for {}",
                self.def.name
            )));
        }
        Ok(())
    }
}

/// A filter binding.
#[derive(Debug)]
pub struct NwFilterBinding<'c> {
    conn: &'c Connect,
    def: BindingDef,
}

impl NwFilterBinding<'_> {
    pub fn portdev(&self) -> &str {
        &self.def.portdev
    }

    pub fn filter_name(&self) -> &str {
        &self.def.filter
    }

    pub fn xml_desc(&self) -> String {
        self.def.to_xml()
    }

    /// `virsh nwfilter-binding-delete` (libvirt: nwfilterBindingDelete).
    pub fn delete(&self) -> Result<(), DriverError> {
        let dir = self.conn.binding_dir();
        let _lock = ConfigLock::acquire(&dir)?;
        if !config::remove(&binding_path(&dir, &self.def.portdev))? {
            return Err(no_binding(&self.def.portdev));
        }
        Ok(())
    }
}

fn filter_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.xml"))
}

fn binding_path(dir: &Path, portdev: &str) -> PathBuf {
    dir.join(format!("{portdev}.xml"))
}

fn no_filter_name(name: &str) -> DriverError {
    DriverError::NoNwfilter(format!("no nwfilter with matching name '{name}'"))
}

fn no_binding(portdev: &str) -> DriverError {
    DriverError::NoNwfilterBinding(format!("no nwfilter binding for port dev '{portdev}'"))
}

/// Every filter reachable from `start` (itself included) and the first referenced one
/// that is missing, if any.
fn closure(filters: &BTreeMap<String, FilterDef>, start: &str) -> (Vec<String>, Option<String>) {
    let mut seen = Vec::new();
    let mut missing = None;
    let mut todo = vec![start.to_string()];
    while let Some(n) = todo.pop() {
        if seen.contains(&n) {
            continue;
        }
        match filters.get(&n) {
            Some(d) => todo.extend(d.includes().map(str::to_string)),
            None => {
                missing.get_or_insert_with(|| n.clone());
                continue;
            }
        }
        seen.push(n);
    }
    (seen, missing)
}

/// libvirt's _virNWFilterObjListDefLoopDetect: whether `def`, through the stored filters,
/// references its own name (whether or not that name is stored yet).
fn introduces_loop(filters: &BTreeMap<String, FilterDef>, def: &FilterDef) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    let mut todo: Vec<&str> = def.includes().collect();
    while let Some(n) = todo.pop() {
        if n == def.name {
            return true;
        }
        if seen.contains(&n) {
            continue;
        }
        seen.push(n);
        if let Some(d) = filters.get(n) {
            todo.extend(d.includes());
        }
    }
    false
}

/// Refuse a guest interface asking for a network filter: filters are not enforced yet, and
/// a filter the user asked for must not be silently ignored.
pub(crate) fn refuse_filterrefs(
    ifaces: &[crate::domain::devices::Interface],
) -> Result<(), DriverError> {
    for i in ifaces {
        if let Some(f) = &i.filterref {
            let name = f.attr("filter").unwrap_or_default();
            let which = i.mac.as_deref().unwrap_or(i.itype.as_str());
            return Err(DriverError::Unsupported(format!(
                "interface {which} asks for network filter '{name}', but network filters are stored and validated, not enforced, by this driver yet: remove <filterref> to run the guest unfiltered"
            )));
        }
    }
    Ok(())
}

impl Connect {
    /// Where this connection's network filters live.
    pub fn nwfilter_dir(&self) -> PathBuf {
        self.dirs.config.join("nwfilter")
    }

    /// Where this connection's filter bindings live (runtime state).
    pub fn binding_dir(&self) -> PathBuf {
        self.dirs.run.join("nwfilter-binding")
    }

    /// Every stored filter by name; unreadable files are left out with a warning.
    fn nwfilter_defs(&self) -> Result<BTreeMap<String, FilterDef>, DriverError> {
        let mut out = BTreeMap::new();
        for (stem, path, xml) in read_xml_dir(&self.nwfilter_dir())? {
            match FilterDef::parse(&xml) {
                Ok(d) if d.name == stem => {
                    out.insert(d.name.clone(), d);
                }
                Ok(d) => self.warn([format!(
                    "network filter config filename '{}' does not match name '{}'",
                    path.display(),
                    d.name
                )]),
                Err(e) => self.warn([format!("{}: {e}", path.display())]),
            }
        }
        Ok(out)
    }

    fn binding_defs(&self) -> Result<Vec<BindingDef>, DriverError> {
        let mut out = Vec::new();
        for (stem, path, xml) in read_xml_dir(&self.binding_dir())? {
            match BindingDef::parse(&xml) {
                Ok(b) if b.portdev == stem => out.push(b),
                Ok(b) => self.warn([format!(
                    "{}: holds the binding of '{}': ignored",
                    path.display(),
                    b.portdev
                )]),
                Err(e) => self.warn([format!("{}: {e}", path.display())]),
            }
        }
        out.sort_by(|a, b| a.portdev.cmp(&b.portdev));
        Ok(out)
    }

    /// `virsh nwfilter-define` (libvirt: nwfilterDefineXMLFlags): define a filter or
    /// replace the one of the same name and UUID.
    pub fn define_nwfilter_xml(
        &self,
        xml: &str,
        validate: bool,
    ) -> Result<NwFilter<'_>, DriverError> {
        if validate {
            super::schema::validate_xml_against(xml, "nwfilter.rng")?;
        }
        let def = FilterDef::parse(xml)?;
        file_name_ok("network filter", &def.name)?;
        let dir = self.nwfilter_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        let mut filters = self.nwfilter_defs()?;
        // libvirt: virNWFilterObjListAssignDef.
        if let Some(same_uuid) = filters.values().find(|f| f.uuid == def.uuid) {
            if same_uuid.name != def.name {
                return Err(DriverError::OperationFailed(format!(
                    "filter with same UUID but different name ('{}') already exists",
                    same_uuid.name
                )));
            }
        } else if let Some(same_name) = filters.get(&def.name) {
            return Err(DriverError::OperationFailed(format!(
                "filter '{}' already exists with uuid {}",
                def.name, same_name.uuid
            )));
        }
        if introduces_loop(&filters, &def) {
            return Err(DriverError::OperationFailed(
                "filter would introduce a loop".into(),
            ));
        }
        // A redefinition is re-instantiated for the bindings using it (libvirt:
        // virNWFilterTriggerRebuild): it must still resolve for each of them.
        filters.insert(def.name.clone(), def.clone());
        for b in self.binding_defs()? {
            if let (_, Some(m)) = closure(&filters, &b.filter) {
                return Err(DriverError::Internal(format!(
                    "referenced filter '{m}' is missing"
                )));
            }
        }
        config::write_atomic(&filter_path(&dir, &def.name), def.to_xml().as_bytes())?;
        Ok(NwFilter { conn: self, def })
    }

    pub fn lookup_nwfilter_by_name(&self, name: &str) -> Result<NwFilter<'_>, DriverError> {
        self.nwfilter_defs()?
            .remove(name)
            .map(|def| NwFilter { conn: self, def })
            .ok_or_else(|| no_filter_name(name))
    }

    pub fn lookup_nwfilter_by_uuid_string(&self, uuid: &str) -> Result<NwFilter<'_>, DriverError> {
        let canon = uuid::Uuid::parse_str(uuid.trim())
            .map(|u| u.hyphenated().to_string())
            .ok();
        self.nwfilter_defs()?
            .into_values()
            .find(|d| Some(&d.uuid) == canon.as_ref())
            .map(|def| NwFilter { conn: self, def })
            .ok_or_else(|| {
                DriverError::NoNwfilter(format!("no nwfilter with matching uuid '{uuid}'"))
            })
    }

    /// Every filter, by name (`virsh nwfilter-list`).
    pub fn list_all_nwfilters(&self) -> Result<Vec<NwFilter<'_>>, DriverError> {
        Ok(self
            .nwfilter_defs()?
            .into_values()
            .map(|def| NwFilter { conn: self, def })
            .collect())
    }

    /// `virsh nwfilter-binding-create` (libvirt: nwfilterBindingCreateXML). The filter and
    /// every filter it references must exist.
    pub fn create_nwfilter_binding_xml(
        &self,
        xml: &str,
        validate: bool,
    ) -> Result<NwFilterBinding<'_>, DriverError> {
        if validate {
            super::schema::validate_xml_against(xml, "nwfilterbinding.rng")?;
        }
        let def = BindingDef::parse(xml)?;
        file_name_ok("port dev", &def.portdev)?;
        let dir = self.binding_dir();
        config::make_dir(&dir)?;
        let _lock = ConfigLock::acquire(&dir)?;
        if config::read_small(&binding_path(&dir, &def.portdev))?.is_some() {
            return Err(DriverError::OperationFailed(format!(
                "binding '{}' already exists",
                def.portdev
            )));
        }
        let filters = self.nwfilter_defs()?;
        if let (_, Some(m)) = closure(&filters, &def.filter) {
            return Err(DriverError::Internal(format!(
                "referenced filter '{m}' is missing"
            )));
        }
        config::write_atomic(&binding_path(&dir, &def.portdev), def.to_xml().as_bytes())?;
        Ok(NwFilterBinding { conn: self, def })
    }

    pub fn lookup_nwfilter_binding_by_port_dev(
        &self,
        portdev: &str,
    ) -> Result<NwFilterBinding<'_>, DriverError> {
        self.binding_defs()?
            .into_iter()
            .find(|b| b.portdev == portdev)
            .map(|def| NwFilterBinding { conn: self, def })
            .ok_or_else(|| no_binding(portdev))
    }

    /// Every binding, by port dev (`virsh nwfilter-binding-list`).
    pub fn list_all_nwfilter_bindings(&self) -> Result<Vec<NwFilterBinding<'_>>, DriverError> {
        Ok(self
            .binding_defs()?
            .into_iter()
            .map(|def| NwFilterBinding { conn: self, def })
            .collect())
    }
}

/// `(stem, path, text)` of every `*.xml` in `dir` (none when it does not exist).
fn read_xml_dir(dir: &Path) -> Result<Vec<(String, PathBuf, String)>, DriverError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(DriverError::System {
                msg: format!("cannot open directory '{}'", dir.display()),
                err,
            });
        }
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".xml")) else {
            continue;
        };
        let path = e.path();
        if let Some(text) = config::read_small(&path)? {
            out.push((stem.to_string(), path, text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(dir: &Path) -> Connect {
        Connect::open(Some(&format!("qemu:///embed?root={}", dir.display()))).unwrap()
    }

    const U1: &str = "11111111-2222-3333-4444-555555555555";
    const U2: &str = "11111111-2222-3333-4444-666666666666";

    fn filter(name: &str, uuid: &str, refs: &[&str]) -> String {
        let r: String = refs
            .iter()
            .map(|r| format!("<filterref filter='{r}'/>"))
            .collect();
        format!("<filter name='{name}' chain='root'><uuid>{uuid}</uuid>{r}</filter>")
    }

    fn binding(port: &str, filter: &str) -> String {
        format!(
            "<filterbinding><owner><name>vm</name><uuid>{U1}</uuid></owner><portdev name='{port}'/><mac address='52:54:00:00:00:01'/><filterref filter='{filter}'/></filterbinding>"
        )
    }

    #[test]
    fn filters_follow_libvirts_rules() {
        let t = tempfile::tempdir().unwrap();
        let c = conn(t.path());
        assert!(c.list_all_nwfilters().unwrap().is_empty());
        c.define_nwfilter_xml(&filter("a", U1, &[]), false).unwrap();
        // Redefining with the same name and UUID replaces.
        c.define_nwfilter_xml(&filter("a", U1, &["b"]), false)
            .unwrap();
        let e = c
            .define_nwfilter_xml(&filter("a", U2, &[]), false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("operation failed: filter 'a' already exists with uuid {U1}")
        );
        let e = c
            .define_nwfilter_xml(&filter("z", U1, &[]), false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation failed: filter with same UUID but different name ('a') already exists"
        );
        // b -> a -> b would be a loop; so would a self reference.
        let e = c
            .define_nwfilter_xml(&filter("b", U2, &["a"]), false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation failed: filter would introduce a loop"
        );
        let e = c
            .define_nwfilter_xml(
                &filter("s", "11111111-2222-3333-4444-777777777777", &["s"]),
                false,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation failed: filter would introduce a loop"
        );
        c.define_nwfilter_xml(&filter("b", U2, &[]), false).unwrap();
        assert_eq!(
            c.lookup_nwfilter_by_uuid_string(&U2.to_uppercase())
                .unwrap()
                .name(),
            "b"
        );
        assert_eq!(
            c.lookup_nwfilter_by_name("nosuch").unwrap_err().to_string(),
            "Network filter not found: no nwfilter with matching name 'nosuch'"
        );
        // A binding needs its filters; then they are in use.
        let e = c
            .create_nwfilter_binding_xml(&binding("vnet0", "nosuch"), false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: referenced filter 'nosuch' is missing"
        );
        c.create_nwfilter_binding_xml(&binding("vnet0", "a"), false)
            .unwrap();
        let e = c
            .create_nwfilter_binding_xml(&binding("vnet0", "a"), false)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation failed: binding 'vnet0' already exists"
        );
        for name in ["a", "b"] {
            let e = c
                .lookup_nwfilter_by_name(name)
                .unwrap()
                .undefine()
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "Requested operation is not valid: nwfilter is in use"
            );
        }
        let b = c.lookup_nwfilter_binding_by_port_dev("vnet0").unwrap();
        assert_eq!(b.filter_name(), "a");
        b.delete().unwrap();
        assert_eq!(
            b.delete().unwrap_err().to_string(),
            "Network filter binding not found: no nwfilter binding for port dev 'vnet0'"
        );
        c.lookup_nwfilter_by_name("a").unwrap().undefine().unwrap();
        let names: Vec<String> = c
            .list_all_nwfilters()
            .unwrap()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(names, ["b"]);
        // Names never leave the store's directory.
        let e = c
            .define_nwfilter_xml(
                &filter("../x", "11111111-2222-3333-4444-888888888888", &[]),
                false,
            )
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid argument:"), "{e}");
        let e = c
            .create_nwfilter_binding_xml(&binding("../p", "b"), false)
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid argument:"), "{e}");
    }
}
