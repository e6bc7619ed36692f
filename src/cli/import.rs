//! `diplog import`: records a scenario, a PLOVER file, or a GDELT or POLECAT export (streamed)
//! through the gRPC API, and the `serve --demo` seeding that imports the founding scenario.

use std::process::ExitCode;
use std::time::Duration;

use tonic::transport::Endpoint;

use super::client_args::ClientArgs;
use super::{CliError, finish};
use crate::auth::client::Bearer;
use crate::import::{self, ImportError, OnInvalid, Report, plover, scenario};
use crate::proto::event_log_client::EventLogClient;
use clap::Args;
use std::path::PathBuf;

pub async fn import(args: ImportArgs) -> ExitCode {
    finish(import_file(args).await)
}

async fn import_file(args: ImportArgs) -> Result<(), CliError> {
    if args.format.is_streamed() {
        // Read row by row, never whole: exports run to gigabytes.
        return import_streamed(args).await;
    }
    let path = args.file.display().to_string();
    let text = tokio::fs::read_to_string(&args.file)
        .await
        .map_err(|e| CliError::Input(format!("could not read {path}: {e}")))?;
    let (items, on_invalid, mut reported, summary_of_file, event_records) = match args.format {
        ImportFormat::Scenario => {
            let parsed = scenario::parse(&text).map_err(|problems| refused(&path, &problems))?;
            let summary = format!("scenario {}", parsed.name);
            (
                parsed.items,
                OnInvalid::RefuseAll,
                Vec::new(),
                summary,
                None,
            )
        }
        ImportFormat::GdeltEvents | ImportFormat::GdeltMentions | ImportFormat::Polecat => {
            return import_streamed(args.clone()).await;
        }
        ImportFormat::Plover => {
            let parsed =
                plover::parse(&text).map_err(|e| CliError::Input(format!("{path}: {e}")))?;
            let summary = format!(
                "{} PLOVER event records ({} documentation record(s) not counted)",
                parsed.event_records, parsed.documentation_records
            );
            let records = Some(parsed.event_records);
            (
                parsed.items,
                OnInvalid::Report,
                parsed.reported,
                summary,
                records,
            )
        }
    };
    let channel = super::channel(&args.client).await?;
    let report = import::import(channel, items, on_invalid)
        .await
        .map_err(|error| match error {
            ImportError::Refused(problems) => refused(&path, &problems),
            ImportError::Call(message) => CliError::Call(message),
        })?;
    reported.extend(report.reported.iter().cloned());
    for problem in &reported {
        eprintln!("reported: {problem}");
    }
    println!("{path}: {summary_of_file}");
    if let Some(records) = event_records {
        // A record may have several problems, and actor registrations are not records.
        let reported_records: std::collections::BTreeSet<String> = reported
            .iter()
            .map(|problem| problem.origin.to_string())
            .filter(|origin| !origin.starts_with("record actor "))
            .collect();
        let count = reported_records.len();
        println!(
            "{} record(s) imported, {count} reported",
            records.saturating_sub(count)
        );
    }
    print_report(&report);
    Ok(())
}

/// A tab-separated export, streamed in chunks: rows that cannot be imported are reported on
/// stderr as they come, a progress line is kept on a terminal, and the summary ends it.
async fn import_streamed(args: ImportArgs) -> Result<(), CliError> {
    use crate::import::streamed::{StreamedImportError, Tally};
    let path = args.file.display().to_string();
    let channel = super::channel(&args.client).await?;
    let mut tally = Tally::default();
    let chunk_rows = args.chunk_rows as usize;
    let result = match args.format {
        ImportFormat::GdeltEvents => {
            import::gdelt::import_events(channel, args.file.clone(), chunk_rows, &mut tally).await
        }
        ImportFormat::GdeltMentions => {
            import::gdelt::import_mentions(channel, args.file.clone(), chunk_rows, &mut tally).await
        }
        _ => import::polecat::import(channel, args.file.clone(), chunk_rows, &mut tally).await,
    };
    // What was recorded before a failure stays recorded: say how far the import got.
    println!("{path}: {}", tally.summary());
    result.map_err(|error| match error {
        StreamedImportError::Read(error) => CliError::Input(error.to_string()),
        StreamedImportError::Import(ImportError::Call(message)) => CliError::Call(message),
        StreamedImportError::Import(ImportError::Refused(problems)) => refused(&path, &problems),
    })
}

