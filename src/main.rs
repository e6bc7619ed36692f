//! The `diplog` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use diplog::app::App;
use diplog::cli::args::{Cli, Command};
use diplog::config::{ClientAuth, ServeArgs};
use diplog::database::Database;
use diplog::telemetry;

/// mimalloc rather than glibc's malloc: the server allocates a row's strings on the task that
/// reads PostgreSQL and frees them on the one that encodes the response, and the projection
/// runners build and drop many small JSON trees per event; glibc's malloc spent about a quarter
/// of a read's server CPU and half of a rebuild's on that (`_int_malloc`, `malloc_consolidate`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The longest `diplog serve` waits, when it stops, for its last spans to reach the collector.
const TRACE_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        Command::Serve(_) | Command::Witness(_) => "info",
        _ => "warn",
    };
    let otlp = match &cli.command {
        Command::Serve(args) => args.otlp.clone(),
        _ => telemetry::OtlpArgs::default(),
    };
    let traces = match telemetry::init(cli.log_format, default_filter, &otlp) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Append(args) => Ok(diplog::cli::append(args).await),
        Command::Read(args) => Ok(diplog::cli::read(args).await),
        Command::Subscribe(args) => Ok(diplog::cli::subscribe(args).await),
        Command::Verify(args) => Ok(diplog::cli::audit::verify(args).await),
        Command::TreeHead(args) => Ok(diplog::cli::audit::tree_head(args).await),
        Command::Checkpoint(args) => Ok(diplog::cli::checkpoint::checkpoint(args).await),
        Command::Proof(args) => Ok(diplog::cli::audit::proof(args).await),
        Command::Export(args) => Ok(diplog::cli::audit::export(args).await),
        Command::Restore(args) => Ok(diplog::cli::audit::restore(args).await),
        Command::Import(args) => Ok(diplog::cli::import(args).await),
        Command::Bench(args) => diplog::bench::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Channels(args) => Ok(diplog::cli::channels(args).await),
        Command::Summits(args) => Ok(diplog::cli::summits(args).await),
        Command::Commitments(args) => Ok(diplog::cli::commitments(args).await),
        Command::Timeline(args) => Ok(diplog::cli::timeline(args).await),
        Command::Relations(args) => Ok(diplog::cli::relations(args).await),
        Command::Divergence(args) => Ok(diplog::cli::divergence(args).await),
        Command::Search(args) => Ok(diplog::cli::search(args).await),
        Command::Projections(args) => Ok(diplog::cli::projections(args).await),
        Command::Watch(args) => Ok(diplog::cli::watch(args).await),
        Command::DevCerts(args) => Ok(diplog::cli::dev_certs(args)),
        Command::Health(args) => Ok(diplog::cli::health::health(args).await),
        Command::Witness(args) => Ok(diplog::cli::witness::witness(args).await),
        Command::Token(args) => Ok(diplog::cli::token::run(args).await),
    };
    // The spans of the last requests are still in the exporter's buffer.
    if let Some(traces) = traces {
        traces.shutdown(TRACE_FLUSH).await;
    }
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    // Refuse plain text off loopback before starting anything (an embedded cluster included).
    diplog::app::check_transport(&args.server)?;
    if args.demo
        && args.server.tls.tls_client_ca.is_some()
        && args.server.tls.tls_client_auth != Some(ClientAuth::Optional)
    {
        anyhow::bail!(
            "--demo imports through the server's own gRPC port, which would require a client \
             certificate: add --tls-client-auth optional, or import the scenario with `diplog import`"
        );
    }
    resolve_signing_key(&mut args)?;
    let mut database = Database::open_for_server(&args.database).await?;
    args.server.auth.embedded_database = args.database.database_url.is_none();
    let app = App::bind(args.server, database.pool().clone()).await;
    // The demo import calls the API like any client: with a token of the server's own.
    let app = app.and_then(|mut app| {
        let token = match args.demo {
            true => Some(app.internal_token("demo", vec![diplog::auth::Role::Writer])?),
            false => None,
        };
        Ok((app, token))
    });
    let result = match app {
        Ok((app, demo_token)) => {
            database.supervise(app.health());
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone())?);
            if let Some(token) = demo_token {
                let endpoint = app.own_endpoint()?;
                tokio::spawn(async move {
                    if let Err(error) = diplog::cli::seed_demo(endpoint, token).await {
                        tracing::error!(error = %format!("{error:#}"), "demo: could not import the founding scenario");
                    }
                });
            }
            app.run(shutdown).await
        }
        Err(error) => Err(error),
    };
    // Stop the embedded cluster whether or not serving succeeded.
    let closed = database.close().await;
    result.and(closed)
}

/// The signing key lives with the data it signs: under `--data-dir` unless given. A key left
/// in the working directory by an older diplog is not silently replaced by a new one.
fn resolve_signing_key(args: &mut ServeArgs) -> anyhow::Result<()> {
    const LEGACY: &str = "diplog-signing-key.pem";
    if args.server.signing_key.is_some() {
        return Ok(());
    }
    let data_dir = &args.database.data_dir;
    let path = data_dir.join("signing-key.pem");
    if !path.exists() && std::path::Path::new(LEGACY).exists() {
        anyhow::bail!(
            "./{LEGACY} is a signing key from an older diplog, which kept it in the working \
             directory; the key now lives under the data directory: move it to {} (or name it \
             with --signing-key {LEGACY})",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("could not create {}", data_dir.display()))?;
    args.server.signing_key = Some(path);
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM. The handlers are installed before this returns
/// (not when the task first runs), so a SIGTERM right after "serving" is a clean stop too.
fn cancel_on_signal(
    shutdown: CancellationToken,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("could not watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("could not watch SIGINT")?;
    Ok(async move {
        let signal = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        // Cancel first: nothing after this point may keep the server from stopping.
        shutdown.cancel();
        tracing::info!(signal, "shutting down");
    })
}
