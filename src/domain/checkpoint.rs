//! C2SP checkpoints (`tlog-checkpoint`): the tree head as a signed note (`signed-note`), the
//! format transparency-log tools read. Formats and checks only; the signing key stays in
//! `audit::signer`, which passes its signature in.
//!
//! ```text
//! localhost/diplog
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — localhost/diplog Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The origin a log has when its operator names none: a name that says "this machine", to be
/// replaced (with `--log-origin`) by the log's public name before anyone relies on it.
pub const DEFAULT_ORIGIN: &str = "localhost/diplog";

/// The signed-note signature type of Ed25519.
const ED25519_TYPE: u8 = 0x01;
/// A signature line starts with an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the log origin {origin:?} {reason}")]
    BadOrigin {
        origin: String,
        reason: &'static str,
    },
    #[error("not a verifier key (name+hex key id+base64 key): {0}")]
    BadVerifierKey(String),
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    #[error("the checkpoint has no signature by {name} (key id {key_id})")]
    NotSigned { name: String, key_id: String },
    #[error("the signature by {name} does not match the checkpoint")]
    BadSignature { name: String },
}

/// A log's origin: the first line of its checkpoints and the name of its key. A schema-less
/// URL by convention (`diplog.example.org/log`); a key name may hold no space and no `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOrigin(String);

impl LogOrigin {
    pub fn parse(raw: impl Into<String>) -> Result<Self, CheckpointError> {
        let origin = raw.into();
        let reason = if origin.is_empty() {
            Some("is empty")
        } else if origin.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("holds a space or a control character")
        } else if origin.contains('+') {
            Some("holds a '+', which a signed-note key name may not")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(CheckpointError::BadOrigin { origin, reason }),
            None => Ok(Self(origin)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for LogOrigin {
    type Err = CheckpointError;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl std::fmt::Display for LogOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The signed-note key id of an Ed25519 key: the first 4 bytes of SHA-256(name ‖ 0x0A ‖
/// 0x01 ‖ public key).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519_TYPE])
        .chain_update(public_key)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A verifier key, `<name>+<hex key id>+<base64(0x01 ‖ public key)>`: what a checkpoint's
/// reader needs (Go's `note.NewVerifier` takes it as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub public_key: [u8; 32],
}

impl VerifierKey {
    pub fn new(name: &LogOrigin, public_key: [u8; 32]) -> Self {
        Self {
            name: name.as_str().to_owned(),
            public_key,
        }
    }

    pub fn key_id(&self) -> [u8; 4] {
        key_id(&self.name, &self.public_key)
    }

    /// Parses a verifier key, checking its key id against its name and key.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::BadVerifierKey(format!("{text:?}: {why}"));
        // The name holds no '+' and the id is hex, but base64 may hold '+'.
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three parts joined by '+' expected"));
        };
        LogOrigin::parse(name).map_err(|e| bad(&e.to_string()))?;
        let key = BASE64.decode(key).map_err(|e| bad(&e.to_string()))?;
        let public_key: [u8; 32] = match key.split_first() {
            Some((&ED25519_TYPE, rest)) => rest.try_into().map_err(|_| bad("not 32 key bytes"))?,
            _ => return Err(bad("not an Ed25519 (type 0x01) key")),
        };
        let verifier = Self {
            name: name.to_owned(),
            public_key,
        };
        if hex::encode(verifier.key_id()) != id.to_ascii_lowercase() {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(verifier)
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = vec![ED25519_TYPE];
        key.extend_from_slice(&self.public_key);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            BASE64.encode(key)
        )
    }
}

/// A tree head as a checkpoint's body states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size in decimal, root in base64, each on its line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// The signed note: the body, a blank line, and the signature line of `key`, whose
    /// Ed25519 signature over the body's bytes `sign` makes.
    pub fn signed(&self, key: &VerifierKey, sign: impl FnOnce(&[u8]) -> [u8; 64]) -> String {
        let body = self.body();
        let mut signature = key.key_id().to_vec();
        signature.extend_from_slice(&sign(body.as_bytes()));
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            key.name,
            BASE64.encode(signature)
        )
    }

