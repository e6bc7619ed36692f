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
//! - Rebuilds: a fresh model is built into generation `g + 1`, a table of its own without
//!   secondary indexes (`generations.rs`), in chunks while generation `g` keeps answering
//!   (and keeps being advanced, unless its rows are another version's); then `g + 1` is
//!   indexed and attached, and one statement makes it live. `g`'s table is detached and
//!   dropped after the swap, never waiting for it: each step gives up after 200 ms (a reader
//!   still using `g`) and is tried again later, a poll interval and then twice as long each
//!   time, up to 30 s (`remove_others`, `generations::drop_others`).
//! - The runners of a server read the log through one `FactCache` (`facts.rs`): a stretch of
//!   the log several of them pass is read and parsed once. A retraction or a correction always
//!   starts a batch, so what a model wants for it is read from committed rows.
//! - Many rows new to a generation go in by COPY; rows it may have (its resident rows and the
//!   rows the batch hydrated) by an upsert.
//! - Versions: each row carries the position of the commit that wrote it (`since`), and a
//!   commit that changes or removes a row first copies the version it replaces to the
//!   generation's history table with that position as its `until` (`by_key::keep_replaced`).
//!   No batch spans a multiple of `VERSIONS_EVERY`, so the rows as of each multiple are on
//!   record: where an answer as of a position starts.

use std::collections::HashSet;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use crate::projections::engine::facts::FactCache;
use crate::projections::engine::registry::{
    LocalEntry, LocalRunners, RunnerReport, advisory_lock_key,
};
use crate::projections::engine::rows::ProjectionError;
use crate::projections::{Model, Row};
use crate::store::EventStore;

/// The longest pause between attempts after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a runner may finish its current step once shutdown begins, before it is dropped
/// (which is safe: an uncommitted transaction is rolled back with the connection).
const STOP_GRACE: Duration = Duration::from_secs(1);

/// The default of `RunnerConfig::versions_every`: four of the fact cache's blocks.
pub const VERSIONS_EVERY: u64 = 4 * crate::projections::engine::facts::BLOCK;

/// How long connecting may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Every multiple of this is the position of a commit (`live::within_versions`), so the
    /// rows as they stood there are on record (`since`, and the history), and an answer as of
    /// a position replays fewer events than this on top of them. The checkpoint records it
    /// for readers (`versions_every`) when a generation is written so from its start; a
    /// runner with another value than its checkpoint's asks for a rebuild.
    pub versions_every: u64,
    /// A live generation at least this many positions behind the head, and at least four
    /// times as far behind as it has come, is built afresh rather than caught up
    /// (`far_behind`): a build writes into a table without secondary indexes, in larger
    /// chunks, and indexes it once. The live rows keep answering, unchanged, meanwhile.
    pub build_when_behind: u64,
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
            versions_every: VERSIONS_EVERY,
            build_when_behind: BUILD_WHEN_BEHIND,
        }
    }
}

/// The default of `RunnerConfig::build_when_behind`: twenty build chunks.
pub const BUILD_WHEN_BEHIND: u64 = 100_000;

