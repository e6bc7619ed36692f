//! GDELT 2.0 exports, streamed: `--format gdelt-events` (the Events table) and
//! `--format gdelt-mentions` (the Mentions table), plain or zipped, in chunks of
//! rows (`--chunk-rows`), each checked and recorded before the next is read.
//!
//! Every id derives from the GLOBALEVENTID (and a mention's identifier), so importing a file
//! again writes nothing. An event is `occurrence-gdelt-<GLOBALEVENTID>`; its mentions are
//! `SourceReportAttached` events in that stream, so the divergence view shows every outlet.
//!
//! Whichever file comes first: the log's rules refuse a report on an occurrence it does not
//! hold, so a mention whose event is not in the log yet waits in the log itself, as a plain
//! (non-diplomatic) event `GdeltMentionDeferred` holding the mention's row, in the stream
//! `gdelt-deferred-<GLOBALEVENTID>`. Importing events reads that stream for each event it
//! records and attaches the waiting mentions, with the same ids and contents as if the
//! mentions had come second; so both orders end with the same diplomatic events. The event's
//! own article (its SOURCEURL, already the event's attribution) is not attached again, in
//! either order.

mod cameo;
mod events;
mod mentions;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::json;

use super::streamed::{
    NewActor, Registrations, SeenIds, StreamedImportError, Tally, organisation, row_problem,
};
use super::tsv::{Row, read_in_chunks};
use super::{GrpcChannel, Item, Origin, Problem};
use crate::domain::EventId;
use crate::domain::diplomacy::{ActorId, ActorKind, derived_event_id};
use crate::proto::{self, diplomacy_client::DiplomacyClient, event_log_client::EventLogClient};
use mentions::MentionRow;

pub use cameo::{CameoCountry, coding_for, country, plover_for};

/// The namespace of the ids of everything imported from GDELT.
const NAMESPACE: &str = "gdelt";

/// The type of the plain event in which a mention waits for its event.
pub const DEFERRED_TYPE: &str = "GdeltMentionDeferred";

/// The id of the event GDELT numbers `global_event_id`.
pub fn event_id(global_event_id: &str) -> EventId {
    derived_event_id(NAMESPACE, &format!("event:{global_event_id}"))
}

/// The id of a mention of an event, by the mention's identifier (its URL).
pub fn mention_id(global_event_id: &str, identifier: &str) -> EventId {
    derived_event_id(
        NAMESPACE,
        &format!("mention:{global_event_id}:{identifier}"),
    )
}

pub fn occurrence_stream(global_event_id: &str) -> String {
    format!("occurrence-gdelt-{global_event_id}")
}

/// Where mentions of an event not yet in the log wait for it.
pub fn deferred_stream(global_event_id: &str) -> String {
    format!("gdelt-deferred-{global_event_id}")
}

/// The outlet `gdelt.source.<name>` (GDELT's MentionSourceName, e.g. `bbc.co.uk`).
fn source_of_name(name: &str) -> NewActor {
    organisation("gdelt.source.", name, "a source of GDELT 2.0 mentions").unwrap_or_else(gdelt)
}

/// The outlet of an article's URL (its host without `www.`), else GDELT itself.
fn source_of_url(url: Option<&str>) -> NewActor {
    let host = url
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.split(['/', '?', '#', ':']).next())
        .map(|host| host.trim_start_matches("www."))
        .filter(|host| !host.is_empty());
    host.map_or_else(gdelt, source_of_name)
}

/// GDELT itself, the source of an event whose article is unknown.
fn gdelt() -> NewActor {
    NewActor {
        id: ActorId::parse("gdelt").expect("a valid actor id"),
        kind: ActorKind::Organisation,
        name: "GDELT 2.0".into(),
        note: Some("the GDELT Project's event database".into()),
    }
}

