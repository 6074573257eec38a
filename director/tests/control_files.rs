//! The files of the control socket: the socket itself (only a stale socket
//! is ever removed), the admin drains file (written atomically, never
//! through a link) and a daemon that refuses to start on an unreadable
//! drains file rather than forget its drains.

use std::collections::HashSet;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lvs_director::control::{self, ControlError};
use lvs_director::exit::Exit;
use lvs_ipvs::table::ServiceKey;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn bind_replaces_a_stale_socket_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();

    // A regular file given by mistake: refused and kept.
    let file = dir.path().join("foo");
    std::fs::write(&file, "keep me").unwrap();
    let e = rt.block_on(control::bind(&file)).unwrap_err();
    assert!(
        matches!(e, ControlError::NotASocket(_, "a regular file")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("only a socket left by a stopped daemon"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // A link, even to a stale socket: refused, the link and its target kept.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let link = dir.path().join("link.sock");
    symlink(&stale, &link).unwrap();
    let e = rt.block_on(control::bind(&link)).unwrap_err();
    assert!(
        matches!(e, ControlError::NotASocket(_, "a symbolic link")),
        "{e}"
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let link_to_file = dir.path().join("etc-foo.sock");
    symlink(&file, &link_to_file).unwrap();
    assert!(rt.block_on(control::bind(&link_to_file)).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    // A directory: refused.
    let sub = dir.path().join("sub.sock");
    std::fs::create_dir(&sub).unwrap();
    let e = rt.block_on(control::bind(&sub)).unwrap_err();
    assert!(
        matches!(e, ControlError::NotASocket(_, "a directory")),
        "{e}"
    );

    // A socket left by a dead daemon is replaced; a live one is not.
    rt.block_on(async {
        let live = control::bind(&stale).await.unwrap();
        let mode = std::fs::metadata(&stale).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = control::bind(&stale).await.unwrap_err();
        assert!(matches!(e, ControlError::InUse(_)), "{e}");
        drop(live);
    });
}

fn drains() -> HashSet<lvs_director::cluster::DrainKey> {
    HashSet::from([(
        ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80),
        "198.51.100.11".parse().unwrap(),
        80,
    )])
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_drains_file_is_written_0600_and_never_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("shadow");
    std::fs::write(&victim, "root:*:1:0:99999:7:::\n").unwrap();
    let path = control::drains_path(&dir.path().join("control.sock"));
    // Links at the final name and at the temporary name the daemon used
    // before (`control.drains.tmp`).
    symlink(&victim, &path).unwrap();
    symlink(&victim, path.with_extension("tmp")).unwrap();
    control::save_drains(&path, &drains()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root:*:1:0:99999:7:::\n"
    );
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(control::load_drains(&path).unwrap(), drains());
    assert_eq!(
        names(dir.path()),
        ["control.drains.json", "control.drains.tmp", "shadow"]
    );
}

#[test]
fn an_unreadable_drains_file_is_an_error_and_a_missing_one_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = control::drains_path(&dir.path().join("control.sock"));
    assert!(control::load_drains(&path).unwrap().is_empty());
    std::fs::write(&path, "[{\"service\": \"tcp:203.0.113.10:80\"").unwrap();
    let e = control::load_drains(&path).unwrap_err();
    assert!(matches!(e, ControlError::State { .. }), "{e}");
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    assert!(control::load_drains(&path).is_err());
}

/// `run` with a drains file it cannot read exits 2 with the file's name,
/// before it opens IPVS (so the table is as it was, and this needs neither
/// root nor the kernel). Before, it started without the drains: every
/// server drained by hand went back into service.
#[test]
fn run_refuses_to_start_on_an_unreadable_drains_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("director.toml");
    std::fs::write(
        &config,
        "[[service]]\nvip = \"203.0.113.10\"\nport = 80\n\n[[service.server]]\naddress = \"198.51.100.11\"\n",
    )
    .unwrap();
    let socket = dir.path().join("control.sock");
    let drains = control::drains_path(&socket);
    std::fs::write(&drains, "not json").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvs-director"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--control")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lvs-director run started despite an unreadable drains file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        status.code(),
        Some(i32::from(Exit::Usage.code())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("drain state {}", drains.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&drains).unwrap(), "not json");
}
