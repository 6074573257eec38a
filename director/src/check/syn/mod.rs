//! Half-open ("SYN") TCP checks: a SYN from a raw socket; a SYN-ACK back
//! means the port listens, a RST means refused, silence until the timeout
//! means down. The director's own kernel answers the SYN-ACK with a RST (no
//! socket of ours owns the 4-tuple), so no connection is ever established:
//! the server's application never sees the check, and both kernels do
//! about a third of a connect check's work (no socket, no child socket on
//! the server, no close). At 20,000 checks every 5 s that work was most of
//! the checker's CPU.
//!
//! One [`Prober`] per [`Checker`](super::Checker), one raw socket per
//! address family, created on first use, and one task per socket reading
//! the replies. Every probe of a family uses the same source port, reserved
//! by an ordinary TCP socket bound to it and never listening: no other
//! local socket can take the port, and the kernel resets whatever reaches
//! it (what turns a SYN-ACK into a RST to the server). Probes in flight are
//! matched to replies by the server's address and port and by the
//! acknowledged ISN.
// Raw sockets: reads into uninitialised buffers and the socket calls that
// socket2 does not wrap (each block has its SAFETY: argument).
#![allow(unsafe_code)]

mod isn;
// pub(crate) for the fuzz targets (crate::fuzz).
pub(crate) mod packet;

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::CheckOutcome;
use super::reason::{failed_to_connect, out_of_local_resources, timeout_reason};
pub use packet::{Answer, Insn};

#[cfg(test)]
pub(crate) use packet::{
    ABS, B, H, HEADER_LEN, IND, JEQ, JMP, JSET, LD, LDX, MSH, RET, SNAP_LEN, checksum_v4,
    filter_v4, filter_v6, ipv4_payload, parse_reply, syn,
};

/// The SYN is sent again once if no answer came within this (the kernel's
/// initial retransmission timeout), so that one lost packet does not fail
/// a check with the default 2 s timeout.
const RETRANSMIT_AFTER: Duration = Duration::from_secs(1);
/// How long a source address found for a destination is used before it is
/// looked up again (routes change; a timed-out probe drops it at once).
const SOURCE_TTL: Duration = Duration::from_secs(60);
/// Destinations whose source address is cached, at most.
const SOURCE_CACHE_MAX: usize = 65_536;
/// Receive buffer asked for the raw sockets: a burst of a thousand replies
/// (a Checker's worth in flight) must not overflow the default ~200 KiB.
const RECV_BUFFER: usize = 4 << 20;
/// How often the replies are read (see [`receive`]).
const RECEIVE_TICK: Duration = Duration::from_millis(5);
/// Replies read per tick at most (then the runtime's other tasks run): a
/// tick's worth at 800,000 checks a second.
const RECEIVE_BATCH: usize = 4096;
/// How soon a SYN that met a full send buffer is tried again.
const SEND_RETRY: Duration = Duration::from_millis(1);

/// The raw sockets of one daemon, created on first use per family. A family
/// whose socket cannot be created (no CAP_NET_RAW, no IPv6 in the kernel)
/// is logged once and its checks run as connect checks.
#[derive(Debug)]
pub struct Prober {
    cap: usize,
    v4: OnceLock<Option<Running>>,
    v6: OnceLock<Option<Running>>,
    /// Held while a family is being opened (one open at a time).
    opening: Mutex<()>,
}

#[derive(Debug)]
struct Running {
    family: Arc<Family>,
    receiver: JoinHandle<()>,
}

impl Prober {
    /// At most `cap` probes in flight per family (the Checker's permits).
    pub fn new(cap: usize) -> Prober {
        Prober {
            cap: cap.max(1),
            v4: OnceLock::new(),
            v6: OnceLock::new(),
            opening: Mutex::new(()),
        }
    }

