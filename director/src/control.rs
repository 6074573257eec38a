//! The run-time control socket of `lvs-director run`: a unix stream socket
//! (mode 0600, peers must be root: SO_PEERCRED), one JSON request line in,
//! one JSON reply line out. Requests are at most [`MAX_REQUEST`] bytes and
//! each connection has [`IO_TIMEOUT`] to send its request and read its
//! reply; at most [`MAX_CLIENTS`] are served at once.
//!
//! Requests ([`Request`]): `{"cmd":"status"}`,
//! `{"cmd":"drain","service":S,"server":A}`, `{"cmd":"undrain",...}`,
//! `{"cmd":"withdraw"}`, `{"cmd":"announce"}`. Replies ([`Reply`]):
//! `{"ok":true,...}` (the [`Status`], a count of services changed, or a
//! message) or `{"ok":false,"error":"..."}`.
//!
//! Admin drains are kept in a small JSON file next to the socket
//! (`control.sock` -> `control.drains.json`), so they outlive a restart of
//! the daemon (not a reboot: /run is tmpfs, and so is the table).

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use lvs_ipvs::table::{Family, Protocol, ServiceKey};

use crate::cluster::DrainKey;
use crate::status::Status;

pub const DEFAULT_CONTROL: &str = "/run/lvs-director/control.sock";
pub const MAX_REQUEST: u64 = 4096;
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_CLIENTS: usize = 16;
/// Longest reply a client reads (a status of a very large director).
pub const MAX_REPLY: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("control socket {0}: another lvs-director answers there")]
    InUse(PathBuf),
    #[error(
        "control socket {0}: {1} is in the way (only a socket left by a stopped daemon is \
         replaced): remove it or choose another --control"
    )]
    NotASocket(PathBuf, &'static str),
    #[error("control socket {0}: no reply in time")]
    Timeout(PathBuf),
    #[error("control socket {path}: bad reply: {source}")]
    Reply {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("drain state {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error(
        "a daemon (lvs-director run) answers on {0}: an apply now would give the servers it \
         failed or drained their configured weight back until its next sync; reload it \
         (SIGHUP) or stop it first, or pass --force"
    )]
    DaemonRunning(PathBuf),
}

/// The default socket: one per network namespace.
pub fn default_path(netns: Option<&str>) -> PathBuf {
    match netns {
        None => PathBuf::from(DEFAULT_CONTROL),
        Some(ns) => PathBuf::from(format!("/run/lvs-director/control-{ns}.sock")),
    }
}

/// Where the admin drains of the daemon behind `socket` are kept.
pub fn drains_path(socket: &Path) -> PathBuf {
    socket.with_extension("drains.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Drain {
        service: String,
        server: String,
    },
    Undrain {
        service: String,
        server: String,
    },
    /// The whole director out of service: every VIP off the announce
    /// interface, the health file unhealthy, until `Announce`.
    Withdraw,
    Announce,
}

/// The daemon's answer to a [`Request`]: every reply says `"ok"`, and the
/// client tells them apart by their fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Refused {
        ok: OkFlag<false>,
        error: String,
    },
    /// `drain` and `undrain`: how many services changed.
    Changed {
        ok: OkFlag<true>,
        changed: usize,
    },
    /// `withdraw` and `announce`.
    Done {
        ok: OkFlag<true>,
        message: String,
    },
    Status {
        ok: OkFlag<true>,
        #[serde(flatten)]
        status: Box<Status>,
    },
}

impl Reply {
    pub fn refused(error: impl Into<String>) -> Reply {
        Reply::Refused {
            ok: OkFlag,
            error: error.into(),
        }
    }

    pub fn changed(changed: usize) -> Reply {
        Reply::Changed {
            ok: OkFlag,
            changed,
        }
    }

    pub fn done(message: impl Into<String>) -> Reply {
        Reply::Done {
            ok: OkFlag,
            message: message.into(),
        }
    }

    pub fn status(status: Status) -> Reply {
        Reply::Status {
            ok: OkFlag,
            status: Box::new(status),
        }
    }

    /// The daemon did what was asked.
    pub fn ok(&self) -> bool {
        !matches!(self, Reply::Refused { .. })
    }
}

