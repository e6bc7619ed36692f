//! The single writer task: group commit over a locked log head.
//!
//! Why this design: positions must be gapless and in commit order, so that a reader tailing
//! `where position > n` can never miss an event that commits late. A sequence or bigserial
//! cannot promise that (a transaction may take 7, commit after 8 is visible, or roll back and
//! leave a hole). So each append transaction locks the one `log_head` row, takes the next
//! positions, inserts, moves the head and commits: allocation is serialized and a rollback
//! leaves nothing behind. Serializing costs one commit per transaction, so this task takes
//! every append waiting in its queue and writes them all in one transaction (group commit):
//! the more clients, the more appends share a commit; a group of few events first waits briefly
//! (at most about a millisecond) for the callers the last group answered, so that they do not
//! split into cohorts taking turns. Expected versions are checked per append inside the group,
//! and a failed check fails only that caller. Several servers on one database stay correct
//! because they all serialize on the same head row.
//!
//! Two paths write a group. The fast path is one round trip: `diplog_append`, a plpgsql
//! function (its current definition is the last migration that replaces it,
//! `migrations/20261205000011_append_extent.sql`; earlier ones: `…02_append_round_trips`,
//! `…08_append_without_seq_scans`, `…10_append_stream_probes`), locks the head, checks that every expectation holds, writes and commits, or writes nothing
//! (an expectation failed, or the unique index found an event id already written). The
//! careful path, taken on any conflict or retry, locks and reads (`diplog_lock_head`), decides
//! each append here, and writes in one transaction. Callers are answered only after their
//! group has committed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};
use uuid::Uuid;

use super::{AppendError, AppendOutcome, RecordedEvent};
use crate::domain::{AppendBatch, ExpectedVersion, NewEvent, json};

pub(super) struct AppendCommand {
    pub batch: AppendBatch,
    pub principal: String,
    /// When the append was queued: tells the writer which callers were waiting alongside a
    /// group (see `run`).
    pub queued_at: Instant,
    pub reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Appends waiting for the writer; senders wait (backpressure) when it is full.
    pub queue_capacity: usize,
    /// A group stops taking appends once it holds this many events.
    pub max_group_events: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_group_events: 5000,
        }
    }
}

/// The writer's own database connection, held between groups: taking one from the pool per
/// group would cost a liveness ping (a round trip) each time. Dropped after any error, so the
/// next group starts on a fresh, tested one.
struct WriterConnection {
    pool: PgPool,
    held: Option<PoolConnection<Postgres>>,
}

impl WriterConnection {
    async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.held.is_none() {
            self.held = Some(self.pool.acquire().await?);
        }
        Ok(self.held.as_mut().expect("just acquired"))
    }

    /// Runs `work` on the held connection, letting it go if `work` fails, unless the database
    /// itself answered with an error (a conflict, say): the connection is sound then, and a
    /// new one would cost a backend start.
    async fn run<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let result = work(self.get().await?).await;
        if let Err(error) = &result
            && (super::is_unavailable(error) || !matches!(error, sqlx::Error::Database(_)))
        {
            self.held = None;
        }
        result
    }
}

