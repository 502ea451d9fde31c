//! Names of resources that AWS identifies by a unique name (a load balancer, a target group,
//! an RDS instance, a replication group, an IAM role, a repository, a log group, a bucket).
//! The name is derived from the stack, its owner and the resource's role alone, so that a
//! create after a crash finds the resource by name instead of making a second one, and two
//! owners of a stack of the same name never collide.

use super::{hex_digest, StackRef};

/// The shortest limit the services above put on a name: ELBv2's 32 characters.
pub const ELB_MAX: usize = 32;
/// ElastiCache replication group ids.
pub const ELASTICACHE_MAX: usize = 40;
/// RDS instance identifiers and S3 bucket names.
pub const RDS_MAX: usize = 63;
/// IAM role and instance profile names.
pub const IAM_MAX: usize = 64;

/// `<namespace>-<name>-<role>`, lower case, letters, digits and single `-`, starting with a
/// letter, cut to `max` characters with an 8-digit hash of the stack's identity, owner and
/// role at the end. Every service above accepts it.
pub fn physical_name(stack: &StackRef, role: &str, max: usize) -> String {
    let hash = owner_hash(stack, role);
    let mut readable = String::new();
    for c in format!("{}-{}-{}", stack.namespace, stack.name, role).chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
    }
    if !readable.starts_with(|c: char| c.is_ascii_lowercase()) {
        readable.insert(0, 'w');
    }
    let room = max.saturating_sub(hash.len() + 1);
    readable.truncate(room);
    let readable = readable.trim_end_matches('-');
    format!("{readable}-{hash}")
}

/// The 8 hex digits that make a name the owner's own: a hash of the stack's identity, its
/// owner and the resource's role.
fn owner_hash(stack: &StackRef, role: &str) -> String {
    hex_digest(&format!(
        "{}/{}/{}/{}",
        stack.namespace, stack.name, stack.uid, role
    ))[..8]
        .to_owned()
}

/// The prefix under which a service that lists by name prefix (CloudWatch log groups and
/// alarms) keeps a stack's resources: `<root><namespace>/<name>/`, for the stack id
/// `<namespace>/<name>`.
pub fn stack_prefix(root: &str, stack_id: &str) -> String {
    format!("{root}{stack_id}/")
}

/// `<root><namespace>/<name>/<leaf>-<hash>`: one listing by the stack's prefix finds exactly
/// its resources, and the owner's hash keeps two owners apart.
pub fn prefixed_name(root: &str, stack: &StackRef, leaf: &str, role: &str) -> String {
    format!(
        "{}{leaf}-{}",
        stack_prefix(root, &stack.id()),
        owner_hash(stack, role)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(ns: &str, name: &str, uid: &str) -> StackRef {
        StackRef::new(ns, name, Some(uid))
    }

    #[test]
    fn names_are_stable_and_fit_every_limit() {
        let s = stack("team-payments", "checkout-service-production", "uid-1");
        for max in [ELB_MAX, ELASTICACHE_MAX, RDS_MAX, IAM_MAX] {
            let a = physical_name(&s, "api-load-balancer", max);
            assert_eq!(a, physical_name(&s, "api-load-balancer", max), "stable");
            assert!(a.len() <= max, "{a} longer than {max}");
            assert!(a.starts_with(|c: char| c.is_ascii_lowercase()), "{a}");
            assert!(!a.contains("--") && !a.ends_with('-'), "{a}");
            assert!(a
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
        assert_eq!(
            physical_name(&stack("default", "shop", "u"), "db", RDS_MAX).len(),
            "default-shop-db".len() + 9
        );
    }

    #[test]
    fn stacks_owners_and_roles_never_share_a_name() {
        let a = physical_name(&stack("a-b", "c", "u"), "db", RDS_MAX);
        let b = physical_name(&stack("a", "b-c", "u"), "db", RDS_MAX);
        assert_ne!(a, b, "same readable part, different stacks");
        let mine = physical_name(&stack("ns", "shop", "uid-1"), "db", RDS_MAX);
        let theirs = physical_name(&stack("ns", "shop", "uid-2"), "db", RDS_MAX);
        assert_ne!(mine, theirs, "another owner of a stack of the same name");
        let long = stack("namespace-with-a-long-name", "stack-with-a-long-name", "u");
        assert_ne!(
            physical_name(&long, "web-target-group", ELB_MAX),
            physical_name(&long, "api-target-group", ELB_MAX),
            "roles cut away still differ by their hash"
        );
    }

    #[test]
    fn names_start_with_a_letter() {
        let n = physical_name(&stack("1team", "2stack", "u"), "x", ELB_MAX);
        assert!(n.starts_with('w'), "{n}");
    }
}
