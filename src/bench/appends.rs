//! The write side of `diplog bench`: appends through gRPC, typed records, and the same rows
//! written by single-row INSERT transactions and by COPY into a table of the same shape.
//! Every function here measures one run and answers its wall time (and per-call latencies).

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tonic::transport::Channel;

use crate::proto::{self, diplomacy_client::DiplomacyClient, event_log_client::EventLogClient};

/// The payload every benchmark event carries, on every side.
pub const PAYLOAD: &str = r#"{"participants": ["RUS", "USA"], "topic": "bench"}"#;

/// A run's wall time and the duration of each call in it.
pub struct Timed {
    pub elapsed: Duration,
    pub calls: Vec<Duration>,
}

/// Splits `events` over `clients` as evenly as possible.
pub fn share(events: usize, clients: usize, client: usize) -> usize {
    events / clients + usize::from(client < events % clients)
}

/// `events` events through gRPC, `batch` per append, from `clients` concurrent connections
/// spread evenly over the servers at `urls`.
pub async fn grpc_appends(
    urls: &[String],
    clients: usize,
    events: usize,
    batch: usize,
) -> anyhow::Result<Timed> {
    let mut connected = Vec::with_capacity(clients);
    for client in 0..clients {
        let url = &urls[client % urls.len()];
        let channel = Channel::from_shared(url.clone())?.connect().await?;
        connected.push(EventLogClient::new(channel));
    }
    // Stream names unique to this call, so runs on several servers do not contend on them.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (client_index, mut client) in connected.into_iter().enumerate() {
        let count = share(events, clients, client_index);
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            let mut calls = Vec::with_capacity(count.div_ceil(batch));
            let mut written = 0;
            for i in 0.. {
                if written >= count {
                    break;
                }
                let size = batch.min(count - written);
                let request = proto::AppendRequest {
                    stream_id: format!("bench-{run}-{client_index}-{}", i % 100),
                    expected_version: None,
                    events: (0..size)
                        .map(|_| proto::NewEvent {
                            id: uuid::Uuid::new_v4().to_string(),
                            r#type: "BenchEvent".into(),
                            data: PAYLOAD.into(),
                            metadata: None,
                        })
                        .collect(),
                };
                let sent = Instant::now();
                client.append(request).await?;
                calls.push(sent.elapsed());
                written += size;
            }
            Ok::<_, tonic::Status>(calls)
        }));
    }
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await?.context("a benchmark append failed")?);
    }
    Ok(Timed {
        elapsed: started.elapsed(),
        calls,
    })
}

/// The actors the typed benchmark events name.
pub async fn register_bench_actors(url: &str) -> anyhow::Result<()> {
    let mut client = DiplomacyClient::new(Channel::from_shared(url.to_owned())?.connect().await?);
    let actors = [
        ("RUS", "STATE", "Russia"),
        ("USA", "STATE", "United States"),
        ("bench-a", "PERSON", "A"),
        ("bench-b", "PERSON", "B"),
        ("bench-c", "PERSON", "C"),
        ("bench-d", "PERSON", "D"),
    ];
    for (id, kind, name) in actors {
        let json = serde_json::json!({"actor_registered": {"actor": {"id": id, "kind": kind, "name": name}}});
        let event = crate::grpc::bridge::event_from_json(json, &uuid::Uuid::now_v7().to_string())
            .map_err(|e| anyhow::anyhow!("bench actor: {e:?}"))?;
        client
            .record(proto::RecordRequest {
                stream_id: format!("actor-{id}"),
                expected_version: None,
                events: vec![event],
            })
            .await
            .context("could not register the benchmark's actors")?;
    }
    Ok(())
}

/// A typed `CallHeld` between two registered bench actors (`bench-a` … `bench-d`).
pub fn call_held(first: &str, second: &str) -> anyhow::Result<proto::DiplomaticEvent> {
    let call = serde_json::json!({
        "occurred": {"day": "2025-02-15"},
        "sources": [{"source": "RUS", "language": "ru", "quotes": [{"text": "Состоялся телефонный разговор"}]}],
        "call_held": {"participants": [{"actor": first}, {"actor": second}], "initiator": first, "topics": ["bench"]}
    });
    crate::grpc::bridge::event_from_json(call, &uuid::Uuid::nil().to_string())
        .map_err(|e| anyhow::anyhow!("bench event: {e:?}"))
}

