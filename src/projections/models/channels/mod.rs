//! `channels`: every communication channel between actors or offices. A channel is opened by
//! a `ChannelEstablished` (in its `channel-…` stream) or by the first interaction (call,
//! meeting, visit, negotiation round) between its parties, which are the offices people act
//! through, else the people or states themselves. Channels are pairwise: an interaction is a
//! contact of the channel of every two of its parties acting for different states, once per
//! interaction (a meeting of two delegations is a contact between the two ministers, and
//! between each cross-side pair, never a channel of the whole room); when its parties span
//! three or more states it is also a contact of the multilateral format channel of those
//! states (`pairs.rs` has the rule). Status: closed or suspended by the channel's own events; otherwise
//! active, or dormant when nothing used it for a while (derived when answering, since it
//! depends on the time asked about).
//!
//! The model is here: the channels, their steps and contacts, and how events change them.
//! `pairs.rs` says which channels an interaction goes through, `holders.rs` who held each
//! office when (a channel names its offices' holders at its last contact), `contacts.rs` keeps a channel's contacts (summarized in its row, indexed in memory),
//! `view.rs` answers a channel as of a time, `rows.rs` stores the model as rows and takes
//! them back (its `Model` implementation).

pub mod contacts;
mod holders;
pub mod pairs;
pub mod rows;
pub mod view;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{ChannelStatus, ChannelStepKind, EventKind, FuzzyTime};
use crate::projections::Fact;
use crate::projections::models::common::{
    Contributions, Index, Origin, Party, Registry, insert_by_position, interaction, level_name,
};
use contacts::{ContactIndex, ContactSummary};
use holders::{HOLDER_PREFIX, Holders};
use rows::ContactRow;

/// One of the channel's own events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStep {
    pub origin: Origin,
    pub step: ChannelStepKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EventId>,
}

/// An interaction through the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub origin: Origin,
    /// The event's kind, e.g. CallHeld.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub key: String,
    pub parties: Vec<Party>,
    /// The people who spoke through it (persons acting for its parties through an office, in
    /// interactions it was a contact of).
    #[serde(default)]
    pub people: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub steps: Vec<ChannelStep>,
    #[serde(default)]
    pub contacts: ContactSummary,
}

/// The earliest instant a time can mean.
fn earliest(time: Option<&FuzzyTime>) -> Option<DateTime<Utc>> {
    time.map(FuzzyTime::earliest)
}

impl Channel {
    /// Closed or suspended by its own events, else active (whatever the time: dormancy is
    /// derived when answering).
    fn stored_status(&self) -> ChannelStatus {
        self.steps
            .iter()
            .rev()
            .find(|s| s.step != ChannelStepKind::Established)
            .map_or(ChannelStatus::Active, |s| s.step.status_after())
    }

    fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.contacts.count == 0
    }
}

/// The key of a channel between these parties.
pub fn channel_key(parties: &[String]) -> String {
    let mut sorted: Vec<&str> = parties.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join("+")
}

pub(crate) const PREFIX: &str = "channel:";
const CONTACT_PREFIX: &str = "contact:";

/// The key of an interaction's contact row in one of its channels: `contact:<id>` in its
/// first channel (in key order), `contact:<id>@<channel key>` in the others.
pub fn contact_key(id: EventId, first: bool, channel: &str) -> String {
    if first {
        format!("{CONTACT_PREFIX}{id}")
    } else {
        format!("{CONTACT_PREFIX}{id}@{channel}")
    }
}

#[derive(Debug, Default)]
pub struct Channels {
    registry: Registry,
    channels: BTreeMap<String, Channel>,
    /// Each channel's contacts (those in memory: after `settle`, none until a retraction or
    /// a correction brings a channel's contacts back).
    contacts: HashMap<String, ContactIndex>,
    /// Contact row key -> (channel key, the contact), for the contacts in memory: an
    /// interaction has a row per channel it went through (`contact_key`).
    contact_rows: HashMap<String, ContactRow>,
    /// `channel-…` stream -> channel key.
    streams: HashMap<String, String>,
    /// Contributions of the channels' own events, of the holders' changes, and of the
    /// contacts in memory.
    index: Index,
    holders: Holders,
}

