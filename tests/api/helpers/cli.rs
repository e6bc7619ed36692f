//! The `diplog` binary as the tests run it: one runner, `diplog(ARGS)`, for every test that
//! runs the CLI (awaited as it is, or after `.stdin(…)`), and the helpers that show
//! what a run said.

use std::ffi::{OsStr, OsString};
use std::future::{Future, IntoFuture};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::test_signing_key;

/// The `diplog` binary built for these tests.
pub fn diplog_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_diplog"))
}

/// The longest one run of the CLI may take before it is killed and the test fails (a `serve`
/// that should have refused to start does not hang the suite).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `diplog ARGS`, run when awaited:
/// - in the project directory (unless `.current_dir(…)`), so relative paths read as a user types them;
/// - without the caller's `DATABASE_URL`, `DIPLOG_SERVER` and `DIPLOG_TOKEN`, so the shell the
///   tests run in chooses no database, server or token;
/// - with the tests' signing key (for `serve`), out of the repository;
/// - with `stdin` as its input (none unless given);
/// - killed if the test gives up on it, and the test failed after [`RUN_LIMIT`].
pub fn diplog<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Diplog {
    Diplog {
        args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        stdin: String::new(),
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    }
}

/// A run of `diplog` to be awaited (see [`diplog`]).
pub struct Diplog {
    args: Vec<OsString>,
    stdin: String,
    dir: PathBuf,
}

impl Diplog {
    /// Gives the run `text` on its standard input.
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = text.to_owned();
        self
    }

    /// Runs it in `dir` rather than the project directory.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.dir = dir.to_owned();
        self
    }

    /// The command, as the doc of [`diplog`] says, its outputs not yet directed.
    fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(diplog_binary());
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("DATABASE_URL")
            .env_remove("DIPLOG_SERVER")
            .env_remove("DIPLOG_TOKEN")
            .env("DIPLOG_SIGNING_KEY", test_signing_key())
            .kill_on_drop(true);
        command
    }

    /// Runs it to completion: its exit status and both outputs.
    pub async fn output(self) -> Output {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("diplog runs");
        let mut input = child.stdin.take().expect("a stdin pipe");
        input
            .write_all(self.stdin.as_bytes())
            .await
            .expect("diplog takes its input");
        drop(input);
        let args = self.args;
        tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("diplog {args:?} did not finish within {RUN_LIMIT:?}"))
            .expect("diplog runs")
    }

    /// Starts a command that goes on (`watch`, `subscribe`), with no input: the process (killed
    /// when dropped) and its stdout by lines; its stderr goes to the test's.
    pub fn spawn(self) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("diplog runs");
        let stdout = child.stdout.take().expect("a stdout pipe");
        (child, BufReader::new(stdout).lines())
    }

    /// Runs it to completion: whether it succeeded, its stdout and its stderr.
    pub async fn split(self) -> (bool, String, String) {
        let output = self.output().await;
        (
            output.status.success(),
            text(&output.stdout),
            text(&output.stderr),
        )
    }

    /// Runs it to completion: whether it succeeded, and its stdout followed by its stderr.
    pub async fn combined(self) -> (bool, String) {
        let output = self.output().await;
        (
            output.status.success(),
            format!("{}{}", text(&output.stdout), text(&output.stderr)),
        )
    }
}

impl IntoFuture for Diplog {
    type Output = Output;
    type IntoFuture = Pin<Box<dyn Future<Output = Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.output())
    }
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Both outputs of a run and its exit code, for assertion messages.
pub fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Runs `future` and fails the test if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {limit:?}"))
}
