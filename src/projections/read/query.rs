//! Answers queries on the projections: from the live read models (after waiting, if asked,
//! until they reflect a position: read-your-writes), or as of an earlier position or time, by
//! replaying the log into fresh models in memory. A replay keeps the rows it ends with (in
//! `Snapshots`, within a budget of bytes), so the next page of the same answer, or an answer
//! at a later position, does not start from the beginning again; and only so many replays run
//! at once, so the memory they take stays bounded however many readers ask.
//! Time-dependent statuses (dormant channels, lapsed commitments) are derived here, against
//! the time the answer is about: now, or the `as of` time.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::monitoring::{
    AS_OF_ANSWERS, AS_OF_KEPT_BYTES, AS_OF_REPLAYED_EVENTS, AS_OF_REPLAYS_RUNNING,
    AS_OF_REPLAYS_WAITING,
};
use crate::projections::engine::rows::{ProjectionStore, RowFilter, WaitError};
use crate::projections::models::common::{ACTOR_STATUS, ActorInfo};
use crate::projections::models::relations::pair_key;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::timeline::Timeline;
use crate::projections::read::listed::{Listed, Reading};
use crate::projections::read::on_date::{OnDate, end_of};
use crate::projections::read::request::{
    Answer, AsOf, ListFilter, Page, QueryError, Records, Source, paged, state_code, statuses,
};
use crate::projections::read::snapshots::Snapshots;
use crate::projections::{Model, Row};

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// A channel nobody used for this long is dormant.
    pub dormant_after: Duration,
    /// The bytes the rows of replayed models may hold between answers.
    pub snapshot_bytes: usize,
    /// Replays (as of a position, or on a date) that run at once; more wait for a turn.
    pub replays: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            dormant_after: Duration::days(90),
            snapshot_bytes: 256 << 20,
            replays: 2,
        }
    }
}

