//! The page an [`HttpError`] answers with: its status, a heading and the message, in the frame
//! every page has (a 500 says only "internal error" and logs the cause).

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::Frame;
use crate::http::error::HttpError;

#[derive(Template)]
#[template(path = "error.html", config = "src/http/askama.toml")]
struct ErrorPage {
    frame: Frame,
    message: String,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, heading) = match &self {
            Self::BadRequest { .. } => (StatusCode::BAD_REQUEST, "Bad request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            Self::NotYet(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The projections have not caught up yet",
            ),
            Self::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "Too many open streams"),
            Self::Unservable(_) => (StatusCode::NOT_IMPLEMENTED, "Not servable in this form"),
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard request failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        let message = match &self {
            Self::BadRequest { parameter, message } => {
                format!("The {parameter} parameter: {message}.")
            }
            other => other.to_string(),
        };
        let page = ErrorPage {
            frame: Frame::error(heading),
            message,
        };
        match page.render() {
            Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
            Err(error) => {
                tracing::error!(error = %error, "the error page does not render");
                (status, self.to_string()).into_response()
            }
        }
    }
}
