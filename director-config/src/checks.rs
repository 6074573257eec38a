//! The health-check keys of the director file: `[service.check]` (the check
//! of every server of the service) and `[service.server.check]` (one
//! server's override, merged key by key over the service's), resolved into
//! one [`CheckSpec`] per real server.
//!
//! Defaults (documented in director/README.md):
//! - no check table at all: `type = "none"` (the server is always healthy),
//!   so a file written for `lvs-director apply` keeps every server in;
//! - `interval` 5 s, `timeout` 2 s (never more than the interval), `rise` 2,
//!   `fall` 3;
//! - `port`: the server's port; for a port group the group's lowest port; a
//!   port-0 service or an agent check must name it;
//! - http(s): `path` "/", `expect_status` 200-399, `verify_tls` true;
//! - tcp: `half_open` false (a full connect, as keepalived's TCP_CHECK).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::ConfigError;
use crate::check::{CheckKind, CheckSpec, HttpCheck};
use crate::raw::{RawCheck, RawStatus};
use crate::validate::Validator;

pub const DEFAULT_INTERVAL: f64 = 5.0;
pub const DEFAULT_TIMEOUT: f64 = 2.0;
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;
/// Bounds of interval and timeout, in seconds.
pub const MIN_SECONDS: f64 = 0.05;
pub const MAX_SECONDS: f64 = 3600.0;
/// Longest `command`, `path`, `host` or `expect_body` accepted.
const MAX_TEXT: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    None,
    Tcp,
    Http,
    Https,
    Exec,
    Agent,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Https => "https",
            Kind::Exec => "exec",
            Kind::Agent => "agent",
        }
    }
}

/// What the server's check defaults to when the table gives no port.
#[derive(Clone, Copy)]
pub(super) struct PortDefault {
    /// The server's port (0 for a port-0 service).
    pub server_port: u16,
    /// The lowest port of a port group.
    pub group_port: Option<u16>,
}

