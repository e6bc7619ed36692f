//! A stream outlives the check made when it opened: a subscription may run for days. So a
//! stream opened with a token is checked again whenever tokens change anywhere (the NOTIFY
//! that drops the token cache) and every [`RECHECK`] (for expiry), and ended with
//! UNAUTHENTICATED once its token no longer admits the caller (revoked or expired). Ending the
//! response body drops the stream behind it, which frees what it held.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use tonic::codegen::http::{self, HeaderMap, HeaderValue};

use super::authenticate::{AuthError, Authenticator};

/// How often an open stream's token is checked even when no token changed: the longest an
/// expired token's stream goes on.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The server-streaming methods, whose calls are watched while they run.
pub fn is_stream(path: &str) -> bool {
    matches!(
        path,
        "/diplog.v1.EventLog/ReadStream"
            | "/diplog.v1.EventLog/ReadAll"
            | "/diplog.v1.EventLog/ReadStreamBatches"
            | "/diplog.v1.EventLog/ReadAllBatches"
            | "/diplog.v1.EventLog/Subscribe"
            | "/diplog.v1.Diplomacy/ReadEvents"
            | "/diplog.v1.Projections/WatchProjection"
    )
}

/// Resolves once `token` no longer admits its caller. A database that cannot be reached does
/// not end the stream (the token is checked again at the next change or tick).
pub fn revoked(authenticator: Authenticator, token: String) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut changes = authenticator.token_changes();
        loop {
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(RECHECK) => {}
            }
            if let Err(AuthError::Rejected(reason)) =
                authenticator.authenticate(Some(&token), None).await
            {
                tracing::info!(%reason, "a stream's token no longer admits it; ending the stream");
                return;
            }
        }
    })
}

/// A gRPC response body that ends with UNAUTHENTICATED trailers once `revoked` resolves.
pub struct EndWhenRevoked<B> {
    inner: B,
    revoked: Option<BoxFuture<'static, ()>>,
    ended: bool,
}

impl<B> EndWhenRevoked<B> {
    pub fn new(inner: B, revoked: Option<BoxFuture<'static, ()>>) -> Self {
        Self {
            inner,
            revoked,
            ended: false,
        }
    }
}

impl<B: Default> Default for EndWhenRevoked<B> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B: Body + Unpin> Body for EndWhenRevoked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(revoked) = &mut this.revoked
            && revoked.as_mut().poll(cx).is_ready()
        {
            this.ended = true;
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("16"));
            // Percent-encoded, as gRPC carries messages.
            trailers.insert(
                "grpc-message",
                HeaderValue::from_static(
                    "the%20token%20this%20stream%20was%20opened%20with%20was%20revoked%20or%20has%20expired",
                ),
            );
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.revoked {
            // Trailers may come early: nothing exact can be promised.
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// Wraps `response`'s body, watching `token` if the call is a stream opened with one.
pub fn watch<B>(
    response: http::Response<B>,
    watched: Option<(Authenticator, String)>,
) -> http::Response<EndWhenRevoked<B>> {
    let revoked = watched.map(|(authenticator, token)| revoked(authenticator, token));
    response.map(|body| EndWhenRevoked::new(body, revoked))
}
