//! The browser of the generic log, as event stores' admin pages have it: `/streams?prefix=`
//! (streams by a prefix of their ids, with their versions and last positions), `/streams/{id}`
//! (one stream's events, of any type), and one event by its position (`/log/{position}`) or
//! by its stream and version (`/streams/{id}/{version}`): its columns, metadata and payload,
//! and its Merkle inclusion proof against the latest signed tree head (as of a past state,
//! the tree of that size), which the page's script checks (`assets/dashboard.js`). Every page
//! is as of the log's head or the `as_of` bound, and paged by keys (`before`, `after`).
//! No SQL here, and nothing that interprets the events beyond showing them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{Frame, Stamp, stamp_at};
use super::request::{Ask, Params};
use super::{log_bound, render};
use crate::audit::ProofError;
use crate::domain::StreamId;
use crate::http::readable::encode;
use crate::http::{Dashboard, HttpError};
use crate::store::{EventSummary, PageKey, RecordedEvent};

/// Streams on a page of `/streams`.
const STREAMS_PER_PAGE: usize = 100;

/// Events on a page of `/streams/{id}`.
const EVENTS_PER_PAGE: usize = 100;

/// The browser's own query parameters (`Params` has the ones every page takes).
#[derive(Debug, Default, Deserialize)]
pub(in crate::http) struct BrowseParams {
    /// `/streams`: the start of the ids listed.
    #[serde(default)]
    prefix: String,
    /// The page after this key in the list's order (`/streams`: ids after it; a stream's
    /// events: versions below it, older).
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
}

/// The browser shows the log as recorded (as of a position, or now); the state of affairs on
/// a day is the projections' pages' (`on`): a 400 naming it.
fn browsing(params: &Params) -> Result<Ask, HttpError> {
    let ask = Ask::parse(params)?;
    if ask.on.is_some() {
        return Err(HttpError::BadRequest {
            parameter: "on",
            message: "the log's browser shows the log as recorded: give as_of instead".to_owned(),
        });
    }
    Ok(ask)
}

/// A log position or a stream version from a query parameter (empty: none).
pub(super) fn number(parameter: &'static str, raw: &str) -> Result<Option<u64>, HttpError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| HttpError::BadRequest {
            parameter,
            message: format!("{raw:?} is not a position or version (digits, from 1)"),
        })
}

/// Where a newest-first page starts: `before` (older) or `after` (newer) a key, not both.
pub(super) fn page_key(before: Option<u64>, after: Option<u64>) -> Result<PageKey<u64>, HttpError> {
    match (before, after) {
        (Some(_), Some(_)) => Err(HttpError::BadRequest {
            parameter: "after",
            message: "give before or after, not both".to_owned(),
        }),
        (Some(key), None) => Ok(PageKey::Following(key)),
        (None, Some(key)) => Ok(PageKey::Preceding(key)),
        (None, None) => Ok(PageKey::First),
    }
}

/// Whether there are pages on either side of a page from `key` that came back with `shown`
/// of `limit` rows: (a page before it in the list, a page after it).
pub(super) fn sides<K>(key: &PageKey<K>, shown: usize, limit: usize) -> (bool, bool) {
    let full = shown >= limit;
    match key {
        PageKey::First => (false, full),
        PageKey::Following(_) => (true, full),
        PageKey::Preceding(_) => (full, true),
    }
}

pub(super) struct StreamRow {
    pub(super) id: String,
    pub(super) href: String,
    pub(super) version: i64,
    pub(super) last_position: i64,
    pub(super) last_href: String,
    pub(super) last_recorded: Stamp,
}

#[derive(Template)]
#[template(path = "streams.html", config = "src/http/askama.toml")]
struct StreamsPage {
    frame: Frame,
    prefix: String,
    streams: Vec<StreamRow>,
    previous_href: Option<String>,
    next_href: Option<String>,
}

/// A link to `path` with these parameters (the empty ones left out) and the page's as-of.
pub(super) fn with_params(frame: &Frame, path: &str, params: &[(&str, String)]) -> String {
    let base = frame.link(path);
    let extra: Vec<String> = params
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    if extra.is_empty() {
        base
    } else if base.contains('?') {
        format!("{base}&{}", extra.join("&"))
    } else {
        format!("{base}?{}", extra.join("&"))
    }
}

