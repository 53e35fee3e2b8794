//! Findings from kernel settings (MS010-MS012): how `src_valid_mark`, `rp_filter` and
//! `tcp_fwmark_accept` interact with the node's fwmark policy routing.
//!
//! - **MS010 rp-filter-ignores-mark** (warning). With `rp_filter` strict (1) the kernel validates
//!   the source of every received packet with a reverse route lookup (`fib_validate_source`,
//!   `net/ipv4/fib_frontend.c`); that lookup uses the packet mark only when `src_valid_mark` is
//!   set (`IN_DEV_SRC_VMARK`: `all` OR the interface; `rp_filter` takes the maximum of `all` and
//!   the interface). Packets whose route depends on an `ip rule fwmark` selector — replies of
//!   tunnelled or policy-routed connections — fail the check and are dropped. wg-quick sets
//!   `src_valid_mark=1` for this reason.
//! - **MS011 src-valid-mark-forced** (warning when another owner routes by mark, info
//!   otherwise). `src_valid_mark=1` on `all` applies to every interface, so the reverse-path
//!   lookups of every owner's marked packets change; Tailscale 1.98 forcing it broke Cilium's
//!   L7 proxy routing on k3s (tailscale#19796).
//! - **MS012 fwmark-accept-off** (info). With `tcp_fwmark_accept=0` (the default) a socket
//!   accepted from a marked SYN gets no mark (`inet_request_mark`), so its replies miss the
//!   fwmark rules unless a connmark restore puts the mark back.

use std::collections::BTreeMap;

use crate::model::{hex, CopySource, Field, MarkOp, WriteOp};
use crate::source::{Lines, SourceId};
use crate::touchpoint::{Observation, Subsystem};

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{Ctx, EvidenceItem, Finding, IncidentRef};
use crate::analysis::usage::{Site, Use};

/// One observed setting with where it was read.
struct Setting<'a> {
    value: &'a str,
    source: SourceId,
    line: u32,
    key: &'a str,
}

fn settings<'a>(cx: &'a Ctx<'_>) -> BTreeMap<&'a str, Setting<'a>> {
    let mut out = BTreeMap::new();
    for (source, obs) in &cx.node.observations {
        if let Observation::Sysctl { key, value, line } = obs {
            // The last value read wins, as with sysctl files applied in order.
            out.insert(
                key.as_str(),
                Setting {
                    value: value.as_str(),
                    source: *source,
                    line: *line,
                    key: key.as_str(),
                },
            );
        }
    }
    out
}

fn setting_evidence(cx: &Ctx<'_>, s: &Setting<'_>) -> EvidenceItem {
    let text = Lines::new(&cx.sources.file(s.source).text)
        .find(|(n, _, _)| *n == s.line)
        .map_or_else(
            || format!("{} = {}", s.key, s.value),
            |(_, _, l)| l.trim().to_string(),
        );
    EvidenceItem {
        file: cx.sources.file(s.source).name.clone(),
        line: Some(s.line),
        text,
        owner: "kernel".to_string(),
    }
}

/// The uses of `ip rule` fwmark selectors.
fn ip_rule_uses<'a>(cx: &'a Ctx<'_>) -> Vec<&'a Use> {
    cx.usage
        .uses
        .iter()
        .filter(|u| match u.site {
            Site::Touchpoint(i) => cx.node.touchpoints[i as usize].subsystem == Subsystem::IpRule,
            Site::Rule(_) => false,
        })
        .collect()
}

