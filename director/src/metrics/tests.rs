//! Rendering, the dashboard's metric names, and the HTTP endpoint's bounds.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lvs_ipvs::table::{Family, ServiceKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::status::{
    HealthState, IpvsCounters, ServerStatus, ServiceStatus, SorryStatus, Status, Traffic, VipStatus,
};

fn traffic(base: u64) -> Traffic {
    Traffic {
        connections: base,
        incoming_packets: base * 10,
        outgoing_packets: base * 20,
        incoming_bytes: base * 1000,
        outgoing_bytes: base * 2000,
    }
}

fn server(address: &str, state: HealthState) -> ServerStatus {
    ServerStatus {
        server: address.parse().unwrap(),
        health: state,
        weight: None,
        configured_weight: 1,
        admin_drained: false,
        adopted: false,
        check: "tcp port 80".into(),
        last_result: None,
        last_check: None,
        since: 0.0,
        last_check_duration: None,
        transitions: 0,
        ipvs: None,
    }
}

fn service(key: ServiceKey, servers: Vec<ServerStatus>) -> ServiceStatus {
    ServiceStatus {
        service: key,
        scheduler: "wrr".into(),
        quorum: 1,
        healthy: 0,
        on_failure: "drain".into(),
        sorry_server: None,
        sorry_active: false,
        servers,
        sorry_destination: None,
        ipvs: None,
    }
}

/// A status as a scrape takes it (with the kernel's counters).
fn snapshot() -> Status {
    let vip = IpAddr::V4(Ipv4Addr::new(10, 1, 252, 73));
    Status {
        services: vec![ServiceStatus {
            ipvs: Some(traffic(7)),
            ..service(
                ServiceKey::tcp(vip, 80),
                vec![
                    ServerStatus {
                        weight: Some(2),
                        configured_weight: 2,
                        last_check_duration: Some(0.25),
                        transitions: 1,
                        ipvs: Some(IpvsCounters {
                            active_connections: 5,
                            inactive_connections: 2,
                            traffic: traffic(3),
                        }),
                        ..server("10.1.252.74:80", HealthState::Up)
                    },
                    ServerStatus {
                        weight: Some(0),
                        transitions: 4,
                        ..server("10.1.252.75:80", HealthState::Down)
                    },
                ],
            )
        }],
        reloads: 2,
        reload_failures: 1,
        checks_in_flight: 12,
        checks_skipped: 0,
        last_load: Some(1_700_000_000.0),
        vips: vec![VipStatus {
            vip: "10.1.252.73".into(),
            announced: true,
            announces: 2,
            withdrawals: 1,
        }],
        quorum: Some(true),
        ..Status::default()
    }
}

#[test]
fn announced_vips_and_quorum() {
    let text = render(&snapshot());
    assert_eq!(
        value(&text, r#"lvs_director_vip_announced{vip="10.1.252.73"}"#),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"lvs_director_announce_transitions_total{vip="10.1.252.73",direction="withdraw"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"lvs_director_announce_transitions_total{vip="10.1.252.73",direction="announce"}"#
        ),
        2.0
    );
    assert_eq!(value(&text, "lvs_director_quorum"), 1.0);
    let none = render(&Status::default());
    assert!(!none.contains("lvs_director_quorum"), "{none}");
}

