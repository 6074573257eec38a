//! `rs-agent watch`: converge, then keep the system converged.
//!
//! Idle, the process sleeps on one multicast rtnetlink socket (address and
//! link events) and a timer. A configured VIP removed from `lo`, or `lo`
//! changing state, schedules a convergence at once; the managed sysctls,
//! which emit no netlink event, are re-read on the interval. Repairs go
//! through the same `converge` as `start`, so the rollback record stays
//! right, and they are rate-limited so a fight with another network manager
//! shows in the log instead of spinning.
//!
//! The subscription comes before the first convergence: a VIP removed while
//! (or just after) the first convergence observes is an event waiting in the
//! socket, not a loss until the next full check.
//!
//! In tunnel mode the tunnel device's link events count like lo's, and the
//! FOU port (no events either) is checked on the interval with the
//! sysctls. With `--agent-listen`, the agent endpoint ([`agent_check`])
//! answers from a verdict refreshed after every convergence, event and
//! interval; with `--no-repair` the watch only observes and answers.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use lvs_common::daemon::{Notifier, RateLimiter, Signal, Signals, Watchdog};
use lvs_common::netns;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressAttribute;
use rtnetlink::MulticastGroup;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, error, info, warn};

use crate::agent_check::{self, Endpoint, Verdict};
use crate::commands::{self, Context, Summary};
use crate::config::{self, Config};
use crate::error::Error;
use crate::fou::Fou;
use crate::sysctl;

pub struct WatchOptions {
    pub config_path: PathBuf,
    /// How often the managed sysctls are re-read.
    pub interval: Duration,
    /// Roll back (as `stop`) when asked to exit.
    pub rollback_on_exit: bool,
    /// Where the agent endpoint listens, if anywhere.
    pub agent_listen: Option<SocketAddr>,
    /// How the endpoint answers, and whom.
    pub agent: agent_check::Settings,
    /// Converge and repair (the default); false: only observe and answer.
    pub repair: bool,
}

/// Every this many intervals, a full convergence runs even without an event,
/// in case events were lost (a full socket buffer drops them).
const RESYNC_INTERVALS: u32 = 12;

/// Events arriving within this delay are handled by one convergence (taking
/// `lo` down removes several addresses at once).
const COALESCE: Duration = Duration::from_millis(20);

/// Repairs allowed in a burst, and the refill period of that budget.
pub const REPAIR_BURST: u32 = 5;
pub const REPAIR_REFILL: Duration = Duration::from_secs(2);

const REPAIRED: &str = "drift repaired";

pub async fn watch(ctx: &Context, options: &WatchOptions) -> Result<(), Error> {
    let mut w = Watcher::start(ctx, options).await?;
    loop {
        // One timer for what is due: a convergence (with repair) or a look
        // for the agent endpoint (without).
        let due = w.pending;
        tokio::select! {
            event = w.events.next() => w.on_netlink(event)?,
            _ = w.tick.tick() => w.on_tick().await,
            signal = w.signals.recv() => match signal {
                Signal::Stop => break,
                Signal::Reload => w.on_reload().await,
            },
            _ = w.watchdog.tick() => notify(w.notifier.watchdog()),
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => w.on_due().await,
        }
    }
    w.stop().await
}

/// The watch's state between events: what it watches for, what it
/// answers with, and what is due.
struct Watcher<'a> {
    ctx: &'a Context,
    options: &'a WatchOptions,
    config: Config,
    /// The configured VIPs and the tunnel device: what a netlink event must
    /// name to concern the watch.
    vips: HashSet<IpAddr>,
    device: Option<&'static str>,
    notifier: Notifier,
    watchdog: Watchdog,
    signals: Signals,
    events: Events,
    /// The sysctl (and FOU port) check, and every [`RESYNC_INTERVALS`]
    /// ticks a full convergence.
    tick: tokio::time::Interval,
    ticks: u32,
    /// The agent endpoint, if `--agent-listen`: answers on its own thread
    /// from the verdict the watch hands it.
    endpoint: Option<Endpoint>,
    limiter: RateLimiter,
    /// When the next convergence (without repair: the next look) is due.
    pending: Option<Instant>,
    /// Changes made by repairs since the start.
    repairs: u64,
}

