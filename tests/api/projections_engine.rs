//! The projection engine on a real PostgreSQL: the generic runner driven directly with a small
//! counting model (rows and checkpoint together, restarts, killed connections, two runners and
//! a takeover, rebuilds by request and by version, waiting for a position), the query side's
//! log reads, and the server running every projection.

use std::collections::BTreeMap;
use std::time::Duration;

use diplog::domain::{
    AppendBatch, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload, StreamId,
};
use diplog::projections::engine::registry::{LocalRunners, advisory_lock_key};
use diplog::projections::engine::rows::{
    Holder, ProjectionError, ProjectionStatus, ProjectionStore, RowFilter, WaitError,
};
use diplog::projections::engine::runner::{
    RunnerConfig, RunnerContext, Statement, run_projection, statements_by_key, wanted_rows,
};
use diplog::projections::{Fact, Model, NAMES, Row, RowData, Wanted, prefix_end};
use diplog::store::{EventStore, WriterConfig, WriterHandle};
use futures::TryStreamExt;
use serde_json::json;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::helpers::{fresh_database, spawn_app};

/// The test model's projection name (each test has a database of its own).
const NAME: &str = "test-counts";

/// Counts the diplomatic events of each stream (its row: the count and the last position).
/// Streams named `toggle-…` instead have a row after an odd number of events and none after
/// an even one, so rows are deleted too. `V` is the model version.
#[derive(Debug, Default)]
struct Counts<const V: i32> {
    streams: BTreeMap<String, (u64, u64)>,
}

impl<const V: i32> Model for Counts<V> {
    const NAME: &'static str = NAME;
    const VERSION: i32 = V;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        let key = fact.stream_id.clone();
        if key.starts_with("toggle-") {
            if self.streams.remove(&key).is_none() {
                self.streams.insert(key.clone(), (1, fact.position));
            }
        } else {
            let entry = self.streams.entry(key.clone()).or_default();
            entry.0 += 1;
            entry.1 = fact.position;
        }
        vec![key]
    }

    fn row(&self, key: &str) -> Option<Row> {
        let (count, last) = self.streams.get(key)?;
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(&json!({"count": count, "last": last})).unwrap(),
            actors: vec![key.to_owned()],
            states: vec![format!("v{V}")],
            status: if count % 2 == 0 { "even" } else { "odd" }.to_owned(),
            sort_key: key.to_owned(),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.streams
            .keys()
            .filter_map(|key| self.row(key))
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut streams = BTreeMap::new();
        for row in rows {
            let data = value_of(&row.data);
            let count = data["count"].as_u64().ok_or("no count")?;
            let last = data["last"].as_u64().ok_or("no last position")?;
            streams.insert(row.key, (count, last));
        }
        Ok(Self { streams })
    }
}

/// A row's data as a JSON value.
fn value_of(data: &RowData) -> serde_json::Value {
    serde_json::from_str(data.get()).expect("row data is JSON")
}

/// A log of its own: a fresh database with the schema and a running writer.
struct Log {
    pool: PgPool,
    store: EventStore,
    writer: WriterHandle,
}

impl Log {
    async fn new() -> Self {
        let pool = diplog::database::pool_options(8)
            .connect_with(fresh_database().await)
            .await
            .expect("connect to the test database");
        diplog::MIGRATOR.run(&pool).await.expect("migrations");
        let (store, writer) = EventStore::start(pool.clone(), WriterConfig::default())
            .await
            .expect("the writer starts");
        Self {
            pool,
            store,
            writer,
        }
    }

    /// Appends `count` diplomatic events to `stream` (in appends of up to 1000); answers the
    /// last position.
    async fn append_facts(&self, stream: &str, count: usize) -> u64 {
        self.append(stream, count, true).await
    }

    /// Appends `count` events that are not diplomatic (no recorder marker).
    async fn append_plain(&self, stream: &str, count: usize) -> u64 {
        self.append(stream, count, false).await
    }

    async fn append(&self, stream: &str, count: usize, diplomatic: bool) -> u64 {
        let mut last = 0;
        let mut left = count;
        while left > 0 {
            let n = left.min(1000);
            left -= n;
            let events = (0..n).map(|_| new_event(diplomatic)).collect();
            let batch = AppendBatch::new(
                StreamId::parse(stream).expect("a stream id"),
                ExpectedVersion::Any,
                events,
            )
            .expect("a valid batch");
            let outcome = self.store.append(batch, "test").await.expect("append");
            last = *outcome.positions.last().expect("positions");
        }
        last
    }

    /// A diplomatic event whose payload does not parse as a `DiplomaticEvent`.
    async fn append_unreadable(&self, stream: &str) -> u64 {
        let mut event = new_event(true);
        event.data = Payload::parse(r#"{"no_such_kind": {}}"#).expect("JSON");
        let batch = AppendBatch::new(
            StreamId::parse(stream).expect("a stream id"),
            ExpectedVersion::Any,
            vec![event],
        )
        .expect("a valid batch");
        self.store
            .append(batch, "test")
            .await
            .expect("append")
            .positions[0]
    }

    async fn head(&self) -> u64 {
        self.store.head().await.expect("head")
    }

    /// A backlog over several streams, with plain events between: `rounds` of 10 appends.
    async fn backlog(&self, rounds: usize, per_append: usize) {
        for round in 0..rounds {
            for stream in 0..6 {
                self.append_facts(&format!("s-{stream}"), per_append).await;
            }
            self.append_plain("plain", per_append / 2 + 1).await;
            for toggle in 0..3 {
                let odd = (round + toggle) % 2;
                self.append_facts(&format!("toggle-{toggle}"), per_append / 10 + odd)
                    .await;
            }
        }
    }

    /// What a from-scratch count of the log up to `position` gives, as rows' data by key.
    async fn expected_at(&self, position: u64) -> BTreeMap<String, serde_json::Value> {
        let counts: Vec<(String, i64, i64)> = sqlx::query_as(
            "select stream_id, count(*), max(position) from events \
             where position <= $1 and metadata->>'diplog.schema' = 'diplog.v1.DiplomaticEvent' \
             group by stream_id",
        )
        .bind(position as i64)
        .fetch_all(&self.pool)
        .await
        .expect("count the log");
        counts
            .into_iter()
            .filter(|(stream, count, _)| !stream.starts_with("toggle-") || count % 2 == 1)
            .map(|(stream, count, last)| {
                let count = if stream.starts_with("toggle-") {
                    1
                } else {
                    count
                };
                (stream, json!({"count": count, "last": last}))
            })
            .collect()
    }

    async fn stop(self) {
        drop(self.store);
        self.writer.stop().await.expect("the writer stops");
        self.pool.close().await;
    }
}

fn new_event(diplomatic: bool) -> NewEvent {
    let mut values = BTreeMap::new();
    if diplomatic {
        values.insert(
            "diplog.schema".to_owned(),
            "diplog.v1.DiplomaticEvent".to_owned(),
        );
    }
    NewEvent {
        id: EventId::generate(),
        event_type: EventType::parse("ActorRegistered").expect("a type"),
        data: Payload::parse(
            r#"{"actor_registered": {"actor": {"id": "test-person", "kind": "PERSON", "name": "Test"}}}"#,
        )
        .expect("JSON"),
        metadata: Metadata {
            correlation_id: None,
            causation_id: None,
            values,
        },
    }
}

/// Runner logs in the captured test output (`RUST_LOG=diplog=debug` for more).
fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn config() -> RunnerConfig {
    capture_logs();
    RunnerConfig {
        poll_interval: Duration::from_millis(50),
        takeover_interval: Duration::from_millis(50),
        retry_backoff: Duration::from_millis(100),
        ..RunnerConfig::default()
    }
}

/// A runner of `M` (as a server would run it), stopped by its token.
struct Runner {
    local: LocalRunners,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Runner {
    fn start<M: Model>(log: &Log, config: RunnerConfig) -> Self {
        let local = LocalRunners::default();
        let shutdown = CancellationToken::new();
        let context = RunnerContext::new(&log.pool, &log.store, local.clone(), config);
        let task = tokio::spawn(run_projection::<M>(context, shutdown.clone()));
        Self {
            local,
            shutdown,
            task,
        }
    }

    fn projections(&self, log: &Log) -> ProjectionStore {
        ProjectionStore::new(log.pool.clone(), self.local.clone())
    }

    fn holding(&self) -> bool {
        self.local.report(NAME).holding
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the runner stops within 5 s")
            .expect("the runner does not panic");
    }
}

/// The live rows as data by key, and the position they reflect.
async fn live_rows(projections: &ProjectionStore) -> (BTreeMap<String, serde_json::Value>, u64) {
    let (rows, position) = projections
        .load_rows(NAME, &RowFilter::default())
        .await
        .expect("load rows");
    (
        rows.into_iter()
            .map(|row| (row.key, value_of(&row.data)))
            .collect(),
        position,
    )
}

/// Asserts that the live rows are exactly a from-scratch count up to their position; answers
/// the position.
async fn assert_consistent(log: &Log, projections: &ProjectionStore) -> u64 {
    let (rows, position) = live_rows(projections).await;
    assert_eq!(
        rows,
        log.expected_at(position).await,
        "at position {position}"
    );
    position
}

async fn wait_for_head(log: &Log, projections: &ProjectionStore, within: Duration) -> u64 {
    let head = log.head().await;
    projections
        .wait_for(NAME, head, Instant::now() + within)
        .await
        .unwrap_or_else(|e| panic!("the projection did not reach {head}: {e}"))
}

/// The backend holding the projection's advisory lock, if any.
async fn lock_holder(pool: &PgPool) -> Option<i32> {
    let key = advisory_lock_key(NAME) as u64;
    sqlx::query_scalar(
        // pg_locks covers the cluster: other tests' databases use the same key.
        "select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1 \
         and database = (select oid from pg_database where datname = current_database()) \
         and classid::bigint = $1 and objid::bigint = $2",
    )
    .bind((key >> 32) as i64)
    .bind((key & 0xffff_ffff) as i64)
    .fetch_optional(pool)
    .await
    .expect("read pg_locks")
}

async fn terminate(pool: &PgPool, pid: i32) {
    let terminated: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(pool)
        .await
        .expect("terminate a backend");
    assert!(terminated, "backend {pid} was not terminated");
}

/// Polls `check` every 10 ms until it holds; panics after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rows_and_checkpoint_advance_together_and_a_restart_applies_nothing_twice() {
    let log = Log::new().await;
    log.backlog(10, 100).await;
    // Batches this small make catching up take about two hundred commits, so the checks below
    // see it under way more than once even on a quiet machine (with 50 a batch it could pass
    // a third of the log between two checks; with 10, once, under the full suite's load).
    let small_batches = RunnerConfig {
        batch_events: 5,
        ..config()
    };
    let runner = Runner::start::<Counts<1>>(&log, small_batches);
    let projections = runner.projections(&log);

