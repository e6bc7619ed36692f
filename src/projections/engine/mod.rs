//! The engine that keeps the models' rows current: one runner per projection (advisory lock,
//! checkpoint, batches, rebuilds), the rows and checkpoints in PostgreSQL (`rows`), what a
//! list reads of the live rows (`listing`) and the counts it remembers (`counts`), rows in by
//! COPY, the runners' shared read of the
//! log (`facts`), and what runs on this server (`registry`). It knows nothing of any model's
//! meaning, but for the full-text query over the `search` projection's rows (`search`), which
//! is SQL and so lives with the row reads.

pub mod catalog;
pub(crate) mod copy_text;
pub mod counts;
pub mod error;
pub mod facts;
pub mod listing;
pub mod registry;
pub mod rows;
pub mod runner;
pub mod search;
pub(crate) mod tables;
pub mod versions;
