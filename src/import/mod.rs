//! Importing files of diplomatic events through the gRPC API: scenario files (YAML, written
//! by analysts) and PLOVER records (JSON, coded by the event-data community).
//!
//! Every import runs in two phases. First each event is checked, on the client, by the same
//! domain rules the server applies, against what the server's log already holds (read over
//! gRPC) plus the file's own earlier events; nothing is sent while anything is wrong, so a
//! scenario with an error is refused as a whole, its line and field named. What the log holds
//! is read in one `ReadRecordingInputs` call per file or chunk (per 10,000 events of a larger
//! one): what the server itself reads to record the events, so the check here is the server's
//! own. Then the events are
//! recorded atomically: the whole file in one `RecordMany` (each run of consecutive events of
//! one stream as one of its records), or, for a file beyond one request's limits (1000 events,
//! 8 MiB of encoded events), in as few as hold it, each all or nothing. Event ids derive from the
//! file's namespace and each event's key, so importing a file again writes nothing new.

pub mod gdelt;
pub mod plover;
pub mod polecat;
pub mod scenario;
pub mod streamed;
pub mod tsv;

use std::collections::BTreeSet;
use std::fmt;

use chrono::Utc;
use uuid::Uuid;

use crate::domain::diplomacy::{ActorId, DiplomaticEvent, LogState, check_record};
use crate::domain::{EventId, StreamId};
use crate::grpc::bridge;
use crate::proto::{self, diplomacy_client::DiplomacyClient};

/// Where an imported event came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a scenario file.
    Line(u64),
    /// A record of an external dataset, by its id.
    Record(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "line {line}"),
            Self::Record(id) => write!(f, "record {id}"),
        }
    }
}

/// One event to import.
#[derive(Debug, Clone)]
pub struct Item {
    pub origin: Origin,
    pub stream_id: String,
    pub id: EventId,
    pub event: DiplomaticEvent,
}

/// Something wrong with one event of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    /// The field at fault, relative to the event (empty: the event as a whole).
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.field, self.message)
        }
    }
}

/// What to do with an event that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Refuse the whole file and write nothing (scenarios).
    RefuseAll,
    /// Report the event and import the rest (external datasets).
    Report,
}

/// The outcome of an import.
#[derive(Debug, Default)]
pub struct Report {
    /// Events the log did not have before.
    pub written: usize,
    /// Events the log already had (an earlier import of the same file).
    pub already_present: usize,
    /// Atomic records (`RecordMany` calls) the new events were written in: 1 for a file that
    /// fits in one request, 0 when there was nothing new.
    pub records: usize,
    /// Events not imported, with the reason.
    pub reported: Vec<Problem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file was refused, nothing was written:\n{}", list(.0))]
    Refused(Vec<Problem>),
    #[error("{0}")]
    Call(String),
}

/// What a generated client needs of its channel.
pub trait GrpcChannel:
    tonic::client::GrpcService<
        tonic::body::Body,
        Error: Into<tonic::codegen::StdError>,
        ResponseBody: tonic::codegen::Body<
            Data = tonic::codegen::Bytes,
            Error: Into<tonic::codegen::StdError> + Send,
        > + Send
                          + 'static,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<T> GrpcChannel for T where
    T: tonic::client::GrpcService<
            tonic::body::Body,
            Error: Into<tonic::codegen::StdError>,
            ResponseBody: tonic::codegen::Body<
                Data = tonic::codegen::Bytes,
                Error: Into<tonic::codegen::StdError> + Send,
            > + Send
                              + 'static,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<tonic::Status> for ImportError {
    fn from(status: tonic::Status) -> Self {
        Self::Call(crate::describe::describe_status(&status))
    }
}