/// Writes groups until `stop` is cancelled; then refuses new appends (their senders get
/// `ShuttingDown`), writes every append already queued, and returns. After each commit the
/// last committed position is published on `head`.
pub(super) async fn run(
    pool: PgPool,
    mut queue: mpsc::Receiver<AppendCommand>,
    config: WriterConfig,
    stop: CancellationToken,
    head: watch::Sender<u64>,
) {
    let mut connection = WriterConnection { pool, held: None };
    let mut group = Vec::new();
    // The appends the last group answered, when it started answering them, and how long its
    // write took.
    let mut answered = 0;
    let mut answered_at = Instant::now();
    let mut last_write = Duration::ZERO;
    loop {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = stop.cancelled(), if !queue.is_closed() => {
                queue.close();
                continue;
            }
        };
        let Some(first) = next else { break };
        let mut events = first.batch.events().len();
        group.push(first);
        take_waiting(&mut queue, &mut group, &mut events, config.max_group_events);
        // Gather: the callers the last group answered are expected back soon, beside those
        // that were already waiting then (queued before it answered). While the group is
        // smaller than both together, and holds fewer than GATHER_UP_TO events, wait for the
        // rest, for at most as long as the last group took (and MAX_GATHER). Otherwise the
        // callers split into cohorts that take turns, each arriving while the other's group is
        // written, and every group pays its commit for half as many events.
        let gathering = Instant::now();
        let waiting_then = group
            .iter()
            .filter(|command| command.queued_at < answered_at)
            .count();
        let expected = answered + waiting_then;
        let gather_up_to = config.max_group_events.min(GATHER_UP_TO);
        if group.len() < expected && events < gather_up_to {
            let patience = tokio::time::sleep(last_write.min(MAX_GATHER));
            tokio::pin!(patience);
            while group.len() < expected && events < gather_up_to {
                tokio::select! {
                    biased;
                    command = queue.recv() => {
                        let Some(command) = command else { break };
                        events += command.batch.events().len();
                        group.push(command);
                        take_waiting(&mut queue, &mut group, &mut events, config.max_group_events);
                    }
                    () = &mut patience => break,
                }
            }
        }
        // A caller that gave up (deadline, disconnect) was never acknowledged: skip its work.
        group.retain(|command| !command.reply.is_closed());
        if !group.is_empty() {
            let started = Instant::now();
            let appends = group.len();
            answered_at =
                write_and_answer(&mut connection, std::mem::take(&mut group), &head).await;
            answered = appends;
            last_write = answered_at - started;
            tracing::trace!(
                appends,
                events,
                expected,
                gathered_us = (started - gathering).as_micros() as u64,
                written_us = last_write.as_micros() as u64,
                "group written"
            );
        }
    }
    debug!("append queue closed; writer stopped");
}

/// The longest a group waits for appends still on their way (see `run`). Timers tick in
/// whole milliseconds, so a wait that runs out lasts up to about 1 ms more.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Only groups of fewer events than this wait for more. A group's own cost (a call, a commit,
/// waking the subscribers, the tree builder and the runners) is worth sharing among a few dozen
/// events; past that, waiting costs more than it saves: the cohorts' overlap of database work
/// with gRPC work is worth more (measured with one server at 64 clients: 12% fewer appends
/// when every group waited for all the callers).
const GATHER_UP_TO: usize = 32;

/// Moves the appends already waiting into `group`, up to `max_events` events in all.
fn take_waiting(
    queue: &mut mpsc::Receiver<AppendCommand>,
    group: &mut Vec<AppendCommand>,
    events: &mut usize,
    max_events: usize,
) {
    while *events < max_events {
        match queue.try_recv() {
            Ok(command) => {
                *events += command.batch.events().len();
                group.push(command);
            }
            Err(_) => break,
        }
    }
}

/// Writes the group and answers its callers; returns when the writing ended, before the
/// first caller was answered.
async fn write_and_answer(
    connection: &mut WriterConnection,
    group: Vec<AppendCommand>,
    head: &watch::Sender<u64>,
) -> Instant {
    match connection
        .run(async |c| write_group_fast(c, &group).await)
        .await
    {
        Ok(Some(outcomes)) => {
            let written = Instant::now();
            answer(group, outcomes, head);
            return written;
        }
        Ok(None) => {}
        Err(error) if super::is_unavailable(&error) => {
            let written = Instant::now();
            let error = log_failure(error);
            for command in group {
                let _ = command.reply.send(Err(error.clone()));
            }
            return written;
        }
        // The careful path writes what can be written and isolates what cannot.
        Err(error) => debug!(error = %error, "fast append failed; taking the careful path"),
    }
    write_carefully_and_answer(connection, group, head).await
}

async fn write_carefully_and_answer(
    connection: &mut WriterConnection,
    group: Vec<AppendCommand>,
    head: &watch::Sender<u64>,
) -> Instant {
    let written = connection.run(async |c| write_group(c, &group).await).await;
    let written_at = Instant::now();
    match written {
        Ok(outcomes) => answer(group, outcomes, head),
        // One bad append must not fail its neighbours: write each on its own to isolate it.
        // Connection failures would fail every one of them alike, so they are answered at once.
        Err(error) if group.len() > 1 && !super::is_unavailable(&error) => {
            warn!(error = %error, appends = group.len(), "group commit failed; retrying its appends one by one");
            for command in group {
                let single = std::slice::from_ref(&command);
                let outcome = match connection.run(async |c| write_group(c, single).await).await {
                    Ok(mut outcomes) => outcomes.remove(0),
                    Err(error) => Err(log_failure(error)),
                };
                publish_head(head, std::slice::from_ref(&outcome));
                let _ = command.reply.send(outcome);
            }
        }
        Err(error) => {
            let error = log_failure(error);
            for command in group {
                let _ = command.reply.send(Err(error.clone()));
            }
        }
    }
    written_at
}

