//! `/events`: the diplomatic events of the log, newest first, paged by position (`before`
//! older, `after` newer), narrowed by the filters of its form: `kind`, `actor` (events naming
//! it), `from`/`to` (days the event may have occurred in), `source` (a source's actor id or
//! name among the event's reports) and `q` (words in its texts, as `/search` finds them).
//! The log does the filtering (`EventStore::diplomatic_page`), the search projection the
//! words (`Queries::matching`); this checks the parameters, each bad one a 400 naming it.
//! As of a past state the events are those up to its bound; `on` a day, those that may have
//! occurred by its end.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

use super::frame::Frame;
use super::request::{Ask, Params};
use super::search::bad_parameter;
use super::streams::{number, page_key, sides, with_params};
use super::views::{EventCard, Names, event_card, typed};
use super::{log_bound, render};
use crate::domain::diplomacy::{ActorId, EventKind};
use crate::http::{Dashboard, HttpError};
use crate::projections::read::request::{day_bound, parse_day};
use crate::projections::read::search::{MatchRequest, SearchRequest};
use crate::recorder::metadata_time;
use crate::store::{DiplomaticFilter, PageKey};

/// Events on a page.
const EVENTS_PER_PAGE: usize = 50;

/// The events page's own query parameters (`Params` has the ones every page takes).
#[derive(Debug, Default, Deserialize)]
pub(in crate::http) struct EventsParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    actor: String,
    /// Days, `YYYY-MM-DD`: the event may have occurred from the start of `from` to the end
    /// of `to`, UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    q: String,
    /// Positions: the page of events older than `before`, or newer than `after`.
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "events.html", config = "src/http/askama.toml")]
struct EventsPage {
    frame: Frame,
    events: Vec<EventCard>,
    limit: usize,
    kinds: &'static [&'static str],
    kind: String,
    actor: String,
    from: String,
    to: String,
    source: String,
    q: String,
    filtered: bool,
    newer_href: Option<String>,
    older_href: Option<String>,
}

fn day(parameter: &'static str, raw: &str) -> Result<Option<chrono::NaiveDate>, HttpError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    parse_day(raw)
        .map(Some)
        .map_err(|message| HttpError::BadRequest { parameter, message })
}

/// A source by its actor id, or by the name the log registered for it.
fn source_id(names: &Names, raw: &str) -> Result<Option<String>, HttpError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if names.0.contains_key(raw) {
        return Ok(Some(raw.to_owned()));
    }
    let lower = raw.to_lowercase();
    if let Some(actor) = names.0.values().find(|a| a.name.to_lowercase() == lower) {
        return Ok(Some(actor.id.clone()));
    }
    ActorId::parse(raw)
        .map(|id| Some(id.to_string()))
        .map_err(|_| HttpError::BadRequest {
            parameter: "source",
            message: format!("{raw:?} is neither a source's actor id nor a registered name"),
        })
}

