//! `relations`: per pair of states, their contacts (by level), the last one, their channels and
//! their pending summits and commitments. Built on the channel, summit and commitment models,
//! which it carries inside (as internal rows), so one checkpoint covers it all; the contacts
//! are interactions, counted for every pair of the states their participants act for (as the
//! timeline gives them).
//!
//! A bounded working set: the pairs (their summaries), the channels, summits, commitments and
//! actors stay in memory. Each interaction has one row of its own (its contact in its channel
//! and in its pairs), needed again only when the interaction is retracted or corrected, and
//! then together with the other contacts of its channel and of its pairs (a summary needs them
//! all to take one out).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{ChannelStatus, CommitmentStatus};
use crate::domain::diplomacy::{CountryCode, FuzzyTime};
use crate::projections::models::channels::{CONTACT_STATUS, Channel, ChannelView, Channels};
use crate::projections::models::commitments::{Commitment, CommitmentView, Commitments};
use crate::projections::models::common::{
    ACTOR_STATUS, Contributions, Index, Origin, Registry, apply_fact, happened_key, interaction,
    level_name, target_of,
};
use crate::projections::models::summits::{Summit, SummitView, Summits};
use crate::projections::{Fact, Model, Row, RowData, Want};

/// A contact between the two states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairContact {
    pub event_id: EventId,
    pub kind: String,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
}

#[derive(Debug, Clone, Default)]
struct Pair {
    states: [String; 2],
    contacts: u32,
    /// Contacts counted by level, kept as contacts come and go.
    by_level: BTreeMap<String, u32>,
    /// The last contact and its `happened_key` (the greatest).
    last: Option<(String, PairContact)>,
    /// The contacts in memory, by `happened_key`: after `settle`, none until a retraction or a
    /// correction brings all of the pair's back.
    held: BTreeMap<String, PairContact>,
    channels: BTreeSet<String>,
    summits: BTreeSet<String>,
    commitments: BTreeSet<String>,
}

/// A pair's row: what does not depend on the time asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    pub states: [String; 2],
    pub contacts: u32,
    pub contacts_by_level: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    /// Where the last contact stands among the pair's contacts (its `happened_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact_key: Option<String>,
    pub channels: Vec<Channel>,
    pub summits: Vec<Summit>,
    pub commitments: Vec<Commitment>,
}

/// The relations of two states as answered at a given time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationView {
    pub states: Vec<String>,
    pub state_names: Vec<String>,
    pub contacts: u32,
    pub contacts_by_level: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<PairContact>,
    /// Channels between them that are not closed.
    pub open_channels: Vec<ChannelView>,
    pub pending_summits: Vec<SummitView>,
    /// Commitments neither fulfilled nor withdrawn (lapsed included).
    pub pending_commitments: Vec<CommitmentView>,
}

impl PairRecord {
    pub fn view(&self, reference: DateTime<Utc>, dormant_after: Duration) -> RelationView {
        RelationView {
            states: self.states.to_vec(),
            state_names: self
                .states
                .iter()
                .map(|s| CountryCode::parse(s).map_or_else(|_| s.clone(), |c| c.name().to_owned()))
                .collect(),
            contacts: self.contacts,
            contacts_by_level: self.contacts_by_level.clone(),
            last_contact: self.last_contact.clone(),
            open_channels: self
                .channels
                .iter()
                .map(|c| c.view(reference, dormant_after))
                .filter(|c| ChannelStatus::parse(&c.status).is_none_or(ChannelStatus::is_open))
                .collect(),
            pending_summits: self
                .summits
                .iter()
                .filter_map(Summit::view)
                .filter(|s| s.pending)
                .collect(),
            pending_commitments: self
                .commitments
                .iter()
                .filter_map(|c| c.view(reference))
                .filter(|c| {
                    CommitmentStatus::parse(&c.status).is_some_and(CommitmentStatus::is_open)
                })
                .collect(),
        }
    }
}

const PREFIX: &str = "pair:";
const PAIR_STATUS: &str = "pair";
/// The status of the rows of the inner channel, summit and commitment models (which keep their
/// own status inside).
const INTERNAL: &str = "internal";
/// An interaction's row: its contact in its channel and in its pairs.
const INTERACTION_PREFIX: &str = "interaction:";
const INTERACTION_STATUS: &str = "interaction";
/// The inner channel model's rows of contacts, which relations keeps in interaction rows.
const CONTACT_PREFIX: &str = "contact:";

/// The key of the pair of two states, in alphabetical order.
pub fn pair_key(a: &str, b: &str) -> String {
    if a <= b {
        format!("{a}+{b}")
    } else {
        format!("{b}+{a}")
    }
}