    /// The family of `address`, opened on the first call (which must run
    /// on a tokio runtime); `Ok(None)` if raw sockets are unavailable for
    /// good (logged once). An open that failed for want of descriptors or
    /// memory is an error, and the next check tries again: a daemon that
    /// was short of descriptors once must not lose half-open checks for
    /// its lifetime.
    pub fn family(&self, address: IpAddr) -> io::Result<Option<&Arc<Family>>> {
        let (cell, v6) = match address {
            IpAddr::V4(_) => (&self.v4, false),
            IpAddr::V6(_) => (&self.v6, true),
        };
        if let Some(running) = cell.get() {
            return Ok(running.as_ref().map(|r| &r.family));
        }
        let _opening = lock(&self.opening);
        if let Some(running) = cell.get() {
            return Ok(running.as_ref().map(|r| &r.family));
        }
        let running = match Family::open(v6, self.cap) {
            Ok(family) => {
                let receiver = tokio::spawn(receive(family.clone()));
                Some(Running { family, receiver })
            }
            Err(e) if out_of_local_resources(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(
                    "half-open checks over IPv{}: no raw socket ({}; they need CAP_NET_RAW): running them as connect checks",
                    if v6 { 6 } else { 4 },
                    super::reason::io_reason(&e)
                );
                None
            }
        };
        let running = cell.get_or_init(|| running);
        Ok(running.as_ref().map(|r| &r.family))
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        // The receive tasks hold their family: stop them so that the raw
        // sockets and the reserved ports go with the Checker.
        for cell in [&self.v4, &self.v6] {
            if let Some(Some(r)) = cell.get() {
                r.receiver.abort();
            }
        }
    }
}

/// One address family's raw socket, reserved port and probes in flight.
#[derive(Debug)]
pub struct Family {
    /// Non-blocking and outside the runtime's epoll: see [`receive`].
    raw: Socket,
    /// Bound to `port`, never listening (see the module's documentation).
    _reserved: Socket,
    port: u16,
    v6: bool,
    cap: usize,
    pending: Mutex<Pending>,
    /// IPv4 only: the source address the kernel picks for a destination,
    /// which the checksum covers.
    /// With when it was found, in seconds since `epoch`: 12 bytes an
    /// entry, not 24 with an `Instant` (one entry per IPv4 server).
    sources: Mutex<HashMap<Ipv4Addr, (Ipv4Addr, u32), FastHash>>,
    epoch: Instant,
    /// The UDP socket that looks sources up (see [`Family::source`]).
    router: Mutex<Option<Socket>>,
    /// A probe started while none was in flight: the receiver, idle
    /// meanwhile, ticks again.
    started: tokio::sync::Notify,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    by_server: HashMap<SocketAddr, Vec<Waiter>, FastHash>,
    waiters: usize,
}

/// The probe tables' hash: their keys are the configured servers (a reply
/// only looks one up, never adds one), so SipHash's defence against chosen
/// keys buys nothing, and its cost was paid four times per probe.
type FastHash = std::hash::BuildHasherDefault<AddrHasher>;

#[derive(Debug, Default, Clone, Copy)]
struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // FxHash's step.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its buckets from the low bits, which FxHash's
        // step leaves poorly mixed (20,000 addresses that differ in their
        // last octets crowded into a few buckets): murmur3's finaliser.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    isn: u32,
    done: oneshot::Sender<Answer>,
}

impl Family {
    fn open(v6: bool, cap: usize) -> io::Result<Arc<Family>> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
        let raw = Socket::new(domain, Type::RAW, Some(Protocol::TCP))?;
        let reserved = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
        let any = if v6 {
            reserved.set_only_v6(true)?;
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        reserved.bind(&SocketAddr::new(any, 0).into())?;
        let port = reserved
            .local_addr()?
            .as_socket()
            .map(|a| a.port())
            .ok_or_else(|| io::Error::other("reserved socket has no port"))?;
        let program: Vec<SockFilter> = if v6 {
            packet::filter_v6(port).iter().map(sock_filter).collect()
        } else {
            packet::filter_v4(port).iter().map(sock_filter).collect()
        };
        raw.attach_filter(&program)?;
        if v6 {
            set_ipv6_checksum(&raw)?;
        }
        grow_receive_buffer(&raw);
        if !v6 {
            // DF, as on any Linux SYN; and the kernel then gives the packet
            // IP id 0 instead of drawing a random one per SYN.
            set_dont_fragment(&raw)?;
        }
        raw.set_nonblocking(true)?;
        // Packets queued between socket() and the filter are still there:
        // harmless (parsing checks the port too), but read them off.
        let mut scratch = [MaybeUninit::<u8>::uninit(); 64];
        while raw.recv(&mut scratch).is_ok() {}
        Ok(Arc::new(Family {
            raw,
            _reserved: reserved,
            port,
            v6,
            cap,
            pending: Mutex::new(Pending::default()),
            sources: Mutex::new(HashMap::default()),
            epoch: Instant::now(),
            router: Mutex::new(None),
            started: tokio::sync::Notify::new(),
            next_id: AtomicU64::new(0),
        }))
    }

