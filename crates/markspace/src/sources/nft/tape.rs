//! A borrowed, reusable tape for one JSON value: what `nft -j`'s reader parses each element of
//! the `nftables` array into instead of a `serde_json::Value` tree.
//!
//! Why: building and dropping a `Value` tree of the whole document was most of the time of
//! auditing `nft -j` output (perf on a 3.4 MB listing: dropping the tree 14%, malloc and free
//! 23%, fresh pages 8%). The tape keeps flat arrays of values and members whose strings borrow
//! from the input, is reused for every element, and reads as `Value` would (members sorted by
//! key, the last of repeated keys wins), so the walker in `json.rs` means the same as before.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value, its strings borrowed from the input (unless they contain escapes), its arrays
/// and objects ranges of a [`Tape`].
///
/// Why not `serde_json::Value`: building a `Value` tree of the whole document (a `BTreeMap` and
/// an owned `String` for every member) and dropping it took four fifths of the time of auditing
/// `nft -j` output and most of its memory; a tree of `Vec`s, one element at a time, still spent
/// a third of the time allocating, growing and freeing them. Read through [`J`], a `Val` means
/// exactly what the `Value` of the same text means — members sorted by key, the last of repeated
/// keys wins, integers as `u64` or negative `i64`, other numbers opaque — so the walk in `json.rs`
/// reads as it did over `Value`.
#[derive(Debug)]
pub(super) enum Val<'a> {
    /// `null` (also a non-finite number, as `serde_json::Value` reads it).
    Null,
    /// `true` or `false`.
    Bool,
    /// A non-negative integer.
    Pos(u64),
    /// A negative integer.
    Neg(i64),
    /// Any other number.
    Float,
    /// A string.
    Str(Cow<'a, str>),
    /// An array: `Tape::items[start..end]`.
    Arr(usize, usize),
    /// An object: `Tape::members[start..end]`, in text order, repeated keys too (read as
    /// `serde_json::Map` has them through [`J`]).
    Obj(usize, usize),
}

/// The arrays and objects of one element of the `nftables` array, stored flat. The tape is
/// cleared and reused for the next element, so once it has grown to the largest element,
/// parsing allocates nothing.
#[derive(Debug, Default)]
pub(super) struct Tape<'a> {
    /// Items of arrays, each array's contiguous.
    pub(super) items: Vec<Val<'a>>,
    /// Members of objects, each object's contiguous.
    pub(super) members: Vec<(Cow<'a, str>, Val<'a>)>,
    /// Items of the arrays being parsed (an array's items go to `items` when it closes).
    pub(super) open_items: Vec<Val<'a>>,
    /// Members of the objects being parsed.
    pub(super) open_members: Vec<(Cow<'a, str>, Val<'a>)>,
    /// The first key parsed since the tape was cleared (the first key of an element that is an
    /// object), `Some(None)` when it has escapes and is not a slice of the input.
    pub(super) first_key: Option<Option<&'a str>>,
}

impl Tape<'_> {
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.members.clear();
        self.first_key = None;
    }
}

/// Parses one value onto a tape.
pub(super) struct Parse<'t, 'a>(pub(super) &'t mut Tape<'a>);

