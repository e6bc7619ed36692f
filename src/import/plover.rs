//! PLOVER records: the JSON of the PLOVER project's gold-standard files (a JSON array of coded
//! event records, e.g. `PLOVER_GSR_CAMEO.json` of openeventdata/PLOVER).
//!
//! Each coded record becomes one `CodedEventReported` in the stream `occurrence-<record id>`,
//! its id derived from the record id (so a second import writes nothing new):
//! - `occurred` is the record's `date` (a day), `coding` its `event` (PLOVER type), `mode`
//!   and `context`;
//! - the attribution (`sources`) names the record's `publication` as an organisation actor
//!   (`plover.<slug of the publication>`), in the record's `language`, with the record's `text`
//!   as its quote;
//! - `coded_event_reported` holds the source and target actors with their sector and the
//!   words the text names them by, the record's `eventText`, its `eventLoc` as text and its id;
//! - `note` keeps the coder's comment, the size/dead/injured counts and who coded it when.
//!
//! Actors: a `code` that is an ISO 3166-1 alpha-3 code is that state; any other code (`IGO`,
//! `NGO`, `JAP`, ...) is the organisation `plover.<code in lowercase>`, named after the code and
//! the first words naming it in the file. Each actor is registered once, before the events.
//!
//! Records that cannot become a valid event (no source actor, an unknown event type, no text,
//! a repeated id, ...) are reported with their id and the field at fault, never dropped.
//! Documentation records (`"event": "DOCUMENT"`) describe the file and are counted apart.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::streamed::{NewActor, Registrations};
use super::{Item, Origin, Problem};
use crate::domain::diplomacy::{
    ActorId, ActorKind, Category, Coding, CountryCode, DiplomaticEvent, EventKind, Language,
    PLOVER_TYPES, StreamName, YearMonth, derived_event_id,
};

/// The namespace of the ids of imported PLOVER events and actor registrations.
const NAMESPACE: &str = "plover";

/// The prefix of the ids of actors that PLOVER names by a code that is not a state's.
const ACTOR_PREFIX: &str = "plover.";

/// The longest actor id the log accepts.
const MAX_ACTOR_ID_CHARS: usize = 100;

/// Record fields kept, as text, in the event's note.
const NOTE_FIELDS: &[&str] = &[
    "comment",
    "size",
    "dead",
    "injured",
    "coder",
    "version",
    "dateCoded",
];

/// A PLOVER file read into items to import and records reported as not importable.
#[derive(Debug, Default)]
pub struct PloverFile {
    /// Actor registrations first, then one event per importable record.
    pub items: Vec<Item>,
    /// Records that cannot be imported, by id, with the reason.
    pub reported: Vec<Problem>,
    /// Coded event records in the file (documentation records not counted).
    pub event_records: usize,
    /// Documentation records (`"event": "DOCUMENT"`), which describe the file.
    pub documentation_records: usize,
}

impl PloverFile {
    /// The items that are events (one per importable record), without the actor registrations.
    pub fn event_items(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|item| !matches!(item.event.kind, EventKind::ActorRegistered(_)))
    }
}

/// Reads a PLOVER file. `Err` only when the text is not a JSON array; every record that cannot
/// be imported is in `reported`.
pub fn parse(text: &str) -> Result<PloverFile, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("not a PLOVER file: {error}"))?;
    let Value::Array(records) = value else {
        return Err("not a PLOVER file: expected a JSON array of records".into());
    };

    let mut file = PloverFile::default();
    let mut actors = Registrations::default();
    let mut events = Vec::new();
    let mut first_index_of: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        if record.get("event").and_then(Value::as_str) == Some("DOCUMENT") {
            file.documentation_records += 1;
            continue;
        }
        file.event_records += 1;
        match read_record(index, record, &mut first_index_of) {
            Ok(coded) => {
                for actor in coded.actors {
                    actors.add(actor);
                }
                events.push(coded.item);
            }
            Err(problem) => file.reported.push(problem),
        }
    }
    file.items = actors.into_items(NAMESPACE);
    file.items.extend(events);
    Ok(file)
}

/// An importable record: its event and the actors it names.
struct CodedRecord {
    item: Item,
    actors: Vec<NewActor>,
}