impl<'a> Watcher<'a> {
    /// Loads the configuration, subscribes, converges once (with repair)
    /// and starts the endpoint; then tells systemd it is ready.
    async fn start(ctx: &'a Context, options: &'a WatchOptions) -> Result<Watcher<'a>, Error> {
        let config = config::load(&options.config_path)?;
        if options.repair {
            netns::require_net_admin()?;
        }
        let notifier = Notifier::from_env();
        let mut watchdog = Watchdog::from_notifier(&notifier);
        // Both before the first convergence: signals so a SIGTERM meanwhile is
        // handled cleanly once it is done, events so no removal is missed.
        let signals = Signals::new().map_err(signal_error)?;
        let events = subscribe()?;
        // Bound before anything changes: a taken port fails the run cleanly.
        let bound = options.agent_listen.map(agent_check::bind).transpose()?;

        if options.repair {
            // The watchdog keeps pinging while a convergence waits (for the lock
            // another run holds, at most a minute): waiting is not hanging.
            let first = watchdog
                .keep_alive(&notifier, commands::converge(ctx, &config, false))
                .await?;
            log_changes(&first, "converged");
        }
        let endpoint = match bound {
            Some(bound) => {
                let endpoint = Endpoint::start(
                    bound,
                    ctx.drain_files()?,
                    options.agent.clone(),
                    verdict(ctx, &config).await,
                )?;
                info!("agent endpoint on {}", endpoint.address);
                Some(endpoint)
            }
            None => None,
        };
        let mut tick =
            tokio::time::interval_at(Instant::now() + options.interval, options.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        let w = Watcher {
            ctx,
            options,
            vips: vip_set(&config),
            device: config.tunnel.map(|t| t.device()),
            config,
            notifier,
            watchdog,
            signals,
            events,
            tick,
            ticks: 0,
            endpoint,
            limiter: RateLimiter::new(REPAIR_BURST, REPAIR_REFILL, std::time::Instant::now()),
            pending: None,
            repairs: 0,
        };
        notify(w.notifier.ready(&format!(
            "watching {} VIP(s); no repair yet",
            w.config.vips.len()
        )));
        info!(
            "watching {} VIP(s), sysctls every {:?}",
            w.config.vips.len(),
            options.interval
        );
        Ok(w)
    }

