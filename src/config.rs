//! The agent's configuration: TOML read with serde into a raw form that keeps
//! source positions, then validated into [`Config`]. Every error names the
//! file, line and column it refers to, so an operator can fix it in one go.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use lvs_common::config_error::{self, ConfigError, LineIndex, LoadError};
use serde::Deserialize;
use toml::Spanned;

use crate::domain::{
    ArpKey, Family, FouPort, SysctlKey, SysctlSetting, TunnelKind, host_prefix,
    valid_interface_name,
};

/// Where the agent looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rs-agent/config.toml";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub arp: ArpPolicy,
    pub vips: Vec<Vip>,
    /// Tunnel mode (`[tunnel]`): the receive side of IPIP, GUE or GRE.
    /// `None` is direct routing.
    pub tunnel: Option<Tunnel>,
}

impl Config {
    /// Every sysctl the configuration manages, with the value it wants, in
    /// the order they are written: the ARP policy's, then tunnel mode's
    /// rp_filter. The planner, the record, `status` and the sysctl.d check
    /// handle them all alike.
    pub fn sysctls(&self) -> Vec<SysctlSetting> {
        let mut settings = self.arp.sysctls();
        if let Some(tunnel) = &self.tunnel {
            settings.extend(tunnel.sysctls());
        }
        settings
    }
}

/// rp_filter on `all` and the tunnel device in tunnel mode: 0. The
/// decapsulated packet arrives on the tunnel device, which has no IPv4
/// address, and for such a device the kernel's source validation drops the
/// packet under any rp_filter in force, loose (2) included (fib_validate_source:
/// no address, no route via the device: rejected unless rp_filter is 0;
/// measured in the VM, `TcpExtIPReversePathFilter` counts the drops). The
/// value in force is max(conf/all, conf/DEV), so `all` must be 0 as well.
pub const TUNNEL_RP_FILTER: i32 = 0;

/// rp_filter the agent puts on a NIC that is strict (1) in tunnel mode:
/// loose, so an outer packet from the director that arrives on another
/// interface than the one routing back to it is not dropped, while sources
/// with no route at all still are. NICs at 0 or 2 are left alone.
pub const NIC_RP_FILTER: i32 = 2;

/// The receive side of tunnel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// GUE only: the UDP port the director sends to (its `--tun-port`).
    pub port: Option<u16>,
}

impl Tunnel {
    /// The device that receives the decapsulated packets.
    pub fn device(&self) -> &'static str {
        self.kind.device()
    }

    /// The FOU receive port GUE needs.
    pub fn fou_port(&self) -> Option<FouPort> {
        match (self.kind, self.port) {
            (TunnelKind::Gue, Some(port)) => Some(FouPort {
                port,
                family: Family::Ipv4,
            }),
            _ => None,
        }
    }

    /// rp_filter on `all` and on the tunnel device (the NICs' depend on
    /// what is observed: `plan::wanted_sysctls`).
    pub fn sysctls(&self) -> Vec<SysctlSetting> {
        ["all", self.device()]
            .into_iter()
            .map(|interface| SysctlSetting {
                key: SysctlKey::ipv4(interface, "rp_filter"),
                value: TUNNEL_RP_FILTER,
            })
            .collect()
    }
}

/// The ARP sysctls the agent enforces, and on which `conf/` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPolicy {
    pub ignore: i32,
    pub announce: i32,
    /// Entries under /proc/sys/net/ipv4/conf to write; `all` by default.
    /// Empty means the agent leaves the ARP sysctls alone.
    pub interfaces: Vec<String>,
}

impl ArpPolicy {
    pub fn desired(&self, key: ArpKey) -> i32 {
        match key {
            ArpKey::Ignore => self.ignore,
            ArpKey::Announce => self.announce,
        }
    }

