//! The syntax of single values AWS is strict about: container image references, domain
//! names, instance and node classes, HTTP API routes, tags, URLs and S3 event names. Each
//! check returns what is wrong in words a user can act on.

use std::collections::BTreeMap;

/// AWS's limit of tags per resource.
pub const AWS_TAGS_PER_RESOURCE: usize = 50;
/// Tags the operator adds to every resource: `webstack.io/stack`, `webstack.io/component`,
/// `webstack.io/owner` and `Name`.
pub const OPERATOR_TAGS: usize = 4;
/// The tag some resources carry besides: `webstack.io/digest`, what was written where AWS
/// does not report it back.
pub const RECORD_TAGS: usize = 1;
/// The most tags a stack may declare in `spec.tags`.
pub const MAX_USER_TAGS: usize = AWS_TAGS_PER_RESOURCE - OPERATOR_TAGS - RECORD_TAGS;
/// Tag key prefixes the operator or AWS own, compared without regard to case.
pub const RESERVED_TAG_PREFIXES: &[&str] = &["webstack.io/", "aws:"];

/// A repository path component: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_path_component(c: &str) -> bool {
    let mut rest = c;
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            let sep_len = if rest.starts_with("__") {
                2
            } else if rest.starts_with('.') || rest.starts_with('_') {
                1
            } else {
                rest.chars().take_while(|c| *c == '-').count()
            };
            if sep_len == 0 {
                return false;
            }
            rest = &rest[sep_len..];
        }
        let run = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            .count();
        if run == 0 {
            return false;
        }
        rest = &rest[run..];
        first = false;
    }
    !first
}

fn is_registry_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || host.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
    }
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A container image reference, by the OCI distribution grammar:
/// `[registry[:port]/]path[:tag][@algorithm:digest]`, the path in lower case.
pub fn check_image(s: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("{s:?} is not an image reference: {why}"));
    if s.is_empty() {
        return bad("it is empty".into());
    }
    if s.chars().any(char::is_whitespace) {
        return bad("it contains white space".into());
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            alg.split(['-', '_', '+', '.']).all(|c| {
                c.chars().next().is_some_and(|f| f.is_ascii_alphabetic())
                    && c.chars().all(|x| x.is_ascii_alphanumeric())
            }) && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return bad(format!(
                "the digest {d:?} is not algorithm:hex, such as sha256:<64 hex digits>"
            ));
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if last_slash.is_none_or(|sl| i > sl) => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if let Some(tag) = tag {
        if tag.is_empty() {
            return bad("the tag after ':' is empty".into());
        }
        let ok = tag.len() <= 128
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return bad(format!(
                "the tag {tag:?} must be 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
            ));
        }
    }
    if name.is_empty() {
        return bad("the repository is missing".into());
    }
    if name.len() > 255 {
        return bad("the name is longer than 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let is_domain = parts.len() > 1
        && (first.contains(['.', ':']) || first == "localhost" || first != first.to_lowercase());
    if is_domain {
        if !is_registry_host(first) {
            return bad(format!(
                "the registry {first:?} is not a host name with an optional port"
            ));
        }
        parts.remove(0);
    }
    let path = parts.join("/");
    if path != path.to_lowercase() {
        return bad(format!("the repository path {path:?} must be lower-case"));
    }
    if let Some(p) = parts.iter().find(|p| !is_path_component(p)) {
        return bad(if p.is_empty() {
            "the repository path has an empty component".into()
        } else {
            format!(
                "{p:?} is not a repository path component (lower-case letters and digits, separated by '.', '_', '__' or '-')"
            )
        });
    }
    Ok(())
}

/// A domain name as AWS takes it: lower case, no trailing dot, labels of letters, digits and
/// '-'; with `wildcard`, `*.` may stand for the whole first label.
pub fn check_domain_name(s: &str, wildcard: bool) -> Result<(), String> {
    if s.chars().any(char::is_whitespace) {
        return Err(format!("{s:?} contains white space"));
    }
    if let Some(trimmed) = s.strip_suffix('.') {
        return Err(format!(
            "{s:?} ends with a dot: write {trimmed:?} (AWS takes names without the root dot)"
        ));
    }
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "{s:?} must be lower-case: write {:?}",
            s.to_ascii_lowercase()
        ));
    }
    let body = match s.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        Some(_) => return Err(format!("{s:?}: a wildcard is not allowed here")),
        None => s,
    };
    if body.contains('*') {
        return Err(format!(
            "{s:?}: a wildcard may only be the whole first label, as in *.example.com"
        ));
    }
    if s.len() > 253 {
        return Err(format!("{s:?} is longer than 253 characters"));
    }
    let labels: Vec<&str> = body.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{s:?} is not a domain name such as example.com (it needs a top-level domain)"
        ));
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{s:?} has a label of {} characters (1 to 63)",
                label.len()
            ));
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "{s:?}: the label {label:?} may hold only lower-case letters, digits and inner '-'"
            ));
        }
    }
    let tld = labels[labels.len() - 1];
    if !(tld.starts_with("xn--") || tld.chars().all(|c| c.is_ascii_lowercase())) {
        return Err(format!("{s:?}: the top-level domain {tld:?} is not one"));
    }
    Ok(())
}

