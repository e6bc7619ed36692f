//! Writing one group, in one of two paths. The fast path is one round trip: `diplog_append`,
//! a plpgsql function (its current definition is the last migration that replaces it,
//! `migrations/20261205000011_append_extent.sql`; earlier ones: `…02_append_round_trips`,
//! `…08_append_without_seq_scans`, `…10_append_stream_probes`), locks the head, checks that
//! every expectation holds, writes and commits, or writes nothing (an expectation failed, or
//! the unique index found an event id already written). The careful path, taken on any
//! conflict or retry, locks and reads (`diplog_lock_head`), decides each append in Rust
//! (`plan`), and writes in one transaction. Callers are answered only after their group has
//! committed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use tracing::{Instrument, Span};
use uuid::Uuid;

use super::AppendCommand;
use super::plan::{WrittenEvent, plan_unit};
use crate::domain::{AppendBatch, ExpectedVersion, NewEvent};
use crate::store::{AppendError, AppendOutcome, RecordedEvent};

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
    fn push_event(&mut self, principal: &'a str, event: &'a NewEvent) {
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
        self.appended_by.push(principal);
    }
}

/// The common case in one round trip (`diplog_append`): every event id new and every
/// expected version met. `None` when an expectation failed, and an error (unique_violation)
/// when an event id was written before; nothing was written then. The function knows appends,
/// not units: each part of an atomic append is one of its appends, and since it writes all or
/// nothing, a unit's parts are written together.
pub(super) async fn write_group_fast(
    connection: &mut PgConnection,
    group: &[AppendCommand],
) -> Result<Option<Vec<Result<Vec<AppendOutcome>, AppendError>>>, sqlx::Error> {
    let events: usize = group.iter().map(|c| c.unit.event_count()).sum();
    let mut ids = HashSet::with_capacity(events);
    let retried_in_group = group
        .iter()
        .flat_map(|c| c.unit.events())
        .any(|e| !ids.insert(e.id.as_uuid()));
    if retried_in_group {
        return Ok(None);
    }

    let parts: Vec<(&AppendCommand, &AppendBatch)> = group
        .iter()
        .flat_map(|command| command.unit.parts().iter().map(move |part| (command, part)))
        .collect();
    let mut stream_ids = Vec::with_capacity(parts.len());
    let mut kinds = Vec::with_capacity(parts.len());
    let mut expected_versions = Vec::with_capacity(parts.len());
    let mut counts = Vec::with_capacity(parts.len());
    let mut rows = NewRows::with_capacity(events);
    let mut commands = Vec::with_capacity(events);
    for (index, &(command, part)) in parts.iter().enumerate() {
        let (kind, expected) = match part.expected() {
            ExpectedVersion::Any => (0_i16, 0_i64),
            ExpectedVersion::NoStream => (1, 0),
            ExpectedVersion::StreamExists => (2, 0),
            ExpectedVersion::Exact(version) => (3, version as i64),
        };
        stream_ids.push(part.stream_id().as_str());
        kinds.push(kind);
        expected_versions.push(expected);
        counts.push(part.events().len() as i32);
        for event in part.events() {
            commands.push(index as i32 + 1);
            rows.push_event(&command.principal, event);
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
        .instrument(db_span("SELECT diplog_append", "SELECT"))
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
    let mut start_versions = start_versions.into_iter();
    let outcomes = group
        .iter()
        .map(|command| {
            let outcomes = command
                .unit
                .parts()
                .iter()
                .zip(start_versions.by_ref())
                .map(|(part, start_version)| {
                    let count = part.events().len() as u64;
                    let positions = (next_position..next_position + count).collect();
                    next_position += count;
                    AppendOutcome {
                        stream_version: start_version as u64 + count,
                        positions,
                        idempotent_replay: false,
                    }
                })
                .collect();
            Ok(outcomes)
        })
        .collect();
    Ok(Some(outcomes))
}

/// A database call's span for trace export (disabled without it), a child of the group's.
/// `summary` names the statement (`SELECT diplog_append`), never its values.
fn db_span(summary: &'static str, operation: &'static str) -> Span {
    tracing::info_span!(
        target: crate::telemetry::TARGET,
        "db",
        otel.name = summary,
        otel.kind = "client",
        db.system = "postgresql",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.query.summary = summary,
    )
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
pub(super) async fn write_group(
    connection: &mut PgConnection,
    group: &[AppendCommand],
) -> Result<Vec<Result<Vec<AppendOutcome>, AppendError>>, sqlx::Error> {
    let stream_ids: Vec<&str> = group
        .iter()
        .flat_map(|c| c.unit.parts().iter().map(|part| part.stream_id().as_str()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let event_ids: Vec<Uuid> = group
        .iter()
        .flat_map(|c| c.unit.events().map(|e| e.id.as_uuid()))
        .collect();

    let mut tx = connection
        .begin()
        .instrument(db_span("BEGIN", "BEGIN"))
        .await?;
    let locked: LockedHead = sqlx::query_as("select * from diplog_lock_head($1, $2)")
        .bind(&stream_ids)
        .bind(&event_ids)
        .fetch_one(&mut *tx)
        .instrument(db_span("SELECT diplog_lock_head", "SELECT"))
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
        let outcome = plan_unit(&command.unit, &written, &mut versions, &mut next_position);
        if let Ok(parts) = &outcome {
            for (part, outcome) in command.unit.parts().iter().zip(parts) {
                if !outcome.idempotent_replay {
                    add_rows(&command.principal, part, outcome, &mut rows, &mut written);
                }
            }
        }
        outcomes.push(outcome);
    }

    if !rows.positions.is_empty() {
        insert_rows(&mut tx, &rows, next_position, locked.recorded_at).await?;
    }
    tx.commit().instrument(db_span("COMMIT", "COMMIT")).await?;
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
    .instrument(db_span("SELECT events", "SELECT"))
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.event.event_id;
            (
                id,
                WrittenEvent::from_recorded(row.event, row.append_events),
            )
        })
        .collect())
}

fn add_rows<'a>(
    principal: &'a str,
    part: &'a AppendBatch,
    outcome: &AppendOutcome,
    rows: &mut NewRows<'a>,
    written: &mut HashMap<Uuid, WrittenEvent>,
) {
    let stream_id = part.stream_id().as_str();
    let first_version = outcome.stream_version as i64 - outcome.positions.len() as i64 + 1;
    let count = outcome.positions.len() as i32;
    for (index, ((event, &position), version)) in part
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
        rows.push_event(principal, event);
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
    .instrument(db_span("INSERT events", "INSERT"))
    .await?;
    Ok(())
}
