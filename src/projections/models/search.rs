//! `search`: the texts of diplomatic events as documents for full-text search. One row per
//! free text an event holds (a report's quotes, translations and claims, a statement's
//! summary, an agreement's subject, a commitment's `what`, …), with the PostgreSQL text-search
//! configuration its language calls for in the `status` column; PostgreSQL derives the
//! `tsvector` from the two (a generated column, `migrations/…_search.sql`) and the queries are
//! SQL (`engine/search.rs`). An event's documents are the rows whose keys start with
//! `doc:<event id>:`, so a retraction or a correction finds them all (`Want::Prefix`) without
//! holding them in memory, and without a row of its own listing them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{DiplomaticEvent, EventKind, FuzzyTime, Place};
use crate::projections::models::common::{
    ACTOR_STATUS, Contributions, Origin, Registry, apply_fact, happened_key, target_of,
};
use crate::projections::{Fact, Model, Row, RowData, Want};

/// Where `ts_headline` starts and stops a match. Private-use characters, taken out of every
/// document's text, so a marker in a highlight always comes from PostgreSQL.
pub const START: char = '\u{E000}';
pub const STOP: char = '\u{E001}';

/// Language tags (their primary subtag) and the PostgreSQL 15 configuration for each.
const LANGUAGES: &[(&str, &str)] = &[
    ("ar", "arabic"),
    ("ca", "catalan"),
    ("da", "danish"),
    ("de", "german"),
    ("el", "greek"),
    ("en", "english"),
    ("es", "spanish"),
    ("eu", "basque"),
    ("fi", "finnish"),
    ("fr", "french"),
    ("ga", "irish"),
    ("hi", "hindi"),
    ("hu", "hungarian"),
    ("hy", "armenian"),
    ("id", "indonesian"),
    ("it", "italian"),
    ("lt", "lithuanian"),
    ("nb", "norwegian"),
    ("ne", "nepali"),
    ("nl", "dutch"),
    ("nn", "norwegian"),
    ("no", "norwegian"),
    ("pt", "portuguese"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("sr", "serbian"),
    ("sv", "swedish"),
    ("ta", "tamil"),
    ("tr", "turkish"),
    ("yi", "yiddish"),
];

/// Every configuration a document can have. The migration names each in the generated
/// column's CASE (a generated column takes only literal configurations); a test checks they
/// agree.
pub const CONFIGS: &[&str] = &[
    "arabic",
    "armenian",
    "basque",
    "catalan",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hindi",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "serbian",
    "simple",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
    "yiddish",
];

/// The configuration for a text: its language tag's when it has one (a tag PostgreSQL has no
/// stemmer for: `simple`, rather than another language's stemmer), else by its script.
pub fn config_for(language: Option<&str>, text: &str) -> &'static str {
    match language {
        Some(tag) => {
            let primary = tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
            LANGUAGES
                .iter()
                .find(|(code, _)| *code == primary)
                .map_or("simple", |(_, config)| config)
        }
        None => config_by_script(text),
    }
}

/// Mostly Cyrillic letters: `russian`; mostly Latin: `english`; else `simple`.
pub fn config_by_script(text: &str) -> &'static str {
    let (mut cyrillic, mut latin, mut letters) = (0usize, 0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        match c {
            '\u{0400}'..='\u{052F}' => cyrillic += 1,
            'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' => latin += 1,
            _ => {}
        }
    }
    if cyrillic * 2 > letters {
        "russian"
    } else if latin * 2 > letters {
        "english"
    } else {
        "simple"
    }
}

/// One searchable text of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub origin: Origin,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    /// The earliest instant `occurred` allows and the instant just after its latest (an
    /// instant: one microsecond after it), RFC 3339 UTC: what a date range compares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_end: Option<String>,
    /// The occurrence to show it in: the event itself, or the one a report is attached to.
    pub occurrence: EventId,
    /// Where in the event the text is, as a field path (`sources[0].quotes[1].text`).
    pub field: String,
    /// The language tag the configuration was chosen by, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub config: String,
    pub text: String,
    /// The row's `actors` and `states` columns (not in its data).
    #[serde(skip)]
    pub actors: Vec<String>,
    #[serde(skip)]
    pub states: Vec<String>,
}

