//! The `Diplomacy` service from a test: typed events built from their JSON shape, recorded
//! through `Diplomacy.Record` and read through `Diplomacy.ReadEvents`, and the founding
//! scenario imported.

use diplog::grpc::bridge;
use diplog::import::{self, OnInvalid, scenario};
use diplog::proto::{self, diplomacy_client::DiplomacyClient};
use serde_json::Value;
use tonic::transport::Channel;

use super::TestApp;

/// A typed event from its JSON shape (proto field names) with a fresh id.
pub fn typed_event(json: Value) -> proto::DiplomaticEvent {
    let id = uuid::Uuid::now_v7().to_string();
    bridge::event_from_json(json, &id).unwrap_or_else(|e| panic!("a valid test event: {e:?}"))
}

/// A `Diplomacy.Record` request for `events` on `stream`, whatever its version.
pub fn record_request(stream: &str, events: Vec<proto::DiplomaticEvent>) -> proto::RecordRequest {
    proto::RecordRequest {
        stream_id: stream.to_owned(),
        expected_version: None,
        events,
    }
}

/// Records `events` on `stream` through `Diplomacy.Record`; answers what the server answers.
pub async fn record_events(
    app: &TestApp,
    stream: &str,
    events: Vec<proto::DiplomaticEvent>,
) -> Result<proto::AppendResponse, tonic::Status> {
    DiplomacyClient::new(app.channel().await)
        .record(record_request(stream, events))
        .await
        .map(tonic::Response::into_inner)
}

/// Records one typed event, given by its JSON shape, through `Diplomacy.Record`; answers its
/// id and its position.
pub async fn record(app: &TestApp, stream: &str, json: Value) -> (String, u64) {
    let event = typed_event(json);
    let id = event.id.clone();
    let response = record_events(app, stream, vec![event])
        .await
        .expect("recorded");
    (id, *response.positions.last().expect("a position") as u64)
}

/// Imports the founding scenario through the server; answers the import's report.
pub async fn import_founding_report(app: &TestApp) -> import::Report {
    let parsed =
        scenario::parse(scenario::FOUNDING_SCENARIO).expect("the founding scenario parses");
    import::import(app.channel().await, parsed.items, OnInvalid::RefuseAll)
        .await
        .expect("the founding scenario imports")
}

/// Imports the founding scenario through the server; answers the log head.
pub async fn import_founding(app: &TestApp) -> u64 {
    import_founding_report(app).await;
    head(app).await
}

/// The log head's position.
pub async fn head(app: &TestApp) -> u64 {
    app.client
        .clone()
        .get_head(())
        .await
        .expect("the head")
        .into_inner()
        .position as u64
}

/// Every typed event a `Diplomacy.ReadEvents` request returns.
pub async fn read_events(
    channel: &Channel,
    request: proto::ReadEventsRequest,
) -> Vec<proto::DiplomaticRecord> {
    let mut stream = DiplomacyClient::new(channel.clone())
        .read_events(request)
        .await
        .expect("read_events")
        .into_inner();
    let mut records = Vec::new();
    while let Some(record) = stream.message().await.expect("a readable stream") {
        records.push(record);
    }
    records
}

/// Read options that wait for `min_position` (0: answer at once).
pub fn live(min_position: u64) -> Option<proto::ReadOptions> {
    Some(proto::ReadOptions {
        min_position,
        ..Default::default()
    })
}

/// The day of a fuzzy time known to the day (else what it is, for a failing assertion).
pub fn day(time: &Option<proto::FuzzyTime>) -> String {
    match time.as_ref().and_then(|t| t.precision.clone()) {
        Some(proto::fuzzy_time::Precision::Day(day)) => day,
        other => format!("{other:?}"),
    }
}
