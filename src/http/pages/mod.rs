//! The dashboard's pages: server-rendered (askama templates in `templates/`), one handler per
//! page. Each reads through `Queries` (the projections) or `EventStore` (the log), turns the
//! answer into plain text for people (names, readable dates) and renders it. Every page
//! answers now (waiting for `min_position` if given) or `as_of` a past position or time, and
//! with `fragment=1` renders only its `<main>`, which the page's script swaps in when the log
//! moves. No SQL here, and no decisions the projections make.

mod frame;
mod request;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;

pub(super) use self::frame::Frame;
use self::frame::{Link, Stamp, stamp, stamp_at};
use self::request::{Ask, Params};
use super::Dashboard;
use super::error::HttpError;
use super::readable;
use crate::domain::diplomacy::{Category, CountryCode, DiplomaticEvent, EventKind, Place};
use crate::domain::{Direction, EventId, EventType, ReadAllQuery};
use crate::projections::channels::ChannelView;
use crate::projections::commitments::CommitmentView;
use crate::projections::common::{ActorInfo, Party};
use crate::projections::divergence::{ClaimSources, DivergenceView};
use crate::projections::query::{ListFilter, MAX_PAGE_SIZE, Page, QueryError, Source};
use crate::projections::relations::RelationView;
use crate::projections::summits::SummitView;
use crate::projections::timeline::TimelineEntry;
use crate::store::RecordedEvent;

/// Events on the recent-events page.
const RECENT_EVENTS: usize = 50;

const EVERYTHING: Page = Page {
    size: MAX_PAGE_SIZE,
    token: String::new(),
};

// ---------------------------------------------------------------------------------------------
// Pieces of pages

fn party_links(frame: &Frame, parties: &[Party]) -> Vec<Link> {
    parties
        .iter()
        .map(|p| frame.actor(&p.id, &p.name))
        .collect()
}

