//! The agent check: the real server's own verdict, one ASCII line, as in
//! HAProxy's agent-check (rs-agent `watch --agent-listen` answers it).

use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::CheckOutcome;
use super::reason::{failed_to_connect, io_reason, printable};

/// The longest answer read: HAProxy's words with a weight and a short
/// description fit; anything longer is not an agent.
pub(crate) const MAX_LINE: usize = 64;

/// Connects, reads one line (at most [`MAX_LINE`] bytes), closes. The caller
/// bounds the time.
pub(crate) async fn run(target: SocketAddr) -> CheckOutcome {
    let mut stream = match TcpStream::connect(target).await {
        Ok(stream) => stream,
        Err(e) => return failed_to_connect(&e, "agent: "),
    };
    let mut buf = [0u8; MAX_LINE];
    let mut len = 0;
    loop {
        match stream.read(&mut buf[len..]).await {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if buf[..len].contains(&b'\n') {
                    break;
                }
                if len == buf.len() {
                    return CheckOutcome::Down("agent: answer too long".into());
                }
            }
            // A reset after a complete answer still counts the answer.
            Err(_) if buf[..len].contains(&b'\n') => break,
            Err(e) => return CheckOutcome::Down(format!("agent: {}", io_reason(&e))),
        }
    }
    let line = &buf[..len];
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(end) => &line[..end],
        None => line,
    };
    parse(line)
}

/// Reads an agent's line the way HAProxy does, for the words we honour:
/// case-insensitive words separated by blanks or commas, `\r` ignored;
/// `up`/`ready` = up, `drain` = drain, `down`/`fail`/`stopped`/`maint` =
/// down (with an optional `#description`). A weight (`75%`) is accepted
/// beside a state word and ignored: the director sets weights from its
/// file. The most severe word wins (`up drain` drains).
pub(crate) fn parse(line: &[u8]) -> CheckOutcome {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (words, description) = match text.split_once('#') {
        Some((words, description)) => (words, Some(description.trim())),
        None => (text, None),
    };
    let mut down: Option<String> = None;
    let mut drain = false;
    let mut up = false;
    for word in words.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        match word.as_str() {
            "up" | "ready" => up = true,
            "drain" => drain = true,
            "down" | "fail" | "stopped" | "maint" => {
                down.get_or_insert(word);
            }
            w if is_weight(w) => {}
            _ => return unexpected(text),
        }
    }
    if let Some(word) = down {
        return CheckOutcome::Down(match description.filter(|d| !d.is_empty()) {
            Some(d) => format!("agent: {word} ({})", printable(d)),
            None => format!("agent: {word}"),
        });
    }
    if drain {
        CheckOutcome::Drain
    } else if up {
        CheckOutcome::Up
    } else {
        unexpected(text)
    }
}

fn is_weight(word: &str) -> bool {
    word.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn unexpected(text: &str) -> CheckOutcome {
    if text.is_empty() {
        CheckOutcome::Down("agent: empty answer".into())
    } else {
        CheckOutcome::Down(format!("agent: unexpected answer {text:?}"))
    }
}
