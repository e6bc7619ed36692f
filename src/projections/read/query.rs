//! Answers queries on the projections: from the live read models (after waiting, if asked,
//! until they reflect a position: read-your-writes), or as of an earlier position or time, by
//! replaying the log into fresh models in memory. Replays keep snapshots (every
//! `snapshot_every` events) so a later `as of` does not start from the beginning again.
//! Time-dependent statuses (dormant channels, lapsed commitments) are derived here, against
//! the time the answer is about: now, or the `as of` time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;

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
use crate::projections::{Model, Row};

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// A channel nobody used for this long is dormant.
    pub dormant_after: Duration,
    /// Replays keep a snapshot every this many events.
    pub snapshot_every: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            dormant_after: Duration::days(90),
            snapshot_every: 10_000,
        }
    }
}

/// Rows and what they reflect.
struct Loaded {
    rows: Vec<Row>,
    position: u64,
    reference: DateTime<Utc>,
}

type Snapshots = HashMap<&'static str, BTreeMap<u64, Arc<Vec<Row>>>>;

/// Snapshots kept per projection; the oldest go first.
const MAX_SNAPSHOTS: usize = 32;

#[derive(Clone)]
pub struct Queries {
    store: ProjectionStore,
    config: QueryConfig,
    snapshots: Arc<Mutex<Snapshots>>,
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
fn replayed<M: Model>(
    model: &M,
    filter: &RowFilter,
    wants_actors: bool,
    position: u64,
    reference: DateTime<Utc>,
) -> Loaded {
    let mut rows: Vec<Row> = model
        .rows()
        .into_iter()
        .filter(|r| (wants_actors || r.status != ACTOR_STATUS) && passes(r, filter))
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
            config,
            snapshots: Arc::default(),
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
                let model = self.replay::<M>(position).await?;
                Ok(replayed(&model, filter, wants_actors, position, reference))
            }
            Source::On { date, as_of } => {
                let position = match as_of {
                    Some(as_of) => self.bound(as_of).await?.0,
                    None => self.store.head().await?,
                };
                let model = self.replay_on::<M>(position, date).await?;
                // Statuses that depend on time are judged at the end of that day.
                Ok(replayed(
                    &model,
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

    /// A fresh model fed the log up to `position`, from the nearest snapshot before it.
    async fn replay<M: Model>(&self, position: u64) -> Result<M, QueryError> {
        let start = {
            let snapshots = self.snapshots.lock().expect("snapshots lock");
            snapshots
                .get(M::NAME)
                .and_then(|by_position| by_position.range(..=position).next_back())
                .map(|(at, rows)| (*at, rows.clone()))
        };
        let (mut at, mut model) = match start {
            Some((at, rows)) => (
                at,
                M::from_rows(rows.as_ref().clone()).map_err(QueryError::BadRow)?,
            ),
            None => (0, M::default()),
        };
        let mut since_snapshot = 0;
        let mut facts = Box::pin(self.store.facts_between(at, position));
        while let Some(fact) = facts.try_next().await? {
            at = fact.position;
            model.apply(&fact);
            since_snapshot += 1;
            if since_snapshot >= self.config.snapshot_every {
                self.keep_snapshot::<M>(at, &model);
                since_snapshot = 0;
            }
        }
        Ok(model)
    }

    /// A fresh model fed what had happened by the end of `date`, as the log up to `position`
    /// tells it (see `on_date`). Not kept in snapshots: a replay on a date starts from the
    /// beginning of the log.
    async fn replay_on<M: Model>(&self, position: u64, date: NaiveDate) -> Result<M, QueryError> {
        let mut model = M::default();
        let mut on = OnDate::new(date);
        let mut facts = Box::pin(self.store.facts_between(0, position));
        while let Some(fact) = facts.try_next().await? {
            if let Some(fact) = on.admit(fact) {
                model.apply(&fact);
            }
        }
        Ok(model)
    }

    fn keep_snapshot<M: Model>(&self, at: u64, model: &M) {
        let rows = Arc::new(model.rows());
        let mut snapshots = self.snapshots.lock().expect("snapshots lock");
        let by_position = snapshots.entry(M::NAME).or_default();
        by_position.insert(at, rows);
        while by_position.len() > MAX_SNAPSHOTS {
            let oldest = *by_position.keys().next().expect("not empty");
            by_position.remove(&oldest);
        }
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
