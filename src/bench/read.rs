//! Reading the whole log back: `EventLog.ReadAll` (one event per message) and
//! `EventLog.ReadAllBatches` (the server's default bound) through gRPC against
//! `COPY ... TO STDOUT` of the same rows (`store::bulk::copy_out`), each from the start to the
//! head, on one client/connection.
//!
//! Each is measured twice, in mirrored order (ReadAll, ReadAllBatches, COPY, then COPY,
//! ReadAllBatches, ReadAll): the section runs right after the bulk load and the rebuild, when
//! PostgreSQL may still be vacuuming, and whatever the machine does meanwhile then weighs on
//! each way about equally instead of on whichever goes first.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use sqlx::PgPool;
use tonic::transport::Channel;

use super::report::{ReadPass, ReadRun};
use crate::proto::{self, event_log_client::EventLogClient};

/// Two passes of the three reads (see the module's comment); each rate is the events of both
/// passes over their time.
pub async fn measure(url: &str, pool: &PgPool) -> anyhow::Result<ReadRun> {
    let head = crate::store::head(pool).await?;
    let mut passes = Vec::new();
    let mut totals = [Duration::ZERO; 3];
    for mirrored in [false, true] {
        let mut times = [Duration::ZERO; 3];
        let mut order = [0, 1, 2];
        if mirrored {
            order.reverse();
        }
        for way in order {
            let (read, time) = match way {
                0 => grpc_read_all(url).await?,
                1 => grpc_read_all_batches(url).await?,
                _ => copy_out(pool, head).await?,
            };
            anyhow::ensure!(
                read == head,
                "read back {read} events ({}), not the head {head}",
                ["ReadAll", "ReadAllBatches", "COPY"][way]
            );
            times[way] = time;
            totals[way] += time;
        }
        let rate = |time: Duration| head as f64 / time.as_secs_f64();
        passes.push(ReadPass {
            grpc_events_per_sec: rate(times[0]),
            batched_events_per_sec: rate(times[1]),
            copy_out_events_per_sec: rate(times[2]),
        });
    }
    let rate = |time: Duration| (2 * head) as f64 / time.as_secs_f64();
    let (grpc, batched, copy) = (rate(totals[0]), rate(totals[1]), rate(totals[2]));
    Ok(ReadRun {
        events: head,
        grpc_events_per_sec: grpc,
        batched_events_per_sec: batched,
        copy_out_events_per_sec: copy,
        ratio: grpc / copy,
        batched_ratio: batched / copy,
        passes,
    })
}

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
