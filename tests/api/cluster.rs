//! The embedded cluster is closed to every OS user but diplog's own: another local user can
//! neither enter its directories, nor read its log, nor pass its authentication, also on a
//! cluster made before with `trust` (converted at its next start). The owner's commands keep
//! working.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use diplog::pgcluster::{ClusterOptions, PgCluster};
use sqlx::{ConnectOptions, Connection};

use crate::helpers::{diplog, diplog_binary, reachable_tempdir};

/// An OS user that is neither this process's nor the cluster's.
struct Intruder {
    uid: u32,
    gid: u32,
}

impl Intruder {
    /// `nobody`, unless the cluster itself runs as `nobody` (no `postgres` user): then a
    /// `diplog-intruder` user, created here.
    fn find_or_create() -> Intruder {
        use nix::unistd::User;
        let postgres_exists = User::from_name("postgres").unwrap().is_some();
        let name = if postgres_exists {
            "nobody"
        } else {
            "diplog-intruder"
        };
        if User::from_name(name).unwrap().is_none() {
            let status = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/bin/sh", name])
                .status()
                .expect("useradd runs");
            assert!(status.success(), "could not create user {name}");
        }
        let user = User::from_name(name).unwrap().expect("the user exists");
        Intruder {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        }
    }

    /// Runs `program args…` as this user.
    fn run(&self, program: &Path, args: &[&str]) -> Output {
        std::process::Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--"])
            .arg(program)
            .args(args)
            .current_dir("/")
            .output()
            .expect("setpriv runs")
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn psql() -> &'static Path {
    Path::new("psql")
}

/// The reproduction: `update api_tokens set roles='{admin}'` through the socket.
fn intruder_psql(intruder: &Intruder, data_dir: &Path) -> Output {
    let socket_dir = data_dir.join("run");
    intruder.run(
        psql(),
        &[
            "-h",
            socket_dir.to_str().unwrap(),
            "-U",
            "diplog",
            "-d",
            "diplog",
            "-w",
            "-c",
            "select 1",
        ],
    )
}

#[tokio::test]
async fn another_os_user_cannot_reach_the_embedded_cluster() {
    if !nix::unistd::geteuid().is_root() {
        println!(
            "SKIPPED: another_os_user_cannot_reach_the_embedded_cluster needs root to act as a \
             second OS user (setpriv)"
        );
        return;
    }
    if which("psql").is_none() || which("setpriv").is_none() {
        println!(
            "SKIPPED: another_os_user_cannot_reach_the_embedded_cluster needs psql and setpriv"
        );
        return;
    }
    let intruder = Intruder::find_or_create();
    let dir = reachable_tempdir("diplog-cluster-");
    let data_dir = dir.path().join("data");
    let options = || ClusterOptions {
        stop_when_process_exits: true,
        ..ClusterOptions::default()
    };
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();

    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    assert_eq!(mode(&data_dir.join("run")), 0o700, "the socket directory");
    assert_eq!(mode(&data_dir.join("pgdata")), 0o700, "PGDATA");
    assert_eq!(mode(&data_dir.join("postgres.log")), 0o600, "the log");
    assert_eq!(
        mode(&data_dir.join("run/.s.PGSQL.5432")),
        0o700,
        "the socket"
    );

    let refused = intruder_psql(&intruder, &data_dir);
    assert!(!refused.status.success(), "psql got in: {}", text(&refused));
    let read_log = intruder.run(
        Path::new("cat"),
        &[data_dir.join("postgres.log").to_str().unwrap()],
    );
    assert!(
        !read_log.status.success(),
        "the log was readable: {}",
        text(&read_log)
    );
    let cli = intruder.run(
        &diplog_binary(),
        &["token", "list", "--data-dir", data_dir.to_str().unwrap()],
    );
    assert!(
        !cli.status.success(),
        "token list worked for another user: {}",
        text(&cli)
    );

    // Behind the directory's mode, the authentication holds too: open the directory and the
    // socket to everyone and the intruder is still refused, by PostgreSQL.
    std::fs::set_permissions(data_dir.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data_dir.join("run/.s.PGSQL.5432"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let refused = intruder_psql(&intruder, &data_dir);
    assert!(!refused.status.success(), "psql got in: {}", text(&refused));
    assert!(
        text(&refused).contains("authentication failed"),
        "refused for another reason: {}",
        text(&refused)
    );

    // The owner gets in, directly and through the CLI (also while the cluster is another
    // process's: `token` shares a running cluster).
    let mut owner = cluster.connect_options("diplog").connect().await.unwrap();
    sqlx::query("select 1").execute(&mut owner).await.unwrap();
    owner.close().await.unwrap();
    cluster.stop().await.unwrap();

    // A cluster made before, with `trust` for everyone, is closed at its next start.
    std::fs::write(data_dir.join("pgdata/pg_hba.conf"), "local all all trust\n").unwrap();
    let cluster = PgCluster::start(&data_dir, options()).await.unwrap();
    assert_eq!(mode(&data_dir), 0o700, "the data directory after a restart");
    assert_eq!(
        mode(&data_dir.join("run")),
        0o700,
        "the socket directory after a restart"
    );
    std::fs::set_permissions(data_dir.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data_dir.join("run/.s.PGSQL.5432"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let refused = intruder_psql(&intruder, &data_dir);
    assert!(
        text(&refused).contains("authentication failed"),
        "the old trust rule still holds: {}",
        text(&refused)
    );
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let owner_cli = diplog(["token", "list", "--data-dir", data_dir.to_str().unwrap()]).await;
    assert!(
        owner_cli.status.success(),
        "the owner's token list failed: {}",
        text(&owner_cli)
    );
    cluster.stop().await.unwrap();
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
