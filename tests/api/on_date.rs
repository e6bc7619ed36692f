//! The second time axis through the API: the state of affairs on a day (`ReadOptions.on_day`,
//! the CLI's `--on`, the dashboard's `?on=`), alone and with `as_of`, on the founding report
//! (the Putin–Trump call of 12 February 2025, the Lavrov–Rubio call of the 15th) and a
//! correction of the 15th call's date.

use diplog::grpc::bridge;
use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::json;
use tonic::Code;

use crate::helpers::{
    TestApp, diplog, import_founding, read_events, record, shown, spawn_app, text, violated_fields,
};

const CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";
/// Established on the 15th by the agreement to maintain it, not only by the call.
const MINISTERS: &str = "rus.foreign-minister+usa.secretary-of-state";
const PRESIDENTS: &str = "rus.president+usa.president";

fn on(day: &str) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        on_day: day.to_owned(),
        ..Default::default()
    })
}

async fn channel_keys(app: &TestApp, read: Option<proto::ReadOptions>) -> Vec<String> {
    let mut projections = ProjectionsClient::new(app.channel().await);
    let answer = projections
        .list_channels(proto::ListRequest {
            read,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    answer.channels.into_iter().map(|c| c.key).collect()
}

#[tokio::test]
async fn each_projection_answers_on_a_day_with_what_had_happened_by_its_end() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = ProjectionsClient::new(app.channel().await);

    assert!(channel_keys(&app, on("2025-02-11")).await.is_empty());
    let on_12th = channel_keys(&app, on("2025-02-12")).await;
    assert!(on_12th.contains(&PRESIDENTS.to_owned()), "{on_12th:?}");
    assert!(!on_12th.contains(&MINISTERS.to_owned()), "{on_12th:?}");
    let on_15th = channel_keys(&app, on("2025-02-15")).await;
    assert!(on_15th.contains(&MINISTERS.to_owned()), "{on_15th:?}");

    // The answer reflects the log now, and is about the end of that day.
    let answer = projections
        .list_commitments(proto::ListRequest {
            read: on("2025-02-14"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.commitments.is_empty(), "{answer:?}");
    let info = answer.info.unwrap();
    assert_eq!(info.position, head);
    let reference = info.reference_time.unwrap();
    assert!(
        reference.seconds > 1_739_491_200 && reference.seconds < 1_739_664_000,
        "the end of 14 February, not now: {reference:?}"
    );
    let later = projections
        .list_commitments(proto::ListRequest {
            read: on("2025-02-15"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!later.commitments.is_empty());

    let summits = |day: &str| proto::ListRequest {
        read: on(day),
        pending_only: true,
        ..Default::default()
    };
    assert!(
        projections
            .list_summits(summits("2025-02-14"))
            .await
            .unwrap()
            .into_inner()
            .summits
            .is_empty()
    );
    assert!(
        !projections
            .list_summits(summits("2025-02-15"))
            .await
            .unwrap()
            .into_inner()
            .summits
            .is_empty()
    );

    let lavrov = |day: &str| proto::ListRequest {
        read: on(day),
        actor: "sergey-lavrov".into(),
        ..Default::default()
    };
    assert!(
        projections
            .get_timeline(lavrov("2025-02-14"))
            .await
            .unwrap()
            .into_inner()
            .entries
            .is_empty()
    );
    assert_eq!(
        projections
            .get_timeline(lavrov("2025-02-15"))
            .await
            .unwrap()
            .into_inner()
            .entries
            .len(),
        1
    );

    let pair = |day: &str| proto::ListRequest {
        read: on(day),
        state_pair: Some(proto::StatePair {
            a: "RUS".into(),
            b: "USA".into(),
        }),
        ..Default::default()
    };
    let on_12th = projections
        .get_relations(pair("2025-02-12"))
        .await
        .unwrap()
        .into_inner();
    let on_15th = projections
        .get_relations(pair("2025-02-15"))
        .await
        .unwrap()
        .into_inner();
    assert!(on_12th.relations[0].contacts < on_15th.relations[0].contacts);

    for bad in ["2025-02-30", "15.02.2025", "yesterday"] {
        let status = projections
            .list_channels(proto::ListRequest {
                read: on(bad),
                ..Default::default()
            })
            .await
            .expect_err(bad);
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}: {status:?}");
        assert_eq!(violated_fields(&status), ["read.on_day"], "{bad}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_corrected_date_is_seen_on_both_axes() {
    let app = spawn_app().await;
    let before_correction = import_founding(&app).await;
    let original = read_events(
        &app.channel().await,
        proto::ReadEventsRequest {
            stream_id: CALL_STREAM.into(),
            kinds: vec!["CallHeld".into()],
            ..Default::default()
        },
    )
    .await;
    let original = original[0].event.as_ref().unwrap();
    let mut replacement = bridge::event_to_json(original);
    replacement["occurred"] = json!({"day": "2025-02-20", "time_zone": "Europe/Moscow"});
    record(
        &app,
        CALL_STREAM,
        json!({
            "occurred": {"day": "2025-02-21"},
            "event_corrected": {"event": original.id, "replacement": replacement, "reason": "the call was on the 20th"}
        }),
    )
    .await;

    // As known now: the ministers had not spoken by the 15th, and had by the 20th.
    let lavrov = |read: Option<proto::ReadOptions>| proto::ListRequest {
        read,
        actor: "sergey-lavrov".into(),
        ..Default::default()
    };
    let mut projections = ProjectionsClient::new(app.channel().await);
    let mut calls = async |read| {
        projections
            .get_timeline(lavrov(read))
            .await
            .unwrap()
            .into_inner()
            .entries
            .len()
    };
    assert_eq!(calls(on("2025-02-15")).await, 0);
    assert_eq!(calls(on("2025-02-20")).await, 1);
    // As known before the correction was recorded: they had, on the 15th.
    let then = Some(proto::ReadOptions {
        as_of: Some(proto::read_options::AsOf::AsOfPosition(before_correction)),
        on_day: "2025-02-15".into(),
        ..Default::default()
    });
    assert_eq!(calls(then).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_cli_answers_on_a_day() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let server = app.server_url();
    let ask = |day: &'static str| {
        let server = server.clone();
        async move { diplog(["channels", "--on", day, "--server", &server]).await }
    };
    let early = ask("2025-02-12").await;
    assert!(early.status.success(), "{}", shown(&early));
    let out = text(&early.stdout);
    assert!(
        out.starts_with(&format!(
            "On 2025-02-12, as the log knows it at position {head}"
        )),
        "{out}"
    );
    assert!(out.contains("President of Russia"), "{out}");
    assert!(
        !out.contains("Minister of Foreign Affairs of Russia"),
        "{out}"
    );
    let bad = ask("2025-13-01").await;
    assert_eq!(bad.status.code(), Some(2), "{}", shown(&bad));
    assert!(text(&bad.stderr).contains("2025-13-01"), "{}", shown(&bad));
    app.stop().await;
}

#[tokio::test]
async fn a_corrected_round_date_is_seen_on_both_axes() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let stream = "occurrence-2025-03-10-istanbul-round";
    let round = json!({
        "occurred": {"day": "2025-03-10", "time_zone": "Europe/Istanbul"},
        "sources": [{"source": "rus.mfa"}],
        "negotiation_round_held": {
            "participants": [
                {"actor": "sergey-lavrov", "acting_as": "rus.foreign-minister"},
                {"actor": "marco-rubio", "acting_as": "usa.secretary-of-state"}
            ],
            "track": "rus-usa-missions", "round": 2, "level": "EXPERTS", "format": "THIRD_COUNTRY",
            "place": {"name": "Istanbul"}
        }
    });
    let (id, before_correction) = record(&app, stream, round.clone()).await;
    let mut replacement = round.clone();
    replacement["occurred"] = json!({"day": "2025-03-20", "time_zone": "Europe/Istanbul"});
    record(
        &app,
        stream,
        json!({
            "occurred": {"day": "2025-03-21"},
            "sources": [{"source": "rus.mfa"}],
            "event_corrected": {"event": id, "replacement": replacement, "reason": "held on the 20th"}
        }),
    )
    .await;

    let mut projections = ProjectionsClient::new(app.channel().await);
    let mut rounds = async |read: Option<proto::ReadOptions>| -> Vec<u32> {
        projections
            .get_timeline(proto::ListRequest {
                read,
                actor: "sergey-lavrov".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .into_iter()
            .filter(|entry| entry.kind == "NegotiationRoundHeld")
            .map(|entry| entry.round)
            .collect()
    };
    // As known now: not yet held on the 15th, held by the 20th.
    assert!(rounds(on("2025-03-15")).await.is_empty());
    assert_eq!(rounds(on("2025-03-20")).await, [2]);
    // As known before the correction: held by the 15th (on the 10th).
    let then = Some(proto::ReadOptions {
        as_of: Some(proto::read_options::AsOf::AsOfPosition(before_correction)),
        on_day: "2025-03-15".into(),
        ..Default::default()
    });
    assert_eq!(rounds(then).await, [2]);
    app.stop().await;
}
