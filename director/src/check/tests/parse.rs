//! The HTTP parsing pieces, fed byte by byte where framing matters.

use crate::check::CheckOutcome;
use crate::check::agent;
use crate::check::http::{BODY_CAP, Chunked, Finder, Framing, Head, head_end, parse_head};

#[test]
fn heads() {
    let head = |s: &str| parse_head(s.as_bytes());
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
        Some(Head {
            status: 200,
            framing: Framing::Length(12)
        })
    );
    assert_eq!(
        head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n"),
        Some(Head {
            status: 200,
            framing: Framing::Chunked
        })
    );
    assert_eq!(
        head("HTTP/1.0 302 Found\nLocation: /x\n\n"),
        Some(Head {
            status: 302,
            framing: Framing::Close
        })
    );
    assert_eq!(
        head("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
        Some(Head {
            status: 304,
            framing: Framing::Empty
        })
    );
    assert_eq!(
        head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n").map(|h| h.framing),
        Some(Framing::Length(5))
    );
    for bad in [
        "",
        "HTTP/1.1\r\n\r\n",
        "HTTP/1.1 OK 200\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ] {
        assert_eq!(head(bad), None, "{bad:?}");
    }
}

#[test]
fn head_end_finds_the_first_blank_line() {
    assert_eq!(
        head_end(b"HTTP/1.1 200 OK\r\n\r\nbody\r\n\r\n", 0),
        Some(19)
    );
    assert_eq!(head_end(b"HTTP/1.1 200 OK\n\nbody", 0), Some(17));
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nX: y\r\n", 0), None);
    // A terminator split across two reads is found from the resume point.
    let buf = b"HTTP/1.1 200 OK\r\n\r\n";
    assert_eq!(head_end(buf, buf.len() - 4), Some(buf.len()));
}

fn decode_bytewise(raw: &[u8]) -> Result<(Vec<u8>, bool), ()> {
    let mut chunked = Chunked::default();
    let mut out = Vec::new();
    let mut more = true;
    for byte in raw {
        more = chunked.decode(std::slice::from_ref(byte), &mut |d| {
            out.extend_from_slice(d)
        })?;
    }
    Ok((out, more))
}

#[test]
fn chunked_decoding() {
    let (body, more) =
        decode_bytewise(b"4\r\nWiki\r\n5;ext\r\npedia\r\nD\r\n in\r\n\r\nchunks\r\n0\r\n\r\n")
            .unwrap();
    assert_eq!(body, b"Wikipedia in\r\n\r\nchunks");
    assert!(!more);
    // Unfinished: more to come.
    assert_eq!(decode_bytewise(b"4\r\nWi").unwrap(), (b"Wi".to_vec(), true));
    // Data not followed by CRLF, bad sizes, a size line without end.
    assert!(decode_bytewise(b"2\r\nabc\r\n").is_err());
    assert!(decode_bytewise(b"-1\r\n").is_err());
    assert!(decode_bytewise(b"fffffffffffffffff\r\n").is_err());
    assert!(decode_bytewise(&[b'1'; 2000]).is_err());
}

#[test]
fn finder_spans_pieces_and_stops_at_the_cap() {
    let mut finder = Finder::new(b"needle");
    for piece in [&b"xxxne"[..], b"e", b"dlexx"] {
        finder.feed(piece);
    }
    assert!(finder.found);

    let mut finder = Finder::new(b"needle");
    let filler = vec![b'x'; 1000];
    while finder.seen < BODY_CAP {
        finder.feed(&filler);
    }
    finder.feed(b"needle");
    assert!(!finder.found, "searched past the cap");
    assert_eq!(finder.seen, BODY_CAP);
    assert!(Finder::new(b"").found);
}

#[test]
fn agent_answers() {
    let down = |r: &str| CheckOutcome::Down(r.into());
    for (line, outcome) in [
        ("up\n", CheckOutcome::Up),
        ("UP\r\n", CheckOutcome::Up),
        ("ready", CheckOutcome::Up),
        ("up 75%\n", CheckOutcome::Up),
        ("Drain\r\n", CheckOutcome::Drain),
        ("up,drain", CheckOutcome::Drain),
        ("down\n", down("agent: down")),
        ("maint\n", down("agent: maint")),
        ("drain down", down("agent: down")),
        ("DOWN#disk full\r\n", down("agent: down (disk full)")),
        ("stopped #", down("agent: stopped")),
        ("75%\n", down("agent: unexpected answer \"75%\"")),
        ("yes\n", down("agent: unexpected answer \"yes\"")),
        (
            "up sideways",
            down("agent: unexpected answer \"up sideways\""),
        ),
        ("\r\n", down("agent: empty answer")),
    ] {
        assert_eq!(agent::parse(line.as_bytes()), outcome, "{line:?}");
    }
}
