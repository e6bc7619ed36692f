//! `diplog witness`: a minimal C2SP `tlog-witness`. It knows the logs it witnesses by their
//! verifier keys, keeps for each the last tree it cosigned (in a file, written before it
//! answers, so a restart cannot make it forget what it vouched for), and cosigns a new
//! checkpoint only if the log's key signed it and the consistency proof from that tree holds:
//! a log that rewrote history (a fork) is refused, whoever runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::signer::TreeSigner;
use super::witness::split_key_and_url;
use crate::domain::checkpoint::{Checkpoint, VerifierKey};
use crate::domain::cosignature::{CosignerKey, cosignature_line, parse_add_checkpoint};
use crate::domain::merkle::{self, Hash};

/// A log the witness follows: its key, and where it lives (for messages).
#[derive(Debug, Clone)]
pub struct WitnessedLog {
    pub key: VerifierKey,
    pub url: String,
}

/// Parses `--log NAME+KEYID+KEY=URL`: the log's verifier key, `=`, its URL.
pub fn parse_log(raw: &str) -> Result<WitnessedLog, String> {
    let (key, url) = split_key_and_url(raw, &["="])?;
    let key = VerifierKey::parse(key).map_err(|e| e.to_string())?;
    Ok(WitnessedLog {
        key,
        url: url.to_owned(),
    })
}

/// What the witness vouched for, per log origin: the size and root it last cosigned.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cosigned(BTreeMap<String, (u64, String)>);

pub struct Witness {
    logs: BTreeMap<String, WitnessedLog>,
    key: CosignerKey,
    signer: TreeSigner,
    state_path: PathBuf,
    cosigned: Mutex<Cosigned>,
}

impl Witness {
    /// A witness named `name` signing with `signer`, keeping its state in `state_path`.
    pub fn open(
        name: String,
        signer: TreeSigner,
        logs: Vec<WitnessedLog>,
        state_path: PathBuf,
    ) -> anyhow::Result<Self> {
        let cosigned = match std::fs::read_to_string(&state_path) {
            Ok(text) => serde_json::from_str(&text)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Cosigned::default(),
            Err(error) => return Err(error.into()),
        };
        let key = CosignerKey {
            name,
            public_key: signer.public_key().to_bytes(),
        };
        Ok(Self {
            logs: logs
                .into_iter()
                .map(|log| (log.key.name.clone(), log))
                .collect(),
            key,
            signer,
            state_path,
            cosigned: Mutex::new(cosigned),
        })
    }

    /// Its cosigner key, for the logs' `--witness`.
    pub fn vkey(&self) -> String {
        self.key.to_string()
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/add-checkpoint", post(add_checkpoint))
            .with_state(self)
    }

    /// Answers one add-checkpoint request (C2SP tlog-witness).
    async fn add(&self, request: &str) -> Response {
        let Some((old_size, proof, note)) = parse_add_checkpoint(request) else {
            return (StatusCode::BAD_REQUEST, "not an add-checkpoint request\n").into_response();
        };
        let origin = note.lines().next().unwrap_or_default();
        let Some(log) = self.logs.get(origin) else {
            return (StatusCode::NOT_FOUND, format!("unknown log {origin:?}\n")).into_response();
        };
        let checkpoint = match Checkpoint::open(note, &log.key) {
            Ok(checkpoint) => checkpoint,
            Err(error) => return (StatusCode::FORBIDDEN, format!("{error}\n")).into_response(),
        };
        let mut cosigned = self.cosigned.lock().await;
        let (size, root) = match cosigned.0.get(origin) {
            Some((size, root)) => (*size, decode_root(root)),
            None => (0, merkle::empty_root()),
        };
        if old_size != size {
            return (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response();
        }
        let consistent = checkpoint.size >= size
            && if size == 0 {
                proof.is_empty()
            } else {
                merkle::verify_consistency(size, checkpoint.size, &root, &checkpoint.root, &proof)
                    .is_ok()
            };
        if !consistent {
            tracing::warn!(
                log = origin,
                url = %log.url,
                cosigned = size,
                offered = checkpoint.size,
                "refused a checkpoint that does not extend the tree this witness cosigned (a fork)"
            );
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the checkpoint does not extend the tree of size {size} this witness cosigned\n"
                ),
            )
                .into_response();
        }
        cosigned.0.insert(
            origin.to_owned(),
            (checkpoint.size, BASE64.encode(checkpoint.root)),
        );
        // Kept before answering: a cosignature given is never forgotten.
        if let Err(error) = self.keep(&cosigned) {
            tracing::error!(%error, "could not keep the witness's state");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let time = chrono::Utc::now().timestamp().max(0) as u64;
        let line = cosignature_line(&self.key, time, &checkpoint.body(), |message| {
            self.signer.sign_bytes(message)
        });
        tracing::info!(log = origin, size = checkpoint.size, "cosigned");
        line.into_response()
    }

    /// Writes the state to a new file and renames it over the old, so a crash leaves one or
    /// the other whole.
    fn keep(&self, cosigned: &Cosigned) -> std::io::Result<()> {
        let new = self.state_path.with_extension("new");
        std::fs::write(&new, serde_json::to_vec_pretty(cosigned)?)?;
        std::fs::File::open(&new)?.sync_all()?;
        std::fs::rename(&new, &self.state_path)
    }
}

fn decode_root(root: &str) -> Hash {
    BASE64
        .decode(root)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .unwrap_or_else(merkle::empty_root)
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    witness.add(&body).await
}