fn place_text(place: Option<&Place>) -> String {
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

pub struct ChannelRow {
    pub stream: String,
    pub parties: Vec<Link>,
    pub status: String,
    pub status_class: String,
    pub established: Option<Stamp>,
    pub established_href: String,
    pub last_contact: Option<Stamp>,
    pub last_contact_href: String,
    pub contacts: u32,
}

fn channel_row(frame: &Frame, channel: &ChannelView) -> ChannelRow {
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

pub struct SummitRow {
    pub key: String,
    pub parties: Vec<Link>,
    pub stage: String,
    pub stage_class: String,
    pub since: Option<Stamp>,
    pub scheduled_for: Option<Stamp>,
    pub place: String,
    pub latest_step: String,
    pub latest_href: String,
}

fn summit_row(frame: &Frame, summit: &SummitView) -> SummitRow {
    SummitRow {
        key: summit.key.clone(),
        parties: party_links(frame, &summit.parties),
        stage: readable::label(&summit.stage),
        stage_class: summit.stage.to_ascii_lowercase(),
        since: stamp(summit.since.as_ref()),
        scheduled_for: stamp(summit.scheduled_for.as_ref()),
        place: place_text(summit.place.as_ref()),
        latest_step: readable::label(&summit.latest_step),
        latest_href: frame.event(summit.latest_step_by),
    }
}

pub struct CommitmentRow {
    pub key: String,
    pub what: String,
    pub parties: Vec<Link>,
    pub status: String,
    pub status_class: String,
    pub stated: Option<Stamp>,
    pub stated_href: String,
    pub due: String,
    pub age: String,
}

fn commitment_row(frame: &Frame, commitment: &CommitmentView) -> CommitmentRow {
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

pub struct ParticipantLink {
    pub person: Link,
    pub office: Option<Link>,
}

pub struct TimelineRow {
    pub when: Option<Stamp>,
    pub kind: String,
    pub level: String,
    pub participants: Vec<ParticipantLink>,
    pub place: String,
    pub topics: String,
    pub href: String,
}

fn timeline_row(frame: &Frame, entry: &TimelineEntry) -> TimelineRow {
    TimelineRow {
        when: stamp(entry.occurred.as_ref()),
        kind: readable::label(&entry.kind),
        level: if entry.level == "UNSPECIFIED" {
            String::new()
        } else {
            readable::label(&entry.level)
        },
        participants: entry
            .participants
            .iter()
            .map(|p| ParticipantLink {
                person: frame.actor(&p.actor, &p.name),
                office: p.acting_as.as_ref().map(|office| {
                    frame.actor(office, p.acting_as_name.as_deref().unwrap_or(office))
                }),
            })
            .collect(),
        place: place_text(entry.place.as_ref()),
        topics: entry
            .topics
            .iter()
            .map(|t| readable::label(t))
            .collect::<Vec<_>>()
            .join(", "),
        href: frame.event(entry.origin.event_id),
    }
}

/// The actors the log knows, for names.
struct Names(HashMap<String, ActorInfo>);

impl Names {
    async fn load(dashboard: &Dashboard, source: Source) -> Result<Self, HttpError> {
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
    fn name(&self, id: &str) -> String {
        match self.0.get(id) {
            Some(actor) => actor.name.clone(),
            None => CountryCode::parse(id).map_or_else(|_| id.to_owned(), |c| c.name().to_owned()),
        }
    }

    fn link(&self, frame: &Frame, id: &str) -> Link {
        frame.actor(id, &self.name(id))
    }
}

pub struct QuoteCard {
    pub text: String,
    /// For the `lang` attribute: the quote's language, else its report's.
    pub lang: String,
    pub translation: Option<String>,
}

pub struct ClaimCard {
    pub kind: String,
    pub key: String,
    pub text: String,
    /// Only this source makes it.
    pub single: bool,
}

fn is_web_link(url: Option<&str>) -> bool {
    url.is_some_and(|u| {
        let u = u.trim_start().to_ascii_lowercase();
        u.starts_with("https://") || u.starts_with("http://")
    })
}

pub struct SourceCard {
    pub source: Link,
    pub language: Option<String>,
    pub published: Option<Stamp>,
    pub url: Option<String>,
    /// Whether `url` may be a link (http or https only: never `javascript:` from a source).
    pub url_is_link: bool,
    pub title: Option<String>,
    pub quotes: Vec<QuoteCard>,
    pub claims: Vec<ClaimCard>,
}

pub struct EventCard {
    pub position: u64,
    pub kind: String,
    pub occurred: Option<Stamp>,
    pub recorded: Stamp,
    pub stream: String,
    pub href: String,
    pub summary: Option<String>,
    pub actors: Vec<Link>,
    pub note: Option<String>,
    pub sources: Vec<SourceCard>,
    /// The readouts side by side, for an occurrence with sources or a report attached to one.
    pub occurrence_href: Option<String>,
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
fn participants_of(names: &Names, frame: &Frame, event: &DiplomaticEvent) -> Vec<ParticipantLink> {
    match crate::projections::common::interaction(event) {
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
fn summary_of(event: &DiplomaticEvent) -> Option<String> {
    let json = serde_json::to_value(&event.kind).ok()?;
    let fields = json.as_object()?.values().next()?.as_object()?;
    ["summary", "subject", "what", "intent", "purpose", "reason"]
        .iter()
        .find_map(|key| fields.get(*key).and_then(|v| v.as_str()).map(str::to_owned))
}

fn event_card(
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
fn typed(recorded: &RecordedEvent) -> Option<DiplomaticEvent> {
    if !crate::recorder::is_diplomatic(&recorded.metadata.0) {
        return None;
    }
    let json: serde_json::Value = serde_json::from_str(&recorded.data_text).ok()?;
    match DiplomaticEvent::from_json(json) {
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

/// Where the log stood for this request: its head now, or the as-of bound; and the time.
async fn log_bound(dashboard: &Dashboard, ask: &Ask) -> Result<(u64, DateTime<Utc>), HttpError> {
    match ask.as_of() {
        Some(as_of) => Ok(dashboard.queries.bound(as_of).await?),
        None => Ok((dashboard.store.head().await?, Utc::now())),
    }
}

fn render<T: Template>(page: &T) -> Result<Response, HttpError> {
    let html = page.render()?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

// ---------------------------------------------------------------------------------------------
// Pages

#[derive(Template)]
#[template(path = "overview.html", config = "src/http/askama.toml")]
struct OverviewPage {
    frame: Frame,
    channels: Vec<ChannelRow>,
    summits: Vec<SummitRow>,
    commitments: Vec<CommitmentRow>,
}

/// Channels neither closed; summits neither held nor cancelled; commitments neither fulfilled
/// nor withdrawn (lapsed ones included: they are still owed).
fn open_channels() -> ListFilter {
    ListFilter {
        status: ["ACTIVE", "DORMANT", "SUSPENDED"]
            .map(String::from)
            .to_vec(),
        ..ListFilter::default()
    }
}

fn pending_summits() -> ListFilter {
    ListFilter {
        pending_only: true,
        ..ListFilter::default()
    }
}

fn open_commitments() -> ListFilter {
    ListFilter {
        status: ["PENDING", "SCHEDULED", "LAPSED"]
            .map(String::from)
            .to_vec(),
        ..ListFilter::default()
    }
}

pub async fn overview(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Overview", "overview", &uri);
    let source = ask.source(&dashboard);
    let (open, pending, owed, all) = (
        open_channels(),
        pending_summits(),
        open_commitments(),
        EVERYTHING,
    );
    let (channels, summits, commitments) = tokio::try_join!(
        dashboard.queries.channels(source, &open, &all),
        dashboard.queries.summits(source, &pending, &all),
        dashboard.queries.commitments(source, &owed, &all),
    )?;
    // The page reflects what all three reflect.
    let position = channels
        .position
        .min(summits.position)
        .min(commitments.position);
    frame.answered(position, channels.reference);
    render(&OverviewPage {
        channels: channels
            .items
            .iter()
            .map(|c| channel_row(&frame, c))
            .collect(),
        summits: summits
            .items
            .iter()
            .map(|s| summit_row(&frame, s))
            .collect(),
        commitments: commitments
            .items
            .iter()
            .map(|c| commitment_row(&frame, c))
            .collect(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "channels.html", config = "src/http/askama.toml")]
struct ChannelsPage {
    frame: Frame,
    channels: Vec<ChannelRow>,
}

pub async fn channels(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Open channels", "channels", &uri);
    let answer = dashboard
        .queries
        .channels(ask.source(&dashboard), &open_channels(), &EVERYTHING)
        .await?;
    frame.answered(answer.position, answer.reference);
    render(&ChannelsPage {
        channels: answer
            .items
            .iter()
            .map(|c| channel_row(&frame, c))
            .collect(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "summits.html", config = "src/http/askama.toml")]
struct SummitsPage {
    frame: Frame,
    summits: Vec<SummitRow>,
}

pub async fn summits(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Pending summit preparations", "summits", &uri);
    let answer = dashboard
        .queries
        .summits(ask.source(&dashboard), &pending_summits(), &EVERYTHING)
        .await?;
    frame.answered(answer.position, answer.reference);
    render(&SummitsPage {
        summits: answer.items.iter().map(|s| summit_row(&frame, s)).collect(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "commitments.html", config = "src/http/askama.toml")]
struct CommitmentsPage {
    frame: Frame,
    commitments: Vec<CommitmentRow>,
}

pub async fn commitments(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Pending commitments", "commitments", &uri);
    let answer = dashboard
        .queries
        .commitments(ask.source(&dashboard), &open_commitments(), &EVERYTHING)
        .await?;
    frame.answered(answer.position, answer.reference);
    render(&CommitmentsPage {
        commitments: answer
            .items
            .iter()
            .map(|c| commitment_row(&frame, c))
            .collect(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "events.html", config = "src/http/askama.toml")]
struct EventsPage {
    frame: Frame,
    events: Vec<EventCard>,
    limit: usize,
}

pub async fn events(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Recent events", "events", &uri);
    let (bound, reference) = log_bound(&dashboard, &ask).await?;
    let names = Names::load(&dashboard, ask.source(&dashboard)).await?;
    let recorded: Vec<RecordedEvent> = if bound == 0 {
        Vec::new()
    } else {
        let types = EventKind::NAMES
            .iter()
            .map(|name| EventType::parse(*name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| HttpError::Internal(format!("a kind is not an event type: {e}")))?;
        dashboard
            .store
            .read_all(ReadAllQuery {
                from_position: Some(bound),
                direction: Direction::Backward,
                limit: Some(RECENT_EVENTS as u64),
                event_types: types,
                stream_prefix: None,
            })
            .await?
            .try_collect()
            .await?
    };
    frame.answered(bound, reference);
    let events = recorded
        .iter()
        .filter_map(|r| typed(r).map(|event| event_card(&names, &frame, r, &event)))
        .collect();
    render(&EventsPage {
        frame,
        events,
        limit: RECENT_EVENTS,
    })
}

pub struct ReportColumn {
    pub card: SourceCard,
    pub recorded_href: String,
}

pub struct ClaimLine {
    pub kind: String,
    pub key: String,
    pub wordings: Vec<Wording>,
}

pub struct Wording {
    pub source: String,
    pub text: String,
}

fn claim_line(claim: &ClaimSources) -> ClaimLine {
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

#[derive(Template)]
#[template(path = "occurrence.html", config = "src/http/askama.toml")]
struct OccurrencePage {
    frame: Frame,
    occurred: Option<Stamp>,
    stream: String,
    participants: Vec<ParticipantLink>,
    summary: Option<String>,
    reports: Vec<ReportColumn>,
    single: Vec<ClaimLine>,
    shared: Vec<ClaimLine>,
}

#[derive(Template)]
#[template(path = "event.html", config = "src/http/askama.toml")]
struct EventPage {
    frame: Frame,
    card: EventCard,
}

/// `/occurrences/{key}`: an occurrence (by its event id or its stream) with each source's
/// readout side by side; for an event that is not an occurrence with sources, the event.
pub async fn occurrence(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(key): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let source = ask.source(&dashboard);
    let mut frame = Frame::new(&ask, "Occurrence", "events", &uri);
    match dashboard.queries.divergence(source, &key).await {
        Ok(answer) => {
            frame.answered(answer.position, answer.reference);
            let view = answer.items.into_iter().next().ok_or_else(|| {
                HttpError::NotFound(format!("no occurrence {key:?} with sources"))
            })?;
            let names = Names::load(&dashboard, source).await?;
            occurrence_page(&dashboard, frame, &names, view).await
        }
        Err(QueryError::NotFound(message)) => {
            let Ok(id) = EventId::parse(key.as_str()) else {
                return Err(HttpError::NotFound(message));
            };
            let (bound, reference) = log_bound(&dashboard, &ask).await?;
            let found = dashboard.store.events_by_id(&[id.as_uuid()]).await?;
            let Some((recorded, event)) = found
                .iter()
                .filter(|r| (r.position.max(0) as u64) <= bound)
                .find_map(|r| typed(r).map(|e| (r, e)))
            else {
                return Err(HttpError::NotFound(match ask.as_of {
                    Some((raw, _)) => format!("no event {key:?} in the log as of {raw}"),
                    None => format!("no event {key:?} in the log"),
                }));
            };
            frame.answered(bound, reference);
            let names = Names::load(&dashboard, source).await?;
            let card = event_card(&names, &frame, recorded, &event);
            frame.title = format!("{}: event {}", card.kind, card.position);
            render(&EventPage { frame, card })
        }
        Err(error) => Err(error.into()),
    }
}

async fn occurrence_page(
    dashboard: &Dashboard,
    mut frame: Frame,
    names: &Names,
    view: DivergenceView,
) -> Result<Response, HttpError> {
    // The occurrence's own event, for who took part and what it says.
    let own = dashboard
        .store
        .events_by_id(&[view.occurrence.as_uuid()])
        .await?
        .iter()
        .find_map(typed);
    let kind = view
        .kind
        .as_deref()
        .map_or_else(|| "Occurrence".to_owned(), readable::label);
    let heading = match &view.occurred {
        Some(time) => format!("{kind}, {}", readable::fuzzy(time)),
        None => kind,
    };
    frame.title = heading;
    // Each source's claims go under its first report.
    let mut claimed: Vec<String> = Vec::new();
    let reports = view
        .reports
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
        .collect();
    render(&OccurrencePage {
        occurred: stamp(view.occurred.as_ref()),
        stream: view.stream_id.clone().unwrap_or_default(),
        participants: own
            .as_ref()
            .map(|event| participants_of(names, &frame, event))
            .unwrap_or_default(),
        summary: own.as_ref().and_then(summary_of),
        reports,
        single: view.single_source.iter().map(claim_line).collect(),
        shared: view.shared.iter().map(claim_line).collect(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "actor.html", config = "src/http/askama.toml")]
struct ActorPage {
    frame: Frame,
    id: String,
    kind: String,
    country: Option<Link>,
    timeline: Vec<TimelineRow>,
    channels: Vec<ChannelRow>,
}

/// `/actors/{actor}`: who it is, its interactions in the order they happened, its channels.
pub async fn actor(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(actor): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let source = ask.source(&dashboard);
    let mut frame = Frame::new(&ask, "Actor", "", &uri);
    let filter = ListFilter {
        actor: Some(actor.clone()),
        ..open_channels()
    };
    let (names, timeline, channels) = tokio::try_join!(
        async { Names::load(&dashboard, source).await },
        async {
            Ok(dashboard
                .queries
                .timeline(source, &actor, &EVERYTHING)
                .await?)
        },
        async {
            Ok(dashboard
                .queries
                .channels(source, &filter, &EVERYTHING)
                .await?)
        },
    )?;
    let info = names.0.get(&actor);
    if info.is_none() && timeline.items.is_empty() {
        return Err(HttpError::NotFound(match ask.as_of {
            Some((raw, _)) => format!("no actor {actor:?} in the log as of {raw}"),
            None => format!("no actor {actor:?} in the log"),
        }));
    }
    frame.answered(timeline.position.min(channels.position), timeline.reference);
    let name = names.name(&actor);
    frame.title = name;
    let (kind, country) = match info {
        Some(info) => (
            readable::label(
                &serde_json::to_value(info.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            info.country.as_deref().map(|c| names.link(&frame, c)),
        ),
        None => ("State".to_owned(), None),
    };
    render(&ActorPage {
        id: actor.clone(),
        kind,
        country,
        timeline: timeline
            .items
            .iter()
            .map(|e| timeline_row(&frame, e))
            .collect(),
        channels: channels
            .items
            .iter()
            .map(|c| channel_row(&frame, c))
            .collect(),
        frame,
    })
}

pub struct PairRow {
    pub href: String,
    pub names: String,
    pub contacts: u32,
    pub last_contact: Option<Stamp>,
    pub last_contact_kind: String,
    pub channels: usize,
    pub summits: usize,
    pub commitments: usize,
}

#[derive(Template)]
#[template(path = "relations.html", config = "src/http/askama.toml")]
struct RelationsPage {
    frame: Frame,
    pairs: Vec<PairRow>,
}

/// The two states by the names the log registered for them.
fn pair_names(names: &Names, view: &RelationView) -> String {
    view.states
        .iter()
        .map(|state| names.name(state))
        .collect::<Vec<_>>()
        .join(" – ")
}

pub async fn relations(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Relations between states", "relations", &uri);
    let source = ask.source(&dashboard);
    let (names, answer) = tokio::try_join!(Names::load(&dashboard, source), async {
        Ok(dashboard
            .queries
            .relations(source, &ListFilter::default(), &EVERYTHING)
            .await?)
    })?;
    frame.answered(answer.position, answer.reference);
    let pairs = answer
        .items
        .iter()
        .filter(|view| view.states.len() == 2)
        .map(|view| PairRow {
            href: frame.pair(&view.states[0], &view.states[1]),
            names: pair_names(&names, view),
            contacts: view.contacts,
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
        })
        .collect();
    render(&RelationsPage { frame, pairs })
}

pub struct LevelCount {
    pub level: String,
    pub count: u32,
}

#[derive(Template)]
#[template(path = "relation.html", config = "src/http/askama.toml")]
struct RelationPage {
    frame: Frame,
    states: Vec<Link>,
    contacts: u32,
    levels: Vec<LevelCount>,
    last_contact: Option<Stamp>,
    last_contact_kind: String,
    last_contact_href: String,
    channels: Vec<ChannelRow>,
    summits: Vec<SummitRow>,
    commitments: Vec<CommitmentRow>,
}

/// `/relations/{a}/{b}`: the relations of two states.
pub async fn relation(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path((a, b)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Relations", "relations", &uri);
    let source = ask.source(&dashboard);
    let (names, answer) = tokio::try_join!(Names::load(&dashboard, source), async {
        Ok(dashboard.queries.relation(source, &a, &b).await?)
    })?;
    frame.answered(answer.position, answer.reference);
    let view = answer
        .items
        .into_iter()
        .next()
        .ok_or_else(|| HttpError::NotFound(format!("no relations between {a} and {b}")))?;
    let heading = pair_names(&names, &view);
    frame.title = format!("Relations: {heading}");
    let states = view
        .states
        .iter()
        .map(|id| names.link(&frame, id))
        .collect();
    let last = view.last_contact.as_ref();
    render(&RelationPage {
        states,
        contacts: view.contacts,
        levels: view
            .contacts_by_level
            .iter()
            .map(|(level, count)| LevelCount {
                level: readable::label(level),
                count: *count,
            })
            .collect(),
        last_contact: last.and_then(|c| stamp(c.occurred.as_ref())),
        last_contact_kind: last.map(|c| readable::label(&c.kind)).unwrap_or_default(),
        last_contact_href: last.map(|c| frame.event(c.event_id)).unwrap_or_default(),
        channels: view
            .open_channels
            .iter()
            .map(|c| channel_row(&frame, c))
            .collect(),
        summits: view
            .pending_summits
            .iter()
            .map(|s| summit_row(&frame, s))
            .collect(),
        commitments: view
            .pending_commitments
            .iter()
            .map(|c| commitment_row(&frame, c))
            .collect(),
        frame,
    })
}

/// Any other path.
pub async fn not_found(uri: Uri) -> HttpError {
    HttpError::NotFound(format!("no page {:?}", uri.path()))
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
