//! The character device behind an `<rng><backend model='egd'>`: the backend's `type`,
//! `<source>`s and `<protocol>` read as a chardev, so it renders like any other.

use crate::domain::devices::{Chardev, ChrSource, Rng};

pub(super) fn egd_chardev(r: &Rng) -> Chardev {
    let attr = |n: &crate::domain::XmlNode, k: &str| n.attr(k).map(String::from);
    let kids = &r.backend_extra.children;
    Chardev {
        kind: "rng".into(),
        stype: r.backend_type.clone(),
        sources: kids
            .iter()
            .filter(|n| n.name == "source")
            .map(|s| ChrSource {
                mode: attr(s, "mode"),
                host: attr(s, "host"),
                service: attr(s, "service"),
                path: attr(s, "path"),
                tls: attr(s, "tls"),
                ..Default::default()
            })
            .collect(),
        protocol: kids
            .iter()
            .find(|n| n.name == "protocol")
            .and_then(|p| attr(p, "type")),
        ..Default::default()
    }
}
