//! `ipvsadm -L -n` rendering, byte for byte, and ipvsadm's ordering.
//!
//! ipvsadm sorts services and destinations with glibc's `qsort` and a
//! comparison that subtracts unsigned 32-bit values into an `int`, so it is
//! not a proper order (addresses more than 2^31 apart compare backwards).
//! To print the same order, [`ipvsadm_sort`] reproduces glibc's merge sort
//! (the algorithm of `qsort` in glibc up to 2.36, Debian 12's) step for step
//! with the same comparison.

use std::fmt::Write as _;

use crate::table::{
    Destination, Family, Forward, Info, KeyStyle, Service, ServiceFlags, Stats, TUN_FLAG_CSUM,
    TUN_FLAG_REMCSUM, Timeouts, TunnelType, fmt_addr_port,
};

mod order;

pub use order::{
    ipvsadm_cmp_dests, ipvsadm_cmp_services, ipvsadm_order, ipvsadm_sort, natural_cmp_services,
    sort_table, table_order,
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
    let name = svc.key.name(KeyStyle::Listing);
    match fmt.columns {
        Columns::Stats | Columns::Rate => {
            let stats = svc.stats.as_deref().copied().unwrap_or_default();
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
            let stats = d.stats.as_deref().copied().unwrap_or_default();
            format!("  -> {name:<28}{}", stats_cols(&stats, false, fmt.exact))
        }
        Columns::Rate => {
            let s = d.stats.as_deref().copied().unwrap_or_default();
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
pub fn render_daemons(daemons: &[crate::table::Daemon]) -> String {
    let mut out = String::new();
    for state in [
        crate::table::DaemonState::Master,
        crate::table::DaemonState::Backup,
    ] {
        for d in daemons.iter().filter(|d| d.state == state) {
            let role = match state {
                crate::table::DaemonState::Master => "master",
                crate::table::DaemonState::Backup => "backup",
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
