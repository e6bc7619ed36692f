//! What the read models share: where an event stands in the log (so a correction can take its
//! place), the actor registry (names and states of the parties), the interactions events
//! describe, and the handling of corrections and retractions.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{
    ActorId, ActorKind, DiplomaticEvent, EventKind, FuzzyTime, Level, MeetingFormat, Participant,
    Place,
};
use crate::projections::models::coded::coded_sides;
pub use crate::projections::models::coded::{Coded, CodedRecord, Records};
use crate::projections::{Fact, Row, RowData};

/// Where an event stands in the log. A correction takes the corrected event's place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub event_id: EventId,
    pub position: u64,
    pub stream_id: String,
    pub recorded_at: DateTime<Utc>,
}

impl Origin {
    pub fn of(fact: &Fact) -> Self {
        Self {
            event_id: fact.event_id,
            position: fact.position,
            stream_id: fact.stream_id.clone(),
            recorded_at: fact.recorded_at,
        }
    }
}

/// A model that can take an event's contributions back out: what corrections and
/// retractions need.
pub trait Contributions {
    /// The model's actor registry, which `apply_fact` keeps for it.
    fn registry(&mut self) -> &mut Registry;
    /// Adds what the event contributes (actor registrations aside); returns the keys of the
    /// rows that changed.
    fn add(&mut self, fact: &Fact) -> Vec<String>;
    /// Takes out everything event `id` contributed; returns the keys of the rows that
    /// changed and where the event stood, if it contributed anything.
    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>);
}

/// Adds a fact: to the registry if it registers an actor, else to the model.
fn add_fact<M: Contributions>(model: &mut M, fact: &Fact) -> Vec<String> {
    match model.registry().add(fact) {
        Some(key) => vec![key],
        None => model.add(fact),
    }
}

/// Takes an event's contributions out, from the registry or the model.
fn remove_event<M: Contributions>(model: &mut M, id: EventId) -> (Vec<String>, Option<Origin>) {
    match model.registry().remove(id) {
        Some((key, origin)) => (vec![key], Some(origin)),
        None => model.remove(id),
    }
}

/// Applies a fact, honouring corrections (the replacement takes the original's place, id and
/// position) and retractions (the original's contributions are taken out).
pub fn apply_fact<M: Contributions>(model: &mut M, fact: &Fact) -> Vec<String> {
    let keys = match &fact.event.kind {
        EventKind::EventRetracted(retraction) => remove_event(model, retraction.event).0,
        EventKind::EventCorrected(correction) => {
            let (mut keys, origin) = remove_event(model, correction.event);
            if let Some(origin) = origin {
                let replacement = Fact {
                    position: origin.position,
                    stream_id: origin.stream_id,
                    event_id: correction.event,
                    recorded_at: origin.recorded_at,
                    event: (*correction.replacement).clone(),
                };
                keys.extend(add_fact(model, &replacement));
            }
            keys
        }
        _ => add_fact(model, fact),
    };
    let unique: BTreeSet<String> = keys.into_iter().collect();
    unique.into_iter().collect()
}

/// The event a retraction or a correction takes back out, if `fact` is one.
pub fn target_of(fact: &Fact) -> Option<EventId> {
    match &fact.event.kind {
        EventKind::EventRetracted(retraction) => Some(retraction.event),
        EventKind::EventCorrected(correction) => Some(correction.event),
        _ => None,
    }
}

/// A correction's replacement as `apply_fact` applies it (under the original's id), for
/// models whose `wants` depend on what an event is.
pub fn replacement_of(fact: &Fact) -> Option<Fact> {
    let EventKind::EventCorrected(correction) = &fact.event.kind else {
        return None;
    };
    Some(Fact {
        event_id: correction.event,
        event: (*correction.replacement).clone(),
        ..fact.clone()
    })
}

/// What a model knows of an actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    pub id: String,
    pub kind: ActorKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// An office's level, from which interactions that do not say theirs take it. Rows stored
    /// before levels were kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    pub origin: Origin,
}

