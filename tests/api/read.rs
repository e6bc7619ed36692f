//! Reads: one stream forward and backward from a version with a limit; the whole log from a
//! position, filtered by type and stream prefix; long reads streamed page by page.

use diplog::proto::{self, Direction};
use tonic::Code;

use crate::helpers::{Expect, read_all_from, spawn_app, violated_fields};

fn stream_request(stream: &str) -> proto::ReadStreamRequest {
    proto::ReadStreamRequest {
        stream_id: stream.to_owned(),
        ..Default::default()
    }
}

fn versions(events: &[proto::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.stream_version).collect()
}

fn positions(events: &[proto::RecordedEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

#[tokio::test]
async fn a_stream_reads_forward_and_backward_from_a_version_with_a_limit() {
    let app = spawn_app().await;
    for _ in 0..5 {
        app.append("channel-1", Expect::Any, &[("ContactMade", "{}")])
            .await
            .unwrap();
        app.append("noise", Expect::Any, &[("Other", "{}")])
            .await
            .unwrap();
    }

    let all = app.read_stream(stream_request("channel-1")).await.unwrap();
    let from_3 = app
        .read_stream(proto::ReadStreamRequest {
            from_version: Some(3),
            limit: 2,
            ..stream_request("channel-1")
        })
        .await
        .unwrap();
    let backward = app
        .read_stream(proto::ReadStreamRequest {
            direction: Direction::Backward as i32,
            ..stream_request("channel-1")
        })
        .await
        .unwrap();
    let backward_from_2 = app
        .read_stream(proto::ReadStreamRequest {
            direction: Direction::Backward as i32,
            from_version: Some(2),
            ..stream_request("channel-1")
        })
        .await
        .unwrap();
    let past_the_end = app
        .read_stream(proto::ReadStreamRequest {
            from_version: Some(6),
            ..stream_request("channel-1")
        })
        .await
        .unwrap();

    assert_eq!(versions(&all), [1, 2, 3, 4, 5]);
    assert_eq!(positions(&all), [1, 3, 5, 7, 9]);
    assert_eq!(versions(&from_3), [3, 4]);
    assert_eq!(versions(&backward), [5, 4, 3, 2, 1]);
    assert_eq!(versions(&backward_from_2), [2, 1]);
    assert!(past_the_end.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_missing_stream_is_not_found() {
    let app = spawn_app().await;
    let status = app
        .read_stream(stream_request("nowhere"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nowhere"));
    app.stop().await;
}

#[tokio::test]
async fn the_log_reads_from_a_position_filtered_by_type_and_stream_prefix() {
    let app = spawn_app().await;
    app.append(
        "channel-RUS-USA",
        Expect::Any,
        &[("ChannelEstablished", "{}")],
    )
    .await
    .unwrap();
    app.append(
        "call-1",
        Expect::Any,
        &[("CallHeld", "{}"), ("StatementIssued", "{}")],
    )
    .await
    .unwrap();
    app.append(
        "channel-RUS-UKR",
        Expect::Any,
        &[("ChannelEstablished", "{}")],
    )
    .await
    .unwrap();
    app.append("call-2", Expect::Any, &[("CallHeld", "{}")])
        .await
        .unwrap();

    let from_3 = app.read_all(read_all_from(3)).await;
    let calls = app
        .read_all(proto::ReadAllRequest {
            event_types: vec!["CallHeld".into()],
            ..Default::default()
        })
        .await;
    let channels = app
        .read_all(proto::ReadAllRequest {
            stream_prefix: "channel-".into(),
            ..Default::default()
        })
        .await;
    let both_filters = app
        .read_all(proto::ReadAllRequest {
            event_types: vec!["StatementIssued".into(), "CallHeld".into()],
            stream_prefix: "call-2".into(),
            ..Default::default()
        })
        .await;
    let last_two_backward = app
        .read_all(proto::ReadAllRequest {
            direction: Direction::Backward as i32,
            limit: 2,
            ..Default::default()
        })
        .await;

    assert_eq!(positions(&from_3), [3, 4, 5]);
    assert_eq!(positions(&calls), [2, 5]);
    assert_eq!(positions(&channels), [1, 4]);
    assert_eq!(positions(&both_filters), [5]);
    assert_eq!(positions(&last_two_backward), [5, 4]);
    app.stop().await;
}

/// More events than one page (512) and than one append (1000): the read streams them all,
/// in order, across page boundaries, also with a limit that ends mid-page.
#[tokio::test]
async fn long_reads_cross_page_boundaries_in_order() {
    let app = spawn_app().await;
    let payload = r#"{"n": 1}"#;
    for _ in 0..3 {
        let events: Vec<_> = (0..1000).map(|_| ("Tick", payload)).collect();
        app.append("ticks", Expect::Any, &events).await.unwrap();
    }

    let everything = app.read_all(read_all_from(1)).await;
    let limited = app
        .read_all(proto::ReadAllRequest {
            from_position: Some(100),
            limit: 1500,
            ..Default::default()
        })
        .await;
    let stream_backward = app
        .read_stream(proto::ReadStreamRequest {
            direction: Direction::Backward as i32,
            ..stream_request("ticks")
        })
        .await
        .unwrap();

    assert_eq!(positions(&everything), (1..=3000).collect::<Vec<_>>());
    assert_eq!(positions(&limited), (100..1600).collect::<Vec<_>>());
    assert_eq!(
        versions(&stream_backward),
        (1..=3000).rev().collect::<Vec<_>>()
    );
    app.stop().await;
}

/// A filtered read looks at a window of positions per page (wider than a page, growing while
/// pages come back short): rare events far apart, with empty windows between them, all come
/// back, in order, forward and backward, and a limit still ends the read.
#[tokio::test]
async fn sparse_filtered_reads_find_every_match_across_empty_windows() {
    let app = spawn_app().await;
    let payload = r#"{"n": 1}"#;
    let mut rare = Vec::new();
    for round in 0..30 {
        let mut events: Vec<_> = (0..999).map(|_| ("Tick", payload)).collect();
        // Rare events in rounds 0, 1, 2, 27 and 29: the window after the first page (8,192
        // positions wide, then 16,384) holds none, forward and backward.
        if [0, 1, 2, 27, 29].contains(&round) {
            events.insert(round % 7 * 100, ("Rare", payload));
        }
        let response = app.append("ticks", Expect::Any, &events).await.unwrap();
        let positions = response.positions;
        for (index, (event_type, _)) in events.iter().enumerate() {
            if *event_type == "Rare" {
                rare.push(positions[index]);
            }
        }
    }
    assert_eq!(rare.len(), 5);
    let rare_type = |direction: Direction, limit: u64| proto::ReadAllRequest {
        from_position: None,
        direction: direction as i32,
        limit: limit as i64,
        event_types: vec!["Rare".into()],
        stream_prefix: String::new(),
    };

    let forward = app.read_all(rare_type(Direction::Forward, 0)).await;
    let backward = app.read_all(rare_type(Direction::Backward, 0)).await;
    let first_three = app.read_all(rare_type(Direction::Forward, 3)).await;

    assert_eq!(positions(&forward), rare);
    assert_eq!(
        positions(&backward),
        rare.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(positions(&first_three), rare[..3].to_vec());
    app.stop().await;
}

#[tokio::test]
async fn bad_reads_are_invalid_argument_naming_the_field() {
    let app = spawn_app().await;
    let stream_cases = [
        ("stream_id", stream_request("")),
        (
            "from_version",
            proto::ReadStreamRequest {
                from_version: Some(-1),
                ..stream_request("s")
            },
        ),
        (
            "limit",
            proto::ReadStreamRequest {
                limit: -5,
                ..stream_request("s")
            },
        ),
        (
            "direction",
            proto::ReadStreamRequest {
                direction: 7,
                ..stream_request("s")
            },
        ),
    ];
    for (field, request) in stream_cases {
        let status = app.read_stream(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&status), [field]);
    }
    let all_cases = [
        (
            "from_position",
            proto::ReadAllRequest {
                from_position: Some(-2),
                ..Default::default()
            },
        ),
        (
            "limit",
            proto::ReadAllRequest {
                limit: -1,
                ..Default::default()
            },
        ),
        (
            "event_types[1]",
            proto::ReadAllRequest {
                event_types: vec!["CallHeld".into(), "Call Held".into()],
                ..Default::default()
            },
        ),
        (
            "stream_prefix",
            proto::ReadAllRequest {
                stream_prefix: "x".repeat(300),
                ..Default::default()
            },
        ),
    ];
    for (field, request) in all_cases {
        let status = app.client.clone().read_all(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}");
        assert_eq!(violated_fields(&status), [field]);
    }
    app.stop().await;
}
