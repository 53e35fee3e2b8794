//! The audit page: summary, register map, findings, suppressed findings, owners, inputs.

use crate::model::Field;
use crate::report::Report;

use super::markup::{html, Esc, Hex, Html};
use super::{flow, register, BitRules};

/// Renders an audit report as one self-contained HTML page. `rules` gives the register map's
/// hover text its rules ([`BitRules::of`]; `BitRules::default()` leaves them out);
/// `manifests` are the snapshots' `manifest.json` documents, each with the path it was read
/// from (host, kernel, time, tool versions and every collection command are shown).
pub fn render(
    report: &Report,
    rules: &BitRules,
    manifests: &[(String, serde_json::Value)],
) -> String {
    let mut h = Html::new();
    let s = &report.summary;
    html!(
        h,
        "<header><h1>markspace audit</h1>\n<p class=\"summary\">{} input(s), {} rules ({} touch marks), {} owner(s). \
         <span class=\"badge error\">{} error(s)</span> <span class=\"badge warning\">{} warning(s)</span> \
         <span class=\"badge info\">{} info</span>{}</p>\n</header>\n",
        report.inputs.len(),
        s.rules,
        s.mark_rules,
        report.owners.len(),
        s.errors,
        s.warnings,
        s.infos,
        Esc(&if s.suppressed > 0 {
            format!(" ({} suppressed by the baseline)", s.suppressed)
        } else {
            String::new()
        })
    );
    if s.incomplete {
        html!(h, "<p class=\"banner\" id=\"incomplete\"><b>Incomplete:</b> a source the audit needs was not read; the findings are only those of what was read.");
        for d in report.unread() {
            html!(
                h,
                "<br>not read: <code>{}</code>: {}",
                Esc(&d.file),
                Esc(&d.message)
            );
        }
        html!(h, "</p>\n");
    }
    if s.skipped_lines > 0 {
        html!(
            h,
            "<p class=\"banner\" id=\"skipped\"><b>{} pasted line(s) could not be read and were skipped:</b> this result may be incomplete.</p>\n",
            s.skipped_lines
        );
    }
    html!(h, "<section id=\"map\"><h2>Register map</h2>\n<p class=\"legend\">Bit 31 on the left. Hover a cell for the rules.\
        <span style=\"background:var(--read)\"></span>reads<span style=\"background:var(--write)\"></span>writes\
        <span style=\"background:var(--rw)\"></span>reads and writes<span style=\"background:var(--claim);border:1px dashed #9aa5ae\"></span>registered, unused\
        <span style=\"background:var(--shared)\"></span>shared bit<span style=\"background:var(--conflict)\"></span>conflict</p>\n");
    for field in [Field::Mark, Field::CtMark] {
        register::svg(&mut h, report, rules, field);
    }
    html!(
        h,
        "</section>\n<section id=\"findings\"><h2>Findings</h2>\n"
    );
    if report.findings.is_empty() {
        html!(h, "<p class=\"none\">None.</p>\n");
    }
    for (i, f) in report.findings.iter().enumerate() {
        html!(
            h,
            "<article class=\"finding {}\" id=\"finding-{}\" data-code=\"{}\">\n<h3><span class=\"badge {}\">{}</span> {} {}</h3>\n<dl><dt>field</dt><dd>{}</dd><dt>bits</dt><dd><code>{}</code></dd><dt>owners</dt><dd class=\"owners\">{}</dd>",
            Esc(f.severity.as_str()),
            i + 1,
            Esc(f.code.as_str()),
            Esc(f.severity.as_str()),
            Esc(f.severity.as_str()),
            Esc(f.code.as_str()),
            Esc(&f.title),
            Esc(register::field_name(f.field)),
            Hex(f.bits),
            Esc(&f.owners.join(", "))
        );
        for inc in &f.incidents {
            html!(h, "<dt>known incident</dt><dd>{}", Esc(&inc.title));
            for l in &inc.links {
                if l.starts_with("https://") {
                    html!(h, " <a href=\"{}\">{}</a>", Esc(l), Esc(l));
                } else {
                    html!(h, " {}", Esc(l));
                }
            }
            html!(h, "</dd>");
        }
        html!(
            h,
            "</dl>\n<h4>fix</h4><pre class=\"fix\">{}</pre>\n",
            Esc(&f.fix)
        );
        if !f.evidence.is_empty() {
            html!(h, "<h4>evidence</h4><table class=\"evidence\"><tbody>\n");
            for e in &f.evidence {
                let loc = e
                    .line
                    .map_or_else(|| e.file.clone(), |l| format!("{}:{l}", e.file));
                html!(
                    h,
                    "<tr><td class=\"loc\">{}</td><td>{}</td><td><code>{}</code></td></tr>\n",
                    Esc(&loc),
                    Esc(&e.owner),
                    Esc(&e.text)
                );
            }
            if f.evidence_omitted > 0 {
                html!(
                    h,
                    "<tr><td colspan=\"3\">… and {} more</td></tr>\n",
                    f.evidence_omitted
                );
            }
            html!(h, "</tbody></table>\n");
        }
        if let Some(p) = &f.path {
            html!(
                h,
                "<h4>path: {}{}</h4>\n",
                Esc(&format!("{:?}", p.path).to_lowercase()),
                Esc(if p.clobber {
                    " (one owner's write lands between the other's write and read)"
                } else {
                    ""
                })
            );
            flow::finding_path(&mut h, p);
        }
        html!(h, "</article>\n");
    }
    html!(h, "</section>\n");
    if !report.suppressed.is_empty() {
        html!(h, "<section id=\"suppressed\"><h2>Suppressed by the baseline</h2>\n<table><thead><tr><th>code</th><th>owners</th><th>bits</th><th>reason</th><th>until</th></tr></thead><tbody>\n");
        for x in &report.suppressed {
            html!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                Esc(x.finding.code.as_str()),
                Esc(&x.finding.owners.join(", ")),
                Hex(x.finding.bits),
                Esc(&x.reason),
                Esc(x.expires.as_deref().unwrap_or(""))
            );
        }
        html!(h, "</tbody></table></section>\n");
    }
    html!(h, "<section id=\"owners\"><h2>Owners</h2>\n<table><thead><tr><th>owner</th><th>rules</th><th>mark reads</th><th>mark writes</th><th>ctmark reads</th><th>ctmark writes</th><th>registered mark</th><th>recognised by</th></tr></thead><tbody>\n");
    for o in &report.owners {
        html!(
            h,
            "<tr class=\"owner\" data-owner=\"{}\"><td><b>{}</b></td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\n",
            Esc(&o.id),
            Esc(&o.id),
            o.rules,
            Hex(o.reads.mark.0),
            Hex(o.writes.mark.0),
            Hex(o.reads.ctmark.0),
            Hex(o.writes.ctmark.0),
            Hex(o.claimed.mark.0),
            Esc(&o.recognised_by.join(", "))
        );
    }
    html!(h, "</tbody></table></section>\n");
    super::inputs(&mut h, &report.inputs);
    for (path, m) in manifests {
        manifest(&mut h, path, m);
    }
    if let Some(r) = &report.registry {
        html!(
            h,
            "<p class=\"summary\">registry: {} entries, {} incidents, digest <code>{}</code></p>\n",
            r.entries,
            r.incidents,
            Esc(&r.digest)
        );
    }
    if !report.diagnostics.is_empty() {
        html!(h, "<section id=\"diagnostics\"><h2>Diagnostics</h2>\n<table><thead><tr><th>level</th><th>where</th><th>message</th><th>hint</th></tr></thead><tbody>\n");
        for d in &report.diagnostics {
            html!(
                h,
                "<tr><td>{}</td><td class=\"loc\">{}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&format!("{:?}", d.level).to_lowercase()),
                Esc(&format!("{}:{}:{}", d.file, d.line, d.column)),
                Esc(&d.message),
                Esc(d.hint.as_deref().unwrap_or(""))
            );
        }
        html!(h, "</tbody></table></section>\n");
    }
    html!(
        h,
        "<footer>markspace {}, JSON contract version {}</footer>\n",
        Esc(report.markspace),
        report.version
    );
    super::page("markspace audit", h.fragment())
}

