//! The fixes a check proposes for a finding, before [`super::verify`] audits them on a copy of
//! the node (a leaf module: the context the checks run in holds them).

use crate::model::Rewrite;

/// One way to fix a finding.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// The fix as printed.
    pub(crate) text: String,
    /// The same fix in the algebra.
    pub(crate) rewrites: Vec<Rewrite>,
    /// True when the fix moves the owner's value (its meaning on the old bits changes on
    /// purpose), false when every rewritten operation must mean the same on the owner's bits.
    pub(crate) moves_value: bool,
}

/// The fixes a check proposes for one finding, best first.
#[derive(Clone, Debug)]
pub(crate) struct Proposal {
    /// Index of the owner the fix changes in [`super::Usage::owners`].
    pub(crate) owner: usize,
    /// The candidates, tried in order.
    pub(crate) candidates: Vec<Candidate>,
    /// Printed when no candidate passes.
    pub(crate) none: String,
}

impl Proposal {
    /// The finding's fix until [`super::verify::settle`] has checked the candidates: the first
    /// candidate's text, or what is printed when there is none.
    pub(crate) fn first_text(&self) -> String {
        self.candidates
            .first()
            .map_or_else(|| self.none.clone(), |c| c.text.clone())
    }
}