fn owners_of(cx: &Ctx<'_>, uses: &[&Use]) -> Vec<String> {
    let mut v: Vec<String> = uses
        .iter()
        .map(|u| cx.owner_id(u.owner).to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn rule_evidence(cx: &Ctx<'_>, uses: &[&Use], out: &mut Vec<EvidenceItem>) -> usize {
    let mut shown = 0;
    for u in uses.iter().take(3) {
        out.push(cx.evidence_of(u));
        shown += 1;
    }
    uses.len() - shown
}

fn num(s: Option<&Setting<'_>>) -> Option<u32> {
    s.and_then(|s| s.value.trim().parse().ok())
}

/// Runs MS010-MS012.
pub(super) fn find(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let set = settings(cx);
    if set.is_empty() {
        return;
    }
    let rules = ip_rule_uses(cx);
    let bits = rules.iter().fold(0, |a, u| a | u.reads[0]);
    rp_filter(cx, &set, &rules, bits, out);
    src_valid_mark_forced(cx, &set, &rules, bits, out);
    fwmark_accept(cx, &set, &rules, bits, out);
}

/// MS010.
fn rp_filter(
    cx: &Ctx<'_>,
    set: &BTreeMap<&str, Setting<'_>>,
    rules: &[&Use],
    bits: u32,
    out: &mut Vec<Finding>,
) {
    if rules.is_empty() {
        return;
    }
    let conf = |iface: &str, key: &str| set.get(format!("net.ipv4.conf.{iface}.{key}").as_str());
    let all_rp = num(conf("all", "rp_filter")).unwrap_or(0);
    let all_svm = num(conf("all", "src_valid_mark")).unwrap_or(0);
    let mut ifaces: Vec<&str> = set
        .keys()
        .filter_map(|k| k.strip_prefix("net.ipv4.conf."))
        .filter_map(|k| k.rsplit_once('.').map(|(i, _)| i))
        .collect();
    ifaces.sort_unstable();
    ifaces.dedup();
    let mut strict = Vec::new();
    for iface in ifaces {
        let rp = all_rp.max(num(conf(iface, "rp_filter")).unwrap_or(0));
        let svm = all_svm != 0 || num(conf(iface, "src_valid_mark")).unwrap_or(0) != 0;
        if rp == 1 && !svm {
            strict.push(iface);
        }
    }
    if strict.is_empty() {
        return;
    }
    let mut evidence = Vec::new();
    for iface in strict.iter().take(2) {
        for key in ["rp_filter", "src_valid_mark"] {
            for i in [*iface, "all"] {
                if let Some(s) = conf(i, key) {
                    let e = setting_evidence(cx, s);
                    if !evidence.contains(&e) {
                        evidence.push(e);
                    }
                }
            }
        }
    }
    let omitted = rule_evidence(cx, rules, &mut evidence);
    let owners = owners_of(cx, rules);
    out.push(Finding {
        code: Code::RpFilterIgnoresMark,
        severity: Severity::Warning,
        owners: owners.clone(),
        field: Field::Mark,
        bits,
        title: format!(
            "strict rp_filter without src_valid_mark on {} while {} route by packet mark: the reverse-path check ignores the mark and drops packets (replies) whose route depends on it",
            strict.join(", "),
            owners.join(", ")
        ),
        evidence,
        evidence_omitted: omitted,
        fix: "Set `net.ipv4.conf.all.src_valid_mark=1` (what wg-quick does) so the reverse-path lookup sees the mark, or use loose mode `rp_filter=2` on the interfaces marked traffic arrives on.".to_string(),
        incidents: Vec::new(),
        path: None,
    });
}

/// MS011.
fn src_valid_mark_forced(
    cx: &Ctx<'_>,
    set: &BTreeMap<&str, Setting<'_>>,
    rules: &[&Use],
    bits: u32,
    out: &mut Vec<Finding>,
) {
    let Some(s) = set.get("net.ipv4.conf.all.src_valid_mark") else {
        return;
    };
    if num(Some(s)) != Some(1) || rules.is_empty() {
        return;
    }
    let owners = owners_of(cx, rules);
    let mut evidence = vec![setting_evidence(cx, s)];
    let omitted = rule_evidence(cx, rules, &mut evidence);
    let incidents: Vec<IncidentRef> = cx
        .registry
        .incidents
        .iter()
        .filter(|i| {
            i.id == "tailscale-src-valid-mark-policy-routing"
                && i.software.iter().any(|sw| owners.contains(sw))
        })
        .map(IncidentRef::from)
        .collect();
    let several = owners.len() >= 2;
    out.push(Finding {
        code: Code::SrcValidMarkForced,
        severity: if several {
            Severity::Warning
        } else {
            Severity::Info
        },
        owners: owners.clone(),
        field: Field::Mark,
        bits,
        title: if several {
            format!(
                "src_valid_mark=1 on all interfaces changes the reverse-path lookups of every owner's marked packets, and {} route by mark",
                owners.join(", ")
            )
        } else {
            format!(
                "src_valid_mark=1 on all interfaces: reverse-path checks route by the packet mark ({} routes by mark)",
                owners.join(", ")
            )
        },
        evidence,
        evidence_omitted: omitted,
        fix: "Check that every owner's marked packets still pass reverse-path validation with the mark applied (`ip route get SRC from DST iif IF mark M`); a VPN that forces this setting for all interfaces (Tailscale 1.98, wg-quick, Mullvad, NetBird) can be confined with its knobs (`tailscale set --netfilter-mode=nodivert`) and an interface-specific `src_valid_mark`.".to_string(),
        incidents,
        path: None,
    });
}

/// MS012.
fn fwmark_accept(
    cx: &Ctx<'_>,
    set: &BTreeMap<&str, Setting<'_>>,
    rules: &[&Use],
    bits: u32,
    out: &mut Vec<Finding>,
) {
    let Some(s) = set.get("net.ipv4.tcp_fwmark_accept") else {
        return;
    };
    if num(Some(s)) != Some(0) || rules.is_empty() {
        return;
    }
    let restores = cx.usage.uses.iter().any(|u| {
        matches!(u.op, MarkOp::Write(w) if w.field == Field::Mark
            && matches!(w.op, WriteOp::Copy { src: CopySource::CtMark, src_mask, .. } if src_mask & bits != 0))
    });
    if restores {
        return;
    }
    let owners = owners_of(cx, rules);
    let mut evidence = vec![setting_evidence(cx, s)];
    let omitted = rule_evidence(cx, rules, &mut evidence);
    out.push(Finding {
        code: Code::FwmarkAcceptOff,
        severity: Severity::Info,
        owners: owners.clone(),
        field: Field::Mark,
        bits,
        title: format!(
            "tcp_fwmark_accept=0: sockets accepted from marked SYNs get no mark, so their replies miss the fwmark rules of {} (bits {}) and no connmark restore puts the mark back",
            owners.join(", "),
            hex(bits)
        ),
        evidence,
        evidence_omitted: omitted,
        fix: "If locally terminated connections must reply through a fwmark route, set `net.ipv4.tcp_fwmark_accept=1`, give the listener an SO_MARK, or restore the mark from the connmark in mangle OUTPUT (`-j CONNMARK --restore-mark --mask M`).".to_string(),
        incidents: Vec::new(),
        path: None,
    });
}
