//! Health follows the database: the gRPC health service and `/healthz` say NOT_SERVING while
//! PostgreSQL cannot be reached and SERVING once it can, calls are answered UNAVAILABLE at once
//! meanwhile, and `diplog serve` starts its embedded PostgreSQL again when it dies.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diplog::proto::event_log_client::EventLogClient;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    Expect, OwnCluster, Serve, append_request, new_event, reachable_tempdir, read_all_from,
    spawn_app_on,
};

async fn grpc_health(channel: tonic::transport::Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("the health service answers without the database")
        .into_inner()
        .status()
}

/// The status line of `GET /healthz`.
async fn healthz(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// Polls the gRPC health of the whole server until it is `wanted`.
async fn wait_for_health(
    channel: &tonic::transport::Channel,
    wanted: ServingStatus,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let status = grpc_health(channel.clone(), "").await;
        if status == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {status:?}, not {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_healthz_agree_while_postgres_is_down_and_calls_fail_at_once() {
    let own = OwnCluster::new("diplog-health-");
    let cluster = own.start().await;
    let app = spawn_app_on(cluster.connect_options("diplog")).await;
    let channel = app.channel().await;
    assert_eq!(
        grpc_health(channel.clone(), "").await,
        ServingStatus::Serving
    );
    assert!(healthz(app.http_addr).await.contains("200"));
    let probe = crate::helpers::diplog(["health", "--server", &app.server_url()]).await;
    assert_eq!(
        probe.status.code(),
        Some(0),
        "{}",
        crate::helpers::shown(&probe)
    );

    cluster.stop().await.unwrap();
    wait_for_health(&channel, ServingStatus::NotServing, Duration::from_secs(5)).await;
    for service in [
        "diplog.v1.EventLog",
        "diplog.v1.Diplomacy",
        "diplog.v1.Projections",
    ] {
        assert_eq!(
            grpc_health(channel.clone(), service).await,
            ServingStatus::NotServing,
            "{service}"
        );
    }
    assert!(healthz(app.http_addr).await.contains("503"));
    // What a container's HEALTHCHECK runs says so too.
    let probe = crate::helpers::diplog(["health", "--server", &app.server_url()]).await;
    assert_eq!(
        probe.status.code(),
        Some(1),
        "{}",
        crate::helpers::shown(&probe)
    );
    assert!(
        crate::helpers::text(&probe.stderr).contains("NOT_SERVING"),
        "{}",
        crate::helpers::shown(&probe)
    );
    let started = Instant::now();
    let refused = app
        .append("s", Expect::Any, &[("During", "{}")])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "UNAVAILABLE came only after {:?}",
        started.elapsed()
    );

    let cluster = own.start().await;
    wait_for_health(&channel, ServingStatus::Serving, Duration::from_secs(10)).await;
    assert!(healthz(app.http_addr).await.contains("200"));
    app.append("s", Expect::Any, &[("After", "{}")])
        .await
        .unwrap();
    app.stop().await;
    cluster.stop().await.unwrap();
}

fn postmaster_pid(data_dir: &std::path::Path) -> i32 {
    let pid_file = std::fs::read_to_string(data_dir.join("pgdata/postmaster.pid")).unwrap();
    pid_file.lines().next().unwrap().trim().parse().unwrap()
}

/// The reproduction: kill -9 the embedded postmaster under append load. Appends
/// resume by themselves within seconds (the server starts PostgreSQL again), every
/// acknowledged event is in the log exactly once, and SIGTERM then stops the server cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_restarts_its_embedded_postgres_after_kill_9_and_loses_nothing_acknowledged() {
    const CLIENTS: usize = 4;
    const APPENDS_PER_CLIENT: usize = 60;
    let dir = reachable_tempdir("diplog-supervise-");
    let data_dir = dir.path().join("data");
    let mut server = Serve::embedded(&data_dir)
        .within(Duration::from_secs(120))
        .start()
        .await;
    let channel = server.channel().await;

    // Each client appends one event at a time, retrying an UNAVAILABLE answer with the same
    // id until it is acknowledged (as a client should), and records what was acknowledged.
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, i64>::new()));
    let unavailable = Arc::new(Mutex::new(0usize));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let mut grpc = EventLogClient::new(channel.clone());
        let acknowledged = acknowledged.clone();
        let unavailable = unavailable.clone();
        clients.spawn(async move {
            for n in 0..APPENDS_PER_CLIENT {
                let event = new_event("Noted", &format!("{{\"client\":{client},\"n\":{n}}}"));
                let id = event.id.clone();
                let request = append_request(&format!("s-{client}"), Expect::Any, vec![event]);
                let deadline = Instant::now() + Duration::from_secs(60);
                let response = loop {
                    match grpc.append(request.clone()).await {
                        Ok(response) => break response.into_inner(),
                        Err(status)
                            if status.code() == Code::Unavailable && Instant::now() < deadline =>
                        {
                            *unavailable.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(status) => panic!("append did not resume: {status:?}"),
                    }
                };
                acknowledged
                    .lock()
                    .unwrap()
                    .insert(id, response.positions[0]);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
    // Kill the postmaster once appends are flowing.
    let until = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(Instant::now() < until, "no appends were acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(postmaster_pid(&data_dir)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let resumed_after = killed_at.elapsed();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(acknowledged.len(), CLIENTS * APPENDS_PER_CLIENT);
    let mut reader = EventLogClient::new(channel.clone());
    let mut log = reader
        .read_all(read_all_from(1))
        .await
        .unwrap()
        .into_inner();
    let mut seen = HashSet::new();
    let mut positions = Vec::new();
    while let Some(event) = log.message().await.unwrap() {
        assert!(seen.insert(event.id.clone()), "event {} twice", event.id);
        positions.push(event.position);
        if let Some(position) = acknowledged.get(&event.id) {
            assert_eq!(*position, event.position, "event {} moved", event.id);
        }
    }
    for id in acknowledged.keys() {
        assert!(seen.contains(id), "acknowledged event {id} is missing");
    }
    let gapless: Vec<i64> = (1..=positions.len() as i64).collect();
    assert_eq!(positions, gapless, "positions have a hole");
    let log_lines = server.log();
    assert!(
        log_lines.contains("the embedded PostgreSQL is gone") && log_lines.contains("runs again"),
        "the restart is logged: {log_lines}"
    );
    println!(
        "kill -9: {} UNAVAILABLE answers retried; all appends done {resumed_after:?} after the kill",
        unavailable.lock().unwrap()
    );

    let exit = server.terminate(Duration::from_secs(60)).await;
    assert!(exit.success(), "the server stopped with {exit}");
}