/// The actors registered in the log, for names and states. Kept in a model's rows under
/// `actor:<id>` with status `actor`, which lists leave out.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    actors: BTreeMap<String, ActorInfo>,
}

pub const ACTOR_STATUS: &str = "actor";
const ACTOR_PREFIX: &str = "actor:";

impl Registry {
    /// Takes note of an actor registration; returns its row key.
    pub fn add(&mut self, fact: &Fact) -> Option<String> {
        let EventKind::ActorRegistered(registered) = &fact.event.kind else {
            return None;
        };
        let actor = &registered.actor;
        self.actors.insert(
            actor.id.to_string(),
            ActorInfo {
                id: actor.id.to_string(),
                kind: actor.kind,
                name: actor.name.clone(),
                country: actor.country.map(|c| c.to_string()),
                level: actor.level,
                origin: Origin::of(fact),
            },
        );
        Some(format!("{ACTOR_PREFIX}{}", actor.id))
    }

    /// Forgets the actor event `id` registered.
    pub fn remove(&mut self, id: EventId) -> Option<(String, Origin)> {
        let actor = self
            .actors
            .values()
            .find(|a| a.origin.event_id == id)?
            .id
            .clone();
        let info = self.actors.remove(&actor)?;
        Some((format!("{ACTOR_PREFIX}{actor}"), info.origin))
    }

    /// The display name of an actor (its id if unknown).
    pub fn name(&self, id: &str) -> String {
        self.actors
            .get(id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    }

    /// Whether `id` is a registered actor or a state.
    pub fn knows(&self, id: &str) -> bool {
        self.actors.contains_key(id)
            || ActorId::parse(id).is_ok_and(|actor| actor.as_country().is_some())
    }

    /// The state an actor belongs to: a state is its own.
    pub fn state_of(&self, id: &str) -> Option<String> {
        if let Ok(actor) = ActorId::parse(id)
            && let Some(country) = actor.as_country()
        {
            return Some(country.to_string());
        }
        self.actors.get(id).and_then(|a| a.country.clone())
    }

    /// An actor's kind, if registered (a state's code is a state).
    pub fn kind_of(&self, id: &str) -> Option<ActorKind> {
        match self.actors.get(id) {
            Some(info) => Some(info.kind),
            None => ActorId::parse(id)
                .ok()
                .and_then(|actor| actor.as_country().map(|_| ActorKind::State)),
        }
    }

    /// An actor's level (an office's), if registered with one.
    pub fn level_of(&self, id: &str) -> Option<Level> {
        self.actors.get(id).and_then(|a| a.level)
    }

    pub fn is_row(key: &str) -> bool {
        key.starts_with(ACTOR_PREFIX)
    }

    pub fn row(&self, key: &str) -> Option<Row> {
        let info = self.actors.get(key.strip_prefix(ACTOR_PREFIX)?)?;
        Some(Row {
            key: key.to_owned(),
            data: RowData::new(info).expect("actor info serializes"),
            actors: vec![info.id.clone()],
            states: info.country.iter().cloned().collect(),
            status: ACTOR_STATUS.to_owned(),
            sort_key: info.id.clone(),
        })
    }

    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.actors
            .keys()
            .filter_map(|id| self.row(&format!("{ACTOR_PREFIX}{id}")))
    }

    /// Takes an actor row back; `false` if the row is not an actor row.
    pub fn load(&mut self, row: &Row) -> Result<bool, String> {
        if row.status != ACTOR_STATUS {
            return Ok(false);
        }
        let info: ActorInfo = row.decode("actor")?;
        self.actors.insert(info.id.clone(), info);
        Ok(true)
    }
}

/// The interaction an event records: a call, a meeting, a visit or a negotiation round, with
/// the attributes all four share (each optional but a meeting's format); or a coded record
/// (`coded`), whose participants are its source and target actors.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub kind: &'static str,
    pub participants: Vec<Participant>,
    /// The level the event gives; `level()` also derives one from the offices.
    pub level: Option<Level>,
    pub format: Option<MeetingFormat>,
    pub place: Option<Place>,
    pub track: Option<String>,
    pub round: Option<u32>,
    pub topics: Vec<String>,
    /// A coded record's sides and coding; `None` for the typed interactions of readouts.
    pub coded: Option<Coded>,
}

