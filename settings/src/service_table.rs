//! The service slots' rows of the property table: `service.N.<field>`, one
//! `<Category>` per slot ("Service 1" ...), all optional. A macro writes the
//! same nine rows for each slot so the slots cannot drift apart; a setter
//! per field, generic over the slot index, stores the parsed value.

use lbd_config::BALANCE_NAMES;

use crate::model::Settings;
use crate::service::{
    parse_balance, parse_check, parse_check_path, parse_mode, parse_name, parse_ports,
    parse_redirect, parse_servers, parse_virtual_ip, CHECK_NAMES, SERVICE_SLOTS,
};
use crate::table::{prop as row, OvfType, Property, Qualifier};

/// `MaxLen` of a slot's name in the wizard ([`crate::service::SERVICE_NAME_MAX_LEN`]).
const NAME_MAX_LEN: u32 = 26;

/// The nine rows of slot `$n` (1-based) storing into index `$i`.
macro_rules! slot {
    ($n:literal, $i:literal) => {
        [
            Property {
                qualifiers: &[Qualifier::MinLen(0), Qualifier::MaxLen(NAME_MAX_LEN)],
                ..row(
                    concat!("service.", $n, ".name"),
                    concat!("Service ", $n),
                    "Name",
                    "Name of the service on the stats page and in logs, e.g. horizon \
                     (letters, digits, - _ .). A slot with servers or a name is in use.",
                    "",
                    set_name::<$i>,
                )
            },
            row(
                concat!("service.", $n, ".virtual_ip"),
                concat!("Service ", $n),
                "Virtual IP",
                "Address clients connect to, e.g. 10.0.0.100 (/32) or 10.0.0.100/24. \
                 It joins the VRRP virtual IPs by itself. Empty: every address of the node.",
                "",
                set_virtual_ip::<$i>,
            ),
            row(
                concat!("service.", $n, ".ports"),
                concat!("Service ", $n),
                "Ports",
                "Comma separated ports the service listens on, e.g. 443 or 443,8443.",
                "",
                set_ports::<$i>,
            ),
            Property {
                qualifiers: &[Qualifier::ValueMap(&["tcp", "http"])],
                ..row(
                    concat!("service.", $n, ".mode"),
                    concat!("Service ", $n),
                    "Mode",
                    "tcp passes bytes through (TLS stays end to end); http parses requests.",
                    "tcp",
                    set_mode::<$i>,
                )
            },
            row(
                concat!("service.", $n, ".servers"),
                concat!("Service ", $n),
                "Servers",
                "Comma separated servers: addresses or names taking the service's port \
                 (10.0.0.11,10.0.0.12) or host:port items (cs1.example.com:8443).",
                "",
                set_servers::<$i>,
            ),
            Property {
                qualifiers: &[Qualifier::ValueMap(&BALANCE_NAMES)],
                ..row(
                    concat!("service.", $n, ".balance"),
                    concat!("Service ", $n),
                    "Balance",
                    "How clients are spread: roundrobin, static-rr, leastconn, first, \
                     source (a client keeps its server) or random.",
                    "roundrobin",
                    set_balance::<$i>,
                )
            },
            Property {
                qualifiers: &[Qualifier::ValueMap(&CHECK_NAMES)],
                ..row(
                    concat!("service.", $n, ".check"),
                    concat!("Service ", $n),
                    "Health check",
                    "none, tcp (connect), tls (TLS handshake), http or https (status 200 to 399 \
                     on the check path).",
                    "tcp",
                    set_check::<$i>,
                )
            },
            row(
                concat!("service.", $n, ".check_path"),
                concat!("Service ", $n),
                "Check path",
                "Request path of an http or https check, e.g. /favicon.ico. Empty: /.",
                "",
                set_check_path::<$i>,
            ),
            Property {
                ovf_type: OvfType::Boolean,
                ..row(
                    concat!("service.", $n, ".redirect_http"),
                    concat!("Service ", $n),
                    "Redirect HTTP to HTTPS",
                    "Answer port 80 on the virtual IP with a redirect to https.",
                    "false",
                    set_redirect_http::<$i>,
                )
            },
        ]
    };
}

/// Every slot's rows, slot by slot.
const SLOTS: [[Property; 9]; SERVICE_SLOTS] = [slot!(1, 0), slot!(2, 1), slot!(3, 2), slot!(4, 3)];

/// The rows as one list, for the table.
pub(crate) const SERVICE_ROWS: &[Property] = SLOTS.as_flattened();

/// An optional value: empty text clears it.
fn opt<T>(raw: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

// One setter per field; `N` is the slot index, below SERVICE_SLOTS by the
// table above.
fn set_name<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].name = opt(raw, parse_name)?;
    Ok(())
}
fn set_virtual_ip<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].virtual_ip = opt(raw, parse_virtual_ip)?;
    Ok(())
}
fn set_ports<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].ports = parse_ports(raw)?;
    Ok(())
}
fn set_mode<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].mode = parse_mode(raw)?;
    Ok(())
}
fn set_servers<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].servers = parse_servers(raw)?;
    Ok(())
}
fn set_balance<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].balance = parse_balance(raw)?;
    Ok(())
}
fn set_check<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].check = parse_check(raw)?;
    Ok(())
}
fn set_check_path<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].check_path = opt(raw, parse_check_path)?;
    Ok(())
}
fn set_redirect_http<const N: usize>(s: &mut Settings, raw: &str) -> Result<(), String> {
    s.service_slots[N].redirect_http = parse_redirect(raw)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::SERVICE_NAME_MAX_LEN;

    #[test]
    fn every_slot_has_every_field_under_its_category() {
        assert_eq!(SERVICE_ROWS.len(), SERVICE_SLOTS * 9);
        for (i, rows) in SLOTS.iter().enumerate() {
            let n = i + 1;
            for row in rows {
                assert!(row.key.starts_with(&format!("service.{n}.")), "{}", row.key);
                assert_eq!(row.category, format!("Service {n}"));
            }
        }
        assert_eq!(usize::try_from(NAME_MAX_LEN), Ok(SERVICE_NAME_MAX_LEN));
    }

    /// Input: a value for each field of slot 3. Output: it lands in slot 3
    /// only (the setter's index is the slot's).
    #[test]
    fn setters_write_their_own_slot() {
        let mut s = Settings::default();
        for row in &SLOTS[2] {
            let raw = match row.key.rsplit('.').next() {
                Some("name") => "web",
                Some("virtual_ip") => "10.0.0.5",
                Some("ports") => "8080",
                Some("mode") => "http",
                Some("servers") => "10.0.0.6",
                Some("balance") => "first",
                Some("check") => "http",
                Some("check_path") => "/health",
                _ => "true",
            };
            assert_eq!(row.apply(&mut s, raw), Ok(()), "{}", row.key);
        }
        assert_eq!(s.service_slots[2].name.as_deref(), Some("web"));
        assert_eq!(s.service_slots[2].ports, [8080]);
        assert!(s.service_slots[2].redirect_http);
        assert!(!s.service_slots[1].in_use() && !s.service_slots[3].in_use());
    }
}
