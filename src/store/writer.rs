//! The single writer task: group commit over a locked log head.
//!
//! Why this design: positions must be gapless and in commit order, so that a reader tailing
//! `where position > n` can never miss an event that commits late. A sequence or bigserial
//! cannot promise that (a transaction may take 7, commit after 8 is visible, or roll back and
//! leave a hole). So each append transaction locks the one `log_head` row, takes the next
//! positions, inserts, moves the head and commits: allocation is serialized and a rollback
//! leaves nothing behind. Serializing costs one commit per transaction, so this task takes
//! every append waiting in its queue and writes them all in one transaction (group commit):
//! the more clients, the more appends share a commit. Expected versions are checked per append
//! inside the group, and a failed check fails only that caller. Several servers on one
//! database stay correct because they all serialize on the same head row.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, warn};
use uuid::Uuid;

use super::{AppendError, AppendOutcome, RecordedEvent};
use crate::domain::{AppendBatch, NewEvent};

pub(super) struct AppendCommand {
    pub batch: AppendBatch,
    pub principal: String,
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

pub(super) async fn run(
    pool: PgPool,
    mut queue: mpsc::Receiver<AppendCommand>,
    config: WriterConfig,
) {
    let mut group = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut events = first.batch.events().len();
        group.push(first);
        while events < config.max_group_events {
            match queue.try_recv() {
                Ok(command) => {
                    events += command.batch.events().len();
                    group.push(command);
                }
                Err(_) => break,
            }
        }
        // A caller that gave up (deadline, disconnect) was never acknowledged: skip its work.
        group.retain(|command| !command.reply.is_closed());
        if !group.is_empty() {
            write_and_answer(&pool, std::mem::take(&mut group)).await;
        }
    }
    debug!("append queue closed; writer stopped");
}

