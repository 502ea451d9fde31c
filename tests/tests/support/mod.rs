//! Helpers shared by the test files about what the repository ships beside the operator: the
//! Helm chart (`chart.rs`), its IAM policy (`iam_policy.rs`) and the `Dockerfile`
//! (`dockerfile.rs`). Each test file is its own crate and uses only some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use webstack_tests::repo_root;

/// The chart's folder.
pub fn chart() -> PathBuf {
    repo_root().join("charts/webstack-operator")
}

/// A finished command's status and output, for messages.
pub fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command that must succeed; returns its standard output.
pub fn succeed(what: &str, out: Output) -> String {
    assert!(out.status.success(), "{what} failed: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The strings of a JSON array (empty when it is not one).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every `.rs` file under a folder.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
            out.push(path);
        }
    }
}