/// `"ok": OK` on the wire, and only that value when read: it is what tells
/// a refusal from an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OkFlag<const OK: bool>;

impl<const OK: bool> Serialize for OkFlag<OK> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(OK)
    }
}

impl<'de, const OK: bool> Deserialize<'de> for OkFlag<OK> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? == OK {
            Ok(OkFlag)
        } else {
            Err(D::Error::custom(format!("\"ok\" is not {OK}")))
        }
    }
}

/// A request waiting for the daemon's answer.
pub struct Pending {
    pub request: Request,
    pub reply: oneshot::Sender<Reply>,
}

/// Binds the socket: mode 0600 in a 0700 directory created if missing. A
/// socket file left by a dead daemon is replaced; one that answers is not,
/// nor is anything else at the path (a file given by mistake to
/// `--control`, a link): the daemon runs as root and must not delete it.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            let kind = if t.is_socket() {
                None
            } else if t.is_symlink() {
                Some("a symbolic link")
            } else if t.is_dir() {
                Some("a directory")
            } else if t.is_file() {
                Some("a regular file")
            } else {
                Some("a special file")
            };
            if let Some(kind) = kind {
                return Err(ControlError::NotASocket(path.to_path_buf(), kind));
            }
            if UnixStream::connect(path).await.is_ok() {
                return Err(ControlError::InUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
    }
    // Created 0600 from the start (no window with a wider mode).
    let old = crate::sys::umask(0o177);
    let l = UnixListener::bind(path);
    crate::sys::umask(old);
    let l = l.map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(l)
}

/// Accepts connections until the listener fails; each request goes to the
/// daemon through `tx`.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // EMFILE and the like: back off a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream); // too many at once
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(IO_TIMEOUT * 2, handle(stream, tx)).await;
            drop(permit);
        });
    }
}

async fn handle(stream: UnixStream, tx: mpsc::Sender<Pending>) -> io::Result<()> {
    let peer_ok = stream
        .peer_cred()
        .map(|c| c.uid() == 0 || c.uid() == crate::sys::euid());
    let (read, mut write) = stream.into_split();
    let reply = if !peer_ok.unwrap_or(false) {
        Reply::refused("permission denied: the control socket is for root")
    } else {
        let mut line = String::new();
        let mut reader = BufReader::new(read.take(MAX_REQUEST));
        match tokio::time::timeout(IO_TIMEOUT, reader.read_line(&mut line)).await {
            Err(_) => Reply::refused("no request in time"),
            Ok(Err(e)) => Reply::refused(format!("reading the request: {e}")),
            Ok(Ok(_)) if !line.ends_with('\n') => Reply::refused(format!(
                "a request is one line of at most {MAX_REQUEST} bytes"
            )),
            Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
                Err(e) => Reply::refused(format!("bad request: {e}")),
                Ok(request) => {
                    let (rtx, rrx) = oneshot::channel();
                    if tx
                        .send(Pending {
                            request,
                            reply: rtx,
                        })
                        .await
                        .is_err()
                    {
                        Reply::refused("the daemon is stopping")
                    } else {
                        match tokio::time::timeout(IO_TIMEOUT, rrx).await {
                            Ok(Ok(v)) => v,
                            _ => Reply::refused("the daemon did not answer in time"),
                        }
                    }
                }
            },
        }
    };
    let mut text = serde_json::to_string(&reply).expect("a reply serializes");
    text.push('\n');
    tokio::time::timeout(IO_TIMEOUT, write.write_all(text.as_bytes()))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// Whether `lvs-director apply` may change the table: not while a daemon
/// listens on `socket` (it owns the weights: an apply would put back the
/// configured weight of every server it failed), unless `force`.
///
/// A connection accepted is a daemon: a socket file left by a dead one
/// refuses connections, and no file at all is no daemon. Anything else
/// (EACCES...) cannot tell, so it refuses too and says why.
pub fn may_apply(socket: &Path, force: bool) -> Result<(), ControlError> {
    if force {
        return Ok(());
    }
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Err(ControlError::DaemonRunning(socket.to_path_buf())),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(ControlError::Io {
            path: socket.to_path_buf(),
            source: io::Error::new(
                source.kind(),
                format!("{source} (is a daemon running? --force applies anyway)"),
            ),
        }),
    }
}