impl<'de> DeserializeSeed<'de> for Parse<'_, 'de> {
    type Value = Val<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Parse<'_, 'de> {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool)
    }

    fn visit_i64<E>(self, n: i64) -> Result<Val<'de>, E> {
        Ok(u64::try_from(n).map_or(Val::Neg(n), Val::Pos))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Val<'de>, E> {
        Ok(Val::Pos(n))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Val<'de>, E> {
        Ok(if x.is_finite() { Val::Float } else { Val::Null })
    }

    fn visit_str<E>(self, s: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(s.to_string())))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(s)))
    }

    fn visit_string<E>(self, s: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_none<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Val<'de>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        let t = self.0;
        let open = t.open_items.len();
        while let Some(x) = seq.next_element_seed(Parse(&mut *t))? {
            t.open_items.push(x);
        }
        let start = t.items.len();
        t.items.extend(t.open_items.drain(open..));
        Ok(Val::Arr(start, t.items.len()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        let t = self.0;
        let open = t.open_members.len();
        while let Some(Key(k)) = map.next_key()? {
            t.first_key.get_or_insert(match k {
                Cow::Borrowed(k) => Some(k),
                Cow::Owned(_) => None,
            });
            let v = map.next_value_seed(Parse(&mut *t))?;
            t.open_members.push((k, v));
        }
        let start = t.members.len();
        t.members.extend(t.open_members.drain(open..));
        Ok(Val::Obj(start, t.members.len()))
    }
}

/// A value with the tape it is on: what the walk reads.
#[derive(Clone, Copy)]
pub(super) struct J<'t, 'a> {
    pub(super) tape: &'t Tape<'a>,
    pub(super) val: &'t Val<'a>,
}

/// What a [`J`] is.
pub(super) enum View<'t, 'a> {
    Str(&'t Cow<'a, str>),
    Arr(Arr<'t, 'a>),
    Obj(&'t [(Cow<'a, str>, Val<'a>)]),
    /// `null`, a boolean or a number.
    Scalar,
}

/// The items of an array.
#[derive(Clone, Copy)]
pub(super) struct Arr<'t, 'a> {
    pub(super) tape: &'t Tape<'a>,
    pub(super) items: &'t [Val<'a>],
}

impl<'t, 'a> Arr<'t, 'a> {
    pub(super) fn get(self, i: usize) -> Option<J<'t, 'a>> {
        let tape = self.tape;
        self.items.get(i).map(|val| J { tape, val })
    }

    pub(super) fn first(self) -> Option<J<'t, 'a>> {
        self.get(0)
    }

    pub(super) fn len(self) -> usize {
        self.items.len()
    }

    pub(super) fn iter(self) -> impl Iterator<Item = J<'t, 'a>> {
        let tape = self.tape;
        self.items.iter().map(move |val| J { tape, val })
    }
}

impl<'t, 'a> J<'t, 'a> {
    pub(super) fn at(self, val: &'t Val<'a>) -> J<'t, 'a> {
        J {
            tape: self.tape,
            val,
        }
    }

    pub(super) fn view(self) -> View<'t, 'a> {
        match *self.val {
            Val::Str(ref s) => View::Str(s),
            Val::Arr(start, end) => View::Arr(Arr {
                tape: self.tape,
                items: &self.tape.items[start..end],
            }),
            Val::Obj(start, end) => View::Obj(&self.tape.members[start..end]),
            Val::Null | Val::Bool | Val::Pos(_) | Val::Neg(_) | Val::Float => View::Scalar,
        }
    }

    pub(super) fn members(self) -> Option<&'t [(Cow<'a, str>, Val<'a>)]> {
        match self.view() {
            View::Obj(m) => Some(m),
            _ => None,
        }
    }

    /// The member `key` of an object (the last one, as `serde_json::Map` keeps the last of
    /// repeated keys).
    pub(super) fn get(self, key: &str) -> Option<J<'t, 'a>> {
        let (_, v) = self.members()?.iter().rev().find(|(k, _)| k == key)?;
        Some(self.at(v))
    }

    /// The member with the least key (`serde_json::Map::iter().next()`): the only member of the
    /// one-member objects libnftables writes for statements and expressions.
    pub(super) fn first_member(self) -> Option<(&'t str, J<'t, 'a>)> {
        let m = self.members()?;
        let mut least = m.first()?;
        for member in &m[1..] {
            if member.0 <= least.0 {
                least = member;
            }
        }
        Some((&least.0, self.at(&least.1)))
    }

    /// The members of an object as `serde_json::Map` iterates them: sorted by key, the last of
    /// repeated keys.
    pub(super) fn sorted_members(self) -> Vec<(&'t str, J<'t, 'a>)> {
        let mut v: Vec<(&str, J<'t, 'a>)> = self
            .members()
            .unwrap_or_default()
            .iter()
            .map(|(k, val)| (k.as_ref(), self.at(val)))
            .collect();
        if v.len() > 1 {
            // Stable: repeated keys stay in text order, and the last is kept.
            v.sort_by(|a, b| a.0.cmp(b.0));
            v.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    *kept = *later;
                }
                same
            });
        }
        v
    }

    pub(super) fn as_array(self) -> Option<Arr<'t, 'a>> {
        match self.view() {
            View::Arr(a) => Some(a),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> Option<&'t str> {
        match self.val {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string, borrowed from the input when it is.
    pub(super) fn as_cow(self) -> Option<Cow<'a, str>> {
        match self.val {
            Val::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub(super) fn as_u64(self) -> Option<u64> {
        match *self.val {
            Val::Pos(n) => Some(n),
            _ => None,
        }
    }

    pub(super) fn as_i64(self) -> Option<i64> {
        match *self.val {
            Val::Pos(n) => i64::try_from(n).ok(),
            Val::Neg(n) => Some(n),
            _ => None,
        }
    }

    /// Whether this is the string `s`.
    pub(super) fn is_str(self, s: &str) -> bool {
        self.as_str() == Some(s)
    }
}

/// An object key, borrowed unless it contains escapes.
pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value as `serde_json::Value` has it, booleans and non-integers reduced to what `Val` keeps.
    fn as_value(v: J<'_, '_>) -> serde_json::Value {
        use serde_json::Value;
        match (v.view(), v.val) {
            (View::Str(s), _) => Value::String(s.to_string()),
            (View::Arr(a), _) => Value::Array(a.iter().map(as_value).collect()),
            (View::Obj(_), _) => Value::Object(
                v.sorted_members()
                    .into_iter()
                    .map(|(k, m)| (k.to_string(), as_value(m)))
                    .collect(),
            ),
            (View::Scalar, Val::Pos(n)) => Value::from(*n),
            (View::Scalar, Val::Neg(n)) => Value::from(*n),
            (View::Scalar, Val::Bool) => Value::from("bool"),
            (View::Scalar, Val::Float) => Value::from("float"),
            (View::Scalar, _) => Value::Null,
        }
    }

    fn reduced(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Bool(_) => Value::from("bool"),
            Value::Number(n) if n.is_f64() => Value::from("float"),
            Value::Array(a) => Value::Array(a.into_iter().map(reduced).collect()),
            Value::Object(o) => {
                Value::Object(o.into_iter().map(|(k, v)| (k, reduced(v))).collect())
            }
            other => other,
        }
    }

    #[test]
    fn vals_read_as_serde_json_values() {
        let texts = [
            r#"{"b": 1, "a": {"x": 1}, "a": {"y": [true, null, -2, 1.5, 1e3]}, "\u0061": 3}"#,
            r#"[{"z": 1, "y": 2, "z": 3}, "s\"q", 18446744073709551615, -9223372036854775808, {}]"#,
            r#"{"match": {"right": 1, "op": "==", "left": {"meta": {"key": "mark"}}}}"#,
        ];
        for t in texts {
            let mut tape = Tape::default();
            let mut de = serde_json::Deserializer::from_str(t);
            let val = Parse(&mut tape).deserialize(&mut de).expect("valid");
            let j = J {
                tape: &tape,
                val: &val,
            };
            let value: serde_json::Value = serde_json::from_str(t).expect("valid");
            assert_eq!(as_value(j), reduced(value.clone()), "{t}");
            if let (Some(m), Some(o)) = (j.members(), value.as_object()) {
                let first = j.first_member().map(|(k, v)| (k.to_string(), as_value(v)));
                let expected = o
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), reduced(v.clone())));
                assert_eq!(first, expected, "{t}");
                for (k, _) in m {
                    let got = j.get(k).map(as_value);
                    assert_eq!(got, o.get(k.as_ref()).cloned().map(reduced), "{t}");
                }
            }
        }
    }
}
