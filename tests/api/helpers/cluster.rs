//! The PostgreSQL the tests run on: with `DATABASE_URL` unset, one throwaway cluster per test
//! binary, started from the installed server binaries (the same code as `diplog serve`'s
//! embedded mode); it stops, and its directory is deleted, when the binary exits. Each test
//! gets a fresh database in it.

use std::sync::OnceLock;

use diplog::pgcluster::PgCluster;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Connection options for a database in which test databases may be created.
fn admin_options() -> &'static PgConnectOptions {
    static ADMIN: OnceLock<PgConnectOptions> = OnceLock::new();
    ADMIN.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => url
            .parse()
            .expect("DATABASE_URL is not a valid PostgreSQL URL"),
        Err(_) => start_throwaway_cluster(),
    })
}

/// A URL for the database server the tests use, for a process of their own (which then
/// creates its databases there rather than start another cluster).
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| admin_options().to_url_lossy().to_string())
}

/// Starts the cluster on a thread of its own that lives as long as the test binary: each
/// test has its own runtime, and the cluster must outlive all of them.
fn start_throwaway_cluster() -> PgConnectOptions {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            // Throwaway data: durability buys nothing here and costs seconds.
            let cluster = PgCluster::start_throwaway(vec![
                ("fsync".into(), "off".into()),
                ("synchronous_commit".into(), "off".into()),
                ("full_page_writes".into(), "off".into()),
                ("max_connections".into(), "300".into()),
            ])
            .await;
            match cluster {
                Ok(cluster) => {
                    sender
                        .send(Ok(cluster.connect_options("postgres")))
                        .unwrap();
                    // Keep the cluster (and its lock) for the life of the process.
                    std::future::pending::<()>().await;
                    drop(cluster);
                }
                Err(error) => sender.send(Err(error.to_string())).unwrap(),
            }
        });
    });
    match receiver.recv().expect("the cluster thread answers") {
        Ok(options) => options,
        Err(error) => panic!(
            "could not start a throwaway PostgreSQL for the tests: {error}\n\
             (set DATABASE_URL to a PostgreSQL where this role may create databases instead)"
        ),
    }
}

/// A URL for `diplog serve --database-url` to reach a test database (on a unix socket when
/// the tests run their own cluster).
pub fn database_url_for(options: &sqlx::postgres::PgConnectOptions) -> String {
    let database = options.get_database().expect("a test database");
    match options.get_socket() {
        Some(socket) => format!(
            "postgres://{}@localhost:{}/{database}?host={}&sslmode=disable",
            options.get_username(),
            options.get_port(),
            socket.display()
        ),
        None => format!(
            "postgres://{}@{}:{}/{database}",
            options.get_username(),
            options.get_host(),
            options.get_port()
        ),
    }
}

/// `diplog serve` as a process on a test database; its gRPC address from its log.
/// Creates a fresh, empty database and answers how to connect to it.
pub async fn fresh_database() -> PgConnectOptions {
    let admin = admin_options().clone();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = admin
        .connect()
        .await
        .expect("could not connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut connection)
        .await
        .expect("could not create a test database");
    connection.close().await.ok();
    admin.database(&name)
}

/// A temporary directory under /tmp that an embedded cluster's unprivileged user (when the
/// tests run as root) may enter; deleted when dropped.
/// A PostgreSQL cluster of a test's own, which the test stops and starts again (a fault):
/// its data directory under one `reachable_tempdir`, and each start stops it when the test
/// process exits.
pub struct OwnCluster {
    _dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
}

impl OwnCluster {
    pub fn new(prefix: &str) -> Self {
        let dir = reachable_tempdir(prefix);
        let data_dir = dir.path().join("data");
        Self {
            _dir: dir,
            data_dir,
        }
    }

    /// Starts the cluster (made at the first start).
    pub async fn start(&self) -> diplog::pgcluster::PgCluster {
        Self::start_in(&self.data_dir).await
    }

    /// Where it lives, for a start from another task ([`OwnCluster::start_in`]).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.data_dir.clone()
    }

    pub async fn start_in(data_dir: &std::path::Path) -> diplog::pgcluster::PgCluster {
        let options = diplog::pgcluster::ClusterOptions {
            stop_when_process_exits: true,
            ..diplog::pgcluster::ClusterOptions::default()
        };
        diplog::pgcluster::PgCluster::start(data_dir, options)
            .await
            .expect("the cluster starts")
    }
}

pub fn reachable_tempdir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("a reachable temporary directory");
    dir
}
