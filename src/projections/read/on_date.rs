//! The second time axis: the state of affairs on a date, as the log knows it. Where `as of`
//! asks what had been *recorded* by a position or time, `on` asks what had *happened* by the
//! end of a day, with every correction recorded since (or up to the `as of`, when both are
//! given). A replay for a date passes the log's facts through [`OnDate`], which lets the
//! models see only what had happened by then.
//!
//! The rules:
//! - An event happened by day D when the latest instant its `occurred` can mean falls by the
//!   end of D (a day in any time zone: the end of D in UTC−12). "March 2025" has happened by
//!   31 March, not yet by 10 March.
//! - An event that gives no date (actors registered, offices filled without a date) is
//!   background: it counts on every date.
//! - A correction counts by its replacement's date: one that moves an event past D takes the
//!   event out, one that moves a later event back to D or before brings it in (under the
//!   original's id and position, as corrections always apply).
//! - A retraction always counts: what it takes back is gone on every date.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::EventId;
use crate::domain::diplomacy::{DiplomaticEvent, EventKind, EventRetracted, FuzzyTime};
use crate::projections::Fact;

/// What had happened by the end of a day.
#[derive(Debug)]
pub struct OnDate {
    /// The end of the day (exclusive), in the last time zone to leave it.
    end: DateTime<Utc>,
    /// Where the events left out as not yet happened were recorded, so that a correction
    /// can bring them in (as its replacement, under the original's position and stream).
    later: HashMap<EventId, Recorded>,
    /// Where each event let in was recorded, so that a correction that moves it past
    /// the date keeps it (under its own position and stream) for a later correction to bring
    /// back. With `later`, about 80 bytes an event: the cost of a replay on a date over a
    /// large log (the events themselves are not held).
    let_in: HashMap<EventId, Recorded>,
}

/// Where an event was recorded: what a fact applied under its id carries.
#[derive(Debug)]
struct Recorded {
    position: u64,
    stream_id: String,
    recorded_at: DateTime<Utc>,
}

impl Recorded {
    fn of(fact: &Fact) -> Self {
        Self {
            position: fact.position,
            stream_id: fact.stream_id.clone(),
            recorded_at: fact.recorded_at,
        }
    }

    /// `event` as a fact recorded here under `id`.
    fn fact(self, event_id: EventId, event: DiplomaticEvent) -> Fact {
        Fact {
            position: self.position,
            stream_id: self.stream_id,
            event_id,
            recorded_at: self.recorded_at,
            event,
        }
    }
}

/// The exclusive end of `date` in the last time zone to leave it: what statuses that depend
/// on time (dormant, lapsed) are judged against for an answer on that date.
pub fn end_of(date: NaiveDate) -> DateTime<Utc> {
    FuzzyTime::day(date, None).end()
}

impl OnDate {
    pub fn new(date: NaiveDate) -> Self {
        Self {
            end: end_of(date),
            later: HashMap::new(),
            let_in: HashMap::new(),
        }
    }

    fn happened(&self, event: &DiplomaticEvent) -> bool {
        event
            .occurred
            .as_ref()
            .is_none_or(|time| time.end() <= self.end)
    }

    /// The event that `fact`, a correction, names though this filter does not know where it
    /// was recorded: one before the filter's first fact, or one it was not given. (A replay
    /// on top of recorded rows starts where every event so far had happened, and is given
    /// only the events that may have happened by the date, and every correction and
    /// retraction.) The caller looks it up for [`Self::place`], so that the correction
    /// applies as in a replay from the log's start.
    pub fn unplaced(&self, fact: &Fact) -> Option<EventId> {
        let EventKind::EventCorrected(correction) = &fact.event.kind else {
            return None;
        };
        let target = correction.event;
        let known = self.later.contains_key(&target) || self.let_in.contains_key(&target);
        (!known).then_some(target)
    }

    /// Notes that `event`, recorded at `position` in `stream_id` at `recorded_at` and not
    /// retracted since, was let in before this filter's first fact (`let_in`), or was left
    /// out as later (an event not given, because it had not happened by the date).
    pub fn place(
        &mut self,
        event: EventId,
        position: u64,
        stream_id: String,
        recorded_at: DateTime<Utc>,
        let_in: bool,
    ) {
        let recorded = Recorded {
            position,
            stream_id,
            recorded_at,
        };
        if let_in {
            self.let_in.insert(event, recorded);
        } else {
            self.later.insert(event, recorded);
        }
    }

    /// Whether an event not a correction or a retraction, dated so, may have happened by
    /// the date: the events a replay on top of recorded rows is given.
    pub fn may_have_happened(&self, occurred: Option<&FuzzyTime>) -> bool {
        occurred.is_none_or(|time| time.end() <= self.end)
    }

