//! A subscriber's queue: bounded both in messages and in bytes, so a client that does not read
//! costs the server at most that much memory, whatever the size of the events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::Delivery;

/// A queued message; its share of the byte budget is returned when the client takes it.
pub(super) struct Queued {
    pub delivery: Delivery,
    _bytes: OwnedSemaphorePermit,
}

pub(super) struct QueueSender {
    items: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

pub(super) enum QueueError {
    /// The receiving side is gone.
    Closed,
    /// No room came within the wait.
    Full,
}

pub(super) fn queue(messages: usize, bytes: usize) -> (QueueSender, mpsc::Receiver<Queued>) {
    let max_bytes = bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let (items, receiver) = mpsc::channel(messages.max(1));
    let sender = QueueSender {
        items,
        bytes: Arc::new(Semaphore::new(max_bytes)),
        max_bytes,
    };
    (sender, receiver)
}

impl QueueSender {
    /// Queues `delivery`, waiting at most `wait` for room (in messages and in bytes). One
    /// message larger than the whole byte budget waits for an empty queue, then goes alone.
    pub async fn send(&self, delivery: Delivery, wait: Duration) -> Result<(), QueueError> {
        let cost = cost(&delivery).clamp(1, self.max_bytes) as u32;
        let room = async {
            let bytes = match self.bytes.clone().try_acquire_many_owned(cost) {
                Ok(permit) => permit,
                Err(_) => self
                    .bytes
                    .clone()
                    .acquire_many_owned(cost)
                    .await
                    .expect("the semaphore is never closed"),
            };
            let slot = self.items.reserve().await.map_err(|_| QueueError::Closed)?;
            slot.send(Queued {
                delivery,
                _bytes: bytes,
            });
            Ok(())
        };
        tokio::select! {
            () = self.items.closed() => Err(QueueError::Closed),
            queued = tokio::time::timeout(wait, room) => queued.unwrap_or(Err(QueueError::Full)),
        }
    }

    /// Resolves when the receiving side is gone.
    pub async fn closed(&self) {
        self.items.closed().await;
    }

    pub fn max_messages(&self) -> usize {
        self.items.max_capacity()
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

/// About what a message weighs in memory: its text, plus a fixed overhead.
fn cost(delivery: &Delivery) -> usize {
    const OVERHEAD: usize = 256;
    match delivery {
        Delivery::Event(event) => {
            let metadata: usize = event.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            OVERHEAD
                + event.data_text.len()
                + event.stream_id.len()
                + event.event_type.len()
                + event.appended_by.len()
                + metadata
        }
        Delivery::Checkpoint { .. } => OVERHEAD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(position: u64) -> Delivery {
        Delivery::Checkpoint {
            position,
            caught_up: false,
        }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_full_queue_refuses_after_the_wait_and_takes_again_once_read() {
        let (sender, mut receiver) = queue(2, 1 << 20);
        assert!(sender.send(checkpoint(1), SHORT).await.is_ok());
        assert!(sender.send(checkpoint(2), SHORT).await.is_ok());
        assert!(matches!(
            sender.send(checkpoint(3), SHORT).await,
            Err(QueueError::Full)
        ));
        let first = receiver.recv().await.unwrap();
        assert_eq!(first.delivery.position(), 1);
        assert!(sender.send(checkpoint(3), SHORT).await.is_ok());
    }

    #[tokio::test]
    async fn the_byte_budget_bounds_the_queue_before_the_message_count_does() {
        // Room for three checkpoints' worth of bytes, though a hundred messages would fit.
        let (sender, mut receiver) = queue(100, 3 * 256);
        for position in 1..=3 {
            assert!(sender.send(checkpoint(position), SHORT).await.is_ok());
        }
        assert!(matches!(
            sender.send(checkpoint(4), SHORT).await,
            Err(QueueError::Full)
        ));
        // Reading one returns its bytes.
        drop(receiver.recv().await.unwrap());
        assert!(sender.send(checkpoint(4), SHORT).await.is_ok());
    }

    #[tokio::test]
    async fn a_gone_receiver_is_reported_as_closed() {
        let (sender, receiver) = queue(1, 1024);
        drop(receiver);
        assert!(matches!(
            sender.send(checkpoint(1), SHORT).await,
            Err(QueueError::Closed)
        ));
    }
}
