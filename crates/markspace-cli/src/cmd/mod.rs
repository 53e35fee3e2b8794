//! One module per subcommand.

pub(crate) mod audit;
pub(crate) mod collect;
pub(crate) mod registry;
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
