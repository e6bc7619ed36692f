//! `diplog import --format gdelt-events|gdelt-mentions|polecat` through the real binary
//! against a running server, on the project's own small fixtures in the real formats
//! (`tests/fixtures/gdelt/`, `tests/fixtures/polecat/`): what lands in the log and in the
//! divergence view, what is reported by line, that a second import writes nothing, that a
//! zipped export reads as the plain one, and that mentions before events (in small chunks) end
//! as events before mentions.

use std::io::Write;
use std::process::Output;
use std::time::Duration;

use diplog::proto::{self, diplomatic_event::Kind, projections_client::ProjectionsClient};

use crate::helpers::{
    TestApp, diplog, head, live, reachable_tempdir, read_events, shown, spawn_app, text, within,
};

const EVENTS: &str = "tests/fixtures/gdelt/20250215120000.export.CSV";
const MENTIONS: &str = "tests/fixtures/gdelt/20250215120000.mentions.CSV";
const POLECAT: &str = "tests/fixtures/polecat/ngec_coded_sample.txt";
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

async fn import(app: &TestApp, format: &str, file: &str) -> Output {
    import_in_chunks(app, format, file, 2000).await
}

async fn import_in_chunks(app: &TestApp, format: &str, file: &str, chunk_rows: u32) -> Output {
    let output = diplog([
        "import",
        "--format",
        format,
        file,
        "--server",
        &app.server_url(),
        "--chunk-rows",
        &chunk_rows.to_string(),
    ])
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    output
}

/// The line of stdout that contains `words`.
fn line_with(output: &Output, words: &str) -> String {
    text(&output.stdout)
        .lines()
        .find(|line| line.contains(words))
        .unwrap_or_else(|| panic!("no line with {words:?}:\n{}", shown(output)))
        .to_owned()
}

/// The lines of stderr's `reported:` messages, as `line N: field`.
fn reported(output: &Output) -> Vec<String> {
    text(&output.stderr)
        .lines()
        .filter_map(|line| line.strip_prefix("reported: "))
        .map(|line| line.splitn(3, ": ").take(2).collect::<Vec<_>>().join(": "))
        .collect()
}

/// Every diplomatic event of the log, by id: (id, stream, event).
async fn diplomatic_events(app: &TestApp) -> Vec<(String, String, proto::DiplomaticEvent)> {
    let mut events: Vec<_> = read_events(&app.channel().await, Default::default())
        .await
        .into_iter()
        .map(|record| {
            let event = record.event.expect("an event");
            (event.id.clone(), record.stream_id, event)
        })
        .collect();
    events.sort_by(|a, b| a.0.cmp(&b.0));
    events
}

async fn divergence(app: &TestApp, key: &str) -> proto::Divergence {
    let head = head(app).await;
    ProjectionsClient::new(app.channel().await)
        .get_divergence(proto::GetRequest {
            read: live(head),
            key: key.into(),
        })
        .await
        .expect("a divergence")
        .into_inner()
        .divergences
        .remove(0)
}

/// The search projection's hits for `query`: (event id, field, text).
async fn search(app: &TestApp, query: &str) -> Vec<(String, String, String)> {
    let head = head(app).await;
    ProjectionsClient::new(app.channel().await)
        .search(proto::SearchRequest {
            query: query.into(),
            read: live(head),
            ..Default::default()
        })
        .await
        .expect("search answers")
        .into_inner()
        .hits
        .into_iter()
        .map(|hit| (hit.event_id, hit.field, hit.text))
        .collect()
}

fn coded(event: &proto::DiplomaticEvent) -> &proto::CodedEventReported {
    match &event.kind {
        Some(Kind::CodedEventReported(coded)) => coded,
        other => panic!("not a coded event: {other:?}"),
    }
}

