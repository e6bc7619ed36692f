//! Metrics in the Prometheus text format, served at `GET /metrics` on the HTTP port (a reader's
//! page, like the dashboard's). Counters and histograms are recorded where things happen,
//! through the `metrics` facade, into one recorder per process; gauges of state the database
//! holds (the head, each projection's position, the audit tree's size, the pool) are read when
//! the page is scraped. Names follow Prometheus' conventions: a `diplog_` prefix, `_total` on
//! counters, base units (`_seconds`, `_bytes`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Appends (one per `Append`, `AppendMany`, `Record`, `RecordMany` or import call that reached
/// the writer), by `outcome`: `written`, `replayed`, `wrong_expected_version`,
/// `event_id_reused`, `partial_retry`, `unavailable`, `shutting_down`, `database_error`.
pub const APPENDS: &str = "diplog_appends_total";
/// Events written (idempotent replays not counted).
pub const APPENDED_EVENTS: &str = "diplog_appended_events_total";
/// From an append's arrival at the writer's queue to its answer.
pub const APPEND_SECONDS: &str = "diplog_append_duration_seconds";
/// Events in each group the writer commits.
pub const GROUP_EVENTS: &str = "diplog_writer_group_events";
/// How long each group's write (and commit) took.
pub const GROUP_COMMIT_SECONDS: &str = "diplog_writer_group_commit_duration_seconds";
/// 1 when the last scrape could read the database's state, else 0 (the gauges below then
/// keep their last values).
pub const DATABASE_UP: &str = "diplog_database_up";
/// The last committed position.
pub const HEAD_POSITION: &str = "diplog_log_head_position";
/// Each projection's position, and how far behind the head it is, by `projection`.
pub const PROJECTION_POSITION: &str = "diplog_projection_position";
pub const PROJECTION_LAG: &str = "diplog_projection_lag_events";
/// Whether a rebuild of each projection is under way (1) or not (0), and the position its
/// build has reached (0 when none is), by `projection`.
pub const PROJECTION_REBUILDING: &str = "diplog_projection_rebuilding";
pub const PROJECTION_REBUILD_POSITION: &str = "diplog_projection_rebuild_position";
/// Events the audit tree holds, and positions committed but not yet hashed into it.
pub const TREE_SIZE: &str = "diplog_audit_tree_size";
pub const TREE_UNHASHED: &str = "diplog_audit_tree_unhashed_events";
/// Subscriptions open now, and those ended because their client did not read, by `reason`.
pub const SUBSCRIPTIONS_OPEN: &str = "diplog_subscriptions_open";
pub const SUBSCRIPTIONS_ENDED: &str = "diplog_subscriptions_ended_total";
/// Payload bytes sent by reads, by `rpc` (`ReadStream`, `ReadAll`, `ReadStreamBatches`,
/// `ReadAllBatches`, `ReadEvents`).
pub const READ_BYTES: &str = "diplog_read_bytes_total";
/// The database pool's connections, by `state` (`in_use`, `idle`), and its maximum.
pub const POOL_CONNECTIONS: &str = "diplog_db_pool_connections";
pub const POOL_MAX: &str = "diplog_db_pool_max_connections";
/// Requests refused by authentication or authorization, by `reason` (`missing`, `malformed`,
/// `unknown`, `expired`, `revoked`, `store_unavailable`, `permission_denied`).
pub const AUTH_FAILURES: &str = "diplog_auth_failures_total";
/// Streams refused because their client held `--max-streams-per-client` already.
pub const STREAM_LIMIT_REFUSALS: &str = "diplog_stream_limit_refusals_total";
/// As-of and on-date answers, by where they began (`from`): `versions` (the rows recorded as of
/// a commit, and a short replay on top), `kept` (the rows at that position were kept),
/// `snapshot` (a replay from kept rows before it) or `log` (a replay from the start).
pub const AS_OF_ANSWERS: &str = "diplog_as_of_answers_total";
/// Events the as-of and on-date replays read from the log (an on-date replay applies only
/// those about that day or earlier).
pub const AS_OF_REPLAYED_EVENTS: &str = "diplog_as_of_replayed_events_total";
/// Replays running now, and those waiting for a turn (`--as-of-replays`).
pub const AS_OF_REPLAYS_RUNNING: &str = "diplog_as_of_replays_running";
pub const AS_OF_REPLAYS_WAITING: &str = "diplog_as_of_replays_waiting";
/// Bytes the replays' kept rows hold (at most `--as-of-cache-mib`).
pub const AS_OF_KEPT_BYTES: &str = "diplog_as_of_kept_bytes";
/// Live rows the projections' lists and gets read, by how (`read`): `page` (PostgreSQL counted
/// them and sent one page) or `each` (every row passing the filter, as a derived status or a
/// get's key needs; one page of items kept).
pub const LIST_ROWS: &str = "diplog_projection_list_rows_total";

/// Latency buckets, in seconds: from 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Group sizes, in events: up to the writer's largest group.
const GROUP_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 5000.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use; every server in the process shares it (as
/// the tests' in-process servers do: their figures add up).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(GROUP_EVENTS.into()), GROUP_BUCKETS)
            })
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first (an embedding program's): its
        // recorder then gets the figures, and this page shows the gauges alone.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows gauges only");
        }
        describe();
        // The recorder buffers histogram samples until upkeep drains them into buckets: without
        // it a server nobody scrapes would hold every sample.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread for the metrics' upkeep");
        handle
    })
}

