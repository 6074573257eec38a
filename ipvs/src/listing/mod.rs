//! `ipvsadm -L -n` rendering, byte for byte, and ipvsadm's ordering.
//!
//! ipvsadm sorts services and destinations with glibc's `qsort` and a
//! comparison that subtracts unsigned 32-bit values into an `int`, so it is
//! not a proper order (addresses more than 2^31 apart compare backwards).
//! To print the same order, [`ipvsadm_sort`] reproduces glibc's merge sort
//! (the algorithm of `qsort` in glibc up to 2.36, Debian 12's) step for step
//! with the same comparison.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::model::{
    Destination, Family, Forward, Info, Protocol, Service, ServiceFlags, ServiceKey, Stats,
    TUN_FLAG_CSUM, TUN_FLAG_REMCSUM, Timeouts, TunnelType, addr_bytes, fmt_addr_port,
};

/// Which columns `ipvsadm -L` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Columns {
    /// Forward, Weight, ActiveConn, InActConn.
    #[default]
    Plain,
    /// `--stats`.
    Stats,
    /// `--rate`.
    Rate,
    /// `--thresholds`.
    Thresholds,
    /// `--persistent-conn`.
    PersistentConn,
    /// `--tun-info`.
    TunInfo,
}

/// Options of a listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListFormat {
    pub columns: Columns,
    /// `--exact`: full numbers instead of K/M/G/T.
    pub exact: bool,
    /// `--nosort`: kernel order.
    pub nosort: bool,
}

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

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// The service column of a listing ("TCP  1.2.3.4:80", "FWM  11 IPv6").
pub fn list_service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            format!(
                "{:<4} {}",
                proto_name(*protocol),
                fmt_addr_port(addr, *port)
            )
        }
        // ipvsadm prints the mark with %d.
        ServiceKey::Fwmark {
            family: Family::Inet,
            mark,
        } => format!("FWM  {}", *mark as i32),
        ServiceKey::Fwmark {
            family: Family::Inet6,
            mark,
        } => {
            format!("FWM  {} IPv6", *mark as i32)
        }
    }
}

/// Scheduler flags as ipvsadm names them for this scheduler.
pub fn sched_flag_names(scheduler: &str, flags: ServiceFlags) -> Vec<&'static str> {
    let names: [&'static str; 3] = match scheduler {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    [
        ServiceFlags::SCHED1,
        ServiceFlags::SCHED2,
        ServiceFlags::SCHED3,
    ]
    .iter()
    .zip(names)
    .filter(|(bit, _)| flags.has(**bit))
    .map(|(_, n)| n)
    .collect()
}

/// The netmask as ipvsadm prints it, or None for the full mask.
pub fn netmask_text(svc: &Service) -> Option<String> {
    if svc.has_full_netmask() {
        return None;
    }
    Some(match svc.key.family() {
        Family::Inet => std::net::Ipv4Addr::from(svc.netmask).to_string(),
        Family::Inet6 => svc.netmask.to_string(),
    })
}

fn forward_name(f: Forward) -> &'static str {
    match f {
        Forward::Masquerade => "Masq",
        Forward::Local => "Local",
        Forward::Tunnel => "Tunnel",
        Forward::Route => "Route",
        // ipvsadm has no name for it and prints glibc's "(null)".
        Forward::Bypass => "(null)",
    }
}

/// The TunnelInfo column ("ipip", "gue:6080:+c", "n/a").
pub fn tun_info(d: &Destination) -> String {
    if d.forward != Forward::Tunnel {
        return "n/a".into();
    }
    let csum = tun_csum_short(d.tun_flags);
    match d.tun_type {
        TunnelType::Ipip => "ipip".into(),
        TunnelType::Gue => format!("gue:{}:{csum}", d.tun_port),
        TunnelType::Gre => format!("gre:{csum}"),
    }
}

fn tun_csum_short(flags: u16) -> &'static str {
    if flags & TUN_FLAG_REMCSUM != 0 {
        "r+c"
    } else if flags & TUN_FLAG_CSUM != 0 {
        "+c"
    } else {
        "-c"
    }
}

