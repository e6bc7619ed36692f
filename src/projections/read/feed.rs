//! Projection change feeds: a watcher of a list-shaped projection (channels, summits,
//! commitments, divergences) gets every row once, then only the rows that changed. Owns the
//! diff against what the watcher was last sent, the wake-up when the projection advances, and
//! the count of open feeds. Knows nothing of any transport: the gRPC layer renders what a
//! [`Feed`] answers.
//!
//! - A feed reads the live projection through [`Queries`] (as the List queries do) and compares
//!   the rendered rows with the ones it last sent; a row that renders the same is not sent
//!   again. Time-derived statuses (DORMANT, LAPSED, a commitment's age) are rendered anew at
//!   each read, so they change when time passes too.
//! - It wakes when this server's runner reports progress (no polling), and otherwise reads the
//!   checkpoint every `poll` (another server may run the projection). It re-reads at least
//!   every `heartbeat` and, if nothing changed, answers a heartbeat.
//! - It does work only when asked for its next message ([`Feed::next`]): a consumer that reads
//!   slowly gets one diff of everything that changed meanwhile, never a queue of them. It holds
//!   one copy of the rows (the last sent) between messages, which the snapshot shares.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::projections::Model;
use crate::projections::engine::registry::{RunnerReport, Watching};
use crate::projections::engine::rows::{ProjectionError, ProjectionStore};
use crate::projections::read::listed::{Keyed, Listed};
use crate::projections::read::query::Queries;
use crate::projections::read::request::{ListFilter, QueryError, Source};

/// How often a feed reads the checkpoint when this server does not run the projection.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// How long a feed stays silent at most: then it re-reads and, if nothing changed, answers a
/// heartbeat.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);

/// What changed between two reads of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<T> {
    /// New rows and rows that render differently, in the new list's order.
    pub upserted: Vec<T>,
    /// Keys of rows no longer in the list, in key order.
    pub removed: Vec<String>,
}

impl<T> Changes<T> {
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

/// The rows a watcher was last sent, by key (shared with the snapshot that sends them).
#[derive(Debug, Clone)]
pub struct Sent<T> {
    rows: BTreeMap<String, Arc<T>>,
}

impl<T: Keyed + PartialEq + Clone> Sent<T> {
    /// What a snapshot of `rows` leaves the watcher with.
    pub fn new(rows: &[T]) -> Self {
        Self::shared(&rows.iter().cloned().map(Arc::new).collect::<Vec<_>>())
    }

    /// The same, holding the snapshot's own rows rather than copies of them.
    pub fn shared(rows: &[Arc<T>]) -> Self {
        Self {
            rows: rows.iter().map(|row| (row.key(), row.clone())).collect(),
        }
    }

    /// The changes from what was last sent to `rows` (the list as read now), which become what
    /// was last sent. Should a key occur twice in `rows`, the later row counts.
    pub fn advance(&mut self, rows: Vec<T>) -> Changes<T> {
        let mut previous = std::mem::take(&mut self.rows);
        // Keys in list order (a key's first place, should it occur twice).
        let mut order = Vec::new();
        for row in rows {
            let key = row.key();
            if self.rows.insert(key.clone(), Arc::new(row)).is_none() {
                order.push(key);
            }
        }
        let mut upserted = Vec::new();
        for key in order {
            let row = &self.rows[&key];
            if previous.remove(&key).as_ref() != Some(row) {
                upserted.push(T::clone(row));
            }
        }
        Changes {
            upserted,
            // Whatever is left of the previous rows is gone from the list.
            removed: previous.into_keys().collect(),
        }
    }

    /// Rows the watcher holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One message of a feed.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent<T> {
    /// The first message: every row (shared with what the feed keeps of them).
    Snapshot(Vec<Arc<T>>),
    /// What changed since the previous message.
    Changed(Changes<T>),
    /// Nothing changed for a heartbeat interval.
    Heartbeat,
}

/// A feed's message and what it reflects: the projection's position when it was read, and the
/// time its time-derived statuses are about.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMessage<T> {
    pub event: FeedEvent<T>,
    pub position: u64,
    pub reference: DateTime<Utc>,
}

/// Where a projection stands: its live generation and the position it reflects.
type Mark = (u64, u64);

