//! The subcommands. Each one takes its lock, observes once, decides with the
//! pure planner, and only then touches the system.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tracing::{debug, info, warn};

use lvs_common::netns;

use crate::apply::apply;
use crate::config::{self, Config};
use crate::domain::SysctlKey;
use crate::drain::{Drain, DrainFiles};
use crate::error::{Error, exit_code};
use crate::netlink::Netlink;
use crate::observe::{Observed, Scope};
use crate::plan::{Change, Plan, plan_start, plan_stop};
use crate::state::{Record, Store};
use crate::status::{Status, status};
use crate::sysctl_d;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
    /// Prometheus text format (node_exporter's textfile collector): `check` only.
    Prometheus,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone)]
pub struct Context {
    pub state_dir: PathBuf,
    /// Where `drain --persistent` keeps drains across reboots.
    pub persist_dir: PathBuf,
    pub output: Output,
}

impl Context {
    /// The drain files of the calling thread's namespace.
    pub fn drain_files(&self) -> Result<DrainFiles, Error> {
        Ok(DrainFiles::locate(
            &self.state_dir,
            &self.persist_dir,
            &netns::current_id()?,
        ))
    }
}

/// The result of `start` or `stop`, printed on stdout.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub command: &'static str,
    pub changed: bool,
    pub dry_run: bool,
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
    pub record: PathBuf,
}

impl Summary {
    pub fn print(&self, output: Output) {
        match output {
            Output::Json => println!("{}", serde_json::to_string(self).unwrap_or_default()),
            Output::Text | Output::Prometheus => {
                let verb = if self.dry_run { "would " } else { "" };
                for change in &self.changes {
                    println!("{verb}{change}");
                }
                if self.changes.is_empty() {
                    println!("{}: no changes needed", self.command);
                } else {
                    println!(
                        "{}: {} change(s){}",
                        self.command,
                        self.changes.len(),
                        if self.dry_run {
                            " planned, none made (dry run)"
                        } else {
                            " made"
                        }
                    );
                }
            }
        }
        for w in &self.warnings {
            warn!("{w}");
        }
    }
}

pub async fn start(ctx: &Context, config_path: &Path, dry_run: bool) -> Result<Summary, Error> {
    let config = config::load(config_path)?;
    if !dry_run {
        netns::require_net_admin()?;
    }
    converge(ctx, &config, dry_run).await
}

/// Brings the system to `config`; also what watch mode runs on each repair.
pub async fn converge(ctx: &Context, config: &Config, dry_run: bool) -> Result<Summary, Error> {
    debug!(
        "converge: {} the record",
        if dry_run { "reading" } else { "locking" }
    );
    let netns_id = netns::current_id()?;
    let store = open_store(ctx, &netns_id, dry_run).await?;
    let record = store.load()?;
    let netlink = Netlink::connect()?;
    debug!("converge: observing");
    let observed = Observed::read(&netlink, &scope(config, &record)).await?;
    let plan = plan_start(config, &observed, &record)?;
    execute("start", &store, &netlink, &record, plan, dry_run).await
}

pub async fn stop(ctx: &Context, dry_run: bool) -> Result<Summary, Error> {
    if !dry_run {
        netns::require_net_admin()?;
    }
    let netns_id = netns::current_id()?;
    let store = open_store(ctx, &netns_id, dry_run).await?;
    let record = store.load()?;
    let netlink = Netlink::connect()?;
    let scope = Scope {
        sysctls: record.sysctls.iter().map(|e| e.key.clone()).collect(),
        tunnel: None,
        fou: !record.fou_ports.is_empty(),
    };
    let observed = Observed::read(&netlink, &scope).await?;
    let plan = plan_stop(&observed, &record);
    execute("stop", &store, &netlink, &record, plan, dry_run).await
}

async fn open_store(ctx: &Context, netns_id: &str, dry_run: bool) -> Result<Store, Error> {
    if dry_run {
        Ok(Store::read_only(&ctx.state_dir, netns_id))
    } else {
        Store::lock(&ctx.state_dir, netns_id).await
    }
}

/// What a run reads beyond links, addresses and the ARP sysctls: the
/// sysctls the configuration manages and those the record says the agent
/// changed; the tunnel; the FOU ports when configured or recorded.
pub fn scope(config: &Config, record: &Record) -> Scope {
    let configured = config.sysctls().into_iter().map(|s| s.key);
    let recorded = record.sysctls.iter().map(|e| e.key.clone());
    Scope {
        sysctls: configured.chain(recorded).collect::<Vec<SysctlKey>>(),
        tunnel: config.tunnel,
        fou: !record.fou_ports.is_empty(),
    }
}