/// An admin drain shows as `drain` whatever the check says; the sorry
/// server, while wanted, is a server of its service, up.
#[test]
fn drained_and_sorry_servers() {
    let key = ServiceKey::tcp(IpAddr::V4(Ipv4Addr::new(10, 1, 252, 73)), 80);
    let status = Status {
        services: vec![ServiceStatus {
            sorry_server: Some(IpAddr::V4(Ipv4Addr::new(10, 1, 252, 80))),
            sorry_active: true,
            sorry_destination: Some(SorryStatus {
                server: "10.1.252.80:80".parse().unwrap(),
                configured_weight: 1,
                weight: Some(1),
                ipvs: Some(IpvsCounters {
                    active_connections: 3,
                    ..IpvsCounters::default()
                }),
            }),
            ..service(
                key,
                vec![ServerStatus {
                    admin_drained: true,
                    ..server("10.1.252.74:80", HealthState::Up)
                }],
            )
        }],
        ..Status::default()
    };
    let text = render(&status);
    let svc = r#"service="TCP 10.1.252.73:80""#;
    let sorry = format!(r#"{svc},server="10.1.252.80:80""#);
    for (state, servers) in [
        ("up", 1.0),
        ("down", 0.0),
        ("drain", 1.0),
        ("unchecked", 0.0),
    ] {
        let series = format!("lvs_director_service_servers{{{svc},state=\"{state}\"}}");
        assert_eq!(value(&text, &series), servers, "{state}");
    }
    let drained = format!(r#"{svc},server="10.1.252.74:80",state="drain""#);
    assert_eq!(
        value(&text, &format!("lvs_director_server_state{{{drained}}}")),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"lvs_director_server_state{{{sorry},state="up"}}"#)
        ),
        1.0
    );
    assert_eq!(
        value(&text, &format!("lvs_director_server_weight{{{sorry}}}")),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_active_connections{{{sorry}}}")
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_transitions_total{{{sorry}}}")
        ),
        0.0
    );
    assert!(!text.contains(&format!(
        "lvs_director_server_last_check_duration_seconds{{{sorry}}}"
    )));
}

/// `name{labels} value` lines: name (with labels) → value.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn value(text: &str, series: &str) -> f64 {
    let found: Vec<_> = samples(text)
        .into_iter()
        .filter(|(s, _)| s == series)
        .collect();
    assert_eq!(found.len(), 1, "{series} in\n{text}");
    found[0].1
}

/// The metric names of the samples (what PromQL sees).
fn sample_names(text: &str) -> BTreeSet<String> {
    samples(text)
        .into_iter()
        .map(|(series, _)| series.split('{').next().unwrap().to_string())
        .collect()
}

