//! `diplog health`: asks a server's standard health service (`grpc.health.v1`, public: no
//! token needed) whether it serves; exit code 0 when it does, 1 when not or unreachable. What
//! a container's HEALTHCHECK or a load balancer's probe runs.

use std::process::ExitCode;

use clap::Args;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use super::client_args::ClientArgs;
use super::{CliError, channel, finish};

#[derive(Args, Debug, Clone)]
pub struct HealthArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The service to ask about (e.g. `diplog.v1.EventLog`); the whole server by default.
    #[arg(long, default_value = "")]
    pub service: String,
}

pub async fn health(args: HealthArgs) -> ExitCode {
    finish(check(args).await)
}

async fn check(args: HealthArgs) -> Result<(), CliError> {
    let mut client = HealthClient::new(channel(&args.client).await?);
    let response = client
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?
        .into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    let name = if args.service.is_empty() {
        "the server"
    } else {
        args.service.as_str()
    };
    match status {
        ServingStatus::Serving => {
            println!("SERVING");
            Ok(())
        }
        other => Err(CliError::Call(format!(
            "{name} at {} is {}",
            args.client.server,
            other.as_str_name()
        ))),
    }
}
