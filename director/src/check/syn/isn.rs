//! Initial sequence numbers of half-open probes: each one four fresh bytes
//! of the kernel's CSPRNG (getrandom(2)), none derived from another.
//!
//! Every probe of a family leaves from the same source port, so the ISN is
//! all that tells one probe's SYN-ACK from another's. A backend sees the
//! ISNs of its own probes; had they come from one generator (the splitmix64
//! counter this replaced: two ISNs gave its state away to a 2^32 search),
//! it could predict the ISNs sent to other servers and, spoofing their
//! addresses, answer for them: mark a dead server up or a live one down.
//! Independent draws leave it a blind 1-in-2^32 guess per forged packet.
//!
//! One system call per [`BATCH`] probes: each thread keeps a buffer of
//! kernel randomness and draws from it (20,000 probes an interval cost a
//! few dozen calls, not 20,000).

use std::cell::RefCell;
use std::io;

/// ISNs per refill: 4 KiB of randomness.
pub const BATCH: usize = 1024;

/// A buffer of random ISNs, refilled from `source` when used up.
pub struct Pool<F> {
    isns: [u32; BATCH],
    /// How many of `isns` are used; `BATCH` means empty.
    used: usize,
    source: F,
}

impl<F: FnMut(&mut [u8]) -> io::Result<()>> Pool<F> {
    pub const fn new(source: F) -> Pool<F> {
        Pool {
            isns: [0; BATCH],
            used: BATCH,
            source,
        }
    }

    /// The next ISN; an error only if the source failed.
    pub fn next(&mut self) -> io::Result<u32> {
        if self.used == BATCH {
            let mut bytes = [0u8; BATCH * 4];
            (self.source)(&mut bytes)?;
            for (isn, b) in self.isns.iter_mut().zip(bytes.chunks_exact(4)) {
                *isn = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            }
            // Drawn ISNs stay in no buffer a later refill might not cover.
            bytes.fill(0);
            self.used = 0;
        }
        let isn = self.isns[self.used];
        self.isns[self.used] = 0;
        self.used += 1;
        Ok(isn)
    }
}

type KernelPool = Pool<fn(&mut [u8]) -> io::Result<()>>;

thread_local! {
    // Per thread: the probe path takes no lock for its ISN.
    static POOL: RefCell<KernelPool> = const { RefCell::new(Pool::new(getrandom)) };
}

/// A fresh ISN for one probe.
pub fn next() -> io::Result<u32> {
    POOL.with(|pool| pool.borrow_mut().next())
}

/// Fills `buf` from the kernel's CSPRNG (blocking only before the kernel's
/// pool is first initialised, early in boot).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, writable and
        // owned by this call; the kernel writes at most that many bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                // A signal can cut a request over 256 bytes short.
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator this replaced, stepped from a known state: each output
    /// follows from the state, and the state advances by a constant.
    fn splitmix(state: &mut u64) -> u32 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as u32
    }

    /// Whatever the source gives, in order, is what the probes get: no ISN
    /// is computed from another, and the source is asked once a batch.
    #[test]
    fn isns_are_the_sources_bytes_and_the_source_is_asked_once_a_batch() {
        let mut calls = 0u32;
        let drawn: Vec<u32> = {
            let mut pool = Pool::new(|buf: &mut [u8]| {
                calls += 1;
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = (i as u8).wrapping_mul(31).wrapping_add(calls as u8);
                }
                Ok(())
            });
            (0..BATCH * 2 + 1).map(|_| pool.next().unwrap()).collect()
        };
        let expect = |call: u8, i: usize| {
            let b = |j: usize| ((4 * i + j) as u8).wrapping_mul(31).wrapping_add(call);
            u32::from_ne_bytes([b(0), b(1), b(2), b(3)])
        };
        assert_eq!(drawn[0], expect(1, 0));
        assert_eq!(drawn[BATCH - 1], expect(1, BATCH - 1));
        assert_eq!(drawn[BATCH], expect(2, 0));
        assert_eq!(drawn[2 * BATCH], expect(3, 0));
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_failing_source_is_an_error_not_a_guessable_isn() {
        let mut pool = Pool::new(|_: &mut [u8]| Err(io::Error::from_raw_os_error(libc::ENOSYS)));
        assert!(pool.next().is_err());
    }

    /// Against the old generator: there, knowing the state behind probe k's
    /// ISN (what a backend recovers from two of its ISNs) gives probe k+1's
    /// by one splitmix step. Here no state links two probes: over thousands
    /// of consecutive draws, the step that predicted the old sequence never
    /// predicts the next ISN (a chance hit would be 1 in 2^32 per pair).
    #[test]
    fn knowing_one_probes_isn_does_not_give_the_next() {
        // The attack, shown on the old generator.
        let mut old = 0x0123_4567_89ab_cdef_u64;
        let _isn_k = splitmix(&mut old);
        let mut attacker = old;
        assert_eq!(splitmix(&mut attacker), splitmix(&mut old));

        let draws: Vec<u32> = (0..4 * BATCH).map(|_| next().unwrap()).collect();
        let predicted = draws
            .windows(2)
            .filter(|pair| {
                // The attacker's best use of probe k's ISN under the old
                // design: take it (widened either way) as the state, step.
                let k = u64::from(pair[0]);
                let (mut a, mut b) = (k, k << 32 | k);
                splitmix(&mut a) == pair[1] || splitmix(&mut b) == pair[1]
            })
            .count();
        assert_eq!(predicted, 0);
        // Not consecutive, not a constant stride.
        let strides: std::collections::HashSet<u32> =
            draws.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
        assert!(strides.len() > draws.len() - 10, "{}", strides.len());
    }
}
