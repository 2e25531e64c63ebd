//! Reproducing one case of libvirt's `qemuxml2argvtest`: the per-case configuration it toggles
//! and the one-line error format, so the conformance runner and the tests share them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::capabilities::domcaps::firmware::Descriptor;
use crate::domain::prepare::firmware::FirmwareRequest;

use crate::capabilities::qemu::QemuCaps;
use crate::domain::DomainDef;
use crate::domain::PrepareOptions;
use crate::domain::prepare::AudioConfig;
use crate::xml2argv::{
    FdGroup, HugetlbfsMount, LaunchContext, MonitorSource, QemuConf, SecretContext, Xml2ArgvError,
    build,
};

/// libvirt's NVRAM directory, as its harness's privileged driver has it.
const HARNESS_NVRAM_DIR: &str = "/var/lib/libvirt/qemu/nvram";

/// The firmware descriptors libvirt's harness redirects QEMU's firmware dirs to
/// (`tests/qemufirmwaredata` of `LIBVIRT_TESTDATA`, default `../shared/libvirt-9.0.0`), read
/// once. Without the tree no firmware is found, and autoselecting cases fail as they should.
fn harness_firmware() -> &'static [Descriptor] {
    static FW: OnceLock<Vec<Descriptor>> = OnceLock::new();
    FW.get_or_init(|| {
        super::domcaps::test_firmware(&testdata_root().join("tests/qemufirmwaredata"))
    })
}

/// libvirt's test data: `LIBVIRT_TESTDATA`, default `../shared/libvirt-9.0.0`.
fn testdata_root() -> PathBuf {
    std::env::var_os("LIBVIRT_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/libvirt-9.0.0"))
}

/// The emulator path libvirt's harness mocks for `arch`.
pub fn harness_emulator(arch: &str) -> String {
    format!("/usr/bin/qemu-system-{arch}")
}

/// The options libvirt's harness prepares case `name` with: the host arch, the mocked emulator
/// path and the per-case qemu.conf audio overrides (CONFORMANCE §2.3).
pub fn prepare_options(name: &str, arch: &str) -> PrepareOptions {
    let mut audio = AudioConfig::default();
    match name {
        "audio-default-sdl" => audio.env_driver = Some("sdl".to_string()),
        "audio-default-vnc" => {
            audio.env_driver = Some("alsa".to_string());
            audio.vnc_allow_host_audio = true;
        }
        "audio-default-nographics" => {
            audio.env_driver = Some("alsa".to_string());
            audio.nogfx_allow_host_audio = true;
        }
        _ => {}
    }
    PrepareOptions {
        host_arch: arch.to_string(),
        emulator: Some(harness_emulator(arch)),
        canonicalize_machine: false,
        audio,
        tpm_versions: Some(HARNESS_SWTPM.iter().map(|v| v.to_string()).collect()),
        nvram_dir: Some(HARNESS_NVRAM_DIR.into()),
    }
}

/// The TPM versions the harness's mocked swtpm offers when `TEST_TPM_ENV_VAR` is unset: both.
const HARNESS_SWTPM: &[&str] = &["1.2", "2.0"];

/// The second run libvirt's test makes of case `name` with `TEST_TPM_ENV_VAR` set, so that its
/// mocked swtpm offers only these TPM versions; that run is the case's `.err` (CONFORMANCE
/// §2.3).
pub fn swtpm_err_run(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "tpm-emulator" => Some(&["2.0"]),
        "tpm-emulator-tpm2" => Some(&["1.2"]),
        _ => None,
    }
}

/// The name a report gives the run of case `name` with swtpm offering only `versions`.
pub fn swtpm_run_name(name: &str, versions: &[&str]) -> String {
    format!("{name} [swtpm {}]", versions.join(","))
}

