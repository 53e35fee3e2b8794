//! Policy routing rules: `ip rule show`, `ip -6 rule`, `ip -j rule show`, and `ip rule add …`
//! commands (scripts, pasted sessions).
//!
//! # Semantics (`net/core/fib_rules.c`)
//!
//! `fib_rule_match` tests `((rule->mark ^ fl->flowi_mark) & rule->mark_mask) == 0`, inverted by
//! `FIB_RULE_INVERT` (`not`). That is `(m & M) == (V & M)`: a read normalised to
//! `Equals { value: V & M, mask: M }`.
//!
//! The mask defaults differ between what a user types and what `ip rule show` prints:
//!
//! - **Commands.** `fib_nl2rule` sets `mark_mask = 0xffffffff` only when the mark value is
//!   nonzero ("compatibility"); `ip rule add fwmark 0` therefore has mask 0 and matches every
//!   packet (no read), while `fwmark 0x80` compares all 32 bits.
//! - **Listings.** `fib_nl_fill_rule` dumps `FRA_FWMARK` when the value is nonzero and
//!   `FRA_FWMASK` when value or mask is nonzero; iproute2 `ip/iprule.c` (`print_rule`) prints
//!   ` fwmark %#llx` and adds `/%#llx` only when the mask is not 0xffffffff. So a printed
//!   `fwmark V` without a mask always means mask 0xffffffff — **including `fwmark 0`**, which is
//!   how a rule added as `fwmark 0/0xffffffff` (only unmarked packets) prints — and a rule added
//!   as `fwmark 0` prints no fwmark at all. `%#llx` prints zero as `0`, not `0x0`.
//!
//! The kernel test `tests/kernel_touchpoints.rs` checks both against `ip route get … mark`.
//!
//! # Context
//!
//! Priority and table (`lookup 52`, `lookup main`; `goto N` and the actions `unreachable`,
//! `blackhole`, `prohibit` are kept as the rule's target) go to [`TouchContext`] for attribution
//! (Tailscale 5210-5270 and table 52, wg-quick's table 51820, Cilium's 9/10/2004/2005…).

mod json;
mod text;

pub(crate) use json::{detect as detect_json, parse as parse_json};
pub(crate) use text::{detect as detect_text, parse as parse_text, LineForm};
#[cfg(test)]
pub(crate) use text::{is_listing, parse_line};

use crate::model::{Field, MarkOp, MarkRead, ALL_BITS};
use crate::source::Span;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `lookup TABLE` (a name or number as printed).
    Lookup(String),
    /// `goto PRIORITY`.
    Goto(u32),
    /// `unreachable`, `blackhole`, `prohibit`, `nop`.
    Action(String),
}

/// One policy routing rule, as far as marks and attribution are concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IpRule {
    /// Its priority (`PREF:` or `pref`/`priority`).
    pub(crate) priority: Option<u32>,
    /// `not`: the selector is inverted.
    pub(crate) not: bool,
    /// The fwmark selector in kernel form (value, mask), after the defaults of its form.
    pub(crate) fwmark: Option<(u32, u32)>,
    /// What it does.
    pub(crate) target: Option<Target>,
    /// `suppress_prefixlength N`.
    pub(crate) suppress_prefixlength: Option<u32>,
    /// `iif DEV` / `oif DEV`.
    pub(crate) iif: Option<String>,
    /// `oif DEV`.
    pub(crate) oif: Option<String>,
    /// `lookup [l3mdev-table]` / `l3mdev`.
    pub(crate) l3mdev: bool,
    /// Whether it is an IPv6 rule.
    pub(crate) ipv6: bool,
}

impl IpRule {
    /// Its mark read: `(m & M) == (V & M)`, inverted by `not`; none when the mask is 0 (the
    /// selector matches every packet, so no bit is read).
    pub(crate) fn read(&self) -> Option<MarkRead> {
        let (v, m) = self.fwmark?;
        (m != 0).then(|| MarkRead::equals(Field::Mark, v & m, m, self.not))
    }

    /// What attribution knows about the rule: priority, table, device.
    pub(crate) fn context(&self) -> TouchContext {
        TouchContext {
            table: match &self.target {
                Some(Target::Lookup(t)) => Some(t.clone()),
                _ => None,
            },
            priority: self.priority,
            device: self.iif.clone().or_else(|| self.oif.clone()),
            ipv6: self.ipv6,
            ..TouchContext::default()
        }
    }

    /// The touchpoint of this rule at `span`, if it reads the mark.
    pub(crate) fn touchpoint(&self, span: Span) -> Option<Touchpoint> {
        let read = self.read()?;
        Some(Touchpoint {
            subsystem: Subsystem::IpRule,
            span,
            ops: vec![MarkOp::Read(read)],
            context: self.context(),
        })
    }
}

/// The kernel's mask for a mark value given with or without a mask, by form (see the module
/// documentation).
pub(crate) fn fwmark_mask(value: u32, mask: Option<u32>, form: LineForm) -> u32 {
    match (mask, form) {
        (Some(m), _) => m,
        (None, LineForm::Listing) => ALL_BITS,
        (None, LineForm::Command) => {
            if value != 0 {
                ALL_BITS
            } else {
                0
            }
        }
    }
}

#[cfg(test)]
mod tests;
