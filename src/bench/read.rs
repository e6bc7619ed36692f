//! Reading the whole log back, one client each way, every way from the start to the head:
//! `EventLog.ReadAll` (one event per message), `EventLog.ReadAllBatches` (the server's default
//! bound), `EventLog.ReadStream` (every stream of the log in turn, one call each),
//! `EventLog.Subscribe` from the start until its caught-up checkpoint (of every event, and of
//! the typed ones only: a filtered subscription), and the event lines of
//! `diplog export` (`client::export`, written to a sink), against `COPY ... TO STDOUT` of the
//! same rows (`store::bulk::copy_out`).
//!
//! Each is measured twice, in mirrored order (the ways above, then COPY, then the same in
//! reverse): the section runs right after the bulk load and the rebuild, when PostgreSQL may
//! still be vacuuming, and whatever the machine does meanwhile then weighs on each way about
//! equally instead of on whichever goes first.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use sqlx::PgPool;
use tonic::transport::Channel;

use super::report::{ReadPass, ReadRun};
use crate::auth::client::Bearer;
use crate::client::export::write_events;
use crate::proto::subscription_message::Message;
use crate::proto::{self, event_log_client::EventLogClient};

/// The ways the log is read, in the first pass's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ReadAll,
    ReadAllBatches,
    ReadStream,
    Subscribe,
    SubscribeTyped,
    Export,
    Copy,
}

const WAYS: [Way; 7] = [
    Way::ReadAll,
    Way::ReadAllBatches,
    Way::ReadStream,
    Way::Subscribe,
    Way::SubscribeTyped,
    Way::Export,
    Way::Copy,
];

/// The event type a filtered subscription selects: the bench log's typed events (the bulk
/// load copies them), most of the log, so the filter's own cost shows rather than its gaps.
const TYPED: &str = "CallHeld";

