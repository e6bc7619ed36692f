//! The log head as this server knows it: its own writer's commits (at once) and every other
//! server's (through PostgreSQL LISTEN/NOTIFY on one connection shared by all subscribers).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The channel the `log_head_moved` trigger notifies (see the `log_notify` migration).
pub const CHANNEL: &str = "diplog_log";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Follows the head until `shutdown`. The published value only ever grows.
pub(super) async fn follow(
    pool: PgPool,
    local: watch::Receiver<u64>,
    head: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    tokio::join!(
        local_commits(local, &head, &shutdown),
        notifications(&pool, &head, &shutdown),
    );
}

/// This server's own commits, published by its writer before the appenders are answered.
async fn local_commits(
    mut local: watch::Receiver<u64>,
    head: &watch::Sender<u64>,
    shutdown: &CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = local.changed() => match changed {
                Ok(()) => raise(head, *local.borrow_and_update()),
                Err(_) => return, // the writer stopped
            },
        }
    }
}

/// Every commit on the database, this server's included (they are harmless repeats).
async fn notifications(pool: &PgPool, head: &watch::Sender<u64>, shutdown: &CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        match listen(pool).await {
            Ok((mut listener, position)) => {
                raise(head, position);
                retry = FIRST_RETRY;
                loop {
                    // Only shutdown cancels the receive, so a message is never half read.
                    let received = tokio::select! {
                        () = shutdown.cancelled() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        Ok(Some(notification)) => match notification.payload().parse() {
                            Ok(position) => raise(head, position),
                            Err(_) => warn!(
                                payload = notification.payload(),
                                "ignored a malformed log notification"
                            ),
                        },
                        // Notifications sent while disconnected are lost: listen afresh, then
                        // read the head again.
                        Ok(None) => {
                            warn!("lost the LISTEN connection; reconnecting");
                            break;
                        }
                        Err(error) => {
                            warn!(error = %error, "the LISTEN connection failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                warn!(error = %error, ?retry, "could not LISTEN for log notifications; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// LISTENs first and reads the head second, so no commit falls between the two.
async fn listen(pool: &PgPool) -> Result<(PgListener, u64), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is re-established by `notifications`, which reads the head afterwards.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    let position = crate::store::head(pool).await?;
    debug!(position, "listening for log notifications");
    Ok((listener, position))
}

fn raise(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|known| {
        let moved = position > *known;
        if moved {
            *known = position;
        }
        moved
    });
}
