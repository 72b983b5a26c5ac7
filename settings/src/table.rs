//! The property table: one definition per setting, used both to write the
//! OVF descriptor's ProductSection (by the `ova` crate, through
//! [`properties`]) and to parse every source in the guest.

use std::fmt;

use crate::model::{self, Settings};
use crate::service_table::SERVICE_ROWS;

/// The `ovf:class` of every property: in the OVF environment a property
/// appears as `appliance.<key>`.
pub const OVF_CLASS: &str = "appliance";

/// `ovf:type` of a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OvfType {
    /// `string`
    String,
    /// `boolean` (the environment says `True`/`False`)
    Boolean,
    /// `uint8`
    Uint8,
    /// `uint16`
    Uint16,
}

impl OvfType {
    /// The `ovf:type` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Uint8 => "uint8",
            Self::Uint16 => "uint16",
        }
    }
}

/// One entry of `ovf:qualifiers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `MinLen(n)`
    MinLen(u32),
    /// `MaxLen(n)`
    MaxLen(u32),
    /// `MinValue(n)`
    MinValue(u64),
    /// `MaxValue(n)`
    MaxValue(u64),
    /// `ValueMap{"a","b"}`
    ValueMap(&'static [&'static str]),
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MinLen(n) => write!(f, "MinLen({n})"),
            Self::MaxLen(n) => write!(f, "MaxLen({n})"),
            Self::MinValue(n) => write!(f, "MinValue({n})"),
            Self::MaxValue(n) => write!(f, "MaxValue({n})"),
            Self::ValueMap(values) => {
                f.write_str("ValueMap{")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "\"{v}\"")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// One setting. Plain data except `apply`, the parser that sets the typed
/// field of [`Settings`].
#[derive(Clone, Copy)]
pub struct Property {
    /// The setting's key, e.g. `network.mode` (see the crate doc for how it
    /// is spelled in each source).
    pub key: &'static str,
    /// `ovf:type`.
    pub ovf_type: OvfType,
    /// `<Label>`: short text in the deploy wizard.
    pub label: &'static str,
    /// `<Description>`: one or two sentences with an example.
    pub description: &'static str,
    /// `<Category>` this property is listed under.
    pub category: &'static str,
    /// `ovf:value`: the default, as text; empty means not set.
    pub default: &'static str,
    /// `ovf:qualifiers`.
    pub qualifiers: &'static [Qualifier],
    /// `ovf:password="true"`: a secret, masked in the wizard and on the console.
    pub password: bool,
    /// A login password: the appliance store keeps only lbd's argon2id
    /// hash of it (a TLS key or the VRRP key must stay usable, so they are
    /// secrets without this).
    pub hashed: bool,
    /// The value may hold secrets without being one (`lbd.config` can carry
    /// TLS keys and password hashes): a clear text field in the wizard, but
    /// masked wherever the appliance prints it (see [`Property::masked`]).
    pub holds_secrets: bool,
    /// `vmw:qualifiers="Ip"`: a single IP address, checked by the wizard.
    pub ip: bool,
    /// `ovf:userConfigurable="true"`.
    pub user_configurable: bool,
    pub(crate) apply: fn(&mut Settings, &str) -> Result<(), String>,
}

impl Property {
    /// The key as it appears in the OVF environment: `appliance.<key>`.
    pub fn env_key(&self) -> String {
        format!("{OVF_CLASS}.{}", self.key)
    }

    /// The guestinfo variable: `guestinfo.appliance.<key>`.
    pub fn guestinfo_key(&self) -> String {
        format!("guestinfo.{OVF_CLASS}.{}", self.key)
    }

    /// `ovf:qualifiers` as one attribute value, `None` if there are none.
    pub fn ovf_qualifiers(&self) -> Option<String> {
        if self.qualifiers.is_empty() {
            return None;
        }
        let parts: Vec<String> = self.qualifiers.iter().map(ToString::to_string).collect();
        Some(parts.join(","))
    }

    /// Whether the value must never be printed (consoles, the log file on
    /// the data disk, the status screen) nor baked into an image: a
    /// password, or a value that holds secrets.
    pub fn masked(&self) -> bool {
        self.password || self.holds_secrets
    }

    /// Parses `raw` and stores it in `settings`; on error `settings` is
    /// unchanged and the message says what a good value looks like.
    pub fn apply(&self, settings: &mut Settings, raw: &str) -> Result<(), String> {
        (self.apply)(settings, raw)
    }
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Property")
            .field("key", &self.key)
            .field("ovf_type", &self.ovf_type)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// Every setting, in the order the wizard and the console show them.
pub fn properties() -> &'static [Property] {
    &PROPERTIES
}

/// The property with this key (`network.mode`), if any.
pub fn find(key: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.key == key)
}

const CAT_SYSTEM: &str = "System";
const CAT_NETWORK: &str = "Network";
const CAT_VRRP: &str = "High availability (VRRP)";
const CAT_CONSOLE: &str = "Web console";
const CAT_ADVANCED: &str = "Advanced";

