//! Reads of streams and of the global log, fetched page by page (keyset pagination) as the
//! consumer pulls, so a read of millions of events holds one page in memory at a time.
//! Each read ends where the stream or log stood when it began, so it always terminates.

use futures::{Stream, StreamExt, TryStreamExt, stream};
use sqlx::{PgExecutor, PgPool};
use tokio::sync::mpsc;

use super::{ReadError, RecordedEvent};
use crate::domain::{Direction, LogFilter, ReadAllQuery, ReadStreamQuery};

/// Rows fetched per round trip.
const PAGE_SIZE: i64 = 512;

/// Pages fetched ahead of the one being consumed.
const READ_AHEAD: usize = 1;

/// `select <every RecordedEvent column> from events <rest>`, as one static string.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "select position, stream_id, stream_version, event_id, event_type, data_text, \
             correlation_id, causation_id, metadata, recorded_at, appended_by from events ",
            $rest
        )
    };
}
pub(super) use select_events;

/// The last committed position (0 for an empty log).
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<u64, sqlx::Error> {
    let (position,): (i64,) = sqlx::query_as("select position from log_head")
        .fetch_one(executor)
        .await?;
    Ok(position as u64)
}

/// Up to `limit` diplomatic events (those the recorder wrote: see
/// `recorder::metadata_keys::SCHEMA`) with `after < position <= bound`, in position order,
/// and that bound: `until`, or the log head if that is lower (or `until` is `None`). One
/// statement, so the head and the events are of one snapshot: when fewer than `limit` come
/// back, the reader has seen every diplomatic event up to the bound. Generic over the
/// executor so a projection runner can read on its own locked connection.
pub async fn diplomatic_events<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    until: Option<u64>,
    limit: i64,
) -> Result<(u64, Vec<RecordedEvent>), sqlx::Error> {
    // The left join keeps the bound when no event comes back.
    let rows: Vec<BoundedEvent> = sqlx::query_as(
        "with bound as ( \
             select least(h.position, coalesce($2, h.position)) as position from log_head h \
         ) \
         select b.position as bound, e.position, e.stream_id, e.stream_version, e.event_id, \
             e.event_type, e.data_text, e.correlation_id, e.causation_id, e.metadata, \
             e.recorded_at, e.appended_by \
         from bound b \
         left join lateral ( \
             select * from events \
             where position > $1 and position <= b.position \
             and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
             order by position limit $3 \
         ) e on true \
         order by e.position",
    )
    .bind(after as i64)
    .bind(until.map(|u| u.min(i64::MAX as u64) as i64))
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let bound = rows.first().map_or(after, |row| row.bound.max(0) as u64);
    Ok((
        bound,
        rows.into_iter().filter_map(BoundedEvent::event).collect(),
    ))
}

/// A row of `diplomatic_events`: the bound, and an event unless none came back.
#[derive(sqlx::FromRow)]
struct BoundedEvent {
    bound: i64,
    position: Option<i64>,
    stream_id: Option<String>,
    stream_version: Option<i64>,
    event_id: Option<uuid::Uuid>,
    event_type: Option<String>,
    data_text: Option<String>,
    correlation_id: Option<uuid::Uuid>,
    causation_id: Option<uuid::Uuid>,
    metadata: Option<sqlx::types::Json<std::collections::BTreeMap<String, String>>>,
    recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    appended_by: Option<String>,
}

impl BoundedEvent {
    fn event(self) -> Option<RecordedEvent> {
        Some(RecordedEvent {
            position: self.position?,
            stream_id: self.stream_id?,
            stream_version: self.stream_version?,
            event_id: self.event_id?,
            event_type: self.event_type?,
            data_text: self.data_text?,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            metadata: self.metadata?,
            recorded_at: self.recorded_at?,
            appended_by: self.appended_by?,
        })
    }
}

/// When the event at `position` was recorded (`None` if there is none: 0, or past the head).
pub async fn recorded_at<'e>(
    executor: impl PgExecutor<'e>,
    position: u64,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    sqlx::query_scalar("select recorded_at from events where position = $1")
        .bind(position.min(i64::MAX as u64) as i64)
        .fetch_optional(executor)
        .await
}

/// The last position recorded at or before `time` (0 if none): recorded_at never decreases
/// along the log, so the log as of `time` is the prefix up to this position.
pub async fn position_at<'e>(
    executor: impl PgExecutor<'e>,
    time: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sqlx::Error> {
    let position: i64 = sqlx::query_scalar("select diplog_position_at($1)")
        .bind(time)
        .fetch_one(executor)
        .await?;
    Ok(position as u64)
}

/// Where the next page starts and how much may still be returned.
#[derive(Clone, Copy)]
struct Cursor {
    /// Next key to return (inclusive), in the read's direction.
    next: i64,
    /// Last key the read may return (inclusive), in the read's direction.
    last: i64,
    remaining: Option<u64>,
}

