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
