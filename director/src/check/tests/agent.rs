//! The agent check over a real connection.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{check, closed_port, down, serve, spec};
use crate::check::{CheckKind, CheckOutcome};

async fn answering(answer: &'static [u8]) -> u16 {
    serve(move |mut stream| async move {
        let _ = stream.write_all(answer).await;
    })
    .await
}

async fn agent(port: u16) -> CheckOutcome {
    check(&spec(CheckKind::Agent, port, Duration::from_secs(5)))
        .await
        .outcome
}

#[tokio::test]
async fn agent_verdicts() {
    assert_eq!(agent(answering(b"up\r\n").await).await, CheckOutcome::Up);
    assert_eq!(
        agent(answering(b"drain\n").await).await,
        CheckOutcome::Drain
    );
    assert_eq!(agent(answering(b"down\n").await).await, down("agent: down"));
    // Without a newline: the line ends with the connection.
    assert_eq!(agent(answering(b"ready").await).await, CheckOutcome::Up);
    // Only the first line counts.
    assert_eq!(
        agent(answering(b"up\ndown\n").await).await,
        CheckOutcome::Up
    );
    assert_eq!(
        agent(answering(b"\x16\x03\x01 hello\n").await).await,
        down("agent: unexpected answer \"\\u{16}\\u{3}\\u{1} hello\"")
    );
    assert_eq!(
        agent(answering(b"").await).await,
        down("agent: empty answer")
    );
    assert_eq!(
        agent(answering(&[b'u'; 500]).await).await,
        down("agent: answer too long")
    );
    assert_eq!(
        agent(closed_port().await).await,
        down("agent: connection refused")
    );
}

#[tokio::test]
async fn silent_agent_times_out() {
    let port = serve(|stream| async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(stream);
    })
    .await;
    let timeout = Duration::from_millis(400);
    let result = check(&spec(CheckKind::Agent, port, timeout)).await;
    assert_eq!(result.outcome, down("timeout after 0.4s"));
}
