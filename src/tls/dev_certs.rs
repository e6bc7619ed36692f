//! `diplog dev-certs`: a throwaway certificate authority, a server certificate and a client
//! certificate (rcgen, ECDSA P-256), for trying TLS and client certificates out. Nothing here
//! is fit for production: the CA key sits beside the certificates it signs.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The names every server certificate holds, so a local server is reachable by any of them.
pub const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The files written, in order: (name, is a private key).
pub const FILES: [(&str, bool); 6] = [
    ("ca.pem", false),
    ("ca-key.pem", true),
    ("server.pem", false),
    ("server-key.pem", true),
    ("client.pem", false),
    ("client-key.pem", true),
];

#[derive(Debug, thiserror::Error)]
pub enum DevCertsError {
    #[error("refusing to overwrite {}: remove them or choose another directory", list(.0))]
    Exists(Vec<PathBuf>),
    #[error("could not write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--host {host:?} is not a DNS name or an IP address: {reason}")]
    BadHost { host: String, reason: String },
    #[error("--client-name {name:?} cannot be a certificate subject: {reason}")]
    BadClientName { name: String, reason: String },
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// Writes the CA, server and client certificates and keys into `dir` (created if missing) and
/// answers the paths written. Writes nothing if any of the files exists already. Keys are
/// readable by their owner only.
pub fn write(
    dir: &Path,
    hosts: &[String],
    client_name: &str,
) -> Result<Vec<PathBuf>, DevCertsError> {
    let paths: Vec<PathBuf> = FILES.iter().map(|(name, _)| dir.join(name)).collect();
    let existing: Vec<PathBuf> = paths.iter().filter(|p| p.exists()).cloned().collect();
    if !existing.is_empty() {
        return Err(DevCertsError::Exists(existing));
    }
    let [ca, ca_key, server, server_key, client, client_key] = generate(hosts, client_name)?;
    std::fs::create_dir_all(dir).map_err(|source| DevCertsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let contents = [ca, ca_key, server, server_key, client, client_key];
    for ((path, (_, secret)), text) in paths.iter().zip(FILES).zip(contents) {
        write_new(path, text.as_bytes(), secret).map_err(|source| DevCertsError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(paths)
}

/// Creates `path` (never replacing a file: two runs racing cannot overwrite each other).
fn write_new(path: &Path, contents: &[u8], secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if secret { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The six PEM texts, in the order of [`FILES`].
fn generate(hosts: &[String], client_name: &str) -> Result<[String; 6], DevCertsError> {
    let today = chrono::Utc::now().date_naive();
    let day = |offset_days: i64| {
        use chrono::Datelike;
        let date = today + chrono::Duration::days(offset_days);
        rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8)
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // A name of its own: verifiers find a certificate's issuer by name, so two development
    // CAs with one name would be told apart only by a failing signature.
    let serial = uuid::Uuid::new_v4().simple().to_string();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("diplog development CA {}", &serial[..8]),
    );
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "diplog dev-certs");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = day(-1);
    ca_params.not_after = day(3650);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);
    // What server and client certificates share: a year's validity, signing only.
    let leaf = |mut params: CertificateParams| {
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = day(-1);
        params.not_after = day(365);
        params
    };

    let mut names: Vec<String> = LOCAL_NAMES.iter().map(|n| (*n).to_owned()).collect();
    for host in hosts {
        // rcgen takes any ASCII as a DNS name; a client would never match a bad one.
        tokio_rustls::rustls::pki_types::ServerName::try_from(host.as_str()).map_err(|e| {
            DevCertsError::BadHost {
                host: host.clone(),
                reason: e.to_string(),
            }
        })?;
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let mut server_params = CertificateParams::new(names)?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "diplog server");
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = leaf(server_params).signed_by(&server_key, &issuer)?;

    if client_name.trim().is_empty() {
        return Err(DevCertsError::BadClientName {
            name: client_name.to_owned(),
            reason: "it is empty".to_owned(),
        });
    }
    let mut client_params = CertificateParams::new(Vec::<String>::new())?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, client_name);
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = leaf(client_params).signed_by(&client_key, &issuer)?;

    Ok([
        ca_pem,
        ca_key_pem,
        server_cert.pem(),
        server_key.serialize_pem(),
        client_cert.pem(),
        client_key.serialize_pem(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_writes_six_files_with_private_keys_for_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("certs");
        let written = write(&target, &["diplog.example".into()], "alice").unwrap();
        assert_eq!(written.len(), 6);
        for ((name, secret), path) in FILES.iter().zip(&written) {
            assert_eq!(path, &target.join(name));
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode == 0o600, *secret, "{name}: {mode:o}");
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN"), "{name}");
        }
    }

    #[test]
    fn it_refuses_to_overwrite_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server-key.pem"), "mine").unwrap();
        let error = write(dir.path(), &[], "diplog-client").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("server-key.pem"), "{message}");
        assert!(!message.contains("ca.pem"), "{message}");
        // Nothing was written, and the file that was there is untouched.
        assert!(!dir.path().join("ca.pem").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("server-key.pem")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn a_bad_host_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = write(dir.path(), &["not a host".into()], "c").unwrap_err();
        assert!(error.to_string().contains("not a host"), "{error}");
        assert!(!dir.path().join("ca.pem").exists());
    }
}