impl Validator<'_> {
    /// The check of one server: `service` (the service's table) with
    /// `server` (the server's override) merged over it; for an exec check,
    /// also where its program is (an offset in the part).
    pub(super) fn check_spec(
        &self,
        service: Option<&Spanned<RawCheck>>,
        server: Option<&Spanned<RawCheck>>,
        ports: PortDefault,
    ) -> Result<(CheckSpec, Option<usize>), ConfigError> {
        let service_kind = match service {
            None => None,
            Some(t) => Some(self.kind(t)?),
        };
        let kind = match server {
            Some(t) if t.get_ref().kind.is_some() => self.kind(t)?,
            Some(t) => match service_kind {
                Some(k) => k,
                None => self.kind(t)?,
            },
            None => match service_kind {
                Some(k) => k,
                None => return Ok((none_spec(ports), None)),
            },
        };
        let raw = merge(service.map(Spanned::get_ref), server.map(Spanned::get_ref));
        let fallback_span = server.or(service).map_or(0..0, Spanned::span);
        // Keys that only some types take are checked in the table that sets
        // them, against the type in force there; an override that changes
        // the type drops the service's keys that do not apply to it.
        if let (Some(t), Some(k)) = (service, service_kind) {
            self.check_keys(t.get_ref(), k)?;
        }
        if let Some(t) = server {
            self.check_keys(t.get_ref(), kind)?;
        }
        let (interval, timeout) = self.timing(&raw)?;
        let rise = match &raw.rise {
            Some(r) => self.int::<u32>(r, "rise", 1, 100)?,
            None => DEFAULT_RISE,
        };
        let fall = match &raw.fall {
            Some(f) => self.int::<u32>(f, "fall", 1, 100)?,
            None => DEFAULT_FALL,
        };
        let port = self.check_port(&raw, kind, ports, &fallback_span)?;
        let spec = CheckSpec {
            kind: self.check_kind(&raw, kind, fallback_span)?,
            interval: Duration::from_secs_f64(interval),
            timeout: Duration::from_secs_f64(timeout),
            rise,
            fall,
            port,
        };
        let program = match (&spec.kind, &raw.command) {
            (CheckKind::Exec { .. }, Some(cmd)) => cmd.get_ref().first().map(|p| p.span().start),
            _ => None,
        };
        Ok((spec, program))
    }

    /// `interval` and `timeout`, in seconds.
    fn timing(&self, raw: &RawCheck) -> Result<(f64, f64), ConfigError> {
        let interval = match &raw.interval {
            Some(i) => self.seconds(i, "interval")?,
            None => DEFAULT_INTERVAL,
        };
        let timeout = match &raw.timeout {
            Some(t) => {
                let t_s = self.seconds(t, "timeout")?;
                if t_s > interval {
                    return self.err(
                        t.span(),
                        format!("timeout {t_s}s is longer than the interval {interval}s"),
                    );
                }
                t_s
            }
            None => DEFAULT_TIMEOUT.min(interval),
        };
        Ok((interval, timeout))
    }

    /// The port to check; `fallback_span` is where to point when the
    /// merged table has no `type` of its own to point at.
    fn check_port(
        &self,
        raw: &RawCheck,
        kind: Kind,
        ports: PortDefault,
        fallback_span: &Range<usize>,
    ) -> Result<u16, ConfigError> {
        let port = match &raw.port {
            Some(p) => self.int::<u16>(p, "port", 1, 65535)?,
            None => ports.group_port.unwrap_or(ports.server_port),
        };
        let needs_port = matches!(kind, Kind::Tcp | Kind::Http | Kind::Https | Kind::Agent);
        if needs_port && (port == 0 || (kind == Kind::Agent && raw.port.is_none())) {
            let why = if kind == Kind::Agent {
                "an agent check needs `port` (where rs-agent listens)"
            } else {
                "this service has no port (port 0): its check needs `port`"
            };
            let span = raw
                .kind
                .as_ref()
                .map_or(fallback_span.clone(), |k| k.span());
            return self.err(span, why.into());
        }
        Ok(port)
    }

    fn check_kind(
        &self,
        raw: &RawCheck,
        kind: Kind,
        fallback_span: Range<usize>,
    ) -> Result<CheckKind, ConfigError> {
        Ok(match kind {
            Kind::None => CheckKind::None,
            Kind::Tcp if raw.half_open.as_ref().is_some_and(|h| *h.get_ref()) => {
                CheckKind::TcpHalfOpen
            }
            Kind::Tcp => CheckKind::Tcp,
            Kind::Agent => CheckKind::Agent,
            Kind::Http | Kind::Https => CheckKind::Http(self.http(raw, kind == Kind::Https)?),
            Kind::Exec => {
                let Some(cmd) = &raw.command else {
                    let span = raw.kind.as_ref().map_or(fallback_span, |k| k.span());
                    return self.err(span, "an exec check needs `command`".into());
                };
                CheckKind::Exec {
                    command: self.command(cmd)?,
                }
            }
        })
    }

    fn kind(&self, t: &Spanned<RawCheck>) -> Result<Kind, ConfigError> {
        let Some(k) = &t.get_ref().kind else {
            return self.err(
                t.span(),
                "a check needs `type` (tcp, http, https, exec, agent or none)".into(),
            );
        };
        Ok(match k.get_ref().as_str() {
            "none" => Kind::None,
            "tcp" => Kind::Tcp,
            "http" => Kind::Http,
            "https" => Kind::Https,
            "exec" => Kind::Exec,
            "agent" => Kind::Agent,
            other => {
                return self.err(
                    k.span(),
                    format!(
                        "check type {other:?} is not one of \"tcp\", \"http\", \"https\", \"exec\", \"agent\", \"none\""
                    ),
                );
            }
        })
    }

    fn check_keys(&self, t: &RawCheck, kind: Kind) -> Result<(), ConfigError> {
        let http = matches!(kind, Kind::Http | Kind::Https);
        let misplaced = |name: &str, span: Option<Range<usize>>, ok: bool, only: &str| match span {
            Some(s) if !ok => self.err(
                s,
                format!(
                    "{name} is only for {only} checks (this one is {})",
                    kind.name()
                ),
            ),
            _ => Ok(()),
        };
        misplaced(
            "path",
            t.path.as_ref().map(Spanned::span),
            http,
            "http and https",
        )?;
        misplaced(
            "expect_status",
            t.expect_status.as_ref().map(Spanned::span),
            http,
            "http and https",
        )?;
        misplaced(
            "expect_body",
            t.expect_body.as_ref().map(Spanned::span),
            http,
            "http and https",
        )?;
        misplaced(
            "host",
            t.host.as_ref().map(Spanned::span),
            http,
            "http and https",
        )?;
        misplaced(
            "verify_tls",
            t.verify_tls.as_ref().map(Spanned::span),
            kind == Kind::Https,
            "https",
        )?;
        misplaced(
            "ca_file",
            t.ca_file.as_ref().map(Spanned::span),
            kind == Kind::Https,
            "https",
        )?;
        misplaced(
            "command",
            t.command.as_ref().map(Spanned::span),
            kind == Kind::Exec,
            "exec",
        )?;
        misplaced(
            "half_open",
            t.half_open.as_ref().map(Spanned::span),
            kind == Kind::Tcp,
            "tcp",
        )?;
        Ok(())
    }

    fn seconds(&self, v: &Spanned<f64>, name: &str) -> Result<f64, ConfigError> {
        let s = *v.get_ref();
        if !s.is_finite() || !(MIN_SECONDS..=MAX_SECONDS).contains(&s) {
            return self.err(
                v.span(),
                format!("{name} = {s} is out of range ({MIN_SECONDS}..={MAX_SECONDS} seconds)"),
            );
        }
        Ok(s)
    }

    fn text(&self, v: &Spanned<String>, name: &str) -> Result<String, ConfigError> {
        let s = v.get_ref();
        if s.is_empty() || s.len() > MAX_TEXT || s.chars().any(char::is_control) {
            return self.err(
                v.span(),
                format!("{name} must be 1 to {MAX_TEXT} bytes without control characters"),
            );
        }
        Ok(s.clone())
    }

    fn http(&self, raw: &RawCheck, tls: bool) -> Result<HttpCheck, ConfigError> {
        let path = match &raw.path {
            Some(p) => {
                let path = self.text(p, "path")?;
                if !path.starts_with('/') || path.contains(' ') {
                    return self.err(
                        p.span(),
                        format!("path {path:?} must start with / and have no spaces"),
                    );
                }
                path
            }
            None => "/".to_string(),
        };
        let expect_status = match &raw.expect_status {
            None => vec![(200, 399)],
            Some(list) if list.get_ref().is_empty() => {
                return self.err(list.span(), "expect_status is empty".into());
            }
            Some(list) => {
                let mut out = Vec::with_capacity(list.get_ref().len());
                for item in list.get_ref() {
                    out.push(self.status(item)?);
                }
                out
            }
        };
        let expect_body = match &raw.expect_body {
            Some(b) => Some(self.text(b, "expect_body")?),
            None => None,
        };
        let host = match &raw.host {
            Some(h) => {
                let host = self.text(h, "host")?;
                if host.contains(char::is_whitespace) {
                    return self.err(h.span(), format!("host {host:?} has whitespace"));
                }
                Some(host)
            }
            None => None,
        };
        let ca_file = match &raw.ca_file {
            Some(c) => Some(self.resolve_path(&self.text(c, "ca_file")?)),
            None => None,
        };
        Ok(HttpCheck {
            tls,
            path,
            expect_status,
            expect_body,
            host,
            verify_tls: raw.verify_tls.as_ref().is_none_or(|v| *v.get_ref()),
            ca_file,
        })
    }

    fn status(&self, item: &Spanned<RawStatus>) -> Result<(u16, u16), ConfigError> {
        let bad = || {
            self.err(
                item.span(),
                "expect_status takes codes 100..=599 (200) or ranges (\"200-299\")".into(),
            )
        };
        let (lo, hi) = match item.get_ref() {
            RawStatus::Code(c) => (*c, *c),
            RawStatus::Range(r) => {
                let Some((a, b)) = r.split_once('-') else {
                    return bad();
                };
                match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => return bad(),
                }
            }
        };
        if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
            return bad();
        }
        Ok((lo as u16, hi as u16))
    }

    fn command(&self, cmd: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<String>, ConfigError> {
        let args = cmd.get_ref();
        if args.is_empty() || args.len() > 64 {
            return self.err(
                cmd.span(),
                "command takes 1 to 64 strings: the program and its arguments".into(),
            );
        }
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.text(a, "a command argument")?);
        }
        if !out[0].starts_with('/') {
            return self.err(
                args[0].span(),
                format!(
                    "the program {:?} must be an absolute path (no shell, no PATH search)",
                    out[0]
                ),
            );
        }
        Ok(out)
    }

    /// A path of the file, relative to the configuration's directory.
    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        self.path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

