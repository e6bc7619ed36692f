//! Batched reads (`ReadAllBatches`, `ReadStreamBatches`): the same events in the same order
//! as the one-event reads, many per message, each message within its byte bound (an event
//! larger than the bound alone), resumable from a position, bad bounds refused by name.

use diplog::proto::{self, Direction};
use prost::Message;
use tonic::Code;

use crate::helpers::{Expect, TestApp, append_request, spawn_app, violated_fields};

/// An event whose payload is `payload_bytes` of JSON text, with metadata, so every field of
/// a recorded event is compared.
fn sized_event(event_type: &str, payload_bytes: usize) -> proto::NewEvent {
    proto::NewEvent {
        id: uuid::Uuid::new_v4().to_string(),
        r#type: event_type.to_owned(),
        // Spaces kept as written: the payload comes back as stored, not re-serialized.
        data: format!("{{ \"x\": \"{}\" }}", "y".repeat(payload_bytes - 11)),
        metadata: Some(proto::Metadata {
            correlation_id: uuid::Uuid::new_v4().to_string(),
            causation_id: String::new(),
            values: [("source".to_owned(), "mid.ru".to_owned())].into(),
        }),
    }
}

async fn append_sized(app: &TestApp, stream: &str, events: Vec<proto::NewEvent>) {
    app.client
        .clone()
        .append(append_request(stream, Expect::Any, events))
        .await
        .expect("appended");
}

async fn all_batches(
    app: &TestApp,
    request: proto::ReadAllBatchesRequest,
) -> Result<Vec<proto::EventBatch>, tonic::Status> {
    let stream = app.client.clone().read_all_batches(request).await?;
    every_batch(stream.into_inner()).await
}

async fn stream_batches(
    app: &TestApp,
    request: proto::ReadStreamBatchesRequest,
) -> Result<Vec<proto::EventBatch>, tonic::Status> {
    let stream = app.client.clone().read_stream_batches(request).await?;
    every_batch(stream.into_inner()).await
}

/// Every batch of a batched read, to its end.
async fn every_batch(
    mut stream: tonic::Streaming<proto::EventBatch>,
) -> Result<Vec<proto::EventBatch>, tonic::Status> {
    let mut batches = Vec::new();
    while let Some(batch) = stream.message().await? {
        batches.push(batch);
    }
    Ok(batches)
}

fn flatten(batches: Vec<proto::EventBatch>) -> Vec<proto::RecordedEvent> {
    batches.into_iter().flat_map(|b| b.events).collect()
}

