//! The `Diplomacy` service from a test: typed events recorded and read, and the founding
//! scenario imported.

use diplog::proto;
use tonic::transport::Channel;

/// Every typed event a `Diplomacy.ReadEvents` request returns.
pub async fn read_events(
    channel: &Channel,
    request: proto::ReadEventsRequest,
) -> Vec<proto::DiplomaticRecord> {
    let mut stream = proto::diplomacy_client::DiplomacyClient::new(channel.clone())
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
