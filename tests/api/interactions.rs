//! The attributes every interaction shares (level, format, place, track, round): recorded on
//! any kind of interaction, read back as written, and refused with the field named where they
//! do not make sense (a round outside a track, a level on a person). Round 0 is proto3's
//! "not given", so over gRPC it cannot be sent; the rules refuse it where JSON can say it.
//! The projections show them: an expert round in a third country, whose level the experts'
//! offices give, in the timeline (gRPC and CLI), the relations and the actor's page.

use diplog::grpc::bridge;
use diplog::proto::{
    self, diplomacy_client::DiplomacyClient, projections_client::ProjectionsClient,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::dashboard::get;
use crate::helpers::{
    TestApp, diplog, import_founding, read_events, record, record_request, shown, spawn_app, text,
    typed_event, violated_fields,
};

/// An interaction of `kind` between the two foreign ministers, in Istanbul, as an expert round.
fn interaction(kind: &str, extra: Value) -> Value {
    let participants = json!([
        {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
        {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}
    ]);
    let mut body = match kind {
        "visit_made" => json!({"visitor": participants[0], "host": "USA"}),
        _ => json!({"participants": participants}),
    };
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    json!({
        "occurred": {"day": "2025-02-27", "time_zone": "Europe/Istanbul"},
        "sources": [{"source": "rus.mfa"}],
        kind: body
    })
}

#[tokio::test]
async fn every_interaction_kind_carries_level_format_place_track_and_round() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let mut client = DiplomacyClient::new(app.channel().await);
    let shared = json!({
        "level": "EXPERTS",
        "place": {"name": "Istanbul", "country": "TUR"},
        "track": "rus-usa-missions",
        "round": 1
    });
    let kinds = [
        ("call_held", json!({"format": "VIDEO"})),
        ("meeting_held", json!({"format": "THIRD_COUNTRY"})),
        ("visit_made", json!({"format": "BILATERAL"})),
        ("negotiation_round_held", json!({"format": "THIRD_COUNTRY"})),
    ];
    for (index, (kind, format)) in kinds.iter().enumerate() {
        let mut extra = shared.clone();
        extra["format"] = format["format"].clone();
        extra["round"] = json!(index + 1);
        if *kind == "visit_made" {
            extra["place"] = json!({"name": "Washington", "country": "USA"});
        }
        let stream = format!("occurrence-2025-02-27-istanbul-{index}");
        let event = typed_event(interaction(kind, extra.clone()));
        client
            .record(record_request(&stream, vec![event]))
            .await
            .unwrap_or_else(|status| panic!("{kind}: {status:?}"));
        let read = read_events(
            &app.channel().await,
            proto::ReadEventsRequest {
                stream_id: stream.clone(),
                ..Default::default()
            },
        )
        .await;
        let written = bridge::event_to_json(read[0].event.as_ref().unwrap());
        for (key, value) in extra.as_object().unwrap() {
            assert_eq!(&written[kind][key], value, "{kind}.{key}: {written}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn attributes_that_make_no_sense_are_refused_naming_the_field() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let before = app.event_count().await;
    let mut client = DiplomacyClient::new(app.channel().await);
    let cases = [
        (
            interaction("call_held", json!({"round": 2})),
            "events[0].call_held.round",
        ),
        (
            interaction("meeting_held", json!({"format": "BILATERAL", "round": 3})),
            "events[0].meeting_held.round",
        ),
        (
            interaction("visit_made", json!({"level": "DEPUTIES", "round": 1})),
            "events[0].visit_made.round",
        ),
    ];
    for (json, field) in cases {
        let status = client
            .record(record_request(
                "occurrence-2025-02-27-bad",
                vec![typed_event(json.clone())],
            ))
            .await
            .expect_err(&format!("refused: {json}"));
        assert_eq!(status.code(), Code::InvalidArgument, "{json}: {status:?}");
        assert!(
            violated_fields(&status).contains(&field.to_owned()),
            "{field} in {status:?}"
        );
    }
    let person = json!({
        "actor_registered": {"actor": {"id": "some-envoy", "kind": "PERSON", "name": "Some Envoy",
                                       "country": "USA", "level": "ENVOYS"}}
    });
    let status = client
        .record(record_request(
            "actor-some-envoy",
            vec![typed_event(person)],
        ))
        .await
        .expect_err("a person has no level");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        violated_fields(&status).contains(&"events[0].actor_registered.actor.level".to_owned()),
        "{status:?}"
    );
    assert_eq!(app.event_count().await, before, "nothing written");
    app.stop().await;
}

/// Registers two expert offices (with their level) and their holders.
async fn register_experts(app: &TestApp) {
    for (office, person, country) in [
        ("rus.mfa-experts", "rus-expert", "RUS"),
        ("usa.state-experts", "usa-expert", "USA"),
    ] {
        record(
            app,
            &format!("actor-{office}"),
            json!({"actor_registered": {"actor": {"id": office, "kind": "OFFICE",
                "name": format!("{country} experts"), "country": country, "level": "EXPERTS"}}}),
        )
        .await;
        record(
            app,
            &format!("actor-{person}"),
            json!({"actor_registered": {"actor": {"id": person, "kind": "PERSON",
                "name": format!("{country} expert"), "country": country}}}),
        )
        .await;
    }
}

fn ro(min_position: u64) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        min_position,
        ..Default::default()
    })
}

