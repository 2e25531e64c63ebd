//! guestfwd channels: a guest TCP address of the user-mode network forwarded to a host
//! chardev (libvirt: qemuBuildChannelGuestfwdNetdevProps).

use super::*;

impl Builder<'_> {
    /// The `-netdev` (QMP `netdev_add`) of guestfwd channel `c`: a `user` netdev whose only
    /// job is to forward `tcp:ADDR:PORT` to the channel's chardev, named after the channel.
    pub(super) fn guestfwd_netdev(&self, c: &Chardev) -> R<JsonOpts> {
        let alias = self.alias(&c.info)?;
        let target = c.target.as_ref();
        let addr = target.and_then(|t| t.address.as_deref()).ok_or_else(|| {
            // libvirt: virDomainChrDefParseTargetXML
            Xml2ArgvError::Xml("guestfwd channel does not define a target address".into())
        })?;
        let addr: std::net::IpAddr = addr
            .parse()
            .map_err(|_| Xml2ArgvError::Xml(format!("Failed to parse IP address '{addr}'")))?;
        let port = target.and_then(|t| t.port.as_deref()).ok_or_else(|| {
            Xml2ArgvError::Xml("guestfwd channel does not define a target port".into())
        })?;
        let port: u16 = port
            .parse()
            .map_err(|_| Xml2ArgvError::Xml(format!("Invalid port number: {port}")))?;
        let fwd = serde_json::json!([{ "str": format!("tcp:{addr}:{port}-chardev:char{alias}") }]);
        let mut j = JsonOpts::new();
        j.s("type", "user").v("guestfwd", fwd).s("id", alias);
        Ok(j)
    }
}
