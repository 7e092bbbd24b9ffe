//! Frozen requirement sets: which checks are *required* (a failure fails the
//! gate) and which are only *recommended* (a failure is a WARNING) for a
//! given Claude Code version.
//!
//! A set is never edited once released. New checks go into a new set and new
//! profiles pin the new set; profiles already pinned keep their old set, so
//! adding a check never turns a passing plugin red against an older release.
//! A check that is absent from a profile's pinned set is recommended there.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

/// A Claude Code version `MAJOR.MINOR.PATCH`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
        let v = Version(it.next()??, it.next()??, it.next()??);
        it.next().is_none().then_some(v)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0, self.1, self.2).cmp(&(other.0, other.1, other.2))
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One requirement of a set: the check is required from `since` on and
/// recommended before it (the client behaviour it protects did not exist).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Requirement {
    pub check: &'static str,
    pub since: Option<Version>,
}

/// A frozen list of requirements.
#[derive(Debug, Serialize)]
pub struct RequirementSet {
    pub id: &'static str,
    pub requirements: &'static [Requirement],
}

const fn req(check: &'static str) -> Requirement {
    Requirement { check, since: None }
}
const fn req_since(check: &'static str, since: Version) -> Requirement {
    Requirement {
        check,
        since: Some(since),
    }
}

/// Requirement set v1 (2026-11). FROZEN: do not edit; add a `V2` instead.
pub static V1: RequirementSet = RequirementSet {
    id: "v1",
    requirements: &[
        req("handshake.discover-method-not-found"),
        req("handshake.protocol-version-accepted"),
        req("handshake.legacy-era"),
        req("handshake.capability-experimental"),
        // The 2 KB cap arrived in 2.1.84 (CHANNELS.md §6).
        req_since("handshake.instructions-size", Version(2, 1, 84)),
        req_since("handshake.tool-descriptions-size", Version(2, 1, 84)),
        req("handshake.tool-schemas-valid"),
        req("handshake.reply-tool"),
        req("handshake.gate-registered"),
        req("push.none-before-lists"),
        req("push.none-lost-across-handshake"),
        req("push.params-valid"),
        req("push.rendered-turn-golden"),
        req("reply.round-trip"),
        // The permission relay exists from 2.1.81 (CHANNELS.md §2).
        req_since("permission.capability-only-with-relay", Version(2, 1, 81)),
        req_since("permission.round-trip", Version(2, 1, 81)),
        req("robustness.malformed-line-survives"),
        req("shutdown.sigint"),
        req("shutdown.stdin-eof"),
        req("shutdown.no-orphan"),
        req("session.stdout-clean"),
        // Schema validation is advice: a frame the client tolerates still works.
    ],
};

/// Every set ever released, oldest first.
pub static SETS: &[&RequirementSet] = &[&V1];

/// Which set a Claude Code version is pinned to. Pins are frozen too: a
/// version keeps its set forever; only versions newer than the last pin
/// follow the newest set.
pub fn pinned(version: Version) -> &'static RequirementSet {
    // (up to and including this version, set)
    const PINS: &[(Version, &RequirementSet)] = &[(Version(2, 1, 330), &V1)];
    for (upto, set) in PINS {
        if version <= *upto {
            return set;
        }
    }
    SETS[SETS.len() - 1]
}

/// Whether a check is required for a version (else recommended).
pub fn is_required(check: &str, version: Version) -> bool {
    pinned(version)
        .requirements
        .iter()
        .any(|r| r.check == check && r.since.is_none_or(|since| version >= since))
}

pub fn find_set(id: &str) -> Option<&'static RequirementSet> {
    SETS.iter().copied().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(Version::parse("2.1.80").unwrap() < Version::parse("2.1.330").unwrap());
        assert_eq!(Version::parse("2.1"), None);
        assert_eq!(Version::parse("2.1.x"), None);
    }

    #[test]
    fn every_requirement_names_a_catalogued_check() {
        for set in SETS {
            for r in set.requirements {
                assert!(
                    crate::catalogue::find(r.check).is_some(),
                    "{} in {}",
                    r.check,
                    set.id
                );
            }
        }
    }

    /// Guards the freeze: if this fails, requirement set v1 was edited.
    /// Revert, and put the change in a new set pinned by newer profiles.
    #[test]
    fn v1_is_frozen() {
        let v1: Vec<String> = V1
            .requirements
            .iter()
            .map(|r| match r.since {
                Some(v) => format!("{}>={v}", r.check),
                None => r.check.to_string(),
            })
            .collect();
        assert_eq!(
            v1,
            [
                "handshake.discover-method-not-found",
                "handshake.protocol-version-accepted",
                "handshake.legacy-era",
                "handshake.capability-experimental",
                "handshake.instructions-size>=2.1.84",
                "handshake.tool-descriptions-size>=2.1.84",
                "handshake.tool-schemas-valid",
                "handshake.reply-tool",
                "handshake.gate-registered",
                "push.none-before-lists",
                "push.none-lost-across-handshake",
                "push.params-valid",
                "push.rendered-turn-golden",
                "reply.round-trip",
                "permission.capability-only-with-relay>=2.1.81",
                "permission.round-trip>=2.1.81",
                "robustness.malformed-line-survives",
                "shutdown.sigint",
                "shutdown.stdin-eof",
                "shutdown.no-orphan",
                "session.stdout-clean",
            ]
        );
        assert_eq!(pinned(Version(2, 1, 330)).id, "v1");
        assert_eq!(pinned(Version(2, 1, 80)).id, "v1");
    }

    #[test]
    fn caps_are_only_recommended_before_they_existed() {
        let early = Version(2, 1, 80);
        let late = Version(2, 1, 330);
        assert!(!is_required("handshake.instructions-size", early));
        assert!(is_required("handshake.instructions-size", late));
        assert!(is_required("handshake.reply-tool", early));
        assert!(!is_required("session.frames-valid", late));
    }
}