fn positions(events: &[proto::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

fn batched_all(read: proto::ReadAllRequest, bytes: Option<u32>) -> proto::ReadAllBatchesRequest {
    proto::ReadAllBatchesRequest {
        read: Some(read),
        max_batch_bytes: bytes,
    }
}

fn batched_stream(
    read: proto::ReadStreamRequest,
    bytes: Option<u32>,
) -> proto::ReadStreamBatchesRequest {
    proto::ReadStreamBatchesRequest {
        read: Some(read),
        max_batch_bytes: bytes,
    }
}

/// Every batch within `bound` unless it holds one event; none empty.
fn assert_bounded(batches: &[proto::EventBatch], bound: usize) {
    for batch in batches {
        assert!(!batch.events.is_empty(), "an empty batch");
        assert!(
            batch.events.len() == 1 || batch.encoded_len() <= bound,
            "a batch of {} events and {} bytes, over {bound}",
            batch.events.len(),
            batch.encoded_len()
        );
    }
}

/// Asserts that `batches`, a batched read of `read` bounded by `bytes` (1 MiB if `None`), are
/// within the bound and carry exactly the events of the one-event read, `one_by_one`.
fn assert_batched_as_one_by_one(
    batches: Vec<proto::EventBatch>,
    bytes: Option<u32>,
    one_by_one: &[proto::RecordedEvent],
    read: &impl std::fmt::Debug,
) {
    assert_bounded(&batches, bytes.map_or(1 << 20, |b| b as usize));
    assert_eq!(
        flatten(batches),
        one_by_one,
        "{read:?} in batches of {bytes:?}"
    );
}

/// 1,300 events over three streams (more than two pages of 512), of several sizes and types:
/// every read the one-event RPCs answer comes back the same, event for event, in batches.
#[tokio::test]
async fn batches_carry_exactly_the_events_of_the_one_event_reads_in_order() {
    let app = spawn_app().await;
    for round in 0..13 {
        for stream in ["call-1", "call-2", "channel-1"] {
            let events = (0..100 / 3 + 1)
                .map(|i| {
                    let kind = if i % 5 == 0 { "CallHeld" } else { "Noted" };
                    sized_event(kind, 20 + (round * 37 + i * 11) % 700)
                })
                .collect();
            append_sized(&app, stream, events).await;
        }
    }
    let reads = [
        proto::ReadAllRequest::default(),
        proto::ReadAllRequest {
            from_position: Some(77),
            limit: 900,
            ..Default::default()
        },
        proto::ReadAllRequest {
            direction: Direction::Backward as i32,
            ..Default::default()
        },
        proto::ReadAllRequest {
            direction: Direction::Backward as i32,
            from_position: Some(1000),
            limit: 600,
            ..Default::default()
        },
        proto::ReadAllRequest {
            event_types: vec!["CallHeld".into()],
            ..Default::default()
        },
        proto::ReadAllRequest {
            stream_prefix: "call-".into(),
            from_position: Some(10),
            ..Default::default()
        },
    ];
    for read in reads {
        let one_by_one = app.read_all(read.clone()).await;
        assert!(!one_by_one.is_empty(), "{read:?}");
        for bytes in [None, Some(1), Some(2000), Some(64 << 10)] {
            let batches = all_batches(&app, batched_all(read.clone(), bytes))
                .await
                .unwrap();
            assert_batched_as_one_by_one(batches, bytes, &one_by_one, &read);
        }
    }
    let stream_reads = [
        proto::ReadStreamRequest {
            stream_id: "call-2".into(),
            ..Default::default()
        },
        proto::ReadStreamRequest {
            stream_id: "call-2".into(),
            from_version: Some(40),
            limit: 300,
            ..Default::default()
        },
        proto::ReadStreamRequest {
            stream_id: "channel-1".into(),
            direction: Direction::Backward as i32,
            ..Default::default()
        },
    ];
    for read in stream_reads {
        let one_by_one = app.read_stream(read.clone()).await.unwrap();
        for bytes in [None, Some(1), Some(3000)] {
            let batches = stream_batches(&app, batched_stream(read.clone(), bytes))
                .await
                .unwrap();
            assert_batched_as_one_by_one(batches, bytes, &one_by_one, &read);
        }
    }
    app.stop().await;
}

/// Small events share batches up to the bound; an event larger than the bound comes alone;
/// the default bound (1 MiB) holds two events of 400 KiB and not three, and an event of the
/// largest payload (1 MiB, so over 1 MiB encoded) still comes, alone.
#[tokio::test]
async fn batches_honour_the_byte_bound_and_a_larger_event_comes_alone() {
    let app = spawn_app().await;
    let mut events: Vec<_> = (0..30).map(|_| sized_event("Small", 300)).collect();
    events.insert(10, sized_event("Large", 5000));
    append_sized(&app, "mixed", events).await;

    let batches = all_batches(&app, batched_all(Default::default(), Some(1024)))
        .await
        .unwrap();
    assert_bounded(&batches, 1024);
    assert!(batches.iter().any(|b| b.events.len() > 1), "{batches:?}");
    let large = batches
        .iter()
        .find(|b| b.events.iter().any(|e| e.r#type == "Large"))
        .unwrap();
    assert_eq!(large.events.len(), 1);
    assert_eq!(flatten(batches).len(), 31);

    append_sized(
        &app,
        "big",
        (0..6).map(|_| sized_event("Big", 400 << 10)).collect(),
    )
    .await;
    append_sized(&app, "big", vec![sized_event("Largest", 1 << 20)]).await;
    let big = stream_batches(
        &app,
        batched_stream(
            proto::ReadStreamRequest {
                stream_id: "big".into(),
                ..Default::default()
            },
            None,
        ),
    )
    .await
    .unwrap();
    assert_bounded(&big, 1 << 20);
    let sizes: Vec<usize> = big.iter().map(|b| b.events.len()).collect();
    assert_eq!(sizes, [2, 2, 2, 1]);
    assert!(big[3].encoded_len() > 1 << 20);
    assert_eq!(big[3].events[0].data.len(), 1 << 20);
    app.stop().await;
}

/// A read that broke off goes on from the position (or version) after its last event: the
/// two parts together are the whole read.
#[tokio::test]
async fn a_batched_read_resumes_after_the_last_event_received() {
    let app = spawn_app().await;
    append_sized(
        &app,
        "ticks",
        (0..700).map(|_| sized_event("Tick", 100)).collect(),
    )
    .await;
    let whole = app.read_all(Default::default()).await;

    let mut first = app
        .client
        .clone()
        .read_all_batches(batched_all(Default::default(), Some(4096)))
        .await
        .unwrap()
        .into_inner();
    let mut received = first.message().await.unwrap().unwrap().events;
    received.extend(first.message().await.unwrap().unwrap().events);
    drop(first);
    let last = received.last().unwrap().position;
    assert!(last < 700);
    let rest = all_batches(
        &app,
        batched_all(
            proto::ReadAllRequest {
                from_position: Some(last + 1),
                ..Default::default()
            },
            None,
        ),
    )
    .await
    .unwrap();
    received.extend(flatten(rest));
    assert_eq!(received, whole);

    let rest_of_stream = flatten(
        stream_batches(
            &app,
            batched_stream(
                proto::ReadStreamRequest {
                    stream_id: "ticks".into(),
                    from_version: Some(651),
                    ..Default::default()
                },
                Some(1),
            ),
        )
        .await
        .unwrap(),
    );
    assert_eq!(positions(&rest_of_stream), (651..=700).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn bad_batched_reads_are_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    append_sized(&app, "s", vec![sized_event("Noted", 20)]).await;
    let all_cases = [
        (
            vec!["max_batch_bytes"],
            batched_all(Default::default(), Some(0)),
        ),
        (
            vec!["max_batch_bytes"],
            batched_all(Default::default(), Some((4 << 20) + 1)),
        ),
        (
            vec!["read.from_position", "max_batch_bytes"],
            batched_all(
                proto::ReadAllRequest {
                    from_position: Some(-1),
                    ..Default::default()
                },
                Some(0),
            ),
        ),
        (
            vec!["read.event_types[0]"],
            batched_all(
                proto::ReadAllRequest {
                    event_types: vec!["Call Held".into()],
                    ..Default::default()
                },
                None,
            ),
        ),
    ];
    for (fields, request) in all_cases {
        let status = all_batches(&app, request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{fields:?}");
        assert_eq!(violated_fields(&status), fields);
        assert!(status.message().contains(fields[0]), "{status:?}");
    }
    let stream_cases = [
        (
            vec!["max_batch_bytes"],
            batched_stream(
                proto::ReadStreamRequest {
                    stream_id: "s".into(),
                    ..Default::default()
                },
                Some(u32::MAX),
            ),
        ),
        (
            vec!["read.stream_id"],
            batched_stream(Default::default(), None),
        ),
        (
            vec!["read.limit"],
            batched_stream(
                proto::ReadStreamRequest {
                    stream_id: "s".into(),
                    limit: -1,
                    ..Default::default()
                },
                None,
            ),
        ),
    ];
    for (fields, request) in stream_cases {
        let status = stream_batches(&app, request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{fields:?}");
        assert_eq!(violated_fields(&status), fields);
    }
    // Largest and smallest bounds are fine; a missing stream is NOT_FOUND, as for ReadStream.
    for bytes in [1, 4 << 20] {
        let batches = all_batches(&app, batched_all(Default::default(), Some(bytes)))
            .await
            .unwrap();
        assert_eq!(flatten(batches).len(), 1);
    }
    let status = stream_batches(
        &app,
        batched_stream(
            proto::ReadStreamRequest {
                stream_id: "nowhere".into(),
                ..Default::default()
            },
            None,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    app.stop().await;
}
