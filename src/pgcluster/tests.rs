//! The embedded cluster's own tests: starting, stopping, the watchdog, refused setups.

use super::*;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Set in the child process that the watchdog test kills.
const OWNER_DIR_ENV: &str = "PGCLUSTER_TEST_OWNER_DATA_DIR";
const OWNER_READY: &str = "pgcluster-test-owner-ready";

/// A tempdir under /tmp and the data dir inside it. The tempdir is made traversable
/// because the server runs as `postgres` when the tests run as root.
fn scratch() -> (TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("pgcluster-test-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o711)).unwrap();
    let data_dir = tmp.path().join("data");
    (tmp, data_dir)
}

/// With the watchdog on, a failing test leaves no server behind.
fn test_options() -> ClusterOptions {
    ClusterOptions {
        stop_when_process_exits: true,
        remove_data_dir_on_exit: false,
        settings: [
            ("fsync", "off"),
            ("full_page_writes", "off"),
            ("synchronous_commit", "off"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .into(),
        ..ClusterOptions::default()
    }
}

async fn connect(cluster: &PgCluster, database: &str) -> PgConnection {
    PgConnection::connect_with(&cluster.connect_options(database))
        .await
        .unwrap()
}

fn postmaster_pid(data_dir: &Path) -> i32 {
    let pid_file = std::fs::read_to_string(data_dir.join("pgdata/postmaster.pid")).unwrap();
    pid_file.lines().next().unwrap().parse().unwrap()
}

/// A zombie counts as gone: it has exited and only waits to be reaped.
fn process_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Waits up to 10 s for the postmaster `pid` to exit and `path` to disappear.
async fn wait_until_gone(pid: i32, path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_running(pid) || path.exists() {
        assert!(
            Instant::now() < deadline,
            "postmaster running: {}, {} present: {}",
            process_running(pid),
            path.display(),
            path.exists()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fresh_cluster_serves_queries_and_stops() {
    let (_tmp, data_dir) = scratch();
    let cluster = PgCluster::start(&data_dir, test_options()).await.unwrap();
    assert_eq!(
        cluster.data_dir(),
        std::fs::canonicalize(&data_dir).unwrap()
    );

    let mut conn = connect(&cluster, "diplog").await;
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let (database, user): (String, String) =
        sqlx::query_as("select current_database(), current_user")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((database.as_str(), user.as_str()), ("diplog", "diplog"));
    let tcp: String = sqlx::query_scalar("show listen_addresses")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tcp, "");
    conn.close().await.unwrap();

    let socket = data_dir.join("run/.s.PGSQL.5432");
    assert!(socket.exists());
    cluster.stop().await.unwrap();
    assert!(!socket.exists());
    assert!(!data_dir.join("pgdata/postmaster.pid").exists());
}

#[tokio::test]
async fn second_owner_is_refused() {
    let (_tmp, data_dir) = scratch();
    let first = PgCluster::start(&data_dir, test_options()).await.unwrap();

    let err = PgCluster::start(&data_dir, test_options())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::AlreadyRunning { pid: Some(pid), .. } if pid == std::process::id()),
        "{err}"
    );
    assert!(
        err.to_string().contains("already using data directory"),
        "{err}"
    );

    // The refused start must not have disturbed the running cluster.
    let mut conn = connect(&first, "diplog").await;
    sqlx::query("select 1").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test]
async fn data_survives_restart_and_throwaway_dir_is_removed() {
    let (_tmp, data_dir) = scratch();
    let cluster = PgCluster::start(&data_dir, test_options()).await.unwrap();
    let mut conn = connect(&cluster, "diplog").await;
    sqlx::query("create table kept (value text)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("insert into kept values ('still here')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    cluster.stop().await.unwrap();

    let options = ClusterOptions {
        remove_data_dir_on_exit: true,
        ..test_options()
    };
    let cluster = PgCluster::start(&data_dir, options).await.unwrap();
    let mut conn = connect(&cluster, "diplog").await;
    let value: String = sqlx::query_scalar("select value from kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "still here");
    conn.close().await.unwrap();
    cluster.stop().await.unwrap();
    assert!(!data_dir.exists());
}

#[tokio::test]
async fn leftover_postmaster_is_restarted() {
    let (_tmp, data_dir) = scratch();
    // Without a watchdog, dropping leaves the server running and frees the lock,
    // just as a kill -9 of diplog would.
    let options = ClusterOptions {
        stop_when_process_exits: false,
        ..test_options()
    };
    let first = PgCluster::start(&data_dir, options).await.unwrap();
    let old_pid = postmaster_pid(&data_dir);
    drop(first);
    assert!(process_running(old_pid));

    let cluster = PgCluster::start(&data_dir, test_options()).await.unwrap();
    assert!(!process_running(old_pid));
    assert_ne!(postmaster_pid(&data_dir), old_pid);
    let mut conn = connect(&cluster, "diplog").await;
    sqlx::query("select 1").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn watchdog_stops_cluster_when_dropped_without_stop() {
    let (_tmp, data_dir) = scratch();
    let cluster = PgCluster::start(&data_dir, test_options()).await.unwrap();
    let pid = postmaster_pid(&data_dir);
    drop(cluster);
    wait_until_gone(pid, &data_dir.join("pgdata/postmaster.pid")).await;
    // The watchdog holds its copy of the lock until it has finished, then frees it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let cluster = loop {
        match PgCluster::start(&data_dir, test_options()).await {
            Err(ClusterError::AlreadyRunning { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => break result.unwrap(),
        }
    };
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn failed_start_shows_the_server_log() {
    let (_tmp, data_dir) = scratch();
    let options = ClusterOptions {
        settings: vec![("no_such_setting".to_owned(), "1".to_owned())],
        ..test_options()
    };
    let err = PgCluster::start(&data_dir, options).await.unwrap_err();
    assert!(matches!(err, ClusterError::StartFailed { .. }), "{err}");
    assert!(err.to_string().contains("no_such_setting"), "{err}");
}

/// Run only as the child process of `watchdog_stops_cluster_when_owner_is_killed`.
#[tokio::test]
#[ignore = "helper process for watchdog_stops_cluster_when_owner_is_killed"]
async fn watchdog_test_owner() {
    let Some(data_dir) = std::env::var_os(OWNER_DIR_ENV) else {
        return;
    };
    let options = ClusterOptions {
        remove_data_dir_on_exit: true,
        ..test_options()
    };
    let _cluster = PgCluster::start(Path::new(&data_dir), options)
        .await
        .unwrap();
    println!("{OWNER_READY}");
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn watchdog_stops_cluster_when_owner_is_killed() {
    let (_tmp, data_dir) = scratch();
    // Test names leave out the crate name that module_path! starts with.
    let (_, module) = module_path!().split_once("::").unwrap();
    let mut owner = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "--nocapture", "--test-threads=1"])
        .arg(format!("{module}::watchdog_test_owner"))
        .env(OWNER_DIR_ENV, &data_dir)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(owner.stdout.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest prints the test's output on its "test name ... " line.
            if line.contains(OWNER_READY) {
                return;
            }
        }
        panic!("the owner process exited before its cluster was up");
    })
    .await
    .expect("the owner process did not start its cluster in time");
    let pid = postmaster_pid(&data_dir);

    owner.kill().await.unwrap(); // SIGKILL: the owner gets no chance to stop the cluster.

    wait_until_gone(pid, &data_dir).await;
}

#[test]
fn missing_binaries_name_the_ways_out() {
    let empty = tempfile::tempdir().unwrap();
    let root = empty.path().join("no-such-root");
    let path = std::env::join_paths([empty.path()]).unwrap();
    let err = find_bin_dir(Some(&path), &root).unwrap_err();
    let message = err.to_string();
    for expected in [
        "were not found",
        root.to_str().unwrap(),
        "apt-get install postgresql",
        "DATABASE_URL",
        "--database-url",
        "docker compose up",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from: {message}"
        );
    }
    assert!(matches!(
        find_bin_dir(None, &root),
        Err(ClusterError::BinariesNotFound { .. })
    ));
}

#[test]
fn binaries_come_from_path_first_then_highest_complete_version() {
    let tmp = tempfile::tempdir().unwrap();
    let install = |dir: &Path, programs: &[&str]| {
        std::fs::create_dir_all(dir).unwrap();
        for program in programs {
            let path = dir.join(program);
            std::fs::write(&path, "").unwrap();
            std::fs::set_permissions(&path, Permissions::from_mode(0o755)).unwrap();
        }
    };
    let root = tmp.path().join("lib");
    install(&root.join("9.6/bin"), &SERVER_PROGRAMS);
    install(&root.join("14/bin"), &SERVER_PROGRAMS);
    install(&root.join("16/bin"), &["initdb", "pg_ctl"]);
    install(&root.join("latest/bin"), &SERVER_PROGRAMS);
    let partial = tmp.path().join("partial");
    install(&partial, &["pg_ctl"]);
    let path = std::env::join_paths([&partial]).unwrap();
    assert_eq!(
        find_bin_dir(Some(&path), &root).unwrap(),
        root.join("14/bin")
    );

    let full = tmp.path().join("full");
    install(&full, &SERVER_PROGRAMS);
    let path = std::env::join_paths([&partial, &full]).unwrap();
    assert_eq!(find_bin_dir(Some(&path), &root).unwrap(), full);
}

#[test]
fn untraversable_parent_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o700)).unwrap();
    let nobody = RunAs {
        name: "nobody".to_owned(),
        uid: 65534,
        gid: 65534,
    };
    let err = check_traversable(&data_dir, &nobody).unwrap_err();
    assert!(
        matches!(&err, ClusterError::DataDirNotTraversable { blocked, .. } if blocked == tmp.path()),
        "{err}"
    );
    assert!(err.to_string().contains("--data-dir"), "{err}");

    std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o711)).unwrap();
    check_traversable(&data_dir, &nobody).unwrap();
}

#[tokio::test]
async fn overlong_socket_path_is_refused() {
    let (_tmp, data_dir) = scratch();
    let deep = data_dir.join("d".repeat(100));
    let err = PgCluster::start(&deep, test_options()).await.unwrap_err();
    assert!(
        matches!(err, ClusterError::SocketPathTooLong { .. }),
        "{err}"
    );
}

#[test]
fn server_arguments_survive_the_shell() {
    assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
    assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
    assert_eq!(
        shell_quote(OsStr::new("listen_addresses=")),
        "'listen_addresses='"
    );
}
