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
