//! Answers queries on the projections: from the live read models (after waiting, if asked,
//! until they reflect a position: read-your-writes), or as of an earlier position or time:
//! from the rows the projections record as of each commit, with the few events since
//! replayed on top (`versioned`), or, where there are none (or `--as-of-from replay` asks
//! it), by replaying the log into fresh models in memory (`replays`, which keep the rows
//! they end with for the next page); on a day, the same ways (`replays`).
//! Time-dependent statuses (dormant channels, lapsed commitments) are derived here, against
//! the time the answer is about: now, or the `as of` time. A list holds one page of items
//! however long it is (`window`): PostgreSQL pages it when every passing row is an item, else
//! the rows pass one at a time.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::monitoring::LIST_ROWS;
use crate::projections::engine::rows::{ProjectionStore, RowFilter, WaitError};
use crate::projections::models::common::{ACTOR_STATUS, ActorInfo};
use crate::projections::models::relations::pair_key;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::timeline::Timeline;
use crate::projections::read::listed::{Listed, Reading};
use crate::projections::read::on_date::end_of;
use crate::projections::read::page_token::{
    PageStart, at_position, page_bounds, page_position, token_after,
};
use crate::projections::read::replays::{Replayed, Replays};
use crate::projections::read::request::{
    Answer, AsOf, ListFilter, Page, QueryError, Records, Source, state_code, statuses,
};
use crate::projections::read::versioned::VersionedRows;
use crate::projections::read::window::{
    RowsPage, Window, each_replayed, list_rows, lookups, page_replayed, whole,
};
use crate::projections::{Model, Row};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// A channel nobody used for this long is dormant.
    pub dormant_after: Duration,
    /// The bytes the rows of replayed models may hold between answers.
    pub snapshot_bytes: usize,
    /// Replays (as of a position, or on a date) that run at once; more wait for a turn.
    pub replays: usize,
    /// Items one change feed may hold (`all`).
    pub watch_rows: usize,
    /// Where as-of answers come from (`--as-of-from`).
    pub as_of_from: AsOfFrom,
    /// The most events an answer on a day replays on top of the recorded rows before it
    /// replays the log from its start instead (`--on-day-max-events-on-top`).
    pub on_day_most_on_top: u64,
}

/// Events an answer on a day replays on top of the recorded rows at most, by default: four
/// times the marks' spacing, more than a log recorded a few days out of date order needs.
pub const DEFAULT_ON_DAY_MOST_ON_TOP: u64 = 16_384;

/// Where as-of answers come from.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AsOfFrom {
    /// The rows recorded as of a commit, and a short replay on top (`versioned`).
    #[default]
    Versions,
    /// A replay of the log from its start.
    Replay,
}

/// Items a change feed may hold by default (`--max-watch-rows`).
pub const DEFAULT_WATCH_ROWS: usize = 100_000;

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            dormant_after: Duration::days(90),
            snapshot_bytes: 256 << 20,
            replays: 2,
            watch_rows: DEFAULT_WATCH_ROWS,
            as_of_from: AsOfFrom::Versions,
            on_day_most_on_top: DEFAULT_ON_DAY_MOST_ON_TOP,
        }
    }
}

#[derive(Clone)]
pub struct Queries {
    store: ProjectionStore,
    config: QueryConfig,
    replays: Replays,
}

/// Where an answer's rows come from, found once for the answer (`Queries::rows`), so a get's
/// lookups and a list's fallback ask for versions, or replay, once.
enum Rows {
    /// The live rows: each read reflects the position its statement saw.
    Live { reference: DateTime<Utc> },
    /// Recorded versions as of `position`, with the events since replayed on top.
    Versioned {
        rows: VersionedRows,
        position: u64,
        reference: DateTime<Utc>,
    },
    /// A replay's rows as of `position` (or on a day).
    Replayed {
        rows: Arc<Vec<Row>>,
        position: u64,
        reference: DateTime<Utc>,
    },
}

impl Queries {
    pub fn new(store: ProjectionStore, config: QueryConfig) -> Self {
        Self {
            replays: Replays::new(
                store.clone(),
                config.snapshot_bytes,
                config.replays,
                config.on_day_most_on_top,
            ),
            store,
            config,
        }
    }