/// Two passes of every way (see the module's comment); each rate is the events of both passes
/// over their time.
pub async fn measure(url: &str, pool: &PgPool) -> anyhow::Result<ReadRun> {
    let head = crate::store::head(pool).await?;
    let streams: Vec<String> =
        sqlx::query_scalar("select stream_id from streams order by stream_id collate \"C\"")
            .fetch_all(pool)
            .await?;
    let typed = crate::store::count_of_type(pool, TYPED, head).await?;
    // The events each way reads: the whole log, or its typed events.
    let events = |way: Way| match way {
        Way::SubscribeTyped => typed,
        _ => head,
    };
    let mut passes = Vec::new();
    let mut totals = [Duration::ZERO; WAYS.len()];
    for mirrored in [false, true] {
        let mut times = [Duration::ZERO; WAYS.len()];
        let mut order: Vec<usize> = (0..WAYS.len()).collect();
        if mirrored {
            order.reverse();
        }
        for way in order {
            let (read, time) = match WAYS[way] {
                Way::ReadAll => grpc_read_all(url).await?,
                Way::ReadAllBatches => grpc_read_all_batches(url).await?,
                Way::ReadStream => grpc_read_streams(url, &streams).await?,
                Way::Subscribe => grpc_subscribe_catch_up(url, None).await?,
                Way::SubscribeTyped => grpc_subscribe_catch_up(url, Some(TYPED)).await?,
                Way::Export => export_lines(url, head).await?,
                Way::Copy => copy_out(pool, head).await?,
            };
            let expected = events(WAYS[way]);
            anyhow::ensure!(
                read == expected,
                "read back {read} events ({:?}), not the {expected} it selects",
                WAYS[way]
            );
            times[way] = time;
            totals[way] += time;
        }
        let rate = |way: Way| {
            let at = WAYS.iter().position(|w| *w == way).expect("a way");
            events(way) as f64 / times[at].as_secs_f64()
        };
        passes.push(ReadPass {
            grpc_events_per_sec: rate(Way::ReadAll),
            batched_events_per_sec: rate(Way::ReadAllBatches),
            stream_events_per_sec: rate(Way::ReadStream),
            subscribe_events_per_sec: rate(Way::Subscribe),
            subscribe_typed_events_per_sec: rate(Way::SubscribeTyped),
            export_events_per_sec: rate(Way::Export),
            copy_out_events_per_sec: rate(Way::Copy),
        });
    }
    let rate = |way: Way| {
        let at = WAYS.iter().position(|w| *w == way).expect("a way");
        (2 * events(way)) as f64 / totals[at].as_secs_f64()
    };
    let copy = rate(Way::Copy);
    Ok(ReadRun {
        events: head,
        streams: streams.len() as u64,
        grpc_events_per_sec: rate(Way::ReadAll),
        batched_events_per_sec: rate(Way::ReadAllBatches),
        stream_events_per_sec: rate(Way::ReadStream),
        subscribe_events_per_sec: rate(Way::Subscribe),
        typed_events: typed,
        subscribe_typed_events_per_sec: rate(Way::SubscribeTyped),
        export_events_per_sec: rate(Way::Export),
        copy_out_events_per_sec: copy,
        ratio: rate(Way::ReadAll) / copy,
        batched_ratio: rate(Way::ReadAllBatches) / copy,
        stream_ratio: rate(Way::ReadStream) / copy,
        subscribe_ratio: rate(Way::Subscribe) / copy,
        subscribe_typed_ratio: rate(Way::SubscribeTyped) / copy,
        export_ratio: rate(Way::Export) / copy,
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

/// Reads every stream whole through `ReadStream` (one event per message), one call per
/// stream, in turn; answers how many events and how long it took.
async fn grpc_read_streams(url: &str, streams: &[String]) -> anyhow::Result<(u64, Duration)> {
    let mut client = EventLogClient::new(Channel::from_shared(url.to_owned())?.connect().await?)
        .max_decoding_message_size(usize::MAX);
    let started = Instant::now();
    let mut count = 0;
    for stream_id in streams {
        let mut events = client
            .read_stream(proto::ReadStreamRequest {
                stream_id: stream_id.clone(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("ReadStream of {stream_id} failed"))?
            .into_inner();
        while let Some(event) = events.message().await.context("ReadStream broke off")? {
            count += u64::from(!event.data.is_empty());
        }
    }
    Ok((count, started.elapsed()))
}

/// Subscribes from the start (to events of `event_type` only, if given) and takes every event
/// up to the caught-up checkpoint; answers how many events and how long it took.
async fn grpc_subscribe_catch_up(
    url: &str,
    event_type: Option<&str>,
) -> anyhow::Result<(u64, Duration)> {
    let mut client = EventLogClient::new(Channel::from_shared(url.to_owned())?.connect().await?)
        .max_decoding_message_size(usize::MAX);
    let started = Instant::now();
    let mut stream = client
        .subscribe(proto::SubscribeRequest {
            from: Some(proto::subscribe_request::From::Start(())),
            filter: event_type.map(|event_type| proto::SubscriptionFilter {
                event_types: vec![event_type.to_owned()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("Subscribe failed")?
        .into_inner();
    let mut count = 0;
    loop {
        let message = stream
            .message()
            .await
            .context("the subscription broke off")?
            .context("the subscription ended before it caught up")?;
        match message.message {
            Some(Message::Event(event)) => count += u64::from(!event.data.is_empty()),
            Some(Message::Checkpoint(checkpoint)) if checkpoint.caught_up => break,
            _ => {}
        }
    }
    Ok((count, started.elapsed()))
}

/// Writes the export's lines of every event up to `head` (`client::export`, as `diplog
/// export` does, each event with its leaf hash) to a sink; answers how many events and how
/// long it took. (The closing signed head, one call, is left out.)
async fn export_lines(url: &str, head: u64) -> anyhow::Result<(u64, Duration)> {
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut client = EventLogClient::new(Bearer::new(None)?.channel(channel));
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let written = write_events(&mut client, 1, head, &mut out)
        .await
        .context("the export failed")?;
    Ok((written, started.elapsed()))
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