    // Stopped while catching up (the backlog takes dozens of batches).
    let head = log.head().await;
    eventually(Duration::from_secs(10), "the runner starts", || async {
        let (_, position) = live_rows(&projections).await;
        position > 0
    })
    .await;
    let mut checked = 0;
    loop {
        let position = assert_consistent(&log, &projections).await;
        checked += 1;
        if position > head / 3 {
            break;
        }
    }
    runner.stop().await;
    let stopped_at = assert_consistent(&log, &projections).await;
    assert!(
        stopped_at < head,
        "the runner had caught up before it was stopped"
    );
    assert!(checked > 1);

    // More events while it is down, and while it runs again.
    log.backlog(2, 50).await;
    let runner = Runner::start::<Counts<1>>(&log, small_batches);
    let projections = runner.projections(&log);
    let appending = async {
        for _ in 0..20 {
            log.append_facts("s-live", 7).await;
            log.append_plain("plain", 3).await;
        }
    };
    let checking = async {
        for _ in 0..20 {
            assert_consistent(&log, &projections).await;
        }
    };
    tokio::join!(appending, checking);
    let position = wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    assert_eq!(
        position,
        log.head().await,
        "plain events at the end still count"
    );
    assert_consistent(&log, &projections).await;

    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!((checkpoint.generation, checkpoint.version), (1, 1));
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn a_live_generation_far_behind_the_head_is_built_afresh_and_then_followed() {
    let log = Log::new().await;
    let far = RunnerConfig {
        build_when_behind: 300,
        batch_events: 50,
        build_chunk_events: 20,
        ..config()
    };
    // Its first generation follows the log's first events live. Then 400 events arrive in
    // one commit: past 300, and past four times the 10 it has come.
    let runner = Runner::start::<Counts<1>>(&log, far);
    let projections = runner.projections(&log);
    let start = log.append_facts("s-first", 10).await;
    wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    let head = log.append_facts("s-bulk", 400).await;
    assert_eq!(
        positions_until(&log, &projections, head).await,
        [start, head],
        "the live rows stay as they stood until the built generation replaces them \
         (batches of 50 would have shown positions between)"
    );
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!(checkpoint.generation, 2, "built afresh, as generation 2");

    // Stopped, and restarted once the log has grown past four times its position; stopped
    // again half-way through the build, and restarted.
    runner.stop().await;
    log.backlog(30, 10).await;
    let later = log.head().await;
    assert!(later - head >= 4 * head);
    let runner = Runner::start::<Counts<1>>(&log, far);
    eventually(
        Duration::from_secs(10),
        "the build is under way",
        || async {
            let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
            checkpoint.building_position.is_some_and(|at| at > 0)
        },
    )
    .await;
    runner.stop().await;
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!(
        (checkpoint.generation, checkpoint.position),
        (2, head),
        "the live rows as they stood"
    );
    assert!(
        checkpoint.building_generation.is_some(),
        "stopped with the build part-way"
    );
    assert_consistent(&log, &projections).await;
    let runner = Runner::start::<Counts<1>>(&log, far);
    let projections = runner.projections(&log);
    assert_eq!(
        positions_until(&log, &projections, later).await,
        [head, later]
    );
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!(
        (checkpoint.generation, checkpoint.building_generation),
        (3, None),
        "built afresh again from the start, as generation 3"
    );

    // Stopped again, and restarted behind by more than 300 but less than four times the way
    // come: caught up in the live generation.
    runner.stop().await;
    log.backlog(6, 10).await;
    let last = log.head().await;
    assert!(last - later > 300 && last - later < 4 * later);
    let runner = Runner::start::<Counts<1>>(&log, far);
    let projections = runner.projections(&log);
    positions_until(&log, &projections, last).await;
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!(checkpoint.generation, 3, "caught up in the live generation");
    runner.stop().await;
    log.stop().await;
}

/// The positions the live rows show (each time consistent with the log), in order, until
/// they reach `head`.
async fn positions_until(log: &Log, projections: &ProjectionStore, head: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let position = assert_consistent(log, projections).await;
        if seen.last() != Some(&position) {
            seen.push(position);
        }
        if position == head {
            return seen;
        }
        assert!(Instant::now() < deadline, "not at {head}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_runner_whose_connection_is_killed_mid_batch_recovers_without_double_counting() {
    let log = Log::new().await;
    log.backlog(20, 100).await;
    let runner = Runner::start::<Counts<1>>(
        &log,
        RunnerConfig {
            batch_events: 100,
            ..config()
        },
    );
    let projections = runner.projections(&log);
    let head = log.head().await;

    let mut kills = 0;
    let mut killed = None;
    while kills < 3 {
        // A terminated backend shows in pg_locks until it has exited.
        let pid = lock_holder(&log.pool).await;
        if pid.is_none() || pid == killed {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let pid = pid.expect("a holder");
        // Let it get into its work, then cut it off.
        tokio::time::sleep(Duration::from_millis(15)).await;
        terminate(&log.pool, pid).await;
        killed = Some(pid);
        kills += 1;
        assert_consistent(&log, &projections).await;
    }
    let (_, position) = live_rows(&projections).await;
    assert!(
        position < head,
        "caught up before the last kill; the test proves less"
    );

    wait_for_head(&log, &projections, Duration::from_secs(20)).await;
    assert_consistent(&log, &projections).await;
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn of_two_runners_one_advances_and_the_other_takes_over_when_it_dies() {
    let log = Log::new().await;
    log.backlog(3, 50).await;
    // The killed runner waits 5 s before trying again, so the takeover is the other's.
    let slow_retry = RunnerConfig {
        retry_backoff: Duration::from_secs(5),
        ..config()
    };
    let first = Runner::start::<Counts<1>>(&log, slow_retry);
    let second = Runner::start::<Counts<1>>(&log, slow_retry);
    let projections = first.projections(&log);
    wait_for_head(&log, &projections, Duration::from_secs(10)).await;

    // Both keep trying for a while: still exactly one holds the lock.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(
            first.holding() ^ second.holding(),
            "exactly one runner holds"
        );
    }
    let (holder, standby) = if first.holding() {
        (&first, &second)
    } else {
        (&second, &first)
    };
    let statuses = projections.statuses().await.unwrap();
    // The test projection, and the server's own, none of which runs here.
    assert_eq!(statuses.len(), 1 + NAMES.len());
    let status = status_of(&statuses, NAME);
    // `projections` reports for the first runner's server.
    let expected_holder = if first.holding() {
        Holder::ThisServer
    } else {
        Holder::AnotherServer
    };
    assert_eq!(status.holder, expected_holder);
    assert_eq!(status.lag, 0);

    log.append_facts("s-1", 10).await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;

    let pid = lock_holder(&log.pool).await.expect("a holder");
    terminate(&log.pool, pid).await;
    let killed = Instant::now();
    log.append_facts("s-2", 10).await;
    eventually(Duration::from_secs(3), "the standby takes over", || async {
        standby.holding()
    })
    .await;
    assert!(killed.elapsed() < Duration::from_secs(3));
    // The killed runner finds out at its next round (it could not write meanwhile).
    eventually(
        Duration::from_secs(2),
        "the killed runner lets go",
        || async { !holder.holding() },
    )
    .await;
    let new_pid = lock_holder(&log.pool).await.expect("a new holder");
    assert_ne!(new_pid, pid);

    log.backlog(1, 30).await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    assert_consistent(&log, &projections).await;

    first.stop().await;
    second.stop().await;
    eventually(Duration::from_secs(2), "the lock is released", || async {
        lock_holder(&log.pool).await.is_none()
    })
    .await;
    log.stop().await;
}

/// The name of a generation's table (`diplog_projection_table`).
fn generation_table(generation: i64) -> String {
    format!("projection_rows_{NAME}_{generation}")
}

/// Rows of a generation, straight from its table (attached or not); 0 if it has none.
async fn rows_in_generation(pool: &PgPool, generation: i64) -> i64 {
    let table = generation_table(generation);
    let exists: bool = sqlx::query_scalar("select to_regclass(quote_ident($1)) is not null")
        .bind(&table)
        .fetch_one(pool)
        .await
        .expect("look the table up");
    if !exists {
        return 0;
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from \"{table}\""
    )))
    .fetch_one(pool)
    .await
    .expect("count rows")
}

/// The tables of the test projection's generations, from the catalog: generation, whether
/// it is attached to the projection's partition of `projection_rows`, and its indexes' names.
async fn generation_tables(pool: &PgPool) -> Vec<(i64, bool, Vec<String>)> {
    let prefix = format!("projection_rows_{NAME}_");
    let tables: Vec<(String, bool, Vec<String>)> = sqlx::query_as(
        "select c.relname::text, \
             exists (select from pg_inherits i \
                 where i.inhrelid = c.oid \
                 and i.inhparent = to_regclass(quote_ident('projection_rows_' || $2))), \
             coalesce((select array_agg(x.relname::text order by x.relname) \
                 from pg_index ix join pg_class x on x.oid = ix.indexrelid \
                 where ix.indrelid = c.oid), '{}') \
         from pg_class c \
         where c.relkind = 'r' and starts_with(c.relname, $1) \
         and c.relnamespace = (select oid from pg_namespace where nspname = current_schema())",
    )
    .bind(&prefix)
    .bind(NAME)
    .fetch_all(pool)
    .await
    .expect("read the catalog");
    let mut tables: Vec<(i64, bool, Vec<String>)> = tables
        .into_iter()
        .map(|(name, attached, indexes)| {
            let generation = name[prefix.len()..].parse().expect("a generation");
            (generation, attached, indexes)
        })
        .collect();
    tables.sort();
    tables
}

/// What a live generation's table holds: attached, with its primary key and its secondary
/// indexes (`diplog_projection_generation_finish`).
fn live_table(generation: i64) -> (i64, bool, Vec<String>) {
    let table = generation_table(generation);
    let indexes = ["actors", "order", "pkey", "states", "status"]
        .iter()
        .map(|suffix| format!("{table}_{suffix}"))
        .collect();
    (generation, true, indexes)
}

/// A log with a backlog (`Log::backlog`) and a runner of `Counts<1>` with `config` that has
/// caught up with it: where the rebuild tests start.
async fn caught_up(
    rounds: usize,
    per_append: usize,
    config: RunnerConfig,
) -> (Log, Runner, ProjectionStore) {
    let log = Log::new().await;
    log.backlog(rounds, per_append).await;
    let runner = Runner::start::<Counts<1>>(&log, config);
    let projections = runner.projections(&log);
    wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    (log, runner, projections)
}

/// Waits until a rebuild has made generation 2 live.
async fn wait_for_swap(projections: &ProjectionStore) {
    eventually(Duration::from_secs(20), "the rebuild swaps in", || async {
        let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
        checkpoint.generation == 2 && checkpoint.building_generation.is_none()
    })
    .await;
}

/// Waits until the live generation's table is the only one left.
async fn wait_for_old_generation_dropped(pool: &PgPool) {
    eventually(
        Duration::from_secs(5),
        "the old generation's table is dropped",
        || async { generation_tables(pool).await.len() == 1 },
    )
    .await;
}

#[tokio::test]
async fn a_requested_rebuild_fills_a_new_generation_while_the_old_one_answers_then_swaps() {
    // Small chunks, so the build takes many transactions and can be watched.
    let (log, runner, projections) = caught_up(
        10,
        40,
        RunnerConfig {
            build_chunk_events: 20,
            ..config()
        },
    )
    .await;
    let (before, _) = live_rows(&projections).await;

    projections.request_rebuild(NAME).await.unwrap();
    let mut seen_mid_build = false;
    let appending = async {
        for _ in 0..10 {
            log.append_facts("s-during-rebuild", 3).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let watching = async {
        loop {
            let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
            if checkpoint.generation == 2 {
                break;
            }
            assert_eq!(checkpoint.generation, 1);
            // Readers keep getting generation 1, complete at its position.
            assert_consistent(&log, &projections).await;
            if checkpoint.building_position.is_some_and(|p| p > 0)
                && rows_in_generation(&log.pool, 2).await > 0
            {
                seen_mid_build = true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(appending, watching)
    })
    .await
    .expect("the rebuild swaps in");
    assert!(
        seen_mid_build,
        "never saw generation 2 being built beside 1"
    );

    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    // The old generation's table goes just after the swap.
    wait_for_old_generation_dropped(&log.pool).await;
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!(checkpoint.generation, 2);
    assert_eq!(checkpoint.building_generation, None);
    assert!(!checkpoint.rebuild_requested);
    assert_consistent(&log, &projections).await;
    assert_eq!(
        rows_in_generation(&log.pool, 1).await,
        0,
        "old rows deleted"
    );
    assert_eq!(
        generation_tables(&log.pool).await,
        vec![live_table(2)],
        "the new generation is attached, with its indexes"
    );
    let (after, _) = live_rows(&projections).await;
    let mut expected = before;
    expected.insert(
        "s-during-rebuild".to_owned(),
        after["s-during-rebuild"].clone(),
    );
    assert_eq!(
        after, expected,
        "the same rows, plus the stream appended meanwhile"
    );

    assert!(matches!(
        projections.request_rebuild("no-such-projection").await,
        Err(ProjectionError::UnknownProjection(_))
    ));
    // Known but never run: nothing to rebuild yet.
    projections.request_rebuild(NAMES[0]).await.unwrap();
    runner.stop().await;
    log.stop().await;
}

/// Creates the table of `generation` of the test projection, as a build does.
async fn create_generation(pool: &sqlx::PgPool, generation: i64) {
    sqlx::query("select diplog_projection_generation_create($1, $2)")
        .bind(NAME)
        .bind(generation)
        .execute(pool)
        .await
        .expect("create a generation's table");
}

/// An interrupted build leaves a table of a generation above the live one, and a swap
/// interrupted before it dropped the old generation leaves that one attached below it: a new
/// build starts by dropping both, so none of their rows turns up in the rebuilt rows.
#[tokio::test]
async fn a_rebuild_first_drops_the_tables_of_other_generations() {
    let (log, runner, projections) = caught_up(5, 20, config()).await;
    assert_eq!(generation_tables(&log.pool).await, vec![live_table(1)]);
    for (generation, attached) in [(0_i64, true), (2, false), (7, false)] {
        create_generation(&log.pool, generation).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into \"{}\" \
                 (projection, generation, key, data, actors, states, status, sort_key) \
             values ($1, $2, 'stray', '{{}}', '{{}}', '{{}}', 'open', 'stray')",
            generation_table(generation)
        )))
        .bind(NAME)
        .bind(generation)
        .execute(&log.pool)
        .await
        .expect("insert a stray row");
        if attached {
            sqlx::query("select diplog_projection_generation_finish($1, $2)")
                .bind(NAME)
                .bind(generation)
                .execute(&log.pool)
                .await
                .expect("attach a generation's table");
        }
    }
    assert_eq!(generation_tables(&log.pool).await.len(), 4);

    projections.request_rebuild(NAME).await.unwrap();
    wait_for_swap(&projections).await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    wait_for_old_generation_dropped(&log.pool).await;
    assert_consistent(&log, &projections).await;
    for generation in [0, 1, 7] {
        assert_eq!(
            rows_in_generation(&log.pool, generation).await,
            0,
            "generation {generation}"
        );
    }
    assert_eq!(generation_tables(&log.pool).await, vec![live_table(2)]);
    runner.stop().await;
    log.stop().await;
}

/// A runner cut off in the middle of a rebuild (its connection terminated, as when its
/// server is killed with SIGKILL) leaves the build's table half filled; the runner that takes
/// the lock next drops it, builds again from scratch and swaps in, with readers answering
/// from the live generation throughout.
#[tokio::test]
async fn a_rebuild_killed_half_way_is_dropped_and_built_again() {
    let (log, runner, projections) = caught_up(
        10,
        40,
        RunnerConfig {
            build_chunk_events: 10,
            ..config()
        },
    )
    .await;

    projections.request_rebuild(NAME).await.unwrap();
    eventually(Duration::from_secs(20), "the build is half way", || async {
        let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
        checkpoint.building_position.is_some_and(|p| p > 0)
            && rows_in_generation(&log.pool, 2).await > 0
    })
    .await;
    let pid = lock_holder(&log.pool).await.expect("a holder");
    terminate(&log.pool, pid).await;
    assert_consistent(&log, &projections).await;

    wait_for_swap(&projections).await;
    assert_ne!(lock_holder(&log.pool).await, Some(pid));
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    wait_for_old_generation_dropped(&log.pool).await;
    assert_consistent(&log, &projections).await;
    assert_eq!(generation_tables(&log.pool).await, vec![live_table(2)]);
    runner.stop().await;
    log.stop().await;
}

/// A reader whose transaction outlasts a swap (it read the projection before it) keeps the
/// old generation's table in use: the runner does not wait for it, but goes on advancing the
/// new generation and drops the old table once that reader is done. (Waiting in the old
/// generation's concurrent detach held the runner, and so the projection, for as long as
/// the reader's transaction stayed open.)
#[tokio::test]
async fn a_reader_outlasting_a_swap_holds_neither_the_runner_nor_the_new_generation() {
    let (log, runner, projections) = caught_up(5, 20, config()).await;

    let mut reader = log.pool.begin().await.expect("a reader's transaction");
    let read: i64 =
        sqlx::query_scalar("select count(*) from projection_rows where projection = $1")
            .bind(NAME)
            .fetch_one(&mut *reader)
            .await
            .expect("read the projection");
    assert!(read > 0);

    projections.request_rebuild(NAME).await.unwrap();
    wait_for_swap(&projections).await;
    log.append_facts("s-after-swap", 7).await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    assert_consistent(&log, &projections).await;
    let tables = generation_tables(&log.pool).await;
    assert_eq!(
        tables.len(),
        2,
        "the old generation's table waits for its reader"
    );
    assert_eq!(tables[1], live_table(2));

    reader.commit().await.expect("the reader finishes");
    eventually(
        Duration::from_secs(10),
        "the old generation's table is dropped once its reader is done",
        || async { generation_tables(&log.pool).await == vec![live_table(2)] },
    )
    .await;
    log.append_facts("s-after-drop", 3).await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    assert_consistent(&log, &projections).await;
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn a_new_model_version_is_rebuilt_while_the_old_rows_answer() {
    let log = Log::new().await;
    log.backlog(10, 40).await;
    let runner = Runner::start::<Counts<1>>(&log, config());
    let projections = runner.projections(&log);
    let frozen_at = wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    runner.stop().await;
    log.append_facts("s-after-v1", 5).await;

    let runner = Runner::start::<Counts<2>>(
        &log,
        RunnerConfig {
            build_chunk_events: 20,
            ..config()
        },
    );
    let projections = runner.projections(&log);
    let mut seen_frozen = false;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
            if checkpoint.generation == 2 {
                break;
            }
            // Version 1's rows keep answering, frozen where version 1 left them (each row
            // names the version that wrote it among its states).
            assert_eq!(checkpoint.version, 1);
            let (rows, position) = projections
                .load_rows(NAME, &RowFilter::default())
                .await
                .unwrap();
            if rows.iter().any(|row| row.states != ["v1"]) {
                break; // swapped in since the checkpoint was read
            }
            assert_eq!(position, frozen_at);
            let data: BTreeMap<String, serde_json::Value> = rows
                .into_iter()
                .map(|row| (row.key, value_of(&row.data)))
                .collect();
            assert_eq!(data, log.expected_at(position).await);
            seen_frozen |= checkpoint.building_position.is_some();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the new version swaps in");
    assert!(seen_frozen);

    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!((checkpoint.version, checkpoint.generation), (2, 2));
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    assert_consistent(&log, &projections).await;
    let (rows, _) = projections
        .load_rows(
            NAME,
            &RowFilter {
                states: vec!["v2".to_owned()],
                ..RowFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), log.expected_at(log.head().await).await.len());
    runner.stop().await;

    // A server with the older version (a rolling upgrade) leaves the newer rows alone...
    let runner = Runner::start::<Counts<1>>(&log, config());
    let projections = runner.projections(&log);
    log.append_facts("s-during-upgrade", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
    assert_eq!((checkpoint.version, checkpoint.generation), (2, 2));
    assert!(!runner.holding());
    // ...unless an operator asks for a rebuild (rolling back on purpose).
    projections.request_rebuild(NAME).await.unwrap();
    eventually(Duration::from_secs(10), "version 1 is rebuilt", || async {
        let checkpoint = projections.checkpoint(NAME).await.unwrap().unwrap();
        (checkpoint.version, checkpoint.generation) == (1, 3)
    })
    .await;
    wait_for_head(&log, &projections, Duration::from_secs(5)).await;
    assert_consistent(&log, &projections).await;
    runner.stop().await;
    log.stop().await;
}

/// The nodes of a plan (`EXPLAIN (FORMAT JSON)`), at every level (CTEs and subplans too).
fn plan_nodes(explained: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(node: &'a serde_json::Value, nodes: &mut Vec<&'a serde_json::Value>) {
        nodes.push(node);
        for child in node["Plans"].as_array().into_iter().flatten() {
            walk(child, nodes);
        }
    }
    let mut nodes = Vec::new();
    walk(&explained[0]["Plan"], &mut nodes);
    nodes
}

/// Asserts that `explained`, a plan of `statement`, finds rows of generation `generation` by
/// key through the table's primary key: an index scan of it with a condition on `key`, and
/// no sequential scan of the table filtering by key. `indexed`: the generation has its
/// secondary indexes (it is finished), and then no sequential scan of its table at all (a
/// build's has no index on status yet, and the hydrate's lookup of groups, none here, is
/// planned as a scan of it).
fn assert_seeks_by_key(
    explained: &serde_json::Value,
    statement: &Statement,
    generation: i64,
    indexed: bool,
    plan: &str,
) {
    let table = generation_table(generation);
    let primary_key = format!("{table}_pkey");
    let nodes = plan_nodes(explained);
    let text =
        |node: &serde_json::Value, field: &str| node[field].as_str().unwrap_or("").to_owned();
    let context = format!(
        "{} in generation {generation} ({plan} plan): {}\n{explained:#}",
        statement.purpose, statement.sql
    );
    assert!(
        nodes.iter().any(|node| {
            ["Index Scan", "Index Only Scan", "Bitmap Index Scan"]
                .contains(&text(node, "Node Type").as_str())
                && text(node, "Index Name") == primary_key
                && text(node, "Index Cond").contains("key = ANY")
        }),
        "no seek of {primary_key} by key: {context}"
    );
    for node in nodes {
        if text(node, "Node Type") != "Seq Scan" || text(node, "Relation Name") != table {
            continue;
        }
        assert!(
            !text(node, "Filter").contains("key"),
            "a sequential scan of {table} by key: {context}"
        );
        assert!(!indexed, "a sequential scan of {table}: {context}");
    }
}

/// The runner's lookups and deletes by key in a generation's table seek its primary key,
/// the key, in a generation being built (primary key only) and in a finished one. (When it
/// led with the projection and the generation, a lookup that PostgreSQL planned as a walk of
/// it read the whole generation: 5 to 32 s per batch at 1M rows.) Checked on the plans PostgreSQL makes for the statements as the runner runs them,
/// with their arguments (a custom plan) and without (the generic plan a prepared statement
/// may switch to), over a few thousand rows, analyzed.
#[tokio::test]
async fn the_runner_finds_rows_by_key_through_the_generation_primary_key() {
    let log = Log::new().await;
    let (finished, building) = (1_i64, 2_i64);
    for generation in [finished, building] {
        create_generation(&log.pool, generation).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into \"{}\" \
                 (projection, generation, key, data, actors, states, status, sort_key) \
             select $1, $2, 's-' || i, jsonb_build_object('count', i), \
                 array['s-' || i], array['v1'], \
                 case when i % 2 = 0 then 'even' else 'odd' end, 's-' || i \
             from generate_series(1, 5000) as i",
            generation_table(generation)
        )))
        .bind(NAME)
        .bind(generation)
        .execute(&log.pool)
        .await
        .expect("fill a generation");
    }
    sqlx::query("select diplog_projection_generation_finish($1, $2)")
        .bind(NAME)
        .bind(finished)
        .execute(&log.pool)
        .await
        .expect("finish a generation");
    let mut connection = log.pool.acquire().await.expect("a connection");
    for generation in [finished, building] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "analyze \"{}\"",
            generation_table(generation)
        )))
        .execute(&mut *connection)
        .await
        .expect("analyze");
    }

    let keys: Vec<String> = ["s-1", "s-2500", "s-4999", "s-none"]
        .map(String::from)
        .to_vec();
    for generation in [finished, building] {
        assert_lookups_seek_by_key(&mut connection, generation, &keys, generation == finished)
            .await;
    }
    drop(connection);
    log.stop().await;
}

