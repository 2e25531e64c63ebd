//! Several threads and processes acting on one connection's domains at once: racing defines
//! get libvirt's answers, listings during starts and stops are consistent, and guests started
//! and destroyed from many threads leave no process behind.

#[path = "common/guests.rs"]
mod guests;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use domdriver::Connect;
use domdriver::driver::domain::ListFlags;

fn uuid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

#[test]
fn racing_defines_of_one_name_with_different_uuids_one_wins() {
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    for round in 0..10u32 {
        let name = format!("race{round}");
        let barrier = Barrier::new(2);
        let results: Vec<Result<String, String>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2u32)
                .map(|t| {
                    let (uri, name, barrier) = (&uri, &name, &barrier);
                    s.spawn(move || {
                        // A connection per thread, as two programs would have.
                        let conn = Connect::open(Some(uri)).unwrap();
                        let xml = guests::small_xml(name, Some(&uuid(round * 2 + t)));
                        barrier.wait();
                        conn.define_domain_xml(&xml)
                            .map(|dom| dom.uuid_string())
                            .map_err(|e| e.to_string())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{results:?}");
        let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(
            lost,
            &format!(
                "operation failed: domain '{name}' already exists with uuid {}",
                won[0]
            )
        );
        let conn = Connect::open(Some(&uri)).unwrap();
        let dom = conn.lookup_domain_by_name(&name).unwrap();
        assert_eq!(&dom.uuid_string(), won[0], "the config is the winner's");
    }
}

#[test]
fn racing_identical_defines_both_succeed() {
    // libvirt: defining an existing inactive domain with the same UUID updates it.
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    let xml = guests::small_xml("same", Some(&uuid(7)));
    let barrier = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let conn = Connect::open(Some(&uri)).unwrap();
                barrier.wait();
                for _ in 0..5 {
                    let dom = conn.define_domain_xml(&xml).unwrap();
                    assert_eq!(dom.uuid_string(), uuid(7));
                }
            });
        }
    });
    let conn = Connect::open(Some(&uri)).unwrap();
    let all = conn.list_all_domains(ListFlags::ALL).unwrap();
    assert_eq!(all.len(), 1);
    assert!(conn.take_warnings().is_empty());
}

#[test]
fn racing_vsh_defines_one_wins() {
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    let files: Vec<_> = (0..2u32)
        .map(|i| {
            let f = d.path().join(format!("x{i}.xml"));
            std::fs::write(&f, guests::small_xml("vrace", Some(&uuid(100 + i)))).unwrap();
            f
        })
        .collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(env!("CARGO_BIN_EXE_vsh"))
                .args(["-c", &uri, "define"])
                .arg(f)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok: Vec<usize> = (0..2).filter(|i| outs[*i].status.success()).collect();
    assert_eq!(ok.len(), 1, "{outs:?}");
    let loser = &outs[1 - ok[0]];
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains(&format!(
            "error: operation failed: domain 'vrace' already exists with uuid {}",
            uuid(100 + ok[0] as u32)
        )),
        "{err}"
    );
}

/// The states a listing may show for "busy", started and destroyed over and over, and for
/// "idle", never started.
fn plausible(name: &str, state: &str) -> bool {
    match name {
        "idle" => state == "shut off (unknown)",
        _ => matches!(
            state,
            "running (booted)" | "paused (user)" | "shut off (destroyed)"
        ),
    }
}

