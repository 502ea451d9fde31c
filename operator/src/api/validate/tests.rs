use ipnet::Ipv4Net;

use super::*;

fn repo_file(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

/// Every file of `tests/invalid/` names, in its first line, the field its error must name.
#[test]
fn every_invalid_spec_is_rejected_naming_its_field() {
    let dir = repo_file("tests/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 15, "at least 15 invalid specs");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let field = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# field: ")
            .expect("a '# field:' header")
            .to_owned();
        let err = parse_manifest(&text).expect_err(&format!("{} must be rejected", f.display()));
        assert!(
            err.0.iter().any(|e| e.path == field
                || e.path.starts_with(&format!("{field}."))
                || e.path.starts_with(&format!("{field}["))),
            "{}: expected an error on {field}, got: {err}",
            f.display()
        );
    }
}

#[test]
fn the_examples_are_valid() {
    for entry in std::fs::read_dir(repo_file("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            parse_manifest(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn computed_subnets_are_stable_as_zones_are_added() {
    let vpc: Ipv4Net = "10.0.0.0/16".parse().unwrap();
    let two = computed_cidrs(vpc, 20, 2, SubnetHalf::Public).unwrap();
    let three = computed_cidrs(vpc, 20, 3, SubnetHalf::Public).unwrap();
    assert_eq!(two[..], three[..2]);
    assert_eq!(three[2].to_string(), "10.0.32.0/20");
    let private = computed_cidrs(vpc, 20, 3, SubnetHalf::Private).unwrap();
    assert_eq!(private[0].to_string(), "10.0.128.0/20");
    assert!(
        computed_cidrs(vpc, 17, 2, SubnetHalf::Public).is_err(),
        "a /17 cut holds one block per half"
    );
    assert!(computed_cidrs(vpc, 29, 1, SubnetHalf::Public).is_err());
}

#[test]
fn cidrs_must_be_network_addresses() {
    assert!(parse_cidr("10.0.0.0/16").is_ok());
    let e = parse_cidr("10.0.0.1/16").unwrap_err();
    assert!(e.contains("did you mean \"10.0.0.0/16\""), "{e}");
    assert!(parse_cidr("10.0.0.0").is_err());
    assert!(parse_cidr("::/0").is_err());
}

#[test]
fn all_errors_are_reported_at_once() {
    let text = "apiVersion: webstack.io/v1alpha1\nkind: WebStack\nmetadata: {name: x}\nspec:\n  region: nowhere\n  network:\n    vpcCidr: banana\n    sshAllowedCidrs: [0.0.0.0/0]\n";
    let err = parse_manifest(text).unwrap_err();
    let paths: Vec<&str> = err.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "spec.region",
            "spec.network.vpcCidr",
            "spec.network.sshAllowedCidrs[0]"
        ]
    );
}

fn base(spec: &str) -> String {
    format!("apiVersion: webstack.io/v1alpha1\nkind: WebStack\nmetadata: {{name: unusual}}\nspec:\n{spec}")
}

/// Well-formed specs that are merely unusual stay valid.
#[test]
fn unusual_but_well_formed_specs_are_accepted() {
    let cases = [
        // A region the table does not know yet, named with its zones.
        "  region: ap-southeast-9\n  network:\n    vpcCidr: 10.0.0.0/16\n    availabilityZones: [ap-southeast-9a, ap-southeast-9b]\n",
        // The zones alone say the region.
        "  network:\n    vpcCidr: 10.0.0.0/16\n    availabilityZones: [eu-west-1a, eu-west-1c]\n",
        // Tag keys with capitals and the characters AWS allows.
        "  region: eu-west-1\n  tags: {CostCenter: '4711', 'Owner:Team': web-ops@example.com, Ümlaut Key: 'a = b + c'}\n  network:\n    vpcCidr: 10.0.0.0/16\n",
        // A wildcard certificate covers one label; an image by registry, port and digest.
        "  region: eu-west-1\n  network:\n    vpcCidr: 10.0.0.0/16\n    azCount: 3\n  frontend: {kind: S3, s3: {}}\n  backend:\n    tiers:\n    - name: api\n      runtime: InCluster\n      inCluster: {image: 'registry.example.com:5000/team/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'}\n  certificates:\n  - {name: site, domain: example.com, subjectAlternativeNames: ['*.example.com']}\n  cdn:\n    aliases: [example.com, www.example.com, shop.example.com]\n    certificate: site\n  dns:\n    zone: example.com\n    records:\n    - {name: '@', target: cdn}\n    - {name: shop, target: cdn}\n",
    ];
    for spec in cases {
        let text = base(spec);
        if let Err(e) = parse_manifest(&text) {
            panic!("refused: {e}\n{text}");
        }
    }
}

#[test]
fn zones_define_the_region_when_the_spec_names_none() {
    let text = base(
        "  network:\n    vpcCidr: 10.0.0.0/16\n    availabilityZones: [eu-north-1a, eu-north-1b]\n",
    );
    let stack = parse_manifest(&text).unwrap();
    assert_eq!(declared_region(&stack.spec).as_deref(), Some("eu-north-1"));
    // The caller's default region does not override the zones.
    assert!(parse_manifest_in(&text, Some("us-east-1")).is_ok());
}

#[test]
fn the_default_region_is_checked_like_a_declared_one() {
    let text = base("  network:\n    vpcCidr: 10.0.0.0/16\n    azCount: 4\n");
    assert!(parse_manifest_in(&text, Some("us-east-1")).is_ok());
    let e = parse_manifest_in(&text, Some("eu-west-1")).unwrap_err();
    assert_eq!(e.0[0].path, "spec.network.azCount", "{e}");
    let moved = format!("{text}status: {{region: eu-west-2}}\n");
    let e = parse_manifest_in(&moved, Some("us-east-1")).unwrap_err();
    assert_eq!(e.0[0].path, "spec.region", "{e}");
}

/// Messages that concern one item of a list name the item, with its index.
#[test]
fn cross_references_name_the_item_of_the_list() {
    let text = std::fs::read_to_string(repo_file("examples/fargate-serverless.yaml"))
        .unwrap()
        .replace(
            "- functionName: image-processor",
            "- functionName: thumbnails",
        );
    let e = parse_manifest(&text).unwrap_err();
    assert_eq!(
        e.0.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        vec!["spec.buckets[0].notifications[0].functionName"],
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("\"thumbnails\" is not a function of spec.functions"),
        "{e}"
    );
}
