//! `markspace registry`.

use crate::util::run;

#[test]
fn list_json_has_every_entry_with_sources() {
    let r = run(&["registry", "list", "--format", "json"]);
    check!(r, r.code == 0);
    let j = r.json();
    let list = j.as_array().expect("a list");
    check!(r, list.len() >= 6);
    for s in list {
        check!(r, s["source"].as_str().is_some_and(|x| !x.is_empty()));
        for c in s["claims"].as_array().unwrap() {
            check!(r, c["source"].as_str().is_some_and(|x| !x.is_empty()));
        }
    }
}

#[test]
fn check_passes_on_the_embedded_registry() {
    let r = run(&["registry", "check"]);
    check!(r, r.code == 0);
}
