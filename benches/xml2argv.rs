//! xml2argv speed: the whole x86_64-latest corpus of libvirt's `qemuxml2argvtest` (every case
//! with an `.args` or `.err`) through the conformance runner's code in one process: caps
//! replayed once, then per case parse + prepare + build + render + compare, as
//! `conformance xml2argv` does minus the file I/O. libvirt's own test binary takes ~0.6 s
//! for its corpus; the target here is a whole pass under 60 ms.
//! Run with `cargo bench --bench xml2argv`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use domdriver::capabilities::qemu::{QemuCaps, probe_replies};
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
    let phases = phase_breakdown(&cases, &caps);
    passes.sort();
    per_case.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // On a shared machine the best figures are the ones least disturbed by other processes.
    let sum_best: Duration = per_case.iter().sum();
    println!(
        "{} cases ({matched} match libvirt), parse + prepare + build + compare: whole corpus median {:.1} ms, best {:.1} ms, worst {:.1} ms over {rounds} passes, sum of per-case bests {:.1} ms; per case median {:.1} us, p90 {:.1} us, max {:.1} us; caps replay once {:.1} ms",
        cases.len(),
        ms(passes[passes.len() / 2]),
        ms(passes[0]),
        ms(*passes.last().unwrap()),
        ms(sum_best),
        us(per_case[per_case.len() / 2]),
        us(per_case[per_case.len() * 9 / 10]),
        us(*per_case.last().unwrap()),
        ms(caps_time),
    );
    println!(
        "one pass by phase: parse {:.1} ms (XML tree {:.1}, model {:.1}, validate {:.1}), prepare {:.1} ms, build {:.1} ms, render {:.1} ms, compare {:.1} ms",
        ms(phases[5] + phases[6] + phases[7]),
        ms(phases[5]),
        ms(phases[6]),
        ms(phases[7]),
        ms(phases[1]),
        ms(phases[2]),
        ms(phases[3]),
        ms(phases[4]),
    );
}

/// Where a pass spends its time: the harness's steps timed one by one (best of 10 passes each),
/// for profiling.
fn phase_breakdown(
    cases: &[domdriver::conformance::xml2argv::Case],
    caps: &QemuCaps,
) -> [Duration; 8] {
    use domdriver::conformance::harness::{case_context, prepare_options};
    let mut best = [Duration::MAX; 8];
    for _ in 0..10 {
        let mut t = [Duration::ZERO; 8];
        for case in cases {
            let Ok(xml) = &case.xml else { continue };
            let s = Instant::now();
            let tree = domdriver::domain::xml::parse_document(xml);
            t[5] += s.elapsed();
            let Ok(tree) = tree else { continue };
            let s = Instant::now();
            let def = domdriver::domain::DomainDef::from_node(&tree);
            t[6] += s.elapsed();
            let Ok(def) = def else { continue };
            let s = Instant::now();
            let ok = domdriver::domain::validate::validate(&def);
            t[7] += s.elapsed();
            if ok.is_err() {
                continue;
            }
            let s = Instant::now();
            let def = domdriver::domain::prepare(def, caps, &prepare_options(&case.file, "x86_64"));
            let Ok(mut def) = def else {
                t[1] += s.elapsed();
                continue;
            };
            domdriver::domain::prepare::assign_aliases(&mut def);
            t[1] += s.elapsed();
            let s = Instant::now();
            let cmd = domdriver::xml2argv::build(&def, caps, &case_context(&case.file, &def));
            t[2] += s.elapsed();
            let Ok(cmd) = cmd else { continue };
            let s = Instant::now();
            let text = cmd.to_args_file();
            t[3] += s.elapsed();
            let s = Instant::now();
            std::hint::black_box(case.want_args.as_deref() == Some(text.as_str()));
            t[4] += s.elapsed();
        }
        for i in 0..8 {
            best[i] = best[i].min(t[i]);
        }
    }
    best
}
