//! Command-line and environment configuration (clap). Every flag also reads an env var.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::{ExpectedVersion, limits};
use crate::projections::runner::RunnerConfig;
use crate::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "diplog",
    version,
    about = "An event-sourced diplomacy log on PostgreSQL"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "DIPLOG_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gRPC server (and the HTTP port).
    Serve(ServeArgs),
    /// Append events (NDJSON, one per line) to a stream, atomically.
    Append(AppendArgs),
    /// Read a stream or the whole log as NDJSON.
    Read(ReadArgs),
    /// Follow the log: print each event (NDJSON, as `read` does) as it commits, from the start,
    /// after a position, or from now. Runs until interrupted.
    Subscribe(SubscribeArgs),
    /// Check the audit tree. Without --since: recompute every leaf and the root from the rows
    /// in PostgreSQL and report the first position that does not match. With --since FILE:
    /// prove through the server, with a consistency proof checked here, that the log today
    /// extends a head saved by `tree-head --save`.
    Verify(VerifyArgs),
    /// Print the current signed tree head (checked against the server's public key); --save
    /// keeps it, with the key, for `verify --since`.
    TreeHead(TreeHeadArgs),
    /// Print and check an inclusion proof of an event in the current tree.
    Proof(ProofArgs),
    /// Write the log as NDJSON: each event with its leaf hash, then the signed tree head over
    /// them (a whole export, from 1, is what `restore` loads).
    Export(ExportArgs),
    /// Load an export into an empty database, checking every leaf hash and the closing signed
    /// head; the first bad line refuses the whole file.
    Restore(RestoreArgs),
    /// Record a file of diplomatic events through the gRPC API: a scenario (YAML) or PLOVER
    /// records (JSON). Checked as a whole first; importing the same file again writes nothing.
    Import(ImportArgs),
    /// Measure append throughput through gRPC against raw PostgreSQL inserts.
    Bench(crate::bench::BenchArgs),
    /// The channels between actors: who, status, established, last contact.
    Channels(ChannelsArgs),
    /// Summits and their stage (pending ones unless --all).
    Summits(SummitsArgs),
    /// Commitments and their status (pending, scheduled and lapsed ones unless --all).
    Commitments(CommitmentsArgs),
    /// An actor's interactions in the order they happened (a state's: through its people and
    /// offices).
    Timeline(TimelineArgs),
    /// The relations of two states: contacts by level, last contact, open channels, pending
    /// summits and commitments.
    Relations(RelationsArgs),
    /// How the sources report one occurrence: each source's quotes, the claims only one source
    /// makes, the claims they share.
    Divergence(DivergenceArgs),
    /// The projections themselves: their status, and rebuilds.
    Projections(ProjectionsArgs),
    /// Follow a projection as it changes: every row, then each change as it happens, until
    /// interrupted (or the server stops).
    Watch(WatchArgs),
    /// Make a self-signed CA, a server certificate and a client certificate in DIR, for trying
    /// TLS and client certificates out (not for production).
    DevCerts(DevCertsArgs),
    /// API tokens: create (prints the token once), list, revoke. Against the database by
    /// default; with --server, through the server with an admin --token.
    Token(TokenArgs),
}

#[derive(Args, Clone)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Where `diplog token` administers: the database (the default: --database-url, or the
/// embedded cluster under --data-dir, running or not), or a server.
#[derive(Args, Clone)]
pub struct TokenTarget {
    /// Administer through this server (with an admin --token) instead of the database.
    #[arg(long)]
    pub server: Option<String>,
    /// With --server: an admin token.
    #[arg(
        long,
        env = "DIPLOG_TOKEN",
        hide_env_values = true,
        requires = "server"
    )]
    pub token: Option<crate::auth::tokens::BearerToken>,
    /// With an `https://` --server: the CA to trust and the client certificate to present.
    #[command(flatten)]
    pub tls: ClientTlsArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Subcommand, Clone)]
pub enum TokenCommand {
    /// Mint a token; prints it once on stdout (alone on its line).
    Create(TokenCreateArgs),
    /// Every token: name, roles, created, expires, revoked (never the token).
    List(TokenListArgs),
    /// Revoke a token for good: refused everywhere within milliseconds.
    Revoke(TokenRevokeArgs),
}

