//! The attributes every interaction shares (level, format, place, track, round): recorded on
//! any kind of interaction, read back as written, and refused with the field named where they
//! do not make sense (a round outside a track, a level on a person). Round 0 is proto3's
//! "not given", so over gRPC it cannot be sent; the rules refuse it where JSON can say it.

use diplog::grpc::bridge;
use diplog::proto::{self, diplomacy_client::DiplomacyClient};
use serde_json::{Value, json};
use tonic::Code;

use crate::helpers::{
    import_founding, read_events, record_request, spawn_app, typed_event, violated_fields,
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
    app.stop().await;
}
