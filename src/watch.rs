//! `rs-agent watch`: converge, then keep the system converged.
//!
//! Idle, the process sleeps on one multicast rtnetlink socket (address and
//! link events) and a timer. A configured VIP removed from `lo`, or `lo`
//! changing state, schedules a convergence at once; the ARP sysctls, which
//! emit no netlink event, are re-read on the interval. Repairs go through the
//! same `converge` as `start`, so the rollback record stays right, and they
//! are rate-limited so a fight with another network manager shows in the log
//! instead of spinning.

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressAttribute;
use rtnetlink::MulticastGroup;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};
use tracing::{error, info, warn};

use crate::commands::{self, Context, Summary};
use crate::config::{self, Config};
use crate::error::Error;
use crate::netns;
use crate::sysctl::{self, ArpKey, SysctlKey};

pub struct WatchOptions {
    pub config_path: PathBuf,
    /// How often the ARP sysctls are re-read.
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
const REPAIR_BURST: u32 = 5;
const REPAIR_REFILL: Duration = Duration::from_secs(2);

const REPAIRED: &str = "drift repaired";

pub async fn watch(ctx: &Context, options: &WatchOptions) -> Result<(), Error> {
    let mut config = config::load(&options.config_path)?;
    netns::require_net_admin()?;
    let notifier = Notifier::from_env();

    let first = commands::converge(ctx, &config, false).await?;
    log_changes(&first, "converged");
    let mut events = subscribe()?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut tick = tokio::time::interval_at(Instant::now() + options.interval, options.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watchdog_period = notifier.watchdog_period();
    let mut watchdog = tokio::time::interval(watchdog_period.unwrap_or(Duration::from_secs(3600)));

    let mut limiter = RateLimiter::new(REPAIR_BURST, REPAIR_REFILL);
    let mut pending: Option<Instant> = None;
    let mut ticks: u32 = 0;
    let mut repairs: u64 = 0;
    let mut vips = vip_set(&config);
    notifier.send(&format!(
        "READY=1\nSTATUS=watching {} VIP(s); no repair yet",
        config.vips.len()
    ));
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
                if ticks.is_multiple_of(RESYNC_INTERVALS) || sysctls_drifted(&config) {
                    pending.get_or_insert_with(Instant::now);
                }
            }
            _ = hangup.recv() => {
                match config::load(&options.config_path) {
                    Ok(new) => {
                        info!("SIGHUP: configuration reloaded from {}", options.config_path.display());
                        config = new;
                        vips = vip_set(&config);
                        match commands::converge(ctx, &config, false).await {
                            Ok(summary) => log_changes(&summary, "reloaded"),
                            Err(e) => error!("converging to the reloaded configuration failed: {e}"),
                        }
                    }
                    Err(e) => error!("SIGHUP: keeping the running configuration: {e}"),
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = watchdog.tick(), if watchdog_period.is_some() => notifier.send("WATCHDOG=1"),
            _ = sleep_until(pending.unwrap_or_else(Instant::now)), if pending.is_some() => {
                match limiter.take(Instant::now()) {
                    Ok(()) => {
                        pending = None;
                        match commands::converge(ctx, &config, false).await {
                            Ok(summary) if summary.changes.is_empty() => {}
                            Ok(summary) => {
                                repairs += summary.changes.len() as u64;
                                log_changes(&summary, REPAIRED);
                                let last = summary.changes.last().map(ToString::to_string).unwrap_or_default();
                                notifier.send(&format!("STATUS=watching {} VIP(s); {repairs} repair(s), last: {last}", config.vips.len()));
                            }
                            Err(e) => error!("repair failed: {e}"),
                        }
                    }
                    Err(next) => {
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

    notifier.send("STOPPING=1");
    if options.rollback_on_exit {
        let summary = commands::stop(ctx, false).await?;
        log_changes(&summary, "rolled back on exit");
    } else {
        info!("exiting; the configuration stays in place (rs-agent stop undoes it)");
    }
    Ok(())
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

fn sysctls_drifted(config: &Config) -> bool {
    config.arp.interfaces.iter().any(|interface| {
        ArpKey::ALL.iter().any(|&key| {
            let wanted = config.arp.desired(key);
            sysctl::read(&SysctlKey::new(interface, key)).map_or(true, |v| v != wanted)
        })
    })
}

/// A token bucket: `burst` repairs at once, then one per `refill`.
struct RateLimiter {
    burst: u32,
    refill: Duration,
    tokens: u32,
    last_refill: Instant,
}

impl RateLimiter {
    fn new(burst: u32, refill: Duration) -> Self {
        RateLimiter {
            burst,
            refill,
            tokens: burst,
            last_refill: Instant::now(),
        }
    }

    /// Takes a token, or says when the next one is available.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let elapsed = now.saturating_duration_since(self.last_refill);
        let earned = (elapsed.as_nanos() / self.refill.as_nanos()) as u32;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(self.burst);
            self.last_refill += self.refill * earned;
        }
        if self.tokens > 0 {
            if self.tokens == self.burst {
                self.last_refill = now;
            }
            self.tokens -= 1;
            Ok(())
        } else {
            Err(self.last_refill + self.refill)
        }
    }
}

/// sd_notify(3) over $NOTIFY_SOCKET, without linking libsystemd.
struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    fn from_env() -> Self {
        use std::os::linux::net::SocketAddrExt;
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.into_string().ok()?;
            let address = match path.strip_prefix('@') {
                Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name).ok()?,
                None => std::os::unix::net::SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, address))
        });
        Notifier { socket }
    }

    fn send(&self, state: &str) {
        if let Some((socket, address)) = &self.socket
            && let Err(e) = socket.send_to_addr(state.as_bytes(), address)
        {
            warn!("sd_notify: {e}");
        }
    }

    /// Half the watchdog timeout systemd asked for, if it asked this process.
    fn watchdog_period(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_then_one_per_period() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(3, Duration::from_secs(2));
        limiter.last_refill = start;
        for _ in 0..3 {
            assert!(limiter.take(start).is_ok());
        }
        let next = limiter.take(start).unwrap_err();
        assert_eq!(next, start + Duration::from_secs(2));
        assert!(limiter.take(start + Duration::from_millis(1999)).is_err());
        assert!(limiter.take(start + Duration::from_secs(2)).is_ok());
        assert!(limiter.take(start + Duration::from_secs(2)).is_err());
        // A long quiet spell refills the whole burst, no more.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take(later).is_ok());
        }
        assert!(limiter.take(later).is_err());
    }

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
