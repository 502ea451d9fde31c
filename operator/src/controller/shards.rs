//! Which replica reconciles which stack, decided without I/O.
//!
//! Stacks fall into a fixed number of shards (a digest of `namespace/name`). Each shard is a
//! Kubernetes Lease that one replica holds at a time; each replica also holds a member Lease of
//! its own, so every replica knows how many are alive and takes its fair share of the shards:
//! the number of shards over the number of live members, rounded up. A replica over its share
//! gives shards up (after its work on them has stopped); one under its share takes free or
//! expired shards, each replica trying them in its own order so that they rarely collide.
//!
//! A replica works on a shard only while the shard's Lease, as the API server last showed it,
//! names it as holder and was renewed less than the lease duration minus a margin ago. Another
//! replica takes a shard only once its renewal is a whole duration old, so the two never work on
//! a shard at once unless clocks differ by more than the margin.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use sha2::{Digest, Sha256};

/// Names of the shard Leases: this prefix and the shard's number.
pub const SHARD_PREFIX: &str = "webstack-shard-";
/// Names of the member Leases: this prefix and the replica's identity.
pub const MEMBER_PREFIX: &str = "webstack-member-";

/// The shard of a stack (`namespace/name`), among `shards`.
pub fn shard_of(stack: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(stack.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % shards.max(1)
}

pub fn shard_lease(shard: u32) -> String {
    format!("{SHARD_PREFIX}{shard}")
}

/// A replica's member Lease: its identity made a valid object name.
pub fn member_lease(identity: &str) -> String {
    let mut name: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253 - MEMBER_PREFIX.len());
    let name = name.trim_matches(|c| c == '-' || c == '.');
    format!("{MEMBER_PREFIX}{name}")
}

/// What matters of a Lease: who holds it, when it was created and renewed, for how long.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseView {
    pub holder: Option<String>,
    pub renewed: Option<SystemTime>,
    pub duration: Option<Duration>,
    pub created: Option<SystemTime>,
    /// The object's resourceVersion: a delete is conditional on it.
    pub version: Option<String>,
}

impl LeaseView {
    pub fn of(lease: &Lease) -> LeaseView {
        let spec = lease.spec.as_ref();
        LeaseView {
            holder: spec.and_then(|s| s.holder_identity.clone()),
            renewed: spec
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| SystemTime::from(t.0)),
            duration: spec
                .and_then(|s| s.lease_duration_seconds)
                .map(|d| Duration::from_secs(d.max(0) as u64)),
            created: lease
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| SystemTime::from(t.0)),
            version: lease.metadata.resource_version.clone(),
        }
    }

    /// When others may take it: a whole duration after its last renewal.
    pub fn expiry(&self) -> Option<SystemTime> {
        Some(self.renewed? + self.duration?)
    }

    /// Its holder, while the lease has not expired.
    pub fn holder_at(&self, now: SystemTime) -> Option<&str> {
        let holder = self.holder.as_deref()?;
        (now < self.expiry()?).then_some(holder)
    }
}

/// What a replica should do about the shards, from the Leases it sees.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Live members, this replica included.
    pub members: usize,
    /// The most shards this replica should hold.
    pub share: usize,
    /// The shards this replica may work on now, each with the instant its work must have
    /// stopped by unless the lease is renewed before.
    pub held: BTreeMap<u32, SystemTime>,
    /// Shards to run a holder for: free ones to take, and ones this replica still holds but
    /// has no holder running for (after a restart under the same identity, or a lost task).
    pub acquire: Vec<u32>,
    /// Shards to give up, once work on them has stopped.
    pub release: Vec<u32>,
    /// Attempts to take a shard that are no longer wanted (somebody else holds it, or this
    /// replica has its share).
    pub cancel: Vec<u32>,
}

/// The inputs of [`decide`].
pub struct View<'a> {
    pub me: &'a str,
    pub shards: u32,
    /// Every Lease in the operator's namespace, by name.
    pub leases: &'a BTreeMap<String, LeaseView>,
    /// Shards this replica is running a holder for.
    pub holding: &'a BTreeSet<u32>,
    pub now: SystemTime,
    /// How long before its lease expires a replica stops working on a shard: covers clock
    /// differences between replicas and the time to stop.
    pub margin: Duration,
}

/// The order in which `me` tries the shards: rotated by a digest of its identity, so that
/// replicas starting together try different shards first.
pub fn preference(me: &str, shards: u32) -> Vec<u32> {
    let start = shard_of(me, shards);
    (0..shards).map(|i| (start + i) % shards).collect()
}