/// Reads one coded record, or says what keeps it from being imported.
fn read_record(
    index: usize,
    record: &Value,
    first_index_of: &mut HashMap<String, usize>,
) -> Result<CodedRecord, Problem> {
    let problem = |origin: &Origin, field: &str, message: String| Problem {
        origin: origin.clone(),
        field: field.to_owned(),
        message,
    };
    let Value::Object(record) = record else {
        return Err(problem(
            &Origin::Record(format!("#{index}")),
            "",
            "a record must be a JSON object".into(),
        ));
    };
    let Some(record_id) = text_field(record, "id") else {
        return Err(problem(
            &Origin::Record(format!("#{index}")),
            "id",
            "the record has no id (a non-empty string)".into(),
        ));
    };
    let origin = Origin::Record(record_id.clone());
    if let Some(first) = first_index_of.get(&record_id) {
        return Err(problem(
            &origin,
            "id",
            format!(
                "repeats the id of the record at index {first} of the file (this one is at \
                 index {index}); ids must be unique"
            ),
        ));
    }
    first_index_of.insert(record_id.clone(), index);

    let stream_id = format!("occurrence-{record_id}");
    if StreamName::parse(&stream_id).is_none_or(|name| name.category != Category::Occurrence) {
        return Err(problem(
            &origin,
            "id",
            format!(
                "cannot name the record's stream {stream_id:?} (1 to {} of [A-Za-z0-9._-])",
                StreamName::MAX_NAME_CHARS
            ),
        ));
    }

    let plover_type = match record.get("event") {
        Some(Value::String(event)) if PLOVER_TYPES.contains(&event.trim()) => {
            event.trim().to_owned()
        }
        Some(Value::String(event)) => {
            return Err(problem(
                &origin,
                "event",
                format!(
                    "{event:?} is not a PLOVER event type ({})",
                    PLOVER_TYPES.join(", ")
                ),
            ));
        }
        _ => {
            return Err(problem(
                &origin,
                "event",
                "the record has no event type".into(),
            ));
        }
    };
    let coding = Coding {
        cameo: None,
        plover_type: Some(plover_type),
        plover_mode: text_field(record, "mode"),
        plover_context: context(record),
    };
    if let Some((sub_field, message)) = coding.problems().into_iter().next() {
        let field = match sub_field {
            "plover_mode" => "mode",
            "plover_context" => "context",
            _ => "event",
        };
        return Err(problem(&origin, field, message));
    }

    let occurred = match text_field(record, "date") {
        Some(date) if NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_ok() => {
            json!({ "day": date })
        }
        Some(date) if YearMonth::parse(&date).is_ok() => json!({ "month": date }),
        Some(date) => {
            return Err(problem(
                &origin,
                "date",
                format!("{date:?} is not a day (YYYY-MM-DD) or a month (YYYY-MM)"),
            ));
        }
        None => {
            return Err(problem(
                &origin,
                "date",
                "the record has no date: when the event happened".into(),
            ));
        }
    };
    let Some(quote) = text_field(record, "text") else {
        return Err(problem(
            &origin,
            "text",
            "the record has no text: the words it was coded from, which the log keeps as the \
             source's quote"
                .into(),
        ));
    };
    let language = match text_field(record, "language") {
        None => None,
        Some(language) => match Language::parse(language.clone()) {
            Ok(_) => Some(language),
            Err(error) => return Err(problem(&origin, "language", error.to_string())),
        },
    };
    let Some(publication) = text_field(record, "publication") else {
        return Err(problem(
            &origin,
            "publication",
            "the record has no publication: the source the log attributes it to".into(),
        ));
    };
    let Some(publisher) = publication_actor(&publication) else {
        return Err(problem(
            &origin,
            "publication",
            format!("{publication:?} has no letters or digits to make an actor id of"),
        ));
    };

    let mut actors = vec![publisher.clone()];
    let sources = match record.get("source") {
        Some(Value::Array(entries)) if !entries.is_empty() => {
            coded_actors(entries, "source", &mut actors)
                .map_err(|(f, m)| problem(&origin, &f, m))?
        }
        Some(Value::Array(_)) => {
            return Err(problem(
                &origin,
                "source",
                "names no source actor (an empty list); a coded event needs at least one".into(),
            ));
        }
        None | Some(Value::Null) => {
            return Err(problem(
                &origin,
                "source",
                "names no source actor (null or absent); a coded event needs at least one".into(),
            ));
        }
        Some(other) => {
            return Err(problem(
                &origin,
                "source",
                format!("{other} is not a list of actors"),
            ));
        }
    };
    let targets = match record.get("target") {
        Some(Value::Array(entries)) => coded_actors(entries, "target", &mut actors)
            .map_err(|(f, m)| problem(&origin, &f, m))?,
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.trim().is_empty() => Vec::new(),
        Some(other) => {
            return Err(problem(
                &origin,
                "target",
                format!("{other} is not a list of actors (nor \"\" or null for none)"),
            ));
        }
    };

    let mut attribution = Map::new();
    attribution.insert("source".into(), json!(publisher.id.as_str()));
    if let Some(language) = language {
        attribution.insert("language".into(), json!(language));
    }
    attribution.insert("quotes".into(), json!([{ "text": quote }]));

    let mut coded = Map::new();
    coded.insert("sources".into(), Value::Array(sources));
    if !targets.is_empty() {
        coded.insert("targets".into(), Value::Array(targets));
    }
    if let Some(event_text) = text_field(record, "eventText") {
        coded.insert("event_text".into(), json!(event_text));
    }
    if let Some(location) = record.get("eventLoc").and_then(location) {
        coded.insert("location".into(), json!(location));
    }
    coded.insert("external_id".into(), json!(record_id));

    let mut event = Map::new();
    event.insert("occurred".into(), occurred);
    event.insert("sources".into(), json!([attribution]));
    event.insert(
        "coding".into(),
        serde_json::to_value(&coding).expect("a coding serializes"),
    );
    if let Some(note) = note(record) {
        event.insert("note".into(), json!(note));
    }
    event.insert("coded_event_reported".into(), Value::Object(coded));
    let event = DiplomaticEvent::from_json(Value::Object(event))
        .map_err(|(field, message)| problem(&origin, &field, message))?;

    Ok(CodedRecord {
        item: Item {
            origin,
            stream_id,
            id: derived_event_id(NAMESPACE, &record_id),
            event,
        },
        actors,
    })
}

