//! One function per fuzz target: each takes the fuzzer's bytes and feeds
//! them to a real parser of input from outside the process (never a copy of
//! one). `fuzz/` (cargo-fuzz, nightly) runs them; `tests/replay.rs` replays
//! their corpora (`fuzz/corpus/<name>/`) and the inputs of fixed crashes
//! (`fuzz/regressions/<name>/`) on stable, so `cargo test` keeps them green.
//!
//! A target returns nothing: the only failure is a panic (or an abort).

use std::path::Path;

use lvs_ipvs::codec::{IpvsAttr, IpvsMessage};
use lvs_ipvs::{Daemon, Destination, Family, Service};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, ParseableParametrized};
use netlink_packet_generic::GenlMessage;
use rs_agent::fou::FouMessage;

/// A fuzz target: bytes in, a panic the only failure.
pub type Target = fn(&[u8]);

/// Every target, by name: the names of `fuzz/fuzz_targets/<name>.rs` and of
/// the corpus directories.
pub const TARGETS: &[(&str, Target)] = &[
    ("director_file", director_file),
    ("agent_file", agent_file),
    ("ipvsadm_rules", ipvsadm_rules),
    ("ipvsadm_argv", ipvsadm_argv),
    ("ipvs_netlink", ipvs_netlink),
    ("fou_netlink", fou_netlink),
    ("syn_ack", syn_ack),
    ("http_response", http_response),
    ("agent_reply", agent_reply),
    ("control_request", control_request),
    ("metrics_request_head", metrics_request_head),
];

/// The bytes as text, as a file read with `read_to_string` would be.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The director file (TOML, part by part, then validated):
/// `lvs_director_config::parse`.
pub fn director_file(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = lvs_director_config::parse(Path::new("/etc/lvs/director.toml"), text);
    }
}

/// rs-agent's file (TOML, validated): `rs_agent::config::parse`.
pub fn agent_file(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = rs_agent::config::parse(Path::new("/etc/rs-agent/config.toml"), text);
    }
}

/// An `ipvsadm -R` rules text: `lvs_ipvs::rules::parse_rules`.
pub fn ipvsadm_rules(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = lvs_ipvs::rules::parse_rules(text);
    }
}

/// An ipvsadm argv (words separated by NUL bytes, as the kernel hands
/// argv over): popt's splitting (`lvs_ipvs::rules::argv::parse`), then the
/// command (`lvs_ipvs::rules::parse_words`).
pub fn ipvsadm_argv(data: &[u8]) {
    let words: Vec<String> = data
        .split(|&b| b == 0)
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let _ = lvs_ipvs::rules::argv::parse(&words);
    let _ = lvs_ipvs::rules::parse_words(&words);
}

/// A reply of the IPVS generic-netlink family, both as a whole netlink
/// message (what the socket deserializes) and as a generic-netlink payload
/// (genl header and attributes, as the codec's golden packets are), then
/// decoded into the table's types as the handle does.
pub fn ipvs_netlink(data: &[u8]) {
    let mut messages = Vec::new();
    if let Ok(m) = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(data)
        && let NetlinkPayload::InnerMessage(m) = m.payload
    {
        messages.push(m.payload);
    }
    if let Ok(m) = GenlMessage::<IpvsMessage>::parse_with_param(data, 0) {
        messages.push(m.payload);
    }
    for message in messages {
        let mut services = Vec::new();
        let mut destinations = Vec::new();
        for attr in message.nlas {
            match attr {
                IpvsAttr::Service(attrs) => {
                    if let Ok(s) = Service::from_attrs(&attrs) {
                        services.push(s);
                    }
                }
                IpvsAttr::Dest(attrs) => {
                    for family in [Family::Inet, Family::Inet6] {
                        if let Ok(d) = Destination::from_attrs(&attrs, family) {
                            destinations.push(d);
                        }
                    }
                }
                IpvsAttr::Daemon(attrs) => {
                    let _ = Daemon::from_attrs(&attrs);
                }
                _ => {}
            }
        }
        // What was decoded is printed as `ipvsadm -S` would print it.
        let table: Vec<_> = services
            .into_iter()
            .map(|s| (s, destinations.clone()))
            .collect();
        let _ = lvs_ipvs::rules::render_save(&table);
    }
}

/// A reply of the FOU generic-netlink family (rs-agent's tunnel mode),
/// whole and as a payload, then read as a listener: `rs_agent::fou`.
pub fn fou_netlink(data: &[u8]) {
    if let Ok(m) = NetlinkMessage::<GenlMessage<FouMessage>>::deserialize(data)
        && let NetlinkPayload::InnerMessage(m) = m.payload
    {
        let _ = m.payload.listener();
    }
    if let Ok(m) = GenlMessage::<FouMessage>::parse_with_param(data, 0) {
        let _ = m.payload.listener();
    }
}

/// A half-open check's reply packet (IPv4 with its header, or a bare TCP
/// segment): `lvs_director::fuzz::syn_ack`.
pub fn syn_ack(data: &[u8]) {
    lvs_director::fuzz::syn_ack(data);
}

/// An HTTP check's response (head, framing, chunked body):
/// `lvs_director::fuzz::http_response`.
pub fn http_response(data: &[u8]) {
    lvs_director::fuzz::http_response(data);
}

/// An agent check's answer line: `lvs_director::fuzz::agent_reply`.
pub fn agent_reply(data: &[u8]) {
    lvs_director::fuzz::agent_reply(data);
}

/// A control-socket request (JSON line) and reply:
/// `lvs_director::fuzz::control_request`.
pub fn control_request(data: &[u8]) {
    lvs_director::fuzz::control_request(data);
}

/// The metrics endpoint's request head:
/// `lvs_director::fuzz::metrics_request_head`.
pub fn metrics_request_head(data: &[u8]) {
    lvs_director::fuzz::metrics_request_head(data);
}