impl Cursor {
    fn new(direction: Direction, from: Option<u64>, end: i64, limit: Option<u64>) -> Self {
        let (next, last) = match direction {
            Direction::Forward => (from.map_or(1, |f| f.max(1) as i64), end),
            Direction::Backward => (from.map_or(end, |f| (f as i64).min(end)), 1),
        };
        Self {
            next,
            last,
            remaining: limit,
        }
    }

    fn page_size(&self) -> i64 {
        self.remaining
            .map_or(PAGE_SIZE, |r| r.min(PAGE_SIZE as u64) as i64)
    }

    fn is_done(&self, direction: Direction) -> bool {
        self.remaining == Some(0)
            || match direction {
                Direction::Forward => self.next > self.last,
                Direction::Backward => self.next < self.last,
            }
    }

    /// Moves past a page whose last key was `key` and that held `count` rows, of `asked`.
    fn advance(self, direction: Direction, key: i64, count: usize, asked: i64) -> Self {
        let next = match direction {
            Direction::Forward => key + 1,
            Direction::Backward => key - 1,
        };
        let remaining = self.remaining.map(|r| r - count as u64);
        // A short page means the range is exhausted.
        let last = if (count as i64) < asked {
            match direction {
                Direction::Forward => next - 1,
                Direction::Backward => next + 1,
            }
        } else {
            self.last
        };
        Self {
            next,
            last,
            remaining,
        }
    }
}