#[tokio::test]
async fn gdelt_events_land_as_coded_events_and_odd_rows_are_reported_by_line() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let first = import(&app, "gdelt-events", EVENTS).await;
        assert!(
            line_with(&first, "row(s) read").ends_with("34 row(s) read: 29 imported, 5 skipped"),
            "{}",
            shown(&first)
        );
        assert_eq!(
            reported(&first),
            [
                "line 3: Actor1Code",
                "line 6: EventCode",
                "line 11: 62 tab-separated fields where a GDELT 2.0 event has 61 (a stray tab, or not an Events export)",
                "line 12: SQLDATE",
                "line 13: GLOBALEVENTID",
            ]
        );
        assert!(
            text(&first.stdout).contains("noted: 1 actor(s) with the CAMEO country code EUR"),
            "{}",
            shown(&first)
        );

        let events = diplomatic_events(&app).await;
        let coded_events: Vec<_> = events
            .iter()
            .filter(|(_, _, event)| matches!(event.kind, Some(Kind::CodedEventReported(_))))
            .collect();
        assert_eq!(coded_events.len(), 29);
        let by_gdelt_id = |id: &str| {
            coded_events
                .iter()
                .find(|(_, _, event)| coded(event).external_id == id)
                .unwrap_or_else(|| panic!("no event {id}"))
        };
        let (_, stream, call) = by_gdelt_id("1226600001");
        assert_eq!(stream, "occurrence-gdelt-1226600001");
        let coding = call.coding.clone().unwrap();
        assert_eq!(
            (coding.cameo.as_str(), coding.plover_type.as_str(), coding.plover_mode.as_str()),
            ("041", "CONSULT", "phone")
        );
        let call_coded = coded(call);
        assert_eq!(call_coded.sources[0].actor, "RUS");
        assert_eq!(call_coded.sources[0].sector, "GOV");
        assert_eq!(call_coded.sources[0].text, "RUSSIA");
        assert_eq!(call_coded.targets[0].actor, "USA");
        assert_eq!(call_coded.event_text, "Discuss by telephone");
        assert_eq!(
            call_coded.location,
            "Moscow, Moskva, Russia (FIPS RS; 55.7522, 37.6156)"
        );
        assert_eq!(call.sources[0].source, "gdelt.source.mid.ru");
        assert_eq!(call.sources[0].url, "https://www.mid.ru/ru/press/1");
        assert_eq!(call_coded.goldstein_scale, Some(1.0));
        assert_eq!(call_coded.quad_class, Some(1));
        assert_eq!(
            (call_coded.mentions, call_coded.source_count, call_coded.articles),
            (Some(10), Some(2), Some(10))
        );
        assert_eq!(call_coded.average_tone, Some(-1.25));
        let place = call_coded.action_place.clone().unwrap();
        assert_eq!(
            (place.name.as_str(), place.country_code.as_str()),
            ("Moscow, Moskva, Russia", "RS")
        );
        assert_eq!((place.latitude, place.longitude), (Some(55.7522), Some(37.6156)));
        let conflict = coded(&by_gdelt_id("1226600008").2);
        assert_eq!((conflict.quad_class, conflict.goldstein_scale), (Some(3), Some(-2.0)));
        // A row without a place has none.
        assert!(coded(&by_gdelt_id("1226600002").2).action_place.is_none());
        assert_eq!(crate::helpers::day(&call.occurred), "2025-02-15");

        // Missing Actor2: no target. CAMEO 010 has no PLOVER type: the CAMEO code alone.
        assert!(coded(&by_gdelt_id("1226600004").2).targets.is_empty());
        let statement = by_gdelt_id("1226600005").2.coding.clone().unwrap();
        assert_eq!((statement.cameo.as_str(), statement.plover_type.as_str()), ("010", ""));
        // CAMEO's ROM is ISO's ROU; a region is an organisation by its actor code.
        assert_eq!(coded(&by_gdelt_id("1226600007").2).sources[0].actor, "ROU");
        assert_eq!(coded(&by_gdelt_id("1226600008").2).sources[0].actor, "gdelt.eur");
        assert_eq!(coded(&by_gdelt_id("1226600009").2).sources[0].actor, "gdelt.igouno");
        let mexico = by_gdelt_id("1226600010");
        assert_eq!(coded(&mexico.2).sources[0].text, "MÉXICO");
        assert!(coded(&mexico.2).location.starts_with("Ciudad de México"));
        // No SOURCEURL: GDELT itself is the source.
        assert_eq!(by_gdelt_id("1226600014").2.sources[0].source, "gdelt");

        // The search projection indexes CAMEO's words and the place.
        let hits = search(&app, "telephone").await;
        assert!(
            hits.iter().any(|(id, field, _)| id == &call.id
                && field == "coded_event_reported.event_text"),
            "{hits:?}"
        );
        let hits = search(&app, "Ciudad de México").await;
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].0, mexico.2.id);

        let count = app.event_count().await;
        let second = import(&app, "gdelt-events", EVENTS).await;
        assert!(
            line_with(&second, "event(s) written").starts_with("0 event(s) written"),
            "{}",
            shown(&second)
        );
        assert_eq!(app.event_count().await, count);
    })
    .await;
}

