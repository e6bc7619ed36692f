//! `diplog serve` as a child process of the test, started until its "serving" log line.

use std::path::PathBuf;

/// Where the `diplog serve` processes the tests start keep their tree-head signing key: out of
/// the repository, where the default (the working directory) would put it.
pub fn test_signing_key() -> PathBuf {
    std::env::temp_dir().join("diplog-test-signing-key.pem")
}
