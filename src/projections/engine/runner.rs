//! The projection runner: keeps one model's rows current from the log, on at most one server
//! at a time, and rebuilds them without downtime. Owns every write to `projection_rows` and
//! `projection_checkpoints` (but for the rebuild flag); knows nothing of any model's meaning.
//!
//! - One server advances a projection: the runner takes a session advisory lock on a
//!   connection of its own (not from the pool) and does all its reads and writes on that
//!   connection. If the server dies, PostgreSQL closes the connection and drops the lock, and a
//!   runner on another server, retrying every `takeover_interval`, takes over. A runner that
//!   lost its connection has lost the lock too, and cannot write. (The style guide's `for
//!   update skip locked` would hold a transaction open for the runner's whole life; the
//!   session lock does not.)
//! - Exactly once: a batch's changed rows and the new checkpoint position commit in one
//!   transaction, and after any error the in-memory model is thrown away and reloaded from the
//!   rows at the checkpoint. So no event is applied twice or skipped.
//! - Bounded memory: a model with a working set (`Model::RESIDENT`) is loaded from its
//!   resident rows only; before each batch the rows it `wants` are read back (one query per
//!   round, rounds until it wants nothing new), and after each commit it `settle`s. The rows
//!   in PostgreSQL are the state; memory holds the resident part and one batch.
//! - Rebuilds: a fresh model is built into generation `g + 1` in chunks while generation `g`
//!   keeps answering (and keeps being advanced, unless its rows are another version's), then
//!   one transaction makes `g + 1` live and deletes `g`.
//! - The runners of a server read the log through one `FactCache` (`facts.rs`): a stretch of
//!   the log several of them pass is read and parsed once. A retraction or a correction always
//!   starts a batch, so what a model wants for it is read from committed rows.
//! - Many rows new to a generation go in by COPY; rows it may have (its resident rows and the
//!   rows the batch hydrated) by an upsert.

use std::collections::{BTreeSet, HashSet};
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, trace, warn};

use crate::projections::engine::copy_text;
use crate::projections::engine::facts::{Batch, FactCache};
use crate::projections::engine::registry::{
    LocalEntry, LocalRunners, RunnerReport, advisory_lock_key,
};
use crate::projections::engine::store::{
    Checkpoint, CheckpointRecord, ProjectionError, RowRecord, select_checkpoints,
};
use crate::projections::{Fact, Model, Row, Want};
use crate::store::EventStore;

/// The longest pause between attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a runner may finish its current step once shutdown begins, before it is dropped
/// (which is safe: an uncommitted transaction is rolled back with the connection).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// How long connecting may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows per upsert statement, to keep statements moderate however many rows a chunk touched.
const ROWS_PER_STATEMENT: usize = 500;

/// Above this many rows, a write COPYs in the rows new to the generation (cheaper than upserting
/// them, but more round trips).
const COPY_ABOVE: usize = 64;

/// COPY data is sent in pieces of about this size.
const COPY_SEND_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerConfig {
    /// How often a caught-up runner reads the log head: appends by other servers arrive only
    /// this way (this server's own appends wake it at once).
    pub poll_interval: Duration,
    /// How often a runner that does not hold a projection's lock tries to take it.
    pub takeover_interval: Duration,
    /// The first pause after a failure (it doubles on each further failure, up to 30 s).
    pub retry_backoff: Duration,
    /// Diplomatic events applied per live transaction.
    pub batch_events: usize,
    /// Diplomatic events applied per rebuild transaction.
    pub build_chunk_events: usize,
    /// The shortest time between two rounds woken by appends: under a stream of appends a
    /// round takes every event committed by then, rather than one round per commit. The most
    /// a projection lags this server's appends when it keeps up.
    pub min_round_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            takeover_interval: Duration::from_secs(1),
            retry_backoff: Duration::from_secs(1),
            batch_events: 1000,
            build_chunk_events: 5000,
            min_round_interval: Duration::from_millis(50),
        }
    }
}

/// What every runner of a server needs. Cheap to clone.
#[derive(Clone)]
pub struct RunnerContext {
    /// How to open the runner's own connection.
    pub connect_options: PgConnectOptions,
    /// The committed log head: wakes caught-up runners as soon as something is appended
    /// (`EventStore::committed_head` for this server's appends; the server gives them the
    /// subscriptions' head, which NOTIFY also moves for other servers' appends).
    pub committed_head: watch::Receiver<u64>,
    pub local: LocalRunners,
    pub config: RunnerConfig,
    /// The log as this server's runners read it, parsed once for all of them.
    pub facts: Arc<FactCache>,
}

