//! `application/x-www-form-urlencoded` decoding for the admin forms.

/// Decodes `a=1&b=x%20y` into pairs. Malformed escapes are kept literally;
/// never fails or panics.
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as space.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `key`.
pub fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let f = parse_form("server=web%2Fs1&action=drain&note=a+b&bad=%zz%4");
        assert_eq!(field(&f, "server"), Some("web/s1"));
        assert_eq!(field(&f, "action"), Some("drain"));
        assert_eq!(field(&f, "note"), Some("a b"));
        assert_eq!(field(&f, "bad"), Some("%zz%4"));
        assert_eq!(field(&f, "none"), None);
    }

    #[test]
    fn multibyte_text_does_not_panic() {
        let f = parse_form("k=%E2%82%AC&é=%C3");
        assert_eq!(field(&f, "k"), Some("€"));
        assert_eq!(f.len(), 2);
    }
}
