//! Typed diplomatic events over gRPC: the founding scenario imported and read back fact by
//! fact; every rule answered with the right status and field, nothing written; corrections
//! that leave the original readable; concurrent writers that cannot both fulfil a commitment.

use std::collections::BTreeSet;

use diplog::domain::diplomacy::{DiplomaticEvent, single_source_claims};
use diplog::grpc::bridge;
use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::{self, diplomacy_client::DiplomacyClient};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::{
    Expect, TestApp, expected, import_founding_report, record_request, spawn_app, typed_event,
    violated_fields,
};

const CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";

async fn diplomacy(app: &TestApp) -> DiplomacyClient<tonic::transport::Channel> {
    DiplomacyClient::new(app.channel().await)
}

async fn read_events(
    app: &TestApp,
    request: proto::ReadEventsRequest,
) -> Vec<proto::DiplomaticRecord> {
    crate::helpers::read_events(&app.channel().await, request).await
}

/// The domain view of a record's event.
fn domain(record: &proto::DiplomaticRecord) -> DiplomaticEvent {
    DiplomaticEvent::from_json(bridge::event_to_json(
        record.event.as_ref().expect("an event"),
    ))
    .expect("a stored event parses")
}

fn kind_of(record: &proto::DiplomaticRecord) -> &'static str {
    domain(record).kind.name()
}

