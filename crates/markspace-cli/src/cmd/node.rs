//! One node's audit as a call that returns its report (no printing), for `fleet`; and the
//! check of a collected snapshot's manifest that `audit` shares.

use std::path::{Path, PathBuf};

use markspace::analysis::analyze;
use markspace::archive::ArchiveNode;
use markspace::diagnostic::Level;
use markspace::registry::Registry;
use markspace::report::Report;
use markspace::snapshot::{archive_nodes, NodeLoader};

/// The hint of a source that was not read.
const UNREAD_HINT: &str =
    "run as root or with CAP_NET_ADMIN and CAP_NET_RAW, with iptables, nft and ip installed";

/// Records in `report` every source the snapshot at `path` (its `manifest.json`, when it has
/// one) could not read, under the name `shown`; returns their messages.
pub(crate) fn mark_unread(report: &mut Report, path: &Path, shown: &str) -> Vec<String> {
    match std::fs::read(path.join("manifest.json")) {
        Ok(bytes) => mark_unread_json(report, &bytes, shown),
        Err(_) => Vec::new(),
    }
}

/// [`mark_unread`] for a manifest's content (one read from an archive).
pub(crate) fn mark_unread_json(report: &mut Report, manifest: &[u8], shown: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(manifest) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for u in markspace::collect::unread_sources(&json) {
        let message = format!("not read: {} (`{}`): {}", u.what, u.command, u.reason);
        report.not_read(shown, message.clone(), Some(UNREAD_HINT.to_string()));
        out.push(message);
    }
    out
}

/// One node to audit: a path (file or snapshot directory) or a node read from an archive.
pub(crate) enum NodeInput {
    /// A file or directory.
    Path(PathBuf),
    /// A node found in an archive.
    Archive(ArchiveNode),
}

impl NodeInput {
    /// Its name in reports.
    pub(crate) fn name(&self) -> String {
        match self {
            NodeInput::Path(p) => p.display().to_string(),
            NodeInput::Archive(a) => a.name.clone(),
        }
    }
}

/// Audits one node: its report, or the first input error.
pub(crate) fn audit(input: NodeInput, registry: &Registry) -> Result<Report, String> {
    let mut loader = NodeLoader::new();
    let name = input.name();
    let dir = match input {
        NodeInput::Path(path) => {
            loader.add_path(&path).map_err(|e| e.to_string())?;
            Some(path)
        }
        NodeInput::Archive(node) => {
            loader.add_archive_node(node).map_err(|e| e.to_string())?;
            None
        }
    };
    let node = loader.finish();
    if let Some(d) = node.diagnostics.iter().find(|d| d.level == Level::Error) {
        let text = d.render(&node.sources).to_string();
        return Err(text.lines().next().unwrap_or_default().to_string());
    }
    if node.formats.is_empty() {
        return Err(format!("no input of a recognised format in {name}"));
    }
    let analysis = analyze(&node, registry);
    let mut report = Report::new(&node, &analysis);
    report.registry = Some(registry.version());
    if let Some(dir) = dir {
        mark_unread(&mut report, &dir, &name);
    }
    for (archived, manifest) in &node.manifests {
        mark_unread_json(&mut report, manifest, archived);
    }
    Ok(report)
}

/// The nodes a path holds: a directory of several node directories gives each (as `audit
/// --each` sees them); an archive, or a directory of archives (an unzipped sysdump), holding
/// several nodes gives each of them; anything else is one node.
pub(crate) fn expand(path: &Path) -> anyhow::Result<Vec<NodeInput>> {
    if let Some(dirs) = super::audit::several_nodes(path)? {
        return Ok(dirs.into_iter().map(NodeInput::Path).collect());
    }
    let archives: Vec<PathBuf> = if path.is_dir() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && markspace::archive::kind(&p.display().to_string()).is_some())
            .collect();
        found.sort();
        found
    } else if markspace::archive::kind(&path.display().to_string()).is_some() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    let mut nodes = Vec::new();
    for a in &archives {
        nodes.extend(archive_nodes(a)?);
    }
    if nodes.len() >= 2 || (nodes.len() == 1 && !path.is_dir()) {
        return Ok(nodes.into_iter().map(NodeInput::Archive).collect());
    }
    Ok(vec![NodeInput::Path(path.to_path_buf())])
}
