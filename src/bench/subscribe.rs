//! Subscription delivery latency: one live subscriber (`Subscribe` from now) and one client
//! appending at a modest, steady rate; for each append, the time from its acknowledgement at
//! the client to the subscriber receiving its position.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tonic::transport::Channel;

use super::appends::PAYLOAD;
use super::report::{Latency, SubscriptionRun};
use crate::proto::{self, event_log_client::EventLogClient, subscription_message::Message};

pub async fn measure(
    url: &str,
    appends: usize,
    interval: Duration,
) -> anyhow::Result<SubscriptionRun> {
    let channel = Channel::from_shared(url.to_owned())?.connect().await?;
    let mut subscriber = EventLogClient::new(channel.clone())
        .subscribe(proto::SubscribeRequest {
            from: Some(proto::subscribe_request::From::Now(())),
            ..Default::default()
        })
        .await
        .context("could not subscribe")?
        .into_inner();
    // The first message is the caught-up checkpoint: from then on, events are live.
    match subscriber.message().await? {
        Some(proto::SubscriptionMessage {
            message: Some(Message::Checkpoint(checkpoint)),
        }) if checkpoint.caught_up => {}
        other => anyhow::bail!("expected a caught-up checkpoint first, got {other:?}"),
    }
    let received: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let receiving = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(message) = subscriber.message().await? {
                if let Some(Message::Event(event)) = message.message {
                    let now = Instant::now();
                    received
                        .lock()
                        .expect("not poisoned")
                        .insert(event.position, now);
                }
            }
            Ok::<_, tonic::Status>(())
        })
    };

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
    // Every acknowledged event must arrive; give the last ones a moment.
    let last = acknowledged.last().map_or(0, |(position, _)| *position);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !received.lock().expect("not poisoned").contains_key(&last) {
        anyhow::ensure!(
            Instant::now() < deadline && !receiving.is_finished(),
            "the subscriber did not receive position {last}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    receiving.abort();
    let received = received.lock().expect("not poisoned");
    let mut latencies = Vec::with_capacity(appends);
    let mut before_ack = 0;
    for (position, acked) in &acknowledged {
        let arrived = received
            .get(position)
            .with_context(|| format!("the subscriber missed position {position}"))?;
        if arrived < acked {
            before_ack += 1;
        }
        latencies.push(arrived.saturating_duration_since(*acked));
    }
    Ok(SubscriptionRun {
        appends,
        rate_per_sec: rate,
        latency: Latency::of(latencies),
        before_ack,
    })
}
