//! The fleet page: the outliers, then one section per layout (its nodes with their finding
//! counts, its register map with the owners that differ from the majority highlighted, its
//! findings with how many of its nodes have each), then the nodes that could not be read.

use crate::analysis::Severity;
use crate::fleet::{FleetReport, Layout, OwnerBits};
use crate::model::{hex, Field};

use super::markup::{html, Esc, Hex, Html};
use super::register::{self, Kind, Map, MapCell, MapRow};

/// Renders a fleet report as one self-contained HTML page.
pub fn render(r: &FleetReport) -> String {
    let mut h = Html::new();
    let s = &r.summary;
    html!(
        h,
        "<header><h1>markspace fleet</h1>\n<p class=\"summary\">{} node(s), {} layout(s), {} outside the majority layout, \
         <span class=\"badge error\">{} with errors</span> {} unreadable, {} incomplete</p>\n</header>\n",
        s.nodes,
        s.layouts,
        s.outlier_nodes,
        s.nodes_with_errors,
        s.unreadable,
        s.incomplete
    );
    if r.layouts.len() > 1 && r.outliers.is_empty() {
        html!(
            h,
            "<p class=\"banner\">No majority layout: the largest layouts are equally common.</p>\n"
        );
    }
    if !r.outliers.is_empty() {
        html!(h, "<section id=\"outliers\"><h2>Outliers</h2><ul>\n");
        for o in &r.outliers {
            html!(
                h,
                "<li class=\"outlier\" data-layout=\"{}\"><a href=\"#layout-{}\">layout {}</a>: {}</li>\n",
                o.layout,
                o.layout,
                o.layout,
                Esc(&o.summary)
            );
        }
        html!(h, "</ul></section>\n");
    }
    let majority = r.layouts.iter().find(|l| l.majority);
    for l in &r.layouts {
        layout(&mut h, r, l, majority);
    }
    let unreadable: Vec<_> = r.nodes.iter().filter(|n| n.error.is_some()).collect();
    if !unreadable.is_empty() {
        html!(h, "<section id=\"unreadable\"><h2>Unreadable nodes</h2>\n<table><thead><tr><th>node</th><th>error</th></tr></thead><tbody>\n");
        for n in unreadable {
            html!(
                h,
                "<tr class=\"unreadable\" data-node=\"{}\"><td><code>{}</code></td><td><pre>{}</pre></td></tr>\n",
                Esc(&n.name),
                Esc(&n.name),
                Esc(n.error.as_deref().unwrap_or_default())
            );
        }
        html!(h, "</tbody></table></section>\n");
    }
    if let Some(reg) = &r.registry {
        html!(
            h,
            "<p class=\"summary\">registry: {} entries, {} incidents, digest <code>{}</code></p>\n",
            reg.entries,
            reg.incidents,
            Esc(&reg.digest)
        );
    }
    html!(
        h,
        "<footer>markspace {}, fleet JSON contract version {}</footer>\n",
        Esc(r.markspace),
        r.version
    );
    super::page("markspace fleet", h.fragment())
}

