//! Coded records (`CodedEventReported`) in the projections: on the timelines of their sources
//! and targets, counted between the states of each source and target by PLOVER type and quad
//! class apart from the readouts, a channel contact only between people or offices, and taken
//! back out by a retraction, in every batching.

use chrono::Duration;
use serde_json::{Value, json};

use super::lifecycle_tests::{Log, assert_every_batching_agrees, at};
use crate::projections::Model;
use crate::projections::models::channels::Channels;
use crate::projections::models::common::Records;
use crate::projections::models::relations::Relations;
use crate::projections::models::relations::rows::pair_of;
use crate::projections::models::timeline::{Timeline, names};

const MINISTERS: &str = "rus.foreign-minister+usa.secretary-of-state";

/// A coded record of `plover_type` from `sources` to `targets`, as the PLOVER importer writes
/// one.
fn coded(day: &str, plover_type: &str, mode: &str, sources: &[&str], targets: &[&str]) -> Value {
    let actors =
        |ids: &[&str]| -> Vec<Value> { ids.iter().map(|id| json!({"actor": id})).collect() };
    let mut coding = json!({"plover_type": plover_type});
    if !mode.is_empty() {
        coding["plover_mode"] = json!(mode);
    }
    json!({
        "occurred": {"day": day},
        "coding": coding,
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "coded from this"}]}],
        "coded_event_reported": {
            "sources": actors(sources),
            "targets": actors(targets),
            "location": "Moscow",
            "external_id": format!("TEST-{plover_type}-{day}"),
        },
    })
}

fn channel_contacts(log: &Log, key: &str) -> u32 {
    let channels: Channels = log.model();
    channels
        .channels()
        .find(|c| c.key == key)
        .map_or(0, |c| c.contacts.count)
}

#[test]
fn a_coded_record_between_offices_is_a_contact_of_their_channel_and_on_both_timelines() {
    let mut log = Log::founding();
    let before = channel_contacts(&log, MINISTERS);
    log.push(
        "occurrence-coded-1",
        coded(
            "2025-02-20",
            "CONSULT",
            "phone",
            &["rus.foreign-minister"],
            &["usa.secretary-of-state"],
        ),
    );
    assert_eq!(channel_contacts(&log, MINISTERS), before + 1);

    let timeline: Timeline = log.model();
    let entry = timeline
        .entries()
        .find(|e| e.is_coded())
        .expect("the coded record on the timeline");
    assert_eq!(entry.kind, "CodedEventReported");
    let coded = entry.coded.as_ref().unwrap();
    assert_eq!(coded.plover_type.as_deref(), Some("CONSULT"));
    assert_eq!(coded.mode.as_deref(), Some("phone"));
    assert_eq!(coded.quad_class.as_deref(), Some("VERBAL_COOPERATION"));
    assert_eq!(coded.location.as_deref(), Some("Moscow"));
    assert_eq!(coded.publication.as_deref(), Some("rus.mfa"));
    for actor in [
        "rus.foreign-minister",
        "usa.secretary-of-state",
        "RUS",
        "USA",
    ] {
        assert!(names(entry, actor), "on {actor}'s timeline");
    }
    let roles: Vec<_> = entry.participants.iter().map(|p| p.role.clone()).collect();
    assert_eq!(
        roles,
        [Some("SOURCE".to_owned()), Some("TARGET".to_owned())]
    );
    assert_every_batching_agrees(&log.facts);
}

#[test]
fn a_coded_record_between_states_counts_in_relations_apart_from_readouts_but_opens_no_channel() {
    let mut log = Log::founding();
    let channels_before: Channels = log.model();
    let pair_before = pair_of(&log.model::<Relations>().row("pair:RUS+USA").unwrap()).unwrap();
    let sanction = log.push(
        "occurrence-coded-2",
        coded("2025-02-21", "SANCTION", "", &["USA"], &["RUS"]),
    );
    log.push(
        "occurrence-coded-3",
        coded("2025-02-22", "AGREE", "", &["RUS", "rus.mfa"], &["USA"]),
    );
    let channels: Channels = log.model();
    assert_eq!(
        channels.channels().count(),
        channels_before.channels().count(),
        "states and organisations name no channel"
    );

    let record = pair_of(&log.model::<Relations>().row("pair:RUS+USA").unwrap()).unwrap();
    assert_eq!(record.readouts, pair_before.readouts, "readouts unchanged");
    // The AGREE counts once for the pair, though two of its sources are Russian.
    assert_eq!(record.coded.contacts, 2);
    assert_eq!(
        record.coded.contacts_by_plover_type.get("SANCTION"),
        Some(&1)
    );
    assert_eq!(
        record.coded.contacts_by_quad_class.get("MATERIAL_CONFLICT"),
        Some(&1)
    );
    assert_eq!(
        record
            .coded
            .contacts_by_quad_class
            .get("VERBAL_COOPERATION"),
        Some(&1)
    );
    assert_eq!(record.coded.contacts_by_level.get("UNSPECIFIED"), Some(&2));
    let when = at("2025-03-01T00:00:00Z");
    let view = |records| record.view(when, Duration::days(90), records);
    let both = view(Records::Both).unwrap();
    assert_eq!(both.contacts, pair_before.readouts.contacts + 2);
    assert_eq!(both.coded_contacts, 2);
    // The founding calls are CONSULT by their default coding.
    assert!(both.contacts_by_plover_type.contains_key("CONSULT"));
    let readouts = view(Records::Readouts).unwrap();
    assert_eq!(readouts.contacts, pair_before.readouts.contacts);
    assert_eq!(readouts.coded_contacts, 0);
    let only_coded = view(Records::Coded).unwrap();
    assert_eq!(only_coded.contacts, 2);
    assert_eq!(
        only_coded
            .last_contact
            .as_ref()
            .map(|c| (c.coded, c.plover_type.as_deref())),
        Some((true, Some("AGREE")))
    );
    assert!(
        only_coded.open_channels.is_empty(),
        "coded records step no lifecycle"
    );

    log.push(
        "occurrence-coded-2",
        json!({"event_retracted": {"event": sanction, "reason": "miscoded"}}),
    );
    let record = pair_of(&log.model::<Relations>().row("pair:RUS+USA").unwrap()).unwrap();
    assert_eq!(record.coded.contacts, 1);
    assert_eq!(
        record.coded.contacts_by_quad_class.get("MATERIAL_CONFLICT"),
        None
    );
    assert_every_batching_agrees(&log.facts);
}

#[test]
fn a_coded_record_without_pairs_of_states_is_on_timelines_only() {
    let mut log = Log::founding();
    let relations_before = log.model::<Relations>().rows().len();
    log.push(
        "occurrence-coded-4",
        coded("2025-02-23", "AGREE", "", &["RUS", "sergey-lavrov"], &[]),
    );
    let timeline: Timeline = log.model();
    assert!(
        timeline
            .entries()
            .any(|e| e.is_coded() && names(e, "sergey-lavrov"))
    );
    let relations: Relations = log.model();
    assert!(
        relations
            .rows()
            .iter()
            .all(|r| !r.key.starts_with("pair:") || !r.states.is_empty()),
    );
    assert!(
        relations.rows().len() > relations_before,
        "its interaction row"
    );
    assert_every_batching_agrees(&log.facts);
}