/// The `CodedActor`s (as JSON) of a record's `source` or `target` list; the actors they name
/// are added to `actors`. The error names the entry at fault.
fn coded_actors(
    entries: &[Value],
    field: &str,
    actors: &mut Vec<NewActor>,
) -> Result<Vec<Value>, (String, String)> {
    let mut coded = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err((
                format!("{field}[{index}]"),
                "an actor must be an object with a code".into(),
            ));
        };
        let text = text_field(entry, "actorText");
        let Some(code) = text_field(entry, "code") else {
            return Err((
                format!("{field}[{index}].code"),
                "the actor has no code".into(),
            ));
        };
        let actor = actor_for_code(&code, text.as_deref())
            .map_err(|message| (format!("{field}[{index}].code"), message))?;
        let mut value = Map::new();
        value.insert("actor".into(), json!(actor.id.as_str()));
        if let Some(sector) = entry.get("sector").and_then(as_text) {
            value.insert("sector".into(), json!(sector));
        }
        if let Some(text) = text {
            value.insert("text".into(), json!(text));
        }
        coded.push(Value::Object(value));
        actors.push(actor);
    }
    Ok(coded)
}

/// The actor a PLOVER actor code names: the state of an ISO 3166-1 alpha-3 code, otherwise the
/// organisation `plover.<code>`.
fn actor_for_code(code: &str, text: Option<&str>) -> Result<NewActor, String> {
    if let Ok(country) = CountryCode::parse(code) {
        return Ok(NewActor {
            id: ActorId::from(country),
            kind: ActorKind::State,
            name: country.name().to_owned(),
            note: None,
        });
    }
    let id =
        ActorId::parse(format!("{ACTOR_PREFIX}{}", code.to_ascii_lowercase())).map_err(|_| {
            format!(
                "{code:?} is neither an ISO 3166-1 alpha-3 code nor a code of letters and \
                 digits to make an actor id of"
            )
        })?;
    let name = match text {
        Some(text) => format!("{code} ({text})"),
        None => code.to_owned(),
    };
    Ok(NewActor {
        id,
        kind: ActorKind::Organisation,
        name,
        note: Some(format!("PLOVER actor code {code}")),
    })
}