    pub fn store(&self) -> &ProjectionStore {
        &self.store
    }

    /// Waits, if asked, until the live model of `name` reflects `min_position`.
    async fn reach(
        &self,
        name: &'static str,
        min_position: u64,
        deadline: Instant,
    ) -> Result<(), QueryError> {
        if min_position == 0 {
            return Ok(());
        }
        match self.store.wait_for(name, min_position, deadline).await {
            Ok(_) => Ok(()),
            Err(WaitError::TimedOut { position }) => Err(QueryError::NotYet {
                projection: name,
                position,
                wanted: min_position,
            }),
            Err(WaitError::Failed(error)) => Err(error.into()),
        }
    }

    /// Where the rows of `M` at `source` come from, found once for the whole answer: the
    /// live rows (after waiting, if asked, for `min_position`), recorded versions, or a
    /// replay of the log. An answer on a day at the log's head is at `pinned` (the position
    /// its first page was at) while that page's rows are kept; else at the head now.
    async fn rows<M: Model>(
        &self,
        source: Source,
        pinned: Option<u64>,
    ) -> Result<Rows, QueryError> {
        match source {
            Source::Live {
                min_position,
                deadline,
            } => {
                self.reach(M::NAME, min_position, deadline).await?;
                Ok(Rows::Live {
                    reference: Utc::now(),
                })
            }
            Source::AsOf(as_of) => {
                let (position, reference) = self.bound(as_of).await?;
                if let Some(rows) = self.versioned::<M>(position).await? {
                    return Ok(Rows::Versioned {
                        rows,
                        position,
                        reference,
                    });
                }
                let rows = self.replays.as_of::<M>(position).await?;
                Ok(Rows::Replayed {
                    rows,
                    position,
                    reference,
                })
            }
            Source::On { date, as_of } => {
                let position = match as_of {
                    Some(as_of) => self.bound(as_of).await?.0,
                    None => match pinned {
                        Some(at) if self.replays.at_head::<M>(at, date) => at,
                        _ => self.store.head().await?,
                    },
                };
                let at_head = as_of.is_none();
                let from_versions = self.config.as_of_from == AsOfFrom::Versions;
                // Statuses that depend on time are judged at the end of that day.
                let reference = end_of(date);
                Ok(
                    match self
                        .replays
                        .on::<M>(position, date, at_head, from_versions)
                        .await?
                    {
                        Replayed::Rows(rows) => Rows::Replayed {
                            rows,
                            position,
                            reference,
                        },
                        Replayed::OnVersions(rows) => Rows::Versioned {
                            rows,
                            position,
                            reference,
                        },
                    },
                )
            }
        }
    }

