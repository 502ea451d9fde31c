use serde_json::json;

use super::*;
use crate::api::validate::parse_manifest;
use crate::engine::Prop;

fn example(file: &str) -> crate::api::WebStack {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file),
    )
    .unwrap();
    parse_manifest(&text).unwrap()
}

fn value(node: &Node, key: &str) -> serde_json::Value {
    match &node.props[key] {
        Prop::Value(v) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn bucket_names_are_valid_for_s3_and_stable() {
    let stack = StackRef::new("default", "multi-az-mysql", Some("uid-1"));
    let name = bucket_name(&stack, FRONTEND);
    assert_eq!(name, bucket_name(&stack, FRONTEND));
    assert_ne!(
        name,
        bucket_name(
            &StackRef::new("default", "multi-az-mysql", Some("uid-2")),
            FRONTEND
        )
    );
    assert!(
        name.starts_with("default-multi-az-mysql-frontend-"),
        "{name}"
    );
    let long = StackRef::new(&"n".repeat(63), &"s".repeat(63), Some("uid-1"));
    for (stack, role) in [
        (&stack, FRONTEND),
        (&long, "data-uploads"),
        (&StackRef::new("xn--bucket", "shop", Some("u")), FRONTEND),
        (&StackRef::new("sthree-x", "shop", Some("u")), FRONTEND),
        (&StackRef::new("9", "shop", Some("u")), "data-a"),
    ] {
        let n = bucket_name(stack, role);
        assert!((3..=63).contains(&n.len()), "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n}"
        );
        assert!(
            n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{n}"
        );
        assert!(
            !n.ends_with('-') && !n.contains("--") || n.starts_with("wxn--"),
            "{n}"
        );
        for reserved in ["xn--", "sthree-", "amzn-s3-demo-"] {
            assert!(!n.starts_with(reserved), "{n}");
        }
    }
}

#[test]
fn the_reference_000_site_and_uploads_are_private_versioned_and_expire_old_versions() {
    let ws = example("multi-az-mysql.yaml");
    let stack = StackRef::new("default", "multi-az-mysql", Some("uid-1"));
    let nodes = desired(&stack, &ws.spec);
    assert_eq!(nodes.len(), 2);
    let site = nodes.iter().find(|n| n.id == id(FRONTEND)).unwrap();
    let uploads = nodes
        .iter()
        .find(|n| n.id == id(&data_role("uploads")))
        .unwrap();
    for b in [site, uploads] {
        assert_eq!(value(b, "publicAccessBlocked"), json!(true));
        assert_eq!(value(b, "objectOwnership"), json!("BucketOwnerEnforced"));
        assert_eq!(value(b, "encryption"), json!("AES256"));
        assert_eq!(value(b, "versioning"), json!(true));
        assert_eq!(value(b, "deleteObjects"), json!(false));
    }
    assert_eq!(
        value(site, "lifecycle")["noncurrentVersionExpirationDays"],
        json!(30)
    );
    assert_eq!(
        value(site, "lifecycle")["abortIncompleteUploadsDays"],
        json!(7)
    );
    assert_eq!(
        value(uploads, "lifecycle")["noncurrentVersionExpirationDays"],
        json!(null)
    );
    // No aliases and no origins listed: nothing to allow.
    assert_eq!(value(uploads, "cors"), json!(null));
    assert_eq!(value(site, "cors"), json!(null));
}

#[test]
fn cors_defaults_to_the_stacks_own_origins() {
    let mut ws = example("tekamolo.yaml");
    ws.spec
        .buckets
        .push(serde_json::from_value(json!({"name": "uploads"})).unwrap());
    let rules = cors_rules(&ws.spec.buckets[0].cors_origins, &ws.spec);
    assert_eq!(
        rules["allowedOrigins"],
        json!(["https://tekamolo.info", "https://www.tekamolo.info"])
    );
    let explicit = cors_rules(&["https://app.example.com".into()], &ws.spec);
    assert_eq!(
        explicit["allowedOrigins"],
        json!(["https://app.example.com"])
    );
}

#[test]
fn only_a_served_bucket_admits_the_distribution_and_every_bucket_refuses_plain_http() {
    let ws = example("multi-az-mysql.yaml");
    let stack = StackRef::new("default", "multi-az-mysql", Some("uid-1"));
    let buckets = desired(&stack, &ws.spec);
    let cdn = NodeId::new(Kind("Distribution"), "cdn");
    let policies = policies(&buckets, &[FRONTEND.to_owned()], Some(&cdn));
    assert_eq!(policies.len(), 2);
    let statements = |role: &str| -> Vec<Prop> {
        let p = policies.iter().find(|p| p.id == policy_id(role)).unwrap();
        assert!(p.dependencies().contains(&id(role)));
        let Prop::Map(doc) = &p.props["document"] else {
            panic!()
        };
        let Prop::List(s) = &doc["Statement"] else {
            panic!()
        };
        s.clone()
    };
    let site = statements(FRONTEND);
    assert_eq!(site.len(), 2);
    let Prop::Map(allow) = &site[1] else { panic!() };
    assert_eq!(allow["Action"], Prop::from("s3:GetObject"));
    let Prop::Map(condition) = &allow["Condition"] else {
        panic!()
    };
    let Prop::Map(equals) = &condition["StringEquals"] else {
        panic!()
    };
    assert_eq!(
        equals["AWS:SourceArn"],
        Prop::Attr(cdn.clone(), "arn".into())
    );
    let uploads = statements(&data_role("uploads"));
    assert_eq!(uploads.len(), 1, "not served: no one is admitted");
    let Prop::Map(deny) = &uploads[0] else {
        panic!()
    };
    assert_eq!(deny["Effect"], Prop::from("Deny"));
}
