//! Parse-side rules libvirt applies when it reads a domain, seen through parse + format:
//! empty text elements are absent, namespaced `<metadata>` stays well-formed, SMBIOS blocks
//! keep libvirt's fields, the UUID comes from `<sysinfo>`, and their refusals.

use domdriver::domain::{self, FormatFlags};

const INACTIVE: FormatFlags = FormatFlags {
    inactive: true,
    secure: true,
};

fn fmt(xml: &str) -> String {
    domain::parse(xml).expect("parse").to_xml(INACTIVE)
}

fn dom(head_attrs: &str, body: &str) -> String {
    format!(
        "<domain type='kvm'{head_attrs}><name>t</name><memory>1024</memory>{body}\
         <os><type>hvm</type></os></domain>"
    )
}

#[test]
fn empty_title_description_kernel_are_absent() {
    let x = fmt(
        "<domain type='kvm'><name>t</name><uuid>6f1e5b0a-2c1d-4e8f-9a7b-3c4d5e6f7a85</uuid>\
         <title></title><description/><memory>1024</memory>\
         <os><type>hvm</type><kernel></kernel><initrd/><cmdline></cmdline></os></domain>",
    );
    for gone in ["<title", "<description", "<kernel", "<initrd", "<cmdline"] {
        assert!(!x.contains(gone), "{gone} kept:\n{x}");
    }
}

#[test]
fn metadata_gets_the_namespaces_it_uses() {
    let x = fmt(&dom(
        " xmlns:a='urn:a' xmlns:b='urn:b' xmlns:unused='urn:u'",
        "<metadata><b:x/><a:y><a:z b:attr='1'/></a:y><c:w xmlns:c='urn:c'/></metadata>",
    ));
    assert!(
        x.contains("<metadata xmlns:b=\"urn:b\" xmlns:a=\"urn:a\">"),
        "{x}"
    );
    assert!(!x.contains("urn:u"), "{x}");
    // A declaration inside the content stays where it was.
    assert!(x.contains("<c:w xmlns:c=\"urn:c\"/>"), "{x}");
    // What we write reads back the same.
    assert_eq!(fmt(&x), x);
}

#[test]
fn smbios_blocks_keep_libvirts_fields_in_its_order() {
    let x = fmt(&dom(
        "",
        "<sysinfo type='smbios'><system>\
         <entry name='uuid'>e4686d2c-6e8d-4335-b8fd-81bee22f4814</entry>\
         <entry name='serial'>s1</entry><entry name='manufacturer'></entry>\
         </system><bios></bios><chassis/></sysinfo>",
    ));
    assert!(
        x.contains(
            "    <system>\n      <entry name='serial'>s1</entry>\n      \
             <entry name='uuid'>e4686d2c-6e8d-4335-b8fd-81bee22f4814</entry>\n    </system>"
        ),
        "{x}"
    );
    assert!(!x.contains("<bios") && !x.contains("<chassis"), "{x}");
    assert!(!x.contains("manufacturer"), "{x}");
    // No <uuid>: the domain takes the system's.
    assert!(
        x.contains("<uuid>e4686d2c-6e8d-4335-b8fd-81bee22f4814</uuid>"),
        "{x}"
    );
}

#[test]
fn sysinfo_uuid_must_match_the_domains() {
    let xml = "<domain type='kvm'><name>t</name><uuid>6f1e5b0a-2c1d-4e8f-9a7b-3c4d5e6f7a85</uuid>\
               <memory>1024</memory><sysinfo type='smbios'><system>\
               <entry name='uuid'>e4686d2c-6e8d-4335-b8fd-81bee22f4814</entry></system></sysinfo>\
               <os><type>hvm</type></os></domain>";
    let e = domain::parse(xml)
        .expect_err("mismatch refused")
        .to_string();
    assert_eq!(
        e,
        "unsupported configuration: UUID mismatch between <uuid> and <sysinfo>"
    );
}

#[test]
fn sysinfo_uuid_must_be_a_uuid() {
    let e = domain::parse(&dom(
        "",
        "<sysinfo type='smbios'><system><entry name='uuid'>nope</entry></system></sysinfo>",
    ))
    .expect_err("malformed refused")
    .to_string();
    assert_eq!(e, "XML error: malformed <sysinfo> uuid element");
}

#[test]
fn disk_and_feature_defaults_libvirt_does_not_write() {
    let x = fmt(&dom(
        "",
        "<features><smm/><hyperv><vendor_id state='off' value='v'/></hyperv></features>\
         <devices><disk type='block' device='cdrom'><driver name='qemu' cache='default'/>\
         <source dev='/dev/x' name='n'/><target dev='sda' bus='sata' tray='closed'/></disk>\
         <interface type='ethernet'><source></source></interface>\
         <graphics type='vnc'><listen type='socket' socket='/tmp/s'/></graphics></devices>",
    ));
    assert!(x.contains("<smm state='on'/>"), "{x}");
    assert!(x.contains("<hyperv mode='custom'>"), "{x}");
    assert!(x.contains("<vendor_id state='off'/>"), "{x}");
    assert!(!x.contains("cache="), "{x}");
    assert!(x.contains("<source dev='/dev/x'/>"), "{x}");
    assert!(
        x.contains("<target dev='sda' bus='sata'/>\n      <readonly/>"),
        "{x}"
    );
    assert!(!x.contains("<source/>"), "{x}");
    assert!(x.contains("<graphics type='vnc' socket='/tmp/s'>"), "{x}");
}
