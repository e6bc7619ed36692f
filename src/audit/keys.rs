//! Which key signs this log's tree heads. The public keys that have signed them are recorded
//! in `signing_keys`, latest last; a server starting with another key than the latest is
//! refused, unless the operator rotates on purpose (`--rotate-signing-key`), which appends a
//! `SigningKeyRotated` event to the log (so the rotation is itself part of the audited
//! history) and then records the new key.

use sqlx::PgPool;
use tracing::{info, warn};

use crate::domain::{
    AppendBatch, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload, StreamId,
};
use crate::store::EventStore;

/// The stream that records rotations, and the type of its events.
pub const ROTATION_STREAM: &str = "diplog-signing-keys";
pub const ROTATION_TYPE: &str = "SigningKeyRotated";
/// Who the log says appended a rotation.
const PRINCIPAL: &str = "diplog";
/// Namespace of the rotation events' ids (v5 of both keys), so a retried rotation after a
/// crash between the event and the record is an idempotent replay, not a second event.
const ROTATION_NAMESPACE: uuid::Uuid = uuid::uuid!("4f3c8a52-1f0e-4c1a-9a57-3d0e6c1b2a90");

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this log's tree heads were signed by the key {recorded} (adopted at position \
         {adopted_at_position}), but the signing key here is {current}: start with the key \
         that signed them (--signing-key FILE; the default is signing-key.pem under \
         --data-dir), or adopt this one with --rotate-signing-key (the rotation is recorded \
         in the log)"
    )]
    Foreign {
        recorded: String,
        adopted_at_position: i64,
        current: String,
    },
    #[error("could not record the rotation in the log: {0}")]
    Append(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Makes `public_key` this log's signing key: records it if the log has none yet (or is
/// empty), accepts it if it is the latest recorded, rotates to it if `rotate`, else refuses.
pub async fn adopt(
    pool: &PgPool,
    store: &EventStore,
    public_key: [u8; 32],
    rotate: bool,
) -> Result<(), KeyError> {
    let latest: Option<(Vec<u8>, i64)> = sqlx::query_as(
        "select public_key, adopted_at_position from signing_keys \
         order by adopted_at desc limit 1",
    )
    .fetch_optional(pool)
    .await?;
    let head = store
        .head()
        .await
        .map_err(|e| KeyError::Append(e.to_string()))?;
    let Some((recorded, adopted_at_position)) = latest else {
        record(pool, public_key, head, None).await?;
        info!(public_key = %hex::encode(public_key), "recorded the tree-head signing key");
        return Ok(());
    };
    if recorded == public_key {
        return Ok(());
    }
    if head > 0 && !rotate {
        return Err(KeyError::Foreign {
            recorded: hex::encode(&recorded),
            adopted_at_position,
            current: hex::encode(public_key),
        });
    }
    if head > 0 {
        append_rotation(store, &recorded, &public_key, head).await?;
    }
    record(pool, public_key, head, Some(&recorded)).await?;
    warn!(
        previous = %hex::encode(&recorded),
        public_key = %hex::encode(public_key),
        "the tree-head signing key was rotated: auditors must pin the new key"
    );
    Ok(())
}

async fn record(
    pool: &PgPool,
    public_key: [u8; 32],
    head: u64,
    previous: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into signing_keys (public_key, adopted_at_position, previous_key) \
         values ($1, $2, $3) on conflict (public_key) do nothing",
    )
    .bind(public_key.as_slice())
    .bind(head as i64)
    .bind(previous)
    .execute(pool)
    .await?;
    Ok(())
}

async fn append_rotation(
    store: &EventStore,
    previous: &[u8],
    public_key: &[u8; 32],
    head: u64,
) -> Result<(), KeyError> {
    let failed = |e: String| KeyError::Append(e);
    let mut name = previous.to_vec();
    name.extend_from_slice(public_key);
    let id = uuid::Uuid::new_v5(&ROTATION_NAMESPACE, &name).to_string();
    let data = serde_json::json!({
        "previous_public_key": hex::encode(previous),
        "public_key": hex::encode(public_key),
        "log_head": head,
    })
    .to_string();
    let event = NewEvent {
        id: EventId::parse(&id).map_err(|e| failed(e.to_string()))?,
        event_type: EventType::parse(ROTATION_TYPE).map_err(|e| failed(e.to_string()))?,
        data: Payload::parse(data).map_err(|e| failed(e.to_string()))?,
        metadata: Metadata::default(),
    };
    let stream = StreamId::parse(ROTATION_STREAM).map_err(|e| failed(e.to_string()))?;
    let batch = AppendBatch::new(stream, ExpectedVersion::Any, vec![event])
        .map_err(|e| failed(format!("{e:?}")))?;
    store
        .append(batch, PRINCIPAL)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(())
}
