//! Full-text search as a reader asks for it: the request checked (each bad part names its
//! field), read-your-writes on the live `search` projection (there is no `as of`: the index
//! is of the live rows only), and each hit with its text and the ranges of the matched words.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::EventId;
use crate::domain::diplomacy::{EventKind, FuzzyTime, KindName};
use crate::projections::Model;
use crate::projections::engine::rows::WaitError;
use crate::projections::engine::search::{MatchQuery, SearchHit, SearchQuery};
use crate::projections::models::search::{START, STOP, Search};
use crate::projections::read::page_token::page_bounds;
use crate::projections::read::query::Queries;
use crate::projections::read::request::{Answer, Page, QueryError, Records, Source, actor_filter};

/// A query is at most this many characters.
pub const MAX_QUERY_CHARS: usize = 1000;

/// What a reader searches for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Words in `websearch_to_tsquery` syntax.
    pub query: String,
    /// Event kinds (`CallHeld`, …); empty: any.
    pub kinds: Vec<String>,
    /// What concerns this actor (a state: through its offices and people too).
    pub actor: Option<String>,
    /// The occurrence may fall at or after `from` and before `to` (see `SearchQuery`).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Texts of readouts, of coded records, or both.
    pub records: Records,
}

/// The kinds a search looks at: those asked for, of the records asked for (readouts: every
/// kind but `CodedEventReported`); empty: any. None when no kind asked for is of them.
fn kinds_of(records: Records, kinds: &[String]) -> Option<Vec<String>> {
    if records == Records::Both {
        return Some(kinds.to_vec());
    }
    let coded = KindName::CodedEventReported.to_string();
    let asked: Vec<String> = if kinds.is_empty() {
        EventKind::NAMES.iter().map(|k| (*k).to_owned()).collect()
    } else {
        kinds.to_vec()
    };
    let kept: Vec<String> = asked
        .into_iter()
        .filter(|kind| records.keeps(*kind == coded))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Where a match is in a hit's text: `[start, end)` in characters (Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

/// One hit, as every layer shows it (its JSON is the proto's `SearchHit`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub event_id: EventId,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    pub field: String,
    pub config: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub rank: f32,
    pub text: String,
    pub matches: Vec<TextRange>,
    /// The text with `START` and `STOP` around each match.
    pub highlighted: String,
    pub occurrence_id: EventId,
    pub position: u64,
    pub stream_id: String,
}

impl Hit {
    fn of(hit: SearchHit) -> Self {
        let document = hit.document;
        let (text, matches) = match marked(&hit.highlighted) {
            // `ts_headline` gives the text back as it was; should it not, nothing is marked
            // rather than the wrong words.
            (text, matches) if text == document.text => (text, matches),
            _ => (document.text.clone(), Vec::new()),
        };
        let highlighted = if matches.is_empty() {
            text.clone()
        } else {
            hit.highlighted
        };
        Self {
            event_id: document.origin.event_id,
            kind: document.kind,
            occurred: document.occurred,
            field: document.field,
            config: document.config,
            language: document.language,
            rank: hit.rank,
            text,
            matches,
            highlighted,
            occurrence_id: document.occurrence,
            position: document.origin.position,
            stream_id: document.origin.stream_id,
        }
    }

    /// The text in pieces, each with whether it is a match, for those who render it.
    pub fn pieces(&self) -> Vec<(String, bool)> {
        let chars: Vec<char> = self.text.chars().collect();
        let mut pieces = Vec::new();
        let mut at = 0usize;
        for range in &self.matches {
            let (start, end) = (range.start as usize, range.end as usize);
            if start > at {
                pieces.push((chars[at..start].iter().collect(), false));
            }
            pieces.push((chars[start..end].iter().collect(), true));
            at = end;
        }
        if at < chars.len() {
            pieces.push((chars[at..].iter().collect(), false));
        }
        pieces
    }
}

/// A highlighted text without its markers, and where they were.
pub fn marked(highlighted: &str) -> (String, Vec<TextRange>) {
    let mut text = String::with_capacity(highlighted.len());
    let mut matches = Vec::new();
    let (mut chars, mut start) = (0u32, None);
    for c in highlighted.chars() {
        match c {
            START => start = Some(chars),
            STOP => {
                if let Some(start) = start.take()
                    && start < chars
                {
                    matches.push(TextRange { start, end: chars });
                }
            }
            c => {
                text.push(c);
                chars += 1;
            }
        }
    }
    (text, matches)
}

