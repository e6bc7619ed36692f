//! What pages show, built from the projections' answers and the log's typed events: rows of
//! tables, cards of events and their sources, the claims of an occurrence's readouts, and the
//! names of actors. Plain text for people (names, readable dates); the templates only lay it out.

use std::collections::HashMap;

use super::frame::{Frame, Link, Stamp, stamp, stamp_at};
use crate::domain::EventId;
use crate::domain::diplomacy::{Category, CountryCode, DiplomaticEvent, EventKind, Place};
use crate::http::{Dashboard, HttpError, readable};
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::CommitmentView;
use crate::projections::models::common::{ActorInfo, Party};
use crate::projections::models::divergence::{ClaimSources, DivergenceView};
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::summits::SummitView;
use crate::projections::read::request::Source;
use crate::store::RecordedEvent;

/// A table's rows: one per item, each built by `row` (with the page's frame, for its links).
pub(super) fn rows<T, R>(frame: &Frame, items: &[T], row: impl Fn(&Frame, &T) -> R) -> Vec<R> {
    items.iter().map(|item| row(frame, item)).collect()
}

fn party_links(frame: &Frame, parties: &[Party]) -> Vec<Link> {
    parties
        .iter()
        .map(|p| match p.holder_name.as_ref().or(p.holder.as_ref()) {
            // An office, and who held it at the channel's last contact.
            Some(holder) => frame.actor(&p.id, &format!("{} ({holder})", p.name)),
            None => frame.actor(&p.id, &p.name),
        })
        .collect()
}

pub(super) fn place_text(place: Option<&Place>) -> String {
    match place {
        Some(Place {
            name: Some(name),
            country: Some(country),
        }) => format!("{name}, {}", country.name()),
        Some(Place {
            name: Some(name), ..
        }) => name.clone(),
        Some(Place {
            country: Some(country),
            ..
        }) => country.name().to_owned(),
        _ => String::new(),
    }
}

pub(in crate::http) struct ChannelRow {
    pub(super) stream: String,
    pub(super) parties: Vec<Link>,
    pub(super) status: String,
    pub(super) status_class: String,
    pub(super) established: Option<Stamp>,
    pub(super) established_href: String,
    pub(super) last_contact: Option<Stamp>,
    pub(super) last_contact_href: String,
    pub(super) contacts: u32,
}

pub(super) fn channel_row(frame: &Frame, channel: &ChannelView) -> ChannelRow {
    ChannelRow {
        stream: channel.stream_id.clone().unwrap_or_default(),
        parties: party_links(frame, &channel.parties),
        status: readable::label(&channel.status),
        status_class: channel.status.to_ascii_lowercase(),
        established: stamp(channel.established_on.as_ref()),
        established_href: frame.event(channel.established_by),
        last_contact: stamp(channel.last_contact_on.as_ref()),
        last_contact_href: channel
            .last_contact_by
            .map(|id| frame.event(id))
            .unwrap_or_default(),
        contacts: channel.contacts,
    }
}

pub(in crate::http) struct SummitRow {
    pub(super) key: String,
    pub(super) parties: Vec<Link>,
    pub(super) stage: String,
    pub(super) stage_class: String,
    pub(super) since: Option<Stamp>,
    pub(super) scheduled_for: Option<Stamp>,
    /// Until scheduled: the expected period, as given and as worded.
    pub(super) expected: String,
    pub(super) place: String,
    /// Until a place is scheduled: the one proposed.
    pub(super) proposed_place: String,
    pub(super) latest_step: String,
    pub(super) latest_href: String,
}

pub(super) fn summit_row(frame: &Frame, summit: &SummitView) -> SummitRow {
    SummitRow {
        key: summit.key.clone(),
        parties: party_links(frame, &summit.parties),
        stage: readable::label(&summit.stage),
        stage_class: summit.stage.to_ascii_lowercase(),
        since: stamp(summit.since.as_ref()),
        scheduled_for: stamp(summit.scheduled_for.as_ref()),
        expected: summit
            .expected
            .iter()
            .map(readable::fuzzy)
            .chain(summit.expected_text.iter().map(|text| format!("“{text}”")))
            .collect::<Vec<_>>()
            .join(", "),
        place: place_text(summit.place.as_ref()),
        proposed_place: place_text(summit.proposed_place.as_ref()),
        latest_step: readable::label(&summit.latest_step),
        latest_href: frame.event(summit.latest_step_by),
    }
}

