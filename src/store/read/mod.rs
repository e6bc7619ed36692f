//! Reads of streams and of the global log, fetched page by page (keyset pagination) as the
//! consumer pulls, so a read of millions of events holds one page in memory at a time.
//! Each read ends where the stream or log stood when it began, so it always terminates.
//!
//! Here are the queries: the streamed reads behind `EventStore` and the one-statement reads
//! the other parts use (the projections' pages and blocks, the subscriptions' pages, the audit
//! side's and the bench's). How a page is bounded, and how a read is paged as its consumer
//! pulls, is `paging`'s.

pub(super) mod paging;
pub(super) mod recording;

use futures::Stream;
use futures::stream::BoxStream;
use sqlx::{PgExecutor, PgPool};

use super::{ReadError, RecordedEvent};
use crate::domain::{Direction, LogFilter, ReadAllQuery, ReadStreamQuery};
use paging::{Cursor, PAGE_BYTES, Page, SizedRow, events, paginate, sized_page, window_end};

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

pub(super) mod browse;
pub(super) mod dates;

/// The last committed position (0 for an empty log).
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<u64, sqlx::Error> {
    let (position,): (i64,) = sqlx::query_as("select position from log_head")
        .fetch_one(executor)
        .await?;
    Ok(position as u64)
}

/// Up to `limit` diplomatic events (those the recorder wrote: see
/// `recorder::metadata_keys::SCHEMA`), and `PAGE_BYTES` (see [`sized_page!`]), after `after`,
/// in position order, up to `until` or the log head, whichever is lower (the head if `until`
/// is `None`), or up to the end of this page's window if that is lower still (see
/// `paging`). One statement, so the head and the events are of one snapshot. Generic
/// over the executor so a projection runner can read on its own locked connection.
///
/// With `happened_by` (a time as the recorder notes `diplog.occurred_end`: fixed-width RFC 3339
/// UTC, a year of four digits), only the events that may have happened by then: those whose
/// noted end is not after it (noted to the microsecond, never later than the event's own),
/// those that note none, and every correction and retraction (a diplomatic event's type is
/// its kind's name).
pub async fn diplomatic_events<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    until: Option<u64>,
    limit: i64,
    happened_by: Option<&str>,
) -> Result<DiplomaticPage, sqlx::Error> {
    // The left join keeps the bounds when no event comes back.
    let rows: Vec<BoundedEvent> = sqlx::query_as(concat!(
        "with bound as ( \
             select least(h.position, coalesce($2, h.position)) as end_bound, \
                    least(h.position, coalesce($2, h.position), $4) as position \
             from log_head h \
         ) \
         select b.end_bound, b.position as bound, e.position, e.stream_id, e.stream_version, \
             e.event_id, e.event_type, e.data_text, e.correlation_id, e.causation_id, \
             e.metadata, e.recorded_at, e.appended_by, e.cut \
         from bound b \
         left join lateral ( ",
        sized_page!(
            "position",
            "$5",
            "where position > $1 and position <= b.position \
             and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
             and ($6::text is null \
                  or event_type in ('EventCorrected', 'EventRetracted') \
                  or not metadata ? 'diplog.occurred_end' \
                  or metadata->>'diplog.occurred_end' <= $6::text collate \"C\") \
             order by position limit $3"
        ),
        " ) e on true \
         order by e.position"
    ))
    .bind(after as i64)
    .bind(until.map(|u| u.min(i64::MAX as u64) as i64))
    .bind(limit)
    .bind(window_end(after, i64::MAX as u64, limit, true) as i64)
    .bind(PAGE_BYTES)
    .bind(happened_by)
    .fetch_all(executor)
    .await?;
    let (bound, end) = rows.first().map_or((after, after), |row| {
        (row.bound.max(0) as u64, row.end_bound.max(0) as u64)
    });
    let cut = rows.last().is_some_and(|row| row.cut == Some(true));
    Ok(DiplomaticPage {
        events: rows.into_iter().filter_map(BoundedEvent::event).collect(),
        bound,
        windowed: bound < end,
        cut,
    })
}

/// What [`diplomatic_events`] answers.
#[derive(Debug)]
pub struct DiplomaticPage {
    pub events: Vec<RecordedEvent>,
    /// The position the page read up to: when fewer than `limit` events came back and the
    /// page was not `cut`, every diplomatic event up to here is in `events`.
    pub bound: u64,
    /// The page's window ended before `until` and the head: more of the log may follow at once.
    pub windowed: bool,
    /// The page was cut short by its bytes: like a full page, it ends at its last event, and
    /// the next one goes on after it.
    pub cut: bool,
}

/// A row of `diplomatic_events`: the bound, and an event unless none came back.
#[derive(sqlx::FromRow)]
struct BoundedEvent {
    end_bound: i64,
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
    cut: Option<bool>,
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

/// The columns of a diplomatic event that the projections parse into a fact.
#[derive(Debug, sqlx::FromRow)]
pub struct DiplomaticRow {
    pub position: i64,
    pub stream_id: String,
    pub event_id: uuid::Uuid,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub data_text: String,
}

/// Every diplomatic event (see [`diplomatic_events`]) with `after < position <= through`, in
/// position order, in one statement. Bounded by the span alone, not in rows or bytes nor by
/// the head: for a short stretch the caller knows to be committed (the projections' fact
/// cache reads its blocks of 1,024 positions so, once the head is past them).
pub async fn diplomatic_rows<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    through: u64,
) -> Result<Vec<DiplomaticRow>, sqlx::Error> {
    sqlx::query_as(
        "select position, stream_id, event_id, recorded_at, data_text from events \
         where position > $1 and position <= $2 \
         and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
         order by position",
    )
    .bind(after as i64)
    .bind(through as i64)
    .fetch_all(executor)
    .await
}

/// How many diplomatic events (see [`diplomatic_events`]) the log holds up to `through`
/// (inclusive). Counts them one by one: for the benchmark's report, not for serving.
pub async fn count_diplomatic<'e>(
    executor: impl PgExecutor<'e>,
    through: u64,
) -> Result<u64, sqlx::Error> {
    let count: i64 = sqlx::query_scalar(
        "select count(*) from events where position <= $1 \
         and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent'",
    )
    .bind(through as i64)
    .fetch_one(executor)
    .await?;
    Ok(count as u64)
}

