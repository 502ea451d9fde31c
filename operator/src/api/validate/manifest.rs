//! What a manifest file holds around the spec, checked as strictly as
//! `kubectl apply --validate=strict` and the API server check it: no unknown field at the top
//! level, in `metadata` or in `status`; labels and annotations of the syntax the server takes.

use serde_json::Value;

use super::ValidationErrors;

/// The top-level fields of a Kubernetes object.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];

/// The schema of `ObjectMeta`, as k8s-openapi describes it.
fn object_meta_schema() -> &'static Value {
    use std::sync::OnceLock;
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema =
            schemars::schema_for!(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta);
        serde_json::to_value(schema).expect("a schema serializes")
    })
}

/// Unknown fields of the raw manifest outside `spec` (whose types reject unknown fields
/// themselves), each with its path.
pub fn unknown_fields(raw: &Value, status_schema: Option<&Value>, errors: &mut ValidationErrors) {
    let Some(map) = raw.as_object() else { return };
    for key in map.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        errors.add(
            key.clone(),
            format!(
                "unknown field {key:?}; a WebStack has {}",
                TOP_LEVEL.join(", ")
            ),
        );
    }
    if let Some(meta) = map.get("metadata") {
        let root = object_meta_schema();
        walk(root, root, meta, "metadata", errors);
    }
    if let (Some(status), Some(schema)) = (map.get("status"), status_schema) {
        walk(schema, schema, status, "status", errors);
    }
}

/// Follows `$ref`s into the root's `$defs` (or `definitions`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit_once('/')
            .and_then(|(_, name)| {
                root.get("$defs")
                    .or_else(|| root.get("definitions"))
                    .and_then(|d| d.get(name))
            })
            .map(|s| resolve(root, s))
            .unwrap_or(schema),
        None => schema,
    }
}

fn walk(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut ValidationErrors) {
    let schema = resolve(root, schema);
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let open = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (k, v) in map {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk(root, s, v, &format!("{path}.{k}"), errors);
                } else if let Some(s) = additional {
                    walk(root, s, v, &format!("{path}[{k}]"), errors);
                } else if props.is_some() && !open {
                    let mut known: Vec<&str> = props
                        .into_iter()
                        .flat_map(|p| p.keys().map(String::as_str))
                        .collect();
                    known.sort_unstable();
                    errors.add(
                        format!("{path}.{k}"),
                        format!("unknown field {k:?}; known fields: {}", known.join(", ")),
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(root, s, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "the prefix {p:?} must be a lower-case DNS subdomain such as example.com"
            ));
        }
    }
    check_name(name, false).map_err(|e| format!("the name part {e}"))
}

/// A label name or value: at most 63 letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit (a value may be empty).
fn check_name(s: &str, empty_ok: bool) -> Result<(), String> {
    if s.is_empty() {
        return if empty_ok {
            Ok(())
        } else {
            Err("is empty".into())
        };
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if s.len() > 63
        || !edge(s.chars().next())
        || !edge(s.chars().last())
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "{s:?} must be at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Labels and annotations, as the API server checks them.
pub fn labels_and_annotations(meta: &Value, errors: &mut ValidationErrors) {
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            let path = format!("metadata.labels[{k}]");
            if let Err(e) = check_key(k) {
                errors.add(&path, format!("key: {e}"));
            }
            if let Some(Err(e)) = v.as_str().map(|v| check_name(v, true)) {
                errors.add(&path, format!("value: {e}"));
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut size = 0;
        for (k, v) in annotations {
            if let Err(e) = check_key(k) {
                errors.add(format!("metadata.annotations[{k}]"), format!("key: {e}"));
            }
            size += k.len() + v.as_str().map_or(0, str::len);
        }
        if size > 256 * 1024 {
            errors.add(
                "metadata.annotations",
                format!("{size} bytes; the API server takes at most 262144"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(raw: Value) -> Vec<String> {
        let mut errors = ValidationErrors::default();
        unknown_fields(&raw, None, &mut errors);
        if let Some(meta) = raw.get("metadata") {
            labels_and_annotations(meta, &mut errors);
        }
        errors.0.into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn unknown_fields_outside_the_spec_are_named() {
        let raw = serde_json::json!({
            "apiVersion": "webstack.io/v1alpha1", "kind": "WebStack", "spce": {},
            "metadata": {"name": "x", "lables": {}, "ownerReferences": [{"name": "a", "colour": 1}]},
        });
        assert_eq!(
            errors_of(raw),
            vec![
                "spce",
                "metadata.lables",
                "metadata.ownerReferences[0].colour"
            ]
        );
    }

    #[test]
    fn known_metadata_passes() {
        let raw = serde_json::json!({
            "apiVersion": "webstack.io/v1alpha1", "kind": "WebStack",
            "metadata": {"name": "x", "namespace": "team-a", "uid": "u", "generation": 3,
                "labels": {"app.kubernetes.io/name": "shop", "tier": ""},
                "annotations": {"example.com/Owner": "Team A, room 4"}, "finalizers": ["a/b"]},
        });
        assert!(errors_of(raw).is_empty());
    }

    #[test]
    fn label_syntax_is_the_servers() {
        let raw = serde_json::json!({
            "metadata": {"labels": {"Team/x": "a", "ok": "has space", "-bad": "v"},
                "annotations": {"a/b/c": "v"}},
        });
        assert_eq!(
            errors_of(raw),
            vec![
                "metadata.labels[-bad]",
                "metadata.labels[Team/x]",
                "metadata.labels[ok]",
                "metadata.annotations[a/b/c]"
            ]
        );
    }
}
