//! The plan as text (a bit map in the audit's style, then the settings to paste), as Markdown
//! in the public fwmark registry's shape, and each setting in its tool's syntax. Renderers only
//! format a [`Plan`]; the JSON is the `Plan` itself.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::{hex, Field};
use crate::registry::query::{bit_ranges, cell};
use crate::registry::schema::{Namespace, Setting, SettingSyntax};
use crate::report::text::{register_header, register_row};

use super::types::{field_word, Allocation, MoveKind, Plan, SlotBits, Snippet};

/// A setting written in its syntax: `KEY=VALUE` (env, flag), `KEY = VALUE` (INI), or the key's
/// dotted path as nested YAML or JSON.
pub fn snippet(s: &Setting, kind: MoveKind, value: u32) -> Snippet {
    let v = if s.decimal || kind == MoveKind::Bit {
        value.to_string()
    } else {
        format!("0x{value:x}")
    };
    let quoted = |v: &str| {
        if s.quoted {
            format!("\"{v}\"")
        } else {
            v.to_string()
        }
    };
    let text = match s.syntax {
        SettingSyntax::Env | SettingSyntax::Flag => format!("{}={v}", s.key),
        SettingSyntax::Ini => format!("{} = {v}", s.key),
        SettingSyntax::Yaml => {
            let parts: Vec<&str> = s.key.split('.').collect();
            let mut out = String::new();
            for (depth, p) in parts.iter().enumerate() {
                let indent = "  ".repeat(depth);
                if depth + 1 == parts.len() {
                    let _ = write!(out, "{indent}{p}: {}", quoted(&v));
                } else {
                    let _ = writeln!(out, "{indent}{p}:");
                }
            }
            out
        }
        SettingSyntax::Json => {
            let mut inner = if s.quoted || !s.decimal {
                format!("\"{v}\"")
            } else {
                v.clone()
            };
            for p in s.key.split('.').rev() {
                inner = format!("{{\"{p}\": {inner}}}");
            }
            inner
        }
    };
    Snippet {
        syntax: match s.syntax {
            SettingSyntax::Env => "env",
            SettingSyntax::Flag => "flag",
            SettingSyntax::Ini => "ini",
            SettingSyntax::Json => "json",
            SettingSyntax::Yaml => "yaml",
        },
        target: s.target.clone(),
        text,
    }
}

fn field_name(field: Field, ns: Namespace) -> String {
    let f = match field {
        Field::Mark => "packet mark (skb->mark)",
        Field::CtMark => "connmark (ct mark)",
    };
    match ns {
        Namespace::Host => format!("{f}, host namespace"),
        Namespace::Pod => format!("{f}, pod namespaces"),
    }
}

/// The software requested, as typed (`calico, kubelet@1.27`).
pub fn requested(plan: &Plan) -> String {
    let names: Vec<String> = plan
        .software
        .iter()
        .map(|s| match &s.version {
            Some(v) => format!("{}@{v}", s.id),
            None => s.id.clone(),
        })
        .collect();
    names.join(", ")
}

/// How a unit's bits in one slot are set: fixed and why, moved by which knob, or the knob's
/// default.
pub fn how_set(a: &Allocation, b: &SlotBits) -> String {
    match (&a.knob, &a.fixed) {
        (_, Some(why)) => format!("fixed: {why}"),
        (Some(k), None) if b.planned != b.default => {
            format!("moved from {} by {k}", b.default)
        }
        (Some(k), None) => format!("default of {k}"),
        (None, None) => String::new(),
    }
}

