//! TLS client configurations for https checks: the system's roots plus an
//! optional CA file, or (for self-signed backends) any certificate.
//!
//! Configurations are cached: loading the system roots parses a hundred or
//! so certificates, which a director checking thousands of servers every
//! few seconds must not redo per check. A `ca_file` is re-read when its
//! modification time or size changes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::reason::io_reason;

/// The largest `ca_file` read: a bundle of every public root is ~200 KiB.
const CA_FILE_CAP: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read ca_file {path}: {}", io_reason(.source))]
    CaFile { path: PathBuf, source: io::Error },
    #[error("ca_file {0} is larger than 1 MiB")]
    CaFileTooLarge(PathBuf),
    #[error("no certificate in ca_file {0}")]
    NoCertificate(PathBuf),
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("no trusted roots (no system certificates and no ca_file)")]
    NoRoots,
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

/// ring, named explicitly: with one provider compiled in rustls would pick
/// it anyway, but a second one brought in by another crate must not turn
/// into a panic at the first https check.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's roots (Debian: /etc/ssl/certs, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`), loaded once. Unparsable certificates are skipped.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

type Stamp = Option<(SystemTime, u64)>;

/// The client configuration for one `(verify_tls, ca_file)` pair.
pub(crate) fn client_config(
    verify: bool,
    ca_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, TlsError> {
    type Cache = Mutex<HashMap<(bool, Option<PathBuf>), (Stamp, Arc<ClientConfig>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    // Without verification the CA file is irrelevant: one entry.
    let ca_file = ca_file.filter(|_| verify);
    let stamp = match ca_file {
        Some(path) => {
            let meta = std::fs::metadata(path).map_err(|source| TlsError::CaFile {
                path: path.into(),
                source,
            })?;
            Some((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            ))
        }
        None => None,
    };
    let key = (verify, ca_file.map(Path::to_path_buf));
    let cache = CACHE.get_or_init(Default::default);
    if let Some((cached, config)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && *cached == stamp
    {
        return Ok(config.clone());
    }
    let config = Arc::new(build(verify, ca_file)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (stamp, config.clone()));
    Ok(config)
}

fn build(verify: bool, ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if verify {
        let mut roots = system_roots().clone();
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                roots.add(cert)?;
            }
        }
        if roots.is_empty() {
            return Err(TlsError::NoRoots);
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        builder.with_webpki_verifier(verifier).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(config)
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let io_error = |source| TlsError::CaFile {
        path: path.into(),
        source,
    };
    let mut pem = Vec::new();
    File::open(path)
        .map_err(io_error)?
        .take(CA_FILE_CAP + 1)
        .read_to_end(&mut pem)
        .map_err(io_error)?;
    if pem.len() as u64 > CA_FILE_CAP {
        return Err(TlsError::CaFileTooLarge(path.into()));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.into()));
    }
    Ok(certs)
}

/// The name the certificate must match, and the SNI: `host` without a
/// `:port`, else the address (rustls sends no SNI for an address and
/// matches it against the certificate's IP SANs).
pub(crate) fn server_name(
    host: Option<&str>,
    address: IpAddr,
) -> Result<ServerName<'static>, TlsError> {
    let Some(host) = host else {
        return Ok(ServerName::IpAddress(address.into()));
    };
    let bare = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port or [v6]
        rest.split_once(']').map_or(rest, |(inside, _)| inside)
    } else {
        match host.rsplit_once(':') {
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName(host.into()))
}

/// `verify_tls = false`: any certificate is accepted, for backends with
/// self-signed certificates. The handshake signature is still checked (it
/// proves the peer holds the key of the certificate it sent), which costs
/// nothing and keeps the handshake honest.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
