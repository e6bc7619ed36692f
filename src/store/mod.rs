//! The event store on PostgreSQL: appends (through one group-committing writer task) and
//! reads of streams and of the global log. Owns all SQL that reads or writes `events`,
//! `streams` and `log_head`: the rest of the server (the projections, the audit side, the
//! subscriptions) and the bench read the log through the functions here, and besides the
//! writer only `restore` (an export into an empty database) and `bulk` (the bench's bulk
//! load) write it, each keeping the log's invariants. `tests/api/architecture.rs` fails on
//! SQL over `events` anywhere else. Knows nothing of gRPC or HTTP.
//!
//! - `writer/`: the group-commit writer task (the loop, a group's SQL, deciding each append).
//! - `read/`: the queries, and the byte-bounded keyset paging they go through.
//! - `restore`: loading an exported log; `bulk`: the bench's bulk load and raw `COPY` read.

pub mod bulk;
mod read;
pub mod restore;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::Stream;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{
    AppendBatch, AtomicAppend, ExpectedVersion, LogFilter, ReadAllQuery, ReadStreamQuery,
};

pub use read::browse::{DiplomaticFilter, DiplomaticSlice, EventSummary, PageKey, StreamSummary};
pub use read::dates::{OccurrenceDate, RecordedWhere, first_occurrence_dates, recorded_where};
pub use read::paging::{PAGE_BYTES, PAGE_SIZE, READ_AHEAD};
pub use read::recording::{KnownEvent, RecordingInputs};
pub use read::{
    DiplomaticPage, DiplomaticRow, EventFilter, EventWithLeaf, LogPage, count_diplomatic,
    count_of_type, diplomatic_events, diplomatic_rows, events_page, events_with_leaves, head,
    position_at, position_of, recorded_at,
};
pub use writer::WriterConfig;

/// An event as the log recorded it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The payload exactly as appended.
    pub data_text: String,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    pub metadata: sqlx::types::Json<BTreeMap<String, String>>,
    pub recorded_at: DateTime<Utc>,
    pub appended_by: String,
}

#[cfg(test)]
impl RecordedEvent {
    /// An event at `position` of stream `s` (version `position`) with `data_text`, for tests
    /// of what handles read events.
    pub(crate) fn example(position: i64, data_text: String) -> Self {
        Self {
            position,
            stream_id: "s".to_owned(),
            stream_version: position,
            event_id: Uuid::from_u128(position as u128),
            event_type: "T".to_owned(),
            data_text,
            correlation_id: None,
            causation_id: None,
            metadata: sqlx::types::Json(Default::default()),
            recorded_at: DateTime::UNIX_EPOCH,
            appended_by: "anonymous".to_owned(),
        }
    }
}

/// What a successful append reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// Each event's global position, in request order.
    pub positions: Vec<u64>,
    /// Every event had been written before by an identical append: nothing new was written.
    pub idempotent_replay: bool,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error(
        "stream {stream_id:?} is at version {current}, but the append expected version {expected}"
    )]
    WrongExpectedVersion {
        stream_id: String,
        expected: ExpectedVersion,
        current: u64,
    },
    #[error("event {event_id} was already written with different content ({difference})")]
    EventIdReused { event_id: Uuid, difference: String },
    #[error(
        "events {written:?} were already written but {unwritten:?} were not: a retry must repeat the original append exactly"
    )]
    PartialRetry {
        written: Vec<Uuid>,
        unwritten: Vec<Uuid>,
    },
    #[error(
        "events {event_ids:?} were already written, but not as one append of exactly these \
         events in this order: a retry must repeat one earlier append exactly"
    )]
    NotOneAppend { event_ids: Vec<Uuid> },
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Shared, because one failed group commit answers every append in it.
    #[error("database error: {0}")]
    Database(#[source] Arc<sqlx::Error>),
}

impl AppendError {
    /// The `outcome` label of `diplog_appends_total`.
    fn outcome(&self) -> &'static str {
        match self {
            Self::WrongExpectedVersion { .. } => "wrong_expected_version",
            Self::EventIdReused { .. } => "event_id_reused",
            Self::PartialRetry { .. } | Self::NotOneAppend { .. } => "partial_retry",
            Self::Unavailable(_) => "unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::Database(_) => "database_error",
        }
    }
}

/// Counts an answered append in the metrics (`crate::monitoring`).
fn count_append(outcome: &Result<Vec<AppendOutcome>, AppendError>, took: std::time::Duration) {
    use crate::monitoring::{APPEND_SECONDS, APPENDED_EVENTS, APPENDS};
    let label = match outcome {
        Ok(parts) if parts.iter().all(|part| part.idempotent_replay) => "replayed",
        Ok(parts) => {
            let written: usize = parts.iter().map(|part| part.positions.len()).sum();
            metrics::counter!(APPENDED_EVENTS).increment(written as u64);
            "written"
        }
        Err(error) => error.outcome(),
    };
    metrics::counter!(APPENDS, "outcome" => label).increment(1);
    metrics::histogram!(APPEND_SECONDS).record(took.as_secs_f64());
}