    /// Probes `target` once: its outcome and when the SYN went out (the
    /// timeout runs from there).
    pub async fn probe(&self, target: SocketAddr, timeout: Duration) -> (CheckOutcome, Instant) {
        // One clock reading per probe, used for the source cache too.
        let started = Instant::now();
        let isn = match isn::next() {
            Ok(isn) => isn,
            Err(e) => return (failed_to_connect(&e, ""), started),
        };
        let header = match self.header(target, isn, started) {
            Ok(h) => h,
            Err(e) => return (failed_to_connect(&e, ""), started),
        };
        let Some((registration, answer)) = self.register(target, isn) else {
            let reason = format!(
                "not started: {} half-open probes in flight (the limit)",
                self.cap
            );
            return (CheckOutcome::Skipped(reason), started);
        };
        let deadline = started + timeout;
        let outcome = self
            .exchange(&header, target, answer, started, deadline)
            .await;
        drop(registration);
        let outcome = match outcome {
            Ok(Some(Answer::Open)) => CheckOutcome::Up,
            Ok(Some(Answer::Refused)) => CheckOutcome::Down("connection refused".into()),
            Err(e) => failed_to_connect(&e, ""),
            // No answer in time. (A sender dropped unanswered cannot
            // happen while the registration holds its place; were it to,
            // silence is what it means.)
            Ok(None) => {
                self.forget_source(target.ip());
                CheckOutcome::Down(timeout_reason(timeout))
            }
        };
        (outcome, started)
    }

    fn header(
        &self,
        target: SocketAddr,
        isn: u32,
        now: Instant,
    ) -> io::Result<[u8; packet::HEADER_LEN]> {
        let addrs = match target.ip() {
            IpAddr::V4(dst) => Some((self.source(dst, now)?, dst)),
            IpAddr::V6(_) => None,
        };
        Ok(packet::syn(self.port, target.port(), isn, addrs))
    }

    /// Sends the SYN and waits for its answer until `deadline`, sending it
    /// again once after [`RETRANSMIT_AFTER`]. One timer per probe (moved
    /// from the retransmission to the deadline), not two: at thousands of
    /// probes a second the timer wheel's work showed in the profile.
    async fn exchange(
        &self,
        header: &[u8],
        target: SocketAddr,
        mut answer: oneshot::Receiver<Answer>,
        started: Instant,
        deadline: Instant,
    ) -> io::Result<Option<Answer>> {
        let retransmit_at = started + RETRANSMIT_AFTER;
        let mut retransmitted = retransmit_at >= deadline;
        let timer = tokio::time::sleep_until(retransmit_at.min(deadline).into());
        tokio::pin!(timer);
        // The first SYN (a full socket buffer waits, within the deadline).
        loop {
            tokio::select! {
                sent = self.send(header, target) => {
                    sent?;
                    break;
                }
                () = &mut timer => {
                    if retransmitted {
                        return Ok(None);
                    }
                    retransmitted = true;
                    timer.as_mut().reset(deadline.into());
                }
            }
        }
        loop {
            tokio::select! {
                a = &mut answer => return Ok(a.ok()),
                () = &mut timer => {
                    if retransmitted {
                        return Ok(None);
                    }
                    retransmitted = true;
                    timer.as_mut().reset(deadline.into());
                    // Not waited for: a retransmission that does not go
                    // out at once leaves the first SYN to answer.
                    let _ = self.raw.send_to(header, &raw_address(target));
                }
            }
        }
    }

