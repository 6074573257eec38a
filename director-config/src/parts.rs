//! Validation of a real server, of a service's health keys (`quorum`,
//! `sorry_server`, `on_failure`) and of VIP and scheduler names.

use std::net::IpAddr;

use lvs_ipvs::table::{Destination, Family, Forward, ServiceKey};
use toml::Spanned;

use crate::ConfigError;
use crate::raw::RawServer;
use crate::validate::Validator;
use crate::validated::OnFailure;

impl Validator<'_> {
    pub(super) fn server(
        &self,
        raw: RawServer,
        key: &ServiceKey,
        family: Family,
    ) -> Result<Destination, ConfigError> {
        let addr: IpAddr = raw.address.get_ref().trim().parse().or_else(|_| {
            self.err(
                raw.address.span(),
                format!("{:?} is not an IP address", raw.address.get_ref()),
            )
        })?;
        if Family::of(&addr) != family {
            return self.err(
                raw.address.span(),
                format!("real server {addr} is not of the VIP's address family"),
            );
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return self.err(
                raw.address.span(),
                format!("{addr} cannot be a real server"),
            );
        }
        let forward = match &raw.forward {
            None => Forward::Route,
            Some(f) => match f.get_ref().as_str() {
                "dr" => Forward::Route,
                "tun" => Forward::Tunnel,
                "nat" => Forward::Masquerade,
                other => {
                    return self.err(
                        f.span(),
                        format!("forward {other:?} is not one of \"dr\", \"tun\", \"nat\""),
                    );
                }
            },
        };
        let svc_port = key.port();
        let port = match &raw.port {
            None => svc_port,
            Some(p) => {
                let port = self.int::<u16>(p, "port", 0, 65535)?;
                if forward != Forward::Masquerade && port != svc_port {
                    return self.err(
                        p.span(),
                        format!(
                            "with forward \"dr\" or \"tun\" a real server gets the service's port ({svc_port}); only \"nat\" can change it"
                        ),
                    );
                }
                port
            }
        };
        let mut d = Destination::new(addr, port);
        d.forward = forward;
        if let Some(w) = &raw.weight {
            d.weight = self.int::<u32>(w, "weight", 0, i64::from(i32::MAX))?;
        }
        if let Some(u) = &raw.upper_threshold {
            d.upper_threshold = self.int::<u32>(u, "upper_threshold", 0, i64::from(u32::MAX))?;
        }
        if let Some(l) = &raw.lower_threshold {
            d.lower_threshold = self.int::<u32>(l, "lower_threshold", 0, i64::from(u32::MAX))?;
            if d.upper_threshold != 0 && d.lower_threshold > d.upper_threshold {
                return self.err(
                    l.span(),
                    format!(
                        "lower_threshold {} is above upper_threshold {}",
                        d.lower_threshold, d.upper_threshold
                    ),
                );
            }
        }
        Ok(d)
    }

    /// `quorum`, `sorry_server` and `on_failure` of a service.
    pub(super) fn health_keys(
        &self,
        quorum: Option<&Spanned<i64>>,
        sorry_server: Option<&Spanned<String>>,
        on_failure: Option<&Spanned<String>>,
        servers: &[Destination],
        family: Family,
    ) -> Result<(u32, Option<IpAddr>, OnFailure), ConfigError> {
        let quorum = match quorum {
            None => 1,
            Some(q) => {
                let n = self.int::<u32>(q, "quorum", 0, 100_000)?;
                if n as usize > servers.len() {
                    return self.err(
                        q.span(),
                        format!(
                            "quorum {n} can never be reached: the service has {} real servers",
                            servers.len()
                        ),
                    );
                }
                n
            }
        };
        let sorry_server = match sorry_server {
            None => None,
            Some(s) => {
                let addr: IpAddr = s.get_ref().trim().parse().or_else(|_| {
                    self.err(
                        s.span(),
                        format!("sorry_server {:?} is not an IP address", s.get_ref()),
                    )
                })?;
                if Family::of(&addr) != family || addr.is_unspecified() || addr.is_multicast() {
                    return self.err(
                        s.span(),
                        format!("sorry_server {addr} cannot be a real server of this service"),
                    );
                }
                if servers.iter().any(|d| d.addr == addr) {
                    return self.err(
                        s.span(),
                        format!("sorry_server {addr} is also a real server of this service"),
                    );
                }
                Some(addr)
            }
        };
        let on_failure = match on_failure {
            None => OnFailure::Drain,
            Some(o) => match o.get_ref().as_str() {
                "drain" => OnFailure::Drain,
                "remove" => OnFailure::Remove,
                other => {
                    return self.err(
                        o.span(),
                        format!("on_failure {other:?} is not one of \"drain\", \"remove\""),
                    );
                }
            },
        };
        Ok((quorum, sorry_server, on_failure))
    }
}

pub(super) fn check_vip(text: &str) -> Result<IpAddr, String> {
    let a: IpAddr = text.trim().parse().map_err(|_| {
        format!("{text:?} is not an IP address (a VIP is a single address, no prefix)")
    })?;
    let bad = match a {
        IpAddr::V4(v4) => {
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_link_local()
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some()
        }
    };
    if bad {
        Err(format!(
            "{a} cannot be a VIP (unspecified, loopback, multicast, broadcast, link-local or IPv4-mapped)"
        ))
    } else {
        Ok(a)
    }
}

pub(super) fn check_scheduler(name: &str) -> Result<String, String> {
    // IP_VS_SCHEDNAME_MAXLEN is 16 with the terminating NUL.
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "scheduler {name:?} is not a scheduler name (1 to 15 of a-z, 0-9, _; e.g. wlc, wrr, rr, sh, mh)"
        ))
    }
}
