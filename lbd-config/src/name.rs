//! What a frontend or backend may be called. Names appear in the stats
//! page, in Prometheus labels, in log lines and in control-socket commands
//! (`set server horizon/cs1 state drain`), so they keep to HAProxy's
//! characters minus the `:` and `/` those places use as separators.

/// Longest frontend or backend name: room for the `-<port>` and `-http`
/// suffixes the appliance adds to a service's name.
pub const MAX_NAME_LEN: usize = 32;

/// `Ok` for 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_` and `.`
/// starting with a letter or digit; `Err` says what a good name is.
pub fn check_name(name: &str) -> Result<(), String> {
    let hint = || {
        format!(
            "use 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.', starting with a letter \
             or digit, e.g. horizon or app-volumes"
        )
    };
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let chars_ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if name.len() > MAX_NAME_LEN || !starts_well || !chars_ok {
        return Err(format!("{name:?} is not a valid name: {}", hint()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_names() {
        for good in [
            "horizon",
            "app-volumes",
            "web_1",
            "a.b",
            "H2",
            &"x".repeat(32),
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-x", "a/b", "a:b", "a b", "é", "_x", &"x".repeat(33)] {
            let e = check_name(bad).expect_err(bad);
            assert!(e.contains("letters, digits"), "{e}");
        }
    }

    /// Input: a frontend whose name has a `/`. Output: lbd's loader refuses
    /// it, naming the table and the rule.
    #[test]
    fn the_loader_applies_the_rule() {
        let text = "[backends.web.servers.a]\naddress = \"10.9.0.1:80\"\n\
                    [frontends.\"a/b\"]\nbind = [\"0.0.0.0:80\"]\ndefault_backend = \"web\"\n";
        let err = crate::load_texts(vec![("t.toml".into(), text.into())]).expect_err("bad name");
        let err = err.to_string();
        assert!(
            err.contains("frontends.a/b: \"a/b\" is not a valid name"),
            "{err}"
        );
    }
}
