//! `diplog token create|list|revoke`: API tokens, against the database (default: works with
//! the server stopped or running, even on the embedded cluster) or through a server's Admin
//! service with an admin token (`--server`).

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::client_args::ClientArgs;
use super::query_args::AsOf;
use super::{CliError, finish};
use crate::auth::Role;
use crate::auth::tokens::{TokenError, TokenInfo, TokenName, TokenStore};
use crate::database::Database;
use crate::database::DatabaseArgs;
use crate::grpc::convert::to_timestamp;
use crate::proto::{self, admin_client::AdminClient};
use crate::tls::client::ClientTlsArgs;
use clap::{Args, Subcommand};

pub async fn run(args: TokenArgs) -> ExitCode {
    finish(command(args.command).await)
}

/// Where the command goes.
enum Admin {
    Database(Database, TokenStore),
    Server(AdminClient<crate::auth::client::AuthChannel>),
}

impl Admin {
    async fn open(target: &TokenTarget) -> Result<Self, CliError> {
        if let Some(server) = &target.server {
            let client = ClientArgs {
                server: server.clone(),
                token: target.token.clone(),
                tls: target.tls.clone(),
            };
            return Ok(Self::Server(AdminClient::new(
                super::channel(&client).await?,
            )));
        }
        let database = Database::open(&target.database)
            .await
            .map_err(|e| CliError::Call(format!("{e:#}")))?;
        crate::MIGRATOR
            .run(database.pool())
            .await
            .map_err(|e| CliError::Call(format!("could not apply database migrations: {e}")))?;
        let store = TokenStore::new(database.pool().clone());
        Ok(Self::Database(database, store))
    }

    async fn close(self) {
        if let Admin::Database(database, _) = self
            && let Err(error) = database.close().await
        {
            eprintln!("warning: {error:#}");
        }
    }
}

fn store_error(error: TokenError) -> CliError {
    match error {
        TokenError::InvalidName(_) | TokenError::NoRoles | TokenError::ExpiryPast(_) => {
            CliError::Input(error.to_string())
        }
        _ => CliError::Call(error.to_string()),
    }
}

async fn command(command: TokenCommand) -> Result<(), CliError> {
    let target = match &command {
        TokenCommand::Create(args) => &args.target,
        TokenCommand::List(args) => &args.target,
        TokenCommand::Revoke(args) => &args.target,
    };
    // Bad input is refused before anything is opened.
    if let TokenCommand::Create(args) = &command {
        TokenName::parse(&args.name).map_err(store_error)?;
    }
    let mut admin = Admin::open(target).await?;
    let result = execute(&mut admin, command).await;
    admin.close().await;
    result
}

async fn execute(admin: &mut Admin, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Create(args) => {
            let (info, token) = match admin {
                Admin::Database(_, store) => {
                    let name = TokenName::parse(&args.name).map_err(store_error)?;
                    let (info, secret) = store
                        .create(&name, &args.roles, args.expires)
                        .await
                        .map_err(store_error)?;
                    (info, secret.expose().to_owned())
                }
                Admin::Server(client) => {
                    let created = client
                        .create_token(proto::CreateTokenRequest {
                            name: args.name,
                            roles: args.roles.iter().map(|r| r.as_str().to_owned()).collect(),
                            expires_at: args.expires.map(to_timestamp),
                        })
                        .await?
                        .into_inner();
                    let info = created.info.ok_or_else(|| {
                        CliError::Call("the server answered no token info".into())
                    })?;
                    (from_proto(info)?, created.token)
                }
            };
            // The token alone on stdout, so scripts can capture it; the rest on stderr.
            println!("{token}");
            eprintln!(
                "token {:?} created with roles {}{}; it is shown only this once",
                info.name,
                roles_text(&info.roles),
                info.expires_at
                    .map(|at| format!(", expiring {}", at.to_rfc3339()))
                    .unwrap_or_default()
            );
        }
        TokenCommand::List(_) => {
            let tokens = match admin {
                Admin::Database(_, store) => store.list().await.map_err(store_error)?,
                Admin::Server(client) => client
                    .list_tokens(())
                    .await?
                    .into_inner()
                    .tokens
                    .into_iter()
                    .map(from_proto)
                    .collect::<Result<_, _>>()?,
            };
            println!(
                "{:<24} {:<24} {:<25} {:<25} REVOKED",
                "NAME", "ROLES", "CREATED", "EXPIRES"
            );
            for token in tokens {
                let time = |t: Option<DateTime<Utc>>| {
                    t.map_or_else(
                        || "-".to_owned(),
                        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    )
                };
                println!(
                    "{:<24} {:<24} {:<25} {:<25} {}",
                    token.name,
                    roles_text(&token.roles),
                    time(Some(token.created_at)),
                    time(token.expires_at),
                    time(token.revoked_at),
                );
            }
        }
        TokenCommand::Revoke(args) => {
            match admin {
                Admin::Database(_, store) => store.revoke(&args.name).await.map_err(store_error)?,
                Admin::Server(client) => {
                    client
                        .revoke_token(proto::RevokeTokenRequest {
                            name: args.name.clone(),
                        })
                        .await?;
                }
            }
            eprintln!("token {:?} revoked", args.name);
        }
    }
    Ok(())
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn from_timestamp(time: prost_types::Timestamp) -> Result<DateTime<Utc>, CliError> {
    DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32)
        .ok_or_else(|| CliError::Call(format!("the server answered a bad time {time}")))
}

