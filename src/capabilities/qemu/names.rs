//! What an emulator offers, as short lists for error messages: the machine types (with their
//! aliases) and the CPU models a domain may name.

use super::{Accel, CpuUsable, QemuCaps};

/// Most names an error message lists before it says how many more there are.
pub const LISTED: usize = 12;

/// `a, b, c` for the first [`LISTED`] names, then `... and N more`: one line, bounded length.
pub fn list_for_message(names: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = names.into_iter().collect();
    if names.is_empty() {
        return "none".to_string();
    }
    let mut out = names[..names.len().min(LISTED)].join(", ");
    if names.len() > LISTED {
        out.push_str(&format!(" and {} more", names.len() - LISTED));
    }
    out
}

/// A machine name ordered by its trailing version (`pc-q35-7.10` after `pc-q35-7.9`).
fn version_key(name: &str) -> (Vec<u32>, &str) {
    let (base, version) = match name.rfind(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let nums = version.split('.').filter_map(|p| p.parse().ok()).collect();
    (nums, base)
}

impl QemuCaps {
    /// The machine types of accelerator `accel` (the primary one's when it has none), in
    /// libvirt's order, aliases in parentheses: `pc-i440fx-8.0 (pc), pc-q35-8.0 (q35), ...`.
    pub fn machine_list(&self, accel: Accel) -> String {
        let machines = match self.accel(accel) {
            Some(a) if !a.machines.is_empty() => &a.machines[..],
            _ => self.primary_machines(),
        };
        // The aliased machines (`pc`, `q35`) first, the newest of the rest next.
        let mut named: Vec<&super::Machine> = machines.iter().collect();
        named.sort_by(|a, b| {
            b.alias
                .is_some()
                .cmp(&a.alias.is_some())
                .then_with(|| match a.alias {
                    Some(_) => std::cmp::Ordering::Equal,
                    None => version_key(&b.name).cmp(&version_key(&a.name)),
                })
        });
        list_for_message(named.iter().map(|m| match &m.alias {
            Some(a) => format!("{} ({a})", m.name),
            None => m.name.clone(),
        }))
    }

    /// The CPU models accelerator `accel` can run as they are (usable, or usability not
    /// reported), sorted; `None` when the emulator does not list CPU models.
    pub fn usable_cpu_models(&self, accel: Accel) -> Option<Vec<String>> {
        let cpus = self.accel(accel)?.cpus.as_ref()?;
        let mut names: Vec<String> = cpus
            .iter()
            .filter(|c| c.usable != CpuUsable::No)
            .map(|c| c.name.clone())
            .collect();
        names.sort();
        Some(names)
    }

    /// Whether accelerator `accel` knows CPU model `name` (usable or not); `true` when the
    /// emulator does not list CPU models, since then nothing can be said.
    pub fn knows_cpu_model(&self, accel: Accel, name: &str) -> bool {
        match self.accel(accel).and_then(|a| a.cpus.as_ref()) {
            Some(cpus) => cpus.iter().any(|c| c.name == name),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut() {
        let names = (0..20).map(|i| format!("m{i}"));
        assert_eq!(
            list_for_message(names),
            "m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11 and 8 more"
        );
        assert_eq!(list_for_message(["a".to_string()]), "a");
        assert_eq!(list_for_message(Vec::new()), "none");
    }
}
