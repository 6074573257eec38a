//! The director's parsers of bytes from outside, reachable from the fuzz
//! targets (`fuzz-targets/`, replayed by `cargo test`). Each function feeds
//! its bytes to the real parser the way the daemon does, and discards the
//! result: a fuzz target only asks that nothing panics. Not an API.

use crate::check::{agent, http, syn::packet};
use crate::control::{self, Reply, Request};
use crate::metrics;

/// A half-open check's reply: an IPv4 packet as the raw socket hands it
/// over (IP header first), and the same bytes as a bare TCP segment (what
/// the IPv6 socket hands over), each for the port it is addressed to.
pub fn syn_ack(data: &[u8]) {
    let port = |s: &[u8]| s.get(2..4).map_or(0, |p| u16::from_be_bytes([p[0], p[1]]));
    if let Some(segment) = packet::ipv4_payload(data) {
        let _ = packet::parse_reply(segment, port(segment));
    }
    let _ = packet::parse_reply(data, port(data));
}

/// An HTTP check's response: the head within its cap, parsed; a chunked
/// body decoded whole and in 7-byte pieces (which must agree), the body
/// searched for a needle.
pub fn http_response(data: &[u8]) {
    let Some(end) = http::head_end(data, 0) else {
        return;
    };
    let Some(head) = http::parse_head(&data[..end]) else {
        return;
    };
    let body = &data[end..];
    let mut finder = http::Finder::new(b"OK");
    if head.framing != http::Framing::Chunked {
        finder.feed(body);
        return;
    }
    let mut whole = Vec::new();
    let at_once = http::Chunked::default().decode(body, &mut |d| whole.extend_from_slice(d));
    let mut pieces = Vec::new();
    let mut chunked = http::Chunked::default();
    let mut piecewise = Ok(true);
    for piece in body.chunks(7) {
        piecewise = chunked.decode(piece, &mut |d| {
            finder.feed(d);
            pieces.extend_from_slice(d);
        });
        if piecewise != Ok(true) {
            break;
        }
    }
    assert_eq!(
        at_once, piecewise,
        "a chunked body decodes the same in pieces"
    );
    assert_eq!(whole, pieces, "a chunked body's data is the same in pieces");
}

/// An agent check's answer: its first line within the line cap.
pub fn agent_reply(data: &[u8]) {
    let line = &data[..data.len().min(agent::MAX_LINE)];
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(end) => &line[..end],
        None => line,
    };
    let _ = agent::parse(line);
}

/// A control-socket request line (and, as the CLI reads them, a reply),
/// with the drain arguments parsed as the daemon parses them.
pub fn control_request(data: &[u8]) {
    let data = &data[..data.len().min(control::MAX_REQUEST as usize)];
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Request::Drain { service, server } | Request::Undrain { service, server }) =
        serde_json::from_str::<Request>(line)
    {
        let _ = control::parse_service(&service);
        let _ = control::parse_server(&server);
    }
    let _ = serde_json::from_str::<Reply>(line);
}

/// The metrics endpoint's request head: found within the default cap, then
/// classified.
pub fn metrics_request_head(data: &[u8]) {
    let cap = metrics::Limits::default().head_cap;
    if let Some(end) = http::blank_line_end(data, 0).filter(|&end| end <= cap) {
        let _ = metrics::http::classify(&data[..end]);
    }
}