pub fn decide(view: &View) -> Decision {
    let View {
        me,
        shards,
        leases,
        holding,
        now,
        margin,
    } = *view;
    let my_member = member_lease(me);
    let joined = leases
        .get(&my_member)
        .is_some_and(|l| l.holder_at(now) == Some(me));
    let others = leases
        .iter()
        .filter(|(name, l)| {
            name.starts_with(MEMBER_PREFIX) && **name != my_member && l.holder_at(now).is_some()
        })
        .count();
    let members = others + 1;
    let share = (shards as usize).div_ceil(members);
    let order = preference(me, shards);

    let mut d = Decision {
        members,
        share,
        ..Default::default()
    };
    let mut mine = Vec::new();
    let mut trying = Vec::new();
    let mut free = Vec::new();
    for &s in &order {
        let lease = leases.get(&shard_lease(s));
        match lease.and_then(|l| l.holder_at(now)) {
            Some(holder) if holder == me => {
                let lease = lease.expect("a holder comes from a lease");
                mine.push(s);
                if let Some(deadline) = lease.expiry().and_then(|e| e.checked_sub(margin)) {
                    if now < deadline {
                        d.held.insert(s, deadline);
                    }
                }
                if !holding.contains(&s) {
                    d.acquire.push(s);
                }
            }
            Some(_) => {
                if holding.contains(&s) {
                    d.cancel.push(s);
                }
            }
            None if holding.contains(&s) => trying.push(s),
            None => free.push(s),
        }
    }
    // Over the share: stop trying for free shards first, then give up held ones, the last in
    // this replica's order first.
    let mut excess = (mine.len() + trying.len()).saturating_sub(share);
    while excess > 0 {
        if let Some(s) = trying.pop() {
            d.cancel.push(s);
        } else if let Some(s) = mine.pop() {
            d.release.push(s);
        }
        excess -= 1;
    }
    // Under it: take free shards, but only once the others can see this replica, so that
    // replicas starting together do not all take everything first.
    if joined {
        let wanted = share.saturating_sub(mine.len() + trying.len());
        d.acquire.extend(free.into_iter().take(wanted));
    }
    d.cancel.sort_unstable();
    d
}

