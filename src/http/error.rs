//! Errors of the dashboard, as HTTP: a bad parameter is a 400 page naming it, something that
//! does not exist (a tile beyond the tree too) a 404 page, projections that have not caught up
//! in time a 503 page, one stream too many for its client a 429 page, an event too large for
//! an entry bundle a 501; any other error is logged and answered with a plain 500 that does
//! not leak its cause. The error page itself is rendered in
//! `pages::error_page`, with the frame every page has.

use crate::projections::read::request::QueryError;
use crate::store::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A query parameter is not what it must be.
    #[error("the {parameter} parameter: {message}")]
    BadRequest {
        parameter: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    /// The projections did not reach the position asked for in time.
    #[error("{0}")]
    NotYet(String),
    /// The client holds as many streams open as it may (`--max-streams-per-client`).
    #[error(transparent)]
    TooManyStreams(#[from] crate::stream_limit::TooManyStreams),
    /// What exists but cannot be given in the form asked for (an event too large for an
    /// entry bundle).
    #[error("{0}")]
    Unservable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::audit::tiles::TileError> for HttpError {
    fn from(error: crate::audit::tiles::TileError) -> Self {
        use crate::audit::tiles::TileError;
        match error {
            TileError::BeyondTree { .. } => Self::NotFound(error.to_string()),
            TileError::EntryTooLong { .. } => Self::Unservable(error.to_string()),
            TileError::Incomplete { .. } | TileError::Tree(_) | TileError::Database(_) => {
                Self::Internal(error.to_string())
            }
        }
    }
}

impl From<crate::audit::ProofError> for HttpError {
    fn from(error: crate::audit::ProofError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<QueryError> for HttpError {
    fn from(error: QueryError) -> Self {
        match error {
            // The dashboard checks its query parameters itself, so what the queries find
            // invalid came from the path (an actor, a state): no such page.
            QueryError::Invalid { .. } | QueryError::NotFound(_) => {
                Self::NotFound(error.to_string())
            }
            QueryError::NotYet { .. } => Self::NotYet(error.to_string()),
            // The dashboard pages its lists; it never asks for a whole one.
            QueryError::TooMany { .. } => Self::Unservable(error.to_string()),
            QueryError::Projection(_) | QueryError::BadRow(_) => Self::Internal(error.to_string()),
        }
    }
}

impl From<ReadError> for HttpError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::StreamNotFound(_) => Self::NotFound(error.to_string()),
            _ => Self::Internal(error.to_string()),
        }
    }
}

impl From<crate::projections::engine::rows::ProjectionError> for HttpError {
    fn from(error: crate::projections::engine::rows::ProjectionError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<askama::Error> for HttpError {
    fn from(error: askama::Error) -> Self {
        Self::Internal(format!("a page does not render: {error}"))
    }
}
