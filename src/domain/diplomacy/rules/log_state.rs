//! What the rules know about the log: every event by id (its stream, its kind, whether it is
//! retracted), the events of each stream in order, and the registered actors. Filled by the
//! caller (`observe`, `observe_stored`) and by `check_record` as it accepts events.

use std::collections::HashMap;

use super::streams::Category;
use crate::domain::EventId;
use crate::domain::diplomacy::{
    ActorId, ActorKind, CountryCode, DiplomaticEvent, EventKind, KindName,
};

#[derive(Debug, Clone)]
pub(super) struct ActorFacts {
    pub(super) kind: ActorKind,
    pub(super) country: Option<CountryCode>,
}

#[derive(Debug, Clone)]
pub(super) struct EventFacts {
    pub(super) stream: String,
    /// Its kind; `None` for an event that is not a diplomatic event.
    pub(super) kind: Option<KindName>,
    /// Its kind as messages name it: the name it was observed under.
    pub(super) label: String,
    pub(super) retracted: bool,
}

/// What the rules know about the log: registered actors, events by id, and the kinds of the
/// events of the streams being written, in order.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    pub(super) actors: HashMap<ActorId, ActorFacts>,
    pub(super) events: HashMap<EventId, EventFacts>,
    streams: HashMap<String, Vec<EventId>>,
}

impl LogState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes note of one event of the log. `event` is `None` for an event that is not a
    /// diplomatic event (appended through the generic log); only its kind name is kept.
    pub fn observe(
        &mut self,
        stream_id: &str,
        id: EventId,
        kind_name: &str,
        event: Option<&DiplomaticEvent>,
    ) {
        if self.events.contains_key(&id) {
            return;
        }
        self.events.insert(
            id,
            EventFacts {
                stream: stream_id.to_owned(),
                kind: KindName::parse(kind_name),
                label: kind_name.to_owned(),
                retracted: false,
            },
        );
        self.streams
            .entry(stream_id.to_owned())
            .or_default()
            .push(id);
        match event.map(|event| &event.kind) {
            Some(EventKind::ActorRegistered(registered)) => {
                let actor = &registered.actor;
                self.actors.insert(
                    actor.id.clone(),
                    ActorFacts {
                        kind: actor.kind,
                        country: actor.country,
                    },
                );
            }
            Some(EventKind::EventRetracted(retraction)) => {
                if let Some(target) = self.events.get_mut(&retraction.event) {
                    target.retracted = true;
                }
            }
            _ => {}
        }
    }

    /// Takes note of an event as the log stores it: its type and JSON data, and whether the
    /// recorder wrote it. Only such events count as diplomatic events; any other (a generic
    /// append that happens to use a kind's name) is known by its id, under a label that no
    /// rule accepts as a kind.
    pub fn observe_stored(
        &mut self,
        stream_id: &str,
        id: EventId,
        event_type: &str,
        recorded_as_diplomatic: bool,
        data: &str,
    ) {
        let kind = KindName::parse(event_type);
        if !(recorded_as_diplomatic && kind.is_some()) {
            let label = format!("{event_type} (not a diplomatic event)");
            return self.observe(stream_id, id, &label, None);
        }
        // Only these kinds' payloads add facts; the rest are known by kind, which spares
        // parsing every event of a long stream.
        let payload_matters = matches!(
            kind,
            Some(KindName::ActorRegistered | KindName::EventRetracted)
        );
        let parsed = payload_matters
            .then(|| DiplomaticEvent::from_json_text(data).ok())
            .flatten();
        self.observe(stream_id, id, event_type, parsed.as_ref());
    }

    pub fn knows_event(&self, id: &EventId) -> bool {
        self.events.contains_key(id)
    }

    pub fn knows_actor(&self, id: &ActorId) -> bool {
        self.actors.contains_key(id)
    }

    /// The kinds of a stream's events that still count (not retracted), in order, `None` for
    /// an event that is not a diplomatic event. Corrections, retractions and source reports
    /// are about other events, not steps of the stream's own.
    pub(super) fn live_kinds(&self, stream_id: &str) -> Vec<Option<KindName>> {
        self.streams
            .get(stream_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.events.get(id))
            .filter(|facts| !facts.retracted)
            .filter(|facts| facts.kind.map(KindName::category) != Some(Category::Referenced))
            .map(|facts| facts.kind)
            .collect()
    }
}
