//! ipvsadm's order: its comparison of services and destinations, and
//! glibc's merge sort, step for step (see the module above).

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::table::{Destination, Family, Service, ServiceKey, addr_bytes};

/// C's `int` result of subtracting two `uint32_t` values.
fn c_diff_u32(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_words(addr: &IpAddr) -> [u32; 4] {
    let b = addr_bytes(addr);
    let mut w = [0u32; 4];
    for (i, word) in w.iter_mut().enumerate() {
        *word = u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    }
    w
}

fn cmp_addr(af_v6: bool, a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (addr_words(a), addr_words(b));
    if af_v6 {
        let mut r = 0;
        for i in 0..4 {
            r = c_diff_u32(wa[i], wb[i]);
            if r != 0 {
                break;
            }
        }
        r
    } else {
        c_diff_u32(wa[0], wb[0])
    }
}

/// libipvs' `ipvs_cmp_services`, with C's arithmetic.
pub fn ipvsadm_cmp_services(a: &Service, b: &Service) -> i32 {
    let (fa, fb) = (fwmark_of(&a.key), fwmark_of(&b.key));
    let r = c_diff_u32(fa, fb);
    if r != 0 {
        return r;
    }
    let r = i32::from(a.key.family().raw()) - i32::from(b.key.family().raw());
    if r != 0 {
        return r;
    }
    let r = i32::from(proto_of(&a.key)) - i32::from(proto_of(&b.key));
    if r != 0 {
        return r;
    }
    let (aa, ab) = (addr_of(&a.key), addr_of(&b.key));
    let r = cmp_addr(a.key.family() == Family::Inet6, &aa, &ab);
    if r != 0 {
        return r;
    }
    i32::from(a.key.port()) - i32::from(b.key.port())
}

/// libipvs' `ipvs_cmp_dests`, with C's arithmetic.
pub fn ipvsadm_cmp_dests(a: &Destination, b: &Destination) -> i32 {
    let r = i32::from(a.family().raw()) - i32::from(b.family().raw());
    if r != 0 {
        return r;
    }
    let r = cmp_addr(a.family() == Family::Inet6, &a.addr, &b.addr);
    if r != 0 {
        return r;
    }
    i32::from(a.port) - i32::from(b.port)
}

fn fwmark_of(k: &ServiceKey) -> u32 {
    match k {
        ServiceKey::Fwmark { mark, .. } => *mark,
        ServiceKey::Addr { .. } => 0,
    }
}

fn proto_of(k: &ServiceKey) -> u16 {
    match k {
        ServiceKey::Addr { protocol, .. } => protocol.raw(),
        // ipvsadm's listing of a fwmark service carries whatever the kernel
        // reports; fwmark services differ by mark first anyway.
        ServiceKey::Fwmark { .. } => 0,
    }
}

fn addr_of(k: &ServiceKey) -> IpAddr {
    match k {
        ServiceKey::Addr { addr, .. } => *addr,
        ServiceKey::Fwmark {
            family: Family::Inet,
            ..
        } => IpAddr::from([0u8; 4]),
        ServiceKey::Fwmark {
            family: Family::Inet6,
            ..
        } => IpAddr::from([0u8; 16]),
    }
}

/// Sort like glibc's `qsort` (top-down merge sort, left run first, left
/// element taken when the comparison is <= 0) with a C comparison.
pub fn ipvsadm_sort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let order = ipvsadm_order(v, cmp);
    let sorted: Vec<T> = order.iter().map(|&i| v[i].clone()).collect();
    v.clone_from_slice(&sorted);
}

/// The positions of `items` in ipvsadm's order (see [`ipvsadm_sort`]):
/// the merge sort runs on indices, so no item is copied.
pub fn ipvsadm_order<T>(items: &[T], cmp: &impl Fn(&T, &T) -> i32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut tmp = Vec::with_capacity(items.len());
    merge_sort(&mut idx, &mut tmp, &|a: usize, b: usize| {
        cmp(&items[a], &items[b])
    });
    idx
}

fn merge_sort(v: &mut [usize], tmp: &mut Vec<usize>, cmp: &impl Fn(usize, usize) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut v[..n1], tmp, cmp);
    merge_sort(&mut v[n1..], tmp, cmp);
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(v[i], v[j]) <= 0 {
            tmp.push(v[i]);
            i += 1;
        } else {
            tmp.push(v[j]);
            j += 1;
        }
    }
    // What is left of the right run is already in place.
    tmp.extend_from_slice(&v[i..n1]);
    let k = tmp.len();
    v[..k].copy_from_slice(tmp);
}

/// ipvsadm's order of a table: service positions, and for each service
/// (by position in `table`) the positions of its destinations.
pub fn table_order(table: &[(Service, Vec<Destination>)]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let services = ipvsadm_order(table, &|a: &(Service, Vec<Destination>), b| {
        ipvsadm_cmp_services(&a.0, &b.0)
    });
    let dests = table
        .iter()
        .map(|(_, d)| ipvsadm_order(d, &ipvsadm_cmp_dests))
        .collect();
    (services, dests)
}

/// Order a table (services and each service's destinations) like ipvsadm.
pub fn sort_table(table: &mut [(Service, Vec<Destination>)]) {
    let (services, dests) = table_order(table);
    let mut taken: Vec<Option<(Service, Vec<Destination>)>> = table
        .iter_mut()
        .map(|e| Some((e.0.clone(), std::mem::take(&mut e.1))))
        .collect();
    for (slot, &i) in table.iter_mut().zip(&services) {
        let (svc, ds) = taken[i].take().expect("a permutation");
        let mut ds: Vec<Option<Destination>> = ds.into_iter().map(Some).collect();
        let ordered = dests[i]
            .iter()
            .map(|&j| ds[j].take().expect("a permutation"))
            .collect();
        *slot = (svc, ordered);
    }
}

/// A total order consistent with ipvsadm's where ipvsadm's is consistent;
/// for callers that just want a stable, readable order.
pub fn natural_cmp_services(a: &Service, b: &Service) -> Ordering {
    ipvsadm_cmp_services(a, b).cmp(&0)
}
