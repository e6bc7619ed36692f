//! `diplog bench`: one run, one PostgreSQL, side by side.
//!
//! 1. Appends through gRPC (1- and 10-event appends at several concurrencies) against the same
//!    rows written by single-row INSERT transactions at the same concurrency (what a plain
//!    store gets) and by COPY (PostgreSQL's ceiling), with per-append latency; plus typed
//!    diplomatic events recorded through `Diplomacy.Record` (rules checked before each append).
//! 2. Subscription delivery latency: append acknowledged → event received by each of 1 and
//!    of many live subscribers on one server.
//! 3. Rebuilding every projection over a large log (bulk-loaded copies of recorded events).
//! 4. Reading the whole log back through gRPC, one event per message (`ReadAll`) and in
//!    batches (`ReadAllBatches`), against `COPY ... TO STDOUT`.
//! 5. As-of answers of each projection at 90% of that log's head: time and peak RSS.
//! 6. Importing generated GDELT 2.0 Events and Mentions files (the real formats) through the
//!    streamed importers, against COPY of as many rows, with the peak RSS during it.
//! 7. The bench process's peak RSS (server and clients run in this process).
//!
//! The raw and COPY sides write into a table created `like events including all` (same keys
//! and indexes, a plain sequence instead of the gapless head). Everything lives in a scratch
//! schema that is dropped at the end, so pointing `--database-url` at a real database leaves
//! it as it was. Without a URL the benchmark starts a throwaway embedded cluster with
//! PostgreSQL's default (durable) settings. The server runs in this process (`App`).

mod appends;
mod asof;
pub mod import;
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
use crate::database::{pool_options, session_options};
use crate::pgcluster::PgCluster;
use crate::projections::engine::rows::ProjectionStore;
pub use report::BenchReport;
use report::{AppendRun, Latency, Machine, PeakRss, peak_rss_mib};

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
    /// diplog servers on the one database, comma-separated: the gRPC appends are measured
    /// with the clients spread over this many servers (scale-out; each server has its own
    /// writer, and all serialize on the log head). Typed records run against one server.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub servers: Vec<usize>,
    /// Sections to leave out, comma-separated (the appends always run; without the rebuild
    /// the read-back reads only what the appends wrote).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<Section>,
    /// Events in the log the projections are rebuilt over (the log is filled up to it by a
    /// bulk load). Default 1,000,000, or 50,000 with --quick.
    #[arg(long)]
    pub rebuild_events: Option<u64>,
    /// Appends the subscription latency is measured over (at 100 per second).
    /// Default 1000, or 200 with --quick.
    #[arg(long)]
    pub subscription_appends: Option<usize>,
    /// Live subscribers the subscription latency is measured with, comma-separated (one run
    /// each, on one server). Default 1,500, or 1,50 with --quick.
    #[arg(long, value_delimiter = ',')]
    pub subscribers: Option<Vec<usize>>,
    /// The as-of section cancels an ask that takes the bench process's RSS past this many
    /// MiB, and reports it as stopped.
    #[arg(long, default_value_t = 8192)]
    pub as_of_max_rss_mib: u32,
    /// GDELT rows the import section generates and imports (half events, half mentions).
    /// Default 200,000, or 2,000 with --quick.
    #[arg(long)]
    pub import_rows: Option<usize>,
    /// Rows per chunk of the import section (as `diplog import --chunk-rows`).
    #[arg(long, default_value_t = crate::import::tsv::CHUNK_ROWS)]
    pub import_chunk_rows: usize,
    /// A version of about a minute: fewer events everywhere (the output says so).
    #[arg(long)]
    pub quick: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `--skip` can leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Typed records through `Diplomacy.Record`.
    Records,
    Subscription,
    Rebuild,
    Read,
    /// As-of answers deep in the log.
    Asof,
    /// The GDELT import.
    Import,
}

impl BenchArgs {
    fn runs(&self, section: Section) -> bool {
        !self.skip.contains(&section)
    }

    fn events(&self) -> usize {
        self.events.unwrap_or(if self.quick { 1000 } else { 5000 })
    }

    fn rebuild_events(&self) -> u64 {
        self.rebuild_events
            .unwrap_or(if self.quick { 50_000 } else { 1_000_000 })
    }

    fn import_rows(&self) -> usize {
        self.import_rows
            .unwrap_or(if self.quick { 2000 } else { 200_000 })
    }

