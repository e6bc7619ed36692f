//! `diplog verify`, `diplog tree-head`, `diplog proof`: the auditor's commands. Every proof is
//! checked here, on the client, with the server's public key and the RFC 9162 algorithms.

use std::path::Path;
use std::process::ExitCode;

use crate::auth::client::AuthChannel;

use super::{CliError, finish};
use std::io::Write;

use super::client_args::ClientArgs;
use crate::audit::archive::{ClosingLine, Line, SavedHead, fixed, parse_line};
use crate::audit::builder::leaf_of;
use crate::audit::tree;
use crate::audit::verify::Verification;
use crate::client::export::{ExportError, write_events};
use crate::database::DatabaseArgs;
use crate::domain::audit_head::{SignedTreeHead, TreeHead};
use crate::domain::cosignature::{CosignerKey, cosigners};
use crate::domain::merkle::{self, Frontier, Hash};
use crate::proto::{self, audit_client::AuditClient};
use crate::store::restore;
use clap::Args;
use std::path::PathBuf;

fn from_wire(head: Option<proto::SignedTreeHead>) -> Result<SignedTreeHead, CliError> {
    let head = head.ok_or_else(|| CliError::Call("the server sent no tree head".into()))?;
    let bad = |e: String| CliError::Call(format!("the server sent a malformed tree head: {e}"));
    Ok(SignedTreeHead {
        head: TreeHead {
            size: head.tree_size as u64,
            root: fixed("root_hash", head.root_hash).map_err(bad)?,
            timestamp_ms: head.timestamp_ms as u64,
        },
        signature: fixed("signature", head.signature).map_err(bad)?,
    })
}

async fn connect(client: &ClientArgs) -> Result<AuditClient<AuthChannel>, CliError> {
    Ok(AuditClient::new(super::channel(client).await?))
}

async fn public_key(client: &mut AuditClient<AuthChannel>) -> Result<[u8; 32], CliError> {
    let key = client.get_public_key(()).await?.into_inner();
    fixed("ed25519", key.ed25519)
        .map_err(|e| CliError::Call(format!("the server sent a malformed public key: {e}")))
}

/// A public key an auditor pins: a PEM `PUBLIC KEY` (as `openssl pkey -pubout` writes it) or
/// the key's 64 hex digits (as `diplog tree-head` prints it).
fn pinned_key(path: &Path) -> Result<[u8; 32], CliError> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("could not read {}: {e}", path.display())))?;
    let bad = |reason: String| {
        CliError::Input(format!(
            "{}: not an Ed25519 public key (PEM PUBLIC KEY or 64 hex digits): {reason}",
            path.display()
        ))
    };
    if text.contains("-----BEGIN PUBLIC KEY-----") {
        return ed25519_dalek::VerifyingKey::from_public_key_pem(&text)
            .map(|key| key.to_bytes())
            .map_err(|e| bad(e.to_string()));
    }
    let bytes = hex::decode(text.trim()).map_err(|e| bad(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| bad(format!("{} bytes, not 32", bytes.len())))
}

/// The key to check heads with: the pinned one if given (then the offered one, from the
/// server or a saved head, must be the same), else the offered one.
fn key_to_trust(
    pinned: Option<&Path>,
    offered: [u8; 32],
    offered_by: &str,
) -> Result<[u8; 32], CliError> {
    let Some(path) = pinned else {
        return Ok(offered);
    };
    let pinned = pinned_key(path)?;
    if pinned != offered {
        return Err(CliError::Call(format!(
            "{offered_by} has the key {}, not the pinned key {} ({})",
            hex::encode(offered),
            hex::encode(pinned),
            path.display()
        )));
    }
    Ok(pinned)
}

/// `saved` with the server's checkpoint of it, which must agree with the head.
fn with_checkpoint(saved: SavedHead, checkpoint: &str) -> Result<SavedHead, CliError> {
    saved
        .with_checkpoint(checkpoint)
        .map_err(|e| CliError::Call(format!("the server sent a bad checkpoint: {e}")))
}

fn checked(head: &SignedTreeHead, key: &[u8; 32]) -> Result<(), CliError> {
    head.verify(key).map_err(|e| {
        CliError::Call(format!(
            "the tree head of size {} is not signed by the key: {e}",
            head.head.size
        ))
    })
}

pub async fn tree_head(args: TreeHeadArgs) -> ExitCode {
    finish(print_tree_head(args).await)
}

