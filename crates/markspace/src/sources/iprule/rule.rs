//! One policy routing rule as the text and JSON forms read it, and its mark semantics (module
//! docs of [`super`]).

use crate::model::{Field, MarkOp, MarkRead, ALL_BITS};
use crate::source::Span;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

/// Which syntax a line is in; it decides the default mask of `fwmark V` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineForm {
    /// `ip rule show` output.
    Listing,
    /// An `ip rule add …` command.
    Command,
}

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
