//! libvirt's rendering of a command as text (`virCommandToStringBuf` with line breaks), which is
//! the format of its `.args` test files.

/// Characters that make libvirt single-quote a word.
const SHELL_SPECIAL: &[char] = &[
    '\r', '\t', '\n', ' ', '!', '"', '#', '$', '&', '\'', '(', ')', '*', ';', '<', '>', '?', '[',
    '\\', ']', '^', '`', '{', '|', '}', '~',
];

/// Quote a word for a POSIX shell the way libvirt does: bare when harmless, otherwise in single
/// quotes with embedded quotes written as `'\''`.
pub fn shell_escape(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    if !s.contains(SHELL_SPECIAL) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Render env, binary and arguments with libvirt's line breaking: a break before every option
/// and before any non-option argument that follows the last option's value run.
pub fn render(env: &[(String, String)], binary: &str, args: &[String]) -> String {
    let mut out = String::new();
    for (k, v) in env {
        out.push_str(k);
        out.push('=');
        out.push_str(&shell_escape(v));
        out.push_str(" \\\n");
    }
    out.push_str(&shell_escape(binary));
    // last_opt[i]: some argument at or after i starts with '-'.
    let mut later_opt = vec![false; args.len() + 1];
    for i in (0..args.len()).rev() {
        later_opt[i] = later_opt[i + 1] || args[i].starts_with('-');
    }
    let mut seen_opt = false;
    for (i, a) in args.iter().enumerate() {
        let is_opt = a.starts_with('-');
        // Arguments are numbered from the binary (index 0), so args[0] is argument 1.
        let prev_onward_has_opt = if i == 0 {
            later_opt[0]
        } else {
            later_opt[i - 1]
        };
        let join = !is_opt && seen_opt && prev_onward_has_opt;
        if join {
            out.push(' ');
        } else {
            out.push_str(" \\\n");
        }
        out.push_str(&shell_escape(a));
        if is_opt {
            seen_opt = true;
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_escape(""), "''");
        assert_eq!(shell_escape("a,b=c/d:e.f"), "a,b=c/d:e.f");
        assert_eq!(shell_escape("{\"a\":1}"), "'{\"a\":1}'");
        assert_eq!(shell_escape("it's"), "'it'\\''s'");
        assert_eq!(shell_escape("a b"), "'a b'");
    }

    #[test]
    fn wrapping() {
        let env = vec![("A".to_string(), "".to_string())];
        let out = render(
            &env,
            "/usr/bin/q",
            &v(&["-m", "214", "-x", "y", "z", "-msg", "t"]),
        );
        assert_eq!(
            out,
            "A='' \\\n/usr/bin/q \\\n-m 214 \\\n-x y z \\\n-msg t\n"
        );
        // Trailing non-options: the first joins the last option, the rest get their own lines.
        let out = render(&[], "q", &v(&["-a", "b", "c", "d"]));
        assert_eq!(out, "q \\\n-a b \\\nc \\\nd\n");
    }
}
