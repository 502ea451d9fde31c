//! The AWS regions the operator knows, with how many availability zones each offers, and the
//! names of regions and zones.
//!
//! AWS adds regions every year: a region missing here is still usable when the stack lists
//! its zones in `spec.network.availabilityZones` (the user names the region explicitly, and
//! the zones say how many there are). A typo in a region with `azCount` is refused.

/// Known regions and the number of availability zones each has (the most any account sees).
pub const REGIONS: &[(&str, usize)] = &[
    ("af-south-1", 3),
    ("ap-east-1", 3),
    ("ap-east-2", 3),
    ("ap-northeast-1", 4),
    ("ap-northeast-2", 4),
    ("ap-northeast-3", 3),
    ("ap-south-1", 3),
    ("ap-south-2", 3),
    ("ap-southeast-1", 3),
    ("ap-southeast-2", 3),
    ("ap-southeast-3", 3),
    ("ap-southeast-4", 3),
    ("ap-southeast-5", 3),
    ("ap-southeast-6", 3),
    ("ap-southeast-7", 3),
    ("ca-central-1", 3),
    ("ca-west-1", 3),
    ("cn-north-1", 3),
    ("cn-northwest-1", 3),
    ("eu-central-1", 3),
    ("eu-central-2", 3),
    ("eu-north-1", 3),
    ("eu-south-1", 3),
    ("eu-south-2", 3),
    ("eu-west-1", 3),
    ("eu-west-2", 3),
    ("eu-west-3", 3),
    ("il-central-1", 3),
    ("me-central-1", 3),
    ("me-south-1", 3),
    ("mx-central-1", 3),
    ("sa-east-1", 3),
    ("us-east-1", 6),
    ("us-east-2", 3),
    ("us-gov-east-1", 3),
    ("us-gov-west-1", 3),
    ("us-west-1", 3),
    ("us-west-2", 4),
];

/// The most availability zones any region has.
pub const MAX_AZS: usize = 6;

/// How many zones a known region has; `None` for a region the table does not know.
pub fn zone_count(region: &str) -> Option<usize> {
    REGIONS
        .iter()
        .find(|(name, _)| *name == region)
        .map(|(_, n)| *n)
}

/// Whether `s` has the shape of a region name (`eu-west-1`, `us-gov-west-1`), known or not.
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// The region of an availability zone name (`eu-west-1a` -> `eu-west-1`), when it has the
/// shape of one: a region name followed by one lower-case letter.
pub fn region_of_zone(zone: &str) -> Option<&str> {
    let region = zone.strip_suffix(|c: char| c.is_ascii_lowercase())?;
    is_region_name(region).then_some(region)
}

/// Why a region name is refused, if it is: malformed, or unknown while the stack does not list
/// its zones.
pub fn check_region(region: &str, zones_listed: bool) -> Result<(), String> {
    if !is_region_name(region) {
        return Err(format!(
            "{region:?} is not an AWS region name such as \"eu-west-1\""
        ));
    }
    if zone_count(region).is_none() && !zones_listed {
        let near: Vec<&str> = REGIONS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| {
                n.rsplit_once('-').map(|(p, _)| p) == region.rsplit_once('-').map(|(p, _)| p)
            })
            .collect();
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (known in that area: {})", near.join(", "))
        };
        return Err(format!(
            "{region:?} is not a region this operator knows{hint}; if it is a new AWS region, list its zones in spec.network.availabilityZones"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_have_their_shape() {
        for ok in ["eu-west-1", "us-gov-west-1", "ap-southeast-4", "eu-north-1"] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in ["mars", "eu-west", "EU-WEST-1", "eu-west-x", "-west-1"] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_regions_are_refused_unless_their_zones_are_listed() {
        assert!(check_region("eu-west-1", false).is_ok());
        let e = check_region("eu-central-9", false).unwrap_err();
        assert!(e.contains("eu-central-1, eu-central-2"), "{e}");
        assert!(e.contains("availabilityZones"), "{e}");
        assert!(check_region("eu-central-9", true).is_ok());
        assert!(check_region("banana", true).is_err());
    }

    #[test]
    fn zones_name_their_region() {
        assert_eq!(region_of_zone("eu-west-1a"), Some("eu-west-1"));
        assert_eq!(region_of_zone("us-gov-west-1b"), Some("us-gov-west-1"));
        assert_eq!(region_of_zone("eu-west-1"), None);
        assert_eq!(region_of_zone("eu-west-1A"), None);
        assert_eq!(region_of_zone(""), None);
    }

    #[test]
    fn the_table_is_sorted_unique_and_within_the_maximum() {
        let names: Vec<&str> = REGIONS.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert!(REGIONS
            .iter()
            .all(|(n, z)| is_region_name(n) && (2..=MAX_AZS).contains(z)));
        assert_eq!(REGIONS.iter().map(|(_, z)| *z).max(), Some(MAX_AZS));
    }
}
