//! The IAM policy the chart ships (`charts/webstack-operator/iam-policy.json`), checked against
//! every AWS call of the operator's code: it must allow exactly the actions the code needs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use support::{chart, rust_files, strings};
use webstack_tests::repo_root;

/// One AWS call of the operator's code.
#[derive(Debug)]
struct AwsCall {
    service: String,
    operation: String,
    /// The call's whole argument list, to see what the request carries (tags, a launch template).
    args: String,
    at: String,
}

/// The text between the parenthesis at `open` and its match, skipping strings, characters and
/// comments; `None` when unbalanced.
fn balanced(text: &str, open: usize) -> Option<&str> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&text[open + 1..i]);
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'\'' => {
                // A character literal ('x', '\n'), not a lifetime.
                if i + 2 < b.len() && b[i + 2] == b'\'' {
                    i += 2;
                } else if i + 1 < b.len() && b[i + 1] == b'\\' {
                    while i + 1 < b.len() && b[i + 1] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The top-level arguments of an argument list.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in args.chars() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn literal(arg: &str) -> Option<String> {
    let s = arg.strip_prefix('"')?.strip_suffix('"')?;
    (!s.contains('"')).then(|| s.to_owned())
}

/// The value of `const NAME: &str = "...";` seen from `file`: defined in the file itself, in
/// the module its path or a `use` names (`balancer::SERVICE`, `use super::{X, SERVICE}`), or in
/// the enclosing module.
fn resolve_const(file: &Path, path: &str) -> Option<String> {
    let (mut module, name) = match path.rsplit_once("::") {
        Some((m, n)) => (Some(m.rsplit("::").next().unwrap_or(m).to_owned()), n),
        None => (None, path),
    };
    let text = std::fs::read_to_string(file).ok()?;
    if module.is_none() {
        // `use a::b::NAME;` or `use a::b::{.., NAME, ..};`
        module = text
            .split(';')
            .map(|s| {
                // The statement from its `use` on, past comments and attributes before it.
                s.lines()
                    .map(str::trim)
                    .skip_while(|l| !(l.starts_with("use ") || l.starts_with("pub use ")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|s| !s.is_empty())
            .find_map(|s| {
                let listed = s.split(|c: char| !(c.is_alphanumeric() || c == '_'));
                if !listed.clone().any(|w| w == name) {
                    return None;
                }
                let path = s.split("::{").next().unwrap_or(&s);
                let path = path.strip_suffix(&format!("::{name}")).unwrap_or(path);
                path.rsplit("::").next().map(str::to_owned)
            });
    }
    let dir = file.parent()?;
    let mut candidates = vec![file.to_path_buf()];
    match module.as_deref() {
        Some("super") | None => {}
        Some("self" | "crate") => return None,
        Some(m) => {
            candidates.push(dir.join(format!("{m}.rs")));
            candidates.push(dir.join(m).join("mod.rs"));
        }
    }
    candidates.push(dir.join("mod.rs"));
    candidates.push(dir.with_extension("rs"));
    let needle = format!("const {name}: &str = \"");
    for candidate in candidates {
        let Ok(text) = std::fs::read_to_string(&candidate) else {
            continue;
        };
        if let Some(at) = text.find(&needle) {
            let rest = &text[at + needle.len()..];
            return rest.split('"').next().map(str::to_owned);
        }
    }
    None
}

/// Every `AwsApi::call(service, operation, effect, send)` and every paginated listing
/// `pages(scope, service, operation, send, next)` in operator/src. Helpers that pass on a
/// service they were given (`pages` itself) are known by name; any other makes the test fail,
/// so that a new way to call AWS cannot slip past the policy.
fn aws_calls() -> Vec<AwsCall> {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("operator/src"), &mut files);
    files.sort();
    let mut calls = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let rel = file.strip_prefix(&root).unwrap().display().to_string();
        for (pattern, skip) in [(".call(", 0usize), ("pages(", 1usize)] {
            let mut from = 0;
            while let Some(found) = text[from..].find(pattern) {
                let start = from + found;
                from = start + pattern.len();
                if pattern == "pages(" {
                    let before = text[..start].chars().next_back();
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                        || text[..start].ends_with("fn ")
                    {
                        continue;
                    }
                }
                let open = start + pattern.len() - 1;
                let line = text[..start].lines().count().max(1);
                let at = format!("{rel}:{line}");
                let Some(inner) = balanced(&text, open) else {
                    problems.push(format!("{at}: unbalanced call"));
                    continue;
                };
                let args = split_args(inner);
                let aws_shaped = if skip == 0 {
                    args.len() == 4 && args[2].contains("Effect::")
                } else {
                    args.len() == 5
                };
                if !aws_shaped {
                    if skip == 0 && args.len() >= 3 && args[2].contains("Effect") {
                        problems.push(format!("{at}: an AWS call of an unknown shape: {inner}"));
                    }
                    continue;
                }
                let (service, operation) = (&args[skip], &args[skip + 1]);
                let forwards = |a: &str| a.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                if forwards(service) || forwards(operation) {
                    // The helper's own body: its callers are scanned instead.
                    if !(rel == "operator/src/aws/mod.rs" && service == "service") {
                        problems.push(format!(
                            "{at}: a call that passes on the service and operation it was given \
                             ({service}, {operation}): teach this test the helper's name, like `pages`"
                        ));
                    }
                    continue;
                }
                let service = literal(service).or_else(|| resolve_const(file, service));
                let Some(service) = service else {
                    problems.push(format!("{at}: cannot resolve the service {}", args[skip]));
                    continue;
                };
                let Some(operation) = literal(operation) else {
                    problems.push(format!("{at}: the operation {operation} is not a literal"));
                    continue;
                };
                calls.push(AwsCall {
                    service,
                    operation,
                    args: inner.to_owned(),
                    at,
                });
            }
        }
    }
    assert!(
        problems.is_empty(),
        "AWS calls this test cannot read:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        calls.len() > 100,
        "only {} AWS calls found in operator/src: has the call layer changed?",
        calls.len()
    );
    calls
}

/// The IAM prefix of a service as the operator's call layer names it.
fn iam_prefix(service: &str) -> Option<&'static str> {
    Some(match service {
        "acm" => "acm",
        "autoscaling" => "autoscaling",
        "cloudfront" => "cloudfront",
        "cloudwatch" => "cloudwatch",
        "logs" | "cloudwatchlogs" => "logs",
        "dynamodb" => "dynamodb",
        "ec2" => "ec2",
        "ecr" => "ecr",
        "ecs" => "ecs",
        "elasticache" => "elasticache",
        "elb" | "elbv2" | "elasticloadbalancing" | "elasticloadbalancingv2" => {
            "elasticloadbalancing"
        }
        "iam" => "iam",
        "kms" => "kms",
        "lambda" => "lambda",
        "rds" => "rds",
        "route53" => "route53",
        "s3" => "s3",
        "secretsmanager" => "secretsmanager",
        "sns" => "sns",
        "sqs" => "sqs",
        "ssm" => "ssm",
        "sts" => "sts",
        "cognito-idp" | "cognito" => "cognito-idp",
        "codebuild" => "codebuild",
        "codepipeline" => "codepipeline",
        _ => return None,
    })
}

/// The IAM actions that authorise one operation, where they are not `prefix:Operation`.
fn authorising_actions(prefix: &str, operation: &str) -> Vec<String> {
    let renamed: &[&str] = match (prefix, operation) {
        ("s3", "ListBuckets") => &["ListAllMyBuckets"],
        ("s3", "HeadBucket" | "ListObjects" | "ListObjectsV2") => &["ListBucket"],
        ("s3", "ListObjectVersions") => &["ListBucketVersions"],
        ("s3", "HeadObject") => &["GetObject"],
        // Deleting versions of objects needs DeleteObjectVersion as well.
        ("s3", "DeleteObjects") => &["DeleteObject", "DeleteObjectVersion"],
        ("s3", "PutBucketEncryption") => &["PutEncryptionConfiguration"],
        ("s3", "GetBucketEncryption") => &["GetEncryptionConfiguration"],
        ("s3", "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle") => {
            &["PutLifecycleConfiguration"]
        }
        ("s3", "GetBucketLifecycleConfiguration") => &["GetLifecycleConfiguration"],
        ("s3", "PutBucketCors" | "DeleteBucketCors") => &["PutBucketCORS"],
        ("s3", "GetBucketCors") => &["GetBucketCORS"],
        ("s3", "DeleteBucketTagging") => &["PutBucketTagging"],
        ("s3", "PutPublicAccessBlock") => &["PutBucketPublicAccessBlock"],
        ("s3", "GetPublicAccessBlock") => &["GetBucketPublicAccessBlock"],
        ("s3", "DeletePublicAccessBlock") => &["PutBucketPublicAccessBlock"],
        ("s3", "PutBucketNotificationConfiguration") => &["PutBucketNotification"],
        ("s3", "GetBucketNotificationConfiguration") => &["GetBucketNotification"],
        ("s3", "DeleteBucketOwnershipControls") => &["PutBucketOwnershipControls"],
        ("cloudfront", "CreateDistributionWithTags") => &["CreateDistribution", "TagResource"],
        _ => &[],
    };
    if renamed.is_empty() {
        vec![format!("{prefix}:{operation}")]
    } else {
        renamed.iter().map(|a| format!("{prefix}:{a}")).collect()
    }
}

/// The action that lets a create carry tags (AWS authorises tag-on-create separately).
fn tag_on_create(prefix: &str, operation: &str) -> Option<String> {
    let action = match prefix {
        "ec2" => "CreateTags",
        "elasticloadbalancing" => "AddTags",
        "autoscaling" => "CreateOrUpdateTags",
        "rds" | "elasticache" => "AddTagsToResource",
        "acm" => "AddTagsToCertificate",
        "route53" => "ChangeTagsForResource",
        "s3" => "PutBucketTagging",
        "iam" if operation.contains("InstanceProfile") => "TagInstanceProfile",
        "iam" => "TagRole",
        "secretsmanager" | "kms" | "logs" | "ecr" | "sns" | "cloudwatch" | "cloudfront"
        | "lambda" | "dynamodb" | "ecs" | "sqs" | "ssm" | "cognito-idp" => "TagResource",
        _ => return None,
    };
    Some(format!("{prefix}:{action}"))
}

/// Actions AWS checks on the caller's behalf for what a request carries, from the services'
/// documentation.
fn implied_actions(prefix: &str, operation: &str, args: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    match (prefix, operation) {
        // Auto Scaling launches from a template as its caller would: RunInstances, the
        // template's tags and the instance profile's role (PassRole); the first group of an
        // account also creates Auto Scaling's service-linked role.
        ("autoscaling", op) if args.contains("launch_template") => {
            out.extend(["ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"]);
            if op == "CreateAutoScalingGroup" {
                out.push("iam:CreateServiceLinkedRole");
            }
        }
        ("iam", "AddRoleToInstanceProfile") => out.push("iam:PassRole"),
        ("rds", "CreateDBInstance") => {
            out.push("iam:CreateServiceLinkedRole");
            if args.contains("manage_master_user_password") {
                // RDS creates the master password's secret as the caller.
                out.extend(["secretsmanager:CreateSecret", "secretsmanager:TagResource"]);
            }
            if args.contains("kms_key_id") {
                out.extend(["kms:CreateGrant", "kms:DescribeKey"]);
            }
        }
        ("elasticache", "CreateReplicationGroup") => {
            out.push("iam:CreateServiceLinkedRole");
            if args.contains("kms_key_id") {
                out.extend(["kms:CreateGrant", "kms:DescribeKey"]);
            }
        }
        ("elasticloadbalancing", "CreateLoadBalancer") => out.push("iam:CreateServiceLinkedRole"),
        _ => {}
    }
    out
}

/// Actions AWS checks for what the SDK does on the operator's behalf, with no `.call(` of the
/// operator's own: each with a text of operator/src that shows the code still needs it (without
/// it the action would be one the policy no longer needs), and why.
const WITHOUT_A_CALL: &[(&str, &str, &str)] = &[(
    "sts:AssumeRole",
    "AssumeRoleProvider",
    "the operator assumes the roles of the role map (--role-map; a stack's spec.assumeRole) \
     through the SDK's credentials provider",
)];

fn carries_tags(args: &str) -> bool {
    ["set_tags(", ".tags(", "tag_specifications(", "_with_tags("]
        .iter()
        .any(|t| args.contains(t))
}

/// The actions each call needs, with the calls that need each (for messages), and those of
/// [`WITHOUT_A_CALL`] the code still needs, with their reason.
fn needed_actions(calls: &[AwsCall]) -> BTreeMap<String, Vec<String>> {
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for call in calls {
        let Some(prefix) = iam_prefix(&call.service) else {
            unknown.insert(format!("{} ({})", call.service, call.at));
            continue;
        };
        let mut actions = authorising_actions(prefix, &call.operation);
        let reads = ["Describe", "List", "Get", "Head"]
            .iter()
            .any(|p| call.operation.starts_with(p));
        if !reads && carries_tags(&call.args) {
            actions.extend(tag_on_create(prefix, &call.operation));
        }
        actions.extend(
            implied_actions(prefix, &call.operation, &call.args)
                .into_iter()
                .map(str::to_owned),
        );
        for action in actions {
            needed.entry(action).or_default().push(format!(
                "{} {} at {}",
                call.service, call.operation, call.at
            ));
        }
    }
    assert!(
        unknown.is_empty(),
        "services with no IAM prefix in this test's iam_prefix(): {unknown:?}"
    );
    let mut files = Vec::new();
    rust_files(&repo_root().join("operator/src"), &mut files);
    let sources: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for (action, evidence, why) in WITHOUT_A_CALL {
        if sources.iter().any(|text| text.contains(evidence)) {
            needed
                .entry(action.to_string())
                .or_default()
                .push(format!("{why} ({evidence} in operator/src)"));
        }
    }
    needed
}

fn statement_id(prefix: &str) -> String {
    match prefix {
        "acm" => "CertificateManager".into(),
        "autoscaling" => "AutoScaling".into(),
        "cloudfront" => "CloudFront".into(),
        "cloudwatch" => "CloudWatch".into(),
        "cognito-idp" => "Cognito".into(),
        "dynamodb" => "DynamoDb".into(),
        "ec2" => "Ec2".into(),
        "ecr" => "ContainerRegistry".into(),
        "elasticache" => "ElastiCache".into(),
        "elasticloadbalancing" => "ElasticLoadBalancing".into(),
        "iam" => "Iam".into(),
        "kms" => "Kms".into(),
        "logs" => "CloudWatchLogs".into(),
        "rds" => "Rds".into(),
        "route53" => "Route53".into(),
        "s3" => "S3".into(),
        "secretsmanager" => "SecretsManager".into(),
        "sns" => "Sns".into(),
        "ssm" => "SystemsManager".into(),
        "sts" => "Sts".into(),
        other => other
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|w| {
                let mut cs = w.chars();
                cs.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    }
}

/// The policy document for a set of actions: one statement per service, actions sorted, keys
/// in the order IAM documents use.
fn policy_for(actions: &BTreeSet<String>) -> String {
    let mut by_prefix: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for action in actions {
        let (prefix, _) = action.split_once(':').unwrap();
        by_prefix.entry(prefix).or_default().push(action);
    }
    let quote = |s: &str| serde_json::to_string(s).unwrap();
    let statements: Vec<String> = by_prefix
        .into_iter()
        .map(|(prefix, actions)| {
            let actions: Vec<String> = actions
                .iter()
                .map(|a| format!("        {}", quote(a)))
                .collect();
            format!(
                "    {{\n      \"Sid\": {},\n      \"Effect\": \"Allow\",\n      \"Action\": [\n{}\n      ],\n      \"Resource\": \"*\"\n    }}",
                quote(&statement_id(prefix)),
                actions.join(",\n")
            )
        })
        .collect();
    format!(
        "{{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n{}\n  ]\n}}\n",
        statements.join(",\n")
    )
}

#[test]
fn iam_policy_allows_exactly_what_the_operator_calls() {
    let calls = aws_calls();
    let needed = needed_actions(&calls);
    let expected = policy_for(&needed.keys().cloned().collect());
    let file = chart().join("iam-policy.json");
    if std::env::var_os("WEBSTACK_BLESS").is_some() {
        std::fs::write(&file, &expected).unwrap();
        eprintln!("wrote {}", file.display());
        return;
    }
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    if current == expected {
        return;
    }
    let listed: BTreeSet<String> = serde_json::from_str::<Value>(&current)
        .ok()
        .and_then(|p| {
            p["Statement"].as_array().map(|s| {
                s.iter()
                    .flat_map(|st| strings(&st["Action"]))
                    .collect::<BTreeSet<_>>()
            })
        })
        .unwrap_or_default();
    let missing: Vec<String> = needed
        .iter()
        .filter(|(a, _)| !listed.contains(*a))
        .map(|(a, why)| format!("{a} (for {})", why.join(", ")))
        .collect();
    let unused: Vec<&String> = listed.iter().filter(|a| !needed.contains_key(*a)).collect();
    panic!(
        "{} is not the policy the code needs.\nmissing:\n  {}\nnever called:\n  {:?}\n\
         Regenerate it with WEBSTACK_BLESS=1 cargo test -p webstack-tests --test iam_policy, \
         or paste:\n{expected}",
        file.display(),
        missing.join("\n  "),
        unused
    );
}