impl Channels {
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
    }

    /// Names each office party's holder at the channel's last contact (with no contact: the
    /// latest); returns whether that changed the channel.
    fn name_holders(&mut self, key: &str) -> bool {
        let Some(channel) = self.channels.get_mut(key) else {
            return false;
        };
        let when = channel
            .contacts
            .last
            .as_ref()
            .and_then(|c| earliest(c.occurred.as_ref()));
        let mut changed = false;
        for party in &mut channel.parties {
            let holder = self.holders.holder_at(&party.id, when).map(str::to_owned);
            if party.holder != holder {
                party.holder_name = holder.as_deref().map(|h| self.registry.name(h));
                party.holder = holder;
                changed = true;
            }
        }
        changed
    }

    /// Names the holders again in the channels `keys` names and, after a change of `office`'s
    /// holder, in every channel of that office; returns `keys` with the channels that changed.
    fn renamed(&mut self, mut keys: Vec<String>, office: Option<&str>) -> Vec<String> {
        let mut touched: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(PREFIX).map(str::to_owned))
            .collect();
        if let Some(office) = office {
            touched.extend(
                self.channels
                    .values()
                    .filter(|c| c.parties.iter().any(|p| p.id == office))
                    .map(|c| c.key.clone()),
            );
        }
        for key in touched {
            if self.name_holders(&key) {
                keys.push(format!("{PREFIX}{key}"));
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    fn channel_for(&mut self, parties: &[String]) -> &mut Channel {
        let key = channel_key(parties);
        let registry = &self.registry;
        self.channels.entry(key.clone()).or_insert_with(|| {
            let mut ids: Vec<String> = parties.to_vec();
            ids.sort();
            ids.dedup();
            Channel {
                key,
                parties: ids.iter().map(|id| registry.party(id)).collect(),
                people: Vec::new(),
                stream_id: None,
                steps: Vec::new(),
                contacts: ContactSummary::default(),
            }
        })
    }

    fn step(
        &mut self,
        key: &str,
        fact: &Fact,
        step: ChannelStepKind,
        reason: Option<String>,
    ) -> Option<String> {
        let channel = self.channels.get_mut(key)?;
        let origin = Origin::of(fact);
        insert_by_position(
            &mut channel.steps,
            ChannelStep {
                origin: origin.clone(),
                step,
                occurred: fact.event.occurred.clone(),
                reason,
                evidence: fact.event.evidence.clone(),
            },
            |s| s.origin.position,
        );
        self.index.note(&origin, &format!("{PREFIX}{key}"));
        Some(format!("{PREFIX}{key}"))
    }

    /// Files a contact under its channel and brings the channel's summary up to date: from
    /// the channel's contacts when all of them are in memory, else from the summary (the
    /// contact is then a new event, later than all the others: a correction's replacement,
    /// which takes an older place, comes after a removal that brought them all in).
    fn add_contact(&mut self, key: &str, row_key: String, contact: Contact, others: Vec<String>) {
        let index = self.contacts.entry(key.to_owned()).or_default();
        index.insert(contact.clone());
        if let Some(channel) = self.channels.get_mut(key) {
            if index.by_when.len() == channel.contacts.count as usize + 1 {
                channel.contacts = index.summary();
            } else {
                channel.contacts.add(&contact);
            }
        }
        self.contact_rows.insert(
            row_key,
            ContactRow {
                channel: key.to_owned(),
                contact,
                others,
            },
        );
    }
}

impl Contributions for Channels {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        if let Some((office, key)) = self.holders.add(fact) {
            self.index.note(&Origin::of(fact), &key);
            return self.renamed(vec![key], Some(&office));
        }
        let keys = self.add_to_channels(fact);
        self.renamed(keys, None)
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let office = self.holders.remove(id);
        let (keys, origin) = self.remove_from_channels(id);
        (self.renamed(keys, office.as_deref()), origin)
    }
}

