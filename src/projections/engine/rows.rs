//! The projections' tables seen from the query side: checkpoints, the live generation's rows,
//! waiting for a projection to reach a position, statuses, rebuild requests, and the log reads
//! that `as of` replays need. Never writes rows or moves a checkpoint: only the runner holding
//! a projection's lock does (`runner.rs`); flagging a rebuild is the one write here.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use sqlx::PgPool;
use sqlx::types::Json;
use tokio::time::Instant;

use crate::projections::engine::counts::{LIVE_COUNTS, LiveCount, RecentCounts};
pub use crate::projections::engine::error::ProjectionError;
use crate::projections::engine::facts::fact_from_event;
use crate::projections::engine::registry::{LocalRunners, Watchers, advisory_lock_key};
use crate::projections::{Fact, Row, RowData};

/// Diplomatic events fetched per round trip by [`ProjectionStore::facts_until`].
const FACTS_PAGE: i64 = 512;

/// Pages of facts read ahead of a replay's model.
const PAGES_AHEAD: usize = 2;

/// One page of the log's facts, each parsed or not.
type FactPage = Vec<Result<Fact, ProjectionError>>;

/// How often [`ProjectionStore::wait_for`] reads the checkpoint when no runner of this server
/// reports progress (the projection may be run by another server).
const WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed first; `position` is where the projection stood then.
    #[error("the projection reached only position {position} before the deadline")]
    TimedOut { position: u64 },
    #[error(transparent)]
    Failed(#[from] ProjectionError),
}

/// A projection's checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub projection: String,
    /// The model version that wrote the live generation.
    pub version: i32,
    /// The live generation: the rows readers see.
    pub generation: u64,
    /// The log position the live rows reflect (every event up to it is applied).
    pub position: u64,
    /// A rebuild in progress: its generation and how far it has read the log.
    pub building_generation: Option<u64>,
    pub building_position: Option<u64>,
    pub rebuild_requested: bool,
    pub updated_at: DateTime<Utc>,
    /// Every multiple of this is the position of a commit whose rows are on record, from the
    /// generation's start (`runner::VERSIONS_EVERY`); `None` if its rows are not versioned.
    pub versions_every: Option<u64>,
}

#[derive(sqlx::FromRow)]
pub(in crate::projections) struct CheckpointRecord {
    projection: String,
    version: i32,
    generation: i64,
    position: i64,
    building_generation: Option<i64>,
    building_position: Option<i64>,
    rebuild_requested: bool,
    updated_at: DateTime<Utc>,
    versions_every: Option<i64>,
}

impl From<CheckpointRecord> for Checkpoint {
    fn from(record: CheckpointRecord) -> Self {
        Self {
            projection: record.projection,
            version: record.version,
            generation: record.generation as u64,
            position: record.position as u64,
            building_generation: record.building_generation.map(|g| g as u64),
            building_position: record.building_position.map(|p| p as u64),
            rebuild_requested: record.rebuild_requested,
            updated_at: record.updated_at,
            versions_every: record.versions_every.map(|every| every as u64),
        }
    }
}

/// `select <every CheckpointRecord column> from projection_checkpoints <rest>`.
macro_rules! select_checkpoints {
    ($rest:literal) => {
        concat!(
            "select projection, version, generation, position, building_generation, \
             building_position, rebuild_requested, updated_at, versions_every \
             from projection_checkpoints ",
            $rest
        )
    };
}
pub(in crate::projections) use select_checkpoints;

/// One stored row, as `projection_rows` holds it.
#[derive(sqlx::FromRow)]
pub(in crate::projections) struct RowRecord {
    key: String,
    /// `json` decodes to its text as is, not to a `serde_json::Value` tree.
    data: Json<RowData>,
    actors: Vec<String>,
    states: Vec<String>,
    status: String,
    sort_key: String,
}

impl From<RowRecord> for Row {
    fn from(record: RowRecord) -> Self {
        Self {
            key: record.key,
            data: record.data.0,
            actors: record.actors,
            states: record.states,
            status: record.status,
            sort_key: record.sort_key,
        }
    }
}