fn from_proto(info: proto::TokenInfo) -> Result<TokenInfo, CliError> {
    Ok(TokenInfo {
        name: info.name,
        roles: info
            .roles
            .iter()
            .map(|r| r.parse::<Role>())
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Call(e.to_string()))?,
        created_at: from_timestamp(info.created_at.unwrap_or_default())?,
        expires_at: info.expires_at.map(from_timestamp).transpose()?,
        revoked_at: info.revoked_at.map(from_timestamp).transpose()?,
    })
}

#[derive(Args, Clone)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Where `diplog token` administers: the database (the default: --database-url, or the
/// embedded cluster under --data-dir, running or not), or a server.
#[derive(Args, Clone)]
pub struct TokenTarget {
    /// Administer through this server (with an admin --token) instead of the database.
    #[arg(long)]
    pub server: Option<String>,
    /// With --server: an admin token.
    #[arg(
        long,
        env = "DIPLOG_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    pub token: Option<crate::auth::tokens::BearerToken>,
    /// With an `https://` --server: the CA to trust and the client certificate to present.
    #[command(flatten)]
    pub tls: ClientTlsArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Subcommand, Clone)]
pub enum TokenCommand {
    /// Mint a token; prints it once on stdout (alone on its line).
    Create(TokenCreateArgs),
    /// Every token: name, roles, created, expires, revoked (never the token).
    List(TokenListArgs),
    /// Revoke a token for good: refused everywhere within milliseconds.
    Revoke(TokenRevokeArgs),
}

#[derive(Args, Clone)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub target: TokenTarget,
    /// What the log records as `appended_by` on what this token appends.
    #[arg(long)]
    pub name: String,
    /// reader, writer, auditor or admin (repeatable, or comma-separated).
    #[arg(long = "role", required = true, value_delimiter = ',')]
    pub roles: Vec<crate::auth::Role>,
    /// When it stops working: a duration (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or a
    /// day `YYYY-MM-DD` (its end, UTC). Unset: never.
    #[arg(long, value_parser = parse_expiry)]
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Args, Clone)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub target: TokenTarget,
}

#[derive(Args, Clone)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub target: TokenTarget,
    /// The token's name.
    pub name: String,
}

/// Parses `--expires`: a duration from now (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or
/// a day (its end, UTC).
pub fn parse_expiry(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    for (unit, seconds) in units {
        if let Some(count) = raw.strip_suffix(unit).and_then(|n| n.parse::<i64>().ok()) {
            if count <= 0 {
                return Err(format!("{raw:?}: a duration must be positive"));
            }
            return chrono::Duration::try_seconds(count.saturating_mul(seconds))
                .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                .ok_or_else(|| format!("{raw:?} is too far away"));
        }
    }
    match AsOf::parse(raw) {
        Ok(AsOf::Time(time)) => Ok(time),
        _ => Err(format!(
            "{raw:?} is not a duration (90d, 12h, 30m, 45s), an RFC 3339 time or a day YYYY-MM-DD"
        )),
    }
}
