//! diplog's own PostgreSQL cluster, run from the installed server binaries.
//!
//! diplog uses it when it is started without a database URL, and the test suite
//! uses it for throwaway clusters. Everything lives under one data directory:
//!
//! - `pgdata/`: the cluster (PGDATA), whose superuser is `diplog`;
//! - `run/`: the unix socket directory (the server listens on no TCP port);
//! - `postgres.log`: the server log;
//! - `diplog.lock`: an flock that makes one diplog process the cluster's owner.
//!
//! PostgreSQL refuses to run as root, so when diplog runs as root the server
//! runs as the `postgres` system user, else as `nobody`.
//!
//! Only diplog's own OS user may reach the cluster: the data directory and the socket
//! directory are 0700 (the socket itself too), the log 0600, and the one `pg_hba.conf` rule
//! is peer authentication mapped from that user to the `diplog` role, rewritten at every
//! start (so a cluster made before, with `trust`, is closed on its next start). Another
//! local user can neither enter the socket directory nor pass the authentication.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use tokio::process::{Child, Command};
use tracing::{info, warn};

mod host;
mod sizing;
#[cfg(test)]
mod tests;

use host::{
    check_socket_path, check_traversable, current_user_name, find_bin_dir, io_error, lock_data_dir,
    log_tail, run, shell_quote, switch_user_prefix, unprivileged_user,
};

/// The cluster's superuser, created by initdb.
const SUPERUSER: &str = "diplog";
/// The database diplog itself uses, created on start if missing.
const DATABASE: &str = "diplog";
/// Only names the socket file: the server listens on no TCP port.
const PORT: u16 = 5432;
/// Where Debian and Ubuntu put versioned server binaries that are not on PATH.
const FALLBACK_ROOT: &str = "/usr/lib/postgresql";
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// How much of postgres.log a start failure shows.
const LOG_TAIL_LINES: usize = 20;
/// Seconds pg_ctl waits for the server to start or stop.
const PG_CTL_TIMEOUT: &str = "60";
/// The name of the peer map from diplog's OS user to [`SUPERUSER`].
const PEER_MAP: &str = "diplog";

