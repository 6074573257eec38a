//! `lvs-director apply` refuses to change the table while a daemon answers
//! on the control socket: it would give every server the daemon failed or
//! drained its configured weight back until the daemon's next sync.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc as std_mpsc;

use lvs_director::control::{self, ControlError, Reply, Request};
use lvs_director::exit::Exit;
use lvs_director::status::Status;
use tokio::sync::mpsc;

/// A fake `lvs-director run`: the real control socket (bind and serve),
/// answering every request with an empty status, until the test ends.
fn fake_daemon(socket: PathBuf) {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = control::bind(&socket).await.unwrap();
            let (tx, mut rx) = mpsc::channel::<control::Pending>(4);
            tokio::spawn(control::serve(listener, tx));
            ready_tx.send(()).unwrap();
            while let Some(p) = rx.recv().await {
                let _ = p.reply.send(Reply::status(Status::default()));
            }
        });
    });
    ready_rx.recv().unwrap();
}

fn answers(socket: &Path) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(control::request(socket, &Request::Status))
        .is_ok_and(|r| r.ok())
}

#[test]
fn apply_is_refused_while_a_daemon_answers_and_allowed_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    // No daemon: no socket file, or one a dead daemon left behind.
    control::may_apply(&socket, false).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    control::may_apply(&socket, false).unwrap();
    std::fs::remove_file(&socket).unwrap();

    fake_daemon(socket.clone());
    assert!(answers(&socket));
    let e = control::may_apply(&socket, false).unwrap_err();
    assert!(
        matches!(e, ControlError::DaemonRunning(ref p) if p == &socket),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("--force") && text.contains(&socket.display().to_string()),
        "{text}"
    );
    control::may_apply(&socket, true).unwrap();
    // The daemon is still there, untouched.
    assert!(answers(&socket));
}

/// The binary's refusal: exit 4 and the message, before any lock or IPVS
/// socket is taken (so this runs without root or the kernel).
#[test]
fn the_apply_command_exits_4_while_a_daemon_answers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let file = dir.path().join("director.toml");
    std::fs::write(
        &file,
        "[[service]]\nvip = \"203.0.113.10\"\nport = 80\n\n[[service.server]]\naddress = \"198.51.100.11\"\n",
    )
    .unwrap();
    fake_daemon(socket.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_lvs-director"))
        .arg("apply")
        .arg(&file)
        .arg("--control")
        .arg(&socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(Exit::Unavailable.code())),
        "{stderr}"
    );
    assert!(
        stderr.contains("a daemon (lvs-director run) answers on"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert!(answers(&socket));
}
