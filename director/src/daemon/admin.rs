//! Reloads (SIGHUP) and the control socket's requests (drain, undrain,
//! status) of the running daemon.

use std::time::Instant;

use lvs_ipvs::table::ServiceKey;
use tracing::{error, info};

use super::{Daemon, groups, log_events};
use crate::cluster::{ReloadDiff, Table};
use crate::config;
use crate::control::{self, Reply, Request};

impl Daemon {
    /// SIGHUP: a bad file is reported and changes nothing.
    pub(super) async fn reload(&mut self) {
        let _ = self.notifier.reloading();
        let started = Instant::now();
        let previous = Some((&self.reuse, self.cluster.config.services.as_slice()));
        let loaded = config::load_reusing(&self.opts.config, previous).and_then(|(c, r)| {
            let who = super::scripts::prepare(&self.opts.config, &c)?;
            Ok((c, r, who))
        });
        let (config, reuse) = match loaded {
            Ok((c, r, who)) => {
                crate::sys::set_script_identity(who);
                (c, r)
            }
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
        let mut diff = self
            .cluster
            .reload_in_place(config, present, Instant::now());
        self.reuse = reuse;
        if !diff.in_place {
            self.runs.reload(
                &self.cluster,
                std::mem::take(&mut diff.remap),
                Instant::now(),
            );
        }
        log_events(&diff.events);
        self.converge(self.reload_entries(&diff), diff.delete_now.clone())
            .await;
        if diff.groups_changed {
            match self.kernel.sync_nft(groups(&self.cluster.config)).await {
                Ok(_) => info!("nftables table of the port groups rewritten"),
                Err(e) => error!("{e} (retried at the next sync)"),
            }
        }
        self.node
            .reload(&self.cluster.config.node, &self.cluster, Instant::now())
            .await;
        self.save_drains();
        self.counters.reloads += 1;
        self.counters.last_load = Some(std::time::SystemTime::now());
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

    /// The services a reload changed, as they should be, and the services
    /// it retired whole (at weight 0 until they go).
    fn reload_entries(&self, diff: &ReloadDiff) -> Table {
        let mut entries: Table = diff
            .services
            .iter()
            .map(|&i| self.cluster.service_entry(i))
            .collect();
        for r in &self.cluster.retiring {
            if let (Some(s), true) = (&r.service, diff.retiring.contains(&r.key)) {
                entries.push((s.clone(), r.dests.clone()));
            }
        }
        entries
    }

    fn save_drains(&self) {
        let path = control::drains_path(&self.opts.control);
        if let Err(e) = control::save_drains(&path, &self.cluster.drains) {
            error!("{e}");
        }
    }

    pub(super) async fn on_control(&mut self, req: Request) -> Reply {
        match req {
            Request::Status => Reply::status(self.status()),
            Request::Drain { service, server } => self.drain(&service, &server, true).await,
            Request::Undrain { service, server } => self.drain(&service, &server, false).await,
            Request::Withdraw => Reply::done(self.node.withdraw_by_hand().await),
            // The loop's update announces the servable VIPs.
            Request::Announce => Reply::done(self.node.resume_by_hand()),
        }
    }

    /// `drain` (on) or `undrain` (off) `server` in `service` (`*`: in
    /// every service that has it).
    async fn drain(&mut self, service: &str, server: &str, on: bool) -> Reply {
        let parsed = control::parse_service(service)
            .and_then(|k| control::parse_server(server).map(|s| (k, s)));
        let up = match parsed.and_then(|(k, (a, p))| self.cluster.set_drain(k, a, p, on)) {
            Ok(up) => up,
            Err(e) => return Reply::refused(e),
        };
        let what = if on { "drained" } else { "undrained" };
        info!(
            service = %service,
            server = %server,
            services_changed = up.services.len(),
            "admin: {what}"
        );
        log_events(&up.events);
        self.save_drains();
        self.converge_services(&up.services).await;
        Reply::changed(up.services.len())
    }
}
