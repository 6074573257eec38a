//! Reading the file part by part. A `[[service]]` header at the start of a
//! line starts a part; the text before the first one is the prelude. Each
//! part is parsed and validated on its own, then the checks that span
//! services (duplicate keys and ports, derived marks) run over all of them.
//!
//! Why: the TOML parser builds a tree of the whole text with a span on every
//! value, some forty times the file's size (56 MB for the 1.4 MB file of
//! 2,000 services x 10 servers); part by part, one service's tree exists at a
//! time. And a reload ([`load_reusing`]) validates again only the parts whose
//! text changed: the others' services are taken from the running
//! configuration, so reloading a large file for one edit costs a scan of the
//! text, not a parse of all of it.
//!
//! The parts are cut where TOML itself starts an array-of-tables element of
//! `service`, found with the TOML lexer (a header inside a multi-line string
//! is one string token, not a header). A file that is not valid TOML as a
//! whole is invalid part by part as well; where the two would differ, it is
//! in the message: a table given twice across parts is reported by this
//! module (`[announce] is already defined on line N`).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use lvs_common::config_error::LineIndex;
use lvs_ipvs::table::{Family, Protocol, ServiceKey};
use toml::Spanned;
use toml_parser::Source;
use toml_parser::lexer::TokenKind;

use crate::ConfigError;
use crate::node::NodeConfig;
use crate::raw::{RawAnnounce, RawConfig, RawService, RawSync, RawSysctl};
use crate::service::ServiceParts;
use crate::validate::Validator;
use crate::validated::{DirectorConfig, ServiceConfig, derived_mark, protocol_name};

/// What a load keeps so that the next one can skip the parts whose text did
/// not change: a digest of each part's text (not the text: 1.4 MB at 20,000
/// servers, held for the daemon's lifetime), and what each service of the
/// resulting configuration needs for the checks across services.
#[derive(Debug, Clone, Default)]
pub struct Reuse {
    parts: Vec<PartMemo>,
    /// One per service of the configuration, in its order.
    metas: Vec<ServiceMeta>,
}

#[derive(Debug, Clone)]
struct PartMemo {
    /// Where the part starts in the text it was read from.
    start: usize,
    /// Of the part's text (see [`digest`]).
    digest: u128,
    /// In the configuration's services.
    services: Range<usize>,
    /// Only parts made of services alone are taken over: a part that also
    /// sets a director-wide table is parsed again.
    reusable: bool,
}

/// A service's positions relative to the start of its part.
#[derive(Debug, Clone)]
struct ServiceMeta {
    protocol: Protocol,
    start: usize,
    key_offset: usize,
    port_offsets: Vec<(u16, usize)>,
    /// A port group whose mark is derived (once every explicit mark is known).
    auto_mark: bool,
}

/// Reads and validates the director configuration at `path`.
pub fn load(path: &Path) -> Result<DirectorConfig, ConfigError> {
    load_reusing(path, None).map(|(config, _)| config)
}

/// [`load`], taking over the services of the parts whose text is the same
/// as in `previous` (the [`Reuse`] of the load that produced those
/// services, and the services themselves).
pub fn load_reusing(
    path: &Path,
    previous: Option<(&Reuse, &[Arc<ServiceConfig>])>,
) -> Result<(DirectorConfig, Reuse), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::whole_file(path, format!("cannot read configuration: {e}")))?;
    let (config, parts, metas) = parse_parts(path, &text, previous)?;
    Ok((config, Reuse { parts, metas }))
}

/// Parses and validates configuration text; `path` is used in messages.
pub fn parse(path: &Path, text: &str) -> Result<DirectorConfig, ConfigError> {
    parse_reusing(path, text, None).map(|(config, _)| config)
}

/// [`parse`], reusing as [`load_reusing`] does.
pub fn parse_reusing(
    path: &Path,
    text: &str,
    previous: Option<(&Reuse, &[Arc<ServiceConfig>])>,
) -> Result<(DirectorConfig, Reuse), ConfigError> {
    let (config, parts, metas) = parse_parts(path, text, previous)?;
    Ok((config, Reuse { parts, metas }))
}

type Parts = (DirectorConfig, Vec<PartMemo>, Vec<ServiceMeta>);

