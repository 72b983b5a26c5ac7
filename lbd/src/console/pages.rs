//! The console's HTML, CSS, script and OpenAPI document, compiled into the
//! binary: no external assets, nothing to fetch at run time. The two
//! pages are templates with `{{name}}` holes filled in one pass, each
//! value HTML-escaped, so a value can never open another hole or a tag.

use crate::config::Group;
use crate::stats::render::html_escape;

pub const LOGIN: &str = include_str!("assets/login.html");
pub const DASHBOARD: &str = include_str!("assets/dashboard.html");
pub const SCRIPT: &str = include_str!("assets/console.js");
pub const STYLE: &str = include_str!("assets/console.css");
pub const CHARTS_SCRIPT: &str = include_str!("assets/charts.js");
pub const CHARTS_STYLE: &str = include_str!("assets/charts.css");
pub const OPENAPI: &str = include_str!("assets/openapi.json");

/// `template` with each `{{key}}` replaced by the escaped value of `key`
/// in `values`; unknown holes become empty.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        if let Some((_, v)) = values.iter().find(|(k, _)| *k == key) {
            out.push_str(&html_escape(v));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The login form, with `error` shown above it after a failed attempt.
pub fn login(node: &str, error: Option<&str>) -> String {
    let form = fill(LOGIN, &[("node", node)]);
    match error {
        // The message is ours, but it goes through the escaper all the same.
        Some(e) => form.replacen(
            "<h1>Log in</h1>\n",
            &format!(
                "<h1>Log in</h1>\n<p id=\"login-error\" class=\"alert\">{}</p>\n",
                html_escape(e)
            ),
            1,
        ),
        None => form,
    }
}

pub fn role(group: Group) -> &'static str {
    match group {
        Group::Admin => "admin",
        Group::ReadOnly => "read-only",
    }
}

/// What every page shows in its frame: the node, its VRRP role and who
/// is logged in (with the CSRF token the page's changes carry).
pub struct View<'a> {
    pub node: &'a str,
    pub vrrp: &'a str,
    pub user: &'a str,
    pub group: Group,
    pub csrf: &'a str,
}

/// The console's pages, by path: each is HTML the script fills in from
/// the API.
pub const PAGES: &[&str] = &["/"];

pub fn is_page(path: &str) -> bool {
    PAGES.contains(&path)
}

/// The page at `path` for the caller in `view`.
pub fn page(path: &str, view: &View) -> Option<String> {
    match path {
        "/" => Some(dashboard(
            view.node, view.vrrp, view.user, view.group, view.csrf,
        )),
        _ => None,
    }
}

/// The dashboard for `user`; the script fills in the rest from the API.
pub fn dashboard(node: &str, vrrp: &str, user: &str, group: Group, csrf: &str) -> String {
    fill(
        DASHBOARD,
        &[
            ("node", node),
            ("vrrp", vrrp),
            ("user", user),
            ("role", role(group)),
            ("csrf", csrf),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_filled_once_and_escaped() {
        let out = fill(
            "<p>{{a}} {{b}} {{missing}}</p>{{",
            &[("a", "<b>{{b}}</b>"), ("b", "x\"y")],
        );
        assert_eq!(out, "<p>&lt;b&gt;{{b}}&lt;/b&gt; x&quot;y </p>{{");
    }

    #[test]
    fn pages_carry_the_ids_the_browser_tests_use() {
        let l = login("lb1", Some("wrong <user>"));
        for id in [
            "login-user",
            "login-password",
            "login-submit",
            "login-error",
        ] {
            assert!(l.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(l.contains("wrong &lt;user&gt;"));
        assert!(!login("lb1", None).contains("login-error"));
        let d = dashboard("lb1", "no VRRP", "ops", Group::ReadOnly, "abc");
        for id in [
            "node-name",
            "vrrp-state",
            "services",
            "logout",
            "user",
            "error",
        ] {
            assert!(d.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(d.contains("ops (read-only)"));
        assert!(d.contains("content=\"abc\""));
        assert!(!d.contains("{{"));
        assert!(!d.contains("<script>"), "no inline script");
        assert!(!d.contains("style="), "no inline style");
    }
}