/// Asserts that the runner's statements that find or delete rows of `generation` by `keys`
/// seek its primary key (see `assert_seeks_by_key`), in the plan PostgreSQL makes for them
/// with their arguments (a custom plan) and without (the generic plan a prepared statement
/// may switch to).
async fn assert_lookups_seek_by_key(
    connection: &mut sqlx::PgConnection,
    generation: i64,
    keys: &[String],
    indexed: bool,
) {
    let statements = statements_by_key(NAME, generation as u64, keys).expect("the statements");
    assert_eq!(statements.len(), 4);
    for statement in statements {
        let custom: serde_json::Value = sqlx::query_scalar_with(
            sqlx::AssertSqlSafe(format!("explain (format json) {}", statement.sql)),
            statement.arguments.clone(),
        )
        .fetch_one(&mut *connection)
        .await
        .unwrap_or_else(|e| panic!("explain {}: {e}", statement.sql));
        assert_seeks_by_key(&custom, &statement, generation, indexed, "custom");

        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "set plan_cache_mode = force_generic_plan; prepare by_key as {}",
            statement.sql
        )))
        .execute(&mut *connection)
        .await
        .expect("prepare");
        let parameters: i32 = sqlx::query_scalar(
            "select cardinality(parameter_types) from pg_prepared_statements \
             where name = 'by_key'",
        )
        .fetch_one(&mut *connection)
        .await
        .expect("the statement's parameters");
        let nulls = vec!["null"; parameters as usize].join(", ");
        let generic: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "explain (format json) execute by_key({nulls})"
        )))
        .fetch_one(&mut *connection)
        .await
        .expect("explain the generic plan");
        assert_seeks_by_key(&generic, &statement, generation, indexed, "generic");
        sqlx::raw_sql("deallocate by_key; reset plan_cache_mode")
            .execute(&mut *connection)
            .await
            .expect("deallocate");
    }
}

