//! The log as the projection runners read it: diplomatic events, parsed into facts. The runners
//! of one server share a `FactCache`, so when several of them pass the same stretch of the log
//! (catching up, rebuilding) it is read from PostgreSQL and parsed once, not once per runner.
//! Never writes; knows nothing of any model. Holds no SQL: it reads through the store
//! (`store::diplomatic_rows` for a block, `store::diplomatic_events` for the tail).
//!
//! - The cache holds blocks of `BLOCK` consecutive positions, each read in one statement and
//!   only once the whole block is committed (the head is past its end): the log is append-only
//!   and positions are gapless and in commit order, so such a block never changes.
//! - The stretch after the last complete block (the tail caught-up runners follow) is not in
//!   a block. The live runners still read each new stretch of it once between them: the last
//!   `TAIL_KEPT` or so positions read are kept (`Tail`), a runner within them takes what they
//!   hold, and reads on from their end only if the head is known to be further (one read at
//!   a time; the others wait for it and take what it read). Reads up to a given position (a
//!   rebuild's) read the tail directly.
//! - Single flight: runners wanting a block that is being read wait for that read rather than
//!   start their own. If the read fails (or its runner stops), the next one wanting the block
//!   reads it itself, on its own connection.
//! - Bounded: at most `CAPACITY` blocks, the least recently used going first. A runner that
//!   falls further behind than that reads the blocks again; it never waits for another.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tokio::sync::OnceCell;

use crate::domain::EventId;
use crate::domain::diplomacy::DiplomaticEvent;
use crate::projections::Fact;
use crate::projections::engine::error::ProjectionError;
use crate::store::RecordedEvent;

/// Positions per cached block.
pub const BLOCK: u64 = 1024;

/// Blocks kept at most (about 32,000 positions).
const CAPACITY: usize = 32;

/// Positions of the tail kept at least (and at most twice as many).
const TAIL_KEPT: u64 = BLOCK;

/// Diplomatic events read from the log, and how far they take the reader.
pub struct Batch {
    pub facts: Vec<Arc<Fact>>,
    /// The position the read went up to at most (`until`, or the head if lower).
    pub bound: u64,
    /// Every event up to here is in `facts` or is not diplomatic.
    pub reached: u64,
    /// More may follow at once: as many events as asked for came back, or the read stopped
    /// at the end of its window (see `store::read::paging`) before the head.
    pub full: bool,
    /// The event just after `reached` could not be read: the batch stops before it, and the
    /// runner commits what came before, then fails (and retries) rather than skip it.
    pub unreadable: Option<ProjectionError>,
}

/// What a block holds at one position.
enum Entry {
    Fact(Arc<Fact>),
    /// A diplomatic event that does not parse (kept, so every reader stops at it).
    Unreadable {
        position: u64,
        reason: String,
    },
}

impl Entry {
    fn position(&self) -> u64 {
        match self {
            Entry::Fact(fact) => fact.position,
            Entry::Unreadable { position, .. } => *position,
        }
    }
}

/// The diplomatic events of positions `(index * BLOCK, (index + 1) * BLOCK]`, in order.
struct Block {
    entries: Vec<Entry>,
}

type Slot = Arc<OnceCell<Arc<Block>>>;

#[derive(Default)]
struct Slots {
    blocks: HashMap<u64, Slot>,
    /// Block indexes, least recently used first.
    order: VecDeque<u64>,
}

/// The diplomatic events of positions `(start, end]`, as far as a runner last read the tail.
#[derive(Default)]
struct Tail {
    start: u64,
    end: u64,
    /// In position order.
    facts: VecDeque<Arc<Fact>>,
}

impl Tail {
    /// Whether a read after `after` may start here (a tail never read holds nothing).
    fn holds(&self, after: u64) -> bool {
        self.start <= after && after <= self.end && self.end > 0
    }

    /// Up to `limit` facts after `after` (which it `holds`).
    fn after(&self, after: u64, limit: usize) -> Vec<Arc<Fact>> {
        let first = self.facts.partition_point(|fact| fact.position <= after);
        self.facts.range(first..).take(limit).cloned().collect()
    }

    /// Takes in a read that went on from `end` (or, if it does not hold `after`, starts over
    /// from `after`), keeping the last `TAIL_KEPT` or so positions.
    fn extend(&mut self, after: u64, read: &Batch) {
        if after != self.end {
            *self = Self {
                start: after,
                end: after,
                facts: VecDeque::new(),
            };
        }
        self.facts.extend(read.facts.iter().cloned());
        self.end = read.reached;
        if self.end - self.start > 2 * TAIL_KEPT {
            self.start = self.end - TAIL_KEPT;
            let start = self.start;
            while self
                .facts
                .front()
                .is_some_and(|fact| fact.position <= start)
            {
                self.facts.pop_front();
            }
        }
    }
}

