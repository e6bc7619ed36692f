//! The rows of replayed models, kept so that a later as-of answer at or after their position
//! starts there instead of at the beginning of the log, and the next page of an answer on a
//! day (at the same position) does not replay at all; for an answer from recorded versions
//! (as of a position, or on a day), the rows its replay on top of them changed, and how many
//! stored rows pass the filters its pages asked. Held within a budget of bytes (the
//! rows' text and a fixed cost per row): a replay deep in a large log holds a large model, and
//! the server keeps only what fits, letting the least recently used go first.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::projections::Row;
use crate::projections::engine::counts::RecentCounts;
use crate::projections::engine::rows::RowFilter;

/// Filters whose counts a kept change remembers (an answer's pages ask one; a dashboard page
/// a few).
const STORED_COUNTS: usize = 16;

/// What a row costs beyond its text: the `Row` itself, its vectors and the allocator's headers.
const ROW_OVERHEAD: usize = 192;

/// The bytes `rows` hold, as the budget counts them.
pub fn rows_bytes(rows: &[Row]) -> usize {
    rows.iter()
        .map(|row| {
            ROW_OVERHEAD
                + row.key.len()
                + row.data.get().len()
                + row.status.len()
                + row.sort_key.len()
                + row
                    .actors
                    .iter()
                    .chain(&row.states)
                    .map(String::len)
                    .sum::<usize>()
        })
        .sum()
}

/// The rows that events applied on top of the rows on record at the commit `at` (of the
/// live generation `generation`) changed: each as it is after them, or `None` if gone.
#[derive(Debug)]
pub struct Changed {
    pub at: u64,
    pub generation: u64,
    pub rows: BTreeMap<String, Option<Row>>,
    /// How many rows on record pass each filter a page has asked for, the changed ones left
    /// out: they never change, so the answer's later pages need not count them again.
    stored_counts: RecentCounts<RowFilter, u64>,
}

impl Changed {
    pub fn new(at: u64, generation: u64, rows: BTreeMap<String, Option<Row>>) -> Self {
        Self {
            at,
            generation,
            rows,
            stored_counts: RecentCounts::new(STORED_COUNTS),
        }
    }

    /// The rows on record passing `filter`, the changed ones left out, if counted before.
    pub fn stored_count(&self, filter: &RowFilter) -> Option<u64> {
        self.stored_counts.get(filter)
    }

    /// Notes a count of [`Changed::stored_count`] (the last few filters asked only).
    pub fn note_stored_count(&self, filter: &RowFilter, count: u64) {
        self.stored_counts.note(filter.clone(), count);
    }

    /// The bytes they hold, as a budget of kept rows counts them (`snapshots`).
    pub fn bytes(&self) -> usize {
        self.rows
            .iter()
            .map(|(key, row)| {
                key.len()
                    + row
                        .as_ref()
                        .map_or(0, |row| rows_bytes(std::slice::from_ref(row)))
            })
            .sum()
    }
}

/// What is kept of a replay: the rows it ended with, or, for an answer from recorded versions
/// (as of a position, or on a day), the rows its replay on top of them changed.
#[derive(Clone)]
pub enum Held {
    Rows(Arc<Vec<Row>>),
    Changed(Arc<Changed>),
}

impl Held {
    fn bytes(&self) -> usize {
        match self {
            Held::Rows(rows) => rows_bytes(rows),
            Held::Changed(changed) => changed.bytes(),
        }
    }
}

/// What a replay's rows are: a projection fed the log up to a position, and, for an answer
/// on a day, only what had happened by then (`on_date`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Replay {
    pub projection: &'static str,
    pub on: Option<NaiveDate>,
    /// What a replay on top of the recorded versions changed, for an answer as of `position`
    /// (not on a day): kept apart from the rows of a replay as of the same position, which
    /// later replays start from (`nearest`).
    pub on_versions: bool,
    pub position: u64,
}

struct Kept {
    held: Held,
    bytes: usize,
    /// Asked for by an answer at the log's head (not `as of`): rows any reader has seen, which
    /// the later pages of that answer may name by their position (`at_head`).
    at_head: bool,
    /// When it was last kept or used (a counter, not a clock).
    used: u64,
}

/// Snapshots by what they are a replay of.
pub struct Snapshots {
    budget: usize,
    held: usize,
    uses: u64,
    kept: BTreeMap<Replay, Kept>,
}

