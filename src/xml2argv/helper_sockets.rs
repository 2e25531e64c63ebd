//! Where QEMU finds the sockets of a guest's helper processes (virtiofsd, passt). One place
//! for the paths, so that the command line and the driver that starts the helpers agree.

/// The vhost-user socket of virtiofs share `alias`, in the start's private dir `lib_dir`
/// (libvirt: qemuDomainGetVHostUserFSSocketPath, `ALIAS-fs.sock` in the domain's lib dir).
pub fn virtiofs_socket(lib_dir: &str, alias: &str) -> String {
    format!("{lib_dir}/{alias}-fs.sock")
}

/// The directory of passt's sockets and pid files (libvirt: `passtStateDir`, `passt` under
/// the driver's state dir).
pub fn passt_dir(runtime_dir: &str) -> String {
    format!("{runtime_dir}/passt")
}

/// passt's socket for interface `alias` of the domain with short name `short` (libvirt:
/// qemuPasstCreateSocketPath).
pub fn passt_socket(runtime_dir: &str, short: &str, alias: &str) -> String {
    format!("{}/{short}-{alias}.socket", passt_dir(runtime_dir))
}
