//! API tokens: minting, listing, revoking, and checking a presented token against the
//! `api_tokens` table. The token text is returned once, by [`TokenStore::create`], and never
//! stored or logged; the table keeps a salt and a hash.
//!
//! A token reads `diplog_<lookup>_<secret>`: `lookup` (16 hex digits, public) finds the row,
//! `secret` (64 hex digits: 256 bits from the OS RNG) is what proves possession. The stored
//! hash is SHA-256(salt ‖ secret). A fast hash is right here, where a slow password hash
//! (argon2, bcrypt) would only cost every request: the secret is random with 256 bits of
//! entropy, so there is no dictionary to try and brute force is hopeless; the salt only keeps
//! equal secrets (there are none) from hashing alike. Hashes are compared in constant time.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use super::Role;

const PREFIX: &str = "diplog_";
const LOOKUP_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;
const MAX_NAME_CHARS: usize = 64;

/// A token's name: what the log records as `appended_by`. 1 to 64 characters: ASCII letters,
/// digits and `. _ - @ :`, starting with a letter or digit (so it reads unambiguously in logs,
/// tables and audit records, and cannot pose as another principal's name with spaces or
/// control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(raw: &str) -> Result<Self, TokenError> {
        let bad = |why: &str| TokenError::InvalidName(format!("{raw:?} {why}"));
        if raw.is_empty() {
            return Err(TokenError::InvalidName(
                "a token name must not be empty".into(),
            ));
        }
        if raw.chars().count() > MAX_NAME_CHARS {
            return Err(bad("is longer than 64 characters"));
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(bad("must start with a letter or a digit"));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ".-_@:".contains(*c)))
        {
            return Err(bad(&format!(
                "holds {c:?}: use letters, digits and . _ - @ : only"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The plaintext of a freshly minted token. Its `Debug` hides it; print it with
/// [`Secret::expose`] exactly once.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A token a client sends (`--token`, DIPLOG_TOKEN). Its `Debug` hides it, so no error or log
/// line that prints the client's arguments shows it.
#[derive(Clone)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for BearerToken {
    /// Never fails: a parse error would print the value.
    type Err = std::convert::Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(Self(raw.trim().to_owned()))
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// What `list` shows of a token: never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token as stored, for checking a presented one.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub name: String,
    pub roles: Vec<Role>,
    salt: Vec<u8>,
    hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a presented credential was not accepted. Goes to the server log (with the peer
/// address); the client is told only that it is unauthenticated, and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no token")]
    Missing,
    #[error("malformed token or authorization header")]
    Malformed,
    #[error("unknown token")]
    Unknown,
    #[error("expired token")]
    Expired,
    #[error("revoked token")]
    Revoked,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token name: {0}")]
    InvalidName(String),
    #[error("a token needs at least one role")]
    NoRoles,
    #[error("the expiry {0} is already past")]
    ExpiryPast(DateTime<Utc>),
    #[error("a token named {0:?} already exists")]
    AlreadyExists(String),
    #[error("no token is named {0:?}")]
    NotFound(String),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("the token table holds an unknown role {0:?}")]
    CorruptRole(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A presented token, split into its public lookup id and its secret.
#[derive(PartialEq, Eq)]
pub struct Presented {
    pub lookup: String,
    secret: [u8; SECRET_BYTES],
}

impl Presented {
    /// Parses `diplog_<16 hex>_<64 hex>`; anything else is [`Rejection::Malformed`].
    pub fn parse(raw: &str) -> Result<Self, Rejection> {
        let rest = raw.strip_prefix(PREFIX).ok_or(Rejection::Malformed)?;
        let (lookup, secret) = rest.split_once('_').ok_or(Rejection::Malformed)?;
        let lower_hex = |s: &str, bytes: usize| {
            s.len() == bytes * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !lower_hex(lookup, LOOKUP_BYTES) || !lower_hex(secret, SECRET_BYTES) {
            return Err(Rejection::Malformed);
        }
        let mut bytes = [0u8; SECRET_BYTES];
        hex::decode_to_slice(secret, &mut bytes).map_err(|_| Rejection::Malformed)?;
        Ok(Self {
            lookup: lookup.to_owned(),
            secret: bytes,
        })
    }
}

impl StoredToken {
    /// Whether `presented` is this token, in constant time over the hash; then whether it is
    /// still good at `now`.
    pub fn check(&self, presented: &Presented, now: DateTime<Utc>) -> Result<(), Rejection> {
        let hash = salted_hash(&self.salt, &presented.secret);
        if !bool::from(hash.as_slice().ct_eq(&self.hash)) {
            return Err(Rejection::Unknown);
        }
        if self.revoked_at.is_some() {
            return Err(Rejection::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(Rejection::Expired);
        }
        Ok(())
    }
}

impl StoredToken {
    /// A token that lives in this process's memory only (the server's own, for `--demo`),
    /// with its lookup id and text.
    pub fn ephemeral(name: &str, roles: Vec<Role>) -> Result<(String, Self, Secret), TokenError> {
        let lookup = hex::encode(random::<LOOKUP_BYTES>()?);
        let secret = random::<SECRET_BYTES>()?;
        let salt = random::<SALT_BYTES>()?.to_vec();
        let stored = StoredToken {
            name: name.to_owned(),
            roles,
            hash: salted_hash(&salt, &secret),
            salt,
            expires_at: None,
            revoked_at: None,
        };
        let text = format!("{PREFIX}{lookup}_{}", hex::encode(secret));
        Ok((lookup, stored, Secret(text)))
    }
}

fn salted_hash(salt: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret);
    hasher.finalize().to_vec()
}

fn random<const N: usize>() -> Result<[u8; N], TokenError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(bytes)
}

fn parse_roles(raw: Vec<String>) -> Result<Vec<Role>, TokenError> {
    raw.into_iter()
        .map(|role| role.parse().map_err(|_| TokenError::CorruptRole(role)))
        .collect()
}

/// The `api_tokens` table.
#[derive(Clone)]
pub struct TokenStore {
    pool: PgPool,
}

impl TokenStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Mints a token and returns its text, which exists nowhere else from now on.
    pub async fn create(
        &self,
        name: &TokenName,
        roles: &[Role],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(TokenInfo, Secret), TokenError> {
        if roles.is_empty() {
            return Err(TokenError::NoRoles);
        }
        if let Some(at) = expires_at.filter(|at| *at <= Utc::now()) {
            return Err(TokenError::ExpiryPast(at));
        }
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let lookup = hex::encode(random::<LOOKUP_BYTES>()?);
        let secret = random::<SECRET_BYTES>()?;
        let salt = random::<SALT_BYTES>()?;
        let role_names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let inserted: Option<(DateTime<Utc>,)> = sqlx::query_as(
            "insert into api_tokens (name, lookup_id, salt, hash, roles, expires_at)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (name) do nothing
             returning created_at",
        )
        .bind(name.as_str())
        .bind(&lookup)
        .bind(salt.as_slice())
        .bind(salted_hash(&salt, &secret))
        .bind(&role_names)
        .bind(expires_at)
        .fetch_optional(&self.pool)
        .await?;
        let Some((created_at,)) = inserted else {
            return Err(TokenError::AlreadyExists(name.as_str().to_owned()));
        };
        let text = format!("{PREFIX}{lookup}_{}", hex::encode(secret));
        Ok((
            TokenInfo {
                name: name.as_str().to_owned(),
                roles,
                created_at,
                expires_at,
                revoked_at: None,
            },
            Secret(text),
        ))
    }

    /// Every token, by name: revoked and expired ones too (they stay, so the names the log
    /// records keep meaning something).
    pub async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        type Row = (
            String,
            Vec<String>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "select name, roles, created_at, expires_at, revoked_at from api_tokens order by name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(name, roles, created_at, expires_at, revoked_at)| {
                Ok(TokenInfo {
                    name,
                    roles: parse_roles(roles)?,
                    created_at,
                    expires_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Revokes a token for good. Revoking a revoked token again is fine (and keeps the first
    /// time); an unknown name is [`TokenError::NotFound`].
    pub async fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let updated = sqlx::query(
            "update api_tokens set revoked_at = coalesce(revoked_at, now()) where name = $1",
        )
        .bind(name)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(TokenError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// The stored token a lookup id names, if any.
    pub async fn find(&self, lookup: &str) -> Result<Option<StoredToken>, TokenError> {
        type Row = (
            String,
            Vec<String>,
            Vec<u8>,
            Vec<u8>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let row: Option<Row> = sqlx::query_as(
            "select name, roles, salt, hash, expires_at, revoked_at
             from api_tokens where lookup_id = $1",
        )
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(name, roles, salt, hash, expires_at, revoked_at)| {
            Ok(StoredToken {
                name,
                roles: parse_roles(roles)?,
                salt,
                hash,
                expires_at,
                revoked_at,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(secret: &[u8; SECRET_BYTES]) -> StoredToken {
        let salt = vec![7u8; SALT_BYTES];
        StoredToken {
            name: "ci".into(),
            roles: vec![Role::Writer],
            hash: salted_hash(&salt, secret),
            salt,
            expires_at: None,
            revoked_at: None,
        }
    }

    fn token(secret: &[u8; SECRET_BYTES]) -> String {
        format!("diplog_{}_{}", "0123456789abcdef", hex::encode(secret))
    }

    #[test]
    fn names_are_letters_digits_and_a_few_marks() {
        for good in ["ci", "alice@example.org", "svc:importer-2", "a.b_c", "7"] {
            assert!(TokenName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            " ci",
            "-ci",
            "ci bot",
            "ci\n",
            "anonymous\u{200b}",
            "naïve",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(TokenName::parse(bad), Err(TokenError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_token_parses_only_in_its_exact_shape() {
        let secret = [9u8; SECRET_BYTES];
        let presented = Presented::parse(&token(&secret)).unwrap();
        assert_eq!(presented.lookup, "0123456789abcdef");
        for bad in [
            String::new(),
            "diplog_".into(),
            "diplog_0123456789abcdef".into(),
            token(&secret).to_uppercase(),
            format!("{}0", token(&secret)),
            token(&secret).replacen("diplog_", "dipl0g_", 1),
            format!("diplog_0123456789abcde_{}", hex::encode(secret)),
        ] {
            assert_eq!(
                Presented::parse(&bad).err(),
                Some(Rejection::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_right_secret_while_live_passes() {
        let secret = [9u8; SECRET_BYTES];
        let now = Utc::now();
        let mut row = stored(&secret);
        assert_eq!(
            row.check(&Presented::parse(&token(&secret)).unwrap(), now),
            Ok(())
        );
        let other = Presented::parse(&token(&[8u8; SECRET_BYTES])).unwrap();
        assert_eq!(row.check(&other, now), Err(Rejection::Unknown));

        row.expires_at = Some(now);
        let right = Presented::parse(&token(&secret)).unwrap();
        assert_eq!(row.check(&right, now), Err(Rejection::Expired));
        row.expires_at = Some(now + chrono::Duration::seconds(1));
        assert_eq!(row.check(&right, now), Ok(()));
        row.revoked_at = Some(now);
        assert_eq!(row.check(&right, now), Err(Rejection::Revoked));
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let secret = Secret("diplog_0123456789abcdef_00".into());
        assert!(!format!("{secret:?}").contains("0123"));
    }
}
