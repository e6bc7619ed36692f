//! `diplog channels|summits|commitments|timeline|relations|divergence` and
//! `diplog projections status|rebuild` through the real binary against a running server, on
//! the founding scenario.

use std::time::Duration;

use diplog::import::{self, OnInvalid, scenario};

use crate::helpers::{TestApp, diplog, shown, spawn_app, text, within};

/// The longest any one test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

const FOUNDING_CALL_STREAM: &str = "occurrence-2025-02-15-rubio-lavrov-call";

/// A server holding the founding scenario, and its head position.
async fn founding() -> (TestApp, String) {
    let app = spawn_app().await;
    let parsed =
        scenario::parse(scenario::FOUNDING_SCENARIO).expect("the founding scenario parses");
    import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("imported");
    let head = app
        .client
        .clone()
        .get_head(())
        .await
        .unwrap()
        .into_inner()
        .position;
    (app, head.to_string())
}

/// Runs `diplog COMMAND… --server <app> --min-position <head>` and expects success.
async fn query(app: &TestApp, head: &str, args: &[&str]) -> String {
    let server = app.server_url();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", &server, "--min-position", head]);
    let output = diplog(&all).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}\n{}",
        shown(&output)
    );
    text(&output.stdout)
}

fn assert_shows(stdout: &str, expected: &[&str]) {
    for text in expected {
        assert!(stdout.contains(text), "{text:?} not in:\n{stdout}");
    }
}

