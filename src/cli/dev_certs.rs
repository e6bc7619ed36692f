//! `diplog dev-certs DIR`: writes a throwaway CA, server and client certificates (see
//! `crate::tls::dev_certs`) and says how to use them.

use std::process::ExitCode;

use crate::tls::dev_certs;
use clap::Args;
use std::path::PathBuf;

pub fn dev_certs(args: DevCertsArgs) -> ExitCode {
    match dev_certs::write(&args.dir, &args.hosts, &args.client_name) {
        Ok(written) => {
            for path in &written {
                println!("wrote {}", path.display());
            }
            println!("{}", usage(&args));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn usage(args: &DevCertsArgs) -> String {
    let dir = args.dir.display();
    let mut names: Vec<&str> = dev_certs::LOCAL_NAMES.to_vec();
    names.extend(args.hosts.iter().map(String::as_str));
    format!(
        "\nA development CA, for trying TLS out only (its key is beside the certificates).\n\
         The server certificate is for {names}; the client certificate's subject is {client}.\n\
         \n\
         Serve over TLS, asking clients for a certificate signed by the CA:\n\
         \x20 diplog serve --tls-cert {dir}/server.pem --tls-key {dir}/server-key.pem \\\n\
         \x20   --tls-client-ca {dir}/ca.pem\n\
         (without --tls-client-ca, no client certificate is asked for; with\n\
         --tls-client-auth optional, clients without one are let in too)\n\
         \n\
         Then, as a client:\n\
         \x20 diplog read --all --server https://localhost:50051 --ca-cert {dir}/ca.pem \\\n\
         \x20   --client-cert {dir}/client.pem --client-key {dir}/client-key.pem\n\
         \x20 curl --cacert {dir}/ca.pem --cert {dir}/client.pem --key {dir}/client-key.pem \\\n\
         \x20   https://localhost:8080/healthz",
        names = names.join(", "),
        client = args.client_name,
    )
}

#[derive(Args, Debug, Clone)]
pub struct DevCertsArgs {
    /// Where to write ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem and
    /// client-key.pem (created if missing; existing files are never overwritten).
    pub dir: PathBuf,
    /// Another name or address for the server certificate, besides localhost, 127.0.0.1 and
    /// ::1 (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// The client certificate's subject common name.
    #[arg(long, default_value = "diplog-client")]
    pub client_name: String,
}
