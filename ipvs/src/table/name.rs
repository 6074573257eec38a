//! A service's name in text: the one place that spells a [`ServiceKey`]
//! out, in each style the crate (and lvs-director) prints.

use std::fmt;

use super::{Family, Protocol, ServiceKey, fmt_addr_port};

/// How a service is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStyle {
    /// This crate's messages, and [`fmt::Display`]: `tcp 1.2.3.4:80`,
    /// `fwmark 11 (IPv6)`.
    Plain,
    /// `ipvsadm -L -n`'s service column: `TCP  1.2.3.4:80`, `SCTP ...`,
    /// `FWM  11 IPv6` (the kind padded to four).
    Listing,
    /// A rules line, as `ipvsadm -S -n` prints it: `-t 1.2.3.4:80`,
    /// `--sctp-service ...`, `-f 11 -6`.
    Rules,
    /// The listing's words single-spaced, `TCP 1.2.3.4:80`, `FWM 11 IPv6`:
    /// lvs-director's metric labels.
    Label,
}

/// The words of a style.
struct Words {
    tcp: &'static str,
    udp: &'static str,
    sctp: &'static str,
    fwmark: &'static str,
    /// After the mark of an IPv6 mark service.
    ipv6: &'static str,
    /// The width the kind is padded to.
    width: usize,
    /// The mark as C's `%d`, as ipvsadm prints it (so that its text reads
    /// back: the rules parser takes negative marks).
    signed_mark: bool,
}

impl KeyStyle {
    fn words(self) -> Words {
        match self {
            KeyStyle::Plain => Words {
                tcp: "tcp",
                udp: "udp",
                sctp: "sctp",
                fwmark: "fwmark",
                ipv6: " (IPv6)",
                width: 0,
                signed_mark: false,
            },
            KeyStyle::Listing => Words {
                tcp: "TCP",
                udp: "UDP",
                sctp: "SCTP",
                fwmark: "FWM",
                ipv6: " IPv6",
                width: 4,
                signed_mark: true,
            },
            KeyStyle::Rules => Words {
                tcp: "-t",
                udp: "-u",
                sctp: "--sctp-service",
                fwmark: "-f",
                ipv6: " -6",
                width: 0,
                signed_mark: true,
            },
            KeyStyle::Label => Words {
                tcp: "TCP",
                udp: "UDP",
                sctp: "SCTP",
                fwmark: "FWM",
                ipv6: " IPv6",
                width: 0,
                signed_mark: false,
            },
        }
    }
}

impl ServiceKey {
    /// The service named in `style`.
    pub fn name(&self, style: KeyStyle) -> String {
        let mut out = String::new();
        let _ = self.write_name(style, &mut out);
        out
    }

    fn write_name(&self, style: KeyStyle, f: &mut impl fmt::Write) -> fmt::Result {
        let w = style.words();
        match self {
            ServiceKey::Addr {
                protocol,
                addr,
                port,
            } => {
                let kind = match protocol {
                    Protocol::Tcp => w.tcp,
                    Protocol::Udp => w.udp,
                    Protocol::Sctp => w.sctp,
                };
                write!(f, "{kind:<0$} {1}", w.width, fmt_addr_port(addr, *port))
            }
            ServiceKey::Fwmark { family, mark } => {
                write!(f, "{:<1$} ", w.fwmark, w.width)?;
                if w.signed_mark {
                    write!(f, "{}", *mark as i32)?;
                } else {
                    write!(f, "{mark}")?;
                }
                match family {
                    Family::Inet => Ok(()),
                    Family::Inet6 => f.write_str(w.ipv6),
                }
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_name(KeyStyle::Plain, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_style() {
        let v4 = ServiceKey::tcp("192.0.2.1".parse().unwrap(), 80);
        let v6 = ServiceKey::sctp("2001:db8::1".parse().unwrap(), 9);
        let mark = ServiceKey::fwmark(Family::Inet6, 3_000_000_000);
        let want = [
            (
                KeyStyle::Plain,
                [
                    "tcp 192.0.2.1:80",
                    "sctp [2001:db8::1]:9",
                    "fwmark 3000000000 (IPv6)",
                ],
            ),
            (
                KeyStyle::Listing,
                [
                    "TCP  192.0.2.1:80",
                    "SCTP [2001:db8::1]:9",
                    "FWM  -1294967296 IPv6",
                ],
            ),
            (
                KeyStyle::Rules,
                [
                    "-t 192.0.2.1:80",
                    "--sctp-service [2001:db8::1]:9",
                    "-f -1294967296 -6",
                ],
            ),
            (
                KeyStyle::Label,
                [
                    "TCP 192.0.2.1:80",
                    "SCTP [2001:db8::1]:9",
                    "FWM 3000000000 IPv6",
                ],
            ),
        ];
        for (style, names) in want {
            assert_eq!([v4, v6, mark].map(|k| k.name(style)), names, "{style:?}");
        }
        assert_eq!(v4.to_string(), v4.name(KeyStyle::Plain));
    }
}
