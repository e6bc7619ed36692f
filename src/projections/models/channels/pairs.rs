//! Which channels an interaction is a contact of. Every two of its parties (the office a
//! participant acts as, else the participant) that act for different states, or where a state
//! is unknown, have a pairwise channel; two parties of one state (a minister and his own aide)
//! have none, and a pair that arises twice (two aides of one office) counts once. When the
//! parties span three or more states, the interaction is also a contact of the multilateral
//! format channel whose parties are those states (the same channel a `ChannelEstablished`
//! between them opens).
//!
//! A coded record (`CodedEventReported`) is a contact only of the channel of each of its
//! sources with each of its targets where both are people or offices (acting for different
//! states, or where a state is unknown): a record between states or organisations says that
//! they dealt with each other, not through whom, and names no channel. It never counts for a
//! multilateral format channel.

use std::collections::{BTreeMap, BTreeSet};

use super::channel_key;
use crate::domain::diplomacy::ActorKind;
use crate::projections::models::common::{Coded, Interaction, Registry, participant_state, party};

/// A channel an interaction goes through: its key, its parties and the people who spoke
/// through it (persons acting for its parties through an office).
#[derive(Debug, Clone, PartialEq)]
pub struct Through {
    pub key: String,
    pub parties: Vec<String>,
    pub people: BTreeSet<String>,
}

/// The channels `interaction` is a contact of, in key order, each once.
pub fn channels_of(registry: &Registry, interaction: &Interaction) -> Vec<Through> {
    if let Some(coded) = &interaction.coded {
        return coded_channels(registry, coded);
    }
    struct Member {
        party: String,
        state: Option<String>,
        person: Option<String>,
    }
    let members: Vec<Member> = interaction
        .participants
        .iter()
        .map(|p| Member {
            party: party(p),
            state: participant_state(registry, p),
            person: p.acting_as.as_ref().map(|_| p.actor.to_string()),
        })
        .collect();
    let mut channels: BTreeMap<String, Through> = BTreeMap::new();
    let mut through = |parties: Vec<String>, people: &mut dyn Iterator<Item = &String>| {
        let key = channel_key(&parties);
        let entry = channels.entry(key.clone()).or_insert_with(|| Through {
            key,
            parties,
            people: BTreeSet::new(),
        });
        entry.people.extend(people.cloned());
    };
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            let same_state = a.state.is_some() && a.state == b.state;
            if a.party == b.party || same_state {
                continue;
            }
            let mut parties = vec![a.party.clone(), b.party.clone()];
            parties.sort();
            through(parties, &mut a.person.iter().chain(&b.person));
        }
    }
    let states: BTreeSet<&String> = members.iter().filter_map(|m| m.state.as_ref()).collect();
    if states.len() >= 3 {
        let parties = states.into_iter().cloned().collect();
        through(
            parties,
            &mut members.iter().filter_map(|m| m.person.as_ref()),
        );
    }
    channels.into_values().collect()
}

/// The channels a coded record is a contact of: each source with each target, both people or
/// offices of different states (or of a state unknown).
fn coded_channels(registry: &Registry, coded: &Coded) -> Vec<Through> {
    let channel_party = |id: &String| {
        matches!(
            registry.kind_of(id),
            Some(ActorKind::Person | ActorKind::Office)
        )
    };
    let mut channels: BTreeMap<String, Through> = BTreeMap::new();
    for source in coded.sources.iter().filter(|id| channel_party(id)) {
        for target in coded.targets.iter().filter(|id| channel_party(id)) {
            let (a, b) = (registry.state_of(source), registry.state_of(target));
            if source == target || (a.is_some() && a == b) {
                continue;
            }
            let mut parties = vec![source.clone(), target.clone()];
            parties.sort();
            let key = channel_key(&parties);
            channels.entry(key.clone()).or_insert_with(|| Through {
                key,
                parties,
                people: BTreeSet::new(),
            });
        }
    }
    channels.into_values().collect()
}
