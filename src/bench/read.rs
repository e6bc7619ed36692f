//! Reading the whole log back: `EventLog.ReadAll` (one event per message) and
//! `EventLog.ReadAllBatches` (the server's default bound) through gRPC against
//! `COPY ... TO STDOUT` of the same rows (`store::bulk::copy_out`), each from the start to the
//! head, on one client/connection.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::proto::{self, event_log_client::EventLogClient};

/// Reads every event through gRPC; answers how many and how long it took.
pub async fn grpc_read_all(url: &str) -> anyhow::Result<(u64, Duration)> {
    let mut client = EventLogClient::new(Channel::from_shared(url.to_owned())?.connect().await?)
        .max_decoding_message_size(usize::MAX);
    let started = Instant::now();
    let mut stream = client
        .read_all(proto::ReadAllRequest {
            from_position: Some(1),
            ..Default::default()
        })
        .await
        .context("ReadAll failed")?
        .into_inner();
    let mut count = 0;
    while let Some(event) = stream.message().await.context("ReadAll broke off")? {
        // Touch the payload so nothing is optimized away.
        count += u64::from(!event.data.is_empty());
    }
    Ok((count, started.elapsed()))
}

/// Reads every event through gRPC in batches (`ReadAllBatches`, the server's default bound);
/// answers how many events and how long it took.
pub async fn grpc_read_all_batches(url: &str) -> anyhow::Result<(u64, Duration)> {
    let mut client = EventLogClient::new(Channel::from_shared(url.to_owned())?.connect().await?)
        .max_decoding_message_size(usize::MAX);
    let started = Instant::now();
    let mut stream = client
        .read_all_batches(proto::ReadAllBatchesRequest {
            read: Some(proto::ReadAllRequest {
                from_position: Some(1),
                ..Default::default()
            }),
            max_batch_bytes: None,
        })
        .await
        .context("ReadAllBatches failed")?
        .into_inner();
    let mut count = 0;
    while let Some(batch) = stream.message().await.context("ReadAllBatches broke off")? {
        // Touch each payload, as the one-event read does.
        count += batch
            .events
            .iter()
            .map(|event| u64::from(!event.data.is_empty()))
            .sum::<u64>();
    }
    Ok((count, started.elapsed()))
}

/// `COPY` of the columns a read returns, in position order, up to `head`; answers how many
/// rows and how long it took.
pub async fn copy_out(pool: &PgPool, head: u64) -> anyhow::Result<(u64, Duration)> {
    let mut connection = pool.acquire().await?;
    let started = Instant::now();
    let mut stream = crate::store::bulk::copy_out(&mut connection, head)
        .await
        .context("could not start COPY TO STDOUT")?;
    let mut rows = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("COPY TO STDOUT broke off")?;
        rows += chunk.as_ref().iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((rows, started.elapsed()))
}