    /// arp_ignore and arp_announce of each listed interface.
    pub fn sysctls(&self) -> Vec<SysctlSetting> {
        self.interfaces
            .iter()
            .flat_map(|interface| {
                ArpKey::ALL.map(|key| SysctlSetting {
                    key: SysctlKey::arp(interface, key),
                    value: self.desired(key),
                })
            })
            .collect()
    }
}

impl Default for ArpPolicy {
    fn default() -> Self {
        ArpPolicy {
            ignore: 1,
            announce: 2,
            interfaces: vec!["all".to_string()],
        }
    }
}

/// A virtual IP the real server must hold on `lo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Vip {
    pub address: IpAddr,
    /// IPv4 alias label such as `lo:0`, so `ifconfig` shows the alias.
    pub label: Option<String>,
}

impl Vip {
    /// Host prefix: /32 for IPv4, /128 for IPv6.
    pub fn prefix_len(&self) -> u8 {
        host_prefix(self.address)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Path of the director file (lvs-director): its VIPs are
    /// held too, so one file describes the whole cluster.
    vips_from_director: Option<Spanned<String>>,
    arp: Option<RawArp>,
    tunnel: Option<RawTunnel>,
    #[serde(default)]
    vip: Vec<Spanned<RawVip>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTunnel {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    port: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArp {
    ignore: Option<Spanned<i64>>,
    announce: Option<Spanned<i64>>,
    interfaces: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    address: Spanned<String>,
    label: Option<Spanned<String>>,
}

/// Reads and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = config_error::read(path)?;
    Ok(parse(path, &text)?)
}

/// Parses and validates configuration text; `path` is used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;
    // Built once: every position below is a binary search, not a rescan.
    let index = LineIndex::new(text);
    let at = |span: Option<Range<usize>>, message: String| match span {
        Some(span) => index.error(path, span.start, message),
        None => ConfigError::whole_file(path, message),
    };

    let mut arp = ArpPolicy::default();
    if let Some(raw_arp) = raw.arp {
        if let Some(v) = raw_arp.ignore {
            arp.ignore = check_sysctl_value(ArpKey::Ignore, *v.get_ref())
                .map_err(|m| at(Some(v.span()), m))?;
        }
        if let Some(v) = raw_arp.announce {
            arp.announce = check_sysctl_value(ArpKey::Announce, *v.get_ref())
                .map_err(|m| at(Some(v.span()), m))?;
        }
        if let Some(list) = raw_arp.interfaces {
            arp.interfaces.clear();
            for name in list {
                if !valid_interface_name(name.get_ref()) {
                    return Err(at(
                        Some(name.span()),
                        format!("{:?} is not a valid interface name", name.get_ref()),
                    ));
                }
                if arp.interfaces.contains(name.get_ref()) {
                    return Err(at(
                        Some(name.span()),
                        format!("interface {:?} is listed twice", name.get_ref()),
                    ));
                }
                arp.interfaces.push(name.into_inner());
            }
        }
    }

    let tunnel = match raw.tunnel {
        None => None,
        Some(raw_tunnel) => Some(check_tunnel(raw_tunnel).map_err(|(span, m)| at(Some(span), m))?),
    };
    // IPv6 VIPs would need ip6tnl0 (ip6_tunnel) or an IPv6 FOU port, which
    // the agent does not set up: refused rather than half done.
    let check_family = |address: IpAddr| match tunnel {
        Some(t) if address.is_ipv6() => Err(format!(
            "VIP {address}: tunnel mode ({}) takes IPv4 VIPs only (rs-agent does not set up ip6tnl0 or IPv6 FOU ports); serve IPv6 VIPs by direct routing",
            t.kind
        )),
        _ => Ok(()),
    };

    let mut vips = Vec::with_capacity(raw.vip.len());
    let mut seen: HashMap<IpAddr, usize> = HashMap::with_capacity(raw.vip.len());
    for entry in raw.vip {
        let entry = entry.into_inner();
        let address = check_vip_address(entry.address.get_ref())
            .map_err(|m| at(Some(entry.address.span()), m))?;
        if let Some(&first_offset) = seen.get(&address) {
            let first_line = index.line(first_offset);
            return Err(at(
                Some(entry.address.span()),
                format!("VIP {address} is listed twice (first on line {first_line})"),
            ));
        }
        check_family(address).map_err(|m| at(Some(entry.address.span()), m))?;
        seen.insert(address, entry.address.span().start);
        let label = match entry.label {
            None => None,
            Some(label) => {
                Some(check_label(address, label.get_ref()).map_err(|m| at(Some(label.span()), m))?)
            }
        };
        vips.push(Vip { address, label });
    }
    if let Some(director) = raw.vips_from_director {
        let director_path = resolve(path, director.get_ref());
        let cluster = lvs_director_config::load(&director_path)
            .map_err(|e| at(Some(director.span()), format!("vips_from_director: {e}")))?;
        for address in lvs_director_config::vips(&cluster) {
            // A VIP also listed here keeps its [[vip]] entry (and label).
            if seen.contains_key(&address) {
                continue;
            }
            check_vip_address(&address.to_string()).map_err(|m| {
                at(
                    Some(director.span()),
                    format!("vips_from_director {}: {m}", director_path.display()),
                )
            })?;
            check_family(address).map_err(|m| {
                at(
                    Some(director.span()),
                    format!("vips_from_director {}: {m}", director_path.display()),
                )
            })?;
            seen.insert(address, director.span().start);
            vips.push(Vip {
                address,
                label: None,
            });
        }
    }
    Ok(Config { arp, vips, tunnel })
}

/// `[tunnel]`: a known type, and a port exactly when it is GUE.
fn check_tunnel(raw: RawTunnel) -> Result<Tunnel, (Range<usize>, String)> {
    let kind = TunnelKind::ALL
        .into_iter()
        .find(|k| k.name() == raw.kind.get_ref())
        .ok_or_else(|| {
            (
                raw.kind.span(),
                format!(
                    "tunnel type {:?} is not one of \"ipip\", \"gue\", \"gre\"",
                    raw.kind.get_ref()
                ),
            )
        })?;
    let port = match (kind, raw.port) {
        (TunnelKind::Gue, None) => {
            return Err((
                raw.kind.span(),
                "tunnel type \"gue\" needs `port`: the UDP port the director sends to (its --tun-port)".into(),
            ));
        }
        (TunnelKind::Gue, Some(port)) => match u16::try_from(*port.get_ref()) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                return Err((
                    port.span(),
                    format!("port = {} is not a UDP port (1 to 65535)", port.get_ref()),
                ));
            }
        },
        (_, Some(port)) => {
            return Err((
                port.span(),
                format!("port is only for tunnel type \"gue\" ({kind} carries no UDP port)"),
            ));
        }
        (_, None) => None,
    };
    Ok(Tunnel { kind, port })
}

