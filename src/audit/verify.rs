//! `diplog verify`: recomputes every leaf and the root from the rows in PostgreSQL, trusting
//! nothing the server stored about them but the hashes it compares against, and reports the
//! first position that does not match. The events and their stored leaf hashes come from
//! the store (`store::events_with_leaves`).

use futures::TryStreamExt;
use sqlx::PgPool;

use super::builder::leaf_of;
use super::tree::{self, TreeError};
use crate::domain::merkle::{Frontier, Hash};

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every hashed event matches, and so does the stored tree head.
    Verified {
        tree_size: u64,
        root: Hash,
        /// Events past the tree head, not hashed yet (the builder runs right behind appends).
        unhashed: u64,
    },
    /// The first position where the log and its tree disagree, and how.
    Mismatch { position: u64, problem: String },
}

pub async fn verify(pool: &PgPool) -> Result<Verification, TreeError> {
    let stored_head = tree::head(pool).await?;
    let tree_size = stored_head.size();
    let mut rows = crate::store::events_with_leaves(pool);
    let mut recomputed = Frontier::new();
    let mut unhashed = 0;
    while let Some(row) = rows.try_next().await? {
        let expected = recomputed.size() + 1;
        let position = row.event.position as u64;
        if position != expected {
            return Ok(Verification::Mismatch {
                position: expected,
                problem: format!(
                    "missing: the log goes from position {} to {position}",
                    expected - 1
                ),
            });
        }
        let leaf = leaf_of(&row.event);
        match row.leaf {
            Some(stored) if stored.as_slice() != leaf => {
                return Ok(Verification::Mismatch {
                    position,
                    problem: format!(
                        "the event (id {}) does not match the leaf hash stored when it was \
                         recorded: it was changed since, or moved here from another position",
                        row.event.event_id
                    ),
                });
            }
            Some(_) => {}
            None if position <= tree_size => {
                return Ok(Verification::Mismatch {
                    position,
                    problem: "the tree covers this position but stores no leaf hash for it".into(),
                });
            }
            None => unhashed += 1,
        }
        recomputed.push(leaf);
        if recomputed.size() == tree_size && recomputed.root() != stored_head.root() {
            return Ok(Verification::Mismatch {
                position,
                problem: format!(
                    "the stored tree head (size {tree_size}) has root {}, but the log's events \
                     give {}",
                    hex::encode(stored_head.root()),
                    hex::encode(recomputed.root())
                ),
            });
        }
    }
    if recomputed.size() < tree_size {
        return Ok(Verification::Mismatch {
            position: recomputed.size() + 1,
            problem: format!(
                "missing: the tree head covers {tree_size} events, the log ends at position {}",
                recomputed.size()
            ),
        });
    }
    if tree_size == 0 && stored_head.root() != crate::domain::merkle::empty_root() {
        return Ok(Verification::Mismatch {
            position: 0,
            problem: "the stored root of the empty tree is wrong".into(),
        });
    }
    Ok(Verification::Verified {
        tree_size,
        root: stored_head.root(),
        unhashed,
    })
}