/// Member Leases of replicas long gone (expired, or released, for more than `keep`), with the
/// version seen, which any replica may delete; never a young one that is about to be taken.
pub fn stale_members(
    me: &str,
    leases: &BTreeMap<String, LeaseView>,
    now: SystemTime,
    keep: Duration,
) -> Vec<(String, Option<String>)> {
    let mine = member_lease(me);
    let old = |t: Option<SystemTime>| t.is_some_and(|t| t + keep < now);
    leases
        .iter()
        .filter(|(name, l)| {
            name.starts_with(MEMBER_PREFIX)
                && **name != mine
                && l.holder_at(now).is_none()
                && old(l.created)
                && (l.renewed.is_none() || old(l.expiry()))
        })
        .map(|(name, l)| (name.clone(), l.version.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);
    const MARGIN: Duration = Duration::from_secs(3);

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    fn held(by: &str, renewed: SystemTime) -> LeaseView {
        LeaseView {
            holder: Some(by.into()),
            renewed: Some(renewed),
            duration: Some(DURATION),
            created: Some(t(0)),
            version: None,
        }
    }

    struct World {
        leases: BTreeMap<String, LeaseView>,
    }

    impl World {
        fn new(members: &[&str], now: SystemTime) -> World {
            let leases = members
                .iter()
                .map(|m| (member_lease(m), held(m, now)))
                .collect();
            World { leases }
        }

        fn decide(&self, me: &str, holding: &BTreeSet<u32>, now: SystemTime) -> Decision {
            decide(&View {
                me,
                shards: 6,
                leases: &self.leases,
                holding,
                now,
                margin: MARGIN,
            })
        }

        fn hold(&mut self, shard: u32, by: &str, renewed: SystemTime) {
            self.leases.insert(shard_lease(shard), held(by, renewed));
        }

        fn release(&mut self, shard: u32) {
            self.leases.insert(shard_lease(shard), LeaseView::default());
        }
    }

    #[test]
    fn the_shard_of_a_stack_is_stable_and_spreads() {
        assert_eq!(shard_of("default/a", 6), shard_of("default/a", 6));
        let used: BTreeSet<u32> = (0..60)
            .map(|i| shard_of(&format!("team/stack-{i}"), 6))
            .collect();
        assert_eq!(used.len(), 6, "sixty stacks use every one of six shards");
        assert_eq!(shard_of("x/y", 1), 0);
        assert_eq!(shard_of("x/y", 0), 0);
    }

    #[test]
    fn member_lease_names_are_valid_object_names() {
        assert_eq!(
            member_lease("webstack-operator-7d9f-abc"),
            "webstack-member-webstack-operator-7d9f-abc"
        );
        assert_eq!(member_lease("Host_Name:1"), "webstack-member-host-name-1");
        assert!(member_lease(&"x".repeat(400)).len() <= 253);
    }

    #[test]
    fn a_lone_replica_takes_every_shard_once_its_membership_is_visible() {
        let now = t(100);
        let none = BTreeSet::new();
        let unseen = World {
            leases: BTreeMap::new(),
        };
        let d = unseen.decide("a", &none, now);
        assert_eq!((d.members, d.share), (1, 6));
        assert!(d.acquire.is_empty(), "not before the others can see it");
        let world = World::new(&["a"], now);
        let d = world.decide("a", &none, now);
        let mut wanted = d.acquire.clone();
        wanted.sort_unstable();
        assert_eq!(wanted, vec![0, 1, 2, 3, 4, 5]);
        assert!(
            d.held.is_empty(),
            "nothing to work on before a lease is held"
        );
    }

    #[test]
    fn three_replicas_converge_on_two_shards_each_and_never_share_one() {
        let now = t(100);
        let mut world = World::new(&["a"], now);
        for s in 0..6 {
            world.hold(s, "a", now);
        }
        let all: BTreeSet<u32> = (0..6).collect();
        assert_eq!(world.decide("a", &all, now).held.len(), 6);
        // b and c join: a is over its share and gives up four shards.
        world = World {
            leases: world
                .leases
                .into_iter()
                .chain(World::new(&["b", "c"], now).leases)
                .collect(),
        };
        let d = world.decide("a", &all, now);
        assert_eq!((d.members, d.share), (3, 2));
        assert_eq!(d.release.len(), 4);
        // Until a has released them, nobody else may take them.
        let none = BTreeSet::new();
        assert!(world.decide("b", &none, now).acquire.is_empty());
        for &s in &d.release {
            world.release(s);
        }
        let b = world.decide("b", &none, now);
        assert_eq!(b.acquire.len(), 2);
        for &s in &b.acquire {
            world.hold(s, "b", now);
        }
        let c = world.decide("c", &none, now);
        assert_eq!(c.acquire.len(), 2);
        assert!(c.acquire.iter().all(|s| !b.acquire.contains(s)));
        for &s in &c.acquire {
            world.hold(s, "c", now);
        }
        let holders: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|m| {
                let holding: BTreeSet<u32> = (0..6).collect();
                world.decide(m, &holding, now).held.len()
            })
            .collect();
        assert_eq!(holders, vec![2, 2, 2]);
    }

    #[test]
    fn work_stops_before_the_lease_can_be_taken_and_a_dead_holders_shards_are_taken_after() {
        let renewed = t(100);
        let mut world = World::new(&["a", "b"], renewed);
        world.hold(0, "a", renewed);
        let holding: BTreeSet<u32> = [0].into();
        // a may work until the margin before expiry, not after.
        let d = world.decide("a", &holding, renewed + Duration::from_secs(11));
        assert_eq!(
            d.held.get(&0),
            Some(&(renewed + DURATION - MARGIN)),
            "its deadline"
        );
        let late = world.decide("a", &holding, renewed + Duration::from_secs(13));
        assert!(late.held.is_empty(), "work stops when renewals fail");
        // b sees the shard held until it expires, then free.
        let none = BTreeSet::new();
        let before = world.decide("b", &none, renewed + Duration::from_secs(14));
        assert!(!before.acquire.contains(&0));
        // a's membership expired too: b is alone and takes the whole of it.
        let after = world.decide("b", &none, renewed + DURATION + Duration::from_secs(1));
        assert!(after.acquire.is_empty(), "b's own membership must be live");
        world.leases.insert(
            member_lease("b"),
            held("b", renewed + DURATION + Duration::from_secs(1)),
        );
        let after = world.decide("b", &none, renewed + DURATION + Duration::from_secs(1));
        assert_eq!(after.members, 1);
        assert!(after.acquire.contains(&0));
    }

    #[test]
    fn a_held_shard_without_a_holder_task_is_adopted_and_a_lost_race_is_cancelled() {
        let now = t(100);
        let mut world = World::new(&["a", "b"], now);
        world.hold(2, "a", now);
        world.hold(3, "b", now);
        let holding: BTreeSet<u32> = [3].into();
        let d = world.decide("a", &holding, now);
        assert!(d.acquire.contains(&2), "a renews the lease it still holds");
        assert_eq!(d.cancel, vec![3], "b won shard 3");
        assert!(d.held.contains_key(&2));
    }

    #[test]
    fn stale_member_leases_are_found_but_never_live_or_young_ones() {
        let now = t(10_000);
        let keep = Duration::from_secs(300);
        let mut leases = BTreeMap::new();
        leases.insert(member_lease("live"), held("live", now));
        leases.insert(member_lease("dead"), held("dead", t(100)));
        leases.insert(
            member_lease("released"),
            LeaseView {
                created: Some(t(0)),
                ..Default::default()
            },
        );
        leases.insert(
            member_lease("starting"),
            LeaseView {
                created: Some(now),
                ..Default::default()
            },
        );
        leases.insert(shard_lease(0), held("dead", t(100)));
        let mut stale: Vec<String> = stale_members("me", &leases, now, keep)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        stale.sort();
        assert_eq!(stale, vec![member_lease("dead"), member_lease("released")]);
    }
}
