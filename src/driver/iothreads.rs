//! IOThreads added to and removed from a guest, live (QMP `object-add`/`object-del` of an
//! `iothread` object) and in its config (libvirt: qemuDomainAddIOThread,
//! qemuDomainDelIOThread, virDomainDriverAddIOThreadCheck, virDomainDriverDelIOThreadCheck).

use serde_json::json;

use super::DriverError;
use super::domain::Domain;
use super::hotplug::{AFFECT_CONFIG, AFFECT_LIVE, check_flags, qmp};
use crate::domain::DomainDef;
use crate::domain::model::IoThread;

/// The definition's IOThread ids, made explicit (libvirt fills `<iothreadids>` from
/// `<iothreads>` while parsing).
pub(crate) fn ids_mut(def: &mut DomainDef) -> &mut Vec<IoThread> {
    let count = def.iothreads.unwrap_or(0);
    def.iothreadids.get_or_insert_with(|| {
        (1..=count)
            .map(|id| IoThread {
                id,
                ..IoThread::default()
            })
            .collect()
    })
}

fn has(def: &DomainDef, id: u32) -> bool {
    match &def.iothreadids {
        Some(ids) => ids.iter().any(|t| t.id == id),
        None => (1..=def.iothreads.unwrap_or(0)).contains(&id),
    }
}

/// Add IOThread `id` to `def`, or libvirt's refusal.
pub fn add_to(def: &mut DomainDef, id: u32) -> Result<(), DriverError> {
    if id == 0 {
        return Err(DriverError::InvalidArg(
            "invalid value of 0 for iothread_id".into(),
        ));
    }
    if has(def, id) {
        return Err(DriverError::InvalidArg(format!(
            "an IOThread is already using iothread_id '{id}'"
        )));
    }
    let ids = ids_mut(def);
    ids.push(IoThread {
        id,
        ..IoThread::default()
    });
    def.iothreads = Some(def.iothreadids.as_ref().map_or(0, |v| v.len() as u32));
    Ok(())
}

/// Remove IOThread `id` from `def`, or libvirt's refusal.
pub fn remove_from(def: &mut DomainDef, id: u32) -> Result<(), DriverError> {
    if !has(def, id) {
        return Err(DriverError::InvalidArg(format!(
            "cannot find IOThread '{id}' in iothreadids list"
        )));
    }
    if let Some(d) = def
        .devices
        .disks
        .iter()
        .find(|d| d.driver.as_ref().and_then(|x| x.iothread) == Some(id))
    {
        return Err(DriverError::InvalidArg(format!(
            "cannot remove IOThread {id} since it is being used by disk '{}'",
            d.target.dev
        )));
    }
    let ids = ids_mut(def);
    ids.retain(|t| t.id != id);
    let n = ids.len() as u32;
    def.iothreads = (n > 0).then_some(n);
    if n == 0 {
        def.iothreadids = None;
    }
    Ok(())
}

impl Domain<'_> {
    /// `virDomainAddIOThread`.
    pub fn add_iothread(&self, id: u32, flags: u32) -> Result<(), DriverError> {
        self.change_iothreads(id, flags, true)
    }

    /// `virDomainDelIOThread`.
    pub fn del_iothread(&self, id: u32, flags: u32) -> Result<(), DriverError> {
        self.change_iothreads(id, flags, false)
    }

    fn change_iothreads(&self, id: u32, flags: u32, add: bool) -> Result<(), DriverError> {
        let function = if add {
            "qemuDomainAddIOThread"
        } else {
            "qemuDomainDelIOThread"
        };
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, function)?;
        let change = if add { add_to } else { remove_from };
        let impact = self.impact(flags)?;
        self.modify(
            impact,
            |def| {
                change(def, id)?;
                Ok(())
            },
            |lg| {
                change(&mut lg.def, id)?;
                let object = format!("iothread{id}");
                if add {
                    qmp(
                        &mut lg.guest,
                        "object-add",
                        Some(json!({ "qom-type": "iothread", "id": object })),
                    )?;
                } else {
                    qmp(&mut lg.guest, "object-del", Some(json!({ "id": object })))?;
                }
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(xml: &str) -> DomainDef {
        crate::domain::parse_unprepared(&format!(
            "<domain type='qemu'><name>t</name><memory>65536</memory>{xml}\
             <os><type>hvm</type></os></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn adding_and_removing_as_libvirt() {
        let mut d = def("<iothreads>2</iothreads>");
        add_to(&mut d, 5).unwrap();
        assert_eq!(d.iothreads, Some(3));
        let ids: Vec<u32> = d
            .iothreadids
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, [1, 2, 5]);
        assert_eq!(
            add_to(&mut d, 2).unwrap_err().to_string(),
            "invalid argument: an IOThread is already using iothread_id '2'"
        );
        assert!(add_to(&mut d, 0).is_err());
        remove_from(&mut d, 1).unwrap();
        assert_eq!(d.iothreads, Some(2));
        assert_eq!(
            remove_from(&mut d, 9).unwrap_err().to_string(),
            "invalid argument: cannot find IOThread '9' in iothreadids list"
        );
        let mut d = def(
            "<iothreads>1</iothreads><devices><disk type='file' device='disk'>\
             <driver name='qemu' iothread='1'/><source file='/a'/><target dev='vda'/></disk></devices>",
        );
        assert_eq!(
            remove_from(&mut d, 1).unwrap_err().to_string(),
            "invalid argument: cannot remove IOThread 1 since it is being used by disk 'vda'"
        );
    }
}
