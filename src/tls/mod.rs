//! Transport security: TLS (rustls, with the ring provider) on the gRPC and HTTP ports,
//! optional client certificates (mutual TLS), the rule that plain text is for loopback only,
//! the CLI's TLS client settings and `diplog dev-certs`.
//!
//! Certificate and key files are read and checked here, once, at start-up, so a bad file is
//! reported by name before anything listens. Who a client certificate names is read by
//! `crate::auth::certificate`; what it may do is not decided here.

pub mod client;
pub mod dev_certs;
pub mod listener;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};

use crate::config::{ClientAuth, TlsArgs};

/// The longest a TLS handshake may take before the connection is dropped, so clients that
/// connect and say nothing do not pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate, key or CA file that cannot be used, named.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a PEM certificate file: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{}: no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{}: no usable private key in it (expected a PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`): {reason}",
        path.display()
    )]
    BadKey { path: PathBuf, reason: String },
    #[error("{}: not a usable CA certificate: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("{} and {} do not go together: {reason}", cert.display(), key.display())]
    Rejected {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Makes ring the process's rustls provider (tonic builds its configurations with the
/// default one), once; harmless if it already is.
pub fn install_crypto_provider() {
    // An error means a provider is installed already: that one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The server's TLS settings, read and checked: the same for both ports.
#[derive(Clone)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
    client_auth: ClientAuth,
    /// For the HTTP port (ALPN http/1.1); also proves at start-up that the files go together.
    http: Arc<rustls::ServerConfig>,
    /// The leaf certificate, which the server's own `--demo` import pins.
    leaf: CertificateDer<'static>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_ca", &self.client_ca_pem.is_some())
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads and checks the files of `args`; `None` without `--tls-cert` (plain text).
    pub fn load(args: &TlsArgs) -> Result<Option<Self>, TlsError> {
        let (Some(cert_path), Some(key_path)) = (&args.tls_cert, &args.tls_key) else {
            return Ok(None);
        };
        install_crypto_provider();
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let chain = certificates(cert_path, &cert_pem)?;
        let key = private_key(key_path, &key_pem)?;
        let leaf = chain[0].clone();
        let client_ca_pem = args.tls_client_ca.as_deref().map(read).transpose()?;
        let client_auth = args.tls_client_auth.unwrap_or_default();
        let builder = rustls::ServerConfig::builder();
        let builder = match (&args.tls_client_ca, &client_ca_pem) {
            (Some(path), Some(pem)) => {
                let roots = root_store(path, pem)?;
                let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
                let verifier = match client_auth {
                    ClientAuth::Required => verifier,
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier.build().map_err(|e| TlsError::BadCa {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut http = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Rejected {
                cert: cert_path.clone(),
                key: key_path.clone(),
                reason: match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "the private key is not the certificate's".to_owned()
                    }
                    other => other.to_string(),
                },
            })?;
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Self {
            cert_pem,
            key_pem,
            client_ca_pem,
            client_auth,
            http: Arc::new(http),
            leaf,
        }))
    }

    /// Whether clients are asked for certificates, and must present one.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        self.client_ca_pem.as_ref().map(|_| self.client_auth)
    }

    /// The gRPC port's settings (tonic builds its rustls configuration from the same files).
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        let identity = tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem);
        let config = tonic::transport::ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        match &self.client_ca_pem {
            Some(ca) => config
                .client_ca_root(tonic::transport::Certificate::from_pem(ca))
                .client_auth_optional(self.client_auth == ClientAuth::Optional),
            None => config,
        }
    }

    /// The HTTP port's rustls configuration.
    pub fn http(&self) -> Arc<rustls::ServerConfig> {
        self.http.clone()
    }

    /// The server's own certificate (the first of the chain).
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.leaf
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in a PEM file; at least one.
pub(crate) fn certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key in a PEM file.
pub(crate) fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::BadKey {
        path: path.to_owned(),
        reason: match e {
            pem::Error::NoItemsFound => "none found".to_owned(),
            other => other.to_string(),
        },
    })
}

