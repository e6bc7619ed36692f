//! Logging and trace export: tracing to stderr (stdout belongs to CLI output), filtered by
//! `RUST_LOG`, and, when `diplog serve` is given `--otlp-endpoint`, OpenTelemetry spans
//! exported over OTLP/gRPC. Owns the subscriber, the exporter's life (built at start, flushed
//! at shutdown) and W3C trace context extraction; the spans themselves are opened where the
//! work happens (the gRPC and HTTP entry layers, the append writer), always with
//! [`TARGET`].
//!
//! The spans meant for export have their own target so that the two outputs do not mix: the
//! log never shows them (its own filter leaves [`TARGET`] out, whatever `RUST_LOG` says), and
//! the exporter sees nothing else. Without `--otlp-endpoint` no layer wants [`TARGET`], so those
//! spans are disabled at their call sites: no span is built, no field is formatted.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::codegen::http;
use tracing_subscriber::filter::{EnvFilter, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The target of every span meant for the OTLP exporter (and of nothing else).
pub const TARGET: &str = "otlp";

/// The service name the exported spans carry (`service.name`).
pub const SERVICE_NAME: &str = "diplog";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where `diplog serve` sends its traces.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OtlpArgs {
    /// Export OpenTelemetry traces over OTLP/gRPC to this collector (`http://host:4317`, or
    /// `https://…` for TLS with the system's roots). Off when not given. The batch exporter
    /// reads the standard `OTEL_BSP_*` variables (`OTEL_BSP_SCHEDULE_DELAY`, in ms: how often a
    /// batch is sent).
    #[arg(long, env = "DIPLOG_OTLP_ENDPOINT", value_parser = parse_endpoint)]
    pub otlp_endpoint: Option<String>,
}

/// An OTLP endpoint: an `http` or `https` URL with a host.
fn parse_endpoint(raw: &str) -> Result<String, String> {
    let uri: tonic::transport::Uri = raw.parse().map_err(|error| format!("not a URL: {error}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(raw.to_owned()),
        _ => Err("expected http://HOST:PORT or https://HOST:PORT".to_owned()),
    }
}

/// The running trace export; [`TraceExport::shutdown`] sends what is still buffered.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Flushes the spans still queued and stops the exporter, waiting at most `within`. The
    /// SDK blocks the calling thread while it does, and its exporter needs this runtime's
    /// reactor, so the wait happens on a blocking thread.
    pub async fn shutdown(self, within: Duration) {
        let provider = self.provider;
        let stopped =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(within)).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "could not flush the traces"),
            Err(error) => tracing::warn!(error = %error, "the trace exporter panicked"),
        }
    }
}

/// Installs the global subscriber; `default_filter` applies when `RUST_LOG` is unset. With an
/// OTLP endpoint also the exporter (a batch span processor on a thread of its own; the tonic
/// client it sends through runs on the current Tokio runtime, so call this inside it).
pub fn init(
    format: LogFormat,
    default_filter: &str,
    otlp: &OtlpArgs,
) -> anyhow::Result<Option<TraceExport>> {
    // `RUST_LOG` filters globally (as a per-layer filter, an `EnvFilter` let through none of
    // a target's more verbose events, `diplog::recorder=debug` say); the export's target is
    // let through only when there is an exporter, and then kept out of the log by the log's
    // own filter.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let exporting = if otlp.otlp_endpoint.is_some() {
        "trace"
    } else {
        "off"
    };
    let filter = filter.add_directive(
        format!("{TARGET}={exporting}")
            .parse()
            .expect("a directive"),
    );
    // A failed log write must never take the process down: tracing-subscriber would report
    // it with `eprintln!`, which panics when stderr itself is gone (a closed pipe), and a task
    // that panics there (the signal handler, say) stops doing its job.
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let log = match format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log.json().boxed(),
    }
    .with_filter(filter_fn(|metadata| metadata.target() != TARGET));
    let Some(endpoint) = &otlp.otlp_endpoint else {
        Registry::default().with(filter).with(log).init();
        return Ok(None);
    };
    let provider = tracer_provider(endpoint)?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_threads(false)
        .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE));
    Registry::default()
        .with(filter)
        .with(log)
        .with(spans)
        .init();
    tracing::info!(endpoint = %endpoint, "exporting traces over OTLP");
    Ok(Some(TraceExport { provider }))
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    if endpoint.starts_with("https:") {
        exporter =
            exporter.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
    }
    let exporter = exporter
        .build()
        .with_context(|| format!("could not set up the OTLP exporter to {endpoint}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(SERVICE_NAME)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The caller's trace context from W3C `traceparent` and `tracestate` headers (gRPC metadata
/// is HTTP/2 headers): the parent of the server's span. An empty context (a new trace) when
/// there is none or it is malformed.
pub fn remote_parent(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn a_traceparent_header_becomes_the_remote_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        headers.insert("tracestate", "vendor=value".parse().unwrap());

        let parent = remote_parent(&headers);

        let span = parent.span();
        let context = span.span_context();
        assert!(context.is_remote());
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(context.trace_state().get("vendor"), Some("value"));
    }

    #[test]
    fn a_missing_or_malformed_traceparent_starts_a_new_trace() {
        let mut headers = http::HeaderMap::new();
        assert!(!remote_parent(&headers).span().span_context().is_valid());
        headers.insert("traceparent", "00-not-a-trace-01".parse().unwrap());
        assert!(!remote_parent(&headers).span().span_context().is_valid());
    }

    #[test]
    fn only_http_urls_are_endpoints() {
        assert!(parse_endpoint("http://127.0.0.1:4317").is_ok());
        assert!(parse_endpoint("https://collector.example:4317").is_ok());
        for bad in ["127.0.0.1:4317", "ftp://host:1", "http://", "not a url"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
