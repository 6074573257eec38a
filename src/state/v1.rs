//! Record format version 1, written by rs-agent before the record named
//! interfaces: the ARP sysctls of net.ipv4 only, addresses always on `lo`,
//! and a flag for `lo` brought up. Read once and migrated; never written.
//!
//! tests/fixtures/record-v1.json is a record the version 1 agent wrote.

use serde::Deserialize;

use super::{AddressEntry, Record, SysctlEntry};
use crate::domain::{AddressSpec, SysctlKey};

/// The only interface a version 1 agent added addresses to or brought up:
/// the loopback interface, which is `lo` in every network namespace.
const LO: &str = "lo";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordV1 {
    #[allow(dead_code)] // Checked by the caller before choosing this format.
    version: u64,
    #[serde(default)]
    sysctls: Vec<SysctlV1>,
    #[serde(default)]
    addresses: Vec<AddressSpec>,
    #[serde(default)]
    lo_brought_up: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SysctlV1 {
    interface: String,
    key: ArpKeyV1,
    original: i32,
    written: i32,
}

/// Version 1 knew two sysctls, both under net.ipv4.conf.
#[derive(Debug, Clone, Copy, Deserialize)]
enum ArpKeyV1 {
    #[serde(rename = "arp_ignore")]
    Ignore,
    #[serde(rename = "arp_announce")]
    Announce,
}

impl ArpKeyV1 {
    fn name(self) -> &'static str {
        match self {
            ArpKeyV1::Ignore => "arp_ignore",
            ArpKeyV1::Announce => "arp_announce",
        }
    }
}

/// The same facts in the current form: sysctls become net.ipv4 keys,
/// addresses and the brought-up link name `lo`.
pub fn migrate(old: RecordV1) -> Record {
    Record {
        sysctls: old
            .sysctls
            .into_iter()
            .map(|s| SysctlEntry {
                key: SysctlKey::ipv4(&s.interface, s.key.name()),
                original: s.original,
                written: s.written,
            })
            .collect(),
        addresses: old
            .addresses
            .into_iter()
            .map(|spec| AddressEntry {
                interface: LO.to_string(),
                spec,
            })
            .collect(),
        links_brought_up: if old.lo_brought_up {
            vec![LO.to_string()]
        } else {
            Vec::new()
        },
        ..Record::default()
    }
}
