//! The log as C2SP transparency-log tools see it: `/checkpoint` (a signed note that the
//! verifier key from gRPC and `diplog checkpoint --vkey` checks), `/tile/…` (hash tiles and
//! entry bundles, full ones cached for good, partial ones briefly, none beyond the tree), the
//! checkpoint in `tree-head --save` and in the export's closing line, and an independent check
//! by Go's golang.org/x/mod/sumdb/note and sumdb/tlog (`tests/go/c2sp`), which proves every
//! entry's inclusion and two checkpoints' consistency from the tiles alone. Without `go` (or
//! Debian's golang-golang-x-mod-dev) the Go check says SKIPPED on stderr and passes, unless
//! `DIPLOG_REQUIRE_GO=1` (as in CI).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diplog::audit::builder::leaf_of;
use diplog::domain::checkpoint::{Checkpoint, VerifierKey};
use diplog::domain::merkle::{self, Hash};
use diplog::proto::{self, audit_client::AuditClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use diplog::config::{AuthMode, ServerConfig};
use diplog::domain::checkpoint::LogOrigin;

use diplog::auth::Role;
use diplog::auth::tokens::{TokenName, TokenStore};
use tonic::metadata::MetadataValue;

use crate::helpers::{
    Expect, TestApp, append_request, diplog, fresh_database, new_event, spawn_app, spawn_app_with,
};

/// Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod, as a GOPATH.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

struct Answer {
    status: u16,
    /// Lowercased.
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim())
        })
    }
}

/// `GET path`, the body as bytes (tiles are binary).
async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, path, "").await
}

/// `GET path` with a bearer token.
async fn get_with(addr: SocketAddr, path: &str, token: &str) -> Answer {
    request(addr, path, &format!("Authorization: Bearer {token}\r\n")).await
}

async fn request(addr: SocketAddr, path: &str, headers: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("the server answers");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("GET {path} took more than 10 s"))
        .unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head and a body");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Answer {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

async fn audit(app: &TestApp) -> AuditClient<tonic::transport::Channel> {
    AuditClient::new(app.channel().await)
}

/// Appends `count` events in batches of up to 100.
async fn append(app: &TestApp, count: usize) {
    let payloads: Vec<String> = (0..count).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    for batch in payloads.chunks(100) {
        let events: Vec<(&str, &str)> = batch.iter().map(|d| ("Noted", d.as_str())).collect();
        app.append("tiles-1", Expect::Any, &events).await.unwrap();
    }
}

