//! The arguments of the projection commands (lists, get, status, rebuild, watch, search).

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};

use super::client_args::ClientArgs;

/// `--as-of`: a log position or a time (the projections' own type).
pub use crate::projections::read::request::AsOf;
use crate::projections::read::request::{day_bound, parse_day};

/// When a projection answer is about, and how it is printed.
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Answer from the log as it was: a position (digits), an RFC 3339 time, or a day
    /// (`YYYY-MM-DD`: the end of that day, UTC).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,
    /// The state of affairs on a day (`YYYY-MM-DD`): what had happened by its end, as the log
    /// knows it now (or knew it --as-of).
    #[arg(long, value_name = "DAY", value_parser = parse_day)]
    pub on: Option<NaiveDate>,
    /// Wait until the answer reflects at least this log position (read your writes); moot,
    /// and not sent, with --as-of or --on.
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// Print the whole answer as proto3 JSON (one document) instead of a table (the same as
    /// `--format json`).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// How to print the answer: `text` (aligned tables), `json` (proto3 JSON, one document) or
    /// `csv` (a header row, then a row per item, every page: for spreadsheets; the list
    /// commands only: channels, summits, commitments, timeline).
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Csv,
}

impl QueryArgs {
    /// The format asked for, by `--format` or `--json`.
    pub fn output(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format
        }
    }
}

/// Parses `--as-of`: digits are a position; else an RFC 3339 time, or a day `YYYY-MM-DD`
/// meaning the end of that day, UTC (see [`AsOf::parse`], which the dashboard shares).
pub fn parse_as_of(raw: &str) -> Result<AsOf, String> {
    AsOf::parse(raw)
}

/// Filters shared by the lists.
#[derive(Args, Debug, Clone)]
pub struct ListFilterArgs {
    /// Only what concerns this actor (a state: through its offices and people too).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only what concerns both states of a pair, e.g. `RUS,USA`.
    #[arg(long, value_name = "A,B")]
    pub states: Option<String>,
    /// Only these statuses (stages, for summits); repeatable.
    #[arg(long)]
    pub status: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ChannelsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SummitsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Also summits held or cancelled.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CommitmentsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Also commitments fulfilled or withdrawn.
    #[arg(long)]
    pub all: bool,
}

/// `--records`: which records a timeline or relations answer counts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecordsArg {
    /// Readouts' interactions and coded records.
    #[default]
    Both,
    /// Only readouts' interactions (typed calls, meetings, visits, rounds).
    Readouts,
    /// Only coded records (PLOVER and other event data).
    Coded,
}

impl RecordsArg {
    /// As `ListRequest.records` spells it.
    pub fn wire(self) -> i32 {
        use crate::proto::Records;
        match self {
            RecordsArg::Both => Records::Both,
            RecordsArg::Readouts => Records::Readouts,
            RecordsArg::Coded => Records::Coded,
        }
        .into()
    }
}

#[derive(Args, Debug, Clone)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The actor: a person, an office, an organisation or a state (e.g. `sergey-lavrov`).
    pub actor: String,
    /// Readouts' interactions, coded records (PLOVER, …) or both.
    #[arg(long, value_enum, default_value_t = RecordsArg::Both)]
    pub records: RecordsArg,
}

#[derive(Args, Debug, Clone)]
pub struct RelationsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Count readouts' interactions, coded records (PLOVER, …) or both.
    #[arg(long, value_enum, default_value_t = RecordsArg::Both)]
    pub records: RecordsArg,
    /// One state (alpha-3, e.g. `RUS`).
    pub a: String,
    /// The other state.
    pub b: String,
}

#[derive(Args, Debug, Clone)]
pub struct DivergenceArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The occurrence: its event id or its stream (`occurrence-…`).
    pub occurrence: String,
}

#[derive(Args, Debug, Clone)]
pub struct ProjectionsArgs {
    #[command(subcommand)]
    pub command: ProjectionsCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ProjectionsCommand {
    /// Every projection's position, the head, the lag, and any rebuild in progress.
    Status(ProjectionsStatusArgs),
    /// Rebuild a projection into fresh rows while the current ones keep answering.
    Rebuild(RebuildArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ProjectionsStatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the answer as proto3 JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The projection (see `diplog projections status`).
    pub name: String,
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The projection: channels, summits, commitments or divergences.
    pub projection: String,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Summits: only those neither held nor cancelled.
    #[arg(long)]
    pub pending_only: bool,
    /// Start once the projection reflects at least this log position (read your writes).
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// After this many seconds without a change the server sends a heartbeat (0: its default,
    /// 30); heartbeats are printed with --json only.
    #[arg(long, default_value_t = 0)]
    pub heartbeat_secs: u32,
    /// Print each message as one line of proto3 JSON (a `ProjectionChange`), heartbeats too.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The words to look for (PostgreSQL web search syntax: all words must occur; "a phrase";
    /// `or`; `-word` to leave out, after `--`).
    #[arg(required = true, num_args = 1..)]
    pub words: Vec<String>,
    /// Only texts of events of this kind (e.g. `CommitmentStated`); repeatable.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only what concerns this actor (a state: through its offices and people too).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events that may have occurred at or after this RFC 3339 time or day (its start,
    /// UTC).
    #[arg(long, value_parser = parse_from)]
    pub from: Option<DateTime<Utc>>,
    /// Only events that may have occurred before this RFC 3339 time, or up to the end of this
    /// day (UTC).
    #[arg(long, value_parser = parse_to)]
    pub to: Option<DateTime<Utc>>,
    /// Wait until the answer reflects at least this log position (read your writes).
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// Texts of readouts, of coded records (PLOVER, …) or both.
    #[arg(long, value_enum, default_value_t = RecordsArg::Both)]
    pub records: RecordsArg,
    /// At most this many hits, best first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print the answer as proto3 JSON (one `SearchResults`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// An RFC 3339 time, or a day `YYYY-MM-DD`: its start (`end`: false) or the start of the
/// next day (`end`: true), UTC.
pub fn parse_bound(raw: &str, end: bool) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc));
    }
    let day = parse_day(raw).map_err(|_| {
        format!("{raw:?} is neither an RFC 3339 time (2025-02-15T12:00:00Z) nor a day (2025-02-15)")
    })?;
    Ok(day_bound(day, end))
}

fn parse_from(raw: &str) -> Result<DateTime<Utc>, String> {
    parse_bound(raw, false)
}

fn parse_to(raw: &str) -> Result<DateTime<Utc>, String> {
    parse_bound(raw, true)
}
