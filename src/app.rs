//! The running server: binds the gRPC and HTTP listeners, then serves both (plus the append
//! writer) until the shutdown token is cancelled, and drains in-flight work before returning.

use std::net::SocketAddr;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codegen::http;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{error, info, warn};

use crate::audit::Auditor;
use crate::audit::signer::TreeSigner;
use crate::auth::authenticate::{Authenticator, Mode};
use crate::auth::layer::AuthLayer;
use crate::auth::tokens::TokenStore;
use crate::config::ServerConfig;
use crate::grpc::database_gate::DatabaseGateLayer;
use crate::grpc::rpc_span::RpcSpanLayer;
use crate::grpc::{
    AdminService, AuditService, DiplomacyService, EventLogService, ProjectionsService,
};
use crate::health::DatabaseHealth;
use crate::projections::engine::registry::LocalRunners;
use crate::projections::engine::rows::ProjectionStore;
use crate::projections::engine::runner::RunnerContext;
use crate::projections::read::query::Queries;
use crate::proto::{
    self, admin_server::AdminServer, audit_server::AuditServer, diplomacy_server::DiplomacyServer,
    event_log_server::EventLogServer, projections_server::ProjectionsServer,
};
use crate::store::{EventStore, WriterConfig, WriterHandle};
use crate::subscriptions::Subscriptions;
use crate::tls::listener::{TlsListener, TlsPeer};
use crate::tls::{ServerTls, Transport};

pub struct App {
    config: ServerConfig,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    store: EventStore,
    writer: WriterHandle,
    projections: ProjectionStore,
    runners: RunnerContext,
    auditor: Auditor,
    tls: Option<ServerTls>,
    authenticator: Authenticator,
    tokens: TokenStore,
    health: DatabaseHealth,
}

