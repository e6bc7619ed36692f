//! The summits projection over gRPC, fed through `Diplomacy.Record`: a summit proposed for a
//! place and a period shows them while it is prepared, and keeps them once cancelled; a
//! schedule shows its date and place instead.

use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::{Value, json};

use crate::helpers::{TestApp, import_founding, record, spawn_app};

const GENEVA: &str = "summit-rus-usa-geneva";
const VIENNA: &str = "summit-rus-usa-vienna";

fn step(day: &str, kind: &str, body: Value) -> Value {
    json!({"occurred": {"day": day}, "sources": [{"source": "rus.mfa"}], kind: body})
}

fn proposed_for_geneva_in_the_spring() -> Value {
    step(
        "2025-03-10",
        "summit_proposed",
        json!({"parties": ["RUS", "USA"], "proposed_by": "USA",
               "place": {"name": "Geneva", "country": "CHE"},
               "expected": {"month": "2025-05"}, "expected_text": "in the spring"}),
    )
}

/// The summits answered for `request` once the projection reflects `position`.
async fn summits(app: &TestApp, position: u64, request: proto::ListRequest) -> Vec<proto::Summit> {
    ProjectionsClient::new(app.channel().await)
        .list_summits(proto::ListRequest {
            read: Some(proto::ReadOptions {
                min_position: position,
                ..Default::default()
            }),
            ..request
        })
        .await
        .expect("summits answered")
        .into_inner()
        .summits
}

fn find<'a>(summits: &'a [proto::Summit], key: &str) -> Option<&'a proto::Summit> {
    summits.iter().find(|s| s.key == key)
}

fn date_of(time: &Option<proto::FuzzyTime>) -> Option<String> {
    use proto::fuzzy_time::Precision;
    match time.as_ref()?.precision.as_ref()? {
        Precision::Month(text) | Precision::Day(text) => Some(text.clone()),
        Precision::Instant(_) => None,
    }
}

fn place_name(place: &Option<proto::Place>) -> Option<&str> {
    place.as_ref().map(|p| p.name.as_str())
}

#[tokio::test]
async fn a_summit_proposed_for_geneva_in_the_spring_shows_them_until_it_is_cancelled() {
    let app = spawn_app().await;
    import_founding(&app).await;
    record(&app, GENEVA, proposed_for_geneva_in_the_spring()).await;
    let (_, position) = record(
        &app,
        GENEVA,
        step(
            "2025-03-20",
            "summit_preparation_agreed",
            json!({"expected_text": "in the spring, before the summer holidays"}),
        ),
    )
    .await;

    let pending_only = proto::ListRequest {
        pending_only: true,
        ..Default::default()
    };
    let pending = summits(&app, position, pending_only.clone()).await;
    let summit = find(&pending, GENEVA).expect("pending while prepared");
    assert_eq!(
        (summit.stage.as_str(), summit.pending),
        ("PREPARATION_AGREED", true)
    );
    assert_eq!(place_name(&summit.proposed_place), Some("Geneva"));
    assert_eq!(summit.proposed_place.as_ref().unwrap().country, "CHE");
    // The preparation gave the period only in words, which replaces the proposal's.
    assert_eq!(date_of(&summit.expected), None);
    assert_eq!(
        summit.expected_text,
        "in the spring, before the summer holidays"
    );
    assert_eq!((&summit.scheduled_for, &summit.place), (&None, &None));
    // The dashboard's summit table too.
    let page =
        crate::dashboard::get(app.http_addr, &format!("/summits?min_position={position}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [
        "expected “in the spring, before the summer holidays”",
        "proposed: Geneva, Switzerland",
    ] {
        assert!(page.body.contains(shown), "{shown:?} not in {}", page.body);
    }

    let (_, position) = record(
        &app,
        GENEVA,
        step(
            "2025-04-15",
            "summit_cancelled",
            json!({"reason": "no agreement on the agenda"}),
        ),
    )
    .await;
    let pending = summits(&app, position, pending_only).await;
    assert!(find(&pending, GENEVA).is_none(), "{pending:?}");
    for request in [
        proto::ListRequest::default(),
        proto::ListRequest {
            status: vec!["CANCELLED".into()],
            ..Default::default()
        },
    ] {
        let all = summits(&app, position, request).await;
        let summit = find(&all, GENEVA).expect("listed with the others");
        assert_eq!(
            (summit.stage.as_str(), summit.pending),
            ("CANCELLED", false)
        );
        assert_eq!(place_name(&summit.proposed_place), Some("Geneva"));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_summit_proposed_then_scheduled_shows_the_scheduled_date_and_place() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let (_, position) = record(&app, VIENNA, proposed_for_geneva_in_the_spring()).await;
    let listed = summits(&app, position, proto::ListRequest::default()).await;
    let summit = find(&listed, VIENNA).expect("proposed");
    assert_eq!(date_of(&summit.expected).as_deref(), Some("2025-05"));
    assert_eq!(summit.expected_text, "in the spring");

    let (_, position) = record(
        &app,
        VIENNA,
        step(
            "2025-04-01",
            "summit_scheduled",
            json!({"date": {"day": "2025-05-20"}, "place": {"name": "Vienna", "country": "AUT"}}),
        ),
    )
    .await;
    let listed = summits(&app, position, proto::ListRequest::default()).await;
    let summit = find(&listed, VIENNA).expect("scheduled");
    assert_eq!(summit.stage, "SCHEDULED");
    assert_eq!(
        date_of(&summit.scheduled_for).as_deref(),
        Some("2025-05-20")
    );
    assert_eq!(place_name(&summit.place), Some("Vienna"));
    assert_eq!(
        (
            &summit.proposed_place,
            &summit.expected,
            summit.expected_text.as_str()
        ),
        (&None, &None, "")
    );
    app.stop().await;
}
