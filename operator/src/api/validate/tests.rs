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
            err.0
                .iter()
                .any(|e| e.path == field || e.path.starts_with(&format!("{field}."))),
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

#[test]
fn regions_look_like_regions() {
    for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-4", "eu-north-1"] {
        assert!(is_region(ok), "{ok}");
    }
    for bad in ["mars", "eu-west", "EU-WEST-1", "eu-west-x", "-west-1"] {
        assert!(!is_region(bad), "{bad}");
    }
}
