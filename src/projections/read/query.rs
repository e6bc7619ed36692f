//! Answers queries on the projections: from the live read models (after waiting, if asked,
//! until they reflect a position: read-your-writes), or as of an earlier position or time, by
//! replaying the log into fresh models in memory. Replays keep snapshots (every
//! `snapshot_every` events) so a later `as of` does not start from the beginning again.
//! Time-dependent statuses (dormant channels, lapsed commitments) are derived here, against
//! the time the answer is about: now, or the `as of` time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use tokio::time::Instant;

use crate::domain::EventId;
use crate::domain::diplomacy::ActorId;
use crate::domain::diplomacy::{ChannelStatus, CommitmentStatus, SummitStage};
use crate::projections::engine::rows::{ProjectionError, ProjectionStore, RowFilter, WaitError};
use crate::projections::models::channels::{Channels, rows::channel_of, view::ChannelView};
use crate::projections::models::commitments::{CommitmentView, Commitments, commitment_of};
use crate::projections::models::common::{ACTOR_STATUS, ActorInfo};
use crate::projections::models::divergence::{Divergence, DivergenceView, occurrence_of};
use crate::projections::models::relations::{
    Relations, pair_key, rows::pair_of, view::RelationView,
};
use crate::projections::models::summits::{SummitView, Summits, summit_of};
use crate::projections::models::timeline::{Timeline, TimelineEntry, entry_of};
use crate::projections::{Model, Row};

/// Answers per page at most, and by default.
pub const MAX_PAGE_SIZE: usize = 1000;
pub const DEFAULT_PAGE_SIZE: usize = 100;

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

/// A past state of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Everything up to and including this position.
    Position(u64),
    /// Everything the log had recorded at this time.
    Time(DateTime<Utc>),
}

impl AsOf {
    /// What `parse` accepts, for error messages.
    pub const ACCEPTS: &'static str =
        "a log position (digits), an RFC 3339 time (2025-02-15T12:00:00Z) or a day (2025-02-15)";

    /// Parses an "as of" given as text (the CLI's `--as-of`, the dashboard's `?as_of=`):
    /// digits are a position; else an RFC 3339 time, or a day `YYYY-MM-DD` meaning the end of
    /// that day, UTC.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()) {
            return raw
                .parse()
                .map(AsOf::Position)
                .map_err(|e| format!("{raw:?} is not a log position: {e}"));
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
            return Ok(AsOf::Time(time.with_timezone(&Utc)));
        }
        if let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            let end = day
                .and_hms_nano_opt(23, 59, 59, 999_999_999)
                .expect("the last instant of a day exists");
            return Ok(AsOf::Time(end.and_utc()));
        }
        Err(format!(
            "{raw:?} is neither a log position (digits), an RFC 3339 time \
             (2025-02-15T12:00:00Z) nor a day (2025-02-15)"
        ))
    }
}

/// Where an answer comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The live read model, once it reflects `min_position` (0: at once), waiting at most
    /// until `deadline`.
    Live {
        min_position: u64,
        deadline: Instant,
    },
    AsOf(AsOf),
}

impl Source {
    /// As of a past state when `as_of` is given (there is nothing to wait for then, so
    /// `min_position` is moot); else live, waiting at most `wait` for `min_position`.
    pub fn of(as_of: Option<AsOf>, min_position: u64, wait: std::time::Duration) -> Self {
        match as_of {
            Some(as_of) => Source::AsOf(as_of),
            None => Source::Live {
                min_position,
                deadline: Instant::now() + wait,
            },
        }
    }
}

/// A page: how many items, and the token of the previous answer's next page (empty: first).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub size: usize,
    pub token: String,
}

/// An answer: the items of one page, the log position it reflects and the time it is about.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub items: Vec<T>,
    pub position: u64,
    pub reference: DateTime<Utc>,
    /// Empty on the last page.
    pub next_page_token: String,
    /// Items on all pages.
    pub total: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("projection {projection} has reached position {position}, not yet {wanted}")]
    NotYet {
        projection: &'static str,
        position: u64,
        wanted: u64,
    },
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("a stored row does not decode: {0}")]
    BadRow(String),
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

