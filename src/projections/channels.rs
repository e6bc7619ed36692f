//! `channels`: every communication channel between actors or offices. A channel is opened by
//! a `ChannelEstablished` (in its `channel-…` stream) or by the first interaction (call,
//! meeting, visit, negotiation round) between its parties, which are the offices people act
//! through, else the people or states themselves. Each later interaction between the same
//! parties is a contact. Status: closed or suspended by the channel's own events; otherwise
//! active, or dormant when nothing used it for a while (derived when answering, since it
//! depends on the time asked about).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::common::{
    Contributions, Index, Origin, Party, Registry, apply_fact, insert_by_position, interaction,
    level_name, party, party_states,
};
use super::{Fact, Model, Row};
use crate::domain::EventId;
use crate::domain::diplomacy::{EventKind, FuzzyTime};

/// One of the channel's own events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelStep {
    pub origin: Origin,
    /// ESTABLISHED, SUSPENDED, RESUMED or CLOSED.
    pub step: String,
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
    /// The people who spoke through it (persons acting for the parties).
    #[serde(default)]
    pub people: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub steps: Vec<ChannelStep>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

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
    /// Every event that bears on the channel, in log order.
    pub evidence: Vec<EventId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

fn earliest(time: Option<&FuzzyTime>) -> Option<DateTime<Utc>> {
    time.map(FuzzyTime::earliest)
}

impl Channel {
    /// Closed or suspended by its own events, else open.
    fn stored_status(&self) -> &'static str {
        let last = self
            .steps
            .iter()
            .rev()
            .find(|s| s.step != "ESTABLISHED")
            .map(|s| s.step.as_str());
        match last {
            Some("CLOSED") => "closed",
            Some("SUSPENDED") => "suspended",
            _ => "open",
        }
    }

    /// The channel as of `reference`: dormant when neither a contact nor its own events used
    /// it within `dormant_after`.
    pub fn view(&self, reference: DateTime<Utc>, dormant_after: Duration) -> ChannelView {
        // Opened by whichever came first: its establishment or its first contact.
        let openers = self
            .steps
            .iter()
            .filter(|s| s.step == "ESTABLISHED")
            .map(|s| {
                (
                    earliest(s.occurred.as_ref()),
                    s.origin.position,
                    s.origin.event_id,
                    s.occurred.clone(),
                )
            })
            .chain(self.contacts.iter().map(|c| {
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
        let last_contact = self
            .contacts
            .iter()
            .max_by_key(|c| (earliest(c.occurred.as_ref()), c.origin.position));
        let last_used = self
            .contacts
            .iter()
            .filter_map(|c| c.occurred.as_ref())
            .chain(
                self.steps
                    .iter()
                    .filter(|s| s.step != "SUSPENDED" && s.step != "CLOSED")
                    .filter_map(|s| s.occurred.as_ref()),
            )
            .map(FuzzyTime::end)
            .max();
        let status = match self.stored_status() {
            "closed" => "CLOSED",
            "suspended" => "SUSPENDED",
            _ if last_used.is_some_and(|used| used + dormant_after < reference) => "DORMANT",
            _ => "ACTIVE",
        };
        let mut evidence: Vec<(u64, EventId)> = self
            .steps
            .iter()
            .flat_map(|s| {
                std::iter::once((s.origin.position, s.origin.event_id))
                    .chain(s.evidence.iter().map(|e| (0, *e)))
            })
            .chain(
                self.contacts
                    .iter()
                    .map(|c| (c.origin.position, c.origin.event_id)),
            )
            .collect();
        evidence.sort();
        evidence.dedup_by_key(|(_, id)| *id);
        ChannelView {
            key: self.key.clone(),
            parties: self.parties.clone(),
            status: status.to_owned(),
            established_on,
            established_by,
            last_contact_on: last_contact.and_then(|c| c.occurred.clone()),
            last_contact_by: last_contact.map(|c| c.origin.event_id),
            contacts: self.contacts.len() as u32,
            evidence: evidence.into_iter().map(|(_, id)| id).collect(),
            stream_id: self.stream_id.clone(),
        }
    }

    /// When it was opened (for ordering).
    fn opened_key(&self) -> String {
        let view_free = self
            .steps
            .iter()
            .filter(|s| s.step == "ESTABLISHED")
            .map(|s| (earliest(s.occurred.as_ref()), s.origin.position))
            .chain(
                self.contacts
                    .iter()
                    .map(|c| (earliest(c.occurred.as_ref()), c.origin.position)),
            )
            .min_by_key(|(when, position)| (when.unwrap_or(DateTime::<Utc>::MAX_UTC), *position));
        match view_free {
            Some((Some(when), position)) => format!("{}#{position:020}", when.to_rfc3339()),
            Some((None, position)) => format!("~#{position:020}"),
            None => "~".to_owned(),
        }
    }

    fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.contacts.is_empty()
    }
}

/// The key of a channel between these parties.
pub fn channel_key(parties: &[String]) -> String {
    let mut sorted: Vec<&str> = parties.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.join("+")
}

const PREFIX: &str = "channel:";

#[derive(Debug, Default)]
pub struct Channels {
    registry: Registry,
    channels: BTreeMap<String, Channel>,
    /// `channel-…` stream -> channel key.
    streams: HashMap<String, String>,
    index: Index,
}

impl Channels {
    pub fn channels(&self) -> impl Iterator<Item = &Channel> {
        self.channels.values()
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
                contacts: Vec::new(),
            }
        })
    }

    fn step(
        &mut self,
        key: &str,
        fact: &Fact,
        step: &str,
        reason: Option<String>,
    ) -> Option<String> {
        let channel = self.channels.get_mut(key)?;
        let origin = Origin::of(fact);
        insert_by_position(
            &mut channel.steps,
            ChannelStep {
                origin: origin.clone(),
                step: step.to_owned(),
                occurred: fact.event.occurred.clone(),
                reason,
                evidence: fact.event.evidence.clone(),
            },
            |s| s.origin.position,
        );
        self.index.note(&origin, &format!("{PREFIX}{key}"));
        Some(format!("{PREFIX}{key}"))
    }
}