/// Each violation of a FAILED_PRECONDITION answer, as (type, subject).
fn precondition_violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_error_details()
        .precondition_failure()
        .map(|failure| {
            failure
                .violations
                .iter()
                .map(|v| (v.r#type.clone(), v.subject.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn precondition_subjects(status: &tonic::Status) -> Vec<String> {
    precondition_violations(status)
        .into_iter()
        .map(|(_, subject)| subject)
        .collect()
}

fn call_on(stream_day: &str, participants: Value) -> Value {
    json!({
        "occurred": {"day": stream_day},
        "sources": [{"source": "rus.mfa", "language": "ru", "quotes": [{"text": "Состоялся телефонный разговор"}]}],
        "call_held": {"participants": participants}
    })
}

#[tokio::test]
async fn the_founding_scenario_round_trips_with_every_fact_and_both_sources() {
    let app = spawn_app().await;
    let report = import_founding_report(&app).await;
    assert_eq!(report.already_present, 0);
    assert!(report.written >= 30, "{report:?}");

    let all = read_events(&app, proto::ReadEventsRequest::default()).await;
    assert_eq!(all.len(), report.written);
    let kinds: Vec<&str> = all.iter().map(kind_of).collect();

    // Actors and offices, with their holders.
    let actors: BTreeSet<String> = all
        .iter()
        .filter_map(|r| match domain(r).kind {
            diplog::domain::diplomacy::EventKind::ActorRegistered(a) => {
                Some(a.actor.id.to_string())
            }
            _ => None,
        })
        .collect();
    for actor in [
        "RUS",
        "USA",
        "UKR",
        "rus.foreign-minister",
        "usa.secretary-of-state",
        "rus.president",
        "usa.president",
        "ukr.president",
        "sergey-lavrov",
        "marco-rubio",
        "vladimir-putin",
        "donald-trump",
        "volodymyr-zelensky",
        "rus.mfa",
        "usa.state-department",
    ] {
        assert!(actors.contains(actor), "{actor} is registered");
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "OfficeHolderChanged")
            .count(),
        5
    );

    // The call of 15 February: Rubio and Lavrov through their offices, initiated by the US.
    let call_stream: Vec<&proto::DiplomaticRecord> =
        all.iter().filter(|r| r.stream_id == CALL_STREAM).collect();
    let call = domain(call_stream[0]);
    let diplog::domain::diplomacy::EventKind::CallHeld(held) = &call.kind else {
        panic!(
            "the occurrence opens with the call, not {}",
            call.kind.name()
        );
    };
    assert_eq!(
        call.occurred.as_ref().unwrap().to_string(),
        "2025-02-15 (Europe/Moscow)"
    );
    assert_eq!(held.initiator.as_ref().unwrap().as_str(), "USA");
    let who: Vec<(String, String)> = held
        .participants
        .iter()
        .map(|p| {
            (
                p.actor.to_string(),
                p.acting_as.as_ref().unwrap().to_string(),
            )
        })
        .collect();
    assert!(who.contains(&("marco-rubio".into(), "usa.secretary-of-state".into())));
    assert!(who.contains(&("sergey-lavrov".into(), "rus.foreign-minister".into())));
    let coding = call.coding.as_ref().unwrap();
    assert_eq!(
        (
            coding.cameo.as_deref(),
            coding.plover_type.as_deref(),
            coding.plover_mode.as_deref()
        ),
        (Some("041"), Some("CONSULT"), Some("phone"))
    );
    // Both times are kept: when it happened, and when the log recorded it.
    assert!(call_stream[0].recorded_at.is_some());

    // Two sources: the MFA on the call, the State Department attached later (not duplicated).
    assert_eq!(
        kinds.iter().filter(|k| **k == "CallHeld").count(),
        3,
        "three calls, none duplicated"
    );
    let attached: Vec<DiplomaticEvent> = call_stream
        .iter()
        .map(|r| domain(r))
        .filter(|e| e.kind.name() == "SourceReportAttached")
        .collect();
    assert_eq!(attached.len(), 1);
    let mfa = &call.sources[0];
    let state = &attached[0].sources[0];
    assert_eq!(mfa.source.as_str(), "rus.mfa");
    assert_eq!(state.source.as_str(), "usa.state-department");
    assert!(mfa.quotes.iter().any(|q| {
        q.text
            .contains("условились о поддержании канала коммуникации")
    }));
    assert!(
        mfa.quotes
            .iter()
            .any(|q| q.text.contains("встречу экспертов"))
    );
    assert!(mfa.quotes.iter().any(|q| {
        q.text
            .contains("восстановлением взаимоуважительного межгосударственного диалога")
    }));
    assert!(
        state
            .quotes
            .iter()
            .any(|q| q.text.contains("прекращения конфликта в Украине"))
    );
    assert!(
        call_stream
            .iter()
            .position(|r| kind_of(r) == "SourceReportAttached")
            .unwrap()
            > 0
    );

    // Claims only one source makes.
    let single: BTreeSet<(String, String)> = single_source_claims([mfa, state])
        .into_iter()
        .map(|(key, source)| (key.as_str().to_owned(), source.to_string()))
        .collect();
    for (key, source) in [
        ("palestine-and-middle-east", "rus.mfa"),
        ("other-regional-matters", "rus.mfa"),
        ("expert-meeting-on-missions", "rus.mfa"),
        ("prepare-summit", "rus.mfa"),
        ("bilateral-issues", "usa.state-department"),
        (
            "trump-commitment-to-end-ukraine-conflict",
            "usa.state-department",
        ),
    ] {
        assert!(
            single.contains(&(key.to_owned(), source.to_owned())),
            "{key} only from {source}: {single:?}"
        );
    }
    assert!(
        !single
            .iter()
            .any(|(key, _)| key == "ukraine" || key == "follow-up-of-putin-trump-call")
    );

    // What was agreed, and what it opened.
    for kind in [
        "AgreementStated",
        "IntentExpressed",
        "StatementIssued",
        "ChannelEstablished",
        "SummitPreparationAgreed",
        "CommitmentStated",
    ] {
        assert!(kinds.contains(&kind), "{kind} recorded");
    }
    let agreements: BTreeSet<String> = all
        .iter()
        .filter_map(|r| match domain(r).kind {
            diplog::domain::diplomacy::EventKind::AgreementStated(a) => Some(
                serde_json::to_value(a.kind)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            _ => None,
        })
        .collect();
    for kind in [
        "MAINTAIN_CHANNEL",
        "ORGANISE_MEETING",
        "REGULAR_CONTACTS",
        "VISIT_EACH_OTHER",
    ] {
        assert!(agreements.contains(kind), "{kind} agreed: {agreements:?}");
    }
    assert!(
        all.iter()
            .any(|r| r.stream_id == "channel-rus-usa-foreign-ministers")
    );
    assert!(all.iter().any(|r| r.stream_id == "summit-rus-usa-2025"));
    assert!(
        all.iter()
            .any(|r| r.stream_id == "commitment-rus-usa-missions-expert-meeting")
    );

    // The background: Putin-Trump and Trump-Zelensky on 12 February, the first before the second.
    let putin_trump = all
        .iter()
        .position(|r| r.stream_id == "occurrence-2025-02-12-putin-trump-call")
        .unwrap();
    let trump_zelensky = all
        .iter()
        .position(|r| r.stream_id == "occurrence-2025-02-12-trump-zelensky-call")
        .unwrap();
    assert!(putin_trump < trump_zelensky);
    app.stop().await;
}

#[tokio::test]
async fn importing_the_same_scenario_twice_writes_nothing_new() {
    let app = spawn_app().await;
    let first = import_founding_report(&app).await;
    let count = app.event_count().await;
    let second = import_founding_report(&app).await;
    assert_eq!(second.written, 0);
    assert_eq!(second.already_present, first.written);
    assert_eq!(app.event_count().await, count);
    app.stop().await;
}

#[tokio::test]
async fn a_scenario_with_an_error_is_refused_as_a_whole_with_line_and_field() {
    let app = spawn_app().await;
    // The founding scenario with one quote emptied near its end: nothing at all is written.
    let (head, tail) = scenario::FOUNDING_SCENARIO
        .split_once("  - key: agreement-expert-meeting")
        .expect("the scenario has the agreement");
    let tail = tail.replacen(
        "          - text: \"",
        "          - text: \"\"\n          - text: \"",
        1,
    );
    let broken = format!("{head}  - key: agreement-expert-meeting{tail}");
    assert_ne!(broken, scenario::FOUNDING_SCENARIO);
    let parsed = scenario::parse(&broken).expect("still well-formed");
    let error = import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect_err("refused");
    let import::ImportError::Refused(problems) = error else {
        panic!("refused, not {error}")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "sources[0].quotes[0].text");
    let import::Origin::Line(line) = problems[0].origin else {
        panic!()
    };
    assert!(
        broken
            .lines()
            .nth(line as usize - 1)
            .unwrap()
            .contains("- key: agreement-expert-meeting")
    );
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn input_errors_are_invalid_argument_with_the_field_named_and_nothing_written() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let before = app.event_count().await;
    let mut client = diplomacy(&app).await;

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            CALL_STREAM,
            call_on("2025-02-16", json!([{"actor": "sergey-lavrov"}])),
            "events[0].call_held.participants",
        ),
        (
            CALL_STREAM,
            {
                let mut call = call_on(
                    "2025-02-16",
                    json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
                );
                call["call_held"]["initiator"] = json!("vladimir-putin");
                call
            },
            "events[0].call_held.initiator",
        ),
        (
            "channel-rus-usa-foreign-ministers",
            call_on(
                "2025-02-16",
                json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
            ),
            "stream_id",
        ),
        (
            CALL_STREAM,
            call_on(
                "2099-01-01",
                json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
            ),
            "events[0].occurred",
        ),
        (
            CALL_STREAM,
            call_on(
                "1700-01-01",
                json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
            ),
            "events[0].occurred",
        ),
        (
            CALL_STREAM,
            {
                let mut call = call_on(
                    "2025-02-16",
                    json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
                );
                call["sources"][0]["quotes"][0]["text"] = json!("   ");
                call
            },
            "events[0].sources[0].quotes[0].text",
        ),
    ];
    for (stream, json, field) in cases {
        let status = client
            .record(record_request(stream, vec![typed_event(json.clone())]))
            .await
            .expect_err(&format!("refused: {json}"));
        assert_eq!(status.code(), Code::InvalidArgument, "{json}: {status:?}");
        assert!(
            violated_fields(&status).contains(&field.to_owned()),
            "{field} in {status:?}"
        );
    }

    // A malformed value inside an event names its path, too.
    let mut bad_actor = typed_event(call_on(
        "2025-02-16",
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
    ));
    if let Some(proto::diplomatic_event::Kind::CallHeld(call)) = bad_actor.kind.as_mut() {
        call.participants[0].actor = "Sergey Lavrov".into();
    }
    bad_actor.id = "not-a-uuid".into();
    let status = client
        .record(record_request(CALL_STREAM, vec![bad_actor]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = violated_fields(&status);
    assert!(fields.contains(&"events[0].id".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"events[0].call_held.participants[0].actor".to_owned()),
        "{fields:?}"
    );

    assert_eq!(app.event_count().await, before, "nothing written");
    app.stop().await;
}

#[tokio::test]
async fn rules_about_the_log_are_failed_precondition_naming_the_rule_and_the_field() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let before = app.event_count().await;
    let mut client = diplomacy(&app).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let summit_step = |step: &str, body: Value| json!({"occurred": {"day": "2025-02-20"}, "sources": [{"source": "rus.mfa"}], step: body});

    // Each record's stream and events, and each violation as (type, subject), in the order
    // the rules find them.
    type Case = (&'static str, Vec<Value>, Vec<(&'static str, &'static str)>);
    let cases: Vec<Case> = vec![
        (
            CALL_STREAM,
            vec![call_on(
                "2025-02-16",
                json!([{"actor": "sergey-lavrov"}, {"actor": "nobody-known"}]),
            )],
            vec![("UNKNOWN_ACTOR", "events[0].call_held.participants[1].actor")],
        ),
        (
            CALL_STREAM,
            vec![call_on(
                "2025-02-16",
                json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"},
                       {"actor": "USA", "acting_as": "marco-rubio"}]),
            )],
            vec![(
                "WRONG_ACTOR_KIND",
                "events[0].call_held.participants[2].acting_as",
            )],
        ),
        (
            "commitment-nothing-stated",
            vec![
                json!({"occurred": {"day": "2025-02-20"}, "evidence": [], "sources": [{"source": "rus.mfa"}],
                       "commitment_fulfilled": {"fulfilled_by": missing}}),
            ],
            vec![
                (
                    "UNKNOWN_EVENT",
                    "events[0].commitment_fulfilled.fulfilled_by",
                ),
                ("LIFECYCLE_VIOLATION", "events[0].commitment_fulfilled"),
            ],
        ),
        (
            "summit-never-scheduled",
            vec![
                summit_step("summit_proposed", json!({"parties": ["RUS", "USA"]})),
                summit_step("summit_postponed", json!({})),
            ],
            vec![("LIFECYCLE_VIOLATION", "events[1].summit_postponed")],
        ),
        (
            CALL_STREAM,
            vec![json!({"event_retracted": {"event": missing, "reason": "wrong"}})],
            vec![("UNKNOWN_EVENT", "events[0].event_retracted.event")],
        ),
        (
            CALL_STREAM,
            vec![
                json!({"event_corrected": {"event": missing, "replacement": call_on(
                    "2025-02-16",
                    json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
                )}}),
            ],
            vec![("UNKNOWN_EVENT", "events[0].event_corrected.event")],
        ),
    ];
    for (stream, events, expected) in cases {
        let status = client
            .record(record_request(
                stream,
                events.iter().cloned().map(typed_event).collect(),
            ))
            .await
            .expect_err(&format!("refused: {events:?}"));
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{events:?}: {status:?}"
        );
        let violations = precondition_violations(&status);
        let violations: Vec<(&str, &str)> = violations
            .iter()
            .map(|(kind, subject)| (kind.as_str(), subject.as_str()))
            .collect();
        assert_eq!(violations, expected, "{status:?}");
    }
    assert_eq!(app.event_count().await, before, "nothing written");
    app.stop().await;
}