#[derive(Args, Clone)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub target: TokenTarget,
    /// What the log records as `appended_by` on what this token appends.
    #[arg(long)]
    pub name: String,
    /// reader, writer, auditor or admin (repeatable, or comma-separated).
    #[arg(long = "role", required = true, value_delimiter = ',')]
    pub roles: Vec<crate::auth::Role>,
    /// When it stops working: a duration (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or a
    /// day `YYYY-MM-DD` (its end, UTC). Unset: never.
    #[arg(long, value_parser = parse_expiry)]
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Args, Clone)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub target: TokenTarget,
}

#[derive(Args, Clone)]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub target: TokenTarget,
    /// The token's name.
    pub name: String,
}

/// Parses `--expires`: a duration from now (`90d`, `12h`, `30m`, `45s`), an RFC 3339 time, or
/// a day (its end, UTC).
pub fn parse_expiry(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    for (unit, seconds) in units {
        if let Some(count) = raw.strip_suffix(unit).and_then(|n| n.parse::<i64>().ok()) {
            if count <= 0 {
                return Err(format!("{raw:?}: a duration must be positive"));
            }
            return chrono::Duration::try_seconds(count.saturating_mul(seconds))
                .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                .ok_or_else(|| format!("{raw:?} is too far away"));
        }
    }
    match AsOf::parse(raw) {
        Ok(AsOf::Time(time)) => Ok(time),
        _ => Err(format!(
            "{raw:?} is not a duration (90d, 12h, 30m, 45s), an RFC 3339 time or a day YYYY-MM-DD"
        )),
    }
}

/// When a projection answer is about, and how it is printed.
#[derive(Args, Debug, Clone)]
pub struct QueryArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Answer from the log as it was: a position (digits), an RFC 3339 time, or a day
    /// (`YYYY-MM-DD`: the end of that day, UTC).
    #[arg(long, value_parser = parse_as_of)]
    pub as_of: Option<AsOf>,
    /// Wait until the answer reflects at least this log position (read your writes); moot,
    /// and not sent, with --as-of.
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// Print the whole answer as proto3 JSON (one document) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `--as-of`: a log position or a time (the projections' own type).
pub use crate::projections::query::AsOf;

/// Parses `--as-of`: digits are a position; else an RFC 3339 time, or a day `YYYY-MM-DD`
/// meaning the end of that day, UTC (see [`AsOf::parse`], which the dashboard shares).
pub fn parse_as_of(raw: &str) -> Result<AsOf, String> {
    AsOf::parse(raw)
}

/// Filters shared by the lists.
#[derive(Args, Debug, Clone)]
pub struct ListFilterArgs {
    /// Only what concerns this actor (a state: through its offices and people too).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only what concerns both states of a pair, e.g. `RUS,USA`.
    #[arg(long, value_name = "A,B")]
    pub states: Option<String>,
    /// Only these statuses (stages, for summits); repeatable.
    #[arg(long)]
    pub status: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ChannelsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SummitsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Also summits held or cancelled.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CommitmentsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Also commitments fulfilled or withdrawn.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug, Clone)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The actor: a person, an office, an organisation or a state (e.g. `sergey-lavrov`).
    pub actor: String,
}

#[derive(Args, Debug, Clone)]
pub struct RelationsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// One state (alpha-3, e.g. `RUS`).
    pub a: String,
    /// The other state.
    pub b: String,
}

#[derive(Args, Debug, Clone)]
pub struct DivergenceArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The occurrence: its event id or its stream (`occurrence-…`).
    pub occurrence: String,
}

