//! Witnesses (C2SP `tlog-witness`): each new tree head's checkpoint is sent to every
//! configured witness with a consistency proof from the last size it cosigned; its
//! cosignature, checked with its key, is added to the checkpoint this server serves for that
//! size. A witness that is down or refuses only leaves the checkpoint without its line.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Auditor;
use crate::domain::cosignature::{CosignerKey, add_checkpoint_request};

/// How often a witness loop looks for a new tree head.
const POLL: Duration = Duration::from_secs(1);
/// The longest a witness may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A witness: its key and its submission prefix (`https://…`; `add-checkpoint` is below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    pub key: CosignerKey,
    pub url: String,
}

/// Parses `--witness NAME+KEYID+KEY=URL`: the witness's verifier key (type 0x04, a
/// cosignature/v1 key), `=`, its submission prefix (http:// or https://). `VKEY@URL` is read
/// too.
pub fn parse_witness(raw: &str) -> Result<Witness, String> {
    let (key, url) = split_key_and_url(raw, &["=", "@"])?;
    let key = CosignerKey::parse(key).map_err(|e| e.to_string())?;
    Ok(Witness {
        key,
        url: url.trim_end_matches('/').to_owned(),
    })
}

/// Splits `KEY=URL` (or another of `separators`) where the URL begins: a verifier key's
/// base64 may end in `=` itself, so the split is at the first separator followed by
/// `http://` or `https://`.
pub fn split_key_and_url<'a>(
    raw: &'a str,
    separators: &[&str],
) -> Result<(&'a str, &'a str), String> {
    separators
        .iter()
        .flat_map(|separator| {
            ["https://", "http://"].map(|scheme| (separator.len(), format!("{separator}{scheme}")))
        })
        .filter_map(|(length, pattern)| raw.find(&pattern).map(|at| (at, length)))
        .min()
        .map(|(at, length)| (&raw[..at], &raw[at + length..]))
        .ok_or_else(|| format!("{raw:?}: NAME+KEYID+KEY=URL expected, the URL http:// or https://"))
}

/// The cosignatures collected: per witness name, the size it cosigned and its line.
#[derive(Clone, Default)]
pub struct Cosignatures(Arc<RwLock<BTreeMap<String, (u64, String)>>>);

impl Cosignatures {
    /// The lines of the witnesses that cosigned the tree of `size`.
    pub fn lines_for(&self, size: u64) -> String {
        let held = self.0.read().unwrap_or_else(|e| e.into_inner());
        held.values()
            .filter(|(cosigned, _)| *cosigned == size)
            .map(|(_, line)| line.as_str())
            .collect()
    }

    fn size_of(&self, witness: &str) -> Option<u64> {
        let held = self.0.read().unwrap_or_else(|e| e.into_inner());
        held.get(witness).map(|(size, _)| *size)
    }

    fn keep(&self, witness: &str, size: u64, line: String) {
        let mut held = self.0.write().unwrap_or_else(|e| e.into_inner());
        held.insert(witness.to_owned(), (size, line));
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Keeps every witness up with the tree until `shutdown`.
pub async fn run(auditor: Auditor, witnesses: Vec<Witness>, shutdown: CancellationToken) {
    if witnesses.is_empty() {
        return;
    }
    let connector = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder.https_or_http().enable_http1().build(),
        Err(error) => {
            warn!(error = %error, "no TLS roots for the witnesses: none is asked to cosign");
            return;
        }
    };
    let client: HttpsClient = Client::builder(TokioExecutor::new()).build(connector);
    let loops = witnesses.into_iter().map(|witness| {
        follow(
            auditor.clone(),
            client.clone(),
            witness,
            shutdown.child_token(),
        )
    });
    futures::future::join_all(loops).await;
}

async fn follow(
    auditor: Auditor,
    client: HttpsClient,
    witness: Witness,
    shutdown: CancellationToken,
) {
    info!(witness = %witness.key.name, url = %witness.url, "asking a witness to cosign checkpoints");
    // The size the witness last cosigned, as far as we know: 0 until it tells us otherwise.
    let mut old_size = 0;
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = submit(&auditor, &client, &witness, old_size) => outcome,
        };
        let pause = match outcome {
            Ok(Submitted::Cosigned(size)) => {
                old_size = size;
                POLL
            }
            Ok(Submitted::UpToDate) => POLL,
            Ok(Submitted::WitnessAt(size)) if size != old_size => {
                old_size = size;
                Duration::ZERO
            }
            Ok(Submitted::WitnessAt(size)) => {
                warn!(witness = %witness.key.name, size, "the witness disagrees about the size it cosigned");
                POLL * 5
            }
            Err(error) => {
                warn!(witness = %witness.key.name, error = %error, "the witness did not cosign");
                POLL * 5
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

enum Submitted {
    Cosigned(u64),
    UpToDate,
    /// 409: the witness's last cosigned size is this.
    WitnessAt(u64),
}

async fn submit(
    auditor: &Auditor,
    client: &HttpsClient,
    witness: &Witness,
    old_size: u64,
) -> Result<Submitted, String> {
    let head = auditor.signed_head().await.map_err(|e| e.to_string())?.head;
    if head.size == 0 || auditor.cosignatures.size_of(&witness.key.name) == Some(head.size) {
        return Ok(Submitted::UpToDate);
    }
    let proof = if old_size == 0 || old_size > head.size {
        Vec::new()
    } else {
        auditor
            .consistency(old_size, Some(head.size))
            .await
            .map_err(|e| e.to_string())?
            .path
    };
    let checkpoint = auditor.log_checkpoint(&head);
    let request = Request::post(format!("{}/add-checkpoint", witness.url))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(add_checkpoint_request(
            old_size,
            &proof,
            &checkpoint,
        ))))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer in {TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = tokio::time::timeout(TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| format!("no answer in {TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    match status {
        StatusCode::OK => {
            let note_body = &checkpoint[..checkpoint.find("\n\n").map_or(0, |i| i + 1)];
            let line = body
                .lines()
                .map(|line| format!("{line}\n"))
                .find(|line| witness.key.verify_line(line, note_body).is_some())
                .ok_or("no cosignature by the witness's key in its answer")?;
            auditor
                .cosignatures
                .keep(&witness.key.name, head.size, line);
            Ok(Submitted::Cosigned(head.size))
        }
        StatusCode::CONFLICT => body
            .trim()
            .parse()
            .map(Submitted::WitnessAt)
            .map_err(|_| format!("409 without a size: {body:?}")),
        other => Err(format!("{other}: {}", body.trim())),
    }
}

#[cfg(test)]
mod split_tests {
    use super::split_key_and_url;

    #[test]
    fn the_url_begins_after_the_separator_before_its_scheme_even_after_base64_padding() {
        assert_eq!(
            split_key_and_url("w+0a1b2c3d+BAE==http://127.0.0.1:7380/x", &["=", "@"]),
            Ok(("w+0a1b2c3d+BAE=", "http://127.0.0.1:7380/x"))
        );
        assert_eq!(
            split_key_and_url("w+0a1b2c3d+BAE@https://w.example", &["=", "@"]),
            Ok(("w+0a1b2c3d+BAE", "https://w.example"))
        );
        assert!(split_key_and_url("w+0a1b2c3d+BAE@https://w.example", &["="]).is_err());
        assert!(split_key_and_url("no url here", &["="]).is_err());
    }
}