    /// Sends at once; a full send buffer (which a SYN a check hardly ever
    /// meets) is tried again every [`SEND_RETRY`], within the caller's
    /// deadline.
    async fn send(&self, header: &[u8], target: SocketAddr) -> io::Result<()> {
        let to = raw_address(target);
        loop {
            match self.raw.send_to(header, &to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(SEND_RETRY).await;
                }
                sent => return sent.map(drop),
            }
        }
    }

    /// The source address the kernel will give a packet to `dst`: a
    /// connected UDP socket's, cached for [`SOURCE_TTL`]. One socket serves
    /// every lookup: dissolved (connect to AF_UNSPEC, which forgets the
    /// source it picked) and connected again, three system calls instead
    /// of five for a socket each time.
    fn source(&self, dst: Ipv4Addr, now: Instant) -> io::Result<Ipv4Addr> {
        let secs =
            u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX);
        let fresh = |at: u32| u64::from(secs.saturating_sub(at)) < SOURCE_TTL.as_secs();
        if let Some(&(src, at)) = lock(&self.sources).get(&dst)
            && fresh(at)
        {
            return Ok(src);
        }
        let src = {
            let mut router = lock(&self.router);
            let udp = match &mut *router {
                Some(udp) => {
                    dissolve(udp)?;
                    udp
                }
                None => router.insert(Socket::new(Domain::IPV4, Type::DGRAM, None)?),
            };
            // Any port: a UDP connect only looks the route up.
            udp.connect(&SocketAddr::from((dst, 9)).into())?;
            match udp.local_addr()?.as_socket() {
                Some(SocketAddr::V4(a)) => *a.ip(),
                _ => return Err(io::Error::other("no IPv4 source for an IPv4 destination")),
            }
        };
        let mut cache = lock(&self.sources);
        if cache.len() >= SOURCE_CACHE_MAX {
            cache.retain(|_, (_, at)| fresh(*at));
            if cache.len() >= SOURCE_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(dst, (src, secs));
        Ok(src)
    }

    /// A probe to `ip` went unanswered: maybe the route (and the source
    /// address, hence the checksum) changed. Look it up again next time.
    fn forget_source(&self, ip: IpAddr) {
        if let IpAddr::V4(dst) = ip {
            lock(&self.sources).remove(&dst);
        }
    }

    fn register(
        &self,
        target: SocketAddr,
        isn: u32,
    ) -> Option<(Registration<'_>, oneshot::Receiver<Answer>)> {
        let (done, answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pending = lock(&self.pending);
        if pending.waiters >= self.cap {
            return None;
        }
        if pending.waiters == 0 {
            self.started.notify_one();
        }
        pending.waiters += 1;
        pending
            .by_server
            .entry(target)
            .or_default()
            .push(Waiter { id, isn, done });
        Some((
            Registration {
                family: self,
                target,
                id,
            },
            answer,
        ))
    }

    /// Hands a received packet (from `from`) to the probe it answers.
    fn deliver(&self, packet: &[u8], from: IpAddr) {
        let segment = if self.v6 {
            Some(packet)
        } else {
            packet::ipv4_payload(packet)
        };
        let Some(reply) = segment.and_then(|s| packet::parse_reply(s, self.port)) else {
            return;
        };
        let server = SocketAddr::new(from, reply.port);
        let mut pending = lock(&self.pending);
        let Some(waiters) = pending.by_server.get(&server) else {
            return;
        };
        // Only an answer to one of our SYNs counts (not a late reply to
        // an earlier probe, nor a forged one without our ISN).
        if !waiters.iter().any(|w| packet::acknowledges(&reply, w.isn)) {
            return;
        }
        // Every probe of this server is answered by the same state.
        let waiters = pending.by_server.remove(&server).unwrap_or_default();
        pending.waiters -= waiters.len();
        drop(pending);
        for w in waiters {
            let _ = w.done.send(reply.answer);
        }
    }
}

/// A probe's place in the table, removed when the probe ends or is
/// dropped (a cancelled check must not leave its waiter behind).
struct Registration<'a> {
    family: &'a Family,
    target: SocketAddr,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut pending = lock(&self.family.pending);
        let Some(waiters) = pending.by_server.get_mut(&self.target) else {
            return;
        };
        let before = waiters.len();
        waiters.retain(|w| w.id != self.id);
        let removed = before - waiters.len();
        if waiters.is_empty() {
            pending.by_server.remove(&self.target);
        }
        pending.waiters -= removed;
    }
}