/// Which rows a list reads (`listing.rs`). Empty parts do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RowFilter {
    /// Only rows concerning this actor.
    pub actor: Option<String>,
    /// Only rows concerning every one of these states.
    pub states: Vec<String>,
    /// Only rows with one of these statuses.
    pub status: Vec<String>,
    /// No row with one of these statuses.
    pub without_status: Vec<String>,
    /// Only the rows with one of these keys.
    pub keys: Vec<String>,
    /// Only the rows whose data holds this text at this path (`data #>> path`).
    pub at_path: Option<(Vec<String>, String)>,
}

/// Who advances a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    ThisServer,
    AnotherServer,
    /// No server holds its lock: none is running, or one is taking over.
    Nobody,
}

/// What the dashboard and `diplog projections` show for a projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub version: i32,
    pub generation: u64,
    /// The log position the live rows reflect.
    pub position: u64,
    /// The log's last committed position.
    pub head: u64,
    /// Events (of any kind) the projection has still to pass: `head - position`.
    pub lag: u64,
    /// A rebuild in progress: the position its build has reached.
    pub rebuilding: Option<u64>,
    pub rebuild_requested: bool,
    pub holder: Holder,
    /// When the checkpoint last moved (`None`: there is none yet).
    pub updated_at: Option<DateTime<Utc>>,
}

/// The counts of live lists a server remembers, by projection and filter.
pub(super) type LiveCounts = RecentCounts<(String, RowFilter), LiveCount>;

/// The query side of the projections. Cheap to clone.
#[derive(Clone)]
pub struct ProjectionStore {
    pool: PgPool,
    local: LocalRunners,
    watchers: Watchers,
    /// Counts of live lists, for their next pages (`listing.rs`).
    live_counts: Arc<LiveCounts>,
}

impl ProjectionStore {
    /// `local` is what this server's runners report (their progress wakes `wait_for`, and it
    /// tells statuses which projections this server holds).
    pub fn new(pool: PgPool, local: LocalRunners) -> Self {
        Self {
            pool,
            local,
            watchers: Watchers::default(),
            live_counts: Arc::new(LiveCounts::new(LIVE_COUNTS)),
        }
    }

    /// What this server's runners report (a change feed wakes on it).
    pub(in crate::projections) fn local(&self) -> &LocalRunners {
        &self.local
    }

    /// The counts of live lists remembered for their next pages.
    pub(super) fn live_counts(&self) -> &LiveCounts {
        &self.live_counts
    }

