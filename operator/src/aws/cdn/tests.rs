use serde_json::json;

use super::*;
use crate::api::validate::parse_manifest;
use crate::engine::plan::resolve;
use crate::engine::Observed;

fn example(file: &str) -> crate::api::WebStack {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file),
    )
    .unwrap();
    parse_manifest(&text).unwrap()
}

fn value(node: &Node, key: &str) -> Value {
    match &node.props[key] {
        Prop::Value(v) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn reference_003_routes_the_api_uncached_to_the_load_balancer_and_the_rest_to_the_bucket() {
    let ws = example("tekamolo.yaml");
    let stack = StackRef::new("default", "tekamolo", Some("uid-1"));
    let cert = crate::aws::certificates::id("tekamolo");
    let nodes = desired(&stack, &ws.spec, Some(&cert));
    assert_eq!(
        nodes.len(),
        2,
        "an origin access control and the distribution"
    );
    let d = nodes.iter().find(|n| n.id == id()).unwrap();
    assert_eq!(d.props["certificate"], Prop::Ref(cert));
    assert!(d.dependencies().contains(&storage::id(storage::FRONTEND)));
    assert!(d
        .dependencies()
        .contains(&NodeId::new(backend::LOAD_BALANCER, "api")));
    let Prop::List(origins) = &d.props["origins"] else {
        panic!()
    };
    assert_eq!(origins.len(), 2);
    assert_eq!(
        value(d, "defaultBehavior")["origin"],
        json!("bucket-frontend")
    );
    assert_eq!(
        value(d, "defaultBehavior")["cachePolicy"],
        json!(config::CACHING_OPTIMIZED)
    );
    let behaviors = value(d, "behaviors");
    assert_eq!(behaviors[0]["path"], json!("/api/*"));
    assert_eq!(behaviors[0]["origin"], json!("tier-api"));
    assert_eq!(behaviors[0]["cachePolicy"], json!(config::CACHING_DISABLED));
    // The load balancer speaks HTTPS with the site's certificate: the Host goes along.
    assert_eq!(
        behaviors[0]["originRequestPolicy"],
        json!(config::ALL_VIEWER)
    );
    assert_eq!(behaviors[0]["methods"], json!("all"));
    assert_eq!(
        value(d, "aliases"),
        json!(["tekamolo.info", "www.tekamolo.info"])
    );
    assert_eq!(value(d, "defaultRootObject"), json!("index.html"));
    // The single-page app's routes come back as its index page.
    let errors = value(d, "errorResponses");
    assert_eq!(errors.as_array().unwrap().len(), 2);
    assert_eq!(errors[0]["code"], json!(403));
    assert_eq!(errors[1]["page"], json!("/index.html"));
    assert_eq!(served_buckets(&ws.spec), vec![storage::FRONTEND.to_owned()]);
}

#[test]
fn the_configuration_reads_back_as_the_properties_it_was_made_from() {
    let ws = example("multi-az-mysql.yaml");
    let stack = StackRef::new("default", "multi-az-mysql", Some("uid-1"));
    let nodes = desired(&stack, &ws.spec, None);
    let d = nodes.iter().find(|n| n.id == id()).unwrap();
    let mut known = std::collections::HashMap::new();
    let observed =
        |kind, role: &str, id: &str| Observed::new(kind, "default/multi-az-mysql", role, id);
    known.insert(
        storage::id(storage::FRONTEND),
        observed(storage::BUCKET, storage::FRONTEND, "site")
            .prop("domain", "site.s3.eu-central-1.amazonaws.com"),
    );
    known.insert(
        storage::id(&storage::data_role("uploads")),
        observed(storage::BUCKET, "data-uploads", "up")
            .prop("domain", "up.s3.eu-central-1.amazonaws.com"),
    );
    known.insert(
        NodeId::new(backend::LOAD_BALANCER, "api"),
        observed(backend::LOAD_BALANCER, "api", "lb").prop("dnsName", "lb.elb.amazonaws.com"),
    );
    known.insert(access_id(), observed(ORIGIN_ACCESS_CONTROL, CDN, "E2OAC"));
    let (resolved, complete) = resolve(d, &known);
    assert!(complete);
    let props = Value::Object(resolved.props.clone().into_iter().collect());
    let made = config::distribution_config(&props, "ref", true).unwrap();
    assert_eq!(made.default_root_object(), Some("index.html"));
    let back = config::props_of(&made, None);
    for (k, v) in &resolved.props {
        assert_eq!(&back[k], v, "{k}");
    }
    // The origins: the site and the uploads through the access control, the API over HTTP.
    let origins = back["origins"].as_array().unwrap();
    assert_eq!(origins.len(), 3);
    let origin = |id: &str| {
        origins
            .iter()
            .find(|o| o["id"] == json!(id))
            .unwrap()
            .clone()
    };
    assert_eq!(origin("tier-api")["protocol"], json!("http-only"));
    assert_eq!(origin("bucket-frontend")["accessControl"], json!("E2OAC"));
    assert_eq!(
        origin("bucket-data-uploads")["accessControl"],
        json!("E2OAC")
    );
    let mut served = served_buckets(&ws.spec);
    served.sort();
    assert_eq!(
        served,
        vec!["data-uploads".to_owned(), "frontend".to_owned()]
    );
}