/// Whether a certificate name (`example.com` or `*.example.com`) covers a host name.
pub fn covers(certificate_name: &str, host: &str) -> bool {
    if certificate_name == host {
        return true;
    }
    match certificate_name.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => host
            .strip_suffix(suffix)
            .is_some_and(|label| !label.is_empty() && !label.contains('.') && label != "*"),
        _ => false,
    }
}

/// Whether `host` is the zone's apex or a name inside it.
pub fn in_zone(host: &str, zone: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    host == zone || host.ends_with(&format!(".{zone}"))
}

/// Instance sizes AWS uses: nano to xlarge, `<n>xlarge`, `metal` and `metal-<n>xl`.
fn is_size(size: &str) -> bool {
    let numbered = |s: &str, suffix: &str| {
        s.strip_suffix(suffix).is_some_and(|n| {
            !n.is_empty() && !n.starts_with('0') && n.chars().all(|c| c.is_ascii_digit())
        })
    };
    matches!(
        size,
        "nano" | "micro" | "small" | "medium" | "large" | "xlarge" | "metal"
    ) || numbered(size, "xlarge")
        || size
            .strip_prefix("metal-")
            .is_some_and(|s| numbered(s, "xl"))
}

/// An EC2 instance type (`prefix` empty), an RDS class (`db.`) or an ElastiCache node type
/// (`cache.`): `<prefix><family>.<size>`, such as `t3.micro` or `db.r7g.2xlarge`.
pub fn check_instance_class(s: &str, prefix: &str) -> Result<(), String> {
    let what = match prefix {
        "db." => "an RDS instance class such as db.t4g.micro",
        "cache." => "an ElastiCache node type such as cache.t3.micro",
        _ => "an EC2 instance type such as t3.micro",
    };
    let Some((family, size)) = s.strip_prefix(prefix).and_then(|r| r.split_once('.')) else {
        return Err(format!("{s:?} is not {what}"));
    };
    let family_ok = family
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase())
        && family.chars().any(|c| c.is_ascii_digit())
        && family
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !family_ok {
        return Err(format!(
            "{s:?} is not {what}: {family:?} is not an instance family (letters and a generation digit, such as t3 or m7g)"
        ));
    }
    if !is_size(size) {
        return Err(format!(
            "{s:?} is not {what}: {size:?} is not a size (nano, micro, small, medium, large, xlarge, 2xlarge, 4xlarge, ..., metal)"
        ));
    }
    Ok(())
}

pub const ROUTE_METHODS: &[&str] = &[
    "ANY", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

/// An API Gateway HTTP API route key: `$default`, or `METHOD /path` with one space, path
/// segments of letters, digits and `_.~-`, parameters `{name}`, and a greedy `{name+}` only
/// as the last segment.
pub fn check_route(s: &str) -> Result<(), String> {
    if s == "$default" {
        return Ok(());
    }
    let Some((method, path)) = s.split_once(' ') else {
        return Err(format!(
            "{s:?} is not a route: write METHOD /path, such as GET /items/{{id}}"
        ));
    };
    if !ROUTE_METHODS.contains(&method) {
        return Err(format!(
            "{s:?}: {method:?} is not a method ({})",
            ROUTE_METHODS.join(", ")
        ));
    }
    if path.chars().any(char::is_whitespace) {
        return Err(format!(
            "{s:?}: a route has exactly one space, between the method and the path; the path {path:?} holds another"
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{s:?}: the path must start with '/'"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return Err(format!("{s:?}: the path has an empty segment"));
        }
        let param_name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if let Some(inner) = seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            match inner.strip_suffix('+') {
                Some(name) if param_name_ok(name) => {
                    if i + 1 != segments.len() {
                        return Err(format!(
                            "{s:?}: the greedy parameter {seg} must be the last segment"
                        ));
                    }
                }
                None if param_name_ok(inner) => {}
                _ => {
                    return Err(format!(
                        "{s:?}: {seg:?} is not a path parameter such as {{id}}"
                    ))
                }
            }
        } else if !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '~' | '-'))
        {
            return Err(format!(
                "{s:?}: the segment {seg:?} may hold only letters, digits, '_', '.', '~' and '-', or be a parameter such as {{id}}"
            ));
        }
    }
    Ok(())
}