pub(in crate::http) struct CommitmentRow {
    pub(super) key: String,
    pub(super) what: String,
    pub(super) parties: Vec<Link>,
    pub(super) status: String,
    pub(super) status_class: String,
    pub(super) stated: Option<Stamp>,
    pub(super) stated_href: String,
    pub(super) due: String,
    pub(super) age: String,
}

pub(super) fn commitment_row(frame: &Frame, commitment: &CommitmentView) -> CommitmentRow {
    let mut due: Vec<String> = Vec::new();
    if let Some(time) = &commitment.due {
        due.push(readable::fuzzy(time));
    }
    if let Some(text) = &commitment.due_text {
        due.push(format!("“{text}”"));
    }
    if let Some(time) = &commitment.scheduled_for {
        due.push(format!("scheduled for {}", readable::fuzzy(time)));
    }
    CommitmentRow {
        key: commitment.key.clone(),
        what: commitment.what.clone(),
        parties: party_links(frame, &commitment.parties),
        status: readable::label(&commitment.status),
        status_class: commitment.status.to_ascii_lowercase(),
        stated: stamp(commitment.stated_on.as_ref()),
        stated_href: frame.event(commitment.stated_by),
        due: due.join(", "),
        age: match commitment.age_days {
            Some(1) => "1 day".to_owned(),
            Some(days) => format!("{days} days"),
            None => String::new(),
        },
    }
}

pub(super) struct ParticipantLink {
    pub(super) person: Link,
    pub(super) office: Option<Link>,
}

/// The actors the log knows, for names.
pub(super) struct Names(pub(super) HashMap<String, ActorInfo>);

impl Names {
    pub(super) async fn load(dashboard: &Dashboard, source: Source) -> Result<Self, HttpError> {
        let actors = dashboard.queries.actors(source).await?;
        Ok(Self(
            actors
                .items
                .into_iter()
                .map(|a| (a.id.clone(), a))
                .collect(),
        ))
    }

    /// An actor's name: as registered, else a state's name, else its id.
    pub(super) fn name(&self, id: &str) -> String {
        match self.0.get(id) {
            Some(actor) => actor.name.clone(),
            None => CountryCode::parse(id).map_or_else(|_| id.to_owned(), |c| c.name().to_owned()),
        }
    }

    pub(super) fn link(&self, frame: &Frame, id: &str) -> Link {
        frame.actor(id, &self.name(id))
    }
}

pub(super) struct QuoteCard {
    pub(super) text: String,
    /// For the `lang` attribute: the quote's language, else its report's.
    pub(super) lang: String,
    pub(super) translation: Option<String>,
}

pub(super) struct ClaimCard {
    pub(super) kind: String,
    pub(super) key: String,
    pub(super) text: String,
    /// Only this source makes it.
    pub(super) single: bool,
}

fn is_web_link(url: Option<&str>) -> bool {
    url.is_some_and(|u| {
        let u = u.trim_start().to_ascii_lowercase();
        u.starts_with("https://") || u.starts_with("http://")
    })
}

pub(super) struct SourceCard {
    pub(super) source: Link,
    pub(super) language: Option<String>,
    pub(super) published: Option<Stamp>,
    pub(super) url: Option<String>,
    /// Whether `url` may be a link (http or https only: never `javascript:` from a source).
    pub(super) url_is_link: bool,
    pub(super) title: Option<String>,
    pub(super) quotes: Vec<QuoteCard>,
    pub(super) claims: Vec<ClaimCard>,
}

pub(super) struct EventCard {
    pub(super) position: u64,
    pub(super) kind: String,
    pub(super) occurred: Option<Stamp>,
    pub(super) recorded: Stamp,
    pub(super) stream: String,
    pub(super) href: String,
    pub(super) summary: Option<String>,
    pub(super) actors: Vec<Link>,
    pub(super) note: Option<String>,
    pub(super) sources: Vec<SourceCard>,
    /// The readouts side by side, for an occurrence with sources or a report attached to one.
    pub(super) occurrence_href: Option<String>,
}

/// The actors an event's kind names (participants, parties, speakers, …), by their names,
/// in order of first mention.
fn actors_named(names: &Names, frame: &Frame, event: &DiplomaticEvent) -> Vec<Link> {
    fn walk(value: &serde_json::Value, into: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if !into.contains(s) => into.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, into)),
            serde_json::Value::Object(fields) => fields.values().for_each(|item| walk(item, into)),
            _ => {}
        }
    }
    let mut strings = Vec::new();
    walk(
        &serde_json::to_value(&event.kind).unwrap_or_default(),
        &mut strings,
    );
    strings
        .iter()
        .filter(|s| names.0.contains_key(s.as_str()))
        .map(|id| names.link(frame, id))
        .collect()
}

