//! Keys for `send-key`: the `linux` codeset (names and numbers of the Linux input layer)
//! mapped to QEMU's key names (`QKeyCode`), which QMP `send-key` takes as they are.
//! Only the keys of a standard PC keyboard are known; other names are refused.

/// (Linux name, Linux number, QEMU qcode).
const KEYS: &[(&str, u32, &str)] = &[
    ("KEY_ESC", 1, "esc"),
    ("KEY_1", 2, "1"),
    ("KEY_2", 3, "2"),
    ("KEY_3", 4, "3"),
    ("KEY_4", 5, "4"),
    ("KEY_5", 6, "5"),
    ("KEY_6", 7, "6"),
    ("KEY_7", 8, "7"),
    ("KEY_8", 9, "8"),
    ("KEY_9", 10, "9"),
    ("KEY_0", 11, "0"),
    ("KEY_MINUS", 12, "minus"),
    ("KEY_EQUAL", 13, "equal"),
    ("KEY_BACKSPACE", 14, "backspace"),
    ("KEY_TAB", 15, "tab"),
    ("KEY_Q", 16, "q"),
    ("KEY_W", 17, "w"),
    ("KEY_E", 18, "e"),
    ("KEY_R", 19, "r"),
    ("KEY_T", 20, "t"),
    ("KEY_Y", 21, "y"),
    ("KEY_U", 22, "u"),
    ("KEY_I", 23, "i"),
    ("KEY_O", 24, "o"),
    ("KEY_P", 25, "p"),
    ("KEY_LEFTBRACE", 26, "bracket_left"),
    ("KEY_RIGHTBRACE", 27, "bracket_right"),
    ("KEY_ENTER", 28, "ret"),
    ("KEY_LEFTCTRL", 29, "ctrl"),
    ("KEY_A", 30, "a"),
    ("KEY_S", 31, "s"),
    ("KEY_D", 32, "d"),
    ("KEY_F", 33, "f"),
    ("KEY_G", 34, "g"),
    ("KEY_H", 35, "h"),
    ("KEY_J", 36, "j"),
    ("KEY_K", 37, "k"),
    ("KEY_L", 38, "l"),
    ("KEY_SEMICOLON", 39, "semicolon"),
    ("KEY_APOSTROPHE", 40, "apostrophe"),
    ("KEY_GRAVE", 41, "grave_accent"),
    ("KEY_LEFTSHIFT", 42, "shift"),
    ("KEY_BACKSLASH", 43, "backslash"),
    ("KEY_Z", 44, "z"),
    ("KEY_X", 45, "x"),
    ("KEY_C", 46, "c"),
    ("KEY_V", 47, "v"),
    ("KEY_B", 48, "b"),
    ("KEY_N", 49, "n"),
    ("KEY_M", 50, "m"),
    ("KEY_COMMA", 51, "comma"),
    ("KEY_DOT", 52, "dot"),
    ("KEY_SLASH", 53, "slash"),
    ("KEY_RIGHTSHIFT", 54, "shift_r"),
    ("KEY_KPASTERISK", 55, "kp_multiply"),
    ("KEY_LEFTALT", 56, "alt"),
    ("KEY_SPACE", 57, "spc"),
    ("KEY_CAPSLOCK", 58, "caps_lock"),
    ("KEY_F1", 59, "f1"),
    ("KEY_F2", 60, "f2"),
    ("KEY_F3", 61, "f3"),
    ("KEY_F4", 62, "f4"),
    ("KEY_F5", 63, "f5"),
    ("KEY_F6", 64, "f6"),
    ("KEY_F7", 65, "f7"),
    ("KEY_F8", 66, "f8"),
    ("KEY_F9", 67, "f9"),
    ("KEY_F10", 68, "f10"),
    ("KEY_NUMLOCK", 69, "num_lock"),
    ("KEY_SCROLLLOCK", 70, "scroll_lock"),
    ("KEY_F11", 87, "f11"),
    ("KEY_F12", 88, "f12"),
    ("KEY_RIGHTCTRL", 97, "ctrl_r"),
    ("KEY_SYSRQ", 99, "sysrq"),
    ("KEY_RIGHTALT", 100, "alt_r"),
    ("KEY_HOME", 102, "home"),
    ("KEY_UP", 103, "up"),
    ("KEY_PAGEUP", 104, "pgup"),
    ("KEY_LEFT", 105, "left"),
    ("KEY_RIGHT", 106, "right"),
    ("KEY_END", 107, "end"),
    ("KEY_DOWN", 108, "down"),
    ("KEY_PAGEDOWN", 109, "pgdn"),
    ("KEY_INSERT", 110, "insert"),
    ("KEY_DELETE", 111, "delete"),
    ("KEY_PAUSE", 119, "pause"),
    ("KEY_LEFTMETA", 125, "meta_l"),
    ("KEY_RIGHTMETA", 126, "meta_r"),
    ("KEY_COMPOSE", 127, "menu"),
];

/// The codesets virsh knows (`virKeycodeSet`); this driver translates `linux` only.
pub const CODESETS: &[&str] = &[
    "linux", "xt", "atset1", "atset2", "atset3", "os_x", "xt_kbd", "win32", "usb", "qnum", "rfb",
];

/// The QEMU key name of Linux key `key` (a `KEY_*` name or its number).
pub fn linux_to_qcode(key: &str) -> Option<&'static str> {
    let by_number = key.parse::<u32>().ok().or_else(|| {
        key.strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    });
    KEYS.iter()
        .find(|(n, num, _)| match by_number {
            Some(v) => *num == v,
            None => n.eq_ignore_ascii_case(key),
        })
        .map(|(_, _, q)| *q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(linux_to_qcode("KEY_A"), Some("a"));
        assert_eq!(linux_to_qcode("30"), Some("a"));
        assert_eq!(linux_to_qcode("0x1c"), Some("ret"));
        assert_eq!(linux_to_qcode("KEY_NOPE"), None);
    }
}
