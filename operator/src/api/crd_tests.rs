//! The generated CRD: checked in unchanged, and every CEL rule of it exercised.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kube::CustomResourceExt;
use serde_json::Value;

use super::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
        .collect();
    files.sort();
    files
}

fn schema() -> Value {
    let crd = WebStack::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap()
}

fn rules(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                for r in list {
                    out.insert(r["rule"].as_str().unwrap().to_owned());
                }
            }
            map.values().for_each(|c| rules(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| rules(c, out)),
        _ => {}
    }
}

/// The object as the API server would see it (no client-side validation).
fn object(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let raw: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_value(raw).unwrap()
}

fn fired(new: &Value, old: Option<&Value>) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(&schema(), new, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| e.rule).collect(),
    }
}

#[test]
fn the_checked_in_crd_is_the_generated_one() {
    let checked_in = std::fs::read_to_string(repo().join("crds/webstack.yaml")).unwrap();
    assert!(
        checked_in == crd_yaml(),
        "crds/webstack.yaml is stale: run `webstack crd > crds/webstack.yaml`"
    );
}

#[test]
fn the_crd_has_the_expected_shape() {
    let crd = WebStack::crd();
    assert_eq!(crd.spec.group, "webstack.io");
    assert_eq!(crd.spec.names.kind, "WebStack");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["ws".to_string()][..])
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<&str> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, vec!["Ready", "Phase", "URL", "Age"]);
}

/// No field can carry a password: the database's is generated and kept by AWS.
#[test]
fn no_field_holds_a_password() {
    // A switch or a number about passwords (`includePassword`, `passwordMinLength`) holds no
    // password.
    fn names(v: &Value, out: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, child) in props {
                let holds_text = !matches!(
                    child.get("type").and_then(Value::as_str),
                    Some("boolean" | "integer")
                );
                if holds_text {
                    out.push(k.to_lowercase());
                }
                names(child, out);
            }
        }
        if let Some(items) = v.get("items") {
            names(items, out);
        }
    }
    let mut all = Vec::new();
    names(&schema(), &mut all);
    assert!(all.len() > 100);
    for n in all {
        assert!(!n.contains("password"), "{n}");
        assert!(
            !n.contains("secretvalue") && n != "secret" && n != "token",
            "{n}"
        );
    }
}

/// Every CEL rule compiles and passes on the examples; every creation rule rejects at least
/// one sample of `tests/invalid/`; every transition rule rejects a change of its field.
#[test]
fn every_cel_rule_is_exercised_by_valid_and_invalid_samples() {
    let mut all = BTreeSet::new();
    rules(&schema(), &mut all);
    assert!(all.len() >= 60, "{} rules", all.len());

    for example in yaml_files("examples") {
        let fired = fired(&object(&example), None);
        assert!(fired.is_empty(), "{} breaks {fired:?}", example.display());
    }

    let mut covered = BTreeSet::new();
    for sample in yaml_files("tests/invalid") {
        covered.extend(fired(&object(&sample), None));
    }

    // Transition rules: the example as the old object, one immutable field changed.
    let base = object(&repo().join("examples/fargate-serverless.yaml"));
    let changes: Vec<(&str, Value)> = vec![
        ("/spec/network/vpcCidr", Value::from("10.31.0.0/16")),
        ("/spec/region", Value::from("us-west-2")),
        ("/spec/database/rds/engine", Value::from("Mysql")),
        ("/spec/tables/0/partitionKey/name", Value::from("id")),
    ];
    for (pointer, value) in changes {
        let mut new = base.clone();
        *new.pointer_mut(pointer).unwrap() = value;
        if pointer.ends_with("engine") {
            *new.pointer_mut("/spec/database/rds/version").unwrap() = Value::from("8.0");
        }
        let f = fired(&new, Some(&base));
        assert!(
            f.iter().any(|r| r.contains("oldSelf")),
            "changing {pointer} fired {f:?}"
        );
        covered.extend(f);
        assert!(
            fired(&base, Some(&base)).is_empty(),
            "an unchanged object passes its transition rules"
        );
    }

    // A role to assume: absent in the examples, so set on both sides.
    let mut old = base.clone();
    old["spec"]["assumeRole"] =
        serde_json::json!({"roleArn": "arn:aws:iam::111122223333:role/webstack"});
    let mut new = old.clone();
    new["spec"]["assumeRole"]["roleArn"] = Value::from("arn:aws:iam::444455556666:role/webstack");
    let f = fired(&new, Some(&old));
    assert!(
        f.iter().any(|r| r.contains("oldSelf.roleArn")),
        "changing the role fired {f:?}"
    );
    assert!(fired(&old, Some(&old)).is_empty());
    covered.extend(f);

    let missed: Vec<&String> = all.iter().filter(|r| !covered.contains(*r)).collect();
    assert!(
        missed.is_empty(),
        "rules no sample rejects:\n{}",
        missed
            .iter()
            .map(|r| format!("  {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// kubectl and the API server read YAML 1.1: a bare `N` in an enum would be the boolean false.
#[test]
fn enum_values_read_as_strings_in_yaml_1_1() {
    let yaml = crd_yaml();
    assert!(yaml.contains("- 'N'"), "DynamoDB's N type is quoted");
    for line in yaml.lines() {
        let value = line.trim_start().strip_prefix("- ").unwrap_or_default();
        assert!(
            !["y", "Y", "n", "N", "yes", "no", "on", "off"].contains(&value),
            "a bare YAML 1.1 boolean: {line}"
        );
    }
}
