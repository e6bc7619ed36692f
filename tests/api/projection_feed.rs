//! Projection change feeds (`Projections.WatchProjection`) against the real server: the
//! snapshot, one change per recorded event with exactly the rows it changed, one coalesced
//! change for a client that stopped reading, heartbeats, refusals naming the field, and the
//! feed's end when the client goes away, the server stops or the database does.

use std::collections::BTreeSet;
use std::time::Duration;

use diplog::proto::{self, projection_change::Change, projections_client::ProjectionsClient};
use serde_json::{Value, json};
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use crate::helpers::{
    TestApp, diplog, fresh_database, import_founding, record, spawn_app, spawn_app_with,
};

/// How long a change may take to arrive.
const ARRIVES_WITHIN: Duration = Duration::from_secs(10);

type Feed = Streaming<proto::ProjectionChange>;

async fn client(app: &TestApp) -> ProjectionsClient<Channel> {
    ProjectionsClient::new(app.channel().await)
}

fn watch(projection: &str, min_position: u64) -> proto::WatchProjectionRequest {
    proto::WatchProjectionRequest {
        projection: projection.into(),
        min_position,
        ..Default::default()
    }
}

async fn open(
    client: &mut ProjectionsClient<Channel>,
    request: proto::WatchProjectionRequest,
) -> Feed {
    client
        .watch_projection(request)
        .await
        .expect("the watch opens")
        .into_inner()
}

/// The next message, which must come within `ARRIVES_WITHIN`.
async fn next(feed: &mut Feed) -> proto::ProjectionChange {
    tokio::time::timeout(ARRIVES_WITHIN, feed.message())
        .await
        .expect("a message in time")
        .expect("a readable feed")
        .expect("the feed goes on")
}

/// Asserts that no message comes within `quiet`.
async fn assert_quiet(feed: &mut Feed, quiet: Duration) {
    if let Ok(message) = tokio::time::timeout(quiet, feed.message()).await {
        panic!("expected no message, got {message:?}");
    }
}

