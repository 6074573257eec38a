//! The file as serde reads it: every key the director file takes, each value
//! wrapped in [`Spanned`] so that the validation can point at it. Unknown
//! keys are refused here (`deny_unknown_fields`), before any validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// One part of the file (see the `load` module): the prelude or one
/// `[[service]]` with what follows it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) service: Vec<Spanned<RawService>>,
    pub(super) announce: Option<Spanned<RawAnnounce>>,
    pub(super) health_file: Option<Spanned<String>>,
    pub(super) sysctl: Option<Spanned<RawSysctl>>,
    pub(super) sync: Option<Spanned<RawSync>>,
    pub(super) script_user: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) vip: Spanned<String>,
    pub(super) protocol: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) ports: Option<Spanned<Vec<Spanned<i64>>>>,
    pub(super) mark: Option<Spanned<i64>>,
    pub(super) scheduler: Option<Spanned<String>>,
    pub(super) scheduler_flags: Option<Vec<Spanned<String>>>,
    pub(super) persistence: Option<Spanned<i64>>,
    pub(super) persistence_netmask: Option<Spanned<i64>>,
    pub(super) one_packet: Option<bool>,
    pub(super) quorum: Option<Spanned<i64>>,
    pub(super) sorry_server: Option<Spanned<String>>,
    pub(super) on_failure: Option<Spanned<String>>,
    pub(super) check: Option<Spanned<RawCheck>>,
    #[serde(default)]
    pub(super) server: Vec<Spanned<RawServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) address: Spanned<String>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) forward: Option<Spanned<String>>,
    pub(super) weight: Option<Spanned<i64>>,
    pub(super) upper_threshold: Option<Spanned<i64>>,
    pub(super) lower_threshold: Option<Spanned<i64>>,
    pub(super) check: Option<Spanned<RawCheck>>,
}

/// `[service.check]` or `[service.server.check]`. `Default` and `Clone`:
/// a server's table is merged key by key over its service's.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    #[serde(rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<f64>>,
    pub(super) timeout: Option<Spanned<f64>>,
    pub(super) rise: Option<Spanned<i64>>,
    pub(super) fall: Option<Spanned<i64>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) expect_status: Option<Spanned<Vec<Spanned<RawStatus>>>>,
    pub(super) expect_body: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) verify_tls: Option<Spanned<bool>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) half_open: Option<Spanned<bool>>,
}

/// `200` or `"200-299"`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum RawStatus {
    Code(i64),
    Range(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnnounce {
    pub(super) interface: Spanned<String>,
    pub(super) hold_down: Option<Spanned<toml::Value>>,
    pub(super) withdraw_grace: Option<Spanned<toml::Value>>,
}

/// `[sysctl]`: names with their positions, for the errors.
pub(super) type RawSysctl = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub(super) role: Spanned<String>,
    pub(super) interface: Spanned<String>,
    pub(super) syncid: Option<Spanned<i64>>,
}
