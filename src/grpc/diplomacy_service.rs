//! `diplog.v1.Diplomacy`: recording and reading typed diplomatic events over gRPC.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::convert::{check_events_in_all, expected_version, timestamp};
use super::{bridge, stream_slot};
use crate::auth::access::principal;
use crate::domain::diplomacy::{ActorId, DiplomaticEvent, EventKind};
use crate::domain::limits::AppendLimits;
use crate::domain::{
    EventId, StreamId, ValidationError, ValidationErrors, check_distinct_ids, limits,
};
use crate::proto::{self, diplomacy_server::Diplomacy};
use crate::recorder::{Record, Recorder, is_diplomatic, metadata_time};
use crate::store::{EventFilter, EventStore, RecordedEvent, RecordingInputs};
use crate::stream_limit::StreamLimiter;

type RecordStream = Pin<Box<dyn Stream<Item = Result<proto::DiplomaticRecord, Status>> + Send>>;

pub struct DiplomacyService {
    store: EventStore,
    recorder: Recorder,
    limits: AppendLimits,
    streams: StreamLimiter,
}

impl DiplomacyService {
    /// Records within `limits` (as appends are); reads count against `streams`.
    pub fn new(store: EventStore, limits: AppendLimits, streams: StreamLimiter) -> Self {
        Self {
            recorder: Recorder::new(store.clone(), limits),
            store,
            limits,
            streams,
        }
    }
}

#[tonic::async_trait]
impl Diplomacy for DiplomacyService {
    #[tracing::instrument(skip_all, fields(stream_id = %request.get_ref().stream_id))]
    async fn record(
        &self,
        request: Request<proto::RecordRequest>,
    ) -> Result<Response<proto::AppendResponse>, Status> {
        // Who records comes from the credential the auth layer checked, never from the request.
        let appended_by = principal(&request)?.name.clone();
        let record = parse_record(request.into_inner(), &self.limits)?;
        let outcome = self.recorder.record(record, &appended_by).await?;
        Ok(Response::new(outcome.into()))
    }

    #[tracing::instrument(skip_all, fields(records = request.get_ref().records.len()))]
    async fn record_many(
        &self,
        request: Request<proto::RecordManyRequest>,
    ) -> Result<Response<proto::AppendManyResponse>, Status> {
        let appended_by = principal(&request)?.name.clone();
        let records = parse_records(request.into_inner(), &self.limits)?;
        let outcomes = self
            .recorder
            .record_atomically(records, &appended_by)
            .await?;
        Ok(Response::new(proto::AppendManyResponse {
            appends: outcomes.into_iter().map(Into::into).collect(),
        }))
    }

    type ReadEventsStream = RecordStream;

    #[tracing::instrument(skip_all)]
    async fn read_events(
        &self,
        request: Request<proto::ReadEventsRequest>,
    ) -> Result<Response<Self::ReadEventsStream>, Status> {
        let slot = stream_slot(&self.streams, &request)?;
        let filter = parse_filter(request.into_inner())?;
        let events = self.store.read_filtered(filter).await?;
        let read_bytes = metrics::counter!(crate::monitoring::READ_BYTES, "rpc" => "ReadEvents");
        let records = events
            .map(move |event| {
                let event = event.map_err(Status::from)?;
                read_bytes.increment(event.data_text.len() as u64);
                to_record(event)
            })
            .boxed();
        Ok(Response::new(slot.hold(records).boxed()))
    }

    #[tracing::instrument(skip_all, fields(event_id = %request.get_ref().event_id))]
    async fn get_event(
        &self,
        request: Request<proto::GetEventRequest>,
    ) -> Result<Response<proto::DiplomaticRecord>, Status> {
        let mut errors = ValidationErrors::new();
        let id = errors.check("event_id", EventId::parse(&request.get_ref().event_id));
        let Some(id) = id else {
            return Err(errors.into());
        };
        let found = self.store.events_by_id(&[id.as_uuid()]).await?;
        match found.into_iter().next() {
            Some(event) if is_diplomatic(&event.metadata) => Ok(Response::new(to_record(event)?)),
            _ => Err(Status::not_found(format!(
                "no diplomatic event has id {id}"
            ))),
        }
    }

