//! The operator's own check of a WebStack, run before any AWS call: the CLI and clusters that
//! do not enforce the CRD's rules get the same answer as a cluster that does.

use std::fmt;

use super::{WebStack, WebStackSpec};

mod manifest;
pub mod names;
mod network;
mod references;
mod regions;
mod schema;
mod values;

pub use names::{check_image, check_route, covers, MAX_USER_TAGS, RESERVED_TAG_PREFIXES};
pub use network::{
    computed_cidrs, default_prefix, parse_cidr, subnet_cidrs, validate_network, SubnetHalf,
};
pub use regions::{region_of_zone, zone_count, MAX_AZS, REGIONS};
pub use schema::{check_cel, check_schema};

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, such as `spec.network.vpcCidr`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every invalid field of a spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

impl ValidationErrors {
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ValidationErrors::default();
        e.add(path, message);
        e
    }
}

/// Reads a WebStack manifest (YAML or JSON) and checks it. A field of the wrong type or an
/// unknown field is reported with its path.
pub fn parse_manifest(text: &str) -> Result<WebStack, ValidationErrors> {
    parse_manifest_in(text, None)
}

/// [`parse_manifest`], for a caller whose default region (such as `AWS_REGION`) applies when
/// the spec names none.
pub fn parse_manifest_in(
    text: &str,
    default_region: Option<&str>,
) -> Result<WebStack, ValidationErrors> {
    let value: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ValidationErrors::single("(file)", format!("not valid YAML: {e}")))?;
    let mut errors = ValidationErrors::default();
    match value.get("apiVersion").and_then(|v| v.as_str()) {
        Some("webstack.io/v1alpha1") => {}
        Some(other) => errors.add(
            "apiVersion",
            format!("is {other:?}, expected \"webstack.io/v1alpha1\""),
        ),
        None => errors.add("apiVersion", "is required (\"webstack.io/v1alpha1\")"),
    }
    match value.get("kind").and_then(|v| v.as_str()) {
        Some("WebStack") => {}
        Some(other) => errors.add("kind", format!("is {other:?}, expected \"WebStack\"")),
        None => errors.add("kind", "is required (\"WebStack\")"),
    }
    if !errors.0.is_empty() {
        return Err(errors);
    }
    // As strict as `kubectl apply --validate=strict`: nothing unknown outside the spec either.
    if let Ok(raw) = serde_json::to_value(&value) {
        let status_schema = schema::crd_schema().pointer("/properties/status");
        manifest::unknown_fields(&raw, status_schema, &mut errors);
        if let Some(meta) = raw.get("metadata") {
            manifest::labels_and_annotations(meta, &mut errors);
        }
    }
    if !errors.0.is_empty() {
        return Err(errors);
    }
    let stack: WebStack = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(root)".to_owned()
        } else {
            path
        };
        let message = e.inner().to_string();
        // serde_yaml appends a position that refers to the re-serialized value, not the file.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ValidationErrors::single(path, message)
    })?;
    validate_in(&stack, default_region)?;
    Ok(stack)
}

/// The region a spec names: `spec.region`, or the region of its explicit zones.
pub fn declared_region(spec: &WebStackSpec) -> Option<String> {
    spec.region.clone().or_else(|| {
        spec.network
            .availability_zones
            .first()
            .and_then(|z| region_of_zone(z))
            .map(str::to_owned)
    })
}

/// The region cannot change (the CRD says so too, where the cluster enforces it): the
/// resources would be left behind in the old one. A status in a file, or the operator's own
/// record, says where the stack lives.
pub fn check_region_move(stack: &WebStack, region: &str) -> Result<(), ValidationErrors> {
    match stack.status.as_ref().and_then(|s| s.region.as_deref()) {
        Some(old) if old != region => Err(ValidationErrors::single(
            "spec.region",
            format!(
                "the stack lives in {old}; it cannot move to {region} (create a new stack instead)"
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks a whole WebStack: metadata and spec.
pub fn validate(stack: &WebStack) -> Result<(), ValidationErrors> {
    validate_in(stack, None)
}

/// [`validate`], with the caller's default region for a spec that names none.
pub fn validate_in(stack: &WebStack, default_region: Option<&str>) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    match stack.metadata.name.as_deref() {
        None | Some("") => errors.add("metadata.name", "is required"),
        Some(name) => check_dns_label(&mut errors, "metadata.name", name, 40),
    }
    if let Some(ns) = stack.metadata.namespace.as_deref() {
        check_dns_label(&mut errors, "metadata.namespace", ns, 63);
    }
    let declared = declared_region(&stack.spec);
    let region = declared.as_deref().or(default_region);
    validate_spec(&stack.spec, region, &mut errors);
    if let Some(r) = region {
        if let Err(e) = check_region_move(stack, r) {
            errors.0.extend(e.0);
        }
    }
    // The CRD's own bounds and rules run too; where the operator's checks already named a
    // field (or an item of a list a CEL rule can only name whole), their message stands.
    let crd_errors = check_schema(stack)
        .err()
        .into_iter()
        .chain(check_cel(stack).err())
        .flat_map(|e| e.0);
    for e in crd_errors {
        let said = errors.0.iter().any(|r| {
            r.path == e.path
                || r.path.starts_with(&format!("{}[", e.path))
                || r.path.starts_with(&format!("{}.", e.path))
        });
        if !said && !errors.0.contains(&e) {
            errors.0.push(e);
        }
    }
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Names end up in AWS names with role suffixes (`<name>-load-balancer`); 40 characters keep
/// every such name within AWS's limits.
fn check_dns_label(errors: &mut ValidationErrors, path: &str, value: &str, max: usize) {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_chars || value.starts_with('-') || value.ends_with('-') {
        errors.add(path, format!("{value:?} must consist of lower-case letters, digits and '-', starting and ending with a letter or digit"));
    } else if value.len() > max {
        errors.add(
            path,
            format!(
                "{value:?} is {} characters long; at most {max} are allowed",
                value.len()
            ),
        );
    }
}

fn validate_spec(spec: &WebStackSpec, region: Option<&str>, errors: &mut ValidationErrors) {
    if let Some(r) = &spec.region {
        let zones_listed = !spec.network.availability_zones.is_empty();
        if let Err(e) = regions::check_region(r, zones_listed) {
            errors.add("spec.region", e);
        }
    }
    validate_network(&spec.network, region, errors);
    values::check(spec, errors);
    references::check(spec, errors);
}

#[cfg(test)]
mod tests;
