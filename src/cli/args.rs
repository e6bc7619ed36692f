//! The command line: `diplog`'s subcommands, and the arguments the client commands share
//! (how to reach the server; append and read). Each other command's arguments live beside it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::audit::{ExportArgs, ProofArgs, RestoreArgs, TreeHeadArgs, VerifyArgs};
use super::client_args::ClientArgs;
use super::dev_certs::DevCertsArgs;
use super::import::ImportArgs;
use super::query_args::{
    ChannelsArgs, CommitmentsArgs, DivergenceArgs, ProjectionsArgs, RelationsArgs, SearchArgs,
    SummitsArgs, TimelineArgs, WatchArgs,
};
use super::subscribe::SubscribeArgs;
use super::token::TokenArgs;
use crate::config::ServeArgs;
use crate::domain::ExpectedVersion;
use crate::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "diplog",
    version,
    about = "An event-sourced diplomacy log on PostgreSQL"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "DIPLOG_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (and the HTTP port).
    // Boxed: its many flags make it several times the size of the other commands.
    Serve(Box<ServeArgs>),
    /// Append events (NDJSON, one per line) to a stream, atomically.
    Append(AppendArgs),
    /// Read a stream or the whole log as NDJSON.
    Read(ReadArgs),
    /// Follow the log: print each event (NDJSON, as `read` does) as it commits, from the start,
    /// after a position, or from now. Runs until interrupted.
    Subscribe(SubscribeArgs),
    /// Check the audit tree. Without --since: recompute every leaf and the root from the rows
    /// in PostgreSQL and report the first position that does not match. With --since FILE:
    /// prove through the server, with a consistency proof checked here, that the log today
    /// extends a head saved by `tree-head --save`.
    Verify(VerifyArgs),
    /// Print the current signed tree head (checked against the server's public key); --save
    /// keeps it, with the key, for `verify --since`.
    TreeHead(TreeHeadArgs),
    /// Print the current C2SP checkpoint (the signed tree head as a signed note, checked
    /// here); --vkey prints the verifier key that checks it.
    Checkpoint(super::checkpoint::CheckpointArgs),
    /// Print and check an inclusion proof of an event in the current tree.
    Proof(ProofArgs),
    /// Write the log as NDJSON: each event with its leaf hash, then the signed tree head over
    /// them (a whole export, from 1, is what `restore` loads).
    Export(ExportArgs),
    /// Load an export into an empty database, checking every leaf hash and the closing signed
    /// head; the first bad line refuses the whole file.
    Restore(RestoreArgs),
    /// Record a file of diplomatic events through the gRPC API: a scenario (YAML) or PLOVER
    /// records (JSON). Checked as a whole first; importing the same file again writes nothing.
    Import(ImportArgs),
    /// Measure append throughput through gRPC against raw PostgreSQL inserts.
    Bench(crate::bench::BenchArgs),
    /// The channels between actors: who, status, established, last contact.
    Channels(ChannelsArgs),
    /// Summits and their stage (pending ones unless --all).
    Summits(SummitsArgs),
    /// Commitments and their status (pending, scheduled and lapsed ones unless --all).
    Commitments(CommitmentsArgs),
    /// An actor's interactions in the order they happened (a state's: through its people and
    /// offices).
    Timeline(TimelineArgs),
    /// The relations of two states: contacts by level, last contact, open channels, pending
    /// summits and commitments.
    Relations(RelationsArgs),
    /// How the sources report one occurrence: each source's quotes, the claims only one source
    /// makes, the claims they share.
    Divergence(DivergenceArgs),
    /// Full-text search over quotes, claims, summaries, commitments and the other texts of
    /// diplomatic events, in Russian, English and more: ranked hits, matched words in [ ].
    Search(SearchArgs),
    /// The projections themselves: their status, and rebuilds.
    Projections(ProjectionsArgs),
    /// Follow a projection as it changes: every row, then each change as it happens, until
    /// interrupted (or the server stops).
    Watch(WatchArgs),
    /// Make a self-signed CA, a server certificate and a client certificate in DIR, for trying
    /// TLS and client certificates out (not for production).
    DevCerts(DevCertsArgs),
    /// Run a minimal C2SP tlog-witness for the logs named: it cosigns each checkpoint that
    /// extends the tree it cosigned before, and refuses a fork.
    Witness(super::witness::WitnessArgs),
    /// Ask a server whether it serves (the standard gRPC health service; no token needed):
    /// exit code 0 when it does. For container health checks and probes.
    Health(super::health::HealthArgs),
    /// API tokens: create (prints the token once), list, revoke. Against the database by
    /// default; with --server, through the server with an admin --token.
    Token(TokenArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AppendArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The stream to append to.
    #[arg(long)]
    pub stream: String,
    /// The stream's expected version: any, no-stream, exists, or a number (0 = no stream).
    #[arg(long, default_value = "any", value_parser = parse_expected_version, allow_hyphen_values = true)]
    pub expect: ExpectedVersion,
    /// NDJSON file of events, `-` or nothing for standard input. Each line:
    /// {"id": "<uuid>", "type": "...", "data": {...}, "metadata": {...}}; `id` is optional.
    pub file: Option<PathBuf>,
}

