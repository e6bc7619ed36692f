//! `diplog dev-certs DIR`: writes a throwaway CA, server and client certificates (see
//! `crate::tls::dev_certs`) and says how to use them.

use std::process::ExitCode;

use crate::config::DevCertsArgs;
use crate::tls::dev_certs;

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