fn log_failure(error: sqlx::Error) -> AppendError {
    let error = AppendError::from(error);
    error!(error = %error, "append transaction failed");
    error
}

fn answer(
    group: Vec<AppendCommand>,
    outcomes: Vec<Result<AppendOutcome, AppendError>>,
    head: &watch::Sender<u64>,
) {
    publish_head(head, &outcomes);
    for (command, outcome) in group.into_iter().zip(outcomes) {
        // The caller may have gone; its events are committed either way.
        let _ = command.reply.send(outcome);
    }
}

/// Publishes the position of the last event a commit wrote, before any caller hears of its
/// positions: whoever learns a position can then wait on the watch for it without a race.
/// Positions are global, so the last one written is the head as of that commit.
fn publish_head(head: &watch::Sender<u64>, outcomes: &[Result<AppendOutcome, AppendError>]) {
    let written = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .filter(|outcome| !outcome.idempotent_replay)
        .filter_map(|outcome| outcome.positions.last().copied())
        .max();
    if let Some(written) = written {
        head.send_if_modified(|published| {
            let moved = written > *published;
            if moved {
                *published = written;
            }
            moved
        });
    }
}

/// Where an event id already lives: in the database, or earlier in this group.
struct WrittenEvent {
    position: i64,
    stream_id: String,
    stream_version: i64,
    event_type: String,
    data_text: String,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    metadata: std::collections::BTreeMap<String, String>,
    /// On an append's first event, how many events the append wrote; 0 on its other events;
    /// `None` where the log does not know (events written before it recorded this, or
    /// restored from an export).
    append_events: Option<i32>,
}

impl WrittenEvent {
    fn from_row(
        WrittenRow {
            event,
            append_events,
        }: WrittenRow,
    ) -> Self {
        Self {
            append_events,
            position: event.position,
            stream_id: event.stream_id,
            stream_version: event.stream_version,
            event_type: event.event_type,
            data_text: event.data_text,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            metadata: event.metadata.0,
        }
    }

    /// Why `event` (appended to `stream_id`) is not the event written before, if it is not.
    /// Payloads compare as JSON values, as jsonb compares them (numbers by value: `1` and
    /// `1.0` are equal), so a retry that re-serializes its JSON still matches.
    fn difference(&self, stream_id: &str, event: &NewEvent) -> Option<&'static str> {
        if self.stream_id != stream_id {
            Some("another stream")
        } else if self.event_type != event.event_type.as_str() {
            Some("another type")
        } else if !json::same_value(&self.data_text, event.data.as_str()) {
            Some("another payload")
        } else if self.correlation_id != event.metadata.correlation_id
            || self.causation_id != event.metadata.causation_id
            || self.metadata != event.metadata.values
        {
            Some("other metadata")
        } else {
            None
        }
    }
}

/// Rows to insert, as columns for one `unnest` insert. The text columns borrow from the
/// group's commands: nothing is copied on the way to the database.
#[derive(Default)]
struct NewRows<'a> {
    positions: Vec<i64>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<&'a str>,
    stream_versions: Vec<i64>,
    event_types: Vec<&'a str>,
    data: Vec<&'a str>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    metadata: Vec<Cow<'a, str>>,
    appended_by: Vec<&'a str>,
    /// See `WrittenEvent::append_events` (the careful path's insert only).
    append_events: Vec<i32>,
}

impl<'a> NewRows<'a> {
    fn with_capacity(events: usize) -> Self {
        Self {
            event_ids: Vec::with_capacity(events),
            event_types: Vec::with_capacity(events),
            data: Vec::with_capacity(events),
            correlation_ids: Vec::with_capacity(events),
            causation_ids: Vec::with_capacity(events),
            metadata: Vec::with_capacity(events),
            appended_by: Vec::with_capacity(events),
            ..Self::default()
        }
    }