#[derive(Args, Debug, Clone)]
pub struct ProjectionsArgs {
    #[command(subcommand)]
    pub command: ProjectionsCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ProjectionsCommand {
    /// Every projection's position, the head, the lag, and any rebuild in progress.
    Status(ProjectionsStatusArgs),
    /// Rebuild a projection into fresh rows while the current ones keep answering.
    Rebuild(RebuildArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ProjectionsStatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the answer as proto3 JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The projection (see `diplog projections status`).
    pub name: String,
}

#[derive(Args, Clone)]
pub struct VerifyArgs {
    /// A head saved by `diplog tree-head --save`.
    #[arg(long)]
    pub since: Option<PathBuf>,
    /// With --since: the server to ask.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Without --since: the database to read.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// With --since: the log's public key (PEM `PUBLIC KEY`, or 64 hex digits); both the
    /// saved head and the new one must be signed by it.
    #[arg(long, requires = "since")]
    pub public_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct TreeHeadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Also write it (JSON, with the public key) to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// The log's public key (PEM `PUBLIC KEY`, or 64 hex digits): the head must be signed by
    /// it, whatever key the server serves.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The first position (default 1).
    #[arg(long)]
    pub from: Option<u64>,
    /// The last position (default: the tree head's size, the last event hashed).
    #[arg(long)]
    pub to: Option<u64>,
}

#[derive(Args, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The export to load.
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ProofArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The event's id.
    pub event_id: String,
}

#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Start after this position (a checkpoint's or the last event's, to resume).
    #[arg(long, conflicts_with = "now")]
    pub after: Option<u64>,
    /// Only events committed from now on.
    #[arg(long)]
    pub now: bool,
    /// Only events of this type (repeatable).
    #[arg(long = "type")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only diplomatic events that name this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Also print checkpoints as `{"checkpoint": N, "caught_up": …}` lines.
    #[arg(long)]
    pub checkpoints: bool,
}

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The projection: channels, summits, commitments or divergences.
    pub projection: String,
    #[command(flatten)]
    pub filter: ListFilterArgs,
    /// Summits: only those neither held nor cancelled.
    #[arg(long)]
    pub pending_only: bool,
    /// Start once the projection reflects at least this log position (read your writes).
    #[arg(long, default_value_t = 0)]
    pub min_position: u64,
    /// After this many seconds without a change the server sends a heartbeat (0: its default,
    /// 30); heartbeats are printed with --json only.
    #[arg(long, default_value_t = 0)]
    pub heartbeat_secs: u32,
    /// Print each message as one line of proto3 JSON (a `ProjectionChange`), heartbeats too.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// What the file holds.
    #[arg(
        long,
        env = "DIPLOG_IMPORT_FORMAT",
        value_enum,
        default_value = "scenario"
    )]
    pub format: ImportFormat,
    /// The file to import.
    pub file: PathBuf,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A scenario file (YAML; see scenarios/README.md). Refused as a whole if any event is
    /// wrong.
    Scenario,
    /// PLOVER event records (a JSON array). Records that cannot be imported are reported by
    /// id with the reason; the rest are imported.
    Plover,
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Import the founding scenario (the 15 February 2025 Rubio-Lavrov call) at start if the
    /// log is empty, so there is something to look at.
    #[arg(long, env = "DIPLOG_DEMO")]
    pub demo: bool,
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Where and how the server listens. Tests build this directly (port 0 works).
#[derive(Args, Debug, Clone)]
pub struct ServerConfig {
    /// gRPC address.
    #[arg(long, env = "DIPLOG_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// HTTP address (health check; the dashboard later).
    #[arg(long, env = "DIPLOG_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Longest a unary request may take, in seconds.
    #[arg(long, env = "DIPLOG_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// On shutdown, how long in-flight requests (streamed reads included) may go on, in
    /// seconds, before their connections are closed. Queued appends are written regardless.
    #[arg(long, env = "DIPLOG_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// The Ed25519 key that signs audit tree heads (PKCS#8 PEM): made on first start if the
    /// file does not exist, and kept. Default for `serve`: signing-key.pem under --data-dir.
    /// Unset in a config made in code (tests only): a key for this process alone.
    #[arg(long, env = "DIPLOG_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Adopt the signing key although this log's heads were signed by another (recorded in
    /// the database): the rotation is appended to the log as a `SigningKeyRotated` event.
    #[arg(long, env = "DIPLOG_ROTATE_SIGNING_KEY")]
    pub rotate_signing_key: bool,
    #[command(flatten)]
    pub projections: ProjectionsConfig,
    #[command(flatten)]
    pub subscriptions: SubscriptionArgs,
    #[command(flatten)]
    pub limits: LimitsArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// What one request may hold and how many streams one client may keep open (README
/// "Limits"). The defaults are the domain's documented limits (`domain::limits`).
#[derive(Args, Debug, Clone)]
pub struct LimitsArgs {
    /// One gRPC request's encoded size at most, in bytes; larger requests are refused with
    /// RESOURCE_EXHAUSTED before they are read. From 1 KiB (a read with filters fits) to
    /// 256 MiB (a request is held whole in memory while it is decoded and checked).
    #[arg(
        long,
        env = "DIPLOG_MAX_REQUEST_BYTES",
        default_value_t = limits::MAX_REQUEST_BYTES as u64,
        value_parser = clap::value_parser!(u64).range(1024..=256 << 20)
    )]
    pub max_request_bytes: u64,
    /// Events one Append or Record may hold at most. From 1 to 1000, the most the domain
    /// accepts in one append (one transaction of the single writer).
    #[arg(
        long,
        env = "DIPLOG_MAX_EVENTS_PER_APPEND",
        default_value_t = limits::MAX_EVENTS_PER_APPEND as u32,
        value_parser = clap::value_parser!(u32).range(1..=limits::MAX_EVENTS_PER_APPEND as i64)
    )]
    pub max_events_per_append: u32,
    /// One event's payload (its JSON text) at most, in bytes. From 2 (`{}`) to 1 MiB, the
    /// most the domain accepts: readers get an event per message, and their 16 MiB message
    /// limit and the subscription buffers are sized for it.
    #[arg(
        long,
        env = "DIPLOG_MAX_PAYLOAD_BYTES",
        default_value_t = limits::MAX_DATA_BYTES as u32,
        value_parser = clap::value_parser!(u32).range(2..=limits::MAX_DATA_BYTES as i64)
    )]
    pub max_payload_bytes: u32,
    /// Streams (reads, subscriptions, projection watches, dashboard `/live`) one client may
    /// hold open at once; a client is its principal when authenticated, else its IP address.
    /// From 1 to 10000: each open subscription may buffer up to --subscription-buffer-bytes.
    #[arg(
        long,
        env = "DIPLOG_MAX_STREAMS_PER_CLIENT",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..=10_000)
    )]
    pub max_streams_per_client: u32,
}