/// The stack's tags: within AWS's count once the operator's own are added, no reserved key
/// (in any case), keys and values of the characters AWS allows.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if tags.len() > MAX_USER_TAGS {
        errors.push((
            "spec.tags".to_owned(),
            format!(
                "{} tags; at most {MAX_USER_TAGS} are allowed, as AWS allows {AWS_TAGS_PER_RESOURCE} per resource and the operator adds up to {}",
                tags.len(),
                OPERATOR_TAGS + RECORD_TAGS
            ),
        ));
    }
    // AWS's own pattern for tag keys and values.
    static ALLOWED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let allowed = ALLOWED.get_or_init(|| {
        regex::Regex::new(crate::api::patterns::TAG_VALUE).expect("a valid pattern")
    });
    let allowed = |c: char| allowed.is_match(c.encode_utf8(&mut [0; 4]));
    for (key, value) in tags {
        let path = format!("spec.tags[{key}]");
        let mut add = |m: String| errors.push((path.clone(), m));
        if key.is_empty() || key.chars().count() > 128 {
            add("tag keys must be 1 to 128 characters long".into());
        }
        if value.chars().count() > 256 {
            add("tag values must be at most 256 characters long".into());
        }
        if let Some(c) = key.chars().chain(value.chars()).find(|c| !allowed(*c)) {
            add(format!(
                "{c:?} is not allowed in tags: use letters, digits, spaces and _ . : / = + - @"
            ));
        }
        let lower = key.to_lowercase();
        if let Some(prefix) = RESERVED_TAG_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
            add(format!(
                "keys starting with {prefix:?} (in any case) are reserved"
            ));
        }
        if key == "Name" {
            add("the Name tag is set by the operator for each resource".into());
        }
    }
    errors
}

/// A browser origin: `https://host[:port]` (`http://` only for localhost), no path.
pub fn check_origin(s: &str) -> Result<(), String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not an origin such as https://example.com"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if rest.contains('/') {
        return Err(format!(
            "{s:?}: an origin has no path; write {:?}",
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        ));
    }
    check_web_host(s, scheme, host, port)
}

fn check_web_host(s: &str, scheme: &str, host: &str, port: Option<&str>) -> Result<(), String> {
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err(format!("{s:?}: {p:?} is not a port"));
        }
    }
    match scheme {
        "https" => {}
        "http" if host == "localhost" || host == "127.0.0.1" => {}
        "http" => {
            return Err(format!(
                "{s:?}: only https is allowed, except for localhost"
            ))
        }
        _ => return Err(format!("{s:?}: the scheme must be https")),
    }
    if host == "localhost" || host == "127.0.0.1" {
        return Ok(());
    }
    check_domain_name(host, false).map_err(|e| format!("{s:?}: the host {e}"))
}

/// A URL a sign-in page may redirect to: `https://host[:port][/path]` (http for localhost).
pub fn check_redirect_url(s: &str) -> Result<(), String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not a URL such as https://example.com/callback"))?;
    if s.chars().any(char::is_whitespace) || s.contains('#') {
        return Err(format!(
            "{s:?}: a redirect URL has no white space and no fragment"
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    check_web_host(s, scheme, host, port)
}

/// An e-mail address, as SNS accepts for a subscription.
pub fn check_email(s: &str) -> Result<(), String> {
    let ok = s.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !local.chars().any(|c| c.is_whitespace() || c == '@')
            && check_domain_name(&domain.to_ascii_lowercase(), false).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an e-mail address such as ops@example.com"
        ))
    }
}

