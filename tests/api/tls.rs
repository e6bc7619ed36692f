//! TLS on both ports with `dev-certs` certificates: clients that trust the CA get in, others
//! are refused at the handshake; client certificates required or optional; the CLI over TLS;
//! the plain-text rule of `diplog serve`; the certificate subject the server sees.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diplog::app::App;
use diplog::auth::Role;
use diplog::config::{ClientAuth, ServerConfig, TlsArgs};
use diplog::proto::{self, event_log_client::EventLogClient};
use diplog::tls::client::ClientTlsArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Expect, Serve, append_request, diplog, fresh_database, new_event};

/// Two independent development CAs, each with its server and client certificates.
struct Certs {
    _dir: tempfile::TempDir,
    ours: PathBuf,
    theirs: PathBuf,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    diplog::tls::dev_certs::write(&ours, &[], "alice").unwrap();
    diplog::tls::dev_certs::write(&theirs, &[], "mallory").unwrap();
    Certs {
        _dir: dir,
        ours,
        theirs,
    }
}

fn server_tls(dir: &Path, client_ca: Option<(&Path, ClientAuth)>) -> TlsArgs {
    TlsArgs {
        tls_cert: Some(dir.join("server.pem")),
        tls_key: Some(dir.join("server-key.pem")),
        tls_client_ca: client_ca.map(|(ca, _)| ca.join("ca.pem")),
        tls_client_auth: client_ca.map(|(_, auth)| auth),
        insecure: false,
    }
}

