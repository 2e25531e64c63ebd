//! Domain XML speed: parse + prepare (defaults, implicit devices, addresses) + format of every
//! libvirt `qemuxml2argvdata` input in one process, with libvirt's x86_64-latest caps;
//! reports the per-document median.
//! Run with `cargo bench --bench domain`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use domdriver::capabilities::qemu::probe_replies;
use domdriver::domain::{self, FormatFlags, PrepareOptions};

fn main() {
    let data = std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-9.0.0")
        });
    let dir = data.join("tests/qemuxml2argvdata");
    let mut docs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set LIBVIRT_TESTDATA)", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    docs.sort();
    let caps_file = data.join("tests/qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    let caps = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(probe_replies(&caps_file, "/usr/bin/qemu-system-x86_64"))
        .expect("replay caps_8.0.0.x86_64");
    let opts = PrepareOptions {
        host_arch: "x86_64".into(),
        emulator: None,
        canonicalize_machine: false,
        audio: Default::default(),
        tpm_versions: None,
        nvram_dir: None,
    };
    let flags = FormatFlags {
        inactive: true,
        secure: true,
    };
    let rounds = 20;
    let mut per_doc: Vec<Duration> = Vec::with_capacity(docs.len());
    let mut parsed = 0;
    let start = Instant::now();
    for doc in &docs {
        let mut best = Duration::MAX;
        for _ in 0..rounds {
            let t = Instant::now();
            if let Ok(def) = domain::parse(doc)
                && let Ok(def) = domain::prepare(def, &caps, &opts)
            {
                std::hint::black_box(def.to_xml(flags));
            }
            best = best.min(t.elapsed());
        }
        if domain::parse(doc).is_ok_and(|d| domain::prepare(d, &caps, &opts).is_ok()) {
            parsed += 1;
        }
        per_doc.push(best);
    }
    let total = start.elapsed();
    per_doc.sort();
    let median = per_doc[per_doc.len() / 2];
    let p90 = per_doc[per_doc.len() * 9 / 10];
    println!(
        "{} documents ({parsed} valid), parse + prepare + format: median {:.1} us, p90 {:.1} us, max {:.1} us (best of {rounds}); whole run {:.2} s",
        docs.len(),
        median.as_secs_f64() * 1e6,
        p90.as_secs_f64() * 1e6,
        per_doc.last().unwrap().as_secs_f64() * 1e6,
        total.as_secs_f64()
    );
}
