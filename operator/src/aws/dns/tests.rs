use super::*;
use crate::api::validate::parse_manifest;

fn example(file: &str) -> crate::api::WebStack {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file),
    )
    .unwrap();
    parse_manifest(&text).unwrap()
}

#[test]
fn reference_003_zone_holds_apex_and_www_aliases_to_the_cdn_and_the_validation_records() {
    let ws = example("tekamolo.yaml");
    let stack = StackRef::new("default", "tekamolo", Some("uid-1"));
    let cert = certificates::id("tekamolo");
    let cdn = crate::aws::cdn::id();
    let targets = Targets {
        cdn: Some(cdn.clone()),
        certificates: vec![(
            cert.clone(),
            vec!["tekamolo.info".into(), "www.tekamolo.info".into()],
        )],
    };
    let nodes = desired(&stack, &ws.spec, None, &targets);
    let roles: Vec<&str> = nodes.iter().map(|n| n.id.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "zone",
            "apex-a",
            "apex-aaaa",
            "www-a",
            "www-aaaa",
            "validation-tekamolo.info",
            "validation-www.tekamolo.info"
        ]
    );
    let www = &nodes[3];
    assert_eq!(www.props["name"], Prop::from("www.tekamolo.info."));
    assert_eq!(www.props["zone"], Prop::Ref(zone_id()));
    let Prop::Map(alias) = &www.props["alias"] else {
        panic!()
    };
    assert_eq!(alias["dnsName"], Prop::Attr(cdn, "domainName".into()));
    assert_eq!(alias["zoneId"], Prop::from(CLOUDFRONT_ZONE));
    // A validation record is written while its certificate waits for it.
    let validation = &nodes[5];
    assert_eq!(validation.early, vec![cert.clone()]);
    assert!(!validation.ready_dependencies().contains(&cert));
    assert_eq!(
        validation.props["name"],
        Prop::Attr(cert, "validation/tekamolo.info/name".into())
    );
}

#[test]
fn an_existing_zone_is_written_into_and_never_created() {
    let ws = example("stockholm-two-tier.yaml");
    let stack = StackRef::new("default", "sthlm", Some("uid-1"));
    let regional = certificates::id("site");
    let global = certificates::global_id("site");
    let names = vec!["example.com".to_owned(), "www.example.com".to_owned()];
    let targets = Targets {
        cdn: Some(crate::aws::cdn::id()),
        certificates: vec![(regional.clone(), names.clone()), (global, names)],
    };
    let nodes = desired(&stack, &ws.spec, Some("Z0EXISTING"), &targets);
    assert!(nodes.iter().all(|n| n.id.kind == RECORD));
    assert!(nodes
        .iter()
        .all(|n| n.props["zone"] == Prop::from("Z0EXISTING")));
    // One validation record per name: the regional certificate's.
    let validations: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.id.role.starts_with("validation-"))
        .collect();
    assert_eq!(validations.len(), 2);
    assert!(validations
        .iter()
        .all(|n| n.early == vec![regional.clone()]));
    // Without the zone there is nothing to write into.
    assert!(desired(&stack, &ws.spec, None, &targets).is_empty());
}