impl LimitsArgs {
    pub fn append(&self) -> limits::AppendLimits {
        limits::AppendLimits {
            max_events: self.max_events_per_append as usize,
            max_payload_bytes: self.max_payload_bytes as usize,
        }
    }

    pub fn max_request_bytes(&self) -> usize {
        usize::try_from(self.max_request_bytes).unwrap_or(usize::MAX)
    }

    pub fn streams(&self) -> crate::stream_limit::StreamLimiter {
        crate::stream_limit::StreamLimiter::new(self.max_streams_per_client as usize)
    }
}

impl Default for LimitsArgs {
    /// The documented defaults (what the flags default to).
    fn default() -> Self {
        Self {
            max_request_bytes: limits::MAX_REQUEST_BYTES as u64,
            max_events_per_append: limits::MAX_EVENTS_PER_APPEND as u32,
            max_payload_bytes: limits::MAX_DATA_BYTES as u32,
            max_streams_per_client: 64,
        }
    }
}

/// TLS on both ports. Without a certificate the server speaks plain text, which it does only on
/// loopback addresses unless `--insecure` is given.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// The server's certificate chain (PEM), for TLS on the gRPC and HTTP ports.
    #[arg(long, env = "DIPLOG_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "DIPLOG_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Verify client certificates against this CA (PEM; mutual TLS).
    #[arg(long, env = "DIPLOG_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// With --tls-client-ca: whether a client must present a certificate (required, the
    /// default) or may connect without one (optional; a certificate it presents is still
    /// verified).
    #[arg(
        long,
        env = "DIPLOG_TLS_CLIENT_AUTH",
        value_enum,
        requires = "tls_client_ca"
    )]
    pub tls_client_auth: Option<ClientAuth>,
    /// Serve plain text on addresses other than loopback (without TLS the server refuses to).
    #[arg(long, env = "DIPLOG_INSECURE")]
    pub insecure: bool,
}

/// Whether clients must present a certificate.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// A client without a certificate is refused at the handshake.
    #[default]
    Required,
    /// A client may connect without a certificate.
    Optional,
}