impl Contributions for Channels {
    fn add(&mut self, fact: &Fact) -> Vec<String> {
        if let Some(key) = self.registry.add(fact) {
            return vec![key];
        }
        let origin = Origin::of(fact);
        let stream_key = self.streams.get(&fact.stream_id).cloned();
        let changed = match &fact.event.kind {
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
                self.step(&key, fact, "ESTABLISHED", established.purpose.clone())
            }
            EventKind::ChannelSuspended(reason) => {
                stream_key.and_then(|k| self.step(&k, fact, "SUSPENDED", reason.reason.clone()))
            }
            EventKind::ChannelResumed(reason) => {
                stream_key.and_then(|k| self.step(&k, fact, "RESUMED", reason.reason.clone()))
            }
            EventKind::ChannelClosed(reason) => {
                stream_key.and_then(|k| self.step(&k, fact, "CLOSED", reason.reason.clone()))
            }
            _ => {
                let Some(interaction) = interaction(&fact.event) else {
                    return Vec::new();
                };
                let parties: Vec<String> = interaction.participants.iter().map(party).collect();
                if channel_key(&parties).split('+').count() < 2 {
                    return Vec::new();
                }
                let channel = self.channel_for(&parties);
                let key = channel.key.clone();
                for participant in &interaction.participants {
                    let person = participant.actor.to_string();
                    if participant.acting_as.is_some() && !channel.people.contains(&person) {
                        channel.people.push(person);
                        channel.people.sort();
                    }
                }
                insert_by_position(
                    &mut channel.contacts,
                    Contact {
                        origin: origin.clone(),
                        kind: interaction.kind.to_owned(),
                        occurred: fact.event.occurred.clone(),
                        level: level_name(interaction.level),
                    },
                    |c| c.origin.position,
                );
                self.index.note(&origin, &format!("{PREFIX}{key}"));
                Some(format!("{PREFIX}{key}"))
            }
        };
        changed.into_iter().collect()
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        if let Some((key, origin)) = self.registry.remove(id) {
            return (vec![key], Some(origin));
        }
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        for key in &keys {
            let channel_key = key.trim_start_matches(PREFIX);
            let Some(channel) = self.channels.get_mut(channel_key) else {
                continue;
            };
            channel.steps.retain(|s| s.origin.event_id != id);
            channel.contacts.retain(|c| c.origin.event_id != id);
            if !channel.steps.iter().any(|s| s.step == "ESTABLISHED")
                && let Some(stream) = channel.stream_id.take()
            {
                self.streams.remove(&stream);
            }
            if channel.is_empty() {
                self.channels.remove(channel_key);
            }
        }
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Channels {
    const NAME: &'static str = "channels";
    const VERSION: i32 = 1;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        let channel = self.channels.get(key.strip_prefix(PREFIX)?)?;
        let mut actors: Vec<String> = channel
            .parties
            .iter()
            .map(|p| p.id.clone())
            .chain(channel.people.iter().cloned())
            .collect();
        actors.sort();
        actors.dedup();
        Some(Row {
            key: key.to_owned(),
            data: serde_json::to_value(channel).expect("a channel serializes"),
            actors,
            states: party_states(&channel.parties),
            status: channel.stored_status().to_owned(),
            sort_key: channel.opened_key(),
        })
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(
                self.channels
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
            let channel: Channel = serde_json::from_value(row.data)
                .map_err(|e| format!("channel row {}: {e}", row.key))?;
            for origin in channel
                .steps
                .iter()
                .map(|s| &s.origin)
                .chain(channel.contacts.iter().map(|c| &c.origin))
            {
                model.index.note(origin, &row.key);
            }
            if let Some(stream) = &channel.stream_id {
                model.streams.insert(stream.clone(), channel.key.clone());
            }
            model.channels.insert(channel.key.clone(), channel);
        }
        Ok(model)
    }
}

/// Decodes a channel row (as `Channels::row` wrote it).
pub fn channel_of(row: &Row) -> Result<Channel, String> {
    serde_json::from_value(row.data.clone()).map_err(|e| format!("channel row {}: {e}", row.key))
}
