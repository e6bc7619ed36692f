//! Faults: PostgreSQL going away and coming back while the server runs.

use std::time::{Duration, Instant};

use diplog::pgcluster::{ClusterOptions, PgCluster};
use tonic::Code;

use crate::helpers::{Expect, reachable_tempdir, read_all_from, spawn_app_on};

/// While PostgreSQL is down, appends fail promptly with UNAVAILABLE (so clients retry) rather
/// than hang or claim an internal error; once it is back they succeed again without restarting
/// the server, and the log has no hole.
#[tokio::test]
async fn appends_are_unavailable_while_postgres_is_down_and_succeed_once_it_is_back() {
    let dir = reachable_tempdir("diplog-fault-");
    let data_dir = dir.path().join("data");
    let options = || ClusterOptions {
        stop_when_process_exits: true,
        ..ClusterOptions::default()
    };
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    let app = spawn_app_on(cluster.connect_options("diplog")).await;
    app.append("s", Expect::Any, &[("Before", "{}")])
        .await
        .unwrap();

    cluster.stop().await.unwrap();
    let started = Instant::now();
    let status = app
        .append("s", Expect::Any, &[("During", "{}")])
        .await
        .unwrap_err();
    let waited = started.elapsed();

    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        waited < Duration::from_secs(10),
        "failed only after {waited:?}"
    );

    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        match app.append("s", Expect::Any, &[("After", "{}")]).await {
            Ok(response) => break response,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("appends did not recover: {status:?}"),
        }
    };
    let log = app.read_all(read_all_from(1)).await;

    assert_eq!(after.positions, vec![2]);
    let types: Vec<_> = log.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types, ["Before", "After"]);
    app.stop().await;
    cluster.stop().await.unwrap();
}

/// Subscriptions outlive a PostgreSQL restart: they pause while it is down and go on without
/// loss once it is back, also on a server that learns of appends only through NOTIFY (its
/// LISTEN connection must come back by itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_go_on_without_loss_after_postgres_restarts() {
    use diplog::proto::{self, subscribe_request::From, subscription_message::Message};

    let dir = reachable_tempdir("diplog-fault-");
    let data_dir = dir.path().join("data");
    let options = || ClusterOptions {
        stop_when_process_exits: true,
        ..ClusterOptions::default()
    };
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    let writer = spawn_app_on(cluster.connect_options("diplog")).await;
    let reader = spawn_app_on(cluster.connect_options("diplog")).await;
    let subscribe = async |app: &crate::helpers::TestApp| {
        app.new_client()
            .await
            .subscribe(proto::SubscribeRequest {
                from: Some(From::Start(())),
                ..Default::default()
            })
            .await
            .expect("subscribed")
            .into_inner()
    };
    let mut on_writer = subscribe(&writer).await;
    let mut on_reader = subscribe(&reader).await;
    writer
        .append("s", Expect::Any, &[("Before", "{}")])
        .await
        .unwrap();

    cluster.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match writer.append("s", Expect::Any, &[("After", "{}")]).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("appends did not recover: {status:?}"),
        }
    }

    for (name, stream) in [("writer", &mut on_writer), ("reader", &mut on_reader)] {
        let mut types = Vec::new();
        // One deadline for the lot: heartbeat checkpoints keep arriving even when events stall.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while types.len() < 2 {
            let message = tokio::time::timeout_at(deadline, stream.message())
                .await
                .unwrap_or_else(|_| panic!("the subscription on the {name} stalled at {types:?}"))
                .expect("the subscription goes on")
                .expect("not ended");
            if let Some(Message::Event(event)) = message.message {
                types.push(event.r#type);
            }
        }
        assert_eq!(types, ["Before", "After"], "on the {name}");
    }
    reader.stop().await;
    writer.stop().await;
    cluster.stop().await.unwrap();
}
