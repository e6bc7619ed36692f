//! Live subscriptions to the log: each catches up from PostgreSQL, then follows one shared live
//! tail, with no gap and no duplicate at the switch (both sides are read by position, and the
//! log's positions are gapless and in commit order). The tail is woken by this server's writer
//! and, for appends through other servers, by one LISTEN connection shared by all.
//!
//! Memory is bounded: a subscriber has a queue of at most `buffer` messages and `buffer_bytes`
//! bytes; one that leaves it full for `stall_timeout` is ended with
//! [`SubscriptionError::TooSlow`] and can resume from the last position it received.

mod head;
mod queue;
mod subscriber;
mod tail;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::domain::{LogFilter, SubscriptionStart};
use crate::store::{EventStore, ReadError, RecordedEvent};
use subscriber::{Settings, Subscriber};
use tail::LiveBatch;

pub use head::CHANNEL as NOTIFY_CHANNEL;

/// The server's limits and defaults for subscriptions.
#[derive(Debug, Clone)]
pub struct SubscriptionConfig {
    /// Messages queued per subscriber at most.
    pub buffer: usize,
    /// Bytes (about) queued per subscriber at most.
    pub buffer_bytes: usize,
    /// How long a full queue may stay full before the subscriber is ended.
    pub stall_timeout: Duration,
    /// A checkpoint (a heartbeat) at least this often when nothing else is sent.
    pub checkpoint_interval: Duration,
    /// A checkpoint whenever this many positions went by without one.
    pub checkpoint_every: u64,
    /// Events per database read.
    pub page_size: i64,
    /// Batches the live tail keeps for subscribers that fall behind (then they read from the
    /// database).
    pub tail_batches: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        Self {
            buffer: 1024,
            buffer_bytes: 16 << 20,
            stall_timeout: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(2),
            checkpoint_every: 1000,
            page_size: 256,
            tail_batches: 256,
        }
    }
}

/// What one subscription asks for.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    pub start: SubscriptionStart,
    pub filter: LogFilter,
    /// `None`: the server's default.
    pub checkpoint_interval: Option<Duration>,
    pub checkpoint_every: Option<u64>,
}

/// A message to a subscriber.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<RecordedEvent>),
    /// Every selected event up to `position` was delivered: resume after it. `caught_up` marks
    /// the end of the initial catch-up: from then on events come as they commit.
    Checkpoint {
        position: u64,
        caught_up: bool,
    },
}

impl Delivery {
    pub fn position(&self) -> u64 {
        match self {
            Self::Event(event) => event.position as u64,
            Self::Checkpoint { position, .. } => *position,
        }
    }
}

/// Why the server ended a subscription.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "the subscriber left its queue (at most {messages} messages, {bytes} bytes) full and \
         unread for {stall:?}; subscribe again after the last position received"
    )]
    TooSlow {
        messages: usize,
        bytes: usize,
        stall: Duration,
    },
    #[error("the server is shutting down; subscribe again after the last position received")]
    ShuttingDown,
}

/// Why a subscription could not begin.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("position {after} is past the log head {head}")]
    PastHead { after: u64, head: u64 },
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// The subscriptions of one server. Cheap to clone.
#[derive(Clone)]
pub struct Subscriptions {
    store: EventStore,
    head: watch::Receiver<u64>,
    live: broadcast::Sender<Arc<LiveBatch>>,
    config: SubscriptionConfig,
    shutdown: CancellationToken,
    active: Arc<AtomicUsize>,
}

impl Subscriptions {
    /// Starts the head follower and the live tail; they (and every subscription) stop with
    /// `shutdown`.
    pub fn start(
        store: EventStore,
        config: SubscriptionConfig,
        shutdown: CancellationToken,
    ) -> (Self, JoinSet<()>) {
        let local = store.committed_head();
        let (head_sender, head) = watch::channel(*local.borrow());
        let (live, _) = broadcast::channel(config.tail_batches.max(1));
        let mut tasks = JoinSet::new();
        tasks.spawn(head::follow(
            store.pool().clone(),
            local,
            head_sender,
            shutdown.clone(),
        ));
        tasks.spawn(tail::run(
            store.clone(),
            head.clone(),
            live.clone(),
            config.page_size,
            shutdown.clone(),
        ));
        let subscriptions = Self {
            store,
            head,
            live,
            config,
            shutdown,
            active: Arc::default(),
        };
        (subscriptions, tasks)
    }

    /// The log head as this server knows it: its own commits at once, other servers' as
    /// PostgreSQL notifies them.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    /// Subscriptions being served now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub async fn subscribe(
        &self,
        request: SubscriptionRequest,
    ) -> Result<Subscription, SubscribeError> {
        // Subscribe to the tail before reading the head: every batch after it is then seen.
        let live = self.live.subscribe();
        let head = self.store.head().await?;
        let cursor = match request.start {
            SubscriptionStart::After(after) if after > head => {
                return Err(SubscribeError::PastHead { after, head });
            }
            SubscriptionStart::After(after) => after,
            SubscriptionStart::Now => head,
        };
        let (out, messages) = queue::queue(self.config.buffer, self.config.buffer_bytes);
        let (ended_sender, ended) = oneshot::channel();
        let subscriber = Subscriber {
            store: self.store.clone(),
            filter: request.filter,
            cursor,
            from_now: request.start == SubscriptionStart::Now,
            settings: Settings {
                stall_timeout: self.config.stall_timeout,
                checkpoint_interval: request
                    .checkpoint_interval
                    .unwrap_or(self.config.checkpoint_interval),
                checkpoint_every: request
                    .checkpoint_every
                    .unwrap_or(self.config.checkpoint_every)
                    .max(1),
                page_size: self.config.page_size,
            },
            head: self.head.clone(),
            out,
            shutdown: self.shutdown.clone(),
        };
        let active = ActiveGuard::new(self.active.clone());
        tokio::spawn(async move {
            let _active = active;
            subscriber.run(live, ended_sender).await;
        });
        Ok(Subscription {
            messages,
            ended: Some(ended),
            done: false,
        })
    }
}

/// Counts a subscription as active while its task runs.
struct ActiveGuard(Arc<AtomicUsize>);

impl ActiveGuard {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(crate::monitoring::SUBSCRIPTIONS_OPEN).increment(1.0);
        Self(count)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        metrics::gauge!(crate::monitoring::SUBSCRIPTIONS_OPEN).decrement(1.0);
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The messages of one subscription, in order. An end the server decides (too slow, shutting
/// down) comes before anything still queued: the client resumes from what it received.
/// Dropping it ends the subscription.
pub struct Subscription {
    messages: mpsc::Receiver<queue::Queued>,
    ended: Option<oneshot::Receiver<SubscriptionError>>,
    done: bool,
}

impl Stream for Subscription {
    type Item = Result<Delivery, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(ended) = self.ended.as_mut() {
            match Pin::new(ended).poll(cx) {
                Poll::Ready(Ok(error)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
                // The task ended without a word: the messages' end says the rest.
                Poll::Ready(Err(_)) => self.ended = None,
                Poll::Pending => {}
            }
        }
        // Taking a message returns its bytes to the queue's budget.
        self.messages
            .poll_recv(cx)
            .map(|queued| queued.map(|queued| Ok(queued.delivery)))
    }
}
