//! The export format: NDJSON, one event per line as the log recorded it, with its leaf hash,
//! then one closing line with the signed tree head over every event before it.
//!
//! ```text
//! {"position":1,"id":"…","stream_id":"…","stream_version":1,"type":"…","data":{…},
//!  "correlation_id":"…","causation_id":"…","metadata":{…},"recorded_at":"…Z",
//!  "appended_by":"…","leaf_hash":"<hex>"}
//! …
//! {"tree_head":{"tree_size":N,"root_hash":"<hex>","timestamp_ms":…,"signature":"<hex>",
//!  "public_key":"<hex>"}}
//! ```
//! `data` is the payload exactly as appended (a JSON text copied byte for byte).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::builder::leaf_of;
use crate::domain::audit_head::{SignedTreeHead, TreeHead};
use crate::domain::checkpoint::{Checkpoint, LogOrigin, VerifierKey};
use crate::domain::merkle::Hash;
use crate::store::RecordedEvent;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedEvent {
    pub position: i64,
    pub id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    pub metadata: BTreeMap<String, String>,
    pub recorded_at: DateTime<Utc>,
    pub appended_by: String,
    pub leaf_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosingLine {
    pub tree_head: SavedHead,
}

/// A line of an export: an event, or the closing tree head.
pub enum Line {
    Event(RecordedEvent, Hash),
    Closing(SavedHead),
}

impl ArchivedEvent {
    pub fn new(event: &RecordedEvent) -> Self {
        Self {
            position: event.position,
            id: event.event_id,
            stream_id: event.stream_id.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            data: RawValue::from_string(event.data_text.clone()).expect("stored payloads are JSON"),
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            metadata: event.metadata.0.clone(),
            recorded_at: event.recorded_at,
            appended_by: event.appended_by.clone(),
            leaf_hash: hex::encode(leaf_of(event)),
        }
    }
}

/// Parses one line; the error says what is wrong with it (the caller adds the line number).
pub fn parse_line(line: &str) -> Result<Line, String> {
    if line.trim_start().starts_with("{\"tree_head\"") {
        let closing: ClosingLine =
            serde_json::from_str(line).map_err(|e| format!("not a closing tree head: {e}"))?;
        return Ok(Line::Closing(closing.tree_head));
    }
    let archived: ArchivedEvent =
        serde_json::from_str(line).map_err(|e| format!("not an exported event: {e}"))?;
    let leaf: Hash = hex::decode(&archived.leaf_hash)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| "leaf_hash: not 32 bytes of hex".to_owned())?;
    let event = RecordedEvent {
        position: archived.position,
        stream_id: archived.stream_id,
        stream_version: archived.stream_version,
        event_id: archived.id,
        event_type: archived.event_type,
        data_text: archived.data.get().to_owned(),
        correlation_id: archived.correlation_id,
        causation_id: archived.causation_id,
        metadata: sqlx::types::Json(archived.metadata),
        recorded_at: archived.recorded_at,
        appended_by: archived.appended_by,
    };
    Ok(Line::Event(event, leaf))
}

/// A signed tree head as `tree-head --save` keeps it, with the key that signed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedHead {
    pub tree_size: u64,
    pub root_hash: String,
    pub timestamp_ms: u64,
    pub signature: String,
    pub public_key: String,
    /// The same size and root as a C2SP checkpoint signed by the same key, for citing and for
    /// transparency-log tools; absent from heads saved before diplog served checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

impl SavedHead {
    pub fn new(head: &SignedTreeHead, public_key: &[u8; 32]) -> Self {
        Self {
            tree_size: head.head.size,
            root_hash: hex::encode(head.head.root),
            timestamp_ms: head.head.timestamp_ms,
            signature: hex::encode(head.signature),
            public_key: hex::encode(public_key),
            checkpoint: None,
        }
    }

