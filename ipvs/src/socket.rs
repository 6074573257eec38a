//! The generic-netlink socket under [`crate::Handle`]: a blocking
//! `netlink-sys` socket with one reusable receive buffer, its own
//! sequence numbers, and batches of many requests per send.
//!
//! The kernel handles every IPVS request inside the send call, so the
//! replies are queued when the socket reads them: a call waits on nothing
//! but the kernel's own work.
//!
//! Every send of requests that are not dumps ends with a sentinel, an
//! acknowledged NLMSG_NOOP, and the receive ends at the sentinel's ack.
//! The kernel sends no ack at all for a request whose handler returned
//! EINTR (`netlink_rcv_skb`), which IPVS's stop of a sync daemon does when
//! its thread had not run yet: waiting for that ack would wait forever.

use std::fmt;
use std::io;

use netlink_packet_core::{
    DecodeError, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket as NlSocket, SocketAddr};
use rustix::net::sockopt;

use crate::codec::IpvsMessage;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// Larger than the biggest datagram the kernel builds for a dump (it
/// sizes them after the reader's buffer, up to 32 KiB).
pub(crate) const BIG_READ: usize = 64 * 1024;
/// NLMSG_GOODSIZE for 4 KiB pages, the kernel's smallest dump datagram
/// (one page with the skb's shared info). The kernel sizes every dump
/// datagram after the largest read so far on the socket and zeroes each
/// one it allocates (init_on_alloc), so reads this small keep the dump of
/// a few destinations cheap.
pub(crate) const SMALL_READ: usize = 4096 - 320;
/// Receive buffer asked for (root may exceed net.core.rmem_max).
const WANT_RCVBUF: usize = 4 << 20;
const WANT_SNDBUF: usize = 1 << 20;
/// Send-buffer capacity kept between requests.
const KEPT_OUT: usize = 64 * 1024;
/// Receive-buffer bytes reserved per message of a batch: an error reply to
/// every message of a batch must fit, or the kernel drops replies.
/// Generous for a capped (NETLINK_CAP_ACK) error reply.
const RCVBUF_PER_MESSAGE: usize = 2048;
/// How long one read waits for the kernel. Replies are queued before the
/// send returns and a dump's next part is built inside the read, so a read
/// that waits this long waits for a reply that will never come.
const RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A failure of the socket or of the netlink protocol under it.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A system call on the socket failed.
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    /// A reply that does not decode.
    #[error("netlink reply: {0}")]
    Decode(#[from] DecodeError),
    /// A reply longer than the socket reads (it was cut).
    #[error("netlink reply of {len} bytes truncated to {read}")]
    Truncated { len: usize, read: usize },
    /// A datagram whose message lengths do not add up.
    #[error("malformed netlink message")]
    Malformed,
    /// The kernel dropped replies (NLMSG_OVERRUN).
    #[error("netlink receive buffer overrun")]
    Overrun,
    /// The kernel took only part of a send.
    #[error("short netlink send ({sent} of {len} bytes)")]
    ShortSend { sent: usize, len: usize },
    /// A netlink message of an unexpected kind.
    #[error("unexpected netlink message type {0}")]
    Unexpected(u16),
    /// No reply within [`RECEIVE_TIMEOUT`].
    #[error("no netlink reply within {} s", RECEIVE_TIMEOUT.as_secs())]
    Timeout,
}

pub(crate) struct Socket {
    sock: NlSocket,
    /// How much one read asks for (at most `buf.len()`).
    read_len: usize,
    seq: u32,
    buf: Vec<u8>,
    out: Vec<u8>,
    max_batch: usize,
    max_bytes: usize,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("read_len", &self.read_len)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

/// Append one netlink message to `out`, 4-byte aligned.
fn encode<T: NetlinkSerializable + fmt::Debug>(
    out: &mut Vec<u8>,
    payload: T,
    flags: u16,
    seq: u32,
) {
    let mut nl = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::InnerMessage(payload),
    );
    nl.header.flags = flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let start = out.len();
    out.resize(start + nl.header.length as usize, 0);
    nl.serialize(&mut out[start..]);
    out.resize((out.len() + 3) & !3, 0);
}

