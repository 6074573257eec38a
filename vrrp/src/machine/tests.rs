//! Every rule with a fake clock: a `Duration` since the test's origin.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU8;
use std::time::Duration;

use super::*;

type A = Action<Duration>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, last))
}

fn prio(p: u8) -> NonZeroU8 {
    NonZeroU8::new(p).unwrap()
}

fn config(priority: u8, last: u8) -> Config {
    Config {
        vrid: 51,
        version: Version::V3,
        priority: prio(priority),
        interval: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary: ip(last),
    }
}

fn machine(config: Config) -> Machine<Duration> {
    Machine::new(config).unwrap()
}

/// A started backup (at time 0).
fn backup(config: Config) -> Machine<Duration> {
    let mut m = machine(config);
    m.handle(ms(0), Event::Startup);
    assert_eq!(m.state(), State::Backup);
    m
}

/// A node that became master by its timer.
fn master(config: Config) -> Machine<Duration> {
    let mut m = backup(config);
    let at = m.deadline().unwrap();
    m.handle(at, Event::TimerExpired);
    assert_eq!(m.state(), State::Master);
    m
}

fn advert(priority: u8, last: u8) -> Event {
    Event::Advert(Heard {
        vrid: 51,
        priority,
        source: ip(last),
        interval: Duration::from_secs(1),
    })
}

/// Feeds the adverts of a live master every second from `from` to `to`
/// (milliseconds), firing the timer whenever it is due in between.
fn live_master(m: &mut Machine<Duration>, priority: u8, last: u8, from: u64, to: u64) {
    let mut t = from;
    while t <= to {
        if let Some(d) = m.deadline()
            && d <= ms(t)
        {
            m.handle(d, Event::TimerExpired);
        }
        m.handle(ms(t), advert(priority, last));
        t += 1000;
    }
}

#[test]
fn timers_follow_rfc_5798() {
    // v3: skew = (256 - 100) x 1 s / 256 = 609.375 ms.
    assert_eq!(
        skew(Version::V3, prio(100), Duration::from_secs(1)),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down(Version::V3, prio(100), Duration::from_secs(1)),
        Duration::from_micros(3_609_375)
    );
    // v3 skew scales with the master's interval.
    assert_eq!(
        skew(Version::V3, prio(100), Duration::from_secs(2)),
        Duration::from_micros(1_218_750)
    );
    // v2: skew = (256 - priority) / 256 s, whatever the interval.
    assert_eq!(
        skew(Version::V2, prio(100), Duration::from_secs(3)),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down(Version::V2, prio(255), Duration::from_secs(3)),
        Duration::from_nanos(9_003_906_250)
    );
}

#[test]
fn startup_makes_a_backup_that_waits_master_down_interval() {
    let mut m = machine(config(100, 1));
    let actions = m.handle(ms(0), Event::Startup);
    assert_eq!(
        actions,
        vec![
            A::BecomeBackup,
            A::ArmTimer(Duration::from_micros(3_609_375))
        ]
    );
    // A second start is ignored.
    assert_eq!(m.handle(ms(5), Event::Startup), vec![]);
}

#[test]
fn the_owner_takes_over_at_startup() {
    let mut m = machine(config(255, 1));
    let actions = m.handle(ms(0), Event::Startup);
    assert_eq!(
        actions,
        vec![
            A::Advertise { priority: 255 },
            A::BecomeMaster,
            A::ArmTimer(ms(1000))
        ]
    );
    assert_eq!(m.state(), State::Master);
}

#[test]
fn a_backup_that_hears_nothing_becomes_master_and_advertises_every_interval() {
    let mut m = backup(config(100, 1));
    // An early (stale) timer keeps the deadline.
    assert_eq!(
        m.handle(ms(1000), Event::TimerExpired),
        vec![A::ArmTimer(Duration::from_micros(3_609_375))]
    );
    assert_eq!(m.state(), State::Backup);
    let t = Duration::from_micros(3_609_375);
    assert_eq!(
        m.handle(t, Event::TimerExpired),
        vec![
            A::Advertise { priority: 100 },
            A::BecomeMaster,
            A::ArmTimer(t + ms(1000))
        ]
    );
    assert_eq!(
        m.handle(t + ms(1000), Event::TimerExpired),
        vec![A::Advertise { priority: 100 }, A::ArmTimer(t + ms(2000))]
    );
}

