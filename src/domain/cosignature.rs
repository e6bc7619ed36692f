//! C2SP `tlog-cosignature` (v1, Ed25519) and the `tlog-witness` request: a witness's
//! timestamped signature over a checkpoint it checked to be consistent with the last one it
//! saw, so a reader trusting the witness knows the log shows everyone one history. Formats and
//! checks only; the HTTP exchange is `audit::witness`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::checkpoint::CheckpointError;
use super::merkle::Hash;

/// The signed-note signature type of a cosignature/v1 by an Ed25519 key.
const COSIGNATURE_TYPE: u8 = 0x04;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A witness's key, from its verifier key `<name>+<hex key id>+<base64(0x04 ‖ key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignerKey {
    pub name: String,
    pub public_key: [u8; 32],
}

impl CosignerKey {
    pub fn key_id(&self) -> [u8; 4] {
        let digest = Sha256::new()
            .chain_update(self.name.as_bytes())
            .chain_update([b'\n', COSIGNATURE_TYPE])
            .chain_update(self.public_key)
            .finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }

    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::BadVerifierKey(format!("{text:?}: {why}"));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three parts joined by '+' expected"));
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("the name is empty or holds a space"));
        }
        let key = BASE64.decode(key).map_err(|e| bad(&e.to_string()))?;
        let public_key: [u8; 32] = match key.split_first() {
            Some((&COSIGNATURE_TYPE, rest)) => {
                rest.try_into().map_err(|_| bad("not 32 key bytes"))?
            }
            _ => return Err(bad("not a cosignature/v1 (type 0x04) key")),
        };
        let key = Self {
            name: name.to_owned(),
            public_key,
        };
        if hex::encode(key.key_id()) != id.to_ascii_lowercase() {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(key)
    }

    /// The time (seconds since the epoch) of this key's cosignature in `line`, a signature
    /// line over the checkpoint `body`; `None` if the line is not by this key or does not
    /// verify.
    pub fn verify_line(&self, line: &str, body: &str) -> Option<u64> {
        let (name, signature) = line
            .trim_end_matches('\n')
            .strip_prefix(SIGNATURE_PREFIX)?
            .split_once(' ')?;
        let bytes = BASE64.decode(signature).ok()?;
        if name != self.name || bytes.len() != 4 + 8 + 64 || bytes[..4] != self.key_id() {
            return None;
        }
        let time = u64::from_be_bytes(bytes[4..12].try_into().ok()?);
        let signature = Signature::from_slice(&bytes[12..]).ok()?;
        VerifyingKey::from_bytes(&self.public_key)
            .ok()?
            .verify(&signed_message(time, body), &signature)
            .ok()?;
        Some(time)
    }
}

/// Which of `witnesses` cosigned the signed checkpoint `note` (a line of theirs below its
/// body that verifies over it).
pub fn cosigners<'k>(note: &str, witnesses: &'k [CosignerKey]) -> Vec<&'k CosignerKey> {
    let Some(split) = note.find("\n\n") else {
        return Vec::new();
    };
    let (body, signatures) = (&note[..=split], &note[split + 2..]);
    witnesses
        .iter()
        .filter(|witness| {
            signatures
                .lines()
                .any(|line| witness.verify_line(line, body).is_some())
        })
        .collect()
}

impl std::fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = vec![COSIGNATURE_TYPE];
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

/// What a cosignature signs: `cosignature/v1`, the time, then the checkpoint's body.
pub fn signed_message(time: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// A cosignature line by `key` at `time` (what a witness answers; the tests' witness makes
/// them this way).
pub fn cosignature_line(
    key: &CosignerKey,
    time: u64,
    body: &str,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> String {
    let mut bytes = key.key_id().to_vec();
    bytes.extend_from_slice(&time.to_be_bytes());
    bytes.extend_from_slice(&sign(&signed_message(time, body)));
    format!("{SIGNATURE_PREFIX}{} {}\n", key.name, BASE64.encode(bytes))
}

/// The body of a `tlog-witness` add-checkpoint request: `old <size>`, the consistency proof
/// from that size (a base64 hash a line), a blank line, the signed checkpoint.
pub fn add_checkpoint_request(old_size: u64, proof: &[Hash], checkpoint: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&BASE64.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(checkpoint);
    body
}

/// Parses an add-checkpoint request: old size, proof, checkpoint (the tests' witness).
pub fn parse_add_checkpoint(request: &str) -> Option<(u64, Vec<Hash>, &str)> {
    let (head, checkpoint) = request.split_once("\n\n")?;
    let mut lines = head.lines();
    let old_size = lines.next()?.strip_prefix("old ")?.parse().ok()?;
    let proof = lines
        .map(|line| BASE64.decode(line).ok()?.try_into().ok())
        .collect::<Option<Vec<Hash>>>()?;
    Some((old_size, proof, checkpoint))
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    #[test]
    fn a_cosignature_verifies_over_its_time_and_the_body_by_its_key_only() {
        let signing = SigningKey::from_bytes(&[3; 32]);
        let key = CosignerKey {
            name: "witness.example/w1".into(),
            public_key: signing.verifying_key().to_bytes(),
        };
        assert_eq!(CosignerKey::parse(&key.to_string()).unwrap(), key);
        let body = "diplog.example.org/log\n5\nAAAA\n";
        let line = cosignature_line(&key, 1_700_000_000, body, |m| signing.sign(m).to_bytes());
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        assert_eq!(key.verify_line(&line, body), Some(1_700_000_000));
        assert_eq!(
            key.verify_line(&line, "diplog.example.org/log\n6\nAAAA\n"),
            None
        );
        let other = CosignerKey {
            public_key: SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes(),
            ..key.clone()
        };
        assert_eq!(other.verify_line(&line, body), None);
    }

    #[test]
    fn an_add_checkpoint_request_is_old_size_proof_blank_line_checkpoint() {
        let request = add_checkpoint_request(3, &[[1; 32], [2; 32]], "o\n5\nr\n\n\u{2014} o s\n");
        assert!(request.starts_with("old 3\n"));
        assert_eq!(
            parse_add_checkpoint(&request),
            Some((3, vec![[1; 32], [2; 32]], "o\n5\nr\n\n\u{2014} o s\n"))
        );
        assert_eq!(
            add_checkpoint_request(0, &[], "c\n"),
            "old 0\n\nc\n",
            "no proof from size 0"
        );
    }
}