#[tokio::test]
async fn mentions_before_events_end_as_events_before_mentions_and_divergence_shows_every_source() {
    within(TEST_TIMEOUT, async {
        let events_first = spawn_app().await;
        import(&events_first, "gdelt-events", EVENTS).await;
        let mentions = import(&events_first, "gdelt-mentions", MENTIONS).await;
        assert!(
            line_with(&mentions, "row(s) read").ends_with("30 row(s) read: 27 imported, 3 skipped"),
            "{}",
            shown(&mentions)
        );
        assert_eq!(
            reported(&mentions),
            [
                "line 8: 15 tab-separated fields where a GDELT 2.0 mention has 16 (a stray tab, or not a Mentions export)",
                "line 9: MentionIdentifier",
                "line 10: MentionIdentifier",
            ]
        );
        let stdout = text(&mentions.stdout);
        assert!(stdout.contains("noted: 2 mention(s) waiting for their event"), "{stdout}");
        assert!(stdout.contains("noted: 1 mention(s) of an event's own article"), "{stdout}");

        // The other order, in small chunks: actors, repeats and waiting mentions across chunks.
        let mentions_first = spawn_app().await;
        let early = import_in_chunks(&mentions_first, "gdelt-mentions", MENTIONS, 4).await;
        assert!(
            text(&early.stdout).contains("noted: 27 mention(s) waiting for their event"),
            "{}",
            shown(&early)
        );
        let late = import_in_chunks(&mentions_first, "gdelt-events", EVENTS, 3).await;
        assert_eq!(reported(&late).len(), 5, "{}", shown(&late));
        assert!(
            text(&late.stdout).contains("noted: 24 waiting mention(s) attached to their event"),
            "{}",
            shown(&late)
        );

        let log = diplomatic_events(&events_first).await;
        assert_eq!(log, diplomatic_events(&mentions_first).await);
        let reports = log
            .iter()
            .filter(|(_, _, event)| matches!(event.kind, Some(Kind::SourceReportAttached(_))))
            .count();
        assert_eq!(reports, 24);

        for app in [&events_first, &mentions_first] {
            let call = divergence(app, "occurrence-gdelt-1226600001").await;
            assert_eq!(call.kind, "CodedEventReported");
            let sources: Vec<(&str, &str)> = call
                .reports
                .iter()
                .map(|r| (r.source.as_str(), r.url.as_str()))
                .collect();
            assert_eq!(
                sources,
                [
                    ("gdelt.source.mid.ru", "https://www.mid.ru/ru/press/1"),
                    ("gdelt.source.tass.ru", "https://tass.ru/politika/1"),
                    ("gdelt.source.reuters.com", "https://www.reuters.com/world/1"),
                ]
            );
            let citation = divergence(app, "occurrence-gdelt-1226600004").await;
            assert_eq!(citation.reports.len(), 2);
        }
        let (_, _, tass) = log
            .iter()
            .find(|(_, _, e)| e.sources.first().is_some_and(|s| s.url == "https://tass.ru/politika/1"))
            .unwrap();
        assert!(tass.note.contains("confidence 80%"), "{}", tass.note);

        // Again, in either order: nothing new.
        let count = events_first.event_count().await;
        for (format, file) in [("gdelt-mentions", MENTIONS), ("gdelt-events", EVENTS)] {
            let again = import(&events_first, format, file).await;
            assert!(
                line_with(&again, "event(s) written").starts_with("0 event(s) written"),
                "{}",
                shown(&again)
            );
        }
        assert_eq!(events_first.event_count().await, count);
    })
    .await;
}