fn page_of<T>(
    items: Vec<T>,
    page: &Page,
    position: u64,
    reference: DateTime<Utc>,
) -> Result<Answer<T>, QueryError> {
    let size = match page.size {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(QueryError::Invalid {
                field: "page_size",
                message: format!("{size} is more than the limit of {MAX_PAGE_SIZE}"),
            });
        }
        size => size,
    };
    let offset: usize = if page.token.is_empty() {
        0
    } else {
        page.token.parse().map_err(|_| QueryError::Invalid {
            field: "page_token",
            message: format!(
                "{:?} is not a page token from an earlier answer",
                page.token
            ),
        })?
    };
    let total = items.len();
    let items: Vec<T> = items.into_iter().skip(offset).take(size).collect();
    let next = offset + items.len();
    Ok(Answer {
        items,
        position,
        reference,
        next_page_token: if next < total {
            next.to_string()
        } else {
            String::new()
        },
        total,
    })
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

/// One page of a whole answer.
fn paged<T>(all: Answer<T>, page: &Page) -> Result<Answer<T>, QueryError> {
    page_of(all.items, page, all.position, all.reference)
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

/// The filter for "rows concerning this actor": a state's rows by their states, any other
/// actor's by their actors.
pub fn actor_filter(actor: &str) -> Result<RowFilter, QueryError> {
    let id = ActorId::parse(actor).map_err(|error| QueryError::Invalid {
        field: "actor",
        message: error.to_string(),
    })?;
    Ok(match id.as_country() {
        Some(state) => RowFilter {
            states: vec![state.to_string()],
            ..RowFilter::default()
        },
        None => RowFilter {
            actor: Some(id.to_string()),
            ..RowFilter::default()
        },
    })
}

fn state_code(field: &'static str, raw: &str) -> Result<String, QueryError> {
    crate::domain::diplomacy::CountryCode::parse(raw)
        .map(|c| c.to_string())
        .map_err(|error| QueryError::Invalid {
            field,
            message: error.to_string(),
        })
}

/// Checks a status filter against the statuses a projection answers with.
fn statuses(
    field: &'static str,
    given: &[String],
    allowed: &[&str],
) -> Result<Vec<String>, QueryError> {
    given
        .iter()
        .map(|status| {
            let upper = status.to_ascii_uppercase();
            if allowed.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(QueryError::Invalid {
                    field,
                    message: format!("{status:?} is not one of {}", allowed.join(", ")),
                })
            }
        })
        .collect()
}

pub const CHANNEL_STATUSES: &[&str] = ChannelStatus::NAMES;
pub const SUMMIT_STAGES: &[&str] = SummitStage::NAMES;
pub const COMMITMENT_STATUSES: &[&str] = CommitmentStatus::NAMES;

/// Filters for the lists.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Rows concerning this actor (a state: through its offices and people too).
    pub actor: Option<String>,
    /// Rows concerning both of these states.
    pub state_pair: Option<(String, String)>,
    /// Derived statuses (channels, commitments) or stages (summits); empty: all.
    pub status: Vec<String>,
    /// Summits: only those neither held nor cancelled.
    pub pending_only: bool,
}

impl ListFilter {
    fn rows(&self) -> Result<RowFilter, QueryError> {
        let mut filter = match &self.actor {
            Some(actor) => actor_filter(actor)?,
            None => RowFilter::default(),
        };
        if let Some((a, b)) = &self.state_pair {
            filter.states.push(state_code("state_pair", a)?);
            filter.states.push(state_code("state_pair", b)?);
        }
        Ok(filter)
    }
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
                let mut rows: Vec<Row> = model
                    .rows()
                    .into_iter()
                    .filter(|r| (wants_actors || r.status != ACTOR_STATUS) && passes(r, filter))
                    .collect();
                rows.sort_by(|a, b| (&a.sort_key, &a.key).cmp(&(&b.sort_key, &b.key)));
                Ok(Loaded {
                    rows,
                    position,
                    reference,
                })
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

