//! A channel as answered: its status as of a time (dormant when unused for a while), when
//! and by what it was opened, its last contact and the events that bear on it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Channel, earliest};
use crate::domain::EventId;
use crate::domain::diplomacy::{ChannelStatus, ChannelStepKind, FuzzyTime};
use crate::projections::models::common::Party;

/// What a channel looks like at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    pub key: String,
    pub parties: Vec<Party>,
    /// ACTIVE, DORMANT, SUSPENDED or CLOSED.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub established_on: Option<FuzzyTime>,
    /// The event that opened it: its ChannelEstablished or its first interaction.
    pub established_by: EventId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_on: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact_by: Option<EventId>,
    pub contacts: u32,
    /// The events that bear on the channel: its own events and what they rest on, its first
    /// and last contact, and its most recently recorded contacts.
    pub evidence: Vec<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

impl Channel {
    /// The channel as of `reference`: dormant when neither a contact nor its own events used
    /// it within `dormant_after`.
    pub fn view(&self, reference: DateTime<Utc>, dormant_after: Duration) -> ChannelView {
        // Opened by whichever came first: its establishment or its first contact.
        let openers = self
            .steps
            .iter()
            .filter(|s| s.step == ChannelStepKind::Established)
            .map(|s| {
                (
                    earliest(s.occurred.as_ref()),
                    s.origin.position,
                    s.origin.event_id,
                    s.occurred.clone(),
                )
            })
            .chain(self.contacts.first.iter().map(|c| {
                (
                    earliest(c.occurred.as_ref()),
                    c.origin.position,
                    c.origin.event_id,
                    c.occurred.clone(),
                )
            }));
        let (_, _, established_by, established_on) = openers
            .min_by_key(|(when, position, ..)| {
                (when.unwrap_or(DateTime::<Utc>::MAX_UTC), *position)
            })
            .unwrap_or((None, 0, EventId::from(uuid::Uuid::nil()), None));
        let last_used = self
            .steps
            .iter()
            .filter(|s| s.step != ChannelStepKind::Suspended && s.step != ChannelStepKind::Closed)
            .filter_map(|s| s.occurred.as_ref().map(FuzzyTime::end))
            .chain(self.contacts.last_used)
            .max();
        let status = match self.stored_status() {
            ChannelStatus::Active
                if last_used.is_some_and(|used| used + dormant_after < reference) =>
            {
                ChannelStatus::Dormant
            }
            status => status,
        };
        let mut evidence: Vec<EventId> = Vec::new();
        let own = self
            .steps
            .iter()
            .flat_map(|s| std::iter::once(&s.origin.event_id).chain(&s.evidence));
        let contacts = self
            .contacts
            .first
            .iter()
            .chain(&self.contacts.last)
            .map(|c| &c.origin.event_id)
            .chain(&self.contacts.latest);
        for id in own.chain(contacts) {
            if !evidence.contains(id) {
                evidence.push(*id);
            }
        }
        ChannelView {
            key: self.key.clone(),
            parties: self.parties.clone(),
            status: status.as_str().to_owned(),
            established_on,
            established_by,
            last_contact_on: self.contacts.last.as_ref().and_then(|c| c.occurred.clone()),
            last_contact_by: self.contacts.last.as_ref().map(|c| c.origin.event_id),
            contacts: self.contacts.count,
            evidence,
            stream_id: self.stream_id.clone(),
        }
    }
}
