//! `diplog bench`: one run, one PostgreSQL, side by side.
//!
//! 1. Appends through gRPC (1- and 10-event appends at several concurrencies) against the same
//!    rows written by single-row INSERT transactions at the same concurrency (what a plain
//!    store gets) and by COPY (PostgreSQL's ceiling), with per-append latency; plus typed
//!    diplomatic events recorded through `Diplomacy.Record` (rules checked before each append).
//! 2. Subscription delivery latency: append acknowledged → event received by a live subscriber.
//! 3. Rebuilding every projection over a large log (bulk-loaded copies of recorded events).
//! 4. Reading the whole log back through gRPC against `COPY ... TO STDOUT`.
//! 5. The bench process's peak RSS (server and clients run in this process).
//!
//! The raw and COPY sides write into a table created `like events including all` (same keys
//! and indexes, a plain sequence instead of the gapless head). Everything lives in a scratch
//! schema that is dropped at the end, so pointing `--database-url` at a real database leaves
//! it as it was. Without a URL the benchmark starts a throwaway embedded cluster with
//! PostgreSQL's default (durable) settings. The server runs in this process (`App`).

mod appends;
mod read;
mod rebuild;
pub mod report;
mod subscribe;

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::ServerConfig;
use crate::database::pool_options;
use crate::pgcluster::PgCluster;
pub use report::BenchReport;
use report::{AppendRun, Latency, Machine, PeakRss, ReadRun, peak_rss_mib};

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// PostgreSQL to measure against. Unset: a throwaway embedded cluster.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Events written per append run (one run per side, append size and concurrency).
    /// Default 5000, or 1000 with --quick.
    #[arg(long)]
    pub events: Option<usize>,
    /// Events per gRPC append (and per typed record), comma-separated; the raw side always
    /// writes one row per transaction.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    pub batch: Vec<usize>,
    /// Concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub clients: Vec<usize>,
    /// Events in the log the projections are rebuilt over. Default 200,000, or 50,000 with
    /// --quick. (1,000,000, the size, needs about 6 GiB of memory today: the
    /// relations model is held in memory, twice during a rebuild; see the README.)
    #[arg(long)]
    pub rebuild_events: Option<u64>,
    /// Appends the subscription latency is measured over (at 100 per second).
    /// Default 1000, or 200 with --quick.
    #[arg(long)]
    pub subscription_appends: Option<usize>,
    /// A version of about a minute: fewer events everywhere (the output says so).
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    fn events(&self) -> usize {
        self.events.unwrap_or(if self.quick { 1000 } else { 5000 })
    }

    fn rebuild_events(&self) -> u64 {
        self.rebuild_events
            .unwrap_or(if self.quick { 50_000 } else { 200_000 })
    }

    fn subscription_appends(&self) -> usize {
        self.subscription_appends
            .unwrap_or(if self.quick { 200 } else { 1000 })
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.events() > 0, "--events must be at least 1");
        anyhow::ensure!(
            !self.batch.is_empty()
                && self
                    .batch
                    .iter()
                    .all(|b| (1..=crate::domain::limits::MAX_EVENTS_PER_APPEND).contains(b)),
            "--batch must list numbers from 1 to {}",
            crate::domain::limits::MAX_EVENTS_PER_APPEND
        );
        anyhow::ensure!(
            !self.clients.is_empty() && self.clients.iter().all(|&c| c > 0),
            "--clients must list positive numbers"
        );
        anyhow::ensure!(
            self.subscription_appends() > 0,
            "--subscription-appends must be at least 1"
        );
        Ok(())
    }
}

/// The interval between the appends the subscription latency is measured over.
const SUBSCRIBED_APPEND_INTERVAL: Duration = Duration::from_millis(10);

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    args.check()?;
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
    let database = if cluster.is_some() { "embedded" } else { "url" };
    let report = measure(&args, base, database).await;
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
        report::print_table(&report);
    }
    Ok(())
}

