//! What a reader asks the projections and what it gets back, whatever the projection: the
//! state of the log to answer from (live, or as of a position or time), the filter of a list,
//! a page, the answer, and what can go wrong.

use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;

use crate::domain::diplomacy::{ActorId, CountryCode};
use crate::projections::engine::rows::{ProjectionError, RowFilter};
pub use crate::projections::models::common::Records;

/// Answers per page at most, and by default.
pub const MAX_PAGE_SIZE: usize = 1000;
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// A past state of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// Everything up to and including this position.
    Position(u64),
    /// Everything the log had recorded at this time.
    Time(DateTime<Utc>),
}

impl AsOf {
    /// What `parse` accepts, for error messages.
    pub const ACCEPTS: &'static str =
        "a log position (digits), an RFC 3339 time (2025-02-15T12:00:00Z) or a day (2025-02-15)";

    /// Parses an "as of" given as text (the CLI's `--as-of`, the dashboard's `?as_of=`):
    /// digits are a position; else an RFC 3339 time, or a day `YYYY-MM-DD` meaning the end of
    /// that day, UTC.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()) {
            return raw
                .parse()
                .map(AsOf::Position)
                .map_err(|e| format!("{raw:?} is not a log position: {e}"));
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
            return Ok(AsOf::Time(time.with_timezone(&Utc)));
        }
        if let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            let end = day
                .and_hms_nano_opt(23, 59, 59, 999_999_999)
                .expect("the last instant of a day exists");
            return Ok(AsOf::Time(end.and_utc()));
        }
        Err(format!(
            "{raw:?} is neither a log position (digits), an RFC 3339 time \
             (2025-02-15T12:00:00Z) nor a day (2025-02-15)"
        ))
    }
}

/// Where an answer comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The live read model, once it reflects `min_position` (0: at once), waiting at most
    /// until `deadline`.
    Live {
        min_position: u64,
        deadline: Instant,
    },
    /// What the log had recorded by a position or time.
    AsOf(AsOf),
    /// The state of affairs on a date: what had happened by the end of that day, as the log
    /// knows it now or knew it `as_of` (see `on_date`).
    On {
        date: NaiveDate,
        as_of: Option<AsOf>,
    },
}

impl Source {
    /// On a date when `on` is given; else as of a past state when `as_of` is; else live,
    /// waiting at most `wait` for `min_position`. An answer from the past or on a date is
    /// replayed from the log, which holds every acknowledged event, so there is nothing to
    /// wait for then and `min_position` is moot.
    pub fn of(
        as_of: Option<AsOf>,
        on: Option<NaiveDate>,
        min_position: u64,
        wait: std::time::Duration,
    ) -> Self {
        match (on, as_of) {
            (Some(date), as_of) => Source::On { date, as_of },
            (None, Some(as_of)) => Source::AsOf(as_of),
            (None, None) => Source::Live {
                min_position,
                deadline: Instant::now() + wait,
            },
        }
    }
}

/// The start of `day` in UTC, or (`end`) the start of the next day: a date range's bound.
pub fn day_bound(day: NaiveDate, end: bool) -> DateTime<Utc> {
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// What `parse_day` accepts, for error messages.
pub const DAY_ACCEPTS: &str = "a day, YYYY-MM-DD (2025-03-01)";

/// Parses the day of an "on" (the CLI's `--on`, the dashboard's `?on=`, `ReadOptions.on_day`).
pub fn parse_day(raw: &str) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| format!("{raw:?} is not {DAY_ACCEPTS}"))
}

/// A page: how many items, and the token of the previous answer's next page (empty: first).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub size: usize,
    pub token: String,
}

/// An answer: the items of one page, the log position it reflects and the time it is about.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub items: Vec<T>,
    pub position: u64,
    pub reference: DateTime<Utc>,
    /// Empty on the last page.
    pub next_page_token: String,
    /// Items on all pages.
    pub total: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("projection {projection} has reached position {position}, not yet {wanted}")]
    NotYet {
        projection: &'static str,
        position: u64,
        wanted: u64,
    },
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("a stored row does not decode: {0}")]
    BadRow(String),
    /// More items than one change feed may hold.
    #[error(
        "more than {limit} {what} rows pass the filter, the most one watch may hold \
         (--max-watch-rows); narrow it (actor, state_pair, status) or list them in pages"
    )]
    TooMany { what: &'static str, limit: usize },
}

/// The filter for "rows concerning this actor": a state's rows by their states, any other
/// actor's by their actors.
pub fn actor_filter(actor: &str) -> Result<RowFilter, QueryError> {
    let id = ActorId::parse(actor).map_err(|error| QueryError::Invalid {
        field: "actor",
        message: error.to_string(),
    })?;
    Ok(match id.as_country() {
        Some(state) => RowFilter {
            states: vec![state.to_string()],
            ..RowFilter::default()
        },
        None => RowFilter {
            actor: Some(id.to_string()),
            ..RowFilter::default()
        },
    })
}

pub(super) fn state_code(field: &'static str, raw: &str) -> Result<String, QueryError> {
    CountryCode::parse(raw)
        .map(|c| c.to_string())
        .map_err(|error| QueryError::Invalid {
            field,
            message: error.to_string(),
        })
}

/// Checks a status filter against the statuses a projection answers with (none: a list
/// without statuses, which does not look at the filter).
pub(super) fn statuses(
    field: &'static str,
    given: &[String],
    allowed: &[&str],
) -> Result<Vec<String>, QueryError> {
    if allowed.is_empty() {
        return Ok(Vec::new());
    }
    given
        .iter()
        .map(|status| {
            let upper = status.to_ascii_uppercase();
            if allowed.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(QueryError::Invalid {
                    field,
                    message: format!("{status:?} is not one of {}", allowed.join(", ")),
                })
            }
        })
        .collect()
}

/// Filters for the lists.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Rows concerning this actor (a state: through its offices and people too).
    pub actor: Option<String>,
    /// Rows concerning both of these states.
    pub state_pair: Option<(String, String)>,
    /// Derived statuses (channels, commitments) or stages (summits); empty: all.
    pub status: Vec<String>,
    /// Summits: only those neither held nor cancelled.
    pub pending_only: bool,
    /// Timeline and relations: readouts' interactions, coded records or both (the default).
    pub records: Records,
}

impl ListFilter {
    pub(super) fn rows(&self) -> Result<RowFilter, QueryError> {
        let mut filter = match &self.actor {
            Some(actor) => actor_filter(actor)?,
            None => RowFilter::default(),
        };
        if let Some((a, b)) = &self.state_pair {
            filter.states.push(state_code("state_pair", a)?);
            filter.states.push(state_code("state_pair", b)?);
        }
        Ok(filter)
    }
}
