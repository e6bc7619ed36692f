//! Live subscriptions over gRPC: catch-up then live under concurrent appends, checkpoints and
//! resuming, a consumer that does not read, filters, and a second server woken by NOTIFY.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use diplog::config::ServerConfig;
use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::{self, subscribe_request::From, subscription_message::Message};
use tonic::Code;

use crate::helpers::{
    Expect, TestApp, fresh_database, spawn_app, spawn_app_on, spawn_app_with, violated_fields,
};

/// A generous bound on any one wait: a failure shows as a timeout, never as a hang.
const PATIENCE: Duration = Duration::from_secs(30);

fn request(from: From) -> proto::SubscribeRequest {
    proto::SubscribeRequest {
        from: Some(from),
        ..Default::default()
    }
}

async fn subscribe(
    app: &TestApp,
    request: proto::SubscribeRequest,
) -> Result<tonic::Streaming<proto::SubscriptionMessage>, tonic::Status> {
    // A connection of its own, so one subscriber's flow control never touches another's.
    let mut client = app.new_client().await;
    Ok(client.subscribe(request).await?.into_inner())
}

async fn head(app: &TestApp) -> u64 {
    app.client
        .clone()
        .get_head(())
        .await
        .expect("get_head")
        .into_inner()
        .position as u64
}

/// What a subscriber saw, in order.
#[derive(Debug, Default)]
struct Seen {
    events: Vec<proto::RecordedEvent>,
    checkpoints: Vec<proto::Checkpoint>,
    /// The last position heard of, an event's or a checkpoint's: where to resume.
    last_position: u64,
}

impl Seen {
    fn positions(&self) -> Vec<u64> {
        self.events.iter().map(|e| e.position as u64).collect()
    }

    fn take(&mut self, message: proto::SubscriptionMessage) {
        match message.message.expect("a message") {
            Message::Event(event) => {
                self.last_position = event.position as u64;
                self.events.push(event);
            }
            Message::Checkpoint(checkpoint) => {
                assert!(
                    checkpoint.position as u64 >= self.last_position,
                    "a checkpoint went back: {checkpoint:?} after {}",
                    self.last_position
                );
                self.last_position = checkpoint.position as u64;
                self.checkpoints.push(checkpoint);
            }
        }
    }

    /// Reads until the subscriber has heard of `position`.
    async fn until(
        &mut self,
        stream: &mut tonic::Streaming<proto::SubscriptionMessage>,
        position: u64,
    ) {
        // One deadline for the lot: heartbeat checkpoints keep coming even if events stall.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.last_position < position {
            let message = tokio::time::timeout_at(deadline, stream.message())
                .await
                .unwrap_or_else(|_| panic!("nothing heard of position {position} in time"))
                .expect("a readable subscription")
                .expect("the subscription goes on");
            self.take(message);
        }
    }
}

fn assert_exactly(seen: &Seen, expected: impl IntoIterator<Item = u64>, who: &str) {
    let expected: Vec<u64> = expected.into_iter().collect();
    let positions = seen.positions();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{who}: positions out of order or repeated"
    );
    assert_eq!(
        positions.len(),
        expected.len(),
        "{who}: {} events delivered, {} expected",
        positions.len(),
        expected.len()
    );
    assert_eq!(
        positions, expected,
        "{who}: not exactly the expected events"
    );
}

/// Small pages and a tail that keeps only two batches: the catch-up crosses many pages and
/// live subscribers keep falling behind the tail and back onto the database.
fn strained() -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.subscriptions.page_size = 7;
    config.subscriptions.tail_batches = 2;
    config
}

