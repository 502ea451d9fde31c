//! The network tier's own checks (CIDRs, zones, subnets, ports) and the subnet layout the
//! network area builds from a valid spec.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::regions::{self, MAX_AZS};
use super::ValidationErrors;
use crate::api::{NatGateways, NetworkSpec, SubnetSet};

/// The number of zones the stack uses, after checking them: explicit zones must be zone names
/// of one region (the stack's), `azCount` at most what the region has.
fn check_zones(net: &NetworkSpec, region: Option<&str>, errors: &mut ValidationErrors) -> usize {
    let p = "spec.network";
    if net.availability_zones.is_empty() {
        let n = net.az_count.unwrap_or(2) as usize;
        let most = region.and_then(regions::zone_count);
        if n == 0 || n > MAX_AZS {
            errors.add(
                format!("{p}.azCount"),
                format!("{n} is not between 1 and {MAX_AZS}"),
            );
        } else if let (Some(r), Some(most)) = (region, most.filter(|m| n > *m)) {
            errors.add(
                format!("{p}.azCount"),
                format!("{n} zones asked for, but {r} has {most}"),
            );
        }
        return n;
    }
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
    // Without a region, the first zone's region is the stack's and the others must agree.
    let first_region = net
        .availability_zones
        .first()
        .and_then(|z| regions::region_of_zone(z));
    let region = region.or(first_region);
    for (i, az) in net.availability_zones.iter().enumerate() {
        let path = format!("{p}.availabilityZones[{i}]");
        match regions::region_of_zone(az) {
            None => errors.add(
                &path,
                format!("{az:?} is not an availability zone name such as \"eu-west-1a\""),
            ),
            Some(zr) => {
                if let Some(r) = region.filter(|r| *r != zr) {
                    errors.add(&path, format!("{az:?} is not in the stack's region {r:?}"));
                }
            }
        }
        if net.availability_zones[..i].contains(az) {
            errors.add(&path, format!("{az:?} is listed twice"));
        }
    }
    if let Some((r, most)) = region.and_then(|r| regions::zone_count(r).map(|m| (r, m))) {
        if net.availability_zones.len() > most {
            errors.add(
                format!("{p}.availabilityZones"),
                format!(
                    "{} zones listed, but {r} has {most}",
                    net.availability_zones.len()
                ),
            );
        }
    }
    net.availability_zones.len()
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

/// Checks the network tier; `region` is the stack's region where it is known (from the spec,
/// its zones or the caller's default).
pub fn validate_network(net: &NetworkSpec, region: Option<&str>, errors: &mut ValidationErrors) {
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
    let zones = check_zones(net, region, errors);
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
