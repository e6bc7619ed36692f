//! The `diplog` binary as the tests run it.

use std::path::PathBuf;

/// The `diplog` binary built for these tests.
pub fn diplog_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_diplog"))
}