    /// Hands `each` the rows of `M` in `from` passing `filter`, in list order, with the time
    /// the answer is about; answers the position they reflect and that time. Holds no more
    /// rows than a replay's model does: live rows arrive one at a time.
    async fn each_row<M: Model>(
        &self,
        from: &mut Rows,
        filter: &RowFilter,
        mut each: impl FnMut(&Row, DateTime<Utc>) -> Result<(), QueryError>,
    ) -> Result<(u64, DateTime<Utc>), QueryError> {
        match from {
            Rows::Live { reference } => {
                let reference = *reference;
                let read = metrics::counter!(LIST_ROWS, "read" => "each");
                let position = self
                    .store
                    .each_row(M::NAME, filter, |row| {
                        read.increment(1);
                        each(&row, reference)
                    })
                    .await?;
                Ok((position, reference))
            }
            Rows::Versioned {
                rows,
                position,
                reference,
            } => {
                let reference = *reference;
                rows.each_row(filter, |row| each(row, reference)).await?;
                Ok((*position, reference))
            }
            Rows::Replayed {
                rows,
                position,
                reference,
            } => {
                each_replayed(rows, filter, |row| each(row, *reference))?;
                Ok((*position, *reference))
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

    /// The rows of `M` as of `position` from its recorded versions, unless replays are asked
    /// for or there are none to start from (`versioned`).
    async fn versioned<M: Model>(
        &self,
        position: u64,
    ) -> Result<Option<VersionedRows>, QueryError> {
        if self.config.as_of_from == AsOfFrom::Replay {
            return Ok(None);
        }
        self.replays.as_of_versions::<M>(position).await
    }

    /// One page of the items of `V`'s projection passing `filter`, and how many there are.
    /// The pages of an answer on a day at the log's head name its position in their tokens,
    /// so that they are of one log while its replay is kept, however the log moves between
    /// them.
    pub async fn list<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<V>, QueryError> {
        let at_head = matches!(source, Source::On { as_of: None, .. });
        let mut answer = self.list_page(source, filter, page).await?;
        if at_head {
            answer.next_page_token = at_position(answer.next_page_token, answer.position);
        }
        Ok(answer)
    }

    /// One page of a list (see `list`). Memory holds one page: when every row passing the row
    /// filter is an item (no status to derive, nothing a row may decline), PostgreSQL counts
    /// and pages the live rows (a replay's rows are paged where they are, only the page's
    /// decoded); else the rows pass one at a time and only the page's items are kept.
    async fn list_page<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<V>, QueryError> {
        // Checked in the order the fields are read: the status, the filter, the page.
        let wanted = statuses("status", &filter.status, V::STATUSES)?;
        let rows = list_rows::<V>(filter)?;
        let (start, size) = page_bounds(page)?;
        let pinned = page_position(page)?;
        let mut from = self.rows::<V::Model>(source, pinned).await?;
        // Every row passing the row filter is an item: PostgreSQL pages.
        if wanted.is_empty() && !filter.pending_only && V::EVERY_ROW_AN_ITEM {
            let (page, at) = match &mut from {
                Rows::Live { reference } => {
                    let page = self
                        .store
                        .page_rows(V::Model::NAME, &rows, &start.from(), size as u64)
                        .await?;
                    metrics::counter!(LIST_ROWS, "read" => "page")
                        .increment(page.rows.len() as u64);
                    let at = (page.position, *reference);
                    (RowsPage::from(page), at)
                }
                Rows::Versioned {
                    rows: versioned,
                    position,
                    reference,
                } => {
                    let page = versioned.page_rows(&rows, &start.from(), size).await?;
                    (page, (*position, *reference))
                }
                Rows::Replayed {
                    rows: replayed,
                    position,
                    reference,
                } => {
                    let page = page_replayed(replayed, &rows, &start.from(), size);
                    (page, (*position, *reference))
                }
            };
            return self.page_answer(filter, page, &start, at);
        }
        let mut window = Window::new(start.offset, size);
        let (position, reference) = self
            .each_item::<V>(&mut from, filter, &wanted, &rows, |item| {
                window.offer(item);
                Ok(())
            })
            .await?;
        Ok(window.answer(position, reference))
    }

    /// The answer of a page of rows paged in SQL, every one an item, starting at `start`, as
    /// of `at` (a position and the time the answer is about).
    fn page_answer<V: Listed>(
        &self,
        filter: &ListFilter,
        page: RowsPage,
        start: &PageStart,
        (position, reference): (u64, DateTime<Utc>),
    ) -> Result<Answer<V>, QueryError> {
        let reading = self.reading(reference, filter);
        let items = page
            .rows
            .iter()
            .map(|row| match V::from_row(row, &reading) {
                Ok(Some(item)) => Ok(item),
                Ok(None) => Err(QueryError::BadRow(format!(
                    "row {} shows no {}, though every row is one",
                    row.key,
                    V::WHAT
                ))),
                Err(error) => Err(QueryError::BadRow(error)),
            })
            .collect::<Result<Vec<V>, _>>()?;
        Ok(Answer {
            next_page_token: token_after(start.offset + items.len(), page.rows.last(), page.more),
            items,
            position,
            reference,
            total: usize::try_from(page.total).unwrap_or(usize::MAX),
        })
    }

    fn reading(&self, reference: DateTime<Utc>, filter: &ListFilter) -> Reading {
        Reading {
            reference,
            dormant_after: self.config.dormant_after,
            records: filter.records,
        }
    }

    /// Hands `each` every item of `V` in `from` passing `filter` (with the statuses `wanted`)
    /// whose row passes `rows` (the list's row filter, perhaps narrowed), in list order;
    /// answers the position and the time the items reflect.
    async fn each_item<V: Listed>(
        &self,
        from: &mut Rows,
        filter: &ListFilter,
        wanted: &[String],
        rows: &RowFilter,
        mut each: impl FnMut(V) -> Result<(), QueryError>,
    ) -> Result<(u64, DateTime<Utc>), QueryError> {
        self.each_row::<V::Model>(from, rows, |row, reference| {
            match self.item_of::<V>(row, reference, filter, wanted)? {
                Some(item) => each(item),
                None => Ok(()),
            }
        })
        .await
    }

    /// The item `row` shows as of `reference`, if it is one passing `filter` (with the
    /// statuses `wanted`, checked already).
    fn item_of<V: Listed>(
        &self,
        row: &Row,
        reference: DateTime<Utc>,
        filter: &ListFilter,
        wanted: &[String],
    ) -> Result<Option<V>, QueryError> {
        let reading = self.reading(reference, filter);
        Ok(V::from_row(row, &reading)
            .map_err(QueryError::BadRow)?
            .filter(|item| {
                (wanted.is_empty() || item.status().is_some_and(|s| wanted.iter().any(|w| w == s)))
                    && (!filter.pending_only || item.pending())
            }))
    }

    /// Every item passing `filter`, unpaged (what a change feed compares): at most
    /// `QueryConfig::watch_rows` of them, else `TooMany` (the rows stop being read there).
    pub async fn all<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<V>, QueryError> {
        let limit = self.config.watch_rows;
        let wanted = statuses("status", &filter.status, V::STATUSES)?;
        let rows = list_rows::<V>(filter)?;
        let mut from = self.rows::<V::Model>(source, None).await?;
        let mut items = Vec::new();
        let (position, reference) = self
            .each_item::<V>(&mut from, filter, &wanted, &rows, |item| {
                if items.len() == limit {
                    return Err(QueryError::TooMany {
                        what: V::WHAT,
                        limit,
                    });
                }
                items.push(item);
                Ok(())
            })
            .await?;
        Ok(whole(items, position, reference))
    }

    /// The items among those passing `filter` that `key` names, or NotFound. Live and from
    /// recorded versions, looked up by the row the key names, then by the stream it names
    /// (`lookups`); a replay holds every row anyway, so there one pass looks through all items
    /// for both.
    pub async fn get<V: Listed>(
        &self,
        source: Source,
        filter: &ListFilter,
        key: &str,
    ) -> Result<Answer<V>, QueryError> {
        let wanted = statuses("status", &filter.status, V::STATUSES)?;
        let rows = list_rows::<V>(filter)?;
        let mut from = self.rows::<V::Model>(source, None).await?;
        let lookups = match from {
            Rows::Live { .. } | Rows::Versioned { .. } => lookups::<V>(key, &rows),
            Rows::Replayed { .. } => vec![rows],
        };
        for rows in &lookups {
            let mut named = Vec::new();
            let (position, reference) = self
                .each_named::<V>(&mut from, filter, &wanted, rows, key, &mut named)
                .await?;
            let named = V::chosen(named);
            if !named.is_empty() {
                return Ok(whole(named, position, reference));
            }
        }
        Err(QueryError::NotFound(V::not_found(key)))
    }

    /// Adds to `named` the items passing `filter` and `rows` that `key` names.
    async fn each_named<V: Listed>(
        &self,
        from: &mut Rows,
        filter: &ListFilter,
        wanted: &[String],
        rows: &RowFilter,
        key: &str,
        named: &mut Vec<V>,
    ) -> Result<(u64, DateTime<Utc>), QueryError> {
        self.each_item::<V>(from, filter, wanted, rows, |item: V| {
            if item.named_by(key) {
                named.push(item);
            }
            Ok(())
        })
        .await
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
        let mut from = self.rows::<Timeline>(source, None).await?;
        let mut actors = Vec::new();
        let (position, reference) = self
            .each_row::<Timeline>(&mut from, &filter, |row, _| {
                actors.push(
                    row.decode::<ActorInfo>("actor")
                        .map_err(QueryError::BadRow)?,
                );
                Ok(())
            })
            .await?;
        Ok(whole(actors, position, reference))
    }
}