/// Append the sentinel: an acknowledged no-op that the kernel answers
/// with an ack once it has handled every message before it.
fn encode_sentinel(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(&(NLMSG_HDRLEN as u32).to_ne_bytes());
    out.extend_from_slice(&NLMSG_NOOP.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
}

fn ipvs(family: u16, msg: IpvsMessage) -> GenlMessage<IpvsMessage> {
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(family);
    genl
}

fn parse<T: NetlinkDeserializable + fmt::Debug>(msg: &[u8]) -> Result<T, NetlinkError> {
    let nl = NetlinkMessage::<T>::deserialize(msg)?;
    match nl.payload {
        NetlinkPayload::InnerMessage(m) => Ok(m),
        _ => Err(NetlinkError::Unexpected(nl.header.message_type)),
    }
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The errno of an NLMSG_ERROR or NLMSG_DONE message (0 for an ack or a
/// clean end), positive.
fn errno_of(msg: &[u8]) -> i32 {
    if msg.len() >= NLMSG_HDRLEN + 4 {
        -(read_u32(msg, NLMSG_HDRLEN) as i32)
    } else {
        0
    }
}

impl Socket {
    /// A generic-netlink socket in the calling thread's network namespace
    /// whose reads ask for `read_len` bytes ([`SMALL_READ`] or [`BIG_READ`]).
    pub(crate) fn open(read_len: usize) -> Result<Socket, NetlinkError> {
        let mut sock = NlSocket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        // Best effort: bigger buffers allow bigger batches. The forced
        // sizes need CAP_NET_ADMIN, which every IPVS request needs anyway.
        if sockopt::set_socket_recv_buffer_size_force(&sock, WANT_RCVBUF).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&sock, WANT_RCVBUF);
        }
        if sockopt::set_socket_send_buffer_size_force(&sock, WANT_SNDBUF).is_err() {
            let _ = sockopt::set_socket_send_buffer_size(&sock, WANT_SNDBUF);
        }
        // Error replies without a copy of the request.
        let _ = sock.set_cap_ack(true);
        sockopt::set_socket_timeout(&sock, sockopt::Timeout::Recv, Some(RECEIVE_TIMEOUT))
            .map_err(io::Error::from)?;
        let rcvbuf = sockopt::socket_recv_buffer_size(&sock).unwrap_or(0);
        let sndbuf = sockopt::socket_send_buffer_size(&sock).unwrap_or(0);
        Ok(Socket {
            sock,
            read_len: read_len.min(BIG_READ),
            seq: 0,
            buf: vec![0; BIG_READ],
            out: Vec::with_capacity(8192),
            max_batch: (rcvbuf / RCVBUF_PER_MESSAGE).clamp(8, 4096),
            max_bytes: sndbuf.saturating_sub(1024).clamp(4096, 1 << 20),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send_out(&self) -> Result<(), NetlinkError> {
        let kernel = SocketAddr::new(0, 0);
        loop {
            match self.sock.send_to(&self.out, &kernel, 0) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
                Ok(sent) if sent != self.out.len() => {
                    return Err(NetlinkError::ShortSend {
                        sent,
                        len: self.out.len(),
                    });
                }
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receive datagrams and hand each message (type, sequence number,
    /// bytes) to `f` until it returns true.
    fn receive(
        &mut self,
        mut f: impl FnMut(u16, u32, &[u8]) -> Result<bool, NetlinkError>,
    ) -> Result<(), NetlinkError> {
        loop {
            let mut window = &mut self.buf[..self.read_len];
            let n = match self.sock.recv(&mut window, libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(NetlinkError::Timeout);
                }
                Err(e) => return Err(e.into()),
                Ok(n) => n,
            };
            if n > self.read_len {
                return Err(NetlinkError::Truncated {
                    len: n,
                    read: self.read_len,
                });
            }
            let data = &self.buf[..n];
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let len = read_u32(data, off) as usize;
                if len < NLMSG_HDRLEN || off + len > n {
                    return Err(NetlinkError::Malformed);
                }
                let msg = &data[off..off + len];
                let ty = u16::from_ne_bytes([msg[4], msg[5]]);
                let seq = read_u32(msg, 8);
                if ty == NLMSG_OVERRUN {
                    return Err(NetlinkError::Overrun);
                }
                if f(ty, seq, msg)? {
                    return Ok(());
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// The id of a generic-netlink family; `None` when the kernel does not
    /// know it (ENOENT).
    pub(crate) fn resolve_family(&mut self, name: &str) -> Result<Option<u16>, NetlinkError> {
        let seq = self.next_seq();
        self.out.clear();
        let ctrl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
        });
        encode(&mut self.out, ctrl, NLM_F_REQUEST | NLM_F_ACK, seq);
        self.send_out()?;
        let mut id = None;
        let mut errno = 0;
        self.receive(|ty, s, msg| {
            if s != seq {
                return Ok(false);
            }
            if ty == NLMSG_ERROR {
                errno = errno_of(msg);
                return Ok(true);
            }
            if ty != NLMSG_DONE {
                let m: GenlMessage<GenlCtrl> = parse(msg)?;
                for a in m.payload.nlas {
                    if let GenlCtrlAttrs::FamilyId(i) = a {
                        id = Some(i);
                    }
                }
            }
            Ok(false)
        })?;
        match errno {
            0 => Ok(id),
            libc::ENOENT => Ok(None),
            e => Err(io::Error::from_raw_os_error(e).into()),
        }
    }

    /// One request (a dump if `dump`, else acknowledged); each reply goes
    /// to `each` as it is decoded, so that a dump of thousands is never
    /// held whole (a service dump's attributes are 1.5 kB a service).
    /// Returns the kernel's errno; a request the kernel handled without an
    /// ack reports EINTR (see the module's header).
    pub(crate) fn call_each(
        &mut self,
        family: u16,
        msg: &IpvsMessage,
        dump: bool,
        each: &mut dyn FnMut(IpvsMessage),
    ) -> Result<Option<i32>, NetlinkError> {
        let seq = self.next_seq();
        self.out.clear();
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        encode(&mut self.out, ipvs(family, msg.clone()), flags, seq);
        let sentinel = (!dump).then(|| self.next_seq());
        if let Some(sentinel) = sentinel {
            encode_sentinel(&mut self.out, sentinel);
        }
        self.send_out()?;
        let mut errno = None;
        self.receive(|ty, s, msg| {
            if Some(s) == sentinel {
                return Ok(ty == NLMSG_ERROR);
            }
            if s != seq {
                return Ok(false);
            }
            match ty {
                NLMSG_ERROR => {
                    errno = Some(errno_of(msg));
                    Ok(dump)
                }
                NLMSG_DONE => {
                    errno = Some(errno_of(msg).max(0));
                    Ok(true)
                }
                t if t == family => {
                    let m: GenlMessage<IpvsMessage> = parse(msg)?;
                    each(m.payload);
                    Ok(false)
                }
                _ => Ok(false),
            }
        })?;
        Ok(match errno {
            Some(0) => None,
            Some(e) => Some(e),
            None if dump => None,
            None => Some(libc::EINTR),
        })
    }

    /// Send change requests (no replies but errors) in batches of many
    /// messages per send, each batch closed by the sentinel. The kernel
    /// handles them in order, and calls
    /// `on_error(index, errno)` in index order. On a socket error, returns
    /// the index of the first request not known to be handled.
    pub(crate) fn batch(
        &mut self,
        family: u16,
        msgs: impl Iterator<Item = IpvsMessage>,
        mut on_error: impl FnMut(usize, i32),
    ) -> Result<(), (usize, NetlinkError)> {
        let mut msgs = msgs.peekable();
        let mut base = 0usize;
        while msgs.peek().is_some() {
            self.out.clear();
            let first_seq = self.seq.wrapping_add(1);
            let mut count = 0usize;
            while count < self.max_batch && self.out.len() < self.max_bytes {
                let Some(m) = msgs.next() else { break };
                let seq = self.next_seq();
                encode(&mut self.out, ipvs(family, m), NLM_F_REQUEST, seq);
                count += 1;
            }
            let sentinel = self.next_seq();
            encode_sentinel(&mut self.out, sentinel);
            self.send_out().map_err(|e| (base, e))?;
            self.receive(|ty, s, msg| {
                if ty != NLMSG_ERROR {
                    return Ok(false);
                }
                if s == sentinel {
                    return Ok(true);
                }
                let i = s.wrapping_sub(first_seq) as usize;
                let errno = errno_of(msg);
                if i < count && errno != 0 {
                    on_error(base + i, errno);
                }
                Ok(false)
            })
            .map_err(|e| (base, e))?;
            base += count;
        }
        self.release_big_buffer();
        Ok(())
    }

    /// A batch's send buffer grows to a megabyte (a first convergence);
    /// kept, it stayed resident for the daemon's life.
    fn release_big_buffer(&mut self) {
        if self.out.capacity() > KEPT_OUT {
            self.out = Vec::with_capacity(KEPT_OUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentinel_is_an_acknowledged_noop_header() {
        let mut out = vec![0xaa; 4];
        encode_sentinel(&mut out, 0x0102_0304);
        let m = &out[4..];
        assert_eq!(m.len(), NLMSG_HDRLEN);
        assert_eq!(read_u32(m, 0) as usize, NLMSG_HDRLEN);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), NLMSG_NOOP);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(read_u32(m, 8), 0x0102_0304);
        assert_eq!(read_u32(m, 12), 0, "port id: the kernel's");
        // netlink-packet-core reads the same header back.
        use netlink_packet_core::Parseable;
        let h = NetlinkHeader::parse(&netlink_packet_core::NetlinkBuffer::new(m)).unwrap();
        assert_eq!(
            (h.length, h.message_type, h.sequence_number),
            (16, 1, 0x0102_0304)
        );
    }
}