/// `events` typed `CallHeld` events through `Diplomacy.Record`, `batch` per record.
pub async fn grpc_records(
    url: &str,
    clients: usize,
    events: usize,
    batch: usize,
) -> anyhow::Result<Duration> {
    let template = call_held("bench-a", "bench-b")?;
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        let channel = Channel::from_shared(url.to_owned())?.connect().await?;
        connected.push(DiplomacyClient::new(channel));
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (client_index, mut client) in connected.into_iter().enumerate() {
        let count = share(events, clients, client_index);
        let (template, run) = (template.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for i in 0.. {
                if written >= count {
                    break;
                }
                let size = batch.min(count - written);
                let events = (0..size)
                    .map(|_| proto::DiplomaticEvent {
                        id: uuid::Uuid::now_v7().to_string(),
                        ..template.clone()
                    })
                    .collect();
                let request = proto::RecordRequest {
                    stream_id: format!("occurrence-bench-{run}-{client_index}-{}", i % 100),
                    expected_version: None,
                    events,
                };
                client.record(request).await?;
                written += size;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for task in tasks {
        task.await?.context("a benchmark record failed")?;
    }
    Ok(started.elapsed())
}

/// `events` single-row INSERT transactions from `clients` concurrent connections.
pub async fn raw_inserts(pool: &PgPool, clients: usize, events: usize) -> anyhow::Result<Timed> {
    // Stream names unique to this call, so versions restart at 1 without conflicts.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for client_index in 0..clients {
        let pool = pool.clone();
        let run = run.clone();
        let count = share(events, clients, client_index);
        tasks.push(tokio::spawn(async move {
            let mut connection = pool.acquire().await?;
            let mut calls = Vec::with_capacity(count);
            for i in 0..count {
                let sent = Instant::now();
                // The row the server would write: 100 streams per client, versions counting up.
                sqlx::query(
                    "insert into bench_raw_events (position, event_id, stream_id, stream_version, \
                         event_type, data, data_text, metadata, recorded_at, appended_by) \
                     values (nextval('bench_raw_position'), $1, $2, $3, 'BenchEvent', $4::jsonb, \
                         $4, '{}', now(), 'bench')",
                )
                .bind(uuid::Uuid::new_v4())
                .bind(format!("raw-{run}-{client_index}-{}", i % 100))
                .bind((i / 100 + 1) as i64)
                .bind(PAYLOAD)
                .execute(&mut *connection)
                .await?;
                calls.push(sent.elapsed());
            }
            Ok::<_, sqlx::Error>(calls)
        }));
    }
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await?.context("a raw insert failed")?);
    }
    Ok(Timed {
        elapsed: started.elapsed(),
        calls,
    })
}

/// `events` rows of the same shape by one `COPY ... FROM STDIN` (text format) on one
/// connection, generating the rows included in the time.
pub async fn copy_in(pool: &PgPool, events: usize) -> anyhow::Result<Duration> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let first: i64 = sqlx::query_scalar(
        "select setval('bench_raw_position', nextval('bench_raw_position') + $1)",
    )
    .bind(events as i64)
    .fetch_one(pool)
    .await?;
    let first = first - events as i64 + 1;
    let mut connection = pool.acquire().await?;
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw(
            "copy bench_raw_events (position, event_id, stream_id, stream_version, event_type, \
                 data, data_text, metadata, recorded_at, appended_by) from stdin",
        )
        .await
        .context("could not start COPY FROM STDIN")?;
    let recorded_at = chrono::Utc::now().to_rfc3339();
    let mut chunk = String::with_capacity(1 << 20);
    for i in 0..events {
        use std::fmt::Write as _;
        // PAYLOAD has no tab, newline or backslash, so it needs no escaping in text format.
        let _ = writeln!(
            chunk,
            "{}\t{}\tcopy-{run}-{}\t{}\tBenchEvent\t{PAYLOAD}\t{PAYLOAD}\t{{}}\t{recorded_at}\tbench",
            first + i as i64,
            uuid::Uuid::new_v4(),
            i % 100,
            i / 100 + 1,
        );
        if chunk.len() >= 1 << 20 {
            copy.send(chunk.as_bytes()).await?;
            chunk.clear();
        }
    }
    copy.send(chunk.as_bytes()).await?;
    let written = copy.finish().await.context("COPY FROM STDIN failed")?;
    anyhow::ensure!(
        written == events as u64,
        "COPY wrote {written} rows, not {events}"
    );
    Ok(started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn events_are_shared_out_evenly_and_completely() {
        let shares: Vec<usize> = (0..16).map(|c| share(1000, 16, c)).collect();
        assert_eq!(shares.iter().sum::<usize>(), 1000);
        assert!(shares.iter().all(|&s| s == 62 || s == 63));
        assert_eq!((0..64).map(|c| share(10, 64, c)).sum::<usize>(), 10);
    }
}
