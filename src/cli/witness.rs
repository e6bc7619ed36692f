//! `diplog witness`: runs a minimal C2SP tlog-witness (`audit::witness_server`) for the logs
//! named by `--log`, which a diplog server asks to cosign through `serve --witness`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::audit::signer::TreeSigner;
use crate::audit::witness_server::{Witness, WitnessedLog, parse_log};

#[derive(Args, Debug, Clone)]
pub struct WitnessArgs {
    /// A log to witness: `NAME+KEYID+KEY=URL`, its verifier key (`diplog checkpoint --vkey`)
    /// and its URL (repeatable).
    #[arg(long = "log", required_unless_present = "vkey", value_parser = parse_log)]
    pub logs: Vec<WitnessedLog>,
    /// Where it answers `POST /add-checkpoint`.
    #[arg(long, default_value = "127.0.0.1:7380")]
    pub listen: SocketAddr,
    /// Its name in its cosignatures and key (e.g. `witness.example.org/w1`).
    #[arg(long, default_value = "localhost/diplog-witness")]
    pub name: String,
    /// Its directory: `key.pem` (its signing key, made on first start) and `state.json` (the
    /// tree it last cosigned for each log).
    #[arg(long, default_value = "./diplog-witness")]
    pub data_dir: PathBuf,
    /// Print its verifier key (what `serve --witness NAME+KEYID+KEY=URL` takes) and exit.
    #[arg(long)]
    pub vkey: bool,
}

pub async fn witness(args: WitnessArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: WitnessArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let signer = TreeSigner::load_or_create(&args.data_dir.join("key.pem"))?;
    let witness = Witness::open(
        args.name,
        signer,
        args.logs,
        args.data_dir.join("state.json"),
    )?;
    if args.vkey {
        println!("{}", witness.vkey());
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    tracing::info!(address = %address, vkey = %witness.vkey(), "witness serving");
    let router = Arc::new(witness).router();
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
