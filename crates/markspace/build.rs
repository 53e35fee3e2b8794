//! Embeds every `registry/*.toml` file of this crate (`crates/markspace/registry/`) into the
//! library.
//!
//! The directory sits inside the crate so that `cargo package` ships it. A missing or empty
//! directory fails the build: a binary without its registry would attribute every rule to
//! `unknown` and still look like it worked.
use std::{env, fs, path::PathBuf, process};

/// Stops the build with a message cargo shows under the build script's stderr.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    process::exit(1);
}

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("registry");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = match fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => fail(&format!(
            "cannot read the registry directory {}: {e}; the registry's TOML files must sit in \
             the markspace crate's directory, next to its Cargo.toml",
            dir.display()
        )),
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    // incidents.toml lists conflicts between entries; alone it makes no registry.
    if files
        .iter()
        .all(|p| p.file_name().is_some_and(|n| n == "incidents.toml"))
    {
        fail(&format!(
            "the registry directory {} holds no <id>.toml entries",
            dir.display()
        ));
    }
    let mut out = String::from("/// Embedded registry files: (file name, contents).\npub(crate) const EMBEDDED: &[(&str, &str)] = &[\n");
    for p in &files {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .expect("registry file names are UTF-8");
        let abs = fs::canonicalize(p).expect("registry file exists");
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("registry_files.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}
