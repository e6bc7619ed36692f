//! Recording typed diplomatic events. Gathers from the log what the domain's rules need (the
//! whole stream being written, the actors and events the record names), checks the record,
//! and appends it at exactly the stream version it was checked against, so a concurrent
//! writer cannot change the stream between the check and the write. Sits between the
//! transports and the store; holds no SQL.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{SecondsFormat, Utc};
use uuid::Uuid;

use crate::domain::diplomacy::{ActorId, DiplomaticEvent, LogState, check_record};
use crate::domain::{
    AppendBatch, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload, StreamId,
    ValidationErrors, limits::AppendLimits,
};
use crate::store::{AppendError, AppendOutcome, EventStore, ReadError, RecordedEvent};

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

    #[tracing::instrument(skip_all, fields(stream_id = %record.stream_id, events = record.events.len()))]
    pub async fn record(
        &self,
        record: Record,
        principal: &str,
    ) -> Result<AppendOutcome, RecordError> {
        let Record {
            stream_id,
            expected,
            events,
        } = record;
        let events: Vec<(EventId, DiplomaticEvent)> = events
            .into_iter()
            .map(|(id, event)| (id, event.with_default_coding()))
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut known = self.gather(&stream_id, &events).await?;
            if known.retry {
                // A retry of an earlier record: the store answers it (the original positions,
                // or ALREADY_EXISTS if the content differs); the rules were checked the first time.
                let batch = batch(&stream_id, expected, &events, &known.state, &self.limits)?;
                return Ok(self.store.append(batch, principal).await?);
            }
            let errors = check_record(&stream_id, &events, &mut known.state, Utc::now());
            if !errors.is_empty() {
                return Err(RecordError::Invalid(errors));
            }
            if !expected.is_met_by(known.version) {
                return Err(AppendError::WrongExpectedVersion {
                    stream_id: stream_id.to_string(),
                    expected,
                    current: known.version,
                }
                .into());
            }
            let batch = batch(
                &stream_id,
                ExpectedVersion::Exact(known.version),
                &events,
                &known.state,
                &self.limits,
            )?;
            match self.store.append(batch, principal).await {
                // Another writer moved the stream after we looked: look again.
                Err(AppendError::WrongExpectedVersion { .. }) if attempt < MAX_ATTEMPTS => continue,
                outcome => return Ok(outcome?),
            }
        }
    }

    /// Loads what the rules need: the stream being written, in full; every actor the events
    /// could name (any string that is an actor id); every event they could name (any string
    /// that is a UUID).
    async fn gather(
        &self,
        stream_id: &StreamId,
        events: &[(EventId, DiplomaticEvent)],
    ) -> Result<Known, RecordError> {
        let strings: BTreeSet<String> = events
            .iter()
            .flat_map(|(_, event)| event.strings())
            .collect();
        let actor_streams: Vec<String> = strings
            .iter()
            .filter_map(|s| ActorId::parse(s.as_str()).ok())
            .map(|id| format!("actor-{id}"))
            .collect();
        let mut event_ids: Vec<Uuid> = strings
            .iter()
            .filter_map(|s| Uuid::parse_str(s).ok())
            .collect();
        let own_ids: Vec<Uuid> = events.iter().map(|(id, _)| id.as_uuid()).collect();
        event_ids.extend(&own_ids);

        // Three independent reads, run at once. They need not share a snapshot: the log only
        // grows, and the stream being written is guarded by the exact-version append.
        let target_stream = [stream_id.to_string()];
        let (stream, actors, referenced) = tokio::try_join!(
            self.store.whole_streams(&target_stream),
            self.store.whole_streams(&actor_streams),
            self.store.events_by_id(&event_ids),
        )?;
        let mut state = LogState::new();
        let version = stream.len() as u64;
        for event in stream.iter().chain(&actors) {
            observe(&mut state, event);
        }
        let retry = referenced
            .iter()
            .any(|event| own_ids.contains(&event.event_id));
        for event in &referenced {
            observe(&mut state, event);
        }
        Ok(Known {
            state,
            version,
            retry,
        })
    }
}

struct Known {
    state: LogState,
    /// The stream's version when it was read.
    version: u64,
    /// Some of the record's event ids are already in the log.
    retry: bool,
}

/// Whether a stored event was written by the recorder (see [`metadata_keys::SCHEMA`]).
pub fn is_diplomatic(metadata: &BTreeMap<String, String>) -> bool {
    metadata.get(metadata_keys::SCHEMA).map(String::as_str) == Some(metadata_keys::SCHEMA_VALUE)
}

fn observe(state: &mut LogState, event: &RecordedEvent) {
    state.observe_stored(
        &event.stream_id,
        EventId::from(event.event_id),
        &event.event_type,
        is_diplomatic(&event.metadata),
        &event.data_text,
    );
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
