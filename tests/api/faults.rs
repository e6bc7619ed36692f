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

/// kill -9 under concurrent appends, then a restart: every acknowledged event is there exactly
/// once, positions have no hole, appends retried with the same ids (whether or not they had
/// landed before the kill) create no duplicates, and the projections and the audit tree catch
/// up to the head.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_under_append_load_loses_nothing_acknowledged() {
    use std::collections::{BTreeSet, HashSet};
    use std::sync::{Arc, Mutex};

    use diplog::proto::{self, event_log_client::EventLogClient};

    use crate::helpers::{append_request, fresh_database, new_event};
    use crate::projections::{database_url, serve_process};

    let database = fresh_database().await;
    let url = database_url(&database);
    let (mut server, address) = serve_process(&url).await;

    // Each client appends 1-3 events with fresh ids until the server is gone; it remembers what
    // was acknowledged and what was not (lost in flight: maybe written, maybe not).
    let acknowledged = Arc::new(Mutex::new(Vec::<uuid::Uuid>::new()));
    let unanswered = Arc::new(Mutex::new(Vec::<proto::AppendRequest>::new()));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (address, acknowledged, unanswered) =
                (address.clone(), acknowledged.clone(), unanswered.clone());
            tokio::spawn(async move {
                let mut client = EventLogClient::connect(address).await.unwrap();
                for i in 0.. {
                    let events = (0..1 + i % 3)
                        .map(|_| new_event("Noted", &format!(r#"{{"client":{c},"i":{i}}}"#)))
                        .collect();
                    let request = append_request(&format!("client-{c}"), Expect::Any, events);
                    match client.append(request.clone()).await {
                        Ok(_) => acknowledged.lock().unwrap().extend(
                            request
                                .events
                                .iter()
                                .map(|e| e.id.parse::<uuid::Uuid>().unwrap()),
                        ),
                        Err(_) => {
                            unanswered.lock().unwrap().push(request);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("every client notices the server is gone")
            .unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let unanswered = unanswered.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "load before the kill: {}",
        acknowledged.len()
    );
    assert_eq!(unanswered.len(), 8, "each client had one append unanswered");

    let (mut restarted, address) = serve_process(&url).await;
    let mut client = EventLogClient::connect(address.clone()).await.unwrap();
    let mut replayed = 0;
    for request in &unanswered {
        let response = client
            .append(request.clone())
            .await
            .expect("a retry succeeds")
            .into_inner();
        replayed += usize::from(response.idempotent_replay);
    }
    println!(
        "acknowledged before the kill: {}; unanswered appends: {} (of which {replayed} had landed)",
        acknowledged.len(),
        unanswered.len()
    );

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: Vec<(i64, uuid::Uuid)> =
        sqlx::query_as("select position, event_id from events order by position")
            .fetch_all(&pool)
            .await
            .unwrap();
    let positions: Vec<i64> = rows.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (1..=rows.len() as i64).collect::<Vec<_>>(),
        "no hole"
    );
    let stored: HashSet<uuid::Uuid> = rows.iter().map(|(_, id)| *id).collect();
    assert_eq!(stored.len(), rows.len(), "no event twice");
    let retried: BTreeSet<uuid::Uuid> = unanswered
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.id.parse().unwrap()))
        .collect();
    assert!(
        acknowledged.iter().all(|id| stored.contains(id)),
        "every acknowledged event is there"
    );
    assert!(
        retried.iter().all(|id| stored.contains(id)),
        "every retried event is there"
    );
    assert_eq!(
        rows.len(),
        acknowledged.len() + retried.len(),
        "and nothing else"
    );

    // The projections and the audit tree catch up to the head.
    let head = rows.len() as u64;
    let channel = tonic::transport::Endpoint::from_shared(address)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = proto::projections_client::ProjectionsClient::new(channel.clone())
            .get_status(())
            .await
            .unwrap()
            .into_inner();
        let tree = proto::audit_client::AuditClient::new(channel.clone())
            .get_tree_head(proto::GetTreeHeadRequest { tree_size: 0 })
            .await
            .unwrap()
            .into_inner();
        if status.projections.iter().all(|p| p.position >= head) && tree.tree_size as u64 >= head {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not caught up: {status:?}, tree {}",
            tree.tree_size
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    restarted.start_kill().unwrap();
    pool.close().await;
}
