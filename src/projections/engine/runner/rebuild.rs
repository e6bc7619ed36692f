//! A rebuild: a fresh model fed the whole log into a generation of its own, in chunks, while
//! the live generation keeps answering. The generation is a table of its own with only its
//! primary key while it fills (`generations.rs`); once it has caught up, one transaction
//! writes its last rows, builds its other indexes and attaches it, the next statement makes
//! it live, and the old generation's table is detached and dropped once no reader uses it
//! (now or in a later round: `Runner::remove_others`).

use std::time::Instant;

use sqlx::Connection;
use tracing::{debug, info};

use super::generations::{self, LateIndexes, elapsed_ms};
use super::live::{amendments_first, apply_all, changed_rows, within_versions};
use super::rows::{hydrate, write_rows};
use super::{Build, Runner, Statistics, Stored};
use crate::projections::Model;
use crate::projections::engine::error::ProjectionError;

impl<M: Model> Runner<'_, M> {
    /// Starts building generation `g + 1` from position 0 into a new table, once the leftover
    /// tables of other generations (a build that was interrupted, an old generation not yet
    /// dropped) are gone: `false` if some are still in use (it is tried again later).
    /// Clears the rebuild request now, not at the swap: a request made during the build is
    /// for events the build may have passed already, so it gets a rebuild of its own. (A
    /// build interrupted by a crash is not lost: `building_generation` restarts it.)
    pub(super) async fn start_build(&mut self, requested: bool) -> Result<bool, ProjectionError> {
        if !self.remove_others().await? {
            return Ok(false);
        }
        let generation = self.generation + 1;
        let mut tx = self.connection.begin().await?;
        generations::create(&mut tx, M::NAME, generation).await?;
        let started = sqlx::query(
            "update projection_checkpoints \
             set building_generation = $3, building_position = 0, rebuild_requested = false, \
                 updated_at = now() \
             where projection = $1 and generation = $2",
        )
        .bind(M::NAME)
        .bind(self.generation as i64)
        .bind(generation as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if started != 1 {
            return Err(ProjectionError::CheckpointLost(M::NAME.to_owned()));
        }
        tx.commit().await?;
        let reason = if std::mem::take(&mut self.left_behind) {
            "the live rows are far behind the head"
        } else if self.live.is_none() {
            "the live rows cannot be advanced by this version"
        } else if requested {
            "requested"
        } else {
            "an earlier rebuild was interrupted"
        };
        info!(generation, reason, "rebuilding the projection");
        self.interrupted_build = false;
        self.build = Some(Build {
            model: M::default(),
            generation,
            position: 0,
            stored: Stored::default(),
            indexes: LateIndexes::default(),
            statistics: Statistics::default(),
        });
        Ok(true)
    }

    /// Feeds the build one chunk and writes the rows it touched. Once the build has reached
    /// the live position (or, while the live rows are frozen, the head), its table gets its
    /// indexes and is attached (one transaction, with the last rows), then one statement makes
    /// it live, and the old generation's table is removed, now or in a later round.
    pub(super) async fn advance_build(&mut self) -> Result<(), ProjectionError> {
        // The build chases the live position, or, while the live rows are frozen, the head.
        let until = self.live.is_some().then_some(self.position);
        let Some(build) = self.build.as_mut() else {
            return Ok(());
        };
        let chunk = self
            .facts
            .read(
                &mut self.connection,
                build.position,
                until,
                self.config.build_chunk_events,
            )
            .await?;
        let chunk = within_versions(
            amendments_first(chunk),
            build.position,
            self.config.versions_every,
        );
        let target = chunk.bound;
        let hydrated = hydrate(
            &mut self.connection,
            &mut build.model,
            build.generation,
            &mut build.indexes,
            &chunk.facts,
        )
        .await?;
        let touched = apply_all(&mut build.model, &chunk.facts);
        let facts = chunk.facts.len();
        build.position = chunk.reached;
        let unreadable = chunk.unreadable;
        let (rows, removed) = changed_rows(&build.model, touched);

        let stored = &build.stored;
        let stored = |key: &str| stored.keys.contains(key) || hydrated.contains(key);
        let mut tx = self.connection.begin().await?;
        write_rows(
            &mut tx,
            M::NAME,
            build.generation,
            &rows,
            &removed,
            &stored,
            build.position,
        )
        .await?;
        let finished = build.position >= target;
        if finished {
            // Indexed once, and attached: readers see the table from this commit on, but go
            // on reading the live generation until the swap below.
            let started = Instant::now();
            generations::finish(&mut tx, M::NAME, build.generation).await?;
            info!(
                step = "index and attach",
                generation = build.generation,
                elapsed_ms = elapsed_ms(started),
                "indexed and attached the rebuilt generation"
            );
        }
        let moved = sqlx::query(
            "update projection_checkpoints set building_position = $3, updated_at = now() \
             where projection = $1 and building_generation = $2",
        )
        .bind(M::NAME)
        .bind(build.generation as i64)
        .bind(build.position as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(ProjectionError::CheckpointLost(M::NAME.to_owned()));
        }
        let started = Instant::now();
        tx.commit().await?;
        build
            .statistics
            .wrote(
                &mut self.connection,
                M::NAME,
                build.generation,
                rows.len() + removed.len(),
            )
            .await?;
        if finished {
            info!(
                step = "commit attach",
                generation = build.generation,
                elapsed_ms = elapsed_ms(started),
                "committed the attached generation"
            );
        }
        if !finished {
            build.stored.note::<M>(&rows, &removed);
            build.model.settle();
            debug!(
                generation = build.generation,
                position = build.position,
                target,
                facts,
                rows = rows.len(),
                "rebuild advanced"
            );
            return match unreadable {
                Some(error) => Err(error),
                None => Ok(()),
            };
        }

        // The swap, in a statement of its own, after the commit that attached the table: a
        // reader planning a query just before that commit (without the new table) would have
        // to take its snapshot after this one's to see the new generation without its rows.
        let started = Instant::now();
        let swapped = sqlx::query(
            "update projection_checkpoints \
             set generation = $3, version = $4, position = $5, building_generation = null, \
                 building_position = null, versions_every = $6, updated_at = now() \
             where projection = $1 and generation = $2 and building_generation = $3",
        )
        .bind(M::NAME)
        .bind(self.generation as i64)
        .bind(build.generation as i64)
        .bind(M::VERSION)
        .bind(build.position as i64)
        .bind(self.config.versions_every as i64)
        .execute(&mut self.connection)
        .await?
        .rows_affected();
        if swapped != 1 {
            return Err(ProjectionError::CheckpointLost(M::NAME.to_owned()));
        }
        info!(
            step = "swap",
            generation = build.generation,
            position = build.position,
            elapsed_ms = elapsed_ms(started),
            "the rebuilt generation is live"
        );
        if let Some(mut build) = self.build.take() {
            build.stored.note::<M>(&rows, &removed);
            build.model.settle();
            self.generation = build.generation;
            self.position = build.position;
            self.live = Some(build.model);
            self.live_stored = build.stored;
            self.live_statistics = build.statistics;
        }
        // New readers read the new generation; the old one's table goes once its last
        // readers are done, now or in a later round (it never holds the runner up). Should
        // this fail, the runner starts again and drops it when it loads.
        let started = Instant::now();
        let gone = self.remove_others().await?;
        info!(
            step = "remove replaced",
            gone,
            elapsed_ms = elapsed_ms(started),
            "removing the replaced generation"
        );
        Ok(())
    }
}
