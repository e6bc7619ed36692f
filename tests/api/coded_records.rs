//! Coded records (`CodedEventReported`, here from PLOVER records) in the projections, through
//! the real server: a small fixture of PLOVER records imported by the real CLI, then the
//! timelines of sources and targets, the relations of each pair (by PLOVER type and quad
//! class), the readouts/coded/both filter in gRPC, the CLI and the dashboard; channels only
//! between offices or people; and a coded record cannot fulfil a commitment.

use std::time::Duration;

use diplog::proto::{self, projections_client::ProjectionsClient};
use serde_json::json;

use crate::dashboard::get;
use crate::helpers::{
    TestApp, diplog, head, import_founding, live, record, record_events, shown, spawn_app, text,
    typed_event, within,
};

const FIXTURE: &str = "tests/fixtures/plover-coded.json";
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

async fn client(app: &TestApp) -> ProjectionsClient<tonic::transport::Channel> {
    ProjectionsClient::new(app.channel().await)
}

async fn timeline(
    app: &TestApp,
    actor: &str,
    records: proto::Records,
) -> Vec<proto::TimelineEntry> {
    client(app)
        .await
        .get_timeline(proto::ListRequest {
            read: live(head(app).await),
            actor: actor.to_owned(),
            records: records.into(),
            ..Default::default()
        })
        .await
        .expect("a timeline")
        .into_inner()
        .entries
}