/// Imports a GDELT 2.0 Events export, then attaches the mentions that waited for its events.
pub async fn import_events<T: GrpcChannel>(
    channel: T,
    path: PathBuf,
    chunk_rows: usize,
    tally: &mut Tally,
) -> Result<(), StreamedImportError> {
    let mut log = EventLogClient::new(channel.clone());
    let mut diplomacy = DiplomacyClient::new(channel.clone());
    let mut chunks = read_in_chunks(path, chunk_rows);
    let mut seen = SeenIds::default();
    while let Some(rows) = chunks.recv().await {
        let mut registrations = Registrations::default();
        let mut read = Vec::new();
        for row in rows? {
            tally.rows += 1;
            match events::read(&row) {
                Ok(event) if !seen.insert(&event.item.id) => {
                    let problem = super::streamed::row_problem(
                        row.line,
                        "GLOBALEVENTID",
                        format!("repeats event {} of an earlier row", event.global_event_id),
                    );
                    tally.report(&problem, "row(s) repeating an event");
                }
                Ok(event) => {
                    for code in &event.non_state_countries {
                        tally.note(&format!(
                            "actor(s) with the CAMEO country code {code}, which is no state's \
                             (imported by their actor code)"
                        ));
                    }
                    for actor in event.actors.iter().cloned() {
                        registrations.add(actor);
                    }
                    read.push(event);
                }
                Err((reason, problem)) => tally.report(&problem, reason),
            }
        }
        let mut items = registrations.into_items(NAMESPACE);
        items.extend(read.iter().map(|event| event.item.clone()));
        let refused = super::streamed::record_chunk(channel.clone(), items, tally).await?;
        let recorded: Vec<_> = read
            .iter()
            .filter(|event| !refused.contains(&event.item.origin.to_string()))
            .collect();
        tally.imported += recorded.len() as u64;

        // Which of them have mentions waiting: one call for the chunk, then a read of each
        // such stream only.
        let waiting = existing_streams(
            &mut diplomacy,
            recorded
                .iter()
                .map(|event| deferred_stream(&event.global_event_id))
                .collect(),
        )
        .await?;
        let mut registrations = Registrations::default();
        let mut reports = Vec::new();
        for event in recorded {
            if !waiting.contains(&deferred_stream(&event.global_event_id)) {
                continue;
            }
            for mention in deferred_mentions(&mut log, &event.global_event_id).await? {
                if mention.url.is_some() && mention.url == event.source_url {
                    tally.note("waiting mention(s) of an event's own article (not attached)");
                    continue;
                }
                tally.note("waiting mention(s) attached to their event");
                registrations.add(mention.source.clone());
                reports.push(Item {
                    origin: Origin::Record(format!(
                        "mention waiting for event {} (line {} of its file)",
                        event.global_event_id, mention.line
                    )),
                    ..mention.item
                });
            }
        }
        let mut items = registrations.into_items(NAMESPACE);
        items.extend(reports);
        super::streamed::record_chunk(channel.clone(), items, tally).await?;
        tally.show_progress();
    }
    Ok(())
}

/// Which of `stream_ids` the log holds (one `ReadRecordingInputs` call).
async fn existing_streams<T: GrpcChannel>(
    diplomacy: &mut DiplomacyClient<T>,
    stream_ids: Vec<String>,
) -> Result<BTreeSet<String>, StreamedImportError> {
    if stream_ids.is_empty() {
        return Ok(BTreeSet::new());
    }
    let inputs = diplomacy
        .read_recording_inputs(proto::RecordingInputsRequest {
            stream_ids,
            ..Default::default()
        })
        .await
        .map_err(super::ImportError::from)?
        .into_inner();
    Ok(inputs.stream_versions.into_keys().collect())
}

/// The mentions waiting in the log for an event.
async fn deferred_mentions<T: GrpcChannel>(
    log: &mut EventLogClient<T>,
    global_event_id: &str,
) -> Result<Vec<MentionRow>, StreamedImportError> {
    let request = proto::ReadStreamRequest {
        stream_id: deferred_stream(global_event_id),
        ..Default::default()
    };
    let mut stream = match log.read_stream(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => return Ok(Vec::new()),
        Err(status) => return Err(super::ImportError::from(status).into()),
    };
    let mut waiting = Vec::new();
    while let Some(event) = stream.message().await.map_err(super::ImportError::from)? {
        let row: Option<Row> = serde_json::from_str::<serde_json::Value>(&event.data)
            .ok()
            .and_then(|data| {
                Some(Row {
                    line: data["line"].as_u64()?,
                    fields: serde_json::from_value(data["fields"].clone()).ok()?,
                })
            });
        // Only this importer writes these events, so they always read back.
        if let Some(mention) = row.and_then(|row| mentions::read(&row).ok()) {
            waiting.push(mention);
        }
    }
    Ok(waiting)
}

