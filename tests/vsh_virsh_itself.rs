//! virsh's own verbs and options through the real `vsh` binary: `echo`, `cd` and `pwd`
//! (in the shell and out of it), `-l/--log FILE`, and `sysinfo` on a host without DMI.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn vsh() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env_remove("VSH_DEFAULT_URI")
        .env_remove("LIBVIRT_DEFAULT_URI")
        .env_remove("VIRSH_DEFAULT_CONNECT_URI")
        .env_remove("VIRSH_LOG_FILE");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o = c.output().expect("vsh runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The shell fed `input` on stdin: (stdout, stderr).
fn shell(input: &str, dir: &Path) -> (String, String) {
    let mut child = vsh()
        .args(["-q", "-c", "qemu:///embed?root=/nonexistent/vsh-shell"])
        .env("HOME", dir)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Output into a pipe whose reader is gone: exit quietly, no panic.
fn closed_stdout(args: &[&str]) {
    let o = vsh()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            drop(c.stdout.take());
            c.wait_with_output()
        })
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
    assert_ne!(o.status.code(), Some(101), "{args:?}");
}

#[test]
fn echo_quotes_as_virsh() {
    let ok = |args: &[&str], out: &str| {
        let (code, o, e) = run(vsh().args(args));
        assert_eq!((code, o.as_str(), e.as_str()), (0, out, ""), "{args:?}");
    };
    ok(&["echo", "a", "b c"], "a b c\n");
    ok(&["-q", "echo", "a"], "a");
    ok(
        &["echo", "--shell", "a", "b c", "it's"],
        "a 'b c' 'it'\\''s'\n",
    );
    ok(&["echo", "--xml", "<a&b>"], "&lt;a&amp;b&gt;\n");
    ok(&["echo", "--split", "a,b,,c"], "a\nb,c\n\n");
    ok(&["echo", "--hi"], "hello\n");
    ok(&["echo", "--str", "x"], "x\n");
    ok(&["echo"], "\n");
    let (code, o, e) = run(vsh().args(["echo", "--err", "oops"]));
    assert_eq!((code, o.as_str(), e.as_str()), (0, "\n", "error: oops\n"));
    let (code, _, e) = run(vsh().args(["echo", "--shell", "--xml", "a"]));
    assert_eq!(code, 1);
    assert_eq!(
        e,
        "error: Options --shell and --xml are mutually exclusive\n"
    );
    let (_, o, _) = run(vsh().args(["echo", "--help"]));
    assert!(o.contains("NAME\n    echo - echo arguments."), "{o}");
    closed_stdout(&["echo", "hello"]);
}

#[test]
fn cd_and_pwd() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().canonicalize().unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let (code, o, e) = run(vsh().current_dir(&d).arg("pwd"));
    assert_eq!(
        (code, o, e),
        (0, format!("{}\n\n", d.display()), String::new())
    );
    let (code, _, e) = run(vsh().args(["cd", "/"]));
    assert_eq!(
        (code, e.as_str()),
        (1, "error: cd: command valid only in interactive mode\n")
    );
    // In the shell: cd changes what pwd prints; no directory means $HOME.
    let (o, e) = shell("pwd\ncd sub\npwd\ncd /nonexistent-dir\ncd\npwd\nquit\n", &d);
    assert_eq!(
        o,
        format!("{0}\n{0}/sub\n{0}\n", d.display()),
        "stderr: {e}"
    );
    assert_eq!(
        e,
        "error: cd: No such file or directory: /nonexistent-dir\n"
    );
    for v in ["cd", "pwd"] {
        let (_, o, _) = run(vsh().args([v, "--help"]));
        assert!(o.contains(&format!("NAME\n    {v} - ")), "{o}");
    }
    closed_stdout(&["pwd"]);
}

#[test]
fn sysinfo_without_dmi() {
    let ok_args = [
        "-c",
        "qemu:///embed?root=/nonexistent/vsh-sysinfo",
        "sysinfo",
    ];
    let expect = "error: failed to get sysinfo\nerror: unsupported configuration: Host SMBIOS information is not available\n";
    if !Path::new("/sys/class/dmi/id").exists() {
        let (code, o, e) = run(vsh().args(ok_args));
        assert_eq!((code, o.as_str(), e.as_str()), (1, "\n", expect));
        return;
    }
    // Hide DMI in a mount namespace of the command's own; skipped where that is not allowed.
    let bin = env!("CARGO_BIN_EXE_vsh");
    let script = format!(
        "mount -t tmpfs none /sys/class/dmi && exec {bin} {}",
        ok_args.join(" ")
    );
    let (code, o, e) = run(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    if e.contains("unshare:") || e.contains("mount:") {
        eprintln!("\n*** SKIPPED: cannot hide /sys/class/dmi: {e} ***\n");
        return;
    }
    assert_eq!((code, o.as_str(), e.as_str()), (1, "\n", expect));
}

#[test]
fn log_file_gets_errors() {
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("vsh.log");
    let logs = log.display().to_string();
    let uri = "qemu:///embed?root=/nonexistent/vsh-log";
    let (code, _, e) = run(vsh().args(["-l", &logs, "-c", uri, "domstate", "nope"]));
    assert_eq!(code, 1);
    assert!(e.starts_with("error: failed to get domain 'nope'\n"), "{e}");
    // Appends: a second run (through VIRSH_LOG_FILE) adds its own lines.
    let (code, _, _) = run(vsh()
        .env("VIRSH_LOG_FILE", &logs)
        .args(["-c", uri, "echo", "--err", "second"]));
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    for l in &lines {
        // [YYYY.MM.DD HH:MM:SS vsh PID] ERROR ...
        let (stamp, rest) = l.split_once("] ").unwrap();
        assert_eq!(
            stamp.len(),
            "[2026.12.06 16:30:00 vsh ".len() + stamp.rsplit(" ").next().unwrap().len(),
            "{l}"
        );
        assert!(stamp.contains(" vsh "), "{l}");
        assert!(rest.starts_with("ERROR "), "{l}");
    }
    assert_eq!(
        lines[0].split_once("] ").unwrap().1,
        "ERROR failed to get domain 'nope'"
    );
    assert_eq!(
        lines.last().unwrap().split_once("] ").unwrap().1,
        "ERROR second"
    );
    // With -d 0 the options are logged too.
    let (code, _, _) = run(vsh().args(["-d", "0", "-l", &logs, "echo", "x"]));
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.trim_end().ends_with("INFO echo: string(optdata): x"),
        "{text}"
    );
    let (code, _, e) = run(vsh().args(["-l", "/nonexistent/dir/vsh.log", "echo", "x"]));
    assert_eq!(
        (code, e.as_str()),
        (
            1,
            "error: failed to open the log file. check the log file path\n"
        )
    );
    let (_, o, _) = run(vsh().arg("--help"));
    assert!(o.contains("-l | --log=FILE"), "{o}");
}

