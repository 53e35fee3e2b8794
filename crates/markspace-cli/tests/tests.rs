//! End-to-end tests: the real binary on real inputs (one test binary, as ripgrep does).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod util;

mod archives;
mod audit;
mod bpf;
mod collect;
mod deploy;
mod edges;
mod examples;
mod fixes;
mod fleet;
mod live;
mod nodes;
mod pastes;
mod pictures;
mod plan;
mod registry;
mod schemas;
mod serve;
mod trace;
mod trace_kernel;
