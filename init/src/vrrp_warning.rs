//! VRRP instances that hold virtual IPs without authentication.
//!
//! A pair deployed without `vrrp.auth` ran unauthenticated without a
//! word: any host on the segment could send a priority-255 advert and
//! take the virtual IPs. Keepalived says nothing either; an appliance
//! should. Read from lbd's effective config, so instances from
//! `lbd.config` count as well as the one the `vrrp.*` settings make; shown
//! on the consoles and in the log (one line each), and kept on the status
//! screen's problems until the config changes.

use lbd_config::Config;

use crate::console::Consoles;
use crate::lbd_config::{Effective, VRRP_INSTANCE};

/// One instance with virtual IPs and no `auth_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated {
    pub instance: String,
    pub virtual_ips: Vec<String>,
}

/// The instances of `config` that hold virtual IPs unauthenticated.
pub fn unauthenticated(config: &Config) -> Vec<Unauthenticated> {
    config
        .vrrp
        .iter()
        .filter(|(_, vi)| !vi.virtual_ips.is_empty() && vi.auth().is_none())
        .map(|(name, vi)| Unauthenticated {
            instance: name.clone(),
            virtual_ips: vi.virtual_ips.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// At boot: each unauthenticated instance of lbd's effective config (none
/// when it does not load: lbd does not run then) gets a console and log
/// line, and stands on the status screen.
pub fn report(consoles: &mut Consoles, effective: &Effective) {
    let found = effective.as_ref().map(unauthenticated).unwrap_or_default();
    for u in &found {
        consoles.line(&u.console_line());
    }
    if let Some(board) = consoles.board() {
        board.set_warnings(screen_lines(&found));
    }
}

/// The status screen's lines for `found`.
pub fn screen_lines(found: &[Unauthenticated]) -> Vec<String> {
    found.iter().map(Unauthenticated::screen_line).collect()
}

impl Unauthenticated {
    /// The fix in the admin's words: the setting for the appliance's own
    /// instance, lbd's keys for one from `lbd.config`.
    fn fix(&self) -> &'static str {
        if self.instance == VRRP_INSTANCE {
            "set vrrp.auth, the same secret of 16 characters or more on both nodes \
             (e.g. openssl rand -hex 16)"
        } else {
            "set auth_type = \"hmac\" and an auth_key of 16 characters or more, the same \
             on both nodes, in lbd.config"
        }
    }

    /// The console and log line.
    pub fn console_line(&self) -> String {
        format!(
            "init: warning: VRRP instance {} holds {} without authentication: any host on \
             the network can take them over; {}",
            self.instance,
            self.virtual_ips.join(" "),
            self.fix()
        )
    }

    /// The status screen's problem line (short: it is cut at the width).
    pub fn screen_line(&self) -> String {
        let setting = if self.instance == VRRP_INSTANCE {
            "set vrrp.auth"
        } else {
            "set auth_type/auth_key"
        };
        format!(
            "warning: VRRP {} runs without authentication: {setting}",
            self.instance
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn config(vrrp: &str) -> Config {
        let text = format!("[backends.web.servers.a]\naddress = \"10.9.0.1:80\"\n{vrrp}");
        lbd_config::load_texts(vec![(PathBuf::from("t.toml"), text)]).expect("valid config")
    }

    const APPLIANCE: &str = "[vrrp.appliance]\ninterface = \"eth0\"\nvrid = 51\n\
                             priority = 150\nvirtual_ips = [\"192.0.2.100/24\"]\n";

    /// Input: the appliance's instance with virtual IPs and no auth.
    /// Output: one warning naming the instance, its VIPs and vrrp.auth.
    #[test]
    fn virtual_ips_without_a_secret_are_reported() {
        let found = unauthenticated(&config(APPLIANCE));
        assert_eq!(
            found,
            [Unauthenticated {
                instance: "appliance".into(),
                virtual_ips: vec!["192.0.2.100/24".into()],
            }]
        );
        let line = found[0].console_line();
        assert!(line.starts_with("init: warning: VRRP instance appliance holds 192.0.2.100/24 without authentication"), "{line}");
        assert!(line.contains("set vrrp.auth"), "{line}");
        assert!(found[0].screen_line().contains("set vrrp.auth"));
    }

    /// Input: the same instance with hmac, and one with Keepalived's PASS.
    /// Output: nothing reported (PASS is weak, but it is what the admin
    /// chose for a Keepalived peer; lbd's docs say what it protects).
    #[test]
    fn authenticated_instances_are_not_reported() {
        let hmac =
            format!("{APPLIANCE}auth_type = \"hmac\"\nauth_key = \"0123456789abcdef0123\"\n");
        assert!(unauthenticated(&config(&hmac)).is_empty());
        let pass =
            format!("{APPLIANCE}version = 2\nauth_type = \"pass\"\nauth_pass = \"secret\"\n");
        assert!(unauthenticated(&config(&pass)).is_empty());
    }

    /// Input: boot with an unauthenticated instance in lbd's config.
    /// Output: the warning on the consoles (and so in the log), and on
    /// the status screen's problems, where later error lines do not push
    /// it out; a config that loads with auth clears it.
    #[test]
    fn boot_reports_on_the_console_and_the_status_screen() {
        let mut consoles = Consoles::for_tests();
        let board = std::sync::Arc::new(crate::status::Board::default());
        consoles.attach_board(board.clone());
        report(&mut consoles, &Ok(config(APPLIANCE)));
        assert!(
            consoles
                .recorded()
                .iter()
                .any(|l| l.contains("init: warning: VRRP instance appliance holds")),
            "{:?}",
            consoles.recorded()
        );
        for i in 0..10 {
            board.push_line(&format!("init: error: something else {i}"));
        }
        let problems = board.problems();
        assert_eq!(
            problems[0],
            "warning: VRRP appliance runs without authentication: set vrrp.auth"
        );
        let hmac =
            format!("{APPLIANCE}auth_type = \"hmac\"\nauth_key = \"0123456789abcdef0123\"\n");
        report(&mut consoles, &Ok(config(&hmac)));
        assert!(!board.problems()[0].contains("VRRP"));
    }

    /// Input: an instance from lbd.config, without auth.
    /// Output: reported with lbd's keys as the fix.
    #[test]
    fn an_admins_instance_names_lbds_keys() {
        let text = APPLIANCE.replace("[vrrp.appliance]", "[vrrp.web]");
        let found = unauthenticated(&config(&text));
        assert_eq!(found.len(), 1);
        assert!(found[0].console_line().contains("auth_type = \"hmac\""));
        assert!(found[0].screen_line().contains("auth_type/auth_key"));
    }
}
