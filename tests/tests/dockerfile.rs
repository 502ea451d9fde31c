//! The `Dockerfile` at the top of the repository, checked against the repository's files: what
//! it copies exists and is not left out by `.dockerignore`, the workspace loads from it, and the
//! final stage runs the binary as the non-root user the chart expects.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::{rust_files, show, strings, succeed};
use webstack_tests::repo_root;

/// Docker's pattern match (Go's filepath.Match, plus `**` for any number of folders).
fn glob(pattern: &[u8], path: &[u8]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(b'*'), _) if pattern.get(1) == Some(&b'*') => {
            let rest = pattern[2..].strip_prefix(b"/").unwrap_or(&pattern[2..]);
            (0..=path.len()).any(|i| (i == 0 || path[i - 1] == b'/') && glob(rest, &path[i..]))
                || glob(&pattern[2..], path)
        }
        (Some(b'*'), _) => {
            glob(&pattern[1..], path)
                || (path.first().is_some_and(|c| *c != b'/') && glob(pattern, &path[1..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&pattern[1..], &path[1..]),
        (Some(p), Some(c)) if p == c => glob(&pattern[1..], &path[1..]),
        _ => false,
    }
}

struct DockerIgnore(Vec<(bool, String)>);

impl DockerIgnore {
    fn read() -> DockerIgnore {
        let text = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap_or_default();
        DockerIgnore(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    let (keep, p) = match l.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, l),
                    };
                    (keep, p.trim_matches('/').to_owned())
                })
                .collect(),
        )
    }

    /// Whether a file (relative to the context) is left out of the build context: the last
    /// pattern matching it, or one of its folders, decides.
    fn excludes(&self, path: &str) -> bool {
        let mut prefixes = vec![path.to_owned()];
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            prefixes.push(parent.to_owned());
            p = parent;
        }
        let mut excluded = false;
        for (keep, pattern) in &self.0 {
            if prefixes
                .iter()
                .any(|p| glob(pattern.as_bytes(), p.as_bytes()))
            {
                excluded = !keep;
            }
        }
        excluded
    }
}

/// Files of the repository under a path (tracked or new, not ignored by git).
fn files_under(path: &str) -> Vec<String> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
        ])
        .arg(path)
        .current_dir(repo_root())
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files: {}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|f| repo_root().join(f).exists())
        .map(str::to_owned)
        .collect()
}

fn cargo_metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata");
    serde_json::from_str(&succeed("cargo metadata", out)).expect("cargo metadata prints JSON")
}

