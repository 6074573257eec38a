//! Why a check failed, in the short words that status, logs and metrics
//! show (`connection refused`, `timeout after 1.0s`), and which failures
//! say nothing about the server (the director ran out of something). Every
//! check kind reports through these; they depend on nothing else in
//! `check`.

use std::io;
use std::time::Duration;

use super::CheckOutcome;

/// Whether `e` says this machine ran out of something a check needs
/// (descriptors, socket buffers, processes) rather than anything about the
/// server: the check never reached it.
pub(crate) fn out_of_local_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The outcome of a check whose connect (or spawn) failed with `e`:
/// [`CheckOutcome::Skipped`] when the director itself is short of
/// resources (counting that as the server's failure would drain healthy
/// servers exactly when the director is busiest), otherwise
/// [`CheckOutcome::Down`] with `prefix` and the reason.
pub(crate) fn failed_to_connect(e: &io::Error, prefix: &str) -> CheckOutcome {
    if out_of_local_resources(e) {
        CheckOutcome::Skipped(format!("{prefix}not started: {}", io_reason(e)))
    } else {
        CheckOutcome::Down(format!("{prefix}{}", io_reason(e)))
    }
}

/// `timeout after 1.0s`.
pub(crate) fn timeout_reason(timeout: Duration) -> String {
    format!("timeout after {}", secs(timeout))
}

/// Seconds with at least one decimal and no trailing noise: `1.0s`,
/// `0.25s`, `2.5s`.
pub(crate) fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    let mut s = format!("{}.{:03}", ms / 1000, ms % 1000);
    while s.ends_with('0') && !s.ends_with(".0") {
        s.pop();
    }
    s + "s"
}

/// A short lower-case reason for an I/O error: the C library's message for
/// an errno (`connection refused`, `no route to host`), without Rust's
/// ` (os error N)` tail; otherwise the error's own text.
pub(crate) fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()).to_lowercase(),
    }
}

/// `text` with its control characters (and the Unicode line separators)
/// escaped as Rust does (`\u{1b}`, `\r`): what a script prints or an agent
/// answers ends up in the log and in status, where a raw escape sequence
/// or line break could forge a line or repaint a terminal.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("\u{1b}[2Jdown\r\nFAKE: server up\u{7f}\u{85}\u{2028}"),
            "\\u{1b}[2Jdown\\r\\nFAKE: server up\\u{7f}\\u{85}\\u{2028}"
        );
        assert_eq!(
            printable("disk full on /var: 95% (été)"),
            "disk full on /var: 95% (été)"
        );
    }
}