    /// What a model applies for `fact` on this date: nothing, `fact` itself, or what it
    /// amounts to on this date.
    pub fn admit(&mut self, fact: Fact) -> Option<Fact> {
        match &fact.event.kind {
            EventKind::EventRetracted(retraction) => {
                self.later.remove(&retraction.event);
                self.let_in.remove(&retraction.event);
                Some(fact)
            }
            EventKind::EventCorrected(correction) => {
                let target = correction.event;
                let replacement = (*correction.replacement).clone();
                if let Some(original) = self.later.remove(&target) {
                    if self.happened(&replacement) {
                        // Moved to the date or before: in, as the original.
                        let fact = original.fact(target, replacement);
                        self.let_in.insert(target, Recorded::of(&fact));
                        return Some(fact);
                    }
                    // Still later.
                    self.later.insert(target, original);
                    return None;
                }
                if self.happened(&replacement) {
                    // In, and still in: the correction applies as recorded.
                    return Some(fact);
                }
                // In, and moved past the date: out, until a correction brings it back.
                if let Some(original) = self.let_in.remove(&target) {
                    self.later.insert(target, original);
                }
                Some(Fact {
                    event: retraction_of(target),
                    ..fact
                })
            }
            _ if self.happened(&fact.event) => {
                self.let_in.insert(fact.event_id, Recorded::of(&fact));
                Some(fact)
            }
            _ => {
                self.later.insert(fact.event_id, Recorded::of(&fact));
                None
            }
        }
    }
}

