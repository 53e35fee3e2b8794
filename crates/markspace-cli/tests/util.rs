//! Running the binary and checking its output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Result of one run.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Parses stdout as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `markspace ARGS` with the given stdin.
pub(crate) fn run_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_markspace"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts");
    Run::from(child.wait_with_output().expect("the binary finishes"))
}

/// Runs `markspace ARGS`.
pub(crate) fn run(args: &[&str]) -> Run {
    run_stdin(args, "")
}

/// A temporary directory with files.
pub(crate) struct Dir {
    pub(crate) dir: tempfile::TempDir,
}

impl Dir {
    pub(crate) fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write fixture");
        p.display().to_string()
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Asserts a condition and prints the whole run when it fails.
macro_rules! check {
    ($run:expr, $cond:expr) => {
        if !$cond {
            panic!(
                "check failed: {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}",
                stringify!($cond),
                $run.code,
                $run.stdout,
                $run.stderr
            );
        }
    };
}

/// The findings of a JSON report with a code.
pub(crate) fn findings<'a>(
    report: &'a serde_json::Value,
    code: &str,
) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .expect("findings is a list")
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// The owner entry of a JSON report.
pub(crate) fn owner<'a>(report: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    report["owners"]
        .as_array()
        .expect("owners is a list")
        .iter()
        .find(|o| o["id"] == id)
}