#[test]
fn a_backup_hearing_its_master_re_arms_and_learns_the_v3_interval() {
    let mut m = backup(config(100, 1));
    let slow = Heard {
        vrid: 51,
        priority: 200,
        source: ip(2),
        interval: Duration::from_secs(2),
    };
    // 3 x 2 s + (156 x 2 s) / 256.
    assert_eq!(
        m.handle(ms(500), Event::Advert(slow)),
        vec![A::ArmTimer(ms(500) + Duration::from_micros(7_218_750))]
    );
    assert_eq!(m.master_down_interval(), Duration::from_micros(7_218_750));
}

#[test]
fn other_vrids_and_wrong_v2_intervals_are_discarded() {
    let mut m = backup(config(100, 1));
    let other = Heard {
        vrid: 52,
        priority: 200,
        source: ip(2),
        interval: Duration::from_secs(1),
    };
    assert_eq!(
        m.handle(ms(10), Event::Advert(other)),
        vec![A::Discard(Discard::Vrid(52))]
    );
    let mut v2 = backup(Config {
        version: Version::V2,
        ..config(100, 1)
    });
    let slow = Heard {
        vrid: 51,
        priority: 200,
        source: ip(2),
        interval: Duration::from_secs(2),
    };
    assert_eq!(
        v2.handle(ms(10), Event::Advert(slow)),
        vec![A::Discard(Discard::Interval(Duration::from_secs(2)))]
    );
    // Nothing changed: the first deadline stands.
    assert_eq!(v2.deadline(), Some(Duration::from_micros(3_609_375)));
}

#[test]
fn a_priority_0_advert_makes_the_backup_take_over_after_skew_time_only() {
    let mut m = backup(config(100, 1));
    m.handle(ms(1000), advert(200, 2));
    assert_eq!(
        m.handle(ms(1500), advert(0, 2)),
        vec![A::ArmTimer(ms(1500) + Duration::from_micros(609_375))]
    );
    let at = ms(1500) + Duration::from_micros(609_375);
    assert_eq!(
        m.handle(at, Event::TimerExpired)[..2],
        [A::Advertise { priority: 100 }, A::BecomeMaster]
    );
}

#[test]
fn a_master_hearing_priority_0_advertises_at_once() {
    let mut m = master(config(100, 1));
    assert_eq!(
        m.handle(ms(5000), advert(0, 2)),
        vec![A::Advertise { priority: 100 }, A::ArmTimer(ms(6000))]
    );
    assert_eq!(m.state(), State::Master);
}

#[test]
fn two_masters_after_a_partition_heal_converge_to_one() {
    for (a, b) in [
        // Different priorities: the lower yields.
        ((100, 1), (200, 2)),
        ((200, 1), (100, 2)),
        // Equal priorities: the higher primary address wins.
        ((100, 1), (100, 2)),
        ((100, 2), (100, 1)),
    ] {
        for preempt in [true, false] {
            let mut x = master(Config {
                preempt,
                ..config(a.0, a.1)
            });
            let mut y = master(Config {
                preempt,
                ..config(b.0, b.1)
            });
            let t = ms(10_000);
            x.handle(t, advert(b.0, b.1));
            y.handle(t, advert(a.0, a.1));
            let x_wins = (a.0, a.1) > (b.0, b.1);
            let (winner, loser) = if x_wins { (&x, &y) } else { (&y, &x) };
            assert_eq!(
                winner.state(),
                State::Master,
                "{a:?} vs {b:?}, preempt {preempt}"
            );
            assert_eq!(
                loser.state(),
                State::Backup,
                "{a:?} vs {b:?}, preempt {preempt}"
            );
        }
    }
    // The yielding master drops its addresses and waits for the winner.
    let mut x = master(config(100, 1));
    assert_eq!(
        x.handle(ms(10_000), advert(200, 2)),
        vec![
            A::BecomeBackup,
            A::ArmTimer(ms(10_000) + Duration::from_micros(3_609_375))
        ]
    );
}

