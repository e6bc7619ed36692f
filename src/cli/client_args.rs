//! How every client command reaches the server: its URL, a token, TLS.

use clap::Args;

use crate::tls::client::ClientTlsArgs;

/// How a CLI command reaches the server.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The diplog gRPC server.
    #[arg(long, env = "DIPLOG_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// The API token to send (`authorization: Bearer`); a server that runs open needs none.
    #[arg(long, env = "DIPLOG_TOKEN", hide_env_values = true)]
    pub token: Option<crate::auth::tokens::BearerToken>,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}
