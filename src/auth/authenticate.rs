//! Turning what a request presents (a bearer token, a verified client certificate's subject,
//! or nothing) into a [`Principal`], cheaply enough to do on every request.
//!
//! Tokens found in the database are cached by their public lookup id. A cached token is
//! checked on every use (hash, revocation, expiry at that instant), and the whole cache is
//! dropped when any server (or the CLI) changes `api_tokens`: the table's trigger NOTIFYs
//! channel `diplog_tokens` and every server LISTENs. If a notification could be lost (the
//! listening connection broke) the cache is dropped too, and no entry lives longer than
//! [`CACHE_TTL`] in any case. So a revocation takes effect within the NOTIFY's delivery (a few
//! milliseconds) on every server, and within [`CACHE_TTL`] at worst; an expiry takes effect at
//! the instant it passes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::tokens::{Presented, Rejection, Secret, StoredToken, TokenError, TokenStore};
use super::{Credential, Principal, Role};

/// The longest a cached token goes unchecked against the database.
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// Past this many cached tokens the cache starts over (it only ever holds real tokens, so
/// this bounds memory, not correctness).
const CACHE_CAPACITY: usize = 10_000;
const NOTIFY_CHANNEL: &str = "diplog_tokens";

/// Whether a server lets callers without credentials in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Callers without a credential are [`Principal::open`] (recorded as `anonymous`). Only on
    /// loopback listeners.
    Open,
    /// Every call but the health checks needs a valid credential.
    Tokens,
}

/// Why a request was not let in: for the log (with the peer address), never with the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("could not check the token: {0}")]
    Store(#[from] TokenError),
}

struct Cached {
    token: StoredToken,
    fetched: Instant,
}

struct Cache {
    tokens: Mutex<HashMap<String, Cached>>,
    /// Bumped whenever the cache is dropped (tokens changed somewhere): open streams re-check
    /// their token on it.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            tokens: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Cache {
    fn get(&self, lookup: &str) -> Option<StoredToken> {
        let tokens = self.tokens.lock().expect("the token cache is not poisoned");
        tokens
            .get(lookup)
            .filter(|cached| cached.fetched.elapsed() < CACHE_TTL)
            .map(|cached| cached.token.clone())
    }

    fn put(&self, lookup: String, token: StoredToken) {
        let mut tokens = self.tokens.lock().expect("the token cache is not poisoned");
        if tokens.len() >= CACHE_CAPACITY {
            tokens.clear();
        }
        tokens.insert(
            lookup,
            Cached {
                token,
                fetched: Instant::now(),
            },
        );
    }

    fn clear(&self) {
        self.tokens
            .lock()
            .expect("the token cache is not poisoned")
            .clear();
        self.changes.send_modify(|changes| *changes += 1);
    }
}

/// Authenticates requests for one server. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
    tokens: Option<TokenStore>,
    cache: Arc<Cache>,
    certificate_roles: Arc<BTreeMap<String, Vec<Role>>>,
    /// Tokens this process made for itself (in memory only), by lookup id.
    internal: Arc<HashMap<String, StoredToken>>,
}

impl Authenticator {
    /// `tokens`: where tokens are checked (`None`: no token is valid, as in unit tests).
    /// `certificate_roles`: the roles of each client-certificate subject.
    pub fn new(
        mode: Mode,
        tokens: Option<TokenStore>,
        certificate_roles: BTreeMap<String, Vec<Role>>,
    ) -> Self {
        Self {
            mode,
            tokens,
            cache: Arc::default(),
            certificate_roles: Arc::new(certificate_roles),
            internal: Arc::default(),
        }
    }

    /// Makes a token for this process's own calls (the `--demo` import) that exists in its
    /// memory only and dies with it. Call before serving: clones made earlier do not know it.
    pub fn internal_token(&mut self, name: &str, roles: Vec<Role>) -> Result<Secret, TokenError> {
        let (lookup, stored, secret) = StoredToken::ephemeral(name, roles)?;
        Arc::make_mut(&mut self.internal).insert(lookup, stored);
        Ok(secret)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Drops every cached token now: a revocation made through this server holds here at
    /// once, without waiting for the NOTIFY that tells every server.
    pub fn forget_cached_tokens(&self) {
        self.cache.clear();
    }

    /// Changes whenever tokens may have changed (on any server, or through the CLI).
    pub fn token_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.cache.changes.subscribe()
    }

