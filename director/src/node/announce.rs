//! When a VIP is held on the announce interface: the pure decision, driven
//! by the caller's clock. A VIP is announced while every service of it has
//! quorum; it is withdrawn at once when one loses quorum, and announced
//! again only after it has stayed servable for `hold_down` (a server that
//! flaps must not make the routers flap: every withdrawal moves flows).
//! The first announcement of a VIP has no hold-down: there is nothing to
//! damp yet, and a director that just started should carry traffic.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Announce,
    Withdraw,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Announce => "announce",
            Direction::Withdraw => "withdraw",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub vip: IpAddr,
    pub direction: Direction,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipState {
    pub announced: bool,
    /// Since when every service of the VIP has had quorum.
    servable_since: Option<Instant>,
    /// Withdrawn for want of quorum at least once: re-announcing waits
    /// for the hold-down.
    damped: bool,
    pub announces: u64,
    pub withdrawals: u64,
}

#[derive(Debug, Clone)]
pub struct Announcer {
    hold_down: Duration,
    vips: BTreeMap<IpAddr, VipState>,
    /// Withdrawn as a whole (stop, drain): nothing is announced until
    /// [`Announcer::resume`].
    held: bool,
}

impl Announcer {
    pub fn new(hold_down: Duration) -> Announcer {
        Announcer {
            hold_down,
            vips: BTreeMap::new(),
            held: false,
        }
    }

    pub fn set_hold_down(&mut self, hold_down: Duration) {
        self.hold_down = hold_down;
    }

    /// A VIP found on the interface at start: taken as announced, so a
    /// restart of the daemon does not withdraw a VIP it can still serve.
    pub fn adopt(&mut self, vip: IpAddr) {
        self.vips.entry(vip).or_default().announced = true;
    }

    pub fn vips(&self) -> &BTreeMap<IpAddr, VipState> {
        &self.vips
    }

    /// The announced VIPs.
    pub fn announced(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vips
            .iter()
            .filter(|(_, s)| s.announced)
            .map(|(v, _)| *v)
    }

    fn transition(
        &mut self,
        vip: IpAddr,
        direction: Direction,
        reason: &'static str,
    ) -> Transition {
        let s = self.vips.entry(vip).or_default();
        match direction {
            Direction::Announce => {
                s.announced = true;
                s.announces += 1;
            }
            Direction::Withdraw => {
                s.announced = false;
                s.withdrawals += 1;
            }
        }
        Transition {
            vip,
            direction,
            reason,
        }
    }

    /// Takes the servability of every VIP of the file (`servable`: VIP,
    /// all its services have quorum) at `now`; returns what to change. A
    /// VIP the file no longer has is withdrawn and forgotten.
    pub fn update(&mut self, servable: &[(IpAddr, bool)], now: Instant) -> Vec<Transition> {
        let mut out = Vec::new();
        let gone: Vec<IpAddr> = self
            .vips
            .keys()
            .filter(|v| !servable.iter().any(|(s, _)| s == *v))
            .copied()
            .collect();
        for vip in gone {
            if self.vips[&vip].announced {
                out.push(self.transition(vip, Direction::Withdraw, "no longer in the file"));
            }
            self.vips.remove(&vip);
        }
        for &(vip, ok) in servable {
            let hold_down = self.hold_down;
            let s = self.vips.entry(vip).or_default();
            if !ok {
                s.servable_since = None;
                if s.announced {
                    s.damped = true;
                    out.push(self.transition(vip, Direction::Withdraw, "quorum lost"));
                }
                continue;
            }
            let since = *s.servable_since.get_or_insert(now);
            if s.announced || self.held {
                continue;
            }
            if !s.damped {
                out.push(self.transition(vip, Direction::Announce, "servable"));
            } else if now.saturating_duration_since(since) >= hold_down {
                out.push(self.transition(
                    vip,
                    Direction::Announce,
                    "servable for the hold-down time",
                ));
            }
        }
        out
    }