    /// Binds the columns that come from the events themselves as parameters $1 to $7 (ids,
    /// types, payloads, correlation ids, causation ids, metadata, principals): both write
    /// statements take them first.
    fn bind_event_columns<'q>(
        &'q self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.data)
            .bind(&self.correlation_ids)
            .bind(&self.causation_ids)
            .bind(&self.metadata)
            .bind(&self.appended_by)
    }

    /// Adds the columns that come from the event itself (not its place in the log).
    fn push_event(&mut self, command: &'a AppendCommand, event: &'a NewEvent) {
        self.event_ids.push(event.id.as_uuid());
        self.event_types.push(event.event_type.as_str());
        self.data.push(event.data.as_str());
        self.correlation_ids.push(event.metadata.correlation_id);
        self.causation_ids.push(event.metadata.causation_id);
        self.metadata.push(if event.metadata.values.is_empty() {
            Cow::Borrowed("{}")
        } else {
            Cow::Owned(serde_json::to_string(&event.metadata.values).expect("a map of strings"))
        });
        self.appended_by.push(&command.principal);
    }
}

/// The common case in one round trip (`diplog_append`): every event id new and every
/// expected version met. `None` when an expectation failed, and an error (unique_violation)
/// when an event id was written before; nothing was written then.
async fn write_group_fast(
    connection: &mut PgConnection,
    group: &[AppendCommand],
) -> Result<Option<Vec<Result<AppendOutcome, AppendError>>>, sqlx::Error> {
    let events: usize = group.iter().map(|c| c.batch.events().len()).sum();
    let mut ids = HashSet::with_capacity(events);
    let retried_in_group = group
        .iter()
        .flat_map(|c| c.batch.events())
        .any(|e| !ids.insert(e.id.as_uuid()));
    if retried_in_group {
        return Ok(None);
    }

    let mut stream_ids = Vec::with_capacity(group.len());
    let mut kinds = Vec::with_capacity(group.len());
    let mut expected_versions = Vec::with_capacity(group.len());
    let mut counts = Vec::with_capacity(group.len());
    let mut rows = NewRows::with_capacity(events);
    let mut commands = Vec::with_capacity(events);
    for (index, command) in group.iter().enumerate() {
        let (kind, expected) = match command.batch.expected() {
            ExpectedVersion::Any => (0_i16, 0_i64),
            ExpectedVersion::NoStream => (1, 0),
            ExpectedVersion::StreamExists => (2, 0),
            ExpectedVersion::Exact(version) => (3, version as i64),
        };
        stream_ids.push(command.batch.stream_id().as_str());
        kinds.push(kind);
        expected_versions.push(expected);
        counts.push(command.batch.events().len() as i32);
        for event in command.batch.events() {
            commands.push(index as i32 + 1);
            rows.push_event(command, event);
        }
    }

    let row = rows
        .bind_event_columns(sqlx::query(
            "select * from diplog_append(e_ids => $1, e_types => $2, e_data => $3, \
                 e_correlation_ids => $4, e_causation_ids => $5, e_metadata => $6, \
                 e_appended_by => $7, c_stream_ids => $8, c_kinds => $9, c_expected => $10, \
                 c_counts => $11, e_command => $12)",
        ))
        .bind(&stream_ids)
        .bind(&kinds)
        .bind(&expected_versions)
        .bind(&counts)
        .bind(&commands)
        // Returns only once the statement's implicit transaction has committed: sqlx reads the
        // reply up to ReadyForQuery (a commit-time error would come before it), so no append is
        // acknowledged before it is durable.
        .fetch_one(connection)
        .await?;
    let written = FastAppend::from_row(&row)?;
    let (true, Some(first_position), Some(start_versions)) = (
        written.appended,
        written.first_position,
        written.start_versions,
    ) else {
        return Ok(None);
    };

    let mut next_position = first_position as u64;
    let outcomes = group
        .iter()
        .zip(start_versions)
        .map(|(command, start_version)| {
            let count = command.batch.events().len() as u64;
            let positions = (next_position..next_position + count).collect();
            next_position += count;
            Ok(AppendOutcome {
                stream_version: start_version as u64 + count,
                positions,
                idempotent_replay: false,
            })
        })
        .collect();
    Ok(Some(outcomes))
}

/// What `diplog_append` answers.
#[derive(sqlx::FromRow)]
struct FastAppend {
    appended: bool,
    first_position: Option<i64>,
    start_versions: Option<Vec<i64>>,
}

