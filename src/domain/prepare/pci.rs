//! PCI topology and slot allocation, kept apart from the device model so it can be tested on
//! its own. [`Topology`] knows the buses (one per PCI controller), which slots and functions
//! are in use, and what each bus accepts; [`Topology::place`] finds the address libvirt would
//! pick for one device.

use std::collections::BTreeMap;

/// How a device attaches to PCI: what kind of bus port it can be plugged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    /// A PCI Express endpoint: on q35 it gets slot 0 of its own root port; on i440fx any
    /// conventional slot.
    Pcie,
    /// A conventional PCI device: pci-root, pci-bridge or pcie-pci-bridge slots.
    Pci,
    /// pcie-root-port: on pcie-root, functions of a slot filled one after another.
    RootPort,
    /// pci-bridge: behind pci-root, another pci-bridge or a dmi-to-pci-bridge.
    PciBridge,
    /// pcie-pci-bridge: slot 0 of a root port.
    PciePciBridge,
    /// dmi-to-pci-bridge: on pcie-root.
    DmiBridge,
    /// pcie-switch-upstream-port: slot 0 of a root port or downstream port.
    UpstreamPort,
    /// pcie-switch-downstream-port: slots of an upstream port.
    DownstreamPort,
    /// pxb / pxb-pcie: on the root bus.
    Expander,
}

/// One PCI bus, i.e. what one PCI controller provides.
#[derive(Debug, Clone)]
pub struct Bus {
    pub index: u32,
    pub model: String,
    /// Bit i set = function i of that slot in use.
    pub used: [u8; 32],
    /// Bit s set = slot s holds root ports, whose free functions later root ports may take.
    pub aggregate: u32,
}

impl Bus {
    pub fn new(index: u32, model: &str) -> Bus {
        Bus {
            index,
            model: model.to_string(),
            used: [0; 32],
            aggregate: 0,
        }
    }

    /// Slots devices may be placed in: the host bridge owns slot 0 of the roots, bridges have
    /// no slot 0 (it is reserved for SHPC), ports have only slot 0.
    pub fn slot_range(&self) -> (u32, u32) {
        match self.model.as_str() {
            "pci-root" | "pcie-root" => (1, 31),
            "pci-bridge" | "pcie-to-pci-bridge" | "pci-expander-bus" => (1, 31),
            // The DMI bridge has no SHPC, so its slot 0 is usable.
            "dmi-to-pci-bridge" => (0, 31),
            "pcie-root-port" | "pcie-switch-downstream-port" | "pcie-expander-bus" => (0, 0),
            "pcie-switch-upstream-port" => (0, 31),
            _ => (1, 31),
        }
    }

    /// Whether a device connecting as `c` may be auto-placed on this bus.
    pub fn accepts(&self, c: Conn, q35: bool) -> bool {
        let m = self.model.as_str();
        match c {
            Conn::Pcie if q35 => {
                matches!(m, "pcie-root-port" | "pcie-switch-downstream-port")
            }
            Conn::Pcie | Conn::Pci => matches!(
                m,
                "pci-root" | "pci-bridge" | "pcie-to-pci-bridge" | "pci-expander-bus"
            ),
            Conn::RootPort => matches!(m, "pcie-root" | "pcie-expander-bus"),
            Conn::PciBridge => matches!(
                m,
                "pci-root" | "pci-bridge" | "dmi-to-pci-bridge" | "pci-expander-bus"
            ),
            Conn::PciePciBridge | Conn::UpstreamPort => {
                matches!(m, "pcie-root-port" | "pcie-switch-downstream-port")
            }
            Conn::DmiBridge => m == "pcie-root",
            Conn::DownstreamPort => m == "pcie-switch-upstream-port",
            Conn::Expander => matches!(m, "pci-root" | "pcie-root"),
        }
    }
}

/// A PCI address on domain 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddr {
    pub bus: u32,
    pub slot: u32,
    pub function: u32,
}

impl std::fmt::Display for PciAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "0000:{:02x}:{:02x}.{:x}",
            self.bus, self.slot, self.function
        )
    }
}

/// Why a device could not be placed: the controller libvirt would add to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    RootPort,
    PciBridge,
    PciePciBridge,
}

/// All PCI buses of a domain.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub buses: BTreeMap<u32, Bus>,
    pub q35: bool,
}

impl Topology {
    pub fn new(q35: bool) -> Topology {
        Topology {
            q35,
            ..Default::default()
        }
    }

    pub fn add_bus(&mut self, index: u32, model: &str) {
        self.buses.insert(index, Bus::new(index, model));
    }

    pub fn is_used(&self, a: PciAddr) -> bool {
        self.buses.get(&a.bus).is_some_and(|b| {
            a.slot < 32 && a.function < 8 && b.used[a.slot as usize] & (1 << a.function) != 0
        })
    }

    /// Mark an address as taken; libvirt's message when it already was.
    pub fn reserve(&mut self, a: PciAddr) -> Result<(), String> {
        if a.slot >= 32 {
            return Err(format!(
                "XML error: Invalid PCI address slot='0x{:x}', must be <= 0x1F",
                a.slot
            ));
        }
        if a.function >= 8 {
            return Err(format!(
                "XML error: Invalid PCI address function=0x{:x}, must be <= 7",
                a.function
            ));
        }
        if self.is_used(a) {
            return Err(format!(
                "XML error: Attempted double use of PCI Address {a}"
            ));
        }
        // An address on a bus we do not know (yet) is still reserved, so that a bus added
        // later does not hand it out twice.
        let q35 = self.q35;
        let bus = self
            .buses
            .entry(a.bus)
            .or_insert_with(|| Bus::new(a.bus, if q35 { "pcie-root-port" } else { "pci-bridge" }));
        bus.used[a.slot as usize] |= 1 << a.function;
        Ok(())
    }