/// The fixed context of libvirt's `qemuxml2argvtest` (CONFORMANCE §2.2–2.4): its mocked
/// directories, fds and environment, and the `qemu.conf` its tests start from. A real host
/// never uses it (see `driver::launch`).
pub fn harness_context(def: &DomainDef) -> LaunchContext {
    let short: String = def.name.chars().take(20).collect();
    LaunchContext {
        lib_dir: format!("/tmp/lib/domain--1-{short}"),
        domain_id: -1,
        monitor: MonitorSource::Fd(1729),
        bind_socket_fd: Some(1729),
        file_chardev_fd: Some(1750),
        tap_fd_base: 3,
        vhost_fd_base: 44,
        vhost_net: true,
        vhost_scsi_fd: Some(3),
        scsi_generic_dev: Some("/dev/sg0".into()),
        path_env: Some("/bin".into()),
        user: Some("test".into()),
        logname: Some("test".into()),
        runtime_dir: "/bad-test-used-env-xdg-runtime-dir".into(),
        nvram_dir: HARNESS_NVRAM_DIR.into(),
        memory_backing_dir: "/var/lib/libvirt/qemu/ram".into(),
        tpm_passthrough_fds: Some((1730, 1731)),
        tpm_emulator_socket: Some("/dev/test".into()),
        conf: QemuConf {
            spice_tls: true,
            spice_password: Some("123456".into()),
            vnc_tls_dir: "/etc/pki/libvirt-vnc".into(),
            spice_tls_dir: "/etc/pki/libvirt-spice".into(),
            chardev_tls_dir: "/etc/pki/libvirt-chardev".into(),
            nbd_tls_dir: "/etc/pki/qemu".into(),
            nbd_tls_x509_verify: true,
            ..QemuConf::default()
        },
        secrets: Some(SecretContext::libvirt_test_harness()),
        pretend: true,
        channel_target_dir: "/tmp/channel".into(),
        vsock_fd: Some(6789),
        vdpa_fds: Some(crate::xml2argv::VdpaFds::Same(1732)),
        vsock_auto_cid: Some(42),
        render_node: Some("/dev/dri/foo".into()),
        // libvirt's tests draw generated ids from a counting random source.
        generated_genid: "00010203-0405-4607-8809-0a0b0c0d0e0f".into(),
        // libvirt's test config: 2 MiB pages (the default) and 1 GiB pages.
        hugetlbfs: vec![
            HugetlbfsMount {
                dir: "/dev/hugepages2M".into(),
                page_kib: 2048,
                default: true,
            },
            HugetlbfsMount {
                dir: "/dev/hugepages1G".into(),
                page_kib: 1048576,
                default: false,
            },
        ],
        host_numa_nodes: (0..=HARNESS_MAX_NUMA_NODE).collect(),
        fd_groups: Vec::new(),
        ram_file: None,
    }
}

/// The highest host NUMA node libvirt's test mock has (nodes 0-7).
const HARNESS_MAX_NUMA_NODE: u32 = 7;

/// libvirt's test mock replaces the real nodeset check and words its refusal its own way;
/// the harness reports a missing node as the mock does.
fn mock_wording(e: Xml2ArgvError) -> Xml2ArgvError {
    if let Xml2ArgvError::Unsupported(m) = &e
        && let Some(n) = m
            .strip_prefix("NUMA node ")
            .and_then(|r| r.strip_suffix(" is unavailable"))
    {
        return Xml2ArgvError::Internal(format!("Mock: no numa node set is available at bit {n}"));
    }
    e
}

/// The harness context for case `name` (the test name, not the domain name), with the
/// `qemu.conf` overrides libvirt's test applies around that case (CONFORMANCE §2.3).
pub fn case_context(name: &str, def: &DomainDef) -> LaunchContext {
    let mut ctx = harness_context(def);
    let c = &mut ctx.conf;
    // The harness points the NBD TLS directory at a path with a comma, to test escaping.
    c.nbd_tls_dir = "/etc/pki/libvirt-nbd/dummy,path".into();
    match name {
        "disk-network-tlsx509-nbd" | "disk-network-tlsx509-nbd-hostname" | "disk-network-http" => {
            c.nbd_tls_x509_secret_uuid = Some("6fd3f62d-9fe7-4a4e-a869-7acd6376d8ea".into());
        }
        "audio-default-sdl" => {
            c.audio_driver = Some("sdl".into());
            c.sdl_audio_driver = Some("esd".into());
        }
        "audio-default-vnc" => {
            c.audio_driver = Some("alsa".into());
            c.vnc_allow_host_audio = true;
        }
        "audio-default-nographics" => {
            c.audio_driver = Some("alsa".into());
            c.nogfx_allow_host_audio = true;
        }
        "graphics-vnc-auto-socket-cfg" => c.vnc_auto_unix_socket = true,
        "disk-source-fd" => {
            // The fd groups libvirt's test associates with this case, with its fd numbers.
            let group = |name: &str, fds: &[i32]| FdGroup {
                name: name.into(),
                fds: fds.to_vec(),
                writable: false,
            };
            ctx.fd_groups = vec![
                group("testgroup2", &[700, 705]),
                group("testgroup5", &[704]),
                group("testgroup6", &[777, 778]),
            ];
            return ctx;
        }
        "graphics-vnc-sasl" => {
            c.vnc_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
        }
        "graphics-vnc-tls" | "graphics-vnc-tls-secret" => {
            c.vnc_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
            c.vnc_tls = true;
            c.vnc_tls_x509_verify = true;
            if name == "graphics-vnc-tls-secret" {
                c.vnc_tls_x509_secret_uuid = Some("6fd3f62d-9fe7-4a4e-a869-7acd6376d8ea".into());
            }
        }
        "graphics-spice-sasl" => {
            c.spice_sasl = true;
            c.sasl_conf_dir = Some("/root/.sasl2".into());
        }
        "graphics-spice-auto-socket-cfg" => c.spice_auto_unix_socket = true,
        _ if name.starts_with("serial-tcp-tlsx509-chardev") => {
            c.chardev_tls = true;
            if name.contains("verify") {
                c.chardev_tls_x509_verify = true;
            }
            if name.contains("secret") {
                c.chardev_tls_x509_secret_uuid =
                    Some("6fd3f62d-9fe7-4a4e-a869-7acd6376d8ea".into());
            }
        }
        _ => {}
    }
    ctx
}

