//! Reads of large events: a page of a read holds at most `PAGE_SIZE` rows and `PAGE_BYTES`
//! bytes, a read at most `1 + READ_AHEAD` pages, so readers that never read cannot make the
//! server hold the log in memory; and pages cut short by their bytes lose or repeat nothing,
//! in any direction, filtered or not.

use std::process::Command;
use std::time::{Duration, Instant};

use diplog::domain::limits::MAX_DATA_BYTES;
use diplog::domain::{EventType, LogFilter};
use diplog::proto::{self, Direction, subscribe_request::From, subscription_message::Message};
use diplog::store::{PAGE_BYTES, PAGE_SIZE, READ_AHEAD};
use serde_json::json;

use crate::helpers::{
    Expect, TestApp, append_request, database_url, import_founding, new_event, read_all_from,
    read_events, record_request, spawn_app, typed_event,
};

/// A JSON payload of exactly `bytes` bytes.
fn payload(bytes: usize, tag: usize) -> String {
    let head = format!(r#"{{"tag":{tag},"filler":""#);
    let filler = bytes - head.len() - 2;
    format!("{head}{}\"}}", "x".repeat(filler))
}

fn positions(events: &[proto::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

/// Events of 900,000 bytes: four fit in a page's `PAGE_BYTES`, five do not.
const BIG: usize = 900_000;
/// Rounds of (a big event in `big-a`, a small one in `small`, a big one in `big-b`).
const ROUNDS: usize = 12;

/// Appends the log of [`ROUNDS`]: big events interleaved with small ones.
async fn big_and_small(app: &TestApp) {
    for round in 0..ROUNDS {
        let small = format!(r#"{{"tag":{round}}}"#);
        for (stream, event_type, data) in [
            ("big-a", "Big", payload(BIG, round)),
            ("small", "Small", small),
            ("big-b", "Big", payload(BIG, round)),
        ] {
            let event = new_event(event_type, &data);
            app.client
                .clone()
                .append(append_request(stream, Expect::Any, vec![event]))
                .await
                .expect("appended");
        }
    }
}

/// What a page's budget counts of an event: its payload and its metadata, as text.
fn stored_bytes(event: &diplog::store::RecordedEvent) -> i64 {
    let metadata = serde_json::to_string(&event.metadata.0).expect("serializable");
    (event.data_text.len() + metadata.len()) as i64
}

#[tokio::test]
async fn a_page_stops_at_its_byte_budget_and_the_next_one_goes_on_after_its_last_row() {
    assert!(4 * BIG as i64 <= PAGE_BYTES && 5 * BIG as i64 > PAGE_BYTES);
    let app = spawn_app().await;
    big_and_small(&app).await;
    let head = (3 * ROUNDS) as u64;
    let everything = LogFilter::default();
    let mut after = 0;
    let mut seen = Vec::new();
    while after < head {
        let page = diplog::store::events_page(&app.pool, after, head, &everything, PAGE_SIZE)
            .await
            .expect("a page");
        let bytes: i64 = page.events.iter().map(stored_bytes).sum();
        assert!(bytes <= PAGE_BYTES, "a page of {bytes} bytes");
        let bigs = page.events.iter().filter(|e| e.event_type == "Big").count();
        if page.through < head {
            // Cut by its bytes, far short of its rows: the next big event would not fit.
            assert_eq!(bigs, 4, "{:?}", page.events.len());
            assert_eq!(page.through, page.events.last().unwrap().position as u64);
        }
        seen.extend(page.events.iter().map(|e| e.position));
        after = page.through;
    }
    assert_eq!(seen, (1..=head as i64).collect::<Vec<_>>());

    // A filtered page: only the big ones, cut the same way.
    let bigs_only = LogFilter {
        event_types: vec![EventType::parse("Big").unwrap()],
        ..LogFilter::default()
    };
    let page = diplog::store::events_page(&app.pool, 0, head, &bigs_only, PAGE_SIZE)
        .await
        .unwrap();
    assert_eq!(positions_of(&page.events), [1, 3, 4, 6]);
    assert_eq!(page.through, 6);
    app.stop().await;
}

fn positions_of(events: &[diplog::store::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

#[tokio::test]
async fn reads_across_byte_bounded_pages_return_every_event_once_in_order() {
    let app = spawn_app().await;
    big_and_small(&app).await;
    let head = (3 * ROUNDS) as i64;
    let all: Vec<i64> = (1..=head).collect();

    let forward = app.read_all(proto::ReadAllRequest::default()).await;
    assert_eq!(positions(&forward), all);
    let backward = app
        .read_all(proto::ReadAllRequest {
            direction: Direction::Backward as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(
        positions(&backward),
        all.iter().rev().copied().collect::<Vec<_>>()
    );
    // From the middle of a page, with a limit that ends in the middle of another.
    let middle = app
        .read_all(proto::ReadAllRequest {
            limit: 15,
            ..read_all_from(5)
        })
        .await;
    assert_eq!(positions(&middle), (5..20).collect::<Vec<_>>());
    let middle_backward = app
        .read_all(proto::ReadAllRequest {
            direction: Direction::Backward as i32,
            limit: 15,
            ..read_all_from(30)
        })
        .await;
    assert_eq!(
        positions(&middle_backward),
        (16..=30).rev().collect::<Vec<_>>()
    );
    // Filtered: the big events only, and one stream by prefix.
    let bigs = app
        .read_all(proto::ReadAllRequest {
            event_types: vec!["Big".into()],
            ..Default::default()
        })
        .await;
    let expected: Vec<i64> = all.iter().copied().filter(|p| p % 3 != 2).collect();
    assert_eq!(positions(&bigs), expected);
    let bigs_backward = app
        .read_all(proto::ReadAllRequest {
            event_types: vec!["Big".into()],
            direction: Direction::Backward as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(
        positions(&bigs_backward),
        expected.iter().rev().copied().collect::<Vec<_>>()
    );
    let stream_b = app
        .read_all(proto::ReadAllRequest {
            stream_prefix: "big-b".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        positions(&stream_b),
        all.iter()
            .copied()
            .filter(|p| p % 3 == 0)
            .collect::<Vec<_>>()
    );

    // One stream, forward and backward, and from a version.
    let versions = |events: &[proto::RecordedEvent]| -> Vec<i64> {
        events.iter().map(|e| e.stream_version).collect()
    };
    let stream = |direction: Direction, from_version: Option<i64>| proto::ReadStreamRequest {
        stream_id: "big-a".into(),
        direction: direction as i32,
        from_version,
        ..Default::default()
    };
    let rounds = ROUNDS as i64;
    let a = app
        .read_stream(stream(Direction::Forward, None))
        .await
        .unwrap();
    assert_eq!(versions(&a), (1..=rounds).collect::<Vec<_>>());
    assert!(a.iter().all(|e| e.data.len() == BIG));
    let a_back = app
        .read_stream(stream(Direction::Backward, None))
        .await
        .unwrap();
    assert_eq!(versions(&a_back), (1..=rounds).rev().collect::<Vec<_>>());
    let a_from = app
        .read_stream(stream(Direction::Forward, Some(3)))
        .await
        .unwrap();
    assert_eq!(versions(&a_from), (3..=rounds).collect::<Vec<_>>());

    // A subscription catching up from the start.
    let mut subscription = app
        .new_client()
        .await
        .subscribe(proto::SubscribeRequest {
            from: Some(From::Start(())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut delivered = Vec::new();
    loop {
        match subscription.message().await.unwrap().unwrap().message {
            Some(Message::Event(event)) => delivered.push(event.position),
            Some(Message::Checkpoint(checkpoint)) if checkpoint.caught_up => break,
            _ => {}
        }
    }
    assert_eq!(delivered, all);

    // The audit tree takes the log in byte-bounded rounds too, one after the other.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let size: i64 = sqlx::query_scalar("select size from tree_head")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .unwrap_or(0);
        if size == head {
            break;
        }
        assert!(Instant::now() < deadline, "the tree is at {size} of {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

/// A typed event that needs nothing else in the log, of about `bytes` bytes: an actor
/// registering under a long name.
fn big_actor(index: usize, bytes: usize) -> proto::RecordRequest {
    let actor = format!("person-{index}");
    let json = json!({
        "occurred": {"day": "2025-02-15"},
        "actor_registered": {"actor": {"id": actor, "kind": "PERSON", "name": "n".repeat(bytes)}}
    });
    record_request(&format!("actor-{actor}"), vec![typed_event(json)])
}

#[tokio::test]
async fn a_filtered_read_of_typed_events_goes_on_across_byte_bounded_pages() {
    let app = spawn_app().await;
    let channel = app.channel().await;
    let mut diplomacy = proto::diplomacy_client::DiplomacyClient::new(channel.clone());
    let mut recorded = Vec::new();
    for index in 0..10 {
        // Plain events between the typed ones: the filtered read skips them.
        app.append("noise", Expect::Any, &[("Other", "{}")])
            .await
            .unwrap();
        let response = diplomacy
            .record(big_actor(index, BIG))
            .await
            .expect("recorded")
            .into_inner();
        recorded.extend(response.positions.iter().map(|p| *p as u64));
    }
    let all = read_events(&channel, proto::ReadEventsRequest::default()).await;
    let read: Vec<u64> = all.iter().map(|r| r.position).collect();
    assert_eq!(read, recorded);
    let from_the_middle = read_events(
        &channel,
        proto::ReadEventsRequest {
            after_position: recorded[3],
            limit: 5,
            ..Default::default()
        },
    )
    .await;
    let read: Vec<u64> = from_the_middle.iter().map(|r| r.position).collect();
    assert_eq!(read, recorded[4..9]);
    app.stop().await;
}

/// Set in the process that [`readers_that_never_read_keep_the_servers_memory_bounded`] starts
/// to measure alone.
const MEASURE_ALONE: &str = "DIPLOG_TEST_READ_MEMORY_CHILD";

/// The server's memory is measured in a process of its own: `cargo test` runs the other tests
/// in this one at the same time, and their memory would count.
#[test]
fn readers_that_never_read_keep_the_servers_memory_bounded() {
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "read_memory::non_reading_readers_measured_alone",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MEASURE_ALONE, "1")
        .env("DATABASE_URL", database_url())
        // glibc's malloc then returns every large block to the system when it is freed, so
        // the resident memory follows what is held (not what the appends once needed).
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "the measurement failed");
    assert!(
        stdout.contains("1 passed"),
        "the measurement did not run: {stdout}"
    );
}

/// The resident memory of this process, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// The highest RSS once it has stopped growing for `quiet` (or at `limit`).
async fn settled_rss(quiet: Duration, limit: Duration) -> u64 {
    let started = Instant::now();
    let mut peak = rss_bytes();
    let mut peak_at = Instant::now();
    while peak_at.elapsed() < quiet && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss_bytes();
        // Growth of less than a MiB is noise, not a buffer filling.
        if now > peak + (1 << 20) {
            peak_at = Instant::now();
        }
        peak = peak.max(now);
    }
    peak
}

const MIB: u64 = 1 << 20;
/// Events of the largest payload the server takes: 48 MiB, which each read held whole before
/// pages were bounded in bytes.
const EVENTS: usize = 48;
const EVENTS_PER_APPEND: usize = 8;
const STREAMS: usize = 4;
/// Typed events of about the largest payload, for `ReadEvents`.
const TYPED: usize = 12;
const READ_ALLS: usize = 16;
const READ_STREAMS: usize = 4;
const READ_EVENTS: usize = 4;
const SUBSCRIBERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run alone in its own process by readers_that_never_read_keep_the_servers_memory_bounded"]
async fn non_reading_readers_measured_alone() {
    if std::env::var_os(MEASURE_ALONE).is_none() {
        eprintln!("skipped: run by readers_that_never_read_keep_the_servers_memory_bounded");
        return;
    }
    let started = Instant::now();
    let config = diplog::config::ServerConfig::ephemeral();
    let queue_bytes = config.subscriptions.buffer_bytes as u64;
    let app = crate::helpers::spawn_app_with(crate::helpers::fresh_database().await, config).await;
    let mut writer = app.new_client().await.max_encoding_message_size(64 << 20);
    for batch in 0..EVENTS / EVENTS_PER_APPEND {
        let events = (0..EVENTS_PER_APPEND)
            .map(|i| {
                new_event(
                    "Huge",
                    &payload(MAX_DATA_BYTES, batch * EVENTS_PER_APPEND + i),
                )
            })
            .collect();
        let stream = format!("huge-{}", batch % STREAMS);
        writer
            .append(append_request(&stream, Expect::Any, events))
            .await
            .expect("appended");
    }
    drop(writer);
    let channel = app.channel().await;
    let mut diplomacy = proto::diplomacy_client::DiplomacyClient::new(channel.clone());
    for index in 0..TYPED {
        diplomacy
            .record(big_actor(index, MAX_DATA_BYTES - 1000))
            .await
            .expect("recorded");
    }
    drop(diplomacy);
    // The audit tree builder and the projection runners read the log too: let them finish
    // before measuring.
    let head = (EVENTS + TYPED) as u64;
    let mut projections = proto::projections_client::ProjectionsClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tree: i64 = sqlx::query_scalar("select size from tree_head")
            .fetch_optional(&app.pool)
            .await
            .unwrap()
            .unwrap_or(0);
        let status = projections.get_status(()).await.unwrap().into_inner();
        if tree as u64 == head && status.projections.iter().all(|p| p.position >= head) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tree and the projections caught up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(projections);
    let before = settled_rss(Duration::from_secs(1), Duration::from_secs(5)).await;
    let appended = started.elapsed();

    // Readers on one connection that never take a message: each call is answered (its
    // headers), and the server fills what it buffers for them.
    let reader = app.new_client().await;
    let mut held = Vec::new();
    for _ in 0..READ_ALLS {
        let response = reader.clone().read_all(read_all_from(1)).await.unwrap();
        held.push(Box::new(response) as Box<dyn Send>);
    }
    for stream in 0..READ_STREAMS {
        let request = proto::ReadStreamRequest {
            stream_id: format!("huge-{}", stream % STREAMS),
            ..Default::default()
        };
        let response = reader.clone().read_stream(request).await.unwrap();
        held.push(Box::new(response));
    }
    let mut typed = proto::diplomacy_client::DiplomacyClient::new(app.channel().await);
    for _ in 0..READ_EVENTS {
        let response = typed
            .read_events(proto::ReadEventsRequest::default())
            .await
            .unwrap();
        held.push(Box::new(response));
    }
    for _ in 0..SUBSCRIBERS {
        let request = proto::SubscribeRequest {
            from: Some(From::Start(())),
            ..Default::default()
        };
        let response = reader.clone().subscribe(request).await.unwrap();
        held.push(Box::new(response));
    }
    let after = settled_rss(Duration::from_secs(2), Duration::from_secs(8)).await;

    // What the server may hold for each, by its constants:
    // - a read: the page being sent and `READ_AHEAD` more, each at most `PAGE_BYTES` (the
    //   largest event fits in one), and in the transport about two encoded messages (one
    //   queued in HTTP/2, one being encoded);
    // - a subscription (unfiltered, catching up): the pages of a read, its queue
    //   (`--subscription-buffer-bytes`), the transport;
    // - this process's clients: at most their connections' HTTP/2 receive windows (5 MiB
    //   each, two connections).
    // Plus 48 MiB for the allocator, the runtime and the database pool's buffers.
    let message = MAX_DATA_BYTES as u64 + 64 * 1024;
    let page = PAGE_BYTES as u64;
    let per_read = (1 + READ_AHEAD as u64) * page + 2 * message;
    let per_subscription = (1 + READ_AHEAD as u64) * page + queue_bytes + 2 * message;
    let reads = (READ_ALLS + READ_STREAMS + READ_EVENTS) as u64;
    let bound = reads * per_read + SUBSCRIBERS as u64 * per_subscription + 10 * MIB + 48 * MIB;
    let grown = after.saturating_sub(before);
    println!(
        "{EVENTS} events of {MAX_DATA_BYTES} bytes and {TYPED} typed ones; {READ_ALLS} ReadAll, \
         {READ_STREAMS} ReadStream, {READ_EVENTS} ReadEvents, {SUBSCRIBERS} Subscribe never \
         read: RSS {} -> {} MiB, grown {} MiB \
         (bound {} MiB: {reads} x {} + {SUBSCRIBERS} x {} + 58); appended in {appended:?}, \
         measured in {:?}",
        before / MIB,
        after / MIB,
        grown / MIB,
        bound / MIB,
        per_read / MIB,
        per_subscription / MIB,
        started.elapsed() - appended,
    );
    // Without the byte bound each read held the whole log in its first page: these readers
    // grew this process by 1317 MiB (against this bound of 389).
    assert!(
        grown < bound,
        "the server grew by {} MiB for readers that never read (bound {} MiB)",
        grown / MIB,
        bound / MIB
    );
    drop(held);
    app.stop().await;
}

#[tokio::test]
async fn projections_take_typed_events_across_byte_bounded_pages_live_and_as_of() {
    use std::collections::BTreeSet;
    let app = spawn_app().await;
    import_founding(&app).await;
    // Five channels, each established by an event quoting a source at a megabyte's length:
    // four fit in a page's bytes, the fifth starts the next page.
    let pairs = [
        ["rus.president", "ukr.president"],
        ["rus.foreign-minister", "usa.president"],
        ["ukr.president", "usa.secretary-of-state"],
        ["rus.president", "usa.secretary-of-state"],
        ["rus.foreign-minister", "ukr.president"],
    ];
    let channel = app.channel().await;
    let mut diplomacy = proto::diplomacy_client::DiplomacyClient::new(channel.clone());
    let mut last = 0;
    let mut expected = BTreeSet::new();
    for (index, parties) in pairs.into_iter().enumerate() {
        let json = json!({
            "occurred": {"day": "2025-03-10"},
            "sources": [{"source": "rus.mfa", "quotes": [{"text": "q".repeat(1_000_000)}]}],
            "channel_established": {"parties": parties}
        });
        let stream = format!("channel-big-{index}");
        let response = diplomacy
            .record(record_request(&stream, vec![typed_event(json)]))
            .await
            .expect("recorded")
            .into_inner();
        last = *response.positions.last().unwrap();
        expected.insert(stream);
    }
    let mut projections = proto::projections_client::ProjectionsClient::new(channel);
    let list = |as_of: Option<proto::read_options::AsOf>| proto::ListRequest {
        page_size: 1000,
        read: Some(proto::ReadOptions {
            min_position: if as_of.is_some() { 0 } else { last as u64 },
            as_of,
            ..Default::default()
        }),
        ..Default::default()
    };
    // The runner, live, and a replay of the log as of the last of them.
    for request in [
        list(None),
        list(Some(proto::read_options::AsOf::AsOfPosition(last as u64))),
    ] {
        let channels = projections
            .list_channels(request)
            .await
            .expect("the channels")
            .into_inner()
            .channels;
        let streams: BTreeSet<String> = channels
            .into_iter()
            .map(|c| c.stream_id)
            .filter(|s| s.starts_with("channel-big-"))
            .collect();
        assert_eq!(streams, expected);
    }
    app.stop().await;
}
