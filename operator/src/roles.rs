//! Which IAM roles the stacks of each namespace may assume: a mapping the platform
//! administrator keeps outside the tenants' reach (a file the operator reads, from a ConfigMap
//! in its own namespace), as AWS Controllers for Kubernetes does for cross-account resources.
//!
//! ```yaml
//! namespaces:
//!   team-a:
//!     - arn:aws:iam::111122223333:role/webstack-team-a
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::api::validate::ValidationErrors;
use crate::api::WebStack;

/// The field a stack names its role in.
pub const FIELD: &str = "spec.assumeRole.roleArn";

/// The roles each namespace may use. Empty: no stack may assume a role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMap {
    #[serde(default)]
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl RoleMap {
    /// Reads the mapping from YAML, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<RoleMap, String> {
        let map: RoleMap = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        let pattern =
            regex::Regex::new(crate::api::patterns::ROLE_ARN).map_err(|e| e.to_string())?;
        for (namespace, roles) in &map.namespaces {
            for role in roles {
                if !pattern.is_match(role) {
                    return Err(format!(
                        "namespaces.{namespace}: {role} is not an IAM role ARN"
                    ));
                }
            }
        }
        Ok(map)
    }

    /// Refuses a stack whose role its namespace may not use, naming the field.
    pub fn check(&self, stack: &WebStack) -> Result<(), ValidationErrors> {
        let Some(role) = stack.spec.assume_role.as_ref() else {
            return Ok(());
        };
        let namespace = stack.metadata.namespace.as_deref().unwrap_or("default");
        let allowed = self.namespaces.get(namespace).cloned().unwrap_or_default();
        if allowed.contains(&role.role_arn) {
            return Ok(());
        }
        let listed = if allowed.is_empty() {
            "none".to_owned()
        } else {
            allowed.join(", ")
        };
        Err(ValidationErrors::single(
            FIELD,
            format!(
                "namespace {namespace} may not assume {}: the operator's role map allows {listed} there (ask the platform administrator)",
                role.role_arn
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(namespace: &str, role: Option<&str>) -> WebStack {
        let mut ws: WebStack = serde_yaml::from_str(&format!(
            "apiVersion: webstack.io/v1alpha1\nkind: WebStack\nmetadata: {{name: s, namespace: {namespace}}}\nspec:\n  network: {{vpcCidr: 10.0.0.0/16}}\n"
        ))
        .unwrap();
        ws.spec.assume_role = role.map(|r| crate::api::AssumeRoleSpec {
            role_arn: r.into(),
            external_id: None,
        });
        ws
    }

    const A: &str = "arn:aws:iam::111122223333:role/team-a";

    #[test]
    fn a_namespace_uses_only_the_roles_mapped_to_it() {
        let map = RoleMap::parse(&format!("namespaces:\n  team-a:\n    - {A}\n")).unwrap();
        assert!(map.check(&stack("team-a", Some(A))).is_ok());
        assert!(map.check(&stack("team-b", None)).is_ok());
        let refused = map
            .check(&stack("team-b", Some(A)))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains(FIELD) && refused.contains("team-b"),
            "{refused}"
        );
        let other = "arn:aws:iam::111122223333:role/other";
        assert!(map.check(&stack("team-a", Some(other))).is_err());
        // No mapping at all: no role for anybody.
        assert!(RoleMap::default().check(&stack("team-a", Some(A))).is_err());
    }

    #[test]
    fn a_malformed_mapping_is_refused_with_its_place() {
        let err = RoleMap::parse("namespaces:\n  team-a:\n    - not-an-arn\n").unwrap_err();
        assert!(err.contains("namespaces.team-a"), "{err}");
        assert!(RoleMap::parse("namespace: {}\n").is_err());
    }
}
