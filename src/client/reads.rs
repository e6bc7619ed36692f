//! How clients read many events (`diplog read`, `diplog export`, the benchmark): through the
//! batched reads, many events per message, falling back on the one-event reads against a
//! server that predates the batched ones (it answers UNIMPLEMENTED). Either way the caller
//! gets the same events, one at a time, in the read's order.
//!
//! A batched read refused as INVALID_ARGUMENT is asked again in the one-event form: the CLI
//! never sends a bad bound, so the fault is in the read both forms share, and the one-event
//! form's answer names the field as the CLI always reported it (`event_types[0]`, not
//! `read.event_types[0]`).

use tonic::{Code, Status, Streaming};

use crate::auth::client::AuthChannel;
use crate::proto::{self, event_log_client::EventLogClient};

/// The events of one read, as the server sends them.
pub enum Events {
    Batches {
        batches: Streaming<proto::EventBatch>,
        batch: std::vec::IntoIter<proto::RecordedEvent>,
    },
    OneByOne(Streaming<proto::RecordedEvent>),
}

impl Events {
    /// The next event, `None` at the end of the read.
    pub async fn next(&mut self) -> Result<Option<proto::RecordedEvent>, Status> {
        match self {
            Self::OneByOne(events) => events.message().await,
            Self::Batches { batches, batch } => loop {
                if let Some(event) = batch.next() {
                    return Ok(Some(event));
                }
                match batches.message().await? {
                    Some(next) => *batch = next.events.into_iter(),
                    None => return Ok(None),
                }
            },
        }
    }

    fn batches(batches: Streaming<proto::EventBatch>) -> Self {
        Self::Batches {
            batches,
            batch: Vec::new().into_iter(),
        }
    }
}

/// Whether to ask again in the one-event form (see the module's comment).
fn one_by_one(status: &Status) -> bool {
    matches!(status.code(), Code::Unimplemented | Code::InvalidArgument)
}

/// `ReadAll`'s events, in batches of the server's default size when it has them.
pub async fn read_all(
    client: &mut EventLogClient<AuthChannel>,
    read: proto::ReadAllRequest,
) -> Result<Events, Status> {
    let batched = proto::ReadAllBatchesRequest {
        read: Some(read.clone()),
        max_batch_bytes: None,
    };
    match client.read_all_batches(batched).await {
        Ok(response) => Ok(Events::batches(response.into_inner())),
        Err(status) if one_by_one(&status) => {
            Ok(Events::OneByOne(client.read_all(read).await?.into_inner()))
        }
        Err(status) => Err(status),
    }
}

/// `ReadStream`'s events, as [`read_all`].
pub async fn read_stream(
    client: &mut EventLogClient<AuthChannel>,
    read: proto::ReadStreamRequest,
) -> Result<Events, Status> {
    let batched = proto::ReadStreamBatchesRequest {
        read: Some(read.clone()),
        max_batch_bytes: None,
    };
    match client.read_stream_batches(batched).await {
        Ok(response) => Ok(Events::batches(response.into_inner())),
        Err(status) if one_by_one(&status) => Ok(Events::OneByOne(
            client.read_stream(read).await?.into_inner(),
        )),
        Err(status) => Err(status),
    }
}