/// A property with the common flags: string, user configurable, no
/// qualifiers; the table below (and the service slots' rows) override
/// what differs.
pub(crate) const fn prop(
    key: &'static str,
    category: &'static str,
    label: &'static str,
    description: &'static str,
    default: &'static str,
    apply: fn(&mut Settings, &str) -> Result<(), String>,
) -> Property {
    Property {
        key,
        ovf_type: OvfType::String,
        label,
        description,
        category,
        default,
        qualifiers: &[],
        password: false,
        hashed: false,
        holds_secrets: false,
        ip: false,
        user_configurable: true,
        apply,
    }
}

/// The table: the settings up to VRRP, the service slots, then the
/// advanced ones (in the wizard's order).
pub(crate) static PROPERTIES: [Property; BASE.len() + SERVICE_ROWS.len() + ADVANCED.len()] =
    concat([BASE, SERVICE_ROWS, ADVANCED]);

/// `parts` one after another: a table built at compile time from the
/// slot rows the macro in `service_table` writes.
const fn concat<const N: usize>(parts: [&[Property]; 3]) -> [Property; N] {
    let mut out = [parts[0][0]; N];
    let (mut n, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "the table's length is the sum of its parts");
    out
}

const BASE: &[Property] = &[
    Property {
        qualifiers: &[Qualifier::MinLen(1), Qualifier::MaxLen(253)],
        ..prop(
            "hostname",
            CAT_SYSTEM,
            "Hostname",
            "Host name or FQDN of this node, e.g. lb1 or lb1.example.com.",
            "lb",
            model::set_hostname,
        )
    },
    Property {
        qualifiers: &[Qualifier::MinLen(0), Qualifier::MaxLen(128)],
        password: true,
        hashed: true,
        ..prop(
            "admin.password",
            CAT_SYSTEM,
            "Admin password",
            "Password of the admin user of the web console (https://<address>:5480/) and \
             the stats page, at least 8 characters. Empty disables the admin page.",
            "",
            model::set_admin_password,
        )
    },
    Property {
        qualifiers: &[Qualifier::MinLen(0), Qualifier::MaxLen(128)],
        password: true,
        hashed: true,
        ..prop(
            "admin.readonly_password",
            CAT_SYSTEM,
            "Read-only password",
            "Password of the readonly user, who sees the web console and the stats page \
             but changes nothing; at least 8 characters. Empty: no read-only user.",
            "",
            model::set_readonly_password,
        )
    },
    Property {
        qualifiers: &[Qualifier::ValueMap(&["dhcp", "static"])],
        ..prop(
            "network.mode",
            CAT_NETWORK,
            "Network mode",
            "dhcp gets the address from a DHCP server; static uses the address, \
             gateway and DNS below.",
            "dhcp",
            model::set_mode,
        )
    },
    prop(
        "network.ipv4",
        CAT_NETWORK,
        "IPv4 address/prefix",
        "Static IPv4 address with prefix length, e.g. 192.0.2.10/24. Used when the mode is static.",
        "",
        model::set_ipv4,
    ),
    Property {
        ip: true,
        ..prop(
            "network.gateway",
            CAT_NETWORK,
            "IPv4 gateway",
            "IPv4 default gateway, e.g. 192.0.2.1. Used when the mode is static.",
            "",
            model::set_gateway,
        )
    },
    prop(
        "network.dns",
        CAT_NETWORK,
        "DNS servers",
        "Comma separated resolver addresses, e.g. 192.0.2.53,192.0.2.54.",
        "",
        model::set_dns,
    ),
    prop(
        "network.ntp",
        CAT_NETWORK,
        "NTP servers",
        "Comma separated NTP servers (names or addresses), e.g. pool.ntp.org.",
        "",
        model::set_ntp,
    ),
    prop(
        "network.ipv6",
        CAT_NETWORK,
        "IPv6 address/prefix",
        "Optional static IPv6 address with prefix length, e.g. 2001:db8::10/64.",
        "",
        model::set_ipv6,
    ),
    Property {
        ip: true,
        ..prop(
            "network.gateway6",
            CAT_NETWORK,
            "IPv6 gateway",
            "Optional IPv6 default gateway, e.g. fe80::1.",
            "",
            model::set_gateway6,
        )
    },
    Property {
        ovf_type: OvfType::Boolean,
        ..prop(
            "network.slaac",
            CAT_NETWORK,
            "IPv6 autoconfiguration",
            "Accept IPv6 router advertisements (SLAAC).",
            "true",
            model::set_slaac,
        )
    },
    Property {
        ovf_type: OvfType::Uint16,
        qualifiers: &[Qualifier::MinValue(576), Qualifier::MaxValue(9000)],
        ..prop(
            "network.mtu",
            CAT_NETWORK,
            "MTU",
            "MTU of the network interface, 576 to 9000.",
            "1500",
            model::set_mtu,
        )
    },
    prop(
        "firewall.ports",
        CAT_NETWORK,
        "Extra open ports",
        "Comma separated extra inbound ports beyond the load balancer's own, \
         e.g. 8443,514/udp (a bare number is TCP).",
        "",
        model::set_firewall_ports,
    ),
    prop(
        "syslog.server",
        CAT_NETWORK,
        "Remote syslog server",
        "Send the appliance's log lines (init and the load balancer) as RFC 5424 \
         syslog, e.g. 192.0.2.5 (UDP 514), 192.0.2.5:1514 or tcp://192.0.2.5:601. \
         Empty: logs stay on the appliance.",
        "",
        model::set_syslog,
    ),
    Property {
        ovf_type: OvfType::Uint8,
        qualifiers: &[Qualifier::MinValue(1), Qualifier::MaxValue(255)],
        ..prop(
            "vrrp.router_id",
            CAT_VRRP,
            "Virtual router ID",
            "VRRP virtual router ID (1 to 255), the same on both nodes of a pair \
             and unique on the network.",
            "51",
            model::set_router_id,
        )
    },
    Property {
        ovf_type: OvfType::Uint8,
        qualifiers: &[Qualifier::MinValue(1), Qualifier::MaxValue(254)],
        ..prop(
            "vrrp.priority",
            CAT_VRRP,
            "Priority",
            "VRRP priority (1 to 254); the node with the higher priority holds the \
             virtual IPs, e.g. 150 on the first node and 100 on the second.",
            "100",
            model::set_priority,
        )
    },
    prop(
        "vrrp.peers",
        CAT_VRRP,
        "Peer addresses",
        "Comma separated addresses of the other node(s) for unicast VRRP, \
         e.g. 192.0.2.11. Empty uses multicast.",
        "",
        model::set_peers,
    ),
    prop(
        "vrrp.virtual_ips",
        CAT_VRRP,
        "Virtual IPs",
        "Comma separated virtual addresses with prefix that the pair holds, \
         e.g. 192.0.2.100/24.",
        "",
        model::set_virtual_ips,
    ),
    Property {
        qualifiers: &[Qualifier::MinLen(0), Qualifier::MaxLen(128)],
        password: true,
        ..prop(
            "vrrp.auth",
            CAT_VRRP,
            "VRRP shared secret",
            "Shared secret both nodes must agree on; empty disables authentication. \
             Between two appliances it keys an HMAC-SHA256 with replay protection and \
             needs 16 characters or more (e.g. openssl rand -hex 16). With a Keepalived \
             peer only its first 8 characters are used, sent in clear (PASS).",
            "",
            model::set_vrrp_auth,
        )
    },
    Property {
        qualifiers: &[Qualifier::ValueMap(&["lbd", "keepalived"])],
        ..prop(
            "vrrp.peer_software",
            CAT_VRRP,
            "Peer software",
            "lbd: the other node is this appliance (VRRP v3). keepalived: the other \
             node runs Keepalived, e.g. while migrating one node at a time (VRRP v2, \
             advert interval 1 s).",
            "lbd",
            model::set_peer_software,
        )
    },
];