/// A row per diplomatic event, keyed by its position: a generation as large as the log.
#[derive(Debug, Default)]
struct PerEvent {
    positions: std::collections::BTreeSet<u64>,
}

impl PerEvent {
    fn key(position: u64) -> String {
        format!("e-{position}")
    }
}

impl Model for PerEvent {
    const NAME: &'static str = NAME;
    const VERSION: i32 = 1;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        self.positions.insert(fact.position);
        vec![Self::key(fact.position)]
    }

    fn row(&self, key: &str) -> Option<Row> {
        let position: u64 = key.strip_prefix("e-")?.parse().ok()?;
        self.positions.contains(&position).then(|| Row {
            key: key.to_owned(),
            data: RowData::new(&json!({"position": position})).unwrap(),
            actors: vec![],
            states: vec![],
            status: "event".to_owned(),
            sort_key: key.to_owned(),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.positions
            .iter()
            .filter_map(|&position| self.row(&Self::key(position)))
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let positions = rows
            .iter()
            .map(|row| {
                value_of(&row.data)["position"]
                    .as_u64()
                    .ok_or("no position")
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { positions })
    }
}

/// The tables the runner fills get their planner statistics from the runner, without waiting
/// for autovacuum (about a minute): with none, PostgreSQL takes the conditions on
/// `projection` and `generation`, which every row matches, for selective ones, and plans the
/// lookups and deletes by key as a walk of the whole primary key that filters by key (each
/// batch read the whole generation: about 70% of PostgreSQL's CPU under typed records). Checked on
/// the live generation after 3,000 events in live batches, and on a rebuilt generation just
/// after its swap; nothing else analyzes them.
#[tokio::test]
async fn the_tables_a_runner_fills_get_the_statistics_its_lookups_by_key_need() {
    let log = Log::new().await;
    let runner = Runner::start::<PerEvent>(
        &log,
        RunnerConfig {
            batch_events: 300,
            build_chunk_events: 700,
            ..config()
        },
    );
    let projections = runner.projections(&log);
    for _ in 0..10 {
        log.append_facts("s-1", 300).await;
        wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    }
    let keys: Vec<String> = [1, 1500, 2999, 9999].map(PerEvent::key).to_vec();
    let mut connection = log.pool.acquire().await.expect("a connection");
    assert_lookups_seek_by_key(&mut connection, 1, &keys, true).await;

    projections.request_rebuild(NAME).await.unwrap();
    wait_for_swap(&projections).await;
    assert_lookups_seek_by_key(&mut connection, 2, &keys, true).await;
    drop(connection);
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn load_rows_filters_by_actor_states_and_status() {
    let log = Log::new().await;
    log.append_facts("s-a", 2).await;
    log.append_facts("s-b", 3).await;
    log.append_facts("s-c", 5).await;
    let runner = Runner::start::<Counts<1>>(&log, config());
    let projections = runner.projections(&log);
    let head = wait_for_head(&log, &projections, Duration::from_secs(10)).await;

    let keys = |filter: RowFilter| {
        let projections = projections.clone();
        async move {
            let (rows, position) = projections.load_rows(NAME, &filter).await.unwrap();
            assert_eq!(position, head);
            rows.into_iter().map(|row| row.key).collect::<Vec<_>>()
        }
    };
    assert_eq!(keys(RowFilter::default()).await, ["s-a", "s-b", "s-c"]);
    let odd = RowFilter {
        status: vec!["odd".to_owned()],
        ..RowFilter::default()
    };
    assert_eq!(keys(odd).await, ["s-b", "s-c"]);
    let actor = RowFilter {
        actor: Some("s-b".to_owned()),
        ..RowFilter::default()
    };
    assert_eq!(keys(actor).await, ["s-b"]);
    let states = RowFilter {
        states: vec!["v1".to_owned(), "other".to_owned()],
        ..RowFilter::default()
    };
    assert!(keys(states).await.is_empty(), "a row must have every state");
    let nothing = RowFilter {
        status: vec!["neither".to_owned()],
        ..RowFilter::default()
    };
    assert!(keys(nothing).await.is_empty());
    let (_, position) = projections
        .load_rows(
            NAME,
            &RowFilter {
                status: vec!["neither".to_owned()],
                ..RowFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(position, head, "the position even when no row passes");

    let (rows, position) = projections
        .load_rows("never-run", &RowFilter::default())
        .await
        .unwrap();
    assert!(rows.is_empty());
    assert_eq!(position, 0);
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn wait_for_answers_as_soon_as_the_position_is_reached_and_times_out_otherwise() {
    let log = Log::new().await;
    log.backlog(1, 10).await;
    let runner = Runner::start::<Counts<1>>(
        &log,
        RunnerConfig {
            // Only this server's appends wake it promptly; a slow poll shows that they do.
            poll_interval: Duration::from_secs(5),
            ..config()
        },
    );
    let projections = runner.projections(&log);
    // As another server would see it: no local runner, so it polls the checkpoint.
    let elsewhere = ProjectionStore::new(log.pool.clone(), LocalRunners::default());
    wait_for_head(&log, &projections, Duration::from_secs(10)).await;

    for store in [&projections, &elsewhere] {
        let position = log.append_facts("s-wait", 1).await;
        let started = Instant::now();
        let reached = store
            .wait_for(NAME, position, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
        assert!(reached >= position);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited {:?}",
            started.elapsed()
        );
    }

    let head = log.head().await;
    let started = Instant::now();
    let outcome = elsewhere
        .wait_for(
            NAME,
            head + 1000,
            Instant::now() + Duration::from_millis(200),
        )
        .await;
    let waited = started.elapsed();
    match outcome {
        Err(WaitError::TimedOut { position }) => assert_eq!(position, head),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    runner.stop().await;
    log.stop().await;
}

#[tokio::test]
async fn an_unreadable_event_stops_the_projection_before_it_rather_than_skip_it() {
    let log = Log::new().await;
    let before = log.append_facts("s-1", 3).await;
    let bad = log.append_unreadable("s-1").await;
    log.append_facts("s-1", 3).await;
    let runner = Runner::start::<Counts<1>>(&log, config());
    let projections = runner.projections(&log);

    let outcome = projections
        .wait_for(NAME, bad, Instant::now() + Duration::from_millis(500))
        .await;
    assert!(
        matches!(outcome, Err(WaitError::TimedOut { position }) if position == before),
        "{outcome:?}"
    );
    assert_consistent(&log, &projections).await;
    let statuses = projections.statuses().await.unwrap();
    assert_eq!(status_of(&statuses, NAME).lag, log.head().await - before);
    runner.stop().await;
    log.stop().await;
}

/// A runner's first start writes its checkpoint and creates the first generation's tables in
/// one transaction: while the tables cannot be made (another session holds the partitioned
/// table), no checkpoint is seen either, and once made, both are.
#[tokio::test]
async fn a_first_checkpoint_is_never_seen_without_its_generations_tables() {
    let log = Log::new().await;
    let mut blocker = log.pool.begin().await.expect("a transaction");
    sqlx::query("lock table projection_rows in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .expect("the partitioned table locked");
    let runner = Runner::start::<Counts<1>>(&log, config());
    let checkpoint = || async {
        sqlx::query_as::<_, (i64, bool)>(
            "select generation, \
             to_regclass(quote_ident(diplog_projection_table(projection, generation))) \
                 is not null \
             from projection_checkpoints where projection = $1",
        )
        .bind(NAME)
        .fetch_optional(&log.pool)
        .await
        .expect("the checkpoint read")
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(checkpoint().await, None, "a checkpoint before its tables");
    blocker.rollback().await.expect("the lock let go");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        if let Some(seen) = checkpoint().await {
            break seen;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen, (1, true), "the first generation, with its table");
    runner.stop().await;
    log.stop().await;
}

fn status_of<'s>(statuses: &'s [ProjectionStatus], name: &str) -> &'s ProjectionStatus {
    statuses
        .iter()
        .find(|status| status.name == name)
        .unwrap_or_else(|| panic!("no status of {name}: {statuses:?}"))
}

/// The status lists every projection this version knows, whether or not its runner has
/// committed a checkpoint yet (a runner's first commit makes its checkpoint and tables
/// together, so they do not all show up at once): one without shows nothing done yet.
#[tokio::test]
async fn the_status_lists_every_projection_known_with_or_without_a_checkpoint() {
    let log = Log::new().await;
    let head = log.append_facts("s-1", 3).await;
    let projections = ProjectionStore::new(log.pool.clone(), LocalRunners::default());
    let statuses = projections.statuses().await.expect("statuses");
    let names: Vec<&str> = statuses.iter().map(|status| status.name.as_str()).collect();
    let mut known = NAMES.to_vec();
    known.sort_unstable();
    assert_eq!(names, known, "every projection known, by name");
    for status in &statuses {
        assert_eq!(
            (
                status.version,
                status.generation,
                status.position,
                status.lag
            ),
            (0, 0, 0, head),
            "{status:?}"
        );
        assert_eq!(status.updated_at, None, "{status:?}");
        assert_eq!(status.holder, Holder::Nobody, "{status:?}");
    }

    let runner = Runner::start::<Counts<1>>(&log, config());
    wait_for_head(&log, &projections, Duration::from_secs(10)).await;
    let statuses = projections.statuses().await.expect("statuses");
    assert_eq!(statuses.len(), NAMES.len() + 1);
    let started = status_of(&statuses, NAME);
    assert_eq!((started.generation, started.position), (1, head));
    assert!(started.updated_at.is_some());
    runner.stop().await;
    log.stop().await;
}

/// Rows wanted by a key prefix (an event's search documents, `Want::Prefix`) are exactly those
/// whose keys start with it, byte by byte: the runner's lookup finds the live ones through a
/// range of the primary key, and an as-of read the versions standing at its commit, live or
/// in the history.
#[tokio::test]
async fn rows_wanted_by_a_key_prefix_are_those_whose_keys_start_with_it() {
    let log = Log::new().await;
    sqlx::query(
        "insert into projection_checkpoints \
             (projection, version, generation, position, versions_every, updated_at) \
         values ($1, 1, 1, 20, 10, now())",
    )
    .bind(NAME)
    .execute(&log.pool)
    .await
    .expect("a checkpoint");
    create_generation(&log.pool, 1).await;
    let table = generation_table(1);
    // (key, since): as of 10, "doc:1:b" is its older version in the history.
    let live = [
        ("doc:1:a", 5),
        ("doc:1:b", 12),
        ("doc:1:é", 3),
        ("doc:1:\u{10FFFF}", 4),
        ("doc:1", 1),
        ("doc:1;", 1),
        ("doc:10:a", 1),
        ("doc:2:a", 1),
    ];
    for (key, since) in live {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into \"{table}\" \
                 (projection, generation, key, data, actors, states, status, sort_key, since) \
             values ($1, 1, $2, json_build_object('version', 'live'), '{{}}', '{{}}', 'doc', $2, $3)"
        )))
        .bind(NAME)
        .bind(key)
        .bind(since)
        .execute(&log.pool)
        .await
        .expect("a row");
    }
    // Replaced at 12 (standing as of 10), and removed at 8 (not standing).
    for (key, since, until) in [("doc:1:b", 3, 12), ("doc:1:c", 2, 8), ("doc:10:b", 2, 12)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into \"projection_history_{NAME}_1\" \
                 (key, since, until, data, actors, states, status, sort_key) \
             values ($1, $2, $3, json_build_object('version', 'old'), '{{}}', '{{}}', 'doc', $1)"
        )))
        .bind(key)
        .bind(since)
        .bind(until)
        .execute(&log.pool)
        .await
        .expect("a replaced version");
    }
    // Other events' documents, so that the plan is the one a large generation gets.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "insert into \"{table}\" \
             (projection, generation, key, data, actors, states, status, sort_key, since) \
         select $1, 1, 'doc:' || i || '-other:a', '{{}}', '{{}}', '{{}}', 'doc', 'x', 1 \
         from generate_series(1, 5000) as i"
    )))
    .bind(NAME)
    .execute(&log.pool)
    .await
    .expect("other rows");
    sqlx::query("select diplog_projection_generation_finish($1, 1)")
        .bind(NAME)
        .execute(&log.pool)
        .await
        .expect("finish the generation");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("analyze \"{table}\"")))
        .execute(&log.pool)
        .await
        .expect("analyze");

    let documents = Wanted {
        prefixes: vec!["doc:1:".to_owned()],
        prefix_ends: vec![prefix_end("doc:1:").expect("an end")],
        ..Wanted::default()
    };
    let lookup = wanted_rows(NAME, 1, &documents).expect("the lookup");
    let found: Vec<(String, serde_json::Value)> =
        sqlx::query_as_with::<_, (String, sqlx::types::Json<serde_json::Value>), _>(
            sqlx::AssertSqlSafe(lookup.sql.clone()),
            lookup.arguments,
        )
        .fetch_all(&log.pool)
        .await
        .expect("the runner's lookup")
        .into_iter()
        .map(|(key, data)| (key, data.0))
        .collect();
    let mut keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["doc:1:a", "doc:1:b", "doc:1:é", "doc:1:\u{10FFFF}"]);

    let lookup = wanted_rows(NAME, 1, &documents).expect("the lookup");
    let plan: serde_json::Value = sqlx::query_scalar_with(
        sqlx::AssertSqlSafe(format!("explain (format json) {}", lookup.sql)),
        lookup.arguments,
    )
    .fetch_one(&log.pool)
    .await
    .expect("explain");
    assert!(
        plan_nodes(&plan).iter().any(|node| {
            node["Index Name"].as_str() == Some(&format!("{table}_pkey"))
                && node["Index Cond"].as_str().unwrap_or("").contains("key >=")
        }),
        "the prefix is a range of the primary key: {plan:#}"
    );

    let projections = ProjectionStore::new(log.pool.clone(), LocalRunners::default());
    let mut versions = projections
        .versions(NAME, 1, 15)
        .await
        .expect("versions")
        .expect("versions on record");
    assert_eq!(versions.at, 10);
    let mut standing: Vec<(String, String)> = versions
        .wanted(&documents)
        .await
        .expect("the rows as of 10")
        .into_iter()
        .map(|row| {
            let version = value_of(&row.data)["version"].as_str().unwrap().to_owned();
            (row.key, version)
        })
        .collect();
    standing.sort();
    let expected: Vec<(String, String)> = [
        ("doc:1:a", "live"),
        ("doc:1:b", "old"),
        ("doc:1:é", "live"),
        ("doc:1:\u{10FFFF}", "live"),
    ]
    .map(|(key, version)| (key.to_owned(), version.to_owned()))
    .to_vec();
    assert_eq!(standing, expected);
    drop(versions);
    log.stop().await;
}

