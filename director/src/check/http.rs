//! The http(s) check: a minimal HTTP/1.1 client, hand-written so that every
//! byte it reads is bounded (a hostile or broken server gets at most
//! [`HEAD_CAP`] bytes of head and [`BODY_CAP`] bytes of body read, within
//! the check's timeout, which the caller enforces around all of it).

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::reason::{failed_to_connect, io_reason};
use super::tls;
use super::{CheckOutcome, HttpCheck};

/// Status line and headers, terminator included.
pub(crate) const HEAD_CAP: usize = 16 * 1024;
/// Decoded body searched for `expect_body`.
pub(crate) const BODY_CAP: usize = 64 * 1024;
/// Body bytes read off the wire, chunk framing included (tiny chunks cost
/// six bytes of framing per byte of data).
const RAW_BODY_CAP: usize = 4 * BODY_CAP;
/// A chunk-size line, extensions included.
const CHUNK_LINE_CAP: usize = 1024;
const READ_SIZE: usize = 8 * 1024;

const MALFORMED: &str = "malformed HTTP response";

pub(crate) async fn run(check: &HttpCheck, target: SocketAddr) -> CheckOutcome {
    let request = match request(check, target) {
        Ok(request) => request,
        Err(reason) => return CheckOutcome::Down(reason),
    };
    // Before connecting: a bad CA file fails without touching the server.
    // Synchronous, but cached: only the first https check (system roots)
    // and a changed ca_file read files.
    let tls = if check.tls {
        let config =
            tls::client_config(check.verify_tls, check.ca_file.as_deref()).and_then(|config| {
                Ok((
                    config,
                    tls::server_name(check.host.as_deref(), target.ip())?,
                ))
            });
        match config {
            Ok(config) => Some(config),
            Err(e) => return CheckOutcome::Down(format!("tls: {e}")),
        }
    } else {
        None
    };
    let tcp = match TcpStream::connect(target).await {
        Ok(tcp) => tcp,
        Err(e) => return failed_to_connect(&e, ""),
    };
    match tls {
        None => exchange(tcp, &request, check).await,
        Some((config, name)) => match TlsConnector::from(config).connect(name, tcp).await {
            Ok(stream) => exchange(stream, &request, check).await,
            Err(e) => CheckOutcome::Down(format!("tls: {}", io_reason(&e))),
        },
    }
}