/// Reads the replies of one family until the Prober stops the task: every
/// [`RECEIVE_TICK`], whatever is queued. The raw socket is never in the
/// runtime's epoll: registered, every reply (and every freed SYN, through
/// the socket's write space) woke the daemon's thread, thousands of times a
/// second at 20,000 checks, where a tick takes the replies of a few
/// milliseconds at once. A reply waits at most a tick (checks time out in
/// seconds); the receive buffer holds far more than a tick's worth. With
/// no probe in flight it does not tick at all.
async fn receive(family: Arc<Family>) {
    let mut buf = [MaybeUninit::<u8>::uninit(); packet::SNAP_LEN as usize];
    let mut tick = tokio::time::interval(RECEIVE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Nothing in flight: no tick until a probe starts (what arrives
        // meanwhile is read then, and answers nothing).
        if lock(&family.pending).waiters == 0 {
            family.started.notified().await;
            tick.reset();
        }
        tick.tick().await;
        let mut errors = 0;
        for _ in 0..RECEIVE_BATCH {
            match family.raw.recv_from(&mut buf) {
                Ok((n, from)) => {
                    // SAFETY: recv_from wrote the first n bytes of buf.
                    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                    if let Some(from) = from.as_socket() {
                        family.deliver(bytes, from.ip());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A socket error (an ICMP error the kernel reports once,
                // ENOBUFS) concerns one packet; a run of them ends the
                // tick's reading.
                Err(_) if errors < 16 => errors += 1,
                Err(e) => {
                    tracing::debug!("half-open checks: {}", super::reason::io_reason(&e));
                    break;
                }
            }
        }
    }
}

/// Raw sockets take no port in the address (IPv6 refuses one).
fn raw_address(target: SocketAddr) -> SockAddr {
    SockAddr::from(SocketAddr::new(target.ip(), 0))
}

/// Dissolves a datagram socket's association (a connect to `AF_UNSPEC`),
/// which also forgets the source address the kernel picked for it.
fn dissolve(udp: &Socket) -> io::Result<()> {
    // SAFETY: all-zero is a valid sockaddr.
    let mut unspec: libc::sockaddr = unsafe { std::mem::zeroed() };
    unspec.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
    // SAFETY: a valid descriptor and a sockaddr of the length given.
    let r = unsafe {
        libc::connect(
            udp.as_raw_fd(),
            &raw const unspec,
            size_of::<libc::sockaddr>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sock_filter(i: &Insn) -> SockFilter {
    SockFilter::new(i.code, i.jt, i.jf, i.k)
}

/// The kernel computes (and verifies, on receive) the TCP checksum at
/// offset 16 of what we send: it picks the IPv6 source address, which the
/// checksum covers.
fn set_ipv6_checksum(raw: &Socket) -> io::Result<()> {
    set_int_option(raw, libc::IPPROTO_IPV6, libc::IPV6_CHECKSUM, 16)
}

fn set_dont_fragment(raw: &Socket) -> io::Result<()> {
    set_int_option(
        raw,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_PROBE,
    )
}

/// SO_RCVBUFFORCE (CAP_NET_ADMIN, which the daemon has) passes
/// net.core.rmem_max; without it, SO_RCVBUF up to that limit.
fn grow_receive_buffer(raw: &Socket) {
    let size = RECV_BUFFER as libc::c_int;
    if set_int_option(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
        let _ = raw.set_recv_buffer_size(RECV_BUFFER);
    }
}

/// An integer socket option socket2 has no setter for.
fn set_int_option(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid descriptor and a c_int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The tables stay consistent across a panic elsewhere (each update is
/// one step), so a poisoned lock is taken as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod hash_tests {
    use std::hash::BuildHasher;

    use super::*;

    /// 20,000 servers in one /16 (as the benchmark's) spread over the low
    /// bits a table takes its buckets from about as a random hash would
    /// (63 % of 32,768 buckets used, expected); FxHash's raw step left
    /// them in a few.
    #[test]
    fn addresses_of_one_subnet_spread_over_the_buckets() {
        let hasher = FastHash::default();
        let mut used = std::collections::HashSet::new();
        for i in 0..20_000u32 {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 1)) + i);
            used.insert(hasher.hash_one(ip) & 0x7fff);
            used.insert(hasher.hash_one(SocketAddr::from((ip, 80))) & 0x7fff | 0x8000);
        }
        let (v4, sockets) = used.iter().fold((0, 0), |(a, b), h| {
            if h & 0x8000 == 0 {
                (a + 1, b)
            } else {
                (a, b + 1)
            }
        });
        assert!(
            v4 > 12_000 && sockets > 12_000,
            "{v4} and {sockets} of 32,768"
        );
    }
}