const DOC_PREFIX: &str = "doc:";
/// The status of the rows that listed an event's documents, before its documents' keys were
/// enough (version 2; such rows are skipped if met).
const MARKER_STATUS: &str = "event";

/// The start of the keys of event `id`'s documents.
fn documents_of(id: EventId) -> String {
    format!("{DOC_PREFIX}{id}:")
}

/// A text found in an event: its field, its language tag (if any) and the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    pub field: String,
    pub language: Option<String>,
    pub text: String,
}

/// Every free text of an event, with its field path. Quotes take their own language or the
/// report's; translations, claims and the kinds' texts (summaries by analysts, in whatever
/// language) go by script.
pub fn texts(event: &DiplomaticEvent) -> Vec<Text> {
    let mut found = Vec::new();
    let mut push = |field: String, language: Option<&str>, text: &str| {
        let text: String = text.chars().filter(|c| *c != START && *c != STOP).collect();
        if !text.trim().is_empty() {
            found.push(Text {
                field,
                language: language.map(str::to_owned),
                text,
            });
        }
    };
    for (s, source) in event.sources.iter().enumerate() {
        let report = source.language.as_ref().map(|l| l.as_str());
        if let Some(title) = &source.title {
            push(format!("sources[{s}].title"), report, title);
        }
        for (q, quote) in source.quotes.iter().enumerate() {
            let language = quote.language.as_ref().map(|l| l.as_str()).or(report);
            push(
                format!("sources[{s}].quotes[{q}].text"),
                language,
                &quote.text,
            );
            if let Some(translation) = &quote.translation {
                push(
                    format!("sources[{s}].quotes[{q}].translation"),
                    None,
                    translation,
                );
            }
        }
        for (c, claim) in source.claims.iter().enumerate() {
            match &claim.text {
                Some(text) => push(format!("sources[{s}].claims[{c}].text"), None, text),
                None => push(
                    format!("sources[{s}].claims[{c}].key"),
                    None,
                    &claim.key.as_str().replace('-', " "),
                ),
            }
        }
    }
    if let Some(note) = &event.note {
        push("note".to_owned(), None, note);
    }
    let kind = event.kind_field();
    let mut of_kind = |field: &str, text: Option<&String>| {
        if let Some(text) = text {
            push(format!("{kind}.{field}"), None, text);
        }
    };

    use EventKind as K;
    match &event.kind {
        K::MeetingHeld(e) => of_kind("place.name", place(&e.place)),
        K::VisitMade(e) => of_kind("place.name", place(&e.place)),
        K::NegotiationRoundHeld(e) => of_kind("place.name", place(&e.place)),
        K::StatementIssued(e) => of_kind("summary", e.summary.as_ref()),
        K::AgreementStated(e) => of_kind("subject", Some(&e.subject)),
        K::IntentExpressed(e) => of_kind("intent", Some(&e.intent)),
        K::InvitationExtended(e) => {
            of_kind("purpose", Some(&e.purpose));
            of_kind("place.name", place(&e.place));
        }
        K::RequestMade(e) => of_kind("request", Some(&e.request)),
        K::ProposalRejected(e) => of_kind("proposal", Some(&e.proposal)),
        K::ChannelEstablished(e) => of_kind("purpose", e.purpose.as_ref()),
        K::ChannelSuspended(e)
        | K::ChannelResumed(e)
        | K::ChannelClosed(e)
        | K::SummitCancelled(e) => of_kind("reason", e.reason.as_ref()),
        K::SummitProposed(e) => of_kind("place.name", place(&e.place)),
        K::SummitScheduled(e) | K::CommitmentScheduled(e) => of_kind("place.name", place(&e.place)),
        K::SummitPostponed(e) => of_kind("reason", e.reason.as_ref()),
        K::CommitmentStated(e) => {
            of_kind("what", Some(&e.what));
            of_kind("due_text", e.due_text.as_ref());
        }
        K::CommitmentWithdrawn(e) => of_kind("reason", e.reason.as_ref()),
        K::DiplomatsExpelled(e) => of_kind("reason", e.reason.as_ref()),
        K::MissionsRestored(e) => of_kind("what", e.what.as_ref()),
        K::CodedEventReported(e) => {
            of_kind("event_text", e.event_text.as_ref());
            of_kind("location", e.location.as_ref());
        }
        // Names and references, not texts; retractions and corrections act on other events.
        K::ActorRegistered(_)
        | K::OfficeHolderChanged(_)
        | K::CallHeld(_)
        | K::InvitationAnswered(_)
        | K::SummitPreparationAgreed(_)
        | K::SummitHeld(_)
        | K::CommitmentFulfilled(_)
        | K::SourceReportAttached(_)
        | K::EventCorrected(_)
        | K::EventRetracted(_) => {}
    }
    found
}