fn invalid(field: &'static str, message: impl Into<String>) -> QueryError {
    QueryError::Invalid {
        field,
        message: message.into(),
    }
}

/// The request as the store's query, or the first part at fault.
fn checked(request: &SearchRequest, page: &Page) -> Result<SearchQuery, QueryError> {
    let words = request.query.trim();
    if words.is_empty() {
        return Err(invalid("query", "is required: the words to search for"));
    }
    let length = words.chars().count();
    if length > MAX_QUERY_CHARS {
        return Err(invalid(
            "query",
            format!("{length} characters is more than the limit of {MAX_QUERY_CHARS}"),
        ));
    }
    for kind in &request.kinds {
        if !EventKind::NAMES.contains(&kind.as_str()) {
            return Err(invalid(
                "kinds",
                format!(
                    "{kind:?} is not an event kind ({})",
                    EventKind::NAMES.join(", ")
                ),
            ));
        }
    }
    let concerning = match request.actor.as_deref().filter(|a| !a.is_empty()) {
        Some(actor) => actor_filter(actor)?,
        None => Default::default(),
    };
    if let (Some(from), Some(to)) = (request.from, request.to)
        && to <= from
    {
        return Err(invalid(
            "occurred_to",
            format!("{to} is not after occurred_from {from}"),
        ));
    }
    let kinds = kinds_of(request.records, &request.kinds).ok_or_else(|| {
        invalid(
            "records",
            format!(
                "none of the kinds asked for ({}) is of the records asked for",
                request.kinds.join(", ")
            ),
        )
    })?;
    let (start, limit) = page_bounds(page)?;
    Ok(SearchQuery {
        words: words.to_owned(),
        kinds,
        actor: concerning.actor,
        states: concerning.states,
        from: request.from,
        to: request.to,
        offset: start.offset,
        limit,
    })
}

impl Queries {
    /// One page of the hits for `request`, best first, from the live `search` projection
    /// once it reflects the source's `min_position`. An `as of` source is refused: the text
    /// index is of the live rows only.
    pub async fn search(
        &self,
        source: Source,
        request: &SearchRequest,
        page: &Page,
    ) -> Result<Answer<Hit>, QueryError> {
        let (min_position, deadline) = match source {
            Source::Live {
                min_position,
                deadline,
            } => (min_position, deadline),
            Source::AsOf(_) => {
                return Err(invalid(
                    "read.as_of",
                    "search answers from the live projection only; leave as_of out",
                ));
            }
            Source::On { .. } => {
                return Err(invalid(
                    "read.on_day",
                    "search answers from the live projection only; leave on_day out (narrow \
                     by occurred_from and occurred_to instead)",
                ));
            }
        };
        let query = checked(request, page)?;
        self.search_reflects(min_position, deadline).await?;
        let found = self.store().search(&query).await?;
        let next = query.offset + found.hits.len();
        Ok(Answer {
            items: found.hits.into_iter().map(Hit::of).collect(),
            position: found.position,
            reference: Utc::now(),
            next_page_token: if (next as u64) < found.total {
                next.to_string()
            } else {
                String::new()
            },
            total: found.total as usize,
        })
    }
}

impl Queries {
    /// Waits (until `deadline`) for the `search` projection to reflect `min_position` (none
    /// asked: at once).
    async fn search_reflects(
        &self,
        min_position: u64,
        deadline: tokio::time::Instant,
    ) -> Result<(), QueryError> {
        if min_position == 0 {
            return Ok(());
        }
        self.store()
            .wait_for(Search::NAME, min_position, deadline)
            .await
            .map_err(|error| match error {
                WaitError::TimedOut { position } => QueryError::NotYet {
                    projection: Search::NAME,
                    position,
                    wanted: min_position,
                },
                WaitError::Failed(error) => error.into(),
            })?;
        Ok(())
    }
}

