use super::*;
use crate::api::WebStack;

fn spec(yaml: &str) -> WebStackSpec {
    let stack: WebStack = serde_yaml::from_str(yaml).expect("a WebStack");
    stack.spec
}

fn stockholm() -> WebStackSpec {
    spec(include_str!("../../../../examples/stockholm-two-tier.yaml"))
}

fn watched() -> Watched {
    Watched {
        database: Some(NodeId::new(crate::aws::database::DB_INSTANCE, "database")),
        cache: Some(crate::aws::cache::group_id()),
        cdn: Some(crate::aws::cdn::id()),
        ..Default::default()
    }
}

fn attr(kind: Kind, role: &str, a: &str) -> Prop {
    Prop::Attr(NodeId::new(kind, role), a.to_owned())
}

#[test]
fn each_metric_is_watched_through_the_dimensions_of_what_it_measures() {
    let s = stockholm();
    let nodes = desired(&StackRef::new("shop", "web", Some("uid-1")), &s, &watched());
    let by_role = |r: &str| {
        nodes
            .iter()
            .find(|n| n.id.role == r)
            .unwrap_or_else(|| panic!("an alarm {r}"))
    };
    let dims = |r: &str| by_role(r).props["dimensions"].clone();
    let one = |k: &str, v: Prop| Prop::Map(BTreeMap::from([(k.to_owned(), v)]));

    assert_eq!(
        dims("web-5xx"),
        one("LoadBalancer", attr(LOAD_BALANCER, "web", "arnSuffix"))
    );
    assert_eq!(
        dims("web-latency"),
        Prop::Map(BTreeMap::from([
            (
                "LoadBalancer".to_owned(),
                attr(LOAD_BALANCER, "web", "arnSuffix")
            ),
            (
                "TargetGroup".to_owned(),
                attr(TARGET_GROUP, "web", "arnSuffix")
            ),
        ]))
    );
    assert_eq!(
        dims("api-cpu"),
        one(
            "AutoScalingGroupName",
            attr(AUTO_SCALING_GROUP, "api", "name")
        )
    );
    assert_eq!(
        by_role("api-memory").props["namespace"],
        Prop::from("CWAgent")
    );
    assert_eq!(
        dims("database-storage"),
        one(
            "DBInstanceIdentifier",
            attr(crate::aws::database::DB_INSTANCE, "database", "identifier")
        )
    );
    assert_eq!(
        dims("cache-cpu"),
        one(
            "CacheClusterId",
            Prop::Attr(crate::aws::cache::group_id(), "primaryCluster".into())
        )
    );
    let storage = by_role("database-storage");
    assert_eq!(storage.props["statistic"], Prop::from("Minimum"));
    assert_eq!(storage.props["comparison"], Prop::from("LessThanThreshold"));
    assert_eq!(storage.props["missingData"], Prop::from("breaching"));
    assert_eq!(
        storage.props["threshold"],
        Prop::Value(Value::from(2_000_000_000.0))
    );
    let five = by_role("web-5xx");
    assert_eq!(five.props["metric"], Prop::from("HTTPCode_ELB_5XX_Count"));
    assert_eq!(five.props["statistic"], Prop::from("Sum"));
    assert_eq!(five.props["period"], Prop::from(300));
    assert_eq!(five.props["comparison"], Prop::from("GreaterThanThreshold"));
}

#[test]
fn the_cdns_alarm_watches_the_distribution_in_the_global_region() {
    let s = stockholm();
    let stack = StackRef::new("shop", "web", Some("uid-1"));
    let nodes = desired(&stack, &s, &watched());
    assert_eq!(nodes.len(), s.monitoring.as_ref().unwrap().alarms.len());
    let cdn = nodes.iter().find(|n| n.id.role == "cdn-5xx").unwrap();
    assert_eq!(
        cdn.id.kind, ALARM,
        "in the stack's region when that is the global one"
    );
    assert_eq!(cdn.props["namespace"], Prop::from("AWS/CloudFront"));
    assert_eq!(cdn.props["metric"], Prop::from("5xxErrorRate"));
    let Prop::Map(dimensions) = &cdn.props["dimensions"] else {
        panic!()
    };
    assert_eq!(
        dimensions["DistributionId"],
        Prop::Ref(crate::aws::cdn::id())
    );
    assert_eq!(dimensions["Region"], Prop::from("Global"));
    // Elsewhere: in the global region, telling the topic there.
    let topic = NodeId::new(crate::aws::notify::CDN_ALARM_TOPIC, "alarms");
    let elsewhere = Watched {
        cdn_elsewhere: Some(Some(topic.clone())),
        ..watched()
    };
    let nodes = desired(&stack, &s, &elsewhere);
    let cdn = nodes.iter().find(|n| n.id.role == "cdn-5xx").unwrap();
    assert_eq!(cdn.id.kind, CDN_ALARM);
    assert_eq!(cdn.props["topic"], Prop::Attr(topic, "arn".into()));
    assert!(nodes
        .iter()
        .filter(|n| n.id.role != "cdn-5xx")
        .all(|n| n.id.kind == ALARM));
    assert!(unsupported(&s).is_empty());
}

#[test]
fn names_sit_under_the_stack_prefix_and_differ_per_owner() {
    let a = StackRef::new("shop", "web", Some("uid-1"));
    let b = StackRef::new("shop", "web", Some("uid-2"));
    let n = name(&a, "high-5xx");
    assert!(n.starts_with("webstack/shop/web/high-5xx-"), "{n}");
    assert!(crate::aws::tags::derived_name(&n), "{n}");
    assert_ne!(n, name(&b, "high-5xx"));
}

#[test]
fn a_watched_memory_is_published_by_the_tier() {
    assert_eq!(memory_watched(&stockholm()), vec!["api".to_owned()]);
}

#[test]
fn alarms_are_told_to_the_topic() {
    let s = stockholm();
    let topic = NodeId::new(Kind("AlarmTopic"), "alarms");
    let w = Watched {
        topic: Some(topic.clone()),
        ..watched()
    };
    let nodes = desired(&StackRef::new("shop", "web", Some("uid-1")), &s, &w);
    assert!(nodes
        .iter()
        .all(|n| n.props["topic"] == Prop::Attr(topic.clone(), "arn".into())));
    assert!(nodes.iter().all(|n| n.dependencies().contains(&topic)));
}
