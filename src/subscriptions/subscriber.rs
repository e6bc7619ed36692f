//! One subscription: catches up from the database, then follows the live tail. Its cursor is
//! the position through which every event has been examined (and delivered if selected), so
//! whatever the tail misses, a lag or a stretch before the subscription began, is read from
//! the database by position: nothing is skipped, nothing is delivered twice.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, warn};

use super::queue::{QueueError, QueueSender};
use super::tail::LiveBatch;
use super::{Delivery, SubscriptionError};
use crate::domain::{Direction, LogFilter, ReadAllQuery};
use crate::recorder::metadata_keys;
use crate::store::{EventStore, LogPage, ReadError, RecordedEvent};

/// How one subscription behaves (the server's limits and the client's wishes).
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub stall_timeout: Duration,
    pub checkpoint_interval: Duration,
    pub checkpoint_every: u64,
    pub page_size: i64,
}

pub(super) struct Subscriber {
    pub store: EventStore,
    pub filter: LogFilter,
    pub cursor: u64,
    /// From now: the cursor is the head already, and what commits after it is live. The
    /// caught-up checkpoint then comes first, at the head as it was.
    pub from_now: bool,
    pub settings: Settings,
    pub head: watch::Receiver<u64>,
    pub out: QueueSender,
    pub shutdown: CancellationToken,
}

/// Why a subscription stops.
enum Stop {
    /// The client went away (or the subscription was dropped): nobody to tell.
    ClientGone,
    End(SubscriptionError),
}

impl Subscriber {
    pub async fn run(
        self,
        live: broadcast::Receiver<Arc<LiveBatch>>,
        ended: oneshot::Sender<SubscriptionError>,
    ) {
        let mut follower = Follower {
            reported: self.cursor,
            last_sent: Instant::now(),
            subscriber: self,
        };
        match follower.follow(live).await {
            Stop::ClientGone => debug!("subscriber gone"),
            Stop::End(error) => {
                debug!(error = %error, "subscription ended");
                let _ = ended.send(error);
            }
        }
    }
}

struct Follower {
    subscriber: Subscriber,
    /// The last position the client was given (an event's or a checkpoint's).
    reported: u64,
    last_sent: Instant,
}

impl Follower {
    async fn follow(&mut self, mut live: broadcast::Receiver<Arc<LiveBatch>>) -> Stop {
        // Catch up to the head as this server knows it. `live` was subscribed before, so what
        // commits meanwhile is in its batches (and what they miss is read again, by position).
        let target = if self.subscriber.from_now {
            self.subscriber.cursor
        } else {
            *self.subscriber.head.borrow()
        };
        if let Err(stop) = self.catch_up(target).await {
            return stop;
        }
        let caught_up = Delivery::Checkpoint {
            position: self.subscriber.cursor,
            caught_up: true,
        };
        if let Err(stop) = self.send(caught_up).await {
            return stop;
        }
        loop {
            let heartbeat = self.last_sent + self.subscriber.settings.checkpoint_interval;
            let received = tokio::select! {
                biased;
                () = self.subscriber.shutdown.cancelled() => {
                    return Stop::End(SubscriptionError::ShuttingDown);
                }
                () = self.subscriber.out.closed() => return Stop::ClientGone,
                received = live.recv() => received,
                () = tokio::time::sleep_until(heartbeat) => {
                    let checkpoint = Delivery::Checkpoint {
                        position: self.subscriber.cursor,
                        caught_up: false,
                    };
                    if let Err(stop) = self.send(checkpoint).await {
                        return stop;
                    }
                    continue;
                }
            };
            let outcome = match received {
                Ok(batch) => self.take(&batch).await,
                // The receiver skips to the oldest batch kept: `take` reads what it missed.
                Err(broadcast::error::RecvError::Lagged(batches)) => {
                    debug!(
                        batches,
                        "subscriber lagged the live tail; reading from the database"
                    );
                    Ok(())
                }
                Err(broadcast::error::RecvError::Closed) => {
                    Err(Stop::End(SubscriptionError::ShuttingDown))
                }
            };
            if let Err(stop) = outcome {
                return stop;
            }
        }
    }

