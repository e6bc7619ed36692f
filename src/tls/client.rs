//! The client side: the endpoint the CLI connects to, with TLS for an `https://` URL (the
//! system's roots, or `--ca-cert`; `--client-cert`/`--client-key` for mutual TLS), and the
//! pinned connection `serve --demo` makes to its own TLS port.

use std::sync::Arc;

use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::{TlsError, certificates, private_key, read};
use clap::Args;
use std::path::PathBuf;

/// Why the CLI cannot even try to connect.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{url} is not a server URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "--ca-cert, --client-cert and --client-key are for TLS: give the server as https://…, not {url}"
    )]
    TlsOptionsWithoutHttps { url: String },
    #[error(transparent)]
    File(#[from] TlsError),
    #[error("could not set up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
}

/// The endpoint for `url`: plain text for `http://`, TLS for `https://`.
pub fn endpoint(url: &str, tls: &ClientTlsArgs) -> Result<Endpoint, EndpointError> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| EndpointError::BadUrl {
        url: url.to_owned(),
        reason: crate::describe::with_causes(&e),
    })?;
    let https = endpoint.uri().scheme_str() == Some("https");
    let any_option = tls.ca_cert.is_some() || tls.client_cert.is_some();
    if !https {
        return match any_option {
            true => Err(EndpointError::TlsOptionsWithoutHttps {
                url: url.to_owned(),
            }),
            false => Ok(endpoint),
        };
    }
    super::install_crypto_provider();
    let mut config = ClientTlsConfig::new().timeout(super::HANDSHAKE_TIMEOUT);
    config = match &tls.ca_cert {
        Some(path) => {
            let pem = read(path)?;
            super::root_store(path, &pem)?; // checked here, so a bad file is named
            config.ca_certificate(Certificate::from_pem(pem))
        }
        None => config.with_enabled_roots(),
    };
    if let (Some(cert_path), Some(key_path)) = (&tls.client_cert, &tls.client_key) {
        let cert = read(cert_path)?;
        let key = read(key_path)?;
        certificates(cert_path, &cert)?;
        private_key(key_path, &key)?;
        config = config.identity(Identity::from_pem(cert, key));
    }
    // An IPv6 host comes bracketed (`[::1]`), which is not a server name.
    if let Some(host) = endpoint.uri().host()
        && let Some(bare) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
    {
        config = config.domain_name(bare.to_owned());
    }
    endpoint.tls_config(config).map_err(|e| EndpointError::Tls {
        url: url.to_owned(),
        reason: crate::describe::with_causes(&e),
    })
}

/// An endpoint to this server's own TLS port that trusts exactly the server's own
/// certificate (whatever CA signed it), for `serve --demo` to import through.
pub fn pinned_endpoint(
    address: std::net::SocketAddr,
    leaf: CertificateDer<'static>,
) -> Result<Endpoint, tonic::transport::Error> {
    super::install_crypto_provider();
    let provider = Arc::new(crypto::ring::default_provider());
    let verifier = Arc::new(PinnedCertificate { leaf, provider });
    Endpoint::from_shared(format!("https://{address}"))?
        .tls_config_with_verifier(ClientTlsConfig::new().domain_name("localhost"), verifier)
}

/// Accepts one certificate, byte for byte, and checks that the server holds its key.
#[derive(Debug)]
struct PinnedCertificate {
    leaf: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How a CLI command checks the server, and proves who it is, over TLS (an `https://` URL).
#[derive(Args, Debug, Clone, Default)]
pub struct ClientTlsArgs {
    /// Trust this CA (PEM) for the server's certificate, instead of the system's roots.
    #[arg(long, env = "DIPLOG_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Present this client certificate (PEM), for a server that verifies clients.
    #[arg(long, env = "DIPLOG_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key of --client-cert (PEM).
    #[arg(long, env = "DIPLOG_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate() -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_pinned_verifier_accepts_its_certificate_only() {
        let ours = certificate();
        let pinned = PinnedCertificate {
            leaf: ours.clone(),
            provider: Arc::new(crypto::ring::default_provider()),
        };
        let name = ServerName::try_from("localhost").unwrap();
        let verify = |certificate: &CertificateDer<'_>| {
            pinned.verify_server_cert(certificate, &[], &name, &[], UnixTime::now())
        };
        assert!(verify(&ours).is_ok());
        assert!(verify(&certificate()).is_err());
    }

    #[test]
    fn tls_options_with_a_plain_text_url_are_refused() {
        let tls = ClientTlsArgs {
            ca_cert: Some("ca.pem".into()),
            ..ClientTlsArgs::default()
        };
        let error = endpoint("http://127.0.0.1:50051", &tls).unwrap_err();
        assert!(error.to_string().contains("https://"), "{error}");
        assert!(endpoint("http://127.0.0.1:50051", &ClientTlsArgs::default()).is_ok());
    }
}