/// What the events page asks of the search: of the events up to `until` whose texts match
/// `request` (its words, kinds and occurrence range), the positions of a page of them, below
/// `before` or above `after`, newest first.
#[derive(Debug, Clone, Default)]
pub struct MatchRequest {
    pub request: SearchRequest,
    pub until: u64,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

impl Queries {
    /// The positions of the events whose texts match (see [`MatchRequest`]), from the live
    /// `search` projection once it reflects `min_position`. The texts of an event are its
    /// own and never change, so the matches up to `until` are what a search as of `until`
    /// would have found: this serves an `as of` page too.
    pub async fn matching(
        &self,
        min_position: u64,
        deadline: tokio::time::Instant,
        asked: &MatchRequest,
    ) -> Result<Vec<u64>, QueryError> {
        let query = checked(&asked.request, &Page::default())?;
        self.search_reflects(min_position, deadline).await?;
        let (positions, _) = self
            .store()
            .matching_positions(&MatchQuery {
                words: query.words,
                kinds: query.kinds,
                from: query.from,
                to: query.to,
                until: asked.until,
                before: asked.before,
                after: asked.after,
                limit: asked.limit,
            })
            .await?;
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_become_ranges_in_characters() {
        let (text, matches) = marked("о \u{E000}контактах\u{E001} и \u{E000}meetings\u{E001}");
        assert_eq!(text, "о контактах и meetings");
        assert_eq!(
            matches,
            [
                TextRange { start: 2, end: 11 },
                TextRange { start: 14, end: 22 }
            ]
        );
        let hit = Hit {
            event_id: EventId::generate(),
            kind: "CallHeld".into(),
            occurred: None,
            field: "note".into(),
            config: "russian".into(),
            language: None,
            rank: 0.1,
            text,
            matches,
            highlighted: String::new(),
            occurrence_id: EventId::generate(),
            position: 1,
            stream_id: "s".into(),
        };
        let pieces = hit.pieces();
        let pieces: Vec<(&str, bool)> = pieces.iter().map(|(s, m)| (s.as_str(), *m)).collect();
        assert_eq!(
            pieces,
            [
                ("о ", false),
                ("контактах", true),
                (" и ", false),
                ("meetings", true)
            ]
        );
    }

    #[test]
    fn bad_requests_name_their_field() {
        let page = Page::default();
        let field = |request: SearchRequest, page: &Page| match checked(&request, page) {
            Err(QueryError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let words = |query: &str| SearchRequest {
            query: query.into(),
            ..Default::default()
        };
        assert_eq!(field(words("  "), &page), "query");
        assert_eq!(field(words(&"a".repeat(1001)), &page), "query");
        assert!(checked(&words(&"a".repeat(1000)), &page).is_ok());
        let kinds = SearchRequest {
            kinds: vec!["CallHeld".into(), "Nope".into()],
            ..words("x")
        };
        assert_eq!(field(kinds, &page), "kinds");
        let actor = SearchRequest {
            actor: Some("Not An Actor".into()),
            ..words("x")
        };
        assert_eq!(field(actor, &page), "actor");
        let day = |d: &str| Some(format!("{d}T00:00:00Z").parse().unwrap());
        let backwards = SearchRequest {
            from: day("2025-02-15"),
            to: day("2025-02-14"),
            ..words("x")
        };
        assert_eq!(field(backwards, &page), "occurred_to");
        let big = Page {
            size: 5000,
            token: String::new(),
        };
        assert_eq!(field(words("x"), &big), "page_size");
        let token = Page {
            size: 0,
            token: "nope".into(),
        };
        assert_eq!(field(words("x"), &token), "page_token");
    }

    #[test]
    fn records_narrow_the_kinds_and_a_contradiction_is_none() {
        let coded = vec!["CodedEventReported".to_owned()];
        assert_eq!(kinds_of(Records::Both, &[]), Some(vec![]));
        assert_eq!(kinds_of(Records::Coded, &[]), Some(coded.clone()));
        let readouts = kinds_of(Records::Readouts, &[]).unwrap();
        assert!(!readouts.contains(&coded[0]) && readouts.contains(&"CallHeld".to_owned()));
        assert_eq!(kinds_of(Records::Coded, &["CallHeld".to_owned()]), None);
        assert_eq!(kinds_of(Records::Readouts, &coded), None);
    }
}
