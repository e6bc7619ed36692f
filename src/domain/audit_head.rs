//! Tree heads and their signatures: what a client needs to check a head with the server's
//! public key alone.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// The tag that starts every signed tree head, so the signature cannot be taken for another
/// kind of message.
pub const SIGNED_TAG: &[u8] = b"diplog.tree-head.v1";

/// A tree head: the size of the log it covers and the RFC 6962 root hash over it, and when the
/// server stated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: [u8; 32],
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub timestamp_ms: u64,
}

impl TreeHead {
    /// `"diplog.tree-head.v1"`, then size (u64 big-endian), root (32 bytes), timestamp (u64
    /// big-endian milliseconds): the bytes the Ed25519 signature is over.
    pub fn signed_bytes(&self) -> Vec<u8> {
        [
            SIGNED_TAG,
            &self.size.to_be_bytes(),
            &self.root,
            &self.timestamp_ms.to_be_bytes(),
        ]
        .concat()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTreeHead {
    pub head: TreeHead,
    pub signature: [u8; 64],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("the public key is not a valid Ed25519 key")]
    BadKey,
    #[error("the signature does not match the tree head and the public key")]
    BadSignature,
}

impl SignedTreeHead {
    pub fn verify(&self, public_key: &[u8; 32]) -> Result<(), HeadError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| HeadError::BadKey)?;
        key.verify(
            &self.head.signed_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| HeadError::BadSignature)
    }
}
