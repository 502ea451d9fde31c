//! The CRD's own rules, checked by the operator as a current API server checks them: the
//! OpenAPI bounds (minimum, maximum, lengths, item counts, patterns) and the CEL rules
//! (`x-kubernetes-validations`).

use super::{FieldError, ValidationErrors};
use crate::api::WebStack;

pub(super) fn crd_schema() -> &'static serde_json::Value {
    use std::sync::OnceLock;
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use kube::CustomResourceExt;
        let crd = WebStack::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a derived CRD has a schema");
        serde_json::to_value(schema).expect("the schema serializes")
    })
}

fn as_object(stack: &WebStack) -> Result<serde_json::Value, ValidationErrors> {
    let mut object = serde_json::to_value(stack)
        .map_err(|e| ValidationErrors::single("(root)", e.to_string()))?;
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    Ok(object)
}

/// The CRD's OpenAPI bounds (minimum, maximum, lengths, item counts, patterns), checked as the
/// API server checks them.
pub fn check_schema(stack: &WebStack) -> Result<(), ValidationErrors> {
    let object = as_object(stack)?;
    let mut errors = ValidationErrors::default();
    walk_schema(crd_schema(), &object, "", &mut errors);
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn walk_schema(
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
    errors: &mut ValidationErrors,
) {
    use serde_json::Value;
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    let shown = if path.is_empty() { "(root)" } else { path };
    match value {
        Value::Number(n) => {
            let v = n.as_f64().unwrap_or_default();
            if let Some(min) = num("minimum").filter(|m| v < *m) {
                errors.add(shown, format!("{n} is less than the minimum {min}"));
            }
            if let Some(max) = num("maximum").filter(|m| v > *m) {
                errors.add(shown, format!("{n} is more than the maximum {max}"));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if let Some(min) = num("minLength").filter(|m| len < *m) {
                errors.add(shown, format!("must be at least {min} characters long"));
            }
            if let Some(max) = num("maxLength").filter(|m| len > *m) {
                errors.add(shown, format!("must be at most {max} characters long"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                if let Ok(re) = regex::Regex::new(pattern) {
                    if !re.is_match(s) {
                        errors.add(shown, format!("{s:?} does not match {pattern:?}"));
                    }
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if let Some(min) = num("minItems").filter(|m| len < *m) {
                errors.add(shown, format!("needs at least {min} items"));
            }
            if let Some(max) = num("maxItems").filter(|m| len > *m) {
                errors.add(
                    shown,
                    format!("has {} items; at most {max} are allowed", items.len()),
                );
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            if let Some(max) = num("maxProperties").filter(|m| map.len() as f64 > *m) {
                errors.add(
                    shown,
                    format!("has {} entries; at most {max} are allowed", map.len()),
                );
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk_schema(s, v, &child, errors);
                } else if let Some(s) = additional {
                    walk_schema(s, v, &format!("{path}[{k}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// The CRD's own CEL rules (`x-kubernetes-validations`), evaluated as a current API server
/// does, so that a cluster that does not enforce them, and the CLI, refuse the same specs.
pub fn check_cel(stack: &WebStack) -> Result<(), ValidationErrors> {
    use kube::core::cel::{compile_schema, CompiledSchema, Validator};
    use std::sync::OnceLock;
    // The rules are compiled once per process: a thousand stacks are validated at every resync.
    static COMPILED: OnceLock<CompiledSchema> = OnceLock::new();
    // The CEL parser recurses deeply on the longest rules: it gets a thread with room for
    // that, whatever stack the caller's (an async runtime's worker) has.
    let compiled = COMPILED.get_or_init(|| {
        std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(64 << 20)
            .spawn(|| compile_schema(crd_schema()))
            .and_then(|t| t.join().map_err(|_| std::io::Error::other("panicked")))
            .expect("the CRD's CEL rules compile")
    });
    let object = as_object(stack)?;
    Validator::new()
        .validate_compiled(compiled, &object, None)
        .map_err(|errs| {
            ValidationErrors(
                errs.into_iter()
                    .map(|e| FieldError {
                        path: cel_path(&e.field_path),
                        message: e.message,
                    })
                    .collect(),
            )
        })
}

/// kube-cel paths name the object's root as `.`-separated fields; ours start at `spec.` or
/// `metadata.` as kubectl shows them.
fn cel_path(path: &str) -> String {
    let p = path.trim_start_matches('.');
    if p.is_empty() {
        "(root)".to_owned()
    } else {
        p.to_owned()
    }
}