/// Runs every measurement in a scratch schema of the database `base` points at, and drops
/// the schema afterwards. `database` says where that is (`embedded` or `url`) for the report.
pub async fn measure(
    args: &BenchArgs,
    base: PgConnectOptions,
    database: &'static str,
) -> anyhow::Result<BenchReport> {
    args.check()?;
    let schema = format!("diplog_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = base
        .connect()
        .await
        .context("could not connect to PostgreSQL")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
        .execute(&mut admin)
        .await
        .context("could not create the benchmark's scratch schema")?;
    let result = measure_in_schema(args, &base, &schema, database).await;
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
    database: &'static str,
) -> anyhow::Result<BenchReport> {
    let options = base.clone().options([("search_path", schema)]);
    let max_clients = args.clients.iter().copied().max().unwrap_or(1) as u32;
    let server_pool = pool_options(16).connect_with(options.clone()).await?;
    // Raw inserts get one connection per client: the concurrency the server is compared at.
    let raw_pool = pool_options(max_clients).connect_with(options).await?;
    let app = App::bind(ServerConfig::ephemeral(), server_pool.clone()).await?;
    let url = format!("http://{}", app.grpc_addr());
    let projections = app.projections();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let measured = measure_on_server(args, &url, &raw_pool, &projections, database).await;
    shutdown.cancel();
    server.await.context("the benchmark's server panicked")??;
    server_pool.close().await;
    raw_pool.close().await;
    measured
}

async fn measure_on_server(
    args: &BenchArgs,
    url: &str,
    raw_pool: &PgPool,
    projections: &crate::projections::store::ProjectionStore,
    database: &'static str,
) -> anyhow::Result<BenchReport> {
    let events = args.events();
    sqlx::raw_sql(
        "create table bench_raw_events (like events including all); \
         create sequence bench_raw_position;",
    )
    .execute(raw_pool)
    .await
    .context("could not create the raw comparison table")?;
    let postgres: String = sqlx::query_scalar("show server_version")
        .fetch_one(raw_pool)
        .await?;

    appends::register_bench_actors(url).await?;
    // COPY once (warmed up first): the ceiling every append run is compared to.
    appends::copy_in(raw_pool, events.min(1000)).await?;
    let copy = appends::copy_in(raw_pool, events).await?;
    let copy_rate = events as f64 / copy.as_secs_f64();
    let mut runs = Vec::new();
    for &batch in &args.batch {
        for &clients in &args.clients {
            // A short warm-up per side: connections, prepared statements, caches.
            appends::grpc_appends(url, clients, clients * 4, batch).await?;
            appends::raw_inserts(raw_pool, clients, clients * 4).await?;
            appends::grpc_records(url, clients, clients * 4, batch).await?;
            let grpc = appends::grpc_appends(url, clients, events, batch).await?;
            let raw = appends::raw_inserts(raw_pool, clients, events).await?;
            let record = appends::grpc_records(url, clients, events, batch).await?;
            let grpc_rate = events as f64 / grpc.elapsed.as_secs_f64();
            let raw_rate = events as f64 / raw.elapsed.as_secs_f64();
            let record_rate = events as f64 / record.as_secs_f64();
            runs.push(AppendRun {
                events_per_append: batch,
                clients,
                grpc_events_per_sec: grpc_rate,
                raw_insert_events_per_sec: raw_rate,
                ratio: grpc_rate / raw_rate,
                copy_ratio: grpc_rate / copy_rate,
                latency: Latency::of(grpc.calls),
                raw_latency: Latency::of(raw.calls),
                record_events_per_sec: record_rate,
                record_ratio: record_rate / raw_rate,
            });
        }
    }
    let after_appends = peak_rss_mib();

    let subscription =
        subscribe::measure(url, args.subscription_appends(), SUBSCRIBED_APPEND_INTERVAL).await?;
    let rebuild = rebuild::measure(url, raw_pool, projections, args.rebuild_events()).await?;
    let after_rebuild = peak_rss_mib();

    let head = crate::store::head(raw_pool).await?;
    let (grpc_read, grpc_time) = read::grpc_read_all(url).await?;
    let (copied, copy_time) = read::copy_out(raw_pool, head).await?;
    anyhow::ensure!(
        grpc_read == head && copied == head,
        "read back {grpc_read} events through gRPC and {copied} by COPY, not the head {head}"
    );
    let grpc_read_rate = head as f64 / grpc_time.as_secs_f64();
    let copy_out_rate = head as f64 / copy_time.as_secs_f64();

    Ok(BenchReport {
        machine: Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            postgres,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            database,
        },
        quick: args.quick,
        events_per_run: events,
        appends: runs,
        copy_in_events_per_sec: copy_rate,
        read: ReadRun {
            events: head,
            grpc_events_per_sec: grpc_read_rate,
            copy_out_events_per_sec: copy_out_rate,
            ratio: grpc_read_rate / copy_out_rate,
        },
        rebuild,
        subscription,
        peak_rss: PeakRss {
            after_appends_mib: after_appends,
            after_rebuild_mib: after_rebuild,
            end_mib: peak_rss_mib(),
        },
    })
}
