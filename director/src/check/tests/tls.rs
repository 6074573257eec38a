//! https checks against a TLS server with a certificate made in the test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::http::read_request;
use super::{check, down, http, serve, spec};
use crate::check::{CheckKind, CheckOutcome, HttpCheck};

struct Server {
    port: u16,
    /// The SNI of each handshake that completed.
    sni: mpsc::Receiver<Option<String>>,
    /// The certificate, PEM, in a file.
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

async fn tls_server() -> Server {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (tx, sni) = mpsc::channel(16);
    let port = serve(move |stream| {
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        async move {
            // A client that rejects the certificate ends the handshake here.
            let Ok(mut stream) = acceptor.accept(stream).await else {
                return;
            };
            let name = stream.get_ref().1.server_name().map(str::to_string);
            let _ = tx.send(name).await;
            read_request(&mut stream).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nstatus ok")
                .await;
            let _ = stream.shutdown().await;
        }
    })
    .await;
    Server {
        port,
        sni,
        ca_file,
        _dir: dir,
    }
}

fn https() -> HttpCheck {
    HttpCheck {
        tls: true,
        expect_body: Some("ok".into()),
        ..http("/")
    }
}

async fn run(check_: HttpCheck, port: u16) -> CheckOutcome {
    check(&spec(CheckKind::Http(check_), port, Duration::from_secs(5)))
        .await
        .outcome
}

#[tokio::test]
async fn self_signed_fails_verification_by_default() {
    let server = tls_server().await;
    let CheckOutcome::Down(reason) = run(https(), server.port).await else {
        panic!()
    };
    assert!(
        reason.starts_with("tls: invalid peer certificate"),
        "{reason}"
    );
    assert!(reason.contains("UnknownIssuer"), "{reason}");
}

#[tokio::test]
async fn verify_tls_false_accepts_it() {
    let mut server = tls_server().await;
    let check_ = HttpCheck {
        verify_tls: false,
        ..https()
    };
    assert_eq!(run(check_, server.port).await, CheckOutcome::Up);
    // An address as the server name: no SNI.
    assert_eq!(server.sni.recv().await.unwrap(), None);
}

#[tokio::test]
async fn ca_file_makes_it_trusted_and_names_still_count() {
    let mut server = tls_server().await;
    let with_ca = HttpCheck {
        ca_file: Some(server.ca_file.clone()),
        ..https()
    };
    // Matched against the certificate's IP address.
    assert_eq!(run(with_ca.clone(), server.port).await, CheckOutcome::Up);
    assert_eq!(server.sni.recv().await.unwrap(), None);

    let named = HttpCheck {
        host: Some(format!("localhost:{}", server.port)),
        ..with_ca.clone()
    };
    assert_eq!(run(named, server.port).await, CheckOutcome::Up);
    assert_eq!(
        server.sni.recv().await.unwrap().as_deref(),
        Some("localhost")
    );

    let wrong = HttpCheck {
        host: Some("www.example.org".into()),
        ..with_ca
    };
    let CheckOutcome::Down(reason) = run(wrong, server.port).await else {
        panic!()
    };
    assert!(
        reason.starts_with("tls: invalid peer certificate"),
        "{reason}"
    );
    assert!(reason.contains("not valid for name"), "{reason}");
}

#[tokio::test]
async fn bad_ca_files() {
    let server = tls_server().await;
    let missing = HttpCheck {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..https()
    };
    assert_eq!(
        run(missing, server.port).await,
        down("tls: cannot read ca_file /nonexistent/ca.pem: no such file or directory")
    );
    let not_pem = server.ca_file.with_file_name("garbage.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let garbage = HttpCheck {
        ca_file: Some(not_pem.clone()),
        ..https()
    };
    assert_eq!(
        run(garbage, server.port).await,
        down(&format!(
            "tls: no certificate in ca_file {}",
            not_pem.display()
        ))
    );
}

/// A plain-HTTP server on an https check: the handshake fails fast.
#[tokio::test]
async fn plain_server_on_https() {
    let port = serve(|mut stream| async move {
        // One read: a ClientHello never ends with a blank line.
        let mut hello = [0u8; 4096];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut hello).await;
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let CheckOutcome::Down(reason) = run(https(), port).await else {
        panic!()
    };
    assert!(reason.starts_with("tls: "), "{reason}");
}