async fn execute(
    command: &'static str,
    store: &Store,
    netlink: &Netlink,
    record: &Record,
    plan: Plan,
    dry_run: bool,
) -> Result<Summary, Error> {
    let mut summary = Summary {
        command,
        changed: false,
        dry_run,
        changes: plan.changes.clone(),
        warnings: plan.warnings.clone(),
        record: store.path().to_path_buf(),
    };
    if dry_run {
        summary.changed = !plan.changes.is_empty();
        return Ok(summary);
    }
    if plan.changes.is_empty() {
        if &plan.record != record {
            store.save(&plan.record)?;
        }
        return Ok(summary);
    }
    // Written first so that a run cut short still leaves a record covering
    // everything it may have changed.
    store.save(&record.union(&plan.record))?;
    match apply(netlink, &plan.changes).await {
        Ok(applied) => {
            let mut final_record = plan.record;
            if !applied.found_present.is_empty() {
                let not_ours: HashSet<_> = applied.found_present.iter().collect();
                final_record
                    .addresses
                    .retain(|a| !not_ours.contains(&a.spec));
            }
            final_record
                .links_created
                .retain(|l| !applied.links_found.contains(l));
            store.save(&final_record)?;
            summary.changed = !applied.done.is_empty();
            summary.changes = applied.done;
            info!("{command}: {} change(s) made", summary.changes.len());
            Ok(summary)
        }
        Err(e) => {
            if let Error::RolledBack { .. } = e {
                store.save(record)?;
            }
            Err(e)
        }
    }
}

/// `status` and `check`: read-only, no privileges needed beyond reading.
pub async fn report(ctx: &Context, config_path: &Path) -> Result<Status, Error> {
    let config = config::load(config_path)?;
    let mut status = look(ctx, &config, &sysctl_d::system_settings()).await?;
    match ctx.drain_files()?.load() {
        Ok(drain) => status.set_drain(drain),
        Err(e) => status.warnings.push(format!(
            "{e} (run as root to see whether this server is drained)"
        )),
    }
    Ok(status)
}

/// Desired against actual, read-only: what `report` and the agent
/// endpoint's verdict build on (`boot_settings` empty: no sysctl.d scan).
pub async fn look(
    ctx: &Context,
    config: &Config,
    boot_settings: &[sysctl_d::Setting],
) -> Result<Status, Error> {
    let store = Store::read_only(&ctx.state_dir, &netns::current_id()?);
    // A monitoring probe may run unprivileged: without the (root-only) record
    // the comparison still works, only the origin of each VIP is unknown.
    let (record, record_readable) = match store.load() {
        Ok(record) => (record, true),
        Err(e) if !store.readable() => {
            info!("{e}");
            (Record::default(), false)
        }
        Err(e) => return Err(e),
    };
    let netlink = Netlink::connect()?;
    let observed = Observed::read(&netlink, &scope(config, &record)).await?;
    let mut status = status(config, &observed, &record, boot_settings);
    if !record_readable {
        status.warnings.push(format!(
            "cannot read the rollback record {} (run as root to see which VIPs rs-agent added)",
            store.path().display()
        ));
        for vip in &mut status.vips {
            vip.origin = vip.origin.map(|_| "unknown");
        }
    }
    Ok(status)
}

/// Exit code of `check` for a status.
pub fn check_code(status: &Status) -> u8 {
    if status.in_sync {
        exit_code::OK
    } else {
        exit_code::DRIFT
    }
}

/// The result of `drain` or `undrain`.
#[derive(Debug, Serialize)]
pub struct DrainSummary {
    pub command: &'static str,
    pub changed: bool,
    pub drained: bool,
    pub drain: Option<Drain>,
    pub file: PathBuf,
}

impl DrainSummary {
    pub fn print(&self, output: Output) {
        match output {
            Output::Json => println!("{}", serde_json::to_string(self).unwrap_or_default()),
            Output::Text | Output::Prometheus => {
                let what = match (&self.drain, self.changed) {
                    (Some(_), true) => "drained",
                    (Some(_), false) => "already drained",
                    (None, true) => "undrained",
                    (None, false) => "was not drained",
                };
                let reason = self
                    .drain
                    .as_ref()
                    .and_then(|d| d.reason.as_deref())
                    .map_or(String::new(), |r| format!(" ({r})"));
                let persistent = if self.drain.as_ref().is_some_and(|d| d.persistent) {
                    ", persistent"
                } else {
                    ""
                };
                println!("{}: {what}{reason}{persistent}", self.command);
            }
        }
    }
}

/// `drain`: new connections should go elsewhere; the agent endpoint
/// answers `drain` from now on.
pub fn drain(ctx: &Context, reason: Option<&str>, persistent: bool) -> Result<DrainSummary, Error> {
    netns::require_net_admin()?;
    let files = ctx.drain_files()?;
    let (drain, changed) = files.drain(reason, persistent)?;
    if changed {
        info!(
            "drained{}",
            drain
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(": {r}"))
        );
    }
    Ok(DrainSummary {
        command: "drain",
        changed,
        drained: true,
        drain: Some(drain),
        file: files.runtime,
    })
}

/// `undrain`: the drain (runtime and persistent) is lifted.
pub fn undrain(ctx: &Context) -> Result<DrainSummary, Error> {
    netns::require_net_admin()?;
    let files = ctx.drain_files()?;
    let changed = files.undrain()?;
    Ok(DrainSummary {
        command: "undrain",
        changed,
        drained: false,
        drain: None,
        file: files.runtime,
    })
}
