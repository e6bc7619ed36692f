//! Importing PLOVER records through the gRPC API: a small invented sample (in
//! `tests/fixtures`), and the PLOVER gold-standard file when it is beside the project.

use std::collections::{BTreeMap, BTreeSet};

use diplog::import::plover::{self, PloverFile};
use diplog::import::{OnInvalid, Origin, Problem, Report, import};
use diplog::proto::{self, diplomatic_event::Kind, projections_client::ProjectionsClient};
use tonic::transport::Channel;

use crate::helpers::spawn_app;

const SAMPLE: &str = include_str!("../fixtures/plover-sample.json");

const REAL_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/plover/PLOVER_GSR_CAMEO.json"
);

/// How the records of a file fared: imported, or reported (by the parser or by the rules).
struct Outcome {
    imported: usize,
    /// The reported records, by id, with their problems.
    reported: BTreeMap<String, Vec<Problem>>,
    /// Problems of actor registrations (not records).
    actor_problems: Vec<Problem>,
}

fn outcome(file: &PloverFile, report: &Report) -> Outcome {
    let mut reported: BTreeMap<String, Vec<Problem>> = BTreeMap::new();
    let mut actor_problems = Vec::new();
    for problem in file.reported.iter().chain(&report.reported) {
        match &problem.origin {
            Origin::Record(id) if id.starts_with("actor ") => actor_problems.push(problem.clone()),
            Origin::Record(id) => reported
                .entry(id.clone())
                .or_default()
                .push(problem.clone()),
            Origin::Line(_) => panic!("a PLOVER problem names a record: {problem}"),
        }
    }
    let refused_events: BTreeSet<&str> = report
        .reported
        .iter()
        .filter_map(|problem| match &problem.origin {
            Origin::Record(id) if !id.starts_with("actor ") => Some(id.as_str()),
            _ => None,
        })
        .collect();
    Outcome {
        imported: file.event_items().count() - refused_events.len(),
        reported,
        actor_problems,
    }
}

async fn coded_events(channel: Channel) -> Vec<proto::DiplomaticRecord> {
    let request = proto::ReadEventsRequest {
        kinds: vec!["CodedEventReported".into()],
        ..Default::default()
    };
    crate::helpers::read_events(&channel, request).await
}

#[tokio::test]
async fn the_plover_sample_imports_and_reports_the_records_it_cannot_import() {
    let file = plover::parse(SAMPLE).expect("the sample is a PLOVER file");
    assert_eq!(file.documentation_records, 1);
    assert_eq!(file.event_records, 6);
    let app = spawn_app().await;

    let items = file.items.clone();
    let report = import(app.channel().await, items.clone(), OnInvalid::Report)
        .await
        .expect("the import runs");
    let outcome = outcome(&file, &report);
    assert!(report.reported.is_empty(), "{:?}", report.reported);
    assert!(outcome.actor_problems.is_empty());
    assert_eq!(
        outcome.imported + outcome.reported.len(),
        file.event_records
    );
    assert_eq!(outcome.imported, 4);
    let reported: Vec<(&str, &str)> = outcome
        .reported
        .iter()
        .map(|(id, problems)| (id.as_str(), problems[0].field.as_str()))
        .collect();
    assert_eq!(
        reported,
        [
            ("PLOVER-SAMPLE01-CHAT-0001", "event"),
            ("PLOVER-SAMPLE01-DEMAND-0001", "source"),
        ]
    );
    // The publication, FRA, DEU, NOR, FIN, the IGO organisation, CHL, PRT, ESP; then 4 events.
    assert_eq!(report.written, items.len());
    assert_eq!(items.len(), 9 + 4);
    assert_eq!(app.event_count().await, 13);

    let records = coded_events(app.channel().await).await;
    assert_eq!(records.len(), outcome.imported);
    let mut by_id = BTreeMap::new();
    for record in &records {
        let event = record.event.as_ref().expect("an event");
        let Some(Kind::CodedEventReported(coded)) = &event.kind else {
            panic!("not a coded event: {event:?}");
        };
        assert_eq!(
            record.stream_id,
            format!("occurrence-{}", coded.external_id)
        );
        let coding = event.coding.clone().expect("a coding");
        let source = &event.sources[0];
        assert_eq!(source.source, "plover.diplog-test-fixture");
        assert_eq!(source.language, "en");
        by_id.insert(
            coded.external_id.clone(),
            (
                coding.plover_type,
                coding.plover_mode,
                coding.plover_context,
                source.quotes[0].text.clone(),
                coded.clone(),
            ),
        );
    }
    let agree = &by_id["PLOVER-SAMPLE01-AGREE-0001"];
    assert_eq!((agree.0.as_str(), agree.1.as_str()), ("AGREE", ""));
    assert_eq!(agree.2, "diplomatic");
    assert_eq!(
        agree.3,
        "French and German officials agreed to hold regular talks on river trade."
    );
    let actors: Vec<&str> = agree.4.sources.iter().map(|a| a.actor.as_str()).collect();
    assert_eq!(actors, ["FRA", "DEU"]);
    assert_eq!(agree.4.sources[0].sector, "GOV");
    assert_eq!(agree.4.sources[0].text, "French");
    assert!(agree.4.targets.is_empty());

    let consult = &by_id["PLOVER-SAMPLE01-CONSULT-0001"];
    assert_eq!(
        (consult.0.as_str(), consult.1.as_str(), consult.2.as_str()),
        ("CONSULT", "phone", "diplomatic")
    );
    assert_eq!(consult.4.targets[0].actor, "FIN");
    assert_eq!(consult.4.location, "Oslo (country code: NO)");
    assert_eq!(consult.4.event_text, "spoke by telephone with");

    let support = &by_id["PLOVER-SAMPLE01-SUPPORT-0001"];
    assert_eq!(support.0, "SUPPORT");
    assert_eq!(support.2, "economic, resource");
    assert_eq!(support.4.sources[0].actor, "plover.igo");
    assert_eq!(support.4.sources[0].text, "A regional fisheries council");

    let no_target = &by_id["PLOVER-SAMPLE01-AGREE-0002"];
    assert!(no_target.4.targets.is_empty());
    assert_eq!(no_target.4.sources.len(), 2);

    app.stop().await;
}