impl Snapshots {
    /// Snapshots holding at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            held: 0,
            uses: 0,
            kept: BTreeMap::new(),
        }
    }

    /// The snapshot of `projection` (not on a day) nearest at or before `position`, if one
    /// is kept.
    pub fn nearest(
        &mut self,
        projection: &'static str,
        position: u64,
    ) -> Option<(u64, Arc<Vec<Row>>)> {
        let first = Replay {
            projection,
            on: None,
            on_versions: false,
            position: 0,
        };
        let (&Replay { position: at, .. }, kept) = self
            .kept
            .range_mut(first..=Replay { position, ..first })
            .next_back()?;
        let Held::Rows(rows) = &kept.held else {
            return None;
        };
        self.uses += 1;
        kept.used = self.uses;
        Some((at, rows.clone()))
    }

    /// The rows of exactly `replay`, if kept, for an answer at the log's head or not. (A
    /// replay on a day cannot start from the rows of an earlier position: what it left out is
    /// not in them.)
    pub fn exact(&mut self, replay: &Replay, at_head: bool) -> Option<Held> {
        let kept = self.kept.get_mut(replay)?;
        self.uses += 1;
        kept.used = self.uses;
        kept.at_head |= at_head;
        Some(kept.held.clone())
    }

    /// Whether the rows of `replay` are kept, asked for by an answer at the log's head.
    pub fn at_head(&self, replay: &Replay) -> bool {
        self.kept.get(replay).is_some_and(|kept| kept.at_head)
    }

    /// Keeps `held` as what is kept of `replay`, letting the least recently used snapshots
    /// go until they fit. Rows larger than the whole budget are not kept, nor any
    /// with no budget.
    pub fn keep(&mut self, replay: Replay, held: Held, at_head: bool) {
        let bytes = held.bytes();
        if bytes > self.budget || self.budget == 0 {
            return;
        }
        self.uses += 1;
        let kept = Kept {
            held,
            bytes,
            at_head,
            used: self.uses,
        };
        if let Some(replaced) = self.kept.insert(replay, kept) {
            self.held -= replaced.bytes;
        }
        self.held += bytes;
        while self.held > self.budget {
            let oldest = *self
                .kept
                .iter()
                .min_by_key(|(_, kept)| kept.used)
                .map(|(key, _)| key)
                .expect("more than nothing is held");
            let gone = self.kept.remove(&oldest).expect("just found");
            self.held -= gone.bytes;
        }
    }

    /// The bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::RowData;

    fn rows(count: usize) -> Held {
        Held::Rows(Arc::new(
            (0..count)
                .map(|i| Row {
                    key: format!("key-{i}"),
                    data: RowData::new(&i).expect("json"),
                    actors: vec!["a".into()],
                    states: Vec::new(),
                    status: "open".into(),
                    sort_key: String::new(),
                })
                .collect(),
        ))
    }

    fn count(held: Held) -> usize {
        match held {
            Held::Rows(rows) => rows.len(),
            Held::Changed(changed) => changed.rows.len(),
        }
    }

    fn at(projection: &'static str, position: u64) -> Replay {
        Replay {
            projection,
            on: None,
            on_versions: false,
            position,
        }
    }

    #[test]
    fn the_nearest_snapshot_at_or_before_a_position_of_the_same_projection_is_found() {
        let mut snapshots = Snapshots::new(1 << 20);
        snapshots.keep(at("channels", 100), rows(1), false);
        snapshots.keep(at("channels", 300), rows(2), false);
        snapshots.keep(at("summits", 200), rows(3), false);
        assert_eq!(snapshots.nearest("channels", 99).map(|(at, _)| at), None);
        assert_eq!(
            snapshots.nearest("channels", 100).map(|(at, _)| at),
            Some(100)
        );
        assert_eq!(
            snapshots.nearest("channels", 299).map(|(at, _)| at),
            Some(100)
        );
        let (at, found) = snapshots.nearest("channels", 1_000).expect("kept");
        assert_eq!((at, found.len()), (300, 2));
        assert_eq!(
            snapshots.nearest("relations", 1_000).map(|(at, _)| at),
            None
        );
        assert_eq!(
            snapshots.nearest("summits", 250).map(|(at, _)| at),
            Some(200)
        );
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_is_never_passed() {
        let one = rows(10).bytes();
        let mut snapshots = Snapshots::new(one * 2 + one / 2);
        snapshots.keep(at("channels", 1), rows(10), false);
        snapshots.keep(at("channels", 2), rows(10), false);
        // Using the first makes the second the least recently used.
        assert!(snapshots.nearest("channels", 1).is_some());
        snapshots.keep(at("channels", 3), rows(10), false);
        assert_eq!(snapshots.held(), one * 2);
        assert_eq!(snapshots.nearest("channels", 2).map(|(at, _)| at), Some(1));
        assert_eq!(snapshots.nearest("channels", 3).map(|(at, _)| at), Some(3));
    }

    #[test]
    fn rows_larger_than_the_budget_are_not_kept_and_keeping_again_replaces() {
        let one = rows(10).bytes();
        let mut snapshots = Snapshots::new(one);
        snapshots.keep(at("channels", 1), rows(11), false);
        assert_eq!(
            (snapshots.held(), snapshots.nearest("channels", 1).is_none()),
            (0, true)
        );
        snapshots.keep(at("channels", 1), rows(10), false);
        snapshots.keep(at("channels", 1), rows(10), false);
        assert_eq!(snapshots.held(), one);
    }

    #[test]
    fn rows_on_a_day_are_found_only_for_that_day_and_position_and_never_as_nearest() {
        let mut snapshots = Snapshots::new(1 << 20);
        let day = |raw: &str| Some(raw.parse::<NaiveDate>().expect("a day"));
        let on = Replay {
            on: day("2025-02-16"),
            ..at("timeline", 300)
        };
        snapshots.keep(on, rows(4), false);
        assert!(!snapshots.at_head(&on), "kept for an as-of answer");
        assert_eq!(snapshots.exact(&on, false).map(count), Some(4));
        assert!(!snapshots.at_head(&on));
        assert!(snapshots.exact(&on, true).is_some());
        assert!(snapshots.at_head(&on), "asked for at the head since");
        for other in [
            Replay {
                position: 299,
                ..on
            },
            Replay {
                position: 301,
                ..on
            },
            Replay {
                on: day("2025-02-17"),
                ..on
            },
            Replay {
                projection: "channels",
                ..on
            },
            at("timeline", 300),
        ] {
            assert!(snapshots.exact(&other, true).is_none(), "{other:?}");
            assert!(!snapshots.at_head(&other), "{other:?}");
        }
        assert!(snapshots.nearest("timeline", 1_000).is_none());
        snapshots.keep(at("timeline", 200), rows(1), false);
        assert_eq!(
            snapshots.nearest("timeline", 1_000).map(|(at, _)| at),
            Some(200)
        );
    }

    #[test]
    fn a_change_remembers_the_counts_of_the_last_filters_asked() {
        let changed = Changed::new(4096, 1, BTreeMap::new());
        let of = |actor: usize| RowFilter {
            actor: Some(format!("a{actor}")),
            ..RowFilter::default()
        };
        assert_eq!(changed.stored_count(&of(0)), None);
        for actor in 0..=STORED_COUNTS {
            changed.note_stored_count(&of(actor), actor as u64 * 10);
        }
        assert_eq!(changed.stored_count(&of(0)), None, "the oldest went");
        assert_eq!(changed.stored_count(&of(1)), Some(10));
        assert_eq!(changed.stored_count(&of(STORED_COUNTS)), Some(160));
        assert_eq!(changed.stored_count(&RowFilter::default()), None);
    }

    #[test]
    fn what_an_as_of_answer_found_on_versions_is_kept_apart_and_never_the_nearest() {
        let mut snapshots = Snapshots::new(1 << 20);
        snapshots.keep(at("timeline", 200), rows(1), false);
        let on_versions = Replay {
            on_versions: true,
            ..at("timeline", 300)
        };
        snapshots.keep(on_versions, rows(2), false);
        assert_eq!(snapshots.exact(&on_versions, false).map(count), Some(2));
        assert!(snapshots.exact(&at("timeline", 300), false).is_none());
        for position in [300, 1_000] {
            assert_eq!(
                snapshots.nearest("timeline", position).map(|(at, _)| at),
                Some(200),
                "as of {position}"
            );
        }
    }
}