    /// With the head's checkpoint, which must be of the same size and root and signed by the
    /// same key (an empty one, from an older server, is left out).
    pub fn with_checkpoint(mut self, checkpoint: &str) -> Result<Self, String> {
        if checkpoint.is_empty() {
            return Ok(self);
        }
        let (head, key) = self.parse()?;
        check_checkpoint(checkpoint, &head, &key)?;
        self.checkpoint = Some(checkpoint.to_owned());
        Ok(self)
    }

    pub fn parse(&self) -> Result<(SignedTreeHead, [u8; 32]), String> {
        let bytes = |field: &str, text: &str| {
            hex::decode(text).map_err(|e| format!("{field}: not hex: {e}"))
        };
        let root: Hash = fixed("root_hash", bytes("root_hash", &self.root_hash)?)?;
        let signature: [u8; 64] = fixed("signature", bytes("signature", &self.signature)?)?;
        let key: [u8; 32] = fixed("public_key", bytes("public_key", &self.public_key)?)?;
        let head = SignedTreeHead {
            head: TreeHead {
                size: self.tree_size,
                root,
                timestamp_ms: self.timestamp_ms,
            },
            signature,
        };
        if let Some(checkpoint) = &self.checkpoint {
            check_checkpoint(checkpoint, &head, &key)?;
        }
        Ok((head, key))
    }
}

/// Whether `checkpoint` states `head`'s size and root, signed by `key` under the name it
/// gives as its origin.
pub fn check_checkpoint(
    checkpoint: &str,
    head: &SignedTreeHead,
    key: &[u8; 32],
) -> Result<(), String> {
    let origin = checkpoint.lines().next().unwrap_or_default();
    let origin = LogOrigin::parse(origin).map_err(|e| format!("checkpoint: {e}"))?;
    let opened = Checkpoint::open(checkpoint, &VerifierKey::new(&origin, *key))
        .map_err(|e| format!("checkpoint: {e}"))?;
    if opened.size != head.head.size || opened.root != head.head.root {
        return Err(format!(
            "checkpoint: size {} and root {} are not the tree head's ({} and {})",
            opened.size,
            hex::encode(opened.root),
            head.head.size,
            hex::encode(head.head.root)
        ));
    }
    Ok(())
}

pub fn fixed<const N: usize>(field: &str, bytes: Vec<u8>) -> Result<[u8; N], String> {
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{field}: {len} bytes, not {N}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::signer::TreeSigner;

    fn signed(signer: &TreeSigner, size: u64, root: Hash) -> (SignedTreeHead, String) {
        let origin = LogOrigin::parse("diplog.example.org/log").unwrap();
        let head = signer.sign(TreeHead {
            size,
            root,
            timestamp_ms: 1,
        });
        let checkpoint = Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        }
        .signed(
            &VerifierKey::new(&origin, signer.public_key().to_bytes()),
            |body| signer.sign_bytes(body),
        );
        (head, checkpoint)
    }

    #[test]
    fn a_saved_head_keeps_its_checkpoint_only_if_it_states_the_same_tree() {
        let signer = TreeSigner::generate().unwrap();
        let key = signer.public_key().to_bytes();
        let (head, checkpoint) = signed(&signer, 5, [1; 32]);
        let saved = SavedHead::new(&head, &key)
            .with_checkpoint(&checkpoint)
            .unwrap();
        assert_eq!(saved.checkpoint.as_deref(), Some(checkpoint.as_str()));
        assert!(saved.parse().is_ok());

        let (_, other_tree) = signed(&signer, 6, [1; 32]);
        assert!(
            SavedHead::new(&head, &key)
                .with_checkpoint(&other_tree)
                .is_err()
        );
        let another_key = TreeSigner::generate().unwrap();
        let (_, other_signer) = signed(&another_key, 5, [1; 32]);
        let tampered = SavedHead {
            checkpoint: Some(other_signer),
            ..saved
        };
        assert!(tampered.parse().is_err(), "a checkpoint by another key");
    }
}