/// Parsed diplomatic events shared by the runners of one server. Cheap to share (`Arc`).
#[derive(Default)]
pub struct FactCache {
    slots: Mutex<Slots>,
    /// A position the head is known to have reached: blocks ending at or before it are
    /// complete.
    known_head: AtomicU64,
    blocks_read: AtomicU64,
    /// Locked while a runner reads on from its end: one such read at a time.
    tail: tokio::sync::Mutex<Tail>,
    tail_reads: AtomicU64,
}

impl FactCache {
    /// Up to `limit` diplomatic events after `after`, up to `until` (or the head if lower), read
    /// on `connection` where the cache does not have them. The batch reaches the last one's
    /// position if it is full, else the bound it read to (so events of other kinds and quiet
    /// stretches still move the checkpoint), or stops before an unreadable event.
    pub async fn read(
        &self,
        connection: &mut PgConnection,
        after: u64,
        until: Option<u64>,
        limit: usize,
    ) -> Result<Batch, ProjectionError> {
        let mut facts: Vec<Arc<Fact>> = Vec::new();
        let mut at = after;
        loop {
            if facts.len() >= limit {
                let reached = facts.last().map_or(at, |fact| fact.position);
                let bound = self.bound(connection, until).await?;
                return Ok(Batch {
                    facts,
                    bound,
                    reached,
                    full: true,
                    unreadable: None,
                });
            }
            if let Some(until) = until
                && at >= until
            {
                let bound = self.bound(connection, Some(until)).await?;
                return Ok(Batch {
                    facts,
                    bound,
                    reached: at,
                    full: false,
                    unreadable: None,
                });
            }
            let index = at / BLOCK;
            let end = (index + 1) * BLOCK;
            let complete = self.known_head.load(Ordering::Relaxed) >= end;
            if !complete || until.is_some_and(|until| until < end) {
                let rest = match until {
                    None => self.read_tail(connection, at, limit - facts.len()).await?,
                    Some(_) => {
                        self.read_noting_head(connection, at, until, limit - facts.len())
                            .await?
                    }
                };
                facts.extend(rest.facts);
                return Ok(Batch { facts, ..rest });
            }
            let block = self.block(connection, index).await?;
            for entry in block.entries.iter().filter(|entry| entry.position() > at) {
                if facts.len() >= limit {
                    break;
                }
                match entry {
                    Entry::Fact(fact) => facts.push(fact.clone()),
                    Entry::Unreadable { position, reason } => {
                        let reached = position - 1;
                        return Ok(Batch {
                            bound: self.bound(connection, until).await?,
                            facts,
                            reached,
                            full: false,
                            unreadable: Some(ProjectionError::UnreadableEvent {
                                position: *position,
                                reason: reason.clone(),
                            }),
                        });
                    }
                }
            }
            if facts.len() < limit {
                at = end;
            }
        }
    }

    /// The bound of a batch that ends inside complete blocks: `until`, or the head if lower
    /// (as far as it is known to be: for a batch without `until`, as if the head had been read
    /// a little earlier).
    async fn bound(
        &self,
        connection: &mut PgConnection,
        until: Option<u64>,
    ) -> Result<u64, ProjectionError> {
        let known = self.known_head.load(Ordering::Relaxed);
        Ok(match until {
            Some(until) if until <= known => until,
            Some(until) => {
                let head = crate::store::head(connection).await?;
                self.known_head.fetch_max(head, Ordering::Relaxed);
                until.min(head)
            }
            None => known,
        })
    }

    /// A position the log's head has reached (committed), as a runner heard: a read of the
    /// tail that holds it needs no database.
    pub fn note_head(&self, head: u64) {
        self.known_head.fetch_max(head, Ordering::Relaxed);
    }

    /// Up to `limit` diplomatic events after `after`, up to the head: from the kept tail as
    /// far as it goes, then, unless the tail already reaches the head as far as it is known,
    /// read on from its end (by one runner at a time) and kept.
    async fn read_tail(
        &self,
        connection: &mut PgConnection,
        after: u64,
        limit: usize,
    ) -> Result<Batch, ProjectionError> {
        let mut tail = self.tail.lock().await;
        if after < tail.start {
            // Behind what is kept: read alone, keep nothing.
            drop(tail);
            return self.read_noting_head(connection, after, None, limit).await;
        }
        let held = tail.holds(after);
        let (mut facts, from) = if held {
            (tail.after(after, limit), tail.end)
        } else {
            (Vec::new(), after)
        };
        if facts.len() >= limit {
            let reached = facts.last().map_or(from, |fact| fact.position);
            return Ok(Batch {
                facts,
                bound: self.known_head.load(Ordering::Relaxed).max(from),
                reached,
                full: true,
                unreadable: None,
            });
        }
        if held && from >= self.known_head.load(Ordering::Relaxed) {
            return Ok(Batch {
                facts,
                bound: from,
                reached: from,
                full: false,
                unreadable: None,
            });
        }
        let rest = self
            .read_noting_head(connection, from, None, limit - facts.len())
            .await?;
        self.tail_reads.fetch_add(1, Ordering::Relaxed);
        if rest.unreadable.is_none() {
            tail.extend(from, &rest);
        }
        facts.extend(rest.facts);
        Ok(Batch { facts, ..rest })
    }

