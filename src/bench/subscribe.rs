//! Subscription delivery latency: `subscribers` live subscribers (`Subscribe` from now) on the
//! one server and one client appending at a modest, steady rate; for each append and each
//! subscriber, the time from the append's acknowledgement at the client to that subscriber
//! receiving its position. Measures the client side's own cost as little as it can: the
//! subscribers are spread over several HTTP/2 connections, and the appends start only once
//! every subscriber is caught up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::transport::Channel;

use super::appends::PAYLOAD;
use super::report::{Latency, SubscriptionRun};
use crate::proto::{self, event_log_client::EventLogClient, subscription_message::Message};

/// Subscribers per HTTP/2 connection (one tonic `Channel`): enough connections that one
/// connection's task is not what delays delivery, few enough to stay far from any limit.
const SUBSCRIBERS_PER_CONNECTION: usize = 50;

/// What one subscriber received: positions and when, in arrival order.
type Receipts = Arc<Mutex<Vec<(i64, Instant)>>>;

pub async fn measure(
    url: &str,
    subscribers: usize,
    appends: usize,
    interval: Duration,
) -> anyhow::Result<SubscriptionRun> {
    let mut channels = Vec::new();
    for _ in 0..subscribers.div_ceil(SUBSCRIBERS_PER_CONNECTION) {
        channels.push(Channel::from_shared(url.to_owned())?.connect().await?);
    }
    // All subscribed and caught up before the first append.
    let streams = futures::future::try_join_all(
        (0..subscribers)
            .map(|i| subscribe(channels[i / SUBSCRIBERS_PER_CONNECTION].clone()))
            .collect::<Vec<_>>(),
    )
    .await?;
    let mut receipts: Vec<Receipts> = Vec::with_capacity(subscribers);
    let mut receiving = tokio::task::JoinSet::new();
    for mut stream in streams {
        let received = Receipts::default();
        receipts.push(received.clone());
        receiving.spawn(async move {
            while let Some(message) = stream.message().await? {
                if let Some(Message::Event(event)) = message.message {
                    let now = Instant::now();
                    received
                        .lock()
                        .expect("not poisoned")
                        .push((event.position, now));
                }
            }
            Ok::<_, tonic::Status>(())
        });
    }

    let mut writer = EventLogClient::new(Channel::from_shared(url.to_owned())?.connect().await?);
    let mut acknowledged = Vec::with_capacity(appends);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    for i in 0..appends {
        ticks.tick().await;
        let response = writer
            .append(proto::AppendRequest {
                stream_id: format!("bench-subscribed-{}", i % 10),
                expected_version: None,
                events: vec![proto::NewEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    r#type: "BenchEvent".into(),
                    data: PAYLOAD.into(),
                    metadata: None,
                }],
            })
            .await
            .context("a subscribed-to append failed")?
            .into_inner();
        acknowledged.push((response.positions[0], Instant::now()));
    }
    let rate = appends as f64 / started.elapsed().as_secs_f64();
    // Every acknowledged event must reach every subscriber; give the last ones a moment.
    let last = acknowledged.last().map_or(0, |(position, _)| *position);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !receipts.iter().all(|received| {
        received
            .lock()
            .expect("not poisoned")
            .last()
            .is_some_and(|(position, _)| *position >= last)
    }) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every subscriber received position {last}"
        );
        // A subscriber whose stream ended is an error, not a wait.
        if let Some(ended) = receiving.try_join_next() {
            ended.context("a subscriber panicked")??;
            anyhow::bail!("a subscription ended before position {last}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    receiving.abort_all();

    let mut latencies = Vec::with_capacity(appends * subscribers);
    let mut before_ack = 0;
    for received in &receipts {
        let received = received.lock().expect("not poisoned");
        // Both lists are in log order: walk them together.
        let mut arrivals = received.iter().peekable();
        for (position, acked) in &acknowledged {
            while arrivals.next_if(|(p, _)| p < position).is_some() {}
            let arrived = match arrivals.next_if(|(p, _)| p == position) {
                Some((_, arrived)) => arrived,
                None => anyhow::bail!("a subscriber missed position {position}"),
            };
            if arrived < acked {
                before_ack += 1;
            }
            latencies.push(arrived.saturating_duration_since(*acked));
        }
    }
    Ok(SubscriptionRun {
        subscribers,
        appends,
        rate_per_sec: rate,
        latency: Latency::of(latencies),
        before_ack,
    })
}

/// A live subscription from now on `channel`, past its first message (the caught-up
/// checkpoint: from then on, events are live).
async fn subscribe(
    channel: Channel,
) -> anyhow::Result<tonic::Streaming<proto::SubscriptionMessage>> {
    let mut stream = EventLogClient::new(channel)
        .subscribe(proto::SubscribeRequest {
            from: Some(proto::subscribe_request::From::Now(())),
            ..Default::default()
        })
        .await
        .context("could not subscribe")?
        .into_inner();
    match stream.message().await? {
        Some(proto::SubscriptionMessage {
            message: Some(Message::Checkpoint(checkpoint)),
        }) if checkpoint.caught_up => Ok(stream),
        other => anyhow::bail!("expected a caught-up checkpoint first, got {other:?}"),
    }
}
