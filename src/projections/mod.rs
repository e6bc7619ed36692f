//! Projections: read models derived from the log. Each model is a pure, in-memory state
//! machine (`Model`) that applies diplomatic events one at a time in position order and
//! exposes its state as rows. The same model serves three purposes, so they cannot disagree:
//! - the runner (`runner.rs`) keeps it current from a checkpoint and writes the rows it changed
//!   to PostgreSQL in the same transaction as the checkpoint;
//! - `as of` queries replay the log into a fresh model up to a position;
//! - a rebuild replays everything into a fresh model and swaps its rows in.
//!
//! Corrections and retractions are honoured by every model: each model remembers which of
//! its rows every event contributed to, so a retraction removes the event's contributions and
//! a correction replaces them with the replacement's, under the original id and position.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::DiplomaticEvent;

/// A diplomatic event as projections see it: the event and where the log put it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub position: u64,
    pub stream_id: String,
    pub event_id: EventId,
    pub recorded_at: DateTime<Utc>,
    pub event: DiplomaticEvent,
}

/// One row of a projection's read model: the entity's state as JSON, and the columns queries
/// filter and sort by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Unique within the projection.
    pub key: String,
    pub data: serde_json::Value,
    /// Actor ids the row concerns (persons, offices, organisations, states).
    pub actors: Vec<String>,
    /// Alpha-3 codes of the states the row concerns.
    pub states: Vec<String>,
    /// A status that does not depend on the time of the query (time-dependent statuses such as
    /// `dormant` or `lapsed` are derived when answering).
    pub status: String,
    /// Rows are listed in this order.
    pub sort_key: String,
}

/// A projection's in-memory state machine.
pub trait Model: Default + Send + Sync + 'static {
    /// The projection's name (its checkpoint key, and what `diplog projections rebuild` takes).
    const NAME: &'static str;
    /// Bumped whenever `apply` or the row format changes: a stored projection of another
    /// version is rebuilt at start-up.
    const VERSION: i32;

    /// Applies one event; returns the keys of the rows it changed (created, updated or
    /// removed).
    fn apply(&mut self, fact: &Fact) -> Vec<String>;

    /// The row under `key`, or `None` if there is none (any more).
    fn row(&self, key: &str) -> Option<Row>;

    /// Every row.
    fn rows(&self) -> Vec<Row>;

    /// The state again from its rows (as `rows` gave them).
    fn from_rows(rows: Vec<Row>) -> Result<Self, String>;
}

pub mod channels;
pub mod commitments;
pub mod divergence;
pub mod relations;
pub mod summits;
pub mod timeline;