fn layout(h: &mut Html, r: &FleetReport, l: &Layout, majority: Option<&Layout>) {
    let outlier = r.outliers.iter().any(|o| o.layout == l.id);
    html!(
        h,
        "<section class=\"layout{}{}\" id=\"layout-{}\" data-layout=\"{}\"><h2>Layout {}{}: {} of {} node(s)</h2>\n",
        Esc(if l.majority { " majority" } else { "" }),
        Esc(if outlier { " outlier" } else { "" }),
        l.id,
        l.id,
        l.id,
        Esc(if l.majority {
            " (majority)"
        } else if outlier {
            " (outlier)"
        } else {
            ""
        }),
        l.count,
        r.summary.nodes - r.summary.unreadable
    );
    if !l.differences.is_empty() {
        html!(h, "<ul class=\"differences\">\n");
        for d in &l.differences {
            html!(h, "<li>differs: {}</li>\n", Esc(d));
        }
        html!(h, "</ul>\n");
    }
    html!(
        h,
        "<details class=\"nodes\"{}><summary>{} node(s)</summary>\n<table><thead><tr><th>node</th><th>errors</th><th>warnings</th><th>info</th><th>incomplete</th></tr></thead><tbody>\n",
        Esc(if l.count <= 20 { " open" } else { "" }),
        l.count
    );
    for name in &l.nodes {
        if let Some(n) = r
            .nodes
            .iter()
            .find(|n| &n.name == name && n.layout == Some(l.id))
        {
            html!(
                h,
                "<tr class=\"node\" data-node=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&n.name),
                Esc(&n.name),
                n.errors,
                n.warnings,
                n.infos,
                Esc(if n.incomplete { "yes" } else { "" })
            );
        }
    }
    html!(h, "</tbody></table></details>\n");
    for field in [Field::Mark, Field::CtMark] {
        map(h, l, majority.filter(|_| outlier), field);
    }
    html!(h, "<h3>Findings</h3>\n");
    if l.findings.is_empty() {
        html!(h, "<p class=\"none\">None.</p>\n");
    } else {
        html!(h, "<table class=\"findings\"><thead><tr><th>severity</th><th>code</th><th>finding</th><th>owners</th><th>bits</th><th>nodes</th></tr></thead><tbody>\n");
        for f in &l.findings {
            let k = &f.finding;
            html!(
                h,
                "<tr class=\"finding {}\" data-code=\"{}\"><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td><code>{} {}</code></td><td>{} of {}</td></tr>\n",
                Esc(k.severity.as_str()),
                Esc(k.code),
                Esc(k.severity.as_str()),
                Esc(k.severity.as_str()),
                Esc(k.code),
                Esc(&k.title),
                Esc(&k.owners.join(", ")),
                Esc(k.field.as_str()),
                Hex(k.bits.0),
                f.nodes,
                l.count
            );
        }
        html!(h, "</tbody></table>\n");
    }
    html!(h, "</section>\n");
}

