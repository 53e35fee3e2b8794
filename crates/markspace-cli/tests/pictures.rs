//! Pictures and installation: the HTML reports in a real browser (headless Chromium, Debian's
//! `chromium`, installed by scripts/test.sh), Mermaid and WaveDrom output, shell completions,
//! the manual page, short flags and the `registry list` table.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{root, run, Dir};

const EXAMPLES: [&str; 6] = [
    "cilium-kube-proxy",
    "kube-proxy-calico",
    "nft-tailscale-mullvad",
    "tailscale-calico",
    "unmasked-restore",
    "wireguard-kubefirewall",
];

fn example(name: &str) -> String {
    root()
        .join("examples/nodes")
        .join(name)
        .display()
        .to_string()
}

/// Where the screenshots are kept after the run: `<target>/test-artifacts/html/`.
fn artifacts() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_markspace"));
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("the binary sits in <target>/<profile>/");
    let dir = target.join("test-artifacts/html");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir
}

/// Runs headless Chromium on a local file with the flags this machine's closed network needs,
/// in a fresh profile directory; returns stdout.
fn chromium(page: &Path, extra: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot(page: &Path, png: &Path) {
    chromium(
        page,
        &[
            "--window-size=1280,1800",
            &format!("--screenshot={}", png.display()),
        ],
    );
    let bytes = std::fs::read(png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    // A blank 1280x1800 page compresses to a few kilobytes; a drawn report is far larger.
    assert!(
        bytes.len() > 40_000,
        "{}: {} bytes, a blank page?",
        png.display(),
        bytes.len()
    );
}

/// Every bundled example: the page is written, drawn and screenshotted, and the DOM the browser
/// built holds a map row for each owner the JSON report names in each field, and one article
/// per finding with its code.
#[test]
fn html_reports_of_the_examples_render_in_chromium_with_their_owners_and_findings() {
    let dir = artifacts();
    for name in EXAMPLES {
        let json = run(&["audit", "-o", "json", "--fail-on", "never", &example(name)]).json();
        let r = run(&["audit", "-o", "html", "--fail-on", "never", &example(name)]);
        // 3: an example that is incomplete on purpose still gets its page.
        check!(
            r,
            (r.code == 0 || r.code == 3) && r.stdout.starts_with("<!DOCTYPE html>")
        );
        let page = dir.join(format!("{name}.html"));
        std::fs::write(&page, &r.stdout).expect("write page");
        screenshot(&page, &dir.join(format!("{name}.png")));
        let dom = chromium(&page, &["--dump-dom"]);
        assert_eq!(
            dom.matches("<svg class=\"regmap\"").count(),
            2,
            "{name}: both fields drawn"
        );
        for o in json["owners"].as_array().expect("owners") {
            let id = o["id"].as_str().expect("id");
            for (field, key) in [("mark", "mark"), ("ctmark", "ctmark")] {
                let used = o["bits"][key] != "0x00000000" || o["claimed"][key] != "0x00000000";
                let svg = dom
                    .split(&format!("data-field=\"{field}\""))
                    .nth(1)
                    .and_then(|s| s.split("</svg>").next())
                    .expect("the field's map");
                assert_eq!(
                    svg.contains(&format!("<g class=\"owner\" data-owner=\"{id}\">")),
                    used,
                    "{name}: row of {id} in the {field} map"
                );
            }
            assert!(
                dom.contains(&format!("<tr class=\"owner\" data-owner=\"{id}\">")),
                "{name}: {id} in the owners table"
            );
        }
        let findings = json["findings"].as_array().expect("findings");
        assert_eq!(
            dom.matches("<article class=\"finding ").count(),
            findings.len(),
            "{name}: one article per finding"
        );
        for (i, f) in findings.iter().enumerate() {
            let code = f["code"].as_str().expect("code");
            assert!(
                dom.contains(&format!("id=\"finding-{}\" data-code=\"{code}\"", i + 1)),
                "{name}: finding {} {code}",
                i + 1
            );
        }
        for input in json["inputs"].as_array().expect("inputs") {
            let file = input["file"].as_str().expect("file");
            assert!(
                dom.contains(&format!("<code>{file}</code>")),
                "{name}: input {file}"
            );
        }
    }
}

/// The conflict of the Tailscale + Calico example is drawn: conflict cells in both owners'
/// rows, with hover text naming the rules.
#[test]
fn the_tailscale_calico_map_marks_the_conflict_with_rules_on_hover() {
    let r = run(&["audit", "-o", "html", &example("tailscale-calico")]);
    check!(r, r.code == 1);
    for owner in ["calico", "tailscale"] {
        let row = r
            .stdout
            .split(&format!("data-owner=\"{owner}\">"))
            .nth(1)
            .and_then(|s| s.split("</g>\n</g>").next())
            .unwrap_or("");
        check!(r, row.contains(" conflict\" data-bit=\"18\""));
    }
    check!(
        r,
        r.stdout
            .contains("tailscale: packet mark bit 18 (0x00040000): reads and writes")
    );
    check!(r, r.stdout.contains("iptables-save.txt:187  -A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000"));
}

#[test]
fn html_trace_draws_each_path_as_a_flow_through_the_hooks() {
    let args = [
        "trace",
        &example("tailscale-calico"),
        "--path",
        "forward",
        "-i",
        "tailscale0",
        "--out",
        "eth0",
        "-p",
        "tcp",
    ];
    let json = run(&[&args[..], &["-o", "json"]].concat()).json();
    let r = run(&[&args[..], &["-o", "html"]].concat());
    check!(r, r.code == 0);
    let page = artifacts().join("trace-tailscale-calico.html");
    std::fs::write(&page, &r.stdout).expect("write page");
    screenshot(&page, &artifacts().join("trace-tailscale-calico.png"));
    let dom = chromium(&page, &["--dump-dom"]);
    let paths = json["paths"].as_array().expect("paths");
    assert_eq!(dom.matches("<section class=\"path\"").count(), paths.len());
    for hook in ["PREROUTING", "FORWARD", "POSTROUTING"] {
        assert!(dom.contains(&format!("data-hook=\"{hook}\"")), "{hook}");
    }
    assert!(dom.contains("data-owner=\"tailscale\""));
    let verdict = paths[0]["verdict"].as_str().expect("verdict");
    assert!(dom.contains(&format!("data-verdict=\"{verdict}\"")));
}

#[test]
fn markdown_trace_paths_are_mermaid_flowcharts() {
    let r = run(&[
        "trace",
        &example("tailscale-calico"),
        "-i",
        "tailscale0",
        "-o",
        "markdown",
    ]);
    check!(r, r.code == 0);
    check!(r, r.stdout.contains("```mermaid\nflowchart TD\n"));
    check!(r, r.stdout.contains("subgraph s0[\"PREROUTING\"]"));
    check!(r, r.stdout.contains("--> n1\n"));
    // The audit's findings with a path carry one too.
    let r = run(&["audit", "-o", "markdown", &example("tailscale-calico")]);
    check!(
        r,
        r.stdout
            .contains("```mermaid\nflowchart LR\n  subgraph s0[\"FORWARD\"]")
    );
}

#[test]
fn bitfield_is_a_wavedrom_register_of_both_fields() {
    let r = run(&["audit", "-o", "bitfield", &example("tailscale-calico")]);
    let doc = r.json();
    let reg = doc["reg"].as_array().expect("reg");
    let total: u64 = reg.iter().map(|f| f["bits"].as_u64().expect("bits")).sum();
    check!(r, total == 64 && doc["config"]["lanes"] == 2);
    // Bits 16-19 of the packet mark: both owners, in conflict.
    let mut at = 0;
    let mut shared = None;
    for f in reg {
        if at == 16 {
            shared = Some(f);
        }
        at += f["bits"].as_u64().expect("bits");
    }
    let shared = shared.expect("a field starts at bit 16");
    check!(
        r,
        shared["name"] == "calico+tailscale" && shared["type"] == 5
    );
}

/// bash's completion of `markspace audit --fo`: the generated script loaded into bash, its
/// completion function called as readline would call it.
#[test]
fn bash_completes_audit_dash_dash_fo_to_format() {
    let script = run(&["completions", "bash"]);
    check!(script, script.code == 0);
    let dir = Dir::new();
    let file = dir.file("markspace.bash", &script.stdout);
    let probe = format!(
        "source {file}\n\
         COMP_WORDS=(markspace audit --fo); COMP_CWORD=2; COMP_LINE='markspace audit --fo'; COMP_POINT=${{#COMP_LINE}}\n\
         func=$(complete -p markspace | sed -E 's/.*-F ([^ ]+).*/\\1/')\n\
         $func markspace --fo audit\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("bash runs");
    let replies = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        replies.split_whitespace().collect::<Vec<_>>(),
        ["--format"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The subcommands complete too.
    let probe = probe
        .replace("(markspace audit --fo)", "(markspace tr)")
        .replace("COMP_CWORD=2", "COMP_CWORD=1")
        .replace("$func markspace --fo audit", "$func markspace tr markspace");
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("bash runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "trace");
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand_and_format() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let r = run(&["completions", shell]);
        check!(r, r.code == 0);
        for word in ["audit", "trace", "registry", "completions", "format"] {
            check!(r, r.stdout.contains(word));
        }
        if shell == "zsh" || shell == "fish" {
            check!(
                r,
                r.stdout.contains("bitfield") && r.stdout.contains("html")
            );
        }
    }
    let r = run(&["completions", "tcsh"]);
    check!(r, r.code == 2 && r.stderr.contains("bash"));
}

#[test]
fn the_man_page_documents_each_subcommand_and_the_exit_statuses() {
    let r = run(&["man"]);
    check!(
        r,
        r.code == 0 && r.stdout.starts_with(".ie") && r.stdout.contains(".TH markspace 1")
    );
    for section in [
        ".SH \"MARKSPACE AUDIT\"",
        ".SH \"MARKSPACE TRACE\"",
        ".SH \"MARKSPACE REGISTRY\"",
        ".SH \"MARKSPACE COLLECT\"",
        ".SH \"EXIT STATUS\"",
    ] {
        check!(r, r.stdout.contains(section));
    }
    check!(r, r.stdout.contains("\\fB\\-o\\fR, \\fB\\-\\-format\\fR"));
    // groff (man-db's formatter) reads it without a warning, when it is installed.
    if let Ok(out) = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("piped")
                .write_all(r.stdout.as_bytes())?;
            c.wait_with_output()
        })
    {
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dash_o_and_short_flags_work_like_the_long_ones() {
    let long = run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        &example("tailscale-calico"),
    ]);
    let short = run(&[
        "audit",
        "-o",
        "json",
        "-f",
        "never",
        &example("tailscale-calico"),
    ]);
    check!(short, short.code == 0 && short.stdout == long.stdout);
    let kubectl = run(&["registry", "list", "--output", "json"]);
    check!(kubectl, kubectl.json()["software"].is_array());
}

#[test]
fn registry_list_is_a_table_that_fits_columns() {
    let wide = run(&["registry", "list"]);
    let lines: Vec<&str> = wide.stdout.lines().collect();
    check!(
        wide,
        lines[0].split_whitespace().collect::<Vec<_>>()
            == ["ID", "CATEGORY", "MARK", "CTMARK", "SUMMARY"]
    );
    // Piped without COLUMNS: whole lines, for grep.
    check!(wide, lines.iter().any(|l| l.chars().count() > 200));
    let out = Command::new(env!("CARGO_BIN_EXE_markspace"))
        .args(["registry", "list"])
        .env("COLUMNS", "80")
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), lines.len());
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
    // The columns line up: every value of MARK starts where its header does.
    let at = text
        .lines()
        .next()
        .and_then(|h| h.find("MARK"))
        .expect("header");
    assert!(
        text.lines()
            .skip(1)
            .all(|l| l[..].chars().nth(at).is_some_and(|c| c == '0' || c == '-')),
        "{text}"
    );
}

