//! Recording typed diplomatic events. Gathers from the log what the domain's rules need (the
//! whole streams being written, the actors and events the records name), checks the records
//! in order (each seeing the earlier ones), and appends them at exactly the stream versions
//! they were checked against, all in one transaction, so a concurrent writer cannot change a
//! stream between the check and the write. Sits between the transports and the store; holds
//! no SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{SecondsFormat, Utc};
use uuid::Uuid;

use crate::domain::diplomacy::{ActorId, DiplomaticEvent, LogState, check_record};
use crate::domain::{
    AppendBatch, AtomicAppend, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload,
    StreamId, ValidationErrors, limits::AppendLimits,
};
use crate::store::{AppendError, AppendOutcome, EventStore, ReadError};

/// Metadata the recorder adds to every diplomatic event, so reads can filter by them.
pub mod metadata_keys {
    /// Marks an event written by the recorder: only such events count as diplomatic events
    /// (a generic append may use the same type names, but cannot set `diplog.` keys). The
    /// value names the message the data conforms to.
    pub const SCHEMA: &str = "diplog.schema";
    pub const SCHEMA_VALUE: &str = "diplog.v1.DiplomaticEvent";
    /// The earliest instant `occurred` allows (RFC 3339 UTC, microseconds, fixed width).
    pub const OCCURRED_FROM: &str = "diplog.occurred_from";
    /// Just after the latest instant `occurred` allows (same format).
    pub const OCCURRED_END: &str = "diplog.occurred_end";
    /// Every registered actor the event names, space separated, with a space at each end.
    pub const ACTORS: &str = "diplog.actors";
}

/// How often a record is checked again after another writer moved its stream.
const MAX_ATTEMPTS: usize = 5;

/// One record: typed events for one stream.
#[derive(Debug, Clone)]
pub struct Record {
    pub stream_id: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<(EventId, DiplomaticEvent)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The record breaks a rule; each error names its field. Rules about the log's state
    /// (`ValidationError::is_precondition`) are FAILED_PRECONDITION, the rest INVALID_ARGUMENT.
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Read(#[from] ReadError),
}

#[derive(Clone)]
pub struct Recorder {
    store: EventStore,
    limits: AppendLimits,
}

impl Recorder {
    /// Refuses an event whose JSON (its payload) is over `limits.max_payload_bytes`; the
    /// number of events is the caller's to check, before a record gets here.
    pub fn new(store: EventStore, limits: AppendLimits) -> Self {
        Self { store, limits }
    }

    /// Records one stream's events; errors name fields as `events[i]…`.
    #[tracing::instrument(skip_all, fields(stream_id = %record.stream_id, events = record.events.len()))]
    pub async fn record(
        &self,
        record: Record,
        principal: &str,
    ) -> Result<AppendOutcome, RecordError> {
        let mut outcomes = self.record_unit(vec![record], None, principal).await?;
        Ok(outcomes.remove(0))
    }

    /// Records several streams' events in one transaction, all or nothing: the rules see the
    /// records in order (a later record may name an actor or an event an earlier one
    /// creates), and each record's expectation is judged after the earlier ones. Errors name
    /// fields as `records[i].events[j]…`. One outcome per record, in order.
    #[tracing::instrument(skip_all, fields(records = records.len()))]
    pub async fn record_atomically(
        &self,
        records: Vec<Record>,
        principal: &str,
    ) -> Result<Vec<AppendOutcome>, RecordError> {
        self.record_unit(records, Some(RECORDS_FIELD), principal)
            .await
    }