pub fn interaction(event: &DiplomaticEvent) -> Option<Interaction> {
    let topics = |keys: &[crate::domain::diplomacy::Key]| {
        keys.iter().map(|k| k.as_str().to_owned()).collect()
    };
    let track =
        |track: Option<&crate::domain::diplomacy::Key>| track.map(|k| k.as_str().to_owned());
    let interaction = match &event.kind {
        EventKind::CallHeld(call) => Interaction {
            kind: "",
            participants: call.participants.clone(),
            level: call.level,
            format: call.format,
            place: call.place.clone(),
            track: track(call.track.as_ref()),
            round: call.round,
            topics: topics(&call.topics),
            coded: None,
        },
        EventKind::MeetingHeld(meeting) => Interaction {
            kind: "",
            participants: meeting.participants.clone(),
            level: meeting.level,
            format: Some(meeting.format),
            place: meeting.place.clone(),
            track: track(meeting.track.as_ref()),
            round: meeting.round,
            topics: topics(&meeting.topics),
            coded: None,
        },
        EventKind::VisitMade(visit) => {
            let host = Participant {
                actor: ActorId::from(visit.host),
                acting_as: None,
            };
            Interaction {
                kind: "",
                participants: vec![visit.visitor.clone(), host],
                level: visit.level,
                format: visit.format,
                place: visit.place.clone(),
                track: track(visit.track.as_ref()),
                round: visit.round,
                topics: topics(&visit.topics),
                coded: None,
            }
        }
        EventKind::NegotiationRoundHeld(round) => Interaction {
            kind: "",
            participants: round.participants.clone(),
            level: round.level,
            format: round.format,
            place: round.place.clone(),
            track: Some(round.track.as_str().to_owned()),
            round: round.round,
            topics: topics(&round.topics),
            coded: None,
        },
        EventKind::CodedEventReported(coded) => {
            let (participants, coded) = coded_sides(event, coded);
            Interaction {
                kind: "",
                participants,
                level: None,
                format: None,
                place: None,
                track: None,
                round: None,
                topics: Vec::new(),
                coded: Some(coded),
            }
        }
        _ => return None,
    };
    Some(Interaction {
        kind: event.kind.name(),
        ..interaction
    })
}

impl Interaction {
    /// The interaction's level and whether it was derived: the level the event gives, else the
    /// one `derived_level` finds in the participants' offices.
    pub fn level(&self, registry: &Registry) -> (Option<Level>, bool) {
        match self.level {
            Some(level) => (Some(level), false),
            None => {
                let derived = derived_level(registry, &self.participants);
                (derived, derived.is_some())
            }
        }
    }
}

