//! `plan`: given the software on a node, assign every configurable claim to bits so that no two
//! owners that can meet share a bit, and say which settings to change.
//!
//! The stages, one module each:
//!
//! 1. [`units`] turns the registry entries of the requested software (at their versions, under
//!    the planned settings) into allocation units: the claims one knob moves (Calico's mask,
//!    kube-proxy's masquerade bit, WireGuard's FwMark), each fixed claim on its own, and the
//!    whole-field practices no bit assignment can fix (hazards).
//! 2. [`solve`] finds an assignment that changes the fewest settings, exactly (see its docs),
//!    or a smallest set of claims that cannot coexist and what would make them fit.
//! 3. [`remap`] applies the chosen settings to the registry (claims and rule templates), which
//!    gives the planned node and the registry `plan --check` audits a node with.
//! 4. [`render`] writes the plan as text, settings snippets and Markdown; [`Plan`] itself is the
//!    JSON.
//!
//! The kernel clears the packet mark when a packet crosses network namespaces, so claims are
//! allocated per namespace (host or pod) and per field (packet mark, connmark).

pub mod check;
pub mod node;
pub mod remap;
pub mod render;
pub mod solve;
pub mod types;
pub mod units;
pub mod version;

pub use types::*;
pub use version::Version;

/// Plans `request` against `registry`.
pub fn plan(
    registry: &crate::registry::Registry,
    request: &Request,
) -> Result<Plan, units::PlanError> {
    let set = units::build(registry, request)?;
    Ok(solve::solve(registry, request, &set))
}

#[cfg(test)]
mod tests;
