//! One corpus of libvirt's `qemuxml2argvtest` layout (`NAME.xml` → `NAME.ARCH-latest.args` or
//! `.err`) checked against our command builder, case by case, with a verdict that says why a
//! case does not match. The conformance runner, its Markdown report and the benchmark share it,
//! so the figures they give are about the same code.
//!
//! Loading ([`load_cases`]) does all the file I/O; [`check_case`] is pure, so a benchmark can
//! time it alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::capabilities::qemu::QemuCaps;
use crate::conformance::harness::{
    case_input, run_case, run_case_swtpm, swtpm_err_run, swtpm_run_name,
};

/// A corpus directory and how to read it.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub dir: PathBuf,
    pub arch: String,
    /// libvirt's prepared documents (`qemuxml2xmloutdata`), preferred over the plain input.
    pub prepared: Option<PathBuf>,
}

/// One case with its expected outputs, read into memory.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name in reports; its files are named after `file`.
    pub name: String,
    pub file: String,
    /// For the second run libvirt makes of a few cases: the only TPM versions swtpm offers.
    pub swtpm: Option<&'static [&'static str]>,
    /// The domain XML, or why it could not be read.
    pub xml: Result<String, String>,
    pub want_args: Option<String>,
    pub want_err: Option<String>,
}

/// Why a case does not match, in a category shared by similar cases and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub category: String,
    pub reason: String,
}

/// What one case gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// `args` or `err`.
    pub ext: &'static str,
    /// What we produced, in the expected file's format.
    pub body: String,
    /// `None` when it matches.
    pub mismatch: Option<Mismatch>,
}

/// Category of cases where we fail and libvirt builds a command.
pub const WE_FAIL: &str = "we fail, libvirt builds a command";
/// Category of cases where libvirt fails and we build a command.
pub const LIBVIRT_FAILS: &str = "libvirt fails, we build a command";
/// Category of cases where both fail with different messages.
pub const OTHER_ERROR: &str = "both fail, with different messages";
/// Category of cases whose input could not be read.
pub const NO_INPUT: &str = "input unreadable";

/// The case names of `dir`: every `NAME.xml`, sorted.
pub fn case_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .filter_map(|n| n.strip_suffix(".xml").map(String::from))
        .collect();
    names.sort();
    Ok(names)
}

/// Every case of the corpus that has an expected `.args` or `.err` for its arch.
pub fn load_cases(corpus: &Corpus) -> io::Result<Vec<Case>> {
    let mut cases = Vec::new();
    for name in case_names(&corpus.dir)? {
        let stem = format!("{name}.{}-latest", corpus.arch);
        let want_args = fs::read_to_string(corpus.dir.join(format!("{stem}.args"))).ok();
        let mut want_err = fs::read_to_string(corpus.dir.join(format!("{stem}.err"))).ok();
        if want_args.is_none() && want_err.is_none() {
            continue;
        }
        let xml = case_input(&name, &corpus.arch, &corpus.dir, corpus.prepared.as_deref())
            .map_err(|e| format!("{name}.xml: {e}"));
        // A case with both files is run twice by libvirt: the `.err` comes from the run with
        // a restricted swtpm.
        if let (Some(versions), Some(_)) = (swtpm_err_run(&name), &want_args) {
            cases.push(Case {
                name: swtpm_run_name(&name, versions),
                file: name.clone(),
                swtpm: Some(versions),
                xml: xml.clone(),
                want_args: None,
                want_err: want_err.take(),
            });
        }
        cases.push(Case {
            file: name.clone(),
            name,
            swtpm: None,
            xml,
            want_args,
            want_err,
        });
    }
    Ok(cases)
}

/// Build the case's command (or error) and compare it with what libvirt expects.
pub fn check_case(case: &Case, arch: &str, caps: &QemuCaps) -> Outcome {
    let xml = match &case.xml {
        Ok(x) => x,
        Err(e) => {
            return Outcome {
                name: case.name.clone(),
                ext: "err",
                body: String::new(),
                mismatch: Some(Mismatch {
                    category: NO_INPUT.into(),
                    reason: e.clone(),
                }),
            };
        }
    };
    let (ext, body) = match case.swtpm {
        Some(versions) => run_case_swtpm(&case.file, arch, xml, caps, versions),
        None => run_case(&case.file, arch, xml, caps),
    };
    let mismatch = compare(ext, &body, case);
    Outcome {
        name: case.name.clone(),
        ext,
        body,
        mismatch,
    }
}

fn compare(ext: &str, body: &str, case: &Case) -> Option<Mismatch> {
    let ours = body.trim_end();
    match (ext, &case.want_args, &case.want_err) {
        ("args", Some(want), _) if want == body => None,
        ("err", _, Some(want)) if want == body => None,
        ("args", Some(want), _) => Some(args_mismatch(want, body)),
        ("args", None, Some(want)) => Some(Mismatch {
            category: LIBVIRT_FAILS.into(),
            reason: format!("libvirt: {}", code(&one_line(want))),
        }),
        (_, _, Some(want)) => Some(Mismatch {
            category: OTHER_ERROR.into(),
            reason: format!(
                "expected {}, ours {}",
                code(&one_line(want)),
                code(&one_line(ours))
            ),
        }),
        _ => Some(Mismatch {
            category: WE_FAIL.into(),
            reason: code(&one_line(ours)),
        }),
    }
}