fn stream_href(frame: &Frame, id: &str) -> String {
    frame.link(&format!("/streams/{}", encode(id)))
}

fn log_href(frame: &Frame, position: i64) -> String {
    frame.link(&format!("/log/{position}"))
}

/// `/streams?prefix=…`: the streams whose ids start with the prefix, by id, as of the page's
/// bound.
pub(in crate::http) async fn streams(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
    Query(browse): Query<BrowseParams>,
) -> Result<Response, HttpError> {
    let ask = browsing(&params)?;
    let prefix = StreamId::parse_prefix(&browse.prefix)
        .map_err(|error| HttpError::BadRequest {
            parameter: "prefix",
            message: error.to_string(),
        })?
        .unwrap_or_default();
    let key = match (browse.before.as_str(), browse.after.as_str()) {
        ("", "") => PageKey::First,
        (before, "") => PageKey::Preceding(before),
        ("", after) => PageKey::Following(after),
        _ => {
            return Err(HttpError::BadRequest {
                parameter: "after",
                message: "give before or after, not both".to_owned(),
            });
        }
    };
    let title = if prefix.is_empty() {
        "Streams".to_owned()
    } else {
        format!("Streams: {prefix}…")
    };
    let mut frame = Frame::new(&ask, title, "streams", &uri);
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let found = dashboard
        .store
        .streams_by_prefix(&prefix, key, bound, STREAMS_PER_PAGE as i64)
        .await?;
    frame.answered(bound, reference, &dashboard).await?;
    let (before, after) = sides(&key, found.len(), STREAMS_PER_PAGE);
    let link = |name: &str, id: &str| {
        with_params(
            &frame,
            "/streams",
            &[("prefix", prefix.clone()), (name, id.to_owned())],
        )
    };
    let previous_href = before
        .then(|| found.first().map(|s| link("before", &s.stream_id)))
        .flatten();
    let next_href = after
        .then(|| found.last().map(|s| link("after", &s.stream_id)))
        .flatten();
    let streams = found
        .iter()
        .map(|s| StreamRow {
            id: s.stream_id.clone(),
            href: stream_href(&frame, &s.stream_id),
            version: s.version,
            last_position: s.last_position,
            last_href: log_href(&frame, s.last_position),
            last_recorded: stamp_at(s.last_recorded_at),
        })
        .collect();
    render(&StreamsPage {
        frame,
        prefix,
        streams,
        previous_href,
        next_href,
    })
}

pub(super) struct EventRow {
    pub(super) position: i64,
    pub(super) href: String,
    pub(super) version: i64,
    pub(super) event_type: String,
    pub(super) event_id: String,
    pub(super) recorded: Stamp,
    pub(super) appended_by: String,
    pub(super) bytes: i32,
}

fn event_row(frame: &Frame, event: &EventSummary) -> EventRow {
    EventRow {
        position: event.position,
        href: log_href(frame, event.position),
        version: event.stream_version,
        event_type: event.event_type.clone(),
        event_id: event.event_id.to_string(),
        recorded: stamp_at(event.recorded_at),
        appended_by: event.appended_by.clone(),
        bytes: event.bytes,
    }
}

#[derive(Template)]
#[template(path = "stream.html", config = "src/http/askama.toml")]
struct StreamPage {
    frame: Frame,
    stream: String,
    events: Vec<EventRow>,
    newer_href: Option<String>,
    older_href: Option<String>,
}

