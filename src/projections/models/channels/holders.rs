//! Who held each office when, from `OfficeHolderChanged` events (retractions and corrections
//! honoured like any contribution): a channel names the people who held its offices at its
//! last contact. An office's holder changes only by such an event, and the channel outlives
//! its holders. Each change has a small row (`holder:<event id>`, with the actors' status, so
//! it stays resident and lists leave it out).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{EventKind, FuzzyTime};
use crate::projections::models::common::{ACTOR_STATUS, Origin};
use crate::projections::{Fact, Row, RowData};

pub(super) const HOLDER_PREFIX: &str = "holder:";

/// One change of an office's holder: from when, who (none: vacant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Tenure {
    pub(super) office: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) occurred: Option<FuzzyTime>,
    pub(super) origin: Origin,
}

impl Tenure {
    /// Its place among the office's changes: when it began (undated: before all), then log
    /// position.
    fn order(&self) -> (DateTime<Utc>, u64) {
        (
            self.occurred
                .as_ref()
                .map_or(DateTime::<Utc>::MIN_UTC, FuzzyTime::earliest),
            self.origin.position,
        )
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Holders {
    /// Office -> its changes, in `Tenure::order`.
    by_office: BTreeMap<String, Vec<Tenure>>,
    /// Change event -> its office.
    offices: HashMap<EventId, String>,
}

impl Holders {
    /// Takes note of a change of holder; returns its office and row key.
    pub(super) fn add(&mut self, fact: &Fact) -> Option<(String, String)> {
        let EventKind::OfficeHolderChanged(change) = &fact.event.kind else {
            return None;
        };
        let tenure = Tenure {
            office: change.office.to_string(),
            holder: change.holder.as_ref().map(ToString::to_string),
            occurred: fact.event.occurred.clone(),
            origin: Origin::of(fact),
        };
        let office = tenure.office.clone();
        self.insert(tenure);
        Some((office, format!("{HOLDER_PREFIX}{}", fact.event_id)))
    }

    fn insert(&mut self, tenure: Tenure) {
        self.offices
            .insert(tenure.origin.event_id, tenure.office.clone());
        let tenures = self.by_office.entry(tenure.office.clone()).or_default();
        let at = tenures.partition_point(|t| t.order() <= tenure.order());
        tenures.insert(at, tenure);
    }

    /// Forgets change `id`; returns its office.
    pub(super) fn remove(&mut self, id: EventId) -> Option<String> {
        let office = self.offices.remove(&id)?;
        if let Some(tenures) = self.by_office.get_mut(&office) {
            tenures.retain(|t| t.origin.event_id != id);
            if tenures.is_empty() {
                self.by_office.remove(&office);
            }
        }
        Some(office)
    }

    /// Who held `office` at `when` (the latest change begun by then; `None`: the latest).
    pub(super) fn holder_at(&self, office: &str, when: Option<DateTime<Utc>>) -> Option<&str> {
        let tenures = self.by_office.get(office)?;
        let tenure = match when {
            Some(when) => tenures.iter().rev().find(|t| t.order().0 <= when)?,
            None => tenures.last()?,
        };
        tenure.holder.as_deref()
    }

    pub(super) fn origins(&self) -> impl Iterator<Item = (&Origin, String)> + '_ {
        self.by_office
            .values()
            .flatten()
            .map(|t| (&t.origin, format!("{HOLDER_PREFIX}{}", t.origin.event_id)))
    }

    pub(super) fn row(&self, key: &str) -> Option<Row> {
        let id = EventId::parse(key.strip_prefix(HOLDER_PREFIX)?).ok()?;
        let office = self.offices.get(&id)?;
        let tenure = self
            .by_office
            .get(office)?
            .iter()
            .find(|t| t.origin.event_id == id)?;
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(tenure).expect("a tenure serializes"),
            actors: tenure
                .holder
                .iter()
                .cloned()
                .chain([office.clone()])
                .collect(),
            states: Vec::new(),
            status: ACTOR_STATUS.to_owned(),
            sort_key: office.clone(),
        })
    }

    pub(super) fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.origins().filter_map(|(_, key)| self.row(&key))
    }

    /// Takes a change's row back; `None` if the row is not one.
    pub(super) fn load(&mut self, row: &Row) -> Option<Result<&Origin, String>> {
        if !row.key.starts_with(HOLDER_PREFIX) {
            return None;
        }
        let tenure: Tenure = match row.decode("holder") {
            Ok(tenure) => tenure,
            Err(e) => return Some(Err(e)),
        };
        let id = tenure.origin.event_id;
        if !self.offices.contains_key(&id) {
            self.insert(tenure);
        }
        let office = &self.offices[&id];
        self.by_office[office]
            .iter()
            .find(|t| t.origin.event_id == id)
            .map(|t| Ok(&t.origin))
    }
}
