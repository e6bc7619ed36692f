//! The gRPC transport: the `diplog.v1.EventLog`, `diplog.v1.Diplomacy` and
//! `diplog.v1.Projections` services. Converts
//! between protobuf and the domain, calls the store and the recorder, and maps errors to
//! `tonic::Status` (in `status.rs`). No SQL here.

mod admin_service;
mod audit_service;
pub mod bridge;
mod convert;
mod diplomacy_service;
mod log_service;
mod projections_service;
pub mod status;

pub use admin_service::{AdminService, token_info};
pub use audit_service::AuditService;
pub use diplomacy_service::DiplomacyService;
pub use log_service::EventLogService;
pub use projections_service::ProjectionsService;
