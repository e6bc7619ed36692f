//! The live tail: reads each new stretch of the log once, whatever the number of subscribers,
//! and broadcasts it to the live ones.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::domain::LogFilter;
use crate::store::{EventStore, LogPage, RecordedEvent};

/// Every event with `after < position <= through`, none left out (the tail does not filter).
#[derive(Debug)]
pub(super) struct LiveBatch {
    pub after: u64,
    pub through: u64,
    pub events: Vec<Arc<RecordedEvent>>,
}

/// Runs until `shutdown`; dropping `live` then tells every live subscriber.
pub(super) async fn run(
    store: EventStore,
    mut head: watch::Receiver<u64>,
    live: broadcast::Sender<Arc<LiveBatch>>,
    page_size: i64,
    shutdown: CancellationToken,
) {
    let everything = LogFilter::default();
    let mut retry = Duration::from_millis(50);
    // No subscriber can be waiting for anything before the head as it stands now.
    let mut cursor = *head.borrow_and_update();
    loop {
        let target = *head.borrow_and_update();
        if target <= cursor {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = head.changed() => if changed.is_err() { return },
            }
            continue;
        }
        if live.receiver_count() == 0 {
            // Nobody to read for. A subscriber that comes later finds the stretch missing
            // from its first batch and reads it from the database itself.
            cursor = target;
            continue;
        }
        let read = tokio::select! {
            () = shutdown.cancelled() => return,
            read = store.events_page(cursor, target, &everything, page_size) => read,
        };
        match read {
            Ok(LogPage { events, through }) => {
                retry = Duration::from_millis(50);
                let batch = LiveBatch {
                    after: cursor,
                    through,
                    events: events.into_iter().map(Arc::new).collect(),
                };
                // No receiver left is fine: the batch is simply not needed.
                let _ = live.send(Arc::new(batch));
                cursor = through;
            }
            Err(error) => {
                warn!(error = %error, ?retry, "the live tail could not read the log; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(Duration::from_secs(2));
            }
        }
    }
}