#[test]
fn render_names_labels_and_values() {
    let text = render(&snapshot());
    let svc = r#"service="TCP 10.1.252.73:80""#;
    let rs1 = format!(r#"{{{svc},server="10.1.252.74:80"}}"#);
    let rs2 = format!(r#"{{{svc},server="10.1.252.75:80"}}"#);
    assert_eq!(value(&text, "lvs_director_reloads_total"), 3.0);
    assert_eq!(value(&text, "lvs_director_reload_errors_total"), 1.0);
    assert_eq!(value(&text, "lvs_director_checks_in_flight"), 12.0);
    assert_eq!(value(&text, "lvs_director_checks_skipped_total"), 0.0);
    assert_eq!(
        value(
            &text,
            "lvs_director_config_last_reload_success_timestamp_seconds"
        ),
        1.7e9
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_connections_total{{{svc}}}")
        ),
        7.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_incoming_packets_total{{{svc}}}")
        ),
        70.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_outgoing_packets_total{{{svc}}}")
        ),
        140.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_incoming_bytes_total{{{svc}}}")
        ),
        7000.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_outgoing_bytes_total{{{svc}}}")
        ),
        14000.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_servers{{{svc},state=\"up\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_servers{{{svc},state=\"down\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_service_servers{{{svc},state=\"drain\"}}")
        ),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_connections_total{rs1}")
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_incoming_bytes_total{rs1}")
        ),
        3000.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_outgoing_bytes_total{rs1}")
        ),
        6000.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_active_connections{rs1}")
        ),
        5.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_inactive_connections{rs1}")
        ),
        2.0
    );
    assert_eq!(
        value(&text, &format!("lvs_director_server_weight{rs1}")),
        2.0
    );
    assert_eq!(
        value(&text, &format!("lvs_director_server_weight{rs2}")),
        0.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_configured_weight{rs2}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_last_check_duration_seconds{rs1}")
        ),
        0.25
    );
    assert_eq!(
        value(
            &text,
            &format!("lvs_director_server_transitions_total{rs2}")
        ),
        4.0
    );
    // One state at 1, the three others at 0.
    for (state, up, down) in [
        ("up", 1.0, 0.0),
        ("down", 0.0, 1.0),
        ("drain", 0.0, 0.0),
        ("unchecked", 0.0, 0.0),
    ] {
        let rs1 = format!(
            r#"lvs_director_server_state{{{svc},server="10.1.252.74:80",state="{state}"}}"#
        );
        let rs2 = format!(
            r#"lvs_director_server_state{{{svc},server="10.1.252.75:80",state="{state}"}}"#
        );
        assert_eq!(value(&text, &rs1), up, "{state}");
        assert_eq!(value(&text, &rs2), down, "{state}");
    }
    // Never checked: no duration sample.
    assert!(!text.contains(&format!(
        "lvs_director_server_last_check_duration_seconds{rs2}"
    )));
    // Every sample name is described, with the counter type on `_total`.
    for name in sample_names(&text) {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
    // The Prometheus 0.0.4 text format: no OpenMetrics trailer.
    assert!(!text.contains("# EOF"));
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn labels_are_escaped_and_named_like_ipvsadm() {
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    assert_eq!(
        service_label(&ServiceKey::tcp(v6, 443)),
        "TCP [2001:db8::1]:443"
    );
    assert_eq!(
        service_label(&ServiceKey::udp(v6, 53)),
        "UDP [2001:db8::1]:53"
    );
    assert_eq!(
        service_label(&ServiceKey::fwmark(Family::Inet, 11)),
        "FWM 11"
    );
    assert_eq!(
        service_label(&ServiceKey::fwmark(Family::Inet6, 11)),
        "FWM 11 IPv6"
    );
    assert_eq!(server_label(v6, 80), "[2001:db8::1]:80");

    // Label values are escaped by prometheus-client; VIP labels are the
    // only free text left (addresses, as written in the file).
    let snapshot = Status {
        vips: vec![VipStatus {
            vip: "odd \"name\" \\ here\n".into(),
            ..VipStatus::default()
        }],
        ..Status::default()
    };
    let text = render(&snapshot);
    assert!(
        text.contains(r#"lvs_director_vip_announced{vip="odd \"name\" \\ here\n"} 0"#),
        "{text}"
    );
}

/// Every metric a dashboard panel (or variable) queries is one `render`
/// exports, as a sample name (`_total` included for counters).
#[test]
fn dashboard_uses_only_exported_metrics() {
    let exported = sample_names(&render(&snapshot()));
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../../dashboards/lvs-director.json")).unwrap();

    fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => queries(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
            _ => {}
        }
    }

    let panels = json["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate id in {title}"
        );
        let mut exprs = Vec::new();
        queries(&panel["targets"], &mut exprs);
        assert!(!exprs.is_empty(), "panel {title} has no expr");
        for expr in exprs {
            let names = metric_names(&expr);
            assert!(
                !names.is_empty(),
                "panel {title}: no lvs_director metric in {expr}"
            );
            for name in names {
                assert!(
                    exported.contains(&name),
                    "panel {title}: {name} is not exported"
                );
                used.insert(name);
            }
        }
    }
    let mut variables = Vec::new();
    queries(&json["templating"], &mut variables);
    for query in variables {
        for name in metric_names(&query) {
            assert!(
                exported.contains(&name),
                "variable query: {name} is not exported"
            );
        }
    }
    // The topics the dashboard is for.
    let titles: Vec<&str> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for topic in [
        "health",
        "Weight",
        "Active connections",
        "Connection rate",
        "Bytes rate",
        "Check duration",
        "transitions",
        "Reloads",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(topic)),
            "no panel about {topic}: {titles:?}"
        );
    }
    for name in [
        "lvs_director_server_state",
        "lvs_director_server_weight",
        "lvs_director_server_active_connections",
        "lvs_director_service_connections_total",
        "lvs_director_service_incoming_bytes_total",
        "lvs_director_server_last_check_duration_seconds",
        "lvs_director_server_transitions_total",
        "lvs_director_reloads_total",
        "lvs_director_reload_errors_total",
        "lvs_director_vip_announced",
        "lvs_director_announce_transitions_total",
    ] {
        assert!(used.contains(name), "the dashboard does not show {name}");
    }
}

/// `lvs_director_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("lvs_director_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(r#"sum by (s) (rate(lvs_director_a_total{x="y"}[5m])) / lvs_director_b"#),
        ["lvs_director_a_total", "lvs_director_b"]
    );
}

// The HTTP endpoint.

async fn start(limits: Limits) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let server = MetricsServer::from_listener(listener).with_limits(limits);
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(|| async { snapshot() }));
    addr
}

