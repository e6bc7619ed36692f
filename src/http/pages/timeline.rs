//! A timeline row of the actor page, and the phrase that says an interaction's setting (its
//! level, format, place, track and round), which the relation page also uses.

use super::frame::{Frame, Stamp, stamp};
use super::views::{ParticipantLink, place_text};
use crate::domain::diplomacy::Place;
use crate::http::readable;
use crate::projections::models::timeline::TimelineEntry;

pub(super) struct TimelineRow {
    pub(super) when: Option<Stamp>,
    pub(super) kind: String,
    /// Level, format, place, track and round, readable: "Experts, third country, Istanbul
    /// (Turkey), rus-usa-missions round 2".
    pub(super) setting: String,
    /// Whether the level was derived from the participants' offices.
    pub(super) level_derived: bool,
    pub(super) participants: Vec<ParticipantLink>,
    pub(super) topics: String,
    pub(super) href: String,
    /// A coded record rather than a readout's interaction.
    pub(super) coded: bool,
}

/// What the timeline says of an interaction's setting, readable, in one phrase; of a coded
/// record, its type, mode, quad class, place and publication: "Consult, phone, verbal
/// cooperation, Oslo, per Reuters".
fn setting(entry: &TimelineEntry) -> String {
    if let Some(coded) = &entry.coded {
        let mut parts: Vec<String> = [&coded.plover_type, &coded.mode, &coded.quad_class]
            .into_iter()
            .flatten()
            .map(|part| readable::label(part))
            .collect();
        parts.extend(coded.location.clone());
        if let Some(publication) = coded
            .publication_name
            .as_ref()
            .or(coded.publication.as_ref())
        {
            parts.push(format!("per {publication}"));
        }
        return parts.join(", ");
    }
    setting_text(
        &entry.level,
        entry.format.as_deref(),
        entry.place.as_ref(),
        entry.track.as_deref(),
        entry.round,
    )
}

/// An interaction's level, format, place, track and round as a phrase (what it gives of them).
pub(super) fn setting_text(
    level: &str,
    format: Option<&str>,
    place: Option<&Place>,
    track: Option<&str>,
    round: Option<u32>,
) -> String {
    let mut parts = Vec::new();
    if !level.is_empty() && level != "UNSPECIFIED" {
        parts.push(readable::label(level));
    }
    if let Some(format) = format {
        parts.push(readable::label(format).to_lowercase());
    }
    let place = match place {
        Some(Place {
            name: Some(name),
            country: Some(country),
        }) => format!("{name} ({})", country.name()),
        other => place_text(other),
    };
    if !place.is_empty() {
        parts.push(place);
    }
    match (track, round) {
        (Some(track), Some(round)) => parts.push(format!("{track} round {round}")),
        (Some(track), None) => parts.push(track.to_owned()),
        (None, Some(round)) => parts.push(format!("round {round}")),
        (None, None) => {}
    }
    parts.join(", ")
}

pub(super) fn timeline_row(frame: &Frame, entry: &TimelineEntry) -> TimelineRow {
    TimelineRow {
        when: stamp(entry.occurred.as_ref()),
        kind: readable::label(&entry.kind),
        setting: setting(entry),
        level_derived: entry.level_derived,
        participants: entry
            .participants
            .iter()
            .map(|p| ParticipantLink {
                person: match p.role.as_deref() {
                    Some(role) => frame.actor(
                        &p.actor,
                        &format!("{} ({})", p.name, role.to_ascii_lowercase()),
                    ),
                    None => frame.actor(&p.actor, &p.name),
                },
                office: p.acting_as.as_ref().map(|office| {
                    frame.actor(office, p.acting_as_name.as_deref().unwrap_or(office))
                }),
            })
            .collect(),
        topics: entry
            .topics
            .iter()
            .map(|t| readable::label(t))
            .collect::<Vec<_>>()
            .join(", "),
        href: frame.event(entry.origin.event_id),
        coded: entry.is_coded(),
    }
}
