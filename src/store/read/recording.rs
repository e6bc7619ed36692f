//! What recording a typed event needs of the log, in one round trip: the streams it writes to
//! (their versions, and their own steps without the reports and corrections about them), the
//! registrations of the actors it names, and the events it names by id. What a record reads
//! grows with the lifecycles it touches, not with how many sources reported them (the partial
//! index `events_stream_steps_idx`).

use std::collections::{BTreeSet, HashMap};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
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

#[derive(Clone, sqlx::FromRow)]
struct Row {
    /// 0: a stream's version (in `event.position`), 1: a step of a stream written to, 2: an
    /// actor's registration or a retraction in its stream, 3: an event named by id.
    part: i32,
    #[sqlx(flatten)]
    event: KnownEvent,
}

/// Most recordings read together in one round trip.
const MOST_READ_TOGETHER: usize = 64;

/// One recording's read, and where its answer goes.
pub(in crate::store) struct Ask {
    pub streams: Vec<String>,
    pub actor_streams: Vec<String>,
    pub event_ids: Vec<Uuid>,
    pub reply: oneshot::Sender<Result<RecordingInputs, sqlx::Error>>,
}

/// Answers the asks of concurrent recordings, those waiting together in one read, as the
/// writer groups appends: each arm of the read matches each name on its own, so the union's
/// rows that concern an ask are exactly what its own read would give (one snapshot for all).
/// One read at a time; ends when every sender is gone.
pub(in crate::store) async fn answer_asks(pool: PgPool, mut asks: mpsc::Receiver<Ask>) {
    while let Some(first) = asks.recv().await {
        let mut batch = vec![first];
        while batch.len() < MOST_READ_TOGETHER
            && let Ok(ask) = asks.try_recv()
        {
            batch.push(ask);
        }
        tracing::debug!(asks = batch.len(), "read for recordings");
        if batch.len() == 1 {
            let ask = batch.remove(0);
            let read = recording_inputs(&pool, &ask.streams, &ask.actor_streams, &ask.event_ids);
            let _ = ask.reply.send(read.await);
            continue;
        }
        let union = |names: fn(&Ask) -> &Vec<String>| -> Vec<String> {
            let set: BTreeSet<&String> = batch.iter().flat_map(names).collect();
            set.into_iter().cloned().collect()
        };
        let streams = union(|ask| &ask.streams);
        let actor_streams = union(|ask| &ask.actor_streams);
        let event_ids: Vec<Uuid> = batch
            .iter()
            .flat_map(|ask| &ask.event_ids)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        match rows(&pool, &streams, &actor_streams, &event_ids).await {
            Ok(all) => {
                for ask in batch {
                    let concerns = |row: &Row| match row.part {
                        0 | 1 => ask.streams.contains(&row.event.stream_id),
                        2 => ask.actor_streams.contains(&row.event.stream_id),
                        _ => ask.event_ids.contains(&row.event.event_id),
                    };
                    let _ = ask
                        .reply
                        .send(Ok(inputs(all.iter().filter(|row| concerns(row)).cloned())));
                }
            }
            // Each ask then gets its own read, and its own error.
            Err(_) => {
                for ask in batch {
                    let read =
                        recording_inputs(&pool, &ask.streams, &ask.actor_streams, &ask.event_ids);
                    let _ = ask.reply.send(read.await);
                }
            }
        }
    }
}

/// One recording's read on its own.
pub(in crate::store) async fn recording_inputs(
    pool: &PgPool,
    streams: &[String],
    actor_streams: &[String],
    event_ids: &[Uuid],
) -> Result<RecordingInputs, sqlx::Error> {
    let rows = rows(pool, streams, actor_streams, event_ids).await?;
    Ok(inputs(rows))
}

/// The read itself.
async fn rows(
    pool: &PgPool,
    streams: &[String],
    actor_streams: &[String],
    event_ids: &[Uuid],
) -> Result<Vec<Row>, sqlx::Error> {
    // One function (migration 20261206140000): planned once per connection, never with a
    // sequential scan of `events`.
    sqlx::query_as("select * from diplog_recording_inputs($1, $2, $3)")
        .bind(streams)
        .bind(actor_streams)
        .bind(event_ids)
        .fetch_all(pool)
        .await
}

/// `rows` as the rules take them.
fn inputs(rows: impl IntoIterator<Item = Row>) -> RecordingInputs {
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
    inputs
}
