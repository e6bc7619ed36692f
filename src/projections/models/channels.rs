//! `channels`: every communication channel between actors or offices. A channel is opened by
//! a `ChannelEstablished` (in its `channel-…` stream) or by the first interaction (call,
//! meeting, visit, negotiation round) between its parties, which are the offices people act
//! through, else the people or states themselves. Each later interaction between the same
//! parties is a contact. Status: closed or suspended by the channel's own events; otherwise
//! active, or dormant when nothing used it for a while (derived when answering, since it
//! depends on the time asked about).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{ChannelStatus, ChannelStepKind, EventKind, FuzzyTime};
use crate::projections::models::common::{
    ACTOR_STATUS, Contributions, Index, Origin, Party, Registry, apply_fact, happened_key,
    insert_by_position, interaction, level_name, party, party_states, replacement_of, target_of,
};
use crate::projections::{Fact, Model, Row, RowData, Want};

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
    pub contacts: ContactSummary,
}

/// A channel's contacts, indexed so that adding or removing one is logarithmic.
#[derive(Debug, Clone, Default)]
struct ContactIndex {
    /// By `happened_key` (when, then position).
    by_when: BTreeMap<String, Contact>,
    /// By position: the most recently recorded.
    by_position: BTreeMap<u64, EventId>,
    /// By the end of the time each can mean.
    by_end: BTreeSet<(DateTime<Utc>, u64)>,
}

