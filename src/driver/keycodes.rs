//! Keys for `send-key`: virsh's codesets (`virKeycodeSet`), their symbolic names, and the
//! translation to QEMU's key numbers (`qnum`), which QMP `send-key` takes as
//! `{"type": "number"}` keys (libvirt: src/util/virkeycode.c, qemuDomainSendKey).
//!
//! The data is `keymaps.tsv`: one row per Linux key code, in ascending order, giving each
//! codeset's value for that key (0 where the codeset has none; `os_x` 255, its value for
//! key 0), and the Linux, macOS and Win32 names ("-" for none). It is the keycodemapdb
//! database libvirt 9.0 builds its tables from (qemu/keycodemapdb 5fbc7b0), with the
//! derived columns computed as keycodemapdb derives them: `xt_kbd` and `qnum` are AT set 1
//! with an `0xe0` prefix re-encoded as `0x100 | low` and `0x80 | low`.

use std::sync::OnceLock;

/// virsh's codesets, in `virKeycodeSet` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codeset {
    Linux,
    /// The same table as AT set 1 (libvirt: "XT is same as AT Set1").
    Xt,
    Atset1,
    Atset2,
    Atset3,
    OsX,
    XtKbd,
    Usb,
    Win32,
    Qnum,
}

/// Codeset names as virsh takes them (`--codeset`); `rfb` is `qnum`'s name before libvirt
/// 4.0 renamed it, still taken.
pub const CODESETS: &[&str] = &[
    "linux", "xt", "atset1", "atset2", "atset3", "os_x", "xt_kbd", "usb", "win32", "qnum", "rfb",
];

const ALL: [Codeset; 10] = [
    Codeset::Linux,
    Codeset::Xt,
    Codeset::Atset1,
    Codeset::Atset2,
    Codeset::Atset3,
    Codeset::OsX,
    Codeset::XtKbd,
    Codeset::Usb,
    Codeset::Win32,
    Codeset::Qnum,
];

impl Codeset {
    /// `virKeycodeSetTypeFromString`: exact names only.
    pub fn from_name(name: &str) -> Option<Codeset> {
        if name == "rfb" {
            return Some(Codeset::Qnum);
        }
        CODESETS[..ALL.len()]
            .iter()
            .position(|c| *c == name)
            .map(|i| ALL[i])
    }

    pub fn as_str(self) -> &'static str {
        CODESETS[ALL.iter().position(|c| *c == self).unwrap_or(0)]
    }

    /// This codeset's column in a row: (value column, name column).
    fn columns(self) -> (usize, Option<usize>) {
        match self {
            Codeset::Linux => (0, Some(0)),
            Codeset::OsX => (1, Some(1)),
            Codeset::Xt | Codeset::Atset1 => (2, None),
            Codeset::Atset2 => (3, None),
            Codeset::Atset3 => (4, None),
            Codeset::XtKbd => (5, None),
            Codeset::Usb => (6, None),
            Codeset::Win32 => (7, Some(2)),
            Codeset::Qnum => (8, None),
        }
    }
}

/// One key: values in the order linux, os_x, atset1, atset2, atset3, xt_kbd, usb, win32,
/// qnum; names linux, os_x, win32.
struct Key {
    values: [u32; 9],
    names: [Option<&'static str>; 3],
}

fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| parse_table(include_str!("keymaps.tsv")))
}

/// The rows of `keymaps.tsv`; a malformed row is a bug in the shipped data (a test reads
/// the whole table), so it is left out rather than taken as a key.
fn parse_table(text: &'static str) -> Vec<Key> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let f: Vec<&'static str> = l.split('\t').collect();
            if f.len() != 12 {
                return None;
            }
            let name = |s: &'static str| (s != "-").then_some(s);
            let mut values = [0u32; 9];
            for (v, s) in values.iter_mut().zip(&f[3..]) {
                *v = s.parse().ok()?;
            }
            Some(Key {
                values,
                names: [name(f[0]), name(f[1]), name(f[2])],
            })
        })
        .collect()
}