#[derive(Args, Debug, Clone)]
pub struct DevCertsArgs {
    /// Where to write ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem and
    /// client-key.pem (created if missing; existing files are never overwritten).
    pub dir: PathBuf,
    /// Another name or address for the server certificate, besides localhost, 127.0.0.1 and
    /// ::1 (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// The client certificate's subject common name.
    #[arg(long, default_value = "diplog-client")]
    pub client_name: String,
}

/// Who may call: see the README's "Principals and roles".
#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// auto: open on loopback with the embedded database, else tokens. open: callers without
    /// a credential are let in as `anonymous` with every role (loopback listeners only).
    /// tokens: every call needs a token (or a client certificate).
    #[arg(long = "auth", env = "DIPLOG_AUTH", value_enum, default_value = "auto")]
    pub mode: AuthMode,
    /// The roles of a verified client certificate's subject: `SUBJECT=ROLE[,ROLE]`
    /// (repeatable; in the env var, separated by `;`). An unmapped subject has no role.
    #[arg(long = "certificate-role", env = "DIPLOG_CERTIFICATE_ROLES", value_delimiter = ';',
          value_parser = crate::auth::authenticate::parse_certificate_role)]
    pub certificate_roles: Vec<(String, Vec<crate::auth::Role>)>,
    /// Set by `serve` when the database is the embedded cluster (what `auto` looks at).
    #[arg(skip)]
    pub embedded_database: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Auto,
    Open,
    Tokens,
}

impl AuthArgs {
    /// The mode to run in, given the addresses listened on; `open` on a listener that is not
    /// loopback is refused.
    pub fn resolve(
        &self,
        listeners: &[SocketAddr],
    ) -> Result<crate::auth::authenticate::Mode, String> {
        use crate::auth::authenticate::Mode;
        let loopback = listeners.iter().all(|address| address.ip().is_loopback());
        match self.mode {
            AuthMode::Open if !loopback => Err(format!(
                "--auth open is allowed only when every listener is loopback (listening on {})",
                listeners
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            AuthMode::Open => Ok(Mode::Open),
            AuthMode::Tokens => Ok(Mode::Tokens),
            AuthMode::Auto if loopback && self.embedded_database => Ok(Mode::Open),
            AuthMode::Auto => Ok(Mode::Tokens),
        }
    }
}

/// The limits of live subscriptions.
#[derive(Args, Debug, Clone)]
pub struct SubscriptionArgs {
    /// Messages queued for one subscriber at most.
    #[arg(
        long = "subscription-buffer",
        env = "DIPLOG_SUBSCRIPTION_BUFFER",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub buffer: u32,
    /// Bytes (about: payloads and metadata) queued for one subscriber at most; one larger
    /// event still goes, alone.
    #[arg(
        long = "subscription-buffer-bytes",
        env = "DIPLOG_SUBSCRIPTION_BUFFER_BYTES",
        default_value_t = 16 << 20
    )]
    pub buffer_bytes: usize,
    /// How long, in milliseconds, a subscriber's queue may stay full before the subscription
    /// is ended with RESOURCE_EXHAUSTED (the client resumes from its last position).
    #[arg(
        long = "subscription-stall-ms",
        env = "DIPLOG_SUBSCRIPTION_STALL_MS",
        default_value_t = 10_000
    )]
    pub stall_ms: u64,
    /// Events per database read by a subscription (tuning; tests make it small to cross page
    /// boundaries often).
    #[arg(long = "subscription-page-size", env = "DIPLOG_SUBSCRIPTION_PAGE_SIZE", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000), hide = true)]
    pub page_size: u32,
    /// Batches the live tail keeps for subscribers that fall behind (tuning; tests make it
    /// small to force the fallback to the database).
    #[arg(long = "subscription-tail-batches", env = "DIPLOG_SUBSCRIPTION_TAIL_BATCHES", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000), hide = true)]
    pub tail_batches: u32,
}

impl SubscriptionArgs {
    pub fn config(&self) -> crate::subscriptions::SubscriptionConfig {
        crate::subscriptions::SubscriptionConfig {
            buffer: self.buffer as usize,
            buffer_bytes: self.buffer_bytes,
            stall_timeout: Duration::from_millis(self.stall_ms),
            page_size: i64::from(self.page_size),
            tail_batches: self.tail_batches as usize,
            ..crate::subscriptions::SubscriptionConfig::default()
        }
    }
}