fn print_report(report: &Report) {
    println!(
        "{} event(s) written, {} already in the log",
        report.written, report.already_present
    );
    match report.records {
        0 => {}
        1 => println!("written atomically, in one record"),
        records => println!(
            "written in {records} atomic records, each all or nothing: the file is over one \
             request's limits (1000 events, 8 MiB of events)"
        ),
    }
}

fn refused(path: &str, problems: &[import::Problem]) -> CliError {
    let lines: Vec<String> = problems.iter().map(|p| format!("  {path}: {p}")).collect();
    CliError::Input(format!(
        "{path} was refused, nothing was written:\n{}",
        lines.join("\n")
    ))
}

/// Imports the founding scenario through the server at `endpoint` if its log is empty, with
/// `token` (the server's own, see `App::internal_token`). Waits for the server to accept
/// connections (it is started alongside).
pub async fn seed_demo(
    endpoint: Endpoint,
    token: crate::auth::tokens::BearerToken,
) -> anyhow::Result<()> {
    let address = endpoint.uri().clone();
    let mut channel = None;
    for _ in 0..50 {
        match endpoint.connect().await {
            Ok(connected) => {
                channel = Some(connected);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let channel =
        channel.ok_or_else(|| anyhow::anyhow!("the server at {address} did not answer"))?;
    let channel = Bearer::new(Some(&token))?.channel(channel);
    let head = EventLogClient::new(channel.clone())
        .get_head(())
        .await?
        .into_inner()
        .position;
    if head > 0 {
        tracing::info!(
            head,
            "demo: the log is not empty, so the founding scenario was not imported"
        );
        return Ok(());
    }
    let parsed = scenario::parse(scenario::FOUNDING_SCENARIO).map_err(|problems| {
        anyhow::anyhow!("the built-in scenario does not parse: {problems:?}")
    })?;
    let report = import::import(channel, parsed.items, OnInvalid::RefuseAll).await?;
    tracing::info!(
        written = report.written,
        scenario = parsed.name,
        "demo: imported the founding scenario"
    );
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// What the file holds.
    #[arg(
        long,
        env = "DIPLOG_IMPORT_FORMAT",
        value_enum,
        default_value = "scenario"
    )]
    pub format: ImportFormat,
    /// Rows of a streamed export (GDELT, POLECAT) checked and recorded at a time: what bounds
    /// the import's memory.
    #[arg(
        long,
        env = "DIPLOG_IMPORT_CHUNK_ROWS",
        default_value_t = crate::import::tsv::CHUNK_ROWS as u32,
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub chunk_rows: u32,
    /// The file to import.
    pub file: PathBuf,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A scenario file (YAML; see scenarios/README.md). Refused as a whole if any event is
    /// wrong.
    Scenario,
    /// PLOVER event records (a JSON array). Records that cannot be imported are reported by
    /// id with the reason; the rest are imported.
    Plover,
    /// A GDELT 2.0 Events export (61 tab-separated columns; plain or zipped), streamed. Rows
    /// that cannot be imported are reported by line.
    GdeltEvents,
    /// A GDELT 2.0 Mentions export (16 tab-separated columns; plain or zipped), streamed: each
    /// mention is a source report on its event (waiting in the log if the event is not yet).
    GdeltMentions,
    /// A POLECAT weekly file (tab-separated, with a header row; plain or zipped), streamed.
    /// Repeated header rows and rows of the wrong width are reported by line.
    Polecat,
}

impl ImportFormat {
    fn is_streamed(self) -> bool {
        matches!(
            self,
            Self::GdeltEvents | Self::GdeltMentions | Self::Polecat
        )
    }
}
