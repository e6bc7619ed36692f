//! The command-line client: `diplog append`, `diplog read` (in batches: `client::reads`) and
//! `diplog subscribe` over gRPC (input and output are NDJSON, one event per line),
//! `diplog import`, and the projection queries (`projections`). Errors print the gRPC status
//! and the fields at fault, and the process exits non-zero (2 for bad input found before
//! sending, 1 for a refused call).

pub mod args;
pub mod audit;
pub mod checkpoint;
pub mod client_args;
pub mod dev_certs;
pub mod health;
pub mod import;
mod projections;
pub mod query_args;
pub mod subscribe;
pub mod token;
pub mod witness;

use std::io::Write;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::AsyncReadExt;

use crate::auth::client::AuthChannel;
use crate::client::reads;
use crate::domain::{EventId, ExpectedVersion};
use crate::proto::{self, event_log_client::EventLogClient};
use args::{AppendArgs, ReadArgs};
use client_args::ClientArgs;

/// One input line of `diplog append`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputEvent {
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    /// Kept as raw text, so the payload is sent byte for byte.
    data: Option<Box<RawValue>>,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// One output line of `diplog read`.
#[derive(Serialize)]
struct OutputEvent<'a> {
    position: i64,
    stream_id: &'a str,
    stream_version: i64,
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a RawValue,
    metadata: serde_json::Map<String, serde_json::Value>,
    recorded_at: String,
    appended_by: &'a str,
}

/// A failure of a CLI command: what to print and how to exit.
enum CliError {
    /// Bad input caught before anything was sent (exit 2).
    Input(String),
    /// The server could not be reached or refused the call (exit 1).
    Call(String),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Call(describe_status(&status))
    }
}

fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Call(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

pub use crate::describe::{code_name, describe_status, with_causes};

/// The one way every command reaches the server: `--server`, with TLS for an `https://` URL
/// (`--ca-cert`, `--client-cert`, `--client-key`), carrying `--token` if one was given. A CLI
/// error names why not (never showing the token).
async fn channel(client: &ClientArgs) -> Result<AuthChannel, CliError> {
    let bearer = crate::auth::client::Bearer::new(client.token.as_ref())
        .map_err(|e| CliError::Input(e.to_string()))?;
    let server = &client.server;
    let channel = crate::tls::client::endpoint(server, &client.tls)
        .map_err(|e| CliError::Input(e.to_string()))?
        .connect()
        .await
        .map_err(|e| {
            CliError::Call(format!(
                "could not connect to {server}: {}",
                with_causes(&e)
            ))
        })?;
    Ok(bearer.channel(channel))
}

async fn connect(client: &ClientArgs) -> Result<EventLogClient<AuthChannel>, CliError> {
    Ok(log_client(channel(client).await?))
}

/// The log's client on `channel`, taking messages as large as the server may send.
fn log_client(channel: AuthChannel) -> EventLogClient<AuthChannel> {
    EventLogClient::new(channel).max_decoding_message_size(crate::domain::limits::MAX_REQUEST_BYTES)
}

pub use dev_certs::dev_certs;
pub use import::{import, seed_demo};
pub use projections::{
    channels, commitments, divergence, projections, relations, search, summits, timeline, watch,
};
pub use subscribe::subscribe;

pub async fn append(args: AppendArgs) -> ExitCode {
    finish(append_events(args).await)
}

async fn append_events(args: AppendArgs) -> Result<(), CliError> {
    let input = read_input(args.file.as_deref()).await?;
    let events = parse_ndjson(&input)?;
    let request = proto::AppendRequest {
        stream_id: args.stream,
        expected_version: Some(expected_version(args.expect)),
        events,
    };
    let mut client = connect(&args.client).await?;
    let response = client.append(request).await?.into_inner();
    let line = serde_json::json!({
        "stream_version": response.stream_version,
        "positions": response.positions,
        "idempotent_replay": response.idempotent_replay,
    });
    println!("{line}");
    Ok(())
}

async fn read_input(file: Option<&std::path::Path>) -> Result<String, CliError> {
    match file {
        Some(path) if path.as_os_str() != "-" => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| CliError::Input(format!("could not read {}: {e}", path.display()))),
        _ => {
            let mut input = String::new();
            tokio::io::stdin()
                .read_to_string(&mut input)
                .await
                .map_err(|e| CliError::Input(format!("could not read standard input: {e}")))?;
            Ok(input)
        }
    }
}

/// Parses NDJSON events; blank lines are skipped, and an error names its line.
fn parse_ndjson(input: &str) -> Result<Vec<proto::NewEvent>, CliError> {
    let mut events = Vec::new();
    for (index, line) in input.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event =
            parse_line(line).map_err(|e| CliError::Input(format!("line {}: {e}", index + 1)))?;
        events.push(event);
    }
    if events.is_empty() {
        return Err(CliError::Input("no events in the input".to_owned()));
    }
    Ok(events)
}

