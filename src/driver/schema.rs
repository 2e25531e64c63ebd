//! `virsh define --validate`: the document checked against libvirt's RelaxNG domain schema
//! with `xmllint`, as libvirt's `virXMLValidateAgainstSchema` checks it with libxml2. The
//! schema is libvirt's own, found at run time (never copied into this project): in
//! `VSH_SCHEMA_DIR`, libvirt's install dir, or the reference tree (`LIBVIRT_TESTDATA`, else
//! `../shared/libvirt-9.0.0` of the source tree).

use std::path::PathBuf;
use std::process::Command;

use super::DriverError;

/// Where `domain.rng` may be, in order.
fn schema_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(d) = std::env::var("VSH_SCHEMA_DIR") {
        dirs.push(PathBuf::from(d));
    }
    dirs.push(PathBuf::from("/usr/share/libvirt/schemas"));
    if let Ok(d) = std::env::var("LIBVIRT_TESTDATA") {
        dirs.push(PathBuf::from(d).join("schemas"));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/libvirt-9.0.0/schemas"));
    dirs
}

/// The messages of `xmllint`'s report, one a line, as libvirt lists libxml2's: the text
/// after `validity error : `.
pub fn validity_messages(report: &str) -> String {
    report
        .lines()
        .filter_map(|l| l.split_once("validity error : ").map(|(_, m)| m.trim()))
        .map(|m| format!("{m}\n"))
        .collect()
}

/// Check `xml` against the domain schema; libvirt's VIR_ERR_XML_INVALID_SCHEMA when it
/// does not validate.
pub fn validate_domain_xml(xml: &str) -> Result<(), DriverError> {
    validate_xml_against(xml, "domain.rng")
}

/// Check `xml` against libvirt's schema `schema` (`cpu.rng`, ...); libvirt's
/// VIR_ERR_XML_INVALID_SCHEMA when it does not validate.
pub fn validate_xml_against(xml: &str, schema: &str) -> Result<(), DriverError> {
    let Some(rng) = schema_dirs()
        .into_iter()
        .map(|d| d.join(schema))
        .find(|p| p.is_file())
    else {
        return Err(DriverError::Internal(format!(
            "cannot find the schema {schema} (set VSH_SCHEMA_DIR)"
        )));
    };
    let mut doc = tempfile::NamedTempFile::new().map_err(|e| DriverError::System {
        msg: "cannot create a temporary file".into(),
        err: e,
    })?;
    std::io::Write::write_all(&mut doc, xml.as_bytes()).map_err(|e| DriverError::System {
        msg: "cannot write a temporary file".into(),
        err: e,
    })?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(&rng)
        .arg(doc.path())
        .output()
        .map_err(|e| DriverError::System {
            msg: "cannot run xmllint".into(),
            err: e,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let report = String::from_utf8_lossy(&out.stderr);
    Err(DriverError::InvalidSchema(format!(
        "Unable to validate doc against {}\n{}",
        rng.display(),
        validity_messages(&report).trim_end()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_libxml2s() {
        let r = "/tmp/t.xml:1: element bogus: Relax-NG validity error : Element domain has extra content: bogus\n/tmp/t.xml fails to validate\n";
        assert_eq!(
            validity_messages(r),
            "Element domain has extra content: bogus\n"
        );
    }
}