/// The request bytes. The path and host come from the validated file, but a
/// control character or blank in them would let a file inject headers:
/// refused here too.
fn request(check: &HttpCheck, target: SocketAddr) -> Result<String, String> {
    let clean = |s: &str| !s.is_empty() && s.bytes().all(|b| b > b' ' && b != 0x7f);
    if !clean(&check.path) || !check.path.starts_with('/') {
        return Err(format!("invalid request path {:?}", check.path));
    }
    let host = match &check.host {
        Some(host) if !clean(host) => return Err(format!("invalid host {host:?}")),
        Some(host) => host.clone(),
        None => {
            let default_port = if check.tls { 443 } else { 80 };
            let ip = match target.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            };
            if target.port() == default_port {
                ip
            } else {
                format!("{ip}:{}", target.port())
            }
        }
    };
    Ok(format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: lvs-director\r\nAccept: */*\r\n\r\n",
        check.path
    ))
}

async fn exchange<S>(mut stream: S, request: &str, check: &HttpCheck) -> CheckOutcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await
    }
    .await
    {
        return CheckOutcome::Down(io_reason(&e));
    }
    let mut buf = Vec::with_capacity(READ_SIZE);
    let head_len = match read_head(&mut stream, &mut buf).await {
        Ok(len) => len,
        Err(reason) => return CheckOutcome::Down(reason),
    };
    let Some(head) = parse_head(&buf[..head_len]) else {
        return CheckOutcome::Down(MALFORMED.into());
    };
    if !check
        .expect_status
        .iter()
        .any(|&(low, high)| (low..=high).contains(&head.status))
    {
        return CheckOutcome::Down(format!("HTTP {}", head.status));
    }
    let Some(needle) = &check.expect_body else {
        return CheckOutcome::Up;
    };
    let mut body = Body {
        stream,
        pending: buf.split_off(head_len),
        raw_read: 0,
    };
    match search(&mut body, head.framing, needle.as_bytes()).await {
        Ok(true) => CheckOutcome::Up,
        Ok(false) => {
            let shown: String = needle.chars().take(64).collect();
            CheckOutcome::Down(format!("body does not contain {shown:?}"))
        }
        Err(reason) => CheckOutcome::Down(reason),
    }
}

/// Reads until the blank line ending the head; returns the head's length
/// (what follows in `buf` is the start of the body).
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, String> {
    // Where the terminator may start: a server dripping one byte per read
    // must not make each read rescan the whole head.
    let mut from = 0;
    loop {
        if let Some(end) = head_end(buf, from) {
            return Ok(end);
        }
        if buf.len() >= HEAD_CAP {
            return Err("response header too large".into());
        }
        from = buf.len().saturating_sub(3);
        // At most one read past the cap: the start of the body.
        let n = read_more(stream, buf, READ_SIZE).await?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "connection closed without a response".into()
            } else {
                MALFORMED.into()
            });
        }
    }
}

/// The end of the first `\r\n\r\n` (or bare `\n\n`, which lenient servers
/// send) starting at or after `from`, if it lies within the cap.
pub(crate) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    blank_line_end(&buf[..buf.len().min(HEAD_CAP)], from)
}

/// The end of the first blank line (`\r\n\r\n` or a bare `\n\n`) at or
/// after `from`: where an HTTP head ends. Shared with the metrics server.
pub(crate) fn blank_line_end(buf: &[u8], from: usize) -> Option<usize> {
    let scan = &buf[from..];
    let crlf = scan
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i + 4);
    let lf = scan
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| from + i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Appends one read of at most `max` bytes; 0 = end of stream. A TLS peer
/// that closes without close_notify ends the stream the same way.
async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<usize, String> {
    let start = buf.len();
    buf.resize(start + max, 0);
    let result = stream.read(&mut buf[start..]).await;
    let n = match result {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
        Err(e) => {
            buf.truncate(start);
            return Err(io_reason(&e));
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// 1xx, 204, 304: no body.
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes.
    Close,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub framing: Framing,
}

/// Parses a status line and headers; `None` if it is not HTTP/1.x.
pub(crate) fn parse_head(head: &[u8]) -> Option<Head> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next()?;
    let rest = status_line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() || rest.first() != Some(&b' ') {
        return None;
    }
    let code = rest.get(1..4)?;
    if !code.iter().all(u8::is_ascii_digit) || !matches!(rest.get(4), None | Some(b' ')) {
        return None;
    }
    let status = std::str::from_utf8(code).ok()?.parse::<u16>().ok()?;
    if status < 100 {
        return None;
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines.filter(|l| !l.is_empty()) {
        // Folded headers are obsolete; a name needs a colon and no blanks.
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty()
            || name
                .iter()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return None;
        }
        let value = String::from_utf8_lossy(value);
        let value = value.trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            // `5, 5` (a repeated header folded by a proxy) is one length.
            for part in value.split(',').map(str::trim) {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let n = part.parse::<u64>().ok()?;
                if length.is_some_and(|l| l != n) {
                    return None;
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding frames the message.
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let framing = match status {
        100..=199 | 204 | 304 => Framing::Empty,
        _ if chunked => Framing::Chunked,
        _ => length.map_or(Framing::Close, Framing::Length),
    };
    Some(Head { status, framing })
}

/// The body's raw bytes: what came with the head, then the stream.
struct Body<S> {
    stream: S,
    pending: Vec<u8>,
    raw_read: usize,
}

impl<S: AsyncRead + Unpin> Body<S> {
    /// The next raw bytes (empty at the end of the stream or of the raw cap).
    async fn next(&mut self) -> Result<Vec<u8>, String> {
        let mut chunk = std::mem::take(&mut self.pending);
        if chunk.is_empty() && self.raw_read < RAW_BODY_CAP {
            let max = READ_SIZE.min(RAW_BODY_CAP - self.raw_read);
            read_more(&mut self.stream, &mut chunk, max).await?;
        }
        chunk.truncate(RAW_BODY_CAP - self.raw_read);
        self.raw_read += chunk.len();
        Ok(chunk)
    }
}

/// Searches the decoded body for `needle` within [`BODY_CAP`] bytes.
async fn search<S: AsyncRead + Unpin>(
    body: &mut Body<S>,
    framing: Framing,
    needle: &[u8],
) -> Result<bool, String> {
    let mut finder = Finder::new(needle);
    if finder.found {
        return Ok(true);
    }
    let mut remaining = match framing {
        Framing::Empty | Framing::Length(0) => return Ok(false),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::Close => u64::MAX,
    };
    let mut chunks = Chunked::default();
    loop {
        let raw = body.next().await?;
        if raw.is_empty() {
            // End of stream (or of the cap): a truncated body is searched
            // as far as it went.
            return Ok(false);
        }
        let more = match framing {
            Framing::Chunked => chunks
                .decode(&raw, &mut |data| finder.feed(data))
                .map_err(|()| MALFORMED.to_string())?,
            _ => {
                let take = raw
                    .len()
                    .min(usize::try_from(remaining).unwrap_or(usize::MAX));
                remaining -= take as u64;
                finder.feed(&raw[..take]);
                remaining > 0
            }
        };
        if finder.found {
            return Ok(true);
        }
        if !more || finder.seen >= BODY_CAP {
            return Ok(false);
        }
    }
}

/// A substring search over a stream: keeps only the last `needle.len() - 1`
/// bytes between pieces, and stops counting at [`BODY_CAP`].
pub(crate) struct Finder<'a> {
    needle: &'a [u8],
    window: Vec<u8>,
    pub seen: usize,
    pub found: bool,
}

impl<'a> Finder<'a> {
    pub(crate) fn new(needle: &'a [u8]) -> Self {
        Self {
            needle,
            window: Vec::new(),
            seen: 0,
            found: needle.is_empty(),
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) {
        if self.found || self.seen >= BODY_CAP {
            return;
        }
        let data = &data[..data.len().min(BODY_CAP - self.seen)];
        self.seen += data.len();
        self.window.extend_from_slice(data);
        if self
            .window
            .windows(self.needle.len())
            .any(|w| w == self.needle)
        {
            self.found = true;
            return;
        }
        let keep = (self.needle.len() - 1).min(self.window.len());
        self.window.drain(..self.window.len() - keep);
    }
}

/// A chunked transfer-coding decoder, fed raw pieces as they come.
#[derive(Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    line: Vec<u8>,
}

#[derive(Default, Clone, Copy)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    /// The CRLF after a chunk's data; true once the CR was seen.
    DataEnd(bool),
    Done,
}

impl Chunked {
    /// Decodes `raw`, handing chunk data to `sink`. `Ok(false)` once the last
    /// chunk is seen (trailers are ignored), `Err` on bad framing.
    pub(crate) fn decode(
        &mut self,
        mut raw: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<bool, ()> {
        while !raw.is_empty() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Size => {
                    let newline = raw.iter().position(|&b| b == b'\n');
                    let take = newline.unwrap_or(raw.len());
                    if self.line.len() + take > CHUNK_LINE_CAP {
                        return Err(());
                    }
                    self.line.extend_from_slice(&raw[..take]);
                    let Some(newline) = newline else { break };
                    raw = &raw[newline + 1..];
                    let size = chunk_size(&self.line)?;
                    self.line.clear();
                    self.state = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let take = raw.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    sink(&raw[..take]);
                    raw = &raw[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd(false)
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd(seen_cr) => {
                    self.state = match raw[0] {
                        b'\r' if !seen_cr => ChunkState::DataEnd(true),
                        b'\n' => ChunkState::Size,
                        _ => return Err(()),
                    };
                    raw = &raw[1..];
                }
            }
        }
        Ok(!matches!(self.state, ChunkState::Done))
    }
}

/// `1a3f;ext=1\r` → 0x1a3f. At most 15 hex digits (no overflow).
fn chunk_size(line: &[u8]) -> Result<u64, ()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(());
    }
    u64::from_str_radix(std::str::from_utf8(digits).map_err(|_| ())?, 16).map_err(|_| ())
}