/// Checks every item against the server's log and the file, then records the valid ones.
/// Any channel: a plain one, or one that sends a token ([`crate::auth::client::AuthChannel`]).
pub async fn import<T>(
    channel: T,
    items: Vec<Item>,
    on_invalid: OnInvalid,
) -> Result<Report, ImportError>
where
    T: GrpcChannel,
{
    let mut diplomacy = DiplomacyClient::new(channel);
    let mut known = remote_state(&mut diplomacy, &items).await?;
    let mut report = Report::default();

    let now = Utc::now();
    let mut accepted = Vec::with_capacity(items.len());
    let mut refused = Vec::new();
    for item in items {
        if known.present.contains(&item.id.as_uuid()) {
            // Written by an earlier import: the server will answer it as a replay.
            accepted.push(item);
            continue;
        }
        if let crate::domain::diplomacy::EventKind::ActorRegistered(registered) = &item.event.kind
            && known.state.knows_actor(&registered.actor.id)
        {
            // Registered before, by another file: the log's registration stands.
            report.already_present += 1;
            continue;
        }
        let Ok(stream_id) = StreamId::parse(item.stream_id.clone()) else {
            refused.push(Problem {
                origin: item.origin,
                field: "stream".into(),
                message: "is not a valid stream id".into(),
            });
            continue;
        };
        let errors = check_record(
            &stream_id,
            &[(item.id, item.event.clone())],
            &mut known.state,
            now,
        );
        if errors.is_empty() {
            accepted.push(item);
        } else {
            if on_invalid == OnInvalid::RefuseAll {
                // Nothing will be written anyway: let later events see this one, so only the
                // root cause is reported, not every event that refers to it.
                known.state.observe(
                    &item.stream_id,
                    item.id,
                    item.event.kind.name(),
                    Some(&item.event),
                );
            }
            refused.extend(errors.errors().iter().map(|error| Problem {
                origin: item.origin.clone(),
                field: relative_field(&error.field),
                message: error.error.to_string(),
            }));
        }
    }
    if !refused.is_empty() {
        match on_invalid {
            OnInvalid::RefuseAll => return Err(ImportError::Refused(refused)),
            OnInvalid::Report => report.reported = refused,
        }
    }

    let (present, new): (Vec<Item>, Vec<Item>) = accepted
        .into_iter()
        .partition(|item| known.present.contains(&item.id.as_uuid()));
    // Written by an earlier import: sending them again beside new events would be a partial
    // retry of an atomic record.
    report.already_present += present.len();
    for unit in atomic_units(new) {
        let records: Vec<proto::RecordRequest> = runs_by_stream(&unit)
            .into_iter()
            .map(|run| proto::RecordRequest {
                stream_id: run[0].stream_id.clone(),
                expected_version: None,
                events: run.iter().map(|outgoing| outgoing.event.clone()).collect(),
            })
            .collect();
        let response = diplomacy
            .record_many(proto::RecordManyRequest { records })
            .await?
            .into_inner();
        report.records += 1;
        for outcome in &response.appends {
            let events = outcome.positions.len();
            if outcome.idempotent_replay {
                report.already_present += events;
            } else {
                report.written += events;
            }
        }
    }
    Ok(report)
}

/// `events[0].call_held.participants` -> `call_held.participants`; `stream_id` -> `stream`.
fn relative_field(field: &str) -> String {
    if field == "stream_id" {
        return "stream".into();
    }
    field
        .strip_prefix("events[0]")
        .map(|rest| rest.trim_start_matches('.').to_owned())
        .unwrap_or_else(|| field.to_owned())
}

/// An event as it is sent: its stream and its protobuf.
struct Outgoing {
    stream_id: String,
    event: proto::DiplomaticEvent,
}

/// The items as they are sent, cut into atomic records (`RecordMany` calls), in order: one for
/// the whole file when it fits in one request (at most `MAX_EVENTS_PER_APPEND` events and
/// `MAX_UNIT_BYTES` of encoded events), else as few as hold it. Each is written all or
/// nothing; a file cut in several may be left with its first records written if a later one
/// fails, and the CLI says how many records a file took.
fn atomic_units(items: Vec<Item>) -> Vec<Vec<Outgoing>> {
    let mut units: Vec<Vec<Outgoing>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let event = bridge::event_from_json(item.event.to_json(), &item.id.to_string())
            .expect("a domain event always maps onto the proto");
        let size = prost::Message::encoded_len(&event);
        let outgoing = Outgoing {
            stream_id: item.stream_id,
            event,
        };
        match units.last_mut() {
            Some(unit)
                if unit.len() < crate::domain::limits::MAX_EVENTS_PER_APPEND
                    && bytes + size <= MAX_UNIT_BYTES =>
            {
                bytes += size;
                unit.push(outgoing);
            }
            _ => {
                bytes = size;
                units.push(vec![outgoing]);
            }
        }
    }
    units
}

