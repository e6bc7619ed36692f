//! `summits`: summit preparations, one per `summit-…` stream: proposed, preparation agreed
//! (either with a proposed place and an expected period), scheduled (date and place),
//! postponed, and finally held or cancelled. Pending are those neither held nor cancelled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{EventKind, FuzzyTime, Place, SummitStage};
use crate::projections::models::common::{
    Contributions, Index, Origin, Party, Registry, apply_fact, insert_by_position, party_states,
    remove_steps,
};
use crate::projections::{Fact, Model, Row, RowData};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummitStep {
    pub origin: Origin,
    /// Named by the stage it puts the summit in.
    pub step: SummitStage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    /// The date it is scheduled for (SCHEDULED, or POSTPONED with a new date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<FuzzyTime>,
    /// The place it is scheduled at (SCHEDULED) or proposed for (PROPOSED, PREPARATION_AGREED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// The period it is expected in (PROPOSED, PREPARATION_AGREED), and as worded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<FuzzyTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EventId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summit {
    /// Its stream.
    pub key: String,
    pub parties: Vec<Party>,
    pub steps: Vec<SummitStep>,
}

/// A summit preparation as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummitView {
    pub key: String,
    pub parties: Vec<Party>,
    /// The stage its latest step put it in.
    pub stage: String,
    /// Neither held nor cancelled.
    pub pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<FuzzyTime>,
    pub latest_step: String,
    pub latest_step_by: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_step_on: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    pub evidence: Vec<EventId>,
    /// Until a place is scheduled: the latest place a proposal or preparation step gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposed_place: Option<Place>,
    /// Until it is scheduled: the latest expected period a proposal or preparation step gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_text: Option<String>,
}

impl Summit {
    pub fn stage(&self) -> SummitStage {
        self.steps.last().map_or(SummitStage::Proposed, |s| s.step)
    }

    pub fn view(&self) -> Option<SummitView> {
        let latest = self.steps.last()?;
        let stage = self.stage();
        // The latest date and place it was given, unless it was postponed without a new one.
        let mut scheduled_for = None;
        let mut place = None;
        // Before that, the latest place and period proposed; a period is its date and its
        // wording together, so a step that gives either replaces both.
        let mut proposed_place = None;
        let mut expected = (None, None);
        let mut scheduled = false;
        for step in &self.steps {
            match step.step {
                SummitStage::Scheduled => {
                    scheduled = true;
                    scheduled_for = step.date.clone();
                    place = step.place.clone().or(place);
                }
                SummitStage::Postponed => scheduled_for = step.date.clone(),
                SummitStage::Proposed | SummitStage::PreparationAgreed => {
                    if step.place.is_some() {
                        proposed_place = step.place.clone();
                    }
                    if step.expected.is_some() || step.expected_text.is_some() {
                        expected = (step.expected.clone(), step.expected_text.clone());
                    }
                }
                _ => {}
            }
        }
        // A schedule fixes the date, and the place if it gives one.
        if scheduled {
            expected = (None, None);
        }
        if place.is_some() {
            proposed_place = None;
        }
        let mut evidence: Vec<EventId> = Vec::new();
        for step in &self.steps {
            for id in std::iter::once(&step.origin.event_id).chain(&step.evidence) {
                if !evidence.contains(id) {
                    evidence.push(*id);
                }
            }
        }
        Some(SummitView {
            key: self.key.clone(),
            parties: self.parties.clone(),
            pending: stage.is_pending(),
            stage: stage.as_str().to_owned(),
            since: self.steps.first().and_then(|s| s.occurred.clone()),
            latest_step: latest.step.as_str().to_owned(),
            latest_step_by: latest.origin.event_id,
            latest_step_on: latest.occurred.clone(),
            scheduled_for,
            place,
            evidence,
            proposed_place,
            expected: expected.0,
            expected_text: expected.1,
        })
    }
}

pub(crate) const PREFIX: &str = "summit:";

#[derive(Debug, Default)]
pub struct Summits {
    registry: Registry,
    summits: BTreeMap<String, Summit>,
    index: Index,
}

impl Summits {
    pub fn summits(&self) -> impl Iterator<Item = &Summit> {
        self.summits.values()
    }

    fn refresh_parties(&mut self, key: &str) {
        let registry = &self.registry;
        if let Some(summit) = self.summits.get_mut(key) {
            let ids = summit
                .steps
                .iter()
                .find(|s| !s.parties.is_empty())
                .map(|s| s.parties.clone())
                .unwrap_or_default();
            summit.parties = ids.iter().map(|id| registry.party(id)).collect();
        }
    }
}

