//! The tools' one logging setup: `tracing` events as lines on stderr,
//! filtered by an environment variable, with their structured fields
//! (`key=value` after the message), without colours unless stderr is a
//! terminal (journald and log files get plain text).
//!
//! The filter is the first of: the tool's own variable (`RS_AGENT_LOG`,
//! `LVS_DIRECTOR_LOG`), `RUST_LOG`, the tool's default. Each is an
//! [`EnvFilter`] directive list (`info`, `rs_agent=debug,warn`); an empty
//! value, or one that does not parse, is passed over as if unset.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The variable read when the tool's own is unset.
pub const RUST_LOG: &str = "RUST_LOG";

/// How a tool's lines look, besides the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    /// The tool's own filter variable, read before `RUST_LOG`.
    pub env_var: Option<&'a str>,
    /// Each line starts with the time. A daemon under systemd has journald
    /// stamp its lines; a command's warnings need no time.
    pub timestamps: bool,
}

/// Sets the process's global subscriber (see the module's documentation).
/// `default_filter` applies when no variable holds a valid filter: a level
/// (`warn`) or any directive list.
///
/// Fails only if a global subscriber was set already (that one stays).
pub fn init(
    default_filter: &str,
    options: Options<'_>,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::util::SubscriberInitExt;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(default_filter, options.env_var, |name| {
            std::env::var(name).ok()
        }))
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    if options.timestamps {
        builder.finish().try_init()
    } else {
        builder.without_time().finish().try_init()
    }
}

/// The filter of the first variable that holds a valid one, else the
/// default (or, should that not parse either, `warn`).
fn filter(
    default_filter: &str,
    env_var: Option<&str>,
    var: impl Fn(&str) -> Option<String>,
) -> EnvFilter {
    env_var
        .into_iter()
        .chain([RUST_LOG])
        .filter_map(var)
        .filter(|value| !value.trim().is_empty())
        .find_map(|value| EnvFilter::try_new(value).ok())
        .or_else(|| EnvFilter::try_new(default_filter).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_tools_variable_then_rust_log_then_the_default() {
        let f = |pairs: &[(&str, &str)]| filter("warn", Some("TOOL_LOG"), vars(pairs)).to_string();
        assert_eq!(f(&[]), "warn");
        assert_eq!(f(&[("RUST_LOG", "info")]), "info");
        assert_eq!(
            f(&[("RUST_LOG", "info"), ("TOOL_LOG", "tool=debug")]),
            "tool=debug"
        );
        // Without a variable of its own, RUST_LOG only.
        assert_eq!(
            filter("error", None, vars(&[("TOOL_LOG", "debug")])).to_string(),
            "error"
        );
    }

    #[test]
    fn a_value_that_does_not_parse_is_passed_over() {
        let f = |pairs: &[(&str, &str)]| filter("warn", Some("TOOL_LOG"), vars(pairs)).to_string();
        assert_eq!(f(&[("TOOL_LOG", "[[[")]), "warn");
        assert_eq!(f(&[("TOOL_LOG", ""), ("RUST_LOG", "info")]), "info");
        assert_eq!(f(&[("TOOL_LOG", "[[["), ("RUST_LOG", "debug")]), "debug");
        assert_eq!(filter("[[[", None, vars(&[])).to_string(), "warn");
    }

    #[test]
    fn a_second_init_fails_and_keeps_the_first() {
        let options = Options {
            env_var: None,
            timestamps: false,
        };
        // The test binary's first subscriber (no other test sets one).
        let _ = init("warn", options);
        assert!(init("warn", options).is_err());
    }
}