    /// A netlink event (`None`: the socket closed). One that concerns the
    /// watch schedules a convergence after [`COALESCE`], unless one is
    /// already due.
    fn on_netlink(
        &mut self,
        event: Option<(Message, rtnetlink::sys::SocketAddr)>,
    ) -> Result<(), Error> {
        match event {
            Some((message, _)) => {
                if concerns_us(&message, &self.vips, self.device) && self.pending.is_none() {
                    self.pending = Some(Instant::now() + COALESCE);
                }
            }
            None => {
                warn!("the netlink event socket closed (events may have been lost); resubscribing");
                self.events = subscribe()?;
                self.pending = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// The interval: a full convergence every [`RESYNC_INTERVALS`] ticks,
    /// else the sysctls and the FOU port (which emit no event) are read.
    async fn on_tick(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(RESYNC_INTERVALS) {
            debug!("full check");
            self.pending.get_or_insert_with(Instant::now);
        } else if sysctls_drifted(&self.config) || fou_port_missing(&self.config) {
            self.pending.get_or_insert_with(Instant::now);
        } else {
            // Drift without repair (a sysctl, with --no-repair) shows too.
            self.refresh_endpoint().await;
        }
    }

    /// SIGHUP: the configuration loaded again and converged to (see
    /// [`Watcher::reload`]).
    async fn on_reload(&mut self) {
        notify(self.notifier.reloading());
        self.reload().await;
        self.vips = vip_set(&self.config);
        self.device = self.config.tunnel.map(|t| t.device());
        self.refresh_endpoint().await;
        notify(self.notifier.ready(&format!(
            "watching {} VIP(s); {} repair(s)",
            self.config.vips.len(),
            self.repairs
        )));
    }

    /// The pending time has come: repair (rate-limited), or without repair
    /// only look again for the endpoint.
    async fn on_due(&mut self) {
        if !self.options.repair {
            self.pending = None;
            self.refresh_endpoint().await;
            return;
        }
        match self.limiter.take(std::time::Instant::now()) {
            Ok(()) => {
                self.pending = None;
                self.repair().await;
                self.refresh_endpoint().await;
            }
            Err(next) => {
                let next = Instant::from_std(next);
                warn!(
                    "repairs rate-limited (more than {REPAIR_BURST} in a short time: is another tool undoing rs-agent?); next attempt in {:.1}s",
                    next.saturating_duration_since(Instant::now()).as_secs_f64()
                );
                self.pending = Some(next);
            }
        }
    }

    /// One convergence to the running configuration, the watchdog pinging
    /// while it waits (for the lock another run holds, at most a minute).
    async fn converge(&mut self) -> Result<Summary, Error> {
        self.watchdog
            .keep_alive(
                &self.notifier,
                commands::converge(self.ctx, &self.config, false),
            )
            .await
    }

    /// One convergence; what it changed is a repair, logged and counted.
    async fn repair(&mut self) {
        match self.converge().await {
            Ok(summary) if summary.changes.is_empty() => {}
            Ok(summary) => {
                self.repairs += summary.changes.len() as u64;
                log_changes(&summary, REPAIRED);
                let last = summary
                    .changes
                    .last()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                notify(self.notifier.status(&format!(
                    "watching {} VIP(s); {} repair(s), last: {last}",
                    self.config.vips.len(),
                    self.repairs
                )));
            }
            Err(e) => error!("repair failed: {e}"),
        }
    }

    /// SIGHUP: load the configuration again and converge to it; a broken
    /// file is reported and the running configuration kept.
    async fn reload(&mut self) {
        let path = &self.options.config_path;
        match config::load(path) {
            Ok(new) => {
                info!("SIGHUP: configuration reloaded from {}", path.display());
                self.config = new;
                match self.converge().await {
                    Ok(summary) => log_changes(&summary, "reloaded"),
                    Err(e) => error!("converging to the reloaded configuration failed: {e}"),
                }
            }
            Err(e) => error!("SIGHUP: keeping the running configuration: {e}"),
        }
    }

    /// The endpoint's verdict looked at again, if there is an endpoint.
    async fn refresh_endpoint(&self) {
        if let Some(endpoint) = &self.endpoint {
            endpoint.update(verdict(self.ctx, &self.config).await);
        }
    }

    /// SIGTERM/SIGINT: the endpoint says so, then a rollback if asked.
    async fn stop(mut self) -> Result<(), Error> {
        notify(self.notifier.stopping());
        if let Some(endpoint) = &self.endpoint {
            endpoint.update(Verdict::unknown("rs-agent watch is stopping"));
        }
        if self.options.rollback_on_exit {
            let summary = self
                .watchdog
                .keep_alive(&self.notifier, commands::stop(self.ctx, false))
                .await?;
            log_changes(&summary, "rolled back on exit");
        } else {
            info!("exiting; the configuration stays in place (rs-agent stop undoes it)");
        }
        Ok(())
    }
}

/// A failed notification is retried by the next one; it must not stop the
/// service, only be visible.
fn notify(result: std::io::Result<()>) {
    if let Err(e) = result {
        warn!("sd_notify: {e}");
    }
}

fn log_changes(summary: &Summary, what: &str) {
    for change in &summary.changes {
        // Repairs are news (something undid the agent); the rest is routine.
        if what == REPAIRED {
            warn!("{what}: {change}");
        } else {
            info!("{what}: {change}");
        }
    }
    for w in &summary.warnings {
        warn!("{w}");
    }
}

fn signal_error(e: std::io::Error) -> Error {
    Error::netlink("installing signal handlers", e)
}

fn vip_set(config: &Config) -> HashSet<IpAddr> {
    config.vips.iter().map(|v| v.address).collect()
}

type Message = NetlinkMessage<RouteNetlinkMessage>;
type Events = UnboundedReceiver<(Message, rtnetlink::sys::SocketAddr)>;

fn subscribe() -> Result<Events, Error> {
    let (connection, _handle, events) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(|e| Error::netlink("subscribing to address and link events", e))?;
    tokio::spawn(connection);
    debug!("subscribed to address and link events");
    Ok(events)
}

/// The agent endpoint's view: desired against actual, now.
async fn verdict(ctx: &Context, config: &Config) -> Verdict {
    match commands::look(ctx, config, &[]).await {
        Ok(status) => Verdict::looked(status.broken.first().cloned(), status.in_sync),
        Err(e) => {
            warn!("agent endpoint: cannot read the system: {e}");
            Verdict::unknown("rs-agent cannot read the system")
        }
    }
}

/// A configured VIP removed anywhere, or a change of the loopback link or
/// of the tunnel device.
fn concerns_us(
    message: &NetlinkMessage<RouteNetlinkMessage>,
    vips: &HashSet<IpAddr>,
    device: Option<&str>,
) -> bool {
    match &message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(address)) => {
            address.attributes.iter().any(|a| match a {
                AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => vips.contains(ip),
                _ => false,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
        | NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            link.header
                .flags
                .contains(netlink_packet_route::link::LinkFlags::Loopback)
                || device.is_some_and(|device| {
                    link.attributes.iter().any(|a| {
                        matches!(a, netlink_packet_route::link::LinkAttribute::IfName(n) if n == device)
                    })
                })
        }
        _ => false,
    }
}

/// GUE: whether the FOU port is gone (it emits no event). A failure to
/// look counts: converging will say why.
fn fou_port_missing(config: &Config) -> bool {
    let Some(port) = config.tunnel.and_then(|t| t.fou_port()) else {
        return false;
    };
    match Fou::open().and_then(|fou| fou.map(|mut f| f.listeners()).transpose()) {
        Ok(Some(listeners)) => !listeners
            .iter()
            .any(|l| l.port == port.port && l.family == port.family),
        _ => true,
    }
}

/// Whether a managed sysctl differs from what the configuration wants (a
/// sysctl that cannot be read counts: converging will say why).
fn sysctls_drifted(config: &Config) -> bool {
    debug!("sysctl check");
    config
        .sysctls()
        .iter()
        .any(|s| sysctl::read(&s.key).map_or(true, |v| v != s.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_vip_removals_and_loopback_changes_matter() {
        use netlink_packet_route::address::AddressMessage;
        use netlink_packet_route::link::{LinkFlags, LinkMessage};
        let vip: IpAddr = "203.0.113.10".parse().unwrap();
        let vips: HashSet<IpAddr> = [vip].into();
        let address_message = |ip: IpAddr| {
            let mut m = AddressMessage::default();
            m.attributes.push(AddressAttribute::Local(ip));
            m
        };
        let wrap = |m: RouteNetlinkMessage| NetlinkMessage::from(m);
        assert!(concerns_us(
            &wrap(RouteNetlinkMessage::DelAddress(address_message(vip))),
            &vips,
            None
        ));
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::NewAddress(address_message(vip))),
            &vips,
            None
        ));
        let other = "203.0.113.11".parse().unwrap();
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::DelAddress(address_message(other))),
            &vips,
            None
        ));
        let mut lo = LinkMessage::default();
        lo.header.flags = LinkFlags::Loopback;
        assert!(concerns_us(
            &wrap(RouteNetlinkMessage::NewLink(lo)),
            &vips,
            None
        ));
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::NewLink(LinkMessage::default())),
            &vips,
            None
        ));
        // The tunnel device, by name.
        let mut tunl0 = LinkMessage::default();
        tunl0
            .attributes
            .push(netlink_packet_route::link::LinkAttribute::IfName(
                "tunl0".into(),
            ));
        let tunl0 = wrap(RouteNetlinkMessage::NewLink(tunl0));
        assert!(concerns_us(&tunl0, &vips, Some("tunl0")));
        assert!(!concerns_us(&tunl0, &vips, Some("gre0")));
        assert!(!concerns_us(&tunl0, &vips, None));
    }
}
