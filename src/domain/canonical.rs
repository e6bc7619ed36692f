//! The canonical bytes of a recorded event: everything the log recorded for it, in one stable,
//! unambiguous encoding. They are the leaves of the audit Merkle tree, so this encoding is a
//! public contract (README "Audit"; `tests/verify_merkle.py` re-implements it): change it only
//! under a new version tag.
//!
//! ```text
//! "diplog.event.v1"           15 bytes, the version tag
//! position                    u64, big-endian
//! event_id                    16 bytes (the UUID's bytes)
//! stream_id                   string
//! stream_version              u64, big-endian
//! event_type                  string
//! data                        string: the payload exactly as appended
//! correlation_id              0x00, or 0x01 then 16 bytes
//! causation_id                0x00, or 0x01 then 16 bytes
//! metadata                    u32 count, then per entry in byte order of keys: key, value (strings)
//! recorded_at                 i64, big-endian: microseconds since 1970-01-01T00:00:00Z
//! appended_by                 string
//! ```
//! A string is its UTF-8 length as u32 big-endian, then its bytes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const VERSION_TAG: &[u8] = b"diplog.event.v1";

/// What the log recorded for one event, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalEvent<'a> {
    pub position: u64,
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub data: &'a str,
    pub correlation_id: Option<Uuid>,
    pub causation_id: Option<Uuid>,
    /// Sorted by key (a `BTreeMap` orders `String` keys by their bytes).
    pub metadata: &'a BTreeMap<String, String>,
    pub recorded_at: DateTime<Utc>,
    pub appended_by: &'a str,
}

impl CanonicalEvent<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.data.len());
        out.extend_from_slice(VERSION_TAG);
        out.extend_from_slice(&self.position.to_be_bytes());
        out.extend_from_slice(self.event_id.as_bytes());
        string(&mut out, self.stream_id);
        out.extend_from_slice(&self.stream_version.to_be_bytes());
        string(&mut out, self.event_type);
        string(&mut out, self.data);
        optional_uuid(&mut out, self.correlation_id);
        optional_uuid(&mut out, self.causation_id);
        out.extend_from_slice(&(self.metadata.len() as u32).to_be_bytes());
        for (key, value) in self.metadata {
            string(&mut out, key);
            string(&mut out, value);
        }
        out.extend_from_slice(&self.recorded_at.timestamp_micros().to_be_bytes());
        string(&mut out, self.appended_by);
        out
    }
}

fn string(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value.as_bytes());
}

fn optional_uuid(out: &mut Vec<u8>, value: Option<Uuid>) {
    match value {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metadata: &BTreeMap<String, String>) -> CanonicalEvent<'_> {
        CanonicalEvent {
            position: 7,
            event_id: Uuid::parse_str("0f5b8f5e-6f55-4c1e-9d8e-2b1c2f5d7a01").unwrap(),
            stream_id: "call-2025-02-15",
            stream_version: 2,
            event_type: "CallHeld",
            data: r#"{"quote": "Лавров"}"#,
            correlation_id: None,
            causation_id: Some(Uuid::nil()),
            metadata,
            recorded_at: DateTime::from_timestamp_micros(1_739_620_800_123_456).unwrap(),
            appended_by: "anonymous",
        }
    }

    /// Pins the encoding byte for byte: a change here breaks every stored tree.
    #[test]
    fn the_encoding_is_stable() {
        let metadata = BTreeMap::from([
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]);
        let bytes = sample(&metadata).to_bytes();
        let expected = [
            &b"diplog.event.v1"[..],
            &7u64.to_be_bytes(),
            &hex::decode("0f5b8f5e6f554c1e9d8e2b1c2f5d7a01").unwrap(),
            &15u32.to_be_bytes(),
            b"call-2025-02-15",
            &2u64.to_be_bytes(),
            &8u32.to_be_bytes(),
            b"CallHeld",
            &(r#"{"quote": "Лавров"}"#.len() as u32).to_be_bytes(),
            r#"{"quote": "Лавров"}"#.as_bytes(),
            &[0],
            &[1],
            &[0; 16],
            &2u32.to_be_bytes(),
            &1u32.to_be_bytes(),
            b"a",
            &1u32.to_be_bytes(),
            b"1",
            &1u32.to_be_bytes(),
            b"b",
            &1u32.to_be_bytes(),
            b"2",
            &1_739_620_800_123_456i64.to_be_bytes(),
            &9u32.to_be_bytes(),
            b"anonymous",
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn every_field_counts() {
        let metadata = BTreeMap::new();
        let base = sample(&metadata);
        let other_metadata = BTreeMap::from([("k".to_owned(), String::new())]);
        let variants = [
            CanonicalEvent {
                position: 8,
                ..base
            },
            CanonicalEvent {
                stream_version: 3,
                ..base
            },
            CanonicalEvent {
                data: r#"{"quote":"Лавров"}"#,
                ..base
            },
            CanonicalEvent {
                correlation_id: Some(Uuid::nil()),
                ..base
            },
            CanonicalEvent {
                causation_id: None,
                ..base
            },
            CanonicalEvent {
                metadata: &other_metadata,
                ..base
            },
            CanonicalEvent {
                recorded_at: base.recorded_at + chrono::Duration::microseconds(1),
                ..base
            },
            CanonicalEvent {
                appended_by: "someone",
                ..base
            },
            // Moving bytes between adjacent strings changes the encoding (lengths are prefixed).
            CanonicalEvent {
                stream_id: "call-2025-02-1",
                event_type: "5CallHeld",
                ..base
            },
        ];
        for variant in variants {
            assert_ne!(variant.to_bytes(), base.to_bytes(), "{variant:?}");
        }
    }
}
