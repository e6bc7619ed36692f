//! Enforcement at the edge: one tower layer in front of every gRPC service, and one axum
//! middleware in front of the dashboard. Each reads the credential, authenticates it, checks
//! the role the method or page needs ([`super::access`]), and hands the [`Principal`] to the
//! handler in the request's extensions (where a client cannot put one).
//!
//! A failed authentication is logged at WARN with the peer address and the reason; the token
//! itself is never logged, nor put in a span or an error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Query, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response as HttpResponse};
use futures::future::BoxFuture;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use tracing::{debug, info, warn};

use super::access::{Access, denied_message, required_access, required_page_access};
use super::authenticate::{AuthError, Authenticator};
use super::login::COOKIE;
use super::tokens::Rejection;
use super::{Principal, Role};

/// The bearer token of an `Authorization: Bearer …` header: `None` without the header; a
/// header in another scheme, or not text, is [`Rejection::Malformed`].
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| Rejection::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Malformed);
    }
    Ok(Some(token.trim()))
}

/// The token in the dashboard's login cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, token)| token)
}

fn peer_of(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0)
        })
}

/// Why the client was not let in, as the client is told it (not the precise reason, which the
/// log has: a prober learns nothing about which tokens exist).
fn unauthenticated_message(error: &AuthError) -> &'static str {
    match error {
        AuthError::Rejected(Rejection::Missing) => {
            "this server requires a token: send `authorization: Bearer <token>` \
             (diplog --token or DIPLOG_TOKEN)"
        }
        _ => {
            "the token was not accepted (malformed, unknown, expired or revoked); \
             ask an admin for a valid one"
        }
    }
}

/// Authenticates and authorizes a request for `access`; logs a failure with its peer.
async fn admit(
    authenticator: &Authenticator,
    bearer_token: Result<Option<&str>, Rejection>,
    extensions: &http::Extensions,
    what: &str,
    access: Access,
) -> Result<Option<Principal>, Refusal> {
    let needed = match access {
        Access::Public => return Ok(None),
        Access::Denied => return Err(Refusal::NotServed),
        Access::Role(role) => role,
    };
    let peer = peer_of(extensions);
    let peer_text = peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    let subject = super::certificate::certificate_subject(extensions);
    let authenticated = match bearer_token {
        Ok(token) => authenticator.authenticate(token, subject.as_deref()).await,
        Err(rejection) => Err(rejection.into()),
    };
    let principal = match authenticated {
        Ok(principal) => principal,
        Err(AuthError::Store(error)) => {
            count_failure("store_unavailable");
            warn!(peer = %peer_text, %what, error = %error, "could not check a credential");
            return Err(Refusal::Unavailable);
        }
        Err(error) => {
            count_failure(match &error {
                AuthError::Rejected(Rejection::Missing) => "missing",
                AuthError::Rejected(Rejection::Malformed) => "malformed",
                AuthError::Rejected(Rejection::Unknown) => "unknown",
                AuthError::Rejected(Rejection::Expired) => "expired",
                AuthError::Rejected(Rejection::Revoked) => "revoked",
                AuthError::Store(_) => "store_unavailable",
            });
            warn!(peer = %peer_text, %what, reason = %error, "authentication failed");
            return Err(Refusal::Unauthenticated(unauthenticated_message(&error)));
        }
    };
    tracing::Span::current().record("principal", principal.name.as_str());
    debug!(principal = %principal.name, credential = ?principal.credential, "authenticated");
    if !principal.may(needed) {
        count_failure("permission_denied");
        info!(peer = %peer_text, %what, principal = %principal.name, %needed, "permission denied");
        return Err(Refusal::Denied(denied_message(&principal, needed, what)));
    }
    Ok(Some(principal))
}

/// Counts a refused request in `diplog_auth_failures_total`.
fn count_failure(reason: &'static str) {
    metrics::counter!(crate::monitoring::AUTH_FAILURES, "reason" => reason).increment(1);
}

enum Refusal {
    NotServed,
    Unauthenticated(&'static str),
    Denied(String),
    Unavailable,
}

impl Refusal {
    fn status(self, path: &str) -> Status {
        match self {
            Refusal::NotServed => Status::unimplemented(format!("{path} is not served")),
            Refusal::Unauthenticated(message) => Status::unauthenticated(message),
            Refusal::Denied(message) => Status::permission_denied(message),
            Refusal::Unavailable => {
                Status::unavailable("could not check the credential; try again")
            }
        }
    }
}

/// The gRPC layer: in front of every service (`Server::builder().layer(…)`).
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
}

impl AuthLayer {
    pub fn new(authenticator: Authenticator) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Authenticator,
}

impl<S, B, ResBody> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<super::revocation::EndWhenRevoked<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone is not ready; the ready one serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let access = required_access(&path);
            let admitted = admit(
                &authenticator,
                bearer(request.headers()),
                request.extensions(),
                &path,
                access,
            )
            .await;
            // A stream opened with a token is ended if the token is revoked or expires while
            // it runs.
            let watched = match bearer(request.headers()) {
                Ok(Some(token)) if super::revocation::is_stream(&path) => {
                    Some((authenticator.clone(), token.to_owned()))
                }
                _ => None,
            };
            match admitted {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        request.extensions_mut().insert(principal);
                    }
                    let response = inner.call(request).await?;
                    Ok(super::revocation::watch(response, watched))
                }
                Err(refusal) => Ok(super::revocation::watch(
                    refusal.status(&path).into_http(),
                    None,
                )),
            }
        })
    }
}

/// The dashboard's middleware: pages need reader, and auditor with `?as_of=`. Browsers send
/// the token in the login cookie; other clients in `Authorization: Bearer`.
pub async fn http_auth(
    State(authenticator): State<Authenticator>,
    mut request: HttpRequest,
    next: Next,
) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let mut access = required_page_access(&path);
    let as_of = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .is_ok_and(|query| query.get("as_of").is_some_and(|v| !v.trim().is_empty()));
    if as_of && access == Access::Role(Role::Reader) {
        access = Access::Role(Role::Auditor);
    }
    let headers = request.headers();
    let token = match bearer(headers) {
        Ok(None) => Ok(cookie_token(headers)),
        other => other,
    };
    let what = if as_of {
        format!("{path} as of")
    } else {
        path.clone()
    };
    match admit(&authenticator, token, request.extensions(), &what, access).await {
        Ok(principal) => {
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(Refusal::Unauthenticated(message)) => {
            // A browser's page load is sent to the sign-in form, which brings it back here;
            // other clients (and a browser's scripts) get the bare 401.
            let browser = request
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            if browser && request.method() == axum::http::Method::GET {
                let back = request.uri().path_and_query().map_or("/", |p| p.as_str());
                return Redirect::to(&super::login::login_url(back)).into_response();
            }
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                format!("{message}\n"),
            )
                .into_response()
        }
        Err(Refusal::Denied(message)) => (StatusCode::FORBIDDEN, message).into_response(),
        Err(Refusal::NotServed) => StatusCode::NOT_FOUND.into_response(),
        Err(Refusal::Unavailable) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_header_is_read_strictly() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), Ok(None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&headers), Ok(Some("abc")));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&headers), Ok(Some("abc")));
        for bad in ["Basic abc", "abc", "Bearerabc"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(bearer(&headers), Err(Rejection::Malformed), "{bad}");
        }
    }

    #[test]
    fn the_login_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; diplog_token=t0k; x=y"),
        );
        assert_eq!(cookie_token(&headers), Some("t0k"));
    }
}
