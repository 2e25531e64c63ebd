//! What the examples share: a tiny `--flag value` parser and where to find a kernel.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// `--name value` pairs and bare `--switch`es; anything else is an error naming it.
pub struct Args(HashMap<String, Option<String>>);

impl Args {
    /// Parse the process arguments; `switches` are flags without a value.
    pub fn parse(usage: &str, switches: &[&str]) -> anyhow::Result<Args> {
        let mut m = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if a == "-h" || a == "--help" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = a.strip_prefix("--") else {
                anyhow::bail!("unexpected argument '{a}'\n{usage}");
            };
            if switches.contains(&name) {
                m.insert(name.to_string(), None);
            } else {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--{name} needs a value\n{usage}"))?;
                m.insert(name.to_string(), Some(v));
            }
        }
        Ok(Args(m))
    }

    /// `--name`, else environment variable `env`.
    pub fn get(&self, name: &str, env: &str) -> Option<String> {
        self.0
            .get(name)
            .cloned()
            .flatten()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The x86_64 boot kit the tests build (`cargo test --release --test fleet_guests` builds it
/// once): a Debian kernel and a busybox initramfs whose /init prints `DOMDRIVER-GUEST-UP` and
/// runs the script of a `domdriver.run=` kernel argument.
pub fn test_kit() -> Option<(PathBuf, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tmp/bootkit");
    let current = std::fs::read_to_string(root.join("current")).ok()?;
    let dir = std::fs::read_dir(&root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{}-kit", current.trim())))
                && p.join("initrd.gz").is_file()
        })?;
    Some((dir.join("vmlinuz"), dir.join("initrd.gz")))
}

/// An embedded connection rooted at `--root` (default `$TMPDIR/domdriver-examples`). The root
/// outlives the example so that the emulators probed on the first run stay cached.
pub fn connection(args: &Args) -> anyhow::Result<domdriver::Connect> {
    let root = args
        .get("root", "DOMDRIVER_EXAMPLE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("domdriver-examples"));
    let uri = format!("qemu:///embed?root={}", root.display());
    Ok(domdriver::Connect::open(Some(&uri))?)
}
