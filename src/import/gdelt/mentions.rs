//! One row of a GDELT 2.0 Mentions export (16 tab-separated columns, GDELT 2.0 Mentions
//! codebook) as one `SourceReportAttached` naming the event's derived id, in the event's
//! stream: the outlet (`MentionSourceName`, an organisation `gdelt.source.<name>`), the
//! article's URL (`MentionIdentifier`; identifiers of other mention types, such as citations,
//! become the report's title), `MentionTimeDate` as its publication time, and in the note the
//! mention type, `Confidence`, sentence and document tone.

use serde_json::{Map, Value, json};

use super::{event_id, mention_id, occurrence_stream, source_of_name, source_of_url};
use crate::domain::diplomacy::DiplomaticEvent;
use crate::import::streamed::{NewActor, compact_instant, row_problem};
use crate::import::tsv::Row;
use crate::import::{Item, Origin, Problem};

/// The columns of the Mentions table.
pub const COLUMNS: usize = 16;

mod col {
    pub const GLOBALEVENTID: usize = 0;
    pub const MENTION_TIME: usize = 2;
    pub const MENTION_TYPE: usize = 3;
    pub const SOURCE_NAME: usize = 4;
    pub const IDENTIFIER: usize = 5;
    pub const SENTENCE: usize = 6;
    pub const IN_RAW_TEXT: usize = 10;
    pub const CONFIDENCE: usize = 11;
    pub const DOC_TONE: usize = 13;
}

/// A mention row read.
#[derive(Debug, Clone)]
pub struct MentionRow {
    pub line: u64,
    pub global_event_id: String,
    /// The article's URL, when the identifier is one.
    pub url: Option<String>,
    pub source: NewActor,
    pub item: Item,
}

/// Reads one row, or says which field keeps it from being imported (`Err`: the reason to
/// count it under, and the problem).
pub fn read(row: &Row) -> Result<MentionRow, (&'static str, Problem)> {
    let line = row.line;
    super::check_columns(row, COLUMNS, "mention", "a Mentions export")?;
    let field = |index: usize| {
        let value = row.fields[index].trim();
        (!value.is_empty()).then_some(value)
    };
    let global_event_id = super::global_event_id(row, col::GLOBALEVENTID)?;
    let Some(identifier) = field(col::IDENTIFIER) else {
        return Err((
            "row(s) without a MentionIdentifier",
            row_problem(
                line,
                "MentionIdentifier",
                "the mention has no identifier (the article's URL)",
            ),
        ));
    };
    let url = (identifier.starts_with("http://") || identifier.starts_with("https://"))
        .then(|| identifier.to_owned());
    let source = match field(col::SOURCE_NAME) {
        Some(name) => source_of_name(name),
        None => source_of_url(url.as_deref()),
    };

    let mut attribution = Map::new();
    attribution.insert("source".into(), json!(source.id.as_str()));
    if let Some(time) = field(col::MENTION_TIME).and_then(compact_instant) {
        attribution.insert("published_at".into(), json!(time));
    }
    match &url {
        Some(url) => attribution.insert("url".into(), json!(url)),
        None => attribution.insert("title".into(), json!(identifier)),
    };
    let mut event = Map::new();
    event.insert("sources".into(), json!([attribution]));
    event.insert("note".into(), json!(note(&field)));
    event.insert(
        "source_report_attached".into(),
        json!({ "occurrence": event_id(global_event_id).to_string() }),
    );
    let event = DiplomaticEvent::from_json(Value::Object(event)).map_err(|(field, message)| {
        (
            "row(s) refused by the log's rules",
            row_problem(line, &field, message),
        )
    })?;
    Ok(MentionRow {
        line,
        global_event_id: global_event_id.to_owned(),
        url,
        source,
        item: Item {
            origin: Origin::Line(line),
            stream_id: occurrence_stream(global_event_id),
            id: mention_id(global_event_id, identifier),
            event,
        },
    })
}

/// `GDELT 2.0 mention: type 1 (web); confidence 80%; sentence 3; in the raw text; tone -2.5`.
fn note<'a>(field: &dyn Fn(usize) -> Option<&'a str>) -> String {
    let mut parts = Vec::new();
    if let Some(kind) = field(col::MENTION_TYPE) {
        let name = match kind {
            "1" => "web",
            "2" => "citation only",
            "3" => "CORE",
            "4" => "DTIC",
            "5" => "JSTOR",
            "6" => "non-textual",
            _ => "unknown",
        };
        parts.push(format!("type {kind} ({name})"));
    }
    if let Some(confidence) = field(col::CONFIDENCE) {
        parts.push(format!("confidence {confidence}%"));
    }
    if let Some(sentence) = field(col::SENTENCE) {
        parts.push(format!("sentence {sentence}"));
    }
    if field(col::IN_RAW_TEXT) == Some("1") {
        parts.push("in the raw text".into());
    }
    if let Some(tone) = field(col::DOC_TONE) {
        parts.push(format!("document tone {tone}"));
    }
    format!("GDELT 2.0 mention: {}", parts.join("; "))
}