fn none_spec(ports: PortDefault) -> CheckSpec {
    CheckSpec {
        kind: CheckKind::None,
        interval: Duration::from_secs_f64(DEFAULT_INTERVAL),
        timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT),
        rise: DEFAULT_RISE,
        fall: DEFAULT_FALL,
        port: ports.group_port.unwrap_or(ports.server_port),
    }
}

/// The server's keys over the service's.
fn merge(service: Option<&RawCheck>, server: Option<&RawCheck>) -> RawCheck {
    match (service, server) {
        (None, None) => RawCheck::default(),
        (Some(s), None) => s.clone(),
        (None, Some(o)) => o.clone(),
        (Some(s), Some(o)) => {
            let o = o.clone();
            RawCheck {
                kind: o.kind.or_else(|| s.kind.clone()),
                interval: o.interval.or_else(|| s.interval.clone()),
                timeout: o.timeout.or_else(|| s.timeout.clone()),
                rise: o.rise.or_else(|| s.rise.clone()),
                fall: o.fall.or_else(|| s.fall.clone()),
                port: o.port.or_else(|| s.port.clone()),
                path: o.path.or_else(|| s.path.clone()),
                expect_status: o.expect_status.or_else(|| s.expect_status.clone()),
                expect_body: o.expect_body.or_else(|| s.expect_body.clone()),
                host: o.host.or_else(|| s.host.clone()),
                command: o.command.or_else(|| s.command.clone()),
                verify_tls: o.verify_tls.or_else(|| s.verify_tls.clone()),
                ca_file: o.ca_file.or_else(|| s.ca_file.clone()),
                half_open: o.half_open.or_else(|| s.half_open.clone()),
            }
        }
    }
}
