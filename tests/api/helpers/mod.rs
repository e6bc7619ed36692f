//! Test harness: a real PostgreSQL and the real server over gRPC, in this process or as a
//! `diplog serve` process, and the `diplog` binary as a user runs it. The tests import all of
//! it from here (`crate::helpers::…`); the files hold it by theme:
//!
//! - `cluster`: the throwaway PostgreSQL and a fresh database per test;
//! - `server`: `spawn_app…` and `TestApp`, the server in the test's own process;
//! - `process`: `diplog serve` as a child process, started until its "serving" log line;
//! - `cli`: running the `diplog` binary (one runner for every CLI test);
//! - `diplomacy`: typed events recorded and read through `Diplomacy`, the founding scenario.

mod cli;
mod cluster;
mod diplomacy;
mod process;
mod server;

pub use cli::*;
pub use cluster::*;
pub use diplomacy::*;
pub use process::*;
pub use server::*;