/// `/streams/{id}`: the stream's events as of the page's bound, newest first.
pub(in crate::http) async fn stream(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(stream_id): Path<String>,
    Query(params): Query<Params>,
    Query(browse): Query<BrowseParams>,
) -> Result<Response, HttpError> {
    let ask = browsing(&params)?;
    let key = page_key(
        number("before", &browse.before)?,
        number("after", &browse.after)?,
    )?;
    let mut frame = Frame::new(&ask, format!("Stream {stream_id}"), "streams", &uri);
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let (found, newest) = tokio::try_join!(
        dashboard
            .store
            .stream_events(&stream_id, key, bound, EVENTS_PER_PAGE as i64),
        dashboard
            .store
            .stream_events(&stream_id, PageKey::First, bound, 1),
    )?;
    if newest.is_empty() {
        return Err(HttpError::NotFound(match ask.as_of {
            Some((raw, _)) => format!("no stream {stream_id:?} in the log as of {raw}"),
            None => format!("no stream {stream_id:?} in the log"),
        }));
    }
    frame.answered(bound, reference, &dashboard).await?;
    let (newer, older) = sides(&key, found.len(), EVENTS_PER_PAGE);
    let path = format!("/streams/{}", encode(&stream_id));
    let newer_href = newer
        .then(|| {
            found
                .first()
                .map(|e| with_params(&frame, &path, &[("after", e.stream_version.to_string())]))
        })
        .flatten();
    let older_href = older
        .then(|| {
            found
                .last()
                .filter(|e| e.stream_version > 1)
                .map(|e| with_params(&frame, &path, &[("before", e.stream_version.to_string())]))
        })
        .flatten();
    render(&StreamPage {
        events: found.iter().map(|e| event_row(&frame, e)).collect(),
        stream: stream_id,
        frame,
        newer_href,
        older_href,
    })
}

pub(super) struct MetadataRow {
    pub(super) key: String,
    pub(super) value: String,
}

/// An event's inclusion proof, for the page's script to check.
pub(super) struct ProofView {
    pub(super) tree_size: u64,
    /// Leaf index: position - 1.
    pub(super) index: u64,
    /// Hex: the event's canonical bytes (the leaf's data), its leaf hash, the path, the root.
    pub(super) entry: String,
    pub(super) leaf_hash: String,
    pub(super) path: Vec<String>,
    pub(super) root: String,
    pub(super) checkpoint: String,
}

#[derive(Template)]
#[template(path = "log_event.html", config = "src/http/askama.toml")]
struct LogEventPage {
    frame: Frame,
    position: i64,
    event_id: String,
    event_type: String,
    stream: String,
    stream_href: String,
    version: i64,
    recorded: Stamp,
    appended_by: String,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    metadata: Vec<MetadataRow>,
    data: String,
    bytes: usize,
    /// The diplomatic event's page (its sources side by side), if it is one.
    diplomatic_href: Option<String>,
    previous_href: Option<String>,
    next_href: Option<String>,
    stream_previous_href: Option<String>,
    stream_next_href: Option<String>,
    proof: Option<ProofView>,
    /// Why there is no proof (the signed tree has not reached the event yet).
    no_proof: String,
}

/// `/log/{position}`: the event at that position in the log.
pub(in crate::http) async fn log_event(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(position): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = browsing(&params)?;
    let frame = Frame::new(&ask, "Event", "streams", &uri);
    let Ok(position) = position.parse::<u64>() else {
        return Err(HttpError::NotFound(format!(
            "no log position {position:?} (digits)"
        )));
    };
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let found = if position == 0 || position > bound {
        None
    } else {
        dashboard.store.event_at(position).await?
    };
    let Some(event) = found else {
        return Err(not_in_log(&ask, format!("no event at position {position}")));
    };
    event_page(&dashboard, frame, &ask, bound, reference, event).await
}