/// Imports a GDELT 2.0 Mentions export: each mention of an event in the log is attached to
/// it; each other one waits for its event (see the module's comment).
pub async fn import_mentions<T: GrpcChannel>(
    channel: T,
    path: PathBuf,
    chunk_rows: usize,
    tally: &mut Tally,
) -> Result<(), StreamedImportError> {
    let mut diplomacy = DiplomacyClient::new(channel.clone());
    let mut log = EventLogClient::new(channel.clone());
    let mut chunks = read_in_chunks(path, chunk_rows);
    let mut seen = SeenIds::default();
    while let Some(rows) = chunks.recv().await {
        let mut read = Vec::new();
        for row in rows? {
            tally.rows += 1;
            match mentions::read(&row) {
                Ok(mention) if !seen.insert(&mention.item.id) => {
                    let problem = super::streamed::row_problem(
                        row.line,
                        "MentionIdentifier",
                        format!(
                            "repeats a mention of event {} by the same article",
                            mention.global_event_id
                        ),
                    );
                    tally.report(&problem, "row(s) repeating a mention");
                }
                Ok(mention) => read.push((row, mention)),
                Err((reason, problem)) => tally.report(&problem, reason),
            }
        }
        // The article URLs of the chunk's events that the log holds, in one call.
        let wanted: BTreeSet<String> = read
            .iter()
            .map(|(_, mention)| mention.global_event_id.clone())
            .collect();
        let mut events_in_log: BTreeMap<String, Option<Vec<String>>> =
            wanted.iter().map(|id| (id.clone(), None)).collect();
        let by_id: BTreeMap<String, String> = wanted
            .iter()
            .map(|id| (event_id(id).to_string(), id.clone()))
            .collect();
        let found = diplomacy
            .read_recording_inputs(proto::RecordingInputsRequest {
                full_event_ids: by_id.keys().cloned().collect(),
                ..Default::default()
            })
            .await
            .map_err(super::ImportError::from)?
            .into_inner();
        for record in found.records {
            let Some(event) = record.event else { continue };
            if let Some(global_event_id) = by_id.get(&event.id) {
                let urls = event.sources.into_iter().map(|s| s.url).collect();
                events_in_log.insert(global_event_id.clone(), Some(urls));
            }
        }

        let mut registrations = Registrations::default();
        let mut reports = Vec::new();
        let mut waiting: BTreeMap<String, Vec<proto::NewEvent>> = BTreeMap::new();
        for (row, mention) in read {
            match &events_in_log[&mention.global_event_id] {
                Some(urls) if mention.url.as_ref().is_some_and(|url| urls.contains(url)) => {
                    tally.imported += 1;
                    tally.note("mention(s) of an event's own article (not attached again)");
                }
                Some(_) => {
                    registrations.add(mention.source.clone());
                    reports.push(mention.item);
                }
                None => {
                    tally.note("mention(s) waiting for their event");
                    let data = json!({ "line": row.line, "fields": row.fields });
                    waiting
                        .entry(deferred_stream(&mention.global_event_id))
                        .or_default()
                        .push(proto::NewEvent {
                            id: derived_event_id(
                                NAMESPACE,
                                &format!("waiting:{}", mention.item.id),
                            )
                            .to_string(),
                            r#type: DEFERRED_TYPE.into(),
                            data: data.to_string(),
                            metadata: None,
                        });
                }
            }
        }
        let attached = reports.len() as u64;
        let mut items = registrations.into_items(NAMESPACE);
        items.extend(reports);
        let refused = super::streamed::record_chunk(channel.clone(), items, tally).await?;
        tally.imported += attached
            - refused
                .iter()
                .filter(|origin| origin.starts_with("line "))
                .count() as u64;
        for (stream_id, events) in waiting {
            let count = events.len();
            let response = log
                .append(proto::AppendRequest {
                    stream_id,
                    expected_version: None,
                    events,
                })
                .await
                .map_err(super::ImportError::from)?
                .into_inner();
            if response.idempotent_replay {
                tally.already_present += count;
            } else {
                tally.written += count;
            }
            tally.imported += count as u64;
        }
        tally.show_progress();
    }
    Ok(())
}

/// Refuses a row of another number of fields than `columns`: a stray tab, or another file
/// (`row_kind`: "event"; `export`: "an Events export").
fn check_columns(
    row: &Row,
    columns: usize,
    row_kind: &str,
    export: &str,
) -> Result<(), (&'static str, Problem)> {
    if row.fields.len() == columns {
        return Ok(());
    }
    Err((
        "row(s) with the wrong number of columns",
        row_problem(
            row.line,
            "",
            format!(
                "{} tab-separated fields where a GDELT 2.0 {row_kind} has {columns} (a stray \
                 tab, or not {export})",
                row.fields.len()
            ),
        ),
    ))
}

/// The row's GLOBALEVENTID (digits) at `index`, or why not.
fn global_event_id(row: &Row, index: usize) -> Result<&str, (&'static str, Problem)> {
    let value = row.fields[index].trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(value);
    }
    Err((
        "row(s) without a GLOBALEVENTID",
        row_problem(
            row.line,
            "GLOBALEVENTID",
            format!("{:?} is not an event id (digits)", row.fields[index]),
        ),
    ))
}