/// The organisation a record's publication names: `plover.` and the publication's words in
/// lowercase joined by `-`, cut to the longest actor id.
fn publication_actor(publication: &str) -> Option<NewActor> {
    let mut slug = String::new();
    for c in publication.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut id = format!("{ACTOR_PREFIX}{slug}");
    id.truncate(MAX_ACTOR_ID_CHARS);
    let id = id.trim_end_matches('-');
    if id.len() == ACTOR_PREFIX.len() {
        return None;
    }
    Some(NewActor {
        id: ActorId::parse(id).ok()?,
        kind: ActorKind::Organisation,
        name: publication.to_owned(),
        note: Some("the publication of PLOVER records".into()),
    })
}

/// A field's value as trimmed text: strings (empty ones are none), numbers and booleans.
fn text_field(record: &Map<String, Value>, field: &str) -> Option<String> {
    record.get(field).and_then(as_text)
}

fn as_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// The PLOVER context(s), comma separated: a string, or a list of strings.
fn context(record: &Map<String, Value>) -> Option<String> {
    match record.get("context")? {
        Value::Array(contexts) => {
            let contexts: Vec<String> = contexts.iter().filter_map(as_text).collect();
            (!contexts.is_empty()).then(|| contexts.join(", "))
        }
        other => as_text(other),
    }
}

/// Where, as text: a name (`"Kabul"`), or an object such as
/// `{"name": "Geneva", "country code": "CH"}` -> `Geneva (country code: CH)`.
fn location(value: &Value) -> Option<String> {
    match value {
        Value::Object(fields) => {
            let name = fields.get("name").and_then(as_text);
            let details: Vec<String> = fields
                .iter()
                .filter(|(key, _)| key.as_str() != "name")
                .filter_map(|(key, value)| Some(format!("{key}: {}", as_text(value)?)))
                .collect();
            match (name, details.is_empty()) {
                (Some(name), true) => Some(name),
                (Some(name), false) => Some(format!("{name} ({})", details.join(", "))),
                (None, false) => Some(details.join(", ")),
                (None, true) => None,
            }
        }
        other => as_text(other),
    }
}