#[tokio::test]
async fn the_founding_projections_read_as_tables() {
    within(TEST_TIMEOUT, async {
        let (app, head) = founding().await;

        let channels = query(&app, &head, &["channels"]).await;
        assert!(
            channels.starts_with(&format!("At log position {head}")),
            "{channels}"
        );
        assert_shows(
            &channels,
            &[
                // Offices with who held them at the channel's last contact.
                "Minister of Foreign Affairs of Russia (Sergey Lavrov) – United States Secretary of State (Marco Rubio)",
                "2025-02-15 (Europe/Moscow)",
            ],
        );

        let summits = query(&app, &head, &["summits"]).await;
        let line = summits
            .lines()
            .find(|l| l.contains("summit-rus-usa-2025"))
            .unwrap_or_else(|| panic!("no summit line:\n{summits}"));
        assert!(line.contains("PREPARATION_AGREED"), "{line}");

        let commitments = query(&app, &head, &["commitments"]).await;
        assert_shows(&commitments, &["meeting of experts", "very soon"]);
        let all = query(&app, &head, &["commitments", "--all"]).await;
        assert_shows(&all, &["meeting of experts"]);
        let fulfilled = query(&app, &head, &["commitments", "--status", "FULFILLED"]).await;
        assert!(!fulfilled.contains("meeting of experts"), "{fulfilled}");

        let divergence = query(&app, &head, &["divergence", FOUNDING_CALL_STREAM]).await;
        assert_shows(&divergence, &["Палестины", "CallHeld", "Shared claims"]);
        let mfa_only = divergence
            .split("\nClaims only ")
            .skip(1)
            .find(|section| section.lines().next().is_some_and(|l| !l.contains("State")))
            .unwrap_or_else(|| panic!("no section of the MFA's own claims:\n{divergence}"));
        assert!(
            mfa_only.contains("palestine-and-middle-east"),
            "{divergence}"
        );
        let us_only = divergence
            .split("\nClaims only ")
            .skip(1)
            .find(|section| section.contains("bilateral-issues"))
            .unwrap_or_else(|| panic!("no US-only claims:\n{divergence}"));
        assert!(
            !us_only.contains("palestine-and-middle-east"),
            "{divergence}"
        );

        let relations = query(&app, &head, &["relations", "RUS", "USA"]).await;
        assert_shows(
            &relations,
            &[
                "Contacts: 2",
                "MINISTERS: 1",
                "Open channels",
                "Minister of Foreign Affairs of Russia",
                "summit-rus-usa-2025",
                "meeting of experts",
            ],
        );

        let timeline = query(&app, &head, &["timeline", "sergey-lavrov"]).await;
        assert_shows(
            &timeline,
            &[
                "2025-02-15",
                "CallHeld",
                "Minister of Foreign Affairs of Russia",
            ],
        );

        let filtered = query(&app, &head, &["channels", "--actor", "sergey-lavrov"]).await;
        assert_shows(&filtered, &["United States Secretary of State"]);
        let by_states = query(&app, &head, &["channels", "--states", "RUS,USA"]).await;
        assert_shows(&by_states, &["United States Secretary of State"]);
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn json_answers_as_of_answers_and_bad_input() {
    within(TEST_TIMEOUT, async {
        let (app, head) = founding().await;
        let server = app.server_url();

        let json = query(&app, &head, &["channels", "--json"]).await;
        let answer: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let channels = answer["channels"].as_array().expect("a channels array");
        assert!(channels.len() >= 2, "{answer}");
        assert_eq!(answer["info"]["position"].to_string(), head);

        let divergence = query(&app, &head, &["divergence", FOUNDING_CALL_STREAM, "--json"]).await;
        let answer: serde_json::Value = serde_json::from_str(&divergence).unwrap();
        assert_eq!(answer["divergences"][0]["kind"], "CallHeld");

        let early = query(&app, &head, &["channels", "--as-of", "1"]).await;
        assert!(early.starts_with("At log position 1, as of "), "{early}");
        assert!(early.contains("No channels."), "{early}");
        let early_json = query(&app, &head, &["channels", "--as-of", "1", "--json"]).await;
        let answer: serde_json::Value = serde_json::from_str(&early_json).unwrap();
        assert!(answer.get("channels").is_none(), "{answer}");

        let before_it_all = query(&app, &head, &["summits", "--as-of", "2000-01-01"]).await;
        assert!(
            before_it_all.contains("No pending summits"),
            "{before_it_all}"
        );

        let bad = diplog(["channels", "--as-of", "last tuesday", "--server", &server]).await;
        assert_eq!(bad.status.code(), Some(2), "{}", shown(&bad));
        assert!(
            text(&bad.stderr).contains("last tuesday"),
            "{}",
            shown(&bad)
        );

        let bad_pair = diplog(["channels", "--states", "RUS", "--server", &server]).await;
        assert_eq!(bad_pair.status.code(), Some(2), "{}", shown(&bad_pair));

        let missing = diplog(["divergence", "occurrence-nope", "--server", &server]).await;
        assert_eq!(missing.status.code(), Some(1), "{}", shown(&missing));
        assert!(
            text(&missing.stderr).contains("NOT_FOUND"),
            "{}",
            shown(&missing)
        );
        app.stop().await;
    })
    .await
}

#[tokio::test]
async fn projections_status_lists_every_projection_and_a_rebuild_names_its_projection() {
    within(TEST_TIMEOUT, async {
        let (app, _) = founding().await;
        let server = app.server_url();

        let status = diplog(["projections", "status", "--server", &server]).await;
        assert_eq!(status.status.code(), Some(0), "{}", shown(&status));
        let stdout = text(&status.stdout);
        assert!(
            stdout.starts_with("NAME") && stdout.contains("HOLDER"),
            "{stdout}"
        );
        for name in diplog::projections::engine::catalog::NAMES {
            assert!(
                stdout.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} not in:\n{stdout}"
            );
        }
        // A header and one line per projection.
        let projections = diplog::projections::engine::catalog::NAMES.len();
        assert_eq!(stdout.lines().count(), projections + 1, "{stdout}");

        let rebuild = diplog(["projections", "rebuild", "channels", "--server", &server]).await;
        assert_eq!(rebuild.status.code(), Some(0), "{}", shown(&rebuild));
        assert!(text(&rebuild.stdout).contains("rebuild of channels requested"));

        let nope = diplog(["projections", "rebuild", "nope", "--server", &server]).await;
        assert_eq!(nope.status.code(), Some(1), "{}", shown(&nope));
        let stderr = text(&nope.stderr);
        assert!(
            stderr.contains("\"nope\" is not a projection") && stderr.contains("channels"),
            "{}",
            shown(&nope)
        );
        app.stop().await;
    })
    .await
}

/// `--format csv`: a header row, then a row per item (every page), quoted where a cell needs
/// it, as many rows as the JSON answer has items; refused where the answer is not one list.
#[tokio::test]
async fn lists_print_as_csv_for_spreadsheets() {
    within(TEST_TIMEOUT, async {
        let (app, head) = founding().await;
        for (command, items, header) in [
            (
                vec!["channels"],
                "channels",
                "PARTIES,STATUS,ESTABLISHED,LAST CONTACT,CONTACTS",
            ),
            (
                vec!["commitments", "--all"],
                "commitments",
                "WHAT,PARTIES,STATUS,STATED,DUE,AGE",
            ),
            (
                vec!["timeline", "RUS"],
                "entries",
                "DATE,KIND,LEVEL,FORMAT/TYPE,PARTICIPANTS,PLACE,TRACK/ROUND,TOPICS",
            ),
        ] {
            let mut csv_args = command.clone();
            csv_args.extend(["--format", "csv"]);
            let csv_text = query(&app, &head, &csv_args).await;
            let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
            let headers = reader.headers().expect("a header row").clone();
            assert_eq!(headers.iter().collect::<Vec<_>>().join(","), header);
            let rows: Vec<csv::StringRecord> = reader
                .records()
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{command:?}: not CSV ({e}):\n{csv_text}"));
            assert!(rows.iter().all(|row| row.len() == headers.len()));

            let mut json_args = command.clone();
            json_args.push("--json");
            let json: serde_json::Value =
                serde_json::from_str(&query(&app, &head, &json_args).await).unwrap();
            let expected = json[items].as_array().map_or(0, Vec::len);
            assert!(expected > 0, "{command:?}: {json}");
            assert_eq!(rows.len(), expected, "{command:?}:\n{csv_text}");
        }
        // Cells with commas are quoted: the timeline's participants are "a; b" and topics "x, y".
        let timeline = query(&app, &head, &["timeline", "RUS", "--format", "csv"]).await;
        assert!(
            timeline.lines().skip(1).any(|line| line.contains('"')),
            "{timeline}"
        );

        let server = app.server_url();
        let refused = diplog([
            "relations",
            "RUS",
            "USA",
            "--format",
            "csv",
            "--server",
            &server,
        ])
        .await;
        assert_eq!(refused.status.code(), Some(2), "{}", shown(&refused));
        assert!(
            text(&refused.stderr).contains("--format json"),
            "{}",
            shown(&refused)
        );
        let both = diplog(["channels", "--json", "--format", "csv", "--server", &server]).await;
        assert_eq!(both.status.code(), Some(2), "{}", shown(&both));
        app.stop().await;
    })
    .await
}
