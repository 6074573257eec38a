//! `ipvsctl restore`: check every line, apply, and if the kernel refuses a
//! line, undo what this run changed, and only that.
//!
//! The undo converges back, by edits in place, the services this run
//! touched: a service it added is deleted, one it edited is edited back,
//! one it deleted (or flushed) is added again with its destinations
//! (thresholds included), destinations likewise; timeouts it set are set
//! back. Services the rules never named are never sent a request, so
//! their connections, persistence templates and counters carry on.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use lvs_ipvs::rules::{self, Rule};
use lvs_ipvs::{Destination, Error, Handle, Op, Service, ServiceKey, Timeouts};

use crate::{Fail, connect, lock};

/// The IPVS table as [`Handle::table`] returns it.
type Table = Vec<(Service, Vec<Destination>)>;

pub(crate) fn restore(netns: &Option<String>, file: Option<&Path>) -> Result<(), Fail> {
    let mut text = String::new();
    let read = match file {
        Some(p) => std::fs::read_to_string(p).map(|t| text = t),
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
    };
    read.map_err(|e| Fail::usage(format!("cannot read rules: {e}")))?;
    // 1. Validate everything; a bad line applies nothing.
    let rules = rules::parse_rules(&text).map_err(|e| Fail::usage(e.to_string()))?;
    // Held until the undo below is done: a concurrent run must not change
    // the table between the read of `before` and the rollback.
    let _lock = lock(netns)?;
    let h = connect(netns)?;
    // 2. Remember the state to put back.
    let before = h.table()?;
    let timeouts_before = h.timeouts()?;
    // 3. Apply.
    let Err(failure) = apply_rules(&h, &rules) else {
        return Ok(());
    };
    // 4. Undo what the requests sent so far may have changed.
    let touched = Touched::of(failure.sent.iter().map(|r| &r.op));
    let undone = roll_back(&h, &before, &timeouts_before, &touched);
    let err = failure.error;
    let mut message = format!("line {}: {} ({err})", failure.line, err.ipvsadm_message());
    match undone {
        Ok(()) => message.push_str("; the previous IPVS table was restored"),
        Err(e) => message.push_str(&format!("; rolling back failed too: {e}")),
    }
    Err(Fail { code: 255, message })
}

/// The first kernel refusal, and every rule sent to the kernel so far.
struct Failure<'a> {
    line: usize,
    error: Error,
    sent: Vec<&'a Rule>,
}

/// Whether the rules only add services and destinations (a saved table):
/// then all services can go in flight together, then all destinations.
fn only_adds(rules: &[Rule]) -> bool {
    rules
        .iter()
        .all(|r| matches!(r.op, Op::AddService(_) | Op::AddDestination(..)))
}

/// Apply the rules; on the first kernel error, its line and error.
fn apply_rules<'a>(h: &Handle, rules: &'a [Rule]) -> Result<(), Failure<'a>> {
    if only_adds(rules) {
        let (services, dests): (Vec<&Rule>, Vec<&Rule>) = rules
            .iter()
            .partition(|r| matches!(r.op, Op::AddService(_)));
        apply_batch(h, &services, Vec::new())?;
        let dests = recycling_order(h, dests);
        return apply_batch(h, &dests, services);
    }
    for (i, r) in rules.iter().enumerate() {
        if let Err(error) = h.apply(&r.op) {
            return Err(Failure {
                line: r.line,
                error,
                sent: rules[..=i].iter().collect(),
            });
        }
    }
    Ok(())
}

/// Apply independent rules in one go; the failure with the lowest line.
/// `earlier` are the rules sent before this batch.
fn apply_batch<'a>(
    h: &Handle,
    batch: &[&'a Rule],
    earlier: Vec<&'a Rule>,
) -> Result<(), Failure<'a>> {
    let ops: Vec<Op> = batch.iter().map(|r| r.op.clone()).collect();
    let first = batch
        .iter()
        .zip(h.apply_many(&ops))
        .filter_map(|(r, res)| res.err().map(|e| (r.line, e)))
        .min_by_key(|(line, _)| *line);
    match first {
        None => Ok(()),
        Some((line, error)) => Err(Failure {
            line,
            error,
            sent: earlier.into_iter().chain(batch.iter().copied()).collect(),
        }),
    }
}

