//! Whether the database can be reached, as one fact that every part of the server agrees on:
//! the gRPC health service, `/healthz`, and the gate that answers calls UNAVAILABLE at once
//! while PostgreSQL is down (instead of each call waiting out the pool's acquire timeout).
//!
//! Two things move it: a monitor that pings PostgreSQL on a connection of its own (so a busy
//! pool cannot delay the ping), and, for the embedded cluster, its supervisor, which knows the
//! moment the postmaster dies.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often the monitor pings while the database answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How often it pings while the database does not, so recovery is seen quickly.
const PING_EVERY_WHILE_DOWN: Duration = Duration::from_millis(200);
/// A ping (or connecting for one) slower than this counts as a failure.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The shared state: `true` while the database answers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DatabaseHealth {
    reachable: Arc<watch::Sender<bool>>,
}

impl Default for DatabaseHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl DatabaseHealth {
    /// Starts as reachable: the server has just connected (and migrated) when it makes one.
    pub fn new() -> Self {
        Self {
            reachable: Arc::new(watch::Sender::new(true)),
        }
    }

    pub fn is_reachable(&self) -> bool {
        *self.reachable.borrow()
    }

    /// Follows the state: the receiver sees every change.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.reachable.subscribe()
    }

    /// Records that the database cannot be reached, and why (logged once per outage).
    pub fn set_unreachable(&self, why: &str) {
        if self.reachable.send_replace(false) {
            warn!(
                reason = why,
                "the database cannot be reached: health NOT_SERVING"
            );
        }
    }

    /// Records that the database answers again (logged once per recovery).
    pub fn set_reachable(&self) {
        if !self.reachable.send_replace(true) {
            info!("the database answers again: health SERVING");
        }
    }

    /// Pings the database until `stop`, on a connection of its own (reconnecting as needed),
    /// and records what it finds.
    pub async fn monitor(self, options: PgConnectOptions, stop: CancellationToken) {
        let mut connection: Option<PgConnection> = None;
        loop {
            let outcome = tokio::time::timeout(PING_TIMEOUT, ping(&mut connection, &options)).await;
            match outcome {
                Ok(Ok(())) => self.set_reachable(),
                Ok(Err(error)) => {
                    connection = None;
                    self.set_unreachable(&error.to_string());
                }
                Err(_) => {
                    connection = None;
                    self.set_unreachable("a ping took longer than 2 s");
                }
            }
            let pause = match self.is_reachable() {
                true => PING_EVERY,
                false => PING_EVERY_WHILE_DOWN,
            };
            let mut changed = self.watch();
            changed.mark_unchanged();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
                // The supervisor said the database went down: confirm at once, and from then
                // on ping at the faster pace.
                _ = changed.changed() => {}
            }
        }
    }
}

async fn ping(
    connection: &mut Option<PgConnection>,
    options: &PgConnectOptions,
) -> Result<(), sqlx::Error> {
    let open = match connection {
        Some(open) => open,
        None => connection.insert(PgConnection::connect_with(options).await?),
    };
    open.execute("select 1").await?;
    Ok(())
}
