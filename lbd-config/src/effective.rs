//! What other programs need to know of lbd's effective config, read from
//! the [`Config`] that [`crate::load_files`] returns (never from a second
//! reading of the files): the TCP ports lbd listens on and the VRRP adverts
//! it must receive (init's firewall), and its control socket (the console
//! status screen).

use std::path::Path;

use crate::schema::Config;
use crate::vrrp::AdvertSource;

/// The adverts one VRRP instance receives, as a firewall must let them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VrrpAdverts {
    /// The instance's `[vrrp.NAME]`.
    pub instance: String,
    /// IP protocol of the datagrams: [`crate::vrrp::IPPROTO_VRRP`], or
    /// [`crate::vrrp::IPPROTO_AH`] for `auth_type = "ah"`.
    pub protocol: u8,
    pub source: AdvertSource,
}

impl Config {
    /// TCP ports lbd listens on: every frontend bind, the stats page and
    /// the console, ascending, without repeats.
    pub fn listening_ports(&self) -> Vec<u16> {
        let binds = self.frontends.values().flat_map(|fe| fe.bind.iter());
        let stats = self.stats.iter().map(|s| &s.bind);
        let console = self.console.iter().map(|c| &c.bind);
        let mut ports: Vec<u16> = binds
            .chain(stats)
            .chain(console)
            .map(|a| a.port())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Where lbd answers `lbd ctl` and the status screen.
    pub fn control_socket(&self) -> &Path {
        &self.global.control_socket
    }

    /// The adverts of every VRRP instance, in instance name order.
    pub fn vrrp_adverts(&self) -> Vec<VrrpAdverts> {
        self.vrrp
            .iter()
            .map(|(name, vi)| VrrpAdverts {
                instance: name.clone(),
                protocol: vi.ip_protocol(),
                source: vi.advert_source(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::PathBuf;

    use super::*;
    use crate::load_texts;
    use crate::vrrp::{IPPROTO_AH, IPPROTO_VRRP};

    fn load(files: &[(&str, &str)]) -> Config {
        load_texts(
            files
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
        )
        .expect("valid config")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("literal address")
    }

    const BACKEND: &str = "[backends.web.servers.a]\naddress = \"10.9.0.1:80\"\n";

    /// Input: two frontends and a stats page in a base, an overlay that
    /// moves one frontend. Output: the ports after layering, sorted.
    #[test]
    fn ports_follow_layering() {
        let base = format!(
            "{BACKEND}[frontends.a]\nbind = [\"0.0.0.0:443\", \"[::]:443\"]\n\
             default_backend = \"web\"\n\
             [frontends.b]\nbind = [\"0.0.0.0:80\"]\ndefault_backend = \"web\"\n\
             [stats]\nbind = \"0.0.0.0:8404\"\n"
        );
        let over = "[frontends.b]\nbind = [\"10.0.0.1:8080\"]\n";
        let config = load(&[("base.toml", &base), ("over.toml", over)]);
        assert_eq!(config.listening_ports(), [443, 8080, 8404]);
        let no_stats = load(&[("a.toml", BACKEND)]);
        assert!(no_stats.listening_ports().is_empty());
    }

    /// Input: a console given only its certificate and key, once alone and
    /// once on the stats page's address. Output: the default :5480 joins
    /// the ports; the shared address is refused naming `console.bind`.
    #[test]
    fn console_listens_on_5480_and_cannot_share_the_stats_address() {
        let console = "[console]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";
        let config = load(&[("a.toml", BACKEND), ("c.toml", console)]);
        assert_eq!(config.listening_ports(), [5480]);
        let c = config.console.as_ref().expect("console");
        assert_eq!(c.session_idle, crate::Dur::secs(1800));

        let clash = format!("{console}bind = \"0.0.0.0:8404\"\n[stats]\n");
        let err = load_texts(vec![
            (PathBuf::from("a.toml"), BACKEND.to_string()),
            (PathBuf::from("c.toml"), clash),
        ])
        .expect_err("console on the stats address");
        let text = format!("{err:?}");
        assert!(
            text.contains("console.bind") && text.contains("also bound by stats"),
            "{text}"
        );
    }

    #[test]
    fn control_socket_default_and_overlay() {
        let config = load(&[("a.toml", BACKEND)]);
        assert_eq!(
            config.control_socket(),
            Path::new(crate::DEFAULT_CONTROL_SOCKET)
        );
        let config = load(&[
            ("a.toml", BACKEND),
            ("b.toml", "[global]\ncontrol_socket = \"/run/x.sock\"\n"),
        ]);
        assert_eq!(config.control_socket(), Path::new("/run/x.sock"));
    }

    /// Input: a unicast v3 instance, a multicast v2 AH instance and a
    /// multicast IPv6 instance. Output: peers with 112, the IPv4 group with
    /// 51 (AH), the IPv6 group with 112.
    #[test]
    fn vrrp_adverts_per_instance() {
        let text = "[vrrp.a]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\n\
                    virtual_ips = [\"10.0.0.100/24\"]\nunicast_src_ip = \"10.0.0.1\"\n\
                    unicast_peers = [\"10.0.0.2\", \"10.0.0.3\"]\n\
                    [vrrp.b]\ninterface = \"eth0\"\nvrid = 2\npriority = 100\nversion = 2\n\
                    virtual_ips = [\"10.0.0.101/24\"]\nauth_type = \"ah\"\nauth_pass = \"secret\"\n\
                    [vrrp.c]\ninterface = \"eth0\"\nvrid = 3\npriority = 100\n\
                    virtual_ips = [\"fe80::3/64\"]\n";
        let adverts = load(&[("v.toml", text)]).vrrp_adverts();
        assert_eq!(
            adverts,
            [
                VrrpAdverts {
                    instance: "a".into(),
                    protocol: IPPROTO_VRRP,
                    source: AdvertSource::Peers(vec![ip("10.0.0.2"), ip("10.0.0.3")]),
                },
                VrrpAdverts {
                    instance: "b".into(),
                    protocol: IPPROTO_AH,
                    source: AdvertSource::Group(ip("224.0.0.18")),
                },
                VrrpAdverts {
                    instance: "c".into(),
                    protocol: IPPROTO_VRRP,
                    source: AdvertSource::Group(ip("ff02::12")),
                },
            ]
        );
    }

    /// Input: an AH instance in a base, an overlay that switches it to PASS.
    /// Output: the layered instance travels in VRRP (112) again.
    #[test]
    fn protocol_follows_the_layered_auth_type() {
        let base = "[vrrp.a]\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nversion = 2\n\
                    virtual_ips = [\"10.0.0.100/24\"]\nauth_type = \"ah\"\nauth_pass = \"secret\"\n";
        let config = load(&[("base.toml", base)]);
        assert_eq!(config.vrrp_adverts()[0].protocol, IPPROTO_AH);
        let over = "[vrrp.a]\nauth_type = \"pass\"\n";
        let config = load(&[("base.toml", base), ("over.toml", over)]);
        assert_eq!(config.vrrp_adverts()[0].protocol, IPPROTO_VRRP);
    }
}
