//! Scenario files: YAML that analysts write to record a set of diplomatic events (see
//! `scenarios/README.md`). Each event is the proto3 JSON shape of a `DiplomaticEvent` (proto
//! field names) plus a `key`, unique in the file, and the `stream` it goes into. Fields that
//! name events (`evidence`, `about`, `meeting`, `fulfilled_by`, `occurrence`, `event`) take
//! the key of another event of the file (or a UUID). Event ids derive from the scenario's
//! name and the key, so a re-import writes nothing new.

use std::collections::HashMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{Item, Origin, Problem};
use crate::domain::EventId;
use crate::domain::diplomacy::{DiplomaticEvent, derived_event_id};

/// The founding scenario, built in so `diplog serve --demo` needs no file.
pub const FOUNDING_SCENARIO: &str =
    include_str!("../../scenarios/2025-02-15-rubio-lavrov-call.yaml");

/// The fields whose values name events.
const EVENT_REFERENCE_FIELDS: &[&str] = &[
    "evidence",
    "about",
    "meeting",
    "fulfilled_by",
    "occurrence",
    "event",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    /// The namespace of the file's event ids: keep it when editing the file.
    scenario: String,
    #[serde(default)]
    #[allow(dead_code)] // documentation for readers of the file
    title: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    events: Vec<Spanned<serde_json::Value>>,
}

/// A parsed scenario: its name and its events, in file order.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub items: Vec<Item>,
}

/// Parses a scenario file; every problem found is reported with its line and field.
pub fn parse(text: &str) -> Result<Scenario, Vec<Problem>> {
    let file: ScenarioFile = serde_saphyr::from_str(text).map_err(|error| {
        let line = error
            .location()
            .map(|location| location.line())
            .unwrap_or(0);
        let message = yaml_message(&error.to_string());
        vec![Problem {
            origin: Origin::Line(line),
            field: String::new(),
            message,
        }]
    })?;
    let namespace = file.scenario.trim().to_owned();
    if namespace.is_empty() {
        return Err(vec![Problem {
            origin: Origin::Line(1),
            field: "scenario".into(),
            message: "must name the scenario (the namespace of its event ids)".into(),
        }]);
    }

    let mut problems = Vec::new();
    // First pass: keys and streams, so references may point forward or back.
    let mut keys: HashMap<String, (EventId, u64)> = HashMap::new();
    let mut heads = Vec::with_capacity(file.events.len());
    for spanned in file.events {
        let line = spanned.referenced.line();
        let origin = Origin::Line(line);
        let serde_json::Value::Object(mut fields) = spanned.value else {
            problems.push(Problem {
                origin,
                field: String::new(),
                message: "an event must be a mapping".into(),
            });
            continue;
        };
        let key = take_string(&mut fields, "key");
        let stream = take_string(&mut fields, "stream");
        let (Some(key), Some(stream)) = (key, stream) else {
            problems.push(Problem {
                origin,
                field: String::new(),
                message: "every event needs a `key` and a `stream`".into(),
            });
            continue;
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            problems.push(Problem {
                origin,
                field: "key".into(),
                message: "must be a word without white space".into(),
            });
            continue;
        }
        let id = derived_event_id(&namespace, &key);
        if let Some((_, first_line)) = keys.insert(key.clone(), (id, line)) {
            problems.push(Problem {
                origin,
                field: "key".into(),
                message: format!("{key:?} is already the key of the event at line {first_line}"),
            });
            continue;
        }
        heads.push((line, id, stream, serde_json::Value::Object(fields)));
    }

    let mut items = Vec::with_capacity(heads.len());
    for (line, id, stream_id, mut event) in heads {
        let origin = Origin::Line(line);
        if let Err((field, message)) = resolve_references(&mut event, &keys, "") {
            problems.push(Problem {
                origin,
                field,
                message,
            });
            continue;
        }
        match DiplomaticEvent::from_json(event) {
            Ok(event) => items.push(Item {
                origin,
                stream_id,
                id,
                event,
            }),
            Err((field, message)) => problems.push(Problem {
                origin,
                field,
                message,
            }),
        }
    }
    if problems.is_empty() {
        Ok(Scenario {
            name: namespace,
            items,
        })
    } else {
        Err(problems)
    }
}

