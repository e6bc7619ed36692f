//! Reads of streams and of the global log, fetched page by page (keyset pagination) as the
//! consumer pulls, so a read of millions of events holds one page in memory at a time.
//! Each read ends where the stream or log stood when it began, so it always terminates.
//!
//! A page is bounded in rows (`PAGE_SIZE`) and in bytes (`PAGE_BYTES`): PostgreSQL keeps the
//! page's rows, in key order, while their running total of bytes stays within the budget (the
//! first row always goes, so an event larger than the budget comes alone). A page cut short by
//! its bytes ends at its last row, as a full one does; only a page short of rows and not cut
//! has seen its whole window. With events of 1 MiB a page of 512 rows would be half a GiB,
//! held for a client that may never read it.
//!
//! Every page is also bounded in the keys it may look at (a window), not only in the rows it
//! returns: `where position between next and end order by position limit n` lets PostgreSQL
//! choose a bitmap scan of everything up to `end` and a sort, and it does whenever its
//! statistics say the range is small (a log written since the last ANALYZE, or no ANALYZE yet):
//! each page then read and sorted the whole rest of the log, and a read of 50,000 fresh events
//! took 38 ms a page instead of 0.3. Positions and stream versions are gapless, so an
//! unfiltered page's window is exactly its size; a filtered page's window is wider (a filter
//! may leave most keys out) and grows while pages come back short.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use sqlx::{PgExecutor, PgPool};
use tokio::sync::mpsc;

use super::{ReadError, RecordedEvent};
use crate::domain::{Direction, LogFilter, ReadAllQuery, ReadStreamQuery};

/// Rows fetched per round trip at most.
pub const PAGE_SIZE: i64 = 512;

/// Bytes of events fetched per round trip at most (their payloads and metadata, as PostgreSQL
/// measures them without reading the payloads: see [`sized_page!`]), unless the page's first
/// event alone is larger: it then comes alone.
/// Every page of the log is bounded so, whoever reads it: the reads below, subscriptions
/// catching up, the live tail, the audit tree builder, the projection runners and `as of`
/// replays (through [`diplomatic_events`]).
pub const PAGE_BYTES: i64 = 4 << 20;

/// Pages fetched ahead of the one being consumed, counting the one being fetched: a read holds
/// at most `1 + READ_AHEAD` pages on the server.
pub const READ_AHEAD: usize = 1;

/// The first window of a filtered read, in pages: a filter may select few of the keys (and
/// at least `MIN_FILTERED_WINDOW` keys).
const FILTERED_WINDOW_PAGES: i64 = 16;

/// The widest window a filtered read grows to, in keys.
const MAX_WINDOW: i64 = 1 << 20;

/// The narrowest window of a filtered page, in keys, however small the page: a window that
/// cannot go wrong costs about as much as this many rows.
const MIN_FILTERED_WINDOW: i64 = 8192;

/// The window of one page after `after` (exclusive) up to `until`: `limit` keys when every
/// key is wanted (keys are gapless, so that is exactly one page), wider when `filtered`.
fn window_end(after: u64, until: u64, limit: i64, filtered: bool) -> u64 {
    let span = if filtered {
        limit
            .saturating_mul(FILTERED_WINDOW_PAGES)
            .max(MIN_FILTERED_WINDOW)
    } else {
        limit
    };
    until.min(after.saturating_add(span.max(1) as u64))
}

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

/// `select <every RecordedEvent column>, cut` of one page bounded in rows and bytes: `$rest`
/// is the page's `where … order by <key> limit <rows>` over `events`, `$order` its ordering
/// again (`position`, `stream_version desc`, …) and `$budget` the parameter holding the byte
/// budget. The page's rows are kept, in order, while the running total of their bytes stays
/// within the budget, and the first row always (its running total is its own size: every row
/// has some, a payload is `{}` at least). `cut` says that a row the row limit let through
/// came after the row and was left out.
///
/// A row's bytes are its payload's `octet_length`, which reads the stored length, not the
/// TOASTed value (rows left out cost nothing to measure), and its metadata's stored size, or
/// its length as text when PostgreSQL compressed it (so that a compressible one counts
/// whole). One window aggregate over at most a page of rows: about 0.3 ms more a page of 512
/// small events than the bare query (0.5 against 0.2 ms).
macro_rules! sized_page {
    ($order:literal, $budget:literal, $rest:literal) => {
        concat!(
            "select position, stream_id, stream_version, event_id, event_type, data_text, \
             correlation_id, causation_id, metadata, recorded_at, appended_by, cut \
             from ( \
                 select page.*, sum(page.row_bytes) over w as bytes_through, \
                     lead(true, 1, false) over w as cut \
                 from ( \
                     select events.*, octet_length(data_text) + \
                         case when pg_column_compression(metadata) is null \
                             then pg_column_size(metadata) \
                             else octet_length(metadata::text) end as row_bytes \
                     from events ",
            $rest,
            "    ) page \
                 window w as (order by ",
            $order,
            " rows between unbounded preceding and current row) \
             ) sized \
             where bytes_through <= ",
            $budget,
            " or bytes_through = row_bytes \
             order by ",
            $order
        )
    };
}

/// A row of a [`sized_page!`] query.
#[derive(sqlx::FromRow)]
struct SizedRow {
    #[sqlx(flatten)]
    event: RecordedEvent,
    /// A row came after this one in the page and was left out for the page's bytes (only the
    /// last row of a page can say so).
    cut: bool,
}

/// One page of events, and whether it ends at its last row: full (as many rows as asked) or
/// cut by its bytes. A page that does not has seen every row of its window.
struct Page {
    events: Vec<RecordedEvent>,
    ends_at_last_row: bool,
}

