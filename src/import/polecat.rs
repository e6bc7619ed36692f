//! POLECAT weekly files (tab-separated, PLOVER-coded; the successor of ICEWS), streamed: each
//! row becomes one `CodedEventReported` in `occurrence-polecat-<Event ID>`, its id derived
//! from the event id, so importing a file again writes nothing.
//!
//! Columns are found by the header row's names (no authoritative column list was at hand):
//! `Event ID`, `Event Date` and `Event Type` are required; `Event Mode`, `Contexts`,
//! `Actor Name`/`Actor Country`/`Primary Actor Sector`, the same for `Recipient`,
//! `Placename`, `Country`, `Latitude`, `Longitude`, `Source` (or `Publisher`), `Headline`,
//! `Publication Date`, `Quad Code`, `Event Intensity` and `Story ID` are read when present.
//! The published files have known defects: header rows repeated inside the file and rows
//! with stray tabs (more or fewer fields than the header). Each such row is reported with its
//! line and skipped, never silently.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::streamed::{
    NewActor, Registrations, SeenIds, StreamedImportError, Tally, organisation, record_chunk,
    row_problem,
};
use super::tsv::{Row, read_in_chunks};
use super::{GrpcChannel, Item, Origin, Problem};
use crate::domain::EventId;
use crate::domain::diplomacy::{
    ActorId, ActorKind, Category, CountryCode, DiplomaticEvent, PLOVER_TYPES, StreamName,
    derived_event_id,
};

/// The namespace of the ids of everything imported from POLECAT.
const NAMESPACE: &str = "polecat";

/// The columns without which a row cannot be an event.
const REQUIRED: &[&str] = &["Event ID", "Event Date", "Event Type"];

/// The id of the event POLECAT numbers `event_id`.
pub fn event_id(polecat_id: &str) -> EventId {
    derived_event_id(NAMESPACE, &format!("event:{polecat_id}"))
}

/// The header row: each column's index by its name, in lowercase.
struct Header {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    fn parse(row: &Row) -> Result<Self, String> {
        let names: Vec<String> = row.fields.iter().map(|f| f.trim().to_owned()).collect();
        let index: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_lowercase(), i))
            .collect();
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|name| !index.contains_key(&name.to_lowercase()))
            .collect();
        if missing.is_empty() {
            Ok(Self { names, index })
        } else {
            Err(format!(
                "line {}: not a POLECAT header row: it lacks the column(s) {}",
                row.line,
                missing.join(", ")
            ))
        }
    }

    fn is_repeated_in(&self, row: &Row) -> bool {
        row.fields.len() == self.names.len()
            && row
                .fields
                .iter()
                .zip(&self.names)
                .all(|(field, name)| field.trim() == name)
    }

    /// The trimmed, non-empty value of the first of `names` the header has.
    fn get<'r>(&self, row: &'r Row, names: &[&str]) -> Option<&'r str> {
        names
            .iter()
            .find_map(|name| self.index.get(&name.to_lowercase()))
            .map(|&i| row.fields[i].trim())
            .filter(|value| !value.is_empty())
    }
}

/// An event row read: its id, its event and the actors it names.
struct EventRow {
    polecat_id: String,
    item: Item,
    actors: Vec<NewActor>,
}

