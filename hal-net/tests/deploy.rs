//! What operators deploy with: the systemd unit (`deploy/systemd/hal-net.service`),
//! verified and scored by `systemd-analyze` (Debian's `systemd`; `.ci/run` installs it);
//! logs as JSON for journald or a shipper; and SIGHUP, which never stops a server, even
//! while it starts.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::cluster::{Cluster, hal_net, wait_exit};

/// The unit as installed, its `hal-net` replaced by the one under test.
fn unit(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/hal-net.service"),
    )
    .unwrap();
    let path = dir.join("hal-net.service");
    let binary = hal_net();
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/hal-net", &binary.display().to_string()),
    )
    .unwrap();
    path
}

fn systemd_analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): the unit's test needs it (`apt-get install -y systemd`, as .ci/run does)"
            )
        })
}

#[test]
fn the_systemd_unit_verifies_is_hardened_and_starts_the_server_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit(dir.path());
    let unit = unit.to_str().unwrap();
    let out = systemd_analyze(&["verify", unit]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // systemd's own score of the sandbox: 0 is locked down, 10 is exposed.
    let out = systemd_analyze(&["security", "--offline=true", "--no-pager", unit]);
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for hal-net.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(level <= 2.0, "exposure {level}:\n{text}");
    let text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "User=hal",
        "StateDirectory=hal",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ReadWritePaths=/etc/hal/license",
        "StartLimitBurst=5",
        "WantedBy=multi-user.target",
    ] {
        assert!(text.contains(line), "no {line:?} in the unit");
    }

    // Its command line is one hal-net takes: with no config there, it says so (exit 1),
    // not that the command line is wrong (64).
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let mut words = exec.split_whitespace();
    let program = words.next().unwrap();
    let args: Vec<String> = words
        .map(|w| w.replace("/etc/hal", &dir.path().display().to_string()))
        .collect();
    let out = Command::new(program).args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.toml"), "{err}");
}

#[test]
fn json_logs_are_one_object_a_line_and_sighup_never_stops_a_starting_server() {
    let mut cluster = Cluster::new("");
    for id in 1..=3 {
        cluster.start_with(id, &["--join-empty", "--log-format", "json"]);
    }
    // SIGHUPs while #3 starts (from its first log line: the handlers are installed
    // before it reads its config) and after: it keeps running.
    let pid = |cluster: &Cluster, id: usize| {
        Pid::from_raw(i32::try_from(cluster.children[id - 1].as_ref().unwrap().id()).unwrap())
    };
    let start = Instant::now();
    while std::fs::read_to_string(cluster.log(3))
        .unwrap_or_default()
        .is_empty()
    {
        assert!(start.elapsed() < Duration::from_secs(10), "#3 logs nothing");
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        kill(pid(&cluster, 3), Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cluster.running(3), "SIGHUP stopped #3:\n{}", cluster.logs());
    cluster.wait_active(1, Duration::from_secs(15));
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert!(out.status.success(), "{out:?}");

    let log = std::fs::read_to_string(cluster.log(3)).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let listening = lines
        .iter()
        .find(|l| l["message"] == "listening")
        .unwrap_or_else(|| panic!("no listening line:\n{log}"));
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert_eq!(
        listening["version"],
        env!("CARGO_PKG_VERSION"),
        "{listening}"
    );
    assert!(listening["timestamp"].is_string(), "{listening}");
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("SIGHUP"))),
        "the SIGHUPs are logged:\n{log}"
    );
    let mut child = cluster.children[2].take().unwrap();
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

/// Every metric the Grafana dashboard (`deploy/grafana/hal-triad.json`) queries is one a
/// server exports (or Prometheus's own `up`), so no panel stays empty for a typo.
#[test]
fn the_grafana_dashboard_queries_only_metrics_the_servers_export() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/hal-triad.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "hal-triad");
    // What a server exports, every family with a sample: each metric's name by its
    // `# TYPE` line, with the suffixes of its samples.
    let metrics = hal_net::metrics::Metrics::new();
    metrics.replied("denied", Some("all_in_use"));
    metrics.peer_rtt(hal_core::ServerId::SECONDARY, Duration::from_millis(1));
    metrics.observe_status(&sample_report());
    let text = metrics.encode();
    let mut exported = std::collections::BTreeSet::from(["up".to_string()]);
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        for suffix in suffixes {
            exported.insert(format!("{name}{suffix}"));
        }
    }
    let mut exprs = Vec::new();
    fn collect(value: &serde_json::Value, exprs: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(s) if key == "expr" || key == "query" => {
                            exprs.push(s.clone())
                        }
                        other => collect(other, exprs),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect(v, exprs)),
            _ => {}
        }
    }
    collect(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    let mut used = std::collections::BTreeSet::new();
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("hal_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            used.insert(name);
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries {unknown:?}; exported: {exported:?}"
    );
    assert!(used.len() >= 15, "{used:?}");
}

/// A status report with a feature, a holder, a waiter and a peer, as a server makes it.
fn sample_report() -> hal_net::wire::StatusReport {
    use hal_net::wire::{
        FeatureStatus, Holder, LicenseStatus, PeerStatus, Software, StatusReport, WaitingStatus,
    };
    StatusReport {
        server: hal_core::ServerId::PRIMARY,
        triad: true,
        role: hal_core::server::Role::Active,
        term: 2,
        leader: Some(hal_core::ServerId::PRIMARY),
        last_index: 10,
        commit_index: 10,
        applied_index: 10,
        wall_ms: 1_800_000_000_000,
        certificate_expires_ms: Some(1_900_000_000_000),
        peers: vec![PeerStatus {
            id: hal_core::ServerId::SECONDARY,
            connected: true,
            refused: None,
        }],
        features: vec![FeatureStatus {
            name: "cad".into(),
            count: 1,
            used: 1,
            holders: vec![Holder {
                handle: 1,
                user: "ann".into(),
                host: "ws1".into(),
                borrow_end_ms: None,
                granted_ms: 1_800_000_000_000,
            }],
            waiting: vec![WaitingStatus {
                id: 2,
                user: "bob".into(),
                host: "ws2".into(),
                since_ms: 1_800_000_000_000,
            }],
            borrow_hours_max: Some(72),
        }],
        license: LicenseStatus {
            digest: String::new(),
            index: 1,
            by: None,
            problems: vec![],
            file_differs: None,
        },
        options: None,
        software: Some(Software::this_build(2)),
    }
}