/// The plan as text.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "markspace plan: {}", requested(plan));
    if plan.feasible {
        let _ = writeln!(
            out,
            "{} setting(s) to change; no two owners share a bit",
            plan.changes
        );
    } else {
        let _ = writeln!(out, "no assignment exists");
    }
    // Why claims are fixed, once per reason (the registry's reasons carry their sources and are
    // long): the map refers to them by number.
    let mut why_fixed: Vec<(&str, Vec<&str>)> = Vec::new();
    for field in [Field::Mark, Field::CtMark] {
        for ns in [Namespace::Host, Namespace::Pod] {
            let rows: Vec<(String, u32, String)> = plan
                .in_slot(field, ns)
                .map(|(a, b)| {
                    let how = match a.fixed.as_deref() {
                        Some(why) => {
                            let n = why_fixed
                                .iter()
                                .position(|(w, _)| *w == why)
                                .unwrap_or_else(|| {
                                    why_fixed.push((why, Vec::new()));
                                    why_fixed.len() - 1
                                });
                            for c in &a.claims {
                                if !why_fixed[n].1.contains(&c.as_str()) {
                                    why_fixed[n].1.push(c);
                                }
                            }
                            format!("fixed [{}]", n + 1)
                        }
                        None => how_set(a, b),
                    };
                    let claims: Vec<&str> = a
                        .claims
                        .iter()
                        .map(|c| c.split_once('/').map_or(c.as_str(), |x| x.1))
                        .collect();
                    (
                        a.owner.clone(),
                        b.planned.0,
                        format!("{} ({how})", claims.join(", ")),
                    )
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(12);
            let _ = writeln!(out, "\n{}", field_name(field, ns));
            let _ = writeln!(out, "  {:width$}  {}", "", register_header(0));
            let _ = writeln!(out, "  {:width$}  {}", "", register_header(1));
            // Distinct owners per bit (a software's own claims may overlap).
            let mut users: Vec<Vec<&str>> = vec![Vec::new(); 32];
            for (owner, bits, how) in &rows {
                let row = register_row(|b| if bits & (1 << b) != 0 { '#' } else { '.' });
                let _ = writeln!(out, "  {owner:width$}  {row}  {}  {how}", hex(*bits));
                for (b, u) in users.iter_mut().enumerate() {
                    if bits & (1 << b) != 0 && !u.contains(&owner.as_str()) {
                        u.push(owner);
                    }
                }
            }
            if users.iter().any(|u| u.len() > 1) {
                let row = register_row(|b| if users[b].len() > 1 { '!' } else { ' ' });
                let _ = writeln!(out, "  {:width$}  {}", "shared", row.trim_end());
            }
        }
    }
    if !why_fixed.is_empty() {
        let _ = writeln!(out, "\nwhy fixed");
        for (n, (why, claims)) in why_fixed.iter().enumerate() {
            let _ = writeln!(out, "  [{}] {}: {why}", n + 1, claims.join(", "));
        }
    }
    let changed: Vec<_> = plan.settings.iter().filter(|s| s.changed).collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "\nsettings to change");
        for s in changed {
            let _ = writeln!(
                out,
                "  {} {} ({}): {} -> {}",
                s.software, s.name, s.location, s.default, s.value
            );
            for sn in &s.snippets {
                let _ = writeln!(out, "    # {} ({})", sn.target, sn.syntax);
                for line in sn.text.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            if s.snippets.is_empty() {
                let _ = writeln!(out, "    (set it where the registry says: {})", s.location);
            }
        }
    }
    if let Some(c) = &plan.conflict {
        let _ = writeln!(out, "\nwhy: {}", c.reason);
        for a in &c.core {
            let bits: Vec<String> = a.bits.iter().map(|b| b.default.to_string()).collect();
            let _ = writeln!(
                out,
                "  {} {} ({})",
                a.claims.join(", "),
                bits.join(" "),
                a.fixed.as_deref().unwrap_or("movable")
            );
            for s in &a.sources {
                let _ = writeln!(out, "    source: {s}");
            }
        }
        if c.remedies.is_empty() {
            let _ = writeln!(
                out,
                "  no on/off setting or release of these software makes it fit"
            );
        }
        for r in &c.remedies {
            let _ = writeln!(out, "  would fit: {r}");
        }
    }
    if !plan.hazards.is_empty() {
        let _ = writeln!(
            out,
            "\nwhole-field practices no bit assignment removes (an audit of the planned node reports them)"
        );
        for h in &plan.hazards {
            let _ = writeln!(
                out,
                "  {}/{} ({}): {}{}",
                h.owner,
                h.claim,
                field_word(h.field),
                h.what,
                if h.meets.is_empty() {
                    String::new()
                } else {
                    format!(" [meets {}]", h.meets.join(", "))
                }
            );
        }
    }
    for n in &plan.notes {
        let _ = writeln!(out, "\nnote: {n}");
    }
    out
}