/// An event that takes `target` out (as a retraction does).
pub(super) fn retraction_of(target: EventId) -> DiplomaticEvent {
    DiplomaticEvent {
        kind: EventKind::EventRetracted(EventRetracted {
            event: target,
            reason: None,
        }),
        occurred: None,
        sources: Vec::new(),
        evidence: Vec::new(),
        coding: None,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diplomacy::EventCorrected;
    use crate::projections::Model;
    use crate::projections::models::channels::Channels;
    use crate::projections::models::commitments::Commitments;
    use crate::projections::models::common::target_of;
    use crate::projections::models::divergence::Divergence;
    use crate::projections::models::relations::Relations;
    use crate::projections::models::summits::Summits;
    use crate::projections::models::timeline::Timeline;
    use crate::projections::testing::{founding_facts, replay, sorted_rows};

    fn day(raw: &str) -> NaiveDate {
        raw.parse().expect("a day")
    }

    /// A model fed what had happened by the end of `on`.
    fn on<M: Model>(facts: &[Fact], on: &str) -> M {
        let mut filter = OnDate::new(day(on));
        let mut model = M::default();
        for fact in facts {
            if let Some(fact) = filter.admit(fact.clone()) {
                model.apply(&fact);
            }
        }
        model
    }

    /// The founding Lavrov–Rubio call.
    fn the_call(facts: &[Fact]) -> &Fact {
        facts
            .iter()
            .find(|f| {
                matches!(f.event.kind, EventKind::CallHeld(_))
                    && f.event
                        .occurred
                        .as_ref()
                        .is_some_and(|t| t.to_string().starts_with("2025-02-15"))
            })
            .expect("the founding scenario has the 15 February call")
    }

    /// A correction of `target` that says it happened on `on`, recorded after `facts`.
    fn moved(facts: &[Fact], target: &Fact, on: &str) -> Fact {
        let mut replacement = target.event.clone();
        replacement.occurred = Some(FuzzyTime::day(day(on), None));
        Fact {
            position: facts.len() as u64 + 1,
            stream_id: target.stream_id.clone(),
            event_id: EventId::generate(),
            recorded_at: target.recorded_at,
            event: DiplomaticEvent {
                kind: EventKind::EventCorrected(EventCorrected {
                    event: target.event_id,
                    replacement: Box::new(replacement),
                    reason: Some("the date was misreported".into()),
                }),
                occurred: None,
                sources: Vec::new(),
                evidence: Vec::new(),
                coding: None,
                note: None,
            },
        }
    }

    fn on_timeline(facts: &[Fact], date: &str, event: EventId) -> bool {
        on::<Timeline>(facts, date)
            .entries()
            .any(|entry| entry.origin.event_id == event)
    }

    #[test]
    fn channels_open_on_the_day_of_their_first_call_and_not_before() {
        let facts = founding_facts();
        let before = on::<Channels>(&facts, "2025-02-11").channels().count();
        let after_presidents = on::<Channels>(&facts, "2025-02-12").channels().count();
        let after_ministers = on::<Channels>(&facts, "2025-02-15").channels().count();
        assert_eq!(before, 0);
        assert!(after_presidents > 0, "the Putin–Trump call of 12 February");
        assert!(after_ministers > after_presidents, "the Lavrov–Rubio call");
        // Undated background (the actors) counts on every day.
        assert!(!sorted_rows(&on::<Channels>(&facts, "1990-01-01")).is_empty());
    }

    #[test]
    fn on_a_day_after_everything_every_model_is_the_whole_replay() {
        fn same<M: Model>(facts: &[Fact]) {
            assert_eq!(
                sorted_rows(&on::<M>(facts, "2030-01-01")),
                sorted_rows(&replay::<M>(facts)),
                "{}",
                M::NAME
            );
        }
        let facts = founding_facts();
        same::<Channels>(&facts);
        same::<Summits>(&facts);
        same::<Commitments>(&facts);
        same::<Timeline>(&facts);
        same::<Relations>(&facts);
        same::<Divergence>(&facts);
    }

    #[test]
    fn a_month_has_happened_by_its_last_day_not_before() {
        let facts = founding_facts();
        let call = the_call(&facts).clone();
        let mut in_march = call.clone();
        in_march.event.occurred =
            Some(serde_json::from_str(r#"{"month": "2025-03"}"#).expect("a month"));
        let mut filter = OnDate::new(day("2025-03-30"));
        assert!(filter.admit(in_march.clone()).is_none());
        let mut filter = OnDate::new(day("2025-03-31"));
        assert!(filter.admit(in_march).is_some());
    }

    #[test]
    fn a_correction_counts_by_its_replacements_date_both_ways() {
        let mut facts = founding_facts();
        let call = the_call(&facts).clone();
        assert!(on_timeline(&facts, "2025-02-20", call.event_id));
        // Moved past 20 February: out on the 20th, in on 10 March.
        let later = moved(&facts, &call, "2025-03-10");
        facts.push(later);
        assert!(!on_timeline(&facts, "2025-02-20", call.event_id));
        assert!(on_timeline(&facts, "2025-03-10", call.event_id));
        assert!(!on_timeline(&facts, "2025-03-09", call.event_id));
        // Moved back: in again, under its own position and stream.
        let back = moved(&facts, &call, "2025-02-15");
        facts.push(back);
        assert!(on_timeline(&facts, "2025-02-20", call.event_id));
        let timeline = on::<Timeline>(&facts, "2025-02-20");
        let entry = timeline
            .entries()
            .find(|entry| entry.origin.event_id == call.event_id)
            .expect("the call");
        assert_eq!(entry.origin.position, call.position);
        assert_eq!(entry.origin.stream_id, call.stream_id);
        // And the whole replay agrees with the latest date.
        assert_eq!(
            sorted_rows(&on::<Timeline>(&facts, "2030-01-01")),
            sorted_rows(&replay::<Timeline>(&facts))
        );
    }

    /// A replay on a day that starts after a prefix every event of which had happened (from
    /// the prefix's rows, as an answer from recorded versions does), told where the events it
    /// did not see were recorded when a correction moves one out: the replay from the start.
    #[test]
    fn a_replay_from_a_prefix_that_had_all_happened_is_the_replay_from_the_start() {
        let mut facts = founding_facts();
        let call = the_call(&facts).clone();
        let out = moved(&facts, &call, "2025-03-10");
        facts.push(out);
        let back = moved(&facts, &call, "2025-02-14");
        facts.push(back);
        let date = "2025-02-20";
        let all_in = |filter: &mut OnDate, fact: &Fact| {
            filter.admit(fact.clone()).is_some_and(|admitted| {
                serde_json::to_string(&admitted.event).ok()
                    == serde_json::to_string(&fact.event).ok()
            })
        };
        let mut probe = OnDate::new(day(date));
        let prefix = facts.iter().take_while(|f| all_in(&mut probe, f)).count();
        assert!(
            prefix
                > facts
                    .iter()
                    .position(|f| f.event_id == call.event_id)
                    .unwrap(),
            "the call is in the prefix"
        );
        assert!(prefix < facts.len(), "the correction moving it out is not");
        // The tail as a replay on top of recorded rows is given it: without the events that
        // had not happened by the date (none here but the corrections' targets, moved).
        let from_prefix = |seeded: bool| {
            let mut model: Timeline = replay(&facts[..prefix]);
            let mut filter = OnDate::new(day(date));
            for fact in &facts[prefix..] {
                if target_of(fact).is_none()
                    && !filter.may_have_happened(fact.event.occurred.as_ref())
                {
                    continue;
                }
                if let Some(target) = filter.unplaced(fact)
                    && seeded
                {
                    let original = facts.iter().find(|f| f.event_id == target).unwrap();
                    filter.place(
                        target,
                        original.position,
                        original.stream_id.clone(),
                        original.recorded_at,
                        original.position <= facts[prefix - 1].position,
                    );
                }
                if let Some(fact) = filter.admit(fact.clone()) {
                    model.apply(&fact);
                }
            }
            sorted_rows(&model)
        };
        let from_start = sorted_rows(&on::<Timeline>(&facts, date));
        assert_eq!(from_prefix(true), from_start);
        // Without being told, the call brought back would be lost.
        assert_ne!(from_prefix(false), from_start);
    }

    #[test]
    fn a_retraction_takes_an_event_out_on_every_day() {
        let mut facts = founding_facts();
        let call = the_call(&facts).clone();
        facts.push(Fact {
            position: facts.len() as u64 + 1,
            stream_id: call.stream_id.clone(),
            event_id: EventId::generate(),
            recorded_at: call.recorded_at,
            event: retraction_of(call.event_id),
        });
        for date in ["2025-02-10", "2025-02-15", "2030-01-01"] {
            assert!(!on_timeline(&facts, date, call.event_id), "{date}");
        }
    }
}
