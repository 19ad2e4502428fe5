//! Counts by key: how teacher sessions ended, why requests were refused.
//!
//! The keys the report always lists sit in fixed slots, so that summing a
//! school year of a city's days (a quarter of a million stored rows) into
//! report rows copies no key and allocates nothing. A key outside the list
//! (one a newer borne wrote, say) is kept in a map beside the slots, so no
//! count is ever lost.

use std::collections::BTreeMap;
use std::marker::PhantomData;

/// The reasons a session ends (`session.end`), always listed (zeros
/// included) so that CSV columns do not depend on the data.
pub const END_REASONS: [&str; 7] = ["teacher", "expired", "idle", "locked", "override", "clock", "reload"];

/// The refusal codes of a teacher request, always listed.
pub const REFUSAL_CODES: [&str; 3] = ["locked", "overridden", "minutes_out_of_range"];

/// The most keys a list may have.
const SLOTS: usize = 8;

// A list longer than the slots would fail at its first count, not here.
const _: () = assert!(END_REASONS.len() <= SLOTS && REFUSAL_CODES.len() <= SLOTS);

/// A fixed list of keys.
pub trait Keys {
    /// The keys, at most eight.
    const KEYS: &'static [&'static str];
}

/// The keys of [`END_REASONS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndReasons;

impl Keys for EndReasons {
    const KEYS: &'static [&'static str] = &END_REASONS;
}

/// The keys of [`REFUSAL_CODES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCodes;

impl Keys for RefusalCodes {
    const KEYS: &'static [&'static str] = &REFUSAL_CODES;
}

/// Counts by key, the keys of `K` in fixed slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts<K> {
    slots: [u32; SLOTS],
    other: BTreeMap<String, u32>,
    keys: PhantomData<K>,
}

/// How sessions ended.
pub type EndedBy = Counts<EndReasons>;

/// Refused requests by code.
pub type Refused = Counts<RefusalCodes>;

impl<K: Keys> Counts<K> {
    fn slot(key: &str) -> Option<usize> {
        K::KEYS.iter().position(|k| *k == key)
    }

    /// Adds `n` to `key`.
    pub fn add(&mut self, key: &str, n: u32) {
        match Self::slot(key) {
            Some(i) => self.slots[i] += n,
            None => match self.other.get_mut(key) {
                Some(v) => *v += n,
                None => {
                    self.other.insert(key.to_owned(), n);
                }
            },
        }
    }

    /// The count of `key` (0 if never added).
    pub fn get(&self, key: &str) -> u32 {
        self[key]
    }

    /// Adds every count of `o`.
    pub fn merge(&mut self, o: &Counts<K>) {
        for (a, b) in self.slots.iter_mut().zip(o.slots) {
            *a += b;
        }
        for (k, v) in &o.other {
            self.add(k, *v);
        }
    }

    /// The keys with a count, listed keys first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        K::KEYS
            .iter()
            .zip(self.slots)
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| (*k, v))
            .chain(self.other.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// Every listed key (zeros included) and any other key with a count.
    pub fn all(&self) -> BTreeMap<String, u32> {
        K::KEYS
            .iter()
            .zip(self.slots)
            .map(|(k, v)| ((*k).to_owned(), v))
            .chain(self.other.iter().map(|(k, v)| (k.clone(), *v)))
            .collect()
    }

    /// Back to no counts, keeping the map's room.
    pub fn clear(&mut self) {
        self.slots = [0; SLOTS];
        self.other.clear();
    }

    /// As stored: `key=count` pairs joined by commas, counts of 0 left out.
    pub fn to_text(&self) -> String {
        self.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Adds the counts of a stored text (pairs that do not parse are
    /// skipped: a damaged cell loses its own counts, not the day).
    pub fn add_text(&mut self, text: &str) {
        for pair in text.split(',') {
            if let Some((k, v)) = pair.split_once('=')
                && let Ok(v) = v.parse()
            {
                self.add(k, v);
            }
        }
    }
}

impl<K: Keys> std::ops::Index<&str> for Counts<K> {
    type Output = u32;

    fn index(&self, key: &str) -> &u32 {
        match Self::slot(key) {
            Some(i) => &self.slots[i],
            None => self.other.get(key).unwrap_or(&0),
        }
    }
}

impl<K: Keys + Default, const N: usize> From<[(&str, u32); N]> for Counts<K> {
    fn from(pairs: [(&str, u32); N]) -> Counts<K> {
        let mut c = Counts::default();
        for (k, v) in pairs {
            c.add(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_and_unlisted_keys_round_trip_through_the_stored_text() {
        let mut c = EndedBy::default();
        c.add("expired", 2);
        c.add("teacher", 1);
        c.add("future_reason", 3);
        let text = c.to_text();
        assert_eq!(text, "teacher=1,expired=2,future_reason=3");
        let mut back = EndedBy::default();
        back.add_text(&text);
        assert_eq!(back, c);
        back.add_text("idle=1,broken,=,reload=x");
        assert_eq!(back["idle"], 1);
        assert_eq!(back.get("reload"), 0);
        assert_eq!(back["nothing"], 0);
    }

    #[test]
    fn merging_sums_every_key_and_all_lists_zeros() {
        let mut a = Refused::from([("locked", 1), ("odd", 1)]);
        a.merge(&Refused::from([("locked", 2), ("overridden", 1), ("odd", 4)]));
        let all = a.all();
        assert_eq!(all["locked"], 3);
        assert_eq!(all["overridden"], 1);
        assert_eq!(all["minutes_out_of_range"], 0);
        assert_eq!(all["odd"], 5);
        a.clear();
        assert_eq!(a, Refused::default());
    }
}
