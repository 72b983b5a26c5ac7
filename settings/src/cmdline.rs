//! The kernel command line: `appliance.<key>=<value>` parameters.
//!
//! Split the way the kernel's `next_arg()` (lib/cmdline.c) does it, so a
//! value means the same here as in the kernel's own parameters:
//!
//! - parameters are separated by whitespace outside double quotes;
//! - a quote toggles "inside quotes" and is kept, except that
//! - a value that starts with a quote loses it and the quote that ends the
//!   parameter (`appliance.ntp="a b"` is `a b`), and a parameter that
//!   starts with a quote loses it and its closing quote
//!   (`"appliance.ntp=a b"` is `a b` too).

use crate::source::{Layer, Source};
use crate::table::OVF_CLASS;

/// Where init reads the command line.
pub const CMDLINE_PATH: &str = "/proc/cmdline";

/// The `appliance.*` parameters of a command line, prefix stripped. A bare
/// `appliance.<key>` without `=` has an empty value (which sets nothing).
pub fn parse(cmdline: &str) -> Layer {
    let prefix = format!("{OVF_CLASS}.");
    let pairs = args(cmdline)
        .into_iter()
        .filter_map(|(param, value)| {
            let key = param.strip_prefix(&prefix)?;
            Some((key.to_owned(), value.unwrap_or_default()))
        })
        .collect();
    Layer::new(Source::Cmdline, pairs)
}

/// Every parameter as `(name, value)`, per the kernel's `next_arg()`.
pub fn args(cmdline: &str) -> Vec<(String, Option<String>)> {
    let chars: Vec<char> = cmdline.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return out;
        }
        let (arg, next) = next_arg(&chars[i..]);
        out.push(arg);
        i += next;
    }
}

/// The kernel's `isspace()` for ASCII.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// One parameter from the start of `s` (no leading whitespace) and how many
/// chars it used, including the one separating whitespace.
fn next_arg(s: &[char]) -> ((String, Option<String>), usize) {
    let mut start = 0;
    let mut in_quote = false;
    let mut quoted = false;
    if s.first() == Some(&'"') {
        start = 1;
        in_quote = true;
        quoted = true;
    }
    let mut equals = None;
    let mut end = start;
    while end < s.len() {
        let c = s[end];
        if is_space(c) && !in_quote {
            break;
        }
        // Like the kernel, an `=` first in the parameter does not count.
        if equals.is_none() && c == '=' && end > start {
            equals = Some(end);
        }
        if c == '"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let used = if end < s.len() { end + 1 } else { end };
    let ends_with_quote = end > start && s[end - 1] == '"';
    let arg = match equals {
        None => {
            let stop = if quoted && ends_with_quote {
                end - 1
            } else {
                end
            };
            (s[start..stop].iter().collect(), None)
        }
        Some(eq) => {
            let param = s[start..eq].iter().collect();
            let mut vstart = eq + 1;
            let mut vend = end;
            if s.get(vstart) == Some(&'"') {
                vstart += 1;
                if ends_with_quote && end > vstart {
                    vend = end - 1;
                }
            } else if quoted && ends_with_quote {
                vend = end - 1;
            }
            (param, Some(s[vstart..vend.max(vstart)].iter().collect()))
        }
    };
    (arg, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(cmdline: &str) -> Vec<(String, String)> {
        parse(cmdline).pairs
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn picks_appliance_parameters_only() {
        assert_eq!(
            pairs("console=ttyS0 appliance.hostname=lb1 quiet appliance.network.mode=static"),
            vec![p("hostname", "lb1"), p("network.mode", "static")]
        );
    }

    #[test]
    fn quoting_as_the_kernel_does() {
        assert_eq!(
            pairs(r#"appliance.network.ntp="a.example b.example""#),
            vec![p("network.ntp", "a.example b.example")]
        );
        assert_eq!(
            pairs(r#""appliance.network.ntp=a.example b.example""#),
            vec![p("network.ntp", "a.example b.example")]
        );
        // Quotes in the middle stay and still protect the space.
        assert_eq!(
            pairs(r#"appliance.sysctl=a=1" "b x"#),
            vec![p("sysctl", r#"a=1" "b"#)]
        );
        // An unclosed quote runs to the end.
        assert_eq!(
            pairs(r#"appliance.hostname="lb1 quiet"#),
            vec![p("hostname", "lb1 quiet")]
        );
    }

    #[test]
    fn value_may_contain_equals_and_bare_flag_is_empty() {
        assert_eq!(
            pairs("appliance.lbd.config=W3N0YXRzXQo= appliance.network.slaac"),
            vec![p("lbd.config", "W3N0YXRzXQo="), p("network.slaac", "")]
        );
    }

    #[test]
    fn odd_inputs() {
        assert!(pairs("").is_empty());
        assert!(pairs("   \n").is_empty());
        assert_eq!(args("\""), vec![(String::new(), None)]);
        assert_eq!(args("a=\""), vec![("a".to_owned(), Some(String::new()))]);
        assert_eq!(args("\"a=\""), vec![("a".to_owned(), Some(String::new()))]);
    }
}