fn snapshot(change: &proto::ProjectionChange) -> &[proto::ProjectionRow] {
    match &change.change {
        Some(Change::Snapshot(rows)) => &rows.rows,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn diff(change: &proto::ProjectionChange) -> &proto::ProjectionDiff {
    match &change.change {
        Some(Change::Diff(diff)) => diff,
        other => panic!("expected a diff, got {other:?}"),
    }
}

fn channels(rows: &[proto::ProjectionRow]) -> Vec<proto::Channel> {
    rows.iter()
        .map(|row| match &row.row {
            Some(proto::projection_row::Row::Channel(channel)) => channel.clone(),
            other => panic!("expected a channel, got {other:?}"),
        })
        .collect()
}

fn summits(rows: &[proto::ProjectionRow]) -> Vec<proto::Summit> {
    rows.iter()
        .map(|row| match &row.row {
            Some(proto::projection_row::Row::Summit(summit)) => summit.clone(),
            other => panic!("expected a summit, got {other:?}"),
        })
        .collect()
}

fn commitments(rows: &[proto::ProjectionRow]) -> Vec<proto::Commitment> {
    rows.iter()
        .map(|row| match &row.row {
            Some(proto::projection_row::Row::Commitment(commitment)) => commitment.clone(),
            other => panic!("expected a commitment, got {other:?}"),
        })
        .collect()
}

fn divergences(rows: &[proto::ProjectionRow]) -> Vec<proto::Divergence> {
    rows.iter()
        .map(|row| match &row.row {
            Some(proto::projection_row::Row::Divergence(divergence)) => divergence.clone(),
            other => panic!("expected a divergence, got {other:?}"),
        })
        .collect()
}

/// Establishes a channel between two offices (a `channel-…` stream of its own).
async fn establish_channel(app: &TestApp, stream: &str, parties: [&str; 2]) -> u64 {
    let json = json!({
        "occurred": {"day": "2025-03-10"},
        "sources": [{"source": "rus.mfa"}],
        "channel_established": {"parties": parties}
    });
    record(app, stream, json).await.1
}

/// Waits until the channels projection reflects `position` (through a list with
/// `min_position`).
async fn channels_reach(app: &TestApp, position: u64) {
    client(app)
        .await
        .list_channels(proto::ListRequest {
            read: Some(proto::ReadOptions {
                min_position: position,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("the channels projection reaches the position");
}

const MINISTERS: &str = "rus.foreign-minister+usa.secretary-of-state";
const PRESIDENTS: &str = "rus.president+usa.president";
const SUMMIT: &str = "summit-rus-usa-2025";
const COMMITMENT: &str = "commitment-rus-usa-missions-expert-meeting";

#[tokio::test]
async fn a_watch_starts_with_a_snapshot_of_every_row_as_the_list_answers_them() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let all = proto::ListRequest {
        page_size: 1000,
        ..Default::default()
    };

    let mut feed = open(&mut projections, watch("channels", head)).await;
    let first = next(&mut feed).await;
    assert!(first.position >= head, "{} < {head}", first.position);
    assert!(!first.snapshot_continues, "a small snapshot is one message");
    assert!(first.reference_time.is_some());
    let watched = channels(snapshot(&first));
    let keys: Vec<&str> = watched.iter().map(|c| c.key.as_str()).collect();
    assert!(keys.contains(&MINISTERS), "{keys:?}");
    assert!(keys.contains(&PRESIDENTS), "{keys:?}");
    // Typed and filled exactly as the list answers them (nothing was recorded since).
    let listed = projections
        .list_channels(all.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watched, listed.channels);

    let mut feed = open(&mut projections, watch("summits", head)).await;
    let watched = summits(snapshot(&next(&mut feed).await));
    let summit = watched
        .iter()
        .find(|s| s.key == SUMMIT)
        .expect("the summit");
    assert_eq!(summit.stage, "PREPARATION_AGREED");
    let listed = projections
        .list_summits(all.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watched, listed.summits);

    let mut feed = open(&mut projections, watch("commitments", head)).await;
    let watched = commitments(snapshot(&next(&mut feed).await));
    assert_eq!(
        watched.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        [COMMITMENT]
    );
    assert!(watched[0].what.contains("meeting of experts"));

    let mut feed = open(&mut projections, watch("divergences", head)).await;
    let watched = divergences(snapshot(&next(&mut feed).await));
    assert!(
        watched
            .iter()
            .any(|d| d.stream_id == "occurrence-2025-02-15-rubio-lavrov-call"),
        "{watched:?}"
    );
    let listed = projections
        .list_divergences(all)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watched, listed.divergences);

    // Filters as the list takes them: only the channels concerning Ukraine.
    let mut feed = open(
        &mut projections,
        proto::WatchProjectionRequest {
            actor: "UKR".into(),
            ..watch("channels", head)
        },
    )
    .await;
    let keys: Vec<String> = channels(snapshot(&next(&mut feed).await))
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(keys, ["ukr.president+usa.president"]);
    app.stop().await;
}

#[tokio::test]
async fn a_new_channel_arrives_as_one_change_with_exactly_that_row() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut feed = open(&mut projections, watch("channels", head)).await;
    let before = next(&mut feed).await;
    assert!(
        channels(snapshot(&before))
            .iter()
            .all(|c| c.key != "rus.president+ukr.president")
    );

    let position = establish_channel(
        &app,
        "channel-rus-ukr-presidents",
        ["rus.president", "ukr.president"],
    )
    .await;

    let change = next(&mut feed).await;
    assert!(
        change.position >= position,
        "{} < {position}",
        change.position
    );
    let diff = diff(&change);
    let upserted = channels(&diff.upserted);
    assert_eq!(
        upserted.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["rus.president+ukr.president"]
    );
    assert_eq!(upserted[0].stream_id, "channel-rus-ukr-presidents");
    assert!(diff.removed.is_empty(), "{diff:?}");
    // Typed as the list answers it.
    let listed = projections
        .get_channel(proto::GetRequest {
            key: "rus.president+ukr.president".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(upserted, listed.channels);
    // And nothing else follows: the other rows did not change.
    assert_quiet(&mut feed, Duration::from_secs(1)).await;
    app.stop().await;
}

#[tokio::test]
async fn a_fulfilled_commitment_leaves_an_open_only_watch_and_a_scheduled_summit_changes_stage() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut open_only = open(
        &mut projections,
        proto::WatchProjectionRequest {
            status: vec!["PENDING".into(), "SCHEDULED".into(), "LAPSED".into()],
            ..watch("commitments", head)
        },
    )
    .await;
    let mut every = open(&mut projections, watch("commitments", head)).await;
    let mut summits_feed = open(&mut projections, watch("summits", head)).await;
    for feed in [&mut open_only, &mut every] {
        let rows = commitments(snapshot(&next(feed).await));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key, COMMITMENT);
    }
    snapshot(&next(&mut summits_feed).await);

    // The expert meeting, then the commitment fulfilled by it.
    let (meeting, _) = record(
        &app,
        "occurrence-2025-02-27-expert-meeting",
        json!({
            "occurred": {"day": "2025-02-27"},
            "sources": [{"source": "rus.mfa", "quotes": [{"text": "Состоялась встреча экспертов"}]}],
            "meeting_held": {"participants": [{"actor": "RUS"}, {"actor": "USA"}],
                             "format": "THIRD_COUNTRY", "level": "EXPERTS"}
        }),
    )
    .await;
    let (_, fulfilled) = record(
        &app,
        COMMITMENT,
        json!({"occurred": {"day": "2025-02-28"}, "evidence": [meeting],
               "commitment_fulfilled": {"fulfilled_by": meeting}}),
    )
    .await;

    let change = next(&mut open_only).await;
    assert!(change.position >= fulfilled);
    let removed = diff(&change);
    assert!(removed.upserted.is_empty(), "{removed:?}");
    assert_eq!(removed.removed, [COMMITMENT]);

    let change = next(&mut every).await;
    let upserted = commitments(&diff(&change).upserted);
    assert_eq!(upserted.len(), 1, "{upserted:?}");
    assert_eq!(
        (upserted[0].key.as_str(), upserted[0].status.as_str()),
        (COMMITMENT, "FULFILLED")
    );
    assert_eq!(upserted[0].fulfilled_by, meeting);
    assert!(diff(&change).removed.is_empty());

    let (_, scheduled) = record(
        &app,
        SUMMIT,
        json!({"occurred": {"day": "2025-03-01"}, "sources": [{"source": "rus.mfa"}],
               "summit_scheduled": {"date": {"month": "2025-12"}}}),
    )
    .await;
    // The summits feed saw nothing of the commitment; now the summit's stage.
    let change = next(&mut summits_feed).await;
    assert!(change.position >= scheduled);
    let upserted = summits(&diff(&change).upserted);
    assert_eq!(
        upserted
            .iter()
            .map(|s| (s.key.as_str(), s.stage.as_str()))
            .collect::<Vec<_>>(),
        [(SUMMIT, "SCHEDULED")]
    );
    app.stop().await;
}

/// A client that stops reading holds the server back through HTTP/2 flow control: the server
/// computes the next message only when the transport asks for one. hyper asks for one message
/// beyond the one waiting for window, so at most two diffs are computed ahead of a stalled
/// client; everything that changes after that reaches it in one coalesced diff.
#[tokio::test]
async fn a_watcher_that_stops_reading_gets_a_coalesced_change_not_a_backlog() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    // A small HTTP/2 window, so that what the client does not read holds the server back at
    // once (with the default windows the transport buffers megabytes of diffs first).
    const WINDOW: u32 = 64;
    let channel = tonic::transport::Endpoint::from_shared(app.server_url())
        .unwrap()
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(WINDOW))
        .connect()
        .await
        .unwrap();
    let mut projections = ProjectionsClient::new(channel);
    let mut feed = open(&mut projections, watch("channels", head)).await;
    let first = next(&mut feed).await;
    assert!(
        channels(snapshot(&first))
            .iter()
            .all(|c| !c.stream_id.starts_with("channel-feed-"))
    );

    // The client reads nothing while five channels are established, one at a time, each
    // reflected by the projection before the next.
    let pairs = [
        ["rus.president", "ukr.president"],
        ["rus.foreign-minister", "usa.president"],
        ["ukr.president", "usa.secretary-of-state"],
        ["rus.president", "usa.secretary-of-state"],
        ["rus.foreign-minister", "ukr.president"],
    ];
    let mut last = 0;
    let mut expected = BTreeSet::new();
    for (index, parties) in pairs.into_iter().enumerate() {
        let stream = format!("channel-feed-{index}");
        last = establish_channel(&app, &stream, parties).await;
        channels_reach(&app, last).await;
        expected.insert(stream);
    }
    // Time for the server to run ahead, if it would.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut seen = BTreeSet::new();
    let mut diffs = Vec::new();
    while seen != expected {
        let change = next(&mut feed).await;
        let upserted: Vec<String> = channels(&diff(&change).upserted)
            .into_iter()
            .map(|c| c.stream_id)
            .collect();
        assert!(diff(&change).removed.is_empty());
        seen.extend(upserted.iter().cloned());
        diffs.push((change.position, upserted));
    }
    println!("diffs received (position, channels): {diffs:?}");
    assert!(
        diffs.len() <= 3,
        "five changes arrive in at most three diffs: {diffs:?}"
    );
    let (position, coalesced) = diffs.last().unwrap();
    assert!(*position >= last, "{position} < {last}");
    assert!(
        coalesced.len() >= 3,
        "the changes after the first two arrive together: {diffs:?}"
    );
    assert_quiet(&mut feed, Duration::from_secs(1)).await;
    assert_eq!(app.projections.watchers().open(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_snapshot_of_more_than_a_mib_of_rows_comes_in_parts_that_make_up_the_list() {
    let app = spawn_app().await;
    import_founding(&app).await;
    // Four commitments of about 400 KB each (their `what`), besides the founding one.
    let what = "w".repeat(400_000);
    let mut last = 0;
    for index in 0..4 {
        let json = json!({
            "occurred": {"day": "2025-03-10"},
            "sources": [{"source": "rus.mfa"}],
            "commitment_stated": {"parties": ["RUS", "USA"], "what": format!("{index} {what}")}
        });
        last = record(&app, &format!("commitment-big-{index}"), json)
            .await
            .1;
    }
    let mut projections = client(&app).await;
    let mut feed = open(&mut projections, watch("commitments", last)).await;
    // At most 1 MiB of rows a part: two of these commitments, not three.
    let bytes = |rows: &[proto::ProjectionRow]| -> usize {
        rows.iter().map(prost::Message::encoded_len).sum()
    };
    let mut part = next(&mut feed).await;
    assert!(bytes(snapshot(&part)) <= 1 << 20);
    let mut rows = commitments(snapshot(&part));
    let mut parts = 1;
    while part.snapshot_continues {
        let following = next(&mut feed).await;
        assert_eq!(
            following.position, part.position,
            "one snapshot, one position"
        );
        let diff = diff(&following);
        assert!(diff.removed.is_empty());
        assert!(bytes(&diff.upserted) <= 1 << 20);
        rows.extend(commitments(&diff.upserted));
        part = following;
        parts += 1;
    }
    assert!(parts >= 2, "{parts} parts");
    let listed = projections
        .list_commitments(proto::ListRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows, listed.commitments);
    app.stop().await;
}

#[tokio::test]
async fn a_quiet_feed_sends_heartbeats_at_the_interval_asked_for() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut feed = open(
        &mut projections,
        proto::WatchProjectionRequest {
            heartbeat_seconds: 1,
            ..watch("summits", head)
        },
    )
    .await;
    let first = next(&mut feed).await;
    snapshot(&first);
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let beat = next(&mut feed).await;
        assert!(
            matches!(beat.change, Some(Change::Heartbeat(()))),
            "{beat:?}"
        );
        assert_eq!(beat.position, first.position);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
            "a heartbeat after {waited:?}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_watch_holds_at_most_max_watch_rows_and_ends_when_its_list_outgrows_them() {
    let mut config = diplog::config::ServerConfig::ephemeral();
    let app = {
        let probe = spawn_app().await;
        let head = import_founding(&probe).await;
        channels_reach(&probe, head).await;
        let listed = client(&probe)
            .await
            .list_channels(proto::ListRequest::default())
            .await
            .unwrap()
            .into_inner();
        // As many as the founding report gives: a watch of all of them just fits.
        config.projections.max_watch_rows = listed.info.unwrap().total;
        probe.stop().await;
        spawn_app_with(fresh_database().await, config.clone()).await
    };
    let limit = config.projections.max_watch_rows;
    assert!(limit >= 2, "the founding report's channels: {limit}");
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut feed = open(&mut projections, watch("channels", head)).await;
    assert_eq!(
        channels(snapshot(&next(&mut feed).await)).len() as u32,
        limit
    );

    // One channel more: the open feed ends, naming the limit and its flag.
    let position = establish_channel(
        &app,
        "channel-rus-ukr-presidents",
        ["rus.president", "ukr.president"],
    )
    .await;
    let ended = tokio::time::timeout(ARRIVES_WITHIN, feed.message())
        .await
        .expect("the end in time")
        .expect_err("the feed ends");
    assert_eq!(ended.code(), Code::ResourceExhausted, "{ended:?}");
    assert!(
        ended.message().contains("--max-watch-rows")
            && ended.message().contains(&limit.to_string()),
        "{}",
        ended.message()
    );
    // A new watch of them all is refused at once; one narrowed by an actor opens.
    let refused = projections
        .watch_projection(watch("channels", position))
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let narrowed = proto::WatchProjectionRequest {
        actor: "ukr.president".into(),
        ..watch("channels", position)
    };
    let mut narrow = open(&mut projections, narrowed).await;
    let rows = channels(snapshot(&next(&mut narrow).await));
    assert!(
        !rows.is_empty() && rows.len() as u32 <= limit,
        "{} rows",
        rows.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_watches_are_invalid_arguments_naming_the_field() {
    let app = spawn_app().await;
    let mut projections = client(&app).await;
    for (request, field) in [
        (watch("nope", 0), "projection"),
        (watch("", 0), "projection"),
        (watch("timeline", 0), "projection"),
        (watch("relations", 0), "projection"),
        (
            proto::WatchProjectionRequest {
                status: vec!["OPENISH".into()],
                ..watch("channels", 0)
            },
            "status",
        ),
        (
            proto::WatchProjectionRequest {
                actor: "not an actor!".into(),
                ..watch("commitments", 0)
            },
            "actor",
        ),
        (
            proto::WatchProjectionRequest {
                heartbeat_seconds: 5000,
                ..watch("summits", 0)
            },
            "heartbeat_seconds",
        ),
    ] {
        let status = projections
            .watch_projection(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{request:?}: {status:?}"
        );
        assert_eq!(
            crate::helpers::violated_fields(&status),
            [field],
            "{request:?}"
        );
    }
    assert_eq!(app.projections.watchers().open(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_feed_ends_when_its_client_goes_away() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut open_feeds = app.projections.watchers().subscribe();
    let mut feed = open(&mut projections, watch("channels", head)).await;
    snapshot(&next(&mut feed).await);
    assert_eq!(*open_feeds.borrow_and_update(), 1);

    drop(feed);

    tokio::time::timeout(
        Duration::from_secs(5),
        open_feeds.wait_for(|open| *open == 0),
    )
    .await
    .expect("the feed ends within 5 s of its client going away")
    .unwrap();
    // The connection is still there and serves another watch.
    let mut again = open(&mut projections, watch("channels", 0)).await;
    snapshot(&next(&mut again).await);
    app.stop().await;
}

#[tokio::test]
async fn a_feed_ends_with_unavailable_when_the_server_shuts_down() {
    let app = spawn_app().await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let watchers = app.projections.watchers().clone();
    let mut feed = open(&mut projections, watch("commitments", head)).await;
    snapshot(&next(&mut feed).await);

    let stopping = tokio::spawn(app.stop()); // asserts a clean stop within 5 s

    let status = tokio::time::timeout(ARRIVES_WITHIN, feed.message())
        .await
        .expect("the feed ends in time")
        .expect_err("the feed ends with a status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
    stopping.await.unwrap();
    assert_eq!(watchers.open(), 0);
}

#[tokio::test]
async fn a_feed_ends_with_unavailable_when_the_database_goes_away() {
    use diplog::pgcluster::{ClusterOptions, PgCluster};
    let dir = crate::helpers::reachable_tempdir("diplog-feed-fault-");
    let data_dir = dir.path().join("data");
    let options = || ClusterOptions {
        stop_when_process_exits: true,
        ..ClusterOptions::default()
    };
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    let app = crate::helpers::spawn_app_on(cluster.connect_options("diplog")).await;
    let head = import_founding(&app).await;
    let mut projections = client(&app).await;
    let mut feed = open(
        &mut projections,
        proto::WatchProjectionRequest {
            heartbeat_seconds: 1,
            ..watch("channels", head)
        },
    )
    .await;
    snapshot(&next(&mut feed).await);

    cluster.stop().await.unwrap();
    let status = loop {
        match tokio::time::timeout(Duration::from_secs(20), feed.message())
            .await
            .expect("the feed ends within 20 s")
        {
            // A heartbeat may still come before the feed notices.
            Ok(Some(message)) => assert!(matches!(message.change, Some(Change::Heartbeat(())))),
            Ok(None) => panic!("the feed ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(app.projections.watchers().open(), 0);

    // Back up, so the server stops as it would normally.
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    app.stop().await;
    cluster.stop().await.unwrap();
}

/// A feed on a server that does not run the projection (another server on the same database
/// does) follows the checkpoint, about once a second.
#[tokio::test]
async fn a_feed_follows_a_projection_another_server_runs() {
    use diplog::projections::engine::rows::Holder;
    let first = spawn_app().await;
    let second = crate::helpers::spawn_app_on(first.db_options.clone()).await;
    let head = import_founding(&first).await;
    // Whichever server took the channels projection, watch on the other.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (runs, watches) = loop {
        let holder = |statuses: Vec<diplog::projections::engine::rows::ProjectionStatus>| {
            statuses
                .into_iter()
                .find(|s| s.name == "channels")
                .map(|s| s.holder)
        };
        let a = holder(first.projections.statuses().await.unwrap());
        let b = holder(second.projections.statuses().await.unwrap());
        match (a, b) {
            (Some(Holder::ThisServer), Some(Holder::AnotherServer)) => break (&first, &second),
            (Some(Holder::AnotherServer), Some(Holder::ThisServer)) => break (&second, &first),
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("no single server runs the channels projection: {other:?}"),
        }
    };
    let mut projections = client(watches).await;
    let mut feed = open(&mut projections, watch("channels", head)).await;
    snapshot(&next(&mut feed).await);

    let position = establish_channel(
        runs,
        "channel-rus-ukr-presidents",
        ["rus.president", "ukr.president"],
    )
    .await;
    let started = std::time::Instant::now();
    let change = next(&mut feed).await;
    let waited = started.elapsed();
    assert!(change.position >= position);
    assert_eq!(
        channels(&diff(&change).upserted)
            .iter()
            .map(|c| c.stream_id.as_str())
            .collect::<Vec<_>>(),
        ["channel-rus-ukr-presidents"]
    );
    assert!(waited < Duration::from_secs(5), "arrived after {waited:?}");
    drop(feed);
    second.stop().await;
    first.stop().await;
}

/// `diplog watch` as a process, its standard output by lines.
async fn diplog_watch(
    app: &TestApp,
    args: &[&str],
) -> (
    tokio::process::Child,
    tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) {
    let server = app.server_url();
    let mut words = vec!["watch"];
    words.extend(args);
    words.extend(["--server", &server]);
    diplog(words).spawn()
}

/// Reads lines until one contains `wanted`; answers the lines read.
async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    wanted: &str,
) -> Vec<String> {
    let mut read = Vec::new();
    loop {
        let line = tokio::time::timeout(ARRIVES_WITHIN, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no line with {wanted:?} in time; read {read:#?}"))
            .expect("readable output")
            .unwrap_or_else(|| panic!("diplog watch ended; read {read:#?}"));
        let found = line.contains(wanted);
        read.push(line);
        if found {
            return read;
        }
    }
}

#[tokio::test]
async fn diplog_watch_prints_the_snapshot_then_each_change() {
    let app = spawn_app().await;
    let head = import_founding(&app).await.to_string();
    let (mut json_watch, mut json_lines) =
        diplog_watch(&app, &["channels", "--json", "--min-position", &head]).await;
    let (mut text_watch, mut text_lines) =
        diplog_watch(&app, &["channels", "--min-position", &head]).await;

    let first: Value = serde_json::from_str(&read_until(&mut json_lines, "snapshot").await[0])
        .expect("a line of JSON");
    let keys: Vec<&str> = first["snapshot"]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["channel"]["key"].as_str().expect("a channel key"))
        .collect();
    assert!(keys.contains(&MINISTERS), "{first}");
    let snapshot_text = read_until(&mut text_lines, "United States Secretary of State").await;
    assert!(
        snapshot_text[0].starts_with("At log position"),
        "{snapshot_text:#?}"
    );

    establish_channel(
        &app,
        "channel-rus-ukr-presidents",
        ["rus.president", "ukr.president"],
    )
    .await;

    let change: Value = serde_json::from_str(&read_until(&mut json_lines, "diff").await[0])
        .expect("a line of JSON");
    assert_eq!(
        change["diff"]["upserted"][0]["channel"]["key"], "rus.president+ukr.president",
        "{change}"
    );
    let change_text = read_until(&mut text_lines, "1 changed, 0 removed").await;
    assert!(
        change_text.last().unwrap().starts_with("At log position"),
        "{change_text:#?}"
    );
    read_until(&mut text_lines, "President of Ukraine").await;
    json_watch.kill().await.unwrap();
    text_watch.kill().await.unwrap();

    // A projection that cannot be watched: exit 1 with the status and the field.
    let output = diplog(["watch", "timeline", "--server", &app.server_url()]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("INVALID_ARGUMENT"), "{stderr}");
    assert!(stderr.contains("field projection"), "{stderr}");
    app.stop().await;
}
