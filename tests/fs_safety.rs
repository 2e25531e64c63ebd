//! File-system safety: hostile domain names never become paths, our directories and files are
//! private, planted symlinks are refused rather than followed, and a config write that fails
//! (file size limit, full disk, read-only dir) leaves the previous config intact.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use domdriver::Connect;
use domdriver::driver::Dirs;
use domdriver::driver::status::{GuestStatus, is_same_live_process};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";
const UUID: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fs")
        .tempdir_in("/tmp")
        .unwrap()
}

fn uri(root: &Path) -> String {
    format!("qemu:///embed?root={}", root.display())
}

fn xml(name: &str, description: &str) -> String {
    format!(
        "<domain type='qemu'><name>{name}</name><uuid>{UUID}</uuid>\
         <description>{description}</description><memory unit='MiB'>64</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )
}

fn vsh(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vsh"));
    c.env_remove("VSH_DEFAULT_URI").arg("-c").arg(uri(root));
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every path under `dir`, for "nothing was created" checks.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_names_are_refused_by_vsh_before_any_path_exists() {
    let t = tmp();
    let root = t.path().join("root");
    let files = t.path().join("xml");
    std::fs::create_dir(&files).unwrap();
    let long = "n".repeat(300);
    let cases: [(&str, &str); 8] = [
        ("a/b", "XML error: name a/b cannot contain '/'"),
        (
            "../../etc/evil",
            "XML error: name ../../etc/evil cannot contain '/'",
        ),
        ("/abs", "XML error: name /abs cannot contain '/'"),
        (".", "XML error: name . cannot start with '.'"),
        ("..", "XML error: name .. cannot start with '.'"),
        ("", "XML error: missing domain name information"),
        (&long, "longer than the 247 a file name allows"),
        ("a&#10;b", "invalid char in name: \\n"),
    ];
    for (i, (name, msg)) in cases.iter().enumerate() {
        let f = files.join(format!("{i}.xml"));
        std::fs::write(&f, xml(name, "")).unwrap();
        let o = vsh(&root).arg("define").arg(&f).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{name:?} was defined");
        assert!(
            err.starts_with(&format!(
                "error: Failed to define domain from {}\nerror: ",
                f.display()
            )) && err.contains(msg),
            "{name:?}: {err}"
        );
        for verb in ["start", "domstate", "destroy"] {
            let o = vsh(&root).args([verb, name]).output().unwrap();
            assert!(!o.status.success(), "{verb} {name:?}");
        }
    }
    // Not even the config dir was created: the names were refused first.
    assert!(tree(&root).is_empty(), "{:?}", tree(&root));
}

/// Only the emulator the guests here need, with time to probe it on a loaded machine.
fn qemu_conn(root: &Path) -> Connect {
    let emu_dir = root.join("emulators");
    std::fs::create_dir_all(&emu_dir).unwrap();
    let link = emu_dir.join("qemu-system-x86_64");
    if !link.exists() {
        std::os::unix::fs::symlink(QEMU, &link).unwrap();
    }
    let opts = domdriver::driver::ConnectOptions {
        emulator_dirs: vec![emu_dir],
        probe_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    Connect::open_with(Some(&uri(root)), opts).unwrap()
}

/// Kills a guest's QEMU on drop, by the pid in its status file.
struct Reap(PathBuf, &'static str);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(Some(st)) = GuestStatus::read(self.1, &self.0)
            && is_same_live_process(st.pid, st.start_time)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(st.pid),
                nix::sys::signal::SIGKILL,
            );
        }
    }
}

#[test]
fn dirs_are_0700_and_files_0600() {
    if !Path::new(QEMU).exists() {
        eprintln!("\n*** SKIPPED: {QEMU} is not installed ***\n");
        return;
    }
    let t = tmp();
    let root = t.path().join("r");
    let dirs = Dirs::under(&root);
    let _reap = Reap(dirs.run.join("vm.json"), "vm");
    let c = qemu_conn(&root);
    let dom = c.define_domain_xml(&xml("vm", "")).unwrap();
    dom.create().unwrap();
    for d in [
        &dirs.config,
        &dirs.run,
        &dirs.log,
        &dirs.cache,
        &root.join("etc"),
        &root.join("run"),
        &root.join("log"),
        &root.join("cache"),
        &dirs.run.join("domain-vm"),
    ] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    // The started domain's private dirs (`domain-ID-NAME`); `channel/` holds the
    // path-less channel sockets' dirs, private too.
    let channel = dirs.lib.join("channel");
    for d in [&channel, &channel.join("target")] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    // `ram/ID-NAME` is where QEMU would create file-backed RAM: private as well.
    let ram = dirs.lib.join("ram");
    assert_eq!(mode(&ram), 0o700);
    for d in std::fs::read_dir(&ram).unwrap().flatten() {
        assert_eq!(mode(&d.path()), 0o700, "{}", d.path().display());
    }
    let lib_dirs: Vec<PathBuf> = std::fs::read_dir(&dirs.lib)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| *p != channel && *p != ram)
        .collect();
    assert!(!lib_dirs.is_empty());
    for d in &lib_dirs {
        assert_eq!(mode(d), 0o700, "{}", d.display());
        assert_eq!(mode(&d.join("master-key.aes")), 0o600);
    }
    for f in [
        dirs.config.join("vm.xml"),
        dirs.run.join("vm.json"),
        dirs.run.join("vm.lock"),
        dirs.run.join("domain-vm/monitor.sock"),
        dirs.log.join("vm.log"),
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    for f in std::fs::read_dir(&dirs.cache).unwrap().flatten() {
        assert_eq!(mode(&f.path()), 0o700, "{}", f.path().display());
        for g in std::fs::read_dir(f.path()).into_iter().flatten().flatten() {
            assert_eq!(mode(&g.path()) & 0o077, 0, "{}", g.path().display());
        }
    }
    dom.destroy().unwrap();
}

