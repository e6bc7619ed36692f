//! `summits`: summit preparations, one per `summit-…` stream: proposed, preparation agreed,
//! scheduled (date and place), postponed, and finally held or cancelled. Pending are those
//! neither held nor cancelled.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{EventKind, FuzzyTime, Place, SummitStage};
use crate::projections::models::common::{
    Contributions, Index, Origin, Party, Registry, apply_fact, insert_by_position, party_states,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
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
        for step in &self.steps {
            match step.step {
                SummitStage::Scheduled => {
                    scheduled_for = step.date.clone();
                    place = step.place.clone().or(place);
                }
                SummitStage::Postponed => scheduled_for = step.date.clone(),
                _ => {}
            }
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
        })
    }
}

const PREFIX: &str = "summit:";

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
        let (step, date, place, reason, parties) = match &fact.event.kind {
            EventKind::SummitProposed(s) => (
                SummitStage::Proposed,
                None,
                s.place.clone(),
                None,
                ids(&s.parties),
            ),
            EventKind::SummitPreparationAgreed(s) => (
                SummitStage::PreparationAgreed,
                None,
                None,
                None,
                ids(&s.parties),
            ),
            EventKind::SummitScheduled(s) => (
                SummitStage::Scheduled,
                Some(s.date.clone()),
                s.place.clone(),
                None,
                Vec::new(),
            ),
            EventKind::SummitPostponed(s) => (
                SummitStage::Postponed,
                s.new_date.clone(),
                None,
                s.reason.clone(),
                Vec::new(),
            ),
            EventKind::SummitHeld(_) => (SummitStage::Held, None, None, None, Vec::new()),
            EventKind::SummitCancelled(s) => (
                SummitStage::Cancelled,
                None,
                None,
                s.reason.clone(),
                Vec::new(),
            ),
            _ => return Vec::new(),
        };
        let key = fact.stream_id.clone();
        let origin = Origin::of(fact);
        let summit = self.summits.entry(key.clone()).or_insert_with(|| Summit {
            key: key.clone(),
            parties: Vec::new(),
            steps: Vec::new(),
        });
        insert_by_position(
            &mut summit.steps,
            SummitStep {
                origin: origin.clone(),
                step,
                occurred: fact.event.occurred.clone(),
                date,
                place,
                reason,
                parties,
                evidence: fact.event.evidence.clone(),
            },
            |s| s.origin.position,
        );
        self.refresh_parties(&key);
        let row_key = format!("{PREFIX}{key}");
        self.index.note(&origin, &row_key);
        vec![row_key]
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        for key in &keys {
            let summit_key = key.trim_start_matches(PREFIX).to_owned();
            if let Some(summit) = self.summits.get_mut(&summit_key) {
                summit.steps.retain(|s| s.origin.event_id != id);
                if summit.steps.is_empty() {
                    self.summits.remove(&summit_key);
                } else {
                    self.refresh_parties(&summit_key);
                }
            }
        }
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Summits {
    const NAME: &'static str = "summits";
    const VERSION: i32 = 1;

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