    /// `read_direct`, noting the head it saw.
    async fn read_noting_head(
        &self,
        connection: &mut PgConnection,
        after: u64,
        until: Option<u64>,
        limit: usize,
    ) -> Result<Batch, ProjectionError> {
        let rest = read_direct(connection, after, until, limit).await?;
        let head_at_least = match until {
            Some(until) if rest.bound >= until => until,
            _ => rest.bound,
        };
        self.known_head.fetch_max(head_at_least, Ordering::Relaxed);
        Ok(rest)
    }

    /// How many times a runner read on from the end of the kept tail.
    pub fn tail_reads(&self) -> u64 {
        self.tail_reads.load(Ordering::Relaxed)
    }

    /// How many blocks this cache has read from the database.
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read.load(Ordering::Relaxed)
    }

    /// Block `index`, from the cache or read on `connection` (once, whoever asks meanwhile).
    async fn block(
        &self,
        connection: &mut PgConnection,
        index: u64,
    ) -> Result<Arc<Block>, ProjectionError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.blocks.entry(index).or_default().clone();
            slots.order.retain(|&kept| kept != index);
            slots.order.push_back(index);
            while slots.order.len() > CAPACITY {
                if let Some(oldest) = slots.order.pop_front() {
                    slots.blocks.remove(&oldest);
                }
            }
            slot
        };
        let block = slot
            .get_or_try_init(|| async {
                self.blocks_read.fetch_add(1, Ordering::Relaxed);
                read_block(connection, index).await
            })
            .await?;
        Ok(block.clone())
    }
}

/// Reads and parses the diplomatic events of block `index`, which must be complete.
async fn read_block(
    connection: &mut PgConnection,
    index: u64,
) -> Result<Arc<Block>, ProjectionError> {
    let rows =
        crate::store::diplomatic_rows(connection, index * BLOCK, (index + 1) * BLOCK).await?;
    let entries = rows
        .into_iter()
        .map(|row| {
            let position = row.position as u64;
            match parse_fact(
                position,
                row.stream_id,
                row.event_id,
                row.recorded_at,
                &row.data_text,
            ) {
                Ok(fact) => Entry::Fact(Arc::new(fact)),
                Err(reason) => Entry::Unreadable { position, reason },
            }
        })
        .collect();
    Ok(Arc::new(Block { entries }))
}

/// Up to `limit` diplomatic events after `after`, up to `until` (or the head if lower), read
/// in one statement (so the head and the events agree) and not cached.
async fn read_direct(
    connection: &mut PgConnection,
    after: u64,
    until: Option<u64>,
    limit: usize,
) -> Result<Batch, ProjectionError> {
    let crate::store::DiplomaticPage {
        events,
        bound,
        windowed,
        cut,
    } = crate::store::diplomatic_events(connection, after, until, limit as i64, None).await?;
    // A page cut short by its bytes ends at its last event, as a full one does.
    let full = events.len() >= limit || cut;
    let mut reached = match events.last() {
        Some(last) if full => last.position as u64,
        _ => bound.max(after),
    };
    let mut facts = Vec::with_capacity(events.len());
    let mut unreadable = None;
    for event in events {
        let position = event.position as u64;
        match fact_from_event(event) {
            Ok(fact) => facts.push(Arc::new(fact)),
            Err(error) => {
                reached = position - 1;
                unreadable = Some(error);
                break;
            }
        }
    }
    Ok(Batch {
        facts,
        bound,
        reached,
        // A window that ended before the head leaves more to read at once, like a full page.
        full: (full || windowed) && unreadable.is_none(),
        unreadable,
    })
}

/// A stored diplomatic event as projections see it.
pub(in crate::projections) fn fact_from_event(
    event: RecordedEvent,
) -> Result<Fact, ProjectionError> {
    let position = event.position as u64;
    parse_fact(
        position,
        event.stream_id,
        event.event_id,
        event.recorded_at,
        &event.data_text,
    )
    .map_err(|reason| ProjectionError::UnreadableEvent { position, reason })
}

/// A diplomatic event from its stored parts; the reason it does not parse, if it does not.
pub(in crate::projections) fn parse_fact(
    position: u64,
    stream_id: String,
    event_id: uuid::Uuid,
    recorded_at: DateTime<Utc>,
    data_text: &str,
) -> Result<Fact, String> {
    let parsed = DiplomaticEvent::from_json_text(data_text).map_err(|(path, message)| {
        if path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        }
    })?;
    Ok(Fact {
        position,
        stream_id,
        event_id: EventId::from(event_id),
        recorded_at,
        event: parsed,
    })
}
