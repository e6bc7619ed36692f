//! The signing key follows the data: it lives under the data directory, a server refuses a
//! key other than the one that signed the log's heads unless told to rotate (and the rotation
//! is then an event in the log), and auditors can pin the key they know.

use std::path::Path;
use std::time::Duration;

use diplog::app::App;
use diplog::audit::signer::TreeSigner;
use diplog::config::ServerConfig;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{Expect, Serve, diplog, fresh_database, reachable_tempdir, spawn_app_with};

fn config_with_key(path: &Path, rotate: bool) -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.signing_key = Some(path.to_owned());
    config.rotate_signing_key = rotate;
    config
}

#[tokio::test]
async fn another_key_is_refused_unless_rotated_and_auditors_can_pin_the_key() {
    let keys = tempfile::tempdir().unwrap();
    let first_path = keys.path().join("first.pem");
    let second_path = keys.path().join("second.pem");
    let first = TreeSigner::load_or_create(&first_path).unwrap();
    let second = TreeSigner::load_or_create(&second_path).unwrap();
    let database = fresh_database().await;

    let app = spawn_app_with(database.clone(), config_with_key(&first_path, false)).await;
    app.append("s", Expect::Any, &[("Noted", "{}")])
        .await
        .unwrap();
    app.stop().await;

    // Another key on a non-empty log: refused, naming both keys and the way out.
    let pool = PgPoolOptions::new()
        .connect_with(database.clone())
        .await
        .unwrap();
    let refused = App::bind(config_with_key(&second_path, false), pool.clone())
        .await
        .err()
        .expect("another key is refused");
    let message = format!("{refused:#}");
    assert!(message.contains(&first.public_key_hex()), "{message}");
    assert!(message.contains(&second.public_key_hex()), "{message}");
    assert!(message.contains("--rotate-signing-key"), "{message}");
    // The same key again is fine.
    drop(
        App::bind(config_with_key(&first_path, false), pool.clone())
            .await
            .unwrap(),
    );

    // Rotation: accepted, and recorded in the log as an event.
    let app = spawn_app_with(database.clone(), config_with_key(&second_path, true)).await;
    let rotations: Vec<(String, String)> = sqlx::query_as(
        "select event_type, data_text from events where stream_id = 'diplog-signing-keys'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0].0, "SigningKeyRotated");
    let data: serde_json::Value = serde_json::from_str(&rotations[0].1).unwrap();
    assert_eq!(data["previous_public_key"], first.public_key_hex());
    assert_eq!(data["public_key"], second.public_key_hex());
    assert_eq!(data["log_head"], 1);

    // Pinning: the head must be signed by the pinned key, whatever the server serves.
    let server = app.server_url();
    let first_hex = keys.path().join("first.hex");
    std::fs::write(&first_hex, format!("{}\n", first.public_key_hex())).unwrap();
    let second_pem = keys.path().join("second.pub.pem");
    std::fs::write(&second_pem, second.public_key_pem()).unwrap();
    let (ok, _, stderr) = diplog([
        "tree-head",
        "--server",
        &server,
        "--public-key",
        first_hex.to_str().unwrap(),
    ])
    .split()
    .await;
    assert!(!ok, "a head from another key passed the pin");
    assert!(stderr.contains("not the pinned key"), "{stderr}");
    let saved = keys.path().join("head.json");
    // The tree builder signs behind the appends: wait until the head covers both events.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, stdout, stderr) = diplog([
            "tree-head",
            "--server",
            &server,
            "--public-key",
            second_pem.to_str().unwrap(),
            "--save",
            saved.to_str().unwrap(),
        ])
        .split()
        .await;
        assert!(ok, "{stderr}");
        if stdout.contains("\"tree_size\": 2") || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, _, stderr) = diplog([
        "verify",
        "--server",
        &server,
        "--since",
        saved.to_str().unwrap(),
        "--public-key",
        first_hex.to_str().unwrap(),
    ])
    .split()
    .await;
    assert!(!ok, "a saved head from another key passed the pin");
    assert!(stderr.contains("not the pinned key"), "{stderr}");
    let (ok, stdout, stderr) = diplog([
        "verify",
        "--server",
        &server,
        "--since",
        saved.to_str().unwrap(),
        "--public-key",
        second_pem.to_str().unwrap(),
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("consistent"), "{stdout}");
    app.stop().await;
}

#[tokio::test]
async fn serve_keeps_its_key_under_the_data_directory_and_refuses_a_leftover_one() {
    let work = reachable_tempdir("diplog-key-");
    let data_dir = work.path().join("data");
    let cwd = work.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let serve = |data_dir: &Path| {
        Serve::embedded(data_dir)
            .current_dir(&cwd)
            .env_remove("DIPLOG_SIGNING_KEY")
            // The default log level: INFO, no line per RPC.
            .env_remove("RUST_LOG")
            .within(Duration::from_secs(120))
    };
    let mut server = serve(&data_dir).start().await;
    for line in server.startup_log() {
        assert!(
            !line.contains("\"level\":\"DEBUG\""),
            "a DEBUG line by default: {line}"
        );
    }
    let serving = server.startup_log().last().expect("the serving line");
    assert!(
        serving.contains("\"dashboard\":\"http://127.0.0.1:"),
        "{serving}"
    );
    assert!(
        data_dir.join("signing-key.pem").exists(),
        "the key is under the data dir"
    );
    assert!(
        !cwd.join("diplog-signing-key.pem").exists(),
        "no key in the working dir"
    );
    let exit = server.terminate(Duration::from_secs(120)).await;
    let log = server.log();
    assert!(exit.success(), "the server stopped with {exit}: {log}");

    // A key an older diplog left in the working directory is not silently replaced.
    std::fs::write(cwd.join("diplog-signing-key.pem"), "old key").unwrap();
    let output = serve(&work.path().join("other-data")).output().await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("diplog-signing-key.pem") && stderr.contains("move it"),
        "{stderr}"
    );
}