/// Client side: sends one request, returns the reply.
pub async fn request(path: &Path, req: &Request) -> Result<Reply, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let exchange = async {
        let mut s = UnixStream::connect(path).await.map_err(io_err)?;
        let mut text = serde_json::to_string(req).expect("a request serializes");
        text.push('\n');
        s.write_all(text.as_bytes()).await.map_err(io_err)?;
        let mut reply = String::new();
        BufReader::new(s.take(MAX_REPLY))
            .read_line(&mut reply)
            .await
            .map_err(io_err)?;
        serde_json::from_str(&reply).map_err(|source| ControlError::Reply {
            path: path.to_path_buf(),
            source,
        })
    };
    tokio::time::timeout(IO_TIMEOUT * 2, exchange)
        .await
        .map_err(|_| ControlError::Timeout(path.to_path_buf()))?
}

/// A service named on the command line: `tcp 203.0.113.10:80`,
/// `tcp:203.0.113.10:80`, `203.0.113.10:80` (tcp), `udp:[2001:db8::1]:53`,
/// `fwmark 11`, `fwmark:11`, `fwmark6:11`; `*` or `all`: every service
/// (`None`).
pub fn parse_service(text: &str) -> Result<Option<ServiceKey>, String> {
    let t = text.trim();
    if t == "*" || t == "all" {
        return Ok(None);
    }
    let bad = || {
        format!(
            "{text:?} is not a service (tcp:VIP:PORT, udp:VIP:PORT, sctp:VIP:PORT, VIP:PORT, fwmark:MARK, fwmark6:MARK or *)"
        )
    };
    let t = t
        .strip_suffix(" (IPv6)")
        .map_or(t.to_string(), |m| m.replacen("fwmark", "fwmark6", 1));
    let (kind, rest) = match t.split_once([' ', ':']) {
        Some((k @ ("tcp" | "udp" | "sctp" | "fwmark" | "fwmark6"), rest)) => (k, rest.trim()),
        _ => ("tcp", t.as_str()),
    };
    let protocol = match kind {
        "fwmark" | "fwmark6" => {
            let mark: u32 = rest.parse().map_err(|_| bad())?;
            let family = if kind == "fwmark6" {
                Family::Inet6
            } else {
                Family::Inet
            };
            return Ok(Some(ServiceKey::fwmark(family, mark)));
        }
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => Protocol::Tcp,
    };
    let sa: SocketAddr = rest.parse().map_err(|_| bad())?;
    Ok(Some(ServiceKey::Addr {
        protocol,
        addr: sa.ip(),
        port: sa.port(),
    }))
}