    /// Reserve the first fully free slot on `bus` at or after `from`, function `function`.
    pub fn reserve_slot_on(&mut self, bus: u32, from: u32, function: u32) -> Option<PciAddr> {
        let b = self.buses.get(&bus)?;
        let (lo, hi) = b.slot_range();
        let slot = (lo.max(from)..=hi).find(|&s| b.used[s as usize] == 0)?;
        let a = PciAddr {
            bus,
            slot,
            function,
        };
        self.reserve(a).ok()?;
        Some(a)
    }

    /// Find and reserve an address for a device connecting as `c`, or say which controller is
    /// missing.
    pub fn place(&mut self, c: Conn) -> Result<PciAddr, Need> {
        if c == Conn::RootPort {
            // Root ports share slots: the lowest slot that is either free or already holds
            // root ports with a function to spare.
            let found = self
                .buses
                .values()
                .filter(|b| b.accepts(c, self.q35))
                .find_map(|b| {
                    let (lo, hi) = b.slot_range();
                    (lo..=hi).find_map(|s| {
                        let used = b.used[s as usize];
                        let shared = b.aggregate & (1 << s) != 0 && used != 0xff;
                        (used == 0 || shared).then(|| (b.index, s, used.trailing_ones()))
                    })
                });
            if let Some((bus, slot, function)) = found {
                let a = PciAddr {
                    bus,
                    slot,
                    function,
                };
                if self.reserve(a).is_ok() {
                    self.mark_aggregate(a);
                    return Ok(a);
                }
            }
        }
        let q35 = self.q35;
        let candidates: Vec<u32> = self
            .buses
            .values()
            .filter(|b| b.accepts(c, q35))
            .map(|b| b.index)
            .collect();
        for bus in candidates {
            if let Some(a) = self.reserve_slot_on(bus, 0, 0) {
                if c == Conn::RootPort {
                    self.mark_aggregate(a);
                }
                return Ok(a);
            }
        }
        Err(match c {
            Conn::Pcie if q35 => Need::RootPort,
            Conn::PciePciBridge | Conn::UpstreamPort => Need::RootPort,
            Conn::Pci if q35 => Need::PciePciBridge,
            _ => Need::PciBridge,
        })
    }

    /// Record that a root port sits in this slot, so its other functions are for root ports.
    pub fn mark_aggregate(&mut self, a: PciAddr) {
        if let Some(b) = self.buses.get_mut(&a.bus)
            && a.slot < 32
        {
            b.aggregate |= 1 << a.slot;
        }
    }

    /// Functions in use in a slot.
    pub fn functions(&self, bus: u32, slot: u32) -> u8 {
        self.buses
            .get(&bus)
            .and_then(|b| b.used.get(slot as usize).copied())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(bus: u32, slot: u32, function: u32) -> PciAddr {
        PciAddr {
            bus,
            slot,
            function,
        }
    }

    #[test]
    fn i440fx_first_free_slot() {
        let mut t = Topology::new(false);
        t.add_bus(0, "pci-root");
        t.reserve(a(0, 1, 0)).unwrap();
        t.reserve(a(0, 2, 0)).unwrap();
        assert_eq!(t.place(Conn::Pci), Ok(a(0, 3, 0)));
        assert_eq!(t.place(Conn::Pcie), Ok(a(0, 4, 0)));
    }

    #[test]
    fn i440fx_full_needs_bridge() {
        let mut t = Topology::new(false);
        t.add_bus(0, "pci-root");
        for s in 1..32 {
            t.reserve(a(0, s, 0)).unwrap();
        }
        assert_eq!(t.place(Conn::Pci), Err(Need::PciBridge));
        t.add_bus(1, "pci-bridge");
        assert_eq!(t.place(Conn::Pci), Ok(a(1, 1, 0)));
    }

    #[test]
    fn q35_endpoint_needs_root_port_and_ports_share_slots() {
        let mut t = Topology::new(true);
        t.add_bus(0, "pcie-root");
        assert_eq!(t.place(Conn::Pcie), Err(Need::RootPort));
        assert_eq!(t.place(Conn::Pci), Err(Need::PciePciBridge));
        assert_eq!(t.place(Conn::RootPort), Ok(a(0, 1, 0)));
        assert_eq!(t.place(Conn::RootPort), Ok(a(0, 1, 1)));
        t.add_bus(1, "pcie-root-port");
        assert_eq!(t.place(Conn::Pcie), Ok(a(1, 0, 0)));
        assert_eq!(t.place(Conn::Pcie), Err(Need::RootPort));
    }

    #[test]
    fn double_use_is_libvirts_error() {
        let mut t = Topology::new(false);
        t.add_bus(0, "pci-root");
        t.reserve(a(0, 3, 0)).unwrap();
        assert_eq!(
            t.reserve(a(0, 3, 0)).unwrap_err(),
            "XML error: Attempted double use of PCI Address 0000:00:03.0"
        );
    }
}