/// Notices a projection's progress: this server's runner reports every commit, so while it
/// holds the projection nothing is read; otherwise the checkpoint is read every `poll`.
struct Progress {
    store: ProjectionStore,
    name: &'static str,
    local: watch::Receiver<RunnerReport>,
    poll: Duration,
    seen: Option<Mark>,
}

impl Progress {
    fn new(store: ProjectionStore, name: &'static str, poll: Duration) -> Self {
        let local = store.local().watch(name);
        Self {
            store,
            name,
            local,
            poll,
            seen: None,
        }
    }

    /// Where the projection stands now, and whether this server's runner holds it.
    async fn current(&mut self) -> Result<(Mark, bool), ProjectionError> {
        let report = *self.local.borrow_and_update();
        if report.holding {
            return Ok(((report.generation, report.position), true));
        }
        let checkpoint = self.store.checkpoint(self.name).await?;
        Ok((
            checkpoint.map_or((0, 0), |c| (c.generation, c.position)),
            false,
        ))
    }

    /// Notes where the projection stands: call it before reading the rows, so progress made
    /// while reading them wakes the next [`Progress::moved`].
    async fn mark(&mut self) -> Result<(), ProjectionError> {
        self.seen = Some(self.current().await?.0);
        Ok(())
    }

    /// Waits until the projection has moved from where it was last marked, and marks where it
    /// stands (true), or until `until` (false).
    async fn moved(&mut self, until: Instant) -> Result<bool, ProjectionError> {
        loop {
            let (mark, holding) = self.current().await?;
            if Some(mark) != self.seen {
                self.seen = Some(mark);
                return Ok(true);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(false);
            }
            let next_read = if holding {
                until
            } else {
                (now + self.poll).min(until)
            };
            tokio::select! {
                changed = self.local.changed() => {
                    // `LocalRunners` keeps every sender, so this does not happen; should it,
                    // fall back to reading the checkpoint.
                    if changed.is_err() {
                        tokio::time::sleep_until((now + self.poll).min(until)).await;
                    }
                }
                () = tokio::time::sleep_until(next_read) => {}
            }
        }
    }
}

/// How a feed follows its projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedConfig {
    /// The longest a feed stays silent: it re-reads then and, if nothing changed, answers a
    /// heartbeat.
    pub heartbeat: Duration,
    /// How often the checkpoint is read when this server does not run the projection.
    pub poll: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            heartbeat: DEFAULT_HEARTBEAT,
            poll: DEFAULT_POLL,
        }
    }
}

/// One watcher's feed of a projection. Dropping it ends it.
pub struct Feed<T: Listed> {
    queries: Queries,
    filter: ListFilter,
    progress: Progress,
    sent: Sent<T>,
    config: FeedConfig,
    last_message: Instant,
    _watching: Watching,
}

impl<T: Listed> Feed<T> {
    /// Opens a feed: reads the live projection once it reflects `min_position` (waiting at
    /// most until `deadline`, else [`QueryError::NotYet`]) and answers the feed and its first
    /// message, the snapshot. A bad filter is [`QueryError::Invalid`] naming the field.
    pub async fn start(
        queries: Queries,
        filter: ListFilter,
        min_position: u64,
        deadline: Instant,
        config: FeedConfig,
    ) -> Result<(Self, FeedMessage<T>), QueryError> {
        let mut progress = Progress::new(queries.store().clone(), T::Model::NAME, config.poll);
        progress.mark().await?;
        let source = Source::Live {
            min_position,
            deadline,
        };
        let answer = queries.all::<T>(source, &filter).await?;
        let watching = queries.store().watchers().watching(T::Model::NAME);
        let rows: Vec<Arc<T>> = answer.items.into_iter().map(Arc::new).collect();
        let feed = Self {
            sent: Sent::shared(&rows),
            queries,
            filter,
            progress,
            config,
            last_message: Instant::now(),
            _watching: watching,
        };
        let snapshot = FeedMessage {
            event: FeedEvent::Snapshot(rows),
            position: answer.position,
            reference: answer.reference,
        };
        Ok((feed, snapshot))
    }