pub(in crate::http) async fn events(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
    Query(asked): Query<EventsParams>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let kind = asked.kind.trim().to_owned();
    if !kind.is_empty() && !EventKind::NAMES.contains(&kind.as_str()) {
        return Err(HttpError::BadRequest {
            parameter: "kind",
            message: format!(
                "{kind:?} is not an event kind ({})",
                EventKind::NAMES.join(", ")
            ),
        });
    }
    let actor = match asked.actor.trim() {
        "" => None,
        raw => Some(
            ActorId::parse(raw)
                .map_err(|error| HttpError::BadRequest {
                    parameter: "actor",
                    message: error.to_string(),
                })?
                .to_string(),
        ),
    };
    let (from, to) = (day("from", &asked.from)?, day("to", &asked.to)?);
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(HttpError::BadRequest {
            parameter: "to",
            message: format!("{to} is before from {from}"),
        });
    }
    let key = page_key(
        number("before", &asked.before)?,
        number("after", &asked.after)?,
    )?;
    let q = asked.q.trim().to_owned();
    let filtered = !(kind.is_empty()
        && actor.is_none()
        && from.is_none()
        && to.is_none()
        && asked.source.trim().is_empty()
        && q.is_empty());
    let title = if filtered { "Events" } else { "Recent events" };
    let mut frame = Frame::new(&ask, title, "events", &uri);
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let names = Names::load(&dashboard, ask.source(&dashboard)).await?;
    let source = source_id(&names, &asked.source)?;
    let from_time = from.map(|d| day_bound(d, false));
    // On a day: what may have occurred by its end, within `to`.
    let to_time = match (to, ask.on.as_ref()) {
        (Some(to), Some((_, on))) => Some(day_bound(to.min(*on), true)),
        (Some(to), None) => Some(day_bound(to, true)),
        (None, Some((_, on))) => Some(day_bound(*on, true)),
        (None, None) => None,
    };
    let mut filter = DiplomaticFilter {
        kind: (!kind.is_empty()).then(|| kind.clone()),
        actor,
        occurred_from: from_time.map(metadata_time),
        occurred_until: to_time.map(metadata_time),
        source,
        positions: None,
    };
    // With words: the page is of the positions the search finds, and pages on from them.
    let mut matched: Option<Vec<u64>> = None;
    if !q.is_empty() && bound > 0 {
        let (before, after) = match key {
            PageKey::First => (None, None),
            PageKey::Following(p) => (Some(p), None),
            PageKey::Preceding(p) => (None, Some(p)),
        };
        let request = MatchRequest {
            request: SearchRequest {
                query: q.clone(),
                kinds: filter.kind.iter().cloned().collect(),
                from: from_time,
                to: to_time,
                ..SearchRequest::default()
            },
            until: bound,
            before,
            after,
            limit: EVENTS_PER_PAGE,
        };
        let positions = dashboard
            .queries
            .matching(
                bound.max(ask.min_position),
                tokio::time::Instant::now() + dashboard.max_wait,
                &request,
            )
            .await
            .map_err(bad_parameter)?;
        filter.positions = Some(positions.iter().map(|p| *p as i64).collect());
        matched = Some(positions);
    }
    let (recorded, more) = if bound == 0 || matched.as_ref().is_some_and(Vec::is_empty) {
        (Vec::new(), false)
    } else {
        let store_key = if matched.is_some() {
            PageKey::First
        } else {
            key
        };
        let slice = dashboard
            .store
            .diplomatic_page(&filter, store_key, bound, EVENTS_PER_PAGE as i64)
            .await?;
        (slice.events, slice.ends_at_last_row)
    };
    frame.answered(bound, reference, &dashboard).await?;
    // The page's ends: of the positions searched, else of the events shown.
    let ends: Vec<u64> = match &matched {
        Some(positions) => positions.clone(),
        None => recorded.iter().map(|r| r.position.max(0) as u64).collect(),
    };
    // A page cut short by its bytes has more beyond it, as a full one may.
    let shown = if matched.is_none() && more {
        EVENTS_PER_PAGE
    } else {
        ends.len()
    };
    let (newer, older) = sides(&key, shown, EVENTS_PER_PAGE);
    let link = |name: &str, position: u64| {
        with_params(
            &frame,
            "/events",
            &[
                ("kind", kind.clone()),
                ("actor", asked.actor.trim().to_owned()),
                ("from", asked.from.trim().to_owned()),
                ("to", asked.to.trim().to_owned()),
                ("source", asked.source.trim().to_owned()),
                ("q", q.clone()),
                (name, position.to_string()),
            ],
        )
    };
    let newer_href = newer
        .then(|| ends.first().map(|p| link("after", *p)))
        .flatten();
    let older_href = older
        .then(|| ends.last().filter(|p| **p > 1).map(|p| link("before", *p)))
        .flatten();
    let events = recorded
        .iter()
        .filter_map(|r| typed(r).map(|event| event_card(&names, &frame, r, &event)))
        .collect();
    render(&EventsPage {
        frame,
        events,
        limit: EVENTS_PER_PAGE,
        kinds: EventKind::NAMES,
        kind,
        actor: asked.actor,
        from: asked.from,
        to: asked.to,
        source: asked.source,
        q,
        filtered,
        newer_href,
        older_href,
    })
}
