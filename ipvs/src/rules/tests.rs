use std::net::IpAddr;

use super::*;
use crate::listing::sort_table;
use crate::table::{Family, Protocol, Timeouts};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cmd(line: &str) -> Op {
    parse_command(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    parse_command(line).unwrap_err().message
}

#[test]
fn add_service_defaults() {
    let Op::AddService(s) = cmd("-A -t 198.51.100.10:80") else {
        panic!()
    };
    assert_eq!(s.key, ServiceKey::tcp(ip("198.51.100.10"), 80));
    assert_eq!(s.scheduler, "wlc");
    assert_eq!(s.flags.0, 0);
    assert_eq!(s.netmask, 0xffff_ffff);
    // Bare -p is 360 s, also when followed by another option.
    let Op::AddService(s) = cmd("-A -t 198.51.100.10:80 -p -s rr") else {
        panic!()
    };
    assert_eq!(
        (s.timeout, s.is_persistent(), s.scheduler.as_str()),
        (360, true, "rr")
    );
    let Op::AddService(s) = cmd("-A -t 198.51.100.10:80 -p") else {
        panic!()
    };
    assert_eq!(s.timeout, 360);
    let Op::AddService(s) = cmd("-A -t 198.51.100.10:80 -p 60 -M 255.255.255.0") else {
        panic!()
    };
    assert_eq!((s.timeout, s.netmask), (60, 0xffff_ff00));
    let Op::AddService(s) = cmd("-A -t [2001:db8::1]:443 -s sh -p 10 -M 64") else {
        panic!()
    };
    assert_eq!((s.key.family(), s.netmask), (Family::Inet6, 64));
}

#[test]
fn long_options_bundles_and_inline_values() {
    let a = cmd("--add-service --udp-service=198.51.100.10:53 --scheduler rr --ops");
    let b = cmd("-Au 198.51.100.10:53 -srr -o");
    assert_eq!(a, b);
    let Op::AddService(s) = a else { panic!() };
    assert!(s.flags.has(ServiceFlags::ONEPACKET));
    let a = cmd("-a -t 198.51.100.10:80 -r 198.51.100.2 -m -w3");
    let b = cmd(
        "--add-server --tcp-service 198.51.100.10:80 --real-server 198.51.100.2 --masquerading --weight 3",
    );
    assert_eq!(a, b);
    // Quotes group words.
    assert_eq!(
        cmd("-A -t '198.51.100.10:80' \"-s\" rr"),
        cmd("-A -t 198.51.100.10:80 -s rr")
    );
}

#[test]
fn destination_ports_and_methods() {
    // -g and -i use the service port whatever -r says.
    let Op::AddDestination(_, d) = cmd("-a -t 198.51.100.10:80 -r 198.51.100.2:8080 -g") else {
        panic!()
    };
    assert_eq!((d.port, d.forward, d.weight), (80, Forward::Route, 1));
    let Op::AddDestination(_, d) = cmd("-a -t 198.51.100.10:80 -r 198.51.100.2:8080 -m") else {
        panic!()
    };
    assert_eq!((d.port, d.forward), (8080, Forward::Masquerade));
    // No port: the service port.
    let Op::AddDestination(_, d) = cmd("-a -t 198.51.100.10:80 -r 198.51.100.2 -m") else {
        panic!()
    };
    assert_eq!(d.port, 80);
    // fwmark: the port given (or 0).
    let Op::AddDestination(k, d) = cmd("-a -f 11 -r 198.51.100.2:0 -g -w 5") else {
        panic!()
    };
    assert_eq!(k, ServiceKey::fwmark(Family::Inet, 11));
    assert_eq!((d.port, d.weight), (0, 5));
    let Op::AddDestination(k, _) = cmd("-a -f 12 -6 -r [2001:db8::2]:0") else {
        panic!()
    };
    assert_eq!(k, ServiceKey::fwmark(Family::Inet6, 12));
    let Op::AddDestination(_, d) = cmd("-a -t 198.51.100.10:80 -r 198.51.100.2 -g -x 100 -y 10")
    else {
        panic!()
    };
    assert_eq!((d.upper_threshold, d.lower_threshold), (100, 10));
    // IPv4 real server behind an IPv6 service: tunnel only.
    assert!(matches!(
        cmd("-a -t [2001:db8::50]:443 -r 198.51.100.40 -i"),
        Op::AddDestination(..)
    ));
    assert_eq!(
        err("-a -t [2001:db8::50]:443 -r 198.51.100.40 -g"),
        "Different address family is allowed only for tunneling servers"
    );
}

#[test]
fn tunnel_options() {
    let Op::AddDestination(_, d) =
        cmd("-a -t 198.51.100.12:443 -r 198.51.100.6 -i --tun-type gue --tun-port 6080 --tun-csum")
    else {
        panic!()
    };
    assert_eq!(
        (d.tun_type, d.tun_port, d.tun_flags),
        (TunnelType::Gue, 6080, TUN_FLAG_CSUM)
    );
    let Op::AddDestination(_, d) =
        cmd("-a -t 198.51.100.12:443 -r 198.51.100.7 -i --tun-type gre --tun-csum")
    else {
        panic!()
    };
    assert_eq!((d.tun_type, d.tun_flags), (TunnelType::Gre, TUN_FLAG_CSUM));
    // ipvsadm 1.31 refuses remote checksum offload with GRE.
    assert!(
        err("-a -t 198.51.100.12:443 -r 198.51.100.7 -i --tun-type gre --tun-remcsum")
            .contains("'gre'")
    );
    assert_eq!(
        err("-a -t 198.51.100.12:443 -r 198.51.100.6 -g --tun-type gue --tun-port 1"),
        "Tunnel options conflict with forward method"
    );
    assert_eq!(
        err("-a -t 198.51.100.12:443 -r 198.51.100.6 -i --tun-type gue"),
        "You need to supply the 'tun-port' option for the 'gue' tunnel type"
    );
    assert!(
        err("-a -t 198.51.100.12:443 -r 198.51.100.6 -i --tun-type ipip --tun-csum")
            .contains("ipip")
    );
    assert!(err("-a -t 198.51.100.12:443 -r 1.2.3.4 -i --tun-type gue --tun-port 1 --tun-csum --tun-nocsum")
        .contains("conflicts"));
}

#[test]
fn ipvsadm_errors() {
    assert_eq!(
        err("-A -t 198.51.100.53:0 -s wrr"),
        "Zero port specified for non-persistent service"
    );
    assert_eq!(
        err("-A -t 198.51.100.53:80 -s wrr -o"),
        "One-Packet Scheduling is only for UDP virtual services"
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -s rr -x 5"),
        "Illegal 'u-threshold' option with the 'add-service' command"
    );
    assert_eq!(err("-A -6 -f 3"), "-6 used before -f");
    assert_eq!(
        err("-A -s rr"),
        "You need to supply the 'service-address' option for the 'add-service' command"
    );
    assert_eq!(
        err("-a -t 1.2.3.4:80"),
        "You need to supply the 'real-server' option for the 'add-server' command"
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -s rr -s wrr"),
        "multiple 'scheduler' options specified"
    );
    assert_eq!(err("-A -A -t 1.2.3.4:80"), "multiple commands specified");
    // ipvsadm's name for an option no rules command takes.
    assert_eq!(
        err("-A -t 1.2.3.4:80 -c"),
        "Illegal 'connection' option with the 'add-service' command"
    );
    assert_eq!(
        err("-A -t 1.2.3.4:99999"),
        "illegal virtual server address[:port] specified"
    );
    assert_eq!(
        err("-A -t [2001:db8::1] -s rr"),
        "illegal virtual server address[:port] specified"
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -b sh-port -s rr"),
        "incompatible scheduler flag `sh-port'"
    );
    assert_eq!(
        err("-A -t 1.2.3.4:80 -b nope"),
        "invalid scheduler flag `nope'"
    );
    assert!(err("-t 1.2.3.4:80 -A").contains("first option must be a command"));
    assert!(err("-Q").contains("invalid option"));
    assert_eq!(err("-A -t 1.2.3.4:80 extra"), "unexpected argument extra");
    assert_eq!(err("--set 1 2"), "--set option requires 3 timeout values");
    assert_eq!(err("-A -f 0"), "invalid fwmark value `0' specified");
    assert!(err("-L -n").contains("not supported"));
}

#[test]
fn other_commands() {
    assert_eq!(cmd("-C"), Op::Flush);
    assert_eq!(cmd("-Z"), Op::Zero(None));
    assert_eq!(
        cmd("-Z -t 1.2.3.4:80"),
        Op::Zero(Some(ServiceKey::tcp(ip("1.2.3.4"), 80)))
    );
    assert_eq!(
        cmd("--set 10 20 30"),
        Op::SetTimeouts(Timeouts {
            tcp: 10,
            tcp_fin: 20,
            udp: 30
        })
    );
    assert_eq!(
        cmd("-D --sctp-service 1.2.3.4:9"),
        Op::DeleteService(ServiceKey::sctp(ip("1.2.3.4"), 9))
    );
    let Op::DeleteDestination(k, d) = cmd("-d -t 1.2.3.4:80 -r 1.2.3.5") else {
        panic!()
    };
    assert_eq!((k.port(), d.addr, d.port), (80, ip("1.2.3.5"), 80));
    // ipvsadm -S prints marks above 2^31 as negative: accepted back.
    assert_eq!(cmd("-A -f -1 -s rr"), cmd("-A -f 4294967295 -s rr"));
}

#[test]
fn parse_rules_names_the_line() {
    let text = "# saved\n\n-A -t 198.51.100.10:80 -s rr\n-a -t 198.51.100.10:80 -r 198.51.100.2\n-A -t 198.51.100.11:0\n";
    let e = parse_rules(text).unwrap_err();
    assert_eq!(e.line, 5);
    assert_eq!(
        e.to_string(),
        "line 5: Zero port specified for non-persistent service"
    );
    let ok = parse_rules(&text.replace(":0\n", ":0 -p\n")).unwrap();
    assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 4, 5]);
}

