//! Who a verified client certificate names: the subject the principal of a mutual-TLS caller
//! is named after. Reads what the transport put in the request's extensions (tonic's
//! `TlsConnectInfo` on the gRPC port, [`TlsPeer`] on the HTTP port); it verifies nothing
//! itself: the handshake already checked the chain against the client CA.

use tokio_rustls::rustls::pki_types::CertificateDer;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::tls::listener::TlsPeer;

/// The subject of the client certificate the connection carrying `request` was verified
/// with: its common name, or else its whole distinguished name (RFC 4514). `None` on a
/// plain-text connection or when the client presented no certificate.
pub fn peer_certificate_subject<B>(request: &http::Request<B>) -> Option<String> {
    certificate_subject(request.extensions())
}

/// [`peer_certificate_subject`] from a request's extensions.
pub fn certificate_subject(extensions: &http::Extensions) -> Option<String> {
    let chain = match extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        Some(grpc) => grpc.peer_certs(),
        None => extensions
            .get::<axum::extract::ConnectInfo<TlsPeer>>()
            .and_then(|info| info.0.certificates.clone()),
    }?;
    subject(chain.first()?)
}

/// A certificate's subject common name (the first, if several), or its whole distinguished
/// name when it has none; `None` if the DER does not parse or the subject is empty.
pub fn subject(certificate: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let subject = parsed.subject();
    let common_name = subject
        .iter_common_name()
        .find_map(|name| name.as_str().ok().map(str::to_owned));
    common_name
        .filter(|name| !name.is_empty())
        .or_else(|| Some(subject.to_string()).filter(|dn| !dn.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(params: rcgen::CertificateParams) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_subject_is_the_common_name() {
        let dir = tempfile::tempdir().unwrap();
        crate::tls::dev_certs::write(dir.path(), &[], "alice@ministry").unwrap();
        let pem = std::fs::read(dir.path().join("client.pem")).unwrap();
        let chain = crate::tls::certificates(&dir.path().join("client.pem"), &pem).unwrap();
        assert_eq!(subject(&chain[0]).as_deref(), Some("alice@ministry"));
    }

    #[test]
    fn without_a_common_name_the_subject_is_the_whole_name() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Ministry");
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "FR");
        assert_eq!(
            subject(&certificate(params)).as_deref(),
            Some("O=Ministry, C=FR")
        );
    }

    #[test]
    fn a_plain_request_or_garbage_names_nobody() {
        let request = http::Request::new(());
        assert_eq!(peer_certificate_subject(&request), None);
        assert_eq!(subject(&CertificateDer::from(vec![1, 2, 3])), None);
    }

    #[test]
    fn the_http_port_connection_info_is_read() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "bob");
        let mut request = http::Request::new(());
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(TlsPeer {
                remote: ([127, 0, 0, 1], 1).into(),
                certificates: Some(std::sync::Arc::new(vec![certificate(params)])),
            }));
        assert_eq!(peer_certificate_subject(&request).as_deref(), Some("bob"));
    }
}
