//! Principals and roles: every RPC family and page against every role (a table), expired and
//! revoked tokens, the principal stamped on appended events (and not forgeable), the token
//! CLI end to end, and tokens kept out of the logs of a real `diplog serve`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use diplog::audit::builder::leaf_of;
use diplog::auth::Role;
use diplog::auth::client::{AuthChannel, Bearer};
use diplog::auth::tokens::{TokenName, TokenStore};
use diplog::config::{AuthMode, ServerConfig};
use diplog::proto::{
    self, admin_client::AdminClient, audit_client::AuditClient, diplomacy_client::DiplomacyClient,
    event_log_client::EventLogClient, projections_client::ProjectionsClient,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::helpers::{
    Expect, Serve, TestApp, append_request, diplog, fresh_database, new_event, record_request,
    spawn_app_with, typed_event,
};

fn tokens_config() -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.auth.mode = AuthMode::Tokens;
    config
}

async fn spawn_token_app() -> TestApp {
    spawn_app_with(fresh_database().await, tokens_config()).await
}

async fn mint(app: &TestApp, name: &str, roles: &[Role]) -> String {
    let (_, secret) = TokenStore::new(app.pool.clone())
        .create(&TokenName::parse(name).unwrap(), roles, None)
        .await
        .expect("a token is made");
    secret.expose().to_owned()
}

async fn channel(app: &TestApp, token: Option<&str>) -> AuthChannel {
    let token = token.map(|t| t.parse().unwrap());
    Bearer::new(token.as_ref())
        .unwrap()
        .channel(app.channel().await)
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// A typed event that needs nothing else in the log: an actor registering.
fn actor_record() -> proto::RecordRequest {
    let actor = format!("person-{}", uuid::Uuid::new_v4().simple());
    let stream = format!("actor-{actor}");
    let json = json!({
        "occurred": {"day": "2025-02-15"},
        "actor_registered": {"actor": {"id": actor, "kind": "PERSON", "name": "Test Person"}}
    });
    record_request(&stream, vec![typed_event(json)])
}

/// `GET path` with an optional bearer token: the status and the head.
async fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the dashboard answers");
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        raw.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&raw);
        // The live stream never ends: its head is enough.
        if read == 0 || (text.contains("text/event-stream") && text.contains("\r\n\r\n")) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap().to_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head)
}