#[tokio::test]
async fn a_zipped_gdelt_export_imports_as_the_plain_one() {
    within(TEST_TIMEOUT, async {
        let dir = reachable_tempdir("gdelt-zip");
        let zipped = dir.path().join("20250215120000.export.CSV.zip");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&zipped).unwrap());
        writer
            .start_file(
                "20250215120000.export.CSV",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        writer.write_all(&std::fs::read(EVENTS).unwrap()).unwrap();
        writer.finish().unwrap();

        let app = spawn_app().await;
        let from_zip = import(&app, "gdelt-events", zipped.to_str().unwrap()).await;
        assert!(
            line_with(&from_zip, "row(s) read").ends_with("34 row(s) read: 29 imported, 5 skipped"),
            "{}",
            shown(&from_zip)
        );
        assert_eq!(reported(&from_zip).len(), 5);
        let plain = import(&app, "gdelt-events", EVENTS).await;
        assert!(
            line_with(&plain, "event(s) written").starts_with("0 event(s) written"),
            "{}",
            shown(&plain)
        );
    })
    .await;
}

#[tokio::test]
async fn a_polecat_file_imports_and_its_defects_are_reported_by_line() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let first = import(&app, "polecat", POLECAT).await;
        assert!(
            line_with(&first, "row(s) read").ends_with("19 row(s) read: 13 imported, 6 skipped"),
            "{}",
            shown(&first)
        );
        assert_eq!(
            reported(&first),
            [
                "line 5: Event Type",
                "line 6: Actor Name",
                "line 8: Event Date",
                "line 12: repeats the header row",
                "line 18: 22 tab-separated fields where the header has 21 (a stray tab?)",
                "line 19: Event ID",
            ]
        );
        let events = diplomatic_events(&app).await;
        let coded_events: Vec<_> = events
            .iter()
            .filter(|(_, _, event)| matches!(event.kind, Some(Kind::CodedEventReported(_))))
            .collect();
        assert_eq!(coded_events.len(), 13);
        let (_, stream, call) = coded_events
            .iter()
            .find(|(_, _, event)| coded(event).external_id == "pc-0001")
            .unwrap();
        assert_eq!(stream, "occurrence-polecat-pc-0001");
        let coding = call.coding.clone().unwrap();
        assert_eq!(
            (
                coding.plover_type.as_str(),
                coding.plover_mode.as_str(),
                coding.plover_context.as_str()
            ),
            ("CONSULT", "phone", "diplomatic")
        );
        assert_eq!(coded(call).sources[0].actor, "RUS");
        assert_eq!(coded(call).sources[0].text, "Сергей Лавров");
        assert_eq!(coded(call).targets[0].actor, "USA");
        assert_eq!(call.sources[0].source, "polecat.source.agence-test");
        assert_eq!(
            call.sources[0].title,
            "Лавров и Рубио провели телефонный разговор"
        );
        let agree = coded_events
            .iter()
            .find(|(_, _, event)| coded(event).external_id == "pc-0002")
            .unwrap();
        assert_eq!(
            agree.2.coding.clone().unwrap().plover_context,
            "diplomatic,economic"
        );
        assert_eq!(coded(&agree.2).sources[0].text, "Recep Tayyip Erdoğan");
        let kosovo = coded_events
            .iter()
            .find(|(_, _, event)| coded(event).external_id == "pc-0006")
            .unwrap();
        assert_eq!(coded(&kosovo.2).sources[0].actor, "polecat.vjosa-osmani");
        assert_eq!(kosovo.2.sources[0].source, "polecat");
        // The headline is the report's title, which search indexes (in Russian, stemmed).
        let hits = search(&app, "телефонные разговоры").await;
        assert!(
            hits.iter()
                .any(|(id, field, _)| id == &call.id && field == "sources[0].title"),
            "{hits:?}"
        );

        let count = app.event_count().await;
        // Again, in chunks of 5 rows (the header in the first only): nothing new, the same reports.
        let second = import_in_chunks(&app, "polecat", POLECAT, 5).await;
        assert!(
            line_with(&second, "event(s) written").starts_with("0 event(s) written"),
            "{}",
            shown(&second)
        );
        assert_eq!(reported(&second).len(), 6);
        assert_eq!(app.event_count().await, count);
    })
    .await;
}

