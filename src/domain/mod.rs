//! The event log's domain: what an event, a stream and an append are, and the rules that make
//! input valid. Pure: no I/O, and none of sqlx, tonic or axum.

mod atomic;
pub mod audit_head;
pub mod batch;
pub mod canonical;
pub mod checkpoint;
pub mod cosignature;
pub mod diplomacy;
mod event;
pub mod json;
pub mod merkle;
mod subscription;
pub mod tiles;
mod validation;

pub use atomic::AtomicAppend;
pub use event::{
    AppendBatch, Direction, EventId, EventType, ExpectedVersion, Metadata, NewEvent, Payload,
    RESERVED_METADATA_PREFIX, ReadAllQuery, ReadStreamQuery, StreamId, check_distinct_ids, limits,
    non_negative,
};
pub use subscription::{LogFilter, SubscriptionStart};
pub use validation::{FieldError, ValidationError, ValidationErrors};

/// The principal recorded on events appended without authentication.
pub const ANONYMOUS: &str = "anonymous";
