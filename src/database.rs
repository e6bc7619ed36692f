//! Obtaining the database: connect to `--database-url`, or start the embedded PostgreSQL
//! cluster under `--data-dir` and stop it again on close.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tracing::info;

use crate::config::DatabaseArgs;
use crate::pgcluster::{ClusterError, ClusterOptions, PgCluster};

/// How long a request waits for a pooled connection before it fails (UNAVAILABLE when the
/// database is down), so no call hangs past a sensible deadline.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A connection pool, and the embedded cluster behind it when there is one.
pub struct Database {
    pool: PgPool,
    cluster: Option<PgCluster>,
}

impl Database {
    /// The database for a command (verify, restore, token): when another diplog process
    /// (a running `diplog serve`) owns the embedded cluster, connects to it over its unix
    /// socket rather than failing; it then stops when that process does.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        Self::open_with(args, true).await
    }

    /// The database for `diplog serve`: the embedded cluster must be this process's own
    /// (a second server on the same data dir is refused: the first would stop the cluster
    /// under it).
    pub async fn open_for_server(args: &DatabaseArgs) -> anyhow::Result<Self> {
        Self::open_with(args, false).await
    }

    async fn open_with(args: &DatabaseArgs, share_running: bool) -> anyhow::Result<Self> {
        let (options, cluster) = match &args.database_url {
            Some(url) => {
                let options: PgConnectOptions =
                    url.parse().context("could not parse --database-url")?;
                (options, None)
            }
            None => {
                let started = PgCluster::start(
                    &args.data_dir,
                    ClusterOptions {
                        stop_when_process_exits: true,
                        ..ClusterOptions::default()
                    },
                )
                .await;
                if share_running
                    && let Err(ClusterError::AlreadyRunning { data_dir, pid }) = &started
                {
                    info!(data_dir = %data_dir.display(), ?pid, "using the embedded PostgreSQL another diplog process runs");
                    let options = PgCluster::running_connect_options(data_dir, "diplog");
                    let pool = pool_options(args.max_connections)
                        .connect_with(options)
                        .await
                        .context("could not connect to the embedded PostgreSQL another diplog process runs")?;
                    return Ok(Self {
                        pool,
                        cluster: None,
                    });
                }
                let cluster = started.with_context(|| {
                    format!(
                        "could not start the embedded PostgreSQL under {}",
                        args.data_dir.display()
                    )
                })?;
                info!(data_dir = %cluster.data_dir().display(), "embedded PostgreSQL running");
                (cluster.connect_options("diplog"), Some(cluster))
            }
        };
        let pool = pool_options(args.max_connections)
            .connect_with(options)
            .await
            .context("could not connect to PostgreSQL")?;
        Ok(Self { pool, cluster })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            cluster
                .stop()
                .await
                .context("could not stop the embedded PostgreSQL")?;
        }
        Ok(())
    }
}