    pub async fn channels(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<ChannelView>, QueryError> {
        paged(self.all_channels(source, filter).await?, page)
    }

    /// Every channel passing `filter`, unpaged (what a change feed compares).
    pub async fn all_channels(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<ChannelView>, QueryError> {
        let wanted = statuses("status", &filter.status, CHANNEL_STATUSES)?;
        // Channel rows only (not their contacts' rows).
        let mut rows = filter.rows()?;
        rows.status = ["open", "suspended", "closed"].map(String::from).to_vec();
        let loaded = self.load::<Channels>(source, &rows).await?;
        let mut views = Vec::new();
        for row in &loaded.rows {
            let view = channel_of(row)
                .map_err(QueryError::BadRow)?
                .view(loaded.reference, self.config.dormant_after);
            if wanted.is_empty() || wanted.contains(&view.status) {
                views.push(view);
            }
        }
        Ok(whole(views, &loaded))
    }

    pub async fn channel(
        &self,
        source: Source,
        key: &str,
    ) -> Result<Answer<ChannelView>, QueryError> {
        // One read of the whole projection (not one per page).
        let answer = self.all_channels(source, &ListFilter::default()).await?;
        let found: Vec<ChannelView> = answer
            .items
            .into_iter()
            .filter(|c| c.key == key || c.stream_id.as_deref() == Some(key))
            .collect();
        if found.is_empty() {
            return Err(QueryError::NotFound(format!("no channel {key:?}")));
        }
        Ok(Answer {
            total: found.len(),
            items: found,
            ..answer
        })
    }

    pub async fn summits(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<SummitView>, QueryError> {
        paged(self.all_summits(source, filter).await?, page)
    }

    /// Every summit passing `filter`, unpaged.
    pub async fn all_summits(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<SummitView>, QueryError> {
        let wanted = statuses("status", &filter.status, SUMMIT_STAGES)?;
        let loaded = self.load::<Summits>(source, &filter.rows()?).await?;
        let mut views = Vec::new();
        for row in &loaded.rows {
            if let Some(view) = summit_of(row).map_err(QueryError::BadRow)?.view()
                && (wanted.is_empty() || wanted.contains(&view.stage))
                && (!filter.pending_only || view.pending)
            {
                views.push(view);
            }
        }
        Ok(whole(views, &loaded))
    }

    pub async fn commitments(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<CommitmentView>, QueryError> {
        paged(self.all_commitments(source, filter).await?, page)
    }

    /// Every commitment passing `filter`, unpaged.
    pub async fn all_commitments(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<CommitmentView>, QueryError> {
        let wanted = statuses("status", &filter.status, COMMITMENT_STATUSES)?;
        let loaded = self.load::<Commitments>(source, &filter.rows()?).await?;
        let mut views = Vec::new();
        for row in &loaded.rows {
            if let Some(view) = commitment_of(row)
                .map_err(QueryError::BadRow)?
                .view(loaded.reference)
                && (wanted.is_empty() || wanted.contains(&view.status))
            {
                views.push(view);
            }
        }
        Ok(whole(views, &loaded))
    }

    /// An actor's interactions in the order they happened (a state's: through its people and
    /// offices).
    pub async fn timeline(
        &self,
        source: Source,
        actor: &str,
        page: &Page,
    ) -> Result<Answer<TimelineEntry>, QueryError> {
        let loaded = self.load::<Timeline>(source, &actor_filter(actor)?).await?;
        let entries = loaded
            .rows
            .iter()
            .map(|row| entry_of(row).map_err(QueryError::BadRow))
            .collect::<Result<Vec<_>, _>>()?;
        page_of(entries, page, loaded.position, loaded.reference)
    }

    /// Every pair of states with relations (optionally: pairs including `filter.actor`, a state).
    pub async fn relations(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<RelationView>, QueryError> {
        let mut rows = filter.rows()?;
        rows.status = vec!["pair".into()];
        let loaded = self.load::<Relations>(source, &rows).await?;
        let views = loaded
            .rows
            .iter()
            .map(|row| {
                pair_of(row)
                    .map(|p| p.view(loaded.reference, self.config.dormant_after))
                    .map_err(QueryError::BadRow)
            })
            .collect::<Result<Vec<_>, _>>()?;
        page_of(views, page, loaded.position, loaded.reference)
    }

    /// The relations of two states.
    pub async fn relation(
        &self,
        source: Source,
        a: &str,
        b: &str,
    ) -> Result<Answer<RelationView>, QueryError> {
        let (a, b) = (state_code("states", a)?, state_code("states", b)?);
        let filter = RowFilter {
            states: vec![a.clone(), b.clone()],
            status: vec!["pair".into()],
            ..RowFilter::default()
        };
        let loaded = self.load::<Relations>(source, &filter).await?;
        let key = format!("pair:{}", pair_key(&a, &b));
        let row = loaded.rows.iter().find(|r| r.key == key).ok_or_else(|| {
            QueryError::NotFound(format!("no relations recorded between {a} and {b}"))
        })?;
        let view = pair_of(row)
            .map_err(QueryError::BadRow)?
            .view(loaded.reference, self.config.dormant_after);
        Ok(Answer {
            items: vec![view],
            position: loaded.position,
            reference: loaded.reference,
            next_page_token: String::new(),
            total: 1,
        })
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
        Ok(Answer {
            total: actors.len(),
            items: actors,
            position: loaded.position,
            reference: loaded.reference,
            next_page_token: String::new(),
        })
    }

    /// Occurrences with their sources' reports (optionally: those a given source reported).
    pub async fn divergences(
        &self,
        source: Source,
        filter: &ListFilter,
        page: &Page,
    ) -> Result<Answer<DivergenceView>, QueryError> {
        paged(self.all_divergences(source, filter).await?, page)
    }

    /// Every occurrence passing `filter`, unpaged.
    pub async fn all_divergences(
        &self,
        source: Source,
        filter: &ListFilter,
    ) -> Result<Answer<DivergenceView>, QueryError> {
        let mut rows = filter.rows()?;
        rows.status = vec!["occurrence".into()];
        let loaded = self.load::<Divergence>(source, &rows).await?;
        let views = loaded
            .rows
            .iter()
            .map(|row| {
                occurrence_of(row)
                    .map(|o| o.view())
                    .map_err(QueryError::BadRow)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(whole(views, &loaded))
    }

    /// One occurrence's divergence, by its event id or by its stream (the stream's first
    /// occurrence).
    pub async fn divergence(
        &self,
        source: Source,
        occurrence: &str,
    ) -> Result<Answer<DivergenceView>, QueryError> {
        let filter = RowFilter {
            status: vec!["occurrence".into()],
            ..RowFilter::default()
        };
        let loaded = self.load::<Divergence>(source, &filter).await?;
        let by_id = EventId::parse(occurrence).ok();
        let mut views = Vec::new();
        for row in &loaded.rows {
            let view = occurrence_of(row).map_err(QueryError::BadRow)?.view();
            if Some(view.occurrence) == by_id || view.stream_id.as_deref() == Some(occurrence) {
                views.push(view);
            }
        }
        // By stream: the occurrence that opened it (the earliest position).
        let view = views.into_iter().next().ok_or_else(|| {
            QueryError::NotFound(format!("no occurrence {occurrence:?} with sources"))
        })?;
        Ok(Answer {
            items: vec![view],
            position: loaded.position,
            reference: loaded.reference,
            next_page_token: String::new(),
            total: 1,
        })
    }
}