async fn print_tree_head(args: TreeHeadArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let served = public_key(&mut client).await?;
    let key = key_to_trust(args.public_key.as_deref(), served, "the server")?;
    let wire = client
        .get_tree_head(proto::GetTreeHeadRequest { tree_size: 0 })
        .await?
        .into_inner();
    let checkpoint = wire.checkpoint.clone();
    let head = from_wire(Some(wire))?;
    checked(&head, &key)?;
    let saved = with_checkpoint(SavedHead::new(&head, &key), &checkpoint)?;
    let saved = serde_json::to_string_pretty(&saved).expect("serializable");
    if let Some(path) = &args.save {
        std::fs::write(path, format!("{saved}\n"))
            .map_err(|e| CliError::Call(format!("could not write {}: {e}", path.display())))?;
        eprintln!(
            "saved the signed tree head of size {} to {}",
            head.head.size,
            path.display()
        );
    }
    println!("{saved}");
    Ok(())
}

pub async fn verify(args: VerifyArgs) -> ExitCode {
    let result = match &args.since {
        Some(saved) => {
            let witnesses = WitnessRequirement {
                keys: &args.witnesses,
                at_least: args.min_witnesses.unwrap_or(args.witnesses.len()),
            };
            verify_since(&args.client, saved, args.public_key.as_deref(), &witnesses).await
        }
        None => verify_database(&args).await,
    };
    finish(result)
}

/// Recomputes every leaf and the root from the rows in PostgreSQL.
async fn verify_database(args: &VerifyArgs) -> Result<(), CliError> {
    let database = crate::database::Database::open_existing(&args.database)
        .await
        .map_err(|e| CliError::Call(format!("could not open the database: {e:#}")))?;
    let found = crate::audit::verify::verify(database.pool()).await;
    database.close().await.ok();
    match found.map_err(|e| CliError::Call(format!("could not verify: {e}")))? {
        Verification::Verified {
            tree_size,
            root,
            unhashed,
        } => {
            println!("verified: {tree_size} events, root {}", hex::encode(root));
            if unhashed > 0 {
                println!("({unhashed} later events are not hashed into the tree yet)");
            }
            Ok(())
        }
        Verification::Mismatch { position, problem } => Err(CliError::Call(format!(
            "verification failed at position {position}: {problem}"
        ))),
    }
}

/// Proves that the log today extends the saved head.
async fn verify_since(
    client: &ClientArgs,
    path: &Path,
    pinned: Option<&Path>,
    witnesses: &WitnessRequirement<'_>,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("could not read {}: {e}", path.display())))?;
    let saved: SavedHead = serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{}: not a saved tree head: {e}", path.display())))?;
    let (old, saved_key) = saved
        .parse()
        .map_err(|e| CliError::Input(format!("{}: {e}", path.display())))?;
    let key = key_to_trust(
        pinned,
        saved_key,
        &format!("the saved head {}", path.display()),
    )?;
    checked(&old, &key)?;
    let mut client = connect(client).await?;
    let proof = client
        .get_consistency_proof(proto::ConsistencyProofRequest {
            old_size: old.head.size as i64,
            new_size: 0,
        })
        .await?
        .into_inner();
    // The new head must be signed by the key the auditor saved, not just any key.
    let checkpoint = proof
        .new_head
        .as_ref()
        .map(|head| head.checkpoint.clone())
        .unwrap_or_default();
    let new = from_wire(proof.new_head)?;
    checked(&new, &key)?;
    let path_hashes = proof
        .proof
        .into_iter()
        .map(|h| fixed::<32>("proof", h))
        .collect::<Result<Vec<Hash>, _>>()
        .map_err(|e| CliError::Call(format!("the server sent a malformed proof: {e}")))?;
    merkle::verify_consistency(
        old.head.size,
        new.head.size,
        &old.head.root,
        &new.head.root,
        &path_hashes,
    )
    .map_err(|e| {
        CliError::Call(format!(
            "the log does NOT extend the saved head of size {} (root {}): {e}",
            old.head.size,
            hex::encode(old.head.root)
        ))
    })?;
    println!(
        "consistent: the log of {} events (root {}) extends the saved head of {} events (root {})",
        new.head.size,
        hex::encode(new.head.root),
        old.head.size,
        hex::encode(old.head.root)
    );
    witnesses.check(&checkpoint, new.head.size, &new.head.root)
}

pub async fn proof(args: ProofArgs) -> ExitCode {
    finish(print_proof(args).await)
}

