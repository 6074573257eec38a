//! `lvs-director status`: the daemon's answer (JSON), and its text form.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use lvs_ipvs::table::fmt_addr_port;
use serde_json::{Value, json};

use crate::check::{CheckKind, CheckSpec};
use crate::cluster::health::outcome_text;
use crate::daemon::Daemon;

/// `tcp port 80`, `http://host:80/health`, `exec /usr/bin/x`...
pub fn check_text(spec: &CheckSpec) -> String {
    match &spec.kind {
        CheckKind::None => "none".into(),
        CheckKind::Tcp => format!("tcp port {}", spec.port),
        CheckKind::TcpHalfOpen => format!("tcp half-open port {}", spec.port),
        CheckKind::Agent => format!("agent port {}", spec.port),
        CheckKind::Http(h) => format!(
            "{} port {} {}",
            if h.tls { "https" } else { "http" },
            spec.port,
            h.path
        ),
        CheckKind::Exec { command } => format!("exec {}", command[0]),
    }
}

/// Unix time (seconds) of an instant in the past.
fn unix_at(at: Instant, now: Instant, wall: SystemTime) -> f64 {
    let t = wall - now.saturating_duration_since(at);
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The status reply: every service and server with health, weight in
/// force (as last written or read), last result and since when.
pub(crate) fn status_json(d: &Daemon) -> Value {
    let now = Instant::now();
    let wall = SystemTime::now();
    let m = &d.model;
    let mut services = Vec::with_capacity(m.config.services.len());
    for (i, svc) in m.config.services.iter().enumerate() {
        let in_kernel = d.view.get(&svc.service.key);
        let mut servers = Vec::with_capacity(svc.servers.len());
        for (j, dest) in svc.servers.iter().enumerate() {
            let slot = &m.servers[i][j];
            let check = &m.checks[slot.check];
            let st = &check.state;
            let weight = in_kernel.and_then(|(_, ds)| {
                ds.iter()
                    .find(|k| k.addr == dest.addr && k.port == dest.port)
                    .map(|k| k.weight)
            });
            servers.push(json!({
                "server": fmt_addr_port(&dest.addr, dest.port),
                "health": st.label(),
                "weight": weight,
                "configured_weight": dest.weight,
                "admin_drained": m.drained(i, j),
                "adopted": st.assumed && slot.adopted.is_some(),
                "check": check_text(&check.spec),
                "last_result": st.last.as_ref().map(|l| outcome_text(&l.outcome)),
                "last_check": st.last.as_ref().map(|l| unix_at(l.at.instant(), now, wall)),
                "since": unix_at(st.since.instant(), now, wall),
            }));
        }
        services.push(json!({
            "service": svc.service.key.to_string(),
            "scheduler": svc.service.scheduler,
            "quorum": svc.quorum,
            "healthy": m.healthy(i),
            "on_failure": svc.on_failure.name(),
            "sorry_server": svc.sorry_server.map(|a| a.to_string()),
            "sorry_active": m.sorry[i],
            "servers": servers,
        }));
    }
    let retiring: Vec<Value> = m
        .retiring
        .iter()
        .map(|r| {
            json!({
                "service": r.key.to_string(),
                "whole_service": r.service.is_some(),
                "servers": r.dests.iter().map(|d| fmt_addr_port(&d.addr, d.port)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let c = &d.counters;
    json!({
        "ok": true,
        "config": d.opts.config.display().to_string(),
        "started": unix_at(d.started, now, wall),
        "checks": m.checks.len(),
        "checks_in_flight": d.checker.in_flight(),
        "syncs": c.syncs,
        "last_sync": c.last_sync.map(|t| unix_at(t, now, wall)),
        "edits": c.edits,
        "refused": c.refused,
        "reloads": c.reloads,
        "reload_failures": c.reload_failures,
        "services": services,
        "retiring": retiring,
        "quorum": d.node.healthy(),
        "withdrawn_by_hand": d.node.withdrawn_by_hand(),
        "vips": d.node.vips().iter().map(|v| json!({
            "vip": v.vip,
            "announced": v.announced,
            "announces": v.announces,
            "withdrawals": v.withdrawals,
        })).collect::<Vec<_>>(),
    })
}

/// `12s`, `3m04s`, `2h05m`, `4d03h`.
fn ago(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// The status reply as text, one line per service and per server.
pub fn render_text(v: &Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut out = String::new();
    if v["withdrawn_by_hand"] == true {
        out.push_str("withdrawn by hand (lvs-director announce to undo)\n");
    }
    for vip in v["vips"].as_array().into_iter().flatten() {
        let state = if vip["announced"] == true {
            "announced"
        } else {
            "withdrawn"
        };
        out.push_str(&format!(
            "VIP {}  {state}\n",
            vip["vip"].as_str().unwrap_or("?")
        ));
    }
    for s in v["services"].as_array().into_iter().flatten() {
        let total = s["servers"].as_array().map_or(0, Vec::len);
        out.push_str(&format!(
            "{}  {}  healthy {}/{total} (quorum {})",
            s["service"].as_str().unwrap_or("?"),
            s["scheduler"].as_str().unwrap_or("?"),
            s["healthy"],
            s["quorum"]
        ));
        if let Some(sorry) = s["sorry_server"].as_str() {
            let state = if s["sorry_active"] == true {
                "in"
            } else {
                "out"
            };
            out.push_str(&format!("  sorry {sorry}: {state}"));
        }
        out.push('\n');
        for r in s["servers"].as_array().into_iter().flatten() {
            let weight = match r["weight"].as_u64() {
                Some(w) => w.to_string(),
                None => "-".into(),
            };
            let last = match (r["last_result"].as_str(), r["last_check"].as_f64()) {
                (Some(l), Some(t)) => format!("last {l:?} {} ago", ago(now - t)),
                _ => "no result yet".into(),
            };
            out.push_str(&format!(
                "  {:<22} {:<9} weight {}/{}  {}  {last}  since {} ago{}{}\n",
                r["server"].as_str().unwrap_or("?"),
                r["health"].as_str().unwrap_or("?"),
                weight,
                r["configured_weight"],
                r["check"].as_str().unwrap_or("?"),
                ago(now - r["since"].as_f64().unwrap_or(now)),
                if r["admin_drained"] == true {
                    "  [drained by hand]"
                } else {
                    ""
                },
                if r["adopted"] == true {
                    "  [adopted]"
                } else {
                    ""
                },
            ));
        }
    }
    for r in v["retiring"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "retiring in {}: {}\n",
            r["service"].as_str().unwrap_or("?"),
            r["servers"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_half_open_check_says_so() {
        let spec = CheckSpec {
            kind: CheckKind::TcpHalfOpen,
            interval: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(2),
            rise: 2,
            fall: 3,
            port: 3306,
        };
        assert_eq!(check_text(&spec), "tcp half-open port 3306");
    }

    #[test]
    fn text_of_a_status() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let v = json!({"services": [{"service": "tcp 203.0.113.10:80", "scheduler": "wrr", "healthy": 1,
            "quorum": 1, "sorry_server": "198.51.100.80", "sorry_active": false,
            "servers": [{"server": "198.51.100.11:80", "health": "up", "weight": 1, "configured_weight": 1,
                "check": "tcp port 80", "last_result": "ok", "last_check": now - 1.0, "since": now - 125.0,
                "admin_drained": false, "adopted": false},
                {"server": "198.51.100.12:80", "health": "down", "weight": 0, "configured_weight": 2,
                "check": "tcp port 80", "last_result": "connection refused", "last_check": now, "since": now,
                "admin_drained": true, "adopted": false}]}],
            "retiring": []});
        let t = render_text(&v);
        assert!(
            t.starts_with(
                "tcp 203.0.113.10:80  wrr  healthy 1/2 (quorum 1)  sorry 198.51.100.80: out\n"
            ),
            "{t}"
        );
        assert!(t.contains("198.51.100.11:80       up        weight 1/1  tcp port 80  last \"ok\" 1s ago  since 2m05s ago\n"), "{t}");
        assert!(
            t.contains("last \"connection refused\" 0s ago  since 0s ago  [drained by hand]"),
            "{t}"
        );
    }
}
