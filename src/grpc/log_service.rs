//! `diplog.v1.EventLog`: append and read over gRPC.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::batches::{BatchStream, batches};
use super::convert::{append_batch, atomic_append, read_all_batches, read_stream_batches};
use super::stream_slot;
use crate::auth::access::principal;
use crate::domain::limits::AppendLimits;
use crate::domain::{ReadAllQuery, ReadStreamQuery};
use crate::proto::{self, event_log_server::EventLog};
use crate::store::EventStore;
use crate::stream_limit::{StreamLimiter, StreamSlot};
use crate::subscriptions::{SubscriptionRequest, Subscriptions};

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::RecordedEvent, Status>> + Send>>;

type SubscriptionStream =
    Pin<Box<dyn Stream<Item = Result<proto::SubscriptionMessage, Status>> + Send>>;

pub struct EventLogService {
    store: EventStore,
    subscriptions: Subscriptions,
    limits: AppendLimits,
    streams: StreamLimiter,
}

impl EventLogService {
    /// Appends within `limits`; reads and subscriptions count against `streams`.
    pub fn new(
        store: EventStore,
        subscriptions: Subscriptions,
        limits: AppendLimits,
        streams: StreamLimiter,
    ) -> Self {
        Self {
            store,
            subscriptions,
            limits,
            streams,
        }
    }
}

#[tonic::async_trait]
impl EventLog for EventLogService {
    #[tracing::instrument(skip_all, fields(stream_id = %request.get_ref().stream_id))]
    async fn append(
        &self,
        request: Request<proto::AppendRequest>,
    ) -> Result<Response<proto::AppendResponse>, Status> {
        // Who appends comes from the credential the auth layer checked, never from the request.
        let appended_by = principal(&request)?.name.clone();
        let batch = append_batch(request.into_inner(), &self.limits)?;
        let outcome = self.store.append(batch, &appended_by).await?;
        Ok(Response::new(outcome.into()))
    }

    #[tracing::instrument(skip_all, fields(appends = request.get_ref().appends.len()))]
    async fn append_many(
        &self,
        request: Request<proto::AppendManyRequest>,
    ) -> Result<Response<proto::AppendManyResponse>, Status> {
        let appended_by = principal(&request)?.name.clone();
        let unit = atomic_append(request.into_inner(), &self.limits)?;
        let outcomes = self.store.append_atomically(unit, &appended_by).await?;
        Ok(Response::new(proto::AppendManyResponse {
            appends: outcomes.into_iter().map(Into::into).collect(),
        }))
    }

    type ReadStreamStream = EventStream;

    #[tracing::instrument(skip_all, fields(stream_id = %request.get_ref().stream_id))]
    async fn read_stream(
        &self,
        request: Request<proto::ReadStreamRequest>,
    ) -> Result<Response<Self::ReadStreamStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let query = ReadStreamQuery::try_from(request.into_inner())?;
        let events = self.store.read_stream(query).await?;
        Ok(Response::new(to_event_stream(slot, "ReadStream", events)))
    }

    type ReadAllStream = EventStream;

    #[tracing::instrument(skip_all)]
    async fn read_all(
        &self,
        request: Request<proto::ReadAllRequest>,
    ) -> Result<Response<Self::ReadAllStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let query = ReadAllQuery::try_from(request.into_inner())?;
        let events = self.store.read_all(query).await?;
        Ok(Response::new(to_event_stream(slot, "ReadAll", events)))
    }

    type ReadStreamBatchesStream = BatchStream;

    #[tracing::instrument(skip_all, fields(stream_id = %request.get_ref().read.as_ref().map_or("", |r| r.stream_id.as_str())))]
    async fn read_stream_batches(
        &self,
        request: Request<proto::ReadStreamBatchesRequest>,
    ) -> Result<Response<Self::ReadStreamBatchesStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let (query, bound) = read_stream_batches(request.into_inner())?;
        let pages = self.store.read_stream_pages(query).await?;
        let read_bytes = read_bytes("ReadStreamBatches");
        Ok(Response::new(
            slot.hold(batches(pages, bound, read_bytes)).boxed(),
        ))
    }

    type ReadAllBatchesStream = BatchStream;

    #[tracing::instrument(skip_all)]
    async fn read_all_batches(
        &self,
        request: Request<proto::ReadAllBatchesRequest>,
    ) -> Result<Response<Self::ReadAllBatchesStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let (query, bound) = read_all_batches(request.into_inner())?;
        let pages = self.store.read_all_pages(query).await?;
        let read_bytes = read_bytes("ReadAllBatches");
        Ok(Response::new(
            slot.hold(batches(pages, bound, read_bytes)).boxed(),
        ))
    }

    type SubscribeStream = SubscriptionStream;

    #[tracing::instrument(skip_all)]
    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let request = SubscriptionRequest::try_from(request.into_inner())?;
        let subscription = self.subscriptions.subscribe(request).await?;
        let messages = subscription
            .map(|message| message.map(Into::into).map_err(Status::from))
            .boxed();
        Ok(Response::new(slot.hold(messages).boxed()))
    }

    async fn get_head(&self, _request: Request<()>) -> Result<Response<proto::Head>, Status> {
        let position = self.store.head().await?;
        Ok(Response::new(proto::Head {
            position: position as i64,
        }))
    }
}

/// The events as protobuf, holding `slot` while they are read; their payload bytes are
/// counted under `rpc` in `diplog_read_bytes_total`.
fn to_event_stream(
    slot: StreamSlot,
    rpc: &'static str,
    events: impl Stream<Item = Result<crate::store::RecordedEvent, crate::store::ReadError>>
    + Send
    + 'static,
) -> EventStream {
    let read_bytes = read_bytes(rpc);
    let events = events
        .map(move |event| {
            let event = event.map_err(Status::from)?;
            read_bytes.increment(event.data_text.len() as u64);
            Ok(proto::RecordedEvent::from(event))
        })
        .boxed();
    slot.hold(events).boxed()
}

/// The counter of payload bytes sent by `rpc` (`diplog_read_bytes_total`).
fn read_bytes(rpc: &'static str) -> metrics::Counter {
    metrics::counter!(crate::monitoring::READ_BYTES, "rpc" => rpc)
}
