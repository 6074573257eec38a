//! `status` and `check` for people.

use std::fmt::Write as _;

use super::Status;

impl Status {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "VIPs:");
        if self.vips.is_empty() {
            let _ = writeln!(out, "  (none configured)");
        }
        for vip in &self.vips {
            let place = if vip.on.is_empty() {
                "absent".to_string()
            } else {
                format!("on {}", vip.on.join(", "))
            };
            let mut notes = Vec::new();
            if let Some(origin) = vip.origin {
                notes.push(match origin {
                    "rs-agent" => "added by rs-agent",
                    "pre-existing" => "pre-existing",
                    _ => "origin unknown",
                });
            }
            if !vip.configured {
                notes.push("no longer configured");
            }
            if vip.deprecated == Some(true) {
                notes.push("deprecated");
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let _ = writeln!(out, "  {:<40} {place}{notes}", vip.address);
        }
        let _ = writeln!(out, "Sysctls:");
        for s in &self.sysctls {
            let current = s.current.map_or("missing".to_string(), |c| c.to_string());
            let mark = if s.current == Some(s.wanted) {
                "ok"
            } else {
                "DRIFT"
            };
            let before = s
                .before_agent
                .map_or(String::new(), |b| format!("  (before rs-agent: {b})"));
            let _ = writeln!(
                out,
                "  {:<40} wanted {}  current {current:<7} {mark}{before}",
                s.sysctl, s.wanted
            );
        }
        let _ = writeln!(
            out,
            "ARP in force per interface (max of conf/all and conf/IFACE):"
        );
        for i in &self.interfaces {
            let mut flags = Vec::new();
            if i.answers_arp_for_vips {
                flags.push("ANSWERS ARP FOR VIPs");
            }
            if i.may_announce_vips {
                flags.push("MAY ANNOUNCE VIPs");
            }
            let flags = if flags.is_empty() {
                "ok".to_string()
            } else {
                flags.join(", ")
            };
            let _ = writeln!(
                out,
                "  {:<16} arp_ignore {}  arp_announce {}  {flags}",
                i.interface, i.arp_ignore, i.arp_announce
            );
        }
        if let Some(t) = &self.tunnel {
            let state = match (t.present, t.up) {
                (false, _) => "missing",
                (true, false) => "DOWN",
                (true, true) => "up",
            };
            let created = if t.created_by_agent {
                " (created by rs-agent)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "Tunnel ({}): device {} {state}{created}",
                t.kind, t.device
            );
            if let Some(fou) = &t.fou_port {
                let origin = match fou.origin {
                    Some("rs-agent") => " (added by rs-agent)",
                    Some(_) => " (pre-existing)",
                    None => "",
                };
                let place = if fou.present { "present" } else { "MISSING" };
                let _ = writeln!(out, "  FOU port {} gue: {place}{origin}", fou.port);
            }
            let _ = writeln!(
                out,
                "rp_filter in force per interface (max of conf/all and conf/IFACE):"
            );
            for r in &t.rp_filter {
                let mark = match r.in_force {
                    0 => "off",
                    _ if r.interface == t.device => "DROPS DECAPSULATED PACKETS",
                    1 => "strict",
                    _ => "loose",
                };
                let _ = writeln!(
                    out,
                    "  {:<16} rp_filter {}  {mark}",
                    r.interface, r.in_force
                );
            }
        }
        match &self.drain {
            Some(d) => {
                let reason = d
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {r}"));
                let persistent = if d.persistent { ", persistent" } else { "" };
                let _ = writeln!(
                    out,
                    "Drain: drained since {} (unix time{persistent}){reason}",
                    d.since
                );
            }
            None => {
                let _ = writeln!(out, "Drain: not drained");
            }
        }
        let _ = writeln!(out, "Agent endpoint answers: {}", self.agent_answer);
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        if self.in_sync {
            let _ = writeln!(out, "in sync");
        } else {
            for d in &self.drift {
                let _ = writeln!(out, "drift: {d}");
            }
        }
        out
    }
}
