//! The events an event names: its evidence, what a statement is about, the meeting a summit
//! was held at, what fulfilled a commitment, the occurrence a source report is of; and the
//! retractions and corrections of events (what they may take back or replace; a replacement
//! follows the rules of its kind).

use super::Check;
use super::streams::Category;
use crate::domain::diplomacy::{DiplomaticEvent, EventKind, KindName};
use crate::domain::{EventId, ValidationError};

/// What kind of event a reference must name: a description for the message, and the test on
/// the named event's kind (`None`: not a diplomatic event).
type KindExpectation<'e> = (&'e str, &'e dyn Fn(Option<KindName>) -> bool);

impl Check<'_> {
    /// An event that `path` names: it must be in the log, and (if `expected` is given) one of
    /// those kinds or categories. Whether the log holds it.
    fn event_ref(&mut self, path: &str, id: &EventId, expected: Option<KindExpectation>) -> bool {
        match self.state.events.get(id) {
            None => {
                self.fail(path, ValidationError::UnknownEvent { id: id.to_string() });
                false
            }
            Some(facts) => {
                if let Some((description, accepts)) = expected
                    && !accepts(facts.kind)
                {
                    let actual = facts.label.clone();
                    self.fail(
                        path,
                        ValidationError::WrongEventKind {
                            id: id.to_string(),
                            expected: description.to_owned(),
                            actual,
                        },
                    );
                }
                true
            }
        }
    }

    pub(super) fn events_known(&mut self, event: &DiplomaticEvent, kind: &str) {
        use EventKind as K;
        for (index, id) in event.evidence.iter().enumerate() {
            self.event_ref(&format!("evidence[{index}]"), id, None);
        }
        let is_occurrence =
            |kind: Option<KindName>| kind.map(KindName::category) == Some(Category::Occurrence);
        let k = |field: &str| format!("{kind}.{field}");
        match &event.kind {
            K::StatementIssued(statement) => {
                if let Some(about) = &statement.about {
                    self.event_ref(&k("about"), about, Some(("an occurrence", &is_occurrence)));
                }
            }
            K::SummitHeld(held) => {
                if let Some(meeting) = &held.meeting {
                    self.event_ref(
                        &k("meeting"),
                        meeting,
                        Some(("a MeetingHeld", &|kind| kind == Some(KindName::MeetingHeld))),
                    );
                }
            }
            K::CommitmentFulfilled(fulfilment) => {
                // A coded record says that something of a type happened between two actors,
                // not that an agreed step was taken: it cannot fulfil a commitment by itself
                // (a readout of the step, or a typed interaction, can).
                let fulfils = |kind: Option<KindName>| {
                    is_occurrence(kind) && kind != Some(KindName::CodedEventReported)
                };
                self.event_ref(
                    &k("fulfilled_by"),
                    &fulfilment.fulfilled_by,
                    Some(("an occurrence that is not a coded record", &fulfils)),
                );
            }
            K::SourceReportAttached(attached) => {
                self.event_ref(
                    &k("occurrence"),
                    &attached.occurrence,
                    Some(("an occurrence", &is_occurrence)),
                );
            }
            K::EventRetracted(retraction) => {
                let not_referenced = |kind: Option<KindName>| {
                    kind.map(KindName::category) != Some(Category::Referenced)
                };
                if self.event_ref(
                    &k("event"),
                    &retraction.event,
                    Some((
                        "an event that is not itself a correction or report",
                        &not_referenced,
                    )),
                ) && self
                    .state
                    .events
                    .get(&retraction.event)
                    .is_some_and(|facts| facts.retracted)
                {
                    self.fail(
                        &k("event"),
                        ValidationError::LifecycleViolation {
                            kind: KindName::EventRetracted.to_string(),
                            stream: self.stream_id.to_owned(),
                            reason: format!("event {} is already retracted", retraction.event),
                        },
                    );
                }
            }
            K::EventCorrected(correction) => {
                let replacement_kind = correction.replacement.kind.kind_name();
                if correction.replacement.kind.category() == Category::Referenced {
                    self.fail(
                        &k("replacement"),
                        ValidationError::Malformed(
                            "a replacement cannot itself be a correction, retraction or report"
                                .into(),
                        ),
                    );
                } else {
                    let same_kind = move |kind: Option<KindName>| kind == Some(replacement_kind);
                    let description = format!("a {replacement_kind} (the replacement's kind)");
                    self.event_ref(
                        &k("event"),
                        &correction.event,
                        Some((&description, &same_kind)),
                    );
                }
                // The replacement follows the same rules as any event of its kind.
                let inner = self.at(&k("replacement"));
                let outer = std::mem::replace(&mut self.field, inner);
                self.event(&correction.replacement, false);
                self.field = outer;
            }
            _ => {}
        }
    }
}
