//! Graphics passwords (`<graphics passwd='...'>`), handled as libvirt does: never on QEMU's
//! command line, where `ps`, `/proc/PID/cmdline` and the guest's log would show them. The
//! command line only says `password=on` (VNC) or leaves out `disable-ticketing=on` (SPICE);
//! the password itself goes over QMP (`set_password`, then `expire_password`) while QEMU is
//! still paused, before the vCPUs run.

use serde_json::json;

use super::process::InitCommand;
use crate::domain::DomainDef;
use crate::xml2argv::QemuConf;

/// The QMP commands that set the passwords of `def`'s VNC and SPICE displays. A display
/// without `passwd` gets the host's default password for its protocol if one is configured,
/// and nothing otherwise.
pub fn password_commands(def: &DomainDef, conf: &QemuConf) -> Vec<InitCommand> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut out = Vec::new();
    for g in &def.devices.graphics {
        let default = match g.gtype.as_str() {
            "vnc" => None,
            "spice" => conf.spice_password.as_ref(),
            _ => continue,
        };
        let Some(password) = g.passwd.as_ref().or(default) else {
            continue;
        };
        let protocol = g.gtype.as_str();
        // QEMU's default: clients already connected stay; VNC accepts nothing else.
        let connected = g.connected.as_deref().unwrap_or("keep");
        out.push(InitCommand {
            command: "set_password".into(),
            args: json!({"protocol": protocol, "password": password, "connected": connected}),
        });
        let time = match g.passwd_valid_to.as_deref().and_then(parse_valid_to) {
            Some(t) if t <= now => "now".to_string(),
            Some(t) => t.to_string(),
            None => "never".to_string(),
        };
        out.push(InitCommand {
            command: "expire_password".into(),
            args: json!({"protocol": protocol, "time": time}),
        });
    }
    out
}

/// `passwdValidTo` (`2011-05-31T16:11:22`, UTC) as seconds since the epoch.
fn parse_valid_to(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(graphics: &str) -> DomainDef {
        crate::domain::parse(&format!(
            "<domain type='qemu'><name>g</name><memory>65536</memory>\
             <os><type arch='x86_64'>hvm</type></os><devices>{graphics}</devices></domain>"
        ))
        .unwrap()
    }

    #[test]
    fn valid_to_is_utc_seconds() {
        assert_eq!(parse_valid_to("1970-01-01T00:00:00"), Some(0));
        assert_eq!(parse_valid_to("2011-05-31T16:11:22"), Some(1_306_858_282));
        assert_eq!(parse_valid_to("2000-02-29T23:59:59"), Some(951_868_799));
        assert_eq!(parse_valid_to("2011-13-01T00:00:00"), None);
        assert_eq!(parse_valid_to("yesterday"), None);
    }

    #[test]
    fn vnc_and_spice_passwords_become_qmp_commands() {
        let d = def("<graphics type='vnc' passwd='s3cret'/>\
             <graphics type='spice' passwd='x' passwdValidTo='2011-05-31T16:11:22' connected='disconnect'/>\
             <graphics type='vnc'/>");
        let c = password_commands(&d, &QemuConf::default());
        let got: Vec<String> = c
            .iter()
            .map(|c| format!("{} {}", c.command, c.args))
            .collect();
        assert_eq!(
            got,
            [
                r#"set_password {"protocol":"vnc","password":"s3cret","connected":"keep"}"#,
                r#"expire_password {"protocol":"vnc","time":"never"}"#,
                r#"set_password {"protocol":"spice","password":"x","connected":"disconnect"}"#,
                r#"expire_password {"protocol":"spice","time":"now"}"#,
            ]
        );
        // Debug output never shows the secret.
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn spice_default_password_applies_without_passwd() {
        let d = def("<graphics type='spice'/>");
        assert!(password_commands(&d, &QemuConf::default()).is_empty());
        let conf = QemuConf {
            spice_password: Some("dflt".into()),
            ..QemuConf::default()
        };
        let c = password_commands(&d, &conf);
        assert_eq!(c[0].args["password"], "dflt");
    }
}