/// `virKeycodeValueFromString`: the value of the key named `name` (case matters) in
/// `codeset`; codesets without names have none.
pub fn value_from_name(codeset: Codeset, name: &str) -> Option<u32> {
    let (col, name_col) = codeset.columns();
    let name_col = name_col?;
    keys()
        .iter()
        .find(|k| k.names[name_col] == Some(name))
        .map(|k| k.values[col])
}

/// `virKeycodeValueTranslate`: the first key whose `from` value is `value`, in `to`.
pub fn translate(from: Codeset, to: Codeset, value: u32) -> Option<u32> {
    let (fc, _) = from.columns();
    let (tc, _) = to.columns();
    keys()
        .iter()
        .find(|k| k.values[fc] == value)
        .map(|k| k.values[tc])
}

/// A key given as a number, as virsh reads one: decimal, `0x` hex or `0` octal, at most
/// 0xffff (libvirt: virshKeyCodeGetInt).
pub fn parse_number(s: &str) -> Option<u32> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse::<u32>().ok()?
    };
    (v <= 0xffff).then_some(v)
}

/// A key argument of `send-key`: its number, else its name in `codeset` (libvirt: cmdSendKey).
pub fn keycode(codeset: Codeset, arg: &str) -> Option<u32> {
    parse_number(arg).or_else(|| value_from_name(codeset, arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_whole() {
        let text = include_str!("keymaps.tsv");
        let rows = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(keys().len(), rows);
        // Linux codes ascend, one row each.
        assert!(keys().windows(2).all(|w| w[0].values[0] < w[1].values[0]));
    }

    #[test]
    fn names_per_codeset() {
        assert_eq!(value_from_name(Codeset::Linux, "KEY_A"), Some(30));
        assert_eq!(value_from_name(Codeset::Linux, "key_a"), None);
        assert_eq!(value_from_name(Codeset::OsX, "ANSI_A"), Some(0));
        assert_eq!(value_from_name(Codeset::Win32, "VK_RETURN"), Some(0x0d));
        assert_eq!(value_from_name(Codeset::Atset1, "KEY_A"), None);
        assert_eq!(value_from_name(Codeset::Qnum, "KEY_A"), None);
    }

    #[test]
    fn translations_to_qnum() {
        let q = |c, v| translate(c, Codeset::Qnum, v);
        // 'a' in every codeset.
        assert_eq!(q(Codeset::Linux, 30), Some(0x1e));
        assert_eq!(q(Codeset::Xt, 0x1e), Some(0x1e));
        assert_eq!(q(Codeset::Atset2, 0x1c), Some(0x1e));
        assert_eq!(q(Codeset::Atset3, 0x1c), Some(0x1e));
        assert_eq!(q(Codeset::OsX, 0), Some(0x1e));
        assert_eq!(q(Codeset::Usb, 4), Some(0x1e));
        assert_eq!(q(Codeset::Win32, 0x41), Some(0x1e));
        // Right Ctrl: an 0xe0-prefixed key, re-encoded.
        assert_eq!(q(Codeset::Linux, 97), Some(0x9d));
        assert_eq!(q(Codeset::Atset1, 0xe01d), Some(0x9d));
        assert_eq!(q(Codeset::XtKbd, 0x11d), Some(0x9d));
        assert_eq!(q(Codeset::Linux, 0xfff0), None);
    }

    #[test]
    fn codesets_and_numbers() {
        assert_eq!(Codeset::from_name("os_x"), Some(Codeset::OsX));
        assert_eq!(Codeset::from_name("rfb"), Some(Codeset::Qnum));
        assert_eq!(Codeset::Qnum.as_str(), "qnum");
        assert_eq!(Codeset::from_name("LINUX"), None);
        assert_eq!(Codeset::XtKbd.as_str(), "xt_kbd");
        assert_eq!(parse_number("28"), Some(28));
        assert_eq!(parse_number("0x1c"), Some(28));
        assert_eq!(parse_number("034"), Some(28));
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("0x10000"), None);
        assert_eq!(parse_number("-1"), None);
        assert_eq!(keycode(Codeset::Linux, "KEY_ENTER"), Some(28));
        assert_eq!(keycode(Codeset::Usb, "KEY_ENTER"), None);
    }
}