    #[tracing::instrument(skip_all, fields(
        streams = request.get_ref().stream_ids.len(),
        event_ids = request.get_ref().event_ids.len(),
    ))]
    async fn read_recording_inputs(
        &self,
        request: Request<proto::RecordingInputsRequest>,
    ) -> Result<Response<proto::RecordingInputs>, Status> {
        let request = request.into_inner();
        let mut errors = ValidationErrors::new();
        for (field, count) in [
            ("stream_ids", request.stream_ids.len()),
            ("actor_ids", request.actor_ids.len()),
            ("event_ids", request.event_ids.len()),
            ("full_event_ids", request.full_event_ids.len()),
        ] {
            if count > limits::MAX_RECORDING_INPUTS {
                errors.push(
                    field,
                    ValidationError::TooMany {
                        count,
                        max: limits::MAX_RECORDING_INPUTS,
                    },
                );
            }
        }
        let mut ids = |field: &str, raw: &[String]| -> Vec<uuid::Uuid> {
            raw.iter()
                .enumerate()
                .filter_map(|(index, id)| {
                    errors.check(format!("{field}[{index}]"), EventId::parse(id))
                })
                .map(|id| id.as_uuid())
                .collect()
        };
        let event_ids = ids("event_ids", &request.event_ids);
        let full_event_ids = ids("full_event_ids", &request.full_event_ids);
        // Any string may name an actor; those that cannot be one have no stream to read.
        let actor_streams: Vec<String> = request
            .actor_ids
            .iter()
            .filter_map(|s| ActorId::parse(s.as_str()).ok())
            .map(|id| format!("actor-{id}"))
            .collect();
        if !errors.is_empty() {
            return Err(errors.into());
        }
        let inputs =
            if request.stream_ids.is_empty() && actor_streams.is_empty() && event_ids.is_empty() {
                RecordingInputs::default()
            } else {
                self.store
                    .recording_inputs(&request.stream_ids, &actor_streams, &event_ids)
                    .await?
            };
        let records = if full_event_ids.is_empty() {
            Vec::new()
        } else {
            self.store
                .events_by_id(&full_event_ids)
                .await?
                .into_iter()
                .filter(|event| is_diplomatic(&event.metadata))
                .map(to_record)
                .collect::<Result<_, _>>()?
        };
        Ok(Response::new(proto::RecordingInputs {
            stream_versions: inputs.versions.into_iter().collect(),
            events: inputs
                .events
                .into_iter()
                .map(|event| proto::KnownEvent {
                    stream_id: event.stream_id,
                    event_id: event.event_id.to_string(),
                    r#type: event.event_type,
                    diplomatic: event.diplomatic,
                    data: event.data_text,
                    position: event.position as u64,
                })
                .collect(),
            records,
        }))
    }
}

/// Parses the records of a `RecordMany`, each as `Record` parses it, its errors named under
/// `records[i]`; the events in all within `limits`.
fn parse_records(
    request: proto::RecordManyRequest,
    limits: &AppendLimits,
) -> Result<Vec<Record>, ValidationErrors> {
    const RECORDS: &str = "records";
    check_events_in_all(
        request.records.iter().map(|record| record.events.len()),
        RECORDS,
        limits,
    )?;
    let mut errors = ValidationErrors::new();
    let mut records = Vec::with_capacity(request.records.len());
    for (index, record) in request.records.into_iter().enumerate() {
        match parse_record(record, limits) {
            Ok(record) => records.push(record),
            Err(found) => errors.extend(found.within(&format!("{RECORDS}[{index}]"))),
        }
    }
    errors.into_result(|| records)
}

