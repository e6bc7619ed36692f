//! The single writer task: group commit over a locked log head.
//!
//! Why this design: positions must be gapless and in commit order, so that a reader tailing
//! `where position > n` can never miss an event that commits late. A sequence or bigserial
//! cannot promise that (a transaction may take 7, commit after 8 is visible, or roll back and
//! leave a hole). So each append transaction locks the one `log_head` row, takes the next
//! positions, inserts, moves the head and commits: allocation is serialized and a rollback
//! leaves nothing behind. Serializing costs one commit per transaction, so this task takes
//! every append waiting in its queue and writes them all in one transaction (group commit):
//! the more clients, the more appends share a commit; a group of few events first waits briefly
//! (at most about a millisecond) for the callers the last group answered, so that they do not
//! split into cohorts taking turns. Expected versions are checked per append inside the group,
//! and a failed check fails only that caller. Several servers on one database stay correct
//! because they all serialize on the same head row.
//!
//! Here is the loop: it gathers a group, has it written (`group`: the SQL of the fast and the
//! careful path; `plan`: how the careful path decides each append: a retry, a conflict or new
//! positions) and answers the callers, publishing the new head first.

mod group;
mod plan;

use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, TraceContextExt};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, error, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{AppendError, AppendOutcome};
use crate::domain::AtomicAppend;
use group::{write_group, write_group_fast};

/// What one caller asked for: one append, or several written all or nothing.
pub(super) struct AppendCommand {
    pub unit: AtomicAppend,
    pub principal: String,
    /// When the append was queued: tells the writer which callers were waiting alongside a
    /// group (see `run`).
    pub queued_at: Instant,
    /// The caller's span (its RPC's, under trace export; invalid otherwise): the group that
    /// writes this append is its child or links to it (see `group_span`).
    pub caller: SpanContext,
    /// One outcome per part of `unit`, in order.
    pub reply: oneshot::Sender<Result<Vec<AppendOutcome>, AppendError>>,
}

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Appends waiting for the writer; senders wait (backpressure) when it is full.
    pub queue_capacity: usize,
    /// A group stops taking appends once it holds this many events.
    pub max_group_events: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_group_events: 5000,
        }
    }
}

/// The writer's own database connection, held between groups: taking one from the pool per
/// group would cost a liveness ping (a round trip) each time. Dropped after any error, so the
/// next group starts on a fresh, tested one.
struct WriterConnection {
    pool: PgPool,
    held: Option<PoolConnection<Postgres>>,
}

impl WriterConnection {
    async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if self.held.is_none() {
            self.held = Some(self.pool.acquire().await?);
        }
        Ok(self.held.as_mut().expect("just acquired"))
    }

    /// Runs `work` on the held connection, letting it go if `work` fails, unless the database
    /// itself answered with an error (a conflict, say): the connection is sound then, and a
    /// new one would cost a backend start.
    async fn run<T>(
        &mut self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let result = work(self.get().await?).await;
        if let Err(error) = &result
            && (super::is_unavailable(error) || !matches!(error, sqlx::Error::Database(_)))
        {
            self.held = None;
        }
        result
    }
}

