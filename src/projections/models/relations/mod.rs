//! `relations`: per pair of states, their contacts (by level, PLOVER type and quad class, in
//! one tally for readouts and one for coded records: `tally.rs`), the last one, their channels
//! and their pending summits and commitments. Built on the channel, summit and commitment models,
//! which it carries inside (as internal rows), so one checkpoint covers it all; the contacts
//! are interactions, by the channels' rule: an interaction counts once for every pair of the
//! states its participants act for (an office's state, else their own), however many people of
//! each side were in the room; participants of one state are not a pair of states. A coded
//! record is a contact of every pair of a source's state and a target's state (its sources are
//! not paired among themselves, nor its targets), whatever kind of actor each is.
//!
//! A bounded working set: the pairs (their summaries), the channels, summits, commitments and
//! actors stay in memory. Each interaction has a row of its own (`interaction:<id>`: its
//! contact in its first channel and in its pairs) and one per further channel it went through
//! (`interaction:<id>@<channel>`, the inner model's `contact:<id>@<channel>`), needed again
//! only when the interaction is retracted or corrected, and then together with the other
//! contacts of its channels and of its pairs (a summary needs them all to take one out).
//!
//! The model is here: the pairs, the inner models and the contacts between states, and how
//! events change them. `view.rs` answers a pair as of a time; `rows.rs` stores the model as
//! rows (pairs, internal rows of the inner models, interactions) and takes them back (its
//! `Model` implementation).

pub mod rows;
pub mod tally;
pub mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{FuzzyTime, Place};
use crate::domain::diplomacy::{plover_type_of, quad_class_of};
use crate::projections::models::channels::Channels;
use crate::projections::models::channels::rows::CONTACT_STATUS;
use crate::projections::models::commitments::Commitments;
use crate::projections::models::common::{
    ACTOR_STATUS, Contributions, Index, Origin, Registry, apply_fact, format_name, happened_key,
    interaction, level_name, participant_state, target_of,
};
use crate::projections::models::summits::Summits;
use crate::projections::{Fact, Model, Row};
use tally::Tally;

/// A contact between the two states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairContact {
    pub event_id: EventId,
    pub kind: String,
    pub level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    /// Whether the level was derived from the participants' offices.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub level_derived: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// The PLOVER type of the event's coding (a typed interaction's default: CONSULT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plover_type: Option<String>,
    /// Derived from the PLOVER type (`quad_class_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quad_class: Option<String>,
    /// A coded record (`CodedEventReported`) rather than a readout's interaction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coded: bool,
}

#[derive(Debug, Clone, Default)]
struct Pair {
    states: [String; 2],
    /// The readouts' interactions and the coded records, counted apart.
    readouts: Tally,
    coded: Tally,
    /// The contacts in memory, by `happened_key`: after `settle`, none until a retraction or a
    /// correction brings all of the pair's back.
    held: BTreeMap<String, PairContact>,
    channels: BTreeSet<String>,
    summits: BTreeSet<String>,
    commitments: BTreeSet<String>,
}

const PREFIX: &str = "pair:";
/// An interaction's row: its contact in its channel and in its pairs.
const INTERACTION_PREFIX: &str = "interaction:";
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
    /// A coded record's pairs (each of a source's state and a target's state); none: every
    /// pair of `states`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pairs: Option<Vec<String>>,
}

impl Contact {
    /// The pairs of states it is a contact of.
    fn pairs(&self) -> Vec<String> {
        self.pairs.clone().unwrap_or_else(|| pairs_of(&self.states))
    }
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
        // Each state once, so the interaction counts once per pair of states.
        let states: BTreeSet<String> = interaction
            .participants
            .iter()
            .filter_map(|p| participant_state(&self.registry, p))
            .collect();
        // A coded record: each source's state with each target's.
        let pairs = interaction.coded.as_ref().map(|coded| {
            let states_of = |ids: &[String]| -> BTreeSet<String> {
                ids.iter()
                    .filter_map(|id| self.registry.state_of(id))
                    .collect()
            };
            let targets = states_of(&coded.targets);
            let pairs: BTreeSet<String> = states_of(&coded.sources)
                .iter()
                .flat_map(|a| {
                    targets
                        .iter()
                        .filter(move |b| a != *b)
                        .map(|b| pair_key(a, b))
                })
                .collect();
            pairs.into_iter().collect()
        });
        let (level, level_derived) = interaction.level(&self.registry);
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
                    level: level_name(level),
                    occurred: fact.event.occurred.clone(),
                    level_derived,
                    format: format_name(interaction.format),
                    place: interaction.place,
                    plover_type: plover_type_of(&fact.event),
                    quad_class: quad_class_of(&fact.event).map(|q| q.name().to_owned()),
                    coded: interaction.coded.is_some(),
                },
                states: states.into_iter().collect(),
                origin,
                pairs,
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

    fn tally_mut(&mut self, coded: bool) -> &mut Tally {
        if coded {
            &mut self.coded
        } else {
            &mut self.readouts
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
        let pairs = contact.pairs();
        for pair in &pairs {
            let entry = self
                .pairs
                .entry(pair.clone())
                .or_insert_with(|| Pair::new(pair));
            entry
                .held
                .insert(contact.when.clone(), contact.contact.clone());
            entry
                .tally_mut(contact.contact.coded)
                .add(&contact.when, &contact.contact);
        }
        pairs
    }

    /// Takes a contact out of its pairs (all of whose contacts are in memory: `wants` asked
    /// for them); returns them.
    fn unfile(&mut self, contact: &Contact) -> Vec<String> {
        let pairs = contact.pairs();
        for pair in &pairs {
            let Some(entry) = self.pairs.get_mut(pair) else {
                continue;
            };
            entry.held.remove(&contact.when);
            let coded = contact.contact.coded;
            let tally = if coded {
                &mut entry.coded
            } else {
                &mut entry.readouts
            };
            let held = entry.held.iter().filter(|(_, c)| c.coded == coded);
            tally.remove(&contact.when, &contact.contact, held);
            debug_assert!(
                tally.last_contact.is_some() || tally.contacts == 0,
                "all of pair {pair}'s contacts are in memory"
            );
        }
        pairs
    }

    /// The relations key of an inner model's row key.
    fn outer_key(inner: Inner, key: &str) -> String {
        match key.strip_prefix(CONTACT_PREFIX) {
            Some(id) if inner == Inner::Channels => format!("{INTERACTION_PREFIX}{id}"),
            _ => format!("{}/{key}", inner.name()),
        }
    }

    /// Applies a fact to the inner models and to the contacts between states, and files what
    /// changed under its pairs; returns the keys of the rows that changed.
    fn apply_to_all(&mut self, fact: &Fact) -> Vec<String> {
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
}
