//! The server's Ed25519 key for signing tree heads: generated on first start and kept in a file
//! (PKCS#8 PEM, readable by OpenSSL), so heads signed before a restart still verify after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::domain::audit_head::SignedTreeHead;
use crate::domain::audit_head::TreeHead;

#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("could not read the signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not write the signing key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an Ed25519 private key in PKCS#8 PEM: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

#[derive(Clone)]
pub struct TreeSigner {
    key: SigningKey,
}

impl TreeSigner {
    /// Reads the key at `path`, or makes one and keeps it there (mode 0600) if there is none.
    /// Two servers starting at once on one path end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self, SignerError> {
        match std::fs::read_to_string(path) {
            Ok(pem) => Self::from_pem(path, &pem),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                signer.keep(path)?;
                // Whoever linked first won: use the key that is there now.
                let pem = std::fs::read_to_string(path).map_err(|source| SignerError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                let kept = Self::from_pem(path, &pem)?;
                tracing::info!(path = %path.display(), public_key = %kept.public_key_hex(), "made a new tree-head signing key");
                Ok(kept)
            }
            Err(source) => Err(SignerError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// A key that lives only as long as the process (tests, throwaway servers).
    pub fn generate() -> Result<Self, SignerError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SignerError::Random(e.to_string()))?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    fn from_pem(path: &Path, pem: &str) -> Result<Self, SignerError> {
        SigningKey::from_pkcs8_pem(pem)
            .map(|key| Self { key })
            .map_err(|e| SignerError::BadKey {
                path: path.to_owned(),
                reason: e.to_string(),
            })
    }

    /// Writes a temporary file and links it into place, so a reader never sees half a key and
    /// an existing key is never replaced.
    fn keep(&self, path: &Path) -> Result<(), SignerError> {
        use std::os::unix::fs::OpenOptionsExt;
        let write_error = |source| SignerError::Write {
            path: path.to_owned(),
            source,
        };
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| write_error(std::io::Error::other(e.to_string())))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write_error)?;
        let temporary = dir.join(format!(".signing-key-{}", uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(write_error)?;
        file.write_all(pem.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_error)?;
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(write_error(error)),
        }
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key().to_bytes())
    }

    /// The public key as PEM (SubjectPublicKeyInfo), for OpenSSL and friends.
    pub fn public_key_pem(&self) -> String {
        self.public_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 public key encodes")
    }

    /// A plain Ed25519 signature: checkpoints' signed notes sign their text this way.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    pub fn sign(&self, head: TreeHead) -> SignedTreeHead {
        let signature = self.key.sign(&head.signed_bytes());
        SignedTreeHead {
            head,
            signature: signature.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_key_is_read_back_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/tree-head.pem");
        let first = TreeSigner::load_or_create(&path).unwrap();
        let again = TreeSigner::load_or_create(&path).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the private key is readable by its owner only"
        );
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }

    #[test]
    fn a_signed_head_verifies_with_the_public_key_only() {
        let signer = TreeSigner::generate().unwrap();
        let head = TreeHead {
            size: 3,
            root: [7; 32],
            timestamp_ms: 1_739_620_800_000,
        };
        let signed = signer.sign(head);
        assert!(signed.verify(&signer.public_key().to_bytes()).is_ok());
        let forged = SignedTreeHead {
            head: TreeHead { size: 4, ..head },
            ..signed
        };
        assert!(forged.verify(&signer.public_key().to_bytes()).is_err());
    }

    #[test]
    fn garbage_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            TreeSigner::load_or_create(&path),
            Err(SignerError::BadKey { .. })
        ));
    }
}