    fn subscription_appends(&self) -> usize {
        self.subscription_appends
            .unwrap_or(if self.quick { 200 } else { 1000 })
    }

    fn subscribers(&self) -> Vec<usize> {
        self.subscribers.clone().unwrap_or_else(|| {
            if self.quick {
                vec![1, 50]
            } else {
                vec![1, 500]
            }
        })
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
            !self.servers.is_empty() && self.servers.iter().all(|&s| (1..=16).contains(&s)),
            "--servers must list numbers from 1 to 16"
        );
        anyhow::ensure!(
            self.import_rows() >= 2 && (1..=100_000).contains(&self.import_chunk_rows),
            "--import-rows must be at least 2 and --import-chunk-rows from 1 to 100000"
        );
        anyhow::ensure!(
            self.subscription_appends() > 0,
            "--subscription-appends must be at least 1"
        );
        let subscribers = self.subscribers();
        anyhow::ensure!(
            !subscribers.is_empty()
                && subscribers
                    .iter()
                    .all(|&s| (1..=MAX_SUBSCRIBERS).contains(&s)),
            "--subscribers must list numbers from 1 to {MAX_SUBSCRIBERS}"
        );
        Ok(())
    }
}

/// The most live subscribers one subscription run may have: the bench's servers allow this
/// many streams per client (all of them come from one address).
const MAX_SUBSCRIBERS: usize = 5000;

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

/// A diplog server running in this process on its own pool, as a separate `diplog serve`
/// would.
struct RunningServer {
    url: String,
    pool: PgPool,
    projections: ProjectionStore,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    async fn start(options: &PgConnectOptions) -> anyhow::Result<Self> {
        let pool = pool_options(16)
            .connect_with(session_options(options.clone()))
            .await?;
        // Loopback and free ports as in tests, but the projection timings a served server has
        // (the tests' 50 ms polls would cost the database more than a real server does).
        let mut config = ServerConfig::ephemeral();
        config.projections.poll_ms = 1000;
        config.projections.takeover_ms = 1000;
        // Every subscriber of the subscription runs comes from this process's one address,
        // which the default limit per client (64) would refuse.
        config.limits.max_streams_per_client = MAX_SUBSCRIBERS as u32 + 64;
        // An as-of answer deep in a large log is measured, not cut off at the tests' 30 s.
        config.request_timeout_secs = 600;
        let app = App::bind(config, pool.clone()).await?;
        let url = format!("http://{}", app.grpc_addr());
        let projections = app.projections();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Ok(Self {
            url,
            pool,
            projections,
            shutdown,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let served = self.task.await.context("a benchmark server panicked");
        self.pool.close().await;
        served?
    }
}

async fn measure_in_schema(
    args: &BenchArgs,
    base: &PgConnectOptions,
    schema: &str,
    database: &'static str,
) -> anyhow::Result<BenchReport> {
    let options = base.clone().options([("search_path", schema)]);
    let max_clients = args.clients.iter().copied().max().unwrap_or(1) as u32;
    // Raw inserts get one connection per client: the concurrency the server is compared at.
    let raw_pool = pool_options(max_clients)
        .connect_with(options.clone())
        .await?;
    let server = RunningServer::start(&options).await?;
    let measured = measure_on_server(args, &options, &server, &raw_pool, database).await;
    let stopped = server.stop().await;
    raw_pool.close().await;
    let measured = measured?;
    stopped?;
    Ok(measured)
}

async fn measure_on_server(
    args: &BenchArgs,
    options: &PgConnectOptions,
    server: &RunningServer,
    raw_pool: &PgPool,
    database: &'static str,
) -> anyhow::Result<BenchReport> {
    let url = server.url.as_str();
    let projections = &server.projections;
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
    for &servers in &args.servers {
        // The other servers run only for their own runs, so they cost nothing elsewhere.
        let mut others = Vec::new();
        for _ in 1..servers {
            others.push(RunningServer::start(options).await?);
        }
        let urls: Vec<String> = std::iter::once(url.to_owned())
            .chain(others.iter().map(|other| other.url.clone()))
            .collect();
        let with_records = (servers == 1).then_some(projections);
        let measured =
            measure_appends(args, &urls, raw_pool, copy_rate, with_records, &mut runs).await;
        for other in others {
            other.stop().await?;
        }
        measured?;
    }
    let after_appends = peak_rss_mib();

    let subscription = if args.runs(Section::Subscription) {
        let mut runs = Vec::new();
        for subscribers in args.subscribers() {
            runs.push(
                subscribe::measure(
                    url,
                    subscribers,
                    args.subscription_appends(),
                    SUBSCRIBED_APPEND_INTERVAL,
                )
                .await?,
            );
        }
        Some(runs)
    } else {
        None
    };
    let rebuild = if args.runs(Section::Rebuild) {
        Some(rebuild::measure(url, raw_pool, projections, args.rebuild_events()).await?)
    } else {
        None
    };
    let after_rebuild = peak_rss_mib();

    let read = if args.runs(Section::Read) {
        Some(read::measure(url, raw_pool).await?)
    } else {
        None
    };

    let end = peak_rss_mib();
    // After the peaks above are read: it resets VmHWM for each answer.
    let as_of = if args.runs(Section::Asof) {
        Some(asof::measure(url, raw_pool, f64::from(args.as_of_max_rss_mib)).await?)
    } else {
        None
    };
    let import = if args.runs(Section::Import) {
        Some(import::measure(url, raw_pool, args.import_rows(), args.import_chunk_rows).await?)
    } else {
        None
    };

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
        read,
        rebuild,
        subscription,
        as_of,
        import,
        peak_rss: PeakRss {
            after_appends_mib: after_appends,
            after_rebuild_mib: after_rebuild,
            end_mib: end,
        },
    })
}

