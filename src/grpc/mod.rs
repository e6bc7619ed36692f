//! The gRPC transport: the `diplog.v1.EventLog` service. Converts between protobuf and the
//! domain, calls the store, and maps errors to `tonic::Status` (in `status.rs`). No SQL here.

mod convert;
mod log_service;
pub mod status;

pub use log_service::EventLogService;
