//! ipvsadm's rules text: the command lines `ipvsadm -R` reads and the
//! output of `ipvsadm -S -n`.
//!
//! Parsing follows ipvsadm 1.31's option processing (popt): the first
//! option is the command, options are applied left to right (so `-6` must
//! follow `-f`, and a later `-t` of an IPv6 address resets the netmask to
//! 128), short options can be bundled (`-At`) or carry their value
//! (`-w3`), long options take `--name value` or `--name=value`, and `-p`
//! takes its optional timeout only from a following word that does not
//! start with `-`. The defaults are ipvsadm's: scheduler wlc, weight 1,
//! direct routing, bare `-p` = 360 seconds, full persistence netmask; for
//! `-g` and `-i` on an address service the real server port is the
//! service port.

use std::fmt;
use std::fmt::Write as _;

use crate::listing::{netmask_text, sched_flag_names, table_order};
use crate::op::Op;
use crate::table::{
    Destination, Forward, KeyStyle, Service, ServiceFlags, ServiceKey, TUN_FLAG_CSUM,
    TUN_FLAG_REMCSUM, TunnelType, fmt_addr_port,
};

pub mod argv;
pub mod options;
mod parse;

pub use options::parse_sched_flags;
use parse::parse_args;

/// ipvsadm's default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// Timeout of a bare `-p`.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// ipvsadm's upper bound for `-p` (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;

/// A rules line that does not parse, or breaks ipvsadm's rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RulesError {
    /// 1-based line number (0 for a single command line).
    pub line: usize,
    pub message: String,
}

/// A parsed rules line: its number and its change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub op: Op,
}

/// Parse a whole rules text (what `ipvsadm -R` reads). Blank lines and
/// lines starting with `#` are skipped. Every line is checked; the first
/// bad line is reported.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RulesError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let words = split_words(raw).map_err(|message| RulesError { line, message })?;
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        let op = parse_args(&words).map_err(|message| RulesError { line, message })?;
        out.push(Rule { line, op });
    }
    Ok(out)
}

/// Parse one command line (for example `-A -t 10.0.0.1:80 -s rr`).
pub fn parse_command(line: &str) -> Result<Op, RulesError> {
    let words = split_words(line).map_err(|message| RulesError { line: 0, message })?;
    parse_args(&words).map_err(|message| RulesError { line: 0, message })
}

/// Parse one command given as separate words (an argv without the
/// program name), e.g. `["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2"]`.
pub fn parse_words(words: &[String]) -> Result<Op, RulesError> {
    parse_args(words).map_err(|message| RulesError { line: 0, message })
}

/// Split a line into words on blanks, honouring double and single quotes
/// and backslash escapes.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The options of a service line after the service (` -s rr -p 30 ...`),
/// in ipvsadm's order.
fn service_options(svc: &Service) -> String {
    let mut s = format!(" -s {}", svc.scheduler);
    if svc.is_persistent() {
        s.push_str(&format!(" -p {}", svc.timeout));
        if let Some(m) = netmask_text(svc) {
            s.push_str(&format!(" -M {m}"));
        }
    }
    if let Some(pe) = &svc.pe_name {
        s.push_str(&format!(" --pe {pe}"));
    }
    if svc.flags.has(ServiceFlags::ONEPACKET) {
        s.push_str(" -o");
    }
    let flags = sched_flag_names(&svc.scheduler, svc.flags);
    if !flags.is_empty() {
        s.push_str(&format!(" -b {}", flags.join(",")));
    }
    s
}

fn forward_switch(f: Forward) -> &'static str {
    match f {
        Forward::Masquerade => "-m",
        Forward::Tunnel => "-i",
        Forward::Route | Forward::Local => "-g",
        Forward::Bypass => "(null)",
    }
}

fn tunnel_options(d: &Destination) -> String {
    if d.forward != Forward::Tunnel {
        return String::new();
    }
    let csum = if d.tun_flags & TUN_FLAG_REMCSUM != 0 {
        "--tun-remcsum"
    } else if d.tun_flags & TUN_FLAG_CSUM != 0 {
        "--tun-csum"
    } else {
        "--tun-nocsum"
    };
    match d.tun_type {
        TunnelType::Ipip => " --tun-type ipip".into(),
        TunnelType::Gue => format!(" --tun-type gue --tun-port {} {csum}", d.tun_port),
        TunnelType::Gre => format!(" --tun-type gre {csum}"),
    }
}

/// A destination line exactly as `ipvsadm -S -n` prints it (no thresholds:
/// ipvsadm does not save them).
pub fn save_dest_line(key: &ServiceKey, d: &Destination) -> String {
    format!(
        "-a {} -r {} {} -w {}{}",
        key.name(KeyStyle::Rules),
        fmt_addr_port(&d.addr, d.port),
        forward_switch(d.forward),
        d.weight as i32,
        tunnel_options(d)
    )
}

/// `ipvsadm -S -n` for this table (sorted the way ipvsadm sorts).
pub fn render_save(table: &[(Service, Vec<Destination>)]) -> String {
    let (services, dests) = table_order(table);
    let mut out = String::with_capacity(table.len() * 200);
    for i in services {
        let (svc, ds) = &table[i];
        let _ = writeln!(
            out,
            "-A {}{}",
            svc.key.name(KeyStyle::Rules),
            service_options(svc)
        );
        for &j in &dests[i] {
            out.push_str(&save_dest_line(&svc.key, &ds[j]));
            out.push('\n');
        }
    }
    out
}

/// An [`Op`] prints as the rules line that parses back to it. Unlike
/// `ipvsadm -S`, destination thresholds are kept (`-x`, `-y`).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(s) => {
                write!(
                    f,
                    "-A {}{}",
                    s.key.name(KeyStyle::Rules),
                    service_options(s)
                )
            }
            Op::EditService(s) => {
                write!(
                    f,
                    "-E {}{}",
                    s.key.name(KeyStyle::Rules),
                    service_options(s)
                )
            }
            Op::DeleteService(k) => write!(f, "-D {}", k.name(KeyStyle::Rules)),
            Op::AddDestination(k, d) | Op::EditDestination(k, d) => {
                let flag = if matches!(self, Op::AddDestination(..)) {
                    "-a"
                } else {
                    "-e"
                };
                write!(
                    f,
                    "{flag} {} -r {} {} -w {}",
                    k.name(KeyStyle::Rules),
                    fmt_addr_port(&d.addr, d.port),
                    forward_switch(d.forward),
                    d.weight
                )?;
                if d.upper_threshold != 0 {
                    write!(f, " -x {}", d.upper_threshold)?;
                }
                if d.lower_threshold != 0 {
                    write!(f, " -y {}", d.lower_threshold)?;
                }
                f.write_str(&tunnel_options(d))
            }
            Op::DeleteDestination(k, d) => write!(
                f,
                "-d {} -r {}",
                k.name(KeyStyle::Rules),
                fmt_addr_port(&d.addr, d.port)
            ),
            Op::Flush => f.write_str("-C"),
            Op::Zero(None) => f.write_str("-Z"),
            Op::Zero(Some(k)) => write!(f, "-Z {}", k.name(KeyStyle::Rules)),
            Op::SetTimeouts(t) => write!(f, "--set {} {} {}", t.tcp, t.tcp_fin, t.udp),
        }
    }
}

/// The table as add operations (what restoring `render_save` output does).
pub fn table_to_ops(table: &[(Service, Vec<Destination>)]) -> Vec<Op> {
    let mut out = Vec::new();
    for (s, ds) in table {
        out.push(Op::AddService(s.clone()));
        for d in ds {
            out.push(Op::AddDestination(s.key, d.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
