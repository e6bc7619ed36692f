//! TLS to PostgreSQL: `--database-url` honours `sslmode` and `sslrootcert`, against a local
//! PostgreSQL that accepts only TLS connections, with a certificate made here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use diplog::pgcluster::{ClusterOptions, PgCluster};
use sqlx::{ConnectOptions, Connection};

use crate::helpers::{diplog, reachable_tempdir};

const PASSWORD: &str = "tls-test-password";

/// A free TCP port on loopback (the cluster binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Hands the server's key and certificate to the OS user PostgreSQL runs as (it refuses a
/// key that others can read, or that it cannot read).
fn give_to_server_user(paths: &[&Path]) {
    let owner = if nix::unistd::geteuid().is_root() {
        let user = ["postgres", "nobody"]
            .into_iter()
            .find_map(|name| nix::unistd::User::from_name(name).unwrap())
            .expect("a user to run PostgreSQL as");
        Some((user.uid, user.gid))
    } else {
        None
    };
    for path in paths {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw())).unwrap();
        }
    }
}

#[tokio::test]
async fn database_urls_reach_postgres_over_verified_tls() {
    let dir = reachable_tempdir("diplog-pgtls-");
    let certs = dir.path().join("certs");
    let other_certs = dir.path().join("other");
    diplog::tls::dev_certs::write(&certs, &[], "unused").unwrap();
    diplog::tls::dev_certs::write(&other_certs, &[], "unused").unwrap();
    std::fs::set_permissions(&certs, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server_cert = certs.join("server.pem");
    let server_key = certs.join("server-key.pem");
    give_to_server_user(&[&server_cert, &server_key]);

    let port = free_port();
    let settings = [
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("ssl", "on".to_owned()),
        ("ssl_cert_file", server_cert.display().to_string()),
        ("ssl_key_file", server_key.display().to_string()),
    ]
    .map(|(name, value)| (name.to_owned(), value))
    .into();
    let cluster = PgCluster::start(
        &dir.path().join("data"),
        ClusterOptions {
            stop_when_process_exits: true,
            settings,
            port: Some(port),
            // TCP only with TLS and a password.
            extra_access_rules: vec!["hostssl all diplog 127.0.0.1/32 scram-sha-256".into()],
            ..ClusterOptions::default()
        },
    )
    .await
    .unwrap();
    let mut owner = cluster.connect_options("diplog").connect().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "alter role diplog password '{PASSWORD}'"
    )))
    .execute(&mut owner)
    .await
    .unwrap();
    owner.close().await.unwrap();

    let url = |mode: &str, root: &Path| {
        format!(
            "postgres://diplog:{PASSWORD}@localhost:{port}/diplog?sslmode={mode}&sslrootcert={}",
            root.display()
        )
    };
    let ca = certs.join("ca.pem");
    let wrong_ca = other_certs.join("ca.pem");

    // verify-full with the right CA: the connection is TLS (PostgreSQL says so).
    let mut connection = url("verify-full", &ca)
        .parse::<sqlx::postgres::PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&mut connection)
            .await
            .unwrap();
    assert!(encrypted, "the connection is not TLS");
    connection.close().await.unwrap();

    // Through diplog itself: a command that opens --database-url (and migrates) works.
    let (ok, output) = diplog(["token", "list", "--database-url", &url("verify-full", &ca)])
        .combined()
        .await;
    assert!(ok, "{output}");

    // A CA that did not sign the server's certificate: refused, and the message says why.
    let (ok, output) = diplog([
        "token",
        "list",
        "--database-url",
        &url("verify-full", &wrong_ca),
    ])
    .combined()
    .await;
    assert!(!ok, "a server certificate from another CA was accepted");
    println!("a wrong CA: {}", output.trim());
    assert!(
        output.contains("could not connect to PostgreSQL") && output.contains("certificate"),
        "{output}"
    );

    // Plain text is refused by this server's rules: TLS was really what got through above.
    let (ok, output) = diplog(["token", "list", "--database-url", &url("disable", &ca)])
        .combined()
        .await;
    assert!(!ok, "a plain-text connection was accepted");
    assert!(
        output.contains("no encryption") || output.contains("pg_hba.conf"),
        "{output}"
    );
    cluster.stop().await.unwrap();
}
