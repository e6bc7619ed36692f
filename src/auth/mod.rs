//! Who is calling, and what they may do: principals and their roles.
//!
//! The transport authenticates a caller (a bearer token, a client certificate, or nobody on an
//! open loopback server) into a [`Principal`], puts it in the request's extensions, and every
//! RPC and page checks that the principal holds the role it needs. The principal's name is
//! what the log records as `appended_by` on the events it appends: it comes from the
//! credential, never from anything the client writes.

pub mod access;
pub mod authenticate;
pub mod certificate;
pub mod client;
pub mod layer;
pub mod login;
pub mod revocation;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

/// A role, as granted to a token or a certificate. Roles imply others: `writer` and `auditor`
/// include `reader`; `admin` includes everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read the log, the projections and subscriptions; see the dashboard.
    Reader,
    /// Reader, and append and record events.
    Writer,
    /// Reader, and proofs, exports and answers as of an earlier time.
    Auditor,
    /// Everything: tokens and rebuilds included.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Reader, Role::Writer, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether holding `self` grants what `needed` grants.
    pub fn grants(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || needed == Role::Reader
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected reader, writer, auditor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| UnknownRole(raw.to_owned()))
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nobody: a server running open on loopback (said at start-up) lets everyone in.
    Open,
    /// A bearer token, by its name.
    Token,
    /// A client certificate verified against the server's CA, by its subject.
    Certificate,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded on what it appends: the token's name, or the certificate's subject.
    pub name: String,
    pub roles: Vec<Role>,
    pub credential: Credential,
}

impl Principal {
    /// Everyone, on a server that runs open: every role, recorded as `anonymous`.
    pub fn open() -> Self {
        Self {
            name: crate::domain::ANONYMOUS.to_owned(),
            roles: vec![Role::Admin],
            credential: Credential::Open,
        }
    }

    /// Whether any of the principal's roles grants `needed`.
    pub fn may(&self, needed: Role) -> bool {
        self.roles.iter().any(|role| role.grants(needed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_imply_reader_and_admin_implies_all() {
        for role in Role::ALL {
            assert!(role.grants(Role::Reader), "{role} reads");
            assert!(Role::Admin.grants(role), "admin grants {role}");
            assert!(role.grants(role));
        }
        assert!(!Role::Writer.grants(Role::Auditor));
        assert!(!Role::Auditor.grants(Role::Writer));
        assert!(!Role::Reader.grants(Role::Writer));
        assert!(!Role::Writer.grants(Role::Admin));
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