#[tokio::test]
async fn a_correction_points_at_the_original_which_stays_readable() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let mut client = diplomacy(&app).await;
    let original = read_events(
        &app,
        proto::ReadEventsRequest {
            stream_id: CALL_STREAM.into(),
            kinds: vec!["CallHeld".into()],
            ..Default::default()
        },
    )
    .await;
    let original = &original[0];
    let original_id = original.event.as_ref().unwrap().id.clone();

    let mut replacement = bridge::event_to_json(original.event.as_ref().unwrap());
    replacement["occurred"] = json!({"day": "2025-02-14", "time_zone": "Europe/Moscow"});
    let correction = typed_event(json!({
        "occurred": {"day": "2025-02-16"},
        "event_corrected": {"event": original_id, "replacement": replacement, "reason": "a test of corrections"}
    }));
    let response = client
        .record(record_request(CALL_STREAM, vec![correction.clone()]))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.idempotent_replay);

    // The original is untouched and still readable; the correction sits after it.
    let again = client
        .get_event(proto::GetEventRequest {
            event_id: original_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, *original);
    let corrected = client
        .get_event(proto::GetEventRequest {
            event_id: correction.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(corrected.stream_id, CALL_STREAM);
    assert!(corrected.position > original.position);

    // A correction in another stream, or of a different kind, is refused.
    let mut wrong_kind = bridge::event_to_json(original.event.as_ref().unwrap());
    wrong_kind.as_object_mut().unwrap().remove("call_held");
    wrong_kind["channel_closed"] = json!({});
    let status = client
        .record(record_request(
            CALL_STREAM,
            vec![typed_event(
                json!({"event_corrected": {"event": original_id, "replacement": wrong_kind}}),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = client
        .record(record_request(
            "occurrence-elsewhere",
            vec![typed_event(
                json!({"event_retracted": {"event": original_id}}),
            )],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["stream_id"]);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_record_is_answered_idempotently_and_expectations_hold() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let mut client = diplomacy(&app).await;
    let call = typed_event(call_on(
        "2025-02-18",
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
    ));
    let first = client
        .record(record_request(
            "occurrence-2025-02-18-call",
            vec![call.clone()],
        ))
        .await
        .unwrap()
        .into_inner();
    let retry = client
        .record(record_request("occurrence-2025-02-18-call", vec![call]))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.idempotent_replay);
    assert_eq!(retry.positions, first.positions);

    let another = typed_event(call_on(
        "2025-02-19",
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
    ));
    let status = client
        .record(proto::RecordRequest {
            stream_id: "occurrence-2025-02-18-call".into(),
            expected_version: Some(expected(Expect::NoStream)),
            events: vec![another],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    app.stop().await;
}

#[tokio::test]
async fn of_two_concurrent_fulfilments_of_one_commitment_exactly_one_is_recorded() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    // Two expert meetings, each recorded as fulfilling the commitment, raced 10 times over.
    let stream = "commitment-rus-usa-missions-expert-meeting";
    let meeting = |day: &str| {
        json!({
            "occurred": {"day": day},
            "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялась встреча экспертов"}]}],
            "meeting_held": {"participants": [{"actor": "RUS"}, {"actor": "USA"}], "format": "THIRD_COUNTRY", "level": "EXPERTS"}
        })
    };
    let mut client = diplomacy(&app).await;
    let mut meeting_ids = Vec::new();
    for (index, day) in ["2025-02-27", "2025-02-28"].iter().enumerate() {
        let meeting = typed_event(meeting(day));
        meeting_ids.push(meeting.id.clone());
        client
            .record(record_request(
                &format!("occurrence-expert-meeting-{index}"),
                vec![meeting],
            ))
            .await
            .unwrap();
    }
    let fulfil = |meeting_id: &str| {
        typed_event(
            json!({"occurred": {"day": "2025-02-28"}, "evidence": [meeting_id],
                     "commitment_fulfilled": {"fulfilled_by": meeting_id}}),
        )
    };
    let (mut a, mut b) = (diplomacy(&app).await, diplomacy(&app).await);
    let (first, second) = tokio::join!(
        a.record(record_request(stream, vec![fulfil(&meeting_ids[0])])),
        b.record(record_request(stream, vec![fulfil(&meeting_ids[1])])),
    );
    let outcomes = [first.map(|_| ()), second.map(|_| ())];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("already fulfilled"),
        "{refused:?}"
    );

    let history = read_events(
        &app,
        proto::ReadEventsRequest {
            stream_id: stream.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        history.iter().map(kind_of).collect::<Vec<_>>(),
        ["CommitmentStated", "CommitmentFulfilled"]
    );
    app.stop().await;
}

#[tokio::test]
async fn events_are_read_by_kind_actor_stream_and_both_time_axes() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let timestamp = |rfc3339: &str| {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap();
        prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: 0,
        }
    };
    let calls = read_events(
        &app,
        proto::ReadEventsRequest {
            kinds: vec!["CallHeld".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(calls.len(), 3);

    // What happened on 15 February (Moscow), by when it happened, not when it was recorded.
    let on_15th = read_events(
        &app,
        proto::ReadEventsRequest {
            kinds: vec!["CallHeld".into()],
            occurred_from: Some(timestamp("2025-02-15T00:00:00+03:00")),
            occurred_until: Some(timestamp("2025-02-16T00:00:00+03:00")),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(on_15th.len(), 1);
    assert_eq!(on_15th[0].stream_id, CALL_STREAM);
    let before_13th = read_events(
        &app,
        proto::ReadEventsRequest {
            kinds: vec!["CallHeld".into()],
            occurred_until: Some(timestamp("2025-02-13T00:00:00Z")),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(before_13th.len(), 2, "the two calls of 12 February");

    let zelensky = read_events(
        &app,
        proto::ReadEventsRequest {
            actor: "volodymyr-zelensky".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        zelensky
            .iter()
            .any(|r| r.stream_id == "occurrence-2025-02-12-trump-zelensky-call")
    );
    assert!(zelensky.iter().all(|r| r.stream_id != CALL_STREAM));

    let commitments = read_events(
        &app,
        proto::ReadEventsRequest {
            stream_prefix: "commitment-".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(commitments.len(), 1);

    let recorded_later = read_events(
        &app,
        proto::ReadEventsRequest {
            recorded_from: Some(timestamp("2999-01-01T00:00:00Z")),
            ..Default::default()
        },
    )
    .await;
    assert!(recorded_later.is_empty());

    let after = read_events(
        &app,
        proto::ReadEventsRequest {
            after_position: calls[0].position,
            limit: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].position, calls[0].position + 1);

    let status = diplomacy(&app)
        .await
        .read_events(proto::ReadEventsRequest {
            kinds: vec!["Nonsense".into()],
            actor: "Not An Actor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["kinds[0]", "actor"]);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_event_id_is_not_found_and_a_generic_event_is_not_a_diplomatic_one() {
    let app = spawn_app().await;
    let mut client = diplomacy(&app).await;
    let status = client
        .get_event(proto::GetEventRequest {
            event_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_event(proto::GetEventRequest {
            event_id: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["event_id"]);
    app.stop().await;
}

#[tokio::test]
async fn a_generic_append_cannot_pose_as_a_diplomatic_event() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    // The generic log accepts any type name, but the recorder's marker is the server's alone.
    let mut forged = crate::helpers::new_event(
        "ActorRegistered",
        r#"{"actor_registered": {"actor": {"id": "fake-minister", "kind": "PERSON", "name": "Fake"}}}"#,
    );
    forged.metadata = Some(proto::Metadata {
        values: [(
            "diplog.schema".to_owned(),
            "diplog.v1.DiplomaticEvent".to_owned(),
        )]
        .into(),
        ..Default::default()
    });
    let status = app
        .client
        .clone()
        .append(crate::helpers::append_request(
            "actor-fake-minister",
            Expect::Any,
            vec![forged.clone()],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [r#"events[0].metadata["diplog.schema"]"#]
    );

    // Without the marker it is written, but as a generic event: it registers no actor and is
    // not read as a typed event.
    forged.metadata = None;
    app.client
        .clone()
        .append(crate::helpers::append_request(
            "actor-fake-minister",
            Expect::Any,
            vec![forged],
        ))
        .await
        .expect("a generic event is appended");
    let status = diplomacy(&app)
        .await
        .record(record_request(
            CALL_STREAM,
            vec![typed_event(call_on(
                "2025-02-16",
                json!([{"actor": "sergey-lavrov"}, {"actor": "fake-minister"}]),
            ))],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        precondition_subjects(&status),
        ["events[0].call_held.participants[1].actor"]
    );
    let typed = read_events(
        &app,
        proto::ReadEventsRequest {
            stream_id: "actor-fake-minister".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(typed.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_record_that_repeats_an_event_id_is_refused_at_the_repeat() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let before = app.event_count().await;
    let call = typed_event(call_on(
        "2025-02-16",
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
    ));
    let status = diplomacy(&app)
        .await
        .record(record_request(
            "occurrence-repeat",
            vec![call.clone(), call],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["events[1].id"]);
    let status = diplomacy(&app)
        .await
        .record(record_request("occurrence-empty", vec![]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["events"]);
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}

/// Event ids in other forms than the hyphenated one are refused wherever they come in; and
/// `kinds` is held to 64 entries, as `ReadAll`'s type filter is.
#[tokio::test]
async fn event_ids_in_other_forms_and_too_many_kinds_are_refused() {
    let app = spawn_app().await;
    let mut client = diplomacy(&app).await;
    let id = uuid::Uuid::now_v7();
    for raw in [
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
    ] {
        let status = client
            .get_event(proto::GetEventRequest {
                event_id: raw.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{raw}: {status:?}");
        assert_eq!(violated_fields(&status), ["event_id"]);

        let mut retraction = typed_event(json!({"event_retracted": {"event": id.to_string()}}));
        retraction.id = raw.clone();
        let status = client
            .record(record_request("occurrence-ids", vec![retraction]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{raw}: {status:?}");
        assert_eq!(violated_fields(&status), ["events[0].id"]);

        let retraction = typed_event(json!({"event_retracted": {"event": raw}}));
        let status = client
            .record(record_request("occurrence-ids", vec![retraction]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            violated_fields(&status),
            ["events[0].event_retracted.event"]
        );
    }

    let status = client
        .read_events(proto::ReadEventsRequest {
            kinds: vec!["CallHeld".to_owned(); 65],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["kinds"]);
    assert!(
        client
            .read_events(proto::ReadEventsRequest {
                kinds: vec!["CallHeld".to_owned(); 64],
                ..Default::default()
            })
            .await
            .is_ok()
    );
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

/// A record's payload is made by the server from typed fields, so of what jsonb refuses only
/// U+0000 in a string can reach it (protobuf strings are UTF-8, so no half surrogate pairs;
/// numbers are small integers; the nesting is the schema's): it is refused naming the event.
#[tokio::test]
async fn a_record_with_u0000_in_a_string_is_invalid_argument_naming_the_event() {
    let app = spawn_app().await;
    import_founding_report(&app).await;
    let before = app.event_count().await;
    let mut call = call_on(
        "2025-02-16",
        json!([{"actor": "sergey-lavrov"}, {"actor": "marco-rubio"}]),
    );
    call["sources"][0]["quotes"][0]["text"] = json!("Состоялся\u{0}разговор");
    let status = diplomacy(&app)
        .await
        .record(record_request(CALL_STREAM, vec![typed_event(call)]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["events[0]"]);
    assert!(status.message().contains("U+0000"), "{}", status.message());
    assert_eq!(app.event_count().await, before);
    app.stop().await;
}