/// Who took part in an interaction (a call, a meeting, …), with the offices they acted as;
/// for other events, the actors they name.
pub(super) fn participants_of(
    names: &Names,
    frame: &Frame,
    event: &DiplomaticEvent,
) -> Vec<ParticipantLink> {
    match crate::projections::models::common::interaction(event) {
        Some(interaction) => interaction
            .participants
            .iter()
            .map(|p| ParticipantLink {
                person: names.link(frame, p.actor.as_str()),
                office: p.acting_as.as_ref().map(|o| names.link(frame, o.as_str())),
            })
            .collect(),
        None => actors_named(names, frame, event)
            .into_iter()
            .map(|person| ParticipantLink {
                person,
                office: None,
            })
            .collect(),
    }
}

/// The sentence an event's kind carries, if any (a summary, a subject, what was committed).
pub(super) fn summary_of(event: &DiplomaticEvent) -> Option<String> {
    let json = serde_json::to_value(&event.kind).ok()?;
    let fields = json.as_object()?.values().next()?.as_object()?;
    ["summary", "subject", "what", "intent", "purpose", "reason"]
        .iter()
        .find_map(|key| fields.get(*key).and_then(|v| v.as_str()).map(str::to_owned))
}

pub(super) fn event_card(
    names: &Names,
    frame: &Frame,
    recorded: &RecordedEvent,
    event: &DiplomaticEvent,
) -> EventCard {
    let id = EventId::from(recorded.event_id);
    let occurrence = match &event.kind {
        EventKind::SourceReportAttached(attached) => Some(attached.occurrence),
        kind if kind.category() == Category::Occurrence && !event.sources.is_empty() => Some(id),
        _ => None,
    };
    EventCard {
        position: recorded.position.max(0) as u64,
        kind: readable::label(event.kind.name()),
        occurred: stamp(event.occurred.as_ref()),
        recorded: stamp_at(recorded.recorded_at),
        stream: recorded.stream_id.clone(),
        href: frame.event(id),
        summary: summary_of(event),
        actors: actors_named(names, frame, event),
        note: event.note.clone(),
        sources: event
            .sources
            .iter()
            .map(|source| {
                let language = source.language.as_ref().map(|l| l.as_str().to_owned());
                SourceCard {
                    source: names.link(frame, source.source.as_str()),
                    language: language.as_deref().map(readable::language),
                    published: source.published_at.map(stamp_at),
                    url_is_link: is_web_link(source.url.as_deref()),
                    url: source.url.clone(),
                    title: source.title.clone(),
                    quotes: source
                        .quotes
                        .iter()
                        .map(|q| QuoteCard {
                            text: q.text.clone(),
                            lang: q
                                .language
                                .as_ref()
                                .map(|l| l.as_str().to_owned())
                                .or_else(|| language.clone())
                                .unwrap_or_default(),
                            translation: q.translation.clone(),
                        })
                        .collect(),
                    claims: source
                        .claims
                        .iter()
                        .map(|c| ClaimCard {
                            kind: readable::label(
                                serde_json::to_value(c.kind)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default()
                                    .as_str(),
                            ),
                            key: c.key.as_str().to_owned(),
                            text: c
                                .text
                                .clone()
                                .unwrap_or_else(|| readable::label(c.key.as_str())),
                            single: false,
                        })
                        .collect(),
                }
            })
            .collect(),
        occurrence_href: occurrence.map(|o| frame.event(o)),
    }
}

/// A stored diplomatic event, typed (`None` if it is not one the recorder wrote).
pub(super) fn typed(recorded: &RecordedEvent) -> Option<DiplomaticEvent> {
    if !crate::recorder::is_diplomatic(&recorded.metadata.0) {
        return None;
    }
    match DiplomaticEvent::from_json_text(&recorded.data_text) {
        Ok(event) => Some(event),
        Err((path, message)) => {
            tracing::warn!(
                position = recorded.position,
                path,
                message,
                "a stored diplomatic event does not parse"
            );
            None
        }
    }
}