    /// When a damped VIP comes out of its hold-down (the caller updates
    /// then).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.held {
            return None;
        }
        self.vips
            .values()
            .filter(|s| !s.announced && s.damped)
            .filter_map(|s| s.servable_since)
            .map(|t| t + self.hold_down)
            .min()
    }

    /// Withdraws every VIP (stop, drain of the whole director) and holds
    /// them back until [`Announcer::resume`].
    pub fn withdraw_all(&mut self, reason: &'static str) -> Vec<Transition> {
        self.held = true;
        let vips: Vec<IpAddr> = self.announced().collect();
        vips.into_iter()
            .map(|v| self.transition(v, Direction::Withdraw, reason))
            .collect()
    }

    /// Announces again after [`Announcer::withdraw_all`] (at the next
    /// update, servable VIPs without hold-down: the operator asked).
    pub fn resume(&mut self) {
        self.held = false;
    }

    pub fn is_held(&self) -> bool {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 10));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 11));

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    fn dirs(ts: &[Transition]) -> Vec<(IpAddr, Direction)> {
        ts.iter().map(|t| (t.vip, t.direction)).collect()
    }

    #[test]
    fn first_announcement_is_immediate_and_unservable_vips_stay_out() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        let ts = a.update(&[(A, true), (B, false)], t0);
        assert_eq!(dirs(&ts), vec![(A, Direction::Announce)]);
        assert_eq!(ts[0].reason, "servable");
        assert!(a.update(&[(A, true), (B, false)], secs(t0, 1.0)).is_empty());
        // B was never announced: no damping for its first time either.
        let ts = a.update(&[(A, true), (B, true)], secs(t0, 2.0));
        assert_eq!(dirs(&ts), vec![(B, Direction::Announce)]);
    }

    #[test]
    fn quorum_loss_withdraws_at_once_and_return_waits_for_hold_down() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        a.update(&[(A, true)], t0);
        let ts = a.update(&[(A, false)], secs(t0, 10.0));
        assert_eq!(dirs(&ts), vec![(A, Direction::Withdraw)]);
        assert_eq!(ts[0].reason, "quorum lost");
        assert!(a.update(&[(A, true)], secs(t0, 11.0)).is_empty());
        assert_eq!(a.next_deadline(), Some(secs(t0, 16.0)));
        assert!(a.update(&[(A, true)], secs(t0, 15.9)).is_empty());
        let ts = a.update(&[(A, true)], secs(t0, 16.0));
        assert_eq!(dirs(&ts), vec![(A, Direction::Announce)]);
        assert_eq!(a.next_deadline(), None);
        let s = &a.vips()[&A];
        assert_eq!((s.announces, s.withdrawals), (2, 1));
    }

    #[test]
    fn flapping_restarts_the_hold_down() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        a.update(&[(A, true)], t0);
        a.update(&[(A, false)], secs(t0, 1.0));
        for k in 0..10 {
            // Servable 4 s, then down again: never 5 s in a row.
            let base = 2.0 + f64::from(k) * 5.0;
            assert!(a.update(&[(A, true)], secs(t0, base)).is_empty());
            assert!(a.update(&[(A, true)], secs(t0, base + 4.0)).is_empty());
            assert!(a.update(&[(A, false)], secs(t0, base + 4.5)).is_empty());
        }
        assert_eq!(a.vips()[&A].announces, 1);
        assert_eq!(a.vips()[&A].withdrawals, 1);
    }

    #[test]
    fn adopted_vip_stays_while_servable_and_goes_when_not() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        a.adopt(A);
        a.adopt(B);
        let ts = a.update(&[(A, true), (B, false)], t0);
        assert_eq!(dirs(&ts), vec![(B, Direction::Withdraw)]);
    }

    #[test]
    fn vip_leaving_the_file_is_withdrawn_and_forgotten() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        a.update(&[(A, true), (B, true)], t0);
        let ts = a.update(&[(B, true)], secs(t0, 1.0));
        assert_eq!(dirs(&ts), vec![(A, Direction::Withdraw)]);
        assert_eq!(ts[0].reason, "no longer in the file");
        assert!(!a.vips().contains_key(&A));
        // Back in the file: a new VIP, announced at once.
        let ts = a.update(&[(A, true), (B, true)], secs(t0, 2.0));
        assert_eq!(dirs(&ts), vec![(A, Direction::Announce)]);
    }

    #[test]
    fn withdraw_all_holds_until_resumed() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(5));
        a.update(&[(A, true), (B, false)], t0);
        let ts = a.withdraw_all("stopping");
        assert_eq!(dirs(&ts), vec![(A, Direction::Withdraw)]);
        assert!(a.update(&[(A, true), (B, true)], secs(t0, 60.0)).is_empty());
        assert_eq!(a.next_deadline(), None);
        a.resume();
        let ts = a.update(&[(A, true), (B, true)], secs(t0, 61.0));
        assert_eq!(
            dirs(&ts),
            vec![(A, Direction::Announce), (B, Direction::Announce)]
        );
    }

    #[test]
    fn a_shorter_hold_down_from_a_reload_applies_to_a_waiting_vip() {
        let t0 = Instant::now();
        let mut a = Announcer::new(Duration::from_secs(30));
        a.update(&[(A, true)], t0);
        a.update(&[(A, false)], secs(t0, 1.0));
        a.update(&[(A, true)], secs(t0, 2.0));
        a.set_hold_down(Duration::from_secs(1));
        assert_eq!(a.next_deadline(), Some(secs(t0, 3.0)));
        let ts = a.update(&[(A, true)], secs(t0, 3.0));
        assert_eq!(dirs(&ts), vec![(A, Direction::Announce)]);
    }
}
