//! Regular expressions the CRD's schema carries, so that the API server refuses what the
//! operator's own checks (`validate::names`) refuse. They are written for both regex engines
//! that read them (Go's RE2 on the server, Rust's `regex` in the operator): no look-around, no
//! back-references. A test keeps each in agreement with its check.

/// A container image reference (the OCI distribution grammar).
pub const IMAGE: &str = r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(:[0-9]+)?/)?[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$";

/// A lower-case domain name without the root dot, optionally `*.` for the first label.
pub const DOMAIN: &str =
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$";

/// An EC2 instance type: a family with a generation digit, and a size AWS uses.
pub const INSTANCE_TYPE: &str = r"^[a-z][a-z-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal|metal-[1-9][0-9]*xl)$";

/// An RDS instance class.
pub const DB_INSTANCE_CLASS: &str = r"^db\.[a-z][a-z-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal|metal-[1-9][0-9]*xl)$";

/// An ElastiCache node type.
pub const CACHE_NODE_TYPE: &str = r"^cache\.[a-z][a-z-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|xlarge|[1-9][0-9]*xlarge|metal|metal-[1-9][0-9]*xl)$";

/// An HTTP API route key: `$default` or `METHOD /path` with one space; a greedy `{name+}`
/// only last.
pub const ROUTE: &str = r"^([$]default|(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/|(/([A-Za-z0-9_.~-]+|[{][A-Za-z0-9_.-]+[}]))+(/[{][A-Za-z0-9_.-]+[+][}])?|/[{][A-Za-z0-9_.-]+[+][}]))$";

/// A browser origin: https (or http for localhost), a host, an optional port, no path.
pub const ORIGIN: &str = r"^(https://(localhost|127\.0\.0\.1|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59}))|http://(localhost|127\.0\.0\.1))(:[1-9][0-9]{0,4})?$";

/// A sign-in redirect: an origin followed by an optional path and query, no fragment.
pub const REDIRECT_URL: &str = r"^(https://(localhost|127\.0\.0\.1|([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59}))|http://(localhost|127\.0\.0\.1))(:[1-9][0-9]{0,4})?([/?][^\s#]*)?$";

/// An AWS tag value: letters, digits, white space and `_ . : / = + - @`, as AWS documents.
pub const TAG_VALUE: &str = r"^[\p{L}\p{Z}\p{N}_.:/=+@-]*$";

/// An e-mail address.
pub const EMAIL: &str = r"^[^@\s]+@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63}|xn--[a-z0-9-]{1,59})$";

/// An S3 event type a bucket notification may name.
pub const S3_EVENT: &str = r"^s3:(ObjectCreated:([*]|Put|Post|Copy|CompleteMultipartUpload)|ObjectRemoved:([*]|Delete|DeleteMarkerCreated)|ObjectRestore:([*]|Post|Completed|Delete)|ObjectTagging:([*]|Put|Delete)|ObjectAcl:Put|LifecycleExpiration:([*]|Delete|DeleteMarkerCreated)|LifecycleTransition|IntelligentTiering|Replication:([*]|OperationFailedReplication|OperationMissedThreshold|OperationReplicatedAfterThreshold|OperationNotTracked)|ReducedRedundancyLostObject)$";

/// An IAM role's ARN, in any partition.
pub const ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$";

/// An external id of STS AssumeRole.
pub const EXTERNAL_ID: &str = r"^[A-Za-z0-9+=,.@:/_-]+$";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::validate::names;

    fn agree(pattern: &str, check: impl Fn(&str) -> bool, samples: &[&str]) {
        let re = regex::Regex::new(pattern).unwrap();
        for s in samples {
            assert_eq!(re.is_match(s), check(s), "{s:?} under {pattern}");
        }
    }

    #[test]
    fn the_schema_patterns_agree_with_the_operators_checks() {
        agree(
            IMAGE,
            |s| names::check_image(s).is_ok(),
            &[
                "nginx",
                "nginx:1.27-alpine",
                "public.ecr.aws/docker/library/node:20-alpine",
                "localhost:5000/team/app__x:1",
                "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "backend: latest",
                "public.ecr.aws/Docker/Library/node:20-alpine",
                "backend:",
                "Backend:latest",
                "app:-x",
                "a//b",
                "app@sha256:xyz",
                "",
                "my_-app",
            ],
        );
        agree(
            DOMAIN,
            |s| names::check_domain_name(s, true).is_ok(),
            &[
                "example.com",
                "*.example.com",
                "shop.xn--p1ai",
                "example.com.",
                "www .example.com",
                "Example.com",
                "www.*.example.com",
                "localhost",
                "-a.example.com",
                "example.c0m",
            ],
        );
        let sizes = [
            "t3.micro",
            "m7g.2xlarge",
            "c7i.metal-24xl",
            "u-6tb1.metal",
            "t3.micr0",
            "t3.02xlarge",
            "t.micro",
            "T3.micro",
        ];
        agree(
            INSTANCE_TYPE,
            |s| names::check_instance_class(s, "").is_ok(),
            &sizes,
        );
        let db: Vec<String> = sizes.iter().map(|s| format!("db.{s}")).collect();
        let db: Vec<&str> = db.iter().map(String::as_str).collect();
        agree(
            DB_INSTANCE_CLASS,
            |s| names::check_instance_class(s, "db.").is_ok(),
            &db,
        );
        let cache: Vec<String> = sizes.iter().map(|s| format!("cache.{s}")).collect();
        let cache: Vec<&str> = cache.iter().map(String::as_str).collect();
        agree(
            CACHE_NODE_TYPE,
            |s| names::check_instance_class(s, "cache.").is_ok(),
            &cache,
        );
        agree(
            ROUTE,
            |s| names::check_route(s).is_ok(),
            &[
                "$default",
                "GET /",
                "ANY /api/{proxy+}",
                "GET /items/{id}",
                "OPTIONS /{proxy+}",
                "ANY /api /{proxy+}",
                "GET  /items",
                "FETCH /x",
                "GET items",
                "GET /{proxy+}/x",
                "GET /a//b",
                "GET /a{b",
                "GET",
                "GET ",
            ],
        );
        agree(
            ORIGIN,
            |s| names::check_origin(s).is_ok(),
            &[
                "https://example.com",
                "https://example.com:8443",
                "http://localhost:3000",
                "https://example.com/",
                "http://example.com",
                "https://Example.com",
                "ftp://example.com",
                "https://example.com:0",
            ],
        );
        agree(
            REDIRECT_URL,
            |s| names::check_redirect_url(s).is_ok(),
            &[
                "https://example.com/callback",
                "https://example.com/cb?x=1",
                "http://localhost:3000/cb",
                "https://example.com./cb",
                "example.com/cb",
                "https://example.com/cb#top",
                "http://example.com/cb",
            ],
        );
        agree(
            EMAIL,
            |s| names::check_email(s).is_ok(),
            &[
                "ops@example.com",
                "Ops.Team@Example.COM",
                "ops example.com",
                "ops@",
                "@example.com",
            ],
        );
        let re = regex::Regex::new(S3_EVENT).unwrap();
        for e in names::S3_EVENTS {
            assert!(re.is_match(e), "{e}");
        }
        for e in [
            "s3:ObjectCreated",
            "s3:ObjectCreated:Upload",
            "ObjectCreated:*",
        ] {
            assert!(!re.is_match(e) && !names::S3_EVENTS.contains(&e), "{e}");
        }
    }
}
