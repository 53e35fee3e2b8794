//! Rules the registry quotes, recognised in a node by their text.
//!
//! A rule whose text is, token for token, a line a registry entry quotes as one its software
//! installs (Weave's filter `OUTPUT ! -p esp -m policy --dir out --pol none -m mark --mark
//! 0x20000/0x20000 -j DROP`) is that software's, whatever chain it sits in and however many
//! entries claim its bits: the strongest evidence there is. Lines an entry marks as not
//! recognisable on their own, and lines two entries both quote, prove nothing and are left out.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use super::schema::Software;

/// The quoted rule lines of every entry, by a hash of their tokens.
#[derive(Clone, Debug, Default)]
pub(crate) struct QuotedRules {
    /// Token hash → the normalised line (to confirm a match) and the one software quoting it.
    by_hash: HashMap<u64, (String, Option<usize>)>,
    /// Hashes of the first two tokens of every quoted line: a rule whose first two differ
    /// from every quoted line's (nearly every rule: its chain is not one the registry quotes a
    /// line of) is not hashed whole.
    heads: FxHashSet<u64>,
}

impl QuotedRules {
    pub(crate) fn new(software: &[Software]) -> Self {
        let mut by_hash: HashMap<u64, (String, Option<usize>)> = HashMap::default();
        let mut heads = FxHashSet::default();
        for (i, s) in software.iter().enumerate() {
            for r in s.rules.iter().filter(|r| r.recognisable) {
                if !matches!(r.format.as_str(), "iptables" | "nft") {
                    continue;
                }
                let tokens: Vec<&str> = rule_tokens(&r.text).collect();
                if tokens.is_empty() {
                    continue;
                }
                heads.insert(hash_tokens(tokens.iter().copied().take(2)));
                let e = by_hash
                    .entry(hash_tokens(tokens.iter().copied()))
                    .or_insert_with(|| (tokens.join(" "), Some(i)));
                if e.1 != Some(i) {
                    e.1 = None;
                }
            }
        }
        QuotedRules { by_hash, heads }
    }

    /// The software that quotes this rule's text, and the quoted line. No allocation: this runs
    /// for every rule with a mark operation.
    pub(crate) fn find(&self, text: &str) -> Option<(usize, &str)> {
        if self.by_hash.is_empty() || !self.heads.contains(&hash_tokens(rule_tokens(text).take(2)))
        {
            return None;
        }
        let (line, owner) = self.by_hash.get(&hash_tokens(rule_tokens(text)))?;
        let same = line.split(' ').eq(rule_tokens(text));
        Some(((*owner)?, line.as_str())).filter(|_| same)
    }

    /// [`Self::find`] as it was before the check of the first two tokens, the reference of
    /// `attribution_reference`.
    #[cfg(test)]
    pub(crate) fn find_ref(&self, text: &str) -> Option<(usize, String)> {
        let (line, owner) = self.by_hash.get(&hash_tokens(rule_tokens(text)))?;
        let same = line.split(' ').eq(rule_tokens(text));
        Some(((*owner)?, line.clone())).filter(|_| same)
    }
}

/// The tokens of a rule line from `-A` on (so `[5:300] -A …`, `iptables -t filter -A …` and
/// `+ iptables -A …` all read as the `-A …` the registry quotes); a line without `-A`, such
/// as an nft statement, whole.
fn rule_tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut tokens = text.split_ascii_whitespace().peekable();
    let has_append = text.split_ascii_whitespace().any(|t| t == "-A");
    if has_append {
        while tokens.peek().is_some_and(|t| *t != "-A") {
            tokens.next();
        }
    }
    tokens
}

fn hash_tokens<'a>(tokens: impl Iterator<Item = &'a str>) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    for t in tokens {
        t.hash(&mut h);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_start_at_append_whatever_comes_before() {
        let want = ["-A", "OUTPUT", "-j", "DROP"];
        for line in [
            "-A OUTPUT -j DROP",
            "[5:300] -A OUTPUT  -j DROP",
            "iptables -t filter -A OUTPUT -j DROP",
            "+ iptables -A OUTPUT -j\tDROP",
        ] {
            assert!(rule_tokens(line).eq(want), "{line}");
        }
        assert!(
            rule_tokens("meta mark set 0x1 accept").eq(["meta", "mark", "set", "0x1", "accept"])
        );
    }
}
