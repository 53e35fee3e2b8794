//! markspace: who owns which bits of the Linux packet mark and connmark.
//!
//! The pipeline, one module per stage:
//!
//! 1. [`snapshot`] reads a node's inputs (files, directories, stdin) into a [`source::SourceMap`];
//!    [`sources`] detects each input's format and parses it into the [`ruleset`] model: tables,
//!    chains, rules in order, jumps, and for every rule its mark operations in the exact
//!    algebra of [`model`] (`x' = (x & keep) ^ xor`, copies between fields, reads
//!    `((x & mask) == value) ^ invert`). The result is a [`model::Node`], which every later stage
//!    reads.
//! 2. [`registry`] holds the knowledge base (one TOML file per software, embedded) and
//!    attributes every rule to an owner from its chain, comment and table.
//! 3. [`analysis`] builds the 32-bit maps of both fields (who reads and writes each bit) and
//!    the findings, each with evidence and a fix.
//! 4. [`report`] renders the result as text, JSON or Markdown; it only formats.
//!
//! [`plan`] reads the registry's knobs the other way round: given the software on a node, it
//! assigns conflict-free bits and says which settings to change.
//!
//! Parsers never do I/O and the analysis never sees input syntax.
#![warn(missing_docs)]

pub mod analysis;
pub mod archive;
pub mod bpf;
pub mod collect;
pub mod diagnostic;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
// Only for benchmarks and tests (the `generate` feature, which the crate's own dev-dependency on
// itself turns on for every test, bench and example build); not a stable API.
#[cfg(feature = "generate")]
#[doc(hidden)]
pub mod generate;
pub mod model;
pub mod packet;
pub mod plan;
pub mod registry;
pub mod report;
pub mod ruleset;
pub mod snapshot;
pub mod source;
pub mod sources;
pub mod touchpoint;
pub mod trace;