/// Waits until the tree covers the whole log; answers the checkpoint then served.
async fn settled_checkpoint(app: &TestApp, key: &VerifierKey) -> (String, Checkpoint) {
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
        let answer = get(app.http_addr, "/checkpoint").await;
        assert_eq!(answer.status, 200);
        let text = String::from_utf8(answer.body).unwrap();
        let checkpoint = Checkpoint::open(&text, key).expect("the checkpoint verifies");
        if checkpoint.size >= log_head {
            return (text, checkpoint);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tree did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn verifier_key(app: &TestApp) -> VerifierKey {
    let served = audit(app)
        .await
        .get_public_key(())
        .await
        .unwrap()
        .into_inner();
    let key = VerifierKey::parse(&served.vkey).unwrap();
    assert_eq!(key.name, served.origin);
    assert_eq!(key.public_key[..], served.ed25519[..]);
    key
}

#[tokio::test]
async fn the_checkpoint_is_the_signed_head_as_a_note_the_vkey_verifies() {
    let app = spawn_app().await;
    append(&app, 5).await;
    let key = verifier_key(&app).await;
    assert_eq!(key.name, diplog::domain::checkpoint::DEFAULT_ORIGIN);
    let (text, checkpoint) = settled_checkpoint(&app, &key).await;
    assert_eq!(checkpoint.size, 5);
    assert!(text.starts_with("localhost/diplog\n5\n"), "{text}");

    let head = audit(&app)
        .await
        .get_tree_head(proto::GetTreeHeadRequest { tree_size: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(head.checkpoint, text, "gRPC and HTTP give the same note");
    assert_eq!(head.root_hash[..], checkpoint.root[..]);

    let server = app.server_url();
    let vkey = diplog(["checkpoint", "--vkey", "--server", &server])
        .output()
        .await;
    assert!(vkey.status.success());
    assert_eq!(
        String::from_utf8(vkey.stdout).unwrap().trim(),
        key.to_string()
    );
    let printed = diplog(["checkpoint", "--server", &server]).output().await;
    assert!(printed.status.success());
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), text);

    // Citable: the saved head and the export's closing line carry the same checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("head.json");
    let out = diplog([
        "tree-head",
        "--server",
        &server,
        "--save",
        saved.to_str().unwrap(),
    ])
    .output()
    .await;
    assert!(out.status.success());
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(saved["checkpoint"], text.as_str());
    let export = diplog(["export", "--server", &server]).output().await;
    assert!(export.status.success());
    let export = String::from_utf8(export.stdout).unwrap();
    let closing: serde_json::Value = serde_json::from_str(export.lines().last().unwrap()).unwrap();
    assert_eq!(closing["tree_head"]["checkpoint"], text.as_str());
    app.stop().await;
}

#[tokio::test]
async fn tiles_are_the_stored_tree_full_ones_cached_for_good_none_beyond_the_tree() {
    let app = spawn_app().await;
    append(&app, 300).await;
    let key = verifier_key(&app).await;
    let (_, checkpoint) = settled_checkpoint(&app, &key).await;
    assert_eq!(checkpoint.size, 300);
    let events = app.stored_events().await;
    let leaves: Vec<Hash> = events.iter().map(leaf_of).collect();

    let full = get(app.http_addr, "/tile/0/000").await;
    assert_eq!(full.status, 200);
    assert_eq!(
        full.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(full.body, leaves[..256].concat());

    let partial = get(app.http_addr, "/tile/0/001.p/44").await;
    assert_eq!(partial.status, 200);
    assert_eq!(partial.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(partial.body, leaves[256..].concat());
    let narrower = get(app.http_addr, "/tile/0/001.p/3").await;
    assert_eq!(narrower.body, leaves[256..259].concat());

    let level_one = get(app.http_addr, "/tile/1/000.p/1").await;
    assert_eq!(level_one.status, 200);
    assert_eq!(level_one.body, merkle::root_of(&leaves[..256]).to_vec());

    let bundle = get(app.http_addr, "/tile/entries/001.p/44").await;
    assert_eq!(bundle.status, 200);
    let mut rest = &bundle.body[..];
    for event in &events[256..] {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        assert_eq!(
            &rest[2..2 + len],
            diplog::audit::builder::canonical(event).to_bytes()
        );
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty());

    for beyond in [
        "/tile/0/001",
        "/tile/0/001.p/45",
        "/tile/0/002.p/1",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/entries/001",
        "/tile/entries/001.p/45",
        "/tile/0/1",
        "/tile/8/000.p/1",
        "/tile/0/x070/x000/x000/x000/x000/000",
        "/tile/entries/x999/x999/x999/x999/x999/999",
    ] {
        assert_eq!(get(app.http_addr, beyond).await.status, 404, "{beyond}");
    }
    app.stop().await;
}

#[tokio::test]
async fn go_sumdb_note_and_tlog_verify_the_checkpoints_and_prove_from_the_tiles() {
    let Some(program) = build_go_checker() else {
        return;
    };
    let app = spawn_app().await;
    append(&app, 37).await;
    let key = verifier_key(&app).await;
    let (old, _) = settled_checkpoint(&app, &key).await;
    append(&app, 263).await;
    let (_, new) = settled_checkpoint(&app, &key).await;
    assert_eq!(new.size, 300);
    let dir = tempfile::tempdir().unwrap();
    let old_path = dir.path().join("old-checkpoint");
    std::fs::write(&old_path, old).unwrap();
    let base = format!("http://{}", app.http_addr);
    let vkey = key.to_string();
    let output = tokio::process::Command::new(&program)
        .args(["-url", &base, "-vkey", &vkey, "-old"])
        .arg(&old_path)
        .output()
        .await
        .expect("the Go checker runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("ok: checkpoint of size 300"), "{printed}");
    // And it is a check: another key of the same name does not verify the checkpoint.
    let other = VerifierKey {
        public_key: ed25519_dalek::SigningKey::from_bytes(&[9; 32])
            .verifying_key()
            .to_bytes(),
        ..key
    };
    let refused = tokio::process::Command::new(&program)
        .args(["-url", &base, "-vkey", &other.to_string(), "-old"])
        .arg(&old_path)
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    app.stop().await;
}

/// Builds `tests/go/c2sp` offline against Debian's golang.org/x/mod (GOPATH mode, no module
/// proxy). `None`, after saying SKIPPED, when Go or the package is missing and
/// `DIPLOG_REQUIRE_GO` is not 1.
pub(crate) fn build_go_checker() -> Option<PathBuf> {
    let missing = if which("go").is_none() {
        Some("go is not installed")
    } else if !Path::new(DEBIAN_GOPATH)
        .join("src/golang.org/x/mod/sumdb/tlog")
        .is_dir()
    {
        Some("golang.org/x/mod is not under /usr/share/gocode (golang-golang-x-mod-dev)")
    } else {
        None
    };
    if let Some(why) = missing {
        if std::env::var("DIPLOG_REQUIRE_GO").as_deref() == Ok("1") {
            panic!("DIPLOG_REQUIRE_GO=1 but {why}");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {why}, so the Go checkpoint and tile check did not run"
        );
        return None;
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c2sp-go");
    std::fs::create_dir_all(&out).unwrap();
    let program = out.join("c2sp");
    let built = std::process::Command::new("go")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-o"])
        .arg(&program)
        .arg("./tests/go/c2sp")
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env("GOCACHE", out.join("cache"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .output()
        .expect("go build runs");
    assert!(
        built.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    Some(program)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

#[tokio::test]
async fn the_dashboard_shows_the_vkey_and_cites_the_checkpoint_as_of_a_position() {
    let config = ServerConfig {
        log_origin: LogOrigin::parse("diplog.example.org/log").unwrap(),
        ..ServerConfig::ephemeral()
    };
    let app = spawn_app_with(fresh_database().await, config).await;
    append(&app, 5).await;
    let key = verifier_key(&app).await;
    assert_eq!(key.name, "diplog.example.org/log");
    let (text, _) = settled_checkpoint(&app, &key).await;
    assert!(text.starts_with("diplog.example.org/log\n5\n"), "{text}");
    let overview = crate::dashboard::get(app.http_addr, "/").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains(&key.to_string()),
        "{}",
        overview.body
    );

    let as_of = crate::dashboard::get(app.http_addr, "/events?as_of=3").await;
    assert_eq!(as_of.status, 200);
    let head = audit(&app)
        .await
        .get_tree_head(proto::GetTreeHeadRequest { tree_size: 3 })
        .await
        .unwrap()
        .into_inner();
    let root = head
        .root_hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(
        as_of
            .body
            .contains(&format!("Log at size 3, root <code>{root}</code>")),
        "{}",
        as_of.body
    );
    let cited = head.checkpoint.lines().nth(2).unwrap();
    assert!(as_of.body.contains(cited), "{}", as_of.body);
    app.stop().await;
}

#[tokio::test]
async fn checkpoint_and_hash_tiles_are_public_and_entry_bundles_need_a_reader() {
    let mut config = ServerConfig::ephemeral();
    config.auth.mode = AuthMode::Tokens;
    let app = spawn_app_with(fresh_database().await, config).await;
    let token = |name: &'static str, role: Role| {
        let pool = app.pool.clone();
        async move {
            let (_, secret) = TokenStore::new(pool)
                .create(&TokenName::parse(name).unwrap(), &[role], None)
                .await
                .unwrap();
            secret.expose().to_owned()
        }
    };
    let writer = token("tiles-writer", Role::Writer).await;
    let reader = token("tiles-reader", Role::Reader).await;
    let bearer: MetadataValue<_> = format!("Bearer {writer}").parse().unwrap();
    let mut request = tonic::Request::new(append_request(
        "tiles-1",
        Expect::Any,
        vec![new_event("Noted", "{}"), new_event("Noted", "{}")],
    ));
    request.metadata_mut().insert("authorization", bearer);
    app.client.clone().append(request).await.unwrap();
    // Without a credential: the checkpoint, and the hash tiles, once the tree holds both.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let checkpoint = get(app.http_addr, "/checkpoint").await;
        assert_eq!(checkpoint.status, 200);
        if String::from_utf8_lossy(&checkpoint.body).lines().nth(1) == Some("2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tree did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hashes = get(app.http_addr, "/tile/0/000.p/2").await;
    assert_eq!(hashes.status, 200);
    assert_eq!(hashes.body.len(), 64);
    // The events themselves are the log's content: a reader's.
    let entries = get(app.http_addr, "/tile/entries/000.p/2").await;
    assert_eq!(entries.status, 401);
    let with_reader = get_with(app.http_addr, "/tile/entries/000.p/2", &reader).await;
    assert_eq!(with_reader.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn an_origin_that_cannot_name_a_key_is_refused_at_start() {
    let (ok, text) = diplog(["serve", "--log-origin", "diplog.example.org/a+b"])
        .combined()
        .await;
    assert!(!ok);
    assert!(text.contains("'+'"), "{text}");
}