fn read_row(header: &Header, row: &Row) -> Result<EventRow, (&'static str, Problem)> {
    let line = row.line;
    let get = |names: &[&str]| header.get(row, names);
    let fail =
        |reason, field: &str, message: String| Err((reason, row_problem(line, field, message)));
    let Some(polecat_id) = get(&["Event ID"]) else {
        return fail(
            "row(s) without an Event ID",
            "Event ID",
            "the row has no event id".into(),
        );
    };
    let stream_id = format!("occurrence-polecat-{polecat_id}");
    if StreamName::parse(&stream_id).is_none_or(|name| name.category != Category::Occurrence) {
        return fail(
            "row(s) without an Event ID",
            "Event ID",
            format!(
                "{polecat_id:?} cannot name a stream (1 to {} of [A-Za-z0-9._-])",
                StreamName::MAX_NAME_CHARS
            ),
        );
    }
    let day = get(&["Event Date"])
        .and_then(|date| date.get(..10))
        .and_then(|date| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok());
    let Some(day) = day else {
        return fail(
            "row(s) without a date",
            "Event Date",
            format!(
                "{:?} is not a day (YYYY-MM-DD)",
                get(&["Event Date"]).unwrap_or("")
            ),
        );
    };
    let plover_type = get(&["Event Type"]).map(str::to_uppercase);
    let Some(plover_type) = plover_type.filter(|t| PLOVER_TYPES.contains(&t.as_str())) else {
        return fail(
            "row(s) with an unknown event type",
            "Event Type",
            format!(
                "{:?} is not a PLOVER event type ({})",
                get(&["Event Type"]).unwrap_or(""),
                PLOVER_TYPES.join(", ")
            ),
        );
    };

    let mut actors = Vec::new();
    let mut coded_actor = |role: &str| -> Option<Value> {
        let name = get(&[&format!("{role} Name")]);
        let country = get(&[&format!("{role} Country")]).and_then(|c| CountryCode::parse(c).ok());
        let actor = match (country, name) {
            (Some(state), _) => NewActor {
                id: ActorId::from(state),
                kind: ActorKind::State,
                name: state.name().to_owned(),
                note: None,
            },
            (None, Some(name)) => {
                organisation("polecat.", name, "an actor POLECAT names without a state")?
            }
            (None, None) => return None,
        };
        let mut coded = Map::new();
        coded.insert("actor".into(), json!(actor.id.as_str()));
        let sector = get(&[
            &format!("Primary {role} Sector"),
            &format!("{role} Sectors"),
        ]);
        if let Some(sector) = sector {
            coded.insert("sector".into(), json!(sector));
        }
        if let Some(name) = name {
            coded.insert("text".into(), json!(name));
        }
        actors.push(actor);
        Some(Value::Object(coded))
    };
    let Some(source) = coded_actor("Actor") else {
        return fail(
            "row(s) without an actor",
            "Actor Name",
            "the row names no actor (no Actor Country of a state, no Actor Name)".into(),
        );
    };
    let target = coded_actor("Recipient");

    let outlet = get(&["Source", "Publisher"])
        .and_then(|name| organisation("polecat.source.", name, "a source of POLECAT events"))
        .unwrap_or_else(|| NewActor {
            id: ActorId::parse("polecat").expect("a valid actor id"),
            kind: ActorKind::Organisation,
            name: "POLECAT".into(),
            note: Some("the POLECAT event dataset".into()),
        });
    let mut attribution = Map::new();
    attribution.insert("source".into(), json!(outlet.id.as_str()));
    if let Some(headline) = get(&["Headline"]) {
        attribution.insert("title".into(), json!(headline));
    }
    if let Some(published) =
        get(&["Publication Date"]).and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
    {
        attribution.insert(
            "published_at".into(),
            json!(published.to_utc().to_rfc3339()),
        );
    }
    actors.insert(0, outlet);

    let mut coding = Map::new();
    coding.insert("plover_type".into(), json!(plover_type));
    if let Some(mode) = get(&["Event Mode"]) {
        coding.insert(
            "plover_mode".into(),
            json!(mode.to_lowercase().replace(' ', "-")),
        );
    }
    if let Some(contexts) = get(&["Contexts", "Event Contexts"]) {
        let contexts: Vec<String> = contexts
            .split([';', ','])
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        coding.insert("plover_context".into(), json!(contexts.join(",")));
    }

    let mut coded = Map::new();
    coded.insert("sources".into(), json!([source]));
    if let Some(target) = target {
        coded.insert("targets".into(), json!([target]));
    }
    if let Some(place) = place(&get) {
        coded.insert("location".into(), json!(place));
    }
    coded.insert("external_id".into(), json!(polecat_id));

    let mut note = vec!["POLECAT".to_owned()];
    for (column, label) in [
        ("Quad Code", "quad code"),
        ("Event Intensity", "intensity"),
        ("Story ID", "story"),
    ] {
        if let Some(value) = get(&[column]) {
            note.push(format!("{label}: {value}"));
        }
    }
    let mut event = Map::new();
    event.insert(
        "occurred".into(),
        json!({ "day": day.format("%Y-%m-%d").to_string() }),
    );
    event.insert("sources".into(), json!([attribution]));
    event.insert("coding".into(), Value::Object(coding));
    event.insert("note".into(), json!(note.join("; ")));
    event.insert("coded_event_reported".into(), Value::Object(coded));
    let event = DiplomaticEvent::from_json(Value::Object(event)).map_err(|(field, message)| {
        (
            "row(s) refused by the log's rules",
            row_problem(line, &field, message),
        )
    })?;
    Ok(EventRow {
        polecat_id: polecat_id.to_owned(),
        item: Item {
            origin: Origin::Line(line),
            stream_id,
            id: event_id(polecat_id),
            event,
        },
        actors,
    })
}