fn parse_parts(
    path: &Path,
    text: &str,
    previous: Option<(&Reuse, &[Arc<ServiceConfig>])>,
) -> Result<Parts, ConfigError> {
    let lines = LineIndex::new(text);
    let v = Validator {
        path,
        lines: &lines,
        base: 0,
    };
    let previous = previous.filter(|(r, s)| r.metas.len() == s.len());
    let old: HashMap<u128, &PartMemo> = previous
        .iter()
        .flat_map(|(r, _)| r.parts.iter().filter(|p| p.reusable).map(|p| (p.digest, p)))
        .collect();

    // Shared with the previous configuration where taken over: a reload
    // holds one copy of what did not change.
    let mut services: Vec<Arc<ServiceConfig>> = Vec::new();
    let mut metas: Vec<ServiceMeta> = Vec::new();
    let mut parts: Vec<PartMemo> = Vec::new();
    let mut node = NodeConfig::default();
    let mut node_seen = NodeSeen::default();
    let heads = service_headers(text);
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(heads.iter().copied())
        .chain(std::iter::once(text.len()))
        .collect();
    for (k, w) in bounds.windows(2).enumerate() {
        let range = w[0]..w[1];
        let digest = digest(&text[range.clone()]);
        let first = services.len();
        if k > 0
            && let (Some(memo), Some((reuse, old_services))) = (old.get(&digest), previous)
        {
            services.extend_from_slice(&old_services[memo.services.clone()]);
            metas.extend_from_slice(&reuse.metas[memo.services.clone()]);
            parts.push(PartMemo {
                start: range.start,
                digest,
                services: first..services.len(),
                reusable: true,
            });
            continue;
        }
        let pv = v.from(range.start);
        let raw: RawConfig = toml::from_str(&text[range.clone()])
            .map_err(|e| pv.at(e.span(), e.message().to_string()))?;
        if k == 0 && !heads.is_empty() {
            refuse_inline_services(&pv, text, &raw)?;
        }
        let reusable = node_seen.take(&pv, &raw)?;
        let RawConfig {
            service,
            announce,
            health_file,
            sysctl,
            sync,
            script_user,
        } = raw;
        if !reusable {
            let tables = NodeTables {
                announce,
                health_file,
                sysctl,
                sync,
                script_user,
            };
            take_node_tables(&pv, &mut node, tables)?;
        }
        for entry in service {
            let (cfg, meta) = validate_service(&pv, entry)?;
            metas.push(meta);
            services.push(Arc::new(cfg));
        }
        parts.push(PartMemo {
            start: range.start,
            digest,
            services: first..services.len(),
            reusable: k > 0 && reusable,
        });
    }
    across_services(&v, &parts, &metas, &mut services)?;
    Ok((DirectorConfig { services, node }, parts, metas))
}

/// `service = [...]` and `[[service]]` tables in one file: TOML refuses a
/// key given twice, and so must the prelude, which is parsed apart from the
/// tables.
fn refuse_inline_services(pv: &Validator, text: &str, raw: &RawConfig) -> Result<(), ConfigError> {
    if let Some(s) = raw.service.iter().find(|s| text[s.span()].starts_with('{')) {
        return pv.err(
            s.span(),
            "`service` is given inline here and as [[service]] tables below: use one form".into(),
        );
    }
    Ok(())
}

/// The director-wide tables and keys of one part.
struct NodeTables {
    announce: Option<Spanned<RawAnnounce>>,
    health_file: Option<Spanned<String>>,
    sysctl: Option<Spanned<RawSysctl>>,
    sync: Option<Spanned<RawSync>>,
    script_user: Option<Spanned<String>>,
}

/// Validates the director-wide tables of one part into `node`. Only the
/// tables the part gives are set: the others are defaults in what
/// `Validator::node` returns, and must not undo an earlier part's.
fn take_node_tables(
    pv: &Validator,
    node: &mut NodeConfig,
    t: NodeTables,
) -> Result<(), ConfigError> {
    let given = (
        t.announce.is_some(),
        t.health_file.is_some(),
        t.sysctl.is_some(),
    );
    let part = pv.node(
        t.announce,
        t.health_file,
        t.sysctl.map(Spanned::into_inner),
        t.sync,
        t.script_user,
    )?;
    if part.script_user.is_some() {
        node.script_user = part.script_user;
    }
    if given.0 {
        node.announce = part.announce;
    }
    if given.1 {
        node.health_file = part.health_file;
    }
    if given.2 {
        node.sysctl = part.sysctl;
    }
    if part.sync.is_some() {
        node.sync = part.sync;
    }
    Ok(())
}