#[test]
fn each_refuses_html_and_bitfield_with_a_way_out() {
    let nodes = root().join("examples/nodes").display().to_string();
    for format in ["html", "bitfield"] {
        let r = run(&["audit", "--each", "-o", format, &nodes]);
        check!(
            r,
            r.code == 2 && r.stdout.is_empty() && r.stderr.contains("audit each node on its own")
        );
    }
}

/// A snapshot's manifest is on the page: host, kernel, time, tools and each command.
#[test]
fn html_shows_the_snapshot_manifest() {
    let dir = Dir::new();
    let rules =
        std::fs::read_to_string(root().join("examples/nodes/kube-proxy-calico/iptables-save.txt"))
            .expect("example");
    dir.file("iptables-save.txt", &rules);
    dir.file(
        "manifest.json",
        r#"{"version": 1, "host": "node-7", "kernel": "6.1.0", "time": "2026-12-04T10:00:00Z",
            "markspace": "0.1.0", "tools": [["iptables", "iptables v1.8.9 (nf_tables)"]],
            "nft_tables": [], "duration_ms": 12,
            "steps": [{"argv": ["iptables-save"], "file": "iptables-save.txt", "status": "ok",
                       "exit_code": 0, "duration_ms": 2, "bytes": 194, "truncated": false, "note": null}]}"#,
    );
    let r = run(&["audit", "-o", "html", dir.path().to_str().expect("utf-8")]);
    check!(r, r.code == 0);
    check!(
        r,
        r.stdout
            .contains("host <b>node-7</b>, kernel 6.1.0, collected 2026-12-04T10:00:00Z")
    );
    check!(r, r.stdout.contains("<td>iptables v1.8.9 (nf_tables)</td>"));
    check!(r, r.stdout.contains("<code>iptables-save</code>"));
}