/// How many events of `event_type` the log holds up to `through` (inclusive). Counts them one
/// by one: for the benchmark's report, not for serving.
pub async fn count_of_type<'e>(
    executor: impl PgExecutor<'e>,
    event_type: &str,
    through: u64,
) -> Result<u64, sqlx::Error> {
    let count: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = $1 and position <= $2")
            .bind(event_type)
            .bind(through as i64)
            .fetch_one(executor)
            .await?;
    Ok(count as u64)
}

/// The position of the event with this id, if the log has one.
pub async fn position_of<'e>(
    executor: impl PgExecutor<'e>,
    event_id: uuid::Uuid,
) -> Result<Option<u64>, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("select position from events where event_id = $1")
            .bind(event_id)
            .fetch_optional(executor)
            .await?;
    Ok(position.map(|p| p as u64))
}

/// An event, and the leaf hash the audit tree stored for its position (`None` if it stores
/// none).
#[derive(sqlx::FromRow)]
pub struct EventWithLeaf {
    #[sqlx(flatten)]
    pub event: RecordedEvent,
    pub leaf: Option<Vec<u8>>,
}

/// The whole log in position order, each event with its leaf hash: the level-0 node that
/// `audit::builder` stored in `merkle_nodes` for its position (the one table of another part
/// the store reads, so that `diplog verify` can set each event beside the hash it is checked
/// against in one pass). One statement, streamed on one connection as the consumer pulls:
/// not paged, so it sees one snapshot of the log and its tree.
pub fn events_with_leaves(pool: &PgPool) -> BoxStream<'_, Result<EventWithLeaf, sqlx::Error>> {
    sqlx::query_as(
        "select e.position, e.stream_id, e.stream_version, e.event_id, e.event_type, \
             e.data_text, e.correlation_id, e.causation_id, e.metadata, e.recorded_at, \
             e.appended_by, n.hash as leaf \
         from events e \
         left join merkle_nodes n on n.level = 0 and n.index = e.position - 1 \
         order by e.position",
    )
    .fetch(pool)
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

/// One stream's events, page by page (see `paging`).
pub(super) async fn read_stream(
    pool: PgPool,
    query: ReadStreamQuery,
) -> Result<impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static, ReadError> {
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
    let cursor = Cursor::new(direction, query.from_version, version, query.limit, false);
    let sql = match direction {
        Direction::Forward => sized_page!(
            "stream_version",
            "$5",
            "where stream_id = $1 and stream_version between $2 and $3 \
             order by stream_version limit $4"
        ),
        Direction::Backward => sized_page!(
            "stream_version desc",
            "$5",
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
                    .bind(cursor.window_end(direction))
                    .bind(cursor.page_size())
                    .bind(PAGE_BYTES)
                    .fetch_all(&pool)
                    .await
            }
        },
    ))
}

