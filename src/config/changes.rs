//! What a configuration reload changed, in counts: the `config.reload`
//! audit row says how many schools, classrooms, access points and users
//! came and went, and which file (its SHA-256) is now in force.

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha256};

use super::Config;

/// Added and removed counts of one kind of entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    /// In the new configuration only.
    pub added: usize,
    /// In the old one only.
    pub removed: usize,
}

fn delta<'a>(old: impl Iterator<Item = &'a str>, new: impl Iterator<Item = &'a str>) -> Delta {
    let old: BTreeSet<&str> = old.collect();
    let new: BTreeSet<&str> = new.collect();
    Delta {
        added: new.difference(&old).count(),
        removed: old.difference(&new).count(),
    }
}

/// The difference between two configurations, by id (users by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Schools.
    pub schools: Delta,
    /// Classrooms.
    pub classrooms: Delta,
    /// Access points.
    pub access_points: Delta,
    /// Users.
    pub users: Delta,
}

impl Changes {
    /// Compares `old` with `new`.
    pub fn between(old: &Config, new: &Config) -> Changes {
        Changes {
            schools: delta(
                old.schools.iter().map(|s| s.id.as_str()),
                new.schools.iter().map(|s| s.id.as_str()),
            ),
            classrooms: delta(
                old.classrooms.iter().map(|c| c.id.as_str()),
                new.classrooms.iter().map(|c| c.id.as_str()),
            ),
            access_points: delta(
                old.access_points.iter().map(|a| a.id.as_str()),
                new.access_points.iter().map(|a| a.id.as_str()),
            ),
            users: delta(
                old.users.iter().map(|u| u.name.as_str()),
                new.users.iter().map(|u| u.name.as_str()),
            ),
        }
    }
}

impl fmt::Display for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = |name: &str, d: Delta| format!("{name} +{} -{}", d.added, d.removed);
        write!(
            f,
            "{}, {}, {}, {}",
            part("schools", self.schools),
            part("classrooms", self.classrooms),
            part("access points", self.access_points),
            part("users", self.users)
        )
    }
}

/// SHA-256 of a configuration file's bytes, in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_id() {
        let d = delta(["a", "b", "c"].into_iter(), ["b", "c", "d", "e"].into_iter());
        assert_eq!(d, Delta { added: 2, removed: 1 });
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
