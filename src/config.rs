//! The server's configuration (`diplog serve`'s flags, clap). Every flag also reads an env
//! var. The client commands' arguments live beside the commands, in `cli/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::database::DatabaseArgs;
use crate::domain::limits;
use crate::projections::engine::runner::RunnerConfig;

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
    /// Trace export (read by `main`, which installs the subscriber before anything starts).
    #[command(flatten)]
    pub otlp: crate::telemetry::OtlpArgs,
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
    /// The log's name in its C2SP checkpoints, and the name of its key there: a schema-less
    /// URL such as diplog.example.org/log (no spaces, no '+'). Tools that verify checkpoints
    /// know the log by it, so choose it once.
    #[arg(
        long,
        env = "DIPLOG_LOG_ORIGIN",
        default_value = crate::domain::checkpoint::DEFAULT_ORIGIN
    )]
    pub log_origin: crate::domain::checkpoint::LogOrigin,
    /// A witness to ask for cosignatures of each checkpoint (C2SP tlog-witness):
    /// `NAME+KEYID+KEY=URL`, its verifier key (a cosignature/v1 key) and its submission prefix
    /// (repeatable; in the env var, separated by `;`).
    #[arg(long = "witness", env = "DIPLOG_WITNESSES", value_delimiter = ';',
          value_parser = crate::audit::witness::parse_witness)]
    pub witnesses: Vec<crate::audit::witness::Witness>,
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
    /// Memory, in MiB, that as-of and on-day answers keep replayed projections in, so that the
    /// next page or a later position does not replay from the start; the least recently used
    /// go first.
    #[arg(
        long = "as-of-cache-mib",
        env = "DIPLOG_AS_OF_CACHE_MIB",
        default_value_t = 256
    )]
    pub as_of_cache_mib: u32,
    /// As-of and on-date answers that replay the log at once; more wait for a turn. Each holds
    /// a projection as of its position in memory while it runs.
    #[arg(long = "as-of-replays", env = "DIPLOG_AS_OF_REPLAYS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub as_of_replays: u32,
    /// Items one WatchProjection may hold (it keeps the last rows it sent, to send only what
    /// changes); a watch whose filter passes more is refused, or ended when its list grows
    /// past it, with RESOURCE_EXHAUSTED. From 1 to 10,000,000.
    #[arg(long = "max-watch-rows", env = "DIPLOG_MAX_WATCH_ROWS",
          default_value_t = crate::projections::read::query::DEFAULT_WATCH_ROWS as u32,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_watch_rows: u32,
    /// Where as-of answers come from: `versions`, the rows the projections record as of each
    /// commit, with the few events since replayed on top (fast, in bounded memory); or
    /// `replay`, a replay of the log from its start into fresh models, trusting no stored row
    /// (what an auditor checks the versions against; slow and memory-hungry on a large log).
    /// Answers replay anyway while a projection's rows are not versioned (rows written before
    /// versions were recorded, until their rebuild) or it lags far behind the position.
    #[arg(long = "as-of-from", env = "DIPLOG_AS_OF_FROM", value_enum,
          default_value_t = AsOfFrom::Versions)]
    pub as_of_from: AsOfFrom,
    /// The most events an answer on a day (`on_day`) replays on top of the rows the
    /// projections recorded. Past it (a log recorded far out of date order, such as old coded
    /// records imported after recent readouts) the answer replays the log from its start
    /// instead, which then costs less. From 1 to 100,000,000.
    #[arg(long = "on-day-max-events-on-top", env = "DIPLOG_ON_DAY_MAX_EVENTS_ON_TOP",
          default_value_t = crate::projections::read::query::DEFAULT_ON_DAY_MOST_ON_TOP,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub on_day_max_events_on_top: u64,
    /// Every multiple of this log position is a commit of each projection whose rows are
    /// recorded, so an answer as of a position replays fewer events than this on top of them.
    /// Smaller: faster as-of answers, more commits. Every server of a database must use the
    /// same (a projection recorded at other marks is rebuilt). From 1 to 1,000,000.
    #[arg(long = "projection-versions-every", env = "DIPLOG_PROJECTION_VERSIONS_EVERY",
          default_value_t = crate::projections::engine::runner::VERSIONS_EVERY,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub versions_every: u64,
}

pub use crate::projections::read::query::AsOfFrom;

impl ProjectionsConfig {
    pub fn queries(&self) -> crate::projections::read::query::QueryConfig {
        crate::projections::read::query::QueryConfig {
            dormant_after: chrono::Duration::days(i64::from(self.dormant_after_days)),
            snapshot_bytes: (self.as_of_cache_mib as usize) << 20,
            replays: self.as_of_replays as usize,
            watch_rows: self.max_watch_rows as usize,
            as_of_from: self.as_of_from,
            on_day_most_on_top: self.on_day_max_events_on_top,
        }
    }

    pub fn runner(&self) -> RunnerConfig {
        RunnerConfig {
            poll_interval: Duration::from_millis(self.poll_ms),
            takeover_interval: Duration::from_millis(self.takeover_ms),
            versions_every: self.versions_every,
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
            log_origin: crate::domain::checkpoint::LogOrigin::parse(
                crate::domain::checkpoint::DEFAULT_ORIGIN,
            )
            .expect("the default origin is valid"),
            witnesses: Vec::new(),
            projections: ProjectionsConfig {
                poll_ms: 50,
                takeover_ms: 50,
                dormant_after_days: 90,
                as_of_cache_mib: 256,
                max_watch_rows: crate::projections::read::query::DEFAULT_WATCH_ROWS as u32,
                as_of_replays: 2,
                as_of_from: AsOfFrom::Versions,
                on_day_max_events_on_top:
                    crate::projections::read::query::DEFAULT_ON_DAY_MOST_ON_TOP,
                versions_every: crate::projections::engine::runner::VERSIONS_EVERY,
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
