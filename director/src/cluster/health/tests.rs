use std::time::Duration;

use super::*;

fn down(why: &str) -> CheckOutcome {
    CheckOutcome::Down(why.into())
}

/// A fake clock: t(n) is n seconds after a fixed start.
fn clock() -> impl Fn(u64) -> Instant {
    let start = Instant::now();
    move |n| start + Duration::from_secs(n)
}

#[test]
fn new_check_needs_rise_successes() {
    let t = clock();
    let mut s = CheckState::new(t(0));
    assert!(!s.serving());
    assert_eq!(s.record(&CheckOutcome::Up, 2, 3, t(1)), None);
    assert!(!s.serving(), "one success of two");
    let tr = s.record(&CheckOutcome::Up, 2, 3, t(2)).unwrap();
    assert_eq!((tr.from, tr.to), ("unchecked", "up"));
    assert_eq!(tr.reason, "2 consecutive successes");
    assert!(s.serving());
    assert_eq!(s.since.instant(), t(2));
}

#[test]
fn new_check_failing_is_down_at_once() {
    let t = clock();
    let mut s = CheckState::new(t(0));
    let tr = s.record(&down("connection refused"), 2, 3, t(1)).unwrap();
    assert_eq!(
        (tr.from, tr.to, tr.reason.as_str()),
        ("unchecked", "down", "connection refused")
    );
    assert_eq!(s.record(&down("connection refused"), 2, 3, t(2)), None);
}

#[test]
fn up_falls_after_fall_failures_and_rises_after_rise() {
    let t = clock();
    let mut s = CheckState::always_up(t(0));
    assert_eq!(s.record(&down("HTTP 503"), 2, 3, t(1)), None);
    assert_eq!(s.record(&down("HTTP 503"), 2, 3, t(2)), None);
    assert!(s.serving());
    let tr = s.record(&down("timeout after 1.0s"), 2, 3, t(3)).unwrap();
    assert_eq!((tr.from, tr.to), ("up", "down"));
    assert_eq!(tr.reason, "timeout after 1.0s");
    assert!(!s.serving());
    assert_eq!(s.record(&CheckOutcome::Up, 2, 3, t(4)), None);
    let tr = s.record(&CheckOutcome::Up, 2, 3, t(5)).unwrap();
    assert_eq!((tr.from, tr.to), ("down", "up"));
    assert_eq!((s.runs, s.failed_runs), (5, 3));
}

#[test]
fn flapping_never_reaches_fall_or_rise() {
    let t = clock();
    let mut up = CheckState::always_up(t(0));
    let mut dn = CheckState::always_up(t(0));
    for _ in 0..3 {
        dn.record(&down("x"), 2, 3, t(1));
    }
    assert_eq!(dn.health, Health::Down);
    for n in 0..20 {
        let o = if n % 2 == 0 {
            down("x")
        } else {
            CheckOutcome::Up
        };
        assert_eq!(up.record(&o, 2, 3, t(n)), None, "up flaps, stays up");
        let o = if n % 2 == 0 {
            CheckOutcome::Up
        } else {
            down("x")
        };
        assert_eq!(dn.record(&o, 2, 3, t(n)), None, "down flaps, stays down");
    }
    assert!(up.serving());
    assert!(!dn.serving());
}

#[test]
fn adopted_check_keeps_up_until_fall() {
    let t = clock();
    let mut s = CheckState::adopted(t(0));
    assert!(s.assumed && s.serving());
    assert_eq!(s.record(&down("connection refused"), 2, 3, t(1)), None);
    assert!(!s.assumed, "the first result ends the adoption");
    assert!(s.serving());
    let mut s = CheckState::adopted(t(0));
    assert_eq!(
        s.record(&CheckOutcome::Up, 2, 3, t(1)),
        None,
        "confirmed, no transition"
    );
    assert!(!s.assumed && s.serving());
}

#[test]
fn agent_drain_and_back() {
    let t = clock();
    let mut s = CheckState::always_up(t(0));
    let tr = s.record(&CheckOutcome::Drain, 2, 3, t(1)).unwrap();
    assert_eq!((tr.from, tr.to), ("up", "drain"));
    assert!(!s.serving());
    assert_eq!(s.health, Health::Up);
    let tr = s.record(&CheckOutcome::Up, 2, 3, t(2)).unwrap();
    assert_eq!((tr.from, tr.to), ("drain", "up"));
    // A new server whose agent says drain comes up drained.
    let mut n = CheckState::new(t(0));
    n.record(&CheckOutcome::Drain, 1, 3, t(1));
    assert_eq!(n.label(), "drain");
}

#[test]
fn rise_and_fall_of_one() {
    let t = clock();
    let mut s = CheckState::new(t(0));
    assert!(s.record(&CheckOutcome::Up, 1, 1, t(1)).is_some());
    assert!(s.record(&down("x"), 1, 1, t(2)).is_some());
    assert!(s.record(&CheckOutcome::Up, 1, 1, t(3)).is_some());
}

#[test]
fn skipped_changes_nothing() {
    let t = clock();
    let mut s = CheckState::adopted(t(0));
    assert_eq!(
        s.record(&CheckOutcome::Skipped("busy".into()), 2, 3, t(1)),
        None
    );
    assert!(s.assumed, "still waiting for a real result");
    assert_eq!(s.runs, 0);
}

#[test]
fn stamps_and_durations_round_trip() {
    let now = Instant::now();
    for t in [
        now,
        now + Duration::from_nanos(1),
        now + Duration::from_secs(86_400 * 400),
        now - Duration::from_millis(1500),
    ] {
        assert_eq!(Stamp::of(t).instant(), t);
    }
    let mut s = CheckState::new(now);
    assert_eq!(s.last_duration(), None);
    for d in [Duration::ZERO, Duration::from_micros(1500)] {
        s.set_last_duration(d);
        assert_eq!(s.last_duration(), Some(d));
    }
    s.set_last_duration(Duration::from_secs(10_000));
    assert_eq!(
        s.last_duration(),
        Some(Duration::from_micros(u64::from(u32::MAX - 1)))
    );
}
