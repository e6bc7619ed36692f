//! `diplog checkpoint`: the log's current C2SP checkpoint (the signed tree head as a signed
//! note), checked here with the server's verifier key before it is printed; `--vkey` prints
//! that key, for note verifiers (Go's `note.NewVerifier`) and witnesses.

use std::process::ExitCode;

use clap::Args;

use super::client_args::ClientArgs;
use super::{CliError, finish};
use crate::domain::checkpoint::{Checkpoint, VerifierKey};
use crate::proto::{self, audit_client::AuditClient};

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print the verifier key (`<origin>+<key id>+<key>`) instead of the checkpoint.
    #[arg(long)]
    pub vkey: bool,
}

pub async fn checkpoint(args: CheckpointArgs) -> ExitCode {
    finish(print_checkpoint(args).await)
}

async fn print_checkpoint(args: CheckpointArgs) -> Result<(), CliError> {
    let mut client = AuditClient::new(super::channel(&args.client).await?);
    let key = client.get_public_key(()).await?.into_inner();
    if key.vkey.is_empty() {
        return Err(CliError::Call(
            "the server serves no checkpoints (a diplog before them)".into(),
        ));
    }
    let vkey = VerifierKey::parse(&key.vkey)
        .map_err(|e| CliError::Call(format!("the server sent a bad verifier key: {e}")))?;
    if args.vkey {
        println!("{vkey}");
        return Ok(());
    }
    let head = client
        .get_tree_head(proto::GetTreeHeadRequest { tree_size: 0 })
        .await?
        .into_inner();
    let opened = Checkpoint::open(&head.checkpoint, &vkey)
        .map_err(|e| CliError::Call(format!("the server's checkpoint does not verify: {e}")))?;
    if opened.size != head.tree_size as u64 || opened.root[..] != head.root_hash[..] {
        return Err(CliError::Call(
            "the server's checkpoint is not of the tree head it sent with it".into(),
        ));
    }
    print!("{}", head.checkpoint);
    Ok(())
}