const ADVANCED: &[Property] = &[
    prop(
        "console.certificate",
        CAT_CONSOLE,
        "Web console certificate (PEM)",
        "Optional: your own certificate for the web console on port 5480, PEM \
         (-----BEGIN CERTIFICATE-----...), the server's first, then its chain; pasting \
         it on one line is fine. Empty: the appliance makes a self-signed one and shows \
         its SHA-256 fingerprint on the VM console.",
        "",
        model::set_console_certificate,
    ),
    Property {
        password: true,
        ..prop(
            "console.key",
            CAT_CONSOLE,
            "Web console private key (PEM)",
            "The unencrypted private key of the certificate above, PEM \
             (-----BEGIN PRIVATE KEY-----...); pasting it on one line is fine.",
            "",
            model::set_console_key,
        )
    },
    Property {
        // TLS keys, password hashes: shown masked, never baked.
        holds_secrets: true,
        ..prop(
            "lbd.config",
            CAT_ADVANCED,
            "Load balancer config (base64)",
            "For advanced use: a whole lbd TOML configuration, base64 encoded \
             (base64 -w0 lbd.toml), for what the service slots cannot say. The settings \
             above, the service slots included, are layered on top of it.",
            "",
            model::set_lbd_config,
        )
    },
    prop(
        "ntp.max_step",
        CAT_ADVANCED,
        "Largest clock step (seconds)",
        "Boot time sync refuses to step the clock by more than this many seconds \
         (default 1000) and shows it as a problem; any if the clock is known to \
         be far off.",
        "1000",
        model::set_ntp_max_step,
    ),
    prop(
        "sysctl",
        CAT_ADVANCED,
        "Extra sysctls",
        "Comma separated name=value pairs applied after the built-in set, \
         e.g. net.core.somaxconn=4096.",
        "",
        model::set_sysctls,
    ),
];

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