/// The level of an interaction that does not give one, from its participants' offices (the
/// rule the README documents): the participants are grouped by the state they act for; each
/// side's level is the highest of its offices' executive levels (parliamentary only if it has
/// no executive one); the interaction's is the lower side's, since talks are held at the level
/// of the lower-ranked side (a president receiving a foreign minister: ministers).
/// Unspecified when a side has no office with a level, or when parliamentarians meet the
/// executive (parliamentary is not ranked against it); parliamentary when every side's is.
pub fn derived_level(registry: &Registry, participants: &[Participant]) -> Option<Level> {
    let mut sides: BTreeMap<Option<String>, Option<Level>> = BTreeMap::new();
    for participant in participants {
        let level = participant
            .acting_as
            .as_ref()
            .and_then(|office| registry.level_of(&office.to_string()));
        let side = sides
            .entry(participant_state(registry, participant))
            .or_default();
        // `Ord` is the rank, highest first, with parliamentary last: `min` is the highest.
        *side = match (*side, level) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let levels: Vec<Level> = sides.into_values().collect::<Option<_>>()?;
    let parliamentary = levels
        .iter()
        .filter(|l| **l == Level::Parliamentary)
        .count();
    match parliamentary {
        0 => levels.into_iter().max(),
        n if n == levels.len() => Some(Level::Parliamentary),
        _ => None,
    }
}

/// A participant's party: the office it acts through, or else itself. Offices outlive their
/// holders, so channels between offices stay the same channel when people change.
pub fn party(participant: &Participant) -> String {
    participant
        .acting_as
        .as_ref()
        .unwrap_or(&participant.actor)
        .to_string()
}

/// The state a participant acts for: its office's, else its own. Channels and relations pair
/// participants by it, so both count the same contacts.
pub fn participant_state(registry: &Registry, participant: &Participant) -> Option<String> {
    participant
        .acting_as
        .as_ref()
        .and_then(|office| registry.state_of(&office.to_string()))
        .or_else(|| registry.state_of(&participant.actor.to_string()))
}

/// A sort key for things that happened: when (earliest instant), then log position.
pub fn happened_key(occurred: Option<&FuzzyTime>, position: u64) -> String {
    let when = occurred.map_or_else(|| "~".to_owned(), |t| t.earliest().to_rfc3339());
    format!("{when}#{position:020}")
}

/// The level name as the proto spells it.
pub fn level_name(level: Option<Level>) -> String {
    level
        .and_then(|l| serde_json::to_value(l).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "UNSPECIFIED".to_owned())
}

/// The format name as the proto spells it.
pub fn format_name(format: Option<MeetingFormat>) -> Option<String> {
    format
        .and_then(|f| serde_json::to_value(f).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// A party of a channel, summit or commitment, with its name and state as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// An office's holder at the channel's last contact (channels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<String>,
}

impl Registry {
    pub fn party(&self, id: &str) -> Party {
        Party {
            id: id.to_owned(),
            name: self.name(id),
            state: self.state_of(id),
            holder: None,
            holder_name: None,
        }
    }
}

/// The states of these parties, sorted, without repeats.
pub fn party_states(parties: &[Party]) -> Vec<String> {
    let states: BTreeSet<String> = parties.iter().filter_map(|p| p.state.clone()).collect();
    states.into_iter().collect()
}

/// Takes event `id`'s steps out of the lifecycle streams (summits, commitments) that its row
/// `keys` (`prefix` + stream) name; a stream left without steps goes. Answers the streams that
/// remain, whose parties may have changed.
pub fn remove_steps<T, S>(
    streams: &mut BTreeMap<String, T>,
    keys: &BTreeSet<String>,
    prefix: &str,
    steps: impl Fn(&mut T) -> &mut Vec<S>,
    origin: impl Fn(&S) -> &Origin,
    id: EventId,
) -> Vec<String> {
    let mut remaining = Vec::new();
    for key in keys {
        let stream = key.trim_start_matches(prefix);
        let Some(entry) = streams.get_mut(stream) else {
            continue;
        };
        let entry_steps = steps(entry);
        entry_steps.retain(|step| origin(step).event_id != id);
        if entry_steps.is_empty() {
            streams.remove(stream);
        } else {
            remaining.push(stream.to_owned());
        }
    }
    remaining
}

/// Inserts `item` keeping `items` in log order (`position` ascending).
pub fn insert_by_position<T>(items: &mut Vec<T>, item: T, position: impl Fn(&T) -> u64) {
    let at = items.partition_point(|existing| position(existing) <= position(&item));
    items.insert(at, item);
}

/// The row keys an event contributed to, and where it stood: what a retraction or a
/// correction takes back out. Rebuilt from the rows when a model is loaded.
#[derive(Debug, Clone, Default)]
pub struct Index {
    keys: std::collections::HashMap<EventId, (Origin, BTreeSet<String>)>,
}

impl Index {
    pub fn note(&mut self, origin: &Origin, key: &str) {
        self.keys
            .entry(origin.event_id)
            .or_insert_with(|| (origin.clone(), BTreeSet::new()))
            .1
            .insert(key.to_owned());
    }

    /// The keys event `id` contributed to, and where it stood; forgets them.
    pub fn take(&mut self, id: EventId) -> Option<(Origin, BTreeSet<String>)> {
        self.keys.remove(&id)
    }
}
