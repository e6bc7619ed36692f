//! The tree and its entries as C2SP `tlog-tiles`: hash tiles read from the stored nodes
//! (`merkle_nodes` holds every completed perfect subtree, so a tile's row is there as soon as
//! the tree covers it) and entry bundles of the events' canonical bytes. Nothing is hashed
//! per request.

use super::Auditor;
use super::builder::canonical;
use super::tree::{self, TreeError};
use crate::domain::LogFilter;
use crate::domain::tiles::{HEIGHT, Tile, TileKind};

#[derive(Debug, thiserror::Error)]
pub enum TileError {
    /// The tile reaches past the tree head: nobody may rely on it yet.
    #[error("tile {path} is beyond the tree of size {size}")]
    BeyondTree { path: String, size: u64 },
    #[error("the stored tree lacks nodes of tile {path}")]
    Incomplete { path: String },
    /// tlog-tiles gives an entry 2 bytes of length; larger events are read with `export`.
    #[error(
        "the event at position {position} is {len} bytes, more than an entry bundle holds \
         (65535); read it with diplog export"
    )]
    EntryTooLong { position: u64, len: usize },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Auditor {
    /// The bytes of `tile`, which must lie within the current tree: a hash tile is its
    /// hashes one after another (32 bytes each); an entry bundle is each entry's canonical
    /// bytes behind their length (2 bytes, big-endian).
    pub async fn tile(&self, tile: Tile) -> Result<Vec<u8>, TileError> {
        let size = tree::head(&self.pool).await?.size();
        let path = tile.path();
        let bottom_level = match tile.kind {
            TileKind::Hashes { level } => u32::from(level) * HEIGHT,
            TileKind::Entries => 0,
        };
        // The nodes of that tree level which the tree has completed.
        let available = size >> bottom_level;
        let end = tile.first() + u64::from(tile.width);
        if end > available {
            return Err(TileError::BeyondTree { path, size });
        }
        let bytes = match tile.kind {
            TileKind::Hashes { .. } => {
                let hashes = tree::nodes_in_row(
                    &self.pool,
                    bottom_level,
                    tile.first(),
                    u64::from(tile.width),
                )
                .await?;
                if hashes.len() != usize::from(tile.width) {
                    return Err(TileError::Incomplete { path });
                }
                hashes.concat()
            }
            TileKind::Entries => self.entry_bundle(tile.first(), end, &path).await?,
        };
        Ok(bytes)
    }

    /// Leaves `first..end` (leaf index = position − 1) as an entry bundle.
    async fn entry_bundle(&self, first: u64, end: u64, path: &str) -> Result<Vec<u8>, TileError> {
        let mut bundle = Vec::new();
        let mut after = first;
        // A page of the log is bounded by its bytes too: read on until `end`.
        while after < end {
            let page = crate::store::events_page(
                &self.pool,
                after,
                end,
                &LogFilter::default(),
                (end - after) as i64,
            )
            .await?;
            for event in &page.events {
                if event.position as u64 != after + 1 {
                    return Err(TileError::Incomplete {
                        path: path.to_owned(),
                    });
                }
                let bytes = canonical(event).to_bytes();
                let len = u16::try_from(bytes.len()).map_err(|_| TileError::EntryTooLong {
                    position: after + 1,
                    len: bytes.len(),
                })?;
                bundle.extend_from_slice(&len.to_be_bytes());
                bundle.extend_from_slice(&bytes);
                after += 1;
            }
            if page.events.is_empty() {
                return Err(TileError::Incomplete {
                    path: path.to_owned(),
                });
            }
        }
        Ok(bundle)
    }
}