/// One field of a layout. `majority` is given for an outlier: its owners that the majority
/// lacks, or has on other bits, are drawn as differing.
fn map(h: &mut Html, l: &Layout, majority: Option<&Layout>, field: Field) {
    let rows: Vec<&OwnerBits> = l.owners.iter().filter(|o| o.field == field).collect();
    let used_by = |b: u32| rows.iter().filter(|o| o.used() & b != 0).count();
    let conflict = |owner: &str| {
        l.findings
            .iter()
            .map(|f| &f.finding)
            .filter(|f| f.field == field && f.severity != Severity::Info)
            .filter(|f| f.owners.len() > 1 && f.owners.iter().any(|o| o == owner))
            .fold(0u32, |acc, f| acc | f.bits.0)
    };
    let name = register::field_name(field);
    let mut m = Map {
        field,
        namespace: None,
        name,
        rows: Vec::new(),
        shared: (0..32)
            .map(|b| 1u32 << b)
            .filter(|&b| used_by(b) > 1)
            .fold(0, |a, b| a | b),
        conflict: rows.iter().fold(0, |a, o| a | conflict(&o.owner)),
    };
    for o in &rows {
        let theirs = majority.map(|mj| {
            mj.owners
                .iter()
                .find(|x| x.owner == o.owner && x.field == field)
        });
        let differs = match theirs {
            Some(None) => Some("absent from the majority layout".to_string()),
            Some(Some(x)) if x != *o => Some(format!(
                "the majority layout has it reading {} writing {}",
                x.reads, x.writes
            )),
            _ => None,
        };
        let mine = conflict(&o.owner);
        let mut cells = Vec::new();
        for bit in 0..32u8 {
            let b = 1u32 << bit;
            let (read, write) = (o.reads.0 & b != 0, o.writes.0 & b != 0);
            let Some(kind) = Kind::of(read, write, false) else {
                continue;
            };
            let mut title = format!(
                "{}: {name} bit {bit} ({}): {}",
                o.owner,
                hex(b),
                match kind {
                    Kind::ReadWrite => "reads and writes",
                    Kind::Write => "writes",
                    _ => "reads",
                }
            );
            let others: Vec<&str> = rows
                .iter()
                .filter(|p| p.owner != o.owner && p.used() & b != 0)
                .map(|p| p.owner.as_str())
                .collect();
            if !others.is_empty() {
                title.push_str(&format!("\nshared with {}", others.join(", ")));
            }
            for f in l.findings.iter().filter(|f| {
                f.finding.field == field
                    && f.finding.bits.0 & b != 0
                    && f.finding.owners.contains(&o.owner)
            }) {
                title.push_str(&format!(
                    "\n{} {} {} ({} of {} nodes)",
                    f.finding.severity.as_str(),
                    f.finding.code,
                    f.finding.title,
                    f.nodes,
                    l.count
                ));
            }
            if let Some(d) = &differs {
                title.push_str(&format!("\ndiffers: {d}"));
            }
            cells.push(MapCell {
                bit,
                kind,
                shared: used_by(b) > 1,
                conflict: mine & b != 0,
                title,
            });
        }
        m.rows.push(MapRow {
            owner: o.owner.clone(),
            label: None,
            class: if differs.is_some() { " differs" } else { "" },
            cells,
        });
    }
    register::draw(h, &m, &format!("no rule reads or writes the {name}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{group, FindingKey, NodeAudit};
    use crate::model::Bits;

    fn owner(id: &str, reads: u32, writes: u32) -> OwnerBits {
        OwnerBits {
            owner: id.into(),
            field: Field::Mark,
            reads: Bits(reads),
            writes: Bits(writes),
        }
    }

    fn node(
        name: &str,
        layout: Vec<OwnerBits>,
        findings: Vec<FindingKey>,
    ) -> (String, Result<NodeAudit, String>) {
        (
            name.into(),
            Ok(NodeAudit {
                name: name.into(),
                layout,
                findings,
                incomplete: false,
            }),
        )
    }

    fn report() -> FleetReport {
        let kp = owner("kube-proxy", 0x4000, 0x4000);
        let calico = owner("calico", 0xf0000, 0xf0000);
        let ts = owner("tailscale", 0xff0000, 0xff0000);
        let clash = FindingKey {
            code: "MS001",
            severity: Severity::Error,
            owners: vec!["calico".into(), "tailscale".into()],
            field: Field::Mark,
            bits: Bits(0xf0000),
            title: "calico and tailscale <b>both</b> write".into(),
        };
        let mut nodes = Vec::new();
        for i in 0..3 {
            nodes.push(node(
                &format!("n{i}"),
                vec![calico.clone(), kp.clone()],
                Vec::new(),
            ));
        }
        nodes.push(node(
            "<script>alert('node')</script>",
            vec![calico, kp, ts],
            vec![clash],
        ));
        nodes.push((
            "bad\"><script>".into(),
            Err("x.txt:1:1: <script>bad</script>".into()),
        ));
        group(nodes)
    }

    /// Node names, finding titles and read errors come from the input: each arrives as text.
    #[test]
    fn escapes_hostile_node_names_and_errors() {
        let page = render(&report());
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("<code>&lt;script&gt;alert(&#39;node&#39;)&lt;/script&gt;</code>"));
        assert!(page.contains("data-node=\"bad&quot;&gt;&lt;script&gt;\""));
        assert!(page.contains("<pre>x.txt:1:1: &lt;script&gt;bad&lt;/script&gt;</pre>"));
        assert!(page.contains("calico and tailscale &lt;b&gt;both&lt;/b&gt; write"));
        assert_eq!(page.matches("</html>").count(), 1);
    }

    /// The outlier's section is marked, its new owner's row drawn as differing, the clash as a
    /// conflict with its node count on hover; the majority's rows are plain.
    #[test]
    fn the_outlier_layout_is_highlighted() {
        let page = render(&report());
        let outlier = page
            .split("<section class=\"layout outlier\" id=\"layout-2\" data-layout=\"2\">")
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .expect("layout 2 is the outlier");
        assert!(outlier.contains("<g class=\"owner differs\" data-owner=\"tailscale\">"));
        assert!(outlier.contains("<g class=\"owner\" data-owner=\"calico\">"));
        assert!(outlier.contains("<g class=\"cell rw shared conflict\" data-bit=\"16\">"));
        assert!(outlier.contains(
            "error MS001 calico and tailscale &lt;b&gt;both&lt;/b&gt; write (1 of 1 nodes)"
        ));
        let majority = page
            .split("<section class=\"layout majority\" id=\"layout-1\"")
            .nth(1)
            .and_then(|s| s.split("</section>").next())
            .expect("layout 1 is the majority");
        assert!(!majority.contains("differs"));
        assert_eq!(majority.matches("<tr class=\"node\"").count(), 3);
        assert!(page.contains("<li class=\"outlier\" data-layout=\"2\">"));
        assert!(page.contains("<section id=\"unreadable\">"));
    }
}
