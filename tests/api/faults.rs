//! Faults: PostgreSQL going away and coming back while the server runs.

use std::time::{Duration, Instant};

use tonic::Code;

use crate::helpers::{Expect, OwnCluster, read_all_from, spawn_app_on};

/// While PostgreSQL is down, appends fail promptly with UNAVAILABLE (so clients retry) rather
/// than hang or claim an internal error; once it is back they succeed again without restarting
/// the server, and the log has no hole.
#[tokio::test]
async fn appends_are_unavailable_while_postgres_is_down_and_succeed_once_it_is_back() {
    let own = OwnCluster::new("diplog-fault-");
    let cluster = own.start().await;
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

    let cluster = own.start().await;
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

    let own = OwnCluster::new("diplog-fault-");
    let cluster = own.start().await;
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
    let cluster = own.start().await;
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

/// A subscription catching up over a long log reads it ahead, several pages at once; when
/// PostgreSQL goes away under that read, the catch-up goes on page by page once it is back,
/// from the last event delivered: every event once, in order. The same for a filtered
/// subscription, which reads one page ahead while it delivers the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catch_up_read_ahead_broken_by_a_postgres_restart_goes_on_without_loss() {
    use diplog::proto::{self, subscribe_request::From, subscription_message::Message};

    const EVENTS: usize = 6_000;
    let own = OwnCluster::new("diplog-fault-");
    let cluster = own.start().await;
    let app = spawn_app_on(cluster.connect_options("diplog")).await;
    let types: Vec<String> = (0..EVENTS).map(|i| format!("E{i}")).collect();
    for chunk in types.chunks(1000) {
        let events: Vec<(&str, &str)> = chunk.iter().map(|t| (t.as_str(), "{}")).collect();
        app.append("s", Expect::Any, &events).await.unwrap();
    }
    let mut subscriptions = Vec::new();
    // Unfiltered, and filtered by a prefix every event's stream has.
    for filter in [None, Some("s")] {
        let subscription = app
            .new_client()
            .await
            .subscribe(proto::SubscribeRequest {
                from: Some(From::Start(())),
                filter: filter.map(|prefix| proto::SubscriptionFilter {
                    stream_prefix: prefix.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("subscribed")
            .into_inner();
        subscriptions.push((filter, subscription, Vec::new()));
    }
    async fn next_event(subscription: &mut tonic::Streaming<proto::SubscriptionMessage>) -> String {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), subscription.message())
                .await
                .expect("the subscription goes on")
                .expect("no error")
                .expect("not ended");
            if let Some(Message::Event(event)) = message.message {
                return event.r#type;
            }
        }
    }
    // Each client reads a little and stops: the server's queue fills, its read waits with
    // pages fetched ahead, and most of the log is still to be read. PostgreSQL goes away, and
    // comes back a second later; meanwhile the clients read on, through what the server
    // holds, until the read ahead needs the database it cannot reach.
    for (_, subscription, received) in &mut subscriptions {
        for _ in 0..10 {
            received.push(next_event(subscription).await);
        }
    }
    cluster.stop().await.unwrap();
    let restarted = tokio::spawn({
        let data_dir = own.data_dir();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            OwnCluster::start_in(&data_dir).await
        }
    });
    for (filter, subscription, received) in &mut subscriptions {
        while received.len() < EVENTS {
            received.push(next_event(subscription).await);
        }
        assert_eq!(
            *received, types,
            "every event once, in order (filter {filter:?})"
        );
    }
    let cluster = restarted.await.unwrap();
    app.stop().await;
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

    use crate::helpers::{Serve, database_url_for};
    use crate::helpers::{append_request, fresh_database, new_event};

    let database = fresh_database().await;
    let url = database_url_for(&database);
    let mut server = Serve::on_database(&url).start().await;
    let address = server.grpc.clone();

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
    server.kill().await;
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

    let mut restarted = Serve::on_database(&url).start().await;
    let address = restarted.grpc.clone();
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
    let channel = restarted.channel().await;
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
    restarted.child.start_kill().unwrap();
    pool.close().await;
}