async fn write_and_answer(pool: &PgPool, group: Vec<AppendCommand>) {
    match write_group(pool, &group).await {
        Ok(outcomes) => answer(group, outcomes),
        // One bad append must not fail its neighbours: write each on its own to isolate it.
        // Connection failures would fail every one of them alike, so they are answered at once.
        Err(error) if group.len() > 1 && !super::is_unavailable(&error) => {
            warn!(error = %error, appends = group.len(), "group commit failed; retrying its appends one by one");
            for command in group {
                let outcome = match write_group(pool, std::slice::from_ref(&command)).await {
                    Ok(mut outcomes) => outcomes.remove(0),
                    Err(error) => Err(log_failure(error)),
                };
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
}

fn log_failure(error: sqlx::Error) -> AppendError {
    let error = AppendError::from(error);
    error!(error = %error, "append transaction failed");
    error
}

fn answer(group: Vec<AppendCommand>, outcomes: Vec<Result<AppendOutcome, AppendError>>) {
    for (command, outcome) in group.into_iter().zip(outcomes) {
        // The caller may have gone; its events are committed either way.
        let _ = command.reply.send(outcome);
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
}

impl WrittenEvent {
    fn from_recorded(event: RecordedEvent) -> Self {
        Self {
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
    /// Payloads compare as JSON values, so a retry that re-serializes its JSON still matches.
    fn difference(&self, stream_id: &str, event: &NewEvent) -> Option<&'static str> {
        if self.stream_id != stream_id {
            Some("another stream")
        } else if self.event_type != event.event_type.as_str() {
            Some("another type")
        } else if self.data_text != event.data.as_str()
            && serde_json::from_str::<serde_json::Value>(&self.data_text).ok()
                != serde_json::from_str::<serde_json::Value>(event.data.as_str()).ok()
        {
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

/// Rows to insert, as columns for one `unnest` insert.
#[derive(Default)]
struct NewRows {
    positions: Vec<i64>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<String>,
    stream_versions: Vec<i64>,
    event_types: Vec<String>,
    data: Vec<String>,
    correlation_ids: Vec<Option<Uuid>>,
    causation_ids: Vec<Option<Uuid>>,
    metadata: Vec<String>,
    appended_by: Vec<String>,
}

/// Writes a group in one transaction. `Err` means nothing was written; otherwise each
/// command's own outcome, in order.
async fn write_group(
    pool: &PgPool,
    group: &[AppendCommand],
) -> Result<Vec<Result<AppendOutcome, AppendError>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (head, recorded_at): (i64, DateTime<Utc>) = sqlx::query_as(
        "select position, greatest(clock_timestamp(), last_recorded_at) from log_head for update",
    )
    .fetch_one(&mut *tx)
    .await?;

    let mut written = already_written(&mut tx, group).await?;
    let mut versions = current_versions(&mut tx, group).await?;

    let mut rows = NewRows::default();
    let mut next_position = head;
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
        insert_events(&mut tx, &rows, recorded_at).await?;
        upsert_streams(&mut tx, &rows, recorded_at).await?;
        sqlx::query("update log_head set position = $1, last_recorded_at = $2")
            .bind(next_position)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Every row already stored under one of the group's event ids.
async fn already_written(
    tx: &mut Transaction<'_, Postgres>,
    group: &[AppendCommand],
) -> Result<HashMap<Uuid, WrittenEvent>, sqlx::Error> {
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|c| c.batch.events().iter().map(|e| e.id.as_uuid()))
        .collect();
    let rows: Vec<RecordedEvent> =
        sqlx::query_as(super::read::select_events!("where event_id = any($1)"))
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.event_id, WrittenEvent::from_recorded(row)))
        .collect())
}

async fn current_versions(
    tx: &mut Transaction<'_, Postgres>,
    group: &[AppendCommand],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let streams: Vec<&str> = group
        .iter()
        .map(|c| c.batch.stream_id().as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("select stream_id, version from streams where stream_id = any($1)")
            .bind(&streams)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows.into_iter().collect())
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

fn add_rows(
    command: &AppendCommand,
    outcome: &AppendOutcome,
    rows: &mut NewRows,
    written: &mut HashMap<Uuid, WrittenEvent>,
) {
    let stream_id = command.batch.stream_id().as_str();
    let first_version = outcome.stream_version as i64 - outcome.positions.len() as i64 + 1;
    for ((event, &position), version) in command
        .batch
        .events()
        .iter()
        .zip(&outcome.positions)
        .zip(first_version..)
    {
        let position = position as i64;
        rows.positions.push(position);
        rows.event_ids.push(event.id.as_uuid());
        rows.stream_ids.push(stream_id.to_owned());
        rows.stream_versions.push(version);
        rows.event_types.push(event.event_type.as_str().to_owned());
        rows.data.push(event.data.as_str().to_owned());
        rows.correlation_ids.push(event.metadata.correlation_id);
        rows.causation_ids.push(event.metadata.causation_id);
        rows.metadata
            .push(serde_json::to_string(&event.metadata.values).expect("a map of strings"));
        rows.appended_by.push(command.principal.clone());
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
            },
        );
    }
}

async fn insert_events(
    tx: &mut Transaction<'_, Postgres>,
    rows: &NewRows,
    recorded_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into events (position, event_id, stream_id, stream_version, event_type, data, \
             data_text, correlation_id, causation_id, metadata, recorded_at, appended_by) \
         select p, id, s, v, t, d::jsonb, d, c, ca, m::jsonb, $11, a \
         from unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
             $6::text[], $7::uuid[], $8::uuid[], $9::text[], $10::text[]) \
             as u(p, id, s, v, t, d, c, ca, m, a)",
    )
    .bind(&rows.positions)
    .bind(&rows.event_ids)
    .bind(&rows.stream_ids)
    .bind(&rows.stream_versions)
    .bind(&rows.event_types)
    .bind(&rows.data)
    .bind(&rows.correlation_ids)
    .bind(&rows.causation_ids)
    .bind(&rows.metadata)
    .bind(&rows.appended_by)
    .bind(recorded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets each touched stream to its last version in this group.
async fn upsert_streams(
    tx: &mut Transaction<'_, Postgres>,
    rows: &NewRows,
    recorded_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut last_versions: HashMap<&str, i64> = HashMap::new();
    for (stream_id, &version) in rows.stream_ids.iter().zip(&rows.stream_versions) {
        last_versions.insert(stream_id, version);
    }
    let (stream_ids, versions): (Vec<&str>, Vec<i64>) = last_versions.into_iter().unzip();
    sqlx::query(
        "insert into streams (stream_id, version, created_at, updated_at) \
         select s, v, $3, $3 from unnest($1::text[], $2::bigint[]) as u(s, v) \
         on conflict (stream_id) do update \
             set version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(&stream_ids)
    .bind(&versions)
    .bind(recorded_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
