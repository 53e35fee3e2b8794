//! Tables derived from a node's uses that the checks compute on first use and keep in the
//! analysis context: their types live here, apart from the code that fills them
//! (`meeting`, `fix`), so the context can hold them without the modules depending on each
//! other in a cycle.

use crate::model::MarkOp;
use crate::ruleset::Hook;

use super::path::PATHS;
use super::usage::Use;

/// What an owner's whole-field writes mean for the bits others can move into, per field.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WholeAware {
    /// The bits another owner cannot move into without meeting this one: what it reads and
    /// writes, except that a whole-field write of a constant (a WireGuard device fwmark
    /// `0xca6c`) takes the bits of its value, not all 32. Whole writes of data-dependent values
    /// and whole-field matches do take every bit.
    pub(crate) taken: u32,
    /// The first constant whole value it writes (the value a whole-value knob such as
    /// WireGuard's `FwMark` has here when the registry gives no default).
    pub(crate) value: Option<u32>,
}

/// Ordering key of a use at a hook of a path: the hook's place, the rank of a placed
/// touchpoint around the hook's rules ([`super::path::position`]; 0 for rules), the rule's order, the
/// operation.
pub(crate) type Key = (u8, i8, u32, u32);

/// One use placed at a hook of a path, with what the witness search reads of it held inline
/// (the search sweeps the events several times; the [`Use`] it came from is read once).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub(crate) key: Key,
    /// The use's index in [`super::usage::Usage::uses`].
    pub(crate) use_index: u32,
    pub(crate) hook: Hook,
    pub(crate) owner: u32,
    /// Per field, the bits a masked (not whole-value) write writes; 0 for other uses.
    pub(crate) writes: [u32; 2],
    /// Per field, the bits a match tests; 0 for writes.
    pub(crate) reads: [u32; 2],
    /// The bits a constant masked write sets to 1 (its xor part); 0 for other uses.
    pub(crate) sets: u32,
}

impl Event {
    pub(crate) fn new(key: Key, use_index: u32, u: &Use, hook: Hook) -> Event {
        let (writes, reads, sets) = match u.op {
            MarkOp::Write(w) if !w.is_whole() => {
                let sets = match w.op {
                    crate::model::WriteOp::Const { xor, .. } => xor,
                    _ => 0,
                };
                (u.writes, [0; 2], sets)
            }
            MarkOp::Write(_) => ([0; 2], [0; 2], 0),
            MarkOp::Read(_) => ([0; 2], u.reads, 0),
        };
        Event {
            key,
            use_index,
            hook,
            // Owners are counted from the registry's entries.
            owner: u.owner as u32,
            writes,
            reads,
            sets,
        }
    }

    pub(crate) fn is_of(&self, owner: usize) -> bool {
        self.owner as usize == owner
    }
}

/// Each owner's uses in path order, found once per analysis (built by `meeting::path_events`).
pub(crate) struct PathEvents {
    /// Per hook (by `Hook as usize`), per owner, the uses of the rules the hook's traversal
    /// reaches, in traversal order: 4 bytes a use, shared by the paths through the hook.
    pub(crate) walked: [Vec<Vec<u32>>; 7],
    /// Per owner, per path of [`PATHS`], its other events (attach points of placed programs,
    /// touchpoints with hooks, rules the traversal does not reach), by (key, use index).
    pub(crate) aside: Vec<[Vec<Event>; PATHS.len()]>,
}
