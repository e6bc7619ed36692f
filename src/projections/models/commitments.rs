//! `commitments`: agreed steps, one per `commitment-…` stream: stated, scheduled, fulfilled by
//! a later event, or withdrawn. A commitment still open after its due date is lapsed (derived
//! when answering, since it depends on the time asked about).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{CommitmentStatus, CommitmentStepKind, EventKind, FuzzyTime, Place};
use crate::projections::models::common::{
    Contributions, Index, Origin, Party, Registry, apply_fact, happened_key, insert_by_position,
    party_states, remove_steps,
};
use crate::projections::{Fact, Model, Row, RowData};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitmentStep {
    pub origin: Origin,
    pub step: CommitmentStepKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_text: Option<String>,
    /// SCHEDULED: when and where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// FULFILLED: the event that fulfilled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfilled_by: Option<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EventId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commitment {
    /// Its stream.
    pub key: String,
    pub parties: Vec<Party>,
    pub steps: Vec<CommitmentStep>,
}

/// A commitment as answered at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitmentView {
    pub key: String,
    pub parties: Vec<Party>,
    pub what: String,
    /// PENDING, SCHEDULED, FULFILLED, LAPSED or WITHDRAWN.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stated_on: Option<FuzzyTime>,
    pub stated_by: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_text: Option<String>,
    /// Whole days from when it was stated to the time asked about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfilled_by: Option<EventId>,
    pub evidence: Vec<EventId>,
}

impl Commitment {
    /// The step that stated it (none while only later steps are recorded).
    pub fn stated(&self) -> Option<&CommitmentStep> {
        self.steps
            .iter()
            .find(|s| s.step == CommitmentStepKind::Stated)
    }

    /// Pending, scheduled, fulfilled or withdrawn, by its own events (never lapsed, which is
    /// derived when answering).
    pub fn stored_status(&self) -> CommitmentStatus {
        self.steps
            .iter()
            .rev()
            .find(|s| s.step != CommitmentStepKind::Stated)
            .map_or(CommitmentStatus::Pending, |s| s.step.status_after())
    }

    pub fn view(&self, reference: DateTime<Utc>) -> Option<CommitmentView> {
        let stated = self.stated()?;
        let stored = self.stored_status();
        let open = matches!(
            stored,
            CommitmentStatus::Pending | CommitmentStatus::Scheduled
        );
        let lapsed = open
            && stated
                .due
                .as_ref()
                .is_some_and(|due| due.end() <= reference);
        let last = |step: CommitmentStepKind| self.steps.iter().rev().find(|s| s.step == step);
        let scheduled = last(CommitmentStepKind::Scheduled);
        let fulfilled = last(CommitmentStepKind::Fulfilled);
        let mut evidence: Vec<EventId> = Vec::new();
        for step in &self.steps {
            for id in std::iter::once(&step.origin.event_id)
                .chain(&step.evidence)
                .chain(&step.fulfilled_by)
            {
                if !evidence.contains(id) {
                    evidence.push(*id);
                }
            }
        }
        Some(CommitmentView {
            key: self.key.clone(),
            parties: self.parties.clone(),
            what: stated.what.clone().unwrap_or_default(),
            status: if lapsed {
                CommitmentStatus::Lapsed
            } else {
                stored
            }
            .as_str()
            .to_owned(),
            stated_on: stated.occurred.clone(),
            stated_by: stated.origin.event_id,
            due: stated.due.clone(),
            due_text: stated.due_text.clone(),
            age_days: stated
                .occurred
                .as_ref()
                .map(|t| (reference - t.earliest()).num_days().max(0)),
            scheduled_for: scheduled.and_then(|s| s.date.clone()),
            place: scheduled.and_then(|s| s.place.clone()),
            fulfilled_by: fulfilled.and_then(|s| s.fulfilled_by),
            evidence,
        })
    }
}

pub(crate) const PREFIX: &str = "commitment:";

#[derive(Debug, Default)]
pub struct Commitments {
    registry: Registry,
    commitments: BTreeMap<String, Commitment>,
    index: Index,
}

impl Commitments {
    pub fn commitments(&self) -> impl Iterator<Item = &Commitment> {
        self.commitments.values()
    }

    fn refresh_parties(&mut self, key: &str) {
        let registry = &self.registry;
        if let Some(commitment) = self.commitments.get_mut(key) {
            let ids = commitment
                .stated()
                .map(|s| s.parties.clone())
                .unwrap_or_default();
            commitment.parties = ids.iter().map(|id| registry.party(id)).collect();
        }
    }
}

impl Contributions for Commitments {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let mut step = CommitmentStep {
            origin: Origin::of(fact),
            step: CommitmentStepKind::Stated,
            occurred: fact.event.occurred.clone(),
            parties: Vec::new(),
            what: None,
            due: None,
            due_text: None,
            date: None,
            place: None,
            fulfilled_by: None,
            reason: None,
            evidence: fact.event.evidence.clone(),
        };
        match &fact.event.kind {
            EventKind::CommitmentStated(stated) => {
                step.step = CommitmentStepKind::Stated;
                step.parties = stated.parties.iter().map(ToString::to_string).collect();
                step.what = Some(stated.what.clone());
                step.due = stated.due.clone();
                step.due_text = stated.due_text.clone();
            }
            EventKind::CommitmentScheduled(scheduled) => {
                step.step = CommitmentStepKind::Scheduled;
                step.date = Some(scheduled.date.clone());
                step.place = scheduled.place.clone();
            }
            EventKind::CommitmentFulfilled(fulfilled) => {
                step.step = CommitmentStepKind::Fulfilled;
                step.fulfilled_by = Some(fulfilled.fulfilled_by);
            }
            EventKind::CommitmentWithdrawn(withdrawn) => {
                step.step = CommitmentStepKind::Withdrawn;
                step.reason = withdrawn.reason.clone();
            }
            _ => return Vec::new(),
        }
        let key = fact.stream_id.clone();
        let origin = step.origin.clone();
        let commitment = self
            .commitments
            .entry(key.clone())
            .or_insert_with(|| Commitment {
                key: key.clone(),
                parties: Vec::new(),
                steps: Vec::new(),
            });
        insert_by_position(&mut commitment.steps, step, |s| s.origin.position);
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
            &mut self.commitments,
            &keys,
            PREFIX,
            |commitment| &mut commitment.steps,
            |step| &step.origin,
            id,
        );
        for key in remaining {
            self.refresh_parties(&key);
        }
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Commitments {
    const NAME: &'static str = "commitments";
    /// 2: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 2;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        let commitment = self.commitments.get(key.strip_prefix(PREFIX)?)?;
        let first = commitment.steps.first();
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(commitment).expect("a commitment serializes"),
            actors: commitment.parties.iter().map(|p| p.id.clone()).collect(),
            states: party_states(&commitment.parties),
            status: commitment.stored_status().stored(),
            sort_key: happened_key(
                first.and_then(|s| s.occurred.as_ref()),
                first.map_or(0, |s| s.origin.position),
            ),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(
                self.commitments
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
            let commitment: Commitment = row.decode("commitment")?;
            for step in &commitment.steps {
                model.index.note(&step.origin, &row.key);
            }
            model.commitments.insert(commitment.key.clone(), commitment);
        }
        Ok(model)
    }
}

/// Decodes a commitment row.
pub fn commitment_of(row: &Row) -> Result<Commitment, String> {
    row.decode("commitment")
}