pub(super) struct ReportColumn {
    pub(super) card: SourceCard,
    pub(super) recorded_href: String,
}

pub(super) struct ClaimLine {
    pub(super) kind: String,
    pub(super) key: String,
    pub(super) wordings: Vec<Wording>,
}

pub(super) struct Wording {
    pub(super) source: String,
    pub(super) text: String,
}

pub(super) fn claim_line(claim: &ClaimSources) -> ClaimLine {
    ClaimLine {
        kind: readable::label(&claim.kind),
        key: readable::label(&claim.key),
        wordings: claim
            .sources
            .iter()
            .map(|w| Wording {
                source: w.source_name.clone(),
                text: w
                    .text
                    .clone()
                    .unwrap_or_else(|| readable::label(&claim.key)),
            })
            .collect(),
    }
}

/// Each report of an occurrence as a column; each source's claims go under its first report,
/// those only it makes marked.
pub(super) fn report_columns(frame: &Frame, view: &DivergenceView) -> Vec<ReportColumn> {
    let mut claimed: Vec<String> = Vec::new();
    view.reports
        .iter()
        .map(|report| {
            let claims = if claimed.contains(&report.source) {
                Vec::new()
            } else {
                claimed.push(report.source.clone());
                let mine = |claims: &[ClaimSources], single: bool| -> Vec<ClaimCard> {
                    claims
                        .iter()
                        .filter_map(|claim| {
                            let wording =
                                claim.sources.iter().find(|w| w.source == report.source)?;
                            Some(ClaimCard {
                                kind: readable::label(&claim.kind),
                                key: claim.key.clone(),
                                text: wording
                                    .text
                                    .clone()
                                    .unwrap_or_else(|| readable::label(&claim.key)),
                                single,
                            })
                        })
                        .collect()
                };
                let mut claims = mine(&view.single_source, true);
                claims.extend(mine(&view.shared, false));
                claims
            };
            let language = report.language.clone();
            ReportColumn {
                card: SourceCard {
                    source: frame.actor(&report.source, &report.source_name),
                    language: language.as_deref().map(readable::language),
                    published: report.published_at.map(stamp_at),
                    url_is_link: is_web_link(report.url.as_deref()),
                    url: report.url.clone(),
                    title: None,
                    quotes: report
                        .quotes
                        .iter()
                        .map(|q| QuoteCard {
                            text: q.text.clone(),
                            lang: q
                                .language
                                .clone()
                                .or_else(|| language.clone())
                                .unwrap_or_default(),
                            translation: q.translation.clone(),
                        })
                        .collect(),
                    claims,
                },
                recorded_href: frame.event(report.reported_by),
            }
        })
        .collect()
}

pub(super) struct PairRow {
    pub(super) href: String,
    pub(super) names: String,
    pub(super) contacts: u32,
    /// Of the contacts, coded records.
    pub(super) coded: u32,
    pub(super) last_contact: Option<Stamp>,
    pub(super) last_contact_kind: String,
    pub(super) channels: usize,
    pub(super) summits: usize,
    pub(super) commitments: usize,
}

/// A pair of states (`view.states` holds two) in the relations table.
pub(super) fn pair_row(frame: &Frame, names: &Names, view: &RelationView) -> PairRow {
    PairRow {
        href: frame.pair(&view.states[0], &view.states[1]),
        names: pair_names(names, view),
        contacts: view.contacts,
        coded: view.coded_contacts,
        last_contact: view
            .last_contact
            .as_ref()
            .and_then(|c| stamp(c.occurred.as_ref())),
        last_contact_kind: view
            .last_contact
            .as_ref()
            .map(|c| readable::label(&c.kind))
            .unwrap_or_default(),
        channels: view.open_channels.len(),
        summits: view.pending_summits.len(),
        commitments: view.pending_commitments.len(),
    }
}

/// The two states by the names the log registered for them.
pub(super) fn pair_names(names: &Names, view: &RelationView) -> String {
    view.states
        .iter()
        .map(|state| names.name(state))
        .collect::<Vec<_>>()
        .join(" – ")
}

pub(super) struct LevelCount {
    pub(super) level: String,
    pub(super) count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_url_is_a_link_only_over_http() {
        assert!(is_web_link(Some("https://mid.ru/ru/foreign_policy/news/")));
        assert!(is_web_link(Some("HTTP://example.org")));
        assert!(!is_web_link(Some("javascript:alert(1)")));
        assert!(!is_web_link(None));
    }
}
