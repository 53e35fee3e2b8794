//! The plan page: the planned bit map (one row per allocation, per field and namespace, with the
//! default positions the plan moved away from and the overlaps that removed), the settings to
//! paste for each tool, why no assignment exists when none does, and the hazards it leaves.

use crate::model::{hex, Field};
use crate::plan::{Allocation, Plan, SlotBits};
use crate::registry::schema::Namespace;

use super::markup::{html, Esc, Hex, Html};
use super::register::{self, Kind, Map, MapCell, MapRow};

/// Renders a plan as one self-contained HTML page. `check` is the text of `plan --check`, shown
/// as it is when given.
pub fn render(plan: &Plan, check: Option<&str>) -> String {
    let mut h = Html::new();
    html!(
        h,
        "<header><h1>markspace plan: {}</h1>\n<p class=\"summary\" id=\"verdict\" data-feasible=\"{}\">{}</p>\n</header>\n",
        Esc(&crate::plan::render::requested(plan)),
        Esc(if plan.feasible { "true" } else { "false" }),
        Esc(&if plan.feasible {
            format!(
                "{} setting(s) to change; no two owners share a bit.",
                plan.changes
            )
        } else {
            "No assignment exists: see why below.".to_string()
        })
    );
    html!(h, "<section id=\"software\"><h2>Software</h2>\n<table><thead><tr><th>id</th><th>name</th><th>version</th><th>kept</th></tr></thead><tbody>\n");
    for s in &plan.software {
        html!(
            h,
            "<tr data-software=\"{}\"><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            Esc(&s.id),
            Esc(&s.id),
            Esc(&s.name),
            Esc(s.version.as_deref().unwrap_or("current")),
            Esc(if s.kept { "yes (--keep)" } else { "" })
        );
    }
    html!(h, "</tbody></table></section>\n");
    map_section(&mut h, plan);
    settings(&mut h, plan);
    if let Some(c) = &plan.conflict {
        html!(
            h,
            "<section id=\"infeasible\"><h2>Why no assignment exists</h2>\n<p class=\"banner\">{}</p>\n\
             <table><thead><tr><th>owner</th><th>claims</th><th>bits (default)</th><th>movable</th><th>source</th></tr></thead><tbody>\n",
            Esc(&c.reason)
        );
        for a in &c.core {
            let bits: Vec<String> = a
                .bits
                .iter()
                .map(|b| {
                    format!(
                        "{} {} {}",
                        field_short(b.field),
                        ns_word(b.namespace),
                        b.default
                    )
                })
                .collect();
            html!(
                h,
                "<tr class=\"core\" data-owner=\"{}\"><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                Esc(&a.owner),
                Esc(&a.owner),
                Esc(&a.claims.join(", ")),
                Esc(&bits.join("; ")),
                Esc(a.fixed.as_deref().unwrap_or("movable")),
                Esc(&a.sources.join("; "))
            );
        }
        html!(h, "</tbody></table>\n");
        if c.remedies.is_empty() {
            html!(
                h,
                "<p>No on/off setting or release of these software makes it fit.</p>\n"
            );
        } else {
            html!(h, "<h3>Would fit</h3><ul class=\"remedies\">\n");
            for r in &c.remedies {
                html!(h, "<li>{}</li>\n", Esc(r));
            }
            html!(h, "</ul>\n");
        }
        html!(h, "</section>\n");
    }
    if !plan.hazards.is_empty() {
        html!(h, "<section id=\"hazards\"><h2>Whole-field practices no bit assignment removes</h2>\n\
            <p class=\"summary\">An audit of the planned node still reports them.</p>\n\
            <table><thead><tr><th>owner</th><th>claim</th><th>field</th><th>what</th><th>meets</th><th>source</th></tr></thead><tbody>\n");
        for z in &plan.hazards {
            html!(
                h,
                "<tr class=\"hazard\" data-owner=\"{}\"><td>{}</td><td>{}</td><td>{}, {}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                Esc(&z.owner),
                Esc(&z.owner),
                Esc(&z.claim),
                Esc(register::field_name(z.field)),
                Esc(ns_word(z.namespace)),
                Esc(&z.what),
                Esc(&z.meets.join(", ")),
                Esc(&z.source)
            );
        }
        html!(h, "</tbody></table></section>\n");
    }
    if !plan.notes.is_empty() {
        html!(h, "<section id=\"notes\"><h2>Notes</h2><ul>\n");
        for n in &plan.notes {
            html!(h, "<li>{}</li>\n", Esc(n));
        }
        html!(h, "</ul></section>\n");
    }
    if let Some(text) = check {
        html!(
            h,
            "<section id=\"check\"><h2>Check</h2><pre>{}</pre></section>\n",
            Esc(text)
        );
    }
    html!(
        h,
        "<footer>markspace {}</footer>\n",
        Esc(env!("CARGO_PKG_VERSION"))
    );
    super::page("markspace plan", h.fragment())
}