/// Writes a group in one transaction of four round trips (begin, lock and read, write,
/// commit). `Err` means nothing was written; otherwise each command's own outcome, in order.
async fn write_group(
    connection: &mut PgConnection,
    group: &[AppendCommand],
) -> Result<Vec<Result<AppendOutcome, AppendError>>, sqlx::Error> {
    let stream_ids: Vec<&str> = group
        .iter()
        .map(|c| c.batch.stream_id().as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let event_ids: Vec<Uuid> = group
        .iter()
        .flat_map(|c| c.batch.events().iter().map(|e| e.id.as_uuid()))
        .collect();

    let mut tx = connection.begin().await?;
    let locked: LockedHead = sqlx::query_as("select * from diplog_lock_head($1, $2)")
        .bind(&stream_ids)
        .bind(&event_ids)
        .fetch_one(&mut *tx)
        .await?;
    // Retries are rare: only then are the earlier events' contents fetched for comparison.
    let mut written = if locked.written_event_ids.is_empty() {
        HashMap::new()
    } else {
        written_events(&mut tx, &locked.written_event_ids).await?
    };
    let mut versions: HashMap<String, i64> = locked
        .version_stream_ids
        .into_iter()
        .zip(locked.versions)
        .collect();

    let mut rows = NewRows::default();
    let mut next_position = locked.head;
    let mut outcomes = Vec::with_capacity(group.len());
    for command in group {
        let outcome = plan_append(command, &written, &mut versions, &mut next_position);
        if let Ok(outcome) = &outcome
            && !outcome.idempotent_replay
        {
            add_rows(command, outcome, &mut rows, &mut written);
        }
        outcomes.push(outcome);
    }

    if !rows.positions.is_empty() {
        insert_rows(&mut tx, &rows, next_position, locked.recorded_at).await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// What `diplog_lock_head` answers.
#[derive(sqlx::FromRow)]
struct LockedHead {
    head: i64,
    recorded_at: DateTime<Utc>,
    version_stream_ids: Vec<String>,
    versions: Vec<i64>,
    written_event_ids: Vec<Uuid>,
}

/// A written event and the extent of the append that wrote it.
#[derive(sqlx::FromRow)]
struct WrittenRow {
    #[sqlx(flatten)]
    event: RecordedEvent,
    append_events: Option<i32>,
}

async fn written_events(
    tx: &mut Transaction<'_, Postgres>,
    event_ids: &[Uuid],
) -> Result<HashMap<Uuid, WrittenEvent>, sqlx::Error> {
    let rows: Vec<WrittenRow> = sqlx::query_as(
        "select position, stream_id, stream_version, event_id, event_type, data_text, \
             correlation_id, causation_id, metadata, recorded_at, appended_by, append_events \
         from events where event_id = any($1)",
    )
    .bind(event_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.event.event_id, WrittenEvent::from_row(row)))
        .collect())
}

/// Decides one append against what is written (in the database or earlier in the group):
/// an idempotent replay, a conflict, or new positions and versions.
fn plan_append(
    command: &AppendCommand,
    written: &HashMap<Uuid, WrittenEvent>,
    versions: &mut HashMap<String, i64>,
    next_position: &mut i64,
) -> Result<AppendOutcome, AppendError> {
    let batch = &command.batch;
    let stream_id = batch.stream_id().as_str();
    let (seen, unseen): (Vec<&NewEvent>, Vec<&NewEvent>) = batch
        .events()
        .iter()
        .partition(|event| written.contains_key(&event.id.as_uuid()));
    if !seen.is_empty() {
        for event in &seen {
            let earlier = &written[&event.id.as_uuid()];
            if let Some(difference) = earlier.difference(stream_id, event) {
                return Err(AppendError::EventIdReused {
                    event_id: event.id.as_uuid(),
                    difference: difference.to_owned(),
                });
            }
        }
        if !unseen.is_empty() {
            return Err(AppendError::PartialRetry {
                written: seen.iter().map(|e| e.id.as_uuid()).collect(),
                unwritten: unseen.iter().map(|e| e.id.as_uuid()).collect(),
            });
        }
        let earlier: Vec<&WrittenEvent> = seen.iter().map(|e| &written[&e.id.as_uuid()]).collect();
        if !repeats_one_append(&earlier) {
            return Err(AppendError::NotOneAppend {
                event_ids: seen.iter().map(|e| e.id.as_uuid()).collect(),
            });
        }
        return Ok(AppendOutcome {
            stream_version: earlier.iter().map(|e| e.stream_version).max().unwrap_or(0) as u64,
            positions: earlier.iter().map(|e| e.position as u64).collect(),
            idempotent_replay: true,
        });
    }

    let current = versions.get(stream_id).copied().unwrap_or(0);
    if !batch.expected().is_met_by(current as u64) {
        return Err(AppendError::WrongExpectedVersion {
            stream_id: stream_id.to_owned(),
            expected: batch.expected(),
            current: current as u64,
        });
    }
    let count = batch.events().len() as i64;
    let first = *next_position + 1;
    *next_position += count;
    versions.insert(stream_id.to_owned(), current + count);
    Ok(AppendOutcome {
        stream_version: (current + count) as u64,
        positions: (first..first + count).map(|p| p as u64).collect(),
        idempotent_replay: false,
    })
}

/// Whether `earlier` (the events a retry repeats, in its order) are exactly the events of one
/// earlier append, in that append's order: consecutive positions from an append's first event,
/// as many as it wrote. Where the log does not know an event's append (`append_events` is
/// `None`), every id written with the same content has to do.
fn repeats_one_append(earlier: &[&WrittenEvent]) -> bool {
    let Some(first) = earlier.first() else {
        return false;
    };
    if earlier.iter().any(|event| event.append_events.is_none()) {
        return true;
    }
    first.append_events == Some(earlier.len() as i32)
        && earlier
            .iter()
            .zip(first.position..)
            .all(|(event, position)| event.position == position)
}

fn add_rows<'a>(
    command: &'a AppendCommand,
    outcome: &AppendOutcome,
    rows: &mut NewRows<'a>,
    written: &mut HashMap<Uuid, WrittenEvent>,
) {
    let stream_id = command.batch.stream_id().as_str();
    let first_version = outcome.stream_version as i64 - outcome.positions.len() as i64 + 1;
    let count = outcome.positions.len() as i32;
    for (index, ((event, &position), version)) in command
        .batch
        .events()
        .iter()
        .zip(&outcome.positions)
        .zip(first_version..)
        .enumerate()
    {
        let position = position as i64;
        let append_events = if index == 0 { count } else { 0 };
        rows.positions.push(position);
        rows.stream_ids.push(stream_id);
        rows.stream_versions.push(version);
        rows.append_events.push(append_events);
        rows.push_event(command, event);
        // A later append in the same group that repeats these ids is a retry of this one.
        written.insert(
            event.id.as_uuid(),
            WrittenEvent {
                position,
                stream_id: stream_id.to_owned(),
                stream_version: version,
                event_type: event.event_type.as_str().to_owned(),
                data_text: event.data.as_str().to_owned(),
                correlation_id: event.metadata.correlation_id,
                causation_id: event.metadata.causation_id,
                metadata: event.metadata.values.clone(),
                append_events: Some(append_events),
            },
        );
    }
}