struct TlsServer {
    grpc: SocketAddr,
    http: SocketAddr,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TlsServer {
    async fn start(tls: TlsArgs) -> Self {
        let pool = diplog::database::pool_options(4)
            .connect_with(fresh_database().await)
            .await
            .unwrap();
        let mut config = ServerConfig {
            tls,
            ..ServerConfig::ephemeral()
        };
        // The client certificate's subject is a principal: it may write.
        config.auth.certificate_roles = vec![("alice".to_owned(), vec![Role::Writer])];
        let app = App::bind(config, pool).await.expect("the server binds");
        let (grpc, http) = (app.grpc_addr(), app.http_addr());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        Self {
            grpc,
            http,
            shutdown,
            server,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.grpc.port())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// The client settings of the CLI: trust `ca`'s CA, present `client`'s certificate.
fn client_tls(ca: &Path, client: Option<&Path>) -> ClientTlsArgs {
    ClientTlsArgs {
        ca_cert: Some(ca.join("ca.pem")),
        client_cert: client.map(|dir| dir.join("client.pem")),
        client_key: client.map(|dir| dir.join("client-key.pem")),
    }
}

/// Appends one event and reads its stream back over gRPC; the error text if anything fails
/// (the handshake included: with TLS 1.3 a refused client certificate surfaces on first use).
async fn append_and_read(url: &str, tls: &ClientTlsArgs) -> Result<(), String> {
    let endpoint = diplog::tls::client::endpoint(url, tls).map_err(|e| e.to_string())?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| diplog::cli::with_causes(&e))?;
    let mut client = EventLogClient::new(channel);
    let stream = format!("tls-{}", uuid::Uuid::new_v4().simple());
    client
        .append(append_request(
            &stream,
            Expect::Any,
            vec![new_event("CallHeld", r#"{"over":"tls"}"#)],
        ))
        .await
        .map_err(|s| diplog::cli::with_causes(&s))?;
    let mut events = client
        .read_stream(proto::ReadStreamRequest {
            stream_id: stream,
            ..Default::default()
        })
        .await
        .map_err(|s| diplog::cli::with_causes(&s))?
        .into_inner();
    let event = events.message().await.map_err(|s| s.to_string())?.unwrap();
    assert_eq!(event.data, r#"{"over":"tls"}"#);
    Ok(())
}

/// Whether a call failed because the server refused the client's certificate at the
/// handshake. Under TLS 1.3 the client finishes its side first, so it hears of the refusal
/// only on first use: as the server's alert or, racing it, as a connection closed, broken,
/// reset or dropped before the channel was ready (never as a gRPC answer: the server's
/// services never saw the call).
fn handshake_refused(error: &str, alert: &str) -> bool {
    error.contains(alert)
        || error.contains("connection closed")
        || error.contains("broken pipe")
        || error.contains("Broken pipe")
        || error.contains("reset by peer")
        || error.contains("connection was not ready")
}

/// `GET /healthz` over HTTPS, trusting `ca`'s CA and presenting `client`'s certificate: the
/// whole answer, or the error text if the handshake or the exchange fails.
async fn healthz(address: SocketAddr, ca: &Path, client: Option<&Path>) -> Result<String, String> {
    get(address, "/healthz", ca, client).await
}

/// Whether an answer of [`healthz`] is a healthy 200.
fn healthy(answer: &Result<String, String>) -> bool {
    answer.as_ref().is_ok_and(|text| {
        text.starts_with("HTTP/1.1 200") && text.contains(r#""status":"serving""#)
    })
}

/// `GET path` over HTTPS (HTTP/1.1, by hand: the test needs nothing more).
async fn get(
    address: SocketAddr,
    path: &str,
    ca: &Path,
    client: Option<&Path>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca.join("ca.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match client {
        Some(dir) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(dir.join("client.pem"))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(dir.join("client-key.pem")).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    exchange.await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn clients_that_trust_the_ca_append_read_and_check_health_over_tls() {
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let server = TlsServer::start(server_tls(&certs.ours, None)).await;

    append_and_read(&server.url(), &client_tls(&certs.ours, None))
        .await
        .unwrap();
    // By address too: the server certificate names 127.0.0.1.
    let by_address = format!("https://127.0.0.1:{}", server.grpc.port());
    append_and_read(&by_address, &client_tls(&certs.ours, None))
        .await
        .unwrap();
    let answer = healthz(server.http, &certs.ours, None).await;
    assert!(healthy(&answer), "{answer:?}");

    // Plain text to the TLS port gets nowhere.
    let plain = format!("http://127.0.0.1:{}", server.grpc.port());
    let refused = append_and_read(&plain, &ClientTlsArgs::default()).await;
    assert!(refused.is_err(), "plain text was served on the TLS port");
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_at_the_handshake() {
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let server = TlsServer::start(server_tls(&certs.ours, None)).await;

    let refused = append_and_read(&server.url(), &client_tls(&certs.theirs, None))
        .await
        .unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    let refused = healthz(server.http, &certs.theirs, None).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    // The system's roots do not know a development CA either.
    let refused = append_and_read(&server.url(), &ClientTlsArgs::default())
        .await
        .unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    server.stop().await;
}

#[tokio::test]
async fn required_client_certificates_must_be_signed_by_the_client_ca() {
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let tls = server_tls(&certs.ours, Some((&certs.ours, ClientAuth::Required)));
    let server = TlsServer::start(tls).await;
    let url = server.url();

    // Signed by the client CA: in, on both ports.
    append_and_read(&url, &client_tls(&certs.ours, Some(&certs.ours)))
        .await
        .unwrap();
    let answer = healthz(server.http, &certs.ours, Some(&certs.ours)).await;
    assert!(healthy(&answer), "{answer:?}");

    // No certificate: refused, on both ports.
    let refused = append_and_read(&url, &client_tls(&certs.ours, None))
        .await
        .unwrap_err();
    assert!(
        handshake_refused(&refused, "CertificateRequired"),
        "{refused}"
    );
    let refused = healthz(server.http, &certs.ours, None).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| handshake_refused(e, "CertificateRequired")),
        "{refused:?}"
    );

    // A certificate from another CA: refused, on both ports.
    let refused = append_and_read(&url, &client_tls(&certs.ours, Some(&certs.theirs)))
        .await
        .unwrap_err();
    assert!(handshake_refused(&refused, "UnknownCA"), "{refused}");
    let refused = healthz(server.http, &certs.ours, Some(&certs.theirs)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| handshake_refused(e, "UnknownCA")),
        "{refused:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn optional_client_certificates_let_clients_without_one_in_but_check_those_given() {
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let tls = server_tls(&certs.ours, Some((&certs.ours, ClientAuth::Optional)));
    let server = TlsServer::start(tls).await;
    let url = server.url();

    append_and_read(&url, &client_tls(&certs.ours, None))
        .await
        .unwrap();
    let answer = healthz(server.http, &certs.ours, None).await;
    assert!(healthy(&answer), "{answer:?}");
    append_and_read(&url, &client_tls(&certs.ours, Some(&certs.ours)))
        .await
        .unwrap();
    let refused = append_and_read(&url, &client_tls(&certs.ours, Some(&certs.theirs)))
        .await
        .unwrap_err();
    assert!(handshake_refused(&refused, "UnknownCA"), "{refused}");
    server.stop().await;
}

/// The server's pieces (its TLS settings, its HTTP listener) with a layer and a handler that
/// record what `peer_certificate_subject` reads from real handshakes.
#[tokio::test]
async fn the_subject_of_a_verified_client_certificate_reaches_the_request() {
    use diplog::auth::certificate::peer_certificate_subject;
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let tls = diplog::tls::ServerTls::load(&server_tls(
        &certs.ours,
        Some((&certs.ours, ClientAuth::Optional)),
    ))
    .unwrap()
    .unwrap();

    // gRPC: a tonic server with the same TLS settings as `App`'s, and a recording layer.
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |request: tonic::codegen::http::Request<tonic::body::Body>| {
            seen.lock()
                .unwrap()
                .push(peer_certificate_subject(&request));
            request
        }
    };
    let (_, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let grpc_server = tonic::transport::Server::builder()
        .tls_config(tls.grpc())
        .unwrap()
        .layer(tower::util::MapRequestLayer::new(record))
        .add_service(health)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            stop.clone().cancelled_owned(),
        );
    let grpc_server = tokio::spawn(grpc_server);
    let url = format!("https://localhost:{}", grpc.port());
    for client in [Some(certs.ours.as_path()), None] {
        let channel = diplog::tls::client::endpoint(&url, &client_tls(&certs.ours, client))
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await
            .unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), [Some("alice".to_owned()), None]);
    stop.cancel();
    grpc_server.await.unwrap().unwrap();

    // HTTP: the listener `App` uses, and a handler that answers the subject it sees.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|request: axum::extract::Request| async move {
            format!("subject: {:?}", peer_certificate_subject(&request))
        }),
    );
    let http_server = tokio::spawn(
        axum::serve(
            diplog::tls::listener::TlsListener::new(listener, tls.http()).unwrap(),
            router.into_make_service_with_connect_info::<diplog::tls::listener::TlsPeer>(),
        )
        .into_future(),
    );
    let answer = get(http, "/whoami", &certs.ours, Some(&certs.ours))
        .await
        .unwrap();
    assert!(answer.ends_with(r#"subject: Some("alice")"#), "{answer}");
    let answer = get(http, "/whoami", &certs.ours, None).await.unwrap();
    assert!(answer.ends_with("subject: None"), "{answer}");
    http_server.abort();
}

fn args(words: &[&str], paths: &[(&str, PathBuf)]) -> Vec<String> {
    let mut args: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    for (flag, path) in paths {
        args.push((*flag).to_owned());
        args.push(path.display().to_string());
    }
    args
}

#[tokio::test]
async fn the_cli_appends_and_reads_over_mutual_tls() {
    let certs = certs();
    diplog::tls::install_crypto_provider();
    let tls = server_tls(&certs.ours, Some((&certs.ours, ClientAuth::Required)));
    let server = TlsServer::start(tls).await;
    let url = server.url();
    let ca = ("--ca-cert", certs.ours.join("ca.pem"));
    let identity = [
        ("--client-cert", certs.ours.join("client.pem")),
        ("--client-key", certs.ours.join("client-key.pem")),
    ];

    let appended = diplog(args(
        &["append", "--server", &url, "--stream", "cli-tls"],
        &[ca.clone(), identity[0].clone(), identity[1].clone()],
    ))
    .stdin("{\"type\": \"CallHeld\", \"data\": {\"by\": \"cli\"}}\n")
    .await;
    assert!(
        appended.status.success(),
        "{}",
        String::from_utf8_lossy(&appended.stderr)
    );
    let read = diplog(args(
        &["read", "--server", &url, "--stream", "cli-tls"],
        &[ca.clone(), identity[0].clone(), identity[1].clone()],
    ))
    .await;
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&read.stdout).trim()).unwrap();
    assert_eq!(line["data"]["by"], "cli");
    // Appended by the principal the client certificate names, on an open server too.
    assert_eq!(line["appended_by"], "alice", "{line}");

    // Without the client certificate the server refuses the CLI; without https it is a
    // usage error, caught before connecting.
    let refused = diplog(args(
        &["read", "--server", &url, "--stream", "cli-tls"],
        std::slice::from_ref(&ca),
    ))
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        handshake_refused(&message, "CertificateRequired"),
        "{message}"
    );
    let plain = format!("http://127.0.0.1:{}", server.grpc.port());
    let misused = diplog(args(
        &["read", "--server", &plain, "--stream", "cli-tls"],
        &[ca],
    ))
    .await;
    assert_eq!(misused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&misused.stderr);
    assert!(message.contains("https://"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn serve_refuses_plain_text_off_loopback_before_binding() {
    let database = fresh_database().await;
    let url = crate::helpers::database_url_for(&database);
    let started = std::time::Instant::now();
    let refused = diplog(
        args(
            &["serve", "--listen", "0.0.0.0:0", "--http", "127.0.0.1:0"],
            &[],
        )
        .into_iter()
        .chain(["--database-url".to_owned(), url]),
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("refusing to serve plain text on gRPC 0.0.0.0:0"),
        "{message}"
    );
    assert!(message.contains("--insecure"), "{message}");
    assert!(!message.contains("serving"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Before binding, and before touching the database: no migrations ran.
    let pool = diplog::database::pool_options(1)
        .connect_with(database)
        .await
        .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn a_bad_certificate_or_key_file_is_named_at_start_up() {
    let certs = certs();
    let database = fresh_database().await;
    let pool = diplog::database::pool_options(2)
        .connect_with(database)
        .await
        .unwrap();
    let start = |tls: TlsArgs| {
        let pool = pool.clone();
        async move {
            let config = ServerConfig {
                tls,
                ..ServerConfig::ephemeral()
            };
            match App::bind(config, pool).await {
                Ok(_) => panic!("the server started"),
                Err(error) => format!("{error:#}"),
            }
        }
    };
    let mut tls = server_tls(&certs.ours, None);
    tls.tls_key = Some(certs.ours.join("client-key.pem"));
    let error = start(tls).await;
    assert!(error.contains("ours/server.pem and "), "{error}");
    assert!(error.contains("not the certificate's"), "{error}");

    let mut tls = server_tls(&certs.ours, None);
    tls.tls_cert = Some(certs.ours.join("missing.pem"));
    let error = start(tls).await;
    assert!(error.contains("could not read"), "{error}");
    assert!(error.contains("missing.pem"), "{error}");

    let mut tls = server_tls(&certs.ours, None);
    tls.tls_key = Some(certs.ours.join("server.pem"));
    let error = start(tls).await;
    assert!(
        error.contains("server.pem: no usable private key"),
        "{error}"
    );

    let mut tls = server_tls(&certs.ours, Some((&certs.ours, ClientAuth::Required)));
    tls.tls_client_ca = Some(certs.ours.join("ca-key.pem"));
    let error = start(tls).await;
    assert!(
        error.contains("ca-key.pem: no certificate in it"),
        "{error}"
    );
}

#[tokio::test]
async fn dev_certs_writes_once_and_says_how_to_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("certs");
    let target = target.display().to_string();
    let made = diplog(args(
        &["dev-certs", &target, "--host", "diplog.internal"],
        &[],
    ))
    .await;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let said = String::from_utf8_lossy(&made.stdout);
    assert!(said.contains("server-key.pem"), "{said}");
    assert!(said.contains("--tls-client-ca"), "{said}");
    assert!(said.contains("diplog.internal"), "{said}");
    let again = diplog(args(&["dev-certs", &target], &[])).await;
    assert_eq!(again.status.code(), Some(2));
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("refusing to overwrite"), "{message}");
    assert!(message.contains("ca.pem"), "{message}");
}

#[tokio::test]
async fn serve_demo_imports_through_its_own_tls_port() {
    let certs = certs();
    let database = fresh_database().await;
    let url = crate::helpers::database_url_for(&database);
    // Tokens, as a database URL alone means (not the open mode of the other tests' servers).
    let mut server = Serve::on_database(&url)
        .env_remove("DIPLOG_AUTH")
        .arg("--demo")
        .arg("--tls-cert")
        .arg(certs.ours.join("server.pem"))
        .arg("--tls-key")
        .arg(certs.ours.join("server-key.pem"))
        .arg("--tls-client-ca")
        .arg(certs.ours.join("ca.pem"))
        .arg("--tls-client-auth")
        .arg("optional")
        .start()
        .await;
    let imported = server.log_entry("demo:").await;
    let imported = imported["fields"]["message"].as_str().unwrap_or_default();
    assert_eq!(imported, "demo: imported the founding scenario");
    server.kill().await;
}
