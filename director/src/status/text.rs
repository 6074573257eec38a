//! `lvs-director status` for people: one line per VIP, per service and per
//! server.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ServerStatus, ServiceStatus, Status};

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

impl Status {
    pub fn to_text(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.text_at(now)
    }

    /// The text as seen at `now` (a Unix time).
    pub(super) fn text_at(&self, now: f64) -> String {
        let mut out = String::new();
        if self.withdrawn_by_hand {
            out.push_str("withdrawn by hand (lvs-director announce to undo)\n");
        }
        for vip in &self.vips {
            let state = if vip.announced {
                "announced"
            } else {
                "withdrawn"
            };
            let _ = writeln!(out, "VIP {}  {state}", vip.vip);
        }
        for s in &self.services {
            service_line(&mut out, s);
            for r in &s.servers {
                server_line(&mut out, r, now);
            }
        }
        for r in &self.retiring {
            let servers: Vec<String> = r.servers.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "retiring in {}: {}", r.service, servers.join(", "));
        }
        out
    }
}

fn service_line(out: &mut String, s: &ServiceStatus) {
    let _ = write!(
        out,
        "{}  {}  healthy {}/{} (quorum {})",
        s.service,
        s.scheduler,
        s.healthy,
        s.servers.len(),
        s.quorum
    );
    if let Some(sorry) = s.sorry_server {
        let state = if s.sorry_active { "in" } else { "out" };
        let _ = write!(out, "  sorry {sorry}: {state}");
    }
    out.push('\n');
}

fn server_line(out: &mut String, r: &ServerStatus, now: f64) {
    let weight = match r.weight {
        Some(w) => w.to_string(),
        None => "-".into(),
    };
    let last = match (&r.last_result, r.last_check) {
        (Some(l), Some(t)) => format!("last {l:?} {} ago", ago(now - t)),
        _ => "no result yet".into(),
    };
    let _ = writeln!(
        out,
        "  {:<22} {:<9} weight {}/{}  {}  {last}  since {} ago{}{}",
        r.server.to_string(),
        r.health.as_str(),
        weight,
        r.configured_weight,
        r.check,
        ago(now - r.since),
        if r.admin_drained {
            "  [drained by hand]"
        } else {
            ""
        },
        if r.adopted { "  [adopted]" } else { "" },
    );
}
