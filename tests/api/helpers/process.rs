//! `diplog serve` as a child process of the test: [`Serve`] says how to start it (on a test
//! database or on its embedded PostgreSQL, and with what else), [`ServeProcess`] is the server
//! once its JSON log has said "serving": its gRPC address, its log (read all along, so it never
//! blocks on a full pipe), and how to stop it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use super::diplog_binary;

/// Where the `diplog serve` processes the tests start keep their tree-head signing key: out of
/// the repository, where the default (the working directory) would put it.
pub fn test_signing_key() -> PathBuf {
    std::env::temp_dir().join("diplog-test-signing-key.pem")
}

/// How to start `diplog serve`: on free loopback ports, logging JSON at INFO to stderr, with
/// the tests' signing key, and killed if the test drops it.
pub struct Serve {
    command: Command,
    embedded: bool,
    within: Duration,
}

impl Serve {
    fn new() -> Self {
        let mut command = Command::new(diplog_binary());
        command
            .args(["--log-format", "json", "serve"])
            .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .env_remove("DIPLOG_LISTEN")
            .env_remove("DIPLOG_HTTP")
            .env("RUST_LOG", "info")
            .env("DIPLOG_SIGNING_KEY", test_signing_key())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Self {
            command,
            embedded: false,
            within: Duration::from_secs(60),
        }
    }

    /// On the test database at `url` (see [`super::database_url_for`]), open (on loopback, as
    /// the other tests' servers: a database URL alone means tokens), its projection runners
    /// polling every 50 ms.
    pub fn on_database(url: &str) -> Self {
        let mut serve = Self::new();
        serve
            .command
            .args(["--projection-poll-ms", "50"])
            .env("DATABASE_URL", url)
            .env("DIPLOG_AUTH", "open");
        serve
    }

    /// On its embedded PostgreSQL in `data_dir`, in the auth mode it chooses for itself. Dropped
    /// while it runs (a failed test), it is stopped with SIGTERM, so its PostgreSQL stops too.
    pub fn embedded(data_dir: &Path) -> Self {
        let mut serve = Self::new();
        serve
            .command
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("DATABASE_URL")
            .env_remove("DIPLOG_AUTH");
        serve.embedded = true;
        serve
    }

    /// One more argument to `serve`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    /// Sets an environment variable for it.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable (also one set above) for it.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Runs it in `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// How long it may take to say "serving" (60 s unless given).
    pub fn within(mut self, limit: Duration) -> Self {
        self.within = limit;
        self
    }

    /// Runs it to completion, for a server that should refuse to start.
    pub async fn output(mut self) -> Output {
        self.command
            .stdout(Stdio::piped())
            .output()
            .await
            .expect("diplog serve runs")
    }

    /// Starts it and waits for its "serving" log line.
    pub async fn start(mut self) -> ServeProcess {
        let mut child = self.command.spawn().expect("diplog serve runs");
        let stderr = child.stderr.take().expect("a stderr pipe");
        let (sender, receiver) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
        let mut server = ServeProcess {
            child,
            grpc: String::new(),
            serving: Value::Null,
            lines: Vec::new(),
            startup: 0,
            searched: 0,
            receiver,
            reader: Some(reader),
            embedded: self.embedded,
        };
        let limit = self.within;
        let serving = tokio::time::timeout(limit, async {
            loop {
                let Some(line) = server.receiver.recv().await else {
                    panic!(
                        "diplog serve stopped before serving:\n{}",
                        server.lines.join("\n")
                    );
                };
                let entry: Value = serde_json::from_str(&line).unwrap_or_default();
                server.lines.push(line);
                if entry["fields"]["message"] == "serving" {
                    return entry;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("diplog serve is not serving within {limit:?}"));
        let grpc = serving["fields"]["grpc"]
            .as_str()
            .expect("the gRPC address in the serving line");
        server.grpc = format!("http://{grpc}");
        server.serving = serving;
        server.startup = server.lines.len();
        server
    }
}

/// A running `diplog serve` (see [`Serve`]).
pub struct ServeProcess {
    pub child: Child,
    /// Its gRPC address as a URL (`http://127.0.0.1:…`).
    pub grpc: String,
    /// Its "serving" log entry.
    pub serving: Value,
    /// Its log lines read so far.
    lines: Vec<String>,
    /// How many of them came up to and with "serving".
    startup: usize,
    /// How many of them `log_entry` has looked at.
    searched: usize,
    receiver: mpsc::UnboundedReceiver<String>,
    reader: Option<JoinHandle<()>>,
    embedded: bool,
}

impl ServeProcess {
    /// Its HTTP address (`127.0.0.1:…`), from its "serving" line.
    pub fn http(&self) -> String {
        self.serving["fields"]["http"]
            .as_str()
            .expect("the HTTP address in the serving line")
            .to_owned()
    }

    /// Its log lines up to and with "serving".
    pub fn startup_log(&self) -> &[String] {
        &self.lines[..self.startup]
    }

    /// Its whole log so far, a line an entry.
    pub fn log(&mut self) -> String {
        while let Ok(line) = self.receiver.try_recv() {
            self.lines.push(line);
        }
        self.lines.join("\n")
    }

    /// Waits (up to 30 s) for the next log entry, from the start of its log, whose message
    /// starts with `prefix`.
    pub async fn log_entry(&mut self, prefix: &str) -> Value {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                while self.searched < self.lines.len() {
                    let line = &self.lines[self.searched];
                    self.searched += 1;
                    let entry: Value = serde_json::from_str(line).unwrap_or_default();
                    if entry["fields"]["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with(prefix))
                    {
                        return entry;
                    }
                }
                let line = self
                    .receiver
                    .recv()
                    .await
                    .expect("the server is still logging");
                self.lines.push(line);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log entry {prefix:?} within 30 s"))
    }

    /// Stops reading its log: the pipe closes, as when whoever read it goes away.
    pub async fn stop_reading_logs(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
            let _ = reader.await;
        }
    }

    /// A channel to it, once its gRPC port answers (within 30 s).
    pub async fn channel(&self) -> Channel {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Endpoint::from_shared(self.grpc.clone())
                .expect("a valid URL")
                .connect()
                .await
            {
                Ok(channel) => return channel,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "{} does not answer: {error}",
                        self.grpc
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Sends SIGTERM; answers its exit status, which must come within `limit`. Its log is then
    /// read to the end.
    pub async fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.signal_terminate();
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("diplog serve did not stop within {limit:?} of SIGTERM"))
            .expect("diplog serve is waited for");
        self.read_log_to_the_end().await;
        status
    }

    /// Kills it (SIGKILL) and waits for it; its log is then read to the end.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("diplog serve is killed");
        self.child.wait().await.expect("diplog serve is waited for");
        self.read_log_to_the_end().await;
    }

    async fn read_log_to_the_end(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        }
    }

    fn signal_terminate(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        if let Some(id) = self.child.id() {
            let _ = kill(Pid::from_raw(id as i32), Signal::SIGTERM);
        }
    }
}

impl Drop for ServeProcess {
    /// A failed test still stops an embedded server with SIGTERM, and with it its PostgreSQL
    /// (a server on a test database is killed, as `kill_on_drop` says).
    fn drop(&mut self) {
        if self.embedded && matches!(self.child.try_wait(), Ok(None)) {
            self.signal_terminate();
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.start_kill();
        }
    }
}
