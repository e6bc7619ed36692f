//! The dashboard's sign-in for browsers, which cannot send `Authorization: Bearer` on page
//! loads: `/login` takes a token in a form and keeps it in an HttpOnly, SameSite=Strict cookie
//! (scripts cannot read it, other sites cannot send it); `/logout` drops it.

use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use tracing::warn;

use super::authenticate::Authenticator;

/// The cookie the login form sets, holding a token (HttpOnly, SameSite=Strict).
pub const COOKIE: &str = "diplog_token";

#[derive(Clone)]
struct Login {
    authenticator: Authenticator,
    /// Mark the cookie `Secure` (the dashboard is served over TLS).
    secure: bool,
}

/// `GET /login`, `POST /login`, `POST /logout`.
pub fn routes(authenticator: Authenticator, secure: bool) -> Router {
    Router::new()
        .route("/login", get(form).post(sign_in))
        .route("/logout", post(sign_out))
        .with_state(Login {
            authenticator,
            secure,
        })
}

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>diplog: sign in</title>
<link rel="stylesheet" href="/assets/dashboard.css"></head>
<body><main><h1>Sign in</h1>
<p>This server requires a token. Paste one that holds the reader role (an admin makes one with
<code>diplog token create --name NAME --role reader</code>).</p>
<form method="post" action="/login">
NEXT<label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
MESSAGE</main></body></html>
"#;

/// The form, with `message` under it and `next` (a checked local path) to return to.
fn page(message: &str, next: Option<&str>) -> Html<String> {
    let next = next.map_or(String::new(), |next| {
        format!("<input type=\"hidden\" name=\"next\" value=\"{next}\">\n")
    });
    Html(FORM.replace("NEXT", &next).replace("MESSAGE", message))
}

/// Where a browser without a credential is sent to sign in, to come back to `back` after.
pub fn login_url(back: &str) -> String {
    match local_path(back) {
        Some(back) if back != "/" => {
            let encoded: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
            format!("/login?next={encoded}")
        }
        _ => "/login".to_owned(),
    }
}

/// `path` if it is a path of this site made of URL characters only (so neither a redirect
/// elsewhere, `//host` or `https://…`, nor anything that needs escaping in HTML).
fn local_path(path: &str) -> Option<&str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/._~-?=&%+:,".contains(c);
    (path.starts_with('/') && !path.starts_with("//") && path.chars().all(allowed)).then_some(path)
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

async fn form(Query(query): Query<Next>) -> Html<String> {
    page("", query.next.as_deref().and_then(local_path))
}

#[derive(Deserialize)]
struct Credentials {
    token: String,
    /// The page to return to (a local path; anything else returns to `/`).
    next: Option<String>,
}

/// A cross-site form must not sign the browser in (as someone else): a browser's `Origin`,
/// when it sends one, must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

async fn sign_in(
    State(login): State<Login>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Response {
    let peer = peer.to_string();
    if !same_origin(&headers) {
        warn!(peer, "sign-in refused: a form from another origin");
        return (StatusCode::FORBIDDEN, "sign in from this site's own form\n").into_response();
    }
    let token = credentials.token.trim();
    match login.authenticator.authenticate(Some(token), None).await {
        Ok(_) => {
            let secure = if login.secure { "; Secure" } else { "" };
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
            let back = credentials
                .next
                .as_deref()
                .and_then(local_path)
                .unwrap_or("/");
            ([(header::SET_COOKIE, cookie)], Redirect::to(back)).into_response()
        }
        Err(error) => {
            warn!(peer, path = "/login", reason = %error, "authentication failed");
            (
                StatusCode::UNAUTHORIZED,
                page(
                    "<p class=\"error\">That token was not accepted (malformed, unknown, \
                     expired or revoked).</p>",
                    credentials.next.as_deref().and_then(local_path),
                ),
            )
                .into_response()
        }
    }
}

/// A cross-site form must not sign the browser out either.
async fn sign_out(ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        warn!(peer = %peer, "sign-out refused: a form from another origin");
        return (
            StatusCode::FORBIDDEN,
            "sign out from this site's own pages\n",
        )
            .into_response();
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_comes_back_to_a_page_of_this_site_only() {
        assert_eq!(login_url("/"), "/login");
        assert_eq!(
            login_url("/channels?status=open&as_of=2025-03-01"),
            "/login?next=%2Fchannels%3Fstatus%3Dopen%26as_of%3D2025-03-01"
        );
        for elsewhere in [
            "//evil.example/",
            "https://evil.example/",
            "/\"><script>",
            "/a b",
        ] {
            assert_eq!(local_path(elsewhere), None, "{elsewhere}");
            assert_eq!(login_url(elsewhere), "/login", "{elsewhere}");
        }
        let form = page("", local_path("/actors/RUS?on=2025-03-01")).0;
        assert!(
            form.contains(r#"<input type="hidden" name="next" value="/actors/RUS?on=2025-03-01">"#),
            "{form}"
        );
    }
    use axum::http::HeaderValue;

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&headers), "no Origin: a non-browser client");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
