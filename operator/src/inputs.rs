//! Values a stack takes from outside its spec: keys of the Kubernetes Secrets it references
//! (an external database's connection string). The controller reads them from the stack's
//! namespace; the CLI from Secret manifests given next to the WebStack. A value is handed to
//! AWS (Secrets Manager) and nowhere else: it never appears in a plan, a status, an event or a
//! log line, and this type prints none.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Secret;

use crate::api::validate::ValidationErrors;
use crate::api::{DatabaseKind, SecretKeyRef, WebStackSpec};

/// The keys of Kubernetes Secrets that a stack reads, by Secret name and key.
#[derive(Clone, Default)]
pub struct Inputs {
    secrets: BTreeMap<(String, String), String>,
}

impl fmt::Debug for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self
            .secrets
            .keys()
            .map(|(n, k)| format!("{n}/{k}"))
            .collect();
        f.debug_struct("Inputs").field("secrets", &keys).finish()
    }
}

impl Inputs {
    /// Takes every key of a Secret (`data` and `stringData`; `stringData` wins, as in the API
    /// server). Values that are not UTF-8 are left out.
    pub fn add_secret(&mut self, secret: &Secret) {
        let name = secret.metadata.name.clone().unwrap_or_default();
        for (k, v) in secret.data.iter().flatten() {
            if let Ok(text) = String::from_utf8(v.0.clone()) {
                self.secrets.insert((name.clone(), k.clone()), text);
            }
        }
        for (k, v) in secret.string_data.iter().flatten() {
            self.secrets.insert((name.clone(), k.clone()), v.clone());
        }
    }

    /// The value of a Secret's key, when it was given.
    pub fn secret(&self, r: &SecretKeyRef) -> Option<&str> {
        self.secrets
            .get(&(r.name.clone(), r.key.clone()))
            .map(String::as_str)
    }

    /// Refuses a spec that needs a value this stack was not given, naming the field and
    /// saying where the value is looked for.
    pub fn check(&self, spec: &WebStackSpec, namespace: &str) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for (field, r) in needed(spec) {
            if self.secret(r).is_none() {
                errors.add(
                    field,
                    format!(
                        "the Secret {:?} with the key {:?} was not found in namespace {namespace:?} \
                         (in a cluster, create it there; with the webstack CLI, give its manifest \
                         with another -f)",
                        r.name, r.key
                    ),
                );
            }
        }
        if errors.0.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The Secret keys a spec reads, with the field that names each: an external database's
/// connection string, which the EC2 tiers reach through Secrets Manager.
pub fn needed(spec: &WebStackSpec) -> Vec<(String, &SecretKeyRef)> {
    let ec2 = crate::aws::backend::ec2_tiers(spec).next().is_some();
    spec.database
        .as_ref()
        .filter(|d| d.kind == DatabaseKind::External && ec2)
        .and_then(|d| d.external.as_ref())
        .map(|e| ("spec.database.external.secretRef".to_owned(), &e.secret_ref))
        .into_iter()
        .collect()
}

/// The external database's connection string, when the spec has one that EC2 tiers read.
pub fn external_database<'a>(spec: &'a WebStackSpec, inputs: &'a Inputs) -> Option<&'a str> {
    needed(spec)
        .into_iter()
        .next()
        .and_then(|(_, r)| inputs.secret(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret() -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("starttech-mongodb".into());
        s.data = Some(BTreeMap::from([(
            "uri".to_owned(),
            ByteString(b"mongodb+srv://app:hunter2@cluster0.example.net/app".to_vec()),
        )]));
        s
    }

    fn starttech() -> WebStackSpec {
        let stack: crate::api::WebStack =
            serde_yaml::from_str(include_str!("../../examples/starttech.yaml")).unwrap();
        stack.spec
    }

    #[test]
    fn a_missing_value_is_refused_naming_the_field_and_where_it_was_looked_for() {
        let err = Inputs::default()
            .check(&starttech(), "default")
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("spec.database.external.secretRef"), "{text}");
        assert!(text.contains("\"starttech-mongodb\""), "{text}");
        assert!(text.contains("\"uri\""), "{text}");
    }

    #[test]
    fn values_are_found_by_name_and_key_and_never_printed() {
        let mut inputs = Inputs::default();
        inputs.add_secret(&secret());
        inputs.check(&starttech(), "default").unwrap();
        assert_eq!(
            external_database(&starttech(), &inputs),
            Some("mongodb+srv://app:hunter2@cluster0.example.net/app")
        );
        let shown = format!("{inputs:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("starttech-mongodb/uri"), "{shown}");
    }

    #[test]
    fn a_stack_without_ec2_tiers_needs_no_value() {
        let mut spec = starttech();
        spec.backend = None;
        assert!(needed(&spec).is_empty());
    }
}
