//! Replays of the log into fresh models in memory: for answers as of a position that recorded
//! versions cannot give (or `--as-of-from replay` asks for), and for answers on a day, which
//! start from the recorded versions where the log allows (`versioned::on_day`). Only so many
//! run at once (`--as-of-replays`), so the memory they take stays bounded however many
//! readers ask. What one found is kept (`Snapshots`, within `--as-of-cache-mib`): the next
//! page of the same answer finds it, and an answer as of a later position starts from a
//! replay's rows. Readers asking for the same rows while they are being worked out wait for
//! that rather than run their own (an actor's page on a day asks for the timeline twice at
//! once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chrono::NaiveDate;
use futures::TryStreamExt;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::monitoring::{
    AS_OF_ANSWERS, AS_OF_KEPT_BYTES, AS_OF_REPLAYED_EVENTS, AS_OF_REPLAYS_RUNNING,
    AS_OF_REPLAYS_WAITING,
};
use crate::projections::engine::rows::ProjectionStore;
use crate::projections::read::log_dates::LogDates;
use crate::projections::read::on_date::OnDate;
use crate::projections::read::request::QueryError;
use crate::projections::read::snapshots::{Held, Replay, Snapshots};
use crate::projections::read::versioned::{self, VersionedRows};
use crate::projections::read::window::in_list_order;
use crate::projections::{Model, Row};

/// Counts an as-of or on-day answer by where it began (`monitoring::AS_OF_ANSWERS`).
pub(super) fn answered_from(from: &'static str) {
    metrics::counter!(AS_OF_ANSWERS, "from" => from).increment(1);
}

#[derive(Clone)]
pub(super) struct Replays {
    store: ProjectionStore,
    snapshots: Arc<Mutex<Snapshots>>,
    turns: Arc<Semaphore>,
    /// The replays running or waiting for a turn, each behind a lock its askers take in turn.
    running: Arc<Mutex<HashMap<Replay, Weak<tokio::sync::Mutex<()>>>>>,
    dates: Arc<LogDates>,
    /// Events an answer on a day replays on top of the recorded rows at most.
    most_on_top: u64,
}

/// The rows of an answer as of a position or on a day.
pub(super) enum Replayed {
    /// A replay's rows, in list order.
    Rows(Arc<Vec<Row>>),
    /// The rows on record, and those a replay on top of them changed (on a day only).
    OnVersions(VersionedRows),
}

/// A replay's turn; the running gauge counts it until it is dropped.
struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        metrics::gauge!(AS_OF_REPLAYS_RUNNING).decrement(1.0);
    }
}

impl Replays {
    /// Replays reading `store`, at most `turns` at once, keeping at most `kept_bytes` of rows;
    /// an answer on a day replays at most `most_on_top` events on top of the recorded rows.
    pub(super) fn new(
        store: ProjectionStore,
        kept_bytes: usize,
        turns: usize,
        most_on_top: u64,
    ) -> Self {
        Self {
            snapshots: Arc::new(Mutex::new(Snapshots::new(kept_bytes))),
            turns: Arc::new(Semaphore::new(turns.max(1))),
            running: Arc::new(Mutex::new(HashMap::new())),
            dates: Arc::new(LogDates::new(store.clone())),
            store,
            most_on_top,
        }
    }

    /// The rows of `M` fed the log up to `position`.
    pub(super) async fn as_of<M: Model>(&self, position: u64) -> Result<Arc<Vec<Row>>, QueryError> {
        let replay = Replay {
            projection: M::NAME,
            on: None,
            on_versions: false,
            position,
        };
        match self.rows::<M>(replay, false, false).await? {
            Replayed::Rows(rows) => Ok(rows),
            Replayed::OnVersions(_) => unreachable!("only answers on a day start from versions"),
        }
    }

    /// The rows of `M` as of `position` from the recorded versions and the events since
    /// replayed on top (`versioned`), if the projection's rows are on record there: what that
    /// replay changed is kept, so the answer's later pages (and the same answer again) only
    /// reopen the versions.
    pub(super) async fn as_of_versions<M: Model>(
        &self,
        position: u64,
    ) -> Result<Option<VersionedRows>, QueryError> {
        let replay = Replay {
            projection: M::NAME,
            on: None,
            on_versions: true,
            position,
        };
        if let Some(Replayed::OnVersions(rows)) = self.kept::<M>(&replay, false).await? {
            return Ok(Some(rows));
        }
        let rows = versioned::versioned::<M>(&self.store, position).await?;
        if let Some(rows) = &rows {
            answered_from("versions");
            self.keep(replay, Held::Changed(rows.changed()), false);
        }
        Ok(rows)
    }

    /// The rows of `M` fed what had happened by the end of `date`, as the log up to
    /// `position` tells it (see `on_date`), for an answer at the log's head (`position` is
    /// the head, or was when its first page was answered) or not (`as of`). From the rows on
    /// record where the log begins with events that had all happened by then, if
    /// `from_versions` (`log_dates`, `versioned::on_day`); else replayed from the start.
    pub(super) async fn on<M: Model>(
        &self,
        position: u64,
        date: NaiveDate,
        at_head: bool,
        from_versions: bool,
    ) -> Result<Replayed, QueryError> {
        self.rows::<M>(on_day::<M>(position, date), at_head, from_versions)
            .await
    }

    /// Whether what an answer on `date` at the log's head found at `position` is kept (its
    /// replay's rows, or what its replay on top of recorded versions changed): a later page
    /// of that answer, naming the position, is answered there. (Other positions a page may
    /// not name: a reader's page token cannot ask as of the past.)
    pub(super) fn at_head<M: Model>(&self, position: u64, date: NaiveDate) -> bool {
        self.snapshots
            .lock()
            .expect("snapshots lock")
            .at_head(&on_day::<M>(position, date))
    }

