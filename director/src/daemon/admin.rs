//! Reloads (SIGHUP) and the control socket's requests (drain, undrain,
//! status) of the running daemon.

use std::time::Instant;

use lvs_ipvs::table::ServiceKey;
use serde_json::{Value, json};
use tracing::{error, info};

use super::{Daemon, groups, log_events};
use crate::cluster::Table;
use crate::config;
use crate::control::{self, Request};

impl Daemon {
    /// SIGHUP: a bad file is reported and changes nothing.
    pub(super) async fn reload(&mut self) {
        let _ = self.notifier.reloading();
        let started = Instant::now();
        let previous = Some((&self.reuse, self.model.config.services.as_slice()));
        let (config, reuse) = match config::load_reusing(&self.opts.config, previous) {
            Ok(c) => c,
            Err(e) => {
                self.counters.reload_failures += 1;
                error!("reload refused, the running configuration stays: {e}");
                let _ = self.notifier.ready(&format!("reload refused: {e}"));
                return;
            }
        };
        let view = &self.view;
        let present = |k: &ServiceKey, a, p| {
            view.get(k)
                .is_some_and(|(_, ds)| ds.iter().any(|d| d.addr == a && d.port == p))
        };
        let mut diff = self.model.reload_in_place(config, present, Instant::now());
        self.reuse = reuse;
        if !diff.in_place {
            self.sched.reload(&self.model, &diff.remap, Instant::now());
            self.prev_remap = std::mem::take(&mut diff.remap);
        }
        log_events(&diff.events);
        let mut entries: Table = diff
            .services
            .iter()
            .map(|&i| self.model.service_entry(i))
            .collect();
        for r in &self.model.retiring {
            if let (Some(s), true) = (&r.service, diff.retiring.contains(&r.key)) {
                entries.push((s.clone(), r.dests.clone()));
            }
        }
        self.converge(entries, diff.delete_now.clone()).await;
        if diff.groups_changed {
            match self.kernel.sync_nft(groups(&self.model.config)).await {
                Ok(_) => info!("nftables table of the port groups rewritten"),
                Err(e) => error!("{e} (retried at the next sync)"),
            }
        }
        self.node
            .reload(&self.model.config.node, &self.model, Instant::now())
            .await;
        self.save_drains();
        self.counters.reloads += 1;
        self.counters.last_load = crate::daemon::metrics::now();
        info!(
            "reloaded in {:.3}s: services {} added, {} changed, {} unchanged, {} retiring, {} deleted; checks {} kept, {} new",
            started.elapsed().as_secs_f64(),
            diff.added,
            diff.changed,
            diff.unchanged,
            diff.retiring.len(),
            diff.delete_now.len(),
            diff.checks_kept,
            diff.checks_new
        );
        let _ = self.notifier.ready(&self.status_line());
        super::release_freed_memory();
    }

    fn save_drains(&self) {
        let path = control::drains_path(&self.opts.control);
        if let Err(e) = control::save_drains(&path, &self.model.drains) {
            error!("{e}");
        }
    }

    pub(super) async fn on_control(&mut self, req: Request) -> Value {
        let (service, server, on) = match req {
            Request::Status => return crate::status::status_json(self),
            Request::Drain { service, server } => (service, server, true),
            Request::Undrain { service, server } => (service, server, false),
            Request::Withdraw => {
                let message = self.node.withdraw_by_hand().await;
                return json!({"ok": true, "message": message});
            }
            Request::Announce => {
                let message = self.node.resume_by_hand();
                // The loop's update announces the servable VIPs.
                return json!({"ok": true, "message": message});
            }
        };
        let parsed = control::parse_service(&service)
            .and_then(|k| control::parse_server(&server).map(|s| (k, s)));
        let ((key, (addr, port)), up) = match parsed
            .and_then(|(k, (a, p))| self.model.set_drain(k, a, p, on).map(|u| ((k, (a, p)), u)))
        {
            Ok(x) => x,
            Err(e) => return json!({"ok": false, "error": e}),
        };
        let _ = (key, addr, port);
        let what = if on { "drained" } else { "undrained" };
        info!(
            "admin: {what} server {server} in {service} ({} services changed)",
            up.services.len()
        );
        log_events(&up.events);
        self.save_drains();
        let entries = up
            .services
            .iter()
            .map(|&i| self.model.service_entry(i))
            .collect();
        self.converge(entries, Vec::new()).await;
        let _ = self.notifier.status(&self.status_line());
        json!({"ok": true, "changed": up.services.len()})
    }
}
