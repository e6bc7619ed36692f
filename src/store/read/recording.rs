//! What recording a typed event needs of the log, in one round trip: the streams it writes to
//! (their versions, and their own steps without the reports and corrections about them), the
//! registrations of the actors it names, and the events it names by id. What a record reads
//! grows with the lifecycles it touches, not with how many sources reported them (the partial
//! index `events_stream_steps_idx`).

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

/// One event as the rules take note of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KnownEvent {
    /// Its position in the log (for a stream's version row: the version).
    pub position: i64,
    pub stream_id: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// Written by the recorder (the `diplog.schema` marker): only then a diplomatic event.
    pub diplomatic: bool,
    /// The JSON of the kinds whose payload adds facts (`ActorRegistered`, `EventRetracted`);
    /// empty for the rest, which the rules know by kind.
    pub data_text: String,
}

/// What [`recording_inputs`] read.
#[derive(Debug, Default)]
pub struct RecordingInputs {
    /// Each stream written to, at its version (absent: a stream that does not exist yet).
    pub versions: HashMap<String, u64>,
    /// Those streams' steps, the actors' registrations and retractions, and the events named
    /// by id, in position order (a retraction after what it retracts), some more than once.
    pub events: Vec<KnownEvent>,
}

#[derive(sqlx::FromRow)]
struct Row {
    /// 0: a stream's version (in `event.position`), 1: a step of a stream written to, 2: an
    /// actor's registration or a retraction in its stream, 3: an event named by id.
    part: i32,
    #[sqlx(flatten)]
    event: KnownEvent,
}

pub(in crate::store) async fn recording_inputs(
    pool: &PgPool,
    streams: &[String],
    actor_streams: &[String],
    event_ids: &[Uuid],
) -> Result<RecordingInputs, sqlx::Error> {
    // One function (migration 20261206140000): planned on every call, never with a
    // sequential scan of `events`.
    let rows: Vec<Row> = sqlx::query_as("select * from diplog_recording_inputs($1, $2, $3)")
        .bind(streams)
        .bind(actor_streams)
        .bind(event_ids)
        .fetch_all(pool)
        .await?;
    let mut inputs = RecordingInputs::default();
    for row in rows {
        if row.part == 0 {
            inputs
                .versions
                .insert(row.event.stream_id, row.event.position as u64);
        } else {
            inputs.events.push(row.event);
        }
    }
    Ok(inputs)
}
