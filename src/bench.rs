//! `diplog bench`: append throughput through the gRPC server, side by side with raw
//! single-row INSERT transactions on the same PostgreSQL in the same run; and the same for
//! typed diplomatic events recorded through `Diplomacy.Record` (rules checked against the log
//! before each append), so the cost of the checks shows.
//!
//! Both sides write the same rows into tables of the same shape (the raw table is created
//! `like events including all`, so it carries the same keys and indexes, but a plain sequence
//! instead of the gapless head). Everything lives in a scratch schema that is dropped at the
//! end, so pointing `--database-url` at a real database leaves it as it was. Without a URL the
//! benchmark starts a throwaway embedded cluster with PostgreSQL's default (durable) settings.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::app::App;
use crate::config::ServerConfig;
use crate::database::pool_options;
use crate::pgcluster::PgCluster;
use crate::proto::{self, diplomacy_client::DiplomacyClient, event_log_client::EventLogClient};

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// PostgreSQL to measure against. Unset: a throwaway embedded cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Events written per run (one run per side and concurrency).
    #[arg(long, default_value_t = 5000)]
    pub events: usize,
    /// Events per gRPC append (the raw side always writes one row per transaction).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub events_per_run: usize,
    pub events_per_append: usize,
    pub cores: usize,
    pub postgres: String,
    pub runs: Vec<BenchRun>,
}

