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

use std::collections::HashSet;
use std::net::IpAddr;
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

use crate::commands::{self, Context, Summary};
use crate::config::{self, Config};
use crate::error::Error;
use crate::sysctl;

pub struct WatchOptions {
    pub config_path: PathBuf,
    /// How often the managed sysctls are re-read.
    pub interval: Duration,
    /// Roll back (as `stop`) when asked to exit.
    pub rollback_on_exit: bool,
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
    let mut config = config::load(&options.config_path)?;
    netns::require_net_admin()?;
    let notifier = Notifier::from_env();
    let mut watchdog = Watchdog::from_notifier(&notifier);
    // Both before the first convergence: signals so a SIGTERM meanwhile is
    // handled cleanly once it is done, events so no removal is missed.
    let mut signals = Signals::new().map_err(signal_error)?;
    let mut events = subscribe()?;

    // The watchdog keeps pinging while a convergence waits (for the lock
    // another run holds, at most a minute): waiting is not hanging.
    let first = watchdog
        .keep_alive(&notifier, commands::converge(ctx, &config, false))
        .await?;
    log_changes(&first, "converged");
    let mut tick = tokio::time::interval_at(Instant::now() + options.interval, options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let mut limiter = RateLimiter::new(REPAIR_BURST, REPAIR_REFILL, std::time::Instant::now());
    let mut pending: Option<Instant> = None;
    let mut ticks: u32 = 0;
    let mut repairs: u64 = 0;
    let mut vips = vip_set(&config);
    notify(notifier.ready(&format!(
        "watching {} VIP(s); no repair yet",
        config.vips.len()
    )));
    info!(
        "watching {} VIP(s), sysctls every {:?}",
        config.vips.len(),
        options.interval
    );

    loop {
        tokio::select! {
            event = events.next() => match event {
                Some((message, _)) => {
                    if concerns_us(&message, &vips) && pending.is_none() {
                        pending = Some(Instant::now() + COALESCE);
                    }
                }
                None => {
                    warn!("the netlink event socket closed (events may have been lost); resubscribing");
                    events = subscribe()?;
                    pending = Some(Instant::now());
                }
            },
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                if ticks.is_multiple_of(RESYNC_INTERVALS) {
                    debug!("full check");
                    pending.get_or_insert_with(Instant::now);
                } else if sysctls_drifted(&config) {
                    pending.get_or_insert_with(Instant::now);
                }
            }
            signal = signals.recv() => match signal {
                Signal::Stop => break,
                Signal::Reload => {
                    notify(notifier.reloading());
                    reload(ctx, options, &mut config, &notifier, &mut watchdog).await;
                    vips = vip_set(&config);
                    notify(notifier.ready(&format!("watching {} VIP(s); {repairs} repair(s)", config.vips.len())));
                }
            },
            _ = watchdog.tick() => notify(notifier.watchdog()),
            _ = sleep_until(pending.unwrap_or_else(Instant::now)), if pending.is_some() => {
                match limiter.take(std::time::Instant::now()) {
                    Ok(()) => {
                        pending = None;
                        let converged = watchdog
                            .keep_alive(&notifier, commands::converge(ctx, &config, false))
                            .await;
                        match converged {
                            Ok(summary) if summary.changes.is_empty() => {}
                            Ok(summary) => {
                                repairs += summary.changes.len() as u64;
                                log_changes(&summary, REPAIRED);
                                let last = summary.changes.last().map(ToString::to_string).unwrap_or_default();
                                notify(notifier.status(&format!("watching {} VIP(s); {repairs} repair(s), last: {last}", config.vips.len())));
                            }
                            Err(e) => error!("repair failed: {e}"),
                        }
                    }
                    Err(next) => {
                        let next = Instant::from_std(next);
                        warn!(
                            "repairs rate-limited (more than {REPAIR_BURST} in a short time: is another tool undoing rs-agent?); next attempt in {:.1}s",
                            next.saturating_duration_since(Instant::now()).as_secs_f64()
                        );
                        pending = Some(next);
                    }
                }
            }
        }
    }

    notify(notifier.stopping());
    if options.rollback_on_exit {
        let summary = watchdog
            .keep_alive(&notifier, commands::stop(ctx, false))
            .await?;
        log_changes(&summary, "rolled back on exit");
    } else {
        info!("exiting; the configuration stays in place (rs-agent stop undoes it)");
    }
    Ok(())
}

/// SIGHUP: load the configuration again and converge to it; a broken file
/// is reported and the running configuration kept.
async fn reload(
    ctx: &Context,
    options: &WatchOptions,
    config: &mut Config,
    notifier: &Notifier,
    watchdog: &mut Watchdog,
) {
    match config::load(&options.config_path) {
        Ok(new) => {
            info!(
                "SIGHUP: configuration reloaded from {}",
                options.config_path.display()
            );
            *config = new;
            let converged = watchdog
                .keep_alive(notifier, commands::converge(ctx, config, false))
                .await;
            match converged {
                Ok(summary) => log_changes(&summary, "reloaded"),
                Err(e) => error!("converging to the reloaded configuration failed: {e}"),
            }
        }
        Err(e) => error!("SIGHUP: keeping the running configuration: {e}"),
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

type Events = UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

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

/// A configured VIP removed anywhere, or a change of the loopback link.
fn concerns_us(message: &NetlinkMessage<RouteNetlinkMessage>, vips: &HashSet<IpAddr>) -> bool {
    match &message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(address)) => {
            address.attributes.iter().any(|a| match a {
                AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => vips.contains(ip),
                _ => false,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
        | NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => link
            .header
            .flags
            .contains(netlink_packet_route::link::LinkFlags::Loopback),
        _ => false,
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
            &vips
        ));
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::NewAddress(address_message(vip))),
            &vips
        ));
        let other = "203.0.113.11".parse().unwrap();
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::DelAddress(address_message(other))),
            &vips
        ));
        let mut lo = LinkMessage::default();
        lo.header.flags = LinkFlags::Loopback;
        assert!(concerns_us(&wrap(RouteNetlinkMessage::NewLink(lo)), &vips));
        assert!(!concerns_us(
            &wrap(RouteNetlinkMessage::NewLink(LinkMessage::default())),
            &vips
        ));
    }
}