impl Page {
    fn new(rows: Vec<SizedRow>, asked: i64) -> Self {
        let cut = rows.last().is_some_and(|row| row.cut);
        let events: Vec<RecordedEvent> = rows.into_iter().map(|row| row.event).collect();
        Self {
            ends_at_last_row: cut || events.len() as i64 >= asked,
            events,
        }
    }
}

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
/// is `None`), or up to the end of this page's window if that is lower still (see the
/// module's comment). One statement, so the head and the events are of one snapshot. Generic
/// over the executor so a projection runner can read on its own locked connection.
pub async fn diplomatic_events<'e>(
    executor: impl PgExecutor<'e>,
    after: u64,
    until: Option<u64>,
    limit: i64,
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

/// Where the next page starts, how far it may look, and how much may still be returned.
#[derive(Clone, Copy)]
struct Cursor {
    /// Next key to return (inclusive), in the read's direction.
    next: i64,
    /// Last key the read may return (inclusive), in the read's direction.
    last: i64,
    remaining: Option<u64>,
    /// Keys the next page may look at (its window). Fixed at one page for an unfiltered
    /// read; a filtered one doubles it after each page that comes back short.
    window: i64,
    filtered: bool,
}

impl Cursor {
    fn new(
        direction: Direction,
        from: Option<u64>,
        end: i64,
        limit: Option<u64>,
        filtered: bool,
    ) -> Self {
        let (next, last) = match direction {
            Direction::Forward => (from.map_or(1, |f| f.max(1) as i64), end),
            Direction::Backward => (from.map_or(end, |f| (f as i64).min(end)), 1),
        };
        Self {
            next,
            last,
            remaining: limit,
            window: if filtered {
                PAGE_SIZE * FILTERED_WINDOW_PAGES
            } else {
                PAGE_SIZE
            },
            filtered,
        }
    }

    fn page_size(&self) -> i64 {
        self.remaining
            .map_or(PAGE_SIZE, |r| r.min(PAGE_SIZE as u64) as i64)
    }

    /// The far end of the next page's window (inclusive), in the read's direction.
    fn window_end(&self, direction: Direction) -> i64 {
        match direction {
            Direction::Forward => self.last.min(self.next.saturating_add(self.window - 1)),
            Direction::Backward => self.last.max(self.next.saturating_sub(self.window - 1)),
        }
    }

    fn is_done(&self, direction: Direction) -> bool {
        self.remaining == Some(0)
            || match direction {
                Direction::Forward => self.next > self.last,
                Direction::Backward => self.next < self.last,
            }
    }

    /// Moves past a page of `count` rows whose last row has key `last_key`: a page that
    /// `ends_at_last_row` (full, or cut by its bytes) goes on after that row, any other has
    /// seen its whole window.
    fn advance(
        self,
        direction: Direction,
        last_key: Option<i64>,
        count: usize,
        ends_at_last_row: bool,
    ) -> Self {
        let full = ends_at_last_row && last_key.is_some();
        let through = match last_key {
            Some(key) if full => key,
            _ => self.window_end(direction),
        };
        let next = match direction {
            Direction::Forward => through + 1,
            Direction::Backward => through - 1,
        };
        let window = if self.filtered && !full {
            self.window.saturating_mul(2).min(MAX_WINDOW)
        } else {
            self.window
        };
        Self {
            next,
            remaining: self.remaining.map(|r| r - count as u64),
            window,
            ..self
        }
    }
}

/// Pages through `fetch(cursor)` until the cursor is done; `key` gives a row's cursor key.
/// `fetch` reads a [`sized_page!`] of up to `cursor.page_size()` rows from `cursor.next` to
/// `cursor.window_end(direction)`, both inclusive.
///
/// Reads ahead: a task fetches the next page while the consumer is still taking the previous
/// one (sending it to a client, say), so the database and the consumer work at the same time
/// instead of in turn. The task takes a place in the channel before it fetches a page, so at
/// most `READ_AHEAD` pages, fetched or being fetched, wait beside the one being consumed:
/// a read that is never consumed holds `1 + READ_AHEAD` pages at most. Once the stream is
/// dropped, the task stops at its next page. Each page takes its own pooled connection, so a
/// slow consumer holds none while it is not fetching.
fn paginate<F, Fut>(
    direction: Direction,
    cursor: Cursor,
    key: fn(&RecordedEvent) -> i64,
    fetch: F,
) -> impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static
where
    F: Fn(Cursor) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<SizedRow>, sqlx::Error>> + Send + 'static,
{
    let (pages, mut received) = mpsc::channel::<Result<Vec<RecordedEvent>, ReadError>>(READ_AHEAD);
    tokio::spawn(async move {
        let mut cursor = cursor;
        while !cursor.is_done(direction) {
            // Room first: the consumer gone, the read stops.
            let Ok(room) = pages.reserve().await else {
                return;
            };
            let page = match fetch(cursor).await {
                Ok(rows) => Page::new(rows, cursor.page_size()),
                Err(error) => {
                    room.send(Err(error.into()));
                    return;
                }
            };
            cursor = cursor.advance(
                direction,
                page.events.last().map(key),
                page.events.len(),
                page.ends_at_last_row,
            );
            // A filtered window may hold nothing; the read goes on past it.
            if !page.events.is_empty() {
                room.send(Ok(page.events));
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

pub(super) async fn read_all(
    pool: PgPool,
    query: ReadAllQuery,
) -> Result<impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static, ReadError> {
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
    Ok(paginate(
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

/// One page of the log: up to `limit` events, and `PAGE_BYTES` (see [`sized_page!`]), with
/// `after < position <= through` that `filter` selects, in position order, and `through`: the
/// last event's position if the page is full or cut by its bytes, else the end of the window
/// it read (at most `until`, see the module's comment). Every selected event up to `through`
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
