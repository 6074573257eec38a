//! `ipvsadm -L -c`: the kernel's connection table, read from
//! /proc/net/ip_vs_conn of the current network namespace, printed as
//! ipvsadm's `print_conn` does (numeric).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr(text: &str) -> Option<IpAddr> {
    if text.contains(':') {
        return text.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    u32::from_str_radix(text, 16)
        .ok()
        .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

fn addr_port(a: &str, p: &str) -> Option<String> {
    let a = addr(a)?;
    let p = u16::from_str_radix(p, 16).ok()?;
    Some(match a {
        IpAddr::V4(a) => format!("{a}:{p}"),
        IpAddr::V6(a) => format!("[{a}]:{p}"),
    })
}

/// One /proc line as ipvsadm prints it.
pub fn line(l: &str, persistent: bool) -> Option<String> {
    let f: Vec<&str> = l.split_whitespace().collect();
    if f.len() < 9 {
        return None;
    }
    let expires: u64 = f[8].parse().ok()?;
    let c = addr_port(f[1], f[2])?;
    let v = addr_port(f[3], f[4])?;
    let d = addr_port(f[5], f[6])?;
    let head = format!(
        "{:<3} {:02}:{:02}  {:<11} {:<18} {:<18} ",
        f[0],
        expires / 60,
        expires % 60,
        f[7],
        c,
        v
    );
    let pe = f.get(9).copied().unwrap_or("");
    Some(if persistent && !pe.is_empty() {
        let data = f.get(10).copied().unwrap_or("");
        format!("{head}{d:<18} {pe:<16} {data}\n")
    } else {
        format!("{head}{d}\n")
    })
}

/// The whole listing.
pub fn render(persistent: bool) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/net/ip_vs_conn")
        .map_err(|e| format!("cannot open file /proc/net/ip_vs_conn: {e}"))?;
    let mut out = String::from("IPVS connection entries\n");
    if persistent {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        ));
    } else {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ));
    }
    for l in text.lines().skip(1) {
        if let Some(s) = line(l, persistent) {
            out.push_str(&s);
        }
    }
    Ok(out)
}