    /// The database, for the search's queries (`engine/search.rs`).
    pub(in crate::projections) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The change feeds open on this server.
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    /// The checkpoint of `name`; `None` before its runner first started.
    #[tracing::instrument(skip(self))]
    pub async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, ProjectionError> {
        let record: Option<CheckpointRecord> =
            sqlx::query_as(select_checkpoints!("where projection = $1"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(record.map(Checkpoint::from))
    }

    /// Waits until the projection `name` reflects at least `min_position` and answers its
    /// position then; gives up at `deadline`. Progress reported by this server's runner wakes
    /// it at once; otherwise (the projection may be run by another server) it reads the
    /// checkpoint every 50 ms.
    #[tracing::instrument(skip(self))]
    pub async fn wait_for(
        &self,
        name: &str,
        min_position: u64,
        deadline: Instant,
    ) -> Result<u64, WaitError> {
        let mut local = self.local.watch(name);
        loop {
            // The runner reports only what it has committed, so its word is as good as the
            // table's, without a round trip.
            let reported = local.borrow_and_update().position;
            if reported >= min_position {
                return Ok(reported);
            }
            let position = self.checkpoint(name).await?.map_or(0, |c| c.position);
            if position >= min_position {
                return Ok(position);
            }
            if Instant::now() >= deadline {
                return Err(WaitError::TimedOut { position });
            }
            tokio::select! {
                // The runner side never closes (`LocalRunners` keeps every sender).
                _ = local.changed() => {}
                () = tokio::time::sleep(WAIT_POLL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Asks the runner holding `name` (on whichever server) to rebuild it: a fresh model in a
    /// new generation from position 0, swapped in when it has caught up, while the current
    /// rows keep answering. A known projection whose runner has not started yet needs none.
    /// Also the way to roll a projection back to an older version on purpose: a server with
    /// an older model otherwise leaves newer rows alone.
    #[tracing::instrument(skip(self))]
    pub async fn request_rebuild(&self, name: &str) -> Result<(), ProjectionError> {
        let updated = sqlx::query(
            "update projection_checkpoints set rebuild_requested = true, updated_at = now() \
             where projection = $1",
        )
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 && !crate::projections::NAMES.contains(&name) {
            return Err(ProjectionError::UnknownProjection(name.to_owned()));
        }
        self.local.wake(name);
        Ok(())
    }

    /// Every projection that has a checkpoint, and every one this version knows that has none
    /// yet (its runner has not made its first commit: version, generation and position 0,
    /// never updated), by name.
    #[tracing::instrument(skip(self))]
    pub async fn statuses(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        let head = crate::store::head(&self.pool).await?;
        let checkpoints: Vec<CheckpointRecord> =
            sqlx::query_as(select_checkpoints!("order by projection"))
                .fetch_all(&self.pool)
                .await?;
        // A bigint advisory lock shows in pg_locks as its high half (classid) and low half
        // (objid), with objsubid 1.
        let locks: Vec<(i64, i64)> = sqlx::query_as(
            "select classid::bigint, objid::bigint from pg_locks \
             where locktype = 'advisory' and objsubid = 1 and granted \
             and database = (select oid from pg_database where datname = current_database())",
        )
        .fetch_all(&self.pool)
        .await?;
        let held: Vec<i64> = locks
            .into_iter()
            .map(|(high, low)| ((high as u64) << 32 | (low as u64 & 0xffff_ffff)) as i64)
            .collect();
        let holder = |name: &str| {
            if self.local.report(name).holding {
                Holder::ThisServer
            } else if held.contains(&advisory_lock_key(name)) {
                Holder::AnotherServer
            } else {
                Holder::Nobody
            }
        };
        let mut statuses: Vec<ProjectionStatus> = checkpoints
            .into_iter()
            .map(|record| {
                let checkpoint = Checkpoint::from(record);
                ProjectionStatus {
                    version: checkpoint.version,
                    generation: checkpoint.generation,
                    position: checkpoint.position,
                    head,
                    lag: head.saturating_sub(checkpoint.position),
                    rebuilding: checkpoint.building_position,
                    rebuild_requested: checkpoint.rebuild_requested,
                    holder: holder(&checkpoint.projection),
                    updated_at: Some(checkpoint.updated_at),
                    name: checkpoint.projection,
                }
            })
            .collect();
        for name in crate::projections::NAMES {
            if !statuses.iter().any(|status| status.name == *name) {
                statuses.push(ProjectionStatus {
                    name: (*name).to_owned(),
                    version: 0,
                    generation: 0,
                    position: 0,
                    head,
                    lag: head,
                    rebuilding: None,
                    rebuild_requested: false,
                    holder: holder(name),
                    updated_at: None,
                });
            }
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(statuses)
    }

    /// The diplomatic events up to and including `position`, in position order, paged from
    /// the database as the consumer pulls (for replaying a fresh model `as of` a position).
    pub fn facts_until(
        &self,
        position: u64,
    ) -> impl Stream<Item = Result<Fact, ProjectionError>> + Send + 'static {
        self.facts_between(0, position)
    }

    /// The diplomatic events after `after` up to and including `until`, in position order
    /// (for carrying a replayed model from a snapshot onwards). A task reads and parses the
    /// pages ahead of the consumer, `PAGES_AHEAD` at most, so a replay's model applies one
    /// page while the next is read (on the other core); it stops when the consumer does.
    pub fn facts_between(
        &self,
        after: u64,
        until: u64,
    ) -> impl Stream<Item = Result<Fact, ProjectionError>> + Send + 'static {
        self.facts_read_ahead(after, until, None)
    }

    /// The diplomatic events of [`Self::facts_between`] that may have happened by `by`, and
    /// every correction and retraction (see `store::diplomatic_events`); the others are not
    /// read. (All of them for a time whose year has not four digits, which the recorder's
    /// notes of times would not order.)
    pub fn facts_happened_between(
        &self,
        after: u64,
        until: u64,
        by: DateTime<Utc>,
    ) -> impl Stream<Item = Result<Fact, ProjectionError>> + Send + 'static {
        let by = (1..=9999)
            .contains(&by.year())
            .then(|| crate::recorder::metadata_time(by));
        self.facts_read_ahead(after, until, by)
    }

    fn facts_read_ahead(
        &self,
        after: u64,
        until: u64,
        happened_by: Option<String>,
    ) -> impl Stream<Item = Result<Fact, ProjectionError>> + Send + 'static {
        let (sender, receiver) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let pages = self.fact_pages(after, until, happened_by);
        tokio::spawn(async move {
            let mut pages = std::pin::pin!(pages);
            while let Some(page) = pages.next().await {
                let failed = page.is_err();
                if sender.send(page).await.is_err() || failed {
                    break;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver)
            .map_ok(stream::iter)
            .try_flatten()
    }

    /// The pages of `facts_between`, each read and parsed as the consumer pulls.
    fn fact_pages(
        &self,
        after: u64,
        until: u64,
        happened_by: Option<String>,
    ) -> impl Stream<Item = Result<FactPage, ProjectionError>> + Send + 'static {
        let pool = self.pool.clone();
        let position = until;
        stream::try_unfold(Some(after), move |after| {
            let pool = pool.clone();
            let happened_by = happened_by.clone();
            async move {
                let Some(after) = after else {
                    return Ok::<_, ProjectionError>(None);
                };
                let page = crate::store::diplomatic_events(
                    &pool,
                    after,
                    Some(position),
                    FACTS_PAGE,
                    happened_by.as_deref(),
                )
                .await?;
                let events = page.events;
                // A short page has seen everything up to its bound, which is short of
                // `position` when the page's window ended first; one cut short by its bytes
                // ends at its last event, as a full one does.
                let next = match events.last() {
                    Some(last) if events.len() as i64 == FACTS_PAGE || page.cut => {
                        Some(last.position as u64)
                    }
                    _ => page.windowed.then_some(page.bound),
                };
                let facts: FactPage = events.into_iter().map(fact_from_event).collect();
                Ok(Some((facts, next)))
            }
        })
    }

    /// The log's last committed position.
    pub async fn head(&self) -> Result<u64, ProjectionError> {
        Ok(crate::store::head(&self.pool).await?)
    }

    /// When the event at `position` was recorded (`None` for 0 or a position past the head).
    pub async fn recorded_at(
        &self,
        position: u64,
    ) -> Result<Option<DateTime<Utc>>, ProjectionError> {
        Ok(crate::store::recorded_at(&self.pool, position).await?)
    }

    /// Each date the diplomatic events after `after` and up to `through` give, with the first
    /// of their positions to give it (see [`crate::store::OccurrenceDate`]).
    pub async fn first_occurrence_dates(
        &self,
        after: u64,
        through: u64,
    ) -> Result<Vec<crate::store::OccurrenceDate>, ProjectionError> {
        Ok(crate::store::first_occurrence_dates(&self.pool, after, through).await?)
    }

    /// Where the diplomatic event `event_id` was recorded, unless a retraction before `before`
    /// took it back.
    pub async fn recorded_where(
        &self,
        event_id: crate::domain::EventId,
        before: u64,
    ) -> Result<Option<crate::store::RecordedWhere>, ProjectionError> {
        Ok(crate::store::recorded_where(&self.pool, event_id.as_uuid(), before).await?)
    }

    /// The last position recorded at or before `time` (0 if none): the log as of `time` is the
    /// prefix up to it.
    #[tracing::instrument(skip(self))]
    pub async fn position_at(&self, time: DateTime<Utc>) -> Result<u64, ProjectionError> {
        Ok(crate::store::position_at(&self.pool, time).await?)
    }
}