    /// Delivers what `batch` adds past the cursor, reading first any stretch before it.
    async fn take(&mut self, batch: &LiveBatch) -> Result<(), Stop> {
        if batch.through <= self.subscriber.cursor {
            return Ok(());
        }
        if batch.after > self.subscriber.cursor {
            self.catch_up(batch.after).await?;
        }
        for event in &batch.events {
            let position = event.position as u64;
            if position <= self.subscriber.cursor {
                continue;
            }
            if selects(&self.subscriber.filter, event) {
                self.send(Delivery::Event(event.clone())).await?;
            }
            self.subscriber.cursor = position;
        }
        self.subscriber.cursor = batch.through;
        self.checkpoint_if_due().await
    }

    /// Reads and delivers, page by page, every selected event up to `target` (committed).
    /// Without a filter it reads ahead first, as `ReadAll` does; whatever that leaves (a
    /// database that could not be reached) is read page by page, each page saying how far it
    /// looked, waiting for the database. Each page's successor is read while the page is
    /// delivered (read in turn, the database and the subscriber waited on each other: a
    /// filtered catch-up ran at two thirds of an unfiltered one's rate).
    async fn catch_up(&mut self, target: u64) -> Result<(), Stop> {
        if self.subscriber.filter.is_everything() && self.subscriber.cursor < target {
            self.catch_up_ahead(target).await?;
        }
        let mut ahead: Option<AbortOnDropHandle<Result<LogPage, ReadError>>> = None;
        while self.subscriber.cursor < target {
            let read_ahead = match ahead.take() {
                Some(next) => self.ahead_page(next).await?,
                None => None,
            };
            let page = match read_ahead {
                Some(page) => page,
                None => self.read_page(target).await?,
            };
            if page.through < target {
                ahead = Some(self.read_ahead(page.through, target));
            }
            for event in page.events {
                let position = event.position as u64;
                self.send(Delivery::Event(Arc::new(event))).await?;
                self.subscriber.cursor = position;
            }
            self.subscriber.cursor = page.through;
            self.checkpoint_if_due().await?;
        }
        Ok(())
    }

    /// Delivers every event up to `target` from a read of the log that fetches its next pages
    /// while the last is delivered (the log's pages fetched in turn kept the database and the
    /// subscriber waiting on each other: a catch-up ran at about two thirds of `ReadAll`'s
    /// rate). Stops early, leaving the rest to the paged reads, if the read fails.
    async fn catch_up_ahead(&mut self, target: u64) -> Result<(), Stop> {
        let cursor = self.subscriber.cursor;
        let query = ReadAllQuery {
            from_position: Some(cursor + 1),
            direction: Direction::Forward,
            limit: Some(target - cursor),
            event_types: Vec::new(),
            stream_prefix: None,
        };
        let pages = match self.subscriber.store.read_all_pages(query).await {
            Ok(pages) => pages,
            Err(error) => {
                warn!(error = %error, "a subscription could not read the log ahead; reading it page by page");
                return Ok(());
            }
        };
        let mut pages = std::pin::pin!(pages);
        loop {
            let page = tokio::select! {
                () = self.subscriber.shutdown.cancelled() => {
                    return Err(Stop::End(SubscriptionError::ShuttingDown));
                }
                () = self.subscriber.out.closed() => return Err(Stop::ClientGone),
                page = pages.next() => page,
            };
            let events = match page {
                None => return Ok(()),
                Some(Ok(events)) => events,
                Some(Err(error)) => {
                    warn!(error = %error, "a subscription's read ahead broke off; reading on page by page");
                    return Ok(());
                }
            };
            for event in events {
                let position = event.position as u64;
                self.send(Delivery::Event(Arc::new(event))).await?;
                self.subscriber.cursor = position;
            }
            self.checkpoint_if_due().await?;
        }
    }

    /// Starts reading the page of selected events after `after`, up to `target`.
    fn read_ahead(&self, after: u64, target: u64) -> AbortOnDropHandle<Result<LogPage, ReadError>> {
        let store = self.subscriber.store.clone();
        let filter = self.subscriber.filter.clone();
        let limit = self.subscriber.settings.page_size;
        AbortOnDropHandle::new(tokio::spawn(async move {
            store.events_page(after, target, &filter, limit).await
        }))
    }

