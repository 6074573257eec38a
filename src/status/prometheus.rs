//! `check --output prometheus`: the status in the Prometheus text format,
//! for node_exporter's textfile collector (README.md, "Monitoring").
//! Every metric is a gauge with HELP and TYPE lines; label values are
//! escaped as the format requires.

use std::fmt::Write as _;

use super::{DriftKind, Status};

impl Status {
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        gauge(
            &mut out,
            "rs_agent_check_error",
            "1 when rs-agent check could not run (the other metrics are then absent).",
            &[(String::new(), 0)],
        );
        gauge(
            &mut out,
            "rs_agent_in_sync",
            "1 when the real server matches its rs-agent configuration.",
            &[(String::new(), u64::from(self.in_sync))],
        );
        let drift: Vec<(String, u64)> = DriftKind::ALL
            .iter()
            .map(|kind| {
                let count = self.drift_by_kind.get(kind).copied().unwrap_or(0);
                (format!("kind=\"{}\"", kind.name()), count as u64)
            })
            .collect();
        gauge(
            &mut out,
            "rs_agent_drift",
            "Drift found, by kind (vip, sysctl, arp, link, tunnel, stale).",
            &drift,
        );
        let vips: Vec<(String, u64)> = self
            .vips
            .iter()
            .filter(|v| v.configured)
            .map(|v| {
                let on_lo = v.on.iter().any(|i| i == "lo");
                (format!("vip=\"{}\"", escape(&v.address)), u64::from(on_lo))
            })
            .collect();
        gauge(
            &mut out,
            "rs_agent_vip_present",
            "1 when the configured VIP is held on lo.",
            &vips,
        );
        gauge(
            &mut out,
            "rs_agent_drained",
            "1 when the real server is drained (rs-agent drain).",
            &[(String::new(), u64::from(self.drain.is_some()))],
        );
        gauge(
            &mut out,
            "rs_agent_traffic_broken",
            "1 when this server would drop or steal traffic (the agent endpoint answers down).",
            &[(String::new(), u64::from(!self.broken.is_empty()))],
        );
        if let Some(t) = &self.tunnel {
            let labels = format!(
                "type=\"{}\",device=\"{}\"",
                escape(t.kind),
                escape(&t.device)
            );
            gauge(
                &mut out,
                "rs_agent_tunnel_device_up",
                "1 when the tunnel device exists and is up.",
                &[(labels, u64::from(t.present && t.up))],
            );
            let rp: Vec<(String, u64)> = t
                .rp_filter
                .iter()
                .map(|r| {
                    (
                        format!("interface=\"{}\"", escape(&r.interface)),
                        r.in_force.max(0) as u64,
                    )
                })
                .collect();
            gauge(
                &mut out,
                "rs_agent_rp_filter_in_force",
                "rp_filter in force per interface (max of conf/all and conf/IFACE).",
                &rp,
            );
        }
        out
    }
}

/// HELP, TYPE and one sample per (labels, value); labels without braces.
fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// A label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
