//! The operator's own check of a WebStack, run before any AWS call: the CLI and clusters that
//! do not enforce the CRD's rules get the same answer as a cluster that does.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{NatGateways, NetworkSpec, SubnetSet, WebStack, WebStackSpec};

/// One invalid field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, such as `spec.network.vpcCidr`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every invalid field of a spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

impl ValidationErrors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ValidationErrors::default();
        e.add(path, message);
        e
    }
}

/// Most availability zones a region has.
pub const MAX_AZS: usize = 6;

/// Tag keys the operator writes itself.
pub const RESERVED_TAG_PREFIXES: &[&str] = &["webstack.io/", "aws:"];

/// Reads a WebStack manifest (YAML or JSON). A field of the wrong type or an unknown field is
/// reported with its path.
pub fn parse_manifest(text: &str) -> Result<WebStack, ValidationErrors> {
    let value: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ValidationErrors::single("(file)", format!("not valid YAML: {e}")))?;
    let mut errors = ValidationErrors::default();
    match value.get("apiVersion").and_then(|v| v.as_str()) {
        Some("webstack.io/v1alpha1") => {}
        Some(other) => errors.add(
            "apiVersion",
            format!("is {other:?}, expected \"webstack.io/v1alpha1\""),
        ),
        None => errors.add("apiVersion", "is required (\"webstack.io/v1alpha1\")"),
    }
    match value.get("kind").and_then(|v| v.as_str()) {
        Some("WebStack") => {}
        Some(other) => errors.add("kind", format!("is {other:?}, expected \"WebStack\"")),
        None => errors.add("kind", "is required (\"WebStack\")"),
    }
    if !errors.0.is_empty() {
        return Err(errors);
    }
    let stack: WebStack = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." {
            "(root)".to_owned()
        } else {
            path
        };
        let message = e.inner().to_string();
        // serde_yaml appends a position that refers to the re-serialized value, not the file.
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ValidationErrors::single(path, message)
    })?;
    validate(&stack)?;
    Ok(stack)
}

/// Checks a whole WebStack: metadata and spec.
pub fn validate(stack: &WebStack) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    match stack.metadata.name.as_deref() {
        None | Some("") => errors.add("metadata.name", "is required"),
        Some(name) => check_dns_label(&mut errors, "metadata.name", name, 40),
    }
    if let Some(ns) = stack.metadata.namespace.as_deref() {
        check_dns_label(&mut errors, "metadata.namespace", ns, 63);
    }
    validate_spec(&stack.spec, &mut errors);
    if errors.0.is_empty() {
        check_schema(stack)?;
        check_cel(stack)
    } else {
        Err(errors)
    }
}

fn crd_schema() -> &'static serde_json::Value {
    use std::sync::OnceLock;
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use kube::CustomResourceExt;
        let crd = WebStack::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("a derived CRD has a schema");
        serde_json::to_value(schema).expect("the schema serializes")
    })
}

fn as_object(stack: &WebStack) -> Result<serde_json::Value, ValidationErrors> {
    let mut object = serde_json::to_value(stack)
        .map_err(|e| ValidationErrors::single("(root)", e.to_string()))?;
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    Ok(object)
}

