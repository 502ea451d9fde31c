use crate::aws::tags::derived_name;
use serde_json::json;

use super::*;
use crate::api::validate::parse_manifest;
use crate::engine::{Graph, Prop};

fn spec(file: &str) -> crate::api::WebStack {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(file);
    parse_manifest(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn value<'a>(node: &'a Node, key: &str) -> &'a serde_json::Value {
    match &node.props[key] {
        Prop::Value(v) => v,
        other => panic!("{key} is {other:?}"),
    }
}

#[test]
fn a_multi_az_mysql_database_in_the_private_subnets() {
    let ws = spec("multi-az-mysql.yaml");
    let stack = StackRef::new("default", "multi-az-mysql", Some("uid-1"));
    let subnets = vec![
        NodeId::new(Kind("Subnet"), "private-a"),
        NodeId::new(Kind("Subnet"), "private-b"),
    ];
    let sg = NodeId::new(Kind("SecurityGroup"), "database");
    let nodes = desired(&stack, &ws.spec, subnets.clone(), sg.clone());
    assert_eq!(nodes.len(), 3);
    let instance = nodes.iter().find(|n| n.id.kind == DB_INSTANCE).unwrap();
    assert_eq!(value(instance, "engine"), &json!("mysql"));
    assert_eq!(value(instance, "multiAz"), &json!(true));
    assert_eq!(value(instance, "encrypted"), &json!(true));
    assert_eq!(value(instance, "publiclyAccessible"), &json!(false));
    assert_eq!(instance.props["securityGroups"], Prop::Refs(vec![sg]));
    let group = nodes.iter().find(|n| n.id.kind == DB_SUBNET_GROUP).unwrap();
    assert_eq!(group.props["subnets"], Prop::Refs(subnets));
    let identifier = value(instance, "identifier").as_str().unwrap();
    assert!(identifier.len() <= 63 && identifier.starts_with("default-multi-az-mysql-database-"));
    // The nodes form a graph with the instance after both groups.
    let mut all = nodes.clone();
    all.push(Node::new(Kind("Subnet"), "n", "private-a", ""));
    all.push(Node::new(Kind("Subnet"), "n", "private-b", ""));
    all.push(Node::new(Kind("SecurityGroup"), "n", "database", ""));
    let order = Graph::new(all).unwrap().order();
    let pos = |k: Kind| order.iter().position(|id| id.kind == k).unwrap();
    assert!(pos(DB_SUBNET_GROUP) < pos(DB_INSTANCE) && pos(DB_PARAMETER_GROUP) < pos(DB_INSTANCE));
}

#[test]
fn the_parameter_group_follows_the_engine_family() {
    let ws = spec("stockholm-two-tier.yaml");
    let rds = ws.spec.database.as_ref().unwrap().rds.as_ref().unwrap();
    assert_eq!(
        engine_and_family(rds),
        ("postgres", "postgres16".to_owned())
    );
    let mut mysql = rds.clone();
    mysql.engine = DbEngine::Mysql;
    mysql.version = "8.0.39".into();
    assert_eq!(engine_and_family(&mysql).1, "mysql8.0");
    // A new major version is a new group (a new role), never a change to the old one.
    let stack = StackRef::new("default", "s", Some("uid-1"));
    let roles = |spec: &WebStackSpec| -> Vec<String> {
        desired(
            &stack,
            spec,
            vec![],
            NodeId::new(Kind("SecurityGroup"), "database"),
        )
        .into_iter()
        .filter(|n| n.id.kind == DB_PARAMETER_GROUP)
        .map(|n| n.id.role)
        .collect()
    };
    let mut newer = ws.spec.clone();
    newer
        .database
        .as_mut()
        .unwrap()
        .rds
        .as_mut()
        .unwrap()
        .version = "17".into();
    assert_eq!(roles(&ws.spec), vec!["database-postgres16".to_owned()]);
    assert_eq!(roles(&newer), vec!["database-postgres17".to_owned()]);
}

#[test]
fn no_database_or_an_external_one_builds_nothing() {
    let ws = spec("starttech.yaml");
    let stack = StackRef::new("default", "s", Some("uid-1"));
    assert!(desired(
        &stack,
        &ws.spec,
        vec![],
        NodeId::new(Kind("SecurityGroup"), "x")
    )
    .is_empty());
}

#[test]
fn only_names_of_the_operators_shape_are_read_for_tags() {
    assert!(derived_name("default-shop-database-0badc0de"));
    assert!(!derived_name("default"));
    assert!(!derived_name("my-own-group"));
}
