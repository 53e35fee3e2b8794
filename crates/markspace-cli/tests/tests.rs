//! End-to-end tests: the real binary on real inputs (one test binary, as ripgrep does).
#![allow(clippy::unwrap_used)]

#[macro_use]
mod util;

mod audit;
mod collect;
mod edges;
mod examples;
mod fixes;
mod live;
mod nodes;
mod pastes;
mod pictures;
mod registry;
mod schemas;
mod trace;
mod trace_kernel;