/// The CRD's OpenAPI bounds (minimum, maximum, lengths, item counts, patterns), checked as the
/// API server checks them.
pub fn check_schema(stack: &WebStack) -> Result<(), ValidationErrors> {
    let object = as_object(stack)?;
    let mut errors = ValidationErrors::default();
    walk_schema(crd_schema(), &object, "", &mut errors);
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn walk_schema(
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
    errors: &mut ValidationErrors,
) {
    use serde_json::Value;
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    let shown = if path.is_empty() { "(root)" } else { path };
    match value {
        Value::Number(n) => {
            let v = n.as_f64().unwrap_or_default();
            if let Some(min) = num("minimum").filter(|m| v < *m) {
                errors.add(shown, format!("{n} is less than the minimum {min}"));
            }
            if let Some(max) = num("maximum").filter(|m| v > *m) {
                errors.add(shown, format!("{n} is more than the maximum {max}"));
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as f64;
            if let Some(min) = num("minLength").filter(|m| len < *m) {
                errors.add(shown, format!("must be at least {min} characters long"));
            }
            if let Some(max) = num("maxLength").filter(|m| len > *m) {
                errors.add(shown, format!("must be at most {max} characters long"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                if let Ok(re) = regex::Regex::new(pattern) {
                    if !re.is_match(s) {
                        errors.add(shown, format!("{s:?} does not match {pattern:?}"));
                    }
                }
            }
        }
        Value::Array(items) => {
            let len = items.len() as f64;
            if let Some(min) = num("minItems").filter(|m| len < *m) {
                errors.add(shown, format!("needs at least {min} items"));
            }
            if let Some(max) = num("maxItems").filter(|m| len > *m) {
                errors.add(
                    shown,
                    format!("has {} items; at most {max} are allowed", items.len()),
                );
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk_schema(s, v, &child, errors);
                } else if let Some(s) = additional {
                    walk_schema(s, v, &format!("{path}[{k}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// The CRD's own CEL rules (`x-kubernetes-validations`), evaluated as a current API server
/// does, so that a cluster that does not enforce them, and the CLI, refuse the same specs.
pub fn check_cel(stack: &WebStack) -> Result<(), ValidationErrors> {
    let object = as_object(stack)?;
    kube::core::cel::Validator::new()
        .validate(crd_schema(), &object, None)
        .map_err(|errs| {
            ValidationErrors(
                errs.into_iter()
                    .map(|e| FieldError {
                        path: cel_path(&e.field_path),
                        message: e.message,
                    })
                    .collect(),
            )
        })
}

/// kube-cel paths name the object's root as `.`-separated fields; ours start at `spec.` or
/// `metadata.` as kubectl shows them.
fn cel_path(path: &str) -> String {
    let p = path.trim_start_matches('.');
    if p.is_empty() {
        "(root)".to_owned()
    } else {
        p.to_owned()
    }
}

/// Names end up in AWS names with role suffixes (`<name>-load-balancer`); 40 characters keep
/// every such name within AWS's limits.
fn check_dns_label(errors: &mut ValidationErrors, path: &str, value: &str, max: usize) {
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_chars || value.starts_with('-') || value.ends_with('-') {
        errors.add(path, format!("{value:?} must consist of lower-case letters, digits and '-', starting and ending with a letter or digit"));
    } else if value.len() > max {
        errors.add(
            path,
            format!(
                "{value:?} is {} characters long; at most {max} are allowed",
                value.len()
            ),
        );
    }
}

fn validate_spec(spec: &WebStackSpec, errors: &mut ValidationErrors) {
    if let Some(region) = &spec.region {
        if !is_region(region) {
            errors.add(
                "spec.region",
                format!("{region:?} is not an AWS region name such as \"eu-west-1\""),
            );
        }
    }
    for (key, value) in &spec.tags {
        let path = format!("spec.tags[{key}]");
        if key.is_empty() || key.len() > 128 {
            errors.add(&path, "tag keys must be 1 to 128 characters long");
        }
        if value.len() > 256 {
            errors.add(&path, "tag values must be at most 256 characters long");
        }
        if let Some(prefix) = RESERVED_TAG_PREFIXES.iter().find(|p| key.starts_with(*p)) {
            errors.add(&path, format!("keys starting with {prefix:?} are reserved"));
        }
        if key == "Name" {
            errors.add(
                &path,
                "the Name tag is set by the operator for each resource",
            );
        }
    }
    validate_network(&spec.network, spec.region.as_deref(), errors);
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// Parses an IPv4 CIDR whose host bits are zero.
pub fn parse_cidr(s: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = s
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 CIDR such as \"10.0.0.0/16\""))?;
    if net.network() != net.addr() {
        return Err(format!(
            "{s:?} has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn validate_network(net: &NetworkSpec, region: Option<&str>, errors: &mut ValidationErrors) {
    let p = "spec.network";
    let vpc = match parse_cidr(&net.vpc_cidr) {
        Ok(v) if !(16..=24).contains(&v.prefix_len()) => {
            errors.add(
                format!("{p}.vpcCidr"),
                format!(
                    "/{} is outside the range AWS allows for a VPC here (/16 to /24)",
                    v.prefix_len()
                ),
            );
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            errors.add(format!("{p}.vpcCidr"), e);
            None
        }
    };
    let zones = if net.availability_zones.is_empty() {
        let n = net.az_count.unwrap_or(2) as usize;
        if n == 0 || n > MAX_AZS {
            errors.add(
                format!("{p}.azCount"),
                format!("{n} is not between 1 and {MAX_AZS}"),
            );
        }
        n
    } else {
        if net.az_count.is_some() {
            errors.add(
                format!("{p}.azCount"),
                "set either azCount or availabilityZones, not both",
            );
        }
        if net.availability_zones.len() > MAX_AZS {
            errors.add(
                format!("{p}.availabilityZones"),
                format!("at most {MAX_AZS} zones"),
            );
        }
        for (i, az) in net.availability_zones.iter().enumerate() {
            let path = format!("{p}.availabilityZones[{i}]");
            let region_part = az.trim_end_matches(|c: char| c.is_ascii_lowercase());
            if region_part == az || !is_region(region_part) {
                errors.add(
                    &path,
                    format!("{az:?} is not an availability zone name such as \"eu-west-1a\""),
                );
            } else if let Some(r) = region {
                if region_part != r {
                    errors.add(&path, format!("{az:?} is not in the stack's region {r:?}"));
                }
            }
            if net.availability_zones[..i].contains(az) {
                errors.add(&path, format!("{az:?} is listed twice"));
            }
        }
        net.availability_zones.len()
    };
    let mut subnets: Vec<(String, Ipv4Net)> = Vec::new();
    if let Some(vpc) = vpc {
        check_subnets(
            &format!("{p}.publicSubnets"),
            &net.public_subnets,
            vpc,
            zones,
            SubnetHalf::Public,
            errors,
            &mut subnets,
        );
        if let Some(private) = &net.private_subnets {
            check_subnets(
                &format!("{p}.privateSubnets"),
                private,
                vpc,
                zones,
                SubnetHalf::Private,
                errors,
                &mut subnets,
            );
        }
    }
    for (i, (path_a, a)) in subnets.iter().enumerate() {
        for (path_b, b) in &subnets[..i] {
            if a.contains(&b.network()) || b.contains(&a.network()) {
                errors.add(path_a, format!("{a} overlaps {b} of {path_b}"));
            }
        }
    }
    if net.nat_gateways != NatGateways::None && net.private_subnets.is_none() {
        errors.add(
            format!("{p}.natGateways"),
            "NAT gateways serve private subnets; set privateSubnets or natGateways: None",
        );
    }
    for (i, e) in net.endpoints.interface.iter().enumerate() {
        if net.endpoints.interface[..i].contains(e) {
            errors.add(
                format!("{p}.endpoints.interface[{i}]"),
                format!("{e:?} is listed twice"),
            );
        }
    }
    for (i, c) in net.ssh_allowed_cidrs.iter().enumerate() {
        let path = format!("{p}.sshAllowedCidrs[{i}]");
        match parse_cidr(c) {
            Ok(n) if n.prefix_len() == 0 => errors.add(
                &path,
                "0.0.0.0/0 opens SSH to the whole internet; list the trusted ranges",
            ),
            Ok(_) => {}
            Err(e) => errors.add(&path, e),
        }
    }
    let sg = &net.security_groups;
    let sp = format!("{p}.securityGroups");
    if sg.load_balancer_ports.is_empty() {
        errors.add(format!("{sp}.loadBalancerPorts"), "needs at least one port");
    }
    for (i, port) in sg.load_balancer_ports.iter().enumerate() {
        let path = format!("{sp}.loadBalancerPorts[{i}]");
        if *port == 0 {
            errors.add(&path, "0 is not a port");
        } else if *port == 22 {
            errors.add(
                &path,
                "22 (SSH) must not be open to the internet; use sshAllowedCidrs",
            );
        } else if sg.load_balancer_ports[..i].contains(port) {
            errors.add(&path, format!("{port} is listed twice"));
        }
    }
    for (field, port) in [
        ("appPort", Some(sg.app_port)),
        ("databasePort", sg.database_port),
        ("cachePort", sg.cache_port),
    ] {
        if port == Some(0) {
            errors.add(format!("{sp}.{field}"), "0 is not a port");
        }
    }
    if !net.ssh_allowed_cidrs.is_empty() && sg.app_port == 22 {
        errors.add(
            format!("{sp}.appPort"),
            "22 is reserved for SSH from sshAllowedCidrs",
        );
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SubnetHalf {
    Public,
    Private,
}

/// The prefix length of computed subnets: the VPC's plus 4, at most 28.
pub fn default_prefix(vpc: Ipv4Net) -> u8 {
    (vpc.prefix_len() + 4).min(28)
}

/// Computed CIDRs: the VPC is cut into blocks; public subnets take blocks 0, 1, 2, ...;
/// private subnets take blocks from the middle on. Adding a zone never moves a subnet.
pub fn computed_cidrs(
    vpc: Ipv4Net,
    prefix: u8,
    zones: usize,
    half: SubnetHalf,
) -> Result<Vec<Ipv4Net>, String> {
    if prefix < vpc.prefix_len() || prefix > 28 {
        return Err(format!(
            "/{prefix} must be between the VPC's /{} and /28",
            vpc.prefix_len()
        ));
    }
    let blocks = 1u64 << (prefix - vpc.prefix_len());
    let start = match half {
        SubnetHalf::Public => 0,
        SubnetHalf::Private => blocks / 2,
    };
    if blocks < 2 || zones as u64 > blocks / 2 {
        return Err(format!(
            "a /{} VPC holds {} /{prefix} blocks per half, fewer than the {zones} zones",
            vpc.prefix_len(),
            blocks / 2
        ));
    }
    let size = 1u64 << (32 - prefix);
    let base = u32::from(vpc.network()) as u64;
    (0..zones as u64)
        .map(|i| {
            let addr = Ipv4Addr::from((base + (start + i) * size) as u32);
            Ipv4Net::new(addr, prefix).map_err(|e| e.to_string())
        })
        .collect()
}

fn check_subnets(
    path: &str,
    set: &SubnetSet,
    vpc: Ipv4Net,
    zones: usize,
    half: SubnetHalf,
    errors: &mut ValidationErrors,
    all: &mut Vec<(String, Ipv4Net)>,
) {
    if set.cidrs.is_empty() {
        let prefix = set.prefix_length.unwrap_or_else(|| default_prefix(vpc));
        match computed_cidrs(vpc, prefix, zones, half) {
            Ok(nets) => all.extend(
                nets.into_iter()
                    .map(|n| (format!("{path}.prefixLength"), n)),
            ),
            Err(e) => errors.add(format!("{path}.prefixLength"), e),
        }
        return;
    }
    if set.prefix_length.is_some() {
        errors.add(
            format!("{path}.prefixLength"),
            "applies to computed subnets only; remove it or the cidrs",
        );
    }
    if set.cidrs.len() != zones {
        errors.add(
            format!("{path}.cidrs"),
            format!(
                "lists {} CIDRs for {zones} availability zones; give one per zone",
                set.cidrs.len()
            ),
        );
    }
    for (i, c) in set.cidrs.iter().enumerate() {
        let cp = format!("{path}.cidrs[{i}]");
        match parse_cidr(c) {
            Ok(n) if !vpc.contains(&n) => {
                errors.add(&cp, format!("{n} is not inside the VPC CIDR {vpc}"))
            }
            Ok(n) if n.prefix_len() > 28 => errors.add(
                &cp,
                format!(
                    "/{} is smaller than AWS's smallest subnet (/28)",
                    n.prefix_len()
                ),
            ),
            Ok(n) => all.push((cp, n)),
            Err(e) => errors.add(&cp, e),
        }
    }
}

/// The subnet CIDRs of a valid set, in zone order.
pub fn subnet_cidrs(set: &SubnetSet, vpc: Ipv4Net, zones: usize, half: SubnetHalf) -> Vec<String> {
    if set.cidrs.is_empty() {
        let prefix = set.prefix_length.unwrap_or_else(|| default_prefix(vpc));
        computed_cidrs(vpc, prefix, zones, half)
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        set.cidrs.clone()
    }
}

#[cfg(test)]
mod tests;