impl RunnerContext {
    /// Runners connect like `pool` does, but on connections of their own.
    pub fn new(
        pool: &PgPool,
        store: &EventStore,
        local: LocalRunners,
        config: RunnerConfig,
    ) -> Self {
        Self {
            connect_options: (*pool.connect_options()).clone(),
            committed_head: store.committed_head(),
            local,
            config,
            facts: Arc::default(),
        }
    }
}

/// Keeps the projection `M` current until `shutdown` is cancelled: takes its lock (or waits to
/// take it over), catches up, follows the log, rebuilds on request or on a version change.
/// Never returns early and never panics on database trouble: each failure is logged, the
/// connection (and so the lock) dropped, and after a pause it starts again from the lock.
pub async fn run_projection<M: Model>(context: RunnerContext, shutdown: CancellationToken) {
    let span = tracing::info_span!("projection", projection = M::NAME);
    async move {
        let entry = context.local.entry(M::NAME);
        let mut backoff = context.config.retry_backoff;
        loop {
            let mut progressed = false;
            let session = session::<M>(&context, &entry, &shutdown, &mut progressed);
            let stopped = async {
                shutdown.cancelled().await;
                tokio::time::sleep(STOP_GRACE).await;
            };
            let outcome = tokio::select! {
                outcome = session => outcome,
                () = stopped => {
                    warn!("the projection runner did not stop within its grace; dropped");
                    Ok(())
                }
            };
            entry.report.send_modify(|report| report.holding = false);
            let Err(error) = outcome else { break };
            if progressed {
                backoff = context.config.retry_backoff;
            }
            if let ProjectionError::NewerVersion { .. } = error {
                warn!(
                    error = %error,
                    retry_in = ?backoff,
                    "leaving the projection to a server with the newer version"
                );
            } else {
                error!(
                    error = %error,
                    source = ?error.source(),
                    retry_in = ?backoff,
                    "projection runner failed; starting again from its checkpoint"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.cancelled() => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        debug!("projection runner stopped");
    }
    .instrument(span)
    .await
}

/// One connection's life: lock, load, run. `Ok` only on shutdown.
async fn session<M: Model>(
    context: &RunnerContext,
    entry: &LocalEntry,
    shutdown: &CancellationToken,
    progressed: &mut bool,
) -> Result<(), ProjectionError> {
    let options = context
        .connect_options
        .clone()
        .application_name(&format!("diplog projection {}", M::NAME))
        .options([
            // Server-side TCP keepalives: if this host vanishes without closing the
            // connection, PostgreSQL notices within about 30 s (not the kernel's default 2 h)
            // and frees the lock for another server. Ignored on unix sockets.
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            // Projection commits need not wait for the WAL flush (so they do not compete with
            // appends for it): a crash can lose only the last few, rows and checkpoint
            // together, and the runner applies those events again from the durable log.
            ("synchronous_commit", "off"),
        ]);
    let mut connection =
        tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| ProjectionError::ConnectTimedOut(CONNECT_TIMEOUT))??;

    let key = advisory_lock_key(M::NAME);
    let mut waiting_logged = false;
    loop {
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            break;
        }
        if !waiting_logged {
            debug!("another server runs this projection; standing by to take over");
            waiting_logged = true;
        }
        tokio::select! {
            () = tokio::time::sleep(context.config.takeover_interval) => {}
            () = shutdown.cancelled() => {
                connection.close().await.ok();
                return Ok(());
            }
        }
    }

    let mut runner = Runner::<M>::load(connection, &context.config, &context.facts).await?;
    info!(
        generation = runner.generation,
        position = runner.position,
        "took the projection's lock"
    );
    runner.report(entry);
    runner.run(context, entry, shutdown, progressed).await?;
    // Closing (rather than dropping) tells PostgreSQL at once: the lock is free now.
    runner.connection.close().await.ok();
    Ok(())
}

/// A rebuild in progress: a fresh model being fed the log into a generation of its own.
struct Build<M> {
    model: M,
    generation: u64,
    /// Every event up to here is applied to `model` and its rows are written.
    position: u64,
    stored: Stored,
}

/// The keys of the rows with resident statuses (`Model::RESIDENT`; all rows if it is `None`)
/// that a generation has. With the rows a batch hydrated, they are the rows of the generation
/// the batch can change (a model changes a stored row only once it holds it); every other row
/// a batch writes is new, and goes in by COPY. Bounded as the resident rows are.
#[derive(Default)]
struct Stored {
    keys: HashSet<String>,
}

impl Stored {
    fn resident<M: Model>(row: &Row) -> bool {
        M::RESIDENT.is_none_or(|statuses| statuses.contains(&row.status.as_str()))
    }

    fn of_rows<M: Model>(rows: &[Row]) -> Self {
        let mut stored = Self::default();
        stored.note::<M>(rows, &[]);
        stored
    }

    /// Takes note of a committed batch's writes.
    fn note<M: Model>(&mut self, rows: &[Row], removed: &[String]) {
        for row in rows {
            if Self::resident::<M>(row) {
                if !self.keys.contains(&row.key) {
                    self.keys.insert(row.key.clone());
                }
            } else {
                self.keys.remove(&row.key);
            }
        }
        for key in removed {
            self.keys.remove(key);
        }
    }
}

/// The lock holder's state: its connection, the live model and the checkpoint it has
/// committed, and a rebuild if one is running.
struct Runner<'c, M> {
    connection: PgConnection,
    config: &'c RunnerConfig,
    facts: &'c FactCache,
    generation: u64,
    position: u64,
    /// `None` while the live rows cannot be advanced by this code (another version's, or
    /// rows that do not load): they keep answering, unchanged, until a rebuild replaces them.
    live: Option<M>,
    /// What the live generation has (see `Stored`).
    live_stored: Stored,
    build: Option<Build<M>>,
    /// The checkpoint shows a rebuild that was under way when its runner stopped: it starts
    /// again from scratch (its partial rows may be another version's).
    interrupted_build: bool,
    /// The rebuild flag as the checkpoint showed it when loaded.
    requested_at_load: bool,
}

