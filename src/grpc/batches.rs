//! The batched reads' answer: a read's pages of events regrouped into `EventBatch` messages,
//! each within the reader's byte bound (`domain::batch`), in the read's order. Events are
//! converted as the one-event reads convert them, the payload text passed on as stored. No
//! SQL and no choice of what is read here: that is the store's.

use std::pin::Pin;

use futures::{FutureExt, Stream, StreamExt, stream};
use tonic::Status;

use crate::domain::batch::{Batch, BatchBytes};
use crate::proto;
use crate::store::{ReadError, RecordedEvent};

pub type BatchStream = Pin<Box<dyn Stream<Item = Result<proto::EventBatch, Status>> + Send>>;

type Pages = Pin<Box<dyn Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send>>;

/// `pages` as batches of at most `bound` bytes each, encoded (a larger event alone). A batch
/// goes out when the next event does not fit, or when the next page is not there yet: pages
/// that are ready fill a batch, but no event waits for the database. An error ends the
/// batches after the events read before it. The payload bytes sent are counted in `read_bytes`.
pub fn batches(
    pages: impl Stream<Item = Result<Vec<RecordedEvent>, ReadError>> + Send + 'static,
    bound: BatchBytes,
    read_bytes: metrics::Counter,
) -> BatchStream {
    let batching = Batching {
        pages: pages.boxed(),
        page: Vec::new().into_iter(),
        carried: None,
        batch: Batch::new(bound),
        failed: None,
        ended: false,
        read_bytes,
    };
    stream::unfold(batching, |mut batching| async move {
        let item = batching.next_batch().await?;
        Some((item, batching))
    })
    .boxed()
}

struct Batching {
    pages: Pages,
    /// What is left of the page being batched.
    page: std::vec::IntoIter<RecordedEvent>,
    /// An event that did not fit the last batch, with its size: the next batch's first.
    carried: Option<(proto::RecordedEvent, usize)>,
    batch: Batch<proto::RecordedEvent>,
    /// The error that ended the pages, answered after the batch read before it.
    failed: Option<Status>,
    ended: bool,
    read_bytes: metrics::Counter,
}

impl Batching {
    async fn next_batch(&mut self) -> Option<Result<proto::EventBatch, Status>> {
        if let Some(status) = self.failed.take() {
            return Some(Err(status));
        }
        if self.ended {
            return None;
        }
        if let Some((event, size)) = self.carried.take() {
            // The batch was just taken, so it fits whatever its size.
            let _ = self.batch.push(event, size);
        }
        loop {
            for event in self.page.by_ref() {
                self.read_bytes.increment(event.data_text.len() as u64);
                let event = proto::RecordedEvent::from(event);
                // Its bytes within the batch: the field's tag and length, then the event.
                let size = prost::encoding::message::encoded_len(1, &event);
                if let Err(event) = self.batch.push(event, size) {
                    self.carried = Some((event, size));
                    return Some(Ok(self.take()));
                }
            }
            let next = if self.batch.is_empty() {
                self.pages.next().await
            } else {
                // Polled again with the real waker at the next batch, so nothing is lost.
                match self.pages.next().now_or_never() {
                    Some(next) => next,
                    None => return Some(Ok(self.take())),
                }
            };
            match next {
                Some(Ok(page)) => self.page = page.into_iter(),
                Some(Err(error)) => {
                    self.ended = true;
                    let status = Status::from(error);
                    if self.batch.is_empty() {
                        return Some(Err(status));
                    }
                    self.failed = Some(status);
                    return Some(Ok(self.take()));
                }
                None => {
                    self.ended = true;
                    return (!self.batch.is_empty()).then(|| Ok(self.take()));
                }
            }
        }
    }

    fn take(&mut self) -> proto::EventBatch {
        proto::EventBatch {
            events: self.batch.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use prost::Message;

    fn event(position: i64, payload_bytes: usize) -> RecordedEvent {
        let payload = format!("\"{}\"", "x".repeat(payload_bytes.saturating_sub(2)));
        RecordedEvent::example(position, payload)
    }

    /// The bytes `event(…, payload_bytes)` takes in a batch.
    fn size(payload_bytes: usize) -> usize {
        let event = proto::RecordedEvent::from(event(1, payload_bytes));
        prost::encoding::message::encoded_len(1, &event)
    }

    fn positions(batch: &proto::EventBatch) -> Vec<i64> {
        batch.events.iter().map(|e| e.position).collect()
    }

    fn bound(bytes: usize) -> BatchBytes {
        BatchBytes::parse(Some(bytes as u32)).unwrap()
    }

    async fn collect(stream: BatchStream) -> Vec<Result<proto::EventBatch, Status>> {
        stream.collect().await
    }

    #[tokio::test]
    async fn ready_pages_fill_batches_up_to_the_bound_in_order() {
        let pages = stream::iter([
            Ok(vec![event(1, 100), event(2, 100)]),
            Ok(vec![event(3, 100)]),
            Ok(vec![event(4, 100), event(5, 100)]),
        ]);
        let batches = collect(batches(
            pages,
            bound(3 * size(100)),
            metrics::Counter::noop(),
        ))
        .await;
        let batches: Vec<_> = batches.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            batches.iter().map(positions).collect::<Vec<_>>(),
            vec![vec![1, 2, 3], vec![4, 5]]
        );
        // The bound is on the encoded message, exactly.
        assert_eq!(batches[0].encoded_len(), 3 * size(100));
    }

    #[tokio::test]
    async fn an_event_larger_than_the_bound_comes_alone() {
        let pages = stream::iter([Ok(vec![event(1, 10), event(2, 5000), event(3, 10)])]);
        let batches = collect(batches(pages, bound(1000), metrics::Counter::noop())).await;
        let batches: Vec<_> = batches
            .iter()
            .map(|b| positions(b.as_ref().unwrap()))
            .collect();
        assert_eq!(batches, vec![vec![1], vec![2], vec![3]]);
    }

    #[tokio::test]
    async fn a_batch_goes_out_when_the_next_page_is_not_there_yet() {
        let (send, pages) = mpsc::unbounded();
        let mut batches = batches(pages, bound(1 << 20), metrics::Counter::noop());
        send.unbounded_send(Ok(vec![event(1, 10), event(2, 10)]))
            .unwrap();
        assert_eq!(positions(&batches.next().await.unwrap().unwrap()), [1, 2]);
        send.unbounded_send(Ok(vec![event(3, 10)])).unwrap();
        drop(send);
        assert_eq!(positions(&batches.next().await.unwrap().unwrap()), [3]);
        assert!(batches.next().await.is_none());
    }

    #[tokio::test]
    async fn an_error_comes_after_the_events_read_before_it() {
        let pages = stream::iter([
            Ok(vec![event(1, 10)]),
            Err(ReadError::StreamNotFound("s".to_owned())),
            Ok(vec![event(2, 10)]),
        ]);
        let batches = collect(batches(pages, bound(1 << 20), metrics::Counter::noop())).await;
        assert_eq!(batches.len(), 2);
        assert_eq!(positions(batches[0].as_ref().unwrap()), [1]);
        assert_eq!(
            batches[1].as_ref().unwrap_err().code(),
            tonic::Code::NotFound
        );
    }
}