/// Rows and what they reflect.
struct Loaded {
    rows: Vec<Row>,
    position: u64,
    reference: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Queries {
    store: ProjectionStore,
    config: QueryConfig,
    snapshots: Arc<Mutex<Snapshots>>,
    replays: Arc<Semaphore>,
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

fn answered_from(from: &'static str) {
    metrics::counter!(AS_OF_ANSWERS, "from" => from).increment(1);
}

/// Every item, as one answer without pages.
fn whole<T>(items: Vec<T>, loaded: &Loaded) -> Answer<T> {
    Answer {
        total: items.len(),
        items,
        position: loaded.position,
        reference: loaded.reference,
        next_page_token: String::new(),
    }
}

/// A replayed model's rows passing `filter`, in list order.
fn replayed(
    rows: &[Row],
    filter: &RowFilter,
    wants_actors: bool,
    position: u64,
    reference: DateTime<Utc>,
) -> Loaded {
    let mut rows: Vec<Row> = rows
        .iter()
        .filter(|r| (wants_actors || r.status != ACTOR_STATUS) && passes(r, filter))
        .cloned()
        .collect();
    rows.sort_by(|a, b| (&a.sort_key, &a.key).cmp(&(&b.sort_key, &b.key)));
    Loaded {
        rows,
        position,
        reference,
    }
}

/// Applies a row filter in memory, as `load_rows` does in SQL (for replayed models).
fn passes(row: &Row, filter: &RowFilter) -> bool {
    filter
        .actor
        .as_ref()
        .is_none_or(|actor| row.actors.contains(actor))
        && filter.states.iter().all(|state| row.states.contains(state))
        && (filter.status.is_empty() || filter.status.contains(&row.status))
}

impl Queries {
    pub fn new(store: ProjectionStore, config: QueryConfig) -> Self {
        Self {
            store,
            snapshots: Arc::new(Mutex::new(Snapshots::new(config.snapshot_bytes))),
            replays: Arc::new(Semaphore::new(config.replays.max(1))),
            config,
        }
    }

    pub fn store(&self) -> &ProjectionStore {
        &self.store
    }

    async fn load<M: Model>(
        &self,
        source: Source,
        filter: &RowFilter,
    ) -> Result<Loaded, QueryError> {
        // Actor rows (the registry) only when asked for by status; lists leave them out.
        let wants_actors = filter.status.iter().any(|s| s == ACTOR_STATUS);
        match source {
            Source::Live {
                min_position,
                deadline,
            } => {
                if min_position > 0 {
                    self.store
                        .wait_for(M::NAME, min_position, deadline)
                        .await
                        .map_err(|error| match error {
                            WaitError::TimedOut { position } => QueryError::NotYet {
                                projection: M::NAME,
                                position,
                                wanted: min_position,
                            },
                            WaitError::Failed(error) => error.into(),
                        })?;
                }
                let (rows, position) = self.store.load_rows(M::NAME, filter).await?;
                let rows = rows
                    .into_iter()
                    .filter(|r| wants_actors || r.status != ACTOR_STATUS)
                    .collect();
                Ok(Loaded {
                    rows,
                    position,
                    reference: Utc::now(),
                })
            }
            Source::AsOf(as_of) => {
                let (position, reference) = self.bound(as_of).await?;
                let rows = self.replay::<M>(position).await?;
                Ok(replayed(&rows, filter, wants_actors, position, reference))
            }
            Source::On { date, as_of } => {
                let position = match as_of {
                    Some(as_of) => self.bound(as_of).await?.0,
                    None => self.store.head().await?,
                };
                let rows = self.replay_on::<M>(position, date).await?;
                // Statuses that depend on time are judged at the end of that day.
                Ok(replayed(
                    &rows,
                    filter,
                    wants_actors,
                    position,
                    end_of(date),
                ))
            }
        }
    }

    /// The log position an as-of answer reflects (a position past the head is the head) and
    /// the time it is about (for a position: when it was recorded).
    pub async fn bound(&self, as_of: AsOf) -> Result<(u64, DateTime<Utc>), QueryError> {
        Ok(match as_of {
            AsOf::Time(time) => (self.store.position_at(time).await?, time),
            AsOf::Position(position) => {
                let head = self.store.head().await?;
                let position = position.min(head);
                let reference = self
                    .store
                    .recorded_at(position)
                    .await?
                    .unwrap_or_else(Utc::now);
                (position, reference)
            }
        })
    }

    /// The rows of a model fed the log up to `position`: kept ones, or a replay from the
    /// nearest snapshot before it (whose rows are then kept).
    async fn replay<M: Model>(&self, position: u64) -> Result<Arc<Vec<Row>>, QueryError> {
        if let Some((at, rows)) = self.nearest::<M>(position)
            && at == position
        {
            answered_from("kept");
            return Ok(rows);
        }
        let _turn = self.turn().await;
        // Another replay may have ended on, or nearer, this position while this one waited.
        let (from, mut model) = match self.nearest::<M>(position) {
            Some((at, rows)) if at == position => {
                answered_from("kept");
                return Ok(rows);
            }
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
        let rows = Arc::new(model.rows());
        drop(model);
        let mut snapshots = self.snapshots.lock().expect("snapshots lock");
        snapshots.keep(M::NAME, position, rows.clone());
        metrics::gauge!(AS_OF_KEPT_BYTES).set(snapshots.held() as f64);
        Ok(rows)
    }

    /// The kept rows of `M` nearest at or before `position`.
    fn nearest<M: Model>(&self, position: u64) -> Option<(u64, Arc<Vec<Row>>)> {
        self.snapshots
            .lock()
            .expect("snapshots lock")
            .nearest(M::NAME, position)
    }

    /// A turn to replay: held while the replay runs (at most `QueryConfig::replays` at once).
    async fn turn(&self) -> Turn {
        let waiting = metrics::gauge!(AS_OF_REPLAYS_WAITING);
        waiting.increment(1.0);
        let permit = self.replays.clone().acquire_owned().await;
        waiting.decrement(1.0);
        metrics::gauge!(AS_OF_REPLAYS_RUNNING).increment(1.0);
        Turn {
            _permit: permit.expect("never closed"),
        }
    }

    /// The rows of a model fed what had happened by the end of `date`, as the log up to
    /// `position` tells it (see `on_date`). Not kept: a replay on a date starts from the
    /// beginning of the log.
    async fn replay_on<M: Model>(
        &self,
        position: u64,
        date: NaiveDate,
    ) -> Result<Vec<Row>, QueryError> {
        let _turn = self.turn().await;
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
        Ok(model.rows())
    }

    /// One page of the items of `V`'s projection passing `filter`.
    pub async fn list<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<V>, QueryError> {
        paged(self.all::<V>(source, filter).await?, page)
    }

    /// Every item passing `filter`, unpaged (what a get searches and a change feed compares).
    pub async fn all<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<V>, QueryError> {
        let wanted = statuses("status", &filter.status, V::STATUSES)?;
        let mut rows = filter.rows()?;
        rows.status = V::ROWS.iter().map(|s| (*s).to_owned()).collect();
        let loaded = self.load::<V::Model>(source, &rows).await?;
        let reading = Reading {
            reference: loaded.reference,
            dormant_after: self.config.dormant_after,
            records: filter.records,
        };
        let mut items = Vec::new();
        for row in &loaded.rows {
            if let Some(item) = V::from_row(row, &reading).map_err(QueryError::BadRow)?
                && (wanted.is_empty()
                    || item.status().is_some_and(|s| wanted.iter().any(|w| w == s)))
                && (!filter.pending_only || item.pending())
            {
                items.push(item);
            }
        }
        Ok(whole(items, &loaded))
    }

    /// The items among those passing `filter` that `key` names (searched among all of them,
    /// not one page), or NotFound.
    pub async fn get<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
        key: &str,
    ) -> Result<Answer<V>, QueryError> {
        let answer = self.all::<V>(source, filter).await?;
        let named = V::chosen(
            answer
                .items
                .into_iter()
                .filter(|item| item.named_by(key))
                .collect(),
        );
        if named.is_empty() {
            return Err(QueryError::NotFound(V::not_found(key)));
        }
        Ok(Answer {
            total: named.len(),
            items: named,
            next_page_token: String::new(),
            ..answer
        })
    }

    /// The relations of two states.
    pub async fn relation(
        &self,
        source: Source,
        a: &str,
        b: &str,
        records: Records,
    ) -> Result<Answer<RelationView>, QueryError> {
        let (a, b) = (state_code("states", a)?, state_code("states", b)?);
        let filter = ListFilter {
            state_pair: Some((a.clone(), b.clone())),
            records,
            ..ListFilter::default()
        };
        self.get(source, &filter, &pair_key(&a, &b)).await
    }

    /// Every actor registered in the log (its name, kind and state), from the registry the
    /// timeline model keeps: what lets a reader show names rather than ids.
    pub async fn actors(&self, source: Source) -> Result<Answer<ActorInfo>, QueryError> {
        let filter = RowFilter {
            status: vec![ACTOR_STATUS.to_owned()],
            ..RowFilter::default()
        };
        let loaded = self.load::<Timeline>(source, &filter).await?;
        let actors = loaded
            .rows
            .iter()
            .map(|row| row.decode::<ActorInfo>("actor").map_err(QueryError::BadRow))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(whole(actors, &loaded))
    }
}