#[test]
fn session_dirs_are_0700() {
    let t = tmp();
    let f = t.path().join("vm.xml");
    std::fs::write(&f, xml("vm", "")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vsh"))
        .env("HOME", t.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_RUNTIME_DIR")
        .args(["-c", "qemu:///session", "define"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    for d in [".config", ".config/domdriver", ".config/domdriver/qemu"] {
        assert_eq!(mode(&t.path().join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(&t.path().join(".config/domdriver/qemu/vm.xml")), 0o600);
}

#[test]
fn planted_symlinks_are_refused_not_followed() {
    if !Path::new(QEMU).exists() {
        return;
    }
    let t = tmp();
    let root = t.path().join("r");
    let dirs = Dirs::under(&root);
    let _reap = Reap(dirs.run.join("vm.json"), "vm");
    let c = qemu_conn(&root);
    let dom = c.define_domain_xml(&xml("vm", "")).unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let victim_dir = t.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    std::fs::set_permissions(&victim_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(&dirs.run).unwrap();
    std::fs::create_dir_all(&dirs.log).unwrap();

    // The status file.
    let status = dirs.run.join("vm.json");
    std::os::unix::fs::symlink(&victim, &status).unwrap();
    let e = dom.create().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "guest 'vm': status file {}: is a symbolic link, which is never followed: remove it",
            status.display()
        )
    );
    std::fs::remove_file(&status).unwrap();

    // The log.
    let log = dirs.log.join("vm.log");
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let e = dom.create().unwrap_err().to_string();
    assert!(
        e.contains(&log.display().to_string()) && e.contains("Too many levels of symbolic links"),
        "{e}"
    );
    std::fs::remove_file(&log).unwrap();

    // The guest's own run dir, where the monitor socket goes.
    let gdir = dirs.run.join("domain-vm");
    std::os::unix::fs::symlink(&victim_dir, &gdir).unwrap();
    let e = dom.create().unwrap_err().to_string();
    assert!(
        e.contains("is not a directory (a symbolic link is never followed)"),
        "{e}"
    );
    assert_eq!(mode(&victim_dir), 0o755, "the victim dir was chmod-ed");
    assert!(tree(&victim_dir).is_empty(), "{:?}", tree(&victim_dir));
    std::fs::remove_file(&gdir).unwrap();

    // The lock file.
    let lock = dirs.run.join("vm.lock");
    let _ = std::fs::remove_file(&lock);
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let e = dom.create().unwrap_err().to_string();
    assert!(e.contains("Too many levels of symbolic links"), "{e}");
    std::fs::remove_file(&lock).unwrap();

    // The config: a redefine replaces the link itself, the target is untouched.
    let cfg = dirs.config.join("vm.xml");
    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink(&victim, &cfg).unwrap();
    assert!(
        c.lookup_domain_by_name("vm").is_err(),
        "a linked config was read"
    );
    c.define_domain_xml(&xml("vm", "again")).unwrap();
    assert!(
        std::fs::symlink_metadata(&cfg)
            .unwrap()
            .file_type()
            .is_file()
    );

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(mode(&victim), 0o644);

    // With every link gone the guest starts.
    let dom = c.lookup_domain_by_name("vm").unwrap();
    dom.create().unwrap();
    dom.destroy().unwrap();
}

/// `vsh define` in a child whose file size limit is below the new config's size: the write
/// fails (EFBIG, as on a full disk) and the previous config stays as it was.
#[test]
fn config_write_beyond_the_file_size_limit_keeps_the_old_config() {
    let t = tmp();
    let root = t.path().join("r");
    let c = Connect::open(Some(&uri(&root))).unwrap();
    c.define_domain_xml(&xml("vm", "first")).unwrap();
    let cfg = Dirs::under(&root).config.join("vm.xml");
    let before = std::fs::read(&cfg).unwrap();
    let big = t.path().join("big.xml");
    std::fs::write(&big, xml("vm", &"x".repeat(256 << 10))).unwrap();
    let mut cmd = vsh(&root);
    cmd.arg("define").arg(&big);
    // SAFETY: between fork and exec only async-signal-safe calls: signal and setrlimit are
    // system calls that allocate nothing and take no locks.
    unsafe {
        cmd.pre_exec(|| {
            use nix::libc;
            // Without this the kernel's SIGXFSZ would kill vsh; ignored, the write fails
            // with EFBIG, which is what a program sees on a full disk too (ENOSPC).
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            let lim = libc::rlimit {
                rlim_cur: 64 << 10,
                rlim_max: 64 << 10,
            };
            // `lim` lives on this stack frame for the whole call.
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    // Each layer once: the OS error's words are not repeated on a line of their own.
    assert_eq!(
        err,
        format!(
            "error: Failed to define domain from {}\nerror: cannot write file '{}': File too large\n",
            big.display(),
            cfg.display()
        )
    );
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(cfg.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".define-")),
        "temp file left: {names:?}"
    );
    assert!(
        c.lookup_domain_by_name("vm")
            .unwrap()
            .xml_desc(Default::default())
            .unwrap()
            .contains("<description>first</description>")
    );
}

/// Run `script` in a private mount namespace (as root); `None` when that is not possible here.
fn in_mount_namespace(script: &str) -> Option<std::process::Output> {
    let probe = Command::new("unshare").args(["-m", "true"]).output().ok()?;
    if !probe.status.success() {
        eprintln!("\n*** SKIPPED: cannot create a mount namespace ***\n");
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["-m", "sh", "-c", script])
            .env_remove("VSH_DEFAULT_URI")
            .output()
            .unwrap(),
    )
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// A full disk for real: the root on a 256 KiB tmpfs, filled up before the redefine.
#[test]
fn config_write_on_a_full_disk_keeps_the_old_config() {
    let t = tmp();
    let root = t.path().join("r");
    std::fs::create_dir(&root).unwrap();
    let small = t.path().join("small.xml");
    let big = t.path().join("big.xml");
    std::fs::write(&small, xml("vm", "first")).unwrap();
    std::fs::write(&big, xml("vm", &"x".repeat(64 << 10))).unwrap();
    let vsh = env!("CARGO_BIN_EXE_vsh");
    let u = uri(&root);
    let cfg = Dirs::under(&root).config.join("vm.xml");
    let script = format!(
        "mount -t tmpfs -o size=256k tmpfs {r} || exit 99
         {vsh} -c '{u}' define {small} >/dev/null || exit 98
         dd if=/dev/zero of={r}/fill bs=4k 2>/dev/null
         {vsh} -c '{u}' define {big}; echo \"rc=$?\"
         cat {cfg}
         ls -a {dir}",
        r = sh_quote(&root),
        small = sh_quote(&small),
        big = sh_quote(&big),
        cfg = sh_quote(&cfg),
        dir = sh_quote(cfg.parent().unwrap()),
    );
    let Some(o) = in_mount_namespace(&script) else {
        return;
    };
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(99) {
        eprintln!("\n*** SKIPPED: cannot mount a tmpfs: {err} ***\n");
        return;
    }
    assert!(out.contains("rc=1"), "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "error: Failed to define domain from {}",
            big.display()
        )) && err.contains("No space left on device"),
        "{err}"
    );
    assert!(out.contains("<description>first</description>"), "{out}");
    assert!(!out.contains(".define-"), "temp file left: {out}");
}

/// A read-only config dir: the redefine fails clearly, the old config stays.
#[test]
fn config_write_to_a_read_only_dir_keeps_the_old_config() {
    let t = tmp();
    let root = t.path().join("r");
    let c = Connect::open(Some(&uri(&root))).unwrap();
    c.define_domain_xml(&xml("vm", "first")).unwrap();
    let cfg = Dirs::under(&root).config.join("vm.xml");
    let dir = cfg.parent().unwrap();
    let before = std::fs::read(&cfg).unwrap();
    let second = t.path().join("second.xml");
    std::fs::write(&second, xml("vm", "second")).unwrap();
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,bind,ro {d} || exit 99
         exec {vsh} -c '{u}' define {f}",
        d = sh_quote(dir),
        vsh = env!("CARGO_BIN_EXE_vsh"),
        u = uri(&root),
        f = sh_quote(&second),
    );
    let Some(o) = in_mount_namespace(&script) else {
        return;
    };
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(99) {
        eprintln!("\n*** SKIPPED: cannot bind-mount read-only: {err} ***\n");
        return;
    }
    assert!(!o.status.success());
    assert!(
        err.starts_with(&format!(
            "error: Failed to define domain from {}\nerror: ",
            second.display()
        )) && err.contains("Read-only file system")
            && err.contains(&dir.display().to_string()),
        "{err}"
    );
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
}