impl<'c, M: Model> Runner<'c, M> {
    /// Reads (or creates) the checkpoint and loads the live model from its rows.
    async fn load(
        mut connection: PgConnection,
        config: &'c RunnerConfig,
        facts: &'c FactCache,
    ) -> Result<Self, ProjectionError> {
        let checkpoint = match read_checkpoint(&mut connection, M::NAME).await? {
            Some(checkpoint) => checkpoint,
            None => {
                sqlx::query(
                    "insert into projection_checkpoints \
                         (projection, version, generation, position, updated_at) \
                     values ($1, $2, 1, 0, now()) on conflict (projection) do nothing",
                )
                .bind(M::NAME)
                .bind(M::VERSION)
                .execute(&mut connection)
                .await?;
                info!(version = M::VERSION, "created the projection's checkpoint");
                read_checkpoint(&mut connection, M::NAME)
                    .await?
                    .ok_or_else(|| ProjectionError::CheckpointLost(M::NAME.to_owned()))?
            }
        };
        // During a rolling upgrade an older server may take the lock after a newer one wrote
        // its version: rebuilding down would undo the upgrade (and the newer server would
        // rebuild up again), so the older one lets go, unless an operator asked for a
        // rebuild (rolling back on purpose).
        if checkpoint.version > M::VERSION && !checkpoint.rebuild_requested {
            return Err(ProjectionError::NewerVersion {
                stored: checkpoint.version,
                ours: M::VERSION,
            });
        }
        let mut live_stored = Stored::default();
        let live = if checkpoint.version != M::VERSION {
            info!(
                stored_version = checkpoint.version,
                version = M::VERSION,
                "the stored rows are another version's: rebuilding while they keep answering"
            );
            None
        } else {
            let rows =
                load_rows(&mut connection, M::NAME, checkpoint.generation, M::RESIDENT).await?;
            let count = rows.len();
            live_stored = Stored::of_rows::<M>(&rows);
            match M::from_rows(rows) {
                Ok(model) => {
                    debug!(rows = count, "loaded the live rows");
                    Some(model)
                }
                Err(reason) => {
                    warn!(
                        reason,
                        "the live rows do not load: rebuilding while they keep answering"
                    );
                    None
                }
            }
        };
        Ok(Self {
            connection,
            config,
            facts,
            generation: checkpoint.generation,
            position: checkpoint.position,
            live,
            live_stored,
            build: None,
            interrupted_build: checkpoint.building_generation.is_some(),
            requested_at_load: checkpoint.rebuild_requested,
        })
    }