/// `Kyiv, Ukraine (50.45, 30.52)`.
fn place<'r>(get: &dyn Fn(&[&str]) -> Option<&'r str>) -> Option<String> {
    let names: Vec<&str> = [get(&["Placename"]), get(&["Country"])]
        .into_iter()
        .flatten()
        .collect();
    if names.is_empty() {
        return None;
    }
    let mut place = names.join(", ");
    if let (Some(lat), Some(long)) = (get(&["Latitude"]), get(&["Longitude"])) {
        place.push_str(&format!(" ({lat}, {long})"));
    }
    Some(place)
}

/// Imports a POLECAT weekly file.
pub async fn import<T: GrpcChannel>(
    channel: T,
    path: PathBuf,
    chunk_rows: usize,
    tally: &mut Tally,
) -> Result<(), StreamedImportError> {
    let mut chunks = read_in_chunks(path, chunk_rows);
    let mut header: Option<Header> = None;
    let mut seen = SeenIds::default();
    while let Some(rows) = chunks.recv().await {
        let mut registrations = Registrations::default();
        let mut read = Vec::new();
        for row in rows? {
            let Some(header) = &header else {
                let parsed = Header::parse(&row).map_err(|message| {
                    super::ImportError::Refused(vec![row_problem(row.line, "", message)])
                })?;
                header = Some(parsed);
                continue;
            };
            tally.rows += 1;
            if header.is_repeated_in(&row) {
                let problem = row_problem(row.line, "", "repeats the header row");
                tally.report(&problem, "repeated header row(s)");
                continue;
            }
            if row.fields.len() != header.names.len() {
                let problem = row_problem(
                    row.line,
                    "",
                    format!(
                        "{} tab-separated fields where the header has {} (a stray tab?)",
                        row.fields.len(),
                        header.names.len()
                    ),
                );
                tally.report(&problem, "row(s) with the wrong number of fields");
                continue;
            }
            match read_row(header, &row) {
                Ok(event) if !seen.insert(&event.item.id) => {
                    let problem = row_problem(
                        row.line,
                        "Event ID",
                        format!("repeats event {} of an earlier row", event.polecat_id),
                    );
                    tally.report(&problem, "row(s) repeating an event");
                }
                Ok(event) => {
                    for actor in event.actors.iter().cloned() {
                        registrations.add(actor);
                    }
                    read.push(event);
                }
                Err((reason, problem)) => tally.report(&problem, reason),
            }
        }
        let mut items = registrations.into_items(NAMESPACE);
        items.extend(read.iter().map(|event| event.item.clone()));
        let refused = record_chunk(channel.clone(), items, tally).await?;
        tally.imported += read
            .iter()
            .filter(|event| !refused.contains(&event.item.origin.to_string()))
            .count() as u64;
        tally.show_progress();
    }
    Ok(())
}