fn ns_word(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Host => "host namespace",
        Namespace::Pod => "pod namespaces",
    }
}

fn field_short(field: Field) -> &'static str {
    match field {
        Field::Mark => "mark",
        Field::CtMark => "ctmark",
    }
}

/// One allocation's bits in one map.
struct Slot<'a> {
    alloc: &'a Allocation,
    bits: &'a SlotBits,
    default: u32,
    planned: u32,
}

/// Per field and namespace that has allocations: a map, then the overlaps the plan removed.
fn map_section(h: &mut Html, plan: &Plan) {
    html!(h, "<section id=\"map\"><h2>Planned bits</h2>\n<p class=\"legend\">Bit 31 on the left, one row per claim (or group of claims one setting moves). Hover a cell for its claims.\
        <span style=\"background:var(--write)\"></span>planned<span style=\"border:1px dashed var(--muted)\"></span>default, moved away\
        <span style=\"border:2px dashed var(--err)\"></span>default overlap the plan removed<span style=\"background:var(--conflict)\"></span>conflict left</p>\n");
    let mut removed = Vec::new();
    for field in [Field::Mark, Field::CtMark] {
        for ns in [Namespace::Host, Namespace::Pod] {
            let slots: Vec<Slot<'_>> = plan
                .in_slot(field, ns)
                .map(|(alloc, bits)| Slot {
                    alloc,
                    bits,
                    default: bits.default.0,
                    planned: bits.planned.0,
                })
                .collect();
            if slots.is_empty() {
                continue;
            }
            // Bits of other owners (a software's own claims may overlap).
            let others = |s: &Slot<'_>, planned: bool| {
                slots
                    .iter()
                    .filter(|o| o.alloc.owner != s.alloc.owner)
                    .fold(0u32, |m, o| m | if planned { o.planned } else { o.default })
            };
            let name = format!(
                "{}, {}",
                register::field_name(field),
                match ns {
                    Namespace::Host => "host",
                    Namespace::Pod => "pods",
                }
            );
            let mut map = Map {
                field,
                namespace: Some(match ns {
                    Namespace::Host => "host",
                    Namespace::Pod => "pod",
                }),
                name: &name,
                rows: Vec::new(),
                shared: 0,
                conflict: 0,
            };
            for s in &slots {
                let left = s.planned & others(s, true);
                let before = s.default & others(s, false);
                map.shared |= left;
                map.conflict |= left;
                let claims = s.alloc.claims.join(", ");
                let how = crate::plan::render::how_set(s.alloc, s.bits);
                let mut cells = Vec::new();
                for bit in 0..32u8 {
                    let b = 1u32 << bit;
                    let users = |planned: bool| -> Vec<&str> {
                        let mut v: Vec<&str> = slots
                            .iter()
                            .filter(|o| o.alloc.owner != s.alloc.owner)
                            .filter(|o| (if planned { o.planned } else { o.default }) & b != 0)
                            .map(|o| o.alloc.owner.as_str())
                            .collect();
                        v.dedup();
                        v
                    };
                    let (kind, what, conflict, note) = if s.planned & b != 0 {
                        let note = if left & b != 0 {
                            format!("\nstill shared with {}", users(true).join(", "))
                        } else if before & b != 0 {
                            format!(
                                "\nshared with {} by default; the plan moves them",
                                users(false).join(", ")
                            )
                        } else {
                            String::new()
                        };
                        (Kind::Planned, "planned", left & b != 0, note)
                    } else if s.default & b != 0 {
                        let note = if before & b != 0 {
                            format!(
                                "\nby default shared with {}: a conflict the plan removes",
                                users(false).join(", ")
                            )
                        } else {
                            String::new()
                        };
                        (Kind::Was, "its default, moved away", before & b != 0, note)
                    } else {
                        continue;
                    };
                    cells.push(MapCell {
                        bit,
                        kind,
                        shared: kind == Kind::Planned && conflict,
                        conflict,
                        title: format!(
                            "{}: {name} bit {bit} ({}): {what}\n{claims} ({how}){note}",
                            s.alloc.owner,
                            hex(b)
                        ),
                    });
                }
                map.rows.push(MapRow {
                    owner: s.alloc.owner.clone(),
                    label: Some(label(&format!(
                        "{} {}",
                        s.alloc.owner,
                        short_claims(s.alloc)
                    ))),
                    class: if s.planned != s.default { " moved" } else { "" },
                    cells,
                });
                // Each overlap the plan removed, once per pair of rows.
                for o in &slots {
                    let both = s.default & o.default & !(s.planned & o.planned);
                    if o.alloc.owner > s.alloc.owner && both != 0 && plan.feasible {
                        removed.push(format!(
                            "{} ({}) and {} ({}) share {name} {} by default; planned {} and {}",
                            s.alloc.owner,
                            s.alloc.claims.join(", "),
                            o.alloc.owner,
                            o.alloc.claims.join(", "),
                            hex(s.default & o.default),
                            hex(s.planned),
                            hex(o.planned)
                        ));
                    }
                }
            }
            register::draw(h, &map, "");
            html!(
                h,
                "<p class=\"caption\">{}: planned {}, by default {}, still shared {}.</p>\n",
                Esc(&name),
                Hex(slots.iter().fold(0, |a, s| a | s.planned)),
                Hex(slots.iter().fold(0, |a, s| a | s.default)),
                Hex(map.conflict)
            );
        }
    }
    if !removed.is_empty() {
        html!(h, "<h3>Overlaps the plan removes</h3><ul id=\"removed\">\n");
        for r in &removed {
            html!(h, "<li class=\"removed\">{}</li>\n", Esc(r));
        }
        html!(h, "</ul>\n");
    }
    html!(h, "</section>\n");
}