/// The global log's events, page by page (see `paging`).
pub(super) async fn read_all(
    pool: PgPool,
    query: ReadAllQuery,
) -> Result<impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static, ReadError> {
    let end = head(&pool).await? as i64;
    let direction = query.direction;
    let filtered = !query.event_types.is_empty() || query.stream_prefix.is_some();
    let cursor = Cursor::new(direction, query.from_position, end, query.limit, filtered);
    // $4: event types (null: all), $5: stream prefix (null: all).
    let sql = match direction {
        Direction::Forward => sized_page!(
            "position",
            "$6",
            "where position between $1 and $2 \
             and ($4::text[] is null or event_type = any($4)) \
             and ($5::text is null or starts_with(stream_id, $5)) \
             order by position limit $3"
        ),
        Direction::Backward => sized_page!(
            "position desc",
            "$6",
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
                    .bind(cursor.window_end(direction))
                    .bind(cursor.page_size())
                    .bind(types)
                    .bind(prefix)
                    .bind(PAGE_BYTES)
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
        true,
    );
    // Times are compared as fixed-width RFC 3339 UTC text (see `metadata_keys`).
    let sql = sized_page!(
        "position",
        "$12",
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
    Ok(events(paginate(
        Direction::Forward,
        cursor,
        |e| e.position,
        move |cursor| {
            let (pool, filter) = (pool.clone(), filter.clone());
            async move {
                sqlx::query_as(sql)
                    .bind(cursor.next)
                    .bind(cursor.window_end(Direction::Forward))
                    .bind(cursor.page_size())
                    .bind(&filter.event_types)
                    .bind(&filter.stream_id)
                    .bind(&filter.stream_prefix)
                    .bind(&filter.occurred_from)
                    .bind(&filter.occurred_until)
                    .bind(filter.recorded_from)
                    .bind(filter.recorded_until)
                    .bind(&filter.actor)
                    .bind(PAGE_BYTES)
                    .fetch_all(&pool)
                    .await
            }
        },
    )))
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

/// One page of the log: up to `limit` events, and `PAGE_BYTES` (see [`sized_page!`]), with
/// `after < position <= through` that `filter` selects, in position order, and `through`: the
/// last event's position if the page is full or cut by its bytes, else the end of the window
/// it read (at most `until`, see `paging`). Every selected event up to `through`
/// is in the page. Subscriptions read the log this way, page by page, against a bound they
/// already know to be committed. `LogFilter::matches` is the same selection in Rust (for
/// events already in memory): keep the two in step.
pub async fn events_page<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    until: u64,
    filter: &LogFilter,
    limit: i64,
) -> Result<LogPage, sqlx::Error> {
    let window_end = window_end(after, until, limit, !filter.is_everything());
    let event_types: Vec<&str> = filter.event_types.iter().map(|t| t.as_str()).collect();
    let rows: Vec<SizedRow> = sqlx::query_as(sized_page!(
        "position",
        "$7",
        "where position > $1 and position <= $2 \
         and (cardinality($4::text[]) = 0 or event_type = any($4)) \
         and ($5::text is null or starts_with(stream_id, $5)) \
         and ($6::text is null or strpos(metadata->>'diplog.actors', ' ' || $6 || ' ') > 0) \
         order by position limit $3"
    ))
    .bind(after.min(i64::MAX as u64) as i64)
    .bind(window_end.min(i64::MAX as u64) as i64)
    .bind(limit)
    .bind(&event_types)
    .bind(&filter.stream_prefix)
    .bind(&filter.actor)
    .bind(PAGE_BYTES)
    .fetch_all(executor)
    .await?;
    let Page {
        events,
        ends_at_last_row,
    } = Page::new(rows, limit);
    let through = match events.last() {
        Some(last) if ends_at_last_row => last.position as u64,
        _ => window_end,
    };
    Ok(LogPage { events, through })
}

/// A page of the log (see [`events_page`]).
#[derive(Debug)]
pub struct LogPage {
    pub events: Vec<RecordedEvent>,
    /// Every selected event up to this position is in `events`.
    pub through: u64,
}
