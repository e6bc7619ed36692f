//! Witnesses (C2SP tlog-witness): the server sends each new checkpoint, with a consistency
//! proof from the size the witness last cosigned, to a witness (here one the test runs, which
//! checks the log's signature and the proof as a witness must), and serves the witness's
//! cosignature with the checkpoint of that size.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use diplog::audit::witness::Witness;
use diplog::config::ServerConfig;
use diplog::domain::checkpoint::{Checkpoint, VerifierKey};
use diplog::domain::cosignature::{CosignerKey, cosignature_line, parse_add_checkpoint};
use diplog::domain::merkle::{self, Hash};
use ed25519_dalek::{Signer, SigningKey};

use crate::helpers::{Expect, TestApp, fresh_database, spawn_app_with};

/// A witness: the log key it trusts, the tree it last cosigned, its own key.
#[derive(Clone)]
struct TestWitness {
    log_key: Arc<Mutex<Option<VerifierKey>>>,
    cosigned: Arc<Mutex<(u64, Hash)>>,
    key: CosignerKey,
    signing: Arc<SigningKey>,
}

async fn add_checkpoint(State(witness): State<TestWitness>, body: String) -> Response {
    let Some((old_size, proof, note)) = parse_add_checkpoint(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(log_key) = witness.log_key.lock().unwrap().clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(checkpoint) = Checkpoint::open(note, &log_key) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let mut cosigned = witness.cosigned.lock().unwrap();
    if old_size != cosigned.0 {
        return (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{}\n", cosigned.0),
        )
            .into_response();
    }
    let consistent = if old_size == 0 {
        proof.is_empty()
    } else {
        merkle::verify_consistency(
            old_size,
            checkpoint.size,
            &cosigned.1,
            &checkpoint.root,
            &proof,
        )
        .is_ok()
    };
    if !consistent {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    *cosigned = (checkpoint.size, checkpoint.root);
    let body = checkpoint.body();
    cosignature_line(&witness.key, 1_700_000_000 + checkpoint.size, &body, |m| {
        witness.signing.sign(m).to_bytes()
    })
    .into_response()
}

async fn start_witness() -> (TestWitness, SocketAddr) {
    let signing = SigningKey::from_bytes(&[5; 32]);
    let witness = TestWitness {
        log_key: Arc::default(),
        cosigned: Arc::new(Mutex::new((0, merkle::empty_root()))),
        key: CosignerKey {
            name: "witness.example/w1".into(),
            public_key: signing.verifying_key().to_bytes(),
        },
        signing: Arc::new(signing),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .with_state(witness.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (witness, addr)
}

/// Waits until the served checkpoint is of `size` and carries the witness's line.
async fn cosigned_checkpoint(app: &TestApp, witness: &TestWitness, size: u64) -> String {
    let log_key = witness.log_key.lock().unwrap().clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = crate::dashboard::get(app.http_addr, "/checkpoint").await;
        let checkpoint =
            Checkpoint::open(&answer.body, &log_key).expect("the log's signature holds");
        let line = answer
            .body
            .lines()
            .find(|line| line.starts_with("\u{2014} witness.example/w1 "));
        if let Some(line) = line
            && checkpoint.size == size
        {
            assert_eq!(
                witness.key.verify_line(line, &checkpoint.body()),
                Some(1_700_000_000 + size)
            );
            return answer.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cosignature at size {size}: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_witness_cosigns_each_new_checkpoint_given_a_consistency_proof() {
    let (witness, addr) = start_witness().await;
    let config = ServerConfig {
        witnesses: vec![Witness {
            key: witness.key.clone(),
            url: format!("http://{addr}"),
        }],
        ..ServerConfig::ephemeral()
    };
    let app = spawn_app_with(fresh_database().await, config).await;
    let served = diplog::proto::audit_client::AuditClient::new(app.channel().await)
        .get_public_key(())
        .await
        .unwrap()
        .into_inner();
    *witness.log_key.lock().unwrap() = Some(VerifierKey::parse(&served.vkey).unwrap());

    for i in 0..5 {
        app.append("w-1", Expect::Any, &[("Noted", &format!(r#"{{"n":{i}}}"#))])
            .await
            .unwrap();
    }
    let first = cosigned_checkpoint(&app, &witness, 5).await;
    for i in 5..12 {
        app.append("w-1", Expect::Any, &[("Noted", &format!(r#"{{"n":{i}}}"#))])
            .await
            .unwrap();
    }
    // The witness cosigns 12 only with a proof from 5 that it checked.
    cosigned_checkpoint(&app, &witness, 12).await;
    assert_eq!(witness.cosigned.lock().unwrap().0, 12);

    // Readers that know only the log's key still verify it (Go: an unknown key's line is
    // left unverified), and the tiles prove 12 extends the cosigned 5.
    if let Some(program) = crate::tlog::build_go_checker() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("cosigned-5");
        std::fs::write(&old, first).unwrap();
        let output = tokio::process::Command::new(program)
            .args([
                "-url",
                &format!("http://{}", app.http_addr),
                "-vkey",
                &served.vkey,
            ])
            .arg("-old")
            .arg(&old)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    app.stop().await;
}

#[test]
fn a_witness_is_its_cosigner_key_then_at_its_url() {
    let key = CosignerKey {
        name: "witness.example/w1".into(),
        public_key: SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes(),
    };
    let parsed =
        diplog::audit::witness::parse_witness(&format!("{key}=https://witness.example/w1/"))
            .unwrap();
    assert_eq!(parsed.key, key);
    assert_eq!(parsed.url, "https://witness.example/w1");
    assert!(diplog::audit::witness::parse_witness(&key.to_string()).is_err());
    let log_key = format!("{}@https://w.example", "x+00000000+AQ==");
    assert!(diplog::audit::witness::parse_witness(&log_key).is_err());
}

/// `/checkpoint` of `app`, once its tree is of `size`.
async fn checkpoint_of_size(app: &TestApp, size: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = crate::dashboard::get(app.http_addr, "/checkpoint")
            .await
            .body;
        if body.lines().nth(1) == Some(&size.to_string()) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no size {size}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `diplog witness` in a process of its own on `port`, following `log`.
fn run_witness(data_dir: &std::path::Path, log: &str, port: u16) -> tokio::process::Child {
    tokio::process::Command::new(crate::helpers::diplog_binary())
        .args([
            "witness",
            "--log",
            log,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("diplog witness starts")
}

/// `diplog witness` cosigns a log's checkpoints, keeps what it cosigned across its restart,
/// and refuses the log once its history is rewritten and its tree rebuilt (a fork), which
/// then serves its checkpoint without the witness's line; `verify --since` with a witness
/// requirement catches it.
#[tokio::test]
async fn diplog_witness_cosigns_a_log_and_refuses_its_rewritten_history_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let vkey = crate::helpers::diplog(
        ["witness", "--vkey", "--data-dir"]
            .iter()
            .copied()
            .chain([dir.path().to_str().unwrap()]),
    )
    .await;
    assert!(vkey.status.success(), "{}", crate::helpers::shown(&vkey));
    let witness_vkey = String::from_utf8(vkey.stdout).unwrap().trim().to_owned();
    let witness_key = CosignerKey::parse(&witness_vkey).expect("a cosigner key");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = || ServerConfig {
        witnesses: vec![
            diplog::audit::witness::parse_witness(&format!(
                "{witness_vkey}=http://127.0.0.1:{port}"
            ))
            .unwrap(),
        ],
        signing_key: Some(crate::helpers::test_signing_key()),
        ..ServerConfig::ephemeral()
    };
    let witness_line = |body: &str| {
        body.lines()
            .find(|line| line.starts_with(&format!("\u{2014} {} ", witness_key.name)))
            .map(str::to_owned)
    };

    let app = spawn_app_with(fresh_database().await, config()).await;
    let log_vkey = diplog::proto::audit_client::AuditClient::new(app.channel().await)
        .get_public_key(())
        .await
        .unwrap()
        .into_inner()
        .vkey;
    let log = format!("{log_vkey}=http://{}", app.http_addr);
    let mut witness = run_witness(dir.path(), &log, port);
    for i in 0..5 {
        app.append("w-2", Expect::Any, &[("Noted", &format!(r#"{{"n":{i}}}"#))])
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cosigned = loop {
        let body = checkpoint_of_size(&app, 5).await;
        if let Some(line) = witness_line(&body) {
            break (body, line);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never cosigned: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let checkpoint = Checkpoint::open(&cosigned.0, &VerifierKey::parse(&log_vkey).unwrap())
        .expect("the log's signature holds");
    assert!(
        witness_key
            .verify_line(&cosigned.1, &checkpoint.body())
            .is_some()
    );

    // An auditor's `verify --since` can require the witness's cosignature (K of N).
    let saved = dir.path().join("head-5.json");
    let server = app.server_url();
    let save = crate::helpers::diplog([
        "tree-head",
        "--server",
        &server,
        "--save",
        saved.to_str().unwrap(),
    ])
    .await;
    assert!(save.status.success(), "{}", crate::helpers::shown(&save));
    let verify = |witnesses: Vec<String>, min: Option<&str>| {
        let mut args = vec![
            "verify".to_owned(),
            "--server".to_owned(),
            server.clone(),
            "--since".to_owned(),
            saved.to_str().unwrap().to_owned(),
        ];
        for witness in witnesses {
            args.extend(["--witness".to_owned(), witness]);
        }
        if let Some(min) = min {
            args.extend(["--min-witnesses".to_owned(), min.to_owned()]);
        }
        crate::helpers::diplog(args)
    };
    let other = CosignerKey {
        name: "other.example/w".into(),
        public_key: SigningKey::from_bytes(&[9; 32]).verifying_key().to_bytes(),
    }
    .to_string();
    let one = verify(vec![witness_vkey.clone()], None).await;
    assert!(one.status.success(), "{}", crate::helpers::shown(&one));
    assert!(
        crate::helpers::text(&one.stdout).contains("cosigned by 1 of 1 witnesses"),
        "{}",
        crate::helpers::shown(&one)
    );
    let one_of_two = verify(vec![witness_vkey.clone(), other.clone()], Some("1")).await;
    assert!(
        one_of_two.status.success(),
        "{}",
        crate::helpers::shown(&one_of_two)
    );
    let both = verify(vec![witness_vkey.clone(), other], None).await;
    assert_eq!(
        both.status.code(),
        Some(1),
        "{}",
        crate::helpers::shown(&both)
    );
    assert!(
        crate::helpers::text(&both.stderr).contains("only 1 of the 2 witnesses named cosigned"),
        "{}",
        crate::helpers::shown(&both)
    );
    // The witness restarts: what it cosigned is in its state file.
    witness.kill().await.unwrap();
    let mut witness = run_witness(dir.path(), &log, port);
    // History rewritten behind the server's back, as the audit tests do: an earlier event
    // changed and the whole tree rebuilt over the new history, so the database agrees with
    // itself again; then the log grows to 7.
    let mut connection = sqlx::ConnectOptions::connect(&app.db_options)
        .await
        .unwrap();
    sqlx::raw_sql(
        "set session_replication_role = replica; \
         update events set data_text = '{\"n\":\"rewritten\"}', data = '{\"n\":\"rewritten\"}' \
             where position = 2; \
         delete from merkle_nodes; \
         update tree_head set size = 0, root = sha256(''), peaks = '{}'; \
         set session_replication_role = origin;",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    for i in 5..7 {
        app.append("w-2", Expect::Any, &[("Noted", &format!(r#"{{"n":{i}}}"#))])
            .await
            .unwrap();
    }
    let forked = app;
    let body = checkpoint_of_size(&forked, 7).await;
    // The server offers 7 with a proof from 5 over its rebuilt tree, which fails.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let body_later = checkpoint_of_size(&forked, 7).await;
    assert_eq!(witness_line(&body), None, "{body}");
    assert_eq!(
        witness_line(&body_later),
        None,
        "a fork is never cosigned: {body_later}"
    );
    // An auditor catches the fork: against the head saved before, the rewritten log is no
    // extension; and a head of its own has no witness behind it.
    let forked_server = forked.server_url();
    let since_first = crate::helpers::diplog([
        "verify",
        "--server",
        &forked_server,
        "--since",
        saved.to_str().unwrap(),
        "--witness",
        &witness_vkey,
    ])
    .await;
    assert_eq!(
        since_first.status.code(),
        Some(1),
        "{}",
        crate::helpers::shown(&since_first)
    );
    let own = dir.path().join("forked-head.json");
    let save = crate::helpers::diplog([
        "tree-head",
        "--server",
        &forked_server,
        "--save",
        own.to_str().unwrap(),
    ])
    .await;
    assert!(save.status.success(), "{}", crate::helpers::shown(&save));
    let unwitnessed = crate::helpers::diplog([
        "verify",
        "--server",
        &forked_server,
        "--since",
        own.to_str().unwrap(),
        "--witness",
        &witness_vkey,
    ])
    .await;
    assert_eq!(
        unwitnessed.status.code(),
        Some(1),
        "{}",
        crate::helpers::shown(&unwitnessed)
    );
    assert!(
        crate::helpers::text(&unwitnessed.stderr).contains("only 0 of the 1 witnesses"),
        "{}",
        crate::helpers::shown(&unwitnessed)
    );
    let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(state.contains("5"), "{state}");
    forked.stop().await;
    // It was asked, and said why it refused.
    witness.kill().await.unwrap();
    let mut log = String::new();
    use tokio::io::AsyncReadExt;
    witness
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(
        log.contains("does not extend the tree this witness cosigned"),
        "{log}"
    );
}
