//! Every JSON document markspace prints is valid against its schema under `schema/`, on real
//! outputs. The validator supports exactly the keywords the schemas use (see schema/README.md);
//! an unknown keyword fails the test, so the schemas cannot silently use more.

use serde_json::Value;

use crate::util::{root, run};

/// Matches `^…$` patterns made of literal characters and `[class]{n}` (classes of ranges).
fn pattern_matches(pattern: &str, s: &str) -> bool {
    let p = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("anchored pattern");
    let (mut p, mut s) = (p.as_bytes(), s.as_bytes());
    while !p.is_empty() {
        if p[0] == b'[' {
            let close = p.iter().position(|&c| c == b']').expect("class end");
            let class = &p[1..close];
            let mut rest = &p[close + 1..];
            let mut n = 1;
            if rest.first() == Some(&b'{') {
                let end = rest.iter().position(|&c| c == b'}').expect("count end");
                n = std::str::from_utf8(&rest[1..end]).unwrap().parse().unwrap();
                rest = &rest[end + 1..];
            }
            let in_class = |c: u8| {
                class
                    .chunks(3)
                    .any(|r| r.len() == 3 && r[1] == b'-' && (r[0]..=r[2]).contains(&c))
            };
            if s.len() < n || !s[..n].iter().all(|&c| in_class(c)) {
                return false;
            }
            s = &s[n..];
            p = rest;
        } else {
            if s.first() != Some(&p[0]) {
                return false;
            }
            s = &s[1..];
            p = &p[1..];
        }
    }
    s.is_empty()
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("unsupported type {other}"),
    }
}

fn validate(root_schema: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    for (k, s) in map {
        match k.as_str() {
            "$schema" | "$id" | "title" | "$defs" | "description" => {}
            "$ref" => {
                let path = s.as_str().unwrap().strip_prefix("#/").expect("local ref");
                let mut target = root_schema;
                for part in path.split('/') {
                    target = &target[part];
                }
                validate(root_schema, target, v, at, errors);
            }
            "type" => {
                let ok = match s {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
                    _ => panic!("bad type"),
                };
                if !ok {
                    errors.push(format!("{at}: {v} is not of type {s}"));
                }
            }
            "enum" => {
                if !s.as_array().unwrap().contains(v) {
                    errors.push(format!("{at}: {v} not in {s}"));
                }
            }
            "const" => {
                if s != v {
                    errors.push(format!("{at}: {v} is not {s}"));
                }
            }
            "minimum" => {
                if v.as_f64().is_some_and(|x| x < s.as_f64().unwrap()) {
                    errors.push(format!("{at}: {v} below {s}"));
                }
            }
            "pattern" => {
                if let Some(text) = v.as_str() {
                    if !pattern_matches(s.as_str().unwrap(), text) {
                        errors.push(format!("{at}: {text:?} does not match {s}"));
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in s.as_array().unwrap() {
                        if !o.contains_key(r.as_str().unwrap()) {
                            errors.push(format!("{at}: missing {r}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (name, sub) in s.as_object().unwrap() {
                        if let Some(x) = o.get(name) {
                            validate(root_schema, sub, x, &format!("{at}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let (Some(o), Some(false)) = (v.as_object(), s.as_bool()) {
                    let known = map["properties"].as_object().unwrap();
                    for name in o.keys() {
                        if !known.contains_key(name) {
                            errors.push(format!("{at}: unexpected field {name}"));
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, x) in a.iter().enumerate() {
                        validate(root_schema, s, x, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            "oneOf" => {
                let n = s
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| {
                        let mut e = Vec::new();
                        validate(root_schema, sub, v, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if n != 1 {
                    errors.push(format!("{at}: {n} of oneOf match"));
                }
            }
            other => panic!("the schema uses {other}, which this validator does not check"),
        }
    }
}

fn check(schema_file: &str, args: &[&str]) {
    let path = root().join("schema").join(schema_file);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let r = run(args);
    assert!(r.code == 0 || r.code == 1, "{args:?}: {}", r.stderr);
    let doc = r.json();
    let mut errors = Vec::new();
    validate(&schema, &schema, &doc, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{args:?} against {schema_file}:\n{}",
        errors.join("\n")
    );
}

#[test]
fn every_json_document_matches_its_schema() {
    assert!(pattern_matches("^0x[0-9a-f]{8}$", "0x0000c000"));
    assert!(!pattern_matches("^0x[0-9a-f]{8}$", "0x0000c00"));
    let nodes = root().join("examples/nodes");
    for entry in std::fs::read_dir(&nodes).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            check(
                "audit.schema.json",
                &["audit", "--format", "json", p.to_str().unwrap()],
            );
        }
    }
    let n = nodes.to_str().unwrap();
    check(
        "audit-each.schema.json",
        &["audit", "--each", "--format", "json", n],
    );
    check("fleet.schema.json", &["fleet", "--format", "json", n]);
    let tc = nodes.join("tailscale-calico");
    let tc = tc.to_str().unwrap();
    check(
        "audit-bitfield.schema.json",
        &["audit", "--format", "bitfield", tc],
    );
    check("trace.schema.json", &["trace", tc, "--format", "json"]);
    check(
        "registry-list.schema.json",
        &["registry", "list", "--format", "json"],
    );
    check(
        "registry-list.schema.json",
        &["registry", "show", "calico", "--format", "json"],
    );
    check(
        "registry-list.schema.json",
        &["registry", "export", "--format", "json"],
    );
    check(
        "registry-who.schema.json",
        &["registry", "who", "0x4000", "--format", "json"],
    );
    check(
        "registry-decode.schema.json",
        &["registry", "decode", "0x80B00", "--format", "json"],
    );
    check(
        "registry-conflicts.schema.json",
        &["registry", "conflicts", "--format", "json"],
    );
    check(
        "registry-check.schema.json",
        &["registry", "check", "--format", "json"],
    );
    // A plan that exists, one that does not (its conflict), and a check of a node.
    for software in [
        &["calico", "tailscale"][..],
        &["cilium", "tailscale"],
        &["wireguard", "kube-proxy", "kubelet@1.27"],
    ] {
        let mut args = vec!["plan"];
        args.extend_from_slice(software);
        args.extend(["--format", "json"]);
        check("plan.schema.json", &args);
    }
    check(
        "plan-check.schema.json",
        &[
            "plan",
            "calico",
            "tailscale",
            "--check",
            tc,
            "--format",
            "json",
        ],
    );
}
