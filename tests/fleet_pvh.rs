//! Fast fresh boots: the test kernel's bzImage uncompressed once into the connection's cache
//! and booted through its PVH entry point, by `GuestBuilder::pvh_boot` and `vsh pvh-kernel`.
//! Refusals of what is not a PVH-bootable bzImage.

#[path = "common/bootkit.rs"]
mod bootkit;
#[path = "common/guests.rs"]
mod guests;
#[path = "common/vshrun.rs"]
mod vshrun;

use std::time::Duration;

use domdriver::Connect;
use domdriver::fleet::GuestBuilder;
use domdriver::fleet::pvh::{has_pvh_entry, pvh_kernel};

#[test]
fn a_bzimage_boots_uncompressed_through_pvh() {
    let Some(kit) = bootkit::linux() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let conn = Connect::open(Some(&guests::uri(d.path()))).unwrap();
    let cache = conn.dirs().cache.join("kernels");
    let vmlinux = pvh_kernel(&kit.kernel, &cache).unwrap();
    assert!(vmlinux.starts_with(&cache), "{}", vmlinux.display());
    let elf = std::fs::read(&vmlinux).unwrap();
    assert!(elf.starts_with(b"\x7fELF") && has_pvh_entry(&elf));
    assert!(elf.len() > std::fs::metadata(&kit.kernel).unwrap().len() as usize);
    // The second time it is the cached file, untouched.
    let mtime = std::fs::metadata(&vmlinux).unwrap().modified().unwrap();
    assert_eq!(pvh_kernel(&kit.kernel, &cache).unwrap(), vmlinux);
    assert_eq!(
        std::fs::metadata(&vmlinux).unwrap().modified().unwrap(),
        mtime
    );
    // vsh names the same file.
    let vsh = vshrun::Vsh::new(d.path().to_path_buf());
    let out = vsh.ok(&["pvh-kernel", kit.kernel.to_str().unwrap()]);
    assert_eq!(out.lines().next(), Some(vmlinux.to_str().unwrap()));

    let builder = GuestBuilder::new("pvh")
        .kernel(&kit.kernel)
        .initrd(&kit.initrd)
        .cmdline(format!(
            "{} {}",
            kit.cmdline(),
            bootkit::run_cmdline("echo PVH-USERSPACE")
        ))
        .pvh_boot(true);
    let xml = builder.to_xml().unwrap();
    assert!(xml.contains(&kit.kernel.display().to_string()), "{xml}");
    let mut g = builder.start(&conn).unwrap();
    // The guest runs the uncompressed kernel, and gets to userspace with it.
    let live = g.domain().xml_desc(Default::default()).unwrap();
    assert!(
        live.contains(&format!("<kernel>{}</kernel>", vmlinux.display())),
        "{live}"
    );
    g.expect("PVH-USERSPACE", Duration::from_secs(120)).unwrap();
    g.destroy().unwrap();
}

#[test]
fn what_is_not_a_pvh_bzimage_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let vsh = vshrun::Vsh::new(d.path().join("root"));
    let junk = d.path().join("junk");
    std::fs::write(&junk, b"not a kernel").unwrap();
    let err = vsh.fails(&["pvh-kernel", junk.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "error: {}: not a bzImage (no boot protocol header)",
            junk.display()
        )),
        "{err}"
    );
    let err = vsh.fails(&["pvh-kernel", "/nonexistent/vmlinuz"]);
    assert!(
        err.contains("/nonexistent/vmlinuz: No such file or directory"),
        "{err}"
    );
    // A bzImage cut short.
    if let Some(kit) = bootkit::linux() {
        let cut = d.path().join("cut");
        let data = std::fs::read(&kit.kernel).unwrap();
        std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
        let err = vsh.fails(&["pvh-kernel", cut.to_str().unwrap()]);
        assert!(err.contains("truncated"), "{err}");
        // Not x86's: the fast way is refused, nothing is cached.
        let conn = Connect::open(Some(&guests::uri(&d.path().join("root")))).unwrap();
        let e = GuestBuilder::new("bad")
            .kernel(&junk)
            .initrd(&kit.initrd)
            .pvh_boot(true)
            .start(&conn)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a bzImage"), "{e}");
        assert!(conn.lookup_domain_by_name("bad").is_err());
    }
}