/// ipvsadm's `print_largenum`.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let s = i.to_string();
        let w = if s.len() <= 8 { 9 } else { s.len() + 1 };
        return format!("{i:>w$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// The title lines for these columns.
pub fn title(columns: Columns) -> String {
    let first = "Prot LocalAddress:Port";
    let rest = "  -> RemoteAddress:Port\n";
    match columns {
        Columns::Stats => format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{rest}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        Columns::Rate => format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{rest}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        Columns::Thresholds => format!(
            "{first:<33} {:<10} {:<10} {:<10} {:<10}\n{rest}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        Columns::PersistentConn => format!(
            "{first:<33} {:<9} {:<11} {:<10} {:<10}\n{rest}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        ),
        Columns::TunInfo => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".into(),
        Columns::Plain => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".into(),
    }
}

fn stats_cols(s: &Stats, rate: bool, exact: bool) -> String {
    let v = if rate {
        [s.cps, s.inpps, s.outpps, s.inbps, s.outbps]
    } else {
        [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
    };
    v.iter().map(|x| largenum(*x, exact)).collect()
}

/// The service line (without newline) for these columns.
pub fn service_line(svc: &Service, fmt: &ListFormat) -> String {
    let name = list_service_name(&svc.key);
    match fmt.columns {
        Columns::Stats | Columns::Rate => {
            let stats = svc.stats.unwrap_or_default();
            format!(
                "{name:<33}{}",
                stats_cols(&stats, fmt.columns == Columns::Rate, fmt.exact)
            )
        }
        _ => {
            let mut line = format!("{name} {}", svc.scheduler);
            let flags = sched_flag_names(&svc.scheduler, svc.flags);
            if !flags.is_empty() {
                let _ = write!(line, " ({})", flags.join(","));
            }
            if svc.is_persistent() {
                let _ = write!(line, " persistent {}", svc.timeout);
                if let Some(m) = netmask_text(svc) {
                    let _ = write!(line, " mask {m}");
                }
            }
            if let Some(pe) = &svc.pe_name {
                let _ = write!(line, " pe {pe}");
            }
            if svc.flags.has(ServiceFlags::ONEPACKET) {
                line.push_str(" ops");
            }
            line
        }
    }
}

/// A destination line (without newline) for these columns.
pub fn dest_line(svc: &Service, d: &Destination, fmt: &ListFormat) -> String {
    let mut name = fmt_addr_port(&d.addr, d.port);
    if svc.key.family() != Family::Inet6 {
        name.truncate(28);
    }
    match fmt.columns {
        Columns::Stats => {
            let stats = d.stats.unwrap_or_default();
            format!("  -> {name:<28}{}", stats_cols(&stats, false, fmt.exact))
        }
        Columns::Rate => {
            let s = d.stats.unwrap_or_default();
            format!(
                "  -> {name:<28} {:>8} {:>8} {:>8}{}{}",
                s.cps as u32,
                s.inpps as u32,
                s.outpps as u32,
                largenum(s.inbps, fmt.exact),
                largenum(s.outbps, fmt.exact)
            )
        }
        Columns::Thresholds => format!(
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            d.upper_threshold, d.lower_threshold, d.active_conns, d.inact_conns
        ),
        Columns::PersistentConn => format!(
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            d.weight, d.persist_conns, d.active_conns, d.inact_conns
        ),
        Columns::TunInfo => format!(
            "  -> {name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
            forward_name(d.forward),
            tun_info(d),
            d.weight as i32,
            d.active_conns,
            d.inact_conns
        ),
        Columns::Plain => format!(
            "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}",
            forward_name(d.forward),
            d.weight as i32,
            d.active_conns,
            d.inact_conns
        ),
    }
}

/// The order to print a table in: ipvsadm's, or the kernel's for `nosort`.
fn ordered(
    table: &[(Service, Vec<Destination>)],
    nosort: bool,
) -> (Vec<usize>, Option<Vec<Vec<usize>>>) {
    if nosort {
        ((0..table.len()).collect(), None)
    } else {
        let (s, d) = table_order(table);
        (s, Some(d))
    }
}

/// `ipvsadm -L -n [options]`: the version line, the titles, every service.
pub fn render_list(info: &Info, table: &[(Service, Vec<Destination>)], fmt: &ListFormat) -> String {
    let mut out = format!(
        "IP Virtual Server version {} (size={})\n",
        info.version_string(),
        info.conn_tab_size
    );
    out.push_str(&render_services(table, fmt));
    out
}

/// `ipvsadm -L -n -t|-u|-f SERVICE`: titles and the services given (no
/// version line).
pub fn render_services(table: &[(Service, Vec<Destination>)], fmt: &ListFormat) -> String {
    let mut out = title(fmt.columns);
    let (services, dests) = ordered(table, fmt.nosort);
    for i in services {
        let (svc, ds) = &table[i];
        out.push_str(&service_line(svc, fmt));
        out.push('\n');
        let mut line = |d: &Destination| {
            out.push_str(&dest_line(svc, d, fmt));
            out.push('\n');
        };
        match &dests {
            Some(order) => order[i].iter().for_each(|&j| line(&ds[j])),
            None => ds.iter().for_each(line),
        }
    }
    out
}

/// `ipvsadm -L --timeout`.
pub fn render_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// `ipvsadm -L --daemon`.
pub fn render_daemons(daemons: &[crate::model::Daemon]) -> String {
    let mut out = String::new();
    for state in [
        crate::model::DaemonState::Master,
        crate::model::DaemonState::Backup,
    ] {
        for d in daemons.iter().filter(|d| d.state == state) {
            let role = match state {
                crate::model::DaemonState::Master => "master",
                crate::model::DaemonState::Backup => "backup",
            };
            let _ = write!(
                out,
                "{role} sync daemon (mcast={}, syncid={}",
                d.mcast_ifn, d.sync_id
            );
            if let Some(m) = d.sync_maxlen {
                let _ = write!(out, ", maxlen={m}");
            }
            if let Some(g) = d.mcast_group {
                let _ = write!(out, ", group={g}");
            }
            if let Some(p) = d.mcast_port {
                let _ = write!(out, ", port={p}");
            }
            if let Some(t) = d.mcast_ttl {
                let _ = write!(out, ", ttl={t}");
            }
            out.push_str(")\n");
        }
    }
    out
}

// The golden tests decode captured kernel replies.
#[cfg(all(test, feature = "netlink"))]
mod tests;
