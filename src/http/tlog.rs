//! The log for transparency-log tools: `GET /checkpoint` (the C2SP checkpoint of the current
//! tree head) and `GET /tile/…` (C2SP tlog-tiles: hash tiles and entry bundles). Full tiles
//! never change, so they are cached for a year; partial tiles and the checkpoint move with
//! the tree.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Dashboard, HttpError};
use crate::domain::tiles::Tile;

/// A full tile's bytes never change.
pub const FULL_TILE_CACHE: &str = "public, max-age=31536000, immutable";
/// A partial tile is replaced by a wider one as the tree grows (and tools then ask for that).
pub const PARTIAL_TILE_CACHE: &str = "public, max-age=60";

pub async fn checkpoint(State(dashboard): State<Dashboard>) -> Result<Response, HttpError> {
    let head = dashboard.auditor.signed_head().await?;
    let note = dashboard.auditor.checkpoint(&head.head);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    )
        .into_response())
}

pub async fn tile(
    State(dashboard): State<Dashboard>,
    Path(path): Path<String>,
) -> Result<Response, HttpError> {
    let tile = Tile::parse(&path).map_err(|e| HttpError::NotFound(e.to_string()))?;
    let bytes = dashboard.auditor.tile(tile).await?;
    let cache = if tile.is_full() {
        FULL_TILE_CACHE
    } else {
        PARTIAL_TILE_CACHE
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}