impl From<sqlx::Error> for AppendError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(Arc::new(error))
        } else {
            Self::Database(Arc::new(error))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("stream {0:?} does not exist")]
    StreamNotFound(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A page's fetch failed other than in the database (it panicked).
    #[error("the read broke off: {0}")]
    BrokeOff(String),
}

impl From<sqlx::Error> for ReadError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(error)
        } else {
            Self::Database(error)
        }
    }
}

/// Errors that say the database cannot be reached right now (as opposed to a bad query):
/// clients may retry these.
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-57P03: shutdown or not yet accepting.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Control of the writer task.
pub struct WriterHandle {
    task: JoinHandle<()>,
    stop: CancellationToken,
}

impl WriterHandle {
    /// Refuses new appends, writes those already queued, and waits for the writer to end.
    pub async fn stop(self) -> Result<(), tokio::task::JoinError> {
        self.stop.cancel();
        self.task.await
    }
}

/// Handle to the store. Cheap to clone; appends from all clones funnel into one writer task.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    appends: mpsc::Sender<writer::AppendCommand>,
    /// Recordings' reads, answered together while they wait (`read::recording`).
    recording_reads: mpsc::Sender<read::recording::Ask>,
    committed_head: watch::Receiver<u64>,
}

impl EventStore {
    /// Reads the log head, then starts the writer task, which runs until
    /// [`WriterHandle::stop`] (or until every `EventStore` clone is gone).
    pub async fn start(
        pool: PgPool,
        config: WriterConfig,
    ) -> Result<(Self, WriterHandle), ReadError> {
        let head = read::head(&pool).await?;
        let (head_sender, committed_head) = watch::channel(head);
        let (appends, queue) = mpsc::channel(config.queue_capacity);
        let stop = CancellationToken::new();
        let task = tokio::spawn(writer::run(
            pool.clone(),
            queue,
            config,
            stop.clone(),
            head_sender,
        ));
        let (recording_reads, asks) = mpsc::channel(config.queue_capacity);
        tokio::spawn(read::recording::answer_asks(pool.clone(), asks));
        let store = Self {
            pool,
            appends,
            recording_reads,
            committed_head,
        };
        Ok((store, WriterHandle { task, stop }))
    }

    /// The last position this server's writer committed, published after each commit and
    /// before the appenders are answered; it starts at the log head `start` read. Appends by
    /// other servers on the same database do not move it: poll [`EventStore::head`] for
    /// those. The sender closes when the writer stops.
    pub fn committed_head(&self) -> watch::Receiver<u64> {
        self.committed_head.clone()
    }

    /// Appends `batch` on behalf of `principal`; answers once it is committed.
    #[tracing::instrument(skip_all, fields(stream_id = %batch.stream_id(), events = batch.events().len()))]
    pub async fn append(
        &self,
        batch: AppendBatch,
        principal: &str,
    ) -> Result<AppendOutcome, AppendError> {
        let mut outcomes = self.queue(AtomicAppend::single(batch), principal).await?;
        Ok(outcomes.remove(0))
    }

    /// Appends every part of `unit` in one transaction, all or nothing, on behalf of
    /// `principal`; answers one outcome per part, in order, once they are committed.
    #[tracing::instrument(skip_all, fields(parts = unit.parts().len(), events = unit.event_count()))]
    pub async fn append_atomically(
        &self,
        unit: AtomicAppend,
        principal: &str,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        self.queue(unit, principal).await
    }

    async fn queue(
        &self,
        unit: AtomicAppend,
        principal: &str,
    ) -> Result<Vec<AppendOutcome>, AppendError> {
        let queued_at = std::time::Instant::now();
        let (reply, answer) = oneshot::channel();
        let command = writer::AppendCommand {
            unit,
            principal: principal.to_owned(),
            queued_at,
            caller: writer::caller(),
            reply,
        };
        let outcome = match self.appends.send(command).await {
            Ok(()) => answer.await.unwrap_or(Err(AppendError::ShuttingDown)),
            Err(_) => Err(AppendError::ShuttingDown),
        };
        count_append(&outcome, queued_at.elapsed());
        outcome
    }

    /// The last committed position (0 for an empty log).
    pub async fn head(&self) -> Result<u64, ReadError> {
        Ok(read::head(&self.pool).await?)
    }