/// The plan as Markdown, in the public fwmark registry's shape (bit ranges, mask, software,
/// source), then the settings.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let names: Vec<&str> = plan.software.iter().map(|s| s.id.as_str()).collect();
    let _ = writeln!(out, "# Mark plan: {}\n", names.join(", "));
    if !plan.feasible {
        let _ = writeln!(out, "**No assignment exists.**\n");
    }
    let _ = writeln!(out, "## Bitwise Mark Registry (planned)\n");
    let _ = writeln!(
        out,
        "| Bits | Mark mask | Field | Namespace | Software | Claims | Set by | Source |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let mut rows: BTreeMap<(u8, u8, u32, String), String> = BTreeMap::new();
    for a in &plan.allocations {
        for b in &a.bits {
            let set_by = match (&a.knob, &a.fixed) {
                (_, Some(why)) => format!("fixed ({why})"),
                (Some(k), None) => format!("`{k}`"),
                _ => String::new(),
            };
            let line = format!(
                "| {} | `0x{:08X}` | {} | {} | {} | {} | {} | {} |",
                bit_ranges(b.planned.0),
                b.planned.0,
                match b.field {
                    Field::Mark => "mark",
                    Field::CtMark => "ctmark",
                },
                match b.namespace {
                    Namespace::Host => "host",
                    Namespace::Pod => "pod",
                },
                a.owner,
                a.claims.join(", "),
                cell(&set_by),
                cell(&a.sources.join("; "))
            );
            let key = (
                u8::from(b.field == Field::CtMark),
                u8::from(b.namespace == Namespace::Pod),
                b.planned.0.trailing_zeros(),
                a.owner.clone() + &a.claims.join(","),
            );
            rows.insert(key, line);
        }
    }
    for line in rows.values() {
        let _ = writeln!(out, "{line}");
    }
    let changed: Vec<_> = plan.settings.iter().filter(|s| s.changed).collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "\n## Settings\n");
        for s in changed {
            let _ = writeln!(
                out,
                "- **{}** `{}`: `{}` → `{}` ({})",
                s.software, s.name, s.default, s.value, s.location
            );
            for sn in &s.snippets {
                let lang = match sn.syntax {
                    "yaml" => "yaml",
                    "json" => "json",
                    "ini" => "ini",
                    _ => "sh",
                };
                let _ = writeln!(
                    out,
                    "\n  {}:\n\n  ```{lang}\n{}\n  ```",
                    sn.target,
                    indent(&sn.text, "  ")
                );
            }
        }
    }
    if let Some(c) = &plan.conflict {
        let _ = writeln!(out, "\n## Why no assignment exists\n\n{}\n", c.reason);
        for a in &c.core {
            let _ = writeln!(out, "- {} — {}", a.claims.join(", "), a.sources.join("; "));
        }
        for r in &c.remedies {
            let _ = writeln!(out, "- would fit: {r}");
        }
    }
    if !plan.hazards.is_empty() {
        let _ = writeln!(out, "\n## Whole-field practices no assignment removes\n");
        for h in &plan.hazards {
            let _ = writeln!(out, "- {}/{}: {} ({})", h.owner, h.claim, h.what, h.source);
        }
    }
    out
}

fn indent(text: &str, pad: &str) -> String {
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