/// Parses `--expect`: the words, or an exact version.
pub fn parse_expected_version(raw: &str) -> Result<ExpectedVersion, String> {
    match raw {
        "any" => Ok(ExpectedVersion::Any),
        "no-stream" => Ok(ExpectedVersion::NoStream),
        "exists" => Ok(ExpectedVersion::StreamExists),
        number => {
            let version: i64 = number.parse().map_err(|_| {
                format!("{raw:?} is not any, no-stream, exists or a version number")
            })?;
            ExpectedVersion::exact(version).map_err(|e| format!("version {e}"))
        }
    }
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stream", "all"])))]
pub struct ReadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Read this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Read the whole log.
    #[arg(long)]
    pub all: bool,
    /// First stream version (with --stream) or global position (with --all), inclusive.
    #[arg(long)]
    pub from: Option<u64>,
    /// The most events to print.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Newest first.
    #[arg(long)]
    pub backward: bool,
    /// Only events of this type (repeatable; with --all).
    #[arg(long = "type", requires = "all")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this (with --all).
    #[arg(long, requires = "all")]
    pub prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::query_args::{AsOf, parse_as_of};
    use crate::config::LimitsArgs;
    use crate::domain::limits;

    #[test]
    fn expected_versions_parse_from_words_and_numbers() {
        assert_eq!(parse_expected_version("any"), Ok(ExpectedVersion::Any));
        assert_eq!(
            parse_expected_version("no-stream"),
            Ok(ExpectedVersion::NoStream)
        );
        assert_eq!(
            parse_expected_version("exists"),
            Ok(ExpectedVersion::StreamExists)
        );
        assert_eq!(parse_expected_version("7"), Ok(ExpectedVersion::Exact(7)));
    }

    #[test]
    fn a_negative_or_unknown_expected_version_is_refused() {
        assert!(
            parse_expected_version("-1")
                .unwrap_err()
                .contains("negative")
        );
        assert!(parse_expected_version("latest").is_err());
    }

    #[test]
    fn as_of_reads_positions_times_and_days() {
        assert_eq!(parse_as_of("12"), Ok(AsOf::Position(12)));
        let AsOf::Time(time) = parse_as_of("2025-02-15T14:00:00+03:00").unwrap() else {
            panic!("a time");
        };
        assert_eq!(time.to_rfc3339(), "2025-02-15T11:00:00+00:00");
        let AsOf::Time(end) = parse_as_of("2025-02-15").unwrap() else {
            panic!("a time");
        };
        assert_eq!(
            end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2025-02-15T23:59:59.999999999Z"
        );
        assert!(parse_as_of("yesterday").is_err());
        assert!(parse_as_of("2025-02-30").is_err());
        assert!(parse_as_of("").is_err());
    }

    #[test]
    fn the_limits_default_as_the_flags_do_and_errors_name_real_flags() {
        let cli = Cli::try_parse_from(["diplog", "serve"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve");
        };
        let parsed = serve.server.limits;
        let default = LimitsArgs::default();
        assert_eq!(parsed.max_request_bytes, default.max_request_bytes);
        assert_eq!(parsed.max_events_per_append, default.max_events_per_append);
        assert_eq!(parsed.max_payload_bytes, default.max_payload_bytes);
        assert_eq!(
            parsed.max_streams_per_client,
            default.max_streams_per_client
        );
        assert_eq!(default.append(), limits::AppendLimits::default());

        use clap::CommandFactory;
        let command = Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        for limit in [limits::Limit::EventsPerAppend, limits::Limit::PayloadBytes] {
            let flag = limit.flag().trim_start_matches("--");
            assert!(
                serve.get_arguments().any(|a| a.get_long() == Some(flag)),
                "{flag}"
            );
        }
        for flag in ["max-request-bytes", "max-streams-per-client"] {
            assert!(serve.get_arguments().any(|a| a.get_long() == Some(flag)));
        }
    }

    #[test]
    fn limits_outside_their_range_are_refused() {
        for args in [
            ["--max-events-per-append", "0"],
            ["--max-events-per-append", "1001"],
            ["--max-payload-bytes", "1048577"],
            ["--max-request-bytes", "1023"],
            ["--max-streams-per-client", "0"],
        ] {
            let parsed = Cli::try_parse_from(["diplog", "serve", args[0], args[1]]);
            assert!(parsed.is_err(), "{args:?}");
        }
        assert!(
            Cli::try_parse_from(["diplog", "serve", "--max-events-per-append", "1000"]).is_ok()
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
