//! The VRRP state machine of RFC 5798 section 6.4 (RFC 3768's, for v2),
//! pure: it never reads a clock or touches a socket. The caller feeds it
//! [`Event`]s with the time `now` from its own clock (any [`Moment`]:
//! `std::time::Instant` in a daemon, a `Duration` in tests) and carries out
//! the [`Action`]s it returns, in order.
//!
//! States are the RFC's Initialize, Backup and Master, plus Fault (ours):
//! the director has no quorum, so the node gives up mastership and never
//! takes it while the fault lasts. Beside the RFC's preemption and
//! keepalived's `preempt_delay`, the caller holds a gate, `may_preempt`
//! ([`Event::MayPreempt`]): while it is shut the node does not take over from
//! a live lower-priority master (the director keeps it shut until its
//! connection table is warm, so a fail-back loses no connection). The gate
//! never keeps the node from replacing a master that went silent or left.
//!
//! - `config.rs`: [`Config`], its validation, Skew_Time and
//!   Master_Down_Interval.

mod config;

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::ops::Add;
use std::time::Duration;

pub use config::{Config, ConfigError, OWNER, master_down, skew};

use crate::packet::{Advert, Version};

/// A point in time on the caller's clock.
pub trait Moment: Copy + Ord + Add<Duration, Output = Self> + fmt::Debug {}

impl<T: Copy + Ord + Add<Duration, Output = T> + fmt::Debug> Moment for T {}

/// The machine's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Listening to the master, ready to take over.
    Backup,
    /// Holding the addresses and advertising.
    Master,
    /// Faulted (no quorum): holds no address, never becomes master.
    Fault,
}

/// An advertisement heard from another router (already decoded, so with a
/// valid version, checksum and, in v2, authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// Its virtual router id (another VRID is discarded).
    pub vrid: u8,
    /// The sender's priority (0: the master leaves).
    pub priority: u8,
    /// The sender's primary address (the IP source).
    pub source: IpAddr,
    /// The sender's advertisement interval.
    pub interval: Duration,
}

impl Heard {
    /// What the machine needs of `advert`, received from `source`.
    pub fn new(advert: &Advert, source: IpAddr) -> Heard {
        Heard {
            vrid: advert.vrid,
            priority: advert.priority,
            source,
            interval: advert.interval_duration(),
        }
    }
}

/// What happens to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The router starts (in Initialize; ignored in any other state).
    Startup,
    /// An advertisement was received.
    Advert(Heard),
    /// The timer last armed ([`Action::ArmTimer`]) expired.
    TimerExpired,
    /// The router stops.
    Shutdown,
    /// The node lost what it needs to serve (the director's quorum).
    FaultRaised,
    /// The fault is over.
    FaultCleared,
    /// This node's priority changes (keepalived's tracking).
    PriorityChanged(NonZeroU8),
    /// Opens or shuts the preemption gate (open at creation).
    MayPreempt(bool),
}

/// What the caller does, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<I> {
    /// Send an advertisement with this (non-zero) priority.
    Advertise {
        /// The priority to send.
        priority: u8,
    },
    /// Send an advertisement with priority 0: this master leaves.
    AdvertiseLeaving,
    /// Become master: add the virtual addresses, send gratuitous ARP /
    /// unsolicited neighbour advertisements.
    BecomeMaster,
    /// Stop being master: remove the virtual addresses (given on entering
    /// Backup, and on leaving Master for Fault or Initialize).
    BecomeBackup,
    /// (Re)arm the one timer to expire at this time, replacing any armed.
    ArmTimer(I),
    /// Disarm the timer.
    DisarmTimer,
    /// An advertisement was discarded for this reason (worth a log line).
    Discard(Discard),
}

/// Why an advertisement was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// For another virtual router.
    Vrid(u8),
    /// An interval other than ours (v2: RFC 3768 section 7.1), or 0.
    Interval(Duration),
}

/// One virtual router's state machine.
#[derive(Debug, Clone)]
pub struct Machine<I> {
    config: Config,
    state: State,
    priority: NonZeroU8,
    /// Master_Adver_Interval: learned from the master in v3.
    master_interval: Duration,
    /// When the armed timer expires.
    deadline: Option<I>,
    /// When the router started (the origin of `preempt_delay`).
    started: Option<I>,
    fault: bool,
    may_preempt: bool,
}

