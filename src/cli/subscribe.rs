//! `diplog subscribe`: follows the log, printing each event as it commits (NDJSON, as
//! `diplog read` prints them), like `tail -f`.

use std::io::Write;
use std::process::ExitCode;

use tonic::Code;

use super::client_args::ClientArgs;
use super::{CliError, connect, finish, output_line};
use crate::proto::{self, subscribe_request::From, subscription_message::Message};
use clap::Args;

pub async fn subscribe(args: SubscribeArgs) -> ExitCode {
    finish(follow(args).await)
}

async fn follow(args: SubscribeArgs) -> Result<(), CliError> {
    let mut client = connect(&args.client).await?;
    let mut from = match (args.after, args.now) {
        (Some(after), _) => From::AfterPosition(i64::try_from(after).unwrap_or(i64::MAX)),
        (None, true) => From::Now(()),
        (None, false) => From::Start(()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    loop {
        let request = proto::SubscribeRequest {
            from: Some(from),
            filter: Some(proto::SubscriptionFilter {
                event_types: args.event_types.clone(),
                stream_prefix: args.prefix.clone().unwrap_or_default(),
                actor: args.actor.clone().unwrap_or_default(),
            }),
            ..Default::default()
        };
        let mut messages = client.subscribe(request).await?.into_inner();
        // Where a new subscription would resume: the last position heard of.
        let mut last = None;
        let ended = loop {
            let message = match messages.message().await {
                Ok(Some(message)) => message,
                Ok(None) => break None,
                Err(status) => break Some(status),
            };
            let line = match message.message {
                Some(Message::Event(event)) => {
                    last = Some(event.position);
                    output_line(&event)?
                }
                Some(Message::Checkpoint(checkpoint)) => {
                    last = Some(checkpoint.position);
                    if !args.checkpoints {
                        continue;
                    }
                    serde_json::json!({
                        "checkpoint": checkpoint.position,
                        "caught_up": checkpoint.caught_up,
                    })
                    .to_string()
                }
                None => continue,
            };
            // Each line as it comes: whoever reads the pipe sees events live.
            if let Err(error) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                if error.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(CliError::Call(format!("could not write output: {error}")));
            }
        };
        let resume = last.map_or_else(|| from_hint(from), |p| p.to_string());
        match ended {
            // Our reader was too slow (a slow pipe): resume where we are, nothing is lost.
            Some(status) if status.code() == Code::ResourceExhausted => {
                eprintln!(
                    "note: the server ended the subscription (too slow); resuming after {resume}"
                );
                if let Some(position) = last {
                    from = From::AfterPosition(position);
                }
            }
            Some(status) => {
                return Err(CliError::Call(format!(
                    "{}; to resume: diplog subscribe --after {resume}",
                    super::describe_status(&status)
                )));
            }
            None => {
                return Err(CliError::Call(format!(
                    "the server ended the subscription; to resume: diplog subscribe --after {resume}"
                )));
            }
        }
    }
}

fn from_hint(from: From) -> String {
    match from {
        From::AfterPosition(position) => position.to_string(),
        From::Start(()) => "0".into(),
        From::Now(()) => "<the head>".into(),
    }
}

#[derive(Args, Debug, Clone)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Start after this position (a checkpoint's or the last event's, to resume).
    #[arg(long, conflicts_with = "now")]
    pub after: Option<u64>,
    /// Only events committed from now on.
    #[arg(long)]
    pub now: bool,
    /// Only events of this type (repeatable).
    #[arg(long = "type")]
    pub event_types: Vec<String>,
    /// Only streams whose id starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only diplomatic events that name this actor.
    #[arg(long)]
    pub actor: Option<String>,
    /// Also print checkpoints as `{"checkpoint": N, "caught_up": …}` lines.
    #[arg(long)]
    pub checkpoints: bool,
}