    /// The page read ahead, or `None` if its read failed (the caller reads it again, waiting
    /// for the database as [`Self::read_page`] does).
    async fn ahead_page(
        &self,
        next: AbortOnDropHandle<Result<LogPage, ReadError>>,
    ) -> Result<Option<LogPage>, Stop> {
        let read = tokio::select! {
            () = self.subscriber.shutdown.cancelled() => {
                return Err(Stop::End(SubscriptionError::ShuttingDown));
            }
            () = self.subscriber.out.closed() => return Err(Stop::ClientGone),
            read = next => read,
        };
        match read {
            Ok(Ok(page)) => Ok(Some(page)),
            Ok(Err(error)) => {
                warn!(error = %error, "a subscription could not read the log ahead; reading it again");
                Ok(None)
            }
            Err(error) => {
                warn!(error = %error, "a subscription's read ahead ended early; reading it again");
                Ok(None)
            }
        }
    }

    /// One page of selected events after the cursor; while the database is unreachable, waits
    /// and tries again (the client sees a pause, not an error, and loses nothing).
    async fn read_page(&mut self, target: u64) -> Result<LogPage, Stop> {
        let mut retry = Duration::from_millis(100);
        loop {
            let subscriber = &self.subscriber;
            let read = subscriber.store.events_page(
                subscriber.cursor,
                target,
                &subscriber.filter,
                subscriber.settings.page_size,
            );
            let error = tokio::select! {
                () = subscriber.shutdown.cancelled() => {
                    return Err(Stop::End(SubscriptionError::ShuttingDown));
                }
                () = subscriber.out.closed() => return Err(Stop::ClientGone),
                read = read => match read {
                    Ok(page) => return Ok(page),
                    Err(error) => error,
                },
            };
            warn!(error = %error, ?retry, "a subscription could not read the log; retrying");
            tokio::select! {
                () = subscriber.shutdown.cancelled() => {
                    return Err(Stop::End(SubscriptionError::ShuttingDown));
                }
                () = subscriber.out.closed() => return Err(Stop::ClientGone),
                () = tokio::time::sleep(retry) => {}
            }
            retry = (retry * 2).min(Duration::from_secs(2));
        }
    }

    /// A checkpoint once enough positions went by without the client hearing of them.
    async fn checkpoint_if_due(&mut self) -> Result<(), Stop> {
        let cursor = self.subscriber.cursor;
        if cursor >= self.reported + self.subscriber.settings.checkpoint_every {
            self.send(Delivery::Checkpoint {
                position: cursor,
                caught_up: false,
            })
            .await?;
        }
        Ok(())
    }

    /// Queues one message for the client. A full queue gets `stall_timeout` to make room;
    /// after that the subscription ends rather than hold more for a client that does not read.
    async fn send(&mut self, delivery: Delivery) -> Result<(), Stop> {
        let position = delivery.position();
        let out = &self.subscriber.out;
        let stall = self.subscriber.settings.stall_timeout;
        let queued = tokio::select! {
            () = self.subscriber.shutdown.cancelled() => {
                return Err(Stop::End(SubscriptionError::ShuttingDown));
            }
            queued = out.send(delivery, stall) => queued,
        };
        match queued {
            Ok(()) => {}
            Err(QueueError::Closed) => return Err(Stop::ClientGone),
            Err(QueueError::Full) => {
                metrics::counter!(crate::monitoring::SUBSCRIPTIONS_ENDED, "reason" => "slow_consumer")
                    .increment(1);
                return Err(Stop::End(SubscriptionError::TooSlow {
                    messages: out.max_messages(),
                    bytes: out.max_bytes(),
                    stall,
                }));
            }
        }
        self.reported = position;
        self.last_sent = Instant::now();
        Ok(())
    }
}

/// The filter's selection of an event already in memory (see `LogFilter::matches`).
fn selects(filter: &LogFilter, event: &RecordedEvent) -> bool {
    filter.is_everything()
        || filter.matches(
            &event.event_type,
            &event.stream_id,
            event
                .metadata
                .get(metadata_keys::ACTORS)
                .map(String::as_str),
        )
}