#[test]
fn dockerfile_builds_from_what_the_repository_has() {
    let root = repo_root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    // Instructions, with continued lines joined.
    let joined = dockerfile.replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let ignore = DockerIgnore::read();

    let mut copied = Vec::new();
    let mut problems = Vec::new();
    for line in &instructions {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
        for source in &words[..words.len() - 1] {
            let source = source.trim_end_matches('/');
            let files = files_under(source);
            if files.is_empty() {
                problems.push(format!("COPY {source}: no such file or folder"));
                continue;
            }
            let excluded: Vec<_> = files.iter().filter(|f| ignore.excludes(f)).collect();
            if !excluded.is_empty() {
                problems.push(format!(
                    "COPY {source}: .dockerignore leaves out {} of its files, such as {:?}",
                    excluded.len(),
                    &excluded[..excluded.len().min(5)]
                ));
            }
            copied.push(source.to_owned());
        }
    }
    let is_copied = |path: &str| {
        copied
            .iter()
            .any(|c| path == c || path.starts_with(&format!("{c}/")))
    };

    // The workspace resolves: its manifest, lock file and every member's manifest are there,
    // with the files each manifest names.
    let meta = cargo_metadata();
    for must in ["Cargo.toml", "Cargo.lock"] {
        if !is_copied(must) {
            problems.push(format!("{must} is not copied"));
        }
    }
    let workspace = meta["workspace_root"].as_str().unwrap().to_owned();
    let members: BTreeSet<String> = strings(&meta["workspace_members"]).into_iter().collect();
    let mut bins: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        if !members.contains(package["id"].as_str().unwrap()) {
            continue;
        }
        let name = package["name"].as_str().unwrap().to_owned();
        let relative = |p: &str| {
            Path::new(p)
                .strip_prefix(&workspace)
                .unwrap()
                .display()
                .to_string()
        };
        let manifest = relative(package["manifest_path"].as_str().unwrap());
        if !is_copied(&manifest) {
            problems.push(format!(
                "the workspace member {name}: {manifest} is not copied"
            ));
        }
        for target in package["targets"].as_array().unwrap() {
            let kinds = strings(&target["kind"]);
            let src = relative(target["src_path"].as_str().unwrap());
            if kinds.iter().any(|k| k == "lib" || k == "bin") && !is_copied(&src) {
                problems.push(format!(
                    "{name}'s {} target {}: {src} is not copied (cargo needs it to load the workspace)",
                    kinds.join("/"),
                    target["name"]
                ));
            }
            if kinds.iter().any(|k| k == "bin") {
                bins.entry(name.clone())
                    .or_default()
                    .push(target["name"].as_str().unwrap().to_owned());
            }
        }
    }

    // The build names a member and one of its binaries, with the lock file honoured.
    let build = instructions
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a `cargo build` in the Dockerfile");
    let words: Vec<&str> = build.split_whitespace().collect();
    let after = |f: &str| {
        words
            .iter()
            .position(|w| *w == f)
            .and_then(|i| words.get(i + 1).copied())
    };
    assert!(
        words.contains(&"--release") && words.contains(&"--locked"),
        "{build}"
    );
    let package = after("-p")
        .or_else(|| after("--package"))
        .expect("-p PACKAGE");
    let bin = after("--bin").expect("--bin NAME");
    match bins.get(package) {
        None => problems.push(format!(
            "cargo build -p {package}: no such workspace member with binaries ({bins:?})"
        )),
        Some(names) if !names.iter().any(|n| n == bin) => problems.push(format!(
            "cargo build --bin {bin}: {package} has the binaries {names:?}"
        )),
        _ => {}
    }
    let package_dir = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == package)
        .and_then(|p| p["manifest_path"].as_str())
        .map(|m| Path::new(m).parent().unwrap().to_path_buf());

    // Files the built package includes at compile time (outside its tests) are copied.
    if let Some(dir) = package_dir {
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            if name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in code.match_indices(macro_name) {
                    let target = code[at + macro_name.len()..].split('"').next().unwrap();
                    let resolved = file.parent().unwrap().join(target);
                    let resolved = std::fs::canonicalize(&resolved).unwrap_or(resolved);
                    let relative = resolved
                        .strip_prefix(&workspace)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    if !is_copied(&relative) || ignore.excludes(&relative) {
                        problems.push(format!(
                            "{} includes {target}, which the image build does not have",
                            file.display()
                        ));
                    }
                }
            }
        }
    }

    // The final stage runs that binary as the non-root user the chart expects.
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let last: Vec<&&str> = instructions[last_from..].iter().collect();
    assert!(
        last[0].contains("gcr.io/distroless/cc-debian12:nonroot"),
        "{}",
        last[0]
    );
    assert!(
        last.iter().any(|l| **l == "USER 65532:65532"),
        "the image runs as 65532: {last:?}"
    );
    assert!(
        last.iter()
            .any(|l| **l == r#"ENTRYPOINT ["/usr/local/bin/webstack"]"#),
        "{last:?}"
    );
    assert!(last.iter().any(|l| **l == r#"CMD ["run"]"#), "{last:?}");
    assert!(
        last.iter().any(|l| l.starts_with("COPY --from=")
            && l.ends_with(&format!("/usr/local/bin/{bin}"))),
        "the binary is copied to /usr/local/bin/{bin}: {last:?}"
    );
    for must_not in [".git", "target"] {
        assert!(
            ignore.excludes(&format!("{must_not}/x")),
            ".dockerignore keeps {must_not}/ out of the build context"
        );
    }
    assert!(
        problems.is_empty(),
        "the Dockerfile:\n  {}",
        problems.join("\n  ")
    );
}