fn pairs_of(states: &[String]) -> Vec<String> {
    let mut pairs = Vec::new();
    for (i, a) in states.iter().enumerate() {
        for b in &states[i + 1..] {
            if a != b {
                pairs.push(pair_key(a, b));
            }
        }
    }
    pairs
}

/// An interaction as relations counts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Contact {
    origin: Origin,
    /// The states its participants act for (sorted, without repeats): it is a contact of every
    /// pair of them.
    states: Vec<String>,
    /// Where it stands among contacts: `happened_key`.
    when: String,
    contact: PairContact,
}

/// The interactions, as contacts between states: every one applied, but only those since the
/// last `settle` (and those brought back) in memory.
#[derive(Debug, Default)]
struct Contacts {
    registry: Registry,
    held: HashMap<EventId, Contact>,
    index: Index,
}

impl Contributions for Contacts {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let Some(interaction) = interaction(&fact.event) else {
            return Vec::new();
        };
        // A participant's state: the office's it acts as, else its own (as the timeline has it).
        let registry = &self.registry;
        let states: BTreeSet<String> = interaction
            .participants
            .iter()
            .filter_map(|p| {
                p.acting_as
                    .as_ref()
                    .and_then(|office| registry.state_of(&office.to_string()))
                    .or_else(|| registry.state_of(&p.actor.to_string()))
            })
            .collect();
        let origin = Origin::of(fact);
        let key = format!("{INTERACTION_PREFIX}{}", fact.event_id);
        self.index.note(&origin, &key);
        self.held.insert(
            fact.event_id,
            Contact {
                when: happened_key(fact.event.occurred.as_ref(), fact.position),
                contact: PairContact {
                    event_id: fact.event_id,
                    kind: interaction.kind.to_owned(),
                    level: level_name(interaction.level),
                    occurred: fact.event.occurred.clone(),
                },
                states: states.into_iter().collect(),
                origin,
            },
        );
        vec![key]
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        self.held.remove(&id);
        (keys.into_iter().collect(), Some(origin))
    }
}

/// An interaction row's data: its contact in its channel (the inner channel model's contact
/// row) and its contact between states, whichever it has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct InteractionData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<RowData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact: Option<Contact>,
}

/// An inner model's row as the relations model stores it (under status `INTERNAL`): the inner
/// row's own status and data.
#[derive(Serialize, Deserialize)]
struct InternalData {
    status: String,
    data: RowData,
}

#[derive(Debug, Default)]
pub struct Relations {
    channels: Channels,
    summits: Summits,
    commitments: Commitments,
    contacts: Contacts,
    /// Internal key of a channel, summit or commitment -> the pairs it counts for.
    member_of: HashMap<String, Vec<String>>,
    pairs: BTreeMap<String, Pair>,
}

/// Which inner model an internal key belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inner {
    Channels,
    Summits,
    Commitments,
}

impl Inner {
    const ALL: [Inner; 3] = [Inner::Channels, Inner::Summits, Inner::Commitments];

    fn name(self) -> &'static str {
        match self {
            Inner::Channels => "channels",
            Inner::Summits => "summits",
            Inner::Commitments => "commitments",
        }
    }

    fn of(key: &str) -> Option<(Inner, &str)> {
        let (name, inner) = key.split_once('/')?;
        Inner::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .map(|i| (i, inner))
    }
}

impl Pair {
    fn new(pair: &str) -> Self {
        let (a, b) = pair.split_once('+').expect("a pair key");
        Pair {
            states: [a.to_owned(), b.to_owned()],
            ..Pair::default()
        }
    }
}

impl Relations {
    fn inner_row(&self, inner: Inner, key: &str) -> Option<Row> {
        match inner {
            Inner::Channels => self.channels.row(key),
            Inner::Summits => self.summits.row(key),
            Inner::Commitments => self.commitments.row(key),
        }
    }

    fn inner_rows(&self, inner: Inner) -> Vec<Row> {
        match inner {
            Inner::Channels => self.channels.rows(),
            Inner::Summits => self.summits.rows(),
            Inner::Commitments => self.commitments.rows(),
        }
    }

