//! The audit tree over gRPC and from the CLI: signed heads, inclusion and consistency proofs
//! checked with the public key alone, `diplog verify` naming the position of each kind of
//! tampering, and a saved head that no longer verifies after history is rewritten.

use std::time::Duration;

use diplog::audit::builder::leaf_of;
use diplog::domain::audit_head::{SignedTreeHead, TreeHead};
use diplog::domain::merkle::{self, Hash};
use diplog::proto::{self, audit_client::AuditClient};
use sqlx::ConnectOptions;

use crate::helpers::{Expect, TestApp, diplog, spawn_app};

async fn client(app: &TestApp) -> AuditClient<tonic::transport::Channel> {
    AuditClient::new(app.channel().await)
}

fn signed(head: proto::SignedTreeHead) -> SignedTreeHead {
    SignedTreeHead {
        head: TreeHead {
            size: head.tree_size as u64,
            root: head.root_hash.try_into().unwrap(),
            timestamp_ms: head.timestamp_ms as u64,
        },
        signature: head.signature.try_into().unwrap(),
    }
}

/// Waits until the tree covers the whole log; answers its signed head.
async fn settled_head(app: &TestApp) -> SignedTreeHead {
    let log_head = app
        .client
        .clone()
        .get_head(())
        .await
        .unwrap()
        .into_inner()
        .position as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let head = client(app)
            .await
            .get_tree_head(proto::GetTreeHeadRequest { tree_size: 0 })
            .await
            .unwrap()
            .into_inner();
        if head.tree_size as u64 >= log_head {
            return signed(head);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tree did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn append_numbered(app: &TestApp, count: usize) {
    for i in 0..count {
        let stream = format!("s-{}", i % 3);
        let data = format!(r#"{{"n":{i}}}"#);
        app.append(&stream, Expect::Any, &[("Noted", &data)])
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn signed_heads_and_proofs_verify_with_the_public_key_alone() {
    let app = spawn_app().await;
    append_numbered(&app, 23).await;
    let head = settled_head(&app).await;
    assert_eq!(head.head.size, 23);

    let mut audit_client = client(&app).await;
    let key: [u8; 32] = audit_client
        .get_public_key(())
        .await
        .unwrap()
        .into_inner()
        .ed25519
        .try_into()
        .unwrap();
    head.verify(&key)
        .expect("the head is signed by the server's key");

    // The root, recomputed here from the rows by the documented encoding, matches the head.
    let leaves: Vec<Hash> = app.stored_events().await.iter().map(leaf_of).collect();
    assert_eq!(merkle::root_of(&leaves), head.head.root);

    for position in 1..=23u64 {
        for tree_size in [position, 23] {
            let proof = audit_client
                .get_inclusion_proof(proto::InclusionProofRequest {
                    event: Some(proto::inclusion_proof_request::Event::Position(
                        position as i64,
                    )),
                    tree_size: tree_size as i64,
                })
                .await
                .unwrap()
                .into_inner();
            let tree = signed(proof.tree_head.unwrap());
            tree.verify(&key).unwrap();
            let path: Vec<Hash> = proof
                .audit_path
                .into_iter()
                .map(|h| h.try_into().unwrap())
                .collect();
            let leaf: Hash = proof.leaf_hash.try_into().unwrap();
            assert_eq!(leaf, leaves[position as usize - 1]);
            merkle::verify_inclusion(&leaf, position - 1, tree.head.size, &path, &tree.head.root)
                .unwrap_or_else(|e| panic!("position {position} in {tree_size}: {e}"));
        }
    }
    for old_size in 0..=23u64 {
        let proof = audit_client
            .get_consistency_proof(proto::ConsistencyProofRequest {
                old_size: old_size as i64,
                new_size: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let (old, new) = (
            signed(proof.old_head.unwrap()),
            signed(proof.new_head.unwrap()),
        );
        old.verify(&key).unwrap();
        assert_eq!(old.head.root, merkle::root_of(&leaves[..old_size as usize]));
        let path: Vec<Hash> = proof
            .proof
            .into_iter()
            .map(|h| h.try_into().unwrap())
            .collect();
        merkle::verify_consistency(
            old_size,
            new.head.size,
            &old.head.root,
            &new.head.root,
            &path,
        )
        .unwrap_or_else(|e| panic!("{old_size} -> 23: {e}"));
    }

    // Questions past what the tree holds are refused, naming why.
    let past = audit_client
        .get_inclusion_proof(proto::InclusionProofRequest {
            event: Some(proto::inclusion_proof_request::Event::Position(24)),
            tree_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(past.code(), tonic::Code::OutOfRange, "{past:?}");
    let unknown = audit_client
        .get_inclusion_proof(proto::InclusionProofRequest {
            event: Some(proto::inclusion_proof_request::Event::EventId(
                uuid::Uuid::new_v4().to_string(),
            )),
            tree_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
    app.stop().await;
}

async fn verify_database(app: &TestApp) -> (bool, String) {
    let url = app.db_options.to_url_lossy().to_string();
    diplog(vec!["verify".into(), "--database-url".into(), url])
        .combined()
        .await
}

/// As a superuser with the append-only triggers off, as a rogue administrator would.
async fn behind_the_servers_back(app: &TestApp, sql: &str) {
    let mut connection = app.db_options.connect().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "set session_replication_role = replica; {sql}; set session_replication_role = origin;"
    )))
    .execute(&mut connection)
    .await
    .unwrap();
}

/// Swaps the events at positions 3 and 8 (run twice, it swaps them back).
const SWAP_3_AND_8: &str = "update events set position = 1000000 where position = 3; \
     update events set position = 3 where position = 8; \
     update events set position = 8 where position = 1000000";

#[tokio::test]
async fn verify_names_the_position_of_a_changed_a_deleted_and_a_swapped_event() {
    let app = spawn_app().await;
    append_numbered(&app, 12).await;
    settled_head(&app).await;
    let (ok, text) = verify_database(&app).await;
    assert!(ok, "{text}");
    assert!(text.contains("verified: 12 events"), "{text}");

    // One byte of one payload.
    behind_the_servers_back(
        &app,
        "update events set data_text = replace(data_text, '\"n\":4', '\"n\":5') where position = 5",
    )
    .await;
    let (ok, text) = verify_database(&app).await;
    assert!(!ok && text.contains("position 5:"), "{text}");
    behind_the_servers_back(
        &app,
        "update events set data_text = replace(data_text, '\"n\":5', '\"n\":4') where position = 5",
    )
    .await;
    assert!(verify_database(&app).await.0, "restored");

    // Two rows swapped.
    behind_the_servers_back(&app, SWAP_3_AND_8).await;
    let (ok, text) = verify_database(&app).await;
    assert!(!ok && text.contains("position 3:"), "{text}");
    behind_the_servers_back(&app, SWAP_3_AND_8).await;
    assert!(verify_database(&app).await.0, "restored");

    // A row deleted.
    behind_the_servers_back(&app, "delete from events where position = 7").await;
    let (ok, text) = verify_database(&app).await;
    assert!(
        !ok && text.contains("position 7:") && text.contains("missing"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_saved_head_verifies_as_the_log_grows_and_fails_after_a_rewrite() {
    let app = spawn_app().await;
    append_numbered(&app, 9).await;
    settled_head(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("head.json");
    let server = app.server_url();
    let (ok, text) = diplog(vec![
        "tree-head".into(),
        "--server".into(),
        server.clone(),
        "--save".into(),
        saved.display().to_string(),
    ])
    .combined()
    .await;
    assert!(ok, "{text}");

    append_numbered(&app, 5).await;
    settled_head(&app).await;
    let since = vec![
        "verify".into(),
        "--server".into(),
        server.clone(),
        "--since".into(),
        saved.display().to_string(),
    ];
    let (ok, text) = diplog(since.clone()).combined().await;
    assert!(
        ok && text.contains("consistent: the log of 14 events"),
        "{text}"
    );

    // The proof of one event, checked by the CLI.
    let event_id: uuid::Uuid = sqlx::query_scalar("select event_id from events where position = 4")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (ok, text) = diplog(vec![
        "proof".into(),
        "--server".into(),
        server.clone(),
        event_id.to_string(),
    ])
    .combined()
    .await;
    assert!(ok && text.contains("\"verified\": true"), "{text}");

    // A rewrite: an earlier event changed and the whole tree rebuilt over the new history, so
    // the database agrees with itself again. The saved head exposes it.
    behind_the_servers_back(
        &app,
        "update events set data_text = '{\"n\":\"rewritten\"}', data = '{\"n\":\"rewritten\"}' where position = 2; \
         delete from merkle_nodes; \
         update tree_head set size = 0, root = sha256(''), peaks = '{}'",
    )
    .await;
    settled_head(&app).await;
    assert!(
        verify_database(&app).await.0,
        "the rebuilt tree agrees with the rewritten rows"
    );
    let (ok, text) = diplog(since).combined().await;
    assert!(
        !ok && text.contains("does NOT extend the saved head of size 9"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_restores_to_the_same_root_and_a_tampered_one_is_refused_by_line() {
    use diplog::import::{self, OnInvalid, scenario};

    let app = spawn_app().await;
    let parsed = scenario::parse(scenario::FOUNDING_SCENARIO).expect("the founding scenario");
    import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("imported");
    append_numbered(&app, 4).await;
    let head = settled_head(&app).await;
    let original_channels = channel_rows(&app, head.head.size).await;

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("log.ndjson");
    let output = diplog(["export", "--server", &app.server_url()]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(&export, &output.stdout).unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text.lines().count() as u64,
        head.head.size + 1,
        "every event and the head"
    );
    assert!(text.lines().last().unwrap().starts_with("{\"tree_head\""));
    assert!(
        text.contains("Лавров") || text.contains("\\u04"),
        "payloads as appended"
    );

    // The Python verifier re-encodes every event by the documented encoding on its own.
    let python = |file: &std::path::Path| {
        std::process::Command::new("python3")
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verify_export.py"))
            .arg(file)
            .output()
    };
    match python(&export) {
        Ok(out) => {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{said}");
            assert!(said.contains(&hex::encode(head.head.root)), "{said}");
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: python3 is not installed, so the Python export verifier did not run"
            );
        }
        Err(error) => panic!("could not run python3: {error}"),
    }

    // A tampered copy: one payload byte on the 5th line.
    let tampered = dir.path().join("tampered.ndjson");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = lines[4].replacen("\"data\":{", "\"data\":{ ", 1);
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    if let Ok(out) = python(&tampered) {
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success() && said.contains("line 5:"), "{said}");
    }
    let empty = crate::helpers::fresh_database().await;
    let empty_url = empty.to_url_lossy().to_string();
    let (ok, said) = diplog(vec![
        "restore".into(),
        "--database-url".into(),
        empty_url.clone(),
        tampered.display().to_string(),
    ])
    .combined()
    .await;
    assert!(
        !ok && said.contains("line 5:") && said.contains("nothing was restored"),
        "{said}"
    );

    let (ok, said) = diplog(vec![
        "restore".into(),
        "--database-url".into(),
        empty_url.clone(),
        export.display().to_string(),
    ])
    .combined()
    .await;
    assert!(ok, "{said}");
    assert!(said.contains(&hex::encode(head.head.root)), "{said}");
    // Into a database that is not empty: refused.
    let (ok, said) = diplog(vec![
        "restore".into(),
        "--database-url".into(),
        empty_url.clone(),
        export.display().to_string(),
    ])
    .combined()
    .await;
    assert!(!ok && said.contains("not empty"), "{said}");

    // A server on the restored database: the same tree, and projections rebuilt from the log.
    let restored = crate::helpers::spawn_app_on(empty).await;
    let restored_head = settled_head(&restored).await;
    assert_eq!(
        (restored_head.head.size, restored_head.head.root),
        (head.head.size, head.head.root)
    );
    assert_eq!(
        channel_rows(&restored, head.head.size).await,
        original_channels
    );
    let (ok, said) = verify_database(&restored).await;
    assert!(ok, "{said}");
    restored.stop().await;
    app.stop().await;
}

/// The channels, as the log determines them (not the ages reckoned at the moment of asking).
async fn channel_rows(app: &TestApp, min_position: u64) -> Vec<(String, usize, u32, String)> {
    let mut client = proto::projections_client::ProjectionsClient::new(app.channel().await);
    let request = proto::ListRequest {
        read: Some(proto::ReadOptions {
            min_position,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut channels = client
        .list_channels(request)
        .await
        .unwrap()
        .into_inner()
        .channels;
    channels.sort_by(|a, b| a.key.cmp(&b.key));
    channels
        .into_iter()
        .map(|c| (c.key, c.parties.len(), c.contacts, c.established_by))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_signing_key_is_kept_across_restarts_and_old_heads_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = diplog::config::ServerConfig::ephemeral();
    config.signing_key = Some(dir.path().join("tree-head.pem"));
    let database = crate::helpers::fresh_database().await;
    let first = crate::helpers::spawn_app_with(database.clone(), config.clone()).await;
    append_numbered(&first, 3).await;
    let before = settled_head(&first).await;
    let key = client(&first)
        .await
        .get_public_key(())
        .await
        .unwrap()
        .into_inner()
        .ed25519;
    first.stop().await;

    let second = crate::helpers::spawn_app_with(database, config).await;
    let again = client(&second)
        .await
        .get_public_key(())
        .await
        .unwrap()
        .into_inner()
        .ed25519;
    assert_eq!(again, key, "the same key after a restart");
    before
        .verify(&key.try_into().unwrap())
        .expect("a head signed before the restart");
    second.stop().await;
}

/// One tree builder at a time across servers; when its server goes, another takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_server_takes_over_building_the_tree() {
    let database = crate::helpers::fresh_database().await;
    let first = crate::helpers::spawn_app_on(database.clone()).await;
    append_numbered(&first, 3).await;
    // The first server builds (it was alone when its builder took the lock).
    settled_head(&first).await;
    let second = crate::helpers::spawn_app_on(database).await;
    first.stop().await;
    append_numbered(&second, 4).await;
    let head = settled_head(&second).await;
    assert_eq!(head.head.size, 7);
    let leaves: Vec<Hash> = second.stored_events().await.iter().map(leaf_of).collect();
    assert_eq!(head.head.root, merkle::root_of(&leaves));
    let (ok, text) = verify_database(&second).await;
    assert!(ok, "{text}");
    second.stop().await;
}

#[tokio::test]
async fn bad_audit_requests_name_the_field_and_sizes_past_the_head_are_out_of_range() {
    use proto::inclusion_proof_request::Event;
    use tonic::Code;

    use crate::helpers::violated_fields;

    let app = spawn_app().await;
    append_numbered(&app, 3).await;
    settled_head(&app).await;
    let mut audit_client = client(&app).await;
    let inclusion = |event, tree_size| proto::InclusionProofRequest { event, tree_size };
    for (request, field) in [
        (inclusion(Some(Event::Position(-1)), 0), "position"),
        (
            inclusion(Some(Event::EventId("nope".into())), 0),
            "event_id",
        ),
        (inclusion(None, 0), "event"),
        (inclusion(Some(Event::Position(1)), -2), "tree_size"),
    ] {
        let status = audit_client.get_inclusion_proof(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    let status = audit_client
        .get_consistency_proof(proto::ConsistencyProofRequest {
            old_size: -1,
            new_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["old_size"], "{status:?}");
    for status in [
        audit_client
            .get_consistency_proof(proto::ConsistencyProofRequest {
                old_size: 4,
                new_size: 0,
            })
            .await
            .unwrap_err(),
        audit_client
            .get_tree_head(proto::GetTreeHeadRequest { tree_size: 4 })
            .await
            .unwrap_err(),
        audit_client
            .get_inclusion_proof(inclusion(Some(Event::Position(0)), 0))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    }
    app.stop().await;
}

/// `verify` reads an existing log: with no cluster where it looks, it says so and creates
/// nothing (it used to initialise an empty cluster, then fail on a missing table).
#[tokio::test]
async fn verify_without_a_data_directory_refuses_and_creates_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let output = diplog(["verify"]).current_dir(cwd.path()).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("there is no diplog data directory at ./diplog-data"),
        "{stderr}"
    );
    assert!(
        !cwd.path().join("diplog-data").exists(),
        "a cluster was created"
    );
}

/// A consistency proof names the size at fault: an old size over the new one is
/// INVALID_ARGUMENT naming `old_size`; a size past the head is OUT_OF_RANGE naming its field
/// and the real head.
#[tokio::test]
async fn proof_requests_name_the_size_at_fault_and_the_real_head() {
    use tonic::Code;

    use crate::helpers::violated_fields;

    let app = spawn_app().await;
    append_numbered(&app, 3).await;
    settled_head(&app).await;
    let mut audit_client = client(&app).await;
    let consistency = |old_size, new_size| proto::ConsistencyProofRequest { old_size, new_size };

    let status = audit_client
        .get_consistency_proof(consistency(3, 2))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["old_size"]);
    assert!(
        status.message().contains("new_size 2"),
        "{}",
        status.message()
    );

    for (request, field) in [
        (consistency(4, 0), "old_size"),
        (consistency(1, 5), "new_size"),
    ] {
        let status = audit_client
            .get_consistency_proof(request)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
        assert!(
            status.message().contains("current tree head 3"),
            "{}",
            status.message()
        );
    }
    let status = audit_client
        .get_tree_head(proto::GetTreeHeadRequest { tree_size: 9 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(violated_fields(&status), ["tree_size"], "{status:?}");
    assert!(
        audit_client
            .get_consistency_proof(consistency(2, 3))
            .await
            .is_ok()
    );

    app.stop().await;
}

/// An inclusion proof by event id takes the id only in its hyphenated 8-4-4-4-12 form.
#[tokio::test]
async fn an_inclusion_proof_takes_event_ids_only_in_their_hyphenated_form() {
    use proto::inclusion_proof_request::Event;
    use tonic::Code;

    use crate::helpers::violated_fields;

    let app = spawn_app().await;
    append_numbered(&app, 1).await;
    settled_head(&app).await;
    let mut audit_client = client(&app).await;
    let by_id = |raw: String| proto::InclusionProofRequest {
        event: Some(Event::EventId(raw)),
        tree_size: 0,
    };
    let id = app.stored_events().await[0].event_id;
    for raw in [
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
    ] {
        let status = audit_client
            .get_inclusion_proof(by_id(raw))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), ["event_id"]);
    }
    let proof = audit_client
        .get_inclusion_proof(by_id(id.to_string().to_uppercase()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof.position, 1);
    app.stop().await;
}