async fn print_proof(args: ProofArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let key = public_key(&mut client).await?;
    let proof = client
        .get_inclusion_proof(proto::InclusionProofRequest {
            event: Some(proto::inclusion_proof_request::Event::EventId(
                args.event_id.clone(),
            )),
            tree_size: 0,
        })
        .await?
        .into_inner();
    let head = from_wire(proof.tree_head)?;
    checked(&head, &key)?;
    let bad = |e: String| CliError::Call(format!("the server sent a malformed proof: {e}"));
    let leaf: Hash = fixed("leaf_hash", proof.leaf_hash).map_err(bad)?;
    let path = proof
        .audit_path
        .into_iter()
        .map(|h| fixed::<32>("audit_path", h))
        .collect::<Result<Vec<Hash>, _>>()
        .map_err(bad)?;
    let index = proof.leaf_index as u64;
    let verified = merkle::verify_inclusion(&leaf, index, head.head.size, &path, &head.head.root);
    let document = serde_json::json!({
        "event_id": args.event_id,
        "position": proof.position,
        "leaf_index": index,
        "leaf_hash": hex::encode(leaf),
        "audit_path": path.iter().map(hex::encode).collect::<Vec<_>>(),
        "tree_head": SavedHead::new(&head, &key),
        "verified": verified.is_ok(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&document).expect("serializable")
    );
    verified.map_err(|e| CliError::Call(format!("the inclusion proof does NOT verify: {e}")))
}

pub async fn export(args: ExportArgs) -> ExitCode {
    finish(write_export(args).await)
}

/// Writes events `from..=to` (to: the tree head's size) and the signed head of `to`.
async fn write_export(args: ExportArgs) -> Result<(), CliError> {
    // One connection for the tree head and the events.
    let channel = super::channel(&args.client).await?;
    let mut audit_client = AuditClient::new(channel.clone());
    let key = public_key(&mut audit_client).await?;
    let wire_size = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let wire = audit_client
        .get_tree_head(proto::GetTreeHeadRequest {
            tree_size: args.to.map_or(0, wire_size),
        })
        .await?
        .into_inner();
    let checkpoint = wire.checkpoint.clone();
    let head = from_wire(Some(wire))?;
    checked(&head, &key)?;
    let to = head.head.size;
    let from = args.from.unwrap_or(1).max(1);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut log = super::log_client(channel);
    write_events(&mut log, from, to, &mut out)
        .await
        .map_err(|e| match e {
            ExportError::Call(status) => CliError::from(status),
            other => CliError::Call(other.to_string()),
        })?;
    let closing = ClosingLine {
        tree_head: with_checkpoint(SavedHead::new(&head, &key), &checkpoint)?,
    };
    writeln!(
        out,
        "{}",
        serde_json::to_string(&closing).expect("serializable")
    )
    .and_then(|()| out.flush())
    .map_err(|e| CliError::Call(format!("could not write: {e}")))
}

pub async fn restore(args: RestoreArgs) -> ExitCode {
    finish(load(args).await)
}

/// Events inserted per statement while restoring.
const RESTORE_BATCH: usize = 1000;

/// Loads an export into an empty database in one transaction: every leaf hash and the closing
/// signed head are checked on the way, and the first bad line refuses the whole file.
async fn load(args: RestoreArgs) -> Result<(), CliError> {
    use std::io::BufRead;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::Input(format!("could not read {}: {e}", args.file.display())))?;
    let database = crate::database::Database::open(&args.database)
        .await
        .map_err(|e| CliError::Call(format!("could not open the database: {e:#}")))?;
    let loaded = async {
        crate::MIGRATOR
            .run(database.pool())
            .await
            .map_err(|e| CliError::Call(format!("could not apply migrations: {e}")))?;
        let db = |e: sqlx::Error| CliError::Call(format!("database error: {e}"));
        let mut transaction = database.pool().begin().await.map_err(db)?;
        if !restore::is_empty(&mut transaction).await.map_err(db)? {
            return Err(CliError::Input(
                "the database's log is not empty: restore loads into an empty database only".into(),
            ));
        }
        let refuse = |number: usize, problem: String| {
            CliError::Input(format!(
                "{} line {number}: {problem}; nothing was restored",
                args.file.display()
            ))
        };
        let mut frontier = Frontier::new();
        let mut nodes = Vec::new();
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        let mut closing = None;
        for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
            let number = index + 1;
            let line = line.map_err(|e| refuse(number, format!("unreadable: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            if closing.is_some() {
                return Err(refuse(number, "follows the closing tree head".into()));
            }
            match parse_line(&line).map_err(|e| refuse(number, e))? {
                Line::Event(event, leaf) => {
                    let expected = frontier.size() + 1;
                    if event.position != expected as i64 {
                        return Err(refuse(
                            number,
                            format!("position {}, where {expected} comes next", event.position),
                        ));
                    }
                    if leaf_of(&event) != leaf {
                        return Err(refuse(
                            number,
                            format!(
                                "the event at position {expected} does not match its leaf_hash"
                            ),
                        ));
                    }
                    nodes.extend(frontier.push(leaf));
                    batch.push(event);
                    if batch.len() == RESTORE_BATCH {
                        restore::insert(&mut transaction, &batch)
                            .await
                            .map_err(db)?;
                        batch.clear();
                    }
                }
                Line::Closing(saved) => {
                    let (head, key) = saved.parse().map_err(|e| refuse(number, e))?;
                    head.verify(&key)
                        .map_err(|e| refuse(number, e.to_string()))?;
                    if head.head.size != frontier.size() || head.head.root != frontier.root() {
                        return Err(refuse(
                            number,
                            format!(
                                "the signed tree head (size {}, root {}) does not match the {} \
                                 events before it (root {}); a restore needs a whole export, \
                                 from position 1",
                                head.head.size,
                                hex::encode(head.head.root),
                                frontier.size(),
                                hex::encode(frontier.root())
                            ),
                        ));
                    }
                    closing = Some((head, key));
                }
            }
        }
        let Some((head, key)) = closing else {
            return Err(CliError::Input(format!(
                "{}: no closing tree head: the file is cut short; nothing was restored",
                args.file.display()
            )));
        };
        restore::insert(&mut transaction, &batch)
            .await
            .map_err(db)?;
        tree::advance(&mut transaction, 0, &frontier, &nodes)
            .await
            .map_err(|e| CliError::Call(format!("could not store the tree: {e}")))?;
        transaction.commit().await.map_err(db)?;
        println!(
            "restored {} events; root {} as signed by {}",
            head.head.size,
            hex::encode(head.head.root),
            hex::encode(key)
        );
        Ok(())
    }
    .await;
    database.close().await.ok();
    loaded
}

#[derive(Args, Clone)]
pub struct VerifyArgs {
    /// A head saved by `diplog tree-head --save`.
    #[arg(long)]
    pub since: Option<PathBuf>,
    /// With --since: the server to ask.
    #[command(flatten)]
    pub client: ClientArgs,
    /// Without --since: the database to read.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// With --since: the log's public key (PEM `PUBLIC KEY`, or 64 hex digits); both the
    /// saved head and the new one must be signed by it.
    #[arg(long, requires = "since")]
    pub public_key: Option<PathBuf>,
    /// With --since: a witness whose cosignature of the new head counts, by its verifier key
    /// `NAME+KEYID+KEY` (repeatable).
    #[arg(long = "witness", requires = "since", value_parser = parse_cosigner)]
    pub witnesses: Vec<CosignerKey>,
    /// With --witness: how many of them must have cosigned the new head (K of N; default:
    /// all of them).
    #[arg(long, requires = "witnesses")]
    pub min_witnesses: Option<usize>,
}

fn parse_cosigner(raw: &str) -> Result<CosignerKey, String> {
    CosignerKey::parse(raw).map_err(|e| e.to_string())
}

/// The witnesses a verification asks for: their keys and how many must have cosigned.
struct WitnessRequirement<'a> {
    keys: &'a [CosignerKey],
    at_least: usize,
}