    /// Publishes the committed state to this server's readers.
    fn report(&self, entry: &LocalEntry) {
        let report = RunnerReport {
            holding: true,
            generation: self.generation,
            position: self.position,
            building: self.build.as_ref().map(|build| build.position),
        };
        entry.report.send_if_modified(|current| {
            let changed = *current != report;
            *current = report;
            changed
        });
    }

    async fn run(
        &mut self,
        context: &RunnerContext,
        entry: &LocalEntry,
        shutdown: &CancellationToken,
        progressed: &mut bool,
    ) -> Result<(), ProjectionError> {
        let config = self.config;
        let mut committed_head = context.committed_head.clone();
        // The rebuild flag is read at most once per poll interval (and when woken for it), not
        // on every round: rounds follow appends, the flag hardly ever changes.
        let mut requested = self.requested_at_load;
        let mut next_flag_check = Instant::now() + config.poll_interval;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let round = Instant::now();
            // Registered before the flag is read, so a request made after the read still
            // wakes the wait below.
            let woken = entry.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            if round >= next_flag_check {
                requested = self.rebuild_requested().await?;
                next_flag_check = round + config.poll_interval;
            }
            if self.build.is_none() && (requested || self.live.is_none() || self.interrupted_build)
            {
                self.start_build(requested).await?;
                requested = false;
            }
            let mut more = false;
            if self.live.is_some() {
                more |= self.advance_live().await?;
            }
            if self.build.is_some() {
                self.advance_build().await?;
                more = true;
            }
            *progressed = true;
            self.report(entry);
            if more {
                continue;
            }

            let position = self.position;
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(config.poll_interval) => {}
                () = woken => next_flag_check = Instant::now(),
                // Disabled (not spinning) once the writer has stopped.
                Ok(()) = async {
                    committed_head.wait_for(|&head| head > position).await.map(drop)
                } => {
                    // Under a stream of appends, one round per `min_round_interval` (each
                    // round takes every event committed by then): a round per commit would
                    // cost the database more than the appends themselves.
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep_until(round + config.min_round_interval) => {}
                    }
                }
            }
        }
    }

    async fn rebuild_requested(&mut self) -> Result<bool, ProjectionError> {
        let requested: Option<bool> = sqlx::query_scalar(
            "select rebuild_requested from projection_checkpoints where projection = $1",
        )
        .bind(M::NAME)
        .fetch_optional(&mut self.connection)
        .await?;
        requested.ok_or_else(|| ProjectionError::CheckpointLost(M::NAME.to_owned()))
    }

    /// Applies the next batch of diplomatic events to the live model and commits the rows it
    /// changed with the new position: one round trip to read, one to write (unless the batch
    /// changed many rows). `true` if the batch was full (more may follow at once).
    async fn advance_live(&mut self) -> Result<bool, ProjectionError> {
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
        let batch = amendments_first(batch);
        let reached = batch.reached;
        if reached == self.position {
            // Nothing new, or stopped at once by an unreadable event: nothing to commit.
            return match batch.unreadable {
                Some(error) => Err(error),
                None => Ok(false),
            };
        }
        let hydrated = hydrate(&mut self.connection, model, self.generation, &batch.facts).await?;
        let changed = apply_all(model, &batch.facts);
        let (rows, removed) = changed_rows(model, changed);

        let moved = if rows.len() <= ROWS_PER_STATEMENT {
            // The common case in one statement (so one implicit transaction). The rows are
            // written only if the checkpoint moved from where this runner left it.
            let moved: i64 = sqlx::query_scalar(
                "with moved as ( \
                     update projection_checkpoints set position = $6, updated_at = now() \
                     where projection = $1 and generation = $2 and position = $5 \
                     returning 1 \
                 ), upserted as ( \
                     insert into projection_rows \
                         (projection, generation, key, data, actors, states, status, sort_key) \
                     select $1, $2, r.key, r.data, r.actors, r.states, r.status, r.sort_key \
                     from jsonb_to_recordset($3) as r(key text, data jsonb, actors text[], \
                         states text[], status text, sort_key text) \
                     where exists (select from moved) \
                     on conflict (projection, generation, key) do update \
                         set data = excluded.data, actors = excluded.actors, \
                             states = excluded.states, status = excluded.status, \
                             sort_key = excluded.sort_key \
                 ), removed as ( \
                     delete from projection_rows \
                     where projection = $1 and generation = $2 and key = any($4) \
                     and exists (select from moved) \
                 ) \
                 select count(*) from moved",
            )
            .bind(M::NAME)
            .bind(self.generation as i64)
            .bind(sqlx::types::Json(&rows))
            .bind(&removed)
            .bind(self.position as i64)
            .bind(reached as i64)
            .fetch_one(&mut self.connection)
            .await?;
            moved as u64
        } else {
            let stored = &self.live_stored;
            let stored = |key: &str| stored.keys.contains(key) || hydrated.contains(key);
            let mut tx = self.connection.begin().await?;
            write_rows(&mut tx, M::NAME, self.generation, &rows, &removed, &stored).await?;
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

    /// Starts building generation `g + 1` from position 0, dropping any leftover rows of
    /// other generations (a build that was interrupted, an old generation not yet deleted).
    /// Clears the rebuild request now, not at the swap: a request made during the build is
    /// for events the build may have passed already, so it gets a rebuild of its own. (A
    /// build interrupted by a crash is not lost: `building_generation` restarts it.)
    async fn start_build(&mut self, requested: bool) -> Result<(), ProjectionError> {
        let generation = self.generation + 1;
        let mut tx = self.connection.begin().await?;
        // Rows of an interrupted build (or any generation but the live one). Two ranges, not
        // `generation <> $2`: that walks the live generation's index entries (3.6 s for 917,640
        // rows), these find the leftovers, or nothing, at once.
        for leftovers in [
            "delete from projection_rows where projection = $1 and generation < $2",
            "delete from projection_rows where projection = $1 and generation > $2",
        ] {
            sqlx::query(leftovers)
                .bind(M::NAME)
                .bind(self.generation as i64)
                .execute(&mut *tx)
                .await?;
        }
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
        let reason = if self.live.is_none() {
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
        });
        Ok(())
    }

    /// Feeds the build one chunk and writes the rows it touched. Once the build has reached
    /// the live position (or, while the live rows are frozen, the head), one transaction makes
    /// its generation live and deletes the old one.
    async fn advance_build(&mut self) -> Result<(), ProjectionError> {
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
        let chunk = amendments_first(chunk);
        let target = chunk.bound;
        let hydrated = hydrate(
            &mut self.connection,
            &mut build.model,
            build.generation,
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
        write_rows(&mut tx, M::NAME, build.generation, &rows, &removed, &stored).await?;
        if build.position < target {
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
            tx.commit().await?;
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

        let swapped = sqlx::query(
            "update projection_checkpoints \
             set generation = $3, version = $4, position = $5, building_generation = null, \
                 building_position = null, updated_at = now() \
             where projection = $1 and generation = $2 and building_generation = $3",
        )
        .bind(M::NAME)
        .bind(self.generation as i64)
        .bind(build.generation as i64)
        .bind(M::VERSION)
        .bind(build.position as i64)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if swapped != 1 {
            return Err(ProjectionError::CheckpointLost(M::NAME.to_owned()));
        }
        let deleted =
            sqlx::query("delete from projection_rows where projection = $1 and generation = $2")
                .bind(M::NAME)
                .bind(self.generation as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        info!(
            generation = build.generation,
            position = build.position,
            old_rows_deleted = deleted,
            "the rebuilt generation is live"
        );
        if let Some(mut build) = self.build.take() {
            build.stored.note::<M>(&rows, &removed);
            build.model.settle();
            self.generation = build.generation;
            self.position = build.position;
            self.live = Some(build.model);
            self.live_stored = build.stored;
        }
        Ok(())
    }
}

async fn read_checkpoint(
    connection: &mut PgConnection,
    name: &str,
) -> Result<Option<Checkpoint>, ProjectionError> {
    let record: Option<CheckpointRecord> =
        sqlx::query_as(select_checkpoints!("where projection = $1"))
            .bind(name)
            .fetch_optional(connection)
            .await?;
    Ok(record.map(Checkpoint::from))
}

/// The rows of `generation` (only those of `statuses`, if given).
async fn load_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    statuses: Option<&[&str]>,
) -> Result<Vec<Row>, ProjectionError> {
    let records: Vec<RowRecord> = sqlx::query_as(
        "select key, data, actors, states, status, sort_key from projection_rows \
         where projection = $1 and generation = $2 \
         and ($3::text[] is null or status = any($3)) order by key",
    )
    .bind(name)
    .bind(generation as i64)
    .bind(statuses)
    .fetch_all(connection)
    .await?;
    Ok(records.into_iter().map(Row::from).collect())
}

/// Brings into `model` the stored rows of `generation` that `facts` want (see
/// `Model::wants`), asking again after each load: a row loaded can name further rows.
/// Answers the keys of the rows it brought in.
async fn hydrate<M: Model>(
    connection: &mut PgConnection,
    model: &mut M,
    generation: u64,
    facts: &[Arc<Fact>],
) -> Result<HashSet<String>, ProjectionError> {
    let mut asked: HashSet<Want> = HashSet::new();
    let mut loaded: HashSet<String> = HashSet::new();
    loop {
        let (mut keys, mut statuses, mut sort_keys) = (Vec::new(), Vec::new(), Vec::new());
        let mut with_states = Vec::new();
        for want in facts.iter().flat_map(|fact| model.wants(fact)) {
            if !asked.insert(want.clone()) {
                continue;
            }
            match want {
                Want::Key(key) => keys.push(key),
                Want::Group { status, sort_key } => {
                    statuses.push(status);
                    sort_keys.push(sort_key);
                }
                Want::States { status, states } => with_states.push((status, states)),
            }
        }
        if keys.is_empty() && statuses.is_empty() && with_states.is_empty() {
            return Ok(loaded);
        }
        // Rare (retractions and corrections): a statement each.
        for (status, states) in with_states {
            let records: Vec<RowRecord> = sqlx::query_as(
                "select key, data, actors, states, status, sort_key from projection_rows \
                 where projection = $1 and generation = $2 and status = $3 and states @> $4",
            )
            .bind(M::NAME)
            .bind(generation as i64)
            .bind(status)
            .bind(states)
            .fetch_all(&mut *connection)
            .await?;
            let rows: Vec<Row> = records.into_iter().map(Row::from).collect();
            loaded.extend(rows.iter().map(|row| row.key.clone()));
            model
                .hydrate(rows)
                .map_err(|reason| ProjectionError::UnloadableRows {
                    projection: M::NAME,
                    reason,
                })?;
        }
        let records: Vec<RowRecord> = sqlx::query_as(
            "select key, data, actors, states, status, sort_key from projection_rows \
             where projection = $1 and generation = $2 and key = any($3) \
             union all \
             select r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from unnest($4::text[], $5::text[]) as g(status, sort_key) \
             join projection_rows r on r.projection = $1 and r.generation = $2 \
                 and r.status = g.status and r.sort_key = g.sort_key",
        )
        .bind(M::NAME)
        .bind(generation as i64)
        .bind(&keys)
        .bind(&statuses)
        .bind(&sort_keys)
        .fetch_all(&mut *connection)
        .await?;
        let rows: Vec<Row> = records.into_iter().map(Row::from).collect();
        loaded.extend(rows.iter().map(|row| row.key.clone()));
        model
            .hydrate(rows)
            .map_err(|reason| ProjectionError::UnloadableRows {
                projection: M::NAME,
                reason,
            })?;
    }
}

/// The batch up to (not including) its first retraction or correction after the start, which
/// then starts the next batch. So a batch amends only events of earlier batches, and only with
/// its first fact: what a model `wants` for an amendment is read from what the earlier batches
/// committed, and nothing applied before it in the same batch (a contact it takes back, an
/// actor registered) can make that out of date.
fn amendments_first(mut batch: Batch) -> Batch {
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

/// Applies `facts` in order; answers the keys of every row they changed.
fn apply_all<M: Model>(model: &mut M, facts: &[Arc<Fact>]) -> BTreeSet<String> {
    let mut changed = BTreeSet::new();
    for fact in facts {
        changed.extend(model.apply(fact));
    }
    changed
}

/// The rows to write for `changed` keys, and the keys whose rows are gone.
fn changed_rows<M: Model>(model: &M, changed: BTreeSet<String>) -> (Vec<Row>, Vec<String>) {
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

/// Writes `rows` and deletes `removed` in `generation`, inside the caller's transaction. Many
/// rows: those the generation may have (`stored`) by an upsert, the others by COPY (the
/// cheapest way in, by far); few rows: all by the upsert.
async fn write_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    rows: &[Row],
    removed: &[String],
    stored: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(), ProjectionError> {
    if rows.len() > COPY_ABOVE {
        let (old, new): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|row| stored(&row.key));
        copy_rows(connection, name, generation, &new).await?;
        upsert_rows(connection, name, generation, &old).await?;
    } else {
        upsert_rows(
            connection,
            name,
            generation,
            &rows.iter().collect::<Vec<_>>(),
        )
        .await?;
    }
    if !removed.is_empty() {
        sqlx::query(
            "delete from projection_rows \
             where projection = $1 and generation = $2 and key = any($3)",
        )
        .bind(name)
        .bind(generation as i64)
        .bind(removed)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Inserts `rows`, which the generation should not have, by one COPY. Should one of them be
/// there after all (a model that changed a stored row it did not hold), the COPY is undone and
/// they are upserted instead: slower, never wrong.
async fn copy_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    rows: &[&Row],
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query("savepoint copy_rows")
        .execute(&mut *connection)
        .await?;
    match copy_in(connection, name, generation, rows).await {
        Ok(()) => {
            sqlx::query("release savepoint copy_rows")
                .execute(&mut *connection)
                .await?;
            Ok(())
        }
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
            warn!(
                error = %error,
                "a row written as new was already stored; upserting the batch's rows instead"
            );
            sqlx::query("rollback to savepoint copy_rows")
                .execute(&mut *connection)
                .await?;
            upsert_rows(connection, name, generation, rows).await
        }
        Err(error) => Err(error.into()),
    }
}

async fn copy_in(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    rows: &[&Row],
) -> Result<(), sqlx::Error> {
    let mut copy = connection
        .copy_in_raw(concat!(
            "copy projection_rows (",
            "projection, generation, key, data, actors, states, status, sort_key",
            ") from stdin"
        ))
        .await?;
    let mut buffer = Vec::with_capacity(COPY_SEND_BYTES + 64 * 1024);
    for row in rows {
        copy_text::push_row(&mut buffer, name, generation, row);
        if buffer.len() >= COPY_SEND_BYTES {
            copy.send(std::mem::take(&mut buffer)).await?;
        }
    }
    if !buffer.is_empty() {
        copy.send(buffer).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Upserts `rows`. They travel as one JSON array per statement: `unnest` cannot take the
/// ragged `text[]` columns, `jsonb_to_recordset` can. (A row's data goes into the array as
/// the JSON it holds, not as a string of it.)
async fn upsert_rows(
    connection: &mut PgConnection,
    name: &str,
    generation: u64,
    rows: &[&Row],
) -> Result<(), ProjectionError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        sqlx::query(
            "insert into projection_rows \
                 (projection, generation, key, data, actors, states, status, sort_key) \
             select $1, $2, r.key, r.data, r.actors, r.states, r.status, r.sort_key \
             from jsonb_to_recordset($3) as r(key text, data jsonb, actors text[], \
                 states text[], status text, sort_key text) \
             on conflict (projection, generation, key) do update \
                 set data = excluded.data, actors = excluded.actors, \
                     states = excluded.states, status = excluded.status, \
                     sort_key = excluded.sort_key",
        )
        .bind(name)
        .bind(generation as i64)
        .bind(sqlx::types::Json(chunk))
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advisory_lock_key_of_a_name_never_changes() {
        // Servers of different builds must agree on these: a changed key would let two
        // servers run one projection at once during a rolling upgrade.
        assert_eq!(advisory_lock_key("channels"), CHANNELS_KEY);
        assert_eq!(advisory_lock_key("channels"), advisory_lock_key("channels"));
    }

    #[test]
    fn each_projection_has_its_own_advisory_lock_key() {
        let keys: BTreeSet<i64> = crate::projections::NAMES
            .iter()
            .map(|name| advisory_lock_key(name))
            .collect();
        assert_eq!(keys.len(), crate::projections::NAMES.len());
    }

    // FNV-1a 64 of "diplog.projection.channels", computed independently.
    const CHANNELS_KEY: i64 = -5_733_359_485_029_627_877;
}
