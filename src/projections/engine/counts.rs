//! Counts of a list's rows remembered for its next pages. Every page of a list answers how
//! many rows pass its filter, and counting a long list costs more than reading its page (about
//! 0.1 s at 150,000 rows, each page), while a client paging through it asks the same count
//! again and again of rows that have not moved.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// The last counts noted, each under what it counted, the least recently asked going first.
#[derive(Debug)]
pub struct RecentCounts<K: Hash + Eq, V>(Mutex<LruCache<K, V>>);

impl<K: Hash + Eq, V: Clone> RecentCounts<K, V> {
    /// Room for `capacity` counts (at least one).
    pub fn new(capacity: usize) -> Self {
        Self(Mutex::new(LruCache::new(
            NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
        )))
    }

    /// The count noted for `key`, if it is still held.
    pub fn get(&self, key: &K) -> Option<V> {
        self.0.lock().expect("counts lock").get(key).cloned()
    }

    /// Notes `count` for `key` (replacing an earlier one).
    pub fn note(&self, key: K, count: V) {
        self.0.lock().expect("counts lock").put(key, count);
    }
}

/// A count of a projection's live rows: valid while the checkpoint still names this generation
/// and position (rows move only with the position, and a rebuild's swap changes the
/// generation). A page checks that in the statement that reads it, which counts again if not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveCount {
    pub generation: u64,
    pub position: u64,
    pub total: u64,
}

/// How many live lists' counts a server remembers (a filter and three numbers each).
pub const LIVE_COUNTS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_asked_count_goes_first() {
        let counts = RecentCounts::<u32, u64>::new(2);
        counts.note(1, 10);
        counts.note(2, 20);
        assert_eq!(counts.get(&1), Some(10));
        counts.note(3, 30);
        assert_eq!(counts.get(&2), None, "2 was asked least recently");
        assert_eq!((counts.get(&1), counts.get(&3)), (Some(10), Some(30)));
        counts.note(1, 11);
        assert_eq!(
            counts.get(&1),
            Some(11),
            "a later count replaces the earlier"
        );
    }
}
