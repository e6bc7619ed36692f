//! The level of an interaction that gives none, derived from its participants' offices: each
//! state's side at its highest office, the interaction at the lower side's level; unspecified
//! when a side has no office with a level; a level the event gives wins.

use chrono::Duration;
use serde_json::{Value, json};

use super::lifecycle_tests::{Log, at};
use crate::domain::EventId;
use crate::projections::Model;
use crate::projections::models::channels::Channels;
use crate::projections::models::common::Records;
use crate::projections::models::relations::Relations;
use crate::projections::models::relations::rows::pair_of;
use crate::projections::models::timeline::{Timeline, TimelineEntry};

/// The founding scenario, and offices with levels (the founding ones have none).
fn log_with_levels() -> Log {
    let mut log = Log::founding();
    for (id, country, level) in [
        ("rus.head", "RUS", "LEADERS"),
        ("usa.head", "USA", "LEADERS"),
        ("usa.foreign", "USA", "MINISTERS"),
        ("rus.duma", "RUS", "PARLIAMENTARY"),
        ("usa.congress", "USA", "PARLIAMENTARY"),
    ] {
        log.push(
            &format!("actor-{id}"),
            json!({"actor_registered": {"actor": {"id": id, "kind": "OFFICE", "name": id,
                "country": country, "level": level}}}),
        );
    }
    log
}

/// A call between these (person, office) participants, with this level if any.
fn call(participants: &[(&str, &str)], level: Option<&str>) -> Value {
    let participants: Vec<Value> = participants
        .iter()
        .map(|(actor, office)| json!({"actor": actor, "acting_as": office}))
        .collect();
    let mut call = json!({"participants": participants});
    if let Some(level) = level {
        call["level"] = json!(level);
    }
    json!({
        "occurred": {"day": "2025-05-20"},
        "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялся разговор"}]}],
        "call_held": call
    })
}

fn entry(timeline: &Timeline, id: EventId) -> (String, bool) {
    let entry: &TimelineEntry = timeline
        .entries()
        .find(|e| e.origin.event_id == id)
        .expect("the entry");
    (entry.level.clone(), entry.level_derived)
}

fn level_of(participants: &[(&str, &str)], level: Option<&str>) -> (String, bool) {
    let mut log = log_with_levels();
    let id = log.push("occurrence-call", call(participants, level));
    entry(&log.model(), id)
}

#[test]
fn two_presidents_talk_at_the_leaders_level() {
    let level = level_of(
        &[("vladimir-putin", "rus.head"), ("donald-trump", "usa.head")],
        None,
    );
    assert_eq!(level, ("LEADERS".to_owned(), true));
}

#[test]
fn a_president_receiving_a_foreign_minister_is_at_the_ministers_level() {
    let level = level_of(
        &[
            ("vladimir-putin", "rus.head"),
            ("marco-rubio", "usa.foreign"),
        ],
        None,
    );
    assert_eq!(level, ("MINISTERS".to_owned(), true));
}

#[test]
fn each_side_counts_at_its_highest_office() {
    // Russia's side: its president and a parliamentarian; the US's: the president.
    let level = level_of(
        &[
            ("vladimir-putin", "rus.head"),
            ("sergey-lavrov", "rus.duma"),
            ("donald-trump", "usa.head"),
        ],
        None,
    );
    assert_eq!(level, ("LEADERS".to_owned(), true));
}

#[test]
fn a_side_without_a_level_leaves_it_unspecified() {
    // The founding scenario's offices have no level.
    let level = level_of(
        &[
            ("vladimir-putin", "rus.head"),
            ("marco-rubio", "usa.secretary-of-state"),
        ],
        None,
    );
    assert_eq!(level, ("UNSPECIFIED".to_owned(), false));
}

#[test]
fn a_level_the_event_gives_wins() {
    let level = level_of(
        &[("vladimir-putin", "rus.head"), ("donald-trump", "usa.head")],
        Some("EXPERTS"),
    );
    assert_eq!(level, ("EXPERTS".to_owned(), false));
}

#[test]
fn parliamentarians_meet_at_the_parliamentary_level_but_are_not_ranked() {
    let both = level_of(
        &[
            ("sergey-lavrov", "rus.duma"),
            ("marco-rubio", "usa.congress"),
        ],
        None,
    );
    assert_eq!(both, ("PARLIAMENTARY".to_owned(), true));
    let mixed = level_of(
        &[
            ("sergey-lavrov", "rus.duma"),
            ("marco-rubio", "usa.foreign"),
        ],
        None,
    );
    assert_eq!(mixed, ("UNSPECIFIED".to_owned(), false));
}

#[test]
fn relations_and_channels_count_derived_levels() {
    let mut log = log_with_levels();
    let id = log.push(
        "occurrence-call",
        call(
            &[
                ("vladimir-putin", "rus.head"),
                ("marco-rubio", "usa.foreign"),
            ],
            None,
        ),
    );
    let relations: Relations = log.model();
    let record = pair_of(&relations.row("pair:RUS+USA").unwrap()).unwrap();
    // The founding call gives MINISTERS; this one derives it.
    assert_eq!(record.all().contacts_by_level.get("MINISTERS"), Some(&2));
    let last = record.all().last_contact.clone().expect("a last contact");
    assert_eq!((last.event_id, last.level.as_str()), (id, "MINISTERS"));
    assert!(last.level_derived);
    let view = record
        .view(
            at("2025-06-01T00:00:00Z"),
            Duration::days(90),
            Records::Both,
        )
        .expect("a view");
    assert_eq!(view.contacts_by_level.get("MINISTERS"), Some(&2));

    let channels: Channels = log.model();
    let channel = channels
        .channels()
        .find(|c| c.key == "rus.head+usa.foreign")
        .expect("the channel");
    let last = channel.contacts.last.as_ref().expect("its last contact");
    assert_eq!(last.level, "MINISTERS");
}