/// `plan calico tailscale -o html` in the browser: one map per field and namespace the JSON
/// plan allocates in, a row per allocation in its map, Calico's row moved with the overlap it
/// leaves drawn, and each changed setting with each tool's text in a `<pre>`.
#[test]
fn html_plan_draws_the_planned_map_and_the_settings_in_chromium() {
    let json = run(&["plan", "calico", "tailscale", "-o", "json"]).json();
    let r = run(&["plan", "calico", "tailscale", "-o", "html"]);
    check!(r, r.code == 0 && r.stdout.starts_with("<!DOCTYPE html>"));
    let page = artifacts().join("plan-calico-tailscale.html");
    std::fs::write(&page, &r.stdout).expect("write page");
    screenshot(&page, &artifacts().join("plan-calico-tailscale.png"));
    let dom = chromium(&page, &["--dump-dom"]);
    let mut maps = std::collections::BTreeMap::<(String, String), usize>::new();
    for a in json["allocations"].as_array().expect("allocations") {
        for b in a["bits"].as_array().expect("bits") {
            let key = (
                b["field"].as_str().expect("field").to_string(),
                b["namespace"].as_str().expect("namespace").to_string(),
            );
            *maps.entry(key).or_default() += 1;
        }
    }
    assert_eq!(dom.matches("<svg class=\"regmap\"").count(), maps.len());
    for ((field, ns), rows) in &maps {
        let svg = dom
            .split(&format!("data-field=\"{field}\" data-namespace=\"{ns}\""))
            .nth(1)
            .and_then(|s| s.split("</svg>").next())
            .unwrap_or_else(|| panic!("the {field} {ns} map"));
        assert_eq!(
            svg.matches("<g class=\"owner").count(),
            *rows,
            "{field} {ns}"
        );
    }
    let calico = dom
        .split("<g class=\"owner moved\" data-owner=\"calico\">")
        .nth(1)
        .and_then(|s| s.split("</text></g>\n</g>").next())
        .expect("calico's row is drawn as moved");
    assert!(calico.contains("<g class=\"cell plan\" data-bit=\"24\">"));
    assert!(calico.contains("<g class=\"cell was conflict\" data-bit=\"23\">"));
    assert!(dom.contains("<li class=\"removed\">calico"));
    for s in json["settings"].as_array().expect("settings") {
        if s["changed"] != true {
            continue;
        }
        let knob = s["knob"].as_str().expect("knob");
        assert!(dom.contains(&format!("data-knob=\"{knob}\"")), "{knob}");
        for sn in s["snippets"].as_array().expect("snippets") {
            let text = sn["text"].as_str().expect("text");
            assert!(dom.contains(&format!("\">{text}</pre>")), "{text}");
        }
    }
}

