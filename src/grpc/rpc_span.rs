//! Where every gRPC request enters: the outermost layer of the server opens its spans. One is
//! the log's `grpc` span (the method, and the principal the auth layer records in it); the
//! other, for trace export ([`crate::telemetry::TARGET`]), is the RPC's server span: named
//! `package.Service/Method`, with the OpenTelemetry RPC attributes, the caller's W3C trace
//! context (`traceparent`/`tracestate` metadata) as its parent, and the gRPC status code once
//! the answer is complete. It ends with the response body, so a stream's span covers the
//! stream. Without trace export it is disabled: nothing is extracted or recorded.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::http;
use tower::{Layer, Service};
use tracing::Span;
use tracing::instrument::{Instrument, Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::TARGET;

#[derive(Debug, Clone, Copy, Default)]
pub struct RpcSpanLayer;

impl<S> Layer<S> for RpcSpanLayer {
    type Service = RpcSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcSpan { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcSpan<S> {
    inner: S,
}

impl<S, B, ResBody> Service<http::Request<B>> for RpcSpan<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<RpcBody<ResBody>>;
    type Error = S::Error;
    type Future = RpcFuture<Instrumented<Instrumented<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        let rpc = tracing::info_span!(
            target: TARGET,
            "rpc",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        if !rpc.is_disabled() {
            // Fails only if the span was started already, which it cannot have been.
            let _ = rpc.set_parent(crate::telemetry::remote_parent(request.headers()));
        }
        let log = rpc.in_scope(|| {
            tracing::info_span!(
                "grpc",
                method = %path,
                principal = tracing::field::Empty
            )
        });
        let inner = rpc.in_scope(|| log.in_scope(|| self.inner.call(request)));
        RpcFuture {
            inner: inner.instrument(log).instrument(rpc.clone()),
            span: Some(rpc),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner call's future, answering with a body that carries the RPC span on.
    pub struct RpcFuture<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
    }
}

impl<F, ResBody, E> Future for RpcFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = Result<http::Response<RpcBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        let span = this.span.take().unwrap_or_else(Span::none);
        if span.is_disabled() {
            return Poll::Ready(Ok(response.map(|inner| RpcBody { inner, span: None })));
        }
        // An error with no message body comes as headers alone (trailers-only).
        if let Some(code) = grpc_status(response.headers()) {
            record_status(&span, code);
            return Poll::Ready(Ok(response.map(|inner| RpcBody { inner, span: None })));
        }
        Poll::Ready(Ok(response.map(|inner| RpcBody {
            inner,
            span: Some(span),
        })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds the RPC span until its trailers (the status) go out.
    pub struct RpcBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
    }
}

impl<B: Body> Body for RpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if let Some(span) = this.span.as_ref() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                        record_status(span, code);
                        *this.span = None;
                    }
                }
                // The stream broke off, or ended without a status.
                Some(Err(_)) | None => *this.span = None,
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    std::str::from_utf8(headers.get("grpc-status")?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

/// Records the status code, and marks the span failed when the server is at fault (the
/// OpenTelemetry RPC conventions: a client's mistake is not a server error).
fn record_status(span: &Span, code: i32) {
    span.record("rpc.grpc.status_code", code);
    if server_error(tonic::Code::from_i32(code)) {
        span.record("otel.status_code", "error");
    }
}

fn server_error(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_code_is_read_from_headers_or_trailers() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("10"));
        assert_eq!(grpc_status(&headers), Some(10));
        headers.insert("grpc-status", http::HeaderValue::from_static("ten"));
        assert_eq!(grpc_status(&headers), None);
    }

    #[test]
    fn only_the_servers_own_failures_mark_the_span_failed() {
        assert!(server_error(tonic::Code::Internal));
        assert!(server_error(tonic::Code::Unavailable));
        assert!(!server_error(tonic::Code::Ok));
        assert!(!server_error(tonic::Code::Aborted));
        assert!(!server_error(tonic::Code::InvalidArgument));
        assert!(!server_error(tonic::Code::PermissionDenied));
    }
}