#[derive(Debug, Serialize)]
pub struct BenchRun {
    pub clients: usize,
    pub grpc_events_per_sec: f64,
    pub raw_insert_events_per_sec: f64,
    /// gRPC over raw: above 1 means the server beats one INSERT transaction per event.
    pub ratio: f64,
    /// Typed `CallHeld` events through `Diplomacy.Record`, `batch` per record.
    pub record_events_per_sec: f64,
    /// Typed records over raw inserts.
    pub record_ratio: f64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    anyhow::ensure!(
        (1..=crate::domain::limits::MAX_EVENTS_PER_APPEND).contains(&args.batch),
        "--batch must be from 1 to {}",
        crate::domain::limits::MAX_EVENTS_PER_APPEND
    );
    anyhow::ensure!(
        !args.clients.is_empty() && args.clients.iter().all(|&c| c > 0),
        "--clients must list positive numbers"
    );
    let (base, cluster) = match &args.database_url {
        Some(url) => (url.parse().context("could not parse --database-url")?, None),
        None => {
            let cluster =
                PgCluster::start_throwaway(vec![("max_connections".into(), "200".into())])
                    .await
                    .context("could not start a PostgreSQL cluster for the benchmark")?;
            (cluster.connect_options("diplog"), Some(cluster))
        }
    };
    let report = measure(&args, base).await;
    if let Some(cluster) = cluster {
        cluster
            .stop()
            .await
            .context("could not stop the benchmark's PostgreSQL")?;
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn measure(args: &BenchArgs, base: PgConnectOptions) -> anyhow::Result<BenchReport> {
    let schema = format!("diplog_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = base
        .connect()
        .await
        .context("could not connect to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
        .execute(&mut admin)
        .await
        .context("could not create the benchmark's scratch schema")?;
    let result = measure_in_schema(args, &base, &schema).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("drop schema {schema} cascade")))
        .execute(&mut admin)
        .await
        .context("could not drop the benchmark's scratch schema")?;
    result
}

async fn measure_in_schema(
    args: &BenchArgs,
    base: &PgConnectOptions,
    schema: &str,
) -> anyhow::Result<BenchReport> {
    let options = base.clone().options([("search_path", schema)]);
    let max_clients = args.clients.iter().copied().max().unwrap_or(1) as u32;
    let server_pool = pool_options(16).connect_with(options.clone()).await?;
    // Raw inserts get one connection per client: the concurrency the server is compared at.
    let raw_pool = pool_options(max_clients).connect_with(options).await?;
    let app = App::bind(ServerConfig::ephemeral(), server_pool.clone()).await?;
    let url = format!("http://{}", app.grpc_addr());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    sqlx::raw_sql(
        "create table bench_raw_events (like events including all); \
         create sequence bench_raw_position;",
    )
    .execute(&raw_pool)
    .await
    .context("could not create the raw comparison table")?;
    let postgres: String = sqlx::query_scalar("show server_version")
        .fetch_one(&raw_pool)
        .await?;

    register_bench_actors(&url).await?;
    let mut runs = Vec::new();
    for &clients in &args.clients {
        // A short warm-up per side: connections, prepared statements, caches.
        grpc_appends(&url, clients, clients * 4, args.batch).await?;
        raw_inserts(&raw_pool, clients, clients * 4).await?;
        grpc_records(&url, clients, clients * 4, args.batch).await?;
        let grpc = grpc_appends(&url, clients, args.events, args.batch).await?;
        let raw = raw_inserts(&raw_pool, clients, args.events).await?;
        let record = grpc_records(&url, clients, args.events, args.batch).await?;
        let grpc_rate = args.events as f64 / grpc.as_secs_f64();
        let raw_rate = args.events as f64 / raw.as_secs_f64();
        let record_rate = args.events as f64 / record.as_secs_f64();
        runs.push(BenchRun {
            clients,
            grpc_events_per_sec: grpc_rate,
            raw_insert_events_per_sec: raw_rate,
            ratio: grpc_rate / raw_rate,
            record_events_per_sec: record_rate,
            record_ratio: record_rate / raw_rate,
        });
    }

    shutdown.cancel();
    server.await.context("the benchmark's server panicked")??;
    server_pool.close().await;
    raw_pool.close().await;
    Ok(BenchReport {
        events_per_run: args.events,
        events_per_append: args.batch,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        postgres,
        runs,
    })
}

/// The payload every benchmark event carries, on both sides.
const PAYLOAD: &str = r#"{"participants": ["RUS", "USA"], "topic": "bench"}"#;

/// Splits `events` over `clients` as evenly as possible.
fn share(events: usize, clients: usize, client: usize) -> usize {
    events / clients + usize::from(client < events % clients)
}

/// `events` events through gRPC, `batch` per append, from `clients` concurrent connections.
async fn grpc_appends(
    url: &str,
    clients: usize,
    events: usize,
    batch: usize,
) -> anyhow::Result<Duration> {
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        let channel = Channel::from_shared(url.to_owned())?.connect().await?;
        connected.push(EventLogClient::new(channel));
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (client_index, mut client) in connected.into_iter().enumerate() {
        let count = share(events, clients, client_index);
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            for i in 0.. {
                if written >= count {
                    break;
                }
                let size = batch.min(count - written);
                let request = proto::AppendRequest {
                    stream_id: format!("bench-{client_index}-{}", i % 100),
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
                client.append(request).await?;
                written += size;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for task in tasks {
        task.await?.context("a benchmark append failed")?;
    }
    Ok(started.elapsed())
}

/// The actors the typed benchmark events name.
async fn register_bench_actors(url: &str) -> anyhow::Result<()> {
    let mut client = DiplomacyClient::new(Channel::from_shared(url.to_owned())?.connect().await?);
    let actors = [
        ("RUS", "STATE", "Russia"),
        ("USA", "STATE", "United States"),
        ("bench-a", "PERSON", "A"),
        ("bench-b", "PERSON", "B"),
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

/// `events` typed `CallHeld` events through `Diplomacy.Record`, `batch` per record.
async fn grpc_records(
    url: &str,
    clients: usize,
    events: usize,
    batch: usize,
) -> anyhow::Result<Duration> {
    let call = serde_json::json!({
        "occurred": {"day": "2025-02-15"},
        "sources": [{"source": "RUS", "language": "ru", "quotes": [{"text": "Состоялся телефонный разговор"}]}],
        "call_held": {"participants": [{"actor": "bench-a"}, {"actor": "bench-b"}], "initiator": "bench-a", "topics": ["bench"]}
    });
    let template = crate::grpc::bridge::event_from_json(call, &uuid::Uuid::nil().to_string())
        .map_err(|e| anyhow::anyhow!("bench event: {e:?}"))?;
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
async fn raw_inserts(pool: &PgPool, clients: usize, events: usize) -> anyhow::Result<Duration> {
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
            for i in 0..count {
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
            }
            Ok::<_, sqlx::Error>(())
        }));
    }
    for task in tasks {
        task.await?.context("a raw insert failed")?;
    }
    Ok(started.elapsed())
}

fn print_table(report: &BenchReport) {
    println!(
        "diplog bench: {} events per run, {} per gRPC append (raw: one INSERT transaction per \
         event), PostgreSQL {}, {} cores",
        report.events_per_run, report.events_per_append, report.postgres, report.cores
    );
    println!(
        "{:>8}  {:>16}  {:>20}  {:>12}  {:>18}  {:>14}",
        "clients",
        "gRPC events/s",
        "raw INSERT events/s",
        "gRPC / raw",
        "Record events/s",
        "Record / raw"
    );
    for run in &report.runs {
        println!(
            "{:>8}  {:>16.0}  {:>20.0}  {:>11.2}x  {:>18.0}  {:>13.2}x",
            run.clients,
            run.grpc_events_per_sec,
            run.raw_insert_events_per_sec,
            run.ratio,
            run.record_events_per_sec,
            run.record_ratio
        );
    }
    println!(
        "(Record: typed CallHeld events, rules checked against the log before each append; \
         ~600-byte payload against the others' ~50 bytes)"
    );
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