/// Parses a record request, collecting every problem with its field path. The payloads'
/// size is checked by the recorder, which makes them.
fn parse_record(
    request: proto::RecordRequest,
    limits: &AppendLimits,
) -> Result<Record, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let stream_id = errors.check("stream_id", StreamId::parse(request.stream_id));
    let expected = errors.check(
        "expected_version.exact",
        expected_version(request.expected_version),
    );
    let count = request.events.len();
    if count == 0 {
        errors.push("events", ValidationError::Empty);
    } else if let Err(error) = limits.check_events(count) {
        errors.push("events", error);
        return Err(errors);
    }
    let mut events = Vec::with_capacity(count);
    for (index, event) in request.events.into_iter().enumerate() {
        let id = errors.check(format!("events[{index}].id"), EventId::parse(&event.id));
        let json = bridge::event_to_json(&event);
        match DiplomaticEvent::from_json(json) {
            Ok(event) => {
                if let Some(id) = id {
                    events.push((id, event));
                }
            }
            Err((path, message)) => {
                let field = if path.is_empty() {
                    format!("events[{index}]")
                } else {
                    format!("events[{index}].{path}")
                };
                errors.push(field, ValidationError::Malformed(message));
            }
        }
    }
    if errors.is_empty() {
        // Every event parsed, so `events` lines up with the request's indexes.
        check_distinct_ids(events.iter().map(|(id, _)| *id), &mut errors);
    }
    match (stream_id, expected) {
        (Some(stream_id), Some(expected)) if errors.is_empty() => Ok(Record {
            stream_id,
            expected,
            events,
        }),
        _ => Err(errors),
    }
}

fn parse_filter(request: proto::ReadEventsRequest) -> Result<EventFilter, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let stream_id = (!request.stream_id.is_empty())
        .then(|| errors.check("stream_id", StreamId::parse(request.stream_id)))
        .flatten()
        .map(|id| id.to_string());
    let stream_prefix = errors
        .check(
            "stream_prefix",
            StreamId::parse_prefix(&request.stream_prefix),
        )
        .flatten();
    // At most as many as ReadAll's event types; only those are checked one by one.
    if request.kinds.len() > limits::MAX_TYPE_FILTERS {
        errors.push(
            "kinds",
            ValidationError::TooMany {
                count: request.kinds.len(),
                max: limits::MAX_TYPE_FILTERS,
            },
        );
    }
    let checked = request.kinds.iter().take(limits::MAX_TYPE_FILTERS);
    for (index, kind) in checked.enumerate() {
        if !EventKind::NAMES.contains(&kind.as_str()) {
            errors.push(
                format!("kinds[{index}]"),
                ValidationError::NotAnOption {
                    value: kind.clone(),
                },
            );
        }
    }
    let event_types = if request.kinds.is_empty() {
        EventKind::NAMES
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    } else {
        request.kinds
    };
    let actor = (!request.actor.is_empty())
        .then(|| errors.check("actor", ActorId::parse(request.actor)))
        .flatten()
        .map(|id| id.to_string());
    let mut instant = |field: &str, value: Option<prost_types::Timestamp>| {
        value.and_then(|t| errors.check(field, timestamp(t)))
    };
    let occurred_from = instant("occurred_from", request.occurred_from).map(metadata_time);
    let occurred_until = instant("occurred_until", request.occurred_until).map(metadata_time);
    let recorded_from = instant("recorded_from", request.recorded_from);
    let recorded_until = instant("recorded_until", request.recorded_until);
    errors.into_result(|| EventFilter {
        event_types,
        stream_id,
        stream_prefix,
        after_position: request.after_position,
        occurred_from,
        occurred_until,
        recorded_from,
        recorded_until,
        actor,
        limit: (request.limit > 0).then_some(request.limit),
    })
}

fn to_record(event: RecordedEvent) -> Result<proto::DiplomaticRecord, Status> {
    let typed = bridge::event_from_json_text(&event.data_text, &event.event_id.to_string()).map_err(|(path, message)| {
        tracing::error!(event_id = %event.event_id, path, message, "a stored diplomatic event does not match the proto");
        Status::internal("internal error")
    })?;
    Ok(proto::DiplomaticRecord {
        position: event.position as u64,
        stream_id: event.stream_id,
        stream_version: event.stream_version as u64,
        recorded_at: Some(super::convert::to_timestamp(event.recorded_at)),
        appended_by: event.appended_by,
        event: Some(typed),
    })
}
