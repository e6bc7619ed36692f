//! The dashboard's pages: server-rendered (askama templates in `templates/`), one handler per
//! page. Each reads through `Queries` (the projections) or `EventStore` (the log), turns the
//! answer into plain text for people (names, readable dates) and renders it. Every page
//! answers now (waiting for `min_position` if given) or `as_of` a past position or time, and
//! with `fragment=1` renders only its `<main>`, which the page's script swaps in when the log
//! moves. No SQL here, and no decisions the projections make.
//!
//! Here are the handlers and their templates; `request` checks what a request asks for,
//! `frame` is the layout around every page (and the links it makes), and `views` builds what
//! pages show from the projections' answers and the log's events.

mod charts;
mod drawn;
mod error_page;
mod events;
mod frame;
mod request;
mod search;
mod streams;
mod timeline;
mod views;

pub(super) use self::drawn::{lifecycle, network, state as state_network};
pub(super) use self::events::events;
pub(super) use self::search::search;
pub(super) use self::streams::{log_event, stream, stream_event, streams};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

// The error page (`super::error`) is rendered in the same frame.
use self::charts::contacts::{ContactChart, contact_chart};
pub(super) use self::frame::Frame;
use self::frame::{Link, Stamp, stamp};
use self::request::{Ask, Params};
use self::timeline::{TimelineRow, timeline_row};
use self::views::{
    ChannelRow, ClaimLine, CommitmentRow, EventCard, LevelCount, Names, PairRow, ParticipantLink,
    ReportColumn, SummitRow, channel_row, claim_line, commitment_row, event_card, pair_names,
    pair_row, participants_of, report_columns, rows, summary_of, summit_row, typed,
};
use super::Dashboard;
use super::error::HttpError;
use super::readable;
use crate::domain::EventId;
use crate::projections::models::channels::view::ChannelView;
use crate::projections::models::commitments::{Commitment, CommitmentView};
use crate::projections::models::divergence::DivergenceView;
use crate::projections::models::relations::view::RelationView;
use crate::projections::models::summits::{Summit, SummitView};
use crate::projections::models::timeline::TimelineEntry;
use crate::projections::read::listed::Listed;
use crate::projections::read::request::{ListFilter, MAX_PAGE_SIZE, Page, QueryError};

const EVERYTHING: Page = Page {
    size: MAX_PAGE_SIZE,
    token: String::new(),
};

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
    /// The verifier key of the log's checkpoints.
    vkey: String,
}

pub(super) async fn overview(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Overview", "overview", &uri);
    let source = ask.source(&dashboard);
    let (open, pending, owed, all) = (
        ChannelView::open(),
        SummitView::open(),
        CommitmentView::open(),
        EVERYTHING,
    );
    let queries = &dashboard.queries;
    let (channels, summits, commitments) = tokio::try_join!(
        queries.list::<ChannelView>(source, &open, &all),
        queries.list::<SummitView>(source, &pending, &all),
        queries.list::<CommitmentView>(source, &owed, &all),
    )?;
    // The page reflects what all three reflect.
    let position = channels
        .position
        .min(summits.position)
        .min(commitments.position);
    frame
        .answered(position, channels.reference, &dashboard)
        .await?;
    render(&OverviewPage {
        channels: rows(&frame, &channels.items, channel_row),
        summits: rows(&frame, &summits.items, summit_row),
        commitments: rows(&frame, &commitments.items, commitment_row),
        vkey: dashboard.auditor.verifier_key().to_string(),
        frame,
    })
}

/// A list page's table.
pub(super) enum Table {
    Channels(Vec<ChannelRow>),
    Summits(Vec<SummitRow>),
    Commitments(Vec<CommitmentRow>),
}

/// A projection with a page of its open items (`/channels`, `/summits`, `/commitments`).
pub(super) trait Shown: Listed {
    const TITLE: &'static str;
    /// The navigation entry the page belongs to.
    const NAV: &'static str;
    /// What the page lists, in a sentence.
    const LEDE: &'static str;
    fn table(frame: &Frame, items: &[Self]) -> Table;
}

impl Shown for ChannelView {
    const TITLE: &'static str = "Open channels";
    const NAV: &'static str = "channels";
    const LEDE: &'static str = "Communication channels between actors or offices that are not \
         closed: active, dormant (unused for a while) or suspended.";
    fn table(frame: &Frame, items: &[Self]) -> Table {
        Table::Channels(rows(frame, items, channel_row))
    }
}