/// S3 event types a bucket notification may name.
pub const S3_EVENTS: &[&str] = &[
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:Replication:OperationNotTracked",
    "s3:ReducedRedundancyLostObject",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_oci_grammar() {
        for ok in [
            "nginx",
            "nginx:1.27-alpine",
            "flask-backend:latest",
            "public.ecr.aws/docker/library/node:20-alpine",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backend:v1.2.3",
            "localhost:5000/team/app_name__x:1",
            "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Registry.Example.com/app:1",
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("backend: latest", "white space"),
            ("public.ecr.aws/Docker/Library/node:20-alpine", "lower-case"),
            ("backend:", "tag after ':' is empty"),
            ("Backend:latest", "lower-case"),
            ("app:-x", "the tag"),
            ("a//b", "empty component"),
            ("app@sha256:xyz", "digest"),
            ("", "empty"),
            ("my_-app", "path component"),
        ] {
            let e = check_image(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn domain_names_are_lower_case_without_a_root_dot() {
        assert_eq!(check_domain_name("www.example.com", false), Ok(()));
        assert_eq!(check_domain_name("*.example.com", true), Ok(()));
        assert_eq!(check_domain_name("shop.xn--p1ai", false), Ok(()));
        for (bad, wild, why) in [
            ("example.com.", false, "write \"example.com\""),
            ("www .example.com", false, "white space"),
            ("Example.com", false, "lower-case"),
            ("*.example.com", false, "not allowed here"),
            ("www.*.example.com", true, "whole first label"),
            ("localhost", false, "top-level domain"),
            ("-a.example.com", false, "label"),
            ("example.c0m", false, "top-level domain"),
        ] {
            let e = check_domain_name(bad, wild).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn certificates_cover_their_names_and_one_label_under_a_wildcard() {
        assert!(covers("example.com", "example.com"));
        assert!(covers("*.example.com", "www.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("example.com", "www.example.com"));
        assert!(in_zone("example.com", "example.com"));
        assert!(in_zone("*.api.example.com", "example.com"));
        assert!(!in_zone("badexample.com", "example.com"));
    }

    #[test]
    fn instance_classes_have_a_family_and_a_real_size() {
        for ok in [
            "t3.micro",
            "m7g.2xlarge",
            "c7i.metal-24xl",
            "u-6tb1.metal",
            "x2iedn.32xlarge",
        ] {
            assert_eq!(check_instance_class(ok, ""), Ok(()), "{ok}");
        }
        assert_eq!(check_instance_class("db.t4g.micro", "db."), Ok(()));
        assert_eq!(check_instance_class("cache.r7g.large", "cache."), Ok(()));
        for (bad, prefix) in [
            ("t3.micr0", ""),
            ("t3.02xlarge", ""),
            ("t.micro", ""),
            ("db.t4g.mikro", "db."),
            ("cache.t3.huge", "cache."),
            ("t3.micro", "db."),
        ] {
            assert!(check_instance_class(bad, prefix).is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_have_one_space_and_a_clean_path() {
        for ok in [
            "$default",
            "GET /",
            "ANY /api/{proxy+}",
            "GET /items/{id}",
            "OPTIONS /{proxy+}",
        ] {
            assert_eq!(check_route(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("ANY /api /{proxy+}", "exactly one space"),
            ("GET  /items", "exactly one space"),
            ("FETCH /x", "not a method"),
            ("GET items", "start with '/'"),
            ("GET /{proxy+}/x", "last segment"),
            ("GET /a//b", "empty segment"),
            ("GET /a{b", "segment"),
            ("GET", "METHOD /path"),
        ] {
            let e = check_route(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn tags_fit_aws_once_the_operator_adds_its_own() {
        let mut tags: BTreeMap<String, String> = (0..MAX_USER_TAGS)
            .map(|i| (format!("CostCenter{i}"), "x".into()))
            .collect();
        assert!(check_tags(&tags).is_empty(), "upper-case keys are fine");
        tags.insert("one-more".into(), "x".into());
        assert_eq!(check_tags(&tags)[0].0, "spec.tags");
        for key in ["AWS:x", "Aws:x", "aws:x", "WebStack.io/x", "Name"] {
            let one = BTreeMap::from([(key.to_owned(), "v".to_owned())]);
            assert_eq!(check_tags(&one).len(), 1, "{key}");
        }
        let odd = BTreeMap::from([("team".to_owned(), "a;b".to_owned())]);
        assert!(check_tags(&odd)[0].1.contains("';'"));
    }

    #[test]
    fn origins_urls_and_addresses() {
        assert_eq!(check_origin("https://example.com"), Ok(()));
        assert_eq!(check_origin("http://localhost:3000"), Ok(()));
        assert!(check_origin("https://example.com/").is_err());
        assert!(check_origin("http://example.com").is_err());
        assert!(check_origin("https://Example.com").is_err());
        assert_eq!(
            check_redirect_url("https://example.com/callback?x=1"),
            Ok(())
        );
        assert!(check_redirect_url("https://example.com./cb").is_err());
        assert!(check_redirect_url("example.com/cb").is_err());
        assert_eq!(check_email("ops@example.com"), Ok(()));
        assert!(check_email("ops example.com").is_err());
    }
}
