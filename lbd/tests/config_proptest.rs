//! The config loader never panics, whatever the input.

use std::path::PathBuf;

use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    "[frontends.f]\n",
    "[backends.b]\n",
    "[backends.b.servers.s]\n",
    "[backends.b.check]\n",
    "[stats.users.u]\n",
    "[global]\n",
    "[defaults.timeout]\n",
    "bind = [\"127.0.0.1:1\"]\n",
    "address = \"127.0.0.1:2\"\n",
    "weight = 300\n",
    "type = \"http\"\n",
    "path = \"x\"\n",
    "connect = \"5\"\n",
    "default_backend = \"b\"\n",
    "mode = \"http\"\n",
    "routes = [{}]\n",
    "balance = \"source\"\n",
    "[[frontends.f.routes]]\n",
    "password_hash = \"$argon2id$\"\n",
    "maxconn = 0\n",
    "inter = \"0s\"\n",
    "x = 1\n",
    "= =\n",
    "[a.b.c]\n",
    "\u{0}\n",
];

proptest! {
    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = lbd::config::load_texts(vec![(PathBuf::from("r.toml"), text)]);
    }

    #[test]
    fn random_fragments_never_panic(
        a in proptest::collection::vec(0..FRAGMENTS.len(), 0..20),
        b in proptest::collection::vec(0..FRAGMENTS.len(), 0..20),
    ) {
        let join = |v: &[usize]| v.iter().map(|i| FRAGMENTS[*i]).collect::<String>();
        let _ = lbd::config::load_texts(vec![
            (PathBuf::from("a.toml"), join(&a)),
            (PathBuf::from("b.toml"), join(&b)),
        ]);
    }
}

proptest! {
    #[test]
    fn proxy_protocol_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = lbd::proxy::proxy_protocol::decode(&bytes);
        let mut v2 = lbd::proxy::proxy_protocol::V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&bytes);
        let _ = lbd::proxy::proxy_protocol::decode(&v2);
        let mut v1 = b"PROXY ".to_vec();
        v1.extend_from_slice(&bytes);
        let _ = lbd::proxy::proxy_protocol::decode(&v1);
    }
}

proptest! {
    #[test]
    fn http_routing_and_forms_never_panic(host in "\\PC{0,40}", path in "\\PC{0,60}", body in "\\PC{0,200}") {
        let routes = vec![lbd::config::Route {
            host: Some("a.example".into()),
            path_prefix: Some("/x".into()),
            backend: "b".into(),
        }];
        let _ = lbd::proxy::route::route(&routes, Some("d"), Some(&host), &path);
        let _ = lbd::proxy::route::host_only(&host);
        let _ = lbd::web::form::parse_form(&body);
    }
}