/// Run one case: parse `xml`, build the command and render it. Returns the file extension
/// (`args` or `err`) and the body libvirt's test would compare against.
pub fn run_case(name: &str, arch: &str, xml: &str, caps: &QemuCaps) -> (&'static str, String) {
    run_case_with(name, xml, caps, &prepare_options(name, arch))
}

/// [`run_case`] with swtpm offering only `versions` (see [`swtpm_err_run`]).
pub fn run_case_swtpm(
    name: &str,
    arch: &str,
    xml: &str,
    caps: &QemuCaps,
    versions: &[&str],
) -> (&'static str, String) {
    let opts = PrepareOptions {
        tpm_versions: Some(versions.iter().map(|v| v.to_string()).collect()),
        ..prepare_options(name, arch)
    };
    run_case_with(name, xml, caps, &opts)
}

fn run_case_with(
    name: &str,
    xml: &str,
    caps: &QemuCaps,
    opts: &PrepareOptions,
) -> (&'static str, String) {
    let def = crate::domain::parse(xml).and_then(|d| crate::domain::prepare(d, caps, opts));
    let mut def = match def {
        Ok(d) => d,
        Err(e) => return ("err", format!("{e}\n")),
    };
    // The start picks the firmware from the harness's descriptors (libvirt: its
    // qemuProcessPrepareDomain runs qemuFirmwareFillDomain); no varstore exists there.
    let req = FirmwareRequest {
        descriptors: harness_firmware(),
        nvram_dir: HARNESS_NVRAM_DIR,
        nvram_exists: &|_| false,
        reset_nvram: false,
    };
    if let Err(e) = crate::domain::prepare::firmware::fill(&mut def, &req) {
        return ("err", format!("{e}\n"));
    }
    // A new start adds the USB hubs the devices need, and with them ports (libvirt:
    // qemuDomainAssignUSBAddresses at qemuProcessPrepareDomain).
    if crate::domain::prepare::usb::add_usb_hubs(&mut def) {
        crate::domain::prepare::usb::assign_usb_ports(&mut def);
    }
    // libvirt names devices when a domain starts, just before it builds the command line.
    crate::domain::prepare::assign_aliases(&mut def);
    // Volume disks take their storage from the harness's storage driver (libvirt:
    // qemuProcessPrepareDomainStorage).
    if let Err(e) = super::pools::translate_volumes(&mut def, &testdata_root()) {
        return ("err", format!("{e}\n"));
    }
    let ctx = case_context(name, &def);
    match build(&def, caps, &ctx).map_err(mock_wording) {
        Ok(cmd) => ("args", cmd.to_args_file()),
        Err(e) => ("err", format!("{e}\n")),
    }
}

/// The input for case `name`: libvirt's prepared document in `prepared` when present (defaults
/// and addresses already applied), else the plain input.
pub fn case_input(
    name: &str,
    arch: &str,
    input: &Path,
    prepared: Option<&Path>,
) -> std::io::Result<String> {
    if let Some(p) = prepared {
        let f = p.join(format!("{name}.{arch}-latest.xml"));
        if f.exists() {
            return std::fs::read_to_string(f);
        }
    }
    std::fs::read_to_string(input.join(format!("{name}.xml")))
}