impl App {
    /// Applies migrations, starts the append writer and binds both listeners (port 0 picks a
    /// free port), so callers know the addresses before anything is served. Refuses plain
    /// text off loopback without `--insecure`, and unusable TLS files, before all that.
    pub async fn bind(config: ServerConfig, pool: PgPool) -> anyhow::Result<Self> {
        let transport = check_transport(&config)?;
        // Before anything is counted: figures recorded without a recorder are lost.
        crate::monitoring::handle();
        let tls = ServerTls::load(&config.tls).context("could not set up TLS")?;
        match transport {
            Transport::InsecurePlaintext => warn!(
                grpc = %config.listen,
                http = %config.http,
                "--insecure: serving PLAIN TEXT on an address other than loopback; anyone on \
                 the network path can read and alter the traffic"
            ),
            Transport::LoopbackPlaintext => {
                info!("plain text on loopback (give --tls-cert and --tls-key for TLS)")
            }
            Transport::Tls => {}
        }
        crate::MIGRATOR
            .run(&pool)
            .await
            .context("could not apply database migrations")?;
        let grpc_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("could not listen for gRPC on {}", config.listen))?;
        let http_listener = TcpListener::bind(config.http)
            .await
            .with_context(|| format!("could not listen for HTTP on {}", config.http))?;
        let listeners = [grpc_listener.local_addr()?, http_listener.local_addr()?];
        let mode = config
            .auth
            .resolve(&listeners)
            .map_err(anyhow::Error::msg)?;
        match mode {
            Mode::Open => warn!(
                "auth: OPEN on loopback: callers without a token get every role and are \
                 recorded as `anonymous` (start with --auth tokens to require tokens)"
            ),
            Mode::Tokens => info!("auth: every call needs a token (or a client certificate)"),
        }
        let tokens = TokenStore::new(pool.clone());
        let authenticator = Authenticator::new(
            mode,
            Some(tokens.clone()),
            config.auth.certificate_roles.iter().cloned().collect(),
        );
        let (store, writer) = EventStore::start(pool.clone(), WriterConfig::default())
            .await
            .context("could not read the log head")?;
        let local = LocalRunners::default();
        let runners = RunnerContext::new(&pool, &store, local.clone(), config.projections.runner());
        let signer = match &config.signing_key {
            Some(path) => {
                let signer = TreeSigner::load_or_create(path).with_context(|| {
                    format!("could not load the signing key {}", path.display())
                })?;
                crate::audit::keys::adopt(
                    &pool,
                    &store,
                    signer.public_key().to_bytes(),
                    config.rotate_signing_key,
                )
                .await
                .with_context(|| format!("refusing the signing key {}", path.display()))?;
                signer
            }
            None => TreeSigner::generate().context("could not make a signing key")?,
        };
        let auditor = Auditor::new(pool.clone(), signer, config.log_origin.clone());
        let projections = ProjectionStore::new(pool, local);
        Ok(Self {
            config,
            grpc_listener,
            http_listener,
            store,
            writer,
            projections,
            runners,
            auditor,
            tls,
            authenticator,
            tokens,
            health: DatabaseHealth::new(),
        })
    }

    /// Whether the database answers; `diplog serve`'s cluster supervisor moves it too.
    pub fn health(&self) -> DatabaseHealth {
        self.health.clone()
    }

    /// An endpoint to this server's own gRPC port (for `--demo`): under TLS it trusts exactly
    /// the server's own certificate.
    pub fn own_endpoint(&self) -> anyhow::Result<tonic::transport::Endpoint> {
        let address = self.grpc_addr();
        Ok(match &self.tls {
            Some(tls) => crate::tls::client::pinned_endpoint(address, tls.leaf().clone())?,
            None => tonic::transport::Endpoint::from_shared(format!("http://{address}"))?,
        })
    }

    /// Whether the ports speak TLS, and whether they ask clients for certificates.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// A token for this process's own calls, held in memory only (the `--demo` import goes
    /// through the API like any client, so it needs a credential when tokens are required).
    pub fn internal_token(
        &mut self,
        name: &str,
        roles: Vec<crate::auth::Role>,
    ) -> anyhow::Result<crate::auth::tokens::BearerToken> {
        let secret = self
            .authenticator
            .internal_token(name, roles)
            .context("could not make the server's own token")?;
        Ok(secret.expose().parse().expect("infallible"))
    }

    /// The projections' query side (what this server's runners report included).
    pub fn projections(&self) -> ProjectionStore {
        self.projections.clone()
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener.local_addr().expect("a bound listener")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener.local_addr().expect("a bound listener")
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests
    /// finish (appends included: the writer drains its queue), stops the projection runners
    /// and returns. A projection runner's failure never stops the server (it retries).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            config,
            grpc_listener,
            http_listener,
            store,
            writer,
            projections,
            runners,
            auditor,
            tls,
            authenticator,
            tokens,
            health,
        } = self;
        let client_auth = tls.as_ref().and_then(ServerTls::client_auth);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let dashboard_url = format!("{scheme}://{}/", http_listener.local_addr()?);
        info!(
            grpc = %grpc_listener.local_addr()?,
            http = %http_listener.local_addr()?,
            dashboard = %dashboard_url,
            tls = tls.is_some(),
            client_certificates = ?client_auth,
            "serving"
        );
        if authenticator.mode() == Mode::Tokens {
            info!(
                "every call needs a token: make one with `diplog token create --name NAME \
                 --role reader` (with this server's --data-dir or --database-url)"
            );
        }
        // A child token: the runners stop with the server, and also if serving fails.
        // Subscriptions end as soon as shutdown begins (their clients resume elsewhere or
        // later), so they do not hold the graceful shutdown open.
        let (subscriptions, mut subscription_tasks) = Subscriptions::start(
            store.clone(),
            config.subscriptions.config(),
            shutdown.child_token(),
        );
        // The runners wake on the head the subscriptions follow: this server's commits and,
        // through NOTIFY, every other server's, so they need not wait for their poll.
        let mut runners = runners;
        runners.committed_head = subscriptions.head();
        let database_options = runners.connect_options.clone();
        let tree_builder = tokio::spawn(crate::audit::builder::run(
            runners.connect_options.clone(),
            subscriptions.head(),
            shutdown.child_token(),
        ));
        let witnesses = tokio::spawn(crate::audit::witness::run(
            auditor.clone(),
            config.witnesses.clone(),
            shutdown.child_token(),
        ));
        let token_changes = tokio::spawn(
            authenticator
                .clone()
                .follow_token_changes(shutdown.child_token()),
        );
        let stop_runners = shutdown.child_token();
        let mut runners =
            crate::projections::engine::catalog::spawn_all(runners, stop_runners.clone());

        let database_monitor = tokio::spawn(
            health
                .clone()
                .monitor(database_options, shutdown.child_token()),
        );
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        let health_reports = tokio::spawn(report_health(
            health.watch(),
            health_reporter,
            shutdown.child_token(),
        ));
        let reflection_v1 = reflection()
            .build_v1()
            .context("could not build the reflection service")?;
        let reflection_v1alpha = reflection()
            .build_v1alpha()
            .context("could not build the reflection service")?;
        // One count of open streams per client, across gRPC and the dashboard's `/live`.
        let streams = config.limits.streams();
        let append_limits = config.limits.append();
        let max_request_bytes = config.limits.max_request_bytes();
        let event_log = EventLogServer::new(EventLogService::new(
            store.clone(),
            subscriptions.clone(),
            append_limits,
            streams.clone(),
        ))
        .max_decoding_message_size(max_request_bytes);
        let diplomacy = DiplomacyServer::new(DiplomacyService::new(
            store.clone(),
            append_limits,
            streams.clone(),
        ))
        .max_decoding_message_size(max_request_bytes);
        let queries = Queries::new(projections, config.projections.queries());
        let dashboard = crate::http::Dashboard {
            store: store.clone(),
            queries: queries.clone(),
            max_wait: config.request_timeout(),
            subscriptions: subscriptions.clone(),
            streams: streams.clone(),
            health: health.clone(),
            auditor: auditor.clone(),
        };
        let projections_service = ProjectionsServer::new(
            ProjectionsService::new(queries, config.request_timeout(), streams)
                .with_shutdown(shutdown.clone()),
        )
        .max_decoding_message_size(max_request_bytes);

        let mut grpc = Server::builder();
        if let Some(tls) = &tls {
            grpc = grpc
                .tls_config(tls.grpc())
                .context("could not set up TLS on the gRPC port")?;
        }
        let grpc = grpc
            .timeout(config.request_timeout())
            // Outermost: the request's spans (the log's, and the exported RPC span with the
            // caller's trace context) cover every layer below and see the final status.
            .layer(RpcSpanLayer)
            .layer(tower::util::MapResponseLayer::new(
                undecodable_is_invalid_argument,
            ))
            .layer(tower::util::MapResponseLayer::new(
                oversized_is_resource_exhausted,
            ))
            // While the database is down, calls that need it are refused at once.
            .layer(DatabaseGateLayer::new(health.clone()))
            // Every call is authenticated and checked for its role before any service sees it.
            .layer(AuthLayer::new(authenticator.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(event_log)
            .add_service(diplomacy)
            .add_service(projections_service)
            .add_service(
                AuditServer::new(AuditService::new(auditor))
                    .max_decoding_message_size(max_request_bytes),
            )
            .add_service(AdminServer::new(AdminService::new(
                tokens,
                authenticator.clone(),
            )))
            .serve_with_incoming_shutdown(
                TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                shutdown.clone().cancelled_owned(),
            );
        // The login cookie is `Secure` when the pages are served over TLS.
        let pages = crate::http::router(dashboard)
            .merge(crate::auth::login::routes(
                authenticator.clone(),
                tls.is_some(),
            ))
            .layer(axum::middleware::from_fn_with_state(
                authenticator,
                crate::auth::layer::http_auth,
            ))
            .layer(axum::middleware::map_request(tls_peer_address))
            .layer(axum::middleware::map_response(
                crate::http::security_headers,
            ))
            // Outermost: the request's exported span covers sign-in checks and all.
            .layer(axum::middleware::from_fn(crate::http::request_span));
        let http: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match &tls {
            // The peer address keys `/live` streams to their client, and names who failed to
            // sign in.
            None => Box::pin(
                axum::serve(
                    http_listener,
                    pages.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
            ),
            // The client's certificates (and address) ride along as `ConnectInfo<TlsPeer>`.
            Some(tls) => Box::pin(
                axum::serve(
                    TlsListener::new(http_listener, tls.http())?,
                    pages.into_make_service_with_connect_info::<TlsPeer>(),
                )
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future(),
            ),
        };

        let servers = async {
            tokio::try_join!(
                async { grpc.await.context("the gRPC server failed") },
                async { http.await.context("the HTTP server failed") },
            )
        };
        // Once shutdown begins, in-flight requests get a grace period: a client that stops
        // reading a long stream must not hold the server open for ever.
        let grace = config.shutdown_grace();
        let grace_over = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = servers => served.map(|_| ()),
            () = grace_over => {
                warn!(?grace, "requests still open after the shutdown grace period; closing them");
                Ok(())
            }
        };
        // Runners stop within about a second of the token.
        stop_runners.cancel();
        while let Some(stopped) = runners.join_next().await {
            if let Err(error) = stopped {
                error!(error = %error, "a projection runner panicked");
            }
        }
        subscription_tasks.shutdown().await;
        if let Err(error) = token_changes.await {
            error!(error = %error, "the token-change listener panicked");
        }
        for (task, what) in [
            (database_monitor, "the database monitor"),
            (health_reports, "the health reporter"),
        ] {
            if let Err(error) = task.await {
                error!(error = %error, "{what} panicked");
            }
        }
        if let Err(error) = tree_builder.await {
            error!(error = %error, "the audit tree builder panicked");
        }
        if let Err(error) = witnesses.await {
            error!(error = %error, "the witness client panicked");
        }
        drop(store);
        writer.stop().await.context("the append writer panicked")?;
        served?;
        info!("stopped");
        Ok(())
    }
}