/// How often buffered histogram samples are drained into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(APPENDS, "Appends that reached the writer, by outcome.");
    describe_counter!(APPENDED_EVENTS, "Events written (replays not counted).");
    describe_histogram!(
        APPEND_SECONDS,
        Unit::Seconds,
        "From an append's arrival at the writer to its answer."
    );
    describe_histogram!(GROUP_EVENTS, "Events in each group the writer commits.");
    describe_histogram!(
        GROUP_COMMIT_SECONDS,
        Unit::Seconds,
        "How long each group's write and commit took."
    );
    describe_gauge!(
        DATABASE_UP,
        "1 when the last scrape could read the database."
    );
    describe_gauge!(HEAD_POSITION, "The last committed position.");
    describe_gauge!(PROJECTION_POSITION, "Each projection's position.");
    describe_gauge!(PROJECTION_LAG, "Events each projection is behind the head.");
    describe_gauge!(
        PROJECTION_REBUILDING,
        "1 while a rebuild of the projection is under way."
    );
    describe_gauge!(
        PROJECTION_REBUILD_POSITION,
        "The position a rebuild under way has reached (0 when none is)."
    );
    describe_gauge!(TREE_SIZE, "Events the audit tree holds.");
    describe_gauge!(TREE_UNHASHED, "Committed events not yet in the audit tree.");
    describe_gauge!(SUBSCRIPTIONS_OPEN, "Subscriptions open now.");
    describe_counter!(
        SUBSCRIPTIONS_ENDED,
        "Subscriptions ended by the server, by reason."
    );
    describe_counter!(
        READ_BYTES,
        Unit::Bytes,
        "Payload bytes sent by reads, by RPC."
    );
    describe_gauge!(POOL_CONNECTIONS, "Database pool connections, by state.");
    describe_gauge!(POOL_MAX, "The database pool's maximum connections.");
    describe_counter!(
        AUTH_FAILURES,
        "Requests refused by authentication, by reason."
    );
    describe_counter!(
        STREAM_LIMIT_REFUSALS,
        "Streams refused by --max-streams-per-client."
    );
    describe_counter!(
        AS_OF_ANSWERS,
        "As-of and on-date answers, by where they began."
    );
    describe_counter!(AS_OF_REPLAYED_EVENTS, "Events read by as-of replays.");
    describe_gauge!(AS_OF_REPLAYS_RUNNING, "As-of replays running now.");
    describe_gauge!(AS_OF_REPLAYS_WAITING, "As-of replays waiting for a turn.");
    describe_gauge!(
        AS_OF_KEPT_BYTES,
        Unit::Bytes,
        "Bytes held by the rows as-of replays kept."
    );
    describe_counter!(
        LIST_ROWS,
        "Live projection rows read by lists and gets, by how: a page or each row."
    );
}

/// A projection's gauges.
#[derive(Debug, Default)]
pub struct ProjectionGauges {
    pub name: String,
    pub position: u64,
    pub lag: u64,
    /// The position a rebuild under way has reached.
    pub rebuilding: Option<u64>,
}

/// State read from the database when the page is scraped.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub head: u64,
    pub projections: Vec<ProjectionGauges>,
    pub tree_size: u64,
    pub pool_size: u32,
    pub pool_idle: usize,
    pub pool_max: u32,
}

/// The page: `snapshot`'s gauges set (or the database marked down, without one), then
/// everything rendered.
pub fn render(snapshot: Option<&Snapshot>) -> String {
    let handle = handle();
    metrics::gauge!(DATABASE_UP).set(if snapshot.is_some() { 1.0 } else { 0.0 });
    if let Some(snapshot) = snapshot {
        set_gauges(snapshot);
    }
    handle.render()
}

fn set_gauges(snapshot: &Snapshot) {
    metrics::gauge!(HEAD_POSITION).set(snapshot.head as f64);
    for projection in &snapshot.projections {
        let name = projection.name.clone();
        metrics::gauge!(PROJECTION_POSITION, "projection" => name.clone())
            .set(projection.position as f64);
        metrics::gauge!(PROJECTION_LAG, "projection" => name.clone()).set(projection.lag as f64);
        metrics::gauge!(PROJECTION_REBUILDING, "projection" => name.clone()).set(
            if projection.rebuilding.is_some() {
                1.0
            } else {
                0.0
            },
        );
        metrics::gauge!(PROJECTION_REBUILD_POSITION, "projection" => name)
            .set(projection.rebuilding.unwrap_or(0) as f64);
    }
    metrics::gauge!(TREE_SIZE).set(snapshot.tree_size as f64);
    metrics::gauge!(TREE_UNHASHED).set(snapshot.head.saturating_sub(snapshot.tree_size) as f64);
    let idle = snapshot.pool_idle as f64;
    metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(idle);
    metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use")
        .set(f64::from(snapshot.pool_size) - idle);
    metrics::gauge!(POOL_MAX).set(f64::from(snapshot.pool_max));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuild_under_way_shows_in_the_gauges_and_none_as_zero() {
        let projection = |name: &str, rebuilding| ProjectionGauges {
            name: name.to_owned(),
            position: 40,
            lag: 2,
            rebuilding,
        };
        let page = render(Some(&Snapshot {
            head: 42,
            projections: vec![
                projection("test-rebuilt", Some(7)),
                projection("test-live", None),
            ],
            ..Snapshot::default()
        }));
        for line in [
            r#"diplog_projection_rebuilding{projection="test-rebuilt"} 1"#,
            r#"diplog_projection_rebuild_position{projection="test-rebuilt"} 7"#,
            r#"diplog_projection_rebuilding{projection="test-live"} 0"#,
            r#"diplog_projection_rebuild_position{projection="test-live"} 0"#,
            r#"diplog_projection_lag_events{projection="test-live"} 2"#,
        ] {
            assert!(page.lines().any(|l| l == line), "{line} in\n{page}");
        }
    }
}
