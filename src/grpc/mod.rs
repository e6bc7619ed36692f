//! The gRPC transport: the `diplog.v1` services `EventLog` (the generic log), `Diplomacy`
//! (typed diplomatic events), `Projections` (the read models; `WatchProjection` in
//! `projections_watch`, their list answers in `lists`), `Audit` (the Merkle log's proofs and
//! signed heads) and `Admin` (API tokens). Converts between protobuf and the domain
//! (`convert`, `bridge`), calls the store, the recorder and the queries, and maps every error
//! to `tonic::Status` in one place (`status`). No SQL here.

mod admin_service;
mod audit_service;
mod batches;
pub mod bridge;
pub mod convert;
pub mod database_gate;
mod diplomacy_service;
pub mod lists;
mod log_service;
mod projections_service;
mod projections_watch;
pub mod rpc_span;
pub mod status;

pub use admin_service::{AdminService, token_info};
pub use audit_service::AuditService;
pub use convert::append_batch;
pub use diplomacy_service::DiplomacyService;
pub use log_service::EventLogService;
pub use projections_service::ProjectionsService;

/// A place for one more stream of the request's client (see `stream_limit`), or
/// RESOURCE_EXHAUSTED naming `--max-streams-per-client`.
fn stream_slot<T>(
    streams: &crate::stream_limit::StreamLimiter,
    request: &tonic::Request<T>,
) -> Result<crate::stream_limit::StreamSlot, tonic::Status> {
    let client = crate::stream_limit::ClientKey::of(request.extensions(), request.remote_addr());
    Ok(streams.acquire(client)?)
}