/// How the projection runners follow the log.
#[derive(Args, Debug, Clone)]
pub struct ProjectionsConfig {
    /// How often a caught-up projection reads the log head, in milliseconds: appends through
    /// other servers arrive this way (appends through this one wake it at once).
    #[arg(
        long = "projection-poll-ms",
        env = "DIPLOG_PROJECTION_POLL_MS",
        default_value_t = 1000
    )]
    pub poll_ms: u64,
    /// How often a server tries to take over a projection that another server runs, in
    /// milliseconds: the longest a projection stands still after its server dies.
    #[arg(
        long = "projection-takeover-ms",
        env = "DIPLOG_PROJECTION_TAKEOVER_MS",
        default_value_t = 1000
    )]
    pub takeover_ms: u64,
    /// A channel nobody used for this many days is reported DORMANT.
    #[arg(long, env = "DIPLOG_DORMANT_AFTER_DAYS", default_value_t = 90)]
    pub dormant_after_days: u32,
}

impl ProjectionsConfig {
    pub fn queries(&self) -> crate::projections::query::QueryConfig {
        crate::projections::query::QueryConfig {
            dormant_after: chrono::Duration::days(i64::from(self.dormant_after_days)),
            ..crate::projections::query::QueryConfig::default()
        }
    }

    pub fn runner(&self) -> RunnerConfig {
        RunnerConfig {
            poll_interval: Duration::from_millis(self.poll_ms),
            takeover_interval: Duration::from_millis(self.takeover_ms),
            ..RunnerConfig::default()
        }
    }
}

impl ServerConfig {
    /// Loopback, any free ports: for tests and the benchmark.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            request_timeout_secs: 30,
            shutdown_grace_secs: 2,
            signing_key: None,
            rotate_signing_key: false,
            projections: ProjectionsConfig {
                poll_ms: 50,
                takeover_ms: 50,
                dormant_after_days: 90,
            },
            subscriptions: SubscriptionArgs {
                buffer: 1024,
                buffer_bytes: 16 << 20,
                stall_ms: 10_000,
                page_size: 256,
                tail_batches: 256,
            },
            limits: LimitsArgs::default(),
            tls: TlsArgs::default(),
            auth: AuthArgs {
                mode: AuthMode::Open,
                certificate_roles: Vec::new(),
                embedded_database: false,
            },
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// The database: a URL, or else the embedded cluster under `--data-dir`.
/// No `Debug`: the URL may hold a password.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. Unset: run an embedded PostgreSQL cluster under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Data directory of the embedded cluster (created and initialised on first run).
    #[arg(long, env = "DIPLOG_DATA_DIR", default_value = "./diplog-data")]
    pub data_dir: PathBuf,
    /// Database connections in the pool.
    #[arg(long, env = "DIPLOG_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
}

/// How a CLI command reaches the server.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The diplog gRPC server.
    #[arg(long, env = "DIPLOG_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The API token to send (`authorization: Bearer`); a server that runs open needs none.
    #[arg(long, env = "DIPLOG_TOKEN", hide_env_values = true)]
    pub token: Option<crate::auth::tokens::BearerToken>,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

/// How a CLI command checks the server, and proves who it is, over TLS (an `https://` URL).
#[derive(Args, Debug, Clone, Default)]
pub struct ClientTlsArgs {
    /// Trust this CA (PEM) for the server's certificate, instead of the system's roots.
    #[arg(long, env = "DIPLOG_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Present this client certificate (PEM), for a server that verifies clients.
    #[arg(long, env = "DIPLOG_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, env = "DIPLOG_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct AppendArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The stream to append to.
    #[arg(long)]
    pub stream: String,
    /// The stream's expected version: any, no-stream, exists, or a number (0 = no stream).
    #[arg(long, default_value = "any", value_parser = parse_expected_version, allow_hyphen_values = true)]
    pub expect: ExpectedVersion,
    /// NDJSON file of events, `-` or nothing for standard input. Each line:
    /// {"id": "<uuid>", "type": "...", "data": {...}, "metadata": {...}}; `id` is optional.
    pub file: Option<PathBuf>,
}