/// The record's other useful fields, as `field: value` pairs.
fn note(record: &Map<String, Value>) -> Option<String> {
    let parts: Vec<String> = NOTE_FIELDS
        .iter()
        .filter_map(|field| Some(format!("{field}: {}", text_field(record, field)?)))
        .collect();
    (!parts.is_empty()).then(|| format!("PLOVER record; {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diplomacy::CodedEventReported;

    const DOCUMENT: &str = r#"{"id": "T-DOCUMENT-0001", "event": "DOCUMENT", "eventText": "documents the file", "publication": "Test desk"}"#;

    fn record(id: &str, extra: &str) -> String {
        format!(
            r#"{{"id": "{id}", "date": "2001-02-03", "event": "AGREE", "eventText": "agreed",
                "context": "diplomatic", "text": "Two neighbours agreed to talk.",
                "language": "en", "publication": "Test desk: PLOVER 0.1", "coder": "A coder",
                "version": "0.1", "dateCoded": "2020-01-01"{extra}}}"#
        )
    }

    fn file(records: &[String]) -> PloverFile {
        parse(&format!("[{}]", records.join(",\n"))).unwrap()
    }

    fn coded(item: &Item) -> &CodedEventReported {
        match &item.event.kind {
            EventKind::CodedEventReported(coded) => coded,
            other => panic!("not a coded event: {other:?}"),
        }
    }

    fn registered(file: &PloverFile) -> Vec<(String, ActorKind, String)> {
        file.items
            .iter()
            .filter_map(|item| match &item.event.kind {
                EventKind::ActorRegistered(registered) => Some((
                    registered.actor.id.to_string(),
                    registered.actor.kind,
                    registered.actor.name.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_record_becomes_a_coded_event_in_its_own_stream() {
        let file = file(&[record(
            "T-AGREE-0001",
            r#", "mode": "", "source": [{"actorText": "Hungarian", "code": "HUN", "sector": "GOV"}],
               "target": [{"actorText": "Romania", "code": "ROU"}],
               "eventLoc": {"name": "Geneva", "country code": "CH"}, "comment": "Compound""#,
        )]);
        assert!(file.reported.is_empty(), "{:?}", file.reported);
        let events: Vec<&Item> = file.event_items().collect();
        assert_eq!(events.len(), 1);
        let item = events[0];
        assert_eq!(item.origin, Origin::Record("T-AGREE-0001".into()));
        assert_eq!(item.stream_id, "occurrence-T-AGREE-0001");
        assert_eq!(item.id, derived_event_id("plover", "T-AGREE-0001"));
        let json = item.event.to_json();
        assert_eq!(json["occurred"], json!({"day": "2001-02-03"}));
        assert_eq!(
            json["coding"],
            json!({"plover_type": "AGREE", "plover_context": "diplomatic"})
        );
        assert_eq!(
            json["sources"],
            json!([{"source": "plover.test-desk-plover-0-1", "language": "en",
                    "quotes": [{"text": "Two neighbours agreed to talk."}]}])
        );
        assert_eq!(
            json["coded_event_reported"],
            json!({
                "sources": [{"actor": "HUN", "sector": "GOV", "text": "Hungarian"}],
                "targets": [{"actor": "ROU", "text": "Romania"}],
                "event_text": "agreed",
                "location": "Geneva (country code: CH)",
                "external_id": "T-AGREE-0001"
            })
        );
        let note = item.event.note.as_deref().unwrap();
        assert!(note.contains("comment: Compound"), "{note}");
        assert!(note.contains("coder: A coder"), "{note}");
        assert_eq!(
            registered(&file),
            [
                (
                    "plover.test-desk-plover-0-1".to_owned(),
                    ActorKind::Organisation,
                    "Test desk: PLOVER 0.1".to_owned()
                ),
                ("HUN".to_owned(), ActorKind::State, "Hungary".to_owned()),
                ("ROU".to_owned(), ActorKind::State, "Romania".to_owned()),
            ]
        );
        // Actor registrations come first, in their own streams.
        assert_eq!(file.items[1].stream_id, "actor-HUN");
        assert_eq!(file.items[1].origin, Origin::Record("actor HUN".into()));
        assert_eq!(file.items[1].id, derived_event_id("plover", "actor:HUN"));
        assert_eq!(file.items.last().unwrap().id, item.id);
    }

    #[test]
    fn the_documentation_record_is_counted_apart() {
        let file = file(&[
            DOCUMENT.to_owned(),
            record("T-AGREE-0001", r#", "source": [{"code": "HUN"}]"#),
        ]);
        assert_eq!(file.documentation_records, 1);
        assert_eq!(file.event_records, 1);
        assert_eq!(file.event_items().count(), 1);
        assert!(file.reported.is_empty(), "{:?}", file.reported);
        assert!(
            file.items
                .iter()
                .all(|item| item.origin != Origin::Record("T-DOCUMENT-0001".into()))
        );
    }

    #[test]
    fn a_record_without_source_is_reported_with_its_id() {
        let file = file(&[
            record("T-AGREE-0001", r#", "source": null"#),
            record("T-AGREE-0002", ""),
            record("T-AGREE-0003", r#", "source": []"#),
        ]);
        assert_eq!(file.event_records, 3);
        assert!(file.items.is_empty(), "{:?}", file.items);
        let reported: Vec<(Origin, &str)> = file
            .reported
            .iter()
            .map(|p| (p.origin.clone(), p.field.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                (Origin::Record("T-AGREE-0001".into()), "source"),
                (Origin::Record("T-AGREE-0002".into()), "source"),
                (Origin::Record("T-AGREE-0003".into()), "source"),
            ]
        );
        assert!(file.reported[0].message.contains("no source actor"));
    }

    #[test]
    fn a_code_that_is_not_a_state_becomes_a_plover_organisation() {
        let file = file(&[
            record(
                "T-AGREE-0001",
                r#", "source": [{"actorText": "Asia-Pacific Economic Cooperation", "code": "IGO"}],
                   "target": [{"actorText": "Tokyo", "code": "JAP"}]"#,
            ),
            record(
                "T-AGREE-0002",
                r#", "source": [{"actorText": "United Nations", "code": "IGO", "sector": "GOV"}]"#,
            ),
        ]);
        assert!(file.reported.is_empty(), "{:?}", file.reported);
        let actors = registered(&file);
        assert_eq!(
            actors[1..],
            [
                (
                    "plover.igo".to_owned(),
                    ActorKind::Organisation,
                    "IGO (Asia-Pacific Economic Cooperation)".to_owned()
                ),
                (
                    "plover.jap".to_owned(),
                    ActorKind::Organisation,
                    "JAP (Tokyo)".to_owned()
                ),
            ]
        );
        let events: Vec<&Item> = file.event_items().collect();
        assert_eq!(coded(events[1]).sources[0].actor.as_str(), "plover.igo");
        assert_eq!(coded(events[1]).sources[0].sector.as_deref(), Some("GOV"));
    }

    #[test]
    fn an_empty_target_means_no_targets_and_other_strings_are_reported() {
        let file = file(&[
            record(
                "T-AGREE-0001",
                r#", "source": [{"code": "HUN"}], "target": """#,
            ),
            record(
                "T-AGREE-0002",
                r#", "source": [{"code": "HUN"}], "target": "diplomatic""#,
            ),
        ]);
        let events: Vec<&Item> = file.event_items().collect();
        assert_eq!(events.len(), 1);
        assert!(coded(events[0]).targets.is_empty());
        assert_eq!(file.reported.len(), 1);
        assert_eq!(
            file.reported[0].origin,
            Origin::Record("T-AGREE-0002".into())
        );
        assert_eq!(file.reported[0].field, "target");
    }

    #[test]
    fn unusable_records_are_reported_and_the_counts_add_up() {
        let file = file(&[
            DOCUMENT.to_owned(),
            record(
                "T-AGREE-0001",
                r#", "source": [{"code": "HUN"}], "mode": "phone""#,
            ),
            record("T-AGREE-0001", r#", "source": [{"code": "ROU"}]"#),
            record("T bad id", r#", "source": [{"code": "HUN"}]"#),
            record("T-AGREE-0004", r#", "source": [{"code": ""}]"#),
            record(
                "T-AGREE-0005",
                r#", "source": [{"code": "HUN"}], "text": " ""#,
            )
            .replacen(r#""text": "Two neighbours agreed to talk.","#, "", 1),
            record("T-AGREE-0006", r#", "source": [{"code": "HUN"}]"#)
                .replace(r#""event": "AGREE""#, r#""event": "HUG""#),
            r#"{"date": "2001-02-03", "event": "AGREE"}"#.to_owned(),
            "42".to_owned(),
        ]);
        assert_eq!(file.documentation_records, 1);
        assert_eq!(file.event_records, 8);
        let imported = file.event_items().count();
        assert_eq!(imported, 1);
        assert_eq!(imported + file.reported.len(), file.event_records);
        let reported: Vec<(String, String)> = file
            .reported
            .iter()
            .map(|p| (p.origin.to_string(), p.field.clone()))
            .collect();
        let expected = [
            ("record T-AGREE-0001", "id"),
            ("record T bad id", "id"),
            ("record T-AGREE-0004", "source[0].code"),
            ("record T-AGREE-0005", "text"),
            ("record T-AGREE-0006", "event"),
            ("record #7", "id"),
            ("record #8", ""),
        ];
        assert_eq!(
            reported,
            expected.map(|(origin, field)| (origin.to_owned(), field.to_owned()))
        );
        let coding = file.event_items().next().unwrap().event.coding.clone();
        assert_eq!(coding.unwrap().plover_mode.as_deref(), Some("phone"));
    }

    #[test]
    fn a_file_that_is_not_a_json_array_is_refused() {
        assert!(parse("{}").is_err());
        assert!(parse("not json").is_err());
        assert_eq!(parse("[]").unwrap().event_records, 0);
    }

    #[test]
    fn the_same_file_gives_the_same_items() {
        let text = format!(
            "[{}, {}]",
            record(
                "T-AGREE-0001",
                r#", "source": [{"code": "IGO"}, {"code": "HUN"}]"#
            ),
            record(
                "T-AGREE-0002",
                r#", "source": [{"code": "ROU"}, {"code": "IGO"}]"#
            )
        );
        let ids = |file: PloverFile| {
            file.items
                .into_iter()
                .map(|item| (item.stream_id, item.id, item.event))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(parse(&text).unwrap()), ids(parse(&text).unwrap()));
    }

    #[test]
    fn a_long_publication_is_cut_to_an_actor_id() {
        let actor = publication_actor(&"A very long publication name ".repeat(10)).unwrap();
        assert!(actor.id.as_str().len() <= MAX_ACTOR_ID_CHARS);
        assert!(!actor.id.as_str().ends_with('-'));
        assert!(publication_actor("¿¡").is_none());
    }
}
