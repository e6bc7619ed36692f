//! `GET /metrics`: after a known set of appends, reads and refusals against a server of its
//! own (a process: its counters are its alone), the counters moved by exactly what was done,
//! and the gauges of the database's state agree with it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use diplog::proto::{self, event_log_client::EventLogClient};
use tonic::Code;

use crate::dashboard::get;
use crate::helpers::{
    Expect, Serve, append_request, database_url_for, fresh_database, new_event, read_all_from,
};

/// Each sample of the page by its name with labels, as written (`name{label="value"}`).
pub(crate) async fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let answer = get(addr, "/metrics").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer
            .head
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        answer.head
    );
    answer
        .body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').expect("a sample line");
            (name.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

pub(crate) fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn the_counters_move_by_exactly_what_was_done_and_the_gauges_follow_the_log() {
    let database = fresh_database().await;
    let url = database_url_for(&database);
    let server = Serve::on_database(&url)
        .arg("--max-streams-per-client")
        .arg("1")
        .start()
        .await;
    let http: SocketAddr = server.http().parse().unwrap();
    let mut client = EventLogClient::new(server.channel().await);

    let mut first = None;
    for i in 0..5 {
        let events = vec![new_event("Noted", "{}"), new_event("Noted", "{}")];
        let request = append_request(&format!("stream-{i}"), Expect::NoStream, events);
        client.append(request.clone()).await.expect("written");
        first.get_or_insert(request);
    }
    let first = first.unwrap();
    let replay = client.append(first.clone()).await.expect("a replay");
    assert!(replay.into_inner().idempotent_replay);
    let mut stale = first.clone();
    stale.events = vec![new_event("Noted", "{}")];
    let conflict = client.append(stale).await.expect_err("a conflict");
    assert_eq!(conflict.code(), Code::Aborted);

    // One subscription held open; a read beside it is one stream too many.
    let mut subscription = client
        .subscribe(proto::SubscribeRequest::default())
        .await
        .expect("subscribed")
        .into_inner();
    subscription.message().await.expect("a first message");
    let refused = client
        .read_all(read_all_from(1))
        .await
        .expect_err("over the stream limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);

    // A token presented to an open server is still checked.
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", "Bearer not-a-token".parse().unwrap());
    let unauthenticated = client.get_head(request).await.expect_err("refused");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    // The projections and the audit tree catch up with the ten events.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let samples = scrape(http).await;
        let caught_up = value(&samples, "diplog_audit_tree_size") == 10.0
            && samples
                .iter()
                .filter(|(name, _)| name.starts_with("diplog_projection_lag_events{"))
                .all(|(_, lag)| *lag == 0.0);
        if caught_up {
            break samples;
        }
        assert!(tokio::time::Instant::now() < deadline, "{samples:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let expected = [
        (r#"diplog_appends_total{outcome="written"}"#, 5.0),
        (r#"diplog_appends_total{outcome="replayed"}"#, 1.0),
        (
            r#"diplog_appends_total{outcome="wrong_expected_version"}"#,
            1.0,
        ),
        ("diplog_appended_events_total", 10.0),
        ("diplog_append_duration_seconds_count", 7.0),
        ("diplog_log_head_position", 10.0),
        ("diplog_audit_tree_unhashed_events", 0.0),
        ("diplog_subscriptions_open", 1.0),
        ("diplog_stream_limit_refusals_total", 1.0),
        ("diplog_database_up", 1.0),
    ];
    for (name, want) in expected {
        assert_eq!(value(&samples, name), want, "{name}: {samples:#?}");
    }
    let auth_failures: f64 = samples
        .iter()
        .filter(|(name, _)| name.starts_with("diplog_auth_failures_total{"))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(auth_failures, 1.0, "{samples:#?}");
    assert!(value(&samples, "diplog_writer_group_events_count") >= 5.0);
    assert!(value(&samples, r#"diplog_read_bytes_total{rpc="ReadStream"}"#) == 0.0);
    let positions: Vec<f64> = samples
        .iter()
        .filter(|(name, _)| name.starts_with("diplog_projection_position{"))
        .map(|(_, position)| *position)
        .collect();
    assert!(
        positions.len() >= 6 && positions.iter().all(|p| *p == 10.0),
        "{samples:#?}"
    );
    assert!(value(&samples, "diplog_db_pool_max_connections") > 0.0);

    // A read's payload bytes are counted, and the subscription's end closes it.
    drop(subscription);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while value(&scrape(http).await, "diplog_subscriptions_open") != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription stays open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = crate::helpers::collect(client.read_all(read_all_from(1)).await.unwrap()).await;
    let bytes: usize = events.iter().map(|e| e.data.len()).sum();
    let samples = scrape(http).await;
    assert_eq!(
        value(&samples, r#"diplog_read_bytes_total{rpc="ReadAll"}"#),
        bytes as f64
    );
}
