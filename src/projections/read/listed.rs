//! What each read model answers with, described once for the one generic list and get of
//! every layer (the queries here, the gRPC service, the CLI, the dashboard): the projection
//! its items come from, which stored rows are items, how a row becomes an item at the time
//! asked about, the statuses a list filters by, what "still open" means, and what names one.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::EventId;
use crate::domain::diplomacy::KindName;
use crate::domain::diplomacy::{ChannelStatus, CommitmentStatus, SummitStage};
use crate::projections::engine::rows::RowFilter;
use crate::projections::models::channels::rows::{CHANNEL_ROWS, channel_of};
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::channels::{self, Channels};
use crate::projections::models::commitments::{
    self, Commitment, CommitmentView, Commitments, commitment_of,
};
use crate::projections::models::common::Records;
use crate::projections::models::divergence::{self, Divergence, DivergenceView, occurrence_of};
use crate::projections::models::relations::rows::pair_of;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::relations::{Relations, pair_key};
use crate::projections::models::summits::{self, Summit, SummitView, Summits, summit_of};
use crate::projections::models::timeline::{Timeline, TimelineEntry, entry_of};
use crate::projections::read::request::ListFilter;
use crate::projections::{Model, Row};

/// Something with a key that is unique within its list (what a change feed diffs by).
pub trait Keyed {
    fn key(&self) -> String;
}

/// The time an answer is about, and what derived statuses depend on.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub reference: DateTime<Utc>,
    /// A channel nobody used for this long is dormant.
    pub dormant_after: Duration,
    /// Which records the answer counts: readouts, coded records or both (timeline and
    /// relations; the other lists are lifecycles and do not look at it).
    pub records: Records,
}

/// An item of a projection's lists.
pub trait Listed: Keyed + Serialize + Clone + PartialEq + Send + Sync + 'static {
    /// The read model whose rows the items are made from.
    type Model: Model;
    /// One item, as messages name it ("channel").
    const WHAT: &'static str;
    /// The statuses a list may ask for; empty: the list has no status filter (a status given
    /// is not looked at).
    const STATUSES: &'static [&'static str] = &[];
    /// The stored rows that are items, by their `status` column; empty: every row but the
    /// actor registry's.
    const ROWS: &'static [&'static str] = &[];

    /// The item a stored row shows at `reading` (none: the row shows nothing then).
    fn from_row(row: &Row, reading: &Reading) -> Result<Option<Self>, String>;

    /// Narrows `rows`, the row filter of a list under `filter`, by what the rows' columns can
    /// tell of `filter` beyond the actor and the states.
    fn narrow(_filter: &ListFilter, _rows: &mut RowFilter) {}

    /// Whether every stored row passing the list's row filter (`narrow` included) is an item
    /// (`from_row` never declines one): then a live list is counted and paged in SQL. A status
    /// filter or a pending-only list is never that (the queries check it).
    const EVERY_ROW_AN_ITEM: bool = false;

    /// The key of the stored row whose item a get by `key` answers with, when a key names one
    /// row. A get that finds nothing under it looks for the key as a stream (`STREAM_AT`), and
    /// with neither looks through every item.
    fn row_key(_key: &str) -> Option<String> {
        None
    }

    /// Where a row's data holds the stream a get may name an item by (none: no item is named
    /// by a stream).
    const STREAM_AT: Option<&'static [&'static str]> = None;

    /// What a status filter compares (none: nothing passes a status filter).
    fn status(&self) -> Option<&str> {
        None
    }

    /// Whether a pending-only list keeps it.
    fn pending(&self) -> bool {
        true
    }

    /// The list of the items still open (what the dashboard shows and the relations list).
    fn open() -> ListFilter {
        ListFilter::default()
    }

    /// Whether a get by `key` answers with it.
    fn named_by(&self, key: &str) -> bool {
        self.key() == key
    }

    /// Of the items a key names (in list order), those a get answers with.
    fn chosen(named: Vec<Self>) -> Vec<Self> {
        named
    }

    /// What a get answers when the key names nothing.
    fn not_found(key: &str) -> String {
        format!("no {} {key:?}", Self::WHAT)
    }
}

fn names(statuses: &[impl std::fmt::Display]) -> Vec<String> {
    statuses.iter().map(ToString::to_string).collect()
}

impl Keyed for ChannelView {
    fn key(&self) -> String {
        self.key.clone()
    }
}

impl Listed for ChannelView {
    type Model = Channels;
    const WHAT: &'static str = "channel";
    const STATUSES: &'static [&'static str] = ChannelStatus::NAMES;
    // Channel rows only (not their contacts' rows).
    const ROWS: &'static [&'static str] = CHANNEL_ROWS;
    const STREAM_AT: Option<&'static [&'static str]> = Some(&["stream_id"]);

    fn from_row(row: &Row, reading: &Reading) -> Result<Option<Self>, String> {
        Ok(Some(
            channel_of(row)?.view(reading.reference, reading.dormant_after),
        ))
    }

    const EVERY_ROW_AN_ITEM: bool = true;

    fn status(&self) -> Option<&str> {
        Some(&self.status)
    }

    /// Neither closed.
    fn open() -> ListFilter {
        let open: Vec<ChannelStatus> = ChannelStatus::ALL
            .iter()
            .copied()
            .filter(|s| s.is_open())
            .collect();
        ListFilter {
            status: names(&open),
            ..ListFilter::default()
        }
    }

    /// By its key or by the stream of its own events.
    fn named_by(&self, key: &str) -> bool {
        self.key == key || self.stream_id.as_deref() == Some(key)
    }

    fn row_key(key: &str) -> Option<String> {
        Some(format!("{}{key}", channels::PREFIX))
    }
}