/// The CA certificates of a PEM file, as trust anchors; each must parse.
pub(crate) fn root_store(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(path, pem)? {
        roots.add(certificate).map_err(|e| TlsError::BadCa {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// Plain text on a port that is not loopback, refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to serve plain text on {addresses}, which is not a loopback address: give \
     --tls-cert and --tls-key (try `diplog dev-certs DIR`), listen on 127.0.0.1, or pass \
     --insecure if the network is trusted (e.g. TLS ends at a proxy in front)"
)]
pub struct PlaintextRefused {
    /// The addresses at fault, as `gRPC 0.0.0.0:50051 and HTTP 0.0.0.0:8080`.
    pub addresses: String,
}

/// How the ports will be served, once the rule allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tls,
    /// Plain text on loopback only: fine for local development.
    LoopbackPlaintext,
    /// Plain text reachable from elsewhere, because `--insecure` said so: warn loudly.
    InsecurePlaintext,
}

/// The rule (as KurrentDB has it): without TLS, both ports must be on loopback, unless
/// `insecure` was given explicitly. Pure: it looks at addresses, and binds nothing.
pub fn transport(
    grpc: SocketAddr,
    http: SocketAddr,
    tls: bool,
    insecure: bool,
) -> Result<Transport, PlaintextRefused> {
    if tls {
        return Ok(Transport::Tls);
    }
    let exposed: Vec<String> = [("gRPC", grpc), ("HTTP", http)]
        .into_iter()
        .filter(|(_, address)| !address.ip().to_canonical().is_loopback())
        .map(|(port, address)| format!("{port} {address}"))
        .collect();
    match (exposed.is_empty(), insecure) {
        (true, _) => Ok(Transport::LoopbackPlaintext),
        (false, true) => Ok(Transport::InsecurePlaintext),
        (false, false) => Err(PlaintextRefused {
            addresses: exposed.join(" and "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(address: &str) -> SocketAddr {
        address.parse().unwrap()
    }

    #[test]
    fn plain_text_on_loopback_is_allowed() {
        for (grpc, http) in [
            ("127.0.0.1:50051", "127.0.0.1:8080"),
            ("[::1]:50051", "127.0.0.2:0"),
            ("[::ffff:127.0.0.1]:1", "[::1]:2"),
        ] {
            assert_eq!(
                transport(at(grpc), at(http), false, false),
                Ok(Transport::LoopbackPlaintext),
                "{grpc} {http}"
            );
        }
    }

    #[test]
    fn plain_text_elsewhere_is_refused_naming_the_port_and_the_way_out() {
        let refused = transport(at("0.0.0.0:50051"), at("127.0.0.1:8080"), false, false)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("gRPC 0.0.0.0:50051"), "{refused}");
        assert!(!refused.contains("HTTP"), "{refused}");
        assert!(refused.contains("--tls-cert"), "{refused}");
        assert!(refused.contains("--insecure"), "{refused}");

        let refused = transport(at("127.0.0.1:50051"), at("[::]:8080"), false, false).unwrap_err();
        assert_eq!(refused.addresses, "HTTP [::]:8080");
        let refused =
            transport(at("192.0.2.7:50051"), at("10.0.0.1:8080"), false, false).unwrap_err();
        assert_eq!(
            refused.addresses,
            "gRPC 192.0.2.7:50051 and HTTP 10.0.0.1:8080"
        );
    }

    #[test]
    fn insecure_allows_plain_text_elsewhere_and_tls_is_allowed_anywhere() {
        assert_eq!(
            transport(at("0.0.0.0:50051"), at("0.0.0.0:8080"), false, true),
            Ok(Transport::InsecurePlaintext)
        );
        assert_eq!(
            transport(at("0.0.0.0:50051"), at("0.0.0.0:8080"), true, false),
            Ok(Transport::Tls)
        );
        assert_eq!(
            transport(at("127.0.0.1:50051"), at("127.0.0.1:8080"), false, true),
            Ok(Transport::LoopbackPlaintext)
        );
    }
}