impl Channels {
    fn add_to_channels(&mut self, fact: &Fact) -> Vec<String> {
        let origin = Origin::of(fact);
        let stream_key = self.streams.get(&fact.stream_id).cloned();
        match &fact.event.kind {
            EventKind::ChannelEstablished(established) => {
                let parties: Vec<String> = established
                    .parties
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let key = self.channel_for(&parties).key.clone();
                if let Some(channel) = self.channels.get_mut(&key) {
                    channel.stream_id = Some(fact.stream_id.clone());
                }
                self.streams.insert(fact.stream_id.clone(), key.clone());
                self.step(
                    &key,
                    fact,
                    ChannelStepKind::Established,
                    established.purpose.clone(),
                )
                .into_iter()
                .collect()
            }
            EventKind::ChannelSuspended(reason) => stream_key
                .and_then(|k| {
                    self.step(&k, fact, ChannelStepKind::Suspended, reason.reason.clone())
                })
                .into_iter()
                .collect(),
            EventKind::ChannelResumed(reason) => stream_key
                .and_then(|k| self.step(&k, fact, ChannelStepKind::Resumed, reason.reason.clone()))
                .into_iter()
                .collect(),
            EventKind::ChannelClosed(reason) => stream_key
                .and_then(|k| self.step(&k, fact, ChannelStepKind::Closed, reason.reason.clone()))
                .into_iter()
                .collect(),
            _ => {
                let Some(interaction) = interaction(&fact.event) else {
                    return Vec::new();
                };
                let throughs = pairs::channels_of(&self.registry, &interaction);
                let keys: Vec<String> = throughs.iter().map(|t| t.key.clone()).collect();
                let contact = Contact {
                    origin: origin.clone(),
                    kind: interaction.kind.to_owned(),
                    occurred: fact.event.occurred.clone(),
                    // Given, else derived from the offices (channels have the registry).
                    level: level_name(interaction.level(&self.registry).0),
                };
                let mut changed = Vec::new();
                for (n, through) in throughs.into_iter().enumerate() {
                    let channel = self.channel_for(&through.parties);
                    for person in through.people {
                        if !channel.people.contains(&person) {
                            channel.people.push(person);
                        }
                    }
                    channel.people.sort();
                    let row_key = contact_key(fact.event_id, n == 0, &through.key);
                    // The first row names the others, so a retraction finds them all.
                    let others = if n == 0 {
                        keys[1..].to_vec()
                    } else {
                        Vec::new()
                    };
                    self.add_contact(&through.key, row_key.clone(), contact.clone(), others);
                    self.index
                        .note(&origin, &format!("{PREFIX}{}", through.key));
                    self.index.note(&origin, &row_key);
                    changed.push(format!("{PREFIX}{}", through.key));
                    changed.push(row_key);
                }
                changed
            }
        }
    }

    fn remove_from_channels(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        for key in &keys {
            if let Some(row) = self.contact_rows.remove(key)
                && let Some(index) = self.contacts.get_mut(&row.channel)
            {
                index.remove(&row.contact);
                if let Some(channel) = self.channels.get_mut(&row.channel) {
                    channel.contacts = index.summary();
                }
            }
        }
        for key in &keys {
            let Some(channel_key) = key.strip_prefix(PREFIX) else {
                continue;
            };
            let Some(channel) = self.channels.get_mut(channel_key) else {
                continue;
            };
            channel.steps.retain(|s| s.origin.event_id != id);
            if !channel
                .steps
                .iter()
                .any(|s| s.step == ChannelStepKind::Established)
                && let Some(stream) = channel.stream_id.take()
            {
                self.streams.remove(&stream);
            }
            if channel.is_empty() {
                self.channels.remove(channel_key);
                self.contacts.remove(channel_key);
            }
        }
        (keys.into_iter().collect(), Some(origin))
    }
}