fn parse_line(line: &str) -> Result<proto::NewEvent, String> {
    let event: InputEvent = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let id = event.id.unwrap_or_else(|| EventId::generate().to_string());
    let data = event
        .data
        .map_or_else(|| "{}".to_owned(), |raw| raw.get().to_owned());
    let mut metadata = proto::Metadata::default();
    for (key, value) in event.metadata {
        let serde_json::Value::String(value) = value else {
            return Err(format!("metadata.{key} must be a string"));
        };
        match key.as_str() {
            "correlation_id" => metadata.correlation_id = value,
            "causation_id" => metadata.causation_id = value,
            _ => {
                metadata.values.insert(key, value);
            }
        }
    }
    Ok(proto::NewEvent {
        id,
        r#type: event.event_type,
        data,
        metadata: Some(metadata),
    })
}

fn expected_version(expected: ExpectedVersion) -> proto::ExpectedVersion {
    use proto::expected_version::Kind;
    let kind = match expected {
        ExpectedVersion::Any => Kind::Any(()),
        ExpectedVersion::NoStream => Kind::NoStream(()),
        ExpectedVersion::StreamExists => Kind::StreamExists(()),
        ExpectedVersion::Exact(version) => Kind::Exact(version as i64),
    };
    proto::ExpectedVersion { kind: Some(kind) }
}

pub async fn read(args: ReadArgs) -> ExitCode {
    finish(read_events(args).await)
}

async fn read_events(args: ReadArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let direction = if args.backward {
        proto::Direction::Backward
    } else {
        proto::Direction::Forward
    } as i32;
    let to_wire = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let limit = args.limit.map_or(0, to_wire);
    let mut events = match &args.stream {
        Some(stream) => {
            let read = proto::ReadStreamRequest {
                stream_id: stream.clone(),
                from_version: args.from.map(to_wire),
                direction,
                limit,
            };
            reads::read_stream(&mut client, read).await?
        }
        None => {
            let read = proto::ReadAllRequest {
                from_position: args.from.map(to_wire),
                direction,
                limit,
                event_types: args.event_types.clone(),
                stream_prefix: args.prefix.clone().unwrap_or_default(),
            };
            reads::read_all(&mut client, read).await?
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(event) = events.next().await? {
        let line = output_line(&event)?;
        if let Err(error) = writeln!(out, "{line}") {
            // A closed pipe (`| head`) is a normal way to stop reading.
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(CliError::Call(format!("could not write output: {error}")));
        }
    }
    out.flush().or_else(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(CliError::Call(format!("could not write output: {e}"))),
    })
}

fn output_line(event: &proto::RecordedEvent) -> Result<String, CliError> {
    let data: &RawValue = serde_json::from_str(&event.data).map_err(|e| {
        CliError::Call(format!(
            "event {} has a payload that is not JSON: {e}",
            event.id
        ))
    })?;
    let metadata = event.metadata.clone().unwrap_or_default();
    let mut metadata_json = serde_json::Map::new();
    for (key, value) in [
        ("correlation_id", metadata.correlation_id),
        ("causation_id", metadata.causation_id),
    ] {
        if !value.is_empty() {
            metadata_json.insert(key.to_owned(), value.into());
        }
    }
    let values: std::collections::BTreeMap<String, String> = metadata.values;
    let mut values: Vec<_> = values.into_iter().collect();
    values.sort();
    for (key, value) in values {
        metadata_json.insert(key, value.into());
    }
    let recorded_at = event
        .recorded_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default();
    let line = OutputEvent {
        position: event.position,
        stream_id: &event.stream_id,
        stream_version: event.stream_version,
        id: &event.id,
        event_type: &event.r#type,
        data,
        metadata: metadata_json,
        recorded_at,
        appended_by: &event.appended_by,
    };
    Ok(serde_json::to_string(&line).expect("serializable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_line_keeps_its_payload_text_and_splits_metadata() {
        let line = r#"{"id":"7f1d7c1e-8d0a-4d7e-9a53-3c1e2b7d9f10","type":"CallHeld","data":{"b": 1, "a": "Лавров"},"metadata":{"correlation_id":"c","source":"mid.ru"}}"#;
        let event = parse_line(line).unwrap();
        assert_eq!(event.data, r#"{"b": 1, "a": "Лавров"}"#);
        let metadata = event.metadata.unwrap();
        assert_eq!(metadata.correlation_id, "c");
        assert_eq!(metadata.values["source"], "mid.ru");
    }

    #[test]
    fn a_missing_id_is_generated_and_missing_data_is_an_empty_object() {
        let event = parse_line(r#"{"type":"CallHeld"}"#).unwrap();
        assert!(EventId::parse(&event.id).is_ok());
        assert_eq!(event.data, "{}");
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let Err(CliError::Input(message)) =
            parse_ndjson("{\"type\":\"A\"}\n\n{\"type\":\"B\",\"typo\":1}\n")
        else {
            panic!("expected an input error");
        };
        assert!(message.starts_with("line 3:"), "{message}");
        assert!(message.contains("typo"), "{message}");
    }

    #[test]
    fn status_codes_print_by_their_canonical_names() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::Aborted), "ABORTED");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }

    #[test]
    fn non_string_metadata_is_refused() {
        let error = parse_line(r#"{"type":"A","metadata":{"n":1}}"#).unwrap_err();
        assert!(error.contains("metadata.n"), "{error}");
    }
}