impl Shown for SummitView {
    const TITLE: &'static str = "Pending summit preparations";
    const NAV: &'static str = "summits";
    const LEDE: &'static str = "Summit meetings proposed, agreed to prepare, scheduled or \
         postponed: neither held nor cancelled.";
    fn table(frame: &Frame, items: &[Self]) -> Table {
        Table::Summits(rows(frame, items, summit_row))
    }
}

impl Shown for CommitmentView {
    const TITLE: &'static str = "Pending commitments";
    const NAV: &'static str = "commitments";
    const LEDE: &'static str =
        "Agreed steps still owed: pending, scheduled, or lapsed past their due date.";
    fn table(frame: &Frame, items: &[Self]) -> Table {
        Table::Commitments(rows(frame, items, commitment_row))
    }
}

#[derive(Template)]
#[template(path = "list.html", config = "src/http/askama.toml")]
struct ListPage {
    frame: Frame,
    lede: &'static str,
    table: Table,
}

/// The page of `V`'s open items.
pub(super) async fn list<V: Shown>(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, V::TITLE, V::NAV, &uri);
    let answer = dashboard
        .queries
        .list::<V>(ask.source(&dashboard), &V::open(), &EVERYTHING)
        .await?;
    frame
        .answered(answer.position, answer.reference, &dashboard)
        .await?;
    render(&ListPage {
        table: V::table(&frame, &answer.items),
        lede: V::LEDE,
        frame,
    })
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
pub(super) async fn occurrence(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path(key): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let source = ask.source(&dashboard);
    let mut frame = Frame::new(&ask, "Occurrence", "events", &uri);
    let found = dashboard
        .queries
        .get::<DivergenceView>(source, &ListFilter::default(), &key)
        .await;
    match found {
        Ok(answer) => {
            frame
                .answered(answer.position, answer.reference, &dashboard)
                .await?;
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
            frame.answered(bound, reference, &dashboard).await?;
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
    let reports = report_columns(&frame, &view);
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
    /// The timeline drawn, with the actor's summits' and commitments' steps.
    chart: Option<ContactChart>,
    channels: Vec<ChannelRow>,
    /// The records the timeline shows (`both`, `readouts`, `coded`).
    records: &'static str,
}

/// `/actors/{actor}`: who it is, its interactions in the order they happened, its channels.
pub(super) async fn actor(
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
        ..ChannelView::open()
    };
    let timeline_filter = ListFilter {
        actor: Some(actor.clone()),
        records: ask.records,
        ..ListFilter::default()
    };
    let theirs = ListFilter {
        actor: Some(actor.clone()),
        ..ListFilter::default()
    };
    let queries = &dashboard.queries;
    let (names, timeline, channels, summits, commitments) = tokio::try_join!(
        async { Names::load(&dashboard, source).await },
        async {
            Ok(queries
                .list::<TimelineEntry>(source, &timeline_filter, &EVERYTHING)
                .await?)
        },
        async {
            Ok(queries
                .list::<ChannelView>(source, &filter, &EVERYTHING)
                .await?)
        },
        async { Ok(queries.list::<Summit>(source, &theirs, &EVERYTHING).await?) },
        async {
            Ok(queries
                .list::<Commitment>(source, &theirs, &EVERYTHING)
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
    frame
        .answered(
            timeline.position.min(channels.position),
            timeline.reference,
            &dashboard,
        )
        .await?;
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
        chart: contact_chart(&frame, &timeline.items, &summits.items, &commitments.items),
        timeline: rows(&frame, &timeline.items, timeline_row),
        channels: rows(&frame, &channels.items, channel_row),
        records: ask.records_name(),
        frame,
    })
}

#[derive(Template)]
#[template(path = "relations.html", config = "src/http/askama.toml")]
struct RelationsPage {
    frame: Frame,
    pairs: Vec<PairRow>,
    records: &'static str,
}

pub(super) async fn relations(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Relations between states", "relations", &uri);
    let source = ask.source(&dashboard);
    let filter = ListFilter {
        records: ask.records,
        ..ListFilter::default()
    };
    let (names, answer) = tokio::try_join!(Names::load(&dashboard, source), async {
        Ok(dashboard
            .queries
            .list::<RelationView>(source, &filter, &EVERYTHING)
            .await?)
    })?;
    frame
        .answered(answer.position, answer.reference, &dashboard)
        .await?;
    let pairs = answer
        .items
        .iter()
        .filter(|view| view.states.len() == 2)
        .map(|view| pair_row(&frame, &names, view))
        .collect();
    render(&RelationsPage {
        frame,
        pairs,
        records: ask.records_name(),
    })
}

#[derive(Template)]
#[template(path = "relation.html", config = "src/http/askama.toml")]
struct RelationPage {
    frame: Frame,
    states: Vec<Link>,
    contacts: u32,
    levels: Vec<LevelCount>,
    /// Of the contacts, how many are coded records; by quad class and PLOVER type.
    coded: u32,
    quad_classes: Vec<LevelCount>,
    plover_types: Vec<LevelCount>,
    records: &'static str,
    last_contact: Option<Stamp>,
    last_contact_kind: String,
    last_contact_href: String,
    /// The last contact's level, format and place, as a phrase.
    last_contact_setting: String,
    /// The pair's contacts drawn, with their summits' and commitments' steps.
    chart: Option<ContactChart>,
    channels: Vec<ChannelRow>,
    summits: Vec<SummitRow>,
    commitments: Vec<CommitmentRow>,
}

/// `/relations/{a}/{b}`: the relations of two states.
pub(super) async fn relation(
    State(dashboard): State<Dashboard>,
    uri: Uri,
    Path((a, b)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let ask = Ask::parse(&params)?;
    let mut frame = Frame::new(&ask, "Relations", "relations", &uri);
    let source = ask.source(&dashboard);
    let (names, answer, history) = tokio::try_join!(
        Names::load(&dashboard, source),
        async {
            Ok(dashboard
                .queries
                .relation(source, &a, &b, ask.records)
                .await?)
        },
        pair_history(&dashboard, &ask, &a, &b),
    )?;
    frame
        .answered(answer.position, answer.reference, &dashboard)
        .await?;
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
        levels: counted(&view.contacts_by_level),
        coded: view.coded_contacts,
        quad_classes: counted(&view.contacts_by_quad_class),
        plover_types: view
            .contacts_by_plover_type
            .iter()
            .map(|(plover_type, count)| LevelCount {
                level: plover_type.clone(),
                count: *count,
            })
            .collect(),
        records: ask.records_name(),
        last_contact: last.and_then(|c| stamp(c.occurred.as_ref())),
        last_contact_kind: last.map(|c| readable::label(&c.kind)).unwrap_or_default(),
        last_contact_href: last.map(|c| frame.event(c.event_id)).unwrap_or_default(),
        last_contact_setting: last
            .map(|c| {
                timeline::setting_text(&c.level, c.format.as_deref(), c.place.as_ref(), None, None)
            })
            .unwrap_or_default(),
        chart: contact_chart(&frame, &history.0, &history.1, &history.2),
        channels: rows(&frame, &view.open_channels, channel_row),
        summits: rows(&frame, &view.pending_summits, summit_row),
        commitments: rows(&frame, &view.pending_commitments, commitment_row),
        frame,
    })
}

/// A pair's interactions (those concerning both states: the first page of them), and the
/// summits and commitments of both, all steps included: what the relation page draws. Filtered
/// by both states in SQL, so a pair's page is its own however long each state's timeline is.
async fn pair_history(
    dashboard: &Dashboard,
    ask: &Ask,
    a: &str,
    b: &str,
) -> Result<(Vec<TimelineEntry>, Vec<Summit>, Vec<Commitment>), HttpError> {
    let source = ask.source(dashboard);
    let pair = ListFilter {
        state_pair: Some((a.to_owned(), b.to_owned())),
        records: ask.records,
        ..ListFilter::default()
    };
    let (queries, everything) = (&dashboard.queries, EVERYTHING);
    let (timeline, summits, commitments) = tokio::try_join!(
        queries.list::<TimelineEntry>(source, &pair, &everything),
        queries.list::<Summit>(source, &pair, &everything),
        queries.list::<Commitment>(source, &pair, &everything),
    )?;
    Ok((timeline.items, summits.items, commitments.items))
}

/// Counts by a name, readable ("Verbal cooperation: 3").
fn counted(counts: &std::collections::BTreeMap<String, u32>) -> Vec<LevelCount> {
    counts
        .iter()
        .map(|(name, count)| LevelCount {
            level: readable::label(name),
            count: *count,
        })
        .collect()
}

/// Any other path.
pub(super) async fn not_found(uri: Uri) -> HttpError {
    HttpError::NotFound(format!("no page {:?}", uri.path()))
}