impl<I: Moment> Machine<I> {
    /// A machine in Initialize, preemption gate open, no fault.
    pub fn new(config: Config) -> Result<Machine<I>, ConfigError> {
        config.validate()?;
        Ok(Machine {
            priority: config.priority,
            master_interval: config.interval,
            config,
            state: State::Initialize,
            deadline: None,
            started: None,
            fault: false,
            may_preempt: true,
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current priority.
    pub fn priority(&self) -> NonZeroU8 {
        self.priority
    }

    /// When the armed timer expires, if one is.
    pub fn deadline(&self) -> Option<I> {
        self.deadline
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Master_Down_Interval with what is known now.
    pub fn master_down_interval(&self) -> Duration {
        master_down(self.config.version, self.priority, self.master_interval)
    }

    /// Feeds one event at time `now`; returns the actions to carry out.
    pub fn handle(&mut self, now: I, event: Event) -> Vec<Action<I>> {
        match event {
            Event::Startup if self.state == State::Initialize => {
                self.started = Some(now);
                self.start(now)
            }
            Event::Startup => Vec::new(),
            Event::Advert(heard) => self.heard(now, heard),
            Event::TimerExpired => self.timer(now),
            Event::Shutdown => {
                let actions = self.leave();
                self.state = State::Initialize;
                actions
            }
            Event::FaultRaised => {
                self.fault = true;
                if self.state == State::Initialize {
                    return Vec::new();
                }
                let actions = self.leave();
                self.state = State::Fault;
                actions
            }
            Event::FaultCleared => {
                self.fault = false;
                if self.state == State::Fault {
                    self.start(now)
                } else {
                    Vec::new()
                }
            }
            Event::PriorityChanged(priority) => {
                self.priority = priority;
                if self.state == State::Master {
                    // Say it at once: a higher backup may now preempt.
                    self.advertise(now)
                } else {
                    Vec::new()
                }
            }
            Event::MayPreempt(open) => {
                self.may_preempt = open;
                Vec::new()
            }
        }
    }

    /// Leaving Initialize (at start) or Fault (when it clears).
    fn start(&mut self, now: I) -> Vec<Action<I>> {
        if self.fault {
            self.state = State::Fault;
            Vec::new()
        } else if self.priority.get() == OWNER && self.may_preempt {
            self.become_master(now)
        } else {
            self.master_interval = self.config.interval;
            self.become_backup(now)
        }
    }

    /// Whether a live lower-priority master is to be preempted now.
    fn preempting(&self, now: I) -> bool {
        let delay_over = self
            .started
            .is_some_and(|s| now >= s + self.config.preempt_delay);
        self.may_preempt && (self.priority.get() == OWNER || (self.config.preempt && delay_over))
    }

    fn heard(&mut self, now: I, heard: Heard) -> Vec<Action<I>> {
        if !matches!(self.state, State::Backup | State::Master) {
            return Vec::new();
        }
        if heard.vrid != self.config.vrid {
            return vec![Action::Discard(Discard::Vrid(heard.vrid))];
        }
        let v2_mismatch =
            self.config.version == Version::V2 && heard.interval != self.config.interval;
        if heard.interval.is_zero() || v2_mismatch {
            return vec![Action::Discard(Discard::Interval(heard.interval))];
        }
        let mine = self.priority.get();
        match self.state {
            State::Backup if heard.priority == 0 => {
                let skew = skew(self.config.version, self.priority, self.master_interval);
                self.arm(now + skew)
            }
            State::Backup if !self.preempting(now) || heard.priority >= mine => {
                self.master_interval = heard.interval;
                self.arm(now + self.master_down_interval())
            }
            // A lower-priority master while preempting: its adverts are
            // discarded, so Master_Down_Interval runs out.
            State::Backup => Vec::new(),
            State::Master if heard.priority == 0 => self.advertise(now),
            State::Master
                if heard.priority > mine
                    || (heard.priority == mine && heard.source > self.config.primary) =>
            {
                self.master_interval = heard.interval;
                self.become_backup(now)
            }
            _ => Vec::new(),
        }
    }

    fn timer(&mut self, now: I) -> Vec<Action<I>> {
        let Some(deadline) = self.deadline else {
            return Vec::new();
        };
        if now < deadline {
            // Early, or a stale timer: keep the one armed.
            return vec![Action::ArmTimer(deadline)];
        }
        match self.state {
            State::Backup => self.become_master(now),
            State::Master => self.advertise(now),
            State::Initialize | State::Fault => Vec::new(),
        }
    }

    fn become_master(&mut self, now: I) -> Vec<Action<I>> {
        self.state = State::Master;
        let mut actions = vec![
            Action::Advertise {
                priority: self.priority.get(),
            },
            Action::BecomeMaster,
        ];
        actions.extend(self.arm(now + self.config.interval));
        actions
    }

    fn become_backup(&mut self, now: I) -> Vec<Action<I>> {
        self.state = State::Backup;
        let mut actions = vec![Action::BecomeBackup];
        actions.extend(self.arm(now + self.master_down_interval()));
        actions
    }

    fn advertise(&mut self, now: I) -> Vec<Action<I>> {
        let mut actions = vec![Action::Advertise {
            priority: self.priority.get(),
        }];
        actions.extend(self.arm(now + self.config.interval));
        actions
    }

    /// Leaving Backup or Master for Initialize or Fault: the timer is
    /// disarmed; a master sends priority 0 and drops the addresses.
    fn leave(&mut self) -> Vec<Action<I>> {
        let mut actions = Vec::new();
        if self.deadline.take().is_some() {
            actions.push(Action::DisarmTimer);
        }
        if self.state == State::Master {
            actions.extend([Action::AdvertiseLeaving, Action::BecomeBackup]);
        }
        actions
    }

    fn arm(&mut self, at: I) -> Vec<Action<I>> {
        self.deadline = Some(at);
        vec![Action::ArmTimer(at)]
    }
}

#[cfg(test)]
mod tests;