/// The destination rules in the order the kernel adds them fastest: the
/// services in the reverse of the kernel's service order, each service's
/// destinations in file order.
///
/// Why: the kernel keeps deleted destinations in a "trash" list for a
/// minute or two (a flush puts them all there, walking services in that
/// same service order) and searches the whole list on every destination
/// added. After a flush of the same table, this order finds each match at
/// the head of the list instead of deep inside it (measured in the VM:
/// restoring 10,000 services with 50,000 destinations after a flush took
/// 49.9 s in file order, 2.2 s in this order). Destinations of one service
/// keep their relative order, so the resulting table is the same.
fn recycling_order<'a>(h: &Handle, dests: Vec<&'a Rule>) -> Vec<&'a Rule> {
    let Ok(services) = h.services() else {
        return dests;
    };
    let mut by_service: HashMap<ServiceKey, Vec<&'a Rule>> = HashMap::new();
    let mut rest = Vec::new();
    for r in dests {
        match &r.op {
            Op::AddDestination(k, _) => by_service.entry(*k).or_default().push(r),
            _ => rest.push(r),
        }
    }
    let mut out = Vec::with_capacity(rest.len());
    for s in services.iter().rev() {
        if let Some(rs) = by_service.remove(&s.key) {
            out.extend(rs);
        }
    }
    // Services the kernel does not list (their adds fail): file order.
    let mut left: Vec<&Rule> = by_service.into_values().flatten().chain(rest).collect();
    left.sort_by_key(|r| r.line);
    out.extend(left);
    out
}

/// What the requests sent by a run may have changed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Touched {
    /// Every service (a flush was sent).
    all: bool,
    services: HashSet<ServiceKey>,
    timeouts: bool,
}

impl Touched {
    fn of<'a>(ops: impl Iterator<Item = &'a Op>) -> Touched {
        let mut t = Touched::default();
        for op in ops {
            match op {
                Op::AddService(s) | Op::EditService(s) => {
                    t.services.insert(s.key);
                }
                Op::DeleteService(k)
                | Op::AddDestination(k, _)
                | Op::EditDestination(k, _)
                | Op::DeleteDestination(k, _) => {
                    t.services.insert(*k);
                }
                Op::Flush => t.all = true,
                Op::SetTimeouts(_) => t.timeouts = true,
                // Counters cannot be put back.
                Op::Zero(_) => {}
            }
        }
        t
    }

    fn has(&self, key: &ServiceKey) -> bool {
        self.all || self.services.contains(key)
    }
}

/// Put the touched services back as they were in `before`, and the
/// timeouts if the run set them.
fn roll_back(
    h: &Handle,
    before: &Table,
    timeouts: &Timeouts,
    touched: &Touched,
) -> Result<(), Error> {
    let now = h.table()?;
    let ops = undo_ops(before, &now, touched);
    for r in h.apply_many(&ops) {
        r?;
    }
    if touched.timeouts && h.timeouts()? != *timeouts {
        h.set_timeouts(timeouts)?;
    }
    Ok(())
}

/// The changes that bring the touched services of `now` back to `before`,
/// in an order the kernel accepts: services the run added are deleted
/// first, then services are edited back or added again, then their
/// destinations. Services not touched get nothing.
fn undo_ops(before: &Table, now: &Table, touched: &Touched) -> Vec<Op> {
    let was: HashMap<ServiceKey, &(Service, Vec<Destination>)> =
        before.iter().map(|e| (e.0.key, e)).collect();
    let is: HashMap<ServiceKey, &(Service, Vec<Destination>)> =
        now.iter().map(|e| (e.0.key, e)).collect();
    let mut deletions = Vec::new();
    let mut services = Vec::new();
    let mut dests = Vec::new();
    for (svc, _) in now {
        if touched.has(&svc.key) && !was.contains_key(&svc.key) {
            deletions.push(Op::DeleteService(svc.key));
        }
    }
    for (svc, want) in before {
        let key = svc.key;
        if !touched.has(&key) {
            continue;
        }
        let Some((cur, have)) = is.get(&key) else {
            services.push(Op::AddService(svc.clone()));
            dests.extend(want.iter().map(|d| Op::AddDestination(key, d.clone())));
            continue;
        };
        if cur.without_counters() != svc.without_counters() {
            services.push(Op::EditService(svc.clone()));
        }
        let id = |d: &Destination| (d.addr, d.port);
        let wanted: HashMap<_, _> = want.iter().map(|d| (id(d), d)).collect();
        let had: HashMap<_, _> = have.iter().map(|d| (id(d), d)).collect();
        for d in have {
            if !wanted.contains_key(&id(d)) {
                dests.push(Op::DeleteDestination(key, d.clone()));
            }
        }
        for d in want {
            match had.get(&id(d)) {
                None => dests.push(Op::AddDestination(key, d.clone())),
                Some(h) if h.without_counters() != d.without_counters() => {
                    dests.push(Op::EditDestination(key, d.clone()))
                }
                Some(_) => {}
            }
        }
    }
    deletions.into_iter().chain(services).chain(dests).collect()
}

#[cfg(test)]
mod tests;