/// One service of a part, with what [`across_services`] needs of it.
fn validate_service(
    pv: &Validator,
    entry: Spanned<RawService>,
) -> Result<(ServiceConfig, ServiceMeta), ConfigError> {
    let start = entry.span().start;
    let ServiceParts {
        cfg,
        protocol,
        key_offset,
        port_offsets,
    } = pv.service(entry.into_inner(), start)?;
    let meta = ServiceMeta {
        protocol,
        start,
        key_offset,
        port_offsets,
        auto_mark: cfg.group.as_ref().is_some_and(|g| g.mark == 0),
    };
    Ok((cfg, meta))
}

/// A part's text as 128 bits: two SipHash runs with different prefixes. A
/// collision (an edited part taken for the old one) is a 2^-128 chance.
fn digest(text: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        #[allow(deprecated)] // Fixed keys on purpose: digests are compared across loads.
        let mut h = std::hash::SipHasher::new_with_keys(0x6c76_732d_6469_7231, u64::from(salt));
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// The checks between services: keys, ports, derived marks; and each
/// service's line.
fn across_services(
    v: &Validator,
    parts: &[PartMemo],
    metas: &[ServiceMeta],
    services: &mut [Arc<ServiceConfig>],
) -> Result<(), ConfigError> {
    // Key -> byte offset of the first definition.
    let mut seen: HashMap<ServiceKey, usize> = HashMap::with_capacity(services.len());
    // (vip, protocol, port) of every port service and grouped port.
    let mut ports_seen: HashMap<(std::net::IpAddr, Protocol, u16), usize> =
        HashMap::with_capacity(services.len());
    // Auto marks are assigned after explicit ones are known.
    let mut auto_marks: Vec<(usize, usize)> = Vec::new(); // (service index, offset)
    for part in parts {
        let base = part.start;
        for i in part.services.clone() {
            let (cfg, meta) = (&services[i], &metas[i]);
            for &(port, off) in &meta.port_offsets {
                let off = base + off;
                let k = (cfg.vip, meta.protocol, port);
                if let Some(&first) = ports_seen.get(&k) {
                    return Err(v.at(
                        Some(off..off),
                        format!(
                            "{} port {port} of {} is already a service (line {})",
                            protocol_name(k.1),
                            cfg.vip,
                            v.line(first)
                        ),
                    ));
                }
                ports_seen.insert(k, off);
            }
            if meta.auto_mark {
                auto_marks.push((i, base + meta.key_offset));
            } else {
                check_unique(v, &mut seen, &cfg.service.key, base + meta.key_offset)?;
            }
            let line = v.line(base + meta.start);
            if cfg.line != line {
                Arc::make_mut(&mut services[i]).line = line;
            }
        }
    }
    for (i, offset) in auto_marks {
        let group = services[i].group.as_ref().expect("a port group");
        let mark = derived_mark(group);
        let key = ServiceKey::fwmark(Family::of(&group.vip), mark);
        if group.mark != mark {
            let cfg = Arc::make_mut(&mut services[i]);
            cfg.group.as_mut().expect("a port group").mark = mark;
            cfg.service.key = key;
        }
        if let Some(&first) = seen.get(&key) {
            return Err(v.at(
                Some(offset..offset),
                format!(
                    "the derived firewall mark {mark} of this port group is already used on line {}: give the group a `mark`",
                    v.line(first)
                ),
            ));
        }
        seen.insert(key, offset);
    }
    Ok(())
}

fn check_unique(
    v: &Validator,
    seen: &mut HashMap<ServiceKey, usize>,
    key: &ServiceKey,
    offset: usize,
) -> Result<(), ConfigError> {
    if let Some(&first) = seen.get(key) {
        return Err(v.at(
            Some(offset..offset),
            format!("service {key} is already defined on line {}", v.line(first)),
        ));
    }
    seen.insert(*key, offset);
    Ok(())
}

/// Where each director-wide table was first given (absolute offsets).
#[derive(Default)]
struct NodeSeen {
    announce: Option<usize>,
    health_file: Option<usize>,
    sysctl: Option<usize>,
    sync: Option<usize>,
    script_user: Option<usize>,
}

impl NodeSeen {
    /// Notes the director-wide tables of one part, refusing one given in an
    /// earlier part; true when the part has none.
    fn take(&mut self, pv: &Validator, raw: &RawConfig) -> Result<bool, ConfigError> {
        let spans = [
            ("[announce]", raw.announce.as_ref().map(Spanned::span)),
            ("health_file", raw.health_file.as_ref().map(Spanned::span)),
            ("[sysctl]", raw.sysctl.as_ref().map(Spanned::span)),
            ("[sync]", raw.sync.as_ref().map(Spanned::span)),
            ("script_user", raw.script_user.as_ref().map(Spanned::span)),
        ];
        if spans.iter().all(|(_, s)| s.is_none()) {
            return Ok(true);
        }
        let slots = [
            &mut self.announce,
            &mut self.health_file,
            &mut self.sysctl,
            &mut self.sync,
            &mut self.script_user,
        ];
        for ((name, span), slot) in spans.into_iter().zip(slots) {
            let Some(span) = span else { continue };
            if let Some(first) = *slot {
                return pv.err(
                    span,
                    format!(
                        "{name} is already defined on line {}",
                        pv.from(0).line(first)
                    ),
                );
            }
            *slot = Some(pv.base + span.start);
        }
        Ok(false)
    }
}

/// The byte offsets of the `[[service]]` headers that start a line.
fn service_headers(text: &str) -> Vec<usize> {
    #[derive(Clone, Copy)]
    enum State {
        LineStart,
        Open1(usize),
        Open2(usize),
        Name(usize),
        Close1(usize),
        RestOfLine,
    }
    let mut heads = Vec::new();
    let mut state = State::LineStart;
    for token in Source::new(text).lex() {
        let kind = token.kind();
        let span = token.span();
        if kind == TokenKind::Newline {
            state = State::LineStart;
            continue;
        }
        state = match (state, kind) {
            (State::LineStart, TokenKind::Whitespace) => State::LineStart,
            (State::LineStart, TokenKind::LeftSquareBracket) => State::Open1(span.start()),
            (State::Open1(at), TokenKind::LeftSquareBracket) => State::Open2(at),
            (State::Open2(at), TokenKind::Whitespace) => State::Open2(at),
            (
                State::Open2(at),
                TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString,
            ) if matches!(
                &text[span.start()..span.end()],
                "service" | "\"service\"" | "'service'"
            ) =>
            {
                State::Name(at)
            }
            (State::Name(at), TokenKind::Whitespace) => State::Name(at),
            (State::Name(at), TokenKind::RightSquareBracket) => State::Close1(at),
            (State::Close1(at), TokenKind::RightSquareBracket) => {
                heads.push(at);
                State::RestOfLine
            }
            _ => State::RestOfLine,
        };
    }
    heads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("d.toml")
    }

    const FILE: &str = r#"# director
health_file = ""

[sysctl]
expire_nodest_conn = 1

[[service]]
vip = "198.51.100.10"
port = 80
[service.check]
type = "tcp"
[[service.server]]
address = "198.51.100.20"
weight = 2
[[service.server]]
address = "198.51.100.21"

[[service]]
vip = "198.51.100.10"
ports = [443, 8443]
[[service.server]]
address = "198.51.100.20"

  [[ service ]]
vip = "198.51.100.11"
port = 80
[[service.server]]
address = "198.51.100.22"

[announce]
interface = "lvs0"
"#;

    #[test]
    fn headers_only_where_toml_starts_a_service() {
        let text = "health_file = \"\"\n[[service]]\nvip = \"198.51.100.1\"\n  [[ service ]] # c\nx = \"\"\"\n[[service]]\n\"\"\"\n[[service.server]]\n[[\"service\"]]\n a = 1 [[service]]\n";
        let heads = service_headers(text);
        let at: Vec<&str> = heads.iter().map(|&h| &text[h..h + 4]).collect();
        assert_eq!(heads.len(), 3, "{at:?}");
        assert_eq!(heads[0], text.find("[[service]]").unwrap());
        assert_eq!(&text[heads[1]..heads[1] + 5], "[[ se");
        assert_eq!(&text[heads[2]..heads[2] + 4], "[[\"s");
    }

    #[test]
    fn parts_make_the_whole_file() {
        let (c, reuse) = parse_reusing(path(), FILE, None).unwrap();
        assert_eq!(reuse.parts.len(), 4, "prelude and three services");
        assert_eq!(c.services.len(), 3);
        assert_eq!(c.services[0].servers.len(), 2);
        assert_eq!(c.services[0].servers[0].weight, 2);
        assert_eq!(c.services[0].checks[0].kind, crate::check::CheckKind::Tcp);
        // Both servers share one check spec.
        assert!(std::sync::Arc::ptr_eq(
            &c.services[0].checks[0],
            &c.services[0].checks[1]
        ));
        assert_eq!(
            c.services.iter().map(|s| s.line).collect::<Vec<_>>(),
            [7, 18, 24]
        );
        let group = c.services[1].group.as_ref().unwrap();
        assert_eq!(group.mark, derived_mark(group));
        assert_eq!(c.node.health_file, crate::HealthFile::Off);
        assert_eq!(c.node.sysctl, [("expire_nodest_conn", 1)]);
        assert_eq!(c.node.announce.as_ref().unwrap().interface, "lvs0");
        // The last part holds a director-wide table: parsed at every load.
        assert!(!reuse.parts[3].reusable && reuse.parts[1].reusable);
    }

    #[test]
    fn positions_in_later_parts_are_the_files() {
        let bad = FILE.replace("address = \"198.51.100.22\"", "address = \"nope\"");
        let e = parse(path(), &bad).unwrap_err();
        assert_eq!(e.position(), Some((28, 11)), "{e}");
        let syntax = FILE.replace(
            "port = 80\n[[service.server]]\naddress = \"198.51.100.22\"",
            "port = = 80",
        );
        let e = parse(path(), &syntax).unwrap_err();
        assert_eq!(e.position().map(|p| p.0), Some(26), "{e}");
        let dup = FILE.replace("198.51.100.11", "198.51.100.10");
        let e = parse(path(), &dup).unwrap_err().to_string();
        assert!(
            e.starts_with("d.toml:26:8:") && e.contains("already a service (line 9)"),
            "{e}"
        );
    }

    #[test]
    fn a_table_given_in_two_parts_is_refused() {
        let twice = FILE.replace(
            "[sysctl]\nexpire_nodest_conn = 1\n",
            "[announce]\ninterface = \"lvs1\"\n",
        );
        let e = parse(path(), &twice).unwrap_err().to_string();
        assert!(
            e.starts_with("d.toml:30:1:") && e.contains("[announce] is already defined on line 4"),
            "{e}"
        );
        let inline = format!("service = [{{ vip = \"198.51.100.12\", port = 81 }}]\n{FILE}");
        let e = parse(path(), &inline.replace("health_file = \"\"\n", ""))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.toml:1:") && e.contains("inline"), "{e}");
    }

    #[test]
    fn a_reload_takes_over_unchanged_parts_and_parses_changed_ones() {
        let (mut c, reuse) = parse_reusing(path(), FILE, None).unwrap();
        // Marks what a reuse would carry over unseen.
        Arc::make_mut(&mut c.services[0]).quorum = 7;
        Arc::make_mut(&mut c.services[2]).quorum = 7;
        let edited = format!(
            "# a new first line\n{}",
            FILE.replace("weight = 2", "weight = 3")
        );
        let (c2, reuse2) = parse_reusing(path(), &edited, Some((&reuse, &c.services))).unwrap();
        assert_eq!(
            c2.services[0].servers[0].weight, 3,
            "the edited part is parsed"
        );
        assert_eq!(c2.services[0].quorum, 1);
        assert_eq!(
            c2.services[2].quorum, 1,
            "a part with [announce] is parsed again"
        );
        let moved = |s: &ServiceConfig| ServiceConfig {
            line: 0,
            ..s.clone()
        };
        assert_eq!(
            moved(&c2.services[1]),
            moved(&c.services[1]),
            "the group is taken over"
        );
        assert_eq!(
            c2.services.iter().map(|s| s.line).collect::<Vec<_>>(),
            [8, 19, 25]
        );
        // Taken over: only the quorum marker tells.
        let same = edited.replace("[announce]\ninterface = \"lvs0\"\n", "");
        let (mut c3, reuse3) = parse_reusing(path(), &same, Some((&reuse2, &c2.services))).unwrap();
        Arc::make_mut(&mut c3.services[1]).quorum = 7;
        let (c4, _) = parse_reusing(path(), &same, Some((&reuse3, &c3.services))).unwrap();
        assert_eq!(
            c4.services[1].quorum, 7,
            "an unchanged part is not parsed again"
        );
        assert_eq!(c4, {
            let mut fresh = parse(path(), &same).unwrap();
            Arc::make_mut(&mut fresh.services[1]).quorum = 7;
            fresh
        });
        // A duplicate made by a changed part is found against taken-over ones.
        let dup = same.replace("198.51.100.11", "198.51.100.10");
        let e = parse_reusing(path(), &dup, Some((&reuse3, &c3.services))).unwrap_err();
        assert!(e.to_string().starts_with("d.toml:27:8:"), "{e}");
        assert!(e.to_string().contains("already a service (line 10)"), "{e}");
        // Services that do not match the memo (a caller's mistake) are ignored.
        let (c5, _) = parse_reusing(path(), &same, Some((&reuse3, &c3.services[1..]))).unwrap();
        assert_eq!(c5.services[1].quorum, 1);
    }
}
