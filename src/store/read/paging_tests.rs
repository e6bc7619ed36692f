//! `paginate` over a log held in memory: which pages it fetches, how many at once, and that
//! what it answers is every key of the range once, in order, whatever the pages' cuts.
//! (The reads over PostgreSQL are tested in `tests/api`: `read_memory.rs`, `writer.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use super::{Cursor, PAGE_SIZE, READ_AHEAD, SizedRow, paginate};
use crate::domain::Direction;
use crate::store::{ReadError, RecordedEvent};

/// A log of positions `1..=head` read through a fetch that takes `delay`, keeps the positions
/// `kept` lets through (a filter), and cuts a page after `cut_after` rows when the page starts
/// at a position `cut_at` picks (as its bytes would); such a page takes five times as long.
struct Log {
    delay: Duration,
    kept: fn(i64) -> bool,
    cut_at: fn(i64) -> bool,
    cut_after: usize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    started: Mutex<Vec<i64>>,
}

impl Log {
    fn new(delay: Duration) -> Self {
        Self {
            delay,
            kept: |_| true,
            cut_at: |_| false,
            cut_after: 0,
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            started: Mutex::new(Vec::new()),
        }
    }

    async fn fetch(&self, direction: Direction, cursor: Cursor) -> Vec<SizedRow> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        self.started.lock().unwrap().push(cursor.next);
        let slow = if (self.cut_at)(cursor.next) { 5 } else { 1 };
        tokio::time::sleep(self.delay * slow).await;
        let end = cursor.window_end(direction);
        let keys: Vec<i64> = match direction {
            Direction::Forward => (cursor.next..=end).collect(),
            Direction::Backward => (end..=cursor.next).rev().collect(),
        };
        let mut rows: Vec<SizedRow> = keys
            .into_iter()
            .filter(|&key| (self.kept)(key))
            .take(cursor.page_size() as usize)
            .map(|key| SizedRow {
                event: RecordedEvent::example(key, "{}".to_owned()),
                cut: false,
            })
            .collect();
        if (self.cut_at)(cursor.next) && rows.len() > self.cut_after {
            rows.truncate(self.cut_after);
            rows.last_mut().expect("a row").cut = true;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        rows
    }

    /// Every position `paginate` answers for a read of `1..=head` (from `from`), in order.
    async fn read(
        self: &Arc<Self>,
        direction: Direction,
        from: Option<u64>,
        head: i64,
        limit: Option<u64>,
        filtered: bool,
    ) -> Vec<i64> {
        let cursor = Cursor::new(direction, from, head, limit, filtered);
        let log = self.clone();
        let pages = paginate(
            direction,
            cursor,
            |e| e.position,
            move |cursor| {
                let log = log.clone();
                async move { Ok(log.fetch(direction, cursor).await) }
            },
        );
        let pages: Vec<Result<Vec<RecordedEvent>, ReadError>> = pages.collect().await;
        pages
            .into_iter()
            .flat_map(|page| page.expect("a page"))
            .map(|event| event.position)
            .collect()
    }
}

const PAGE: i64 = PAGE_SIZE;

#[tokio::test]
async fn an_unfiltered_read_fetches_read_ahead_pages_at_once_and_answers_each_key_once() {
    let log = Arc::new(Log::new(Duration::from_millis(20)));
    let head = 6 * PAGE + 7;
    let read = log.read(Direction::Forward, None, head, None, false).await;
    assert_eq!(read, (1..=head).collect::<Vec<_>>());
    let most = log.most_in_flight.load(Ordering::SeqCst);
    assert!(
        most > 1 && most == READ_AHEAD,
        "{most} fetches at once at most"
    );
    // Each page fetched once: no guess was wrong.
    assert_eq!(log.started.lock().unwrap().len(), 7);

    let read = log.read(Direction::Backward, None, head, None, false).await;
    assert_eq!(read, (1..=head).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_filtered_read_fetches_one_page_at_a_time() {
    let log = Arc::new(Log {
        kept: |key| key % 3 == 0,
        ..Log::new(Duration::from_millis(5))
    });
    let head = 40 * PAGE;
    let read = log.read(Direction::Forward, None, head, None, true).await;
    assert_eq!(read, (1..=head).filter(|k| k % 3 == 0).collect::<Vec<_>>());
    assert_eq!(log.most_in_flight.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_page_cut_by_its_bytes_drops_the_pages_guessed_after_it() {
    // The second and fourth pages come back cut after 10 rows, and late: the fetches that
    // started meanwhile at the next whole window are dropped, and the read goes on after
    // their last rows, losing and repeating nothing.
    let log = Arc::new(Log {
        cut_at: |next| next == PAGE + 1 || next == 2 * PAGE + 11,
        cut_after: 10,
        ..Log::new(Duration::from_millis(10))
    });
    let head = 5 * PAGE;
    let read = log.read(Direction::Forward, None, head, None, false).await;
    assert_eq!(read, (1..=head).collect::<Vec<_>>());
    let started = log.started.lock().unwrap().clone();
    // While each cut page was being fetched, the page after its whole window was fetched too,
    // and dropped: the read went on after the cut page's last row.
    for guessed in [2 * PAGE + 1, 3 * PAGE + 11, PAGE + 11, 2 * PAGE + 21] {
        assert!(started.contains(&guessed), "{guessed} not in {started:?}");
    }
}

#[tokio::test]
async fn a_stretch_of_pages_cut_by_their_bytes_is_fetched_once() {
    // Every page comes back cut after 40 rows (events of 100 KiB, say): after the first, no
    // page is guessed, so only the one guess made before any page arrived is wasted.
    let log = Arc::new(Log {
        cut_at: |_| true,
        cut_after: 40,
        ..Log::new(Duration::from_millis(2))
    });
    let head = 50 * 40;
    let read = log.read(Direction::Forward, None, head, None, false).await;
    assert_eq!(read, (1..=head).collect::<Vec<_>>());
    let fetches = log.started.lock().unwrap().len();
    assert_eq!(fetches, 50 + 1, "{fetches} fetches for 50 pages");
}

#[tokio::test]
async fn a_limited_read_from_a_position_answers_exactly_its_range() {
    let log = Arc::new(Log::new(Duration::from_millis(2)));
    let head = 4 * PAGE;
    let read = log
        .read(Direction::Forward, Some(100), head, Some(700), false)
        .await;
    assert_eq!(read, (100..800).collect::<Vec<_>>());
    let read = log
        .read(Direction::Backward, Some(1500), head, Some(600), false)
        .await;
    assert_eq!(read, (901..=1500).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_read_nobody_consumes_fetches_at_most_read_ahead_pages() {
    let log = Arc::new(Log::new(Duration::from_millis(1)));
    let cursor = Cursor::new(Direction::Forward, None, 100 * PAGE, None, false);
    let fetching = log.clone();
    let pages = paginate(
        Direction::Forward,
        cursor,
        |e| e.position,
        move |cursor| {
            let log = fetching.clone();
            async move { Ok(log.fetch(Direction::Forward, cursor).await) }
        },
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.started.lock().unwrap().len(), READ_AHEAD);
    drop(pages);
}
