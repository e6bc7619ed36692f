//! The tree builder: hashes each committed event into the audit tree right behind the appends.
//! One builder at a time across all servers (a PostgreSQL advisory lock on a connection of its
//! own); the others stand by and take over when its server dies. Each round stores the new
//! leaves and nodes and moves `tree_head` in one transaction, so the head never claims an
//! event that is not hashed, and a crash loses nothing (the next round starts from the head).

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::tree::{self, TreeError};
use crate::domain::LogFilter;
use crate::domain::merkle::leaf_hash;
use crate::store::{self, RecordedEvent};

/// Events hashed per transaction at most.
const ROUND: i64 = 2_000;
const TAKEOVER: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_secs(1);
/// The shortest time between two rounds woken by commits. Under a stream of appends a round
/// then takes every event committed since the last one, instead of one round (a transaction
/// with its own commit, plus reading the events back) per group commit: at 16 clients that was
/// about one round per group of 8 events, a quarter of a core. An idle log is hashed at once;
/// this is the most the tree lags a busy one. The projection runners do the same
/// (`RunnerConfig::min_round_interval`).
const MIN_ROUND_INTERVAL: Duration = Duration::from_millis(50);

/// The advisory-lock key of the tree builder (distinct from every projection's: theirs hash
/// `diplog.projection.<name>`).
pub fn lock_key() -> i64 {
    crate::projections::engine::registry::advisory_lock_key("..audit-tree")
}

/// Keeps the tree up with the log until `shutdown`, woken by `head` (the subscriptions' head:
/// this server's commits and, through NOTIFY, every other server's).
pub async fn run(
    options: PgConnectOptions,
    head: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let mut retry = Duration::from_millis(200);
    loop {
        match session(&options, head.clone(), &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                warn!(error = %error, ?retry, "the audit tree builder failed; starting again from the tree head")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

async fn session(
    options: &PgConnectOptions,
    mut head: watch::Receiver<u64>,
    shutdown: &CancellationToken,
) -> Result<(), TreeError> {
    let options = options
        .clone()
        .application_name("diplog audit tree")
        .options([
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ]);
    let mut connection = PgConnection::connect_with(&options).await?;
    loop {
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
            .bind(lock_key())
            .fetch_one(&mut connection)
            .await?;
        if taken {
            break;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(TAKEOVER) => {}
        }
    }
    info!("building the audit tree");
    loop {
        let started = Instant::now();
        // More is waiting (catching up after a restart or a bulk load, or a round cut short
        // by its bytes: a page of the log holds at most `store::PAGE_BYTES`).
        if round(&mut connection).await? {
            continue;
        }
        // Caught up with the head this round read: wait for a commit (or poll, for a head
        // that moved unannounced), but start the next round no sooner than
        // MIN_ROUND_INTERVAL after this one.
        tokio::select! {
            () = shutdown.cancelled() => {
                connection.close().await.ok();
                return Ok(());
            }
            _ = head.changed() => {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        connection.close().await.ok();
                        return Ok(());
                    }
                    () = tokio::time::sleep_until(started + MIN_ROUND_INTERVAL) => {}
                }
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Hashes the next events after the tree head (at most `ROUND`, and one page of the log's
/// bytes); answers whether the log had more than that when the round began.
async fn round(connection: &mut PgConnection) -> Result<bool, TreeError> {
    let mut frontier = tree::head(&mut *connection).await?;
    let from = frontier.size();
    let log_head = store::head(&mut *connection).await?;
    if log_head <= from {
        return Ok(false);
    }
    let events = store::events_page(
        &mut *connection,
        from,
        log_head,
        &LogFilter::default(),
        ROUND,
    )
    .await?
    .events;
    let mut nodes = Vec::with_capacity(events.len() * 2);
    for event in &events {
        let expected = frontier.size() + 1;
        if event.position as u64 != expected {
            return Err(TreeError::Gap { position: expected });
        }
        nodes.extend(frontier.push(leaf_of(event)));
    }
    let mut transaction = connection.begin().await?;
    tree::advance(&mut transaction, from, &frontier, &nodes).await?;
    transaction.commit().await?;
    debug!(from, to = frontier.size(), "hashed into the audit tree");
    Ok(frontier.size() > from && frontier.size() < log_head)
}

/// The leaf hash of an event as the log recorded it.
pub fn leaf_of(event: &RecordedEvent) -> crate::domain::merkle::Hash {
    leaf_hash(&canonical(event).to_bytes())
}

pub fn canonical(event: &RecordedEvent) -> crate::domain::canonical::CanonicalEvent<'_> {
    crate::domain::canonical::CanonicalEvent {
        position: event.position as u64,
        event_id: event.event_id,
        stream_id: &event.stream_id,
        stream_version: event.stream_version as u64,
        event_type: &event.event_type,
        data: &event.data_text,
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
        metadata: &event.metadata,
        recorded_at: event.recorded_at,
        appended_by: &event.appended_by,
    }
}