impl WitnessRequirement<'_> {
    /// Refuses a head whose checkpoint too few of the keys cosigned, or whose checkpoint
    /// states another tree than the head checked (`size`, `root`).
    fn check(&self, checkpoint: &str, size: u64, root: &Hash) -> Result<(), CliError> {
        if self.keys.is_empty() {
            return Ok(());
        }
        use base64::Engine;
        let stated: Vec<&str> = checkpoint.lines().skip(1).take(2).collect();
        let root = base64::engine::general_purpose::STANDARD.encode(root);
        if stated != [size.to_string().as_str(), root.as_str()] {
            return Err(CliError::Call(format!(
                "the server's checkpoint does not state the head of size {size} it signed"
            )));
        }
        let cosigned = cosigners(checkpoint, self.keys);
        let names: Vec<&str> = cosigned.iter().map(|key| key.name.as_str()).collect();
        if cosigned.len() < self.at_least {
            return Err(CliError::Call(format!(
                "only {} of the {} witnesses named cosigned the log's head of size {size} \
                 ({} required){}",
                cosigned.len(),
                self.keys.len(),
                self.at_least,
                if names.is_empty() {
                    String::new()
                } else {
                    format!(": {}", names.join(", "))
                }
            )));
        }
        println!(
            "cosigned by {} of {} witnesses ({} required): {}",
            cosigned.len(),
            self.keys.len(),
            self.at_least,
            names.join(", ")
        );
        Ok(())
    }
}

#[derive(Args, Debug, Clone)]
pub struct TreeHeadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Also write it (JSON, with the public key) to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// The log's public key (PEM `PUBLIC KEY`, or 64 hex digits): the head must be signed by
    /// it, whatever key the server serves.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The first position (default 1).
    #[arg(long)]
    pub from: Option<u64>,
    /// The last position (default: the tree head's size, the last event hashed).
    #[arg(long)]
    pub to: Option<u64>,
}

#[derive(Args, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The export to load.
    pub file: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ProofArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The event's id.
    pub event_id: String,
}
