//! swtpm for `<tpm><backend type='emulator'/>` (libvirt: qemu_tpm.c).
//!
//! The TPM's state lives in `LIB/swtpm/UUID/tpm2` (libvirt: `/var/lib/libvirt/swtpm/UUID/tpm2`,
//! `tpm1.2` for a TPM 1.2), 0700, created and manufactured by `swtpm_setup` on the first start
//! and kept across starts; `undefine` removes it unless `--keep-tpm`. The socket is in the
//! guest's run dir, the log in the domain's log dir.

use std::path::{Path, PathBuf};

use super::fds::{FdSource, PassFd};
use super::{HelperKind, HelperSpec, Where, find_binary, private_dir};
use crate::domain::DomainDef;
use crate::domain::devices::Tpm;
use crate::driver::DriverError;

/// The TPM's state dir of the domain with `uuid` under the connection's lib dir (libvirt:
/// qemuTPMEmulatorStorageBuildPath).
pub fn state_dir(lib: &Path, uuid: &str, version: &str) -> PathBuf {
    let leaf = if version == "1.2" { "tpm1.2" } else { "tpm2" };
    lib.join("swtpm").join(uuid).join(leaf)
}

/// The per-domain dir holding every TPM state of `uuid` (what `undefine` removes).
pub fn domain_state_dir(lib: &Path, uuid: &str) -> PathBuf {
    lib.join("swtpm").join(uuid)
}

/// The descriptors swtpm reads its state's and its migration passphrase from.
const KEY_FD: i32 = 3;
const MIGRATION_KEY_FD: i32 = 4;
/// libvirt's cipher for an encrypted TPM state.
const CIPHER: &str = "aes-256-cbc";

/// libvirt: virTPMEmulatorInit's refusal when a tool is missing.
fn missing(name: &str) -> DriverError {
    DriverError::System {
        msg: format!("Unable to find '{name}' binary in $PATH"),
        err: std::io::Error::from_raw_os_error(nix::libc::ENOENT),
    }
}

fn emulated(def: &DomainDef) -> Option<&Tpm> {
    def.devices
        .tpms
        .iter()
        .find(|t| t.backend_type.as_deref() == Some("emulator"))
}