/// The parser's message without its own "error: line N column M:" prefix (the line is
/// reported separately).
fn yaml_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, rest)) => match position.split_once(" column ") {
            Some((_, column)) => format!("not valid YAML (column {column}): {rest}"),
            None => format!("not valid YAML: {rest}"),
        },
        None => format!("not valid YAML: {first}"),
    }
}

fn take_string(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<String> {
    match fields.remove(name)? {
        serde_json::Value::String(value) => Some(value),
        other => Some(other.to_string()),
    }
}

/// Replaces the keys in event-reference fields by the events' ids.
fn resolve_references(
    value: &mut serde_json::Value,
    keys: &HashMap<String, (EventId, u64)>,
    path: &str,
) -> Result<(), (String, String)> {
    let resolve =
        |reference: &mut serde_json::Value, field: &str| -> Result<(), (String, String)> {
            let serde_json::Value::String(text) = reference else {
                return Err((
                    field.to_owned(),
                    "must be the key of an event of this file, or an event id".into(),
                ));
            };
            if uuid::Uuid::parse_str(text).is_ok() {
                return Ok(());
            }
            match keys.get(text.as_str()) {
                Some((id, _)) => {
                    *text = id.to_string();
                    Ok(())
                }
                None => Err((
                    field.to_owned(),
                    format!("no event of this file has the key {text:?}"),
                )),
            }
        };
    match value {
        serde_json::Value::Object(fields) => {
            for (name, child) in fields.iter_mut() {
                let child_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if EVENT_REFERENCE_FIELDS.contains(&name.as_str()) {
                    match child {
                        serde_json::Value::Array(references) => {
                            for (index, reference) in references.iter_mut().enumerate() {
                                resolve(reference, &format!("{child_path}[{index}]"))?;
                            }
                        }
                        serde_json::Value::Object(_) => {
                            resolve_references(child, keys, &child_path)?
                        }
                        reference => resolve(reference, &child_path)?,
                    }
                } else {
                    resolve_references(child, keys, &child_path)?;
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                resolve_references(item, keys, &format!("{path}[{index}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_founding_scenario_parses() {
        let scenario = parse(FOUNDING_SCENARIO).unwrap_or_else(|problems| {
            panic!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        assert_eq!(scenario.name, "2025-02-15-rubio-lavrov-call");
        assert!(scenario.items.len() > 20);
    }

    #[test]
    fn a_bad_field_is_reported_with_its_line_and_path() {
        let text = "scenario: t\nevents:\n  - key: a\n    stream: actor-RUS\n    actor_registered:\n      actor: {id: RUS, kind: STATE, name: Russia}\n  - key: b\n    stream: occurrence-x\n    call_held:\n      participants: [{actor: Lavrov}]\n";
        let problems = parse(text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].origin, Origin::Line(7));
        assert_eq!(problems[0].field, "call_held.participants[0].actor");
    }

    #[test]
    fn keys_must_be_unique_and_references_must_resolve() {
        let text = "scenario: t\nevents:\n  - key: a\n    stream: s\n    evidence: [nowhere]\n    channel_closed: {}\n  - key: a\n    stream: s\n    channel_closed: {}\n";
        let problems = parse(text).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.origin == Origin::Line(7) && p.field == "key"),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.origin == Origin::Line(3) && p.field == "evidence[0]"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_yaml_syntax_error_names_its_line() {
        let problems = parse("scenario: t\nevents:\n  - key: [unclosed\n").unwrap_err();
        assert!(
            matches!(problems[0].origin, Origin::Line(line) if line >= 3),
            "{problems:?}"
        );
    }
}