#[test]
fn save_lines_match_ipvsadm() {
    // Lines from `ipvsadm -Sn` on the VM (see listing/testdata/save.txt).
    for line in [
        "-A -t 198.51.100.12:443 -s sh -p 60 -M 255.255.255.0 -b sh-fallback,sh-port",
        "-A -u 198.51.100.20:5060 -s sh -p 30 -M 255.255.0.0 --pe sip -o -b sh-port",
        "-A -u 198.51.100.10:53 -s rr -o",
        "-A --sctp-service 198.51.100.13:9999 -s mh -b mh-fallback",
        "-A -t [2001:db8::10]:80 -s lc -p 100 -M 64",
        "-A -f 6 -6 -s rr -p 10 -M 64",
        "-A -f -1 -s rr",
        "-A -t 198.51.100.23:80 -s rr -p 360 -M 0.0.0.0",
        "-a -t 198.51.100.12:443 -r 198.51.100.6:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
        "-a -t 198.51.100.21:80 -r 198.51.100.30:80 -i -w 1 --tun-type gre --tun-nocsum",
        "-a -t 198.51.100.11:0 -r 198.51.100.5:0 -i -w 1 --tun-type ipip",
        "-a -t [2001:db8::10]:80 -r [2001:db8::3]:80 -m -w 0",
        "-a -f 12 -6 -r [2001:db8::2]:0 -g -w 1",
    ] {
        assert_eq!(cmd(line).to_string(), line);
    }
}

