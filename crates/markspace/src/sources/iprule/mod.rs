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
mod rule;
mod text;

pub(crate) use json::{detect as detect_json, parse as parse_json};
#[cfg(test)]
pub(crate) use rule::LineForm;
pub(crate) use rule::{IpRule, Target};
pub(crate) use text::{detect as detect_text, parse as parse_text};
#[cfg(test)]
pub(crate) use text::{is_listing, parse_line};

#[cfg(test)]
mod tests;