/// Writes groups until `stop` is cancelled; then refuses new appends (their senders get
/// `ShuttingDown`), writes every append already queued, and returns. After each commit the
/// last committed position is published on `head`.
pub(super) async fn run(
    pool: PgPool,
    mut queue: mpsc::Receiver<AppendCommand>,
    config: WriterConfig,
    stop: CancellationToken,
    head: watch::Sender<u64>,
) {
    let mut connection = WriterConnection { pool, held: None };
    let mut group = Vec::new();
    // The appends the last group answered, when it started answering them, and how long its
    // write took.
    let mut answered = 0;
    let mut answered_at = Instant::now();
    let mut last_write = Duration::ZERO;
    loop {
        let next = tokio::select! {
            next = queue.recv() => next,
            () = stop.cancelled(), if !queue.is_closed() => {
                queue.close();
                continue;
            }
        };
        let Some(first) = next else { break };
        let mut events = first.unit.event_count();
        group.push(first);
        take_waiting(&mut queue, &mut group, &mut events, config.max_group_events);
        // Gather: the callers the last group answered are expected back soon, beside those
        // that were already waiting then (queued before it answered). While the group is
        // smaller than both together, and holds fewer than GATHER_UP_TO events, wait for the
        // rest, for at most as long as the last group took (and MAX_GATHER). Otherwise the
        // callers split into cohorts that take turns, each arriving while the other's group is
        // written, and every group pays its commit for half as many events.
        let gathering = Instant::now();
        let waiting_then = group
            .iter()
            .filter(|command| command.queued_at < answered_at)
            .count();
        let expected = answered + waiting_then;
        let gather_up_to = config.max_group_events.min(GATHER_UP_TO);
        if group.len() < expected && events < gather_up_to {
            let patience = tokio::time::sleep(last_write.min(MAX_GATHER));
            tokio::pin!(patience);
            while group.len() < expected && events < gather_up_to {
                tokio::select! {
                    biased;
                    command = queue.recv() => {
                        let Some(command) = command else { break };
                        events += command.unit.event_count();
                        group.push(command);
                        take_waiting(&mut queue, &mut group, &mut events, config.max_group_events);
                    }
                    () = &mut patience => break,
                }
            }
        }
        // A caller that gave up (deadline, disconnect) was never acknowledged: skip its work.
        group.retain(|command| !command.reply.is_closed());
        if !group.is_empty() {
            let started = Instant::now();
            let appends = group.len();
            let span = group_span(&group, events);
            answered_at = write_and_answer(&mut connection, std::mem::take(&mut group), &head)
                .instrument(span)
                .await;
            answered = appends;
            last_write = answered_at - started;
            metrics::histogram!(crate::monitoring::GROUP_EVENTS).record(events as f64);
            metrics::histogram!(crate::monitoring::GROUP_COMMIT_SECONDS)
                .record(last_write.as_secs_f64());
            tracing::trace!(
                appends,
                events,
                expected,
                gathered_us = (started - gathering).as_micros() as u64,
                written_us = last_write.as_micros() as u64,
                "group written"
            );
        }
    }
    debug!("append queue closed; writer stopped");
}

/// The span of the current trace export context: the caller's, for its append command.
/// Reads a thread-local; allocates nothing (an invalid context without trace export).
pub(super) fn caller() -> SpanContext {
    opentelemetry::Context::map_current(|context| context.span().span_context().clone())
}

/// The group's span for trace export (disabled without it): a child of its first traced
/// caller's span, so that caller's trace shows the group and its database calls, with a link
/// to every other traced caller's span (a group serves several RPCs, a span has one parent).
/// Its positions are recorded once it is written (`record_positions`).
fn group_span(group: &[AppendCommand], events: usize) -> Span {
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        "diplog.writer.group",
        diplog.group.appends = group.len() as i64,
        diplog.group.events = events as i64,
        diplog.group.first_position = tracing::field::Empty,
        diplog.group.last_position = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let mut callers = group
        .iter()
        .map(|command| &command.caller)
        .filter(|caller| caller.is_valid());
    if let Some(first) = callers.next() {
        let parent = opentelemetry::Context::new().with_remote_span_context(first.clone());
        let _ = span.set_parent(parent);
    }
    for other in callers {
        span.add_link(other.clone());
    }
    span
}

/// The first and last positions a group wrote, on its span (when traced).
fn record_positions(span: &Span, outcomes: &[Result<Vec<AppendOutcome>, AppendError>]) {
    if span.is_disabled() {
        return;
    }
    let positions = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .flatten()
        .filter(|outcome| !outcome.idempotent_replay)
        .flat_map(|outcome| outcome.positions.iter().copied());
    let (first, last) = positions.fold((None, None), |(first, last), position| {
        (
            Some(first.map_or(position, |f: u64| f.min(position))),
            Some(last.map_or(position, |l: u64| l.max(position))),
        )
    });
    // As i64: the exporter writes a u64 as text (positions come from a bigint anyway).
    if let (Some(first), Some(last)) = (first, last) {
        span.record("diplog.group.first_position", first as i64);
        span.record("diplog.group.last_position", last as i64);
    }
}

