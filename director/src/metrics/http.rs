//! A tiny HTTP/1.1 server for `GET /metrics`, hand-written and bounded: a
//! fixed number of connections, a cap on the request head, a deadline on
//! reading it and on writing the answer, one request per connection. A
//! slowloris client or a flood holds nothing for long.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::CONTENT_TYPE;
use super::scrapes::{MAX_AGE, Scrapes};
use crate::status::Status;

/// The bounds of the metrics server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// The request line and headers, in bytes (431 beyond).
    pub head_cap: usize,
    /// The whole request head must arrive within this (not per read: a
    /// client dripping a byte a second gets no extension).
    pub read_timeout: Duration,
    /// The whole answer must be taken within this.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            head_cap: 8 * 1024,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound metrics listener: bind first (so the daemon fails at start on a
/// taken port), then [`run`](Self::run).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    limits: Limits,
    max_age: Duration,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        Ok(Self::from_listener(listener))
    }

    pub fn from_listener(listener: TcpListener) -> Self {
        Self {
            listener,
            limits: Limits::default(),
            max_age: MAX_AGE,
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How old a snapshot a scrape may be served ([`MAX_AGE`] unless set).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The bound address (the port, when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the future is dropped. `take` makes a new snapshot when
    /// a scrape finds the latest older than the max age (see [`Scrapes`]);
    /// the text is rendered on a blocking thread, so that a large table
    /// does not stall the runtime's checks.
    pub async fn run<F, Fut>(self, take: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Status> + Send,
    {
        let scrapes = Arc::new(Scrapes::with_max_age(take, self.max_age));
        let limits = self.limits;
        let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                // EMFILE and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Over the cap: closed at once.
                drop(stream);
                continue;
            };
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                handle(stream, limits, &scrapes).await;
                drop(permit);
            });
        }
    }
}

/// Binds `addr` and serves `GET /metrics` with the default [`Limits`]
/// until the future is dropped; returns only if it cannot listen.
pub async fn serve<F, Fut>(addr: SocketAddr, take: F) -> Result<(), MetricsError>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Status> + Send,
{
    MetricsServer::bind(addr).await?.run(take).await;
    Ok(())
}

pub(crate) enum Request {
    Metrics { head_only: bool },
    NotFound,
    NotAllowed,
    Bad,
    TooLarge,
}

async fn handle<F, Fut>(mut stream: TcpStream, limits: Limits, scrapes: &Scrapes<F>)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Status> + Send,
{
    let request =
        match tokio::time::timeout(limits.read_timeout, read(&mut stream, limits.head_cap)).await {
            Ok(Some(request)) => request,
            // Timed out, or gone before a whole head: nothing to answer.
            Ok(None) | Err(_) => return,
        };
    let (status, content_type, body, head_only): (_, _, Arc<str>, _) = match request {
        Request::Metrics { head_only } => match scrapes.text().await {
            Some(text) => ("200 OK", CONTENT_TYPE, text, head_only),
            None => (
                "500 Internal Server Error",
                "text/plain",
                "error\n".into(),
                false,
            ),
        },
        Request::NotFound => (
            "404 Not Found",
            "text/plain",
            "try /metrics\n".into(),
            false,
        ),
        Request::NotAllowed => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".into(),
            false,
        ),
        Request::Bad => (
            "400 Bad Request",
            "text/plain",
            "bad request\n".into(),
            false,
        ),
        Request::TooLarge => (
            "431 Request Header Fields Too Large",
            "text/plain",
            "request head too large\n".into(),
            false,
        ),
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        },
    );
    if !head_only {
        answer.push_str(&body);
    }
    let _ = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Reads the request head within `cap` bytes and classifies it; `None` if
/// the client went away first.
async fn read(stream: &mut TcpStream, cap: usize) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Where the blank line may start: a dripping client must not make each
    // read rescan the head.
    let mut from = 0;
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match crate::check::http::blank_line_end(&buf, from) {
            Some(end) if end <= cap => return Some(classify(&buf[..end])),
            Some(_) => return Some(Request::TooLarge),
            None if buf.len() > cap => return Some(Request::TooLarge),
            None => from = buf.len().saturating_sub(3),
        }
    }
}

/// pub(crate) for the fuzz targets (crate::fuzz).
pub(crate) fn classify(head: &[u8]) -> Request {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad;
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Bad;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::NotAllowed,
    };
    let path = target.split('?').next().unwrap_or("");
    if path == "/metrics" {
        Request::Metrics { head_only }
    } else {
        Request::NotFound
    }
}
