//! An atomic append across streams: several appends written in one transaction, all or
//! nothing. An occurrence, the agreements stated in it and the commitments they create live in
//! different streams; recording them as one unit means a failure between them cannot leave
//! half an occurrence in the log.

use std::collections::HashMap;

use super::event::{AppendBatch, EventId, limits};
use super::validation::{ValidationError, ValidationErrors};

/// Appends to one or more streams, each with its own expected version, written in order as if
/// one after another (a stream may appear more than once: a later part's expectation is judged
/// after the earlier parts), and committed together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicAppend {
    parts: Vec<AppendBatch>,
}

impl AtomicAppend {
    /// One append to one stream.
    pub fn single(batch: AppendBatch) -> Self {
        Self { parts: vec![batch] }
    }

    /// Checks the rules that span parts: at least one part, at most
    /// `MAX_EVENTS_PER_APPEND` events in all, each event id used once across all parts.
    /// `parts_field` names the request's list of parts in errors (`appends`, `records`).
    pub fn new(parts: Vec<AppendBatch>, parts_field: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let events: usize = parts.iter().map(|part| part.events().len()).sum();
        if parts.is_empty() {
            errors.push(parts_field, ValidationError::Empty);
        } else if events > limits::MAX_EVENTS_PER_APPEND {
            errors.push(
                parts_field,
                ValidationError::TooManyEventsInAll {
                    count: events,
                    max: limits::MAX_EVENTS_PER_APPEND,
                },
            );
        }
        check_distinct_ids_across(&parts, parts_field, &mut errors);
        errors.into_result(|| Self { parts })
    }

    pub fn parts(&self) -> &[AppendBatch] {
        &self.parts
    }

    /// Events in all parts.
    pub fn event_count(&self) -> usize {
        self.parts.iter().map(|part| part.events().len()).sum()
    }

    /// Every event of every part, in order.
    pub fn events(&self) -> impl Iterator<Item = &super::NewEvent> {
        self.parts.iter().flat_map(AppendBatch::events)
    }
}

/// Records an error for each event id that an earlier part already used (ids repeated within
/// one part are that part's own error, found when it was built).
fn check_distinct_ids_across(
    parts: &[AppendBatch],
    parts_field: &str,
    errors: &mut ValidationErrors,
) {
    let mut first_use: HashMap<EventId, (usize, usize)> = HashMap::new();
    for (part_index, part) in parts.iter().enumerate() {
        for (index, event) in part.events().iter().enumerate() {
            match first_use.get(&event.id) {
                Some(&(first_part, first_index)) if first_part != part_index => errors.push(
                    format!("{parts_field}[{part_index}].events[{index}].id"),
                    ValidationError::EventIdUsedBefore {
                        id: event.id.as_uuid(),
                        first: format!("{parts_field}[{first_part}].events[{first_index}]"),
                    },
                ),
                Some(_) => {}
                None => {
                    first_use.insert(event.id, (part_index, index));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ExpectedVersion, Metadata, NewEvent, Payload, StreamId};
    use super::*;
    use crate::domain::EventType;

    fn batch(stream: &str, ids: &[u128]) -> AppendBatch {
        let events = ids
            .iter()
            .map(|&id| NewEvent {
                id: EventId::from(uuid::Uuid::from_u128(id)),
                event_type: EventType::parse("Noted").unwrap(),
                data: Payload::parse("{}".to_owned()).unwrap(),
                metadata: Metadata::default(),
            })
            .collect();
        AppendBatch::new(
            StreamId::parse(stream).unwrap(),
            ExpectedVersion::Any,
            events,
        )
        .unwrap()
    }

    #[test]
    fn parts_may_name_a_stream_twice_but_not_an_event_id() {
        let atomic = AtomicAppend::new(vec![batch("a", &[1, 2]), batch("a", &[3])], "appends");
        assert_eq!(atomic.unwrap().event_count(), 3);

        let errors =
            AtomicAppend::new(vec![batch("a", &[1, 2]), batch("b", &[2])], "records").unwrap_err();
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].field, "records[1].events[0].id");
        assert!(
            errors.errors()[0]
                .error
                .to_string()
                .contains("records[0].events[1]"),
            "{errors}"
        );
    }

    #[test]
    fn an_empty_unit_and_one_over_the_ceiling_are_refused() {
        let errors = AtomicAppend::new(vec![], "appends").unwrap_err();
        assert_eq!(errors.errors()[0].field, "appends");

        let parts: Vec<AppendBatch> = (0..3)
            .map(|part| {
                let ids: Vec<u128> = (0..400).map(|i| part * 1000 + i + 1).collect();
                batch(&format!("s{part}"), &ids)
            })
            .collect();
        let errors = AtomicAppend::new(parts, "appends").unwrap_err();
        assert_eq!(errors.errors()[0].field, "appends");
        assert!(errors.to_string().contains("1200"), "{errors}");
    }
}