/// Waits until every projection has reached the log head as it is now; answers how long
/// that took.
async fn projections_at_head(
    projections: &ProjectionStore,
    pool: &PgPool,
) -> anyhow::Result<Duration> {
    let head = crate::store::head(pool).await?;
    rebuild::wait_until(projections, PROJECTIONS_CATCH_UP_LIMIT, |status| {
        status.position >= head
    })
    .await
    .context("the projections did not catch up with the typed records")
}

/// How long the projections may take to catch up with a run of typed records.
const PROJECTIONS_CATCH_UP_LIMIT: Duration = Duration::from_secs(300);

/// Every append run (each append size at each concurrency) with the clients spread over
/// `urls`, one server each; the raw side is measured beside each, and the typed records too
/// when `with_records` (the projections of `urls[0]`'s server then catch up before the next
/// run, so their work on the records does not slow it).
async fn measure_appends(
    args: &BenchArgs,
    urls: &[String],
    raw_pool: &PgPool,
    copy_rate: f64,
    with_records: Option<&ProjectionStore>,
    runs: &mut Vec<AppendRun>,
) -> anyhow::Result<()> {
    let events = args.events();
    let with_records = with_records.filter(|_| args.runs(Section::Records));
    for &batch in &args.batch {
        for &clients in &args.clients {
            // A short warm-up per side: connections, prepared statements, caches.
            appends::grpc_appends(urls, clients, clients * 4, batch).await?;
            appends::raw_inserts(raw_pool, clients, clients * 4).await?;
            if let Some(projections) = with_records {
                appends::grpc_records(&urls[0], clients, clients * 4, batch).await?;
                projections_at_head(projections, raw_pool).await?;
            }
            let grpc = appends::grpc_appends(urls, clients, events, batch).await?;
            let raw = appends::raw_inserts(raw_pool, clients, events).await?;
            let (record_rate, record_lag) = match with_records {
                Some(projections) => {
                    let record = appends::grpc_records(&urls[0], clients, events, batch).await?;
                    let lag = projections_at_head(projections, raw_pool).await?;
                    (
                        Some(events as f64 / record.as_secs_f64()),
                        Some(lag.as_secs_f64()),
                    )
                }
                None => (None, None),
            };
            let grpc_rate = events as f64 / grpc.elapsed.as_secs_f64();
            let raw_rate = events as f64 / raw.elapsed.as_secs_f64();
            runs.push(AppendRun {
                servers: urls.len(),
                events_per_append: batch,
                clients,
                grpc_events_per_sec: grpc_rate,
                raw_insert_events_per_sec: raw_rate,
                ratio: grpc_rate / raw_rate,
                copy_ratio: grpc_rate / copy_rate,
                latency: Latency::of(grpc.calls),
                raw_latency: Latency::of(raw.calls),
                record_events_per_sec: record_rate,
                record_projections_lag_secs: record_lag,
                record_ratio: record_rate.map(|rate| rate / raw_rate),
                record_vs_append: record_rate.map(|rate| rate / grpc_rate),
            });
        }
    }
    Ok(())
}