/// `fleet -o html` of a few generated nodes and an unreadable one: a section per layout with
/// its nodes, the outlier's section and its Tailscale row highlighted, the unreadable node
/// listed.
#[test]
fn html_fleet_shows_each_layout_and_highlights_the_outlier_in_chromium() {
    use markspace::generate::{iptables_save, Calico, KubeProxy, Node};
    let d = Dir::new();
    for i in 0..5 {
        let node = Node {
            kube_proxy: Some(KubeProxy {
                services: 20 + i,
                endpoints: 1,
            }),
            calico: Some(Calico {
                endpoints: 5,
                policies: 10 + i,
            }),
            tailscale: i == 4,
            ..Default::default()
        };
        std::fs::create_dir(d.path().join(format!("node-{i}"))).expect("node dir");
        d.file(
            &format!("node-{i}/iptables-save.txt"),
            &iptables_save(&node),
        );
    }
    std::fs::create_dir(d.path().join("node-9")).expect("node dir");
    d.file(
        "node-9/iptables-save.txt",
        "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark zz\nCOMMIT\n",
    );
    let root = d.path().display().to_string();
    let json = run(&["fleet", "-o", "json", &root]).json();
    let r = run(&["fleet", "-o", "html", &root]);
    check!(r, r.code == 3 && r.stdout.starts_with("<!DOCTYPE html>"));
    let page = artifacts().join("fleet.html");
    std::fs::write(&page, &r.stdout).expect("write page");
    screenshot(&page, &artifacts().join("fleet.png"));
    let dom = chromium(&page, &["--dump-dom"]);
    let layouts = json["layouts"].as_array().expect("layouts");
    assert_eq!(layouts.len(), 2);
    assert_eq!(
        dom.matches("<section class=\"layout").count(),
        layouts.len()
    );
    for l in layouts {
        let id = l["id"].as_u64().expect("id");
        let section = dom
            .split(&format!("id=\"layout-{id}\" data-layout=\"{id}\">"))
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .expect("the layout's section");
        for n in l["nodes"].as_array().expect("nodes") {
            let name = n.as_str().expect("name");
            assert!(section.contains(&format!("<tr class=\"node\" data-node=\"{name}\">")));
        }
        assert_eq!(section.matches("<svg class=\"regmap\"").count(), 2);
        let findings = l["findings"].as_array().expect("findings");
        assert_eq!(
            section.matches("<tr class=\"finding ").count(),
            findings.len()
        );
    }
    let outlier = json["outliers"][0]["layout"].as_u64().expect("an outlier");
    assert!(dom.contains(&format!(
        "<section class=\"layout outlier\" id=\"layout-{outlier}\""
    )));
    assert!(dom.contains("<g class=\"owner differs\" data-owner=\"tailscale\">"));
    assert!(dom.contains(&format!("<li class=\"outlier\" data-layout=\"{outlier}\">")));
    assert!(dom.contains("<tr class=\"unreadable\" data-node=\""));
    assert!(dom.contains("iptables-save.txt:3"));
}