#[test]
fn a_master_keeps_mastership_against_lower_priority_and_lower_address() {
    let mut m = master(config(100, 2));
    assert_eq!(m.handle(ms(9000), advert(50, 3)), vec![]);
    assert_eq!(m.handle(ms(9100), advert(100, 1)), vec![]);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn a_backup_with_preempt_takes_over_from_a_lower_priority_master() {
    let mut m = backup(config(200, 1));
    // The lower master's adverts are discarded: the timer runs out.
    assert_eq!(m.handle(ms(1000), advert(100, 2)), vec![]);
    live_master(&mut m, 100, 2, 2000, 5000);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn a_backup_without_preempt_leaves_a_lower_priority_live_master_alone() {
    let mut m = backup(Config {
        preempt: false,
        ..config(200, 1)
    });
    live_master(&mut m, 100, 2, 1000, 60_000);
    assert_eq!(m.state(), State::Backup);
    // The master going silent is another matter.
    let at = m.deadline().unwrap();
    assert_eq!(
        m.handle(at, Event::TimerExpired)[..2],
        [A::Advertise { priority: 200 }, A::BecomeMaster]
    );
}

#[test]
fn preempt_delay_holds_preemption_back_after_start() {
    let mut m = backup(Config {
        preempt_delay: Duration::from_secs(30),
        ..config(200, 1)
    });
    live_master(&mut m, 100, 2, 1000, 29_000);
    assert_eq!(m.state(), State::Backup);
    // After 30 s its adverts are discarded and Master_Down_Interval runs out.
    live_master(&mut m, 100, 2, 30_000, 34_000);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn the_warm_up_gate_holds_preemption_back_until_opened() {
    let mut m = machine(config(200, 1));
    m.handle(ms(0), Event::MayPreempt(false));
    m.handle(ms(0), Event::Startup);
    live_master(&mut m, 100, 2, 1000, 60_000);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.handle(ms(60_500), Event::MayPreempt(true)), vec![]);
    live_master(&mut m, 100, 2, 61_000, 65_000);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn the_gate_holds_back_even_the_owner_but_never_a_take_over_from_a_dead_master() {
    let mut owner = machine(config(255, 1));
    owner.handle(ms(0), Event::MayPreempt(false));
    assert_eq!(owner.handle(ms(0), Event::Startup)[0], A::BecomeBackup);
    live_master(&mut owner, 100, 2, 1000, 20_000);
    assert_eq!(owner.state(), State::Backup);
    // The master leaves: the gate does not keep the VIP down.
    owner.handle(ms(20_500), advert(0, 2));
    let at = owner.deadline().unwrap();
    owner.handle(at, Event::TimerExpired);
    assert_eq!(owner.state(), State::Master);
}

#[test]
fn the_owner_preempts_even_without_preempt() {
    let mut m = machine(Config {
        preempt: false,
        preempt_delay: Duration::from_secs(60),
        ..config(255, 1)
    });
    m.handle(ms(0), Event::MayPreempt(false));
    m.handle(ms(0), Event::Startup);
    m.handle(ms(1000), Event::MayPreempt(true));
    live_master(&mut m, 100, 2, 1000, 6000);
    assert_eq!(m.state(), State::Master);
}

#[test]
fn a_fault_gives_up_mastership_with_a_priority_0_advert() {
    let mut m = master(config(200, 1));
    assert_eq!(
        m.handle(ms(9000), Event::FaultRaised),
        vec![A::DisarmTimer, A::AdvertiseLeaving, A::BecomeBackup]
    );
    assert_eq!(m.state(), State::Fault);
    assert_eq!(m.deadline(), None);
}

#[test]
fn a_faulted_node_never_becomes_master() {
    let mut m = backup(config(200, 1));
    assert_eq!(m.handle(ms(100), Event::FaultRaised), vec![A::DisarmTimer]);
    for t in (200..120_000).step_by(700) {
        for event in [
            advert(0, 2),
            advert(1, 2),
            Event::TimerExpired,
            Event::Startup,
            Event::PriorityChanged(prio(255)),
        ] {
            assert!(m.handle(ms(t), event).is_empty(), "{event:?}");
            assert_eq!(m.state(), State::Fault);
        }
    }
    // Cleared: back through startup (now the owner, it takes over at once).
    assert_eq!(
        m.handle(ms(130_000), Event::FaultCleared)[..2],
        [A::Advertise { priority: 255 }, A::BecomeMaster]
    );
}

#[test]
fn a_fault_raised_before_startup_starts_in_fault_and_clears_to_backup() {
    let mut m = machine(config(200, 1));
    assert_eq!(m.handle(ms(0), Event::FaultRaised), vec![]);
    assert_eq!(m.state(), State::Initialize);
    assert_eq!(m.handle(ms(0), Event::Startup), vec![]);
    assert_eq!(m.state(), State::Fault);
    assert_eq!(m.handle(ms(5000), Event::FaultCleared)[0], A::BecomeBackup);
    assert_eq!(m.state(), State::Backup);
    // A clear without a fault does nothing.
    assert_eq!(m.handle(ms(5001), Event::FaultCleared), vec![]);
}

#[test]
fn shutdown_of_a_master_sends_priority_0_and_drops_the_addresses() {
    let mut m = master(config(100, 1));
    assert_eq!(
        m.handle(ms(9000), Event::Shutdown),
        vec![A::DisarmTimer, A::AdvertiseLeaving, A::BecomeBackup]
    );
    assert_eq!(m.state(), State::Initialize);
    let mut b = backup(config(100, 1));
    assert_eq!(b.handle(ms(10), Event::Shutdown), vec![A::DisarmTimer]);
    assert_eq!(b.handle(ms(20), advert(200, 2)), vec![]);
    // It can start again.
    assert_eq!(b.handle(ms(30), Event::Startup)[0], A::BecomeBackup);
}

#[test]
fn a_priority_change_is_advertised_at_once_and_lets_a_higher_backup_preempt() {
    let mut a = master(config(200, 1));
    let mut b = backup(config(150, 2));
    live_master(&mut b, 200, 1, 1000, 10_000);
    assert_eq!(b.state(), State::Backup);
    assert_eq!(
        a.handle(ms(10_500), Event::PriorityChanged(prio(100))),
        vec![A::Advertise { priority: 100 }, A::ArmTimer(ms(11_500))]
    );
    live_master(&mut b, 100, 1, 10_500, 15_500);
    assert_eq!(b.state(), State::Master);
    // The backup's own priority sets its skew.
    assert_eq!(b.priority(), prio(150));
    let mut c = backup(config(100, 3));
    c.handle(ms(1), Event::PriorityChanged(prio(228)));
    assert_eq!(
        c.master_down_interval(),
        Duration::from_millis(3_109) + Duration::from_micros(375)
    );
}

#[test]
fn configurations_the_wire_cannot_carry_are_refused() {
    assert_eq!(
        Machine::<Duration>::new(Config {
            vrid: 0,
            ..config(100, 1)
        })
        .err(),
        Some(ConfigError::Vrid)
    );
    for (version, interval) in [
        (Version::V3, Duration::ZERO),
        (Version::V3, ms(15)),
        (Version::V3, ms(40_960)),
        (Version::V2, ms(1500)),
        (Version::V2, Duration::from_secs(256)),
    ] {
        let c = Config {
            version,
            interval,
            ..config(100, 1)
        };
        assert!(
            matches!(
                Machine::<Duration>::new(c),
                Err(ConfigError::Interval { .. })
            ),
            "{version} {interval:?}"
        );
    }
    assert!(
        Machine::<Duration>::new(Config {
            interval: ms(40_950),
            ..config(100, 1)
        })
        .is_ok()
    );
    assert!(
        Machine::<std::time::Instant>::new(Config {
            version: Version::V2,
            ..config(100, 1)
        })
        .is_ok()
    );
}

#[test]
fn a_decoded_advert_is_heard_with_its_interval_in_time() {
    use crate::packet::{Addresses, Auth};
    let advert = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 200,
        interval: 150,
        auth: Auth::None,
        addresses: Addresses::V4(vec![Ipv4Addr::new(198, 51, 100, 100)]),
    };
    let heard = Heard::new(&advert, ip(2));
    assert_eq!(
        heard,
        Heard {
            vrid: 51,
            priority: 200,
            source: ip(2),
            interval: ms(1500)
        }
    );
    let mut m = backup(config(100, 1));
    m.handle(ms(0), Event::Advert(heard));
    assert_eq!(
        m.master_down_interval(),
        ms(4500) + Duration::from_micros(914_062) + Duration::from_nanos(500)
    );
}
