//! Calls that need the database are answered UNAVAILABLE at once while it cannot be reached
//! ([`DatabaseHealth`]), rather than each waiting out the connection pool's acquire timeout.
//! Health checks and reflection need no database and always pass.

use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::Status;
use tonic::codegen::http;
use tower::{Layer, Service};

use crate::health::DatabaseHealth;

/// The message a refused call gets; clients retry appends with the same event ids.
pub const DATABASE_DOWN: &str = "the database cannot be reached (PostgreSQL is down or \
     restarting); retry later, appends with the same event ids";

#[derive(Clone)]
pub struct DatabaseGateLayer {
    health: DatabaseHealth,
}

impl DatabaseGateLayer {
    pub fn new(health: DatabaseHealth) -> Self {
        Self { health }
    }
}

impl<S> Layer<S> for DatabaseGateLayer {
    type Service = DatabaseGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DatabaseGate {
            inner,
            health: self.health.clone(),
        }
    }
}

#[derive(Clone)]
pub struct DatabaseGate<S> {
    inner: S,
    health: DatabaseHealth,
}

/// Services that answer without the database.
fn needs_no_database(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

impl<S, B, ResBody> Service<http::Request<B>> for DatabaseGate<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if self.health.is_reachable() || needs_no_database(request.uri().path()) {
            return self.inner.call(request).boxed();
        }
        let refused = Status::unavailable(DATABASE_DOWN).into_http();
        async move { Ok(refused) }.boxed()
    }
}