async fn relations(
    app: &TestApp,
    a: &str,
    b: &str,
    records: proto::Records,
) -> Result<proto::Relations, tonic::Status> {
    let answer = client(app)
        .await
        .get_relations(proto::ListRequest {
            read: live(head(app).await),
            state_pair: Some(proto::StatePair {
                a: a.to_owned(),
                b: b.to_owned(),
            }),
            records: records.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(answer.relations.into_iter().next().expect("one pair"))
}

/// Runs the CLI against the app, waiting for its head; answers stdout.
async fn cli(app: &TestApp, args: &[&str]) -> String {
    let server = app.server_url();
    let position = head(app).await.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", &server, "--min-position", &position]);
    let output = diplog(&all).await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    text(&output.stdout)
}

#[tokio::test]
async fn imported_plover_records_are_on_timelines_and_in_relations_and_filtered_apart() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let server = app.server_url();
        let import = diplog(["import", "--format", "plover", FIXTURE, "--server", &server]).await;
        assert_eq!(import.status.code(), Some(0), "{}", shown(&import));
        assert!(
            text(&import.stdout).contains("4 record(s) imported, 0 reported"),
            "{}",
            shown(&import)
        );

        // Timelines of sources and targets: Israel is in all four, Egypt in two.
        let israel = timeline(&app, "ISR", proto::Records::Both).await;
        assert_eq!(israel.len(), 4, "{israel:#?}");
        assert!(israel.iter().all(|e| e.kind == "CodedEventReported"));
        let consult = &israel[0];
        let coded = consult.coded.as_ref().expect("a coded record");
        assert_eq!(
            (
                coded.plover_type.as_str(),
                coded.mode.as_str(),
                coded.quad_class.as_str()
            ),
            ("CONSULT", "phone", "VERBAL_COOPERATION")
        );
        assert_eq!(coded.location, "Cairo (country code: EG)");
        assert_eq!(coded.publication, "plover.diplog-coded-fixture");
        assert_eq!(crate::helpers::day(&consult.occurred), "2024-05-02");
        let roles: Vec<(&str, &str)> = consult
            .participants
            .iter()
            .map(|p| (p.actor.as_str(), p.role.as_str()))
            .collect();
        assert_eq!(roles, [("ISR", "SOURCE"), ("EGY", "TARGET")]);
        assert_eq!(timeline(&app, "EGY", proto::Records::Both).await.len(), 2);
        assert_eq!(timeline(&app, "ISR", proto::Records::Coded).await.len(), 4);
        assert!(
            timeline(&app, "ISR", proto::Records::Readouts)
                .await
                .is_empty()
        );

        // Relations of each pair of a source's state and a target's state.
        let egypt = relations(&app, "EGY", "ISR", proto::Records::Both)
            .await
            .expect("Egypt and Israel have relations");
        assert_eq!((egypt.contacts, egypt.coded_contacts), (2, 2));
        assert_eq!(egypt.contacts_by_plover_type.get("CONSULT"), Some(&1));
        assert_eq!(egypt.contacts_by_plover_type.get("AGREE"), Some(&1));
        assert_eq!(
            egypt.contacts_by_quad_class.get("VERBAL_COOPERATION"),
            Some(&2)
        );
        let last = egypt.last_contact.as_ref().expect("a last contact");
        assert!(last.coded);
        assert_eq!(last.plover_type, "AGREE");
        let iran = relations(&app, "IRN", "ISR", proto::Records::Coded)
            .await
            .expect("Iran and Israel");
        assert_eq!(iran.contacts_by_quad_class.get("VERBAL_CONFLICT"), Some(&1));
        let aid = relations(&app, "ISR", "USA", proto::Records::Both)
            .await
            .unwrap();
        assert_eq!(
            aid.contacts_by_quad_class.get("MATERIAL_COOPERATION"),
            Some(&1)
        );
        let readouts_only = relations(&app, "EGY", "ISR", proto::Records::Readouts)
            .await
            .expect_err("no readouts between Egypt and Israel");
        assert_eq!(readouts_only.code(), tonic::Code::NotFound);
        let listed = client(&app)
            .await
            .list_relations(proto::ListRequest {
                records: proto::Records::Coded.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.relations.len(), 3, "EGY+ISR, IRN+ISR, ISR+USA");
        let bad = client(&app)
            .await
            .get_timeline(proto::ListRequest {
                actor: "ISR".into(),
                records: 7,
                ..Default::default()
            })
            .await
            .expect_err("an unknown records value");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert!(bad.message().contains("records"), "{}", bad.message());

        // Search, by records.
        let search = |records: proto::Records, kinds: Vec<String>| {
            let app = &app;
            async move {
                let position = head(app).await;
                client(app)
                    .await
                    .search(proto::SearchRequest {
                        query: "crossing".into(),
                        kinds,
                        read: live(position),
                        records: records.into(),
                        ..Default::default()
                    })
                    .await
            }
        };
        let coded_hits = search(proto::Records::Coded, vec![])
            .await
            .unwrap()
            .into_inner();
        assert!(!coded_hits.hits.is_empty());
        assert!(
            coded_hits
                .hits
                .iter()
                .all(|h| h.kind == "CodedEventReported")
        );
        let readout_hits = search(proto::Records::Readouts, vec![]).await.unwrap();
        assert!(readout_hits.into_inner().hits.is_empty());
        let contradiction = search(proto::Records::Coded, vec!["CallHeld".into()])
            .await
            .expect_err("no call is a coded record");
        assert_eq!(contradiction.code(), tonic::Code::InvalidArgument);
        assert!(
            contradiction.message().contains("records"),
            "{}",
            contradiction.message()
        );

        // The CLI.
        let searched = cli(&app, &["search", "crossing", "--records", "coded"]).await;
        assert!(searched.contains("CodedEventReported"), "{searched}");
        let coded_timeline = cli(&app, &["timeline", "ISR", "--records", "coded"]).await;
        assert!(
            coded_timeline.contains("CONSULT phone (VERBAL_COOPERATION)")
                && coded_timeline.contains("(source)")
                && coded_timeline.contains("Cairo"),
            "{coded_timeline}"
        );
        let readouts_timeline = cli(&app, &["timeline", "ISR", "--records", "readouts"]).await;
        assert!(
            readouts_timeline.contains("No interactions."),
            "{readouts_timeline}"
        );
        let pair = cli(&app, &["relations", "EGY", "ISR"]).await;
        assert!(
            pair.contains("Contacts: 2 (2 coded records)")
                && pair.contains("By quad class:")
                && pair.contains("VERBAL_COOPERATION: 2")
                && pair.contains("AGREE: 1"),
            "{pair}"
        );
        let bad = diplog([
            "timeline",
            "ISR",
            "--records",
            "rumours",
            "--server",
            &server,
        ])
        .await;
        assert_eq!(bad.status.code(), Some(2), "{}", shown(&bad));

        // The dashboard.
        let addr = app.http_addr;
        let page = get(addr, "/actors/ISR").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            !page.body.contains("No interactions recorded."),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("Consult, Phone, Verbal cooperation"),
            "{}",
            page.body
        );
        assert!(page.body.contains("name=\"records\""), "{}", page.body);
        let readouts = get(addr, "/actors/ISR?records=readouts").await;
        assert!(
            readouts.body.contains("No interactions recorded."),
            "{}",
            readouts.body
        );
        assert!(
            readouts
                .body
                .contains("<option value=\"readouts\" selected>"),
            "{}",
            readouts.body
        );
        let pair_page = get(addr, "/relations/EGY/ISR?records=coded").await;
        assert_eq!(pair_page.status, 200, "{}", pair_page.body);
        assert!(
            pair_page.body.contains("By quad class")
                && pair_page.body.contains("Verbal cooperation: 2"),
            "{}",
            pair_page.body
        );
        let list_page = get(addr, "/relations?records=coded").await;
        assert!(
            list_page.body.contains("/relations/EGY/ISR"),
            "{}",
            list_page.body
        );
        let searched = get(addr, "/search?q=crossing&records=readouts").await;
        assert!(
            searched.body.contains("Nothing found."),
            "{}",
            searched.body
        );
        let searched = get(addr, "/search?q=crossing&records=coded").await;
        assert!(
            !searched.body.contains("Nothing found."),
            "{}",
            searched.body
        );
        let bad_page = get(addr, "/actors/ISR?records=rumours").await;
        assert_eq!(bad_page.status, 400);
        assert!(bad_page.body.contains("records"), "{}", bad_page.body);
        app.stop().await;
    })
    .await;
}