/// Inserts the events, moves each touched stream to its last version and the head to
/// `head`, in one statement (data-modifying CTEs always run to completion).
async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    rows: &NewRows<'_>,
    head: i64,
    recorded_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut last_versions: HashMap<&str, i64> = HashMap::new();
    for (&stream_id, &version) in rows.stream_ids.iter().zip(&rows.stream_versions) {
        last_versions.insert(stream_id, version);
    }
    let (stream_ids, versions): (Vec<&str>, Vec<i64>) = last_versions.into_iter().unzip();
    rows.bind_event_columns(sqlx::query(
        "with new_events as ( \
             insert into events (event_id, event_type, data, data_text, correlation_id, \
                 causation_id, metadata, appended_by, position, stream_id, stream_version, \
                 recorded_at, append_events) \
             select id, t, d::jsonb, d, c, ca, m::jsonb, a, p, s, v, $11, n \
             from unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], \
                 $6::text[], $7::text[], $8::bigint[], $9::text[], $10::bigint[], \
                 $15::integer[]) \
                 as u(id, t, d, c, ca, m, a, p, s, v, n) \
         ), stream_versions as ( \
             insert into streams (stream_id, version, created_at, updated_at) \
             select s, v, $11, $11 from unnest($12::text[], $13::bigint[]) as u(s, v) \
             on conflict (stream_id) do update \
                 set version = excluded.version, updated_at = excluded.updated_at \
         ) \
         update log_head set position = $14, last_recorded_at = $11",
    ))
    .bind(&rows.positions)
    .bind(&rows.stream_ids)
    .bind(&rows.stream_versions)
    .bind(recorded_at)
    .bind(&stream_ids)
    .bind(&versions)
    .bind(head)
    .bind(&rows.append_events)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