    /// The next message: waits until the projection advances and its rows differ from what
    /// was last sent (the changes), or until a heartbeat is due (the changes if any, else a
    /// heartbeat). Does nothing until called, so a consumer that calls late gets everything
    /// that changed meanwhile in one message. Dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<FeedMessage<T>, QueryError> {
        loop {
            let heartbeat_at = self.last_message + self.config.heartbeat;
            let moved = self.progress.moved(heartbeat_at).await?;
            let heartbeat_due = Instant::now() >= heartbeat_at;
            if !moved && !heartbeat_due {
                continue;
            }
            let source = Source::Live {
                min_position: 0,
                deadline: Instant::now(),
            };
            let answer = self.queries.all::<T>(source, &self.filter).await?;
            let changes = self.sent.advance(answer.items);
            let event = if !changes.is_empty() {
                FeedEvent::Changed(changes)
            } else if heartbeat_due {
                FeedEvent::Heartbeat
            } else {
                continue;
            };
            self.last_message = Instant::now();
            return Ok(FeedMessage {
                event,
                position: answer.position,
                reference: answer.reference,
            });
        }
    }

    /// Rows the watcher holds (as last sent).
    pub fn rows(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projections::engine::registry::{LocalRunners, Watchers};

    #[derive(Debug, Clone, PartialEq)]
    struct Item {
        key: &'static str,
        value: u32,
    }

    impl Keyed for Item {
        fn key(&self) -> String {
            self.key.to_owned()
        }
    }

    fn item(key: &'static str, value: u32) -> Item {
        Item { key, value }
    }

    #[test]
    fn a_new_row_is_upserted() {
        let mut sent = Sent::new(&[item("a", 1)]);
        let changes = sent.advance(vec![item("a", 1), item("b", 2)]);
        assert_eq!(changes.upserted, [item("b", 2)]);
        assert!(changes.removed.is_empty());
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn a_changed_row_is_upserted_whole() {
        let mut sent = Sent::new(&[item("a", 1), item("b", 2)]);
        let changes = sent.advance(vec![item("a", 1), item("b", 3)]);
        assert_eq!(changes.upserted, [item("b", 3)]);
        assert!(changes.removed.is_empty());
    }

    #[test]
    fn a_row_gone_from_the_list_is_removed_by_key() {
        let mut sent = Sent::new(&[item("a", 1), item("b", 2), item("c", 3)]);
        let changes = sent.advance(vec![item("b", 2)]);
        assert!(changes.upserted.is_empty());
        assert_eq!(changes.removed, ["a", "c"]);
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn unchanged_rows_make_no_changes() {
        let rows = vec![item("a", 1), item("b", 2)];
        let mut sent = Sent::new(&rows);
        let changes = sent.advance(rows.clone());
        assert!(changes.is_empty(), "{changes:?}");
        // And again: what was sent is still the same.
        assert!(sent.advance(rows).is_empty());
    }

    #[test]
    fn additions_changes_and_removals_come_together_in_list_order() {
        let mut sent = Sent::new(&[item("a", 1), item("b", 2), item("c", 3)]);
        let changes = sent.advance(vec![item("d", 4), item("c", 30), item("a", 1)]);
        assert_eq!(changes.upserted, [item("d", 4), item("c", 30)]);
        assert_eq!(changes.removed, ["b"]);
        // The next diff is against the list as last read.
        let changes = sent.advance(vec![item("a", 1)]);
        assert!(changes.upserted.is_empty());
        assert_eq!(changes.removed, ["c", "d"]);
    }

    #[test]
    fn a_key_twice_in_one_read_counts_once_as_its_later_row() {
        let mut sent = Sent::new(&[item("a", 1)]);
        let changes = sent.advance(vec![item("a", 2), item("a", 3)]);
        assert_eq!(changes.upserted, [item("a", 3)]);
        assert!(changes.removed.is_empty());
        assert_eq!(sent.len(), 1);
    }

    #[test]
    fn everything_gone_removes_every_key_and_an_empty_start_adds_every_row() {
        let mut sent = Sent::new(&[]);
        assert!(sent.is_empty());
        let changes = sent.advance(vec![item("a", 1), item("b", 2)]);
        assert_eq!(changes.upserted, [item("a", 1), item("b", 2)]);
        let changes = sent.advance(Vec::new());
        assert_eq!(changes.removed, ["a", "b"]);
        assert!(sent.is_empty());
    }

    #[test]
    fn channels_turning_dormant_as_time_passes_are_upserted() {
        use crate::projections::models::channels::Channels;
        use crate::projections::models::channels::view::ChannelView;
        use crate::projections::testing::{founding_facts, replay};
        let model: Channels = replay(&founding_facts());
        let views = |reference: &str| -> Vec<ChannelView> {
            model
                .channels()
                .map(|c| c.view(reference.parse().unwrap(), chrono::Duration::days(90)))
                .collect()
        };
        let early = views("2025-03-01T00:00:00Z");
        assert!(early.iter().all(|c| c.status == "ACTIVE"), "{early:?}");
        let mut sent = Sent::new(&early);
        // The same day again: nothing to send.
        assert!(sent.advance(views("2025-03-01T12:00:00Z")).is_empty());
        // Long after: every channel is dormant, each an upsert, none removed.
        let changes = sent.advance(views("2025-12-01T00:00:00Z"));
        assert_eq!(changes.upserted.len(), early.len());
        assert!(changes.upserted.iter().all(|c| c.status == "DORMANT"));
        assert!(changes.removed.is_empty());
    }

    /// A store whose database is nowhere: any read of it fails.
    fn unreachable_store(local: LocalRunners) -> ProjectionStore {
        let options = sqlx::postgres::PgConnectOptions::new()
            .host("127.0.0.1")
            .port(1);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(100))
            .connect_lazy_with(options);
        ProjectionStore::new(pool, local)
    }

    fn holding_at(position: u64) -> RunnerReport {
        RunnerReport {
            holding: true,
            generation: 1,
            position,
            building: None,
        }
    }

    #[tokio::test]
    async fn while_this_server_runs_the_projection_a_feed_waits_on_its_reports_without_reading() {
        let local = LocalRunners::default();
        local.publish("channels", holding_at(5));
        // Were the feed to poll, it would be once an hour.
        let hour = Duration::from_secs(3600);
        let mut progress = Progress::new(unreachable_store(local.clone()), "channels", hour);
        progress.mark().await.expect("no database read");
        // No progress: no wake, and no read of the database (it would fail).
        let soon = Instant::now() + Duration::from_millis(300);
        assert!(!progress.moved(soon).await.expect("no database read"));
        // The runner reports a commit: the feed wakes at once.
        let waiting = tokio::spawn(async move {
            let moved = progress
                .moved(Instant::now() + Duration::from_secs(30))
                .await;
            (moved.expect("no database read"), Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reported = Instant::now();
        local.publish("channels", holding_at(6));
        let (moved, woke) = waiting.await.unwrap();
        assert!(moved);
        assert!(
            woke - reported < Duration::from_secs(5),
            "woken {:?} after the report",
            woke - reported
        );
    }

    #[tokio::test]
    async fn a_rebuild_swapped_in_at_the_same_position_wakes_a_feed() {
        let local = LocalRunners::default();
        local.publish("summits", holding_at(9));
        let mut progress = Progress::new(
            unreachable_store(local.clone()),
            "summits",
            Duration::from_secs(1),
        );
        progress.mark().await.unwrap();
        local.publish(
            "summits",
            RunnerReport {
                generation: 2,
                ..holding_at(9)
            },
        );
        assert!(progress.moved(Instant::now()).await.unwrap());
        // A rebuild's own progress is no change of the live rows.
        local.publish(
            "summits",
            RunnerReport {
                generation: 2,
                building: Some(4),
                ..holding_at(9)
            },
        );
        assert!(!progress.moved(Instant::now()).await.unwrap());
    }

    #[test]
    fn open_feeds_are_counted_until_dropped() {
        let watchers = Watchers::default();
        let mut open = watchers.subscribe();
        let first = watchers.watching("channels");
        let second = watchers.watching("summits");
        assert_eq!(watchers.open(), 2);
        drop(first);
        assert_eq!(*open.borrow_and_update(), 1);
        drop(second);
        assert_eq!(watchers.open(), 0);
        assert!(open.has_changed().unwrap());
    }
}