    /// Who the caller is. A token, when present, decides (a bad token is refused even if a
    /// good certificate came with it: the caller meant the token). Else a verified
    /// certificate's subject is the principal, with the roles `--certificate-role` gives it
    /// (none if unmapped: authenticated, but denied everything). Else an open server lets the
    /// caller in as [`Principal::open`], and a token server refuses.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        certificate_subject: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if let Some(token) = bearer {
            return self.token_principal(token).await;
        }
        if let Some(subject) = certificate_subject {
            return Ok(Principal {
                name: subject.to_owned(),
                roles: self
                    .certificate_roles
                    .get(subject)
                    .cloned()
                    .unwrap_or_default(),
                credential: Credential::Certificate,
            });
        }
        match self.mode {
            Mode::Open => Ok(Principal::open()),
            Mode::Tokens => Err(Rejection::Missing.into()),
        }
    }

    async fn token_principal(&self, token: &str) -> Result<Principal, AuthError> {
        let presented = Presented::parse(token)?;
        let cached = self
            .internal
            .get(&presented.lookup)
            .cloned()
            .or_else(|| self.cache.get(&presented.lookup));
        let stored = match cached {
            Some(stored) => stored,
            None => {
                let Some(store) = &self.tokens else {
                    return Err(Rejection::Unknown.into());
                };
                let stored = store
                    .find(&presented.lookup)
                    .await?
                    .ok_or(Rejection::Unknown)?;
                self.cache.put(presented.lookup.clone(), stored.clone());
                stored
            }
        };
        stored.check(&presented, Utc::now())?;
        Ok(Principal {
            name: stored.name,
            roles: stored.roles,
            credential: Credential::Token,
        })
    }

    /// Listens for changes to `api_tokens` (from any server or the CLI) and drops the cache on
    /// each, until `shutdown`. Also drops it whenever the listening connection was lost, as
    /// notifications may have been missed meanwhile.
    pub async fn follow_token_changes(self, shutdown: CancellationToken) {
        let Some(store) = &self.tokens else { return };
        // A connection of its own, outside the server's pool: it is held for good, and must
        // not take a connection from requests (an overloaded pool would also delay it).
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*store.pool().connect_options()).clone());
        loop {
            let listener = async {
                let mut listener = PgListener::connect_with(&own).await?;
                listener.listen(NOTIFY_CHANNEL).await?;
                // Anything cached before we listened may be stale.
                self.cache.clear();
                loop {
                    match listener.try_recv().await? {
                        Some(_) => debug!("tokens changed: the token cache is dropped"),
                        None => warn!("lost the token-change listener; the token cache is dropped"),
                    }
                    self.cache.clear();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                result = listener => if let Err(error) = result {
                    warn!(error = %error, "could not listen for token changes; retrying");
                },
            }
            self.cache.clear();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Parses `--certificate-role SUBJECT=ROLE[,ROLE]`.
pub fn parse_certificate_role(raw: &str) -> Result<(String, Vec<Role>), String> {
    let (subject, roles) = raw
        .rsplit_once('=')
        .ok_or_else(|| format!("{raw:?} is not SUBJECT=ROLE[,ROLE]"))?;
    if subject.is_empty() {
        return Err(format!("{raw:?} names no subject"));
    }
    let roles = roles
        .split(',')
        .map(|role| role.trim().parse::<Role>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((subject.to_owned(), roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(mode: Mode) -> Authenticator {
        let roles = BTreeMap::from([("CN=auditor-1".to_owned(), vec![Role::Auditor])]);
        Authenticator::new(mode, None, roles)
    }

    async fn decide(
        mode: Mode,
        bearer: Option<&str>,
        subject: Option<&str>,
    ) -> Result<Principal, String> {
        authenticator(mode)
            .authenticate(bearer, subject)
            .await
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn the_credential_decides_in_order_token_certificate_mode() {
        let unknown = "diplog_0123456789abcdef_".to_owned() + &"0".repeat(64);
        // Nothing presented: open lets in as anonymous, tokens refuses.
        assert_eq!(decide(Mode::Open, None, None).await, Ok(Principal::open()));
        assert_eq!(
            decide(Mode::Tokens, None, None).await,
            Err("no token".into())
        );
        // A mapped certificate: its subject and roles, in either mode.
        for mode in [Mode::Open, Mode::Tokens] {
            let principal = decide(mode, None, Some("CN=auditor-1")).await.unwrap();
            assert_eq!(principal.name, "CN=auditor-1");
            assert_eq!(principal.roles, vec![Role::Auditor]);
            assert_eq!(principal.credential, Credential::Certificate);
        }
        // An unmapped certificate: authenticated, no roles, so denied everything.
        let nobody = decide(Mode::Tokens, None, Some("CN=stranger"))
            .await
            .unwrap();
        assert!(nobody.roles.is_empty());
        assert!(!nobody.may(Role::Reader));
        // A token takes precedence: a bad one is refused even beside a good certificate,
        // and even on an open server.
        for mode in [Mode::Open, Mode::Tokens] {
            assert_eq!(
                decide(mode, Some(&unknown), Some("CN=auditor-1")).await,
                Err("unknown token".into())
            );
            assert_eq!(
                decide(mode, Some("hunter2"), None).await,
                Err("malformed token or authorization header".into())
            );
        }
    }

    #[test]
    fn certificate_roles_parse() {
        assert_eq!(
            parse_certificate_role("CN=ci,O=Example=writer,auditor"),
            Ok(("CN=ci,O=Example".into(), vec![Role::Writer, Role::Auditor]))
        );
        assert!(parse_certificate_role("CN=ci").is_err());
        assert!(parse_certificate_role("=reader").is_err());
        assert!(parse_certificate_role("CN=ci=root").is_err());
    }
}