    /// Reads a signed checkpoint, which must carry a valid signature by `key` (others are
    /// ignored, as cosignatures may be there) and name `key`'s name as its origin.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Self, CheckpointError> {
        let malformed = |why: &str| CheckpointError::Malformed(why.to_owned());
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(malformed("the signatures do not end with a newline"));
        }
        let wanted_id = key.key_id();
        let mut found = None;
        for line in signatures.lines() {
            let line = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
            let (name, signature) = line
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line has no signature"))?;
            let signature = BASE64
                .decode(signature)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name == key.name && signature.len() == 68 && signature[..4] == wanted_id {
                found = Some(signature);
            }
        }
        let signature = found.ok_or_else(|| CheckpointError::NotSigned {
            name: key.name.clone(),
            key_id: hex::encode(wanted_id),
        })?;
        let bad_signature = || CheckpointError::BadSignature {
            name: key.name.clone(),
        };
        let signature = Signature::from_slice(&signature[4..]).map_err(|_| bad_signature())?;
        VerifyingKey::from_bytes(&key.public_key)
            .map_err(|_| bad_signature())?
            .verify(body.as_bytes(), &signature)
            .map_err(|_| bad_signature())?;
        let checkpoint = Self::parse_body(body)?;
        if checkpoint.origin != key.name {
            return Err(malformed("the origin is not the key's name"));
        }
        Ok(checkpoint)
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let malformed = |why: &str| CheckpointError::Malformed(why.to_owned());
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("fewer than three lines"));
        };
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(malformed("the size is not a decimal number"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed("the size is too large"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the root is not 32 bytes of base64"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn key() -> (SigningKey, VerifierKey) {
        let signing = SigningKey::from_bytes(&[7; 32]);
        let origin = LogOrigin::parse("diplog.example.org/log").unwrap();
        let verifier = VerifierKey::new(&origin, signing.verifying_key().to_bytes());
        (signing, verifier)
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "diplog.example.org/log".into(),
            size: 20852163,
            root: [0xab; 32],
        }
    }

    #[test]
    fn the_key_id_is_the_start_of_the_hash_of_name_newline_type_and_key() {
        let (_, verifier) = key();
        let mut bytes = b"diplog.example.org/log\n\x01".to_vec();
        bytes.extend_from_slice(&verifier.public_key);
        let digest = Sha256::digest(&bytes);
        assert_eq!(verifier.key_id(), digest[..4]);
    }

    #[test]
    fn a_verifier_key_is_name_key_id_and_typed_key_and_reads_back() {
        let (_, verifier) = key();
        let text = verifier.to_string();
        let parts: Vec<&str> = text.split('+').collect();
        assert_eq!(parts[0], "diplog.example.org/log");
        assert_eq!(parts[1], hex::encode(verifier.key_id()));
        let typed = BASE64.decode(parts[2]).unwrap();
        assert_eq!(typed[0], 0x01);
        assert_eq!(typed[1..], verifier.public_key);
        assert_eq!(VerifierKey::parse(&text).unwrap(), verifier);
        let wrong_id = format!("{}+00000000+{}", parts[0], parts[2]);
        assert!(VerifierKey::parse(&wrong_id).is_err());
    }

    #[test]
    fn a_verifier_key_whose_base64_holds_a_plus_reads_back() {
        let origin = LogOrigin::parse(DEFAULT_ORIGIN).unwrap();
        let with_plus = (0..=255u8)
            .map(|seed| {
                let key = SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .to_bytes();
                VerifierKey::new(&origin, key)
            })
            .find(|key| key.to_string().matches('+').count() > 2)
            .expect("some key's base64 holds a '+'");
        assert_eq!(
            VerifierKey::parse(&with_plus.to_string()).unwrap(),
            with_plus
        );
    }

    #[test]
    fn a_checkpoint_is_origin_size_and_base64_root_then_a_signature_line() {
        let (signing, verifier) = key();
        let note = checkpoint().signed(&verifier, |body| signing.sign(body).to_bytes());
        let (body, signature) = note.split_once("\n\n").unwrap();
        assert_eq!(
            body,
            format!(
                "diplog.example.org/log\n20852163\n{}",
                BASE64.encode([0xab; 32])
            )
        );
        let signature = signature
            .strip_prefix("\u{2014} diplog.example.org/log ")
            .unwrap();
        let bytes = BASE64.decode(signature.trim_end()).unwrap();
        assert_eq!(bytes.len(), 4 + 64);
        assert_eq!(bytes[..4], verifier.key_id());
        assert_eq!(Checkpoint::open(&note, &verifier).unwrap(), checkpoint());
    }

    #[test]
    fn a_changed_checkpoint_or_another_key_does_not_open() {
        let (signing, verifier) = key();
        let note = checkpoint().signed(&verifier, |body| signing.sign(body).to_bytes());
        let changed = note.replacen("20852163", "20852164", 1);
        assert!(matches!(
            Checkpoint::open(&changed, &verifier),
            Err(CheckpointError::BadSignature { .. })
        ));
        let other = VerifierKey {
            public_key: SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes(),
            ..verifier
        };
        assert!(matches!(
            Checkpoint::open(&note, &other),
            Err(CheckpointError::NotSigned { .. })
        ));
    }

    #[test]
    fn an_origin_is_a_key_name_without_space_or_plus() {
        assert!(LogOrigin::parse(DEFAULT_ORIGIN).is_ok());
        assert!(LogOrigin::parse("diplog.example.org/log").is_ok());
        for bad in ["", "a b", "a+b", "a\nb"] {
            assert!(LogOrigin::parse(bad).is_err(), "{bad:?}");
        }
    }
}