    /// The rows of `replay`: kept ones, or those of a replay (which are then kept). As of a
    /// position, it starts from the nearest kept rows before it; on a day, from the rows on
    /// record (if `from_versions` and the log allows) or the log's start.
    async fn rows<M: Model>(
        &self,
        replay: Replay,
        at_head: bool,
        from_versions: bool,
    ) -> Result<Replayed, QueryError> {
        if let Some(found) = self.kept::<M>(&replay, at_head).await? {
            return Ok(found);
        }
        let _alone = self.alone(replay).await;
        // The same replay may have ended while this one waited.
        if let Some(found) = self.kept::<M>(&replay, at_head).await? {
            return Ok(found);
        }
        let _turn = self.turn().await;
        if let (Some(date), true) = (replay.on, from_versions) {
            let covered = self.dates.covered(date, replay.position).await?;
            let on_versions = versioned::on_day::<M>(
                &self.store,
                covered,
                replay.position,
                date,
                self.most_on_top,
            )
            .await?;
            if let Some(rows) = on_versions {
                answered_from("versions");
                self.keep(replay, Held::Changed(rows.changed()), at_head);
                return Ok(Replayed::OnVersions(rows));
            }
        }
        let mut rows = match replay.on {
            None => self.replay_from_nearest::<M>(replay.position).await?,
            Some(date) => {
                self.replay_on_from_start::<M>(replay.position, date)
                    .await?
            }
        };
        in_list_order(&mut rows);
        let rows = Arc::new(rows);
        self.keep(replay, Held::Rows(rows.clone()), at_head);
        Ok(Replayed::Rows(rows))
    }

    fn keep(&self, replay: Replay, held: Held, at_head: bool) {
        let mut snapshots = self.snapshots.lock().expect("snapshots lock");
        snapshots.keep(replay, held, at_head);
        metrics::gauge!(AS_OF_KEPT_BYTES).set(snapshots.held() as f64);
    }

    /// What is kept of `replay`: its rows, or the rows its replay on top of recorded versions
    /// changed, with those versions (if they are still on record).
    async fn kept<M: Model>(
        &self,
        replay: &Replay,
        at_head: bool,
    ) -> Result<Option<Replayed>, QueryError> {
        let held = self
            .snapshots
            .lock()
            .expect("snapshots lock")
            .exact(replay, at_head);
        let found = match held {
            None => None,
            Some(Held::Rows(rows)) => Some(Replayed::Rows(rows)),
            Some(Held::Changed(changed)) => versioned::versioned_again::<M>(&self.store, changed)
                .await?
                .map(Replayed::OnVersions),
        };
        if found.is_some() {
            answered_from("kept");
        }
        Ok(found)
    }

    /// The lock of `replay`, held while it runs: one of the same rows at a time.
    async fn alone(&self, replay: Replay) -> OwnedMutexGuard<()> {
        let lock = {
            let mut running = self.running.lock().expect("running lock");
            running.retain(|_, lock| lock.strong_count() > 0);
            match running.get(&replay).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    running.insert(replay, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    /// A turn to replay: held while the replay runs (at most `--as-of-replays` at once).
    async fn turn(&self) -> Turn {
        let waiting = metrics::gauge!(AS_OF_REPLAYS_WAITING);
        waiting.increment(1.0);
        let permit = self.turns.clone().acquire_owned().await;
        waiting.decrement(1.0);
        metrics::gauge!(AS_OF_REPLAYS_RUNNING).increment(1.0);
        Turn {
            _permit: permit.expect("never closed"),
        }
    }

    /// A model fed the log up to `position`, from the nearest kept rows before it.
    async fn replay_from_nearest<M: Model>(&self, position: u64) -> Result<Vec<Row>, QueryError> {
        let nearest = self
            .snapshots
            .lock()
            .expect("snapshots lock")
            .nearest(M::NAME, position);
        let (from, mut model) = match nearest {
            Some((at, rows)) => {
                answered_from("snapshot");
                let model = M::from_rows(rows.as_ref().clone()).map_err(QueryError::BadRow)?;
                (at, model)
            }
            None => {
                answered_from("log");
                (0, M::default())
            }
        };
        let applied = metrics::counter!(AS_OF_REPLAYED_EVENTS);
        let mut facts = Box::pin(self.store.facts_between(from, position));
        while let Some(fact) = facts.try_next().await? {
            model.apply(&fact);
            applied.increment(1);
        }
        Ok(model.into_rows())
    }

    /// A model fed what had happened by the end of `date`, as the log up to `position` tells
    /// it: a replay from the log's start.
    async fn replay_on_from_start<M: Model>(
        &self,
        position: u64,
        date: NaiveDate,
    ) -> Result<Vec<Row>, QueryError> {
        answered_from("log");
        let applied = metrics::counter!(AS_OF_REPLAYED_EVENTS);
        let mut model = M::default();
        let mut on = OnDate::new(date);
        let mut facts = Box::pin(self.store.facts_between(0, position));
        while let Some(fact) = facts.try_next().await? {
            applied.increment(1);
            if let Some(fact) = on.admit(fact) {
                model.apply(&fact);
            }
        }
        Ok(model.into_rows())
    }
}

/// The replay of `M` on `date` at `position`.
fn on_day<M: Model>(position: u64, date: NaiveDate) -> Replay {
    Replay {
        projection: M::NAME,
        on: Some(date),
        on_versions: false,
        position,
    }
}
