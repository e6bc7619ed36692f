//! Pairwise channels: a meeting of two delegations is a contact of every pair of parties across
//! the table (the ministers' channel among them), never a channel of the whole room nor of one
//! side; three states also make a contact of their format; retractions and corrections take
//! the meeting out of every channel it went through. A channel names its offices' holders at
//! its last contact.

use chrono::Duration;
use serde_json::{Value, json};

use super::lifecycle_tests::{Log, assert_every_batching_agrees, at};
use crate::domain::EventId;
use crate::projections::models::channels::Channels;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::relations::Relations;
use crate::projections::models::relations::rows::{PairRecord, pair_of};
use crate::projections::{Fact, Model};

const MINISTERS: &str = "rus.foreign-minister+usa.secretary-of-state";
const MEETING_STREAM: &str = "occurrence-2025-02-18-riyadh-meeting";

/// The founding scenario, then `scenarios/delegations-meeting.yaml`.
fn delegations() -> (Log, EventId) {
    let mut log = Log::founding();
    let scenario =
        crate::import::scenario::parse(include_str!("../../../scenarios/delegations-meeting.yaml"))
            .expect("the delegations scenario parses");
    for item in scenario.items {
        log.facts.push(Fact {
            position: log.facts.len() as u64 + 1,
            stream_id: item.stream_id,
            event_id: item.id,
            recorded_at: "2025-03-01T00:00:00Z".parse().unwrap(),
            event: item.event,
        });
    }
    let meeting = log
        .facts
        .iter()
        .find(|f| f.stream_id == MEETING_STREAM)
        .expect("the meeting")
        .event_id;
    (log, meeting)
}

fn views(channels: &Channels) -> Vec<ChannelView> {
    channels
        .channels()
        .map(|c| c.view(at("2025-03-01T00:00:00Z"), Duration::days(90)))
        .collect()
}

fn view(channels: &Channels, key: &str) -> ChannelView {
    views(channels)
        .into_iter()
        .find(|v| v.key == key)
        .unwrap_or_else(|| panic!("channel {key}"))
}

fn people(channels: &Channels, key: &str) -> Vec<String> {
    channels
        .channels()
        .find(|c| c.key == key)
        .unwrap_or_else(|| panic!("channel {key}"))
        .people
        .clone()
}

fn pair(relations: &Relations, key: &str) -> PairRecord {
    pair_of(&relations.row(&format!("pair:{key}")).expect("a pair row")).unwrap()
}

const RUSSIANS: [&str; 3] = [
    "kirill-dmitriev",
    "rus.foreign-minister",
    "rus.presidential-aide",
];
const AMERICANS: [&str; 3] = [
    "usa.national-security-advisor",
    "usa.secretary-of-state",
    "usa.special-envoy-middle-east",
];

#[test]
fn a_meeting_of_two_delegations_is_a_contact_of_every_pair_across_the_table() {
    let (log, meeting) = delegations();
    let channels: Channels = log.model();
    // The ministers' channel, opened by their call, gets its second contact.
    let ministers = view(&channels, MINISTERS);
    assert_eq!(
        (ministers.contacts, ministers.last_contact_by),
        (2, Some(meeting))
    );
    assert_eq!(
        people(&channels, MINISTERS),
        ["marco-rubio", "sergey-lavrov"]
    );
    // Every pair across the table (offices, else the person) has a channel with the meeting.
    for russian in RUSSIANS {
        for american in AMERICANS {
            let key = format!("{russian}+{american}");
            assert_eq!(
                view(&channels, &key).last_contact_by,
                Some(meeting),
                "{key}"
            );
        }
    }
    assert_eq!(
        people(&channels, "kirill-dmitriev+usa.secretary-of-state"),
        ["marco-rubio"],
        "Dmitriev is a party in person; only Rubio spoke through an office"
    );
    assert_eq!(
        people(
            &channels,
            "rus.presidential-aide+usa.national-security-advisor"
        ),
        ["mike-waltz", "yuri-ushakov"]
    );
    // No channel of one side, none of the whole room.
    for view in views(&channels) {
        assert_eq!(view.parties.len(), 2, "{}", view.key);
        assert_ne!(view.parties[0].state, view.parties[1].state, "{}", view.key);
    }
    // Relations count the meeting once for Russia and the US, at the ministers' level.
    let relations: Relations = log.model();
    let record = pair(&relations, "RUS+USA");
    assert_eq!(
        record.all().contacts,
        3,
        "the two founding calls and the meeting"
    );
    assert_eq!(record.all().contacts_by_level.get("MINISTERS"), Some(&2));
    assert_every_batching_agrees(&log.facts);
}