/// A server named on the command line: `ADDRESS` (any port) or
/// `ADDRESS:PORT` (`[V6]:PORT`).
pub fn parse_server(text: &str) -> Result<(IpAddr, Option<u16>), String> {
    let t = text.trim();
    if let Ok(a) = t.parse::<IpAddr>() {
        return Ok((a, None));
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    Err(format!(
        "{text:?} is not a real server (ADDRESS or ADDRESS:PORT)"
    ))
}

#[derive(Serialize, Deserialize)]
struct DrainEntry {
    service: String,
    server: String,
}

/// Reads the drains file; a missing file is no drains. Any other failure
/// (unreadable, not JSON, a bad entry) is an error: the daemon refuses to
/// start on it rather than put drained servers back into service.
pub fn load_drains(path: &Path) -> Result<HashSet<DrainKey>, ControlError> {
    let err = |message: String| ControlError::State {
        path: path.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(err(e.to_string())),
    };
    let entries: Vec<DrainEntry> = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let mut out = HashSet::with_capacity(entries.len());
    for e in entries {
        let key = parse_service(&e.service)
            .map_err(&err)?
            .ok_or_else(|| err("`*` in the file".into()))?;
        let (addr, port) = parse_server(&e.server).map_err(&err)?;
        out.insert((key, addr, port.unwrap_or(key.port())));
    }
    Ok(out)
}

/// Writes the drains file atomically (temporary file, fsync, rename, fsync
/// of the directory).
pub fn save_drains(path: &Path, drains: &HashSet<DrainKey>) -> Result<(), ControlError> {
    let mut entries: Vec<DrainEntry> = drains
        .iter()
        .map(|(k, a, p)| DrainEntry {
            service: k.to_string(),
            server: lvs_ipvs::table::fmt_addr_port(a, *p),
        })
        .collect();
    entries.sort_by(|a, b| (&a.service, &a.server).cmp(&(&b.service, &b.server)));
    let text = serde_json::to_string_pretty(&entries).expect("serializes");
    // 0600 like the socket; a link planted at the name is replaced, not
    // followed (the daemon is root).
    lvs_common::file::replace(path, text.as_bytes(), 0o600).map_err(|e| ControlError::State {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_servers_parse() {
        let v4: IpAddr = "203.0.113.10".parse().unwrap();
        let tcp = Some(ServiceKey::tcp(v4, 80));
        for t in [
            "tcp 203.0.113.10:80",
            "tcp:203.0.113.10:80",
            "203.0.113.10:80",
        ] {
            assert_eq!(parse_service(t).unwrap(), tcp, "{t}");
        }
        assert_eq!(
            parse_service("udp:[2001:db8::1]:53").unwrap(),
            Some(ServiceKey::udp("2001:db8::1".parse().unwrap(), 53))
        );
        let m11 = Some(ServiceKey::fwmark(Family::Inet, 11));
        assert_eq!(parse_service("fwmark 11").unwrap(), m11);
        assert_eq!(parse_service("fwmark:11").unwrap(), m11);
        let m6 = ServiceKey::fwmark(Family::Inet6, 11);
        assert_eq!(parse_service("fwmark6:11").unwrap(), Some(m6));
        // Display round trips.
        assert_eq!(parse_service(&m6.to_string()).unwrap(), Some(m6));
        assert_eq!(parse_service("*").unwrap(), None);
        assert!(parse_service("tcp:nope:80").is_err());
        assert_eq!(
            parse_server("198.51.100.11").unwrap(),
            ("198.51.100.11".parse().unwrap(), None)
        );
        assert_eq!(parse_server("[2001:db8::1]:80").unwrap().1, Some(80));
        assert!(parse_server("rs1").is_err());
    }

    /// The wire form of each reply, as the daemon wrote it before replies
    /// were typed, and back.
    #[test]
    fn replies_on_the_wire() {
        for (reply, text) in [
            (Reply::refused("no"), r#"{"ok":false,"error":"no"}"#),
            (Reply::changed(2), r#"{"ok":true,"changed":2}"#),
            (Reply::done("back"), r#"{"ok":true,"message":"back"}"#),
        ] {
            assert_eq!(serde_json::to_string(&reply).unwrap(), text);
            assert_eq!(
                serde_json::from_str::<Reply>(text).unwrap(),
                reply,
                "{text}"
            );
        }
        assert!(!Reply::refused("no").ok() && Reply::changed(0).ok());
        let status = Reply::status(Status::default());
        let text = serde_json::to_string(&status).unwrap();
        assert!(text.starts_with(r#"{"ok":true,"config":"","#), "{text}");
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), status);
        // An error is never read as an answer.
        assert!(serde_json::from_str::<Reply>(r#"{"ok":true,"error":"no"}"#).is_err());
        assert!(serde_json::from_str::<Reply>(r#"{"ok":false,"changed":1}"#).is_err());
    }

    #[test]
    fn drains_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("lvs-director-drains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = drains_path(&dir.join("control.sock"));
        assert_eq!(path.file_name().unwrap(), "control.drains.json");
        assert!(load_drains(&path).unwrap().is_empty());
        let mut d = HashSet::new();
        d.insert((
            ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80),
            "198.51.100.11".parse().unwrap(),
            80,
        ));
        d.insert((
            ServiceKey::fwmark(Family::Inet6, 7),
            "2001:db8::2".parse().unwrap(),
            0,
        ));
        save_drains(&path, &d).unwrap();
        assert_eq!(load_drains(&path).unwrap(), d);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
