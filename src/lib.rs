//! diplog: an event-sourced diplomacy log. An append-only, gapless, commit-ordered event log
//! on PostgreSQL, served over gRPC.
//!
//! Layers, dependencies pointing inwards: `grpc` / `http` / `cli` -> `store` -> `domain`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod database;
pub mod describe;
pub mod domain;
pub mod grpc;
pub mod health;
pub mod http;
pub mod import;
pub mod monitoring;
pub mod pgcluster;
pub mod projections;
pub mod recorder;
pub mod store;
pub mod stream_limit;
pub mod subscriptions;
pub mod telemetry;
pub mod tls;

/// Code generated from `proto/diplog/v1/*.proto`.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("diplog.v1");

    /// The descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("diplog_descriptor");
}

/// The schema migrations in `migrations/`, applied at start-up.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