    /// Moves a channel, summit or commitment to the pairs it now counts for; returns the
    /// pairs touched.
    fn refile(&mut self, internal_key: &str) -> BTreeSet<String> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for pair in self.member_of.remove(internal_key).unwrap_or_default() {
            if let Some(entry) = self.pairs.get_mut(&pair) {
                entry.channels.remove(internal_key);
                entry.summits.remove(internal_key);
                entry.commitments.remove(internal_key);
            }
            touched.insert(pair);
        }
        let Some((inner, key)) = Inner::of(internal_key) else {
            return touched;
        };
        let Some(row) = self
            .inner_row(inner, key)
            .filter(|r| r.status != ACTOR_STATUS && r.status != CONTACT_STATUS)
        else {
            return touched;
        };
        let pairs = pairs_of(&row.states);
        for pair in &pairs {
            let entry = self
                .pairs
                .entry(pair.clone())
                .or_insert_with(|| Pair::new(pair));
            let set = match inner {
                Inner::Channels => &mut entry.channels,
                Inner::Summits => &mut entry.summits,
                Inner::Commitments => &mut entry.commitments,
            };
            set.insert(internal_key.to_owned());
            touched.insert(pair.clone());
        }
        self.member_of.insert(internal_key.to_owned(), pairs);
        touched
    }

    /// Counts a contact in its pairs; returns them.
    fn file(&mut self, contact: &Contact) -> Vec<String> {
        let pairs = pairs_of(&contact.states);
        for pair in &pairs {
            let entry = self
                .pairs
                .entry(pair.clone())
                .or_insert_with(|| Pair::new(pair));
            entry.contacts += 1;
            *entry
                .by_level
                .entry(contact.contact.level.clone())
                .or_insert(0) += 1;
            entry
                .held
                .insert(contact.when.clone(), contact.contact.clone());
            if entry
                .last
                .as_ref()
                .is_none_or(|(when, _)| contact.when > *when)
            {
                entry.last = Some((contact.when.clone(), contact.contact.clone()));
            }
        }
        pairs
    }

    /// Takes a contact out of its pairs (all of whose contacts are in memory: `wants` asked
    /// for them); returns them.
    fn unfile(&mut self, contact: &Contact) -> Vec<String> {
        let pairs = pairs_of(&contact.states);
        for pair in &pairs {
            let Some(entry) = self.pairs.get_mut(pair) else {
                continue;
            };
            entry.contacts = entry.contacts.saturating_sub(1);
            if let Some(count) = entry.by_level.get_mut(&contact.contact.level) {
                *count -= 1;
                if *count == 0 {
                    entry.by_level.remove(&contact.contact.level);
                }
            }
            entry.held.remove(&contact.when);
            if entry
                .last
                .as_ref()
                .is_some_and(|(when, _)| *when == contact.when)
            {
                debug_assert_eq!(
                    entry.held.len(),
                    entry.contacts as usize,
                    "all of pair {pair}'s contacts are in memory"
                );
                entry.last = entry
                    .held
                    .iter()
                    .next_back()
                    .map(|(when, contact)| (when.clone(), contact.clone()));
            }
        }
        pairs
    }

    fn record(&self, pair: &Pair) -> PairRecord {
        let decode = |keys: &BTreeSet<String>, inner: Inner| -> Vec<Row> {
            keys.iter()
                .filter_map(|k| Inner::of(k).and_then(|(_, key)| self.inner_row(inner, key)))
                .collect()
        };
        PairRecord {
            states: pair.states.clone(),
            contacts: pair.contacts,
            contacts_by_level: pair.by_level.clone(),
            last_contact: pair.last.as_ref().map(|(_, contact)| contact.clone()),
            last_contact_key: pair.last.as_ref().map(|(when, _)| when.clone()),
            channels: decode(&pair.channels, Inner::Channels)
                .iter()
                .filter_map(|r| crate::projections::models::channels::channel_of(r).ok())
                .collect(),
            summits: decode(&pair.summits, Inner::Summits)
                .iter()
                .filter_map(|r| crate::projections::models::summits::summit_of(r).ok())
                .collect(),
            commitments: decode(&pair.commitments, Inner::Commitments)
                .iter()
                .filter_map(|r| crate::projections::models::commitments::commitment_of(r).ok())
                .collect(),
        }
    }

    /// The relations key of an inner model's row key.
    fn outer_key(inner: Inner, key: &str) -> String {
        match key.strip_prefix(CONTACT_PREFIX) {
            Some(id) if inner == Inner::Channels => format!("{INTERACTION_PREFIX}{id}"),
            _ => format!("{}/{key}", inner.name()),
        }
    }

    fn interaction_row(&self, key: &str) -> Option<Row> {
        let id = key.strip_prefix(INTERACTION_PREFIX)?;
        let channel = self.channels.row(&format!("{CONTACT_PREFIX}{id}"));
        let contact = EventId::parse(id)
            .ok()
            .and_then(|id| self.contacts.held.get(&id))
            .cloned();
        if channel.is_none() && contact.is_none() {
            return None;
        }
        let sort_key = channel
            .as_ref()
            .map(|row| row.sort_key.clone())
            .unwrap_or_default();
        let states = contact
            .as_ref()
            .map(|c| c.states.clone())
            .unwrap_or_default();
        let data = InteractionData {
            channel: channel.map(|row| row.data),
            contact,
        };
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(&data).expect("an interaction serializes"),
            actors: Vec::new(),
            states,
            status: INTERACTION_STATUS.to_owned(),
            sort_key,
        })
    }

    /// Takes an interaction row back into memory: its channel contact into the channel model,
    /// its contact into its pairs (which count it already).
    fn hydrate_interaction(&mut self, row: Row) -> Result<(), String> {
        let data: InteractionData = row.decode("relations")?;
        let id = row
            .key
            .strip_prefix(INTERACTION_PREFIX)
            .ok_or_else(|| format!("relations row {}: not an interaction", row.key))?;
        if let Some(channel) = data.channel {
            self.channels.hydrate(vec![Row {
                key: format!("{CONTACT_PREFIX}{id}"),
                data: channel,
                actors: Vec::new(),
                states: Vec::new(),
                status: CONTACT_STATUS.to_owned(),
                sort_key: row.sort_key,
            }])?;
        }
        if let Some(contact) = data.contact
            && !self.contacts.held.contains_key(&contact.origin.event_id)
        {
            for pair in pairs_of(&contact.states) {
                self.pairs
                    .entry(pair.clone())
                    .or_insert_with(|| Pair::new(&pair))
                    .held
                    .insert(contact.when.clone(), contact.contact.clone());
            }
            self.contacts.index.note(&contact.origin, &row.key);
            self.contacts.held.insert(contact.origin.event_id, contact);
        }
        Ok(())
    }
}