#[tokio::test]
async fn on_a_terminal_a_streamed_import_keeps_a_progress_line() {
    within(TEST_TIMEOUT, async {
        // util-linux `script` gives the import a terminal; without it there is none to test.
        if std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_err()
        {
            println!("SKIPPED: no `script` to run the import on a terminal");
            return;
        }
        let app = spawn_app().await;
        let command = format!(
            "{} import --format polecat {POLECAT} --chunk-rows 5 --server {}",
            crate::helpers::diplog_binary().display(),
            app.server_url()
        );
        let output = tokio::process::Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("script runs");
        let terminal = text(&output.stdout);
        assert!(output.status.success(), "{terminal}");
        // Rewritten in place after each chunk (the first holds the header and 4 rows), cleared
        // before the reports and the summary.
        for rows in [4, 9, 14, 19] {
            assert!(
                terminal.contains(&format!("\r\x1b[K{rows} row(s) read, ")),
                "{terminal:?}"
            );
        }
        assert!(
            terminal.contains("\r\x1b[Kreported: line 6: "),
            "{terminal:?}"
        );
        assert!(
            terminal.contains("19 row(s) read: 13 imported, 6 skipped"),
            "{terminal}"
        );
    })
    .await;
}

/// The relations of a pair of states, coded records only.
async fn coded_relations(app: &TestApp, a: &str, b: &str) -> proto::Relations {
    let head = head(app).await;
    ProjectionsClient::new(app.channel().await)
        .get_relations(proto::ListRequest {
            read: live(head),
            state_pair: Some(proto::StatePair {
                a: a.to_owned(),
                b: b.to_owned(),
            }),
            records: proto::Records::Coded.into(),
            ..Default::default()
        })
        .await
        .expect("relations answer")
        .into_inner()
        .relations
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no relations of {a} and {b}"))
}

#[tokio::test]
async fn a_gdelt_events_quad_class_reaches_the_relations_of_its_pair_of_states() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        import(&app, "gdelt-events", EVENTS).await;

        // Rows 1 (041, CONSULT) and 12 (040): RUSGOV and USAGOV, QuadClass 1 (row 13 repeats
        // row 1's event; row 2's 036 is no contact).
        let russia = coded_relations(&app, "RUS", "USA").await;
        assert_eq!(russia.coded_contacts, 2, "{russia:?}");
        assert_eq!(
            russia.contacts_by_quad_class.get("VERBAL_COOPERATION"),
            Some(&2),
            "{russia:?}"
        );
        // Row 14: ISR and LBN, QuadClass 2.
        let israel = coded_relations(&app, "ISR", "LBN").await;
        assert_eq!(
            israel.contacts_by_quad_class.get("MATERIAL_COOPERATION"),
            Some(&1),
            "{israel:?}"
        );
        assert_eq!(israel.contacts_by_quad_class.len(), 1, "{israel:?}");
        app.stop().await;
    })
    .await;
}
