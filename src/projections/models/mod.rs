//! The read models: each a pure, in-memory state machine ([`super::Model`]) that applies
//! diplomatic events in position order and exposes its state as rows. No I/O here.

pub mod channels;
pub(crate) mod coded;
pub mod commitments;
pub(crate) mod common;
pub mod divergence;
pub mod relations;
pub mod search;
pub mod summits;
pub mod timeline;

#[cfg(test)]
mod coded_tests;
#[cfg(test)]
mod levels_tests;
#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod pairs_tests;