async fn append_some(app: &TestApp, stream: &str, count: usize) {
    for i in 0..count {
        let data = format!(r#"{{"i":{i}}}"#);
        app.append(stream, Expect::Any, &[("Noted", &data)])
            .await
            .expect("append");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_then_live_under_concurrent_appends_delivers_every_event_once_in_order() {
    let app = spawn_app_with(fresh_database().await, strained()).await;
    append_some(&app, "before", 120).await;

    // Writers append on four connections while subscribers join at different points.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let client = app.client.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let events = (0..1 + i % 3)
                        .map(|_| crate::helpers::new_event("Noted", &format!(r#"{{"w":{w}}}"#)))
                        .collect();
                    let mut client = client.clone();
                    client
                        .append(crate::helpers::append_request(
                            &format!("writer-{w}"),
                            Expect::Any,
                            events,
                        ))
                        .await
                        .expect("append");
                }
            })
        })
        .collect();

    let mut from_start = subscribe(&app, request(From::Start(()))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut from_middle = subscribe(&app, request(From::AfterPosition(50)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut from_now = subscribe(&app, request(From::Now(()))).await.unwrap();
    // Read the first subscriber while the writers go on, so it switches to live under load.
    let mut start_seen = Seen::default();
    start_seen.until(&mut from_start, 120).await;

    for writer in writers {
        writer.await.expect("a writer");
    }
    let end = head(&app).await;
    assert_eq!(end, 120 + 4 * (20 * (1 + 2 + 3)), "every append landed");

    start_seen.until(&mut from_start, end).await;
    assert_exactly(&start_seen, 1..=end, "from the start");

    let mut middle_seen = Seen::default();
    middle_seen.until(&mut from_middle, end).await;
    assert_exactly(&middle_seen, 51..=end, "after position 50");

    let mut now_seen = Seen::default();
    now_seen.until(&mut from_now, end).await;
    let first = &now_seen.checkpoints[0];
    assert!(
        first.caught_up,
        "`now` begins with a caught-up checkpoint: {first:?}"
    );
    let began = first.position as u64;
    assert!(began >= 120, "`now` began at the head as it was ({began})");
    assert_exactly(&now_seen, began + 1..=end, "from now");

    for seen in [&start_seen, &middle_seen, &now_seen] {
        let caught_up = seen.checkpoints.iter().filter(|c| c.caught_up).count();
        assert_eq!(caught_up, 1, "one caught-up checkpoint per subscription");
    }
    app.stop().await;
}

/// A filtered catch-up reads each page's successor while it delivers the page: over many small
/// pages, with appends going on beside it, it delivers exactly the selected events, each once,
/// in order, and then goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_filtered_catch_up_over_many_pages_delivers_exactly_the_selected_events_in_order() {
    let app = spawn_app_with(fresh_database().await, strained()).await;
    let append_pairs = async |app: &TestApp, from: usize, count: usize| {
        for i in from..from + count {
            let data = format!(r#"{{"i":{i}}}"#);
            for stream in ["picked-1", "skipped-1"] {
                app.append(stream, Expect::Any, &[("Noted", &data)])
                    .await
                    .expect("append");
            }
        }
    };
    append_pairs(&app, 0, 150).await;

    let mut filtered = subscribe(
        &app,
        proto::SubscribeRequest {
            from: Some(From::Start(())),
            filter: Some(proto::SubscriptionFilter {
                stream_prefix: "picked".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Appends go on while it catches up (it is not read until they are done).
    append_pairs(&app, 150, 30).await;
    let end = head(&app).await;
    assert_eq!(end, 360, "every append landed");

    let log = app.read_all(crate::helpers::read_all_from(1)).await;
    let picked: Vec<u64> = log
        .iter()
        .filter(|e| e.stream_id.starts_with("picked"))
        .map(|e| e.position as u64)
        .collect();
    assert_eq!(picked.len(), 180);
    let mut seen = Seen::default();
    seen.until(&mut filtered, end).await;
    // Then it goes live: a caught-up checkpoint, and no event the filter leaves out.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !seen.checkpoints.iter().any(|c| c.caught_up) {
        let message = tokio::time::timeout_at(deadline, filtered.message())
            .await
            .expect("a caught-up checkpoint in time")
            .expect("a readable subscription")
            .expect("the subscription goes on");
        seen.take(message);
    }
    assert_exactly(&seen, picked, "filtered by stream prefix");
    app.stop().await;
}

#[tokio::test]
async fn a_subscriber_resumes_after_its_last_checkpoint_without_loss_or_repeat() {
    let app = spawn_app().await;
    // Sparse: one event in ten is selected; the others still advance the checkpoints.
    for i in 0..100 {
        let stream = if i % 10 == 9 { "wanted-a" } else { "other" };
        append_some(&app, stream, 1).await;
    }
    let filtered = |from| proto::SubscribeRequest {
        from: Some(from),
        filter: Some(proto::SubscriptionFilter {
            stream_prefix: "wanted-".into(),
            ..Default::default()
        }),
        checkpoint_every: 15,
        ..Default::default()
    };
    let mut stream = subscribe(&app, filtered(From::Start(()))).await.unwrap();
    let mut first = Seen::default();
    // Stop at the first checkpoint past position 40 that is not an event's.
    while !first
        .checkpoints
        .iter()
        .any(|c| c.position > 40 && !c.caught_up)
    {
        let message = stream.message().await.unwrap().unwrap();
        first.take(message);
    }
    drop(stream);
    let resume_after = first.last_position;
    assert!(
        first.positions().iter().all(|p| *p <= resume_after),
        "nothing past the checkpoint was delivered before it"
    );

    for _ in 0..5 {
        append_some(&app, "other", 3).await;
        append_some(&app, "wanted-b", 1).await;
    }
    let end = head(&app).await;
    let mut stream = subscribe(&app, filtered(From::AfterPosition(resume_after as i64)))
        .await
        .unwrap();
    let mut second = Seen::default();
    second.until(&mut stream, end).await;

    let all: Vec<u64> = first
        .positions()
        .into_iter()
        .chain(second.positions())
        .collect();
    let expected: Vec<u64> = (1..=100)
        .filter(|p| p % 10 == 0)
        .chain((1..=5).map(|k| 100 + 4 * k))
        .collect();
    assert_eq!(all, expected, "every wanted event once, across the resume");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_stops_reading_is_ended_with_resource_exhausted_and_resumes_without_loss()
{
    let mut config = ServerConfig::ephemeral();
    config.subscriptions.buffer = 8;
    config.subscriptions.stall_ms = 300;
    let app = spawn_app_with(fresh_database().await, config).await;

    let mut stream = subscribe(&app, request(From::Now(()))).await.unwrap();
    let mut seen = Seen::default();
    seen.until(&mut stream, 0).await;
    let caught_up = stream.message().await.unwrap().unwrap();
    seen.take(caught_up);

    // 48 MiB in all: more than the HTTP/2 windows and socket buffers can hide, so the
    // server's queue for this subscriber fills while it does not read.
    let payload = format!(r#"{{"filler":"{}"}}"#, "x".repeat(256 * 1024));
    let appended = 192;
    for _ in 0..appended / 4 {
        let events = (0..4)
            .map(|_| crate::helpers::new_event("Bulky", &payload))
            .collect();
        app.client
            .clone()
            .append(crate::helpers::append_request("bulk", Expect::Any, events))
            .await
            .expect("append");
    }
    let end = head(&app).await;
    // Well past the stall limit, and meanwhile the server answers others as usual.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(head(&app).await, end, "the server stays responsive");

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let ended = loop {
        match tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("the subscription answers")
        {
            Ok(Some(message)) => seen.take(message),
            Ok(None) => panic!("the subscription ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(
        ended.message().contains("unread") && ended.message().contains("subscribe again"),
        "the status says what happened and what to do: {}",
        ended.message()
    );
    assert!(
        seen.last_position < end,
        "the subscriber was ended before it had everything (at {} of {end})",
        seen.last_position
    );

    let mut resumed = subscribe(
        &app,
        request(From::AfterPosition(seen.last_position as i64)),
    )
    .await
    .unwrap();
    seen.until(&mut resumed, end).await;
    assert_exactly(&seen, 1..=end, "across the forced end and the resume");
    app.stop().await;
}

#[tokio::test]
async fn filters_select_the_same_events_in_catch_up_and_live() {
    let app = spawn_app().await;
    let by_actor = |from| proto::SubscribeRequest {
        from: Some(from),
        filter: Some(proto::SubscriptionFilter {
            actor: "RUS".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let by_type_and_prefix = |from| proto::SubscribeRequest {
        from: Some(from),
        filter: Some(proto::SubscriptionFilter {
            event_types: vec!["CallHeld".into(), "AgreementStated".into()],
            stream_prefix: "occurrence-".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // Subscribed before the import: they see it live.
    let mut live_actor = subscribe(&app, by_actor(From::Start(()))).await.unwrap();
    let mut live_kinds = subscribe(&app, by_type_and_prefix(From::Start(())))
        .await
        .unwrap();

    let parsed = scenario::parse(scenario::FOUNDING_SCENARIO).expect("the founding scenario");
    import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("imported");
    append_some(&app, "occurrence-untyped", 2).await;
    let end = head(&app).await;

    // What the filters should select, decided here from the whole log.
    let log = app.read_all(crate::helpers::read_all_from(1)).await;
    let naming_rus: Vec<u64> = log
        .iter()
        .filter(|e| {
            e.metadata
                .as_ref()
                .and_then(|m| m.values.get("diplog.actors"))
                .is_some_and(|actors| actors.split(' ').any(|a| a == "RUS"))
        })
        .map(|e| e.position as u64)
        .collect();
    let calls_and_agreements: Vec<u64> = log
        .iter()
        .filter(|e| {
            ["CallHeld", "AgreementStated"].contains(&e.r#type.as_str())
                && e.stream_id.starts_with("occurrence-")
        })
        .map(|e| e.position as u64)
        .collect();
    assert!(naming_rus.len() > 5 && naming_rus.len() < log.len());
    assert!(calls_and_agreements.len() >= 3);

    // Subscribed after the import: they see it in the catch-up.
    let mut caught_actor = subscribe(&app, by_actor(From::Start(()))).await.unwrap();
    let mut caught_kinds = subscribe(&app, by_type_and_prefix(From::Start(())))
        .await
        .unwrap();
    for (stream, expected, who) in [
        (&mut live_actor, &naming_rus, "actor, live"),
        (&mut caught_actor, &naming_rus, "actor, catch-up"),
        (
            &mut live_kinds,
            &calls_and_agreements,
            "types and prefix, live",
        ),
        (
            &mut caught_kinds,
            &calls_and_agreements,
            "types and prefix, catch-up",
        ),
    ] {
        let mut seen = Seen::default();
        seen.until(stream, end).await;
        assert_exactly(&seen, expected.iter().copied(), who);
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    append_some(&app, "s", 3).await;
    let cases = [
        (
            request(From::AfterPosition(-1)),
            Code::InvalidArgument,
            "after_position",
        ),
        (
            request(From::AfterPosition(4)),
            Code::OutOfRange,
            "after_position",
        ),
        (
            proto::SubscribeRequest {
                filter: Some(proto::SubscriptionFilter {
                    event_types: vec!["has space".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            Code::InvalidArgument,
            "filter.event_types[0]",
        ),
        (
            proto::SubscribeRequest {
                filter: Some(proto::SubscriptionFilter {
                    actor: "Not An Actor".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Code::InvalidArgument,
            "filter.actor",
        ),
        (
            proto::SubscribeRequest {
                checkpoint_interval_ms: 5,
                ..Default::default()
            },
            Code::InvalidArgument,
            "checkpoint_interval_ms",
        ),
    ];
    for (request, code, field) in cases {
        let status = subscribe(&app, request.clone()).await.expect_err("refused");
        assert_eq!(status.code(), code, "{request:?}: {status:?}");
        assert_eq!(
            violated_fields(&status),
            vec![field.to_owned()],
            "{status:?}"
        );
    }
    // A position at the head is fine: nothing yet, then live.
    let mut at_head = subscribe(&app, request(From::AfterPosition(3)))
        .await
        .unwrap();
    let first = at_head.message().await.unwrap().unwrap();
    assert!(matches!(
        first.message,
        Some(Message::Checkpoint(proto::Checkpoint {
            position: 3,
            caught_up: true
        }))
    ));
    app.stop().await;
}

#[tokio::test]
async fn an_idle_subscription_gets_heartbeat_checkpoints() {
    let app = spawn_app().await;
    append_some(&app, "s", 2).await;
    let mut stream = subscribe(
        &app,
        proto::SubscribeRequest {
            from: Some(From::Start(())),
            checkpoint_interval_ms: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut seen = Seen::default();
    seen.until(&mut stream, 2).await;
    let started = Instant::now();
    while seen.checkpoints.len() < 4 {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a heartbeat in time")
            .unwrap()
            .unwrap();
        seen.take(message);
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "three heartbeats 100 ms apart came in {took:?}"
    );
    assert!(seen.checkpoints.iter().all(|c| c.position == 2));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_on_another_server_is_woken_by_notify() {
    let database = fresh_database().await;
    let writer = spawn_app_on(database.clone()).await;
    let reader = spawn_app_on(database).await;
    let mut stream = subscribe(&reader, request(From::Now(()))).await.unwrap();
    let mut seen = Seen::default();
    seen.take(stream.message().await.unwrap().unwrap());

    let mut latencies = Vec::new();
    for i in 1..=5u64 {
        let sent = Instant::now();
        append_some(&writer, "elsewhere", 1).await;
        seen.until(&mut stream, i).await;
        latencies.push(sent.elapsed());
    }
    assert_exactly(&seen, 1..=5, "appends through the other server");
    latencies.sort();
    eprintln!("append on one server -> event on another's subscriber: {latencies:?}");
    // Only NOTIFY wakes the reader's subscriptions (nothing there polls the log): a missing
    // wake-up would have failed `until` above.
    let positions: BTreeSet<u64> = seen.positions().into_iter().collect();
    assert_eq!(positions.len(), 5);
    reader.stop().await;
    writer.stop().await;
}

#[tokio::test]
async fn shutdown_ends_a_subscription_with_unavailable() {
    let app = spawn_app().await;
    let mut stream = subscribe(&app, request(From::Now(()))).await.unwrap();
    stream.message().await.unwrap().unwrap();
    let stopping = tokio::spawn(app.stop());
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the subscription ends with the server");
    match ended {
        Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        Ok(message) => panic!("expected UNAVAILABLE, got {message:?}"),
    }
    stopping.await.expect("the server stops cleanly");
}

#[tokio::test]
async fn diplog_subscribe_prints_events_as_they_commit() {
    let app = spawn_app().await;
    append_some(&app, "old", 2).await;
    append_some(&app, "wanted", 1).await;
    let (mut child, mut lines) = crate::helpers::diplog([
        "subscribe",
        "--server",
        &app.server_url(),
        "--after",
        "1",
        "--prefix",
        "wanted",
        "--checkpoints",
    ])
    .spawn();
    let mut next = async || -> serde_json::Value {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line in time")
            .expect("readable output")
            .expect("the subscription goes on");
        serde_json::from_str(&line).expect("a JSON line")
    };
    let first = next().await;
    assert_eq!(
        (first["position"].as_i64(), first["stream_id"].as_str()),
        (Some(3), Some("wanted"))
    );
    let caught_up = next().await;
    assert_eq!(
        caught_up,
        serde_json::json!({"checkpoint": 3, "caught_up": true})
    );
    // Live: printed as it commits, not when the process ends.
    append_some(&app, "other", 1).await;
    append_some(&app, "wanted", 1).await;
    let live = next().await;
    assert_eq!(
        (live["position"].as_i64(), live["data"]["i"].as_i64()),
        (Some(5), Some(0))
    );
    child.kill().await.expect("stopped");
    app.stop().await;
}

/// `now` starts at the head as it was when the subscription began: its first message is the
/// caught-up checkpoint there, whatever commits meanwhile (those come after it, live).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn from_now_the_first_message_is_the_caught_up_checkpoint_even_under_writes() {
    let app = spawn_app().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, stop) = (app.client.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let events = vec![crate::helpers::new_event("Noted", "{}")];
                    let request =
                        crate::helpers::append_request(&format!("w-{w}"), Expect::Any, events);
                    client.clone().append(request).await.expect("append");
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for attempt in 0..40 {
        let mut stream = subscribe(&app, request(From::Now(()))).await.unwrap();
        let first = stream.message().await.unwrap().unwrap();
        let Some(Message::Checkpoint(checkpoint)) = first.message else {
            panic!("attempt {attempt}: the first message is not a checkpoint: {first:?}");
        };
        assert!(checkpoint.caught_up, "attempt {attempt}: {checkpoint:?}");
        // And what follows continues right after it.
        let mut seen = Seen::default();
        seen.take(proto::SubscriptionMessage {
            message: Some(Message::Checkpoint(checkpoint)),
        });
        let from = seen.last_position;
        seen.until(&mut stream, from + 5).await;
        let positions = seen.positions();
        assert_eq!(
            positions[..5],
            [from + 1, from + 2, from + 3, from + 4, from + 5]
        );
    }
    stop.cancel();
    for writer in writers {
        writer.await.unwrap();
    }
    app.stop().await;
}
