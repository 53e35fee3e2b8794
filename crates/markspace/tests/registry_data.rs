//! The registry data travels with the library: the build embeds every entry of the crate's
//! `registry/` directory, and `cargo package` ships that directory, so a build from the published
//! crate has the same registry as one from the repository.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use markspace::registry::Registry;

/// Entries in the registry today (README, "The registry"); it only grows.
const MIN_ENTRIES: usize = 48;

/// The `<id>.toml` entries of the crate's registry directory (`incidents.toml` is not one).
fn entry_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("registry");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".toml") && n != "incidents.toml")
        .collect();
    names.sort();
    names
}

#[test]
fn embedded_registry_holds_every_entry() {
    let registry = Registry::embedded().expect("embedded registry parses");
    let files = entry_files();
    println!(
        "embedded registry: {} entries from {} files",
        registry.software.len(),
        files.len()
    );
    assert!(
        registry.software.len() >= MIN_ENTRIES,
        "the embedded registry has {} entries, fewer than {MIN_ENTRIES}",
        registry.software.len()
    );
    assert_eq!(registry.software.len(), files.len(), "one entry per file");
    assert!(!registry.incidents.is_empty(), "incidents.toml is embedded");
}

/// Removes its directory when dropped, even when the test fails.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `cargo package --no-verify` only lists and compresses the files (about a second); the build
/// of the packaged crate is `cargo package -p markspace` by hand. Its own target directory keeps
/// it off the lock of the build running this test, and `--offline` off the network: the
/// dependencies are in the local cache, since they were just built.
#[test]
fn packaged_crate_holds_the_registry() {
    let target = TempDir(
        std::env::temp_dir().join(format!("markspace-package-test-{}", std::process::id())),
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let out = Command::new(cargo)
        .args([
            "package",
            "-p",
            "markspace",
            "--allow-dirty",
            "--no-verify",
            "--offline",
            "--quiet",
            "--target-dir",
        ])
        .arg(&target.0)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo package failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let krate = target
        .0
        .join("package")
        .join(format!("markspace-{}.crate", env!("CARGO_PKG_VERSION")));
    let list = Command::new("tar")
        .arg("tzf")
        .arg(&krate)
        .output()
        .expect("tar runs");
    assert!(list.status.success(), "tar tzf {}", krate.display());
    let prefix = format!("markspace-{}/", env!("CARGO_PKG_VERSION"));
    let files: Vec<&str> = std::str::from_utf8(&list.stdout)
        .expect("UTF-8 file names")
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect();
    let mut shipped: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix("registry/"))
        .filter(|n| n.ends_with(".toml") && !n.contains('/') && *n != "incidents.toml")
        .map(str::to_string)
        .collect();
    shipped.sort();
    println!(
        "packaged crate: {} files, {} registry entries",
        files.len(),
        shipped.len()
    );
    assert!(
        shipped.len() >= MIN_ENTRIES,
        "the packaged crate holds {} registry entries, fewer than {MIN_ENTRIES}",
        shipped.len()
    );
    assert_eq!(shipped, entry_files(), "every registry entry is packaged");
    for needed in [
        "build.rs",
        "registry/incidents.toml",
        "registry/README.md",
        "src/lib.rs",
    ] {
        assert!(files.contains(&needed), "{needed} is not packaged");
    }
}