#[tokio::test]
async fn importing_the_plover_sample_again_writes_nothing() {
    let file = plover::parse(SAMPLE).expect("the sample is a PLOVER file");
    let app = spawn_app().await;
    let first = import(app.channel().await, file.items.clone(), OnInvalid::Report)
        .await
        .expect("the first import runs");
    assert_eq!(first.written, file.items.len());
    let count = app.event_count().await;

    let again = plover::parse(SAMPLE).expect("the sample is a PLOVER file");
    let second = import(app.channel().await, again.items.clone(), OnInvalid::Report)
        .await
        .expect("the second import runs");
    assert_eq!(second.written, 0);
    assert_eq!(second.already_present, again.items.len());
    assert!(second.reported.is_empty(), "{:?}", second.reported);
    assert_eq!(app.event_count().await, count);
    app.stop().await;
}

#[tokio::test]
async fn the_plover_gold_standard_records_import() {
    let Ok(text) = std::fs::read_to_string(REAL_FILE) else {
        // CI has ../shared beside the clone and says so: there the data must be read.
        assert!(
            std::env::var_os("DIPLOG_REQUIRE_SHARED").is_none_or(|v| v != "1"),
            "DIPLOG_REQUIRE_SHARED=1 but {REAL_FILE} cannot be read"
        );
        // Written to the stream itself, not through `println!`, so the test harness's output
        // capture does not hide it: a skip must be seen in a plain `cargo test`.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_plover_gold_standard_records_import: ../shared/data/plover/PLOVER_GSR_CAMEO.json not found"
        );
        return;
    };
    let file = plover::parse(&text).expect("the gold-standard file is a PLOVER file");
    assert_eq!(file.documentation_records, 1);
    assert_eq!(file.event_records, 322);
    let app = spawn_app().await;

    let report = import(app.channel().await, file.items.clone(), OnInvalid::Report)
        .await
        .expect("the import runs");
    let outcome = outcome(&file, &report);
    assert_eq!(outcome.imported + outcome.reported.len(), 322);
    assert!(
        outcome.actor_problems.is_empty(),
        "{:?}",
        outcome.actor_problems
    );
    assert_eq!(report.written, file.items.len() - report.reported.len());

    let actors = file.items.len() - file.event_items().count();
    println!(
        "PLOVER gold standard: {} event records, {} imported, {} reported; {} actors registered",
        file.event_records,
        outcome.imported,
        outcome.reported.len(),
        actors
    );
    let mut by_field: BTreeMap<&str, Vec<&Problem>> = BTreeMap::new();
    for problem in outcome.reported.values().flatten() {
        by_field
            .entry(problem.field.as_str())
            .or_default()
            .push(problem);
    }
    for (field, problems) in &by_field {
        println!("  {field}: {} record(s)", problems.len());
        for problem in problems {
            println!("    {problem}");
        }
    }
    assert_eq!(
        coded_events(app.channel().await).await.len(),
        outcome.imported
    );

    // The projections take the coded records in: Israel's timeline and page show them, and
    // states have relations.
    let position = crate::helpers::head(&app).await;
    let mut projections = ProjectionsClient::new(app.channel().await);
    let israel = projections
        .get_timeline(proto::ListRequest {
            read: crate::helpers::live(position),
            actor: "ISR".into(),
            ..Default::default()
        })
        .await
        .expect("Israel's timeline")
        .into_inner()
        .entries;
    assert!(!israel.is_empty(), "Israel's timeline is empty");
    assert!(israel.iter().all(|e| e.coded.is_some()));
    let relations = projections
        .list_relations(proto::ListRequest {
            read: crate::helpers::live(position),
            records: proto::Records::Coded.into(),
            ..Default::default()
        })
        .await
        .expect("the relations")
        .into_inner()
        .relations;
    assert!(!relations.is_empty(), "no relations between states");
    assert!(relations.iter().all(|r| r.coded_contacts == r.contacts));
    println!(
        "  Israel's timeline: {} coded record(s); {} pair(s) of states related by coded records",
        israel.len(),
        relations.len()
    );
    let page = crate::dashboard::get(app.http_addr, "/actors/ISR").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("No interactions recorded."),
        "{}",
        page.body
    );

    let count = app.event_count().await;
    let again = import(app.channel().await, file.items.clone(), OnInvalid::Report)
        .await
        .expect("the second import runs");
    assert_eq!(again.written, 0);
    assert_eq!(again.already_present, report.written);
    assert_eq!(app.event_count().await, count);
    app.stop().await;
}
