//! The event lines of an export (`diplog export`): each event of the log, as the server sends
//! it, with its leaf hash, one JSON line each (`audit::archive::ArchivedEvent`), read in
//! batches where the server has them.

use std::io::Write;

use tonic::Status;

use super::reads::read_all;
use crate::audit::archive::ArchivedEvent;
use crate::auth::client::AuthChannel;
use crate::proto::{self, event_log_client::EventLogClient};
use crate::store::RecordedEvent;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Call(#[from] Status),
    #[error("the server sent a malformed event: {0}")]
    Malformed(String),
    #[error("could not write: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes the lines of the events at positions `from..=to` to `out`; answers how many.
pub async fn write_events(
    client: &mut EventLogClient<AuthChannel>,
    from: u64,
    to: u64,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    if from > to {
        return Ok(0);
    }
    let wire = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let read = proto::ReadAllRequest {
        from_position: Some(wire(from)),
        limit: wire(to - from + 1),
        ..Default::default()
    };
    let mut events = read_all(client, read).await?;
    let mut written = 0;
    while let Some(event) = events.next().await? {
        let event = recorded(event).map_err(ExportError::Malformed)?;
        serde_json::to_writer(&mut *out, &ArchivedEvent::new(&event))
            .map_err(|e| ExportError::Write(e.into()))?;
        out.write_all(b"\n")?;
        written += 1;
    }
    Ok(written)
}

/// An event as the server sent it, as the log recorded it.
fn recorded(event: proto::RecordedEvent) -> Result<RecordedEvent, String> {
    let uuid =
        |field: &str, text: &str| uuid::Uuid::parse_str(text).map_err(|e| format!("{field}: {e}"));
    let optional = |field: &str, text: &str| {
        if text.is_empty() {
            Ok(None)
        } else {
            uuid(field, text).map(Some)
        }
    };
    let metadata = event.metadata.unwrap_or_default();
    let time = event.recorded_at.ok_or("recorded_at is missing")?;
    Ok(RecordedEvent {
        position: event.position,
        stream_id: event.stream_id,
        stream_version: event.stream_version,
        event_id: uuid("id", &event.id)?,
        event_type: event.r#type,
        data_text: event.data,
        correlation_id: optional("correlation_id", &metadata.correlation_id)?,
        causation_id: optional("causation_id", &metadata.causation_id)?,
        metadata: sqlx::types::Json(metadata.values),
        recorded_at: chrono::DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32)
            .ok_or("recorded_at is out of range")?,
        appended_by: event.appended_by,
    })
}