/// The encoded events one atomic record of an import carries at most: half the default
/// request limit (`MAX_REQUEST_BYTES`, 16 MiB), which leaves room for the records' framing and
/// for a server configured with a lower `--max-request-bytes`.
const MAX_UNIT_BYTES: usize = crate::domain::limits::MAX_REQUEST_BYTES / 2;

/// Consecutive events of one stream: the records of one atomic unit.
fn runs_by_stream(unit: &[Outgoing]) -> Vec<&[Outgoing]> {
    unit.chunk_by(|a, b| a.stream_id == b.stream_id).collect()
}

/// What the server's log holds that the items depend on.
struct RemoteState {
    state: LogState,
    /// Ids of the items that the log already has.
    present: BTreeSet<Uuid>,
}

/// Items whose inputs one `ReadRecordingInputs` call asks for: well within its limit of
/// 100,000 entries a list (an event names a few actors and events), and a few MB of request.
const ITEMS_PER_READ: usize = 10_000;

/// Reads what the rules need of the log for the items: what the server itself reads to
/// record them (the streams they write to, the actors and events they name), so the check here
/// is the server's own. One `ReadRecordingInputs` call per `ITEMS_PER_READ` items; the answers
/// are taken note of in log order.
async fn remote_state<T: GrpcChannel>(
    diplomacy: &mut DiplomacyClient<T>,
    items: &[Item],
) -> Result<RemoteState, ImportError> {
    let item_ids: BTreeSet<Uuid> = items.iter().map(|item| item.id.as_uuid()).collect();
    let mut known = Vec::new();
    for slice in items.chunks(ITEMS_PER_READ) {
        let mut streams = BTreeSet::new();
        let mut strings = BTreeSet::new();
        for item in slice {
            streams.insert(item.stream_id.clone());
            strings.extend(item.event.strings());
        }
        let referenced = strings
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .filter(|id| !item_ids.contains(id));
        let event_ids = referenced
            .chain(slice.iter().map(|item| item.id.as_uuid()))
            .map(|id| id.to_string())
            .collect();
        let actor_ids = strings
            .into_iter()
            .filter(|s| ActorId::parse(s.as_str()).is_ok())
            .collect();
        let inputs = diplomacy
            .read_recording_inputs(proto::RecordingInputsRequest {
                stream_ids: streams.into_iter().collect(),
                actor_ids,
                event_ids,
                full_event_ids: Vec::new(),
            })
            .await?
            .into_inner();
        known.extend(inputs.events);
    }
    known.sort_by_key(|event| event.position);
    let mut state = LogState::new();
    let mut present = BTreeSet::new();
    for event in &known {
        let Ok(id) = EventId::parse(&event.event_id) else {
            continue;
        };
        if item_ids.contains(&id.as_uuid()) {
            present.insert(id.as_uuid());
        }
        state.observe_stored(
            &event.stream_id,
            id,
            &event.r#type,
            event.diplomatic,
            &event.data,
        );
    }
    Ok(RemoteState { state, present })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_one_atomic_record_unless_it_is_over_the_limit_of_events() {
        let founding = scenario::parse(scenario::FOUNDING_SCENARIO)
            .expect("the founding scenario parses")
            .items;
        assert_eq!(atomic_units(founding.clone()).len(), 1);

        let many: Vec<Item> = std::iter::repeat_n(founding, 30).flatten().collect();
        let total = many.len();
        let units = atomic_units(many);
        let sizes: Vec<usize> = units.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [crate::domain::limits::MAX_EVENTS_PER_APPEND, total - 1000]
        );
        // Runs of one stream become the records of a unit, in order.
        let runs = runs_by_stream(&units[1]);
        assert!(
            runs.iter()
                .all(|run| run.iter().all(|i| i.stream_id == run[0].stream_id))
        );
        assert_eq!(
            runs.iter().map(|run| run.len()).sum::<usize>(),
            total - 1000
        );
    }
}