impl ContactSummary {
    /// The summary with one more contact: what `ContactIndex::summary` gives after inserting
    /// it, without needing the channel's other contacts in memory.
    fn add(&mut self, contact: &Contact) {
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
    fn insert(&mut self, contact: Contact) {
        let position = contact.origin.position;
        if let Some(end) = contact.occurred.as_ref().map(FuzzyTime::end) {
            self.by_end.insert((end, position));
        }
        self.by_position.insert(position, contact.origin.event_id);
        self.by_when
            .insert(happened_key(contact.occurred.as_ref(), position), contact);
    }

    fn remove(&mut self, contact: &Contact) {
        let position = contact.origin.position;
        if let Some(end) = contact.occurred.as_ref().map(FuzzyTime::end) {
            self.by_end.remove(&(end, position));
        }
        self.by_position.remove(&position);
        self.by_when
            .remove(&happened_key(contact.occurred.as_ref(), position));
    }

    fn summary(&self) -> ContactSummary {
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

    /// When it was opened (for ordering).
    fn opened_key(&self) -> String {
        let opened = self
            .steps
            .iter()
            .filter(|s| s.step == ChannelStepKind::Established)
            .map(|s| (earliest(s.occurred.as_ref()), s.origin.position))
            .chain(
                self.contacts
                    .first
                    .iter()
                    .map(|c| (earliest(c.occurred.as_ref()), c.origin.position)),
            )
            .min_by_key(|(when, position)| (when.unwrap_or(DateTime::<Utc>::MAX_UTC), *position));
        match opened {
            Some((Some(when), position)) => format!("{}#{position:020}", when.to_rfc3339()),
            Some((None, position)) => format!("~#{position:020}"),
            None => "~".to_owned(),
        }
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

const PREFIX: &str = "channel:";
const CONTACT_PREFIX: &str = "contact:";
/// The status of contact rows, which lists leave out.
pub const CONTACT_STATUS: &str = "contact";
/// The statuses of the channels' own rows (not their contacts' nor the actors'): what a
/// list of channels reads.
pub const CHANNEL_ROWS: &[&str] = ChannelStatus::STORED;
const _: () = assert!(
    CHANNEL_ROWS.len() == 3,
    "`Channels::RESIDENT` names every one"
);

/// A contact's own row: which channel it went through, and the contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ContactRow {
    channel: String,
    contact: Contact,
}

#[derive(Debug, Default)]
pub struct Channels {
    registry: Registry,
    channels: BTreeMap<String, Channel>,
    /// Each channel's contacts (those in memory: after `settle`, none until a retraction or
    /// a correction brings a channel's contacts back).
    contacts: HashMap<String, ContactIndex>,
    /// Contact event -> (channel key, the contact), for the contacts in memory.
    contact_rows: HashMap<EventId, ContactRow>,
    /// `channel-…` stream -> channel key.
    streams: HashMap<String, String>,
    /// Contributions of the channels' own events, and of the contacts in memory.
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
    fn add_contact(&mut self, key: &str, contact: Contact) {
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
            contact.origin.event_id,
            ContactRow {
                channel: key.to_owned(),
                contact,
            },
        );
    }
}

impl Contributions for Channels {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
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
                let contact = Contact {
                    origin: origin.clone(),
                    kind: interaction.kind.to_owned(),
                    occurred: fact.event.occurred.clone(),
                    level: level_name(interaction.level),
                };
                self.add_contact(&key, contact);
                let contact_key = format!("{CONTACT_PREFIX}{}", fact.event_id);
                self.index.note(&origin, &format!("{PREFIX}{key}"));
                self.index.note(&origin, &contact_key);
                vec![format!("{PREFIX}{key}"), contact_key]
            }
        }
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        if let Some(row) = self.contact_rows.remove(&id)
            && let Some(index) = self.contacts.get_mut(&row.channel)
        {
            index.remove(&row.contact);
            if let Some(channel) = self.channels.get_mut(&row.channel) {
                channel.contacts = index.summary();
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

impl Model for Channels {
    const NAME: &'static str = "channels";
    /// 3: contact rows sorted under their channel's key (so a channel's contacts can be read
    /// back together); a bounded working set. 4: rebuilt once, because a runner before batches
    /// were cut at amendments left a channel's summary short when a contact was retracted in
    /// the batch that recorded it.
    const VERSION: i32 = 4;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        if let Some(contact) = key.strip_prefix(CONTACT_PREFIX) {
            let row = self.contact_rows.get(&EventId::parse(contact).ok()?)?;
            return Some(Row {
                key: key.to_owned(),
                data: RowData::new(row).expect("a contact serializes"),
                actors: Vec::new(),
                states: Vec::new(),
                status: CONTACT_STATUS.to_owned(),
                sort_key: row.channel.clone(),
            });
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
            data: RowData::new(channel).expect("a channel serializes"),
            actors,
            states: party_states(&channel.parties),
            status: channel.stored_status().stored().to_owned(),
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
            .chain(
                self.contact_rows
                    .keys()
                    .filter_map(|id| self.row(&format!("{CONTACT_PREFIX}{id}"))),
            )
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        model.hydrate(rows)?;
        Ok(model)
    }

    /// The actors and the channels stay in memory (their number does not grow with the
    /// log); contacts come back only for a retraction or a correction, and then all of the
    /// channel's (its summary needs them all).
    const RESIDENT: Option<&'static [&'static str]> = Some(&[
        ACTOR_STATUS,
        // Every channel row (`CHANNEL_ROWS`, three of them: checked below).
        CHANNEL_ROWS[0],
        CHANNEL_ROWS[1],
        CHANNEL_ROWS[2],
    ]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        let contacts_of = |channel: String| Want::Group {
            status: CONTACT_STATUS.to_owned(),
            sort_key: channel,
        };
        let mut wants = Vec::new();
        if let Some(id) = target_of(fact) {
            wants.push(Want::Key(format!("{CONTACT_PREFIX}{id}")));
            // Known once the contact's row is in (the runner asks again after hydrating).
            if let Some(row) = self.contact_rows.get(&id) {
                wants.push(contacts_of(row.channel.clone()));
            }
        }
        // A replacement takes its original's place among its channel's contacts.
        if let Some(replacement) = replacement_of(fact)
            && let Some(interaction) = interaction(&replacement.event)
        {
            let parties: Vec<String> = interaction.participants.iter().map(party).collect();
            wants.push(contacts_of(channel_key(&parties)));
        }
        wants
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if self.registry.load(&row)? {
                continue;
            }
            if row.status == CONTACT_STATUS {
                let contact: ContactRow = row.decode("contact")?;
                let id = contact.contact.origin.event_id;
                if self.contact_rows.contains_key(&id) {
                    continue;
                }
                let origin = &contact.contact.origin;
                self.index
                    .note(origin, &format!("{PREFIX}{}", contact.channel));
                self.index.note(origin, &row.key);
                // Filed without touching the channel's summary, which counts them already.
                self.contacts
                    .entry(contact.channel.clone())
                    .or_default()
                    .insert(contact.contact.clone());
                self.contact_rows.insert(id, contact);
                continue;
            }
            let channel: Channel = row.decode("channel")?;
            if self.channels.contains_key(&channel.key) {
                continue;
            }
            for step in &channel.steps {
                self.index.note(&step.origin, &row.key);
            }
            if let Some(stream) = &channel.stream_id {
                self.streams.insert(stream.clone(), channel.key.clone());
            }
            self.channels.insert(channel.key.clone(), channel);
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.contacts = HashMap::new();
        self.contact_rows = HashMap::new();
        self.index = Index::default();
        for channel in self.channels.values() {
            for step in &channel.steps {
                self.index
                    .note(&step.origin, &format!("{PREFIX}{}", channel.key));
            }
        }
    }
}

/// Decodes a channel row (as `Channels::row` wrote it).
pub fn channel_of(row: &Row) -> Result<Channel, String> {
    row.decode("channel")
}
