//! The chart's Argo CD health check (`charts/webstack-operator/argocd/health.lua`), run by a
//! real Lua 5.1 (Argo CD runs health checks in gopher-lua, a Lua 5.1) against the WebStacks of
//! `tests/fixtures/argocd/*.json`: each fixture holds the object (`obj`) and the health Argo CD
//! must report for it (`expected.status`, and `expected.message` when the message matters).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use webstack_tests::repo_root;

/// The cases every version of the script must get right.
const REQUIRED_CASES: &[&str] = &[
    "ready",
    "provisioning",
    "degraded",
    "invalid-spec",
    "failed",
    "deleting",
    "no-status",
    "stale-generation",
];

fn script() -> PathBuf {
    repo_root().join("charts/webstack-operator/argocd/health.lua")
}

fn fixtures() -> BTreeMap<String, Value> {
    let dir = repo_root().join("tests/fixtures/argocd");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        assert!(
            doc["obj"].is_object() && doc["expected"]["status"].is_string(),
            "{}: a fixture is {{\"expected\": {{\"status\": ..., \"message\": ...}}, \"obj\": {{...}}}}",
            path.display()
        );
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.insert(name, doc);
    }
    out
}

/// A Lua string literal: Lua 5.1 knows `\ddd` decimal escapes, and takes UTF-8 bytes as they are.
fn lua_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON value as a Lua expression, with objects and arrays as tables: what Argo CD hands the
/// script as `obj` (JSON null is an absent field there too).
fn lua_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => lua_string(s, out),
        Value::Array(items) => {
            out.push('{');
            for item in items {
                lua_value(item, out);
                out.push_str(", ");
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push('{');
            for (key, value) in map {
                out.push('[');
                lua_string(key, out);
                out.push_str("] = ");
                lua_value(value, out);
                out.push_str(", ");
            }
            out.push('}');
        }
    }
}

/// Runs the health script on one object with `lua5.1`; returns (status, message).
fn health(dir: &Path, name: &str, obj: &Value) -> Result<(String, String), String> {
    let mut chunk = String::from("return ");
    lua_value(obj, &mut chunk);
    chunk.push('\n');
    let file = dir.join(format!("{name}.lua"));
    std::fs::write(&file, chunk).unwrap();
    let out = Command::new("lua5.1")
        .arg(repo_root().join("tests/harness/argocd_health.lua"))
        .arg(script())
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run lua5.1 ({e}): install it (Debian: apt-get install lua5.1; .ci/run does) \
                 to test the Argo CD health check, which Argo CD runs as Lua 5.1"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "lua5.1 failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            stdout
        ));
    }
    let (status, message) = stdout.split_once('\n').unwrap_or((stdout.as_str(), ""));
    Ok((status.to_owned(), message.to_owned()))
}

#[test]
fn health_check_reports_every_case_as_argo_cd_should() {
    let cases = fixtures();
    let missing: Vec<_> = REQUIRED_CASES
        .iter()
        .filter(|c| !cases.contains_key(**c))
        .collect();
    assert!(
        missing.is_empty(),
        "fixtures missing from tests/fixtures/argocd: {missing:?}"
    );
    let dir = std::env::temp_dir().join(format!("webstack-argocd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (name, doc) in &cases {
        let want_status = doc["expected"]["status"].as_str().unwrap();
        let want_message = doc["expected"]["message"].as_str();
        match health(&dir, name, &doc["obj"]) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok((status, message)) => {
                if status == "Missing" {
                    failures.push(format!(
                        "{name}: the script returned Missing, which only Argo CD reports (for an absent object)"
                    ));
                }
                if status != want_status || want_message.is_some_and(|m| m != message) {
                    failures.push(format!(
                        "{name}: got {status} {message:?}, expected {want_status} {:?}",
                        want_message.unwrap_or("(any message)")
                    ));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
}

/// The chart's README shows the `argocd-cm` snippet with the script itself, line for line.
#[test]
fn readme_shows_the_script_as_shipped() {
    let readme = std::fs::read_to_string(repo_root().join("charts/webstack-operator/README.md"))
        .expect("the chart's README");
    let key = "resource.customizations.health.webstack.io_WebStack: |";
    let start = readme
        .find(key)
        .unwrap_or_else(|| panic!("the chart's README has no `{key}` snippet"));
    let after = &readme[start + key.len()..];
    let block: Vec<&str> = after
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    let script = std::fs::read_to_string(script()).unwrap();
    let expected: Vec<String> = script
        .lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    let shown: Vec<String> = block.iter().map(|l| l.trim_end().to_owned()).collect();
    assert_eq!(
        shown, expected,
        "the README's argocd-cm snippet differs from argocd/health.lua: paste the script, indented by four spaces"
    );
}