/// A checkpoint whose generation has no tables (as a server from before the first start's one
/// transaction could leave between its two steps): an as-of read finds no versions on record
/// (and its caller replays the log), rather than failing on the missing tables.
#[tokio::test]
async fn no_versions_are_on_record_before_the_first_generations_tables_are_created() {
    let log = Log::new().await;
    sqlx::query(
        "insert into projection_checkpoints \
             (projection, version, generation, position, versions_every, updated_at) \
         values ('not-yet', 1, 1, 0, 4096, now())",
    )
    .execute(&log.pool)
    .await
    .expect("a checkpoint");
    let projections = ProjectionStore::new(log.pool.clone(), LocalRunners::default());
    let versions = projections
        .versions("not-yet", 1, 0)
        .await
        .expect("no error for a generation without tables");
    assert!(versions.is_none());
    log.stop().await;
}

#[tokio::test]
async fn the_log_reads_for_replays_answer_as_of_a_position_and_a_time() {
    let log = Log::new().await;
    log.append_facts("s-1", 600).await;
    log.append_plain("plain", 5).await;
    let middle = log.append_facts("s-2", 3).await;
    log.append_facts("s-3", 4).await;
    let projections = ProjectionStore::new(log.pool.clone(), LocalRunners::default());

    let facts: Vec<Fact> = projections.facts_until(middle).try_collect().await.unwrap();
    assert_eq!(facts.len(), 603, "paged past 512, plain events left out");
    assert!(facts.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(facts.last().unwrap().position, middle);
    let all: Vec<Fact> = projections
        .facts_until(u64::MAX >> 1)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 607);

    let times: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select position, recorded_at from events order by position")
            .fetch_all(&log.pool)
            .await
            .unwrap();
    for (position, recorded_at) in &times {
        let expected = times
            .iter()
            .filter(|(_, t)| t <= recorded_at)
            .map(|(p, _)| *p)
            .max()
            .unwrap();
        assert!(expected >= *position);
        assert_eq!(
            projections.position_at(*recorded_at).await.unwrap(),
            expected as u64
        );
    }
    let between: Vec<Fact> = projections
        .facts_between(600, middle)
        .try_collect()
        .await
        .unwrap();
    let streams: Vec<&str> = between.iter().map(|f| f.stream_id.as_str()).collect();
    assert_eq!(streams, ["s-2", "s-2", "s-2"], "from a snapshot at 600 on");
    let head = projections.head().await.unwrap();
    assert_eq!(head, log.head().await);
    assert_eq!(projections.recorded_at(1).await.unwrap(), Some(times[0].1));
    assert_eq!(projections.recorded_at(0).await.unwrap(), None);
    assert_eq!(projections.recorded_at(head + 1).await.unwrap(), None);

    let first = times[0].1;
    assert_eq!(
        projections
            .position_at(first - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        projections
            .position_at(chrono::Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap(),
        log.head().await
    );
    log.stop().await;
}

#[tokio::test]
async fn the_server_runs_every_projection_and_stops_them_on_shutdown() {
    let app = spawn_app().await;
    let projections = ProjectionStore::new(app.pool.clone(), LocalRunners::default());
    eventually(
        Duration::from_secs(5),
        "every projection is held",
        || async {
            let statuses = projections.statuses().await.unwrap();
            statuses.len() == NAMES.len()
                && statuses.iter().all(|s| s.holder == Holder::AnotherServer)
        },
    )
    .await;
    let mut names: Vec<String> = projections
        .statuses()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    let mut expected: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);

    // Appends reach every projection's checkpoint.
    app.append("plain", crate::helpers::Expect::Any, &[("Plain", "{}")])
        .await
        .unwrap();
    for name in NAMES {
        projections
            .wait_for(name, 1, Instant::now() + Duration::from_secs(5))
            .await
            .unwrap();
    }

    let db_options = app.db_options.clone();
    app.stop().await;
    let check = diplog::database::pool_options(2)
        .connect_with(db_options)
        .await
        .unwrap();
    let after = ProjectionStore::new(check.clone(), LocalRunners::default());
    eventually(Duration::from_secs(2), "the locks are released", || async {
        after
            .statuses()
            .await
            .unwrap()
            .iter()
            .all(|s| s.holder == Holder::Nobody)
    })
    .await;
    check.close().await;
}

/// What a batch read says, without its facts' contents.
fn summary(batch: &diplog::projections::engine::facts::Batch) -> (Vec<u64>, u64, u64, bool, bool) {
    (
        batch.facts.iter().map(|fact| fact.position).collect(),
        batch.bound,
        batch.reached,
        batch.full,
        batch.unreadable.is_some(),
    )
}

#[tokio::test]
async fn the_shared_fact_cache_answers_every_read_as_a_fresh_read_does_and_reads_a_block_once() {
    use diplog::projections::engine::facts::{BLOCK, FactCache};
    let log = Log::new().await;
    log.append_facts("s-1", 1000).await;
    log.append_plain("plain", 300).await;
    log.append_facts("s-2", 700).await;
    let bad = log.append_unreadable("s-2").await;
    log.append_plain("plain", 100).await;
    log.append_facts("s-3", 500).await;
    let head = log.head().await;
    // The unreadable event inside a complete block (the second), the head inside the third.
    assert!(
        BLOCK < bad && bad < 2 * BLOCK && head > 2 * BLOCK,
        "head {head}, bad {bad}"
    );
    let mut connection = log.pool.acquire().await.unwrap();

    let shared = FactCache::default();
    // Warm: the head becomes known, so complete blocks come from the cache from here on.
    shared
        .read(&mut connection, 0, None, 1)
        .await
        .expect("a first read");
    let afters = [
        0,
        1,
        500,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        2 * BLOCK - 1,
        bad - 1,
        bad,
        head - 3,
        head,
    ];
    let untils = [
        None,
        Some(BLOCK),
        Some(1500),
        Some(2 * BLOCK),
        Some(bad),
        Some(head),
    ];
    for after in afters {
        for until in untils {
            for limit in [1, 7, 1000, 5000] {
                // A fresh cache reads directly, as the runners always did.
                let fresh = FactCache::default()
                    .read(&mut connection, after, until, limit)
                    .await
                    .expect("a fresh read");
                let cached = shared
                    .read(&mut connection, after, until, limit)
                    .await
                    .expect("a cached read");
                assert_eq!(
                    summary(&cached),
                    summary(&fresh),
                    "after {after}, until {until:?}, limit {limit}"
                );
                let facts_equal = cached
                    .facts
                    .iter()
                    .zip(&fresh.facts)
                    .all(|(a, b)| **a == **b);
                assert!(facts_equal, "after {after}, until {until:?}, limit {limit}");
            }
        }
    }
    // Blocks up to the last complete one (the head's block is never kept), each read once.
    assert_eq!(shared.blocks_read(), head / BLOCK);
    drop(connection);
    log.stop().await;
}

#[tokio::test]
async fn runners_following_the_head_read_each_new_stretch_of_the_tail_once_between_them() {
    use diplog::projections::engine::facts::{BLOCK, FactCache};
    let log = Log::new().await;
    log.append_facts("s-1", 300).await;
    log.append_plain("plain", 20).await;
    let head = log.head().await;
    // All of it in the first block, which is not complete: the tail.
    assert!(head < BLOCK, "head {head}");
    let mut connection = log.pool.acquire().await.unwrap();
    let fresh = |after: u64, limit: usize| {
        let pool = log.pool.clone();
        async move {
            let mut connection = pool.acquire().await.unwrap();
            FactCache::default()
                .read(&mut connection, after, None, limit)
                .await
                .expect("a fresh read")
        }
    };
    let same = |read: &diplog::projections::engine::facts::Batch,
                fresh: &diplog::projections::engine::facts::Batch,
                what: &str| {
        assert_eq!(summary(read), summary(fresh), "{what}");
        assert!(
            read.facts.iter().zip(&fresh.facts).all(|(a, b)| **a == **b),
            "{what}"
        );
    };

    // Seven runners at the same position, on connections of their own, all at once, after
    // the committed head was heard: one of them reads, the others take what it read.
    let shared = std::sync::Arc::new(FactCache::default());
    shared.note_head(head);
    let reads = futures::future::join_all((0..7).map(|_| {
        let (shared, pool) = (shared.clone(), log.pool.clone());
        async move {
            let mut connection = pool.acquire().await.unwrap();
            shared
                .read(&mut connection, 0, None, 1000)
                .await
                .expect("a shared read")
        }
    }))
    .await;
    let first = fresh(0, 1000).await;
    for read in &reads {
        same(read, &first, "at 0");
    }
    assert_eq!(shared.tail_reads(), 1);

    // The head moves on: the first runner reads the new stretch only, the others take it
    // from what is kept, wherever in it they stand, whatever their batch size.
    log.append_facts("s-2", 40).await;
    let moved = log.head().await;
    shared.note_head(moved);
    for (after, limit) in [(0, 1000), (0, 7), (150, 1000), (head, 1000), (head - 1, 3)] {
        let read = shared
            .read(&mut connection, after, None, limit)
            .await
            .expect("a shared read");
        same(
            &read,
            &fresh(after, limit).await,
            &format!("after {after}, limit {limit}"),
        );
    }
    assert_eq!(shared.tail_reads(), 2);

    // A runner at the head as it was heard asks the database nothing.
    let read = shared
        .read(&mut connection, moved, None, 1000)
        .await
        .expect("at the head");
    same(&read, &fresh(moved, 1000).await, "at the head");
    assert_eq!(shared.tail_reads(), 2);
    drop(connection);
    log.stop().await;
}

/// Text that COPY's text format must escape, or that an array literal must quote.
const AWKWARD: &str = "tab\t nl\n cr\r bs\\ q\" sq' {br,ce} \\N NULL \\. é 🌍";

/// Rows whose every text column holds `AWKWARD`: one per `position % 700`, so a batch both adds
/// rows and updates rows written by earlier ones.
#[derive(Debug, Default)]
struct Awkward {
    last: BTreeMap<String, u64>,
}

impl Awkward {
    fn key(n: u64) -> String {
        format!("k{n}{AWKWARD}")
    }
}

impl Model for Awkward {
    const NAME: &'static str = NAME;
    const VERSION: i32 = 1;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        let key = Self::key(fact.position % 700);
        self.last.insert(key.clone(), fact.position);
        vec![key]
    }

    fn row(&self, key: &str) -> Option<Row> {
        let last = self.last.get(key)?;
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(
                &json!({"last": last, "text": AWKWARD, "nested": [AWKWARD, {"k": AWKWARD}]}),
            )
            .unwrap(),
            actors: vec![AWKWARD.to_owned(), String::new(), "NULL".to_owned()],
            states: vec!["a,b".to_owned(), "{c}".to_owned()],
            status: format!("s{AWKWARD}"),
            sort_key: format!("{AWKWARD}{last:08}"),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.last.keys().filter_map(|key| self.row(key)).collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut last = BTreeMap::new();
        for row in rows {
            let data = value_of(&row.data);
            last.insert(row.key, data["last"].as_u64().ok_or("no last")?);
        }
        Ok(Self { last })
    }
}

