//! xml2argv speed: the whole x86_64-latest corpus of libvirt's `qemuxml2argvtest` (every case
//! with an `.args` or `.err`) through the conformance runner's code in one process: caps
//! replayed once, then per case parse + prepare + build + render + compare, as
//! `conformance xml2argv` does minus the file I/O. libvirt's own test binary takes ~0.6 s
//! for its corpus; the target here is a whole pass under 60 ms.
//! Run with `cargo bench --bench xml2argv`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use domdriver::capabilities::qemu::probe_replies;
use domdriver::conformance::xml2argv::{Corpus, check_case, load_cases};

fn main() {
    let data = std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-9.0.0")
        });
    let tests = data.join("tests");
    let corpus = Corpus {
        dir: tests.join("qemuxml2argvdata"),
        arch: "x86_64".into(),
        prepared: Some(tests.join("qemuxml2xmloutdata")),
    };
    let cases = load_cases(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e} (set LIBVIRT_TESTDATA)", corpus.dir.display()));
    let caps_file = tests.join("qemucapabilitiesdata/caps_8.0.0.x86_64.replies");
    let t = Instant::now();
    let caps =
        domdriver::runtime::block_on(probe_replies(&caps_file, "/usr/bin/qemu-system-x86_64"))
            .expect("replay caps_8.0.0.x86_64");
    let caps_time = t.elapsed();

    let rounds = 30;
    let mut passes: Vec<Duration> = Vec::with_capacity(rounds);
    let mut per_case = vec![Duration::MAX; cases.len()];
    let mut matched = 0;
    for round in 0..rounds {
        let start = Instant::now();
        for (i, case) in cases.iter().enumerate() {
            let t = Instant::now();
            let o = std::hint::black_box(check_case(case, &corpus.arch, &caps));
            per_case[i] = per_case[i].min(t.elapsed());
            if round == 0 && o.mismatch.is_none() {
                matched += 1;
            }
        }
        passes.push(start.elapsed());
    }
    passes.sort();
    per_case.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{} cases ({matched} match libvirt), parse + prepare + build + compare: whole corpus median {:.1} ms, best {:.1} ms, worst {:.1} ms over {rounds} passes; per case median {:.1} us, p90 {:.1} us, max {:.1} us; caps replay once {:.1} ms",
        cases.len(),
        ms(passes[passes.len() / 2]),
        ms(passes[0]),
        ms(*passes.last().unwrap()),
        us(per_case[per_case.len() / 2]),
        us(per_case[per_case.len() * 9 / 10]),
        us(*per_case.last().unwrap()),
        ms(caps_time),
    );
}