#[tokio::test]
async fn an_expert_round_in_a_third_country_shows_in_the_projections() {
    let app = spawn_app().await;
    import_founding(&app).await;
    register_experts(&app).await;
    // No level given: the experts' offices give it.
    let (_, head) = record(
        &app,
        "occurrence-2025-04-10-istanbul",
        json!({
            "occurred": {"day": "2025-04-10", "time_zone": "Europe/Istanbul"},
            "sources": [{"source": "rus.mfa"}],
            "negotiation_round_held": {
                "participants": [{"actor": "rus-expert", "acting_as": "rus.mfa-experts"},
                                 {"actor": "usa-expert", "acting_as": "usa.state-experts"}],
                "track": "rus-usa-missions", "round": 2, "format": "THIRD_COUNTRY",
                "place": {"name": "Istanbul", "country": "TUR"}
            }
        }),
    )
    .await;
    let mut projections = ProjectionsClient::new(app.channel().await);

    let timeline = projections
        .get_timeline(proto::ListRequest {
            read: ro(head),
            actor: "rus-expert".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let [entry] = timeline.entries.as_slice() else {
        panic!("one entry: {timeline:?}");
    };
    assert_eq!(
        (
            entry.level.as_str(),
            entry.level_derived,
            entry.format.as_str()
        ),
        ("EXPERTS", true, "THIRD_COUNTRY")
    );
    assert_eq!((entry.track.as_str(), entry.round), ("rus-usa-missions", 2));
    assert_eq!(entry.place.as_ref().unwrap().name, "Istanbul");

    let relations = projections
        .get_relations(proto::ListRequest {
            read: ro(head),
            state_pair: Some(proto::StatePair {
                a: "RUS".into(),
                b: "USA".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pair = &relations.relations[0];
    // The founding scenario's two calls (leaders, ministers), and the round.
    assert_eq!(pair.contacts, 3);
    assert_eq!(pair.contacts_by_level.get("EXPERTS"), Some(&1), "{pair:?}");
    let last = pair.last_contact.as_ref().expect("a last contact");
    assert_eq!(
        (
            last.kind.as_str(),
            last.level.as_str(),
            last.format.as_str()
        ),
        ("NegotiationRoundHeld", "EXPERTS", "THIRD_COUNTRY")
    );
    assert!(last.level_derived);
    assert_eq!(last.place.as_ref().unwrap().country, "TUR");

    let server = app.server_url();
    let head_text = head.to_string();
    let output = diplog([
        "timeline",
        "rus-expert",
        "--server",
        &server,
        "--min-position",
        &head_text,
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let table = text(&output.stdout);
    for shown in [
        "TRACK/ROUND",
        "EXPERTS*",
        "THIRD_COUNTRY",
        "Istanbul (TUR)",
        "rus-usa-missions #2",
        "* level derived from the participants' offices",
    ] {
        assert!(table.contains(shown), "{shown:?} not in:\n{table}");
    }

    let page = get(
        app.http_addr,
        &format!("/actors/rus-expert?min_position={head}"),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("Experts, third country, Istanbul (Turkey), rus-usa-missions round 2"),
        "{}",
        page.body
    );
    assert!(page.body.contains("level by office"), "{}", page.body);
    let relation = get(
        app.http_addr,
        &format!("/relations/RUS/USA?min_position={head}"),
    )
    .await;
    assert!(
        relation
            .body
            .contains("(Experts, third country, Istanbul (Turkey))"),
        "{}",
        relation.body
    );
    app.stop().await;
}