/// Where two `.args` renderings first differ, word by word.
fn args_mismatch(want: &str, ours: &str) -> Mismatch {
    let w = split_args_file(want);
    let o = split_args_file(ours);
    let at = w.iter().zip(&o).take_while(|(a, b)| a == b).count();
    // The words before the binary are the environment; the binary is the first word that is
    // not NAME=VALUE.
    let binary_at = w.iter().position(|t| !is_env_word(t)).unwrap_or(w.len());
    let category = if at < binary_at {
        "arguments differ: environment".to_string()
    } else if at == binary_at {
        "arguments differ: binary".to_string()
    } else {
        match w[binary_at + 1..at.min(w.len())]
            .iter()
            .chain(w.get(at))
            .rev()
            .find(|t| t.starts_with('-'))
        {
            Some(opt) => format!("arguments differ at {}", code(opt)),
            None => "arguments differ before any option".to_string(),
        }
    };
    // argv numbering (the binary is argv[0]) for arguments; the environment by position.
    let pos = if at > binary_at {
        format!("argv[{}]", at - binary_at)
    } else {
        format!("word {at}")
    };
    let reason = match (w.get(at), o.get(at)) {
        (Some(a), Some(b)) => {
            let (a, b) = elide_common_prefix(a, b);
            format!("{pos}: expected {}, ours {}", code(&a), code(&b))
        }
        (Some(a), None) => format!("ours ends early, missing {}", code(&shorten(a))),
        (None, Some(b)) => format!("ours has more, first extra {}", code(&shorten(b))),
        // Same words, different layout (line breaks or quoting).
        (None, None) => "same words, different rendering".to_string(),
    };
    Mismatch { category, reason }
}

fn is_env_word(t: &str) -> bool {
    t.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The words of a rendered command, undoing libvirt's single quoting and line continuations.
pub fn split_args_file(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(e) => {
                    started = true;
                    cur.push(e);
                }
            },
            // The shell splits words on these only (a non-breaking space is a character).
            ' ' | '\t' | '\n' => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                started = true;
                cur.push(c);
            }
        }
    }
    if started {
        words.push(cur);
    }
    words
}

/// Longest value shown whole in a reason.
const MAX_SHOWN: usize = 160;

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_SHOWN {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_SHOWN).collect();
    format!("{head}…")
}

/// Two long values that differ late, each shown from a little before the difference.
fn elide_common_prefix(a: &str, b: &str) -> (String, String) {
    if a.chars().count() <= MAX_SHOWN && b.chars().count() <= MAX_SHOWN {
        return (a.to_string(), b.to_string());
    }
    let common = a
        .char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .map(|((i, x), _)| i + x.len_utf8())
        .last()
        .unwrap_or(0);
    // Keep some context before the first difference, on a char boundary.
    let keep_from = a[..common]
        .char_indices()
        .rev()
        .nth(30)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let cut = |s: &str| {
        let tail = &s[keep_from..];
        let t = shorten(tail);
        if keep_from > 0 { format!("…{t}") } else { t }
    };
    (cut(a), cut(b))
}

/// First line of a message (libvirt's are one line; ours should be too).
fn one_line(s: &str) -> String {
    let t = s.trim_end();
    let first = t.lines().next().unwrap_or("");
    if t.contains('\n') {
        shorten(&format!("{first} …"))
    } else {
        shorten(first)
    }
}

/// Inline Markdown code that survives backticks in the value.
pub fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_of_an_args_file() {
        let text = "A=1 \\\nB='' \\\n/usr/bin/q \\\n-x '{\"a\":\"it'\\''s\"}' \\\n-y a,b\n";
        assert_eq!(
            split_args_file(text),
            vec![
                "A=1",
                "B=",
                "/usr/bin/q",
                "-x",
                "{\"a\":\"it's\"}",
                "-y",
                "a,b"
            ]
        );
    }

    #[test]
    fn first_difference_names_its_option() {
        let m = args_mismatch(
            "A=1 \\\n/q \\\n-m 1 \\\n-x a,b\n",
            "A=1 \\\n/q \\\n-m 1 \\\n-x a\n",
        );
        assert_eq!(m.category, "arguments differ at `-x`");
        assert_eq!(m.reason, "argv[4]: expected `a,b`, ours `a`");
        let m = args_mismatch("A=1 \\\n/q \\\n-m 1\n", "A=2 \\\n/q \\\n-m 1\n");
        assert_eq!(m.category, "arguments differ: environment");
        let m = args_mismatch("A=1 \\\n/q \\\n-m 1\n", "A=1 \\\n/q \\\n-m 1 \\\n-S\n");
        assert_eq!(m.reason, "ours has more, first extra `-S`");
        let m = args_mismatch("A=1 \\\n/q \\\n-m 1 -S\n", "A=1 \\\n/q \\\n-m 1 \\\n-S\n");
        assert_eq!(m.reason, "same words, different rendering");
    }

    #[test]
    fn long_values_are_cut_near_the_difference() {
        let a = format!("{}X", "a".repeat(300));
        let b = format!("{}Y", "a".repeat(300));
        let (x, y) = elide_common_prefix(&a, &b);
        assert!(
            x.starts_with('…') && x.ends_with('X') && x.len() < 50,
            "{x}"
        );
        assert!(y.ends_with('Y'));
    }
}