const MINISTERS: &str = "rus.foreign-minister+usa.secretary-of-state";

async fn channel_contacts(app: &TestApp, key: &str) -> Option<u32> {
    let channels = client(app)
        .await
        .list_channels(proto::ListRequest {
            read: live(head(app).await),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .channels;
    channels.iter().find(|c| c.key == key).map(|c| c.contacts)
}

fn coded_record(sources: &[&str], targets: &[&str], plover_type: &str) -> serde_json::Value {
    let actors = |ids: &[&str]| -> Vec<serde_json::Value> {
        ids.iter().map(|id| json!({"actor": id})).collect()
    };
    json!({
        "occurred": {"day": "2025-02-20"},
        "coding": {"plover_type": plover_type},
        "sources": [{"source": "rus.mfa"}],
        "coded_event_reported": {"sources": actors(sources), "targets": actors(targets)},
    })
}

#[tokio::test]
async fn a_coded_record_is_a_channel_contact_only_between_offices_or_people_and_fulfils_nothing() {
    let app = spawn_app().await;
    import_founding(&app).await;
    let before = channel_contacts(&app, MINISTERS)
        .await
        .expect("the ministers' channel");
    let channels_before = client(&app)
        .await
        .list_channels(proto::ListRequest {
            read: live(head(&app).await),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .channels
        .len();

    let (coded, _) = record(
        &app,
        "occurrence-coded-ministers",
        coded_record(
            &["rus.foreign-minister"],
            &["usa.secretary-of-state"],
            "CONSULT",
        ),
    )
    .await;
    assert_eq!(channel_contacts(&app, MINISTERS).await, Some(before + 1));
    record(
        &app,
        "occurrence-coded-states",
        coded_record(&["RUS"], &["USA"], "SANCTION"),
    )
    .await;
    let channels_after = client(&app)
        .await
        .list_channels(proto::ListRequest {
            read: live(head(&app).await),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .channels
        .len();
    assert_eq!(channels_after, channels_before, "states name no channel");
    let both = relations(&app, "RUS", "USA", proto::Records::Both)
        .await
        .unwrap();
    let readouts = relations(&app, "RUS", "USA", proto::Records::Readouts)
        .await
        .unwrap();
    assert_eq!(both.contacts, readouts.contacts + 2);
    assert_eq!(both.coded_contacts, 2);
    assert_eq!(
        both.contacts_by_quad_class.get("MATERIAL_CONFLICT"),
        Some(&1)
    );
    assert!(!readouts.open_channels.is_empty());
    let coded_only = relations(&app, "RUS", "USA", proto::Records::Coded)
        .await
        .unwrap();
    assert!(coded_only.open_channels.is_empty() && coded_only.pending_commitments.is_empty());

    // A coded record cannot fulfil a commitment.
    let fulfil = typed_event(json!({
        "occurred": {"day": "2025-02-21"},
        "evidence": [coded],
        "commitment_fulfilled": {"fulfilled_by": coded},
    }));
    let commitment = client(&app)
        .await
        .list_commitments(proto::ListRequest {
            read: live(head(&app).await),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .commitments
        .into_iter()
        .next()
        .expect("the founding scenario's commitments");
    let refused = record_events(&app, &commitment.key, vec![fulfil])
        .await
        .expect_err("a coded record fulfils nothing");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("not a coded record"),
        "{}",
        refused.message()
    );
    app.stop().await;
}
