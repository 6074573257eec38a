use super::*;
use crate::domain::ArpKey;

/// A record the version 1 agent (rs-agent before format version 2) wrote:
/// `start` with interfaces ["all", "nic0.100"], arp_ignore 3 / arp_announce 1
/// on all and arp_ignore 2 on nic0.100 before, lo down, VIPs 203.0.113.10
/// (label lo:0), 203.0.113.11 (already on lo) and 2001:db8::10.
const RECORD_V1: &str = include_str!("../../tests/fixtures/record-v1.json");

fn sample() -> Record {
    Record {
        sysctls: vec![SysctlEntry {
            key: SysctlKey::arp("eth0.100", ArpKey::Ignore),
            original: 0,
            written: 1,
        }],
        addresses: vec![AddressEntry {
            interface: "lo".into(),
            spec: AddressSpec {
                address: "10.1.252.73".parse().unwrap(),
                prefix_len: 32,
                label: Some("lo:0".into()),
            },
        }],
        links_brought_up: Vec::new(),
        ..Record::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn lock(dir: &Path, id: &str) -> Store {
    runtime().block_on(Store::lock(dir, id)).unwrap()
}

#[test]
fn save_load_round_trip_and_empty_removes_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = lock(dir.path(), "cookie-7");
    assert_eq!(store.load().unwrap(), Record::default());
    store.save(&sample()).unwrap();
    assert_eq!(store.load().unwrap(), sample());
    let text = std::fs::read_to_string(store.path()).unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert!(text.contains("\"family\": \"ipv4\""), "{text}");
    assert!(text.contains("\"interface\": \"eth0.100\""), "{text}");
    assert!(text.contains("\"name\": \"arp_ignore\""), "{text}");
    assert!(text.contains("\"interface\": \"lo\""), "{text}");
    store.save(&Record::default()).unwrap();
    assert!(!store.path().exists());
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["netns-cookie-7.lock"]);
}

#[test]
fn version_1_records_are_migrated() {
    let record = Record::from_json(RECORD_V1).unwrap();
    let sysctls: Vec<_> = record
        .sysctls
        .iter()
        .map(|e| (e.key.to_string(), e.original, e.written))
        .collect();
    assert_eq!(
        sysctls,
        vec![
            ("net.ipv4.conf.all.arp_ignore".to_string(), 3, 1),
            ("net.ipv4.conf.all.arp_announce".to_string(), 1, 2),
            ("net.ipv4.conf.nic0/100.arp_ignore".to_string(), 2, 1),
            ("net.ipv4.conf.nic0/100.arp_announce".to_string(), 0, 2),
        ]
    );
    let addresses: Vec<_> = record
        .addresses
        .iter()
        .map(|a| format!("{} on {}", a.spec, a.interface))
        .collect();
    assert_eq!(
        addresses,
        vec!["203.0.113.10/32 label lo:0 on lo", "2001:db8::10/128 on lo"]
    );
    assert_eq!(record.links_brought_up, vec!["lo"]);
    // Written back, it is a version 2 record with the same content.
    let text = record.to_json().unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert_eq!(Record::from_json(&text).unwrap(), record);
}

#[test]
fn version_1_without_lo_brought_up_has_no_links() {
    let text = RECORD_V1.replace("\"lo_brought_up\": true", "\"lo_brought_up\": false");
    assert!(
        Record::from_json(&text)
            .unwrap()
            .links_brought_up
            .is_empty()
    );
}

#[test]
fn unknown_versions_and_fields_are_refused() {
    let e = Record::from_json(r#"{"version": 4}"#).unwrap_err();
    assert!(matches!(e, RecordError::Version { found: 4, .. }), "{e}");
    assert!(e.to_string().contains("versions 1 to 3"), "{e}");
    for bad in [
        r#"{"sysctls": []}"#,
        r#"{"version": 2, "lo_brought_up": true}"#,
        r#"{"version": 1, "links_brought_up": ["lo"]}"#,
        r#"{"version": 2, "links_brought_up": ["../x"]}"#,
        r#"{"version": 3, "links_created": ["../x"]}"#,
        r#"{"version": 3, "fou_ports": [{"port": 0, "family": "ipv4", "x": 1}]}"#,
        r#"{"version": 2, "fou_ports": [{"port": 6080, "family": "ipv4"}]}"#,
        r#"{"version": 1, "sysctls": [{"interface": "a/b", "key": "arp_ignore", "original": 0, "written": 1}]}"#,
        r#"{"version": 1, "sysctls": [{"interface": "all", "key": "rp_filter", "original": 0, "written": 1}]}"#,
    ] {
        assert!(Record::from_json(bad).is_err(), "{bad}");
    }
}

#[test]
fn corrupt_record_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = lock(dir.path(), "x");
    std::fs::write(store.path(), "{not json").unwrap();
    let e = store.load().unwrap_err();
    assert!(matches!(e, Error::State { .. }));
    let e = e.to_string();
    assert!(e.contains("netns-x.json"), "{e}");
    assert!(e.contains("unreadable"), "{e}");
}

#[test]
fn lock_is_exclusive_per_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let first = lock(dir.path(), "a");
    let lock_path = dir.path().join("netns-a.lock");
    let other = File::open(&lock_path).unwrap();
    assert!(matches!(
        other.try_lock(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    // Another namespace's lock is independent.
    let _b = lock(dir.path(), "b");
    drop(first);
    other.try_lock().unwrap();
}

#[test]
fn union_keeps_first_values() {
    let a = sample();
    let mut b = Record::default();
    b.sysctls.push(SysctlEntry {
        key: SysctlKey::arp("eth0.100", ArpKey::Ignore),
        original: 5,
        written: 5,
    });
    b.sysctls.push(SysctlEntry {
        key: SysctlKey::arp("all", ArpKey::Announce),
        original: 0,
        written: 2,
    });
    b.links_brought_up.push("lo".into());
    let u = a.union(&b);
    assert_eq!(u.sysctls.len(), 2);
    assert_eq!(u.sysctls[0].original, 0);
    assert_eq!(u.addresses.len(), 1);
    assert_eq!(u.links_brought_up, vec!["lo"]);
    assert_eq!(u.union(&b), u);
}

#[test]
fn tunnel_entries_make_format_3_and_only_they() {
    let mut record = sample();
    let text = record.to_json().unwrap();
    assert!(text.contains("\"version\": 2"), "{text}");
    assert!(!text.contains("fou_ports"), "{text}");
    record.fou_ports.push(crate::domain::FouPort {
        port: 6080,
        family: crate::domain::Family::Ipv4,
    });
    record.links_created.push("tunl0".into());
    record.links_brought_up.push("tunl0".into());
    let text = record.to_json().unwrap();
    assert!(text.contains("\"version\": 3"), "{text}");
    assert!(
        text.contains("\"fou_ports\": [\n    {\n      \"port\": 6080,\n      \"family\": \"ipv4\""),
        "{text}"
    );
    assert_eq!(Record::from_json(&text).unwrap(), record);
    // A format 2 record (today's DR record) loads as it is.
    let v2 = sample().to_json().unwrap();
    assert_eq!(Record::from_json(&v2).unwrap(), sample());
    // The union keeps tunnel entries of both sides once.
    let union = sample().union(&record).union(&record);
    assert_eq!(union.fou_ports.len(), 1);
    assert_eq!(union.links_created, vec!["tunl0"]);
}