    /// One stream's events, paged from the database as the consumer pulls them.
    pub async fn read_stream(
        &self,
        query: ReadStreamQuery,
    ) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError>
    {
        Ok(read::paging::events(self.read_stream_pages(query).await?))
    }

    /// [`Self::read_stream`] as the pages it is fetched in (each non-empty, at most
    /// `PAGE_SIZE` events and `PAGE_BYTES` unless one event is larger), for a reader that
    /// takes many events at a time.
    pub async fn read_stream_pages(
        &self,
        query: ReadStreamQuery,
    ) -> Result<impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static, ReadError>
    {
        read::read_stream(self.pool.clone(), query).await
    }

    /// The global log, paged from the database as the consumer pulls them.
    pub async fn read_all(
        &self,
        query: ReadAllQuery,
    ) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError>
    {
        Ok(read::paging::events(self.read_all_pages(query).await?))
    }

    /// [`Self::read_all`] as the pages it is fetched in (as [`Self::read_stream_pages`]).
    pub async fn read_all_pages(
        &self,
        query: ReadAllQuery,
    ) -> Result<impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static, ReadError>
    {
        read::read_all(self.pool.clone(), query).await
    }

    /// The events with these ids that exist, in position order.
    pub async fn events_by_id(&self, ids: &[Uuid]) -> Result<Vec<RecordedEvent>, ReadError> {
        read::events_by_id(&self.pool, ids).await
    }

    /// What recording into `streams` needs of the log, in one round trip (see
    /// [`read::recording`]): their versions and steps, the registrations in `actor_streams`,
    /// the events `event_ids` name. Concurrent recordings' reads that wait together are read
    /// together.
    pub async fn recording_inputs(
        &self,
        streams: &[String],
        actor_streams: &[String],
        event_ids: &[Uuid],
    ) -> Result<RecordingInputs, ReadError> {
        let (reply, answer) = oneshot::channel();
        let ask = read::recording::Ask {
            streams: streams.to_vec(),
            actor_streams: actor_streams.to_vec(),
            event_ids: event_ids.to_vec(),
            reply,
        };
        if self.recording_reads.send(ask).await.is_ok()
            && let Ok(read) = answer.await
        {
            return Ok(read?);
        }
        // The task that answers them ends only when the last store does: read alone.
        Ok(
            read::recording::recording_inputs(&self.pool, streams, actor_streams, event_ids)
                .await?,
        )
    }

    /// One page of the log after `after` up to `until` (a committed position), filtered.
    pub async fn events_page(
        &self,
        after: u64,
        until: u64,
        filter: &LogFilter,
        limit: i64,
    ) -> Result<LogPage, ReadError> {
        Ok(read::events_page(&self.pool, after, until, filter, limit).await?)
    }

    /// Up to `limit` streams whose id starts with `prefix`, as of `until` (see
    /// [`read::browse::streams_by_prefix`]).
    pub async fn streams_by_prefix(
        &self,
        prefix: &str,
        key: PageKey<&str>,
        until: u64,
        limit: i64,
    ) -> Result<Vec<StreamSummary>, ReadError> {
        Ok(read::browse::streams_by_prefix(&self.pool, prefix, key, until, limit).await?)
    }

    /// A page of one stream's events as of `until`, newest first, without their payloads.
    pub async fn stream_events(
        &self,
        stream_id: &str,
        key: PageKey<u64>,
        until: u64,
        limit: i64,
    ) -> Result<Vec<EventSummary>, ReadError> {
        Ok(read::browse::stream_events(&self.pool, stream_id, key, until, limit).await?)
    }

    /// The event at `position`, if any.
    pub async fn event_at(&self, position: u64) -> Result<Option<RecordedEvent>, ReadError> {
        Ok(read::browse::event_at(&self.pool, position).await?)
    }

    /// The event of `stream_id` at `version`, if any.
    pub async fn event_of_stream(
        &self,
        stream_id: &str,
        version: u64,
    ) -> Result<Option<RecordedEvent>, ReadError> {
        Ok(read::browse::event_of_stream(&self.pool, stream_id, version).await?)
    }

    /// A page of the diplomatic events `filter` selects as of `until`, newest first.
    pub async fn diplomatic_page(
        &self,
        filter: &DiplomaticFilter,
        key: PageKey<u64>,
        until: u64,
        limit: i64,
    ) -> Result<DiplomaticSlice, ReadError> {
        Ok(read::browse::diplomatic_page(&self.pool, filter, key, until, limit).await?)
    }

    /// The pool, for parts that need their own connection (the subscriptions' listener).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The log forward from `filter.after_position`, filtered, paged as the consumer pulls.
    pub async fn read_filtered(
        &self,
        filter: EventFilter,
    ) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError>
    {
        read::read_filtered(self.pool.clone(), filter).await
    }
}
