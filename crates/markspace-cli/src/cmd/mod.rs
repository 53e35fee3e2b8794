//! One module per subcommand.

pub(crate) mod audit;
pub(crate) mod collect;
pub(crate) mod fleet;
pub(crate) mod install;
pub(crate) mod node;
pub(crate) mod plan;
pub(crate) mod registry;
pub(crate) mod serve;
pub(crate) mod trace;

use anyhow::Context;
use markspace::registry::Registry;

/// The embedded registry, plus a user directory if given.
pub(crate) fn load_registry(dir: Option<&std::path::Path>) -> anyhow::Result<Registry> {
    let mut reg = Registry::embedded().context("the built-in registry is invalid")?;
    if let Some(dir) = dir {
        reg.load_dir(dir)
            .with_context(|| format!("reading registry directory {}", dir.display()))?;
    }
    Ok(reg)
}

/// A JSON document of a command other than `audit`: the contract version, markspace's and the
/// registry's versions, then the command's payload under `key`.
pub(crate) fn envelope<T: serde::Serialize>(
    registry: &Registry,
    key: &str,
    payload: &T,
) -> anyhow::Result<serde_json::Value> {
    let mut doc = serde_json::Map::new();
    doc.insert(key.into(), serde_json::to_value(payload)?);
    stamped(registry, &doc)
}

/// A JSON object document stamped with the contract version, markspace's and the registry's
/// versions beside its own fields (`trace`, whose fields stay at the top).
pub(crate) fn stamped<T: serde::Serialize>(
    registry: &Registry,
    payload: &T,
) -> anyhow::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(payload)?;
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "version".into(),
            serde_json::json!(markspace::report::VERSION),
        );
        map.insert(
            "markspace".into(),
            serde_json::json!(env!("CARGO_PKG_VERSION")),
        );
        map.insert("registry".into(), serde_json::to_value(registry.version())?);
    }
    Ok(doc)
}