/// Whether a live generation at `position` is so far behind `head` that building the rows
/// afresh (replaying `head` events the fast way) costs less than catching up (`head -
/// position` events the slow way): with the backlog at least `at_least` and four times the
/// way come. Over the bench's 1,000,000-event bulk load the catch-up took 109.9 s this way
/// (median of three) against 128.5 s batch by batch (median of four).
fn far_behind(position: u64, head: u64, at_least: u64) -> bool {
    let backlog = head.saturating_sub(position);
    backlog >= at_least.max(1) && backlog >= position.saturating_mul(4)
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
    /// The indexes its table has been given before it is finished.
    indexes: LateIndexes,
    statistics: Statistics,
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
    /// What this runner wrote to the live generation's table.
    live_statistics: Statistics,
    build: Option<Build<M>>,
    /// The checkpoint shows a rebuild that was under way when its runner stopped: it starts
    /// again from scratch (its partial rows may be another version's).
    interrupted_build: bool,
    /// The live rows were left as they stand to be built afresh (`far_behind`).
    left_behind: bool,
    /// The rebuild flag as the checkpoint showed it when loaded.
    requested_at_load: bool,
    /// Tables of other generations are left to drop: still in use when last tried (a
    /// reader's transaction outlasting a swap). No build starts until they are gone.
    removal_due: bool,
    /// When to try dropping them again, and the pause after that attempt: a poll interval
    /// at first, doubling up to `MAX_BACKOFF` while they stay in use (each attempt may hold
    /// the runner for a `lock_timeout`).
    next_removal: Instant,
    removal_pause: Duration,
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
                // With the first generation's tables, in one transaction: a reader never
                // sees a checkpoint whose live generation has no tables.
                let mut tx = connection.begin().await?;
                let created = sqlx::query(
                    "insert into projection_checkpoints \
                         (projection, version, generation, position, versions_every, \
                          updated_at) \
                     values ($1, $2, 1, 0, $3, now()) on conflict (projection) do nothing",
                )
                .bind(M::NAME)
                .bind(M::VERSION)
                .bind(config.versions_every as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if created {
                    generations::create(&mut tx, M::NAME, 1).await?;
                    generations::finish(&mut tx, M::NAME, 1).await?;
                }
                tx.commit().await?;
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
        // Versions recorded at other marks than this runner's: what it commits would not keep
        // their promise, so readers replay until a rebuild records them at its marks.
        let mut checkpoint = checkpoint;
        if checkpoint
            .versions_every
            .is_some_and(|every| every != config.versions_every)
        {
            warn!(
                recorded = checkpoint.versions_every,
                configured = config.versions_every,
                "the rows are versioned at other marks: rebuilding"
            );
            sqlx::query(
                "update projection_checkpoints set versions_every = null, \
                 rebuild_requested = true where projection = $1",
            )
            .bind(M::NAME)
            .execute(&mut connection)
            .await?;
            checkpoint.versions_every = None;
            checkpoint.rebuild_requested = true;
        }
        // Tables of other generations: a replaced one not yet dropped, or an interrupted
        // build's (which starts again from scratch). Those still in use are dropped later.
        let removal =
            generations::drop_others(&mut connection, M::NAME, checkpoint.generation).await?;
        if removal.dropped > 0 {
            info!(
                tables = removal.dropped,
                "dropped the tables of other generations"
            );
        }
        let live_table = generations::ensure_live(
            &mut connection,
            M::NAME,
            checkpoint.generation,
            checkpoint.position,
        )
        .await?;
        let mut live_stored = Stored::default();
        let live = if !live_table {
            None
        } else if checkpoint.version != M::VERSION {
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
            live_statistics: Statistics::default(),
            build: None,
            interrupted_build: checkpoint.building_generation.is_some(),
            left_behind: false,
            requested_at_load: checkpoint.rebuild_requested,
            removal_due: removal.left > 0,
            next_removal: Instant::now() + config.poll_interval,
            removal_pause: config.poll_interval.min(MAX_BACKOFF),
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
            if self.removal_due && round >= self.next_removal {
                self.remove_others().await?;
            }
            // What has been committed: the runners' reads of the tail (the live rows' and a
            // build's, which chases the head while the live rows are frozen) share one read
            // while it reaches that far (`FactCache::note_head`).
            let head = *committed_head.borrow();
            self.facts.note_head(head);
            if self.build.is_none()
                && !self.removal_due
                && self.live.is_some()
                && far_behind(self.position, head, config.build_when_behind)
            {
                info!(
                    position = self.position,
                    head, "far behind the head: building the rows afresh rather than catching up"
                );
                // Frozen, as another version's rows would be: they answer until the swap.
                self.live = None;
                self.left_behind = true;
            }
            if self.build.is_none()
                && !self.removal_due
                && (requested || self.live.is_none() || self.interrupted_build)
                && self.start_build(requested).await?
            {
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

    /// Drops the tables of generations other than the live one, as far as none of them is
    /// in use (`generations::drop_others`); what is left is tried again later (a poll
    /// interval, then twice as long each time, up to `MAX_BACKOFF`). `true` if none is left.
    async fn remove_others(&mut self) -> Result<bool, ProjectionError> {
        let removal =
            generations::drop_others(&mut self.connection, M::NAME, self.generation).await?;
        self.removal_due = removal.left > 0;
        if self.removal_due {
            self.next_removal = Instant::now() + self.removal_pause;
            debug!(
                tables = removal.left,
                retry_in = ?self.removal_pause,
                "tables of other generations are still in use: dropping them later"
            );
            self.removal_pause = (self.removal_pause * 2).min(MAX_BACKOFF);
        } else {
            self.removal_pause = self.config.poll_interval.min(MAX_BACKOFF);
        }
        Ok(!self.removal_due)
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
}

mod by_key;
mod generations;
mod live;
mod rebuild;
mod rows;
mod statistics;

pub use by_key::{Statement, statements_by_key, wanted_rows};
use generations::LateIndexes;
use rows::{load_rows, read_checkpoint};
use statistics::Statistics;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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

    #[test]
    fn a_backlog_is_far_behind_past_the_threshold_and_four_times_the_way_come() {
        // Right after a bulk load, or on a server started on a large log.
        assert!(far_behind(0, 100_000, 100_000));
        assert!(!far_behind(0, 99_999, 100_000));
        // Four times the way come, and no less.
        assert!(far_behind(50_000, 250_000, 100_000));
        assert!(!far_behind(50_001, 250_000, 100_000));
        // A projection ahead of the head as this server knows it is not behind at all.
        assert!(!far_behind(10, 5, 0));
        assert!(!far_behind(0, 0, 0));
    }

    // FNV-1a 64 of "diplog.projection.channels", computed independently.
    const CHANNELS_KEY: i64 = -5_733_359_485_029_627_877;
}