/// A small deterministic generator (xorshift) for property tests.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    fn addr(&mut self, v6: bool) -> IpAddr {
        if v6 {
            let mut b = [0u8; 16];
            b[0] = 0x20;
            b[1] = 0x01;
            b[2] = 0x0d;
            b[3] = 0xb8;
            for x in b.iter_mut().skip(4) {
                if self.below(3) == 0 {
                    *x = self.next() as u8;
                }
            }
            IpAddr::from(b)
        } else {
            IpAddr::from((self.next() as u32).to_be_bytes())
        }
    }
    fn service(&mut self) -> Service {
        let v6 = self.below(3) == 0;
        let key = match self.below(5) {
            0 => ServiceKey::fwmark(
                if v6 { Family::Inet6 } else { Family::Inet },
                1 + self.below(u64::from(u32::MAX)) as u32,
            ),
            n => {
                let protocol = *self.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]);
                let port = if n == 1 {
                    0
                } else {
                    1 + self.below(65535) as u16
                };
                ServiceKey::Addr {
                    protocol,
                    addr: self.addr(v6),
                    port,
                }
            }
        };
        let sched = self
            .pick(&[
                "rr", "wrr", "lc", "wlc", "sh", "mh", "sed", "nq", "fo", "ovf", "twos",
            ])
            .to_string();
        let mut s = Service::new(key, sched);
        if key.port() == 0 && matches!(key, ServiceKey::Addr { .. }) || self.below(2) == 0 {
            s = s.persistent(1 + self.below(u64::from(MAX_TIMEOUT)) as u32);
            if self.below(2) == 0 {
                s.netmask = match key.family() {
                    Family::Inet => u32::MAX << self.below(32),
                    Family::Inet6 => 1 + self.below(128) as u32,
                };
            }
            if self.below(4) == 0 {
                s.pe_name = Some("sip".into());
            }
        }
        let udp_or_mark = matches!(
            key,
            ServiceKey::Fwmark { .. }
                | ServiceKey::Addr {
                    protocol: Protocol::Udp,
                    ..
                }
        );
        if udp_or_mark && self.below(2) == 0 {
            s.flags.set(ServiceFlags::ONEPACKET, true);
        }
        let sched_bits = self.below(8) as u32;
        let allowed = match s.scheduler.as_str() {
            "sh" | "mh" => sched_bits & 0b011,
            _ => sched_bits,
        };
        s.flags.set(allowed * ServiceFlags::SCHED1, true);
        s
    }
    fn dest(&mut self, key: &ServiceKey) -> Destination {
        let forward = *self.pick(&[Forward::Route, Forward::Tunnel, Forward::Masquerade]);
        let v6 = if forward == Forward::Tunnel && self.below(4) == 0 {
            key.family() == Family::Inet
        } else {
            key.family() == Family::Inet6
        };
        let port = match (key, forward) {
            (ServiceKey::Addr { port, .. }, Forward::Route | Forward::Tunnel) => *port,
            _ => self.below(65536) as u16,
        };
        let mut d = Destination::new(self.addr(v6), port);
        d.forward = forward;
        d.weight = self.below(65536) as u32;
        if forward == Forward::Tunnel {
            d.tun_type = *self.pick(&[TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre]);
            match d.tun_type {
                TunnelType::Gue => d.tun_flags = *self.pick(&[0, TUN_FLAG_CSUM, TUN_FLAG_REMCSUM]),
                TunnelType::Gre => d.tun_flags = *self.pick(&[0, TUN_FLAG_CSUM]),
                TunnelType::Ipip => {}
            }
            if d.tun_type == TunnelType::Gue {
                d.tun_port = 1 + self.below(65535) as u16;
            }
        }
        d
    }
    fn table(&mut self) -> Vec<(Service, Vec<Destination>)> {
        let mut t: Vec<(Service, Vec<Destination>)> = Vec::new();
        for _ in 0..self.below(8) {
            let s = self.service();
            if t.iter().any(|(x, _)| x.key == s.key) {
                continue;
            }
            let mut ds: Vec<Destination> = Vec::new();
            for _ in 0..self.below(5) {
                let d = self.dest(&s.key);
                if !ds.iter().any(|x| x.addr == d.addr && x.port == d.port) {
                    ds.push(d);
                }
            }
            t.push((s, ds));
        }
        t
    }
}

