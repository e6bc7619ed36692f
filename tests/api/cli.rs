//! The `diplog` binary: the CLI client against a running server, and `diplog serve` on its
//! embedded PostgreSQL (SIGTERM exits 0, a restart keeps the data, a second server on the same
//! data directory is refused).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{diplog, diplog_binary, reachable_tempdir, spawn_app, text};

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

/// A `diplog serve` process on the embedded default, with the gRPC address it reports.
struct ServeProcess {
    child: Child,
    grpc: String,
}

/// Starts `diplog serve` on `data_dir` and waits for its "serving" log line. Its logs are
/// read until it exits, or, with `keep_reading_logs` false, no further: the pipe then closes.
fn start_serve(data_dir: &Path, keep_reading_logs: bool) -> ServeProcess {
    let mut child = Command::new(diplog_binary())
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .env("DIPLOG_SIGNING_KEY", crate::helpers::test_signing_key())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("diplog serve runs");
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if entry["fields"]["message"] == "serving" {
                let grpc = entry["fields"]["grpc"].as_str().unwrap().to_owned();
                let _ = sender.send(grpc);
                if !keep_reading_logs {
                    return;
                }
            }
        }
    });
    let grpc = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("diplog serve reports that it is serving within 60 s");
    ServeProcess {
        child,
        grpc: format!("http://{grpc}"),
    }
}

/// Sends SIGTERM and returns the exit status (within 20 s).
fn terminate(mut process: ServeProcess) -> std::process::ExitStatus {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    kill(Pid::from_raw(process.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = process.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "diplog serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_runs_on_its_embedded_postgres_stops_on_sigterm_and_keeps_data_across_restarts() {
    let dir = reachable_tempdir("diplog-serve-");
    let data_dir = dir.path().join("data");

    let data = data_dir.clone();
    let first = tokio::task::spawn_blocking(move || start_serve(&data, true))
        .await
        .unwrap();
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

    let status = tokio::task::spawn_blocking(move || terminate(first))
        .await
        .unwrap();
    assert!(
        status.success(),
        "diplog serve exits 0 on SIGTERM, got {status:?}"
    );

    let data = data_dir.clone();
    let restarted = tokio::task::spawn_blocking(move || start_serve(&data, true))
        .await
        .unwrap();
    let read = diplog(["read", "--server", &restarted.grpc, "--all"]).await;
    let events = ndjson(&read);
    assert_eq!(events.len(), 1, "{}", text(&read.stderr));
    assert_eq!(events[0]["data"], serde_json::json!({"n": 1}));
    let status = tokio::task::spawn_blocking(move || terminate(restarted))
        .await
        .unwrap();
    assert!(status.success());
}

/// Whoever reads the server's logs may go away (a closed pipe); SIGTERM must still stop it.
#[tokio::test]
async fn serve_stops_on_sigterm_even_after_its_log_reader_has_gone() {
    let dir = reachable_tempdir("diplog-serve-");
    let data = dir.path().join("data");

    let server = tokio::task::spawn_blocking(move || start_serve(&data, false))
        .await
        .unwrap();
    // Requests make the server log into the closed pipe before the signal arrives.
    let read = diplog(["read", "--server", &server.grpc, "--all"]).await;
    assert!(read.status.success(), "{}", text(&read.stderr));
    let status = tokio::task::spawn_blocking(move || terminate(server))
        .await
        .unwrap();

    assert!(
        status.success(),
        "diplog serve exits 0 on SIGTERM, got {status:?}"
    );
}
