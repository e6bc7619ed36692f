//! The `diplog` binary: the CLI client against a running server, and `diplog serve` on its
//! embedded PostgreSQL (SIGTERM exits 0, a restart keeps the data, a second server on the same
//! data directory is refused).

use std::process::Output;
use std::time::Duration;

use crate::helpers::{Serve, diplog, reachable_tempdir, spawn_app, text};

fn ndjson(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

#[tokio::test]
async fn events_appended_with_the_cli_read_back_as_ndjson() {
    let app = spawn_app().await;
    let server = app.server_url();
    let input = concat!(
        "{\"id\": \"0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a01\", \"type\": \"CallHeld\", ",
        "\"data\": {\"participants\": [\"Лавров\", \"Rubio\"], \"initiator\": \"USA\"}, ",
        "\"metadata\": {\"correlation_id\": \"0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a02\", \"source\": \"mid.ru\"}}\n",
        "\n",
        "{\"type\": \"StatementIssued\", \"data\": {\"quote\": \"уважительного межгосударственного диалога\"}}\n",
    );

    let appended = diplog([
        "append",
        "--server",
        &server,
        "--stream",
        "call-1",
        "--expect",
        "no-stream",
    ])
    .stdin(input)
    .await;
    let again = diplog([
        "append", "--server", &server, "--stream", "call-1", "--expect", "2", "-",
    ])
    .stdin("{\"type\": \"SourceReportAttached\"}\n")
    .await;
    let stream = diplog(["read", "--server", &server, "--stream", "call-1"]).await;
    let backward = diplog([
        "read",
        "--server",
        &server,
        "--all",
        "--backward",
        "--limit",
        "1",
    ])
    .await;
    let filtered = diplog([
        "read",
        "--server",
        &server,
        "--all",
        "--type",
        "StatementIssued",
    ])
    .await;

    assert!(appended.status.success(), "{}", text(&appended.stderr));
    assert_eq!(
        ndjson(&appended),
        [serde_json::json!({"stream_version": 2, "positions": [1, 2], "idempotent_replay": false})]
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let lines = text(&stream.stdout);
    let first_line = lines.lines().next().unwrap();
    assert!(
        first_line.contains(r#""data":{"participants": ["Лавров", "Rubio"], "initiator": "USA"}"#),
        "the payload is printed exactly as written: {first_line}"
    );
    let events = ndjson(&stream);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["id"], "0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a01");
    assert_eq!(events[0]["position"], 1);
    assert_eq!(events[0]["stream_version"], 1);
    assert_eq!(events[0]["metadata"]["source"], "mid.ru");
    assert_eq!(
        events[0]["metadata"]["correlation_id"],
        "0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a02"
    );
    assert_eq!(events[0]["appended_by"], "anonymous");
    assert!(events[0]["recorded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(events[2]["type"], "SourceReportAttached");
    assert_eq!(ndjson(&backward)[0]["position"], 3);
    assert_eq!(ndjson(&filtered).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn cli_errors_name_the_status_and_field_and_exit_non_zero() {
    let app = spawn_app().await;
    let server = app.server_url();
    diplog(["append", "--server", &server, "--stream", "s"])
        .stdin("{\"type\": \"A\"}\n")
        .await;

    let conflict = diplog([
        "append",
        "--server",
        &server,
        "--stream",
        "s",
        "--expect",
        "no-stream",
    ])
    .stdin("{\"type\": \"A\"}\n")
    .await;
    let invalid = diplog(["append", "--server", &server, "--stream", "s"])
        .stdin("{\"id\": \"nope\", \"type\": \"A\"}\n")
        .await;
    let bad_line = diplog(["append", "--server", &server, "--stream", "s"])
        .stdin("{\"type\": \"A\"}\n{\"type\": \n")
        .await;
    let negative = diplog([
        "append", "--server", &server, "--stream", "s", "--expect", "-1",
    ])
    .stdin("{\"type\": \"A\"}\n")
    .await;
    let missing = diplog(["read", "--server", &server, "--stream", "nowhere"]).await;
    let unreachable = diplog(["read", "--server", "http://127.0.0.1:1", "--all"]).await;

    assert_eq!(conflict.status.code(), Some(1));
    let stderr = text(&conflict.stderr);
    assert!(
        stderr.contains("ABORTED") && stderr.contains("current_version: 1"),
        "{stderr}"
    );
    assert_eq!(invalid.status.code(), Some(1));
    let stderr = text(&invalid.stderr);
    assert!(
        stderr.contains("INVALID_ARGUMENT") && stderr.contains("field events[0].id"),
        "{stderr}"
    );
    assert_eq!(bad_line.status.code(), Some(2));
    assert!(
        text(&bad_line.stderr).contains("line 2"),
        "{}",
        text(&bad_line.stderr)
    );
    assert!(!negative.status.success());
    assert!(
        text(&negative.stderr).contains("negative"),
        "{}",
        text(&negative.stderr)
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("NOT_FOUND"),
        "{}",
        text(&missing.stderr)
    );
    assert_eq!(unreachable.status.code(), Some(1));
    assert_eq!(
        app.event_count().await,
        1,
        "nothing but the first append was written"
    );
    app.stop().await;
}

#[tokio::test]
async fn serve_runs_on_its_embedded_postgres_stops_on_sigterm_and_keeps_data_across_restarts() {
    let dir = reachable_tempdir("diplog-serve-");
    let data_dir = dir.path().join("data");

    let mut first = Serve::embedded(&data_dir).start().await;
    let appended = diplog(["append", "--server", &first.grpc, "--stream", "call-1"])
        .stdin("{\"type\": \"CallHeld\", \"data\": {\"n\": 1}}\n")
        .await;
    assert!(appended.status.success(), "{}", text(&appended.stderr));

    let second = diplog([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ])
    .await;
    assert!(!second.status.success());
    assert!(
        text(&second.stderr).contains("already using"),
        "{}",
        text(&second.stderr)
    );

    let status = first.terminate(Duration::from_secs(20)).await;
    assert!(
        status.success(),
        "diplog serve exits 0 on SIGTERM, got {status:?}"
    );

    let mut restarted = Serve::embedded(&data_dir).start().await;
    let read = diplog(["read", "--server", &restarted.grpc, "--all"]).await;
    let events = ndjson(&read);
    assert_eq!(events.len(), 1, "{}", text(&read.stderr));
    assert_eq!(events[0]["data"], serde_json::json!({"n": 1}));
    let status = restarted.terminate(Duration::from_secs(20)).await;
    assert!(status.success());
}

/// Whoever reads the server's logs may go away (a closed pipe); SIGTERM must still stop it.
#[tokio::test]
async fn serve_stops_on_sigterm_even_after_its_log_reader_has_gone() {
    let dir = reachable_tempdir("diplog-serve-");
    let data = dir.path().join("data");

    let mut server = Serve::embedded(&data).start().await;
    server.stop_reading_logs().await;
    // Requests make the server log into the closed pipe before the signal arrives.
    let read = diplog(["read", "--server", &server.grpc, "--all"]).await;
    assert!(read.status.success(), "{}", text(&read.stderr));
    let status = server.terminate(Duration::from_secs(20)).await;

    assert!(
        status.success(),
        "diplog serve exits 0 on SIGTERM, got {status:?}"
    );
}

/// `diplog read` reads through the batched reads (as `diplog export` does: its output is
/// checked in `audit.rs`): more events than a batch holds come back whole and in order, as
/// the server counts under `ReadAllBatches` and `ReadStreamBatches`; a bad filter is still
/// reported by the field the one-event read names.
#[tokio::test]
async fn cli_reads_come_in_batches_in_order_and_name_bad_fields_as_before() {
    use crate::helpers::Expect;
    let app = spawn_app().await;
    let server = app.server_url();
    let payload = format!("{{\"text\": \"{}\"}}", "x".repeat(2000));
    for _ in 0..2 {
        let events: Vec<_> = (0..700).map(|_| ("Noted", payload.as_str())).collect();
        app.append("notes", Expect::Any, &events).await.unwrap();
    }

    let all = diplog(["read", "--server", &server, "--all"]).await;
    let stream = diplog([
        "read",
        "--server",
        &server,
        "--stream",
        "notes",
        "--backward",
    ])
    .await;
    let bad = diplog(["read", "--server", &server, "--all", "--type", "Call Held"]).await;

    assert!(all.status.success(), "{}", text(&all.stderr));
    let positions: Vec<i64> = ndjson(&all)
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert_eq!(positions, (1..=1400).collect::<Vec<_>>());
    let versions: Vec<i64> = ndjson(&stream)
        .iter()
        .map(|e| e["stream_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, (1..=1400).rev().collect::<Vec<_>>());
    let metrics = diplog::monitoring::handle().render();
    for rpc in ["ReadAllBatches", "ReadStreamBatches"] {
        assert!(
            metrics.contains(&format!("diplog_read_bytes_total{{rpc=\"{rpc}\"}}")),
            "{metrics}"
        );
    }
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("INVALID_ARGUMENT") && stderr.contains("field event_types[0]"),
        "{stderr}"
    );
    app.stop().await;
}
