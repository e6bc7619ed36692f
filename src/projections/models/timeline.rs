//! `timeline`: every interaction (call, meeting, visit, negotiation round, and coded record:
//! a source actor acting on a target actor) with who took part, in the order they happened; a
//! person's, an office's or a state's timeline is the interactions that name them (a state:
//! through any of its people or offices). A coded record is on the timelines of its sources
//! and of its targets, each participant marked with its side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::EventId;
use crate::domain::diplomacy::{FuzzyTime, Place};
use crate::projections::models::common::{
    ACTOR_STATUS, CodedRecord, Contributions, Index, Origin, Registry, apply_fact, format_name,
    happened_key, interaction, level_name, target_of,
};
use crate::projections::{Fact, Model, Row, RowData, Want};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineParticipant {
    pub actor: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acting_as: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acting_as_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// In a coded record: `SOURCE` or `TARGET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// One interaction, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub origin: Origin,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred: Option<FuzzyTime>,
    pub level: String,
    /// Whether the level was derived from the participants' offices (the event gave none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub level_derived: bool,
    pub participants: Vec<TimelineParticipant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// The format as the proto spells it (e.g. THIRD_COUNTRY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// A coded record's coding, place and publication; none for a readout's interaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coded: Option<CodedRecord>,
}

impl TimelineEntry {
    /// Whether the entry is a coded record (rather than a readout's interaction).
    pub fn is_coded(&self) -> bool {
        self.coded.is_some()
    }
}

const PREFIX: &str = "interaction:";

#[derive(Debug, Default)]
pub struct Timeline {
    registry: Registry,
    entries: BTreeMap<EventId, TimelineEntry>,
    index: Index,
}

impl Timeline {
    pub fn entries(&self) -> impl Iterator<Item = &TimelineEntry> {
        self.entries.values()
    }
}

impl Contributions for Timeline {
    fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn add(&mut self, fact: &Fact) -> Vec<String> {
        let Some(interaction) = interaction(&fact.event) else {
            return Vec::new();
        };
        let registry = &self.registry;
        let sources = interaction.coded.as_ref().map_or(0, |c| c.sources.len());
        let participants = interaction
            .participants
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let actor = p.actor.to_string();
                let office = p.acting_as.as_ref().map(ToString::to_string);
                TimelineParticipant {
                    name: registry.name(&actor),
                    acting_as_name: office.as_deref().map(|o| registry.name(o)),
                    state: office
                        .as_deref()
                        .and_then(|o| registry.state_of(o))
                        .or_else(|| registry.state_of(&actor)),
                    actor,
                    acting_as: office,
                    role: interaction
                        .coded
                        .as_ref()
                        .map(|_| if n < sources { "SOURCE" } else { "TARGET" }.to_owned()),
                }
            })
            .collect();
        let (level, level_derived) = interaction.level(registry);
        let origin = Origin::of(fact);
        let key = format!("{PREFIX}{}", fact.event_id);
        self.entries.insert(
            fact.event_id,
            TimelineEntry {
                origin: origin.clone(),
                kind: interaction.kind.to_owned(),
                occurred: fact.event.occurred.clone(),
                level: level_name(level),
                level_derived,
                participants,
                place: interaction.place,
                topics: interaction.topics,
                format: format_name(interaction.format),
                track: interaction.track,
                round: interaction.round,
                coded: interaction.coded.map(|coded| CodedRecord {
                    publication_name: coded
                        .record
                        .publication
                        .as_deref()
                        .map(|p| registry.name(p)),
                    ..coded.record
                }),
            },
        );
        self.index.note(&origin, &key);
        vec![key]
    }

    fn remove(&mut self, id: EventId) -> (Vec<String>, Option<Origin>) {
        let Some((origin, keys)) = self.index.take(id) else {
            return (Vec::new(), None);
        };
        self.entries.remove(&id);
        (keys.into_iter().collect(), Some(origin))
    }
}