impl Contributions for Summits {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let ids = |parties: &[crate::domain::diplomacy::ActorId]| {
            parties.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        let origin = Origin::of(fact);
        // A step of `stage` with nothing else; each kind fills in what it gives.
        let bare = |stage: SummitStage| SummitStep {
            origin: origin.clone(),
            step: stage,
            occurred: fact.event.occurred.clone(),
            date: None,
            place: None,
            expected: None,
            expected_text: None,
            reason: None,
            parties: Vec::new(),
            evidence: fact.event.evidence.clone(),
        };
        let step = match &fact.event.kind {
            EventKind::SummitProposed(s) => SummitStep {
                place: s.place.clone(),
                expected: s.expected.clone(),
                expected_text: s.expected_text.clone(),
                parties: ids(&s.parties),
                ..bare(SummitStage::Proposed)
            },
            EventKind::SummitPreparationAgreed(s) => SummitStep {
                place: s.place.clone(),
                expected: s.expected.clone(),
                expected_text: s.expected_text.clone(),
                parties: ids(&s.parties),
                ..bare(SummitStage::PreparationAgreed)
            },
            EventKind::SummitScheduled(s) => SummitStep {
                date: Some(s.date.clone()),
                place: s.place.clone(),
                ..bare(SummitStage::Scheduled)
            },
            EventKind::SummitPostponed(s) => SummitStep {
                date: s.new_date.clone(),
                reason: s.reason.clone(),
                ..bare(SummitStage::Postponed)
            },
            EventKind::SummitHeld(_) => bare(SummitStage::Held),
            EventKind::SummitCancelled(s) => SummitStep {
                reason: s.reason.clone(),
                ..bare(SummitStage::Cancelled)
            },
            _ => return Vec::new(),
        };
        let key = fact.stream_id.clone();
        let summit = self.summits.entry(key.clone()).or_insert_with(|| Summit {
            key: key.clone(),
            parties: Vec::new(),
            steps: Vec::new(),
        });
        insert_by_position(&mut summit.steps, step, |s| s.origin.position);
        self.refresh_parties(&key);
        let row_key = format!("{PREFIX}{key}");
        self.index.note(&origin, &row_key);
        vec![row_key]
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        let remaining = remove_steps(
            &mut self.summits,
            &keys,
            PREFIX,
            |summit| &mut summit.steps,
            |step| &step.origin,
            id,
        );
        for key in remaining {
            self.refresh_parties(&key);
        }
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Summits {
    const NAME: &'static str = "summits";
    /// 2: steps keep the expected period of a proposal or preparation.
    /// 3: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 3;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        let summit = self.summits.get(key.strip_prefix(PREFIX)?)?;
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(summit).expect("a summit serializes"),
            actors: summit.parties.iter().map(|p| p.id.clone()).collect(),
            states: party_states(&summit.parties),
            status: summit.stage().stored(),
            sort_key: crate::projections::models::common::happened_key(
                summit.steps.first().and_then(|s| s.occurred.as_ref()),
                summit.steps.first().map_or(0, |s| s.origin.position),
            ),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(
                self.summits
                    .keys()
                    .filter_map(|key| self.row(&format!("{PREFIX}{key}"))),
            )
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        for row in rows {
            if model.registry.load(&row)? {
                continue;
            }
            let summit: Summit = row.decode("summit")?;
            for step in &summit.steps {
                model.index.note(&step.origin, &row.key);
            }
            model.summits.insert(summit.key.clone(), summit);
        }
        Ok(model)
    }
}

/// Decodes a summit row.
pub fn summit_of(row: &Row) -> Result<Summit, String> {
    row.decode("summit")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::diplomacy::DiplomaticEvent;
    use crate::projections::testing::{replay, replay_settling, sorted_rows};

    const STREAM: &str = "summit-rus-usa-geneva";

    /// Facts of one summit stream, at positions 1, 2, …
    fn facts(steps: &[Value]) -> Vec<Fact> {
        steps
            .iter()
            .enumerate()
            .map(|(index, step)| {
                let mut json = json!({"occurred": {"day": format!("2025-03-{:02}", index + 1)},
                    "sources": [{"source": "rus.mfa"}]});
                json.as_object_mut()
                    .unwrap()
                    .extend(step.as_object().unwrap().clone());
                Fact {
                    position: index as u64 + 1,
                    stream_id: STREAM.to_owned(),
                    event_id: EventId::from(uuid::Uuid::from_u128(0x5000 + index as u128)),
                    recorded_at: "2025-06-01T00:00:00Z".parse().unwrap(),
                    event: DiplomaticEvent::from_json(json).expect("a valid event"),
                }
            })
            .collect()
    }

    /// The summit's view after `steps`, the same after its rows are reloaded or written by a
    /// runner with a working set.
    fn view_after(steps: &[Value]) -> SummitView {
        let facts = facts(steps);
        let model: Summits = replay(&facts);
        let again = Summits::from_rows(model.rows()).expect("rows load");
        assert_eq!(sorted_rows(&again), sorted_rows(&model));
        assert_eq!(replay_settling::<Summits>(&facts, 1), sorted_rows(&model));
        model.summits().next().unwrap().view().unwrap()
    }

    fn proposed_for_geneva_in_the_spring() -> Value {
        json!({"summit_proposed": {"parties": ["RUS", "USA"], "place": {"name": "Geneva", "country": "CHE"},
            "expected": {"month": "2025-05"}, "expected_text": "in the spring"}})
    }

    fn place_name(place: Option<&Place>) -> Option<&str> {
        place.and_then(|p| p.name.as_deref())
    }

    #[test]
    fn a_proposal_shows_its_place_and_period_until_preparation_gives_others() {
        let view = view_after(&[proposed_for_geneva_in_the_spring()]);
        assert_eq!(view.stage, "PROPOSED");
        assert_eq!(place_name(view.proposed_place.as_ref()), Some("Geneva"));
        assert_eq!(view.expected.unwrap().to_string(), "2025-05");
        assert_eq!(view.expected_text.as_deref(), Some("in the spring"));
        assert_eq!((view.scheduled_for, view.place), (None, None));

        // A period given only in words replaces the whole period; the place stays.
        let view = view_after(&[
            proposed_for_geneva_in_the_spring(),
            json!({"summit_preparation_agreed": {"expected_text": "before the end of the year"}}),
        ]);
        assert_eq!(view.stage, "PREPARATION_AGREED");
        assert_eq!(place_name(view.proposed_place.as_ref()), Some("Geneva"));
        assert_eq!(view.expected, None);
        assert_eq!(
            view.expected_text.as_deref(),
            Some("before the end of the year")
        );

        // Cancelled, it still shows what had been proposed.
        let view = view_after(&[
            proposed_for_geneva_in_the_spring(),
            json!({"summit_preparation_agreed": {"place": {"name": "Vienna"}, "expected": {"day": "2025-06-10"}}}),
            json!({"summit_cancelled": {"reason": "r"}}),
        ]);
        assert_eq!((view.stage.as_str(), view.pending), ("CANCELLED", false));
        assert_eq!(place_name(view.proposed_place.as_ref()), Some("Vienna"));
        assert_eq!(view.expected.unwrap().to_string(), "2025-06-10");
        assert_eq!(view.expected_text, None);
    }

    #[test]
    fn a_schedule_replaces_the_proposed_period_and_a_scheduled_place_the_proposed_one() {
        let view = view_after(&[
            proposed_for_geneva_in_the_spring(),
            json!({"summit_scheduled": {"date": {"day": "2025-05-20"}, "place": {"name": "Vienna"}}}),
        ]);
        assert_eq!(view.stage, "SCHEDULED");
        assert_eq!(view.scheduled_for.unwrap().to_string(), "2025-05-20");
        assert_eq!(place_name(view.place.as_ref()), Some("Vienna"));
        assert_eq!(
            (view.proposed_place, view.expected, view.expected_text),
            (None, None, None)
        );

        // Scheduled without a place: the proposed place is still the one known.
        let view = view_after(&[
            proposed_for_geneva_in_the_spring(),
            json!({"summit_scheduled": {"date": {"day": "2025-05-20"}}}),
        ]);
        assert_eq!(place_name(view.proposed_place.as_ref()), Some("Geneva"));
        assert_eq!((view.expected, view.expected_text), (None, None));
    }

    #[test]
    fn postponed_and_held_keep_working_with_a_proposed_place() {
        let scheduled = [
            proposed_for_geneva_in_the_spring(),
            json!({"summit_scheduled": {"date": {"day": "2025-05-20"}, "place": {"name": "Geneva"}}}),
        ];
        let postponed = [
            scheduled[0].clone(),
            scheduled[1].clone(),
            json!({"summit_postponed": {"new_date": {"month": "2025-09"}}}),
        ];
        let view = view_after(&postponed);
        assert_eq!(view.stage, "POSTPONED");
        assert_eq!(view.scheduled_for.unwrap().to_string(), "2025-09");
        assert_eq!(place_name(view.place.as_ref()), Some("Geneva"));
        assert_eq!(view.expected, None);

        let mut held = postponed.to_vec();
        held.push(json!({"summit_held": {}}));
        let view = view_after(&held);
        assert_eq!((view.stage.as_str(), view.pending), ("HELD", false));
        assert_eq!(view.proposed_place, None);
    }

    #[test]
    fn a_retracted_preparation_gives_back_the_proposal_s_place_and_period() {
        let mut steps = vec![
            proposed_for_geneva_in_the_spring(),
            json!({"summit_preparation_agreed": {"place": {"name": "Vienna"}, "expected_text": "in the autumn"}}),
        ];
        let preparation = EventId::from(uuid::Uuid::from_u128(0x5001));
        steps.push(json!({"event_retracted": {"event": preparation.to_string()}}));
        let view = view_after(&steps);
        assert_eq!(view.stage, "PROPOSED");
        assert_eq!(place_name(view.proposed_place.as_ref()), Some("Geneva"));
        assert_eq!(view.expected_text.as_deref(), Some("in the spring"));
    }
}
