//! The gRPC transport: the `diplog.v1.EventLog`, `diplog.v1.Diplomacy` and
//! `diplog.v1.Projections` services. Converts
//! between protobuf and the domain, calls the store and the recorder, and maps errors to
//! `tonic::Status` (in `status.rs`). No SQL here.

mod admin_service;
mod audit_service;
pub mod bridge;
mod convert;
pub mod database_gate;
mod diplomacy_service;
mod log_service;
mod projections_service;
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