/// A place's name, if it has one.
fn place(place: &Option<Place>) -> Option<&String> {
    place.as_ref().and_then(|p| p.name.as_ref())
}

fn instant(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[derive(Debug, Default)]
pub struct Search {
    registry: Registry,
    /// Documents by row key: those of the current batch, and those loaded back because a
    /// later event takes their event out (`wants`); let go by `settle`.
    documents: BTreeMap<String, Document>,
}

impl Search {
    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.documents.values()
    }

    /// The registered actors and states an event names (its sources among them), and their
    /// states: the columns the actor filter reads.
    fn concerned(&self, event: &DiplomaticEvent) -> (Vec<String>, Vec<String>) {
        let actors: Vec<String> = event
            .strings()
            .into_iter()
            .filter(|s| self.registry.knows(s))
            .collect();
        let mut states: Vec<String> = actors
            .iter()
            .filter_map(|a| self.registry.state_of(a))
            .collect();
        states.sort();
        states.dedup();
        (actors, states)
    }
}

impl Contributions for Search {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let origin = Origin::of(fact);
        let occurred = fact.event.occurred.clone();
        let occurrence = match &fact.event.kind {
            EventKind::SourceReportAttached(attached) => attached.occurrence,
            _ => fact.event_id,
        };
        let (actors, states) = self.concerned(&fact.event);
        let mut keys = Vec::new();
        let prefix = documents_of(fact.event_id);
        for text in texts(&fact.event) {
            let key = format!("{prefix}{}", text.field);
            let config = config_for(text.language.as_deref(), &text.text);
            self.documents.insert(
                key.clone(),
                Document {
                    origin: origin.clone(),
                    kind: fact.event.kind.name().to_owned(),
                    occurred: occurred.clone(),
                    occurred_from: occurred.as_ref().map(|t| instant(t.earliest())),
                    occurred_end: occurred
                        .as_ref()
                        .map(|t| instant(t.end().max(t.earliest() + Duration::microseconds(1)))),
                    occurrence,
                    field: text.field,
                    language: text.language,
                    config: config.to_owned(),
                    text: text.text,
                    actors: actors.clone(),
                    states: states.clone(),
                },
            );
            keys.push(key);
        }
        keys
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let prefix = documents_of(id);
        let keys: Vec<String> = self
            .documents
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        let mut origin = None;
        for key in &keys {
            origin = self.documents.remove(key).map(|document| document.origin);
        }
        (keys, origin)
    }
}

impl Model for Search {
    const NAME: &'static str = "search";
    /// 2: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone). 3: no marker rows
    /// (an event's documents are found by their keys).
    const VERSION: i32 = 3;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        let document = self.documents.get(key)?;
        // The event's actors: worked out once per row, from the registry as it stands.
        let (actors, states) = (document.actors.clone(), document.states.clone());
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(document).expect("a document serializes"),
            actors,
            states,
            status: document.config.clone(),
            sort_key: happened_key(document.occurred.as_ref(), document.origin.position),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(self.documents.keys().filter_map(|key| self.row(key)))
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        model.hydrate(rows)?;
        Ok(model)
    }

    /// Only the actors stay in memory: an event's documents are needed again only when it is
    /// retracted or corrected, and their keys start with its id.
    const RESIDENT: Option<&'static [&'static str]> = Some(&[ACTOR_STATUS]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        target_of(fact)
            .map(|id| vec![Want::Prefix(documents_of(id))])
            .unwrap_or_default()
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if self.registry.load(&row)? {
                continue;
            }
            if row.status == MARKER_STATUS {
                continue;
            }
            let mut document: Document = row.decode("search")?;
            document.actors = row.actors;
            document.states = row.states;
            self.documents.entry(row.key).or_insert(document);
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.documents = BTreeMap::new();
    }
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
