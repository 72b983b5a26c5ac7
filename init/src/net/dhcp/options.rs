//! A pre-decoder for received DHCP messages: checks the fixed part and
//! keeps only the options the client reads, so the full decoder
//! (`dhcproto`) never sees the rest.
//!
//! Why: this runs in PID 1 on packets from the network, and a panic there
//! panics the kernel. `dhcproto` 0.15 `debug_assert!`s lengths of options
//! we never use (bulk lease query, client network interface, FQDN) and
//! indexes `chaddr` by an unchecked `hlen`. Dropping unused options and
//! checking `hlen` here removes those paths; `mangled_replies_never_panic`
//! keeps it honest.
//!
//! ```text
//!  0        1        2        3
//! +--------+--------+--------+--------+
//! |  op    | htype  |  hlen  |  hops  |   hlen <= 16 or rejected
//! +--------+--------+--------+--------+
//! |  xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr (24 bytes)
//! |  chaddr (16), sname (64), file (128)
//! +--------+--------+--------+--------+
//! |   99   |  130   |   83   |   99   |   magic cookie, offset 236
//! +--------+--------+--------+--------+
//! | code | len | data ... | code | len | data ... | 255 (end)
//! ```

/// Offset of the magic cookie: the fixed BOOTP header's length.
const FIXED_LEN: usize = 236;
/// RFC 2131 section 3: the options field starts with 99.130.83.99.
const MAGIC: [u8; 4] = [99, 130, 83, 99];
const PAD: u8 = 0;
const END: u8 = 255;
/// Options the client reads (RFC 2132 numbers): subnet mask, router, DNS,
/// host name, domain name, interface MTU, NTP servers, lease time,
/// message type, server id, T1, T2, domain search.
const KEPT: [u8; 13] = [1, 3, 6, 12, 15, 26, 42, 51, 53, 54, 58, 59, 119];

/// The message with only the kept options, or `None` when its fixed part
/// or option framing is broken.
pub fn keep_known(msg: &[u8]) -> Option<Vec<u8>> {
    let options_start = FIXED_LEN + MAGIC.len();
    if msg.len() < options_start || msg[2] > 16 || msg[FIXED_LEN..options_start] != MAGIC {
        return None;
    }
    let mut out = msg[..options_start].to_vec();
    let mut i = options_start;
    while let Some(&code) = msg.get(i) {
        match code {
            PAD => i += 1,
            END => break,
            _ => {
                let len = usize::from(*msg.get(i + 1)?);
                let data = msg.get(i + 2..i + 2 + len)?;
                if KEPT.contains(&code) {
                    out.push(code);
                    out.push(*msg.get(i + 1)?);
                    out.extend_from_slice(data);
                }
                i += 2 + len;
            }
        }
    }
    out.push(END);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(options: &[u8]) -> Vec<u8> {
        let mut m = vec![2, 1, 6, 0];
        m.resize(FIXED_LEN, 0);
        m.extend_from_slice(&MAGIC);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn keeps_known_options_drops_the_rest() {
        // 53 (type OFFER), 0 (pad), 94 (client network interface, a
        // length dhcproto asserts on), 54 (server id), end.
        let m = message(&[53, 1, 2, 0, 94, 1, 9, 54, 4, 192, 0, 2, 1, 255, 7, 7]);
        let kept = keep_known(&m).expect("well framed");
        assert_eq!(&kept[240..], &[53, 1, 2, 54, 4, 192, 0, 2, 1, 255]);
        assert_eq!(&kept[..240], &m[..240]);
    }

    #[test]
    fn rejects_broken_framing() {
        assert_eq!(keep_known(&[0; 100]), None, "short");
        let mut no_cookie = message(&[255]);
        no_cookie[236] = 0;
        assert_eq!(keep_known(&no_cookie), None, "no magic cookie");
        let mut long_hlen = message(&[255]);
        long_hlen[2] = 17;
        assert_eq!(keep_known(&long_hlen), None, "hlen past chaddr");
        assert_eq!(
            keep_known(&message(&[53, 4, 1])),
            None,
            "option past the end"
        );
        assert_eq!(keep_known(&message(&[53])), None, "length missing");
        // No end option: the options simply stop.
        assert_eq!(
            keep_known(&message(&[53, 1, 5])).map(|k| k[240..].to_vec()),
            Some(vec![53, 1, 5, 255])
        );
    }
}