/// `desc --edit` and `metadata --edit` through `$VISUAL`/`$EDITOR`, on a defined domain.
#[test]
fn desc_and_metadata_edit() {
    let t = tempfile::tempdir().unwrap();
    let uri = format!("qemu:///embed?root={}", t.path().join("r").display());
    let xml = t.path().join("vm.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>ed</name><description>old text</description>\
         <memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>",
    )
    .unwrap();
    let with = |visual: &str, args: &[&str]| {
        run(vsh()
            .env_remove("EDITOR")
            .env("VISUAL", visual)
            .env("TMPDIR", t.path())
            .args(["-c", &uri])
            .args(args))
    };
    let (code, _, e) = run(vsh().args(["-c", &uri, "define", &xml.display().to_string()]));
    assert_eq!(code, 0, "{e}");
    let ok = |r: (i32, String, String), out: &str| {
        assert_eq!((r.0, r.1.as_str(), r.2.as_str()), (0, out, ""));
    };
    ok(
        with("sed -i s/old/new/", &["desc", "ed", "--edit"]),
        "Domain description updated successfully\n\n",
    );
    ok(with("true", &["desc", "ed"]), "new text\n");
    ok(
        with("true", &["desc", "ed", "--edit"]),
        "Domain description not changed\n\n",
    );
    // EDITOR when VISUAL is unset; a title loses the newline editors add.
    let r = run(vsh()
        .env_remove("VISUAL")
        .env("EDITOR", "printf '%s\\n' 'A title' >")
        .env("TMPDIR", t.path())
        .args(["-c", &uri, "desc", "ed", "--title", "--edit"]));
    ok(r, "Domain title updated successfully\n\n");
    ok(with("true", &["desc", "ed", "--title"]), "A title\n");
    // A failing editor: libvirt's error, nothing changed, no temp file left.
    let (code, _, e) = with("false", &["desc", "ed", "--edit"]);
    assert_eq!(code, 1);
    assert!(
        e.starts_with(&format!(
            "error: internal error: Child process (sh -c 'false {}/vsh",
            t.path().display()
        )) && e.ends_with(".xml') unexpected exit status 1\n"),
        "{e}"
    );
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("vsh"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let ns = "http://example.org/ns/";
    let (code, _, e) = with("true", &["metadata", "ed", ns, "--edit"]);
    assert_eq!(
        (code, e.as_str()),
        (
            1,
            "error: namespace key is required when modifying metadata\n"
        )
    );
    ok(
        with("true", &["metadata", "ed", ns, "--key", "ex", "--edit"]),
        "Metadata not changed\n",
    );
    ok(
        with(
            "printf '%s' '<item n=\"1\"/>' >",
            &["metadata", "ed", ns, "--key", "ex", "--edit"],
        ),
        "Metadata modified\n\n",
    );
    ok(
        with("true", &["metadata", "ed", ns]),
        "<ex:item xmlns:ex=\"http://example.org/ns/\" n=\"1\"/>\n\n",
    );
    // What the editor sees now is that element; left as it is, nothing changes.
    ok(
        with("true", &["metadata", "ed", ns, "--key", "ex", "--edit"]),
        "Metadata not changed\n",
    );
    let (code, _, e) = with("true", &["metadata", "ed", ns, "--edit", "--remove"]);
    assert_eq!(
        (code, e.as_str()),
        (
            1,
            "error: Options --remove and --edit are mutually exclusive\n"
        )
    );
    // Read-only: editing is changing.
    let (code, _, e) = with("true", &["-r", "desc", "ed", "--edit"]);
    assert_eq!(code, 1);
    assert!(
        e.starts_with("error: Failed to set new domain description\n"),
        "{e}"
    );
    for v in ["desc", "metadata"] {
        let (_, o, _) = run(vsh().args([v, "--help"]));
        assert!(o.contains("--edit"), "{v}: {o}");
    }
}
