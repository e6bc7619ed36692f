//! The live side of a runner: the next batch of the log applied to the live model, its
//! changed rows committed with the new position.

use std::collections::BTreeSet;
use std::sync::Arc;

use sqlx::Connection;
use tracing::trace;

use super::Runner;
use super::by_key;
use super::generations::LateIndexes;
use super::rows::{ROWS_PER_STATEMENT, hydrate, write_rows};
use crate::projections::engine::error::ProjectionError;
use crate::projections::engine::facts::Batch;
use crate::projections::{Fact, Model, Row};

impl<M: Model> Runner<'_, M> {
    /// Applies the next batch of diplomatic events to the live model and commits the rows it
    /// changed with the new position: one round trip to read, one to write (unless the batch
    /// changed many rows). `true` if the batch was full (more may follow at once).
    pub(super) async fn advance_live(&mut self) -> Result<bool, ProjectionError> {
        let Some(model) = self.live.as_mut() else {
            return Ok(false);
        };
        let batch = self
            .facts
            .read(
                &mut self.connection,
                self.position,
                None,
                self.config.batch_events,
            )
            .await?;
        let batch = within_versions(
            amendments_first(batch),
            self.position,
            self.config.versions_every,
        );
        let reached = batch.reached;
        if reached == self.position {
            // Nothing new, or stopped at once by an unreadable event: nothing to commit.
            return match batch.unreadable {
                Some(error) => Err(error),
                None => Ok(false),
            };
        }
        let hydrated = hydrate(
            &mut self.connection,
            model,
            self.generation,
            &mut LateIndexes::all(),
            &batch.facts,
        )
        .await?;
        let changed = apply_all(model, &batch.facts);
        let (rows, removed) = changed_rows(model, changed);

        let moved = if rows.len() <= ROWS_PER_STATEMENT {
            // The common case in one statement (so one implicit transaction). The rows are
            // written only if the checkpoint moved from where this runner left it.
            let advance = by_key::advance(
                M::NAME,
                self.generation,
                &rows,
                &removed,
                self.position,
                reached,
            )?;
            let moved: i64 =
                sqlx::query_scalar_with(sqlx::AssertSqlSafe(advance.sql), advance.arguments)
                    .fetch_one(&mut self.connection)
                    .await?;
            moved as u64
        } else {
            let stored = &self.live_stored;
            let stored = |key: &str| stored.keys.contains(key) || hydrated.contains(key);
            let mut tx = self.connection.begin().await?;
            write_rows(
                &mut tx,
                M::NAME,
                self.generation,
                &rows,
                &removed,
                &stored,
                reached,
            )
            .await?;
            let moved = sqlx::query(
                "update projection_checkpoints set position = $4, updated_at = now() \
                 where projection = $1 and generation = $2 and position = $3",
            )
            .bind(M::NAME)
            .bind(self.generation as i64)
            .bind(self.position as i64)
            .bind(reached as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved == 1 {
                tx.commit().await?;
            }
            moved
        };
        if moved != 1 {
            return Err(ProjectionError::CheckpointLost(M::NAME.to_owned()));
        }
        self.live_stored.note::<M>(&rows, &removed);
        model.settle();
        self.live_statistics
            .wrote(
                &mut self.connection,
                M::NAME,
                self.generation,
                rows.len() + removed.len(),
            )
            .await?;
        trace!(
            from = self.position,
            to = reached,
            facts = batch.facts.len(),
            rows = rows.len(),
            removed = removed.len(),
            "applied a batch"
        );
        self.position = reached;
        match batch.unreadable {
            Some(error) => Err(error),
            None => Ok(batch.full),
        }
    }
}

/// The batch up to (not including) its first retraction or correction after the start, which
/// then starts the next batch. So a batch amends only events of earlier batches, and only with
/// its first fact: what a model `wants` for an amendment is read from what the earlier batches
/// committed, and nothing applied before it in the same batch (a contact it takes back, an
/// actor registered) can make that out of date.
pub(super) fn amendments_first(mut batch: Batch) -> Batch {
    let cut = batch
        .facts
        .iter()
        .skip(1)
        .position(|fact| crate::projections::models::common::target_of(fact).is_some());
    if let Some(cut) = cut.map(|i| i + 1) {
        batch.reached = batch.facts[cut].position - 1;
        batch.facts.truncate(cut);
        batch.full = true;
        batch.unreadable = None;
    }
    batch
}

/// The batch (read from position `from`) up to the first multiple of `every` it
/// would pass, which then ends it: a batch never spans one, so every multiple is the position
/// of a commit, and the rows as they stood after it are the model's rows there (where an
/// answer as of a later position starts: `read/versioned.rs`).
pub(super) fn within_versions(mut batch: Batch, from: u64, every: u64) -> Batch {
    let mark = (from / every + 1) * every;
    if batch.reached > mark {
        batch.facts.retain(|fact| fact.position <= mark);
        batch.reached = mark;
        batch.full = true;
        // An unreadable event past the mark is met by the next batch.
        batch.unreadable = None;
    }
    batch
}

/// Applies `facts` in order; answers the keys of every row they changed.
pub(super) fn apply_all<M: Model>(model: &mut M, facts: &[Arc<Fact>]) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for fact in facts {
        changed.extend(model.apply(fact));
    }
    changed
}

/// The rows to write for `changed` keys, and the keys whose rows are gone.
pub(super) fn changed_rows<M: Model>(
    model: &M,
    changed: BTreeSet<String>,
) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut removed = Vec::new();
    for key in changed {
        match model.row(&key) {
            Some(row) => rows.push(row),
            None => removed.push(key),
        }
    }
    (rows, removed)
}