#[test]
fn property_parse_of_emitted_command_is_identity() {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let s = g.service();
        let mut d = g.dest(&s.key);
        d.upper_threshold = g.below(1000) as u32;
        d.lower_threshold = g.below(1000) as u32;
        let cmds = [
            Op::AddService(s.clone()),
            Op::EditService(s.clone()),
            Op::DeleteService(s.key),
            Op::AddDestination(s.key, d.clone()),
            Op::EditDestination(s.key, d.clone()),
            Op::Zero(Some(s.key)),
            Op::SetTimeouts(Timeouts {
                tcp: g.below(1000) as u32,
                tcp_fin: 2,
                udp: 3,
            }),
        ];
        for c in cmds {
            let line = c.to_string();
            assert_eq!(parse_command(&line), Ok(c.clone()), "{line}");
        }
        // Delete carries only the address and port.
        let line = Op::DeleteDestination(s.key, d.clone()).to_string();
        let Op::DeleteDestination(k, back) = cmd(&line) else {
            panic!()
        };
        assert_eq!((k, back.addr, back.port), (s.key, d.addr, d.port), "{line}");
    }
}

#[test]
fn property_restore_of_save_rebuilds_the_table() {
    let mut g = Gen(42);
    for _ in 0..500 {
        let table = g.table();
        let text = render_save(&table);
        let rules = parse_rules(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Rebuild the table from the commands.
        let mut back: Vec<(Service, Vec<Destination>)> = Vec::new();
        for r in rules {
            match r.op {
                Op::AddService(s) => back.push((s, vec![])),
                Op::AddDestination(k, d) => {
                    back.iter_mut().find(|(s, _)| s.key == k).unwrap().1.push(d)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut want = table.clone();
        sort_table(&mut want);
        assert_eq!(back, want, "{text}");
        // Saving again prints the same lines. (Not always in the same
        // order: ipvsadm's comparison is not an order, so sorting a sorted
        // list can move entries; ipvsadm does the same.)
        let lines = |t: &str| {
            let mut v: Vec<String> = t.lines().map(String::from).collect();
            v.sort();
            v
        };
        assert_eq!(lines(&render_save(&back)), lines(&text));
    }
}