impl Keyed for SummitView {
    fn key(&self) -> String {
        self.key.clone()
    }
}

impl Listed for SummitView {
    type Model = Summits;
    const WHAT: &'static str = "summit";
    const STATUSES: &'static [&'static str] = SummitStage::NAMES;

    fn from_row(row: &Row, _: &Reading) -> Result<Option<Self>, String> {
        Ok(summit_of(row)?.view())
    }

    fn status(&self) -> Option<&str> {
        Some(&self.stage)
    }

    fn pending(&self) -> bool {
        self.pending
    }

    fn row_key(key: &str) -> Option<String> {
        Some(format!("{}{key}", summits::PREFIX))
    }

    /// Neither held nor cancelled.
    fn open() -> ListFilter {
        ListFilter {
            pending_only: true,
            ..ListFilter::default()
        }
    }
}

impl Keyed for Summit {
    fn key(&self) -> String {
        self.key.clone()
    }
}

/// A summit with all its steps (what the dashboard's lifecycle and timeline charts draw).
impl Listed for Summit {
    type Model = Summits;
    const WHAT: &'static str = "summit";

    fn from_row(row: &Row, _: &Reading) -> Result<Option<Self>, String> {
        Ok(Some(summit_of(row)?))
    }

    const EVERY_ROW_AN_ITEM: bool = true;
}

impl Keyed for CommitmentView {
    fn key(&self) -> String {
        self.key.clone()
    }
}

impl Listed for CommitmentView {
    type Model = Commitments;
    const WHAT: &'static str = "commitment";
    const STATUSES: &'static [&'static str] = CommitmentStatus::NAMES;

    fn from_row(row: &Row, reading: &Reading) -> Result<Option<Self>, String> {
        Ok(commitment_of(row)?.view(reading.reference))
    }

    fn row_key(key: &str) -> Option<String> {
        Some(format!("{}{key}", commitments::PREFIX))
    }

    fn status(&self) -> Option<&str> {
        Some(&self.status)
    }

    /// Still owed: neither fulfilled nor withdrawn (lapsed ones included).
    fn open() -> ListFilter {
        ListFilter {
            status: names(&CommitmentStatus::OPEN),
            ..ListFilter::default()
        }
    }
}

impl Keyed for Commitment {
    fn key(&self) -> String {
        self.key.clone()
    }
}

/// A commitment with all its steps (what the dashboard's charts draw).
impl Listed for Commitment {
    type Model = Commitments;
    const WHAT: &'static str = "commitment";

    fn from_row(row: &Row, _: &Reading) -> Result<Option<Self>, String> {
        Ok(Some(commitment_of(row)?))
    }

    const EVERY_ROW_AN_ITEM: bool = true;
}

impl Keyed for DivergenceView {
    /// The occurrence's event id.
    fn key(&self) -> String {
        self.occurrence.to_string()
    }
}

impl Listed for DivergenceView {
    type Model = Divergence;
    const WHAT: &'static str = "occurrence";
    const ROWS: &'static [&'static str] = &["occurrence"];
    const STREAM_AT: Option<&'static [&'static str]> = Some(&["origin", "stream_id"]);

    fn from_row(row: &Row, _: &Reading) -> Result<Option<Self>, String> {
        Ok(Some(occurrence_of(row)?.view()))
    }

    const EVERY_ROW_AN_ITEM: bool = true;

    /// By its event id or by its stream.
    fn named_by(&self, key: &str) -> bool {
        EventId::parse(key).is_ok_and(|id| id == self.occurrence)
            || self.stream_id.as_deref() == Some(key)
    }

    /// By stream: the occurrence that opened it (the earliest position).
    fn chosen(mut named: Vec<Self>) -> Vec<Self> {
        named.truncate(1);
        named
    }

    fn not_found(key: &str) -> String {
        format!("no occurrence {key:?} with sources")
    }

    fn row_key(key: &str) -> Option<String> {
        let id = EventId::parse(key).ok()?;
        Some(format!("{}{id}", divergence::PREFIX))
    }
}

impl Keyed for TimelineEntry {
    /// The interaction's event id.
    fn key(&self) -> String {
        self.origin.event_id.to_string()
    }
}

impl Listed for TimelineEntry {
    type Model = Timeline;
    const WHAT: &'static str = "interaction";

    /// A readout's interaction or a coded record, as the reading asks.
    fn from_row(row: &Row, reading: &Reading) -> Result<Option<Self>, String> {
        let entry = entry_of(row)?;
        Ok(reading.records.keeps(entry.is_coded()).then_some(entry))
    }

    /// A coded record's row is the one of kind `CodedEventReported` (its status).
    fn narrow(filter: &ListFilter, rows: &mut RowFilter) {
        let coded = KindName::CodedEventReported.to_string();
        match filter.records {
            Records::Both => {}
            Records::Readouts => rows.without_status.push(coded),
            Records::Coded => rows.status = vec![coded],
        }
    }

    const EVERY_ROW_AN_ITEM: bool = true;
}

impl Keyed for RelationView {
    /// The pair's key (`RUS+USA`).
    fn key(&self) -> String {
        match self.states.as_slice() {
            [a, b] => pair_key(a, b),
            states => states.join("+"),
        }
    }
}

impl Listed for RelationView {
    type Model = Relations;
    const WHAT: &'static str = "relations";
    const ROWS: &'static [&'static str] = &["pair"];

    fn from_row(row: &Row, reading: &Reading) -> Result<Option<Self>, String> {
        Ok(pair_of(row)?.view(reading.reference, reading.dormant_after, reading.records))
    }

    fn not_found(key: &str) -> String {
        match key.split_once('+') {
            Some((a, b)) => format!("no relations recorded between {a} and {b}"),
            None => format!("no relations {key:?}"),
        }
    }
}
