//! MAC addresses for interfaces that have none.
//!
//! libvirt draws a random `52:54:00:xx:xx:xx` at parse time and stores it. Without one QEMU
//! gives every NIC of a model the same address in every guest, so two guests joined by a socket
//! network could not tell each other apart. The address here is derived from the domain UUID
//! and the interface's position instead of drawn at random: this layer does no I/O, the result
//! is stored with the definition like libvirt's, and redefining the same domain gives the same
//! addresses.

use crate::domain::model::DomainDef;

/// FNV-1a over the domain UUID, the interface index and a retry counter.
fn derive(uuid: &[u8], index: usize, attempt: u32) -> [u8; 3] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = uuid
        .iter()
        .copied()
        .chain((index as u64).to_le_bytes())
        .chain(attempt.to_le_bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Fold the high bits in: the low bytes alone vary little between close inputs.
    let h = h ^ (h >> 32);
    [(h >> 16) as u8, (h >> 8) as u8, h as u8]
}

pub(super) fn assign_macs(def: &mut DomainDef) {
    let uuid = *def.uuid.as_bytes();
    let mut used: Vec<String> = def
        .devices
        .interfaces
        .iter()
        .filter_map(|n| n.mac.as_ref().map(|m| m.to_ascii_lowercase()))
        .collect();
    for (i, n) in def.devices.interfaces.iter_mut().enumerate() {
        if n.mac.is_some() {
            continue;
        }
        let mut attempt = 0;
        let mac = loop {
            let [a, b, c] = derive(&uuid, i, attempt);
            let m = format!("52:54:00:{a:02x}:{b:02x}:{c:02x}");
            if !used.contains(&m) {
                break m;
            }
            attempt += 1;
        };
        used.push(mac.clone());
        n.mac = Some(mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        let xml = "<domain type='qemu'><name>m</name><uuid>11111111-2222-3333-4444-555555555555</uuid>\
            <memory>1024</memory><os><type>hvm</type></os><devices>\
            <interface type='user'/><interface type='user'><mac address='52:54:00:00:00:01'/></interface>\
            <interface type='user'/></devices></domain>";
        let mut a = DomainDef::from_xml(xml).unwrap();
        let mut b = DomainDef::from_xml(xml).unwrap();
        assign_macs(&mut a);
        assign_macs(&mut b);
        let macs: Vec<_> = a
            .devices
            .interfaces
            .iter()
            .map(|n| n.mac.clone().unwrap())
            .collect();
        assert_eq!(macs[1], "52:54:00:00:00:01");
        assert_ne!(macs[0], macs[2]);
        assert!(macs[0].starts_with("52:54:00:"));
        assert_eq!(a, b);
    }
}