fn register(log: &mut Log, id: &str, kind: &str, name: &str, country: &str) {
    let mut actor = json!({"id": id, "kind": kind, "name": name});
    if kind != "STATE" {
        actor["country"] = json!(country);
    }
    log.push(
        &format!("actor-{id}"),
        json!({"actor_registered": {"actor": actor}}),
    );
}

fn three_states_meeting() -> Value {
    json!({
        "occurred": {"day": "2025-04-01"},
        "sources": [{"source": "rus.mfa"}],
        "meeting_held": {"participants": [
            {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
            {"actor": "yuri-ushakov", "acting_as": "rus.foreign-minister"},
            {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"},
            {"actor": "wang-yi", "acting_as": "chn.foreign-minister"}
        ], "format": "MULTILATERAL", "level": "MINISTERS"}
    })
}

#[test]
fn three_states_meet_pairwise_and_in_their_format() {
    let (mut log, _) = delegations();
    register(&mut log, "CHN", "STATE", "China", "");
    register(
        &mut log,
        "chn.foreign-minister",
        "OFFICE",
        "Minister of Foreign Affairs of China",
        "CHN",
    );
    register(&mut log, "wang-yi", "PERSON", "Wang Yi", "CHN");
    let meeting = log.push("occurrence-2025-04-01-meeting", three_states_meeting());
    let channels: Channels = log.model();
    // Two Russians through one office: the ministers' pair counts once.
    assert_eq!(view(&channels, MINISTERS).contacts, 3);
    for key in [
        "chn.foreign-minister+rus.foreign-minister",
        "chn.foreign-minister+usa.secretary-of-state",
        "CHN+RUS+USA",
    ] {
        let view = view(&channels, key);
        assert_eq!((view.contacts, view.last_contact_by), (1, Some(meeting)));
    }
    assert_eq!(
        people(&channels, "CHN+RUS+USA"),
        ["marco-rubio", "sergey-lavrov", "wang-yi", "yuri-ushakov"]
    );
    let relations: Relations = log.model();
    for key in ["CHN+RUS", "CHN+USA"] {
        assert_eq!(pair(&relations, key).all().contacts, 1, "{key}");
    }
    assert_eq!(pair(&relations, "RUS+USA").all().contacts, 4);

    // The format established between the three states is the same channel.
    log.push(
        "channel-chn-rus-usa",
        json!({"occurred": {"day": "2025-04-02"}, "sources": [{"source": "rus.mfa"}],
               "channel_established": {"parties": ["USA", "RUS", "CHN"], "purpose": "A format"}}),
    );
    let channels: Channels = log.model();
    let format = view(&channels, "CHN+RUS+USA");
    assert_eq!(
        (format.contacts, format.stream_id.as_deref()),
        (1, Some("channel-chn-rus-usa"))
    );
    assert_every_batching_agrees(&log.facts);
}

#[test]
fn a_corrected_then_retracted_delegations_meeting_leaves_every_channel_it_went_through() {
    let (mut log, meeting) = delegations();
    // Dmitriev was not there, and it was the 17th.
    let mut replacement = log
        .facts
        .iter()
        .find(|f| f.event_id == meeting)
        .unwrap()
        .event
        .to_json();
    replacement.as_object_mut().unwrap().remove("sources");
    replacement["occurred"] = json!({"day": "2025-02-17"});
    let participants = replacement["meeting_held"]["participants"]
        .as_array_mut()
        .unwrap();
    participants.retain(|p| p["actor"] != "kirill-dmitriev");
    log.push(
        MEETING_STREAM,
        json!({"event_corrected": {"event": meeting, "replacement": replacement}}),
    );
    let channels: Channels = log.model();
    let ministers = view(&channels, MINISTERS);
    assert_eq!(ministers.contacts, 2, "the replacement counts once");
    assert_eq!(ministers.last_contact_on.unwrap().to_string(), "2025-02-17");
    assert!(
        views(&channels)
            .iter()
            .all(|v| !v.key.contains("kirill-dmitriev")),
        "Dmitriev's channels had no other contact"
    );
    let aides = view(
        &channels,
        "rus.presidential-aide+usa.national-security-advisor",
    );
    assert_eq!(aides.contacts, 1);
    assert_eq!(pair(&log.model::<Relations>(), "RUS+USA").all().contacts, 3);

    log.push(
        MEETING_STREAM,
        json!({"event_retracted": {"event": meeting, "reason": "never happened"}}),
    );
    let channels: Channels = log.model();
    assert_eq!(view(&channels, MINISTERS).contacts, 1);
    let opened_by_it = |v: &ChannelView| {
        RUSSIANS
            .iter()
            .chain(&AMERICANS)
            .any(|party| v.key.contains(party) && v.key != MINISTERS)
    };
    assert!(!views(&channels).iter().any(opened_by_it));
    assert_eq!(pair(&log.model::<Relations>(), "RUS+USA").all().contacts, 2);
    assert_every_batching_agrees(&log.facts);
}

fn holders(channels: &Channels, key: &str) -> Vec<Option<String>> {
    view(channels, key)
        .parties
        .iter()
        .map(|p| p.holder_name.clone())
        .collect()
}

#[test]
fn a_channel_names_its_offices_holders_at_its_last_contact_and_outlives_them() {
    let (mut log, _) = delegations();
    let channels: Channels = log.model();
    let at_riyadh = [Some("Sergey Lavrov".into()), Some("Marco Rubio".into())];
    assert_eq!(holders(&channels, MINISTERS), at_riyadh);
    // Persons in person name no holder; offices without known holders neither.
    let dmitriev = view(&channels, "kirill-dmitriev+usa.secretary-of-state");
    assert_eq!(dmitriev.parties[0].holder, None);

    // A new Secretary of State from 1 March: the channel still names who held the office at
    // its last contact.
    register(&mut log, "john-doe", "PERSON", "John Doe", "USA");
    let change = log.push(
        "actor-usa.secretary-of-state",
        json!({"occurred": {"day": "2025-03-01"},
               "office_holder_changed": {"office": "usa.secretary-of-state", "holder": "john-doe"}}),
    );
    assert_eq!(holders(&log.model(), MINISTERS), at_riyadh);
    // Then the ministers speak again: the same channel, its new holder.
    let call = json!({
        "occurred": {"day": "2025-03-05"},
        "sources": [{"source": "rus.mfa"}],
        "call_held": {"participants": [
            {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
            {"actor": "john-doe", "acting_as": "usa.secretary-of-state"}]}
    });
    log.push("occurrence-2025-03-05-call", call);
    let channels: Channels = log.model();
    assert_eq!(view(&channels, MINISTERS).contacts, 3);
    assert_eq!(
        holders(&channels, MINISTERS),
        [Some("Sergey Lavrov".into()), Some("John Doe".into())]
    );
    assert!(people(&channels, MINISTERS).contains(&"john-doe".to_owned()));

    // The change was in fact on 10 March, after the call: Rubio held the office then.
    log.push(
        "actor-usa.secretary-of-state",
        json!({"event_corrected": {"event": change, "replacement": {"occurred": {"day": "2025-03-10"},
               "office_holder_changed": {"office": "usa.secretary-of-state", "holder": "john-doe"}}}}),
    );
    assert_eq!(holders(&log.model(), MINISTERS), at_riyadh);
    // Retracted: Rubio still.
    log.push(
        "actor-usa.secretary-of-state",
        json!({"event_retracted": {"event": change}}),
    );
    assert_eq!(holders(&log.model(), MINISTERS), at_riyadh);
    assert_every_batching_agrees(&log.facts);
}
