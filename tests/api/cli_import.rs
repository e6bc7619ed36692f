//! `diplog import` (scenario and PLOVER files) through the real binary against a running
//! server, and `diplog serve --demo` on its embedded PostgreSQL: the founding scenario is
//! imported into an empty log only.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use diplog::proto::{self, event_log_client::EventLogClient};

use crate::helpers::{Serve, diplog, reachable_tempdir, shown, spawn_app, text, within};

const FOUNDING_SCENARIO: &str = "scenarios/2025-02-15-rubio-lavrov-call.yaml";
const SUMMIT_SCENARIO: &str = "scenarios/summit-proposed-then-cancelled.yaml";
const PLOVER_SAMPLE: &str = "tests/fixtures/plover-sample.json";
const FOUNDING_CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";

/// The longest any one CLI test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The two numbers of a line `<a> <first> <b> <second> <c>` of stdout, e.g.
/// `12 event(s) written, 0 already in the log`.
fn numbers_of_line(output: &Output, first: &str, second: &str) -> (usize, usize) {
    let stdout = text(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.contains(first) && line.contains(second))
        .unwrap_or_else(|| panic!("no line with {first:?} and {second:?}:\n{}", shown(output)));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .map(|word| word.parse().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2, "two numbers in {line:?}");
    (numbers[0], numbers[1])
}

/// (written, already in the log) from an import's summary.
fn written(output: &Output) -> (usize, usize) {
    numbers_of_line(output, "event(s) written", "already in the log")
}

/// (imported, reported) from a PLOVER import's summary.
fn records(output: &Output) -> (usize, usize) {
    numbers_of_line(output, "record(s) imported", "reported")
}

