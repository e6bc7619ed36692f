//! The store driven directly on a real PostgreSQL, with two writers on one database as two
//! servers have: a group that reaches the database while another holds the log head is decided
//! against what that one committed; appends that find their ids already written (the unique
//! index, not a lookup, finds them); lone appends after a burst (the writer waits for callers
//! only while they come); reads fetched ahead across page boundaries.

use std::time::Duration;

use diplog::domain::{
    AppendBatch, Direction, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload,
    ReadAllQuery, StreamId,
};
use diplog::store::{AppendError, AppendOutcome, EventStore, WriterConfig, WriterHandle};
use futures::TryStreamExt;
use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::helpers::fresh_database;

/// Two stores (two writers, as two servers) on one fresh database.
struct Log {
    pool: PgPool,
    store: EventStore,
    other: EventStore,
    writers: Vec<WriterHandle>,
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
        let (other, other_writer) = EventStore::start(pool.clone(), WriterConfig::default())
            .await
            .expect("the other writer starts");
        Self {
            pool,
            store,
            other,
            writers: vec![writer, other_writer],
        }
    }

    /// Appends through `store` in a task of its own, so several can wait at once.
    fn spawn_append(
        store: &EventStore,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> JoinHandle<Result<AppendOutcome, AppendError>> {
        let store = store.clone();
        let batch = AppendBatch::new(
            StreamId::parse(stream).expect("a stream id"),
            expected,
            events,
        )
        .expect("a valid batch");
        tokio::spawn(async move { store.append(batch, "test").await })
    }

    /// Backends of this database waiting for a lock (the writer's, behind the held head).
    async fn lock_waiters(&self) -> i64 {
        sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&self.pool)
        .await
        .expect("pg_stat_activity read")
    }

    /// Waits up to ten seconds for `count` backends to wait for a lock; answers how many did.
    async fn await_lock_waiters(&self, count: i64) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting = self.lock_waiters().await;
            if waiting >= count || tokio::time::Instant::now() >= deadline {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn read_all(&self, query: ReadAllQuery) -> Vec<(i64, String, i64)> {
        self.store
            .read_all(query)
            .await
            .expect("the read starts")
            .map_ok(|e| (e.position, e.stream_id, e.stream_version))
            .try_collect()
            .await
            .expect("the read completes")
    }

    async fn stop(self) {
        drop((self.store, self.other));
        for writer in self.writers {
            writer.stop().await.expect("the writer stops");
        }
        self.pool.close().await;
    }
}

fn tick() -> NewEvent {
    tick_with(EventId::generate())
}

fn tick_with(id: EventId) -> NewEvent {
    NewEvent {
        id,
        event_type: EventType::parse("Tick").expect("a type"),
        data: Payload::parse("{}").expect("JSON"),
        metadata: Metadata {
            correlation_id: None,
            causation_id: None,
            values: Default::default(),
        },
    }
}

fn forward(from: u64, limit: Option<u64>) -> ReadAllQuery {
    ReadAllQuery {
        from_position: Some(from),
        direction: Direction::Forward,
        limit,
        event_types: Vec::new(),
        stream_prefix: None,
    }
}

/// Two groups at the database at once, one from each writer: the second reaches PostgreSQL
/// while the first waits for the (held) log head, and is decided against what the first
/// committed: an append that holds only after the first succeeds, one that the first made
/// stale fails, a retry of the first's events answers its positions, positions stay gapless.
#[tokio::test]
async fn a_group_waiting_behind_another_is_decided_against_what_it_committed() {
    let log = Log::new().await;
    let mut holder = log.pool.begin().await.expect("a transaction");
    sqlx::query("select position from log_head for update")
        .execute(&mut *holder)
        .await
        .expect("the head locked");

    let first_ids = [EventId::generate(), EventId::generate()];
    let first = Log::spawn_append(
        &log.store,
        "pact",
        ExpectedVersion::NoStream,
        first_ids.iter().map(|&id| tick_with(id)).collect(),
    );
    assert_eq!(log.await_lock_waiters(1).await, 1, "the first group waits");
    let other_writer = &log.other;
    let after = Log::spawn_append(
        other_writer,
        "pact",
        ExpectedVersion::Exact(2),
        vec![tick()],
    );
    let stale = Log::spawn_append(
        other_writer,
        "pact",
        ExpectedVersion::NoStream,
        vec![tick()],
    );
    let retry = Log::spawn_append(
        other_writer,
        "pact",
        ExpectedVersion::NoStream,
        first_ids.iter().map(|&id| tick_with(id)).collect(),
    );
    let other = Log::spawn_append(other_writer, "other", ExpectedVersion::Any, vec![tick()]);
    assert_eq!(
        log.await_lock_waiters(2).await,
        2,
        "the other writer's group went to the database while the first waited"
    );
    holder.rollback().await.expect("the head released");

    let first = first.await.unwrap().expect("the first append");
    let after = after
        .await
        .unwrap()
        .expect("the append that needs the first");
    let stale = stale.await.unwrap();
    let retry = retry.await.unwrap().expect("the retry");
    let other = other.await.unwrap().expect("the other stream's append");
    assert_eq!((first.positions, first.stream_version), (vec![1, 2], 2));
    assert_eq!(after.stream_version, 3);
    assert!(
        matches!(
            stale,
            Err(AppendError::WrongExpectedVersion { current: 2 | 3, .. })
        ),
        "{stale:?}"
    );
    assert!(retry.idempotent_replay);
    assert_eq!((retry.positions, retry.stream_version), (vec![1, 2], 2));
    let mut later = vec![after.positions[0], other.positions[0]];
    later.sort_unstable();
    assert_eq!(later, [3, 4]);
    let events = log.read_all(forward(1, None)).await;
    let pact: Vec<(i64, i64)> = events
        .iter()
        .filter(|(_, stream, _)| stream == "pact")
        .map(|&(position, _, version)| (position, version))
        .collect();
    assert_eq!(
        pact,
        [(1, 1), (2, 2), (after.positions[0] as i64, 3)],
        "{events:?}"
    );
    assert_eq!(events.len(), 4, "{events:?}");
    log.stop().await;
}