impl Model for Relations {
    const NAME: &'static str = "relations";
    /// 3: one row per interaction (its channel contact and its contact between states) in
    /// place of the inner timeline's and channel contacts' rows; a bounded working set.
    const VERSION: i32 = 3;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        let mut changed: BTreeSet<String> = BTreeSet::new();
        let mut pairs: BTreeSet<String> = BTreeSet::new();
        for inner in Inner::ALL {
            let keys = match inner {
                Inner::Channels => self.channels.apply(fact),
                Inner::Summits => self.summits.apply(fact),
                Inner::Commitments => self.commitments.apply(fact),
            };
            for key in keys {
                let outer = Self::outer_key(inner, &key);
                if !outer.starts_with(INTERACTION_PREFIX) {
                    pairs.extend(self.refile(&outer));
                }
                changed.insert(outer);
            }
        }
        // The contacts between states this fact can change: its own, or the one it amends.
        let ids: Vec<EventId> = std::iter::once(fact.event_id)
            .chain(target_of(fact))
            .collect();
        let before: Vec<(EventId, Option<Contact>)> = ids
            .iter()
            .map(|id| (*id, self.contacts.held.get(id).cloned()))
            .collect();
        for key in apply_fact(&mut self.contacts, fact) {
            changed.insert(key);
        }
        for (id, old) in before {
            let new = self.contacts.held.get(&id).cloned();
            if old == new {
                continue;
            }
            if let Some(old) = &old {
                pairs.extend(self.unfile(old));
            }
            if let Some(new) = &new {
                pairs.extend(self.file(new));
            }
        }
        changed.extend(pairs.into_iter().map(|p| format!("{PREFIX}{p}")));
        changed.into_iter().collect()
    }

    fn row(&self, key: &str) -> Option<Row> {
        if let Some(pair_key) = key.strip_prefix(PREFIX) {
            let pair = self.pairs.get(pair_key)?;
            let record = self.record(pair);
            let empty = record.contacts == 0
                && record.channels.is_empty()
                && record.summits.is_empty()
                && record.commitments.is_empty();
            if empty {
                return None;
            }
            return Some(Row {
                key: key.to_owned(),
                data: RowData::new(&record).expect("a pair serializes"),
                actors: Vec::new(),
                states: pair.states.to_vec(),
                status: PAIR_STATUS.into(),
                sort_key: pair_key.to_owned(),
            });
        }
        if key.starts_with(INTERACTION_PREFIX) {
            return self.interaction_row(key);
        }
        if Registry::is_row(key) {
            return self.contacts.registry.row(key);
        }
        let (inner, inner_key) = Inner::of(key)?;
        let mut row = self.inner_row(inner, inner_key)?;
        row.key = key.to_owned();
        row.data = RowData::new(&InternalData {
            status: row.status,
            data: row.data,
        })
        .expect("an inner row serializes");
        row.status = INTERNAL.into();
        Some(row)
    }

    fn rows(&self) -> Vec<Row> {
        let mut keys: BTreeSet<String> = BTreeSet::new();
        for inner in Inner::ALL {
            for row in self.inner_rows(inner) {
                keys.insert(Self::outer_key(inner, &row.key));
            }
        }
        keys.extend(
            self.contacts
                .held
                .keys()
                .map(|id| format!("{INTERACTION_PREFIX}{id}")),
        );
        let actors = self.contacts.registry.rows();
        let pairs = self
            .pairs
            .keys()
            .filter_map(|p| self.row(&format!("{PREFIX}{p}")));
        keys.iter()
            .filter_map(|key| self.row(key))
            .chain(actors)
            .chain(pairs)
            .collect()
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut by_inner: HashMap<&'static str, Vec<Row>> = HashMap::new();
        let mut interactions = Vec::new();
        let mut model = Self::default();
        for row in rows {
            match row.status.as_str() {
                INTERNAL => {
                    let (inner, inner_key) = Inner::of(&row.key)
                        .ok_or_else(|| format!("relations row {}: no inner model", row.key))?;
                    let InternalData { status, data } = row.decode("relations")?;
                    by_inner.entry(inner.name()).or_default().push(Row {
                        key: inner_key.to_owned(),
                        data,
                        status,
                        ..row
                    });
                }
                ACTOR_STATUS => {
                    model.contacts.registry.load(&row)?;
                }
                PAIR_STATUS => {
                    let record = pair_of(&row)?;
                    let last = match (record.last_contact, record.last_contact_key) {
                        (Some(contact), Some(when)) => Some((when, contact)),
                        (None, _) => None,
                        (Some(_), None) => {
                            return Err(format!("relations row {}: no last contact key", row.key));
                        }
                    };
                    let key = row.key.strip_prefix(PREFIX).unwrap_or(&row.key).to_owned();
                    model.pairs.insert(
                        key.clone(),
                        Pair {
                            contacts: record.contacts,
                            by_level: record.contacts_by_level,
                            last,
                            ..Pair::new(&key)
                        },
                    );
                }
                INTERACTION_STATUS => interactions.push(row),
                other => return Err(format!("relations row {}: status {other:?}", row.key)),
            }
        }
        let mut take = |name: &str| by_inner.remove(name).unwrap_or_default();
        model.channels = Channels::from_rows(take("channels"))?;
        model.summits = Summits::from_rows(take("summits"))?;
        model.commitments = Commitments::from_rows(take("commitments"))?;
        let keys: Vec<String> = Inner::ALL
            .into_iter()
            .flat_map(|inner| {
                model
                    .inner_rows(inner)
                    .into_iter()
                    .map(move |r| Self::outer_key(inner, &r.key))
            })
            .collect();
        for key in keys {
            model.refile(&key);
        }
        for row in interactions {
            model.hydrate_interaction(row)?;
        }
        Ok(model)
    }

    /// Everything but the interactions stays in memory: the pairs' summaries, the channels,
    /// summits and commitments and the actors (their number does not grow with the log).
    const RESIDENT: Option<&'static [&'static str]> = Some(&[INTERNAL, ACTOR_STATUS, PAIR_STATUS]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        let mut wants: Vec<Want> = self
            .channels
            .wants(fact)
            .into_iter()
            .map(|want| match want {
                Want::Key(key) => Want::Key(Self::outer_key(Inner::Channels, &key)),
                Want::Group { status, sort_key } if status == CONTACT_STATUS => Want::Group {
                    status: INTERACTION_STATUS.to_owned(),
                    sort_key,
                },
                other => other,
            })
            .collect();
        if let Some(id) = target_of(fact) {
            wants.push(Want::Key(format!("{INTERACTION_PREFIX}{id}")));
            // Known once its row is in (the runner asks again after hydrating): taking it out
            // of a pair may need the pair's next contact.
            if let Some(contact) = self.contacts.held.get(&id) {
                for pair in pairs_of(&contact.states) {
                    let (a, b) = pair.split_once('+').expect("a pair key");
                    wants.push(Want::States {
                        status: INTERACTION_STATUS.to_owned(),
                        states: vec![a.to_owned(), b.to_owned()],
                    });
                }
            }
        }
        wants
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if row.status == INTERACTION_STATUS {
                self.hydrate_interaction(row)?;
            }
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.channels.settle();
        self.contacts.held = HashMap::new();
        self.contacts.index = Index::default();
        for pair in self.pairs.values_mut() {
            pair.held = BTreeMap::new();
        }
    }
}

/// Decodes a pair row.
pub fn pair_of(row: &Row) -> Result<PairRecord, String> {
    row.decode("relations")
}