/// How many backends hold each projection's advisory lock in this database.
async fn projection_lock_holders(pool: &sqlx::PgPool) -> Vec<(&'static str, i64)> {
    use diplog::projections::engine::registry::advisory_lock_key;
    let mut holders = Vec::new();
    for name in diplog::projections::NAMES {
        let key = advisory_lock_key(name) as u64;
        let count: i64 = sqlx::query_scalar(
            // pg_locks covers the cluster: other tests' databases use the same keys.
            "select count(*) from pg_locks where locktype = 'advisory' and granted \
             and objsubid = 1 \
             and database = (select oid from pg_database where datname = current_database()) \
             and classid::bigint = $1 and objid::bigint = $2",
        )
        .bind((key >> 32) as i64)
        .bind((key & 0xffff_ffff) as i64)
        .fetch_one(pool)
        .await
        .expect("read pg_locks");
        holders.push((*name, count));
    }
    holders
}

/// Each projection's holder as the servers report it: for each name, the indexes of the
/// servers that say they run it, once every server's runners have reached `head`.
async fn holders_at(
    channels: &[Option<tonic::transport::Channel>],
    head: u64,
    within: Duration,
) -> std::collections::BTreeMap<String, Vec<usize>> {
    use diplog::proto::projections_client::ProjectionsClient;
    let deadline = Instant::now() + within;
    loop {
        let mut holders = std::collections::BTreeMap::<String, Vec<usize>>::new();
        let mut caught_up = true;
        for (index, channel) in channels.iter().enumerate() {
            let Some(channel) = channel else { continue };
            let status = ProjectionsClient::new(channel.clone())
                .get_status(())
                .await
                .expect("projection status")
                .into_inner();
            caught_up &= status.projections.len() == diplog::projections::NAMES.len();
            for projection in status.projections {
                caught_up &= projection.position >= head;
                let entry = holders.entry(projection.name).or_default();
                if projection.holder == "THIS_SERVER" {
                    entry.push(index);
                }
            }
        }
        if caught_up {
            return holders;
        }
        assert!(
            Instant::now() < deadline,
            "the projections did not reach {head} within {within:?}: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three `diplog serve` processes on one database, clients appending through all three at
/// once: positions are gapless and in commit order, each stream's versions follow its
/// positions, every acknowledged event is there once; each projection is run by exactly one
/// server (by its own account and by PostgreSQL's advisory locks); and when the server
/// running projections is killed (-9), the others take them over within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_on_one_database_keep_one_log_and_one_runner_per_projection() {
    use std::collections::{BTreeMap, HashMap};

    use diplog::proto::event_log_client::EventLogClient;

    use crate::helpers::{Serve, database_url_for};
    use crate::helpers::{append_request, fresh_database, new_event};

    let database = fresh_database().await;
    let url = database_url_for(&database);
    let mut servers = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..3 {
        let server = Serve::on_database(&url).start().await;
        let channel = server.channel().await;
        servers.push(Some(server));
        channels.push(Some(channel));
    }

    // 4 clients per server; each appends 1-3 events 25 times, alternately to a stream of its
    // own and to one stream all of them share (so its versions come from every server).
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for (s, channel) in channels.iter().enumerate() {
        for c in 0..4 {
            let mut client = EventLogClient::new(channel.clone().unwrap());
            clients.spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..25usize {
                    let stream = if i % 2 == 0 {
                        format!("server-{s}-client-{c}")
                    } else {
                        "shared".to_owned()
                    };
                    let events: Vec<_> = (0..1 + i % 3)
                        .map(|_| new_event("Noted", &format!(r#"{{"s":{s},"c":{c},"i":{i}}}"#)))
                        .collect();
                    let ids: Vec<uuid::Uuid> =
                        events.iter().map(|e| e.id.parse().unwrap()).collect();
                    let response = client
                        .append(append_request(&stream, Expect::Any, events))
                        .await
                        .expect("an append through any server succeeds")
                        .into_inner();
                    acknowledged.extend(ids.into_iter().zip(response.positions));
                }
                acknowledged
            });
        }
    }
    let mut acknowledged: HashMap<uuid::Uuid, i64> = HashMap::new();
    while let Some(done) = clients.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    let load_took = started.elapsed();

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    type Row = (i64, uuid::Uuid, String, i64, chrono::DateTime<chrono::Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "select position, event_id, stream_id, stream_version, recorded_at from events \
         order by position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let positions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        positions,
        (1..=rows.len() as i64).collect::<Vec<_>>(),
        "no hole"
    );
    assert!(
        rows.windows(2).all(|w| w[0].4 <= w[1].4),
        "recorded_at never goes back along positions (commit order)"
    );
    let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for row in &rows {
        versions.entry(&row.2).or_default().push(row.3);
    }
    for (stream, versions) in &versions {
        assert_eq!(
            versions,
            &(1..=versions.len() as i64).collect::<Vec<_>>(),
            "{stream}: versions follow positions without a hole"
        );
    }
    assert_eq!(
        rows.len(),
        acknowledged.len(),
        "nothing but what was acknowledged"
    );
    for (_, id, ..) in &rows {
        assert!(acknowledged.contains_key(id), "{id} was not acknowledged");
    }
    for (position, id, ..) in &rows {
        assert_eq!(acknowledged[id], *position, "acknowledged at its position");
    }

    // Every projection reaches the head and is run by exactly one server.
    let head = rows.len() as u64;
    let holders = holders_at(&channels, head, Duration::from_secs(30)).await;
    for (name, by) in &holders {
        assert_eq!(by.len(), 1, "{name} is run by exactly one server: {by:?}");
    }
    for (name, count) in projection_lock_holders(&pool).await {
        assert_eq!(count, 1, "{name}: one advisory lock holder");
    }
    let mut per_server = [0; 3];
    for by in holders.values() {
        per_server[by[0]] += 1;
    }
    println!(
        "{} events from 12 clients through 3 servers in {load_took:?}; projections per \
         server: {per_server:?}",
        rows.len()
    );

    // Kill the server that runs the first projection; the other two take over its share.
    let victim = holders.values().next().unwrap()[0];
    let mut killed = servers[victim].take().unwrap();
    killed.kill().await;
    channels[victim] = None;
    let killed_at = Instant::now();
    let survivor = channels.iter().flatten().next().unwrap().clone();
    let response = EventLogClient::new(survivor)
        .append(append_request(
            "after-the-kill",
            Expect::NoStream,
            vec![new_event("Noted", "{}")],
        ))
        .await
        .expect("an append through a surviving server")
        .into_inner();
    let head = response.positions[0] as u64;
    let holders = holders_at(&channels, head, Duration::from_secs(10)).await;
    let takeover = killed_at.elapsed();
    for (name, by) in &holders {
        assert_eq!(by.len(), 1, "{name} is run by exactly one survivor: {by:?}");
        assert_ne!(by[0], victim);
    }
    for (name, count) in projection_lock_holders(&pool).await {
        assert_eq!(count, 1, "{name}: one advisory lock holder after the kill");
    }
    println!(
        "server {victim} (running {} projections) killed; every projection at {head} again \
         after {takeover:?}",
        per_server[victim]
    );
    assert!(
        takeover < Duration::from_secs(10),
        "taken over within seconds"
    );
    for server in servers.iter_mut().flatten() {
        server.child.start_kill().unwrap();
    }
    pool.close().await;
}

/// PostgreSQL stopped and started again under concurrent appends, with live subscribers. While
/// it is down every append fails with UNAVAILABLE well inside the client's deadline (none hangs
/// or claims another error); the clients retry each append with the same event ids until it
/// is acknowledged; once PostgreSQL is back the same server takes appends again without a
/// restart. Afterwards: every acknowledged event is stored exactly once, positions have no
/// hole, and each subscriber received every position exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_append_load_loses_nothing_and_subscriptions_resume() {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use diplog::proto::{self, subscribe_request::From, subscription_message::Message};
    use tokio::sync::Mutex;

    use crate::helpers::{append_request, new_event};

    const CLIENTS: usize = 8;
    const DEADLINE: Duration = Duration::from_secs(5);

    let own = OwnCluster::new("diplog-fault-");
    let cluster = own.start().await;
    let app = spawn_app_on(cluster.connect_options("diplog")).await;

    // Two subscribers from the start, each collecting positions until told the final head.
    let subscribers: Vec<_> = (0..2)
        .map(|_| {
            let app_url = app.server_url();
            tokio::spawn(async move {
                let mut client = proto::event_log_client::EventLogClient::connect(app_url)
                    .await
                    .unwrap();
                let mut stream = client
                    .subscribe(proto::SubscribeRequest {
                        from: Some(From::Start(())),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(async move {
                    while let Ok(Some(message)) = stream.message().await {
                        if let Some(Message::Event(event)) = message.message
                            && sender.send(event.position).is_err()
                        {
                            return;
                        }
                    }
                });
                receiver
            })
        })
        .collect();

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(Mutex::new(Vec::<(tonic::Code, Duration)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, acknowledged, failures, stop, count) = (
                app.server_url(),
                acknowledged.clone(),
                failures.clone(),
                stop.clone(),
                acknowledged_count.clone(),
            );
            tokio::spawn(async move {
                let mut client = proto::event_log_client::EventLogClient::connect(url)
                    .await
                    .unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let events = (0..1 + i % 2)
                        .map(|_| new_event("Noted", &format!(r#"{{"client":{c},"i":{i}}}"#)))
                        .collect();
                    let request = append_request(&format!("client-{c}"), Expect::Any, events);
                    // The same request (same ids) until it is acknowledged: a retry after an
                    // answer that was lost must not write twice.
                    loop {
                        let mut call = tonic::Request::new(request.clone());
                        call.set_timeout(DEADLINE);
                        let started = Instant::now();
                        match client.append(call).await {
                            Ok(_) => {
                                let ids = request.events.iter().map(|e| e.id.clone());
                                acknowledged.lock().await.extend(ids);
                                count.fetch_add(request.events.len(), Ordering::Relaxed);
                                break;
                            }
                            Err(status) => {
                                failures
                                    .lock()
                                    .await
                                    .push((status.code(), started.elapsed()));
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();

    let wait_for_acknowledged = async |at_least: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged_count.load(Ordering::Relaxed) < at_least {
            assert!(
                Instant::now() < deadline,
                "appends stalled below {at_least}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    wait_for_acknowledged(200).await;
    cluster.stop().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during_outage = failures.lock().await.len();
    let cluster = own.start().await;
    let before_restart = acknowledged_count.load(Ordering::Relaxed);
    wait_for_acknowledged(before_restart + 200).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("every writer finishes once PostgreSQL is back")
            .unwrap();
    }

    let failures = failures.lock().await.clone();
    println!(
        "acknowledged {} events; {} failed calls ({during_outage} within 2 s of the stop); \
         slowest failure {:?}",
        acknowledged_count.load(Ordering::Relaxed),
        failures.len(),
        failures.iter().map(|(_, took)| *took).max()
    );
    assert!(
        during_outage >= CLIENTS,
        "every client met the outage: {during_outage} failures"
    );
    for (code, took) in &failures {
        assert_eq!(*code, Code::Unavailable, "a failed append took {took:?}");
        assert!(
            *took < DEADLINE,
            "an append failed only after {took:?}, past the client's deadline"
        );
    }

    let log = app.read_all(read_all_from(1)).await;
    let positions: Vec<i64> = log.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        (1..=log.len() as i64).collect::<Vec<_>>(),
        "no hole"
    );
    let stored: HashSet<&str> = log.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(stored.len(), log.len(), "no event twice");
    let acknowledged = acknowledged.lock().await.clone();
    assert_eq!(
        acknowledged.iter().collect::<HashSet<_>>().len(),
        acknowledged.len()
    );
    assert!(
        acknowledged.iter().all(|id| stored.contains(id.as_str())),
        "every acknowledged event is there"
    );
    assert_eq!(log.len(), acknowledged.len(), "and nothing else");

    let head = log.len() as i64;
    for (n, subscriber) in subscribers.into_iter().enumerate() {
        let mut received = subscriber.await.unwrap();
        let mut delivered = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while delivered.len() < log.len() {
            match tokio::time::timeout_at(deadline, received.recv()).await {
                Ok(Some(position)) => delivered.push(position),
                Ok(None) => panic!("subscriber {n} ended after {} events", delivered.len()),
                Err(_) => panic!("subscriber {n} stalled after {} events", delivered.len()),
            }
        }
        assert_eq!(
            delivered,
            (1..=head).collect::<Vec<_>>(),
            "subscriber {n}: every position once, in order"
        );
    }
    app.stop().await;
    cluster.stop().await.unwrap();
}