/// A snapshot's manifest: where and when it was collected, with which tools, and each command.
fn manifest(h: &mut Html, path: &str, m: &serde_json::Value) {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    html!(
        h,
        "<section class=\"manifest\"><h3>Snapshot <code>{}</code></h3>\n<p class=\"summary\">host <b>{}</b>, kernel {}, collected {} by markspace {}</p>\n",
        Esc(path),
        Esc(&text(&m["host"])),
        Esc(&text(&m["kernel"])),
        Esc(&text(&m["time"])),
        Esc(&text(&m["markspace"]))
    );
    if let Some(tools) = m["tools"].as_array() {
        html!(
            h,
            "<table><thead><tr><th>tool</th><th>version</th></tr></thead><tbody>\n"
        );
        for t in tools {
            html!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>\n",
                Esc(&text(&t[0])),
                Esc(&text(&t[1]))
            );
        }
        html!(h, "</tbody></table>\n");
    }
    if let Some(steps) = m["steps"].as_array() {
        html!(h, "<table><thead><tr><th>command</th><th>file</th><th>status</th><th>ms</th><th>bytes</th><th>note</th></tr></thead><tbody>\n");
        for st in steps {
            let argv = st["argv"]
                .as_array()
                .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            html!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&argv),
                Esc(&text(&st["file"])),
                Esc(&text(&st["status"])),
                Esc(&text(&st["duration_ms"])),
                Esc(&text(&st["bytes"])),
                Esc(&text(&st["note"]))
            );
        }
        html!(h, "</tbody></table>\n");
    }
    html!(h, "</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyze;
    use crate::registry::Registry;
    use crate::snapshot::NodeLoader;

    fn audit(text: &str) -> String {
        let mut loader = NodeLoader::new();
        loader
            .add_text("iptables-save.txt", text.as_bytes().to_vec(), true)
            .expect("reads");
        let node = loader.finish();
        let reg = Registry::embedded().expect("registry");
        let analysis = analyze(&node, &reg);
        let report = Report::new(&node, &analysis);
        let manifest = serde_json::json!({"host": "<b>node</b>", "tools": [["nft", "v1 <i>"]],
            "steps": [{"argv": ["nft", "-j", "list", "ruleset"], "file": "nft.json", "status": "ok"}]});
        render(
            &report,
            &BitRules::of(&node, &analysis),
            &[("snap/manifest.json".into(), manifest)],
        )
    }

    /// A rule comment, a chain name and a file line that try to end the attribute, open a
    /// script, close the SVG and the page: every one arrives as text.
    #[test]
    fn escapes_hostile_comments_and_chain_names() {
        let hostile = "\"><script>alert(1)</script></title></svg><img src=x onerror=alert(2)>";
        let text = format!(
            "*mangle\n:PREROUTING ACCEPT [0:0]\n:X<b>&amp; - [0:0]\n\
             -A PREROUTING -m comment --comment \"{}\" -j MARK --set-xmark 0x4000/0x4000\n\
             -A PREROUTING -m comment --comment \"{}\" -m mark --mark 0x4000/0x4000 -j X<b>&amp;\n\
             COMMIT\n",
            hostile.replace('"', "'"),
            hostile.replace('"', "'")
        );
        let page = audit(&text);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("X<b>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("X&lt;b&gt;&amp;amp;"), "{page}");
        assert!(
            page.contains("host <b>&lt;b&gt;node&lt;/b&gt;</b>"),
            "{page}"
        );
        assert!(page.contains("<td>v1 &lt;i&gt;</td>"), "{page}");
        assert!(page.contains("<code>nft -j list ruleset</code>"), "{page}");
        // The structure survives: one page, both SVGs closed.
        assert_eq!(page.matches("</svg>").count(), 2);
        assert_eq!(page.matches("</html>").count(), 1);
    }

    #[test]
    fn the_map_has_a_row_per_owner_and_hover_text_with_rules() {
        let page = audit(
            "*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-MARK-MASQ - [0:0]\n\
             -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n\
             -A PREROUTING -j KUBE-MARK-MASQ\nCOMMIT\n",
        );
        assert!(
            page.contains("<g class=\"owner\" data-owner=\"kube-proxy\">"),
            "{page}"
        );
        assert!(
            page.contains("kube-proxy: packet mark bit 14 (0x00004000): writes"),
            "{page}"
        );
        assert!(
            page.contains(
                "iptables-save.txt:4  -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
            ),
            "{page}"
        );
        assert!(
            page.contains("no rule reads or writes the connmark"),
            "{page}"
        );
    }
}
