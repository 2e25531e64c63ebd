//! QEMU firmware descriptors (`docs/interop/firmware.json` in QEMU): which firmware kinds
//! (BIOS, UEFI) serve a machine type, whether any of them needs SMM (secure boot), and the
//! executables they name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The parts of one descriptor that domain capabilities need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Descriptor {
    #[serde(default)]
    pub interface_types: Vec<String>,
    #[serde(default)]
    pub mapping: Mapping,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Mapping {
    #[serde(default)]
    pub device: String,
    /// Flash mappings: `split` (executable and varstore apart, the default), `combined`
    /// (one writable image) or `stateless` (no varstore at all).
    pub mode: Option<String>,
    /// Flash mappings name the executable here.
    pub executable: Option<FileRef>,
    /// Flash mappings in split mode: the image a guest's varstore is created from.
    pub nvram_template: Option<FileRef>,
    /// Memory mappings name it here.
    pub filename: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileRef {
    pub filename: String,
    #[serde(default = "raw")]
    pub format: String,
}

fn raw() -> String {
    "raw".to_string()
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Target {
    pub architecture: String,
    #[serde(default)]
    pub machines: Vec<String>,
}

impl Descriptor {
    /// The firmware executable this descriptor names, if any.
    pub fn executable(&self) -> Option<&str> {
        match self.mapping.device.as_str() {
            "flash" => self
                .mapping
                .executable
                .as_ref()
                .map(|e| e.filename.as_str()),
            "memory" => self.mapping.filename.as_deref(),
            _ => None,
        }
    }

    /// Whether it serves `machine` of libvirt architecture `arch`.
    pub fn serves(&self, machine: &str, arch: &str) -> bool {
        // Descriptors use QEMU's target names.
        let qarch = crate::capabilities::qemu::arch_to_qemu(arch);
        self.targets.iter().any(|t| {
            (t.architecture == qarch || t.architecture == arch)
                && t.machines.iter().any(|g| glob_match(g, machine))
        })
    }
}

/// The descriptor directories in QEMU's precedence order (later ones lose to earlier ones
/// with the same file name): the user's config, then the system's, then the distribution's.
pub fn default_dirs(privileged: bool) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if !privileged {
        let cfg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(c) = cfg {
            dirs.push(c.join("qemu/firmware"));
        }
    }
    dirs.push(PathBuf::from("/etc/qemu/firmware"));
    dirs.push(PathBuf::from("/usr/share/qemu/firmware"));
    dirs
}

/// Load the descriptors of `dirs` (highest precedence first): one per file name, the first
/// directory having it wins, an empty file masks the name, and the result is in file-name
/// order. Files that cannot be read or parsed are skipped with a warning each.
pub fn load(dirs: &[PathBuf]) -> (Vec<Descriptor>, Vec<String>) {
    let mut chosen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                chosen.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for path in chosen.values() {
        match read_one(path) {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    (out, warnings)
}

fn read_one(path: &Path) -> Result<Option<Descriptor>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// What the descriptors say about one machine type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supported {
    pub bios: bool,
    pub efi: bool,
    /// Some firmware for it requires SMM, i.e. secure boot is possible.
    pub secure: bool,
    /// Executables, each once, in descriptor order.
    pub executables: Vec<String>,
}

pub fn supported(descs: &[Descriptor], machine: &str, arch: &str) -> Supported {
    let mut s = Supported::default();
    for d in descs.iter().filter(|d| d.serves(machine, arch)) {
        for i in &d.interface_types {
            match i.as_str() {
                "bios" => s.bios = true,
                "uefi" => s.efi = true,
                _ => {}
            }
        }
        if d.features.iter().any(|f| f == "requires-smm") {
            s.secure = true;
        }
        if let Some(x) = d.executable()
            && !s.executables.iter().any(|e| e == x)
        {
            s.executables.push(x.to_string());
        }
    }
    s
}

/// Shell-style matching of `*`, `?` and `[...]` as descriptors use for machine types.
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(end) = p.iter().skip(1).position(|&c| c == ']').map(|i| i + 1) else {
                // An unclosed bracket is a literal character.
                return t.first() == Some(&'[') && glob_at(&p[1..], &t[1..]);
            };
            let Some(&c) = t.first() else {
                return false;
            };
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some('!') | Some('^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != neg && glob_at(&p[end + 1..], &t[1..])
        }
        Some(&c) => t.first() == Some(&c) && glob_at(&p[1..], &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("pc-q35-*", "pc-q35-7.2"));
        assert!(!glob_match("pc-q35-*", "pc-i440fx-7.2"));
        assert!(glob_match("virt-?.?", "virt-7.2"));
        assert!(glob_match("pc-[iq]*", "pc-q35-2.0"));
        assert!(!glob_match("pc-[!iq]*", "pc-q35-2.0"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("[", "x"));
    }
}
