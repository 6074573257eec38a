//! What the daemon believes the kernel holds: the last table it read, with
//! every change since that the kernel accepted. Edits of a few services are
//! planned against it, so a check result never re-reads the whole table.

use std::collections::HashMap;

use lvs_ipvs::Op;
use lvs_ipvs::table::{Destination, Service, ServiceKey};

use crate::cluster::Table;

/// What the daemon believes the kernel holds (the last table read, with
/// every change since that the kernel accepted).
pub type View = HashMap<ServiceKey, (Service, Vec<Destination>)>;

/// The view of a table just read. Counters are dropped: planning needs
/// none, and 20,000 of them are 2 MB held between syncs.
pub fn view_of(table: Table) -> View {
    table
        .into_iter()
        .map(|(mut s, mut ds)| {
            s.stats = None;
            for d in &mut ds {
                d.stats = None;
            }
            (s.key, (s, ds))
        })
        .collect()
}

pub fn patch(view: &mut View, op: &Op) {
    let same = |a: &Destination, b: &Destination| a.addr == b.addr && a.port == b.port;
    match op {
        Op::AddService(s) | Op::EditService(s) => {
            let e = view.entry(s.key).or_insert_with(|| (s.clone(), Vec::new()));
            e.0 = s.clone();
        }
        Op::DeleteService(k) => {
            view.remove(k);
        }
        Op::AddDestination(k, d) | Op::EditDestination(k, d) => {
            if let Some((_, ds)) = view.get_mut(k) {
                match ds.iter_mut().find(|x| same(x, d)) {
                    Some(x) => *x = d.clone(),
                    None => ds.push(d.clone()),
                }
            }
        }
        Op::DeleteDestination(k, d) => {
            if let Some((_, ds)) = view.get_mut(k) {
                ds.retain(|x| !same(x, d));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_follows_ops() {
        let key = ServiceKey::tcp("203.0.113.10".parse().unwrap(), 80);
        let mut v = View::new();
        let s = Service::new(key, "wrr");
        patch(&mut v, &Op::AddService(s.clone()));
        let mut d = Destination::new("198.51.100.11".parse().unwrap(), 80);
        patch(&mut v, &Op::AddDestination(key, d.clone()));
        d.weight = 0;
        patch(&mut v, &Op::EditDestination(key, d.clone()));
        assert_eq!(v[&key].1, vec![d.clone()]);
        patch(&mut v, &Op::DeleteDestination(key, d));
        assert!(v[&key].1.is_empty());
        patch(&mut v, &Op::DeleteService(key));
        assert!(v.is_empty());
    }
}
