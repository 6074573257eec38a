use super::*;

fn rules(text: &str) -> Vec<Op> {
    rules::parse_rules(text)
        .unwrap()
        .into_iter()
        .map(|r| r.op)
        .collect()
}

/// What the kernel does with each change (enough of it for these tests).
fn kernel(table: &mut Table, op: &Op) {
    let find = |t: &mut Table, k: &ServiceKey| t.iter().position(|(s, _)| s.key == *k);
    match op {
        Op::AddService(s) => table.push((s.clone(), vec![])),
        Op::EditService(s) => {
            let i = find(table, &s.key).unwrap();
            table[i].0 = s.clone();
        }
        Op::DeleteService(k) => {
            let i = find(table, k).unwrap();
            table.remove(i);
        }
        Op::AddDestination(k, d) => {
            let i = find(table, k).unwrap();
            table[i].1.push(d.clone());
        }
        Op::EditDestination(k, d) | Op::DeleteDestination(k, d) => {
            let i = find(table, k).unwrap();
            let j = table[i]
                .1
                .iter()
                .position(|x| (x.addr, x.port) == (d.addr, d.port))
                .unwrap();
            if matches!(op, Op::EditDestination(..)) {
                table[i].1[j] = d.clone();
            } else {
                table[i].1.remove(j);
            }
        }
        Op::Flush => table.clear(),
        Op::Zero(_) | Op::SetTimeouts(_) => {}
    }
}

/// Sorted, without counters: the same table whatever the kernel order.
fn canon(t: &Table) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<_> = t
        .iter()
        .map(|(s, ds)| {
            let mut ds: Vec<String> = ds
                .iter()
                .map(|d| format!("{:?}", d.without_counters()))
                .collect();
            ds.sort();
            (
                format!(
                    "{:?}",
                    Service {
                        stats: None,
                        ..s.clone()
                    }
                ),
                ds,
            )
        })
        .collect();
    v.sort();
    v
}

/// A live table: three services, one of them with thresholds on a
/// destination (ipvsadm -S does not save those) and counters.
fn live() -> Table {
    let mut t = Table::new();
    for op in rules(
        "-A -t 203.0.113.10:80 -s wrr\n\
         -a -t 203.0.113.10:80 -r 198.51.100.11 -g -w 1\n\
         -a -t 203.0.113.10:80 -r 198.51.100.12 -g -w 2 -x 100 -y 10\n\
         -A -t 203.0.113.20:443 -s rr -p 60\n\
         -a -t 203.0.113.20:443 -r 198.51.100.11 -g\n\
         -A -f 11 -s sh\n\
         -a -f 11 -r 198.51.100.13:0 -g -w 3\n",
    ) {
        kernel(&mut t, &op);
    }
    t[0].1[0].active_conns = 7;
    t[0].0.stats = Some(Box::new(lvs_ipvs::Stats {
        conns: 42,
        ..Default::default()
    }));
    t
}

fn mentions(ops: &[Op], key: &ServiceKey) -> bool {
    ops.iter().any(|op| match op {
        Op::AddService(s) | Op::EditService(s) => s.key == *key,
        Op::DeleteService(k)
        | Op::AddDestination(k, _)
        | Op::EditDestination(k, _)
        | Op::DeleteDestination(k, _) => k == key,
        _ => false,
    })
}

#[test]
fn a_failed_restore_is_undone_without_touching_other_services() {
    let before = live();
    // What a restore sent before its failing line: an added service with a
    // server, an edit of the fwmark service and of one of its servers, a
    // deleted server, and a deleted service.
    let sent = rules(
        "-A -t 203.0.113.30:80 -s rr\n\
         -a -t 203.0.113.30:80 -r 198.51.100.14\n\
         -E -f 11 -s rr -p 30\n\
         -e -f 11 -r 198.51.100.13:0 -g -w 9\n\
         -a -f 11 -r 198.51.100.14:0 -g\n\
         -d -t 203.0.113.20:443 -r 198.51.100.11\n\
         -D -t 203.0.113.20:443\n\
         -Z\n",
    );
    let mut now = before.clone();
    for op in &sent {
        kernel(&mut now, op);
    }
    let touched = Touched::of(sent.iter());
    let undo = undo_ops(&before, &now, &touched);
    // The live web service (with connections and counters) is never sent
    // a request.
    assert!(!mentions(&undo, &before[0].0.key), "{undo:?}");
    for op in &undo {
        kernel(&mut now, op);
    }
    assert_eq!(canon(&now), canon(&before));
    // Edits stay edits: the fwmark service and its server are edited back
    // in place, not deleted and added.
    let fw = ServiceKey::fwmark(lvs_ipvs::Family::Inet, 11);
    assert!(
        undo.iter()
            .any(|o| matches!(o, Op::EditService(s) if s.key == fw))
    );
    assert!(
        undo.iter()
            .any(|o| matches!(o, Op::EditDestination(k, d) if *k == fw && d.weight == 3))
    );
    assert!(
        !undo
            .iter()
            .any(|o| matches!(o, Op::DeleteService(k) if *k == fw))
    );
    // The added service goes first (before anything is re-added).
    assert!(matches!(&undo[0], Op::DeleteService(k) if k.port() == 80 && *k != before[0].0.key));
}

#[test]
fn a_flush_puts_every_service_back_with_thresholds() {
    let before = live();
    let sent = rules("-C\n-A -t 203.0.113.60:80 -s rr\n--set 11 22 33\n");
    let mut now = before.clone();
    for op in &sent {
        kernel(&mut now, op);
    }
    let touched = Touched::of(sent.iter());
    assert!(touched.all && touched.timeouts);
    let undo = undo_ops(&before, &now, &touched);
    for op in &undo {
        kernel(&mut now, op);
    }
    assert_eq!(canon(&now), canon(&before));
    assert!(undo.iter().any(|o| matches!(
        o,
        Op::AddDestination(_, d) if d.upper_threshold == 100 && d.lower_threshold == 10
    )));
}

#[test]
fn nothing_sent_nothing_undone() {
    let before = live();
    // Someone else changed a service meanwhile: not this run's business.
    let mut now = before.clone();
    now[1].0.scheduler = "lc".into();
    now[0].0.stats = None;
    let touched = Touched::of(rules("-Z\n").iter());
    assert_eq!(touched, Touched::default());
    assert!(undo_ops(&before, &now, &touched).is_empty());
    // Counters differ between reads; they are not settings.
    let mut now = before.clone();
    now[0].1[0].active_conns = 1000;
    now[0].1[0].inact_conns = 5;
    now[0].0.stats = None;
    let touched = Touched::of(rules("-e -t 203.0.113.10:80 -r 198.51.100.11 -g -w 1\n").iter());
    assert!(undo_ops(&before, &now, &touched).is_empty());
}