/// The longest a group waits for appends still on their way (see `run`). Timers tick in
/// whole milliseconds, so a wait that runs out lasts up to about 1 ms more.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// Only groups of fewer events than this wait for more. A group's own cost (a call, a commit,
/// waking the subscribers, the tree builder and the runners) is worth sharing among a few dozen
/// events; past that, waiting costs more than it saves: the cohorts' overlap of database work
/// with gRPC work is worth more (measured with one server at 64 clients: 12% fewer appends
/// when every group waited for all the callers).
const GATHER_UP_TO: usize = 32;

/// Moves the appends already waiting into `group`, up to `max_events` events in all.
fn take_waiting(
    queue: &mut mpsc::Receiver<AppendCommand>,
    group: &mut Vec<AppendCommand>,
    events: &mut usize,
    max_events: usize,
) {
    while *events < max_events {
        match queue.try_recv() {
            Ok(command) => {
                *events += command.unit.event_count();
                group.push(command);
            }
            Err(_) => break,
        }
    }
}

/// Writes the group and answers its callers; returns when the writing ended, before the
/// first caller was answered.
async fn write_and_answer(
    connection: &mut WriterConnection,
    group: Vec<AppendCommand>,
    head: &watch::Sender<u64>,
) -> Instant {
    match connection
        .run(async |c| write_group_fast(c, &group).await)
        .await
    {
        Ok(Some(outcomes)) => {
            let written = Instant::now();
            answer(group, outcomes, head);
            return written;
        }
        Ok(None) => {}
        Err(error) if super::is_unavailable(&error) => {
            let written = Instant::now();
            let error = log_failure(error);
            for command in group {
                let _ = command.reply.send(Err(error.clone()));
            }
            return written;
        }
        // The careful path writes what can be written and isolates what cannot.
        Err(error) => debug!(error = %error, "fast append failed; taking the careful path"),
    }
    write_carefully_and_answer(connection, group, head).await
}

async fn write_carefully_and_answer(
    connection: &mut WriterConnection,
    group: Vec<AppendCommand>,
    head: &watch::Sender<u64>,
) -> Instant {
    let written = connection.run(async |c| write_group(c, &group).await).await;
    let written_at = Instant::now();
    match written {
        Ok(outcomes) => answer(group, outcomes, head),
        // One bad append must not fail its neighbours: write each on its own to isolate it.
        // Connection failures would fail every one of them alike, so they are answered at once.
        Err(error) if group.len() > 1 && !super::is_unavailable(&error) => {
            warn!(error = %error, appends = group.len(), "group commit failed; retrying its appends one by one");
            for command in group {
                let single = std::slice::from_ref(&command);
                let outcome = match connection.run(async |c| write_group(c, single).await).await {
                    Ok(mut outcomes) => outcomes.remove(0),
                    Err(error) => Err(log_failure(error)),
                };
                publish_head(head, std::slice::from_ref(&outcome));
                let _ = command.reply.send(outcome);
            }
        }
        Err(error) => {
            let error = log_failure(error);
            for command in group {
                let _ = command.reply.send(Err(error.clone()));
            }
        }
    }
    written_at
}

fn log_failure(error: sqlx::Error) -> AppendError {
    let error = AppendError::from(error);
    error!(error = %error, "append transaction failed");
    error
}

fn answer(
    group: Vec<AppendCommand>,
    outcomes: Vec<Result<Vec<AppendOutcome>, AppendError>>,
    head: &watch::Sender<u64>,
) {
    record_positions(&Span::current(), &outcomes);
    publish_head(head, &outcomes);
    for (command, outcome) in group.into_iter().zip(outcomes) {
        // The caller may have gone; its events are committed either way.
        let _ = command.reply.send(outcome);
    }
}

/// Publishes the position of the last event a commit wrote, before any caller hears of its
/// positions: whoever learns a position can then wait on the watch for it without a race.
/// Positions are global, so the last one written is the head as of that commit.
fn publish_head(head: &watch::Sender<u64>, outcomes: &[Result<Vec<AppendOutcome>, AppendError>]) {
    let written = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .flatten()
        .filter(|outcome| !outcome.idempotent_replay)
        .filter_map(|outcome| outcome.positions.last().copied())
        .max();
    if let Some(written) = written {
        head.send_if_modified(|published| {
            let moved = written > *published;
            if moved {
                *published = written;
            }
            moved
        });
    }
}