/// How [`PgCluster::start`] runs the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Stop the cluster (pg_ctl stop -m fast) automatically if this process dies without calling stop() (e.g. kill -9).
    /// The watchdog doing this also stops it when the `PgCluster` is dropped without stop(),
    /// and keeps the data dir locked until it has finished.
    pub stop_when_process_exits: bool,
    /// Delete the whole data dir once the cluster has stopped (throwaway clusters for tests).
    pub remove_data_dir_on_exit: bool,
    /// Extra `-c name=value` server settings (tests pass fsync=off etc.).
    pub settings: Vec<(String, String)>,
    /// The port, which names the socket file (and is the TCP port where a setting opens
    /// one); default 5432.
    pub port: Option<u16>,
    /// `pg_hba.conf` lines after diplog's own rule, e.g. `hostssl …` for a test of TLS
    /// connections. None by default: only diplog's own OS user, over the socket.
    pub extra_access_rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under {}/*/bin; \
         install PostgreSQL 14+ server binaries (e.g. `apt-get install postgresql`), \
         set DATABASE_URL / --database-url to an existing database, or run `docker compose up`",
        .searched_root.display()
    )]
    BinariesNotFound { searched_root: PathBuf },
    #[error(
        "another diplog server is already using data directory {} (pid {})",
        .data_dir.display(),
        .pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string())
    )]
    AlreadyRunning { data_dir: PathBuf, pid: Option<u32> },
    #[error(
        "diplog runs as root, so PostgreSQL runs as user `{user}`, but that user cannot enter {} \
         (a parent of data directory {}); choose another --data-dir (e.g. under /tmp or /var/lib) \
         or run diplog as a non-root user",
        .blocked.display(),
        .data_dir.display()
    )]
    DataDirNotTraversable {
        user: String,
        blocked: PathBuf,
        data_dir: PathBuf,
    },
    #[error(
        "the unix socket path {} is {len} bytes long, more than the {MAX_SOCKET_PATH} allowed; \
         choose a shorter --data-dir",
        .path.display()
    )]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error(
        "diplog runs as root, but neither the `postgres` nor the `nobody` user exists to run \
         PostgreSQL as; create one or run diplog as a non-root user"
    )]
    NoUnprivilegedUser,
    #[error(
        "neither setpriv nor runuser was found, which are needed to stop the cluster as user \
         `{user}` after diplog exits"
    )]
    NoUserSwitchTool { user: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {output}")]
    CommandFailed {
        what: &'static str,
        status: ExitStatus,
        output: String,
    },
    #[error("PostgreSQL did not start ({status}); last lines of {}:\n{log_tail}", .log_file.display())]
    StartFailed {
        status: ExitStatus,
        log_file: PathBuf,
        log_tail: String,
    },
    #[error("could not create the `diplog` database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A running cluster owned by this process.
#[derive(Debug)]
pub struct PgCluster {
    data_dir: PathBuf,
    pgdata: PathBuf,
    run_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    /// The unprivileged account the server runs as when we are root.
    run_as: Option<RunAs>,
    remove_data_dir_on_exit: bool,
    /// The `-c` settings it was started with, for a restart after a crash.
    settings: Vec<(String, String)>,
    port: u16,
    extra_access_rules: Vec<String>,
    /// Dropping it closes the watchdog's stdin, which makes it stop the cluster.
    watchdog: Option<Child>,
    /// Our flock on diplog.lock lasts as long as this file (and the watchdog's copy) is open.
    lock: File,
}

#[derive(Debug)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

impl PgCluster {
    /// Starts (initialising on first run) the cluster that lives under `data_dir`:
    /// data_dir/pgdata (PGDATA), data_dir/run (unix socket dir), data_dir/postgres.log, data_dir/diplog.lock.
    /// Creates the database `diplog` if missing.
    pub async fn start(
        data_dir: &Path,
        options: ClusterOptions,
    ) -> Result<PgCluster, ClusterError> {
        let bin_dir = find_bin_dir(
            std::env::var_os("PATH").as_deref(),
            Path::new(FALLBACK_ROOT),
        )?;
        let run_as = if nix::unistd::geteuid().is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        std::fs::create_dir_all(data_dir)
            .map_err(io_error(format!("creating {}", data_dir.display())))?;
        let data_dir = std::fs::canonicalize(data_dir)
            .map_err(io_error(format!("resolving {}", data_dir.display())))?;
        let run_dir = data_dir.join("run");
        check_socket_path(&run_dir, options.port.unwrap_or(PORT))?;
        if let Some(user) = &run_as {
            check_traversable(&data_dir, user)?;
        }
        let lock = lock_data_dir(&data_dir).await?;

        let mut cluster = PgCluster {
            pgdata: data_dir.join("pgdata"),
            log_file: data_dir.join("postgres.log"),
            run_dir,
            data_dir,
            bin_dir,
            run_as,
            remove_data_dir_on_exit: options.remove_data_dir_on_exit,
            settings: options.settings,
            port: options.port.unwrap_or(PORT),
            extra_access_rules: options.extra_access_rules,
            watchdog: None,
            lock,
        };
        // Spawned first so that it also cleans up after a start that fails half-way.
        if options.stop_when_process_exits {
            cluster.watchdog = Some(cluster.spawn_watchdog()?);
        }
        cluster.prepare_dirs()?;
        if !Self::exists(&cluster.data_dir) {
            cluster.initdb().await?;
        }
        cluster.write_access_rules()?;
        cluster.stop_leftover_postmaster().await?;
        cluster.pg_start(&cluster.settings).await?;
        if let Err(err) = cluster.ensure_database().await {
            // Leave no server running that nobody owns.
            if let Err(stop_err) = cluster.pg_ctl_stop().await {
                warn!(error = %stop_err, "could not stop PostgreSQL after a failed start");
            }
            return Err(err);
        }
        Ok(cluster)
    }

    /// Whether `data_dir` holds an initialised cluster.
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join("pgdata").join("PG_VERSION").exists()
    }

    /// Options for connecting over the unix socket as the cluster's superuser to `database`.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        Self::running_connect_options(&self.data_dir, database).port(self.port)
    }

    /// The same, for a cluster under `data_dir` that another process runs (and owns).
    pub fn running_connect_options(data_dir: &Path, database: &str) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .socket(data_dir.join("run"))
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
            // The socket needs no TLS; this also overrides a PGSSLMODE=require in the environment.
            .ssl_mode(PgSslMode::Disable)
    }

    /// The canonicalized data directory.
    /// A throwaway cluster in a fresh directory under the system temp dir, stopped and
    /// deleted once this process exits (or on `stop`). For tests and the benchmark.
    pub async fn start_throwaway(
        settings: Vec<(String, String)>,
    ) -> Result<PgCluster, ClusterError> {
        let dir = tempfile::Builder::new()
            .prefix("diplog-pg-")
            .tempdir()
            .map_err(io_error("could not create a temporary directory".into()))?
            .keep();
        let options = ClusterOptions {
            stop_when_process_exits: true,
            remove_data_dir_on_exit: true,
            settings,
            ..ClusterOptions::default()
        };
        Self::start(&dir, options).await
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the postmaster recorded in `postmaster.pid` still runs. False once it has died
    /// (kill -9, a crash) or stopped, so a supervisor can start it again.
    pub fn postmaster_alive(&self) -> bool {
        let Ok(pid_file) = std::fs::read_to_string(self.pgdata.join("postmaster.pid")) else {
            return false;
        };
        let Some(pid) = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return false;
        };
        // A zombie (a postmaster reparented to us, as PID 1 in a container) is dead too.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        });
        let exists = match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) => true,
            Err(errno) => errno == nix::errno::Errno::EPERM,
        };
        // The pid may have been reused by another program since.
        let postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map_or(true, |comm| comm.trim() == "postgres");
        exists && !zombie && postgres
    }

    /// Starts the server again with the settings of the first start, after it died. Fails
    /// while the dead server's backends still hold its shared memory: retry.
    pub async fn start_again(&self) -> Result<(), ClusterError> {
        self.pg_start(&self.settings).await
    }

    /// Stops the cluster (fast shutdown) and waits for it; releases the lock.
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        self.pg_ctl_stop().await?;
        if let Some(mut watchdog) = self.watchdog.take() {
            // Nothing is left for it to do; killing it releases its copy of the lock now.
            watchdog
                .kill()
                .await
                .map_err(io_error("stopping the watchdog".to_owned()))?;
        }
        info!(
            data_dir = %self.data_dir.display(),
            socket_dir = %self.run_dir.display(),
            "PostgreSQL cluster stopped"
        );
        if self.remove_data_dir_on_exit {
            tokio::fs::remove_dir_all(&self.data_dir)
                .await
                .map_err(io_error(format!("removing {}", self.data_dir.display())))?;
        }
        Ok(())
    }

    /// A command for a server program, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // The server's user may not be able to enter our working directory.
        cmd.current_dir(&self.data_dir).stdin(Stdio::null());
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd
    }

    /// A shell that waits for EOF on its stdin, which happens when this process exits
    /// (even by kill -9) or drops the `PgCluster`, then stops the cluster and removes the
    /// data dir if asked. Its stdout is a copy of our locked file, so nobody else can take
    /// over the data dir until it is done.
    fn spawn_watchdog(&self) -> Result<Child, ClusterError> {
        const SCRIPT: &str = r#"trap '' HUP INT
read -r _
remove=$1
shift
"$@" </dev/null >/dev/null 2>&1
if [ -n "$remove" ]; then rm -rf -- "$remove" >/dev/null; fi
"#;
        let lock = self
            .lock
            .try_clone()
            .map_err(io_error("duplicating the lock file".to_owned()))?;
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(SCRIPT).arg("diplog-pg-watchdog");
        cmd.arg(if self.remove_data_dir_on_exit {
            self.data_dir.as_os_str()
        } else {
            OsStr::new("")
        });
        // The shell stays our user so it can remove a root-owned data dir.
        if let Some(user) = &self.run_as {
            cmd.args(switch_user_prefix(user)?);
        }
        cmd.arg(self.bin_dir.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-t", PG_CTL_TIMEOUT, "-D"])
            .arg(&self.pgdata)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(lock)
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C or kill aimed at ours must not reach it.
            .process_group(0);
        cmd.spawn()
            .map_err(io_error("starting the cluster watchdog".to_owned()))
    }

    /// Creates what the server writes to, owned by the user it runs as, and closed to
    /// every other user (also on a data dir made before these modes were set).
    fn prepare_dirs(&self) -> Result<(), ClusterError> {
        for dir in [&self.pgdata, &self.run_dir] {
            std::fs::create_dir_all(dir)
                .map_err(io_error(format!("creating {}", dir.display())))?;
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log_file)
            .map_err(io_error(format!("creating {}", self.log_file.display())))?;
        for (path, mode) in [
            (&self.data_dir, 0o700),
            (&self.pgdata, 0o700),
            (&self.run_dir, 0o700),
            (&self.log_file, 0o600),
        ] {
            std::fs::set_permissions(path, Permissions::from_mode(mode))
                .map_err(io_error(format!("restricting {}", path.display())))?;
        }
        if let Some(user) = &self.run_as {
            for path in [&self.data_dir, &self.pgdata, &self.run_dir, &self.log_file] {
                std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).map_err(
                    io_error(format!("giving {} to user {}", path.display(), user.name)),
                )?;
            }
        }
        Ok(())
    }

    /// Writes the cluster's authentication rules: the `diplog` role over the unix socket,
    /// by peer authentication, for diplog's own OS user only; nothing else.
    fn write_access_rules(&self) -> Result<(), ClusterError> {
        let owner = current_user_name()?;
        let mut hba = format!(
            "# Written by diplog at every start: only diplog's own OS user may connect.\n\
             local all {SUPERUSER} peer map={PEER_MAP}\n"
        );
        for rule in &self.extra_access_rules {
            hba.push_str(rule);
            hba.push('\n');
        }
        let ident = format!(
            "# Written by diplog at every start: the OS user diplog runs as.\n\
             {PEER_MAP} \"{}\" {SUPERUSER}\n",
            owner.replace('"', "\"\"")
        );
        for (name, text) in [("pg_hba.conf", hba), ("pg_ident.conf", ident)] {
            let path = self.pgdata.join(name);
            std::fs::write(&path, text).map_err(io_error(format!("writing {}", path.display())))?;
            std::fs::set_permissions(&path, Permissions::from_mode(0o600))
                .map_err(io_error(format!("restricting {}", path.display())))?;
            if let Some(user) = &self.run_as {
                std::os::unix::fs::chown(&path, Some(user.uid), Some(user.gid)).map_err(
                    io_error(format!("giving {} to user {}", path.display(), user.name)),
                )?;
            }
        }
        Ok(())
    }

    async fn initdb(&self) -> Result<(), ClusterError> {
        info!(data_dir = %self.data_dir.display(), "initialising PostgreSQL cluster");
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.pgdata).args([
            &format!("--username={SUPERUSER}"),
            // Replaced by `write_access_rules` before the first start.
            "--auth-local=peer",
            "--auth-host=reject",
            "--encoding=UTF8",
            "--locale=C",
        ]);
        // A throwaway cluster has nothing worth syncing to disk; this halves initdb's time.
        if self.remove_data_dir_on_exit {
            cmd.arg("--no-sync");
        }
        run(cmd, "initdb").await
    }

    /// A postmaster left by a diplog that died without stopping it (e.g. kill -9) still
    /// holds the socket; restarting it also applies this start's settings.
    async fn stop_leftover_postmaster(&self) -> Result<(), ClusterError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status").arg("-D").arg(&self.pgdata);
        let status = cmd
            .output()
            .await
            .map_err(io_error("running pg_ctl status".to_owned()))?
            .status;
        if status.success() {
            warn!(
                data_dir = %self.data_dir.display(),
                "PostgreSQL from an earlier run is still running on this data dir; restarting it"
            );
            self.pg_ctl_stop().await?;
        }
        Ok(())
    }

    async fn pg_start(&self, settings: &[(String, String)]) -> Result<(), ClusterError> {
        let mut server_args: Vec<OsString> = vec![
            "-k".into(),
            self.run_dir.clone().into(),
            "-p".into(),
            self.port.to_string().into(),
            "-c".into(),
            "listen_addresses=".into(),
            "-c".into(),
            "unix_socket_permissions=0700".into(),
        ];
        for (name, value) in sizing::settings().iter().chain(settings) {
            server_args.push("-c".into());
            server_args.push(format!("{name}={value}").into());
        }
        let server_options = server_args
            .iter()
            .map(|arg| shell_quote(arg))
            .collect::<Vec<_>>()
            .join(OsStr::new(" "));

        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&self.log_file)
            .args(["-w", "-t", PG_CTL_TIMEOUT, "-o"])
            .arg(server_options)
            .arg("start");
        let output = cmd
            .output()
            .await
            .map_err(io_error("running pg_ctl start".to_owned()))?;
        if !output.status.success() {
            return Err(ClusterError::StartFailed {
                status: output.status,
                log_tail: log_tail(&self.log_file),
                log_file: self.log_file.clone(),
            });
        }
        info!(
            data_dir = %self.data_dir.display(),
            socket_dir = %self.run_dir.display(),
            "PostgreSQL cluster started"
        );
        Ok(())
    }

    async fn ensure_database(&self) -> Result<(), ClusterError> {
        let mut conn = PgConnection::connect_with(&self.connect_options("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query("create database diplog")
                .execute(&mut conn)
                .await?;
            info!(database = DATABASE, "created database");
        }
        conn.close().await?;
        Ok(())
    }

    async fn pg_ctl_stop(&self) -> Result<(), ClusterError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop").arg("-D").arg(&self.pgdata).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_TIMEOUT,
        ]);
        run(cmd, "pg_ctl stop").await
    }
}
