//! Protobuf <-> domain conversions. Incoming messages are parsed into domain types, collecting
//! every problem with the protobuf field path that caused it.

use std::sync::Arc;

use crate::domain::batch::BatchBytes;
use crate::domain::diplomacy::ActorId;
use crate::domain::{
    AppendBatch, AtomicAppend, Direction, EventId, EventType, ExpectedVersion, LogFilter, Metadata,
    NewEvent, Payload, ReadAllQuery, ReadStreamQuery, StreamId, SubscriptionStart, ValidationError,
    ValidationErrors, limits, limits::AppendLimits, non_negative,
};
use crate::proto;
use crate::store::{AppendOutcome, RecordedEvent};
use crate::subscriptions::{Delivery, SubscriptionRequest};

/// Parses an append within this server's limits (`--max-events-per-append`,
/// `--max-payload-bytes`), collecting every problem with its field path.
pub fn append_batch(
    request: proto::AppendRequest,
    limits: &AppendLimits,
) -> Result<AppendBatch, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let stream_id = errors.check("stream_id", StreamId::parse(request.stream_id));
    let expected = errors.check(
        "expected_version.exact",
        expected_version(request.expected_version),
    );
    if let Err(error) = limits.check_events(request.events.len()) {
        // Too many to be worth checking one by one: say so and stop.
        errors.push("events", error);
        return Err(errors);
    }
    let events: Vec<Option<NewEvent>> = request
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| new_event(index, event, limits, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let events = events.into_iter().flatten().collect();
    match (stream_id, expected) {
        (Some(stream_id), Some(expected)) => AppendBatch::new(stream_id, expected, events),
        _ => Err(errors),
    }
}