/// The rows of a replay of the log up to `position`, in the order `load_rows` answers.
async fn awkward_rows_at(projections: &ProjectionStore, position: u64) -> Vec<Row> {
    let facts: Vec<Fact> = projections
        .facts_until(position)
        .try_collect()
        .await
        .unwrap();
    let mut model = Awkward::default();
    for fact in &facts {
        model.apply(fact);
    }
    let mut rows = model.rows();
    rows.sort_by(|a, b| (&a.sort_key, &a.key).cmp(&(&b.sort_key, &b.key)));
    rows
}

#[tokio::test]
async fn rows_written_in_bulk_come_back_exactly_whatever_their_text_holds() {
    let log = Log::new().await;
    log.append_facts("s-1", 2500).await;
    let runner = Runner::start::<Awkward>(&log, config());
    let projections = runner.projections(&log);
    let position = wait_for_head(&log, &projections, Duration::from_secs(20)).await;
    let (rows, at) = projections
        .load_rows(NAME, &RowFilter::default())
        .await
        .unwrap();
    assert_eq!(at, position);
    assert_eq!(rows.len(), 700);
    assert_eq!(
        rows,
        awkward_rows_at(&projections, position).await,
        "written by the live runner"
    );
    let (filtered, _) = projections
        .load_rows(
            NAME,
            &RowFilter {
                actor: Some(AWKWARD.to_owned()),
                states: vec!["{c}".to_owned()],
                status: vec![format!("s{AWKWARD}")],
                without_status: vec![format!("t{AWKWARD}")],
                keys: Vec::new(),
                at_path: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        filtered.len(),
        700,
        "the arrays and the status filter as written"
    );

    log.append_facts("s-2", 300).await;
    projections.request_rebuild(NAME).await.unwrap();
    wait_for_swap(&projections).await;
    let position = wait_for_head(&log, &projections, Duration::from_secs(20)).await;
    let (rows, _) = projections
        .load_rows(NAME, &RowFilter::default())
        .await
        .unwrap();
    assert_eq!(
        rows,
        awkward_rows_at(&projections, position).await,
        "written by the rebuild"
    );
    runner.stop().await;
    log.stop().await;
}
