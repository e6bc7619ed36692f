//! Coded records (`CodedEventReported`: PLOVER today, GDELT and POLECAT later) as the read
//! models take them in: an interaction of source actors with target actors, with what the
//! record says besides (its PLOVER type and mode, quad class, place as worded, publication);
//! and which records a reader asks for (readouts, coded records, or both).

use serde::{Deserialize, Serialize};

use crate::domain::diplomacy::{
    CodedActor, CodedEventReported, DiplomaticEvent, Participant, plover_type_of, quad_class_of,
};

/// Which records a reader asks for: the typed events of readouts (calls, meetings, visits,
/// rounds, recorded from what sources said), the coded records of event-data projects
/// (`CodedEventReported`: PLOVER today), or both (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Records {
    #[default]
    Both,
    Readouts,
    Coded,
}

impl Records {
    /// Whether an interaction (coded or not) is among these records.
    pub fn keeps(self, coded: bool) -> bool {
        match self {
            Records::Both => true,
            Records::Readouts => !coded,
            Records::Coded => coded,
        }
    }
}

/// What a coded record says beyond its actors: its PLOVER type and mode, the quad class
/// (`quad_class_of`), the place and the words as the record gives them, and the publication
/// it was coded from (its first source).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CodedRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plover_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quad_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A coded record as an interaction: its source and target actors (the interaction's
/// participants are the sources, then the targets) and what it says.
#[derive(Debug, Clone)]
pub struct Coded {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    pub record: CodedRecord,
}

/// A coded record's participants (its sources, then its targets, each acting for itself) and
/// its sides and coding. It gives no level, format or structured place (its location is text,
/// in `record`).
pub fn coded_sides(
    event: &DiplomaticEvent,
    coded: &CodedEventReported,
) -> (Vec<Participant>, Coded) {
    let ids = |actors: &[CodedActor]| -> Vec<String> {
        actors.iter().map(|a| a.actor.to_string()).collect()
    };
    let participants = coded
        .sources
        .iter()
        .chain(&coded.targets)
        .map(|a| Participant {
            actor: a.actor.clone(),
            acting_as: None,
        })
        .collect();
    let sides = Coded {
        sources: ids(&coded.sources),
        targets: ids(&coded.targets),
        record: CodedRecord {
            plover_type: plover_type_of(event),
            mode: event.coding.as_ref().and_then(|c| c.plover_mode.clone()),
            quad_class: quad_class_of(event).map(|q| q.name().to_owned()),
            location: coded.location.clone(),
            event_text: coded.event_text.clone(),
            publication: event.sources.first().map(|s| s.source.to_string()),
            publication_name: None,
            external_id: coded.external_id.clone(),
        },
    };
    (participants, sides)
}
