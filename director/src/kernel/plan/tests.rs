use super::*;
use lvs_ipvs::table::{Family, Forward};

fn key(port: u16) -> ServiceKey {
    ServiceKey::tcp("203.0.113.10".parse().unwrap(), port)
}

fn rs(last: u8, weight: u32) -> Destination {
    let mut d = Destination::new(format!("198.51.100.{last}").parse().unwrap(), 80);
    d.weight = weight;
    d
}

fn wrr() -> (Service, Vec<Destination>) {
    (Service::new(key(80), "wrr"), vec![rs(11, 1), rs(12, 2)])
}

/// As the kernel reports it: counters and statistics filled in.
fn dumped(mut e: (Service, Vec<Destination>)) -> (Service, Vec<Destination>) {
    e.0.stats = Some(Box::default());
    for d in &mut e.1 {
        d.active_conns = 3;
        d.inact_conns = 1;
        d.stats = Some(Box::default());
    }
    e
}

#[test]
fn empty_kernel_gets_services_then_destinations() {
    let p = plan(&[wrr()], &[], false);
    assert_eq!(p.services, vec![Op::AddService(wrr().0)]);
    assert_eq!(
        p.destinations,
        vec![
            Op::AddDestination(key(80), rs(11, 1)),
            Op::AddDestination(key(80), rs(12, 2))
        ]
    );
    assert!(p.deletions.is_empty() && p.unmanaged.is_empty());
    assert_eq!(p.ops().count(), 3);
}

#[test]
fn same_table_plans_nothing() {
    let p = plan(&[wrr()], &[dumped(wrr())], false);
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn weight_change_is_an_edit() {
    let mut want = wrr();
    want.1[0].weight = 3;
    let p = plan(&[want], &[dumped(wrr())], true);
    assert!(p.services.is_empty());
    assert_eq!(
        p.destinations,
        vec![Op::EditDestination(key(80), rs(11, 3))]
    );
    assert!(p.deletions.is_empty());
}

#[test]
fn scheduler_flags_persistence_are_edits() {
    for change in [
        |s: &mut Service| s.scheduler = "rr".into(),
        |s: &mut Service| s.flags.set(ServiceFlags::ONEPACKET, true),
        |s: &mut Service| *s = s.clone().persistent(60),
        |s: &mut Service| {
            *s = s.clone().persistent(60);
            s.netmask = 0xffff_ff00
        },
    ] {
        let mut want = wrr();
        change(&mut want.0);
        let p = plan(std::slice::from_ref(&want), &[dumped(wrr())], true);
        assert_eq!(p.services, vec![Op::EditService(want.0.clone())]);
        assert!(p.destinations.is_empty() && p.deletions.is_empty());
    }
}

#[test]
fn thresholds_and_forwarding_are_edits() {
    let mut want = wrr();
    want.1[1].upper_threshold = 100;
    want.1[1].lower_threshold = 10;
    want.1[0].forward = Forward::Tunnel;
    let p = plan(std::slice::from_ref(&want), &[dumped(wrr())], false);
    assert_eq!(
        p.destinations,
        vec![
            Op::EditDestination(key(80), want.1[0].clone()),
            Op::EditDestination(key(80), want.1[1].clone())
        ]
    );
}

#[test]
fn hashed_flag_from_the_kernel_is_not_a_difference() {
    let mut have = dumped(wrr());
    have.0.flags.0 |= ServiceFlags::HASHED;
    assert!(plan(&[wrr()], &[have], false).is_empty());
}

#[test]
fn destinations_not_in_the_file_are_deleted() {
    let mut have = dumped(wrr());
    have.1.push(rs(13, 1));
    let mut want = wrr();
    want.1.remove(0);
    want.1.push(rs(14, 5));
    let p = plan(&[want], &[have], false);
    let del = |d: Destination| Op::DeleteDestination(key(80), d);
    assert_eq!(
        p.destinations,
        vec![
            del(rs(11, 1)),
            del(rs(13, 1)),
            Op::AddDestination(key(80), rs(14, 5))
        ]
    );
}

#[test]
fn other_services_are_reported_or_pruned() {
    let other = (Service::new(key(443), "rr"), vec![rs(11, 1)]);
    let mark = (
        Service::new(ServiceKey::fwmark(Family::Inet, 11), "wlc"),
        vec![],
    );
    let current = [dumped(other.clone()), dumped(wrr()), mark.clone()];
    let p = plan(&[wrr()], &current, false);
    assert!(p.is_empty());
    assert_eq!(p.unmanaged, vec![key(443), mark.0.key]);
    let p = plan(&[wrr()], &current, true);
    assert_eq!(
        p.deletions,
        vec![Op::DeleteService(key(443)), Op::DeleteService(mark.0.key)]
    );
    assert!(p.unmanaged.is_empty());
    // Their destinations are never touched one by one.
    assert!(p.destinations.is_empty() && p.services.is_empty());
}

#[test]
fn an_empty_file_with_prune_deletes_everything() {
    let p = plan(&[], &[dumped(wrr())], true);
    assert_eq!(p.deletions, vec![Op::DeleteService(key(80))]);
}

#[test]
fn removal_deletes_only_the_files_services() {
    let other = (Service::new(key(443), "rr"), vec![]);
    let p = plan_removal(&[key(80), key(8080)], &[other, dumped(wrr())]);
    assert_eq!(p.deletions, vec![Op::DeleteService(key(80))]);
    assert_eq!(p.ops().count(), 1);
}

#[test]
fn plan_back_from_a_changed_table_restores_it() {
    // What a rollback does: plan(before, now, prune).
    let before = [dumped(wrr())];
    let mut now_svc = wrr();
    now_svc.0.scheduler = "rr".into();
    now_svc.1[0].weight = 7;
    now_svc.1.push(rs(13, 1));
    let added = (Service::new(key(8080), "rr"), vec![]);
    let p = plan(&before, &[now_svc, added], true);
    assert_eq!(p.services, vec![Op::EditService(wrr().0)]);
    assert_eq!(
        p.destinations,
        vec![
            Op::DeleteDestination(key(80), rs(13, 1)),
            Op::EditDestination(key(80), rs(11, 1))
        ]
    );
    assert_eq!(p.deletions, vec![Op::DeleteService(key(8080))]);
}

#[test]
fn steps_describe_old_and_new_values() {
    let mut want = wrr();
    want.0 = want.0.persistent(60);
    want.1[0].weight = 3;
    want.1.push(rs(13, 1));
    let current = [dumped(wrr())];
    let p = plan(&[want], &current, false);
    let text: Vec<String> = steps(&p, &current).iter().map(|s| s.to_string()).collect();
    assert_eq!(
        text,
        [
            "edit service tcp 203.0.113.10:80 (scheduler wrr -> scheduler wrr, persistence 60s)",
            "edit destination 198.51.100.11:80 of tcp 203.0.113.10:80 (dr, weight 1 -> dr, weight 3)",
            "add destination 198.51.100.13:80 of tcp 203.0.113.10:80 (dr, weight 1)",
        ]
    );
    let json = serde_json::to_value(steps(&p, &current)).unwrap();
    assert_eq!(json[1]["action"], "edit");
    assert_eq!(json[1]["object"], "destination");
    assert_eq!(json[1]["destination"], "198.51.100.11:80");
    assert!(json[0].get("destination").is_none());
}
