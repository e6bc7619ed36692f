//! Trace export (`--otlp-endpoint`): a `diplog serve` process sends its spans to an OTLP
//! receiver the test runs itself. An Append whose metadata carries a W3C `traceparent` comes
//! back as the RPC's server span in the caller's trace, under the caller's span, with the
//! writer group that wrote it under that and the database call under the group; an HTTP
//! request with a `traceparent` as its own server span. Spans still buffered when the server
//! stops are flushed on the way out. (Servers without the flag, everywhere else, export
//! nothing and start as before.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diplog::proto::event_log_client::EventLogClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::{Expect, Serve, append_request, database_url_for, fresh_database, new_event};

const APPEND_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APPEND_PARENT: &str = "00f067aa0ba902b7";
const PAGE_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PAGE_PARENT: &str = "b7ad6b7169203331";

/// What the receiver was sent: each span with its resource's `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| string(attribute.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    received.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Received {
    /// The spans of trace `trace_id` received so far.
    fn trace(&self, trace_id: &str) -> Vec<(String, Span)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, span)| hex::encode(&span.trace_id) == trace_id)
            .cloned()
            .collect()
    }

    /// Waits (up to `within`) until trace `trace_id` holds spans named each of `names`.
    async fn wait_for(&self, trace_id: &str, names: &[&str], within: Duration) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let spans = self.trace(trace_id);
            if names
                .iter()
                .all(|name| spans.iter().any(|(_, span)| span.name == *name))
            {
                for (service, span) in &spans {
                    assert_eq!(service, "diplog", "{span:?}");
                }
                return spans.into_iter().map(|(_, span)| span).collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "trace {trace_id} lacks some of {names:?}: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A receiver on a free loopback port, until `stop`.
async fn start_receiver(stop: CancellationToken) -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let service = TraceServiceServer::new(received.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop.cancelled_owned(),
            ),
    );
    (addr, received)
}

fn string(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.clone())
}

fn text(span: &Span, key: &str) -> String {
    attribute(span, key)
        .and_then(|value| string(&value))
        .unwrap_or_else(|| panic!("{key} on {span:#?}"))
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn traceparent(trace_id: &str, parent: &str) -> String {
    format!("00-{trace_id}-{parent}-01")
}

/// `GET path` with a `traceparent` header; answers the status.
async fn get_traced(addr: &str, path: &str, traceparent: &str) -> u16 {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the HTTP port answers");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\ntraceparent: {traceparent}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("a status line")
}

/// A server exporting to `receiver`, sending a batch every `delay_ms`.
async fn traced_server(receiver: SocketAddr, delay_ms: u64) -> crate::helpers::ServeProcess {
    let database = fresh_database().await;
    Serve::on_database(&database_url_for(&database))
        .arg("--otlp-endpoint")
        .arg(format!("http://{receiver}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", delay_ms.to_string())
        .start()
        .await
}

/// An Append carrying the caller's trace context.
async fn traced_append(server: &crate::helpers::ServeProcess) {
    let mut client = EventLogClient::new(server.channel().await);
    let events = vec![new_event("Noted", "{}"), new_event("Noted", "{}")];
    let mut request = tonic::Request::new(append_request("traced", Expect::NoStream, events));
    request.metadata_mut().insert(
        "traceparent",
        traceparent(APPEND_TRACE, APPEND_PARENT).parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("tracestate", "caller=1".parse().unwrap());
    client.append(request).await.expect("written");
}

#[tokio::test]
async fn an_append_and_a_page_are_exported_in_their_callers_traces() {
    let stop = CancellationToken::new();
    let (receiver, received) = start_receiver(stop.clone()).await;
    let mut server = traced_server(receiver, 100).await;

    traced_append(&server).await;
    let status = get_traced(
        &server.http(),
        "/healthz",
        &traceparent(PAGE_TRACE, PAGE_PARENT),
    )
    .await;
    assert_eq!(status, 200);

    let rpc_name = "diplog.v1.EventLog/Append";
    let spans = received
        .wait_for(
            APPEND_TRACE,
            &[rpc_name, "diplog.writer.group", "SELECT diplog_append"],
            Duration::from_secs(20),
        )
        .await;
    // The RPC: a server span under the caller's, with the RPC attributes and its status.
    let rpc = named(&spans, rpc_name);
    assert_eq!(hex::encode(&rpc.parent_span_id), APPEND_PARENT);
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(text(rpc, "rpc.system"), "grpc");
    assert_eq!(text(rpc, "rpc.service"), "diplog.v1.EventLog");
    assert_eq!(text(rpc, "rpc.method"), "Append");
    assert_eq!(
        attribute(rpc, "rpc.grpc.status_code"),
        Some(AnyValue::IntValue(0))
    );
    assert_eq!(rpc.trace_state, "caller=1");
    // The writer group that wrote it: under the RPC, with its size and positions.
    let group = named(&spans, "diplog.writer.group");
    assert_eq!(group.parent_span_id, rpc.span_id);
    assert_eq!(
        attribute(group, "diplog.group.appends"),
        Some(AnyValue::IntValue(1))
    );
    assert_eq!(
        attribute(group, "diplog.group.events"),
        Some(AnyValue::IntValue(2))
    );
    assert_eq!(
        attribute(group, "diplog.group.first_position"),
        Some(AnyValue::IntValue(1))
    );
    assert_eq!(
        attribute(group, "diplog.group.last_position"),
        Some(AnyValue::IntValue(2))
    );
    // The database call: under the group, naming the statement without its values.
    let database = named(&spans, "SELECT diplog_append");
    assert_eq!(database.parent_span_id, group.span_id);
    assert_eq!(database.kind, SpanKind::Client as i32);
    assert_eq!(text(database, "db.system"), "postgresql");
    assert_eq!(text(database, "db.operation.name"), "SELECT");

    // The page: a server span under the caller's, named by its route.
    let pages = received
        .wait_for(PAGE_TRACE, &["GET /healthz"], Duration::from_secs(20))
        .await;
    let page = named(&pages, "GET /healthz");
    assert_eq!(hex::encode(&page.parent_span_id), PAGE_PARENT);
    assert_eq!(page.kind, SpanKind::Server as i32);
    assert_eq!(text(page, "http.route"), "/healthz");
    assert_eq!(
        attribute(page, "http.response.status_code"),
        Some(AnyValue::IntValue(200))
    );

    assert!(server.terminate(Duration::from_secs(20)).await.success());
    stop.cancel();
}

#[tokio::test]
async fn spans_still_buffered_are_flushed_when_the_server_stops() {
    let stop = CancellationToken::new();
    let (receiver, received) = start_receiver(stop.clone()).await;
    // No batch would go out on its schedule during the test.
    let mut server = traced_server(receiver, 600_000).await;

    traced_append(&server).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(received.trace(APPEND_TRACE).is_empty());

    assert!(server.terminate(Duration::from_secs(20)).await.success());
    received
        .wait_for(
            APPEND_TRACE,
            &["diplog.v1.EventLog/Append", "diplog.writer.group"],
            Duration::from_secs(1),
        )
        .await;
    stop.cancel();
}