/// A relative path in the configuration is relative to the file's directory.
fn resolve(config_path: &Path, value: &str) -> PathBuf {
    let value = Path::new(value);
    if value.is_absolute() {
        value.to_path_buf()
    } else {
        config_path.parent().unwrap_or(Path::new(".")).join(value)
    }
}

fn check_sysctl_value(key: ArpKey, value: i64) -> Result<i32, String> {
    let allowed = key.allowed_values();
    match i32::try_from(value) {
        Ok(v) if allowed.contains(&v) => Ok(v),
        _ => Err(format!(
            "{} = {value} is out of range: the kernel defines {}",
            key.config_name(),
            allowed
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks that `text` is an address that can serve as a VIP on `lo`.
pub fn check_vip_address(text: &str) -> Result<IpAddr, String> {
    let address: IpAddr = text.trim().parse().map_err(|_| {
        format!("{text:?} is not an IP address (a VIP is a single address, no prefix)")
    })?;
    let problem = match address {
        IpAddr::V4(a) => ipv4_problem(a),
        IpAddr::V6(a) => ipv6_problem(a),
    };
    match problem {
        Some(p) => Err(format!("{address} cannot be a VIP: it is {p}")),
        None => Ok(address),
    }
}

fn ipv4_problem(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_loopback() {
        Some("a loopback address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.is_broadcast() {
        Some("the broadcast address")
    } else if a.is_link_local() {
        Some("a link-local address")
    } else if a.octets()[0] == 0 || a.octets()[0] >= 240 {
        Some("in a reserved range (0.0.0.0/8 or 240.0.0.0/4)")
    } else {
        None
    }
}

fn ipv6_problem(a: Ipv6Addr) -> Option<&'static str> {
    if a.is_unspecified() {
        Some("the unspecified address")
    } else if a.is_loopback() {
        Some("the loopback address")
    } else if a.is_multicast() {
        Some("a multicast address")
    } else if a.is_unicast_link_local() {
        Some("a link-local address")
    } else if a.to_ipv4_mapped().is_some() {
        Some("an IPv4-mapped address (write the IPv4 form)")
    } else {
        None
    }
}

fn check_label(address: IpAddr, label: &str) -> Result<String, String> {
    if address.is_ipv6() {
        return Err(format!(
            "label {label:?}: labels exist only for IPv4 addresses ({address} is IPv6)"
        ));
    }
    // The kernel requires an IPv4 label to start with the device name and
    // caps it at IFNAMSIZ - 1 bytes.
    let suffix_ok = label
        .strip_prefix("lo:")
        .is_some_and(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && c != '/'));
    if (label == "lo" || suffix_ok) && label.len() <= 15 {
        Ok(label.to_string())
    } else {
        Err(format!(
            "label {label:?} is invalid: it must be \"lo\" or \"lo:\" followed by a suffix, at most 15 characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("test.toml"), text)
    }

    fn error_of(text: &str) -> String {
        parse_str(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let config = parse_str("[[vip]]\naddress = \"10.1.252.73\"\n").unwrap();
        assert_eq!(config.arp, ArpPolicy::default());
        assert_eq!(config.arp.ignore, 1);
        assert_eq!(config.arp.announce, 2);
        assert_eq!(config.arp.interfaces, vec!["all"]);
        assert_eq!(
            config.vips,
            vec![Vip {
                address: "10.1.252.73".parse().unwrap(),
                label: None
            }]
        );
        assert_eq!(config.vips[0].prefix_len(), 32);
    }

    #[test]
    fn full_file() {
        let config = parse_str(
            r#"
[arp]
ignore = 2
announce = 1
interfaces = ["all", "eth0.100"]

[[vip]]
address = "10.1.252.73"
label = "lo:0"

[[vip]]
address = "2001:db8::73"
"#,
        )
        .unwrap();
        assert_eq!(config.arp.ignore, 2);
        assert_eq!(config.arp.announce, 1);
        assert_eq!(config.arp.interfaces, vec!["all", "eth0.100"]);
        assert_eq!(config.vips[0].label.as_deref(), Some("lo:0"));
        assert_eq!(config.vips[1].prefix_len(), 128);
    }

    #[test]
    fn empty_interface_list_means_hands_off() {
        let config = parse_str("[arp]\ninterfaces = []\n").unwrap();
        assert!(config.arp.interfaces.is_empty());
        assert!(config.vips.is_empty());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = error_of("[[vip]]\naddress = 10.1.252.73\n");
        assert!(e.starts_with("test.toml:2:15: invalid float"), "{e}");
        let e = error_of("[[vip]\naddress = \"10.1.252.73\"\n");
        assert!(e.starts_with("test.toml:1:"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_position() {
        let e = error_of("[[vip]]\naddress = \"10.1.252.73\"\nlable = \"lo:0\"\n");
        assert!(e.starts_with("test.toml:3:1: unknown field `lable`"), "{e}");
        let e = error_of("[arp]\nignor = 1\n");
        assert!(e.starts_with("test.toml:2:1: unknown field `ignor`"), "{e}");
        let e = error_of("[vips]\n");
        assert!(e.starts_with("test.toml:1:2: unknown field `vips`"), "{e}");
    }

    #[test]
    fn wrong_type_has_position() {
        let e = error_of("[arp]\nignore = \"1\"\n");
        assert!(e.starts_with("test.toml:2:10: invalid type"), "{e}");
    }

    #[test]
    fn missing_address_is_an_error() {
        let e = error_of("[[vip]]\nlabel = \"lo:0\"\n");
        assert!(e.contains("missing field `address`"), "{e}");
        assert!(e.starts_with("test.toml:1:1:"), "{e}");
    }

    #[test]
    fn bad_addresses_name_the_reason_and_position() {
        let cases = [
            ("10.1.252.300", "is not an IP address"),
            ("10.1.252.73/32", "is not an IP address"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("127.0.0.2", "loopback"),
            ("::1", "loopback"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "IPv4-mapped"),
            ("240.0.0.1", "reserved"),
        ];
        for (address, reason) in cases {
            let e = error_of(&format!("[[vip]]\naddress = \"{address}\"\n"));
            assert!(e.starts_with("test.toml:2:11: "), "{address}: {e}");
            assert!(e.contains(reason), "{address}: {e}");
        }
    }

    #[test]
    fn duplicate_vip_names_both_lines() {
        let e = error_of(
            "[[vip]]\naddress = \"10.0.0.1\"\n[[vip]]\naddress = \"10.0.0.2\"\n[[vip]]\naddress = \"10.0.0.1\"\n",
        );
        assert_eq!(
            e,
            "test.toml:6:11: VIP 10.0.0.1 is listed twice (first on line 2)"
        );
        // The same IPv6 address written two ways is still a duplicate.
        let e =
            error_of("[[vip]]\naddress = \"2001:db8::1\"\n[[vip]]\naddress = \"2001:DB8:0::1\"\n");
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn sysctl_values_out_of_range() {
        for (text, column) in [
            ("[arp]\nignore = 4\n", 10),
            ("[arp]\nignore = -1\n", 10),
            ("[arp]\nannounce = 3\n", 12),
        ] {
            let e = error_of(text);
            assert!(
                e.starts_with(&format!("test.toml:2:{column}: ")),
                "{text}: {e}"
            );
            assert!(e.contains("out of range"), "{e}");
        }
        assert_eq!(parse_str("[arp]\nignore = 8\n").unwrap().arp.ignore, 8);
    }

    #[test]
    fn interface_names_are_checked() {
        for bad in ["", "a/b", "..", ".", "averyveryverylongname", "eth 0"] {
            let e = error_of(&format!("[arp]\ninterfaces = [\"{bad}\"]\n"));
            assert!(e.starts_with("test.toml:2:15: "), "{bad:?}: {e}");
        }
        let e = error_of("[arp]\ninterfaces = [\"all\", \"all\"]\n");
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn labels_are_checked() {
        let e = error_of("[[vip]]\naddress = \"2001:db8::1\"\nlabel = \"lo:0\"\n");
        assert!(e.starts_with("test.toml:3:9: "), "{e}");
        assert!(e.contains("only for IPv4"), "{e}");
        for bad in ["eth0:0", "lo:", "lo0", "lo:0123456789abc"] {
            let e = error_of(&format!(
                "[[vip]]\naddress = \"10.0.0.1\"\nlabel = \"{bad}\"\n"
            ));
            assert!(e.contains("is invalid"), "{bad}: {e}");
        }
        assert!(parse_str("[[vip]]\naddress = \"10.0.0.1\"\nlabel = \"lo:vip1\"\n").is_ok());
    }

    #[test]
    fn vips_from_the_director_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("director.toml"),
            "[[service]]\nvip = \"203.0.113.10\"\nprotocol = \"tcp\"\nport = 80\n\
             [[service.server]]\naddress = \"198.51.100.2\"\n\
             [[service]]\nvip = \"203.0.113.10\"\nprotocol = \"tcp\"\nport = 443\n\
             [[service]]\nvip = \"2001:db8::10\"\nprotocol = \"tcp\"\nport = 80\n",
        )
        .unwrap();
        let agent = dir.path().join("config.toml");
        let config = parse(
            &agent,
            "vips_from_director = \"director.toml\"\n[[vip]]\naddress = \"203.0.113.10\"\nlabel = \"lo:0\"\n",
        )
        .unwrap();
        let addresses: Vec<String> = config.vips.iter().map(|v| v.address.to_string()).collect();
        assert_eq!(addresses, vec!["203.0.113.10", "2001:db8::10"]);
        assert_eq!(config.vips[0].label.as_deref(), Some("lo:0"));

        // An error in the director's file names both places.
        std::fs::write(dir.path().join("director.toml"), "[[service]]\nvipp = 1\n").unwrap();
        let e = parse(&agent, "vips_from_director = \"director.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}:1:22: vips_from_director: ", agent.display())),
            "{e}"
        );
        assert!(e.contains("director.toml:2:1: unknown field `vipp`"), "{e}");
        let e = parse(&agent, "vips_from_director = \"missing.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn tunnel_section() {
        let c =
            parse_str("[tunnel]\ntype = \"ipip\"\n[[vip]]\naddress = \"203.0.113.10\"\n").unwrap();
        let t = c.tunnel.unwrap();
        assert_eq!(
            (t.kind, t.port, t.device()),
            (TunnelKind::Ipip, None, "tunl0")
        );
        let keys: Vec<String> = c
            .sysctls()
            .iter()
            .map(|s| format!("{}={}", s.key, s.value))
            .collect();
        assert_eq!(
            keys,
            [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.tunl0.rp_filter=0",
            ]
        );
        let c = parse_str("[tunnel]\ntype = \"gue\"\nport = 6080\n").unwrap();
        assert_eq!(
            c.tunnel.unwrap().fou_port(),
            Some(FouPort {
                port: 6080,
                family: Family::Ipv4
            })
        );
        let c = parse_str("[tunnel]\ntype = \"gre\"\n").unwrap();
        assert_eq!(c.tunnel.unwrap().device(), "gre0");
        assert_eq!(parse_str("").unwrap().tunnel, None);
    }

    #[test]
    fn tunnel_errors_name_the_place() {
        let cases = [
            (
                "[tunnel]\ntype = \"vxlan\"\n",
                "test.toml:2:8: tunnel type \"vxlan\" is not one of",
            ),
            (
                "[tunnel]\ntype = \"ipip\"\nport = 6080\n",
                "test.toml:3:8: port is only for tunnel type \"gue\"",
            ),
            (
                "[tunnel]\ntype = \"gue\"\n",
                "test.toml:2:8: tunnel type \"gue\" needs `port`",
            ),
            (
                "[tunnel]\ntype = \"gue\"\nport = 0\n",
                "test.toml:3:8: port = 0 is not a UDP port",
            ),
            (
                "[tunnel]\ntype = \"gue\"\nport = 70000\n",
                "test.toml:3:8: port = 70000 is not a UDP port",
            ),
            ("[tunnel]\nport = 6080\n", "missing field `type`"),
            (
                "[tunnel]\ntype = \"gre\"\nttl = 3\n",
                "test.toml:3:1: unknown field `ttl`",
            ),
            (
                "[tunnel]\ntype = \"ipip\"\n[[vip]]\naddress = \"2001:db8::10\"\n",
                "test.toml:4:11: VIP 2001:db8::10: tunnel mode (ipip) takes IPv4 VIPs only",
            ),
        ];
        for (text, expected) in cases {
            let e = error_of(text);
            assert!(e.contains(expected), "{text:?}: {e}");
        }
    }
}
