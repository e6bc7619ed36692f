//! Obtaining the database: connect to `--database-url`, or start the embedded PostgreSQL
//! cluster under `--data-dir` and stop it again on close.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::health::DatabaseHealth;
use crate::pgcluster::{ClusterError, ClusterOptions, PgCluster};

/// How often the supervisor looks whether the embedded postmaster still runs.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
/// The first and the longest wait between two attempts to start it again.
const RESTART_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// How long a request waits for a pooled connection before it fails (UNAVAILABLE when the
/// database is down), so no call hangs past a sensible deadline.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The session settings of every connection diplog makes (its pool, and what derives its
/// options from the pool's: projection runners, listeners, the tree builder).
///
/// JIT off: diplog's statements each touch a few thousand rows at most, but a table not yet
/// ANALYZEd (a fresh log's one-row `log_head` is estimated at 1,810 rows) can lift their cost
/// past `jit_above_cost`. Measured in the bench's GDELT import: each projection runner's
/// catch-up read took 0.4-0.6 s, of which 0.5 s was compiling (0.2 ms executing).
pub fn session_options(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("jit", "off")])
}

pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A connection pool, and the embedded cluster behind it when there is one.
pub struct Database {
    pool: PgPool,
    cluster: Option<Arc<PgCluster>>,
    supervisor: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Database {
    /// The database for a command (verify, restore, token): when another diplog process
    /// (a running `diplog serve`) owns the embedded cluster, connects to it over its unix
    /// socket rather than failing; it then stops when that process does.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        Self::open_with(args, true).await
    }

    /// The database for a read-only command (`verify`): like [`Self::open`], but it never
    /// creates an embedded cluster where there is none.
    pub async fn open_existing(args: &DatabaseArgs) -> anyhow::Result<Self> {
        if args.database_url.is_none() && !PgCluster::exists(&args.data_dir) {
            anyhow::bail!(
                "there is no diplog data directory at {} (no PostgreSQL cluster in it): give the \
                 --data-dir of a server's data, or --database-url",
                args.data_dir.display()
            );
        }
        Self::open(args).await
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
                    let options =
                        session_options(PgCluster::running_connect_options(data_dir, "diplog"));
                    let pool = pool_options(args.max_connections)
                        .connect_with(options)
                        .await
                        .context("could not connect to the embedded PostgreSQL another diplog process runs")?;
                    return Ok(Self {
                        pool,
                        cluster: None,
                        supervisor: None,
                    });
                }
                let cluster = started.with_context(|| {
                    format!(
                        "could not start the embedded PostgreSQL under {}",
                        args.data_dir.display()
                    )
                })?;
                info!(data_dir = %cluster.data_dir().display(), "embedded PostgreSQL running");
                (cluster.connect_options("diplog"), Some(Arc::new(cluster)))
            }
        };
        let pool = pool_options(args.max_connections)
            .connect_with(session_options(options))
            .await
            .map_err(|error| {
                let hint = match error.to_string().contains("certificate") {
                    true => {
                        " (TLS: the server's certificate must be signed by the CA in \
                         `sslrootcert` and, with sslmode=verify-full, name the host in the URL)"
                    }
                    false => "",
                };
                anyhow::anyhow!("could not connect to PostgreSQL{hint}: {error}")
            })?;
        Ok(Self {
            pool,
            cluster,
            supervisor: None,
        })
    }

    /// Watches the embedded cluster (if this process runs one) until [`Self::close`]: when
    /// its postmaster dies, `health` says so at once and the cluster is started again, with
    /// backoff, until it runs. Acknowledged events are safe: PostgreSQL recovers them from
    /// its WAL on the restart.
    pub fn supervise(&mut self, health: DatabaseHealth) {
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(cluster, health, stop.clone()));
        self.supervisor = Some((stop, task));
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.supervisor {
            stop.cancel();
            if let Err(error) = task.await {
                error!(error = %error, "the cluster supervisor panicked");
            }
        }
        self.pool.close().await;
        if let Some(cluster) = self.cluster {
            let cluster = Arc::into_inner(cluster).expect("the supervisor has ended");
            cluster
                .stop()
                .await
                .context("could not stop the embedded PostgreSQL")?;
        }
        Ok(())
    }
}

async fn supervise(cluster: Arc<PgCluster>, health: DatabaseHealth, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SUPERVISE_EVERY) => {}
        }
        if cluster.postmaster_alive() {
            continue;
        }
        health.set_unreachable("the embedded PostgreSQL stopped");
        error!(
            data_dir = %cluster.data_dir().display(),
            "the embedded PostgreSQL is gone (killed or crashed); starting it again"
        );
        let (mut backoff, longest) = RESTART_BACKOFF;
        loop {
            match cluster.start_again().await {
                Ok(()) => {
                    info!("the embedded PostgreSQL runs again");
                    health.set_reachable();
                    break;
                }
                Err(error) => {
                    warn!(error = %error, retry_in = ?backoff, "could not start the embedded PostgreSQL again");
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(longest);
        }
    }
}

/// The database: a URL, or else the embedded cluster under `--data-dir`.
/// No `Debug`: the URL may hold a password.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. Unset: run an embedded PostgreSQL cluster under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data directory of the embedded cluster (created and initialised on first run).
    #[arg(long, env = "DIPLOG_DATA_DIR", default_value = "./diplog-data")]
    pub data_dir: PathBuf,
    /// Database connections in the pool.
    #[arg(long, env = "DIPLOG_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
}
