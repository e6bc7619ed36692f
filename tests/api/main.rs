//! Integration tests: the real server over gRPC on a real PostgreSQL (see `helpers`).

mod append;
mod cli;
mod faults;
mod helpers;
mod log;
mod read;
mod server;
