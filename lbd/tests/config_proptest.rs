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