/// Keeps the standard gRPC health service in step with the database: every service (and the
/// server as a whole, "") SERVING while it answers, NOT_SERVING while it does not.
async fn report_health(
    mut reachable: tokio::sync::watch::Receiver<bool>,
    reporter: tonic_health::server::HealthReporter,
    stop: CancellationToken,
) {
    use tonic::server::NamedService;
    use tonic_health::ServingStatus;
    const SERVICES: [&str; 6] = [
        "",
        <EventLogServer<EventLogService> as NamedService>::NAME,
        <DiplomacyServer<DiplomacyService> as NamedService>::NAME,
        <ProjectionsServer<ProjectionsService> as NamedService>::NAME,
        <AuditServer<AuditService> as NamedService>::NAME,
        <AdminServer<AdminService> as NamedService>::NAME,
    ];
    loop {
        let status = match *reachable.borrow_and_update() {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        for service in SERVICES {
            reporter.set_service_status(service, status).await;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = reachable.changed() => if changed.is_err() { return },
        }
    }
}

/// The plain-text rule of [`crate::tls::transport`] for this configuration: `diplog serve`
/// checks it before it opens the database, and [`App::bind`] before it binds.
pub fn check_transport(config: &ServerConfig) -> Result<Transport, crate::tls::PlaintextRefused> {
    crate::tls::transport(
        config.listen,
        config.http,
        config.tls.tls_cert.is_some(),
        config.tls.insecure,
    )
}

/// Under TLS a page's connection info is a `TlsPeer`; what reads the bare peer address (the
/// stream limit, the sign-in form, failed-authentication logs) finds it too.
async fn tls_peer_address(mut request: axum::extract::Request) -> axum::extract::Request {
    if let Some(axum::extract::ConnectInfo(peer)) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<TlsPeer>>()
        .cloned()
    {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer.remote));
    }
    request
}