/// Parses an atomic append: each append as `Append` parses it, its errors named under
/// `appends[i]`, then the rules that span them (the events in all within `limits`, no event id
/// twice).
pub fn atomic_append(
    request: proto::AppendManyRequest,
    limits: &AppendLimits,
) -> Result<AtomicAppend, ValidationErrors> {
    check_events_in_all(
        request.appends.iter().map(|append| append.events.len()),
        APPENDS_FIELD,
        limits,
    )?;
    let mut errors = ValidationErrors::new();
    let mut parts = Vec::with_capacity(request.appends.len());
    for (index, append) in request.appends.into_iter().enumerate() {
        match append_batch(append, limits) {
            Ok(batch) => parts.push(batch),
            Err(found) => errors.extend(found.within(&format!("{APPENDS_FIELD}[{index}]"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    AtomicAppend::new(parts, APPENDS_FIELD)
}

const APPENDS_FIELD: &str = "appends";

/// Refuses a request whose parts hold more events in all than one append may (or none),
/// before any part is parsed: too many to be worth checking one by one.
pub(super) fn check_events_in_all(
    counts: impl Iterator<Item = usize>,
    field: &str,
    limits: &AppendLimits,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut parts = 0;
    let mut events = 0;
    for count in counts {
        parts += 1;
        events += count;
    }
    if parts == 0 {
        errors.push(field, ValidationError::Empty);
    } else if let Err(error) = limits.check_events(events) {
        errors.push(field, error);
    }
    errors.into_result(|| ())
}

impl From<AppendOutcome> for proto::AppendResponse {
    fn from(outcome: AppendOutcome) -> Self {
        Self {
            stream_version: outcome.stream_version as i64,
            positions: outcome.positions.into_iter().map(|p| p as i64).collect(),
            idempotent_replay: outcome.idempotent_replay,
        }
    }
}

pub(super) fn expected_version(
    expected: Option<proto::ExpectedVersion>,
) -> Result<ExpectedVersion, ValidationError> {
    use proto::expected_version::Kind;
    Ok(match expected.and_then(|e| e.kind) {
        None | Some(Kind::Any(())) => ExpectedVersion::Any,
        Some(Kind::NoStream(())) => ExpectedVersion::NoStream,
        Some(Kind::StreamExists(())) => ExpectedVersion::StreamExists,
        Some(Kind::Exact(version)) => ExpectedVersion::exact(version)?,
    })
}

fn new_event(
    index: usize,
    event: proto::NewEvent,
    limits: &AppendLimits,
    errors: &mut ValidationErrors,
) -> Option<NewEvent> {
    let field = |name: &str| format!("events[{index}].{name}");
    let id = errors.check(field("id"), EventId::parse(&event.id));
    let event_type = errors.check(field("type"), EventType::parse(event.r#type));
    let data = limits
        .check_payload(event.data.len())
        .and_then(|()| Payload::parse(event.data));
    let data = errors.check(field("data"), data);
    let metadata = event.metadata.unwrap_or_default();
    let metadata = Metadata::parse(
        &field("metadata"),
        &metadata.correlation_id,
        &metadata.causation_id,
        metadata.values,
        errors,
    );
    Some(NewEvent {
        id: id?,
        event_type: event_type?,
        data: data?,
        metadata: metadata?,
    })
}

fn direction(raw: i32, errors: &mut ValidationErrors) -> Direction {
    match proto::Direction::try_from(raw) {
        Ok(proto::Direction::Forward) => Direction::Forward,
        Ok(proto::Direction::Backward) => Direction::Backward,
        Err(_) => {
            errors.push(
                "direction",
                ValidationError::NotAnOption {
                    value: raw.to_string(),
                },
            );
            Direction::Forward
        }
    }
}

/// A limit of 0 means "no limit".
fn limit(raw: i64, errors: &mut ValidationErrors) -> Option<u64> {
    errors
        .check("limit", non_negative(raw))
        .filter(|&limit| limit > 0)
}

impl TryFrom<proto::ReadStreamRequest> for ReadStreamQuery {
    type Error = ValidationErrors;

    fn try_from(request: proto::ReadStreamRequest) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let stream_id = errors.check("stream_id", StreamId::parse(request.stream_id));
        let from_version = request
            .from_version
            .and_then(|v| errors.check("from_version", non_negative(v)));
        let direction = direction(request.direction, &mut errors);
        let limit = limit(request.limit, &mut errors);
        match stream_id {
            Some(stream_id) if errors.is_empty() => Ok(Self {
                stream_id,
                from_version,
                direction,
                limit,
            }),
            _ => Err(errors),
        }
    }
}

impl TryFrom<proto::ReadAllRequest> for ReadAllQuery {
    type Error = ValidationErrors;

    fn try_from(request: proto::ReadAllRequest) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let from_position = request
            .from_position
            .and_then(|p| errors.check("from_position", non_negative(p)));
        let direction = direction(request.direction, &mut errors);
        let limit = limit(request.limit, &mut errors);
        let event_types = event_types(request.event_types, "event_types", &mut errors);
        let stream_prefix = errors
            .check(
                "stream_prefix",
                StreamId::parse_prefix(&request.stream_prefix),
            )
            .flatten();
        errors.into_result(|| Self {
            from_position,
            direction,
            limit,
            event_types,
            stream_prefix,
        })
    }
}

/// A batched read of a stream: the one-event read it wraps (its errors named under `read`) and
/// the batches' bound.
pub fn read_stream_batches(
    request: proto::ReadStreamBatchesRequest,
) -> Result<(ReadStreamQuery, BatchBytes), ValidationErrors> {
    let query = ReadStreamQuery::try_from(request.read.unwrap_or_default());
    batched(query, request.max_batch_bytes)
}

/// A batched read of the log (as [`read_stream_batches`]).
pub fn read_all_batches(
    request: proto::ReadAllBatchesRequest,
) -> Result<(ReadAllQuery, BatchBytes), ValidationErrors> {
    let query = ReadAllQuery::try_from(request.read.unwrap_or_default());
    batched(query, request.max_batch_bytes)
}

fn batched<Q>(
    query: Result<Q, ValidationErrors>,
    max_batch_bytes: Option<u32>,
) -> Result<(Q, BatchBytes), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let query = query.map_err(|e| errors.extend(e.within("read"))).ok();
    let bound = errors.check("max_batch_bytes", BatchBytes::parse(max_batch_bytes));
    match (query, bound) {
        (Some(query), Some(bound)) => Ok((query, bound)),
        _ => Err(errors),
    }
}

/// A filter's event types: at most `MAX_TYPE_FILTERS`, each a valid type name.
fn event_types(raw: Vec<String>, field: &str, errors: &mut ValidationErrors) -> Vec<EventType> {
    if raw.len() > limits::MAX_TYPE_FILTERS {
        errors.push(
            field,
            ValidationError::TooMany {
                count: raw.len(),
                max: limits::MAX_TYPE_FILTERS,
            },
        );
    }
    raw.into_iter()
        .take(limits::MAX_TYPE_FILTERS)
        .enumerate()
        .filter_map(|(i, t)| errors.check(format!("{field}[{i}]"), EventType::parse(t)))
        .collect()
}

/// Heartbeats no more often than this, and at least this often.
const CHECKPOINT_INTERVAL_MS: std::ops::RangeInclusive<u32> = 100..=3_600_000;

impl TryFrom<proto::SubscribeRequest> for SubscriptionRequest {
    type Error = ValidationErrors;

    fn try_from(request: proto::SubscribeRequest) -> Result<Self, ValidationErrors> {
        use proto::subscribe_request::From;
        let mut errors = ValidationErrors::new();
        let start = match request.from {
            None | Some(From::Start(())) => Some(SubscriptionStart::After(0)),
            Some(From::Now(())) => Some(SubscriptionStart::Now),
            Some(From::AfterPosition(after)) => errors
                .check("after_position", non_negative(after))
                .map(SubscriptionStart::After),
        };
        let filter = request.filter.unwrap_or_default();
        let event_types = event_types(filter.event_types, "filter.event_types", &mut errors);
        let stream_prefix = errors
            .check(
                "filter.stream_prefix",
                StreamId::parse_prefix(&filter.stream_prefix),
            )
            .flatten();
        let actor = if filter.actor.is_empty() {
            None
        } else {
            errors.check(
                "filter.actor",
                ActorId::parse(filter.actor.as_str()).map(|_| filter.actor.clone()),
            )
        };
        let checkpoint_interval = match request.checkpoint_interval_ms {
            0 => None,
            ms if CHECKPOINT_INTERVAL_MS.contains(&ms) => {
                Some(std::time::Duration::from_millis(u64::from(ms)))
            }
            ms => {
                errors.push(
                    "checkpoint_interval_ms",
                    ValidationError::Malformed(format!(
                        "{ms} is outside {}..={} (or 0 for the default)",
                        CHECKPOINT_INTERVAL_MS.start(),
                        CHECKPOINT_INTERVAL_MS.end()
                    )),
                );
                None
            }
        };
        let checkpoint_every =
            (request.checkpoint_every > 0).then_some(u64::from(request.checkpoint_every));
        match start {
            Some(start) if errors.is_empty() => Ok(Self {
                start,
                filter: LogFilter {
                    event_types,
                    stream_prefix,
                    actor,
                },
                checkpoint_interval,
                checkpoint_every,
            }),
            _ => Err(errors),
        }
    }
}

impl From<Delivery> for proto::SubscriptionMessage {
    fn from(delivery: Delivery) -> Self {
        use proto::subscription_message::Message;
        let message = match delivery {
            Delivery::Event(event) => Message::Event(Arc::unwrap_or_clone(event).into()),
            Delivery::Checkpoint {
                position,
                caught_up,
            } => Message::Checkpoint(proto::Checkpoint {
                position: position as i64,
                caught_up,
            }),
        };
        Self {
            message: Some(message),
        }
    }
}

impl From<RecordedEvent> for proto::RecordedEvent {
    fn from(event: RecordedEvent) -> Self {
        let uuid_text = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
        Self {
            position: event.position,
            stream_id: event.stream_id,
            stream_version: event.stream_version,
            id: event.event_id.to_string(),
            r#type: event.event_type,
            data: event.data_text,
            metadata: Some(proto::Metadata {
                correlation_id: uuid_text(event.correlation_id),
                causation_id: uuid_text(event.causation_id),
                // Both maps are BTreeMaps (build.rs), so the stored one moves as it is.
                values: event.metadata.0,
            }),
            recorded_at: Some(to_timestamp(event.recorded_at)),
            appended_by: event.appended_by,
        }
    }
}

/// A projection list's filter as a list or watch request gives it.
pub(super) fn list_filter(
    actor: &str,
    state_pair: Option<&proto::StatePair>,
    status: &[String],
    pending_only: bool,
) -> crate::projections::read::request::ListFilter {
    crate::projections::read::request::ListFilter {
        actor: (!actor.is_empty()).then(|| actor.to_owned()),
        state_pair: state_pair.map(|p| (p.a.clone(), p.b.clone())),
        status: status.to_vec(),
        pending_only,
        records: crate::projections::read::request::Records::default(),
    }
}

/// The records a list request asks for (`ListRequest.records`); a value the proto does not
/// define is INVALID_ARGUMENT naming `records`.
pub(super) fn records(
    value: i32,
) -> Result<crate::projections::read::request::Records, tonic::Status> {
    use crate::projections::read::request::Records;
    match proto::Records::try_from(value) {
        Ok(proto::Records::Both) => Ok(Records::Both),
        Ok(proto::Records::Readouts) => Ok(Records::Readouts),
        Ok(proto::Records::Coded) => Ok(Records::Coded),
        Err(_) => Err(super::status::invalid_request(
            "records",
            format!("{value} is not one of RECORDS_BOTH, RECORDS_READOUTS, RECORDS_CODED"),
        )),
    }
}

/// An instant as a protobuf timestamp.
pub fn to_timestamp(time: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

/// A protobuf timestamp as an instant; out-of-range values are refused.
pub(super) fn timestamp(
    value: prost_types::Timestamp,
) -> Result<chrono::DateTime<chrono::Utc>, ValidationError> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| chrono::DateTime::from_timestamp(value.seconds, nanos))
        .ok_or_else(|| ValidationError::Malformed(format!("{value} is not a valid timestamp")))
}
