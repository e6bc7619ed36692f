//! How the careful path decides each append of a group against what is already written (in
//! the database or earlier in the same group): an idempotent replay of one earlier append, a
//! conflict (an event id reused with other content, a partial retry, a retry that is not one
//! earlier append), a wrong expected version, or new positions and stream versions. An atomic
//! append of several parts is decided part by part and stands or falls as a whole. No SQL:
//! `group` fetches what is written and writes what is decided.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::{AppendBatch, AtomicAppend, NewEvent, json};
use crate::store::{AppendError, AppendOutcome, RecordedEvent};

/// Where an event id already lives: in the database, or earlier in this group.
pub(super) struct WrittenEvent {
    pub(super) position: i64,
    pub(super) stream_id: String,
    pub(super) stream_version: i64,
    pub(super) event_type: String,
    pub(super) data_text: String,
    pub(super) correlation_id: Option<Uuid>,
    pub(super) causation_id: Option<Uuid>,
    pub(super) metadata: std::collections::BTreeMap<String, String>,
    /// On an append's first event, how many events the append wrote; 0 on its other events;
    /// `None` where the log does not know (events written before it recorded this, or
    /// restored from an export).
    pub(super) append_events: Option<i32>,
}

impl WrittenEvent {
    /// `event` as written, with its `append_events` column.
    pub(super) fn from_recorded(event: RecordedEvent, append_events: Option<i32>) -> Self {
        Self {
            append_events,
            position: event.position,
            stream_id: event.stream_id,
            stream_version: event.stream_version,
            event_type: event.event_type,
            data_text: event.data_text,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            metadata: event.metadata.0,
        }
    }

    /// Why `event` (appended to `stream_id`) is not the event written before, if it is not.
    /// Payloads compare as JSON values, as jsonb compares them (numbers by value: `1` and
    /// `1.0` are equal), so a retry that re-serializes its JSON still matches.
    fn difference(&self, stream_id: &str, event: &NewEvent) -> Option<&'static str> {
        if self.stream_id != stream_id {
            Some("another stream")
        } else if self.event_type != event.event_type.as_str() {
            Some("another type")
        } else if !json::same_value(&self.data_text, event.data.as_str()) {
            Some("another payload")
        } else if self.correlation_id != event.metadata.correlation_id
            || self.causation_id != event.metadata.causation_id
            || self.metadata != event.metadata.values
        {
            Some("other metadata")
        } else {
            None
        }
    }
}

/// Decides an atomic append part by part, each part seeing the versions the earlier ones
/// leave: all parts new (consecutive positions), or all parts replays of earlier appends. Any
/// part's conflict fails the whole unit, and so does a mix of replayed and new parts (a retry
/// must repeat the whole unit); `versions` and `next_position` are then as they were.
pub(super) fn plan_unit(
    unit: &AtomicAppend,
    written: &HashMap<Uuid, WrittenEvent>,
    versions: &mut HashMap<String, i64>,
    next_position: &mut i64,
) -> Result<Vec<AppendOutcome>, AppendError> {
    let position_before = *next_position;
    let mut versions_before: Vec<(&str, Option<i64>)> = Vec::with_capacity(unit.parts().len());
    let mut outcomes = Vec::with_capacity(unit.parts().len());
    let mut failure = None;
    for part in unit.parts() {
        let stream_id = part.stream_id().as_str();
        versions_before.push((stream_id, versions.get(stream_id).copied()));
        match plan_append(part, written, versions, next_position) {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let replays = outcomes.iter().filter(|o| o.idempotent_replay).count();
    if failure.is_none() && replays != 0 && replays != outcomes.len() {
        let (replayed, new): (Vec<_>, Vec<_>) = unit
            .parts()
            .iter()
            .zip(&outcomes)
            .partition(|(_, outcome)| outcome.idempotent_replay);
        let ids = |parts: Vec<(&AppendBatch, &AppendOutcome)>| {
            parts
                .into_iter()
                .flat_map(|(part, _)| part.events().iter().map(|e| e.id.as_uuid()))
                .collect()
        };
        failure = Some(AppendError::PartialRetry {
            written: ids(replayed),
            unwritten: ids(new),
        });
    }
    match failure {
        None => Ok(outcomes),
        Some(error) => {
            // Undo in reverse, so a stream named twice ends at its version before the first.
            for (stream_id, version) in versions_before.into_iter().rev() {
                match version {
                    Some(version) => versions.insert(stream_id.to_owned(), version),
                    None => versions.remove(stream_id),
                };
            }
            *next_position = position_before;
            Err(error)
        }
    }
}

/// Decides one append against what is written (in the database or earlier in the group):
/// an idempotent replay, a conflict, or new positions and versions. Changes `versions` and
/// `next_position` only when it answers new positions.
fn plan_append(
    batch: &AppendBatch,
    written: &HashMap<Uuid, WrittenEvent>,
    versions: &mut HashMap<String, i64>,
    next_position: &mut i64,
) -> Result<AppendOutcome, AppendError> {
    let stream_id = batch.stream_id().as_str();
    let (seen, unseen): (Vec<&NewEvent>, Vec<&NewEvent>) = batch
        .events()
        .iter()
        .partition(|event| written.contains_key(&event.id.as_uuid()));
    if !seen.is_empty() {
        for event in &seen {
            let earlier = &written[&event.id.as_uuid()];
            if let Some(difference) = earlier.difference(stream_id, event) {
                return Err(AppendError::EventIdReused {
                    event_id: event.id.as_uuid(),
                    difference: difference.to_owned(),
                });
            }
        }
        if !unseen.is_empty() {
            return Err(AppendError::PartialRetry {
                written: seen.iter().map(|e| e.id.as_uuid()).collect(),
                unwritten: unseen.iter().map(|e| e.id.as_uuid()).collect(),
            });
        }
        let earlier: Vec<&WrittenEvent> = seen.iter().map(|e| &written[&e.id.as_uuid()]).collect();
        if !repeats_one_append(&earlier) {
            return Err(AppendError::NotOneAppend {
                event_ids: seen.iter().map(|e| e.id.as_uuid()).collect(),
            });
        }
        return Ok(AppendOutcome {
            stream_version: earlier.iter().map(|e| e.stream_version).max().unwrap_or(0) as u64,
            positions: earlier.iter().map(|e| e.position as u64).collect(),
            idempotent_replay: true,
        });
    }

    let current = versions.get(stream_id).copied().unwrap_or(0);
    if !batch.expected().is_met_by(current as u64) {
        return Err(AppendError::WrongExpectedVersion {
            stream_id: stream_id.to_owned(),
            expected: batch.expected(),
            current: current as u64,
        });
    }
    let count = batch.events().len() as i64;
    let first = *next_position + 1;
    *next_position += count;
    versions.insert(stream_id.to_owned(), current + count);
    Ok(AppendOutcome {
        stream_version: (current + count) as u64,
        positions: (first..first + count).map(|p| p as u64).collect(),
        idempotent_replay: false,
    })
}

/// Whether `earlier` (the events a retry repeats, in its order) are exactly the events of one
/// earlier append, in that append's order: consecutive positions from an append's first event,
/// as many as it wrote. Where the log does not know an event's append (`append_events` is
/// `None`), every id written with the same content has to do.
fn repeats_one_append(earlier: &[&WrittenEvent]) -> bool {
    let Some(first) = earlier.first() else {
        return false;
    };
    if earlier.iter().any(|event| event.append_events.is_none()) {
        return true;
    }
    first.append_events == Some(earlier.len() as i32)
        && earlier
            .iter()
            .zip(first.position..)
            .all(|(event, position)| event.position == position)
}
