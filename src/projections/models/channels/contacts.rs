//! A channel's contacts: what they add up to (`ContactSummary`, kept in the channel's row) and,
//! while they are in memory, their index (`ContactIndex`), from which a summary is computed
//! again when one is taken out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Contact;
use crate::domain::EventId;
use crate::domain::diplomacy::FuzzyTime;
use crate::projections::models::common::happened_key;

/// What a channel's contacts add up to. Kept in the channel's row instead of the contacts
/// themselves, so the row stays the same size however often the channel is used (each
/// contact has a small row of its own, for corrections and retractions).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContactSummary {
    pub count: u32,
    /// The earliest contact (by when it happened, then position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<Contact>,
    /// The latest contact (by when it happened, then position).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Contact>,
    /// The most recently recorded contacts, newest last (at most `LATEST_CONTACTS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latest: Vec<EventId>,
    /// The end of the latest time any contact can mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<DateTime<Utc>>,
}

/// How many recent contacts a channel lists as evidence (besides its own events and its
/// first and last contact).
pub const LATEST_CONTACTS: usize = 10;

/// A channel's contacts, indexed so that adding or removing one is logarithmic.
#[derive(Debug, Clone, Default)]
pub(super) struct ContactIndex {
    /// By `happened_key` (when, then position).
    pub(super) by_when: BTreeMap<String, Contact>,
    /// By position: the most recently recorded.
    by_position: BTreeMap<u64, EventId>,
    /// By the end of the time each can mean.
    by_end: BTreeSet<(DateTime<Utc>, u64)>,
}

impl ContactSummary {
    /// The summary with one more contact: what `ContactIndex::summary` gives after inserting
    /// it, without needing the channel's other contacts in memory.
    pub(super) fn add(&mut self, contact: &Contact) {
        let position = contact.origin.position;
        let when = happened_key(contact.occurred.as_ref(), position);
        let key_of = |c: &Contact| happened_key(c.occurred.as_ref(), c.origin.position);
        self.count += 1;
        if self.first.as_ref().is_none_or(|first| when < key_of(first)) {
            self.first = Some(contact.clone());
        }
        if self.last.as_ref().is_none_or(|last| when > key_of(last)) {
            self.last = Some(contact.clone());
        }
        if let Some(end) = contact.occurred.as_ref().map(FuzzyTime::end) {
            self.last_used = Some(self.last_used.map_or(end, |used| used.max(end)));
        }
        // `latest` is by position, and this contact was recorded after all the others.
        self.latest.push(contact.origin.event_id);
        if self.latest.len() > LATEST_CONTACTS {
            self.latest.remove(0);
        }
    }
}

impl ContactIndex {
    pub(super) fn insert(&mut self, contact: Contact) {
        let position = contact.origin.position;
        if let Some(end) = contact.occurred.as_ref().map(FuzzyTime::end) {
            self.by_end.insert((end, position));
        }
        self.by_position.insert(position, contact.origin.event_id);
        self.by_when
            .insert(happened_key(contact.occurred.as_ref(), position), contact);
    }

    pub(super) fn remove(&mut self, contact: &Contact) {
        let position = contact.origin.position;
        if let Some(end) = contact.occurred.as_ref().map(FuzzyTime::end) {
            self.by_end.remove(&(end, position));
        }
        self.by_position.remove(&position);
        self.by_when
            .remove(&happened_key(contact.occurred.as_ref(), position));
    }

    pub(super) fn summary(&self) -> ContactSummary {
        let mut latest: Vec<EventId> = self
            .by_position
            .values()
            .rev()
            .take(LATEST_CONTACTS)
            .copied()
            .collect();
        latest.reverse();
        ContactSummary {
            count: self.by_when.len() as u32,
            first: self.by_when.values().next().cloned(),
            last: self.by_when.values().next_back().cloned(),
            latest,
            last_used: self.by_end.iter().next_back().map(|(end, _)| *end),
        }
    }
}
