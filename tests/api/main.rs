//! Integration tests: the real server over gRPC on a real PostgreSQL (see `helpers`).

mod append;
mod audit;
mod auth;
mod bench;
mod cli;
mod cli_import;
mod cli_projections;
mod dashboard;
mod diplomacy;
mod faults;
mod fuzz;
mod helpers;
mod import_plover;
mod limits;
mod log;
mod merkle_python;
mod overload;
mod projection_feed;
mod projections;
mod projections_engine;
mod read;
mod read_memory;
mod server;
mod subscriptions;
mod tls;
mod writer;