/// Many clients at once through both writers on few streams, with exact expected versions and
/// retries of what was just written: every acknowledged append reads back at its positions,
/// positions run 1..head without a hole, and each stream's versions follow its positions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contended_appends_through_two_writers_keep_the_log_gapless_and_versions_in_order() {
    let log = Log::new().await;
    let mut writers = Vec::new();
    for writer in 0..24 {
        let store = if writer % 2 == 0 {
            &log.store
        } else {
            &log.other
        }
        .clone();
        writers.push(tokio::spawn(async move {
            let stream = StreamId::parse(format!("pact-{}", writer % 3)).expect("a stream id");
            let mut acknowledged = Vec::new();
            let mut known = 0;
            for _ in 0..15 {
                let events = vec![tick()];
                let batch = AppendBatch::new(
                    stream.clone(),
                    ExpectedVersion::Exact(known),
                    events.clone(),
                )
                .expect("a batch");
                match store.append(batch, "test").await {
                    Ok(outcome) => {
                        known = outcome.stream_version;
                        // The same append again: a retry, answered with the same positions.
                        let again = AppendBatch::new(
                            stream.clone(),
                            ExpectedVersion::Exact(known - 1),
                            events,
                        )
                        .expect("a batch");
                        let replay = store.append(again, "test").await.expect("the retry");
                        assert!(replay.idempotent_replay);
                        assert_eq!(replay.positions, outcome.positions);
                        acknowledged.push((outcome.positions[0], stream.as_str().to_owned()));
                    }
                    Err(AppendError::WrongExpectedVersion { current, .. }) => known = current,
                    Err(error) => panic!("append failed: {error}"),
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }

    let events = log.read_all(forward(1, None)).await;
    let positions: Vec<i64> = events.iter().map(|e| e.0).collect();
    assert_eq!(positions, (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        acknowledged.len(),
        events.len(),
        "every event was acknowledged once"
    );
    for (position, stream) in &acknowledged {
        assert_eq!(&events[*position as usize - 1].1, stream);
    }
    for stream in ["pact-0", "pact-1", "pact-2"] {
        let versions: Vec<i64> = events
            .iter()
            .filter(|e| e.1 == stream)
            .map(|e| e.2)
            .collect();
        assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
    }
    log.stop().await;
}

/// A group waits for the callers the last one answered only while they come: after a burst of
/// sixteen concurrent appends (one group, or a few), appends that come alone, with one caller,
/// are each written and answered, in order and without gaps.
#[tokio::test]
async fn lone_appends_after_a_burst_are_written_without_waiting_for_the_burst() {
    let log = Log::new().await;
    let burst: Vec<_> = (0..16)
        .map(|i| {
            Log::spawn_append(
                &log.store,
                &format!("burst-{i}"),
                ExpectedVersion::NoStream,
                vec![tick()],
            )
        })
        .collect();
    for append in burst {
        append.await.unwrap().expect("an append of the burst");
    }
    for version in 0..3_u64 {
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        let lone = Log::spawn_append(&log.store, "lone", expected, vec![tick()])
            .await
            .unwrap()
            .expect("a lone append");
        assert_eq!(lone.positions, vec![17 + version]);
        assert_eq!(lone.stream_version, version + 1);
    }
    let positions: Vec<i64> = log
        .read_all(forward(1, None))
        .await
        .into_iter()
        .map(|(position, _, _)| position)
        .collect();
    assert_eq!(positions, (1..=19).collect::<Vec<_>>());
    log.stop().await;
}

/// Reads are fetched a page (512) ahead of the consumer: every boundary case still reads
/// exactly its range, in order: a limit of exactly two pages, a start mid-page, backward
/// across pages, and a read dropped after its first event gives its connections back.
#[tokio::test]
async fn reads_fetched_ahead_return_exactly_their_range_across_page_boundaries() {
    let log = Log::new().await;
    for _ in 0..3 {
        let appended = Log::spawn_append(
            &log.store,
            "ticks",
            ExpectedVersion::Any,
            (0..400).map(|_| tick()).collect(),
        );
        appended.await.unwrap().expect("appended");
    }

    let positions =
        |events: Vec<(i64, String, i64)>| -> Vec<i64> { events.into_iter().map(|e| e.0).collect() };
    assert_eq!(
        positions(log.read_all(forward(1, None)).await),
        (1..=1200).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(log.read_all(forward(1, Some(1024))).await),
        (1..=1024).collect::<Vec<_>>()
    );
    assert_eq!(
        positions(log.read_all(forward(300, Some(800))).await),
        (300..1100).collect::<Vec<_>>()
    );
    let backward = ReadAllQuery {
        from_position: Some(1100),
        direction: Direction::Backward,
        ..forward(1, Some(1050))
    };
    assert_eq!(
        positions(log.read_all(backward).await),
        (51..=1100).rev().collect::<Vec<_>>()
    );

    // Connections in use: the writers hold one each between groups.
    let in_use = |pool: &PgPool| pool.size() as usize - pool.num_idle();
    let held_by_writers = in_use(&log.pool);
    let mut dropped = log.store.read_all(forward(1, None)).await.expect("a read");
    assert_eq!(
        dropped.try_next().await.unwrap().map(|e| e.position),
        Some(1)
    );
    drop(dropped);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while in_use(&log.pool) > held_by_writers {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dropped read kept a connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log.stop().await;
}