/// Sends `request`, reads the whole answer (bounded by 1 MiB and 10 s).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    read_all(&mut stream).await
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    while answer.len() < 1 << 20 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(answer).unwrap()
}

#[tokio::test]
async fn scrape_and_other_paths() {
    let addr = start(Limits::default()).await;
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{head}"
    );
    // Samples within a family come in hash order: compare the lines.
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(body), sorted(&render(&snapshot())));

    let answer = exchange(addr, b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\n"),
        "{answer}"
    );
    let answer = exchange(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    let answer = exchange(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert!(
        answer.starts_with("HTTP/1.1 405 ") && answer.contains("\r\nAllow: GET, HEAD\r\n"),
        "{answer}"
    );
    let answer = exchange(addr, b"\x16\x03\x01garbage\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[tokio::test]
async fn oversized_request_is_refused() {
    let addr = start(Limits::default()).await;
    let mut request = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while request.len() < 64 * 1024 {
        request.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let started = Instant::now();
    let answer = exchange(addr, &request).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// A client dripping its request a byte at a time is cut off at the read
/// timeout, not served forever.
#[tokio::test]
async fn slowloris_is_cut_off_at_the_read_timeout() {
    let limits = Limits {
        read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let addr = start(limits).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut cut_off = None;
    for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        .iter()
        .cycle()
        .take(200)
    {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        // Did the server close? (a read that returns at once with 0)
        let mut buf = [0u8; 64];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await
        {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the server kept a dripping client for 10 s");
    assert!(cut_off >= Duration::from_millis(450), "{cut_off:?}");
    assert!(cut_off < Duration::from_secs(4), "{cut_off:?}");
}

/// Over the connection cap, a new connection is closed at once; when the
/// idle ones are gone, scraping works again.
#[tokio::test]
async fn connection_cap() {
    let limits = Limits {
        max_connections: 4,
        read_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let addr = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept and take its permits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(answer, "", "served over the cap");
    assert!(started.elapsed() < Duration::from_secs(2));

    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        if answer.starts_with("HTTP/1.1 200 OK") {
            break;
        }
        assert!(Instant::now() < deadline, "permits not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A snapshot that counts how often it is taken (each take is one table
/// read in the daemon), slow enough for scrapes to pile up behind it.
fn counted(
    reads: &Arc<AtomicUsize>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Status> + Send>> + Send + Sync + 'static {
    let reads = reads.clone();
    move || {
        let reads = reads.clone();
        Box::pin(async move {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            snapshot()
        })
    }
}

/// Scrapes at once, and one after another, within a second: one table read
/// for them all (each scrape read the table before).
#[tokio::test]
async fn scrapes_within_a_second_share_one_read() {
    let reads = Arc::new(AtomicUsize::new(0));
    let scrapes = Arc::new(Scrapes::new(counted(&reads)));
    let together: Vec<_> = (0..8)
        .map(|_| {
            let scrapes = scrapes.clone();
            tokio::spawn(async move { scrapes.text().await })
        })
        .collect();
    let mut texts = Vec::new();
    for t in together {
        texts.push(t.await.unwrap().unwrap());
    }
    for _ in 0..8 {
        texts.push(scrapes.text().await.unwrap());
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    assert!(texts.iter().all(|t| Arc::ptr_eq(t, &texts[0])));
}

/// Past its age, the next scrape takes a new snapshot.
#[tokio::test]
async fn an_old_snapshot_is_taken_anew() {
    let reads = Arc::new(AtomicUsize::new(0));
    let scrapes = Scrapes::with_max_age(counted(&reads), Duration::from_millis(100));
    scrapes.text().await.unwrap();
    scrapes.text().await.unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    scrapes.text().await.unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 2);
}

/// Over HTTP: five scrapes, one read; each answer the same text.
#[tokio::test]
async fn http_scrapes_share_one_read() {
    let reads = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let server = MetricsServer::from_listener(listener);
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(counted(&reads)));
    let mut bodies = BTreeSet::new();
    for _ in 0..5 {
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        bodies.insert(answer.split_once("\r\n\r\n").unwrap().1.to_string());
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    assert_eq!(bodies.len(), 1);
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = MetricsServer::bind(addr).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("metrics: cannot listen on {addr}: ")),
        "{err}"
    );
}
