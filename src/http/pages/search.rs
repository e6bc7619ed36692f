//! `/search?q=…`: full-text search over the texts of diplomatic events, with kind, actor and
//! date filters as query parameters. Each hit links to its occurrence; its matched words are
//! `<mark>`ed from the ranges the search answers with, never from the text, which askama
//! escapes like everything else. Live only: an `as_of` or an `on` is a 400 naming it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::frame::{Frame, Stamp, stamp};
use super::render;
use super::request::{Ask, Params};
use crate::domain::diplomacy::EventKind;
use crate::http::readable::encode;
use crate::http::{Dashboard, HttpError};
use crate::projections::read::request::{Page, QueryError, Source, day_bound, parse_day};
use crate::projections::read::search::{Hit, SearchRequest};

/// Hits per page.
const HITS_PER_PAGE: usize = 50;

/// The search's own query parameters (`Params` has the ones every page takes).
#[derive(Debug, Default, Deserialize)]
pub(in crate::http) struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    actor: String,
    /// Days, `YYYY-MM-DD`: from the start of `from` to the end of `to`, UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The page token of the previous page.
    #[serde(default)]
    page: String,
}

/// A piece of a hit's text: a matched word or what lies between.
pub(super) struct Piece {
    pub(super) text: String,
    pub(super) marked: bool,
}

pub(super) struct HitRow {
    pub(super) href: String,
    pub(super) kind: String,
    pub(super) occurred: Option<Stamp>,
    pub(super) field: String,
    pub(super) config: String,
    pub(super) lang: Option<String>,
    pub(super) pieces: Vec<Piece>,
}

#[derive(Template)]
#[template(path = "search.html", config = "src/http/askama.toml")]
struct SearchPage {
    frame: Frame,
    q: String,
    kind: String,
    actor: String,
    from: String,
    to: String,
    kinds: &'static [&'static str],
    /// Readouts, coded records or both (`both`, `readouts`, `coded`).
    records: &'static str,
    hits: Vec<HitRow>,
    total: usize,
    next_href: Option<String>,
}

/// A day parameter: its start, or (`end`) the start of the next day, UTC.
fn day(parameter: &'static str, raw: &str, end: bool) -> Result<Option<DateTime<Utc>>, HttpError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let day = parse_day(raw).map_err(|_| HttpError::BadRequest {
        parameter,
        message: format!("{raw:?} is not a day (2025-02-15)"),
    })?;
    Ok(Some(day_bound(day, end)))
}

/// What the search finds wrong, named by the page's own parameter.
pub(super) fn bad_parameter(error: QueryError) -> HttpError {
    match error {
        QueryError::Invalid { field, message } => HttpError::BadRequest {
            parameter: match field {
                "query" => "q",
                "kinds" => "kind",
                "occurred_from" => "from",
                "occurred_to" => "to",
                "page_token" => "page",
                other => other,
            },
            message,
        },
        other => other.into(),
    }
}

fn hit_row(frame: &Frame, hit: &Hit) -> HitRow {
    HitRow {
        href: frame.event(hit.occurrence_id),
        kind: hit.kind.clone(),
        occurred: stamp(hit.occurred.as_ref()),
        field: hit.field.clone(),
        config: hit.config.clone(),
        lang: hit.language.clone(),
        pieces: hit
            .pieces()
            .into_iter()
            .map(|(text, marked)| Piece { text, marked })
            .collect(),
    }
}

pub(in crate::http) async fn search(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
    Query(search): Query<SearchParams>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    if ask.as_of.is_some() {
        return Err(HttpError::BadRequest {
            parameter: "as_of",
            message: "search answers from the live log only".to_owned(),
        });
    }
    if ask.on.is_some() {
        return Err(HttpError::BadRequest {
            parameter: "on",
            message: "search answers from the live log only (narrow by from and to instead)"
                .to_owned(),
        });
    }
    let title = if search.q.trim().is_empty() {
        "Search".to_owned()
    } else {
        format!("Search: {}", search.q.trim())
    };
    let mut frame = Frame::new(&ask, title, "search", &uri);
    frame.query = search.q.clone();
    let request = SearchRequest {
        query: search.q.clone(),
        kinds: (!search.kind.is_empty())
            .then(|| search.kind.clone())
            .into_iter()
            .collect(),
        actor: (!search.actor.trim().is_empty()).then(|| search.actor.trim().to_owned()),
        from: day("from", &search.from, false)?,
        to: day("to", &search.to, true)?,
        records: ask.records,
    };
    let (mut hits, mut total, mut next_href) = (Vec::new(), 0, None);
    if search.q.trim().is_empty() {
        // Nothing asked yet: the form alone, at the head.
        frame
            .answered(dashboard.store.head().await?, Utc::now(), &dashboard)
            .await?;
    } else {
        let page = Page {
            size: HITS_PER_PAGE,
            token: search.page.clone(),
        };
        let source = ask.source(&dashboard);
        debug_assert!(matches!(source, Source::Live { .. }));
        let answer = dashboard
            .queries
            .search(source, &request, &page)
            .await
            .map_err(bad_parameter)?;
        frame
            .answered(answer.position, answer.reference, &dashboard)
            .await?;
        hits = answer
            .items
            .iter()
            .map(|hit| hit_row(&frame, hit))
            .collect();
        total = answer.total;
        if !answer.next_page_token.is_empty() {
            next_href = Some(format!(
                "/search?q={}&kind={}&actor={}&from={}&to={}&records={}&page={}",
                encode(&search.q),
                encode(&search.kind),
                encode(&search.actor),
                encode(&search.from),
                encode(&search.to),
                ask.records_name(),
                encode(&answer.next_page_token)
            ));
        }
    }
    render(&SearchPage {
        frame,
        q: search.q,
        kind: search.kind,
        actor: search.actor,
        from: search.from,
        to: search.to,
        kinds: EventKind::NAMES,
        records: ask.records_name(),
        hits,
        total,
        next_href,
    })
}