/// Parses `--expect`: the words, or an exact version.
pub fn parse_expected_version(raw: &str) -> Result<ExpectedVersion, String> {
    match raw {
        "any" => Ok(ExpectedVersion::Any),
        "no-stream" => Ok(ExpectedVersion::NoStream),
        "exists" => Ok(ExpectedVersion::StreamExists),
        number => {
            let version: i64 = number.parse().map_err(|_| {
                format!("{raw:?} is not any, no-stream, exists or a version number")
            })?;
            ExpectedVersion::exact(version).map_err(|e| format!("version {e}"))
        }
    }
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stream", "all"])))]
pub struct ReadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Read this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Read the whole log.
    #[arg(long)]
    pub all: bool,
    /// First stream version (with --stream) or global position (with --all), inclusive.
    #[arg(long)]
    pub from: Option<u64>,
    /// The most events to print.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Newest first.
    #[arg(long)]
    pub backward: bool,
    /// Only events of this type (repeatable; with --all).
    #[arg(long = "type", requires = "all")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this (with --all).
    #[arg(long, requires = "all")]
    pub prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_versions_parse_from_words_and_numbers() {
        assert_eq!(parse_expected_version("any"), Ok(ExpectedVersion::Any));
        assert_eq!(
            parse_expected_version("no-stream"),
            Ok(ExpectedVersion::NoStream)
        );
        assert_eq!(
            parse_expected_version("exists"),
            Ok(ExpectedVersion::StreamExists)
        );
        assert_eq!(parse_expected_version("7"), Ok(ExpectedVersion::Exact(7)));
    }

    #[test]
    fn a_negative_or_unknown_expected_version_is_refused() {
        assert!(
            parse_expected_version("-1")
                .unwrap_err()
                .contains("negative")
        );
        assert!(parse_expected_version("latest").is_err());
    }

    #[test]
    fn as_of_reads_positions_times_and_days() {
        assert_eq!(parse_as_of("12"), Ok(AsOf::Position(12)));
        let AsOf::Time(time) = parse_as_of("2025-02-15T14:00:00+03:00").unwrap() else {
            panic!("a time");
        };
        assert_eq!(time.to_rfc3339(), "2025-02-15T11:00:00+00:00");
        let AsOf::Time(end) = parse_as_of("2025-02-15").unwrap() else {
            panic!("a time");
        };
        assert_eq!(
            end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2025-02-15T23:59:59.999999999Z"
        );
        assert!(parse_as_of("yesterday").is_err());
        assert!(parse_as_of("2025-02-30").is_err());
        assert!(parse_as_of("").is_err());
    }

    #[test]
    fn the_limits_default_as_the_flags_do_and_errors_name_real_flags() {
        let cli = Cli::try_parse_from(["diplog", "serve"]).unwrap();
        let Command::Serve(serve) = cli.command else {
            panic!("serve");
        };
        let parsed = serve.server.limits;
        let default = LimitsArgs::default();
        assert_eq!(parsed.max_request_bytes, default.max_request_bytes);
        assert_eq!(parsed.max_events_per_append, default.max_events_per_append);
        assert_eq!(parsed.max_payload_bytes, default.max_payload_bytes);
        assert_eq!(
            parsed.max_streams_per_client,
            default.max_streams_per_client
        );
        assert_eq!(default.append(), limits::AppendLimits::default());

        use clap::CommandFactory;
        let command = Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        for limit in [limits::Limit::EventsPerAppend, limits::Limit::PayloadBytes] {
            let flag = limit.flag().trim_start_matches("--");
            assert!(
                serve.get_arguments().any(|a| a.get_long() == Some(flag)),
                "{flag}"
            );
        }
        for flag in ["max-request-bytes", "max-streams-per-client"] {
            assert!(serve.get_arguments().any(|a| a.get_long() == Some(flag)));
        }
    }

    #[test]
    fn limits_outside_their_range_are_refused() {
        for args in [
            ["--max-events-per-append", "0"],
            ["--max-events-per-append", "1001"],
            ["--max-payload-bytes", "1048577"],
            ["--max-request-bytes", "1023"],
            ["--max-streams-per-client", "0"],
        ] {
            let parsed = Cli::try_parse_from(["diplog", "serve", args[0], args[1]]);
            assert!(parsed.is_err(), "{args:?}");
        }
        assert!(
            Cli::try_parse_from(["diplog", "serve", "--max-events-per-append", "1000"]).is_ok()
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