/// A row label cut to what the label column holds.
fn label(text: &str) -> String {
    const CHARS: usize = 24;
    if text.chars().count() <= CHARS {
        text.to_string()
    } else {
        text.chars().take(CHARS - 1).chain(['…']).collect()
    }
}

/// The claim names without their software prefix, as the label shows them.
fn short_claims(a: &Allocation) -> String {
    a.claims
        .iter()
        .map(|c| c.split_once('/').map_or(c.as_str(), |x| x.1))
        .collect::<Vec<_>>()
        .join(",")
}

/// The settings: each one changed, with its text for each tool; then those kept at their
/// default.
fn settings(h: &mut Html, plan: &Plan) {
    html!(h, "<section id=\"settings\"><h2>Settings to change</h2>\n");
    let changed: Vec<_> = plan.settings.iter().filter(|s| s.changed).collect();
    if changed.is_empty() {
        html!(
            h,
            "<p class=\"none\">None: every setting keeps its default.</p>\n"
        );
    }
    for s in changed {
        html!(
            h,
            "<article class=\"setting\" data-software=\"{}\" data-knob=\"{}\"><h3>{} {}: <code>{}</code> → <code>{}</code></h3>\n\
             <p class=\"summary\">{} ({}); source: {}</p>\n",
            Esc(&s.software),
            Esc(&s.knob),
            Esc(&s.software),
            Esc(&s.name),
            Esc(&s.default),
            Esc(&s.value),
            Esc(&s.location),
            Esc(s.kind),
            Esc(&s.source)
        );
        for sn in &s.snippets {
            html!(
                h,
                "<h4>{} ({})</h4><pre class=\"snippet\" data-syntax=\"{}\">{}</pre>\n",
                Esc(&sn.target),
                Esc(sn.syntax),
                Esc(sn.syntax),
                Esc(&sn.text)
            );
        }
        if s.snippets.is_empty() {
            html!(
                h,
                "<p>Set it where the registry says: {}</p>\n",
                Esc(&s.location)
            );
        }
        html!(h, "</article>\n");
    }
    let kept: Vec<_> = plan.settings.iter().filter(|s| !s.changed).collect();
    if !kept.is_empty() {
        html!(h, "<h3>Kept at their default</h3><table><thead><tr><th>software</th><th>setting</th><th>value</th><th>where</th></tr></thead><tbody>\n");
        for s in kept {
            html!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                Esc(&s.software),
                Esc(&s.name),
                Esc(&s.value),
                Esc(&s.location)
            );
        }
        html!(h, "</tbody></table>\n");
    }
    html!(h, "</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Request, Wanted};
    use crate::registry::Registry;

    fn request(ids: &[&str]) -> Request {
        Request {
            software: ids
                .iter()
                .map(|id| Wanted::parse(id).expect("id"))
                .collect(),
            ..Request::default()
        }
    }

    const HOSTILE: &str = "</pre><script>alert(1)</script><img src=x onerror=alert(2)>";

    /// Registry text (a `--registry DIR` entry may say anything in its names, setting keys and
    /// targets, and sources; ids are checked to be `[a-z0-9-]`) reaches the page as text.
    #[test]
    fn escapes_hostile_registry_text() {
        let mut reg = Registry::embedded().expect("registry");
        let mut calico = reg.get("calico").expect("calico").clone();
        calico.name = HOSTILE.into();
        for k in &mut calico.knobs {
            k.name = HOSTILE.into();
            k.location = HOSTILE.into();
            k.source = HOSTILE.into();
            for s in &mut k.plan.set {
                s.target = HOSTILE.into();
                s.key = format!("spec.{HOSTILE}");
            }
        }
        for c in &mut calico.claims {
            c.source = HOSTILE.into();
        }
        reg.replace(calico);
        let plan = crate::plan::plan(&reg, &request(&["calico", "tailscale"])).expect("plan");
        assert!(plan.changes > 0);
        let page = render(&plan, Some(HOSTILE));
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The snippet's text is in its <pre>, escaped, key and all.
        assert!(
            page.contains("<pre class=\"snippet\" data-syntax=\"yaml\">spec:\n  &lt;/pre&gt;"),
            "{page}"
        );
        assert_eq!(page.matches("</pre>").count(), page.matches("<pre").count());
        assert_eq!(page.matches("</html>").count(), 1);
    }

    /// Calico moves off Tailscale's byte: its row shows the planned byte and the default bits
    /// it leaves as cells of their own, those overlapping Tailscale as conflicts the plan
    /// removes; the settings carry each tool's text.
    #[test]
    fn the_map_shows_the_move_and_the_overlap_it_removes() {
        let reg = Registry::embedded().expect("registry");
        let plan = crate::plan::plan(&reg, &request(&["calico", "tailscale"])).expect("plan");
        let page = render(&plan, None);
        let row = page
            .split("<g class=\"owner moved\" data-owner=\"calico\">")
            .nth(1)
            .and_then(|s| s.split("</g>\n</g>").next())
            .expect("calico's row, moved");
        assert!(
            row.contains("<g class=\"cell plan\" data-bit=\"31\">"),
            "{row}"
        );
        assert!(
            row.contains("<g class=\"cell was conflict\" data-bit=\"16\">"),
            "{row}"
        );
        assert!(!row.contains("data-bit=\"15\""), "{row}");
        assert!(page.contains("<li class=\"removed\">calico ("));
        assert!(page.contains("data-feasible=\"true\""));
        assert!(page.contains("FELIX_IPTABLESMARKMASK=0xff000000</pre>"));
        assert!(!page.contains("id=\"infeasible\""));
    }

    #[test]
    fn an_infeasible_plan_says_why() {
        let reg = Registry::embedded().expect("registry");
        let plan = crate::plan::plan(&reg, &request(&["cilium", "tailscale"])).expect("plan");
        assert!(!plan.feasible);
        let page = render(&plan, None);
        let reason = &plan.conflict.as_ref().expect("conflict").reason;
        assert!(page.contains("data-feasible=\"false\""));
        assert!(page.contains("<section id=\"infeasible\">"));
        assert!(
            page.contains(&format!(
                "<p class=\"banner\">{}</p>",
                reason.replace('\'', "&#39;")
            )),
            "{page}"
        );
        assert!(page.contains("<tr class=\"core\""));
        // The overlap is left: drawn as a conflict.
        assert!(page.contains(" shared conflict\" data-bit="), "{page}");
    }
}