#[test]
fn listing_while_guests_start_and_stop_is_consistent() {
    if !guests::have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    let conn = Connect::open(Some(&uri)).unwrap();
    let busy = conn
        .define_domain_xml(&guests::small_xml("busy", None))
        .unwrap();
    conn.define_domain_xml(&guests::small_xml("idle", None))
        .unwrap();
    // Warm up (probe cache, first files), so that "busy" has been destroyed once.
    busy.create_with_flags(true).unwrap();
    busy.destroy().unwrap();
    let mut guard = guests::KillOnDrop::default();
    let done = AtomicBool::new(false);
    let expected: BTreeSet<String> = ["busy", "idle"].map(String::from).into();
    let (lists, vsh_lists) = std::thread::scope(|s| {
        let lister = s.spawn(|| {
            let conn = Connect::open(Some(&uri)).unwrap();
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let all = conn.list_all_domains(ListFlags::ALL).expect("list");
                let names: BTreeSet<String> = all.iter().map(|d| d.name().to_string()).collect();
                assert_eq!(names, expected);
                for dom in &all {
                    let st = dom.state().expect("state of a listed domain");
                    assert!(
                        plausible(dom.name(), &st.to_string()),
                        "{}: {st}",
                        dom.name()
                    );
                    // A half-written status file would show as a live domain without
                    // its definition.
                    dom.xml_desc(Default::default())
                        .expect("XML of a listed domain");
                }
                // One read per domain: its id and state agree.
                for row in conn
                    .list_all_domains_with_state(ListFlags::ALL)
                    .expect("list")
                {
                    let st = row.state.to_string();
                    assert!(
                        plausible(row.domain.name(), &st),
                        "{}: {st}",
                        row.domain.name()
                    );
                    assert_eq!(
                        row.id.is_some(),
                        !st.starts_with("shut off"),
                        "{}: id {:?} but {st}",
                        row.domain.name(),
                        row.id
                    );
                }
                let w = conn.take_warnings();
                assert!(w.is_empty(), "{w:?}");
                n += 1;
            }
            n
        });
        let vsh_lister = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                let out = Command::new(env!("CARGO_BIN_EXE_vsh"))
                    .args(["-c", &uri, "list", "--all"])
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "{out:?}");
                assert!(out.stderr.is_empty(), "{out:?}");
                let rows: Vec<&str> = text.lines().skip(2).filter(|l| !l.is_empty()).collect();
                assert_eq!(rows.len(), 2, "{text}");
                for r in rows {
                    let cols: Vec<&str> = r.split_whitespace().collect();
                    assert!(
                        matches!(
                            cols.as_slice(),
                            [_, "busy" | "idle", "running" | "paused"]
                                | [_, "busy" | "idle", "shut", "off"]
                        ),
                        "{text}"
                    );
                }
                n += 1;
            }
            n
        });
        for i in 0..8 {
            let paused = i % 2 == 0;
            busy.create_with_flags(paused).unwrap();
            if let Some(p) = guests::guest_pid(conn.dirs(), "busy") {
                guard.0.push(p);
            }
            busy.destroy().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        (lister.join().unwrap(), vsh_lister.join().unwrap())
    });
    assert!(lists > 0 && vsh_lists > 0);
    eprintln!("{lists} listings and {vsh_lists} vsh listings during 8 starts and stops");
}

#[test]
fn twenty_guests_from_four_threads_leave_no_process() {
    if !guests::have_qemu() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let uri = guests::uri(d.path());
    let conn = Connect::open(Some(&uri)).unwrap();
    // Probe once before the threads race to the cache.
    let warm = conn
        .define_domain_xml(&guests::small_xml("warm", None))
        .unwrap();
    warm.create_with_flags(true).unwrap();
    warm.destroy().unwrap();
    warm.undefine().unwrap();
    let running = Barrier::new(4);
    let listed = Barrier::new(4);
    let started: Vec<(i32, i32)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let (conn, running, listed) = (&conn, &running, &listed);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut guard = guests::KillOnDrop::default();
                    let doms: Vec<_> = (0..5)
                        .map(|i| {
                            conn.define_domain_xml(&guests::small_xml(&format!("t{t}g{i}"), None))
                                .unwrap()
                        })
                        .collect();
                    for dom in &doms {
                        dom.create_with_flags(true).unwrap();
                        let pid = guests::guest_pid(conn.dirs(), dom.name()).unwrap();
                        guard.0.push(pid);
                        mine.push((pid, dom.id().unwrap().unwrap()));
                    }
                    running.wait();
                    if t == 0 {
                        let active = conn.list_all_domains(ListFlags::ACTIVE).unwrap();
                        assert_eq!(active.len(), 20);
                    }
                    listed.wait();
                    for dom in &doms {
                        dom.destroy().unwrap();
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(started.len(), 20);
    let ids: BTreeSet<i32> = started.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), 20, "every start got its own id: {started:?}");
    for (pid, _) in &started {
        assert!(!guests::alive(*pid), "QEMU {pid} is still there");
    }
    let root = d.path().display().to_string();
    assert_eq!(
        guests::processes_mentioning_after(&root, std::time::Duration::from_secs(5)),
        Vec::<i32>::new()
    );
    assert_eq!(
        guests::zombies_after(std::time::Duration::from_secs(2)),
        Vec::<i32>::new()
    );
    assert!(
        conn.list_all_domains(ListFlags::ACTIVE).unwrap().is_empty(),
        "all shut off"
    );
    // Nothing per start is left in the run and lib dirs: per guest its lock and its reason.
    let files = guests::state_files(d.path(), conn.dirs());
    let per_start: Vec<_> = files
        .iter()
        .filter(|p| {
            let s = p.to_string_lossy();
            s.contains("/domain-") || s.ends_with(".json")
        })
        .collect();
    assert!(per_start.is_empty(), "{per_start:?}");
}
