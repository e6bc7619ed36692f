//! The rules a record must follow: the stream it goes into, the actors and events it names,
//! the lifecycle of channels, summits, commitments and invitations, and times. Rules about the
//! input alone need nothing else; rules about the log read a [`LogState`]: the part of the log
//! the record refers to, gathered by the caller (from PostgreSQL on the server, from the server
//! and the file itself in the importer).
//!
//! This module checks a record event by event (`check_record`, `Check::event`); what each
//! check decides lives in its own file:
//! - `log_state.rs`: what the rules know about the log (the events by id and kind, which are
//!   retracted, the streams' events, the registered actors);
//! - `streams.rs`: stream categories and names, and which stream an event goes into;
//! - `envelope.rs`: the envelope of one event: its dates, sources, evidence and coding;
//! - `actors.rs`: the actors an event names (registered, of the right kind), actor
//!   registrations, participants, parties and initiators;
//! - `references.rs`: the events an event names, retractions and corrections;
//! - `fields.rs`: what each kind's own fields must say;
//! - `lifecycles.rs`: the lifecycles of channels, summits, commitments, invitations and actors.

mod actors;
mod envelope;
mod fields;
mod lifecycles;
pub(super) mod log_state;
mod references;
pub(super) mod streams;

use chrono::{DateTime, Utc};

use crate::domain::diplomacy::DiplomaticEvent;
use crate::domain::{EventId, StreamId, ValidationError, ValidationErrors};

use log_state::LogState;

/// Checks the events of one record, in order, against the log as `state` knows it, and takes
/// note of each valid event in `state` so later events of the same record can refer to it.
/// `now` is the recorded time: nothing may have happened after it.
pub fn check_record(
    stream_id: &StreamId,
    events: &[(EventId, DiplomaticEvent)],
    state: &mut LogState,
    now: DateTime<Utc>,
) -> ValidationErrors {
    let mut errors = ValidationErrors::new();
    for (index, (id, event)) in events.iter().enumerate() {
        let before = errors.errors().len();
        let mut check = Check {
            stream_id: stream_id.as_str(),
            field: format!("events[{index}]"),
            state,
            now,
            errors: &mut errors,
        };
        check.event(event, true);
        if errors.errors().len() == before {
            state.observe(stream_id.as_str(), *id, event.kind.name(), Some(event));
        }
    }
    errors
}

/// The check of one event of a record (or of a correction's replacement): what it is checked
/// against, and where its faults go. Each rule is a method of it, in the file of what it
/// decides.
struct Check<'a> {
    stream_id: &'a str,
    /// The path of the event being checked, e.g. `events[2]`.
    field: String,
    state: &'a LogState,
    now: DateTime<Utc>,
    errors: &'a mut ValidationErrors,
}

impl Check<'_> {
    fn at(&self, path: &str) -> String {
        if path.is_empty() {
            self.field.clone()
        } else {
            format!("{}.{path}", self.field)
        }
    }

    fn fail(&mut self, path: &str, error: ValidationError) {
        let field = self.at(path);
        self.errors.push(field, error);
    }

    /// `top_level` is false for a correction's replacement, which is not recorded in a stream
    /// of its own.
    fn event(&mut self, event: &DiplomaticEvent, top_level: bool) {
        let kind = event.kind_field();
        self.envelope(event, &kind);
        if top_level {
            self.stream_fits(event);
        }
        self.actors_known(event, &kind);
        self.events_known(event, &kind);
        self.kind_rules(event, &kind);
        if top_level {
            self.lifecycle(event);
        }
    }
}

#[cfg(test)]
mod tests;