/// Pages through `fetch(cursor)` until the cursor is done; `key` gives a row's cursor key.
///
/// Reads ahead: a task fetches the next page while the consumer is still taking the previous
/// one (sending it to a client, say), so the database and the consumer work at the same time
/// instead of in turn. At most `READ_AHEAD` pages wait beside the one being consumed; once the
/// stream is dropped, the task stops at its next page. Each page takes its own pooled
/// connection, so a slow consumer holds none while it is not fetching.
fn paginate<F, Fut>(
    direction: Direction,
    cursor: Cursor,
    key: fn(&RecordedEvent) -> i64,
    fetch: F,
) -> impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static
where
    F: Fn(Cursor) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<RecordedEvent>, sqlx::Error>> + Send + 'static,
{
    let (pages, mut received) = mpsc::channel::<Result<Vec<RecordedEvent>, ReadError>>(READ_AHEAD);
    tokio::spawn(async move {
        let mut cursor = cursor;
        while !cursor.is_done(direction) {
            let rows = match fetch(cursor).await {
                Ok(rows) => rows,
                Err(error) => {
                    let _ = pages.send(Err(error.into())).await;
                    return;
                }
            };
            let Some(last_row) = rows.last() else {
                return;
            };
            cursor = cursor.advance(direction, key(last_row), rows.len(), cursor.page_size());
            if pages.send(Ok(rows)).await.is_err() {
                return;
            }
        }
    });
    stream::poll_fn(move |context| received.poll_recv(context))
        .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

pub(super) async fn read_stream(
    pool: PgPool,
    query: ReadStreamQuery,
) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError> {
    let version: Option<(i64,)> =
        sqlx::query_as("select version from streams where stream_id = $1")
            .bind(query.stream_id.as_str())
            .fetch_optional(&pool)
            .await?;
    let Some((version,)) = version else {
        return Err(ReadError::StreamNotFound(
            query.stream_id.as_str().to_owned(),
        ));
    };
    let direction = query.direction;
    let cursor = Cursor::new(direction, query.from_version, version, query.limit);
    let sql = match direction {
        Direction::Forward => select_events!(
            "where stream_id = $1 and stream_version between $2 and $3 \
             order by stream_version limit $4"
        ),
        Direction::Backward => select_events!(
            "where stream_id = $1 and stream_version between $3 and $2 \
             order by stream_version desc limit $4"
        ),
    };
    let stream_id = query.stream_id.as_str().to_owned();
    Ok(paginate(
        direction,
        cursor,
        |e| e.stream_version,
        move |cursor| {
            let (pool, stream_id) = (pool.clone(), stream_id.clone());
            async move {
                sqlx::query_as(sql)
                    .bind(stream_id)
                    .bind(cursor.next)
                    .bind(cursor.last)
                    .bind(cursor.page_size())
                    .fetch_all(&pool)
                    .await
            }
        },
    ))
}

pub(super) async fn read_all(
    pool: PgPool,
    query: ReadAllQuery,
) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError> {
    let end = head(&pool).await? as i64;
    let direction = query.direction;
    let cursor = Cursor::new(direction, query.from_position, end, query.limit);
    // $4: event types (null: all), $5: stream prefix (null: all).
    let sql = match direction {
        Direction::Forward => select_events!(
            "where position between $1 and $2 \
             and ($4::text[] is null or event_type = any($4)) \
             and ($5::text is null or starts_with(stream_id, $5)) \
             order by position limit $3"
        ),
        Direction::Backward => select_events!(
            "where position between $2 and $1 \
             and ($4::text[] is null or event_type = any($4)) \
             and ($5::text is null or starts_with(stream_id, $5)) \
             order by position desc limit $3"
        ),
    };
    let types: Option<Vec<String>> = (!query.event_types.is_empty()).then(|| {
        query
            .event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect()
    });
    let prefix = query.stream_prefix;
    Ok(paginate(
        direction,
        cursor,
        |e| e.position,
        move |cursor| {
            let (pool, types, prefix) = (pool.clone(), types.clone(), prefix.clone());
            async move {
                sqlx::query_as(sql)
                    .bind(cursor.next)
                    .bind(cursor.last)
                    .bind(cursor.page_size())
                    .bind(types)
                    .bind(prefix)
                    .fetch_all(&pool)
                    .await
            }
        },
    ))
}

/// The events with these ids, in position order.
pub(super) async fn events_by_id(
    pool: &PgPool,
    ids: &[uuid::Uuid],
) -> Result<Vec<RecordedEvent>, ReadError> {
    Ok(
        sqlx::query_as(select_events!("where event_id = any($1) order by position"))
            .bind(ids)
            .fetch_all(pool)
            .await?,
    )
}

/// Every event of these streams, in position order (for streams known to be short: one
/// actor's or one commitment's history).
pub(super) async fn whole_streams(
    pool: &PgPool,
    stream_ids: &[String],
) -> Result<Vec<RecordedEvent>, ReadError> {
    Ok(sqlx::query_as(select_events!(
        "where stream_id = any($1) order by position"
    ))
    .bind(stream_ids)
    .fetch_all(pool)
    .await?)
}

/// Reads the log forward, filtered by what `filter` asks; ends at the head as of the start.
pub(super) async fn read_filtered(
    pool: PgPool,
    filter: EventFilter,
) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError> {
    let end = head(&pool).await? as i64;
    let cursor = Cursor::new(
        Direction::Forward,
        Some(filter.after_position + 1),
        end,
        filter.limit,
    );
    // Times are compared as fixed-width RFC 3339 UTC text (see `metadata_keys`).
    let sql = select_events!(
        "where position between $1 and $2 \
         and event_type = any($4) \
         and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
         and ($5::text is null or stream_id = $5) \
         and ($6::text is null or starts_with(stream_id, $6)) \
         and ($7::text is null or metadata->>'diplog.occurred_end' > $7) \
         and ($8::text is null or metadata->>'diplog.occurred_from' < $8) \
         and ($9::timestamptz is null or recorded_at >= $9) \
         and ($10::timestamptz is null or recorded_at < $10) \
         and ($11::text is null or strpos(metadata->>'diplog.actors', ' ' || $11 || ' ') > 0) \
         order by position limit $3"
    );
    let filter = std::sync::Arc::new(filter);
    Ok(paginate(
        Direction::Forward,
        cursor,
        |e| e.position,
        move |cursor| {
            let (pool, filter) = (pool.clone(), filter.clone());
            async move {
                sqlx::query_as(sql)
                    .bind(cursor.next)
                    .bind(cursor.last)
                    .bind(cursor.page_size())
                    .bind(&filter.event_types)
                    .bind(&filter.stream_id)
                    .bind(&filter.stream_prefix)
                    .bind(&filter.occurred_from)
                    .bind(&filter.occurred_until)
                    .bind(filter.recorded_from)
                    .bind(filter.recorded_until)
                    .bind(&filter.actor)
                    .fetch_all(&pool)
                    .await
            }
        },
    ))
}

/// What a filtered read selects. Occurred bounds are fixed-width RFC 3339 UTC text, as the
/// `diplog.occurred_*` metadata holds them.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these event types (required: a filtered read is over known kinds).
    pub event_types: Vec<String>,
    pub stream_id: Option<String>,
    pub stream_prefix: Option<String>,
    pub after_position: u64,
    pub occurred_from: Option<String>,
    pub occurred_until: Option<String>,
    pub recorded_from: Option<chrono::DateTime<chrono::Utc>>,
    pub recorded_until: Option<chrono::DateTime<chrono::Utc>>,
    pub actor: Option<String>,
    pub limit: Option<u64>,
}

/// One page of the log: up to `limit` events with `after < position <= until` that `filter`
/// selects, in position order. Subscriptions read the log this way, page by page, against a
/// bound they already know to be committed. `LogFilter::matches` is the same selection in
/// Rust (for events already in memory): keep the two in step.
pub async fn events_page<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    until: u64,
    filter: &LogFilter,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    let event_types: Vec<&str> = filter.event_types.iter().map(|t| t.as_str()).collect();
    sqlx::query_as(select_events!(
        "where position > $1 and position <= $2 \
         and (cardinality($4::text[]) = 0 or event_type = any($4)) \
         and ($5::text is null or starts_with(stream_id, $5)) \
         and ($6::text is null or strpos(metadata->>'diplog.actors', ' ' || $6 || ' ') > 0) \
         order by position limit $3"
    ))
    .bind(after.min(i64::MAX as u64) as i64)
    .bind(until.min(i64::MAX as u64) as i64)
    .bind(limit)
    .bind(&event_types)
    .bind(&filter.stream_prefix)
    .bind(&filter.actor)
    .fetch_all(executor)
    .await
}
