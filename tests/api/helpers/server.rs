//! The server in the test's own process: `spawn_app…` binds the real `App` on loopback ports
//! over a test database, and `TestApp` holds it with a connected client; plus the request
//! builders and status readers the gRPC tests share.

use std::net::SocketAddr;
use std::time::Duration;

use diplog::app::App;
use diplog::config::ServerConfig;
use diplog::projections::engine::rows::ProjectionStore;
use diplog::proto::{self, event_log_client::EventLogClient};
use diplog::store::RecordedEvent;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A running server on loopback, its database, and a connected client.
pub struct TestApp {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub client: EventLogClient<Channel>,
    /// Direct access to the server's database, for checks behind the API's back.
    pub pool: PgPool,
    pub db_options: PgConnectOptions,
    /// The server's projection query side (what it reports of its runners and change feeds).
    pub projections: ProjectionStore,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(super::fresh_database().await).await
}

/// Starts a server on an existing database (e.g. to restart on the same data).
pub async fn spawn_app_on(db_options: PgConnectOptions) -> TestApp {
    spawn_app_with(db_options, ServerConfig::ephemeral()).await
}

/// Starts a server with this configuration on an existing database.
pub async fn spawn_app_with(db_options: PgConnectOptions, config: ServerConfig) -> TestApp {
    spawn_app_with_pool(db_options, config, 16).await
}

/// Starts a server whose pool holds at most `max_connections` (as `--max-connections`).
pub async fn spawn_app_with_pool(
    db_options: PgConnectOptions,
    config: ServerConfig,
    max_connections: u32,
) -> TestApp {
    let pool = diplog::database::pool_options(max_connections)
        .connect_with(diplog::database::session_options(db_options.clone()))
        .await
        .expect("could not connect to the test database");
    let app = App::bind(config, pool.clone())
        .await
        .expect("the server binds");
    let grpc_addr = app.grpc_addr();
    let http_addr = app.http_addr();
    let projections = app.projections();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let client = EventLogClient::connect(format!("http://{grpc_addr}"))
        .await
        .expect("the client connects");
    TestApp {
        grpc_addr,
        http_addr,
        client,
        pool,
        db_options,
        projections,
        shutdown,
        server,
    }
}

impl TestApp {
    pub fn server_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// A connection for clients of other services (health, reflection).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.server_url())
            .expect("a valid URL")
            .connect()
            .await
            .expect("the channel connects")
    }

    /// Another client on its own connection, for concurrent callers.
    pub async fn new_client(&self) -> EventLogClient<Channel> {
        EventLogClient::connect(self.server_url())
            .await
            .expect("the client connects")
    }

    /// Appends events given as (type, JSON payload) with generated ids.
    pub async fn append(
        &self,
        stream: &str,
        expected: Expect,
        events: &[(&str, &str)],
    ) -> Result<proto::AppendResponse, tonic::Status> {
        let events = events.iter().map(|(t, d)| new_event(t, d)).collect();
        self.client
            .clone()
            .append(append_request(stream, expected, events))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn read_all(&self, request: proto::ReadAllRequest) -> Vec<proto::RecordedEvent> {
        collect(
            self.client
                .clone()
                .read_all(request)
                .await
                .expect("read_all"),
        )
        .await
    }

    pub async fn read_stream(
        &self,
        request: proto::ReadStreamRequest,
    ) -> Result<Vec<proto::RecordedEvent>, tonic::Status> {
        let response = self.client.clone().read_stream(request).await?;
        Ok(collect(response).await)
    }

    /// Every event in the log, read directly from the table.
    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// Every event as stored, read straight from the table.
    pub async fn stored_events(&self) -> Vec<RecordedEvent> {
        sqlx::query_as(
            "select position, stream_id, stream_version, event_id, event_type, data_text, \
             correlation_id, causation_id, metadata, recorded_at, appended_by from events order by position",
        )
        .fetch_all(&self.pool)
        .await
        .expect("the stored events")
    }

    /// Cancels the server and asserts that it stops cleanly within 5 s.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("the server stops within 5 s")
            .expect("the server task does not panic");
        stopped.expect("the server stops without error");
        self.pool.close().await;
    }
}

pub async fn collect(
    response: tonic::Response<tonic::Streaming<proto::RecordedEvent>>,
) -> Vec<proto::RecordedEvent> {
    let mut stream = response.into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.expect("a readable stream") {
        events.push(event);
    }
    events
}

#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Any,
    NoStream,
    Exists,
    Exact(i64),
}

pub fn expected(expect: Expect) -> proto::ExpectedVersion {
    use proto::expected_version::Kind;
    proto::ExpectedVersion {
        kind: Some(match expect {
            Expect::Any => Kind::Any(()),
            Expect::NoStream => Kind::NoStream(()),
            Expect::Exists => Kind::StreamExists(()),
            Expect::Exact(version) => Kind::Exact(version),
        }),
    }
}

pub fn new_event(event_type: &str, data: &str) -> proto::NewEvent {
    proto::NewEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: event_type.to_owned(),
        data: data.to_owned(),
        metadata: None,
    }
}

pub fn append_request(
    stream: &str,
    expect: Expect,
    events: Vec<proto::NewEvent>,
) -> proto::AppendRequest {
    proto::AppendRequest {
        stream_id: stream.to_owned(),
        expected_version: Some(expected(expect)),
        events,
    }
}

pub fn read_all_from(from: i64) -> proto::ReadAllRequest {
    proto::ReadAllRequest {
        from_position: Some(from),
        ..Default::default()
    }
}

/// The field paths named in a status's `google.rpc.BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The metadata of a status's `google.rpc.ErrorInfo`, with its reason under `reason`.
pub fn error_info(status: &tonic::Status) -> std::collections::HashMap<String, String> {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let info = details.error_info().expect("an ErrorInfo detail");
    let mut metadata = info.metadata.clone();
    metadata.insert("reason".into(), info.reason.clone());
    metadata
}
