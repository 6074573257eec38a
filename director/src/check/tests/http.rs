//! http checks against well-behaved and hostile servers.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{LOCALHOST, check, closed_port, down, http, serve, spec};
use crate::check::{CheckKind, CheckOutcome, HttpCheck};

const T: Duration = Duration::from_secs(5);

/// Reads the request head (bounded: 8 KiB, or the end of the stream).
pub(super) async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    request
}

async fn respond(response: Vec<u8>) -> u16 {
    let response = Arc::new(response);
    serve(move |mut stream| {
        let response = response.clone();
        async move {
            read_request(&mut stream).await;
            let _ = stream.write_all(&response).await;
        }
    })
    .await
}

async fn run(check_: HttpCheck, port: u16) -> CheckOutcome {
    check(&spec(CheckKind::Http(check_), port, T)).await.outcome
}

fn expecting(body: &str) -> HttpCheck {
    HttpCheck {
        expect_body: Some(body.into()),
        ..http("/health")
    }
}

#[tokio::test]
async fn request_has_path_host_close_and_user_agent() {
    let (tx, mut rx) = mpsc::channel(1);
    let port = serve(move |mut stream| {
        let tx = tx.clone();
        async move {
            let request = read_request(&mut stream).await;
            let _ = tx.send(request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    })
    .await;
    assert_eq!(run(http("/health?x=1"), port).await, CheckOutcome::Up);
    let request = String::from_utf8(rx.recv().await.unwrap()).unwrap();
    assert!(
        request.starts_with("GET /health?x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
    assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    assert!(
        request.contains("\r\nUser-Agent: lvs-director\r\n"),
        "{request}"
    );

    let named = HttpCheck {
        host: Some("www.example.org".into()),
        ..http("/")
    };
    assert_eq!(run(named, port).await, CheckOutcome::Up);
    let request = String::from_utf8(rx.recv().await.unwrap()).unwrap();
    assert!(
        request.contains("\r\nHost: www.example.org\r\n"),
        "{request}"
    );
}

#[tokio::test]
async fn header_injection_is_refused_before_connecting() {
    let port = closed_port().await;
    let injected = http("/ HTTP/1.1\r\nX-Evil: 1\r\n");
    let CheckOutcome::Down(reason) = run(injected, port).await else {
        panic!()
    };
    assert!(reason.starts_with("invalid request path"), "{reason}");
    let host = HttpCheck {
        host: Some("a\r\nb".into()),
        ..http("/")
    };
    let CheckOutcome::Down(reason) = run(host, port).await else {
        panic!()
    };
    assert!(reason.starts_with("invalid host"), "{reason}");
}

#[tokio::test]
async fn refused() {
    let port = closed_port().await;
    assert_eq!(run(http("/"), port).await, down("connection refused"));
}

#[tokio::test]
async fn status_outside_the_ranges_is_down() {
    let port =
        respond(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno".to_vec()).await;
    assert_eq!(run(http("/"), port).await, down("HTTP 503"));
    let accepting_503 = HttpCheck {
        expect_status: vec![(200, 200), (500, 503)],
        ..http("/")
    };
    assert_eq!(run(accepting_503, port).await, CheckOutcome::Up);
    // HTTP/1.0 and a status line without a reason phrase.
    let port = respond(b"HTTP/1.0 204\r\n\r\n".to_vec()).await;
    assert_eq!(run(http("/"), port).await, CheckOutcome::Up);
}

#[tokio::test]
async fn body_mismatch_and_match() {
    let port = respond(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nfailing".to_vec()).await;
    assert_eq!(
        run(expecting("ok"), port).await,
        down("body does not contain \"ok\"")
    );
    assert_eq!(run(expecting("fail"), port).await, CheckOutcome::Up);
}

#[tokio::test]
async fn body_found_after_10_kib_with_length_and_without() {
    let mut body = vec![b'x'; 10 * 1024];
    body.extend_from_slice(b"status: ok\n");
    let mut with_length =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    with_length.extend_from_slice(&body);
    let port = respond(with_length).await;
    assert_eq!(run(expecting("status: ok"), port).await, CheckOutcome::Up);

    let mut until_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    until_close.extend_from_slice(&body);
    let port = respond(until_close).await;
    assert_eq!(run(expecting("status: ok"), port).await, CheckOutcome::Up);
}

/// The length frames the body: bytes after it are not searched.
#[tokio::test]
async fn content_length_bounds_the_search() {
    let port = respond(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcok".to_vec()).await;
    assert_eq!(
        run(expecting("ok"), port).await,
        down("body does not contain \"ok\"")
    );
}

/// A server streaming a body forever: the check stops at the body cap, long
/// before its timeout, and fails.
#[tokio::test]
async fn endless_body_ends_at_the_cap() {
    let (tx, mut rx) = mpsc::channel(1);
    let port = serve(move |mut stream| {
        let tx = tx.clone();
        async move {
            read_request(&mut stream).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            let block = [b'x'; 4096];
            let mut sent = 0usize;
            // Bounded: 64 MiB at most, or until the check hangs up.
            while sent < 64 << 20 && stream.write_all(&block).await.is_ok() {
                sent += block.len();
            }
            let _ = tx.send(sent).await;
        }
    })
    .await;
    let result = check(&spec(CheckKind::Http(expecting("ok")), port, T)).await;
    assert_eq!(result.outcome, down("body does not contain \"ok\""));
    assert!(result.duration < T / 2, "{:?}", result.duration);
    // The server was cut off: it did not manage to send its 64 MiB.
    let sent = rx.recv().await.unwrap();
    assert!(sent < 64 << 20, "sent {sent}");
}

#[tokio::test]
async fn chunked_bodies() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n3\r\n, o\r\n1\r\nk\r\n0\r\nTrailer: x\r\n\r\n"
        .to_vec();
    let port = respond(chunked).await;
    // "ok" spans two chunks; the framing never matches.
    assert_eq!(run(expecting("hello, ok"), port).await, CheckOutcome::Up);
    assert_eq!(
        run(expecting("\r\n"), port).await,
        down("body does not contain \"\\r\\n\"")
    );
    assert_eq!(
        run(expecting("name"), port).await,
        down("body does not contain \"name\"")
    );

    let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n".to_vec();
    let port = respond(bad).await;
    assert_eq!(
        run(expecting("hello"), port).await,
        down("malformed HTTP response")
    );
}

#[tokio::test]
async fn huge_headers() {
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..5000 {
        response.extend_from_slice(format!("X-Padding-{i}: aaaaaaaaaaaaaaaa\r\n").as_bytes());
    }
    response.extend_from_slice(b"\r\n");
    let port = respond(response).await;
    assert_eq!(
        run(http("/"), port).await,
        down("response header too large")
    );
}

#[tokio::test]
async fn garbage() {
    for garbage in [
        &b"\x00\xff\xfe garbage\r\n\r\n"[..],
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Len", // closed mid-head
    ] {
        let port = respond(garbage.to_vec()).await;
        assert_eq!(
            run(http("/"), port).await,
            down("malformed HTTP response"),
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    let port = respond(Vec::new()).await;
    assert_eq!(
        run(http("/"), port).await,
        down("connection closed without a response")
    );
}

/// Accepts and never answers; then one that drips a byte every 50 ms: the
/// timeout holds for both.
#[tokio::test]
async fn silent_and_dripping_servers_time_out() {
    let timeout = Duration::from_millis(700);
    let silent = serve(|stream| async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(stream);
    })
    .await;
    let dripping = serve(|mut stream| async move {
        read_request(&mut stream).await;
        for _ in 0..400 {
            if stream.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for port in [silent, dripping] {
        let result = check(&spec(CheckKind::Http(http("/")), port, timeout)).await;
        assert_eq!(result.outcome, down("timeout after 0.7s"));
        assert!(result.duration >= timeout);
    }
}

#[tokio::test]
async fn ipv6_loopback_host_header_is_bracketed() {
    let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request = read_request(&mut stream).await;
        stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        String::from_utf8(request).unwrap()
    });
    let address = "::1".parse().unwrap();
    let result = crate::check::run_check(&spec(CheckKind::Http(http("/")), port, T), address).await;
    assert_eq!(result.outcome, CheckOutcome::Up);
    let request = server.await.unwrap();
    assert!(
        request.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
        "{request}"
    );
    let _ = LOCALHOST;
}