/// `/streams/{id}/{version}`: the event of that stream at that version.
pub(in crate::http) async fn stream_event(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path((stream_id, version)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = browsing(&params)?;
    let frame = Frame::new(&ask, "Event", "streams", &uri);
    let Ok(version) = version.parse::<u64>() else {
        return Err(HttpError::NotFound(format!(
            "no version {version:?} of a stream (digits)"
        )));
    };
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let found = dashboard
        .store
        .event_of_stream(&stream_id, version)
        .await?
        .filter(|e| (e.position.max(0) as u64) <= bound);
    let Some(event) = found else {
        return Err(not_in_log(
            &ask,
            format!("no version {version} of stream {stream_id:?}"),
        ));
    };
    event_page(&dashboard, frame, &ask, bound, reference, event).await
}

fn not_in_log(ask: &Ask, what: String) -> HttpError {
    HttpError::NotFound(match &ask.as_of {
        Some((raw, _)) => format!("{what} in the log as of {raw}"),
        None => format!("{what} in the log"),
    })
}

async fn event_page(
    dashboard: &Dashboard,
    mut frame: Frame,
    ask: &Ask,
    bound: u64,
    reference: chrono::DateTime<chrono::Utc>,
    event: RecordedEvent,
) -> Result<Response, HttpError> {
    frame.answered(bound, reference, dashboard).await?;
    let position = event.position.max(0) as u64;
    frame.title = format!("Event {position}: {}", event.event_type);
    let (proof, no_proof) = proof_of(dashboard, ask, bound, &event).await?;
    let data = serde_json::from_str::<serde_json::Value>(&event.data_text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| event.data_text.clone());
    let version = event.stream_version;
    let stream_path = format!("/streams/{}", encode(&event.stream_id));
    render(&LogEventPage {
        position: event.position,
        event_id: event.event_id.to_string(),
        event_type: event.event_type.clone(),
        stream_href: frame.link(&stream_path),
        stream: event.stream_id.clone(),
        version,
        recorded: stamp_at(event.recorded_at),
        appended_by: event.appended_by.clone(),
        correlation_id: event.correlation_id.map(|id| id.to_string()),
        causation_id: event.causation_id.map(|id| id.to_string()),
        metadata: event
            .metadata
            .0
            .iter()
            .map(|(key, value)| MetadataRow {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        data,
        bytes: event.data_text.len(),
        diplomatic_href: crate::recorder::is_diplomatic(&event.metadata.0)
            .then(|| frame.event(crate::domain::EventId::from(event.event_id))),
        previous_href: (position > 1).then(|| log_href(&frame, event.position - 1)),
        next_href: (position < bound).then(|| log_href(&frame, event.position + 1)),
        stream_previous_href: (version > 1)
            .then(|| frame.link(&format!("{stream_path}/{}", version - 1))),
        // The next version may be past the bound: its page says so.
        stream_next_href: Some(frame.link(&format!("{stream_path}/{}", version + 1))),
        proof,
        no_proof,
        frame,
    })
}

/// The event's inclusion proof in the latest signed tree (as of a past state, the tree of
/// that size if the signed tree has reached it), or why there is none.
async fn proof_of(
    dashboard: &Dashboard,
    ask: &Ask,
    bound: u64,
    event: &RecordedEvent,
) -> Result<(Option<ProofView>, String), HttpError> {
    let position = event.position.max(0) as u64;
    let auditor = &dashboard.auditor;
    let mut found = auditor
        .inclusion(position, ask.as_of.is_some().then_some(bound))
        .await;
    if let Err(ProofError::PastHead { .. }) = found {
        found = auditor.inclusion(position, None).await;
    }
    match found {
        Ok(proof) => Ok((
            Some(ProofView {
                tree_size: proof.tree_size,
                index: position - 1,
                entry: hex::encode(crate::audit::builder::canonical(event).to_bytes()),
                leaf_hash: hex::encode(proof.leaf_hash),
                path: proof.path.iter().map(hex::encode).collect(),
                root: hex::encode(proof.head.head.root),
                checkpoint: auditor.checkpoint(&proof.head.head),
            }),
            String::new(),
        )),
        Err(ProofError::NotInTree { size, .. }) => Ok((
            None,
            format!(
                "Not yet in a signed tree: the signed tree holds {size} events, and this is \
                 event {position}. Reload in a moment."
            ),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_neighbours_where_its_key_and_its_fullness_say() {
        let first: PageKey<u64> = PageKey::First;
        assert_eq!(sides(&first, 100, 100), (false, true));
        assert_eq!(sides(&first, 3, 100), (false, false));
        assert_eq!(sides(&PageKey::Following(7), 3, 100), (true, false));
        assert_eq!(sides(&PageKey::Preceding(7), 3, 100), (false, true));
        assert_eq!(sides(&PageKey::Preceding(7), 100, 100), (true, true));
    }

    #[test]
    fn cursors_are_positions_from_one_and_not_both_ways() {
        assert!(matches!(number("before", " "), Ok(None)));
        assert!(matches!(number("before", "12"), Ok(Some(12))));
        for bad in ["0", "-1", "x", "1.5"] {
            assert!(matches!(
                number("before", bad),
                Err(HttpError::BadRequest {
                    parameter: "before",
                    ..
                })
            ));
        }
        assert!(matches!(
            page_key(Some(3), Some(1)),
            Err(HttpError::BadRequest {
                parameter: "after",
                ..
            })
        ));
        assert!(matches!(page_key(None, Some(4)), Ok(PageKey::Preceding(4))));
    }
}
