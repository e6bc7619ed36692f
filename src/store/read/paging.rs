//! The byte-bounded keyset paging every read of the log goes through: the bounds of a page
//! (rows, bytes, and the window of keys it may look at), the SQL that cuts a page to its
//! bytes (`sized_page!`), and the cursor and read-ahead task that page a read as its
//! consumer pulls. The queries themselves are in `read`.
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

use std::collections::VecDeque;

use futures::{Stream, StreamExt, TryStreamExt, stream};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::domain::Direction;
use crate::store::{ReadError, RecordedEvent};

/// Rows fetched per round trip at most.
pub const PAGE_SIZE: i64 = 512;

/// Bytes of events fetched per round trip at most (their payloads and metadata, as PostgreSQL
/// measures them without reading the payloads: see [`sized_page!`]), unless the page's first
/// event alone is larger: it then comes alone.
/// Every page of the log is bounded so, whoever reads it: the reads of `read`, subscriptions
/// catching up, the live tail, the audit tree builder, the projection runners and `as of`
/// replays (through [`super::diplomatic_events`]).
pub const PAGE_BYTES: i64 = 4 << 20;

/// Pages fetched ahead of the one being consumed, counting the one being fetched: a read holds
/// at most `1 + READ_AHEAD` pages on the server.
pub const READ_AHEAD: usize = 2;

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
pub(super) fn window_end(after: u64, until: u64, limit: i64, filtered: bool) -> u64 {
    let span = if filtered {
        limit
            .saturating_mul(FILTERED_WINDOW_PAGES)
            .max(MIN_FILTERED_WINDOW)
    } else {
        limit
    };
    until.min(after.saturating_add(span.max(1) as u64))
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
    ($order:literal, $budget:literal, $rest:expr) => {
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
pub(super) use sized_page;

/// A row of a [`sized_page!`] query.
#[derive(sqlx::FromRow)]
pub(super) struct SizedRow {
    #[sqlx(flatten)]
    event: RecordedEvent,
    /// A row came after this one in the page and was left out for the page's bytes (only the
    /// last row of a page can say so).
    cut: bool,
}

/// One page of events, and whether it ends at its last row: full (as many rows as asked) or
/// cut by its bytes. A page that does not has seen every row of its window.
pub(super) struct Page {
    pub(super) events: Vec<RecordedEvent>,
    pub(super) ends_at_last_row: bool,
}

impl Page {
    pub(super) fn new(rows: Vec<SizedRow>, asked: i64) -> Self {
        let cut = rows.last().is_some_and(|row| row.cut);
        let events: Vec<RecordedEvent> = rows.into_iter().map(|row| row.event).collect();
        Self {
            ends_at_last_row: cut || events.len() as i64 >= asked,
            events,
        }
    }
}

/// Where the next page starts, how far it may look, and how much may still be returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Cursor {
    /// Next key to return (inclusive), in the read's direction.
    pub(super) next: i64,
    /// Last key the read may return (inclusive), in the read's direction.
    last: i64,
    remaining: Option<u64>,
    /// Keys the next page may look at (its window). Fixed at one page for an unfiltered
    /// read; a filtered one doubles it after each page that comes back short.
    window: i64,
    filtered: bool,
}

impl Cursor {
    pub(super) fn new(
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

    pub(super) fn page_size(&self) -> i64 {
        self.remaining
            .map_or(PAGE_SIZE, |r| r.min(PAGE_SIZE as u64) as i64)
    }

    /// The far end of the next page's window (inclusive), in the read's direction.
    pub(super) fn window_end(&self, direction: Direction) -> i64 {
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

    /// Where the page after this one starts if this one covers its whole window, as an
    /// unfiltered page not cut by its bytes does (keys are gapless); `None` for a filtered
    /// read, whose pages may end anywhere in their windows.
    fn unless_cut(self, direction: Direction) -> Option<Self> {
        (!self.filtered).then(|| {
            let count = self.page_size() as usize;
            self.advance(direction, Some(self.window_end(direction)), count, true)
        })
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
/// Reads ahead: the next pages are fetched while the consumer is still taking the previous
/// one (sending it to a client, say), so the database and the consumer work at the same time
/// instead of in turn. Every fetch first takes a place in the channel, so at most
/// `READ_AHEAD` pages, fetched or being fetched, wait beside the one being consumed: a read
/// that is never consumed holds `1 + READ_AHEAD` pages at most. Once the stream is dropped,
/// no further page is fetched and those under way are abandoned. Each page takes its own
/// pooled connection, so a slow consumer holds none while nothing is being fetched.
///
/// An unfiltered read knows where its next page starts before the page before it arrives
/// (keys are gapless: a page that is not cut by its bytes covers its whole window), so it
/// fetches up to `READ_AHEAD` pages at once, on as many connections; a page that comes back
/// cut, or short, drops the fetches that guessed past it and the read goes on from where it
/// really ended, guessing again only once a page has covered its whole window. A filtered page's end is known only once it arrives: one fetch at a time.
///
/// Answers the pages as they come, in order (never an empty one): a batched read sends them
/// on as they are, the others go through [`events`].
pub(super) fn paginate<F, Fut>(
    direction: Direction,
    cursor: Cursor,
    key: fn(&RecordedEvent) -> i64,
    fetch: F,
) -> impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static
where
    F: Fn(Cursor) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<SizedRow>, sqlx::Error>> + Send + 'static,
{
    let (pages, mut received) = mpsc::channel::<Result<Vec<RecordedEvent>, ReadError>>(READ_AHEAD);
    tokio::spawn(async move {
        // Fetches under way, oldest first, each with its place in the channel; dropping one
        // abandons its fetch.
        let mut under_way: VecDeque<(Cursor, mpsc::OwnedPermit<_>, AbortOnDropHandle<_>)> =
            VecDeque::new();
        let start = |cursor, room| {
            (
                cursor,
                room,
                AbortOnDropHandle::new(tokio::spawn(fetch(cursor))),
            )
        };
        let unless_done = |cursor: Option<Cursor>| cursor.filter(|c| !c.is_done(direction));
        // Where the next fetch to start begins, if known.
        let mut next = unless_done(Some(cursor));
        // Whether the last page covered its whole window: after a page cut by its bytes (a
        // stretch of large events) the next is not guessed, so such a stretch is not read
        // twice.
        let mut guessing = true;
        loop {
            let guess = next.filter(|_| guessing && under_way.len() < READ_AHEAD);
            let Some((_, _, fetching)) = under_way.front_mut() else {
                // Nothing under way: wait for room (the consumer gone, the read stops).
                let Some(cursor) = next else { return };
                let Ok(room) = pages.clone().reserve_owned().await else {
                    return;
                };
                under_way.push_back(start(cursor, room));
                next = unless_done(cursor.unless_cut(direction));
                continue;
            };
            tokio::select! {
                // Room for a page after the ones under way: fetch it too.
                room = pages.clone().reserve_owned(), if guess.is_some() => {
                    let (Ok(room), Some(cursor)) = (room, guess) else { return };
                    under_way.push_back(start(cursor, room));
                    next = unless_done(cursor.unless_cut(direction));
                }
                fetched = fetching => {
                    let (cursor, room, _) = under_way.pop_front().expect("the page fetched");
                    let page = match fetched {
                        Ok(Ok(rows)) => Page::new(rows, cursor.page_size()),
                        Ok(Err(error)) => {
                            room.send(Err(error.into()));
                            return;
                        }
                        // The fetch panicked (it is aborted only by this side's drop).
                        Err(error) => {
                            room.send(Err(ReadError::BrokeOff(error.to_string())));
                            return;
                        }
                    };
                    let after = cursor.advance(
                        direction,
                        page.events.last().map(key),
                        page.events.len(),
                        page.ends_at_last_row,
                    );
                    guessing = Some(after) == cursor.unless_cut(direction);
                    if !guessing {
                        // The page ended elsewhere than its whole window: the fetches after
                        // it (if any) guessed wrong.
                        under_way.clear();
                        next = unless_done(Some(after));
                    }
                    // A filtered window may hold nothing; the read goes on past it.
                    if !page.events.is_empty() {
                        room.send(Ok(page.events));
                    }
                }
            }
        }
    });
    stream::poll_fn(move |context| received.poll_recv(context))
}

/// The events of `pages`, one by one.
pub(in crate::store) fn events(
    pages: impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static,
) -> impl Stream<Item = Result<RecordedEvent, ReadError>> + Send + 'static {
    pages
        .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

#[cfg(test)]
#[path = "paging_tests.rs"]
mod tests;