impl Model for Timeline {
    const NAME: &'static str = "timeline";
    /// 2: entries carry format, track, round and derived levels. 3: coded records.
    /// 4: versioned rows (the rows are the same; bumped so that a rebuild writes their
    /// history, and an older server, which would not, leaves them alone).
    const VERSION: i32 = 4;

    fn apply(&mut self, fact: &Fact) -> Vec<String> {
        apply_fact(self, fact)
    }

    fn row(&self, key: &str) -> Option<Row> {
        if Registry::is_row(key) {
            return self.registry.row(key);
        }
        let id = EventId::parse(key.strip_prefix(PREFIX)?).ok()?;
        Some(entry_row(key.to_owned(), self.entries.get(&id)?))
    }

    fn rows(&self) -> Vec<Row> {
        self.registry
            .rows()
            .chain(
                self.entries
                    .iter()
                    .map(|(id, entry)| entry_row(format!("{PREFIX}{id}"), entry)),
            )
            .collect()
    }

    /// The entries are dropped as their rows are made: a replay over a large log holds
    /// about as many of one as of the other, not both.
    fn into_rows(mut self) -> Vec<Row> {
        self.index = Index::default();
        let mut rows: Vec<Row> = self.registry.rows().collect();
        rows.reserve(self.entries.len());
        rows.extend(
            std::mem::take(&mut self.entries)
                .into_iter()
                .map(|(id, entry)| entry_row(format!("{PREFIX}{id}"), &entry)),
        );
        rows
    }

    fn from_rows(rows: Vec<Row>) -> Result<Self, String> {
        let mut model = Self::default();
        model.hydrate(rows)?;
        Ok(model)
    }

    /// Only the actors stay in memory: an entry is needed again only when its event is
    /// retracted or corrected, and its key follows from the event's id.
    const RESIDENT: Option<&'static [&'static str]> = Some(&[ACTOR_STATUS]);

    fn wants(&self, fact: &Fact) -> Vec<Want> {
        target_of(fact)
            .map(|id| vec![Want::Key(format!("{PREFIX}{id}"))])
            .unwrap_or_default()
    }

    fn hydrate(&mut self, rows: Vec<Row>) -> Result<(), String> {
        for row in rows {
            if self.registry.load(&row)? {
                continue;
            }
            let entry: TimelineEntry = row.decode("timeline")?;
            if self.entries.contains_key(&entry.origin.event_id) {
                continue;
            }
            self.index.note(&entry.origin, &row.key);
            self.entries.insert(entry.origin.event_id, entry);
        }
        Ok(())
    }

    fn settle(&mut self) {
        self.entries = BTreeMap::new();
        self.index = Index::default();
    }
}

/// Decodes a timeline row.
pub fn entry_of(row: &Row) -> Result<TimelineEntry, String> {
    row.decode("timeline")
}

/// Whether the entry names this actor: a participant, an office or a state.
pub fn names(entry: &TimelineEntry, actor: &str) -> bool {
    entry.participants.iter().any(|p| {
        p.actor == actor
            || p.acting_as.as_deref() == Some(actor)
            || p.state.as_deref() == Some(actor)
    })
}

/// The row of `entry`, under `key`.
fn entry_row(key: String, entry: &TimelineEntry) -> Row {
    let mut actors: Vec<String> = entry
        .participants
        .iter()
        .flat_map(|p| std::iter::once(p.actor.clone()).chain(p.acting_as.clone()))
        .collect();
    actors.sort();
    actors.dedup();
    let mut states: Vec<String> = entry
        .participants
        .iter()
        .filter_map(|p| p.state.clone())
        .collect();
    states.sort();
    states.dedup();
    Row {
        key,
        data: RowData::new(entry).expect("an entry serializes"),
        actors,
        states,
        status: entry.kind.clone(),
        sort_key: happened_key(entry.occurred.as_ref(), entry.origin.position),
    }
}