/// The line numbers that a message names (`line 12`).
fn named_lines(message: &str) -> Vec<u64> {
    message
        .split("line ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn importing_the_founding_scenario_writes_its_events_once_and_a_second_import_writes_none() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let server = app.server_url();

        let first = diplog(["import", FOUNDING_SCENARIO, "--server", &server]).await;
        assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
        let (first_written, first_present) = written(&first);
        assert!(first_written > 30, "{}", shown(&first));
        assert_eq!(first_present, 0, "{}", shown(&first));
        assert!(
            text(&first.stdout).contains("scenario 2025-02-15-rubio-lavrov-call"),
            "{}",
            shown(&first)
        );
        assert!(
            text(&first.stdout).contains("written atomically, in one record"),
            "{}",
            shown(&first)
        );
        let count = app.event_count().await;
        assert_eq!(count, first_written as i64);

        let second = diplog(["import", FOUNDING_SCENARIO, "--server", &server]).await;
        assert_eq!(second.status.code(), Some(0), "{}", shown(&second));
        assert_eq!(
            written(&second),
            (0, first_written),
            "everything is already in the log:\n{}",
            shown(&second)
        );
        assert!(
            !text(&second.stdout).contains("atomic"),
            "no record was needed:\n{}",
            shown(&second)
        );
        assert_eq!(app.event_count().await, count);
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn the_summit_scenario_imports_after_the_founding_one_and_lists_its_proposed_place() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let server = app.server_url();
        for file in [FOUNDING_SCENARIO, SUMMIT_SCENARIO] {
            let output = diplog(["import", file, "--server", &server]).await;
            assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        }
        let again = diplog(["import", SUMMIT_SCENARIO, "--server", &server]).await;
        assert_eq!(written(&again), (0, 4), "{}", shown(&again));
        let head = app.client.clone().get_head(()).await.unwrap().into_inner();
        let head = head.position.to_string();
        let summits = |extra: &'static [&'static str]| {
            let mut args = vec!["summits", "--server", &server, "--min-position", &head];
            args.extend(extra);
            diplog(args)
        };

        let pending = text(&summits(&[]).await.stdout);
        assert!(!pending.contains("summit-rus-usa-geneva"), "{pending}");
        let all = text(&summits(&["--all"]).await.stdout);
        let line = all
            .lines()
            .find(|l| l.contains("summit-rus-usa-geneva"))
            .unwrap_or_else(|| panic!("no Geneva summit:\n{all}"));
        for shown in ["CANCELLED", "2025-05 “in May”", "Geneva (CHE)"] {
            assert!(line.contains(shown), "{shown:?} not in {line:?}");
        }
        assert!(
            all.contains("EXPECTED") && all.contains("PROPOSED PLACE"),
            "{all}"
        );
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn a_scenario_with_an_error_is_refused_with_its_file_line_and_field_and_nothing_is_written() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let server = app.server_url();
        let dir = tempfile::tempdir().unwrap();
        // The call (line 11) has one participant; calls need two.
        let scenario = "\
scenario: cli-import-refused
events:
  - key: state-rus
    stream: actor-RUS
    actor_registered:
      actor: {id: RUS, kind: STATE, name: Russia}
  - key: state-usa
    stream: actor-USA
    actor_registered:
      actor: {id: USA, kind: STATE, name: United States}
  - key: lonely-call
    stream: occurrence-x
    occurred: {day: \"2025-02-15\"}
    sources:
      - {source: RUS, quotes: [{text: \"Состоялся телефонный разговор\"}]}
    call_held:
      participants: [{actor: RUS}]
";
        assert!(scenario.lines().nth(10).unwrap().contains("key: lonely-call"));
        let bad = dir.path().join("lonely-call.yaml");
        std::fs::write(&bad, scenario).unwrap();
        let bad_path = bad.display().to_string();

        let refused = diplog(["import", "--server", &server, &bad_path]).await;

        assert_eq!(refused.status.code(), Some(2), "{}", shown(&refused));
        let stderr = text(&refused.stderr);
        assert!(stderr.contains(&bad_path), "names the file: {stderr}");
        assert!(
            stderr.contains("nothing was written"),
            "says nothing was written: {stderr}"
        );
        let problem = stderr
            .lines()
            .find(|line| line.contains("call_held.participants"))
            .unwrap_or_else(|| panic!("names the field call_held.participants: {stderr}"));
        assert_eq!(named_lines(problem), [11], "names the call's line: {problem}");
        assert!(
            !stderr.contains("line 3") && !stderr.contains("line 7"),
            "only the bad event is reported: {stderr}"
        );
        assert_eq!(app.event_count().await, 0, "nothing was written");

        // Not YAML: an unclosed flow sequence on line 5.
        let syntax = dir.path().join("unclosed.yaml");
        std::fs::write(
            &syntax,
            "scenario: cli-import-syntax\nevents:\n  - key: a\n    stream: actor-RUS\n    evidence: [unclosed\n",
        )
        .unwrap();
        let syntax_path = syntax.display().to_string();
        let not_yaml = diplog(["import", "--server", &server, &syntax_path]).await;

        assert_eq!(not_yaml.status.code(), Some(2), "{}", shown(&not_yaml));
        let stderr = text(&not_yaml.stderr);
        assert!(stderr.contains(&syntax_path), "names the file: {stderr}");
        assert!(
            named_lines(&stderr).contains(&5),
            "names the line of the syntax error: {stderr}"
        );
        assert_eq!(app.event_count().await, 0);
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn a_plover_import_accounts_for_every_event_record_and_lists_the_reported_ones_by_id() {
    within(TEST_TIMEOUT, async {
        let fixture: Vec<serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PLOVER_SAMPLE))
                .unwrap(),
        )
        .expect("the sample is a JSON array");
        let event_ids: BTreeSet<String> = fixture
            .iter()
            .filter(|record| record["event"] != "DOCUMENT")
            .map(|record| record["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(event_ids.len() > 1);
        let app = spawn_app().await;
        let server = app.server_url();
        let args = [
            "import",
            "--format",
            "plover",
            PLOVER_SAMPLE,
            "--server",
            &server,
        ];

        let first = diplog(args).await;

        assert_eq!(first.status.code(), Some(0), "{}", shown(&first));
        let (imported, reported) = records(&first);
        assert_eq!(imported + reported, event_ids.len(), "{}", shown(&first));
        assert!(imported > 0 && reported > 0, "{}", shown(&first));
        let stderr = text(&first.stderr);
        let reported_ids: BTreeSet<String> = stderr
            .lines()
            .filter_map(|line| line.strip_prefix("reported: record "))
            .filter(|rest| !rest.starts_with("actor "))
            .map(|rest| rest.split(':').next().unwrap().to_owned())
            .collect();
        assert_eq!(reported_ids.len(), reported, "{stderr}");
        assert!(
            reported_ids.is_subset(&event_ids),
            "reported ids are the fixture's: {reported_ids:?}"
        );
        for line in stderr.lines().filter(|line| line.starts_with("reported: ")) {
            assert!(
                line.split(": ").count() >= 3,
                "`reported: record ID: [field: ]reason`: {line}"
            );
        }
        let (first_written, _) = written(&first);
        assert!(first_written > 0, "{}", shown(&first));
        let count = app.event_count().await;
        assert_eq!(count, first_written as i64);

        let second = diplog(args).await;

        assert_eq!(second.status.code(), Some(0), "{}", shown(&second));
        assert_eq!(written(&second).0, 0, "{}", shown(&second));
        assert_eq!(records(&second), (imported, reported), "{}", shown(&second));
        assert_eq!(app.event_count().await, count);
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn a_missing_file_exits_2_and_an_unreachable_server_exits_1() {
    within(TEST_TIMEOUT, async {
        let app = spawn_app().await;
        let server = app.server_url();

        let missing = diplog(["import", "--server", &server, "scenarios/no-such-file.yaml"]).await;
        let unreachable = diplog([
            "import",
            "--server",
            "http://127.0.0.1:1",
            FOUNDING_SCENARIO,
        ])
        .await;

        assert_eq!(missing.status.code(), Some(2), "{}", shown(&missing));
        let stderr = text(&missing.stderr);
        assert!(
            stderr.contains("could not read scenarios/no-such-file.yaml")
                && stderr.contains("No such file"),
            "{stderr}"
        );
        assert!(missing.stdout.is_empty(), "{}", shown(&missing));
        assert_eq!(
            unreachable.status.code(),
            Some(1),
            "{}",
            shown(&unreachable)
        );
        assert!(
            text(&unreachable.stderr).contains("http://127.0.0.1:1"),
            "names the server: {}",
            shown(&unreachable)
        );
        assert_eq!(app.event_count().await, 0);
        app.stop().await;
    })
    .await
}

async fn head(channel: &tonic::transport::Channel) -> i64 {
    EventLogClient::new(channel.clone())
        .get_head(())
        .await
        .expect("get_head")
        .into_inner()
        .position
}

/// The CallHeld events of the founding call's stream.
async fn founding_calls(channel: &tonic::transport::Channel) -> Vec<proto::CallHeld> {
    let request = proto::ReadEventsRequest {
        stream_id: FOUNDING_CALL_STREAM.into(),
        kinds: vec!["CallHeld".into()],
        ..Default::default()
    };
    crate::helpers::read_events(channel, request)
        .await
        .into_iter()
        .filter_map(|record| match record.event.and_then(|event| event.kind) {
            Some(proto::diplomatic_event::Kind::CallHeld(call)) => Some(call),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn serve_demo_imports_the_founding_scenario_into_an_empty_log_only() {
    within(Duration::from_secs(240), async {
        let dir = reachable_tempdir("diplog-demo-");
        let data_dir = dir.path().join("data");

        let mut first = Serve::embedded(&data_dir).arg("--demo").start().await;
        let channel = first.channel().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let calls = loop {
            let calls = if head(&channel).await > 30 {
                founding_calls(&channel).await
            } else {
                Vec::new()
            };
            if !calls.is_empty() {
                break calls;
            }
            assert!(
                Instant::now() < deadline,
                "the demo scenario is not in the log within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(calls.len(), 1, "{calls:?}");
        let participants: Vec<&str> = calls[0]
            .participants
            .iter()
            .map(|p| p.actor.as_str())
            .collect();
        assert_eq!(participants, ["marco-rubio", "sergey-lavrov"]);
        // The import has finished before the log is compared with the next start's.
        let imported = first.log_entry("demo: imported").await;
        assert!(
            imported["fields"]["written"].as_u64().unwrap() > 30,
            "{imported}"
        );
        let head_after_demo = head(&channel).await;
        assert!(head_after_demo > 30);
        drop(channel);
        let status = first.terminate(Duration::from_secs(20)).await;
        assert!(
            status.success(),
            "diplog serve exits 0 on SIGTERM, got {status:?}"
        );
        drop(first);

        let mut second = Serve::embedded(&data_dir).arg("--demo").start().await;
        let channel = second.channel().await;
        second.log_entry("demo: the log is not empty").await;
        assert_eq!(
            head(&channel).await,
            head_after_demo,
            "the demo import runs on an empty log only"
        );
        assert_eq!(founding_calls(&channel).await.len(), 1);
        drop(channel);
        let status = second.terminate(Duration::from_secs(20)).await;
        assert!(status.success(), "{status:?}");
    })
    .await
}