/// The swtpm of `def`'s emulated TPM, with the socket QEMU is to use.
pub(super) fn plan(
    def: &DomainDef,
    at: &Where,
) -> Result<Option<(HelperSpec, String)>, DriverError> {
    let Some(tpm) = emulated(def) else {
        return Ok(None);
    };
    // swtpm_ioctl, which libvirt also looks for, is not needed: we stop swtpm by signal.
    let swtpm = find_binary("swtpm").ok_or_else(|| missing("swtpm"))?;
    let setup = find_binary("swtpm_setup").ok_or_else(|| missing("swtpm_setup"))?;
    let model = tpm.model.as_deref().unwrap_or("tpm-tis");
    // A CRB (and any TPM without a version on this swtpm) is a TPM 2.0.
    let version = match tpm.version.as_deref() {
        Some("1.2") if model != "tpm-crb" => "1.2",
        _ => "2.0",
    };
    let uuid = def.uuid.hyphenated().to_string();
    let state = state_dir(at.lib, &uuid, version);
    private_dir(&state)?;
    let guest_dir = at.run.join(format!("domain-{}", def.name));
    let socket = guest_dir.join(format!("{}-swtpm.sock", at.short_name));
    let pid = guest_dir.join(format!("{}-swtpm.pid", at.short_name));
    let log = at.log.join(format!("{}-swtpm.log", def.name));
    let tpm2 = version == "2.0";
    let s = |p: &Path| p.display().to_string();
    // libvirt: qemuTPMEmulatorBuildCommand. swtpm runs in the foreground as the monitor's
    // child (libvirt daemonizes it), and `--terminate` ends it when QEMU hangs up.
    let mut argv = vec![
        s(&swtpm),
        "socket".into(),
        "--ctrl".into(),
        format!("type=unixio,path={},mode=0600", s(&socket)),
        "--tpmstate".into(),
        format!("dir={},mode=0600", s(&state)),
        "--log".into(),
        format!("file={},level=20", s(&log)),
        "--terminate".into(),
    ];
    if tpm2 {
        argv.push("--tpm2".into());
    }
    // libvirt runs swtpm_setup only when it created the state dir; a state without the
    // TPM's permanent file (a setup that failed half way) is manufactured again.
    let manufactured = std::fs::read_dir(&state).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".permall")))
    });
    // The PCR banks a TPM 2.0 is to have active, in libvirt's order, set by `swtpm_setup
    // --reconfigure` on every start when this swtpm_setup can (libvirt:
    // qemuTPMEmulatorReconfigure; without the capability libvirt silently skips it).
    // The parser keeps them in libvirt's order (libvirt: qemuTPMPcrBankBitmapToStr).
    let banks = tpm.active_pcr_banks.as_deref().unwrap_or_default();
    let reconfigure =
        tpm2 && !banks.is_empty() && has_feature(&setup, &[], "cmdarg-reconfigure-pcr-banks");
    let runs_setup = !manufactured || reconfigure;
    // An encrypted state: swtpm and swtpm_setup read the passphrase from a pipe, one each
    // for the state and for migration (libvirt: qemuTPMEmulatorBuildCommand).
    let (pass_fds, setup_fds) = match &tpm.encryption_secret {
        Some(uuid) => {
            // libvirt: qemuTPMVirCommandAddEncryption (when swtpm_setup runs), then
            // qemuTPMEmulatorBuildCommand, each with its own wording.
            if runs_setup && !has_feature(&setup, &[], "cmdarg-pwdfile-fd") {
                return Err(DriverError::ArgumentUnsupported(format!(
                    "{} does not support passing a passphrase using a file descriptor",
                    setup.display()
                )));
            }
            if !has_feature(&swtpm, &["socket"], "cmdarg-pwd-fd") {
                return Err(DriverError::ArgumentUnsupported(format!(
                    "{} does not support passing passphrase via file descriptor",
                    swtpm.display()
                )));
            }
            let uuid = crate::driver::secret::check_usable(at.secrets, uuid, "vtpm")?;
            let pipe = |fd| PassFd {
                fd,
                source: FdSource::SecretValue {
                    dir: at.secrets.to_path_buf(),
                    uuid: uuid.clone(),
                },
            };
            argv.extend([
                "--key".into(),
                format!("pwdfd={KEY_FD},mode={CIPHER}"),
                "--migration-key".into(),
                format!("pwdfd={MIGRATION_KEY_FD},mode={CIPHER}"),
            ]);
            (
                vec![pipe(KEY_FD), pipe(MIGRATION_KEY_FD)],
                vec![pipe(KEY_FD)],
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    argv.extend(["--pid".into(), format!("file={}", s(&pid))]);
    let key_args: Vec<String> = if setup_fds.is_empty() {
        Vec::new()
    } else {
        vec![
            "--pwdfile-fd".into(),
            KEY_FD.to_string(),
            "--cipher".into(),
            CIPHER.into(),
        ]
    };
    let tpm2_arg = tpm2.then(|| "--tpm2".to_string());
    let mut setups = Vec::new();
    if !manufactured {
        // libvirt: qemuTPMEmulatorRunSetup.
        let mut a = vec![s(&setup)];
        a.extend(tpm2_arg.clone());
        a.extend(key_args.iter().cloned());
        a.extend([
            "--tpm-state".into(),
            s(&state),
            "--vmid".into(),
            format!("{}:{uuid}", def.name),
            "--logfile".into(),
            s(&log),
            "--createek".into(),
            "--create-ek-cert".into(),
            "--create-platform-cert".into(),
            "--lock-nvram".into(),
            "--not-overwrite".into(),
        ]);
        setups.push(a);
    }
    if reconfigure {
        // libvirt: qemuTPMEmulatorReconfigure.
        let mut a = vec![s(&setup)];
        a.extend(tpm2_arg);
        a.extend(key_args);
        a.extend([
            "--tpm-state".into(),
            s(&state),
            "--logfile".into(),
            s(&log),
            "--pcr-banks".into(),
            banks.join(","),
            "--reconfigure".into(),
        ]);
        setups.push(a);
    }
    let spec = HelperSpec {
        kind: HelperKind::Swtpm,
        device: tpm.info.alias.clone().unwrap_or_else(|| "tpm0".into()),
        argv,
        setup: setups,
        socket: socket.clone(),
        log,
        files: vec![pid],
        pass_fds,
        setup_fds,
    };
    Ok(Some((spec, s(&socket))))
}

/// Whether `bin ARGS --print-capabilities` lists `feature` (libvirt: virTPMSwtpmCapsGet and
/// virTPMSwtpmSetupCapsGet). A tool that does not answer within a few seconds has none.
fn has_feature(bin: &Path, args: &[&str], feature: &str) -> bool {
    use std::io::Read;
    let Ok(mut child) = std::process::Command::new(bin)
        .args(args)
        .arg("--print-capabilities")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        return false;
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let done = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.success(),
            Ok(None) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    // The answer is a few hundred bytes: it fits the pipe, so the tool ended without us
    // reading while it ran.
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    done && serde_json::from_str::<serde_json::Value>(&out).is_ok_and(|v| {
        v["features"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == feature))
    })
}

/// Remove the TPM state of `def` (libvirt: qemuExtTPMCleanupHost at undefine), unless its
/// TPM asks for a persistent state.
pub fn remove_state(lib: &Path, def: &DomainDef) -> Result<(), DriverError> {
    let Some(tpm) = emulated(def) else {
        return Ok(());
    };
    if tpm.persistent_state.as_deref() == Some("yes") {
        return Ok(());
    }
    let dir = domain_state_dir(lib, &def.uuid.hyphenated().to_string());
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DriverError::System {
            msg: format!("Unable to remove TPM state directory '{}'", dir.display()),
            err: e,
        }),
        _ => Ok(()),
    }
}