/// One call of each RPC family (and page), answering its code (HTTP: mapped to the gRPC code
/// of the same meaning, so one table holds both).
async fn call(app: &TestApp, family: &str, token: Option<&str>) -> Code {
    let ch = channel(app, token).await;
    match family {
        "health" => {
            let mut client = tonic_health::pb::health_client::HealthClient::new(ch);
            code(
                client
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await,
            )
        }
        "log read" => code(
            EventLogClient::new(ch)
                .read_all(crate::helpers::read_all_from(1))
                .await,
        ),
        "log read batches" => code(
            EventLogClient::new(ch)
                .read_all_batches(proto::ReadAllBatchesRequest::default())
                .await,
        ),
        "stream read batches" => code(
            EventLogClient::new(ch)
                .read_stream_batches(proto::ReadStreamBatchesRequest {
                    read: Some(proto::ReadStreamRequest {
                        stream_id: "table-1".into(),
                        ..Default::default()
                    }),
                    max_batch_bytes: None,
                })
                .await,
        ),
        "head" => code(EventLogClient::new(ch).get_head(()).await),
        "append" => code(
            EventLogClient::new(ch)
                .append(append_request(
                    "table-1",
                    Expect::Any,
                    vec![new_event("Noted", "{}")],
                ))
                .await,
        ),
        "record" => code(DiplomacyClient::new(ch).record(actor_record()).await),
        "subscribe" => code(
            EventLogClient::new(ch)
                .subscribe(proto::SubscribeRequest {
                    from: Some(proto::subscribe_request::From::Start(())),
                    ..Default::default()
                })
                .await,
        ),
        "projections read" => code(
            ProjectionsClient::new(ch)
                .list_channels(proto::ListRequest::default())
                .await,
        ),
        "as-of read" => code(
            ProjectionsClient::new(ch)
                .list_channels(proto::ListRequest {
                    read: Some(proto::ReadOptions {
                        as_of: Some(proto::read_options::AsOf::AsOfPosition(1)),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await,
        ),
        "on-day read" => code(
            ProjectionsClient::new(ch)
                .list_channels(proto::ListRequest {
                    read: Some(proto::ReadOptions {
                        on_day: "2025-02-15".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await,
        ),
        "rebuild" => code(
            ProjectionsClient::new(ch)
                .rebuild(proto::RebuildRequest {
                    name: "summits".into(),
                })
                .await,
        ),
        "audit" => code(AuditClient::new(ch).get_public_key(()).await),
        "token admin" => code(AdminClient::new(ch).list_tokens(()).await),
        "page" | "as-of page" | "on-day page" | "health page" => {
            let path = match family {
                "page" => "/channels",
                "as-of page" => "/channels?as_of=1",
                "on-day page" => "/channels?on=2025-02-15",
                _ => "/healthz",
            };
            let (status, head) = http_get(app.http_addr, path, token).await;
            match status {
                200 => Code::Ok,
                401 => {
                    assert!(head.contains("www-authenticate: Bearer"), "{head}");
                    Code::Unauthenticated
                }
                403 => Code::PermissionDenied,
                other => panic!("GET {path}: unexpected {other}"),
            }
        }
        other => panic!("no family {other}"),
    }
}

#[tokio::test]
async fn each_role_against_each_rpc_family_and_page() {
    let app = spawn_token_app().await;
    let reader = mint(&app, "the-reader", &[Role::Reader]).await;
    let writer = mint(&app, "the-writer", &[Role::Writer]).await;
    let auditor = mint(&app, "the-auditor", &[Role::Auditor]).await;
    let admin = mint(&app, "the-admin", &[Role::Admin]).await;
    // Well formed, but no such token; and not a token at all.
    let unknown = format!("diplog_{}_{}", "0".repeat(16), "1".repeat(64));
    let callers: [(&str, Option<&str>); 7] = [
        ("reader", Some(&reader)),
        ("writer", Some(&writer)),
        ("auditor", Some(&auditor)),
        ("admin", Some(&admin)),
        ("none", None),
        ("unknown", Some(&unknown)),
        ("malformed", Some("hunter2")),
    ];
    // Something to read as of position 1.
    assert_eq!(call(&app, "append", Some(&writer)).await, Code::Ok);

    // o: OK, d: PERMISSION_DENIED, u: UNAUTHENTICATED, for the callers above in order.
    let table = [
        ("health", "ooooooo"),
        ("health page", "ooooooo"),
        ("log read", "oooouuu"),
        // The batched reads need what the one-event reads need.
        ("log read batches", "oooouuu"),
        ("stream read batches", "oooouuu"),
        ("head", "oooouuu"),
        ("subscribe", "oooouuu"),
        ("projections read", "oooouuu"),
        ("page", "oooouuu"),
        ("append", "dodouuu"),
        ("record", "dodouuu"),
        ("as-of read", "ddoouuu"),
        ("as-of page", "ddoouuu"),
        // The state on a day is a reader's question.
        ("on-day read", "oooouuu"),
        ("on-day page", "oooouuu"),
        ("audit", "ddoouuu"),
        ("rebuild", "dddouuu"),
        ("token admin", "dddouuu"),
    ];
    let mut wrong = Vec::new();
    for (family, expected) in table {
        for ((caller, token), outcome) in callers.iter().zip(expected.chars()) {
            let want = match outcome {
                'o' => Code::Ok,
                'd' => Code::PermissionDenied,
                _ => Code::Unauthenticated,
            };
            let got = call(&app, family, *token).await;
            if got != want {
                wrong.push(format!("{family} as {caller}: {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}

#[tokio::test]
async fn refusals_say_what_is_needed_and_an_unknown_method_is_refused() {
    let app = spawn_token_app().await;
    let reader = mint(&app, "reader-1", &[Role::Reader]).await;
    let status = EventLogClient::new(channel(&app, Some(&reader)).await)
        .append(append_request("s", Expect::Any, vec![new_event("E", "{}")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("needs role writer"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("holds reader"),
        "{}",
        status.message()
    );

    let status = EventLogClient::new(channel(&app, None).await)
        .get_head(())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("Bearer"), "{}", status.message());

    // A method no table row names is refused before any credential is even looked at, for
    // any caller.
    let admin = mint(&app, "admin-1", &[Role::Admin]).await;
    for token in [None, Some(admin.as_str())] {
        let mut grpc = tonic::client::Grpc::new(channel(&app, token).await);
        grpc.ready().await.unwrap();
        let status = grpc
            .unary::<(), (), _>(
                tonic::Request::new(()),
                "/diplog.v1.EventLog/Truncate".parse().unwrap(),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }
    assert_eq!(app.event_count().await, 0);
    app.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refused_also_by_another_server() {
    let db = fresh_database().await;
    let first = spawn_app_with(db.clone(), tokens_config()).await;
    let second = spawn_app_with(db, tokens_config()).await;
    let store = TokenStore::new(first.pool.clone());

    let (_, expiring) = store
        .create(
            &TokenName::parse("short-lived").unwrap(),
            &[Role::Reader],
            Some(chrono::Utc::now() + chrono::Duration::milliseconds(1500)),
        )
        .await
        .unwrap();
    let expiring = expiring.expose().to_owned();
    // Used (and so cached) while good; refused once the instant has passed.
    assert_eq!(call(&second, "head", Some(&expiring)).await, Code::Ok);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        call(&second, "head", Some(&expiring)).await,
        Code::Unauthenticated
    );

    // Revoked through the first server's Admin service: the second, which has the token
    // cached, refuses it promptly (NOTIFY), well within its cache's 10 s backstop.
    let admin = mint(&first, "root", &[Role::Admin]).await;
    let doomed = mint(&first, "doomed", &[Role::Writer]).await;
    assert_eq!(call(&second, "head", Some(&doomed)).await, Code::Ok);
    AdminClient::new(channel(&first, Some(&admin)).await)
        .revoke_token(proto::RevokeTokenRequest {
            name: "doomed".into(),
        })
        .await
        .unwrap();
    let revoked = Instant::now();
    loop {
        match call(&second, "head", Some(&doomed)).await {
            Code::Unauthenticated => break,
            Code::Ok if revoked.elapsed() < Duration::from_secs(2) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!(
                "the revoked token still answers {other:?} after {:?}",
                revoked.elapsed()
            ),
        }
    }
    println!(
        "revocation took effect on the other server after {:?}",
        revoked.elapsed()
    );
    assert_eq!(
        call(&first, "head", Some(&doomed)).await,
        Code::Unauthenticated
    );

    // Admin answers: unknown names, duplicates, bad names and roles.
    let mut admin_client = AdminClient::new(channel(&first, Some(&admin)).await);
    let status = admin_client
        .revoke_token(proto::RevokeTokenRequest {
            name: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let create = |name: &str, roles: &[&str]| proto::CreateTokenRequest {
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        expires_at: None,
    };
    let status = admin_client
        .create_token(create("doomed", &["reader"]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    for (request, field) in [
        (create("", &["reader"]), "name"),
        (create("two words", &["reader"]), "name"),
        (create("ok-name", &[]), "roles"),
        (create("ok-name", &["root"]), "roles"),
    ] {
        let status = admin_client.create_token(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(crate::helpers::violated_fields(&status), vec![field]);
    }
    let listed = admin_client.list_tokens(()).await.unwrap().into_inner();
    let names: Vec<_> = listed.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["doomed", "root", "short-lived"]);
    assert!(listed.tokens[0].revoked_at.is_some());
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn the_principal_is_stamped_on_its_events_and_cannot_be_forged() {
    let app = spawn_token_app().await;
    let writer = mint(&app, "ingest-bot", &[Role::Writer]).await;
    let auditor = mint(&app, "the-auditor", &[Role::Auditor]).await;

    // Claims of another identity everywhere a client can write: metadata headers, and the
    // event's own metadata.
    let mut forged = new_event("Noted", r#"{"n": 1}"#);
    forged.metadata = Some(proto::Metadata {
        values: [("appended_by".to_owned(), "mallory".to_owned())].into(),
        ..Default::default()
    });
    let mut request = tonic::Request::new(append_request("forge-1", Expect::Any, vec![forged]));
    for header in ["x-diplog-principal", "appended-by", "x-appended-by"] {
        request
            .metadata_mut()
            .insert(header, MetadataValue::from_static("mallory"));
    }
    EventLogClient::new(channel(&app, Some(&writer)).await)
        .append(request)
        .await
        .unwrap();
    let mut record = tonic::Request::new(actor_record());
    record
        .metadata_mut()
        .insert("x-diplog-principal", MetadataValue::from_static("mallory"));
    DiplomacyClient::new(channel(&app, Some(&writer)).await)
        .record(record)
        .await
        .unwrap();

    let read = crate::helpers::collect(
        EventLogClient::new(channel(&app, Some(&writer)).await)
            .read_all(crate::helpers::read_all_from(1))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read.len(), 2);
    for event in &read {
        assert_eq!(event.appended_by, "ingest-bot");
    }

    // In the audited bytes: each leaf the server proves is the hash of the row with
    // `ingest-bot`, and naming anyone else gives another leaf.
    let mut audit = AuditClient::new(channel(&app, Some(&auditor)).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit
        .get_tree_head(proto::GetTreeHeadRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tree_size
        < 2
    {
        assert!(Instant::now() < deadline, "the tree reaches 2 within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for mut event in app.stored_events().await {
        assert_eq!(event.appended_by, "ingest-bot");
        let proof = audit
            .get_inclusion_proof(proto::InclusionProofRequest {
                tree_size: 0,
                event: Some(proto::inclusion_proof_request::Event::Position(
                    event.position,
                )),
            })
            .await
            .unwrap()
            .into_inner();
        let leaf = leaf_of(&event);
        assert_eq!(proof.leaf_hash, leaf.to_vec());
        event.appended_by = "mallory".into();
        assert_ne!(leaf_of(&event), leaf);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_open_server_still_checks_and_uses_a_token_presented() {
    let app = spawn_app_with(fresh_database().await, ServerConfig::ephemeral()).await;
    let reader = mint(&app, "read-only", &[Role::Reader]).await;
    // Without a token: anonymous, every role.
    assert_eq!(call(&app, "append", None).await, Code::Ok);
    // With one: its roles apply, and a bad one is refused even here.
    assert_eq!(
        call(&app, "append", Some(&reader)).await,
        Code::PermissionDenied
    );
    assert_eq!(
        call(&app, "head", Some("hunter2")).await,
        Code::Unauthenticated
    );
    let writer = mint(&app, "named-writer", &[Role::Writer]).await;
    assert_eq!(call(&app, "append", Some(&writer)).await, Code::Ok);
    let by: Vec<String> = app
        .stored_events()
        .await
        .into_iter()
        .map(|e| e.appended_by)
        .collect();
    assert_eq!(by, ["anonymous", "named-writer"]);
    app.stop().await;
}

#[tokio::test]
async fn an_open_server_must_listen_on_loopback_only() {
    let mut config = ServerConfig::ephemeral();
    config.http = "0.0.0.0:0".parse().unwrap();
    let pool = diplog::database::pool_options(2)
        .connect_with(fresh_database().await)
        .await
        .unwrap();
    let error = diplog::app::App::bind(config, pool.clone())
        .await
        .err()
        .expect("open on 0.0.0.0 is refused");
    assert!(format!("{error:#}").contains("loopback"), "{error:#}");
    // auto, with a database URL (not embedded): tokens, so it binds.
    let mut config = ServerConfig::ephemeral();
    config.auth.mode = AuthMode::Auto;
    let app = diplog::app::App::bind(config, pool).await.expect("binds");
    drop(app);
}

#[tokio::test]
async fn token_commands_work_against_the_database_and_through_the_server() {
    let db = fresh_database().await;
    let url = crate::helpers::database_url_for(&db);
    let app = spawn_app_with(db, tokens_config()).await;
    let server = app.server_url();

    // Against the database: the token alone on stdout.
    let (ok, stdout, stderr) = diplog([
        "token",
        "create",
        "--database-url",
        &url,
        "--name",
        "ci",
        "--role",
        "writer,reader",
        "--expires",
        "30d",
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let token = lines[0].to_owned();
    assert!(token.starts_with("diplog_"));
    assert!(stderr.contains("shown only this once"), "{stderr}");

    // The CLI sends it; without it, the server refuses.
    let stdin_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(stdin_file.path(), "{\"type\": \"Noted\", \"data\": {}}\n").unwrap();
    let file = stdin_file.path().to_str().unwrap();
    let (ok, _, stderr) = diplog(["append", "--server", &server, "--stream", "cli-1", file])
        .split()
        .await;
    assert!(!ok);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    let (ok, _, stderr) = diplog([
        "append", "--server", &server, "--token", &token, "--stream", "cli-1", file,
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = diplog(["read", "--server", &server, "--token", &token, "--all"])
        .split()
        .await;
    assert!(ok);
    assert!(stdout.contains("\"appended_by\":\"ci\""), "{stdout}");

    // Refusals: a duplicate, a bad name, an unknown name to revoke.
    let (ok, _, stderr) = diplog([
        "token",
        "create",
        "--database-url",
        &url,
        "--name",
        "ci",
        "--role",
        "reader",
    ])
    .split()
    .await;
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = diplog([
        "token",
        "create",
        "--database-url",
        &url,
        "--name",
        "c i",
        "--role",
        "reader",
    ])
    .split()
    .await;
    assert!(!ok);
    assert!(stderr.contains("invalid token name"), "{stderr}");
    let (ok, _, stderr) = diplog(["token", "revoke", "--database-url", &url, "nobody"])
        .split()
        .await;
    assert!(!ok);
    assert!(stderr.contains("no token is named"), "{stderr}");

    // Through the server, with an admin token: create, list, revoke.
    let admin = mint(&app, "ops", &[Role::Admin]).await;
    let (ok, stdout, stderr) = diplog([
        "token", "create", "--server", &server, "--token", &admin, "--name", "bot", "--role",
        "reader",
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    let bot = stdout.trim().to_owned();
    assert_eq!(call(&app, "head", Some(&bot)).await, Code::Ok);
    // A non-admin token may not administer.
    let (ok, _, stderr) = diplog(["token", "list", "--server", &server, "--token", &bot])
        .split()
        .await;
    assert!(!ok);
    assert!(stderr.contains("PERMISSION_DENIED"), "{stderr}");
    let (ok, _, stderr) = diplog([
        "token", "revoke", "--server", &server, "--token", &admin, "bot",
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(call(&app, "head", Some(&bot)).await, Code::Unauthenticated);
    let (ok, stdout, stderr) = diplog(["token", "list", "--server", &server, "--token", &admin])
        .split()
        .await;
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(
        rows[0].starts_with("bot ") && !rows[0].ends_with(" -"),
        "{stdout}"
    );
    assert!(
        rows[1].starts_with("ci ") && rows[1].contains("reader,writer"),
        "{stdout}"
    );
    assert!(rows[1].ends_with(" -"), "{stdout}");
    assert!(rows[2].starts_with("ops "), "{stdout}");
    // Never a token or a hash.
    for secret in [&token, &admin, &bot] {
        assert!(!stdout.contains(&secret[30..]), "{stdout}");
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_never_appear_in_the_logs_and_failures_name_the_peer() {
    let db = fresh_database().await;
    let url = crate::helpers::database_url_for(&db);
    let pool = diplog::database::pool_options(2)
        .connect_with(db)
        .await
        .unwrap();
    diplog::MIGRATOR.run(&pool).await.unwrap();
    let store = TokenStore::new(pool.clone());
    let make = |name: &'static str, roles: Vec<Role>| {
        let store = store.clone();
        async move {
            let (_, secret) = store
                .create(&TokenName::parse(name).unwrap(), &roles, None)
                .await
                .unwrap();
            secret.expose().to_owned()
        }
    };
    let good = make("logged-writer", vec![Role::Writer]).await;
    let revoked = make("logged-revoked", vec![Role::Reader]).await;
    let expired = make("logged-expired", vec![Role::Reader]).await;
    // `diplog serve` requiring tokens, logging at debug.
    let mut server = Serve::on_database(&url)
        .env_remove("DIPLOG_AUTH")
        .arg("--auth")
        .arg("tokens")
        .env("RUST_LOG", "debug,diplog=trace")
        .start()
        .await;
    let grpc_url = server.grpc.clone();
    let http = server.http();
    store.revoke("logged-revoked").await.unwrap();
    sqlx::query("update api_tokens set expires_at = now() - interval '1 second' where name = $1")
        .bind("logged-expired")
        .execute(&pool)
        .await
        .unwrap();
    let unknown = format!("diplog_{}_{}", "a".repeat(16), "b".repeat(64));
    let malformed = "not-a-real-token-but-secret-all-the-same".to_owned();

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "{\"type\": \"Noted\", \"data\": {}}\n").unwrap();
    let file = file.path().to_str().unwrap().to_owned();
    let tokens = [&good, &revoked, &expired, &unknown, &malformed];
    for token in tokens {
        // Through the CLI (whose own errors must not show the token either) …
        let (ok, stdout, stderr) = diplog([
            "append", "--server", &grpc_url, "--token", token, "--stream", "logged", &file,
        ])
        .split()
        .await;
        assert_eq!(ok, token == &good, "{stderr}");
        assert!(!stdout.contains(token.as_str()) && !stderr.contains(token.as_str()));
        // … and the dashboard.
        let (status, _) = http_get(http.parse().unwrap(), "/channels", Some(token)).await;
        assert_eq!(status, if token == &good { 200 } else { 401 });
    }
    // Let the last lines arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().await;

    let log = server.log();
    assert!(log.lines().count() > 20, "debug logging is on");
    for token in tokens {
        // Neither the token nor its secret part.
        let secret = token.rsplit('_').next().unwrap();
        assert!(!log.contains(token.as_str()), "a token is in the log");
        assert!(!log.contains(secret), "a token's secret is in the log");
    }
    let failures: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "authentication failed")
        .collect();
    // Four bad tokens, each over gRPC and HTTP.
    assert_eq!(failures.len(), 8, "{log}");
    let mut reasons: Vec<String> = failures
        .iter()
        .map(|entry| {
            assert_eq!(entry["level"], "WARN");
            let peer = entry["fields"]["peer"].as_str().unwrap();
            assert!(peer.starts_with("127.0.0.1:"), "{entry}");
            entry["fields"]["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    reasons.sort();
    reasons.dedup();
    assert_eq!(
        reasons,
        [
            "expired token",
            "malformed token or authorization header",
            "revoked token",
            "unknown token"
        ]
    );
    // The principal is on the request's span: the append's own log lines carry it.
    let in_span = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|entry| {
            entry["span"]["principal"] == "logged-writer"
                && entry["span"]["method"] == "/diplog.v1.EventLog/Append"
        });
    assert!(in_span, "no span of an append names the principal");
}

/// A raw HTTP/1.1 exchange: the status, the head and the body.
async fn http(addr: SocketAddr, request_head: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{request_head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut raw))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn a_browser_signs_in_with_a_token_kept_in_an_http_only_cookie() {
    let app = spawn_token_app().await;
    let reader = mint(&app, "browser", &[Role::Reader]).await;
    let addr = app.http_addr;

    // A page without a credential: a browser is sent to the form, to come back after; other
    // clients get the 401.
    let (status, head, _) = http(
        addr,
        "GET /actors/RUS?on=2025-03-01 HTTP/1.1\r\nAccept: text/html",
        "",
    )
    .await;
    assert_eq!(status, 303, "{head}");
    assert!(
        head.to_lowercase()
            .contains("location: /login?next=%2factors%2frus%3fon%3d2025-03-01"),
        "{head}"
    );
    let (status, head, _) = http(addr, "GET / HTTP/1.1", "").await;
    assert_eq!(status, 401);
    assert!(head.contains("www-authenticate: Bearer"), "{head}");
    let (status, _, body) = http(
        addr,
        "GET /login?next=%2Factors%2FRUS%3Fon%3D2025-03-01 HTTP/1.1",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"token\""), "{body}");
    assert!(
        body.contains(r#"name="next" value="/actors/RUS?on=2025-03-01""#),
        "{body}"
    );

    // A bad token: the form again, no cookie.
    let form = "Content-Type: application/x-www-form-urlencoded";
    let (status, head, _) = http(
        addr,
        &format!("POST /login HTTP/1.1\r\n{form}"),
        "token=diplog_nope",
    )
    .await;
    assert_eq!(status, 401);
    assert!(!head.to_lowercase().contains("set-cookie"), "{head}");
    // From another site's form: refused, even with a good token.
    let (status, _, _) = http(
        addr,
        &format!("POST /login HTTP/1.1\r\n{form}\r\nOrigin: https://evil.example"),
        &format!("token={reader}"),
    )
    .await;
    assert_eq!(status, 403);

    let (status, head, _) = http(
        addr,
        &format!("POST /login HTTP/1.1\r\n{form}"),
        &format!("token={reader}&next=%2Factors%2FRUS%3Fon%3D2025-03-01"),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    assert!(
        head.to_lowercase()
            .contains("location: /actors/rus?on=2025-03-01"),
        "back to the page asked for: {head}"
    );
    let cookie_line = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie:"))
        .expect("a cookie")
        .to_owned();
    assert!(cookie_line.contains("HttpOnly"), "{cookie_line}");
    assert!(cookie_line.contains("SameSite=Strict"), "{cookie_line}");
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let (status, _, _) = http(
        addr,
        &format!("GET /channels HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    // The cookie carries the reader's roles, no more.
    let (status, _, _) = http(
        addr,
        &format!("GET /channels?as_of=1 HTTP/1.1\r\nCookie: {cookie}"),
        "",
    )
    .await;
    assert_eq!(status, 403);
    app.stop().await;
}

#[tokio::test]
async fn the_embedded_default_runs_open_and_token_commands_reach_its_running_cluster() {
    let data = crate::helpers::reachable_tempdir("diplog-auth-");
    let data_dir = data.path().to_str().unwrap().to_owned();
    let mut server = Serve::embedded(data.path())
        .within(Duration::from_secs(120))
        .start()
        .await;
    let grpc = server.grpc.clone();
    let mut warned_open = false;
    for line in server.startup_log() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("auth: OPEN") {
            assert_eq!(entry["level"], "WARN");
            warned_open = true;
        }
    }
    assert!(warned_open, "start-up says, at WARN, that it runs open");

    // The server owns the cluster; the token command joins it instead of failing.
    let (ok, stdout, stderr) = diplog([
        "token",
        "create",
        "--data-dir",
        &data_dir,
        "--name",
        "local-reader",
        "--role",
        "reader",
    ])
    .split()
    .await;
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    // Open: no token is fine; the reader's token is checked and its roles apply.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "{\"type\": \"Noted\", \"data\": {}}\n").unwrap();
    let file = file.path().to_str().unwrap();
    let (ok, _, stderr) = diplog(["append", "--server", &grpc, "--stream", "s-1", file])
        .split()
        .await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = diplog([
        "append", "--server", &grpc, "--token", &token, "--stream", "s-1", file,
    ])
    .split()
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("PERMISSION_DENIED") && stderr.contains("needs role writer"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = diplog(["token", "list", "--data-dir", &data_dir])
        .split()
        .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("local-reader"), "{stdout}");

    let status = server.terminate(Duration::from_secs(30)).await;
    assert!(status.success());
}

/// A stream outlives the check made when it opened: revoking its token, or the token's
/// expiry, ends the stream with UNAUTHENTICATED, while a stream opened with another token
/// goes on.
#[tokio::test]
async fn an_open_subscription_ends_when_its_token_is_revoked_or_expires() {
    use diplog::proto::event_log_client::EventLogClient;
    use diplog::proto::{SubscribeRequest, subscribe_request::From, subscription_message::Message};

    let app = spawn_token_app().await;
    let store = TokenStore::new(app.pool.clone());
    let doomed = mint(&app, "watcher", &[Role::Reader]).await;
    let bystander = mint(&app, "bystander", &[Role::Reader]).await;
    let writer = mint(&app, "writer", &[Role::Writer]).await;
    let (_, brief) = store
        .create(
            &TokenName::parse("brief").unwrap(),
            &[Role::Reader],
            Some(chrono::Utc::now() + chrono::Duration::milliseconds(2500)),
        )
        .await
        .unwrap();
    let subscribe = async |token: &str| {
        let mut stream = EventLogClient::new(channel(&app, Some(token)).await)
            .subscribe(SubscribeRequest {
                from: Some(From::Start(())),
                ..Default::default()
            })
            .await
            .expect("subscribed")
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert!(
            matches!(first.message, Some(Message::Checkpoint(_))),
            "{first:?}"
        );
        stream
    };
    let ended_with = async |stream: &mut tonic::Streaming<proto::SubscriptionMessage>| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, stream.message()).await {
                Err(_) => panic!("the stream went on for 10 s"),
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) => panic!("the stream ended without a status"),
                Ok(Err(status)) => break status,
            }
        }
    };
    let mut doomed_stream = subscribe(&doomed).await;
    let mut bystander_stream = subscribe(&bystander).await;
    let mut brief_stream = subscribe(brief.expose()).await;

    store.revoke("watcher").await.unwrap();
    let revoked = Instant::now();
    let status = ended_with(&mut doomed_stream).await;
    println!(
        "the revoked token's stream ended after {:?}",
        revoked.elapsed()
    );
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");

    let status = ended_with(&mut brief_stream).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // The bystander's stream still delivers what is appended now.
    EventLogClient::new(channel(&app, Some(&writer)).await)
        .append(append_request(
            "after",
            Expect::Any,
            vec![new_event("Noted", "{}")],
        ))
        .await
        .expect("appended");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline, bystander_stream.message())
            .await
            .expect("the bystander's stream delivers")
            .expect("the bystander's stream goes on")
            .expect("not ended");
        if let Some(Message::Event(event)) = message.message {
            assert_eq!(event.stream_id, "after");
            break;
        }
    }
}
