//! How far into the log everything had happened by a day. A replay on day D lets every event
//! in as it is until the first one that happened after D (see `on_date`), so up to there its
//! rows are the rows the projections recorded (`versioned::on_day` starts from them and
//! replays only the rest). Found from where the latest date the log's events give, read in
//! log order, rises: noted once per server as the log grows, a few positions for a log kept
//! in date order, from each date the events give read once with the first position giving
//! it (`store::first_occurrence_dates`), not from the events.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::diplomacy::FuzzyTime;
use crate::projections::engine::rows::ProjectionStore;
use crate::projections::read::on_date::end_of;
use crate::projections::read::request::QueryError;
use crate::store::OccurrenceDate;

pub(super) struct LogDates {
    store: ProjectionStore,
    /// Behind an async lock: readers arriving while the log is read wait for that read.
    read: tokio::sync::Mutex<Rises>,
}

/// Where the latest date of the events up to each position rises, for the log up to
/// `through`.
#[derive(Debug, Default)]
struct Rises {
    through: u64,
    /// Positions in increasing order, each with the latest date so far, which increases too.
    rises: Vec<(u64, DateTime<Utc>)>,
}

impl Rises {
    fn note(&mut self, position: u64, end: DateTime<Utc>) {
        if self.rises.last().is_none_or(|&(_, latest)| end > latest) {
            self.rises.push((position, end));
        }
    }

    /// The longest prefix of the log up to `position` (read this far) whose every event had
    /// happened by `end`.
    fn covered(&self, end: DateTime<Utc>, position: u64) -> u64 {
        let first_later = self.rises.partition_point(|&(_, latest)| latest <= end);
        self.rises
            .get(first_later)
            .map_or(position, |&(at, _)| (at - 1).min(position))
    }
}

/// Just after the latest instant an event's date allows (`None`: it gives none, and has
/// happened on every day). A date that does not read is taken as later than any day, so the
/// prefix it ends is short, never wrong.
fn end_of_event(date: &OccurrenceDate) -> Option<DateTime<Utc>> {
    match serde_json::from_str::<Option<FuzzyTime>>(date.occurred.as_deref()?) {
        Ok(occurred) => occurred.map(|time| time.end()),
        Err(_) => Some(DateTime::<Utc>::MAX_UTC),
    }
}

impl LogDates {
    pub(super) fn new(store: ProjectionStore) -> Self {
        Self {
            store,
            read: tokio::sync::Mutex::new(Rises::default()),
        }
    }

    /// The longest prefix of the log up to `position` whose every event had happened by the
    /// end of `date`: a replay on `date` lets each of them in as it is. `position` must be
    /// committed (the head, or before it).
    pub(super) async fn covered(&self, date: NaiveDate, position: u64) -> Result<u64, QueryError> {
        let mut rises = self.read.lock().await;
        if rises.through < position {
            // The latest date can rise only where a date is first given.
            let mut firsts = self
                .store
                .first_occurrence_dates(rises.through, position)
                .await?;
            firsts.sort_by_key(|date| date.position);
            for date in &firsts {
                if let Some(end) = end_of_event(date) {
                    rises.note(date.position as u64, end);
                }
            }
            rises.through = position;
        }
        Ok(rises.covered(end_of(date), position))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: &str) -> DateTime<Utc> {
        end_of(day.parse().expect("a day"))
    }

    #[test]
    fn the_prefix_ends_before_the_first_event_after_the_day() {
        let mut rises = Rises::default();
        // Positions 1-3 on the 10th, 4 on the 12th, 5 back on the 11th, 6 on the 20th.
        for (position, day) in [
            (1, "2025-02-10"),
            (2, "2025-02-10"),
            (3, "2025-02-10"),
            (4, "2025-02-12"),
            (5, "2025-02-11"),
            (6, "2025-02-20"),
        ] {
            rises.note(position, at(day));
        }
        rises.through = 7;
        assert_eq!(rises.rises.len(), 3, "{rises:?}");
        assert_eq!(rises.covered(at("2025-02-09"), 7), 0);
        assert_eq!(rises.covered(at("2025-02-10"), 7), 3);
        assert_eq!(
            rises.covered(at("2025-02-11"), 7),
            3,
            "the 12th comes first"
        );
        assert_eq!(rises.covered(at("2025-02-19"), 7), 5);
        assert_eq!(rises.covered(at("2025-02-20"), 7), 7);
        // Never past the position asked about.
        assert_eq!(rises.covered(at("2025-02-19"), 2), 2);
    }

    #[test]
    fn dates_read_as_a_replay_reads_them_and_a_bad_one_ends_the_prefix() {
        let date = |occurred: Option<&str>| OccurrenceDate {
            position: 1,
            occurred: occurred.map(str::to_owned),
        };
        assert_eq!(
            end_of_event(&date(Some(r#"{"day": "2025-02-15"}"#))),
            Some(at("2025-02-15"))
        );
        assert_eq!(
            end_of_event(&date(Some(r#"{"month": "2025-02"}"#))),
            Some(at("2025-02-28"))
        );
        assert_eq!(end_of_event(&date(Some("null"))), None);
        assert_eq!(end_of_event(&date(None)), None);
        assert_eq!(
            end_of_event(&date(Some(r#"{"day": "February"}"#))),
            Some(DateTime::<Utc>::MAX_UTC)
        );
    }
}