/// tonic answers a request it cannot decode (a string field that is not UTF-8, a malformed
/// message) with INTERNAL, as if the server were at fault. The request is: answer
/// INVALID_ARGUMENT, keeping tonic's message, which names the field.
fn undecodable_is_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    const DECODE_FAILURE: &str = "failed to decode Protobuf message";
    let headers = response.headers_mut();
    let internal = headers
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() == b"13");
    let undecodable = headers.get("grpc-message").is_some_and(|message| {
        message.as_bytes().starts_with(DECODE_FAILURE.as_bytes())
            || message
                .as_bytes()
                .starts_with(DECODE_FAILURE.replace(' ', "%20").as_bytes())
    });
    if internal && undecodable {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}

/// tonic answers a request over the decoding limit with OUT_OF_RANGE ("decoded message length
/// too large: found N bytes, the limit is: L bytes"), a code meant for reading past an end.
/// The client asked for more than the server allows: answer RESOURCE_EXHAUSTED, naming the
/// setting.
fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    const TOO_LARGE: &str = "decoded message length too large: found ";
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_none_or(|code| code.as_bytes() != b"11")
    {
        return response;
    }
    // tonic percent-encodes the message's spaces (and nothing else in this one).
    let Some(message) = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(|m| m.replace("%20", " "))
    else {
        return response;
    };
    // "…found N bytes, the limit is: L bytes"
    let Some((_, sizes)) = message.split_once(TOO_LARGE) else {
        return response;
    };
    let number = |text: &str| -> String { text.chars().take_while(char::is_ascii_digit).collect() };
    let found = number(sizes);
    let limit = sizes
        .split_once("is: ")
        .map(|(_, rest)| number(rest))
        .unwrap_or_default();
    let rewritten = format!(
        "the request is {found} bytes, which exceeds the limit of {limit} bytes per request \
         (--max-request-bytes)"
    );
    if let Ok(value) = http::HeaderValue::from_str(&rewritten.replace(' ', "%20")) {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        headers.insert("grpc-message", value);
    }
    response
}

/// What the reflection services describe: diplog's services, health, and the error details
/// statuses carry (`google.rpc.BadRequest`, …), so a client that learns the API by reflection
/// can decode those too.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}