    /// `parts_field`: how errors name the list of records (`None`: one record, named by its
    /// own fields alone).
    async fn record_unit(
        &self,
        records: Vec<Record>,
        parts_field: Option<&str>,
        principal: &str,
    ) -> Result<Vec<AppendOutcome>, RecordError> {
        let records: Vec<Record> = records
            .into_iter()
            .map(|record| Record {
                events: record
                    .events
                    .into_iter()
                    .map(|(id, event)| (id, event.with_default_coding()))
                    .collect(),
                ..record
            })
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut known = self.gather(&records).await?;
            if known.retry {
                // A retry of an earlier record: the store answers it (the original positions,
                // or ALREADY_EXISTS if the content differs); the rules were checked the first time.
                let parts = records
                    .iter()
                    .map(|r| {
                        batch(
                            &r.stream_id,
                            r.expected,
                            &r.events,
                            &known.state,
                            &self.limits,
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return self.append(parts, parts_field, principal).await;
            }
            let now = Utc::now();
            let mut errors = ValidationErrors::new();
            for (index, record) in records.iter().enumerate() {
                let found = check_record(&record.stream_id, &record.events, &mut known.state, now);
                errors.extend(match parts_field {
                    Some(parts) => found.within(&format!("{parts}[{index}]")),
                    None => found,
                });
            }
            if !errors.is_empty() {
                return Err(RecordError::Invalid(errors));
            }
            let mut parts = Vec::with_capacity(records.len());
            for record in &records {
                let version = known
                    .versions
                    .entry(record.stream_id.to_string())
                    .or_default();
                if !record.expected.is_met_by(*version) {
                    return Err(AppendError::WrongExpectedVersion {
                        stream_id: record.stream_id.to_string(),
                        expected: record.expected,
                        current: *version,
                    }
                    .into());
                }
                let expected = ExpectedVersion::Exact(*version);
                *version += record.events.len() as u64;
                parts.push(batch(
                    &record.stream_id,
                    expected,
                    &record.events,
                    &known.state,
                    &self.limits,
                )?);
            }
            match self.append(parts, parts_field, principal).await {
                // Another writer moved a stream after we looked: look again.
                Err(RecordError::Append(AppendError::WrongExpectedVersion { .. }))
                    if attempt < MAX_ATTEMPTS =>
                {
                    continue;
                }
                outcome => return outcome,
            }
        }
    }

    /// One part: a plain append; several: an atomic one.
    async fn append(
        &self,
        parts: Vec<AppendBatch>,
        parts_field: Option<&str>,
        principal: &str,
    ) -> Result<Vec<AppendOutcome>, RecordError> {
        let unit = AtomicAppend::new(parts, parts_field.unwrap_or(RECORDS_FIELD))
            .map_err(RecordError::Invalid)?;
        Ok(self.store.append_atomically(unit, principal).await?)
    }

    /// Loads what the rules need, in one read: the streams being written (their versions and
    /// their own steps: the reports and corrections about their events are not steps, and are
    /// read only where a record names them), the registration of every actor the events could
    /// name (any string that is an actor id), and every event they could name (any string that
    /// is a UUID). So what a record costs grows with the lifecycles it touches, not with how
    /// many sources reported them.
    async fn gather(&self, records: &[Record]) -> Result<Known, RecordError> {
        let events = || records.iter().flat_map(|record| &record.events);
        let strings: BTreeSet<String> = events().flat_map(|(_, event)| event.strings()).collect();
        let actor_streams: Vec<String> = strings
            .iter()
            .filter_map(|s| ActorId::parse(s.as_str()).ok())
            .map(|id| format!("actor-{id}"))
            .collect();
        let mut event_ids: Vec<Uuid> = strings
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
        let own_ids: Vec<Uuid> = events().map(|(id, _)| id.as_uuid()).collect();
        event_ids.extend(&own_ids);
        let target_streams: Vec<String> = records
            .iter()
            .map(|record| record.stream_id.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();

        let inputs = self
            .store
            .recording_inputs(&target_streams, &actor_streams, &event_ids)
            .await?;
        tracing::debug!(
            streams = target_streams.len(),
            events_read = inputs.events.len(),
            "read what the rules need"
        );
        let mut state = LogState::new();
        for event in &inputs.events {
            state.observe_stored(
                &event.stream_id,
                EventId::from(event.event_id),
                &event.event_type,
                event.diplomatic,
                &event.data_text,
            );
        }
        let retry = inputs
            .events
            .iter()
            .any(|event| own_ids.contains(&event.event_id));
        Ok(Known {
            state,
            versions: inputs.versions,
            retry,
        })
    }
}

/// How errors name the records of an atomic record (`RecordManyRequest.records`).
const RECORDS_FIELD: &str = "records";

struct Known {
    state: LogState,
    /// Each stream's version when it was read (absent: 0).
    versions: HashMap<String, u64>,
    /// Some of the records' event ids are already in the log.
    retry: bool,
}

/// Whether a stored event was written by the recorder (see [`metadata_keys::SCHEMA`]).
pub fn is_diplomatic(metadata: &BTreeMap<String, String>) -> bool {
    metadata.get(metadata_keys::SCHEMA).map(String::as_str) == Some(metadata_keys::SCHEMA_VALUE)
}

/// The append for a checked record: each event's JSON as its payload, its kind as its type,
/// and the filterable metadata.
fn batch(
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: &[(EventId, DiplomaticEvent)],
    state: &LogState,
    limits: &AppendLimits,
) -> Result<AppendBatch, RecordError> {
    let mut errors = ValidationErrors::new();
    let mut new_events = Vec::with_capacity(events.len());
    for (index, (id, event)) in events.iter().enumerate() {
        let json = event.to_json().to_string();
        let event_type = errors.check(
            format!("events[{index}]"),
            EventType::parse(event.kind.name()),
        );
        let data = limits
            .check_payload(json.len())
            .and_then(|()| Payload::parse(json));
        let data = errors.check(format!("events[{index}]"), data);
        if let (Some(event_type), Some(data)) = (event_type, data) {
            new_events.push(NewEvent {
                id: *id,
                event_type,
                data,
                metadata: Metadata {
                    correlation_id: None,
                    causation_id: None,
                    values: metadata_for(event, state),
                },
            });
        }
    }
    if !errors.is_empty() {
        return Err(RecordError::Invalid(errors));
    }
    AppendBatch::new(stream_id.clone(), expected, new_events).map_err(RecordError::Invalid)
}

fn metadata_for(event: &DiplomaticEvent, state: &LogState) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    values.insert(
        metadata_keys::SCHEMA.to_owned(),
        metadata_keys::SCHEMA_VALUE.to_owned(),
    );
    if let Some(occurred) = &event.occurred {
        values.insert(
            metadata_keys::OCCURRED_FROM.to_owned(),
            metadata_time(occurred.earliest()),
        );
        values.insert(
            metadata_keys::OCCURRED_END.to_owned(),
            metadata_time(occurred.end()),
        );
    }
    let actors: Vec<String> = event
        .strings()
        .into_iter()
        .filter(|s| ActorId::parse(s.as_str()).is_ok_and(|id| state.knows_actor(&id)))
        .collect();
    if !actors.is_empty() {
        values.insert(
            metadata_keys::ACTORS.to_owned(),
            format!(" {} ", actors.join(" ")),
        );
    }
    values
}

/// The fixed-width text form of an instant used by the `diplog.occurred_*` metadata.
pub fn metadata_time(instant: chrono::DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}
