//! The operator's side of the binary: `serve` refusing bad configs, licenses and blank
//! data directories with messages that say what and where, `--join-empty`, `hostid`,
//! `status` with nothing reachable, the client verbs' argument errors, and the
//! `dev-cluster` quickstart end to end.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cluster::{Cluster, free_ports, hal_net, terminate, wait_exit};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(hal_net()).args(args).output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_names_the_config_key_that_is_wrong() {
    let cluster = Cluster::new("");
    let config = cluster.config(1);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("data_dir", "data_dri")).unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("server1.toml:4:1: unknown key 'data_dri'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'data_dir'?"), "{err}");

    std::fs::write(
        &config,
        text.replace("profile = \"lan\"", "profile = \"lam\""),
    )
    .unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(
        err.contains("timing.profile: 'lam' is not a timing profile; allowed: lan, wan"),
        "{err}"
    );
}

#[test]
fn serve_says_once_why_it_cannot_listen() {
    let cluster = Cluster::new("");
    let taken = std::net::TcpListener::bind(("127.0.0.1", cluster.ports[0])).unwrap();
    let config = cluster.config(1);
    let out = run(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--join-empty",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    let listen = format!("cannot listen on 127.0.0.1:{}", cluster.ports[0]);
    assert!(err.contains(&listen), "{err}");
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    drop(taken);
}

#[test]
fn serve_refuses_a_license_it_cannot_serve() {
    let cluster = Cluster::new("");
    let config = cluster.config(1);
    // A tampered license: the signature no longer matches.
    let license = cluster.dir.path().join("cad.lic");
    let text = std::fs::read_to_string(&license).unwrap();
    std::fs::write(&license, text.replace("COUNT = 5", "COUNT = 50")).unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(err.contains("FEATURE cad is not served"), "{err}");
    assert!(
        err.contains("no feature carries a valid signature"),
        "{err}"
    );

    // A HAL license on a single server.
    let single = cluster.dir.path().join("single.toml");
    std::fs::write(
        &single,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\nlicense = \"cad.lic\"\nvendor_key = \"vendor.pub\"\nhostid = \"h\"\ninsecure_plaintext = true\n",
    )
    .unwrap();
    std::fs::write(&license, text).unwrap();
    let out = run(&["serve", "--config", single.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("which need a triad"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_refuses_a_missing_or_empty_data_directory_without_join_empty() {
    let cluster = Cluster::new("");
    let config = cluster.config(1);
    let data = cluster.data(1);
    for state in ["missing", "empty (no log, no snapshot)"] {
        let out = run(&["serve", "--config", config.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{state}: {out:?}");
        let err = stderr(&out);
        let what = format!(
            "data directory {} is {state}: starting would make this server a blank member with no seats and term 0",
            data.display()
        );
        assert!(err.contains(&what), "{err}");
        assert!(err.contains("start with --join-empty"), "{err}");
        let fix = format!("fix data_dir in {}", config.display());
        assert!(err.contains(&fix), "{err}");
        // Next, the directory exists and is empty.
        std::fs::create_dir_all(&data).unwrap();
    }
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn join_empty_starts_a_blank_server_and_its_restart_needs_no_flag() {
    let mut cluster = Cluster::new("");
    cluster.start_with(1, &["--join-empty"]);
    wait_for_log(&cluster, 1, "listening", 1);
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("joining empty"), "{log}");
    cluster.stop(1);

    cluster.start_with(1, &[]);
    wait_for_log(&cluster, 1, "listening", 2);
    assert!(cluster.running(1), "{}", cluster.logs());
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert_eq!(log.matches("joining empty").count(), 1, "{log}");
}

#[test]
fn serve_refuses_a_certificate_it_cannot_present_and_status_shows_the_days_left() {
    let mut cluster = Cluster::new("");
    let config = cluster.config(1);
    let text = std::fs::read_to_string(&config).unwrap();
    // #1 given #2's certificate and key.
    let swapped = text
        .replace("tls/server1.pem", "tls/server2.pem")
        .replace("tls/server1.key", "tls/server2.key");
    std::fs::write(&config, &swapped).unwrap();
    let out = run(&[
        "serve",
        "--join-empty",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("server2.pem is the certificate of slot #2, but this server is #1"),
        "{err}"
    );
    // #1's certificate with #2's key.
    let mismatched = text.replace("tls/server1.key", "tls/server2.key");
    std::fs::write(&config, &mismatched).unwrap();
    let out = run(&[
        "serve",
        "--join-empty",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains("server2.key") && err.contains("server1.pem"),
        "{err}"
    );
    // Put right, the triad starts and status shows each certificate's days left.
    std::fs::write(&config, &text).unwrap();
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    let status = cluster.status();
    for server in status["servers"].as_array().unwrap() {
        let days = server["certificate_days_left"].as_i64().unwrap();
        assert!((823..=825).contains(&days), "{status}");
    }
    let out = cluster.verb(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("certificate 82"), "{text}");
}

/// Waits until server `id`'s log holds `text` `count` times.
fn wait_for_log(cluster: &Cluster, id: usize, text: &str, count: usize) {
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(cluster.log(id)).unwrap_or_default();
        if log.matches(text).count() >= count {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {text:?} ({count}) in server {id}'s log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hostid_prints_one_valid_hostid() {
    let out = run(&["hostid"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let id = text.trim();
    assert!(hal_core::HostId::parse(id).is_ok(), "{id:?}");
    assert_eq!(text, format!("{id}\n"));
}

#[test]
fn client_verbs_explain_bad_paths_and_unreachable_servers() {
    let out = run(&["checkout", "cad", "--license-path", "6200-host"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        stderr(&out).contains("--license-path '6200-host'"),
        "{}",
        stderr(&out)
    );

    let [port] = free_ports::<1>();
    let path = format!("{port}@127.0.0.1");
    // A client verifies the servers against the triad's CA: without one it says so.
    let out = Command::new(hal_net())
        .args(["status", "--json", "--license-path", &path])
        .env_remove("HAL_TRIAD_CA")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // With --json the error is one object on standard output, nothing on standard error.
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["exit_code"], 1, "{error}");
    let text = error["error"].as_str().unwrap();
    assert!(
        text.contains("no triad CA: pass --ca FILE or set HAL_TRIAD_CA"),
        "{text}"
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    // The path from HAL_LICENSE_PATH, as clients usually get it.
    let out = Command::new(hal_net())
        .args(["status", "--json", "--insecure"])
        .env("HAL_LICENSE_PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["servers"][0]["up"], false);

    let home = tempfile::tempdir().unwrap();
    let out = Command::new(hal_net())
        .args(["return", "h12", "--insecure", "--license-path", &path])
        .env("HAL_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).contains("no borrow with handle h12"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dev_cluster_starts_three_servers_and_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = pick_three_consecutive_ports();
    let http = pick_three_consecutive_ports();
    let mut child = Command::new(hal_net())
        .args(["dev-cluster", "--dir"])
        .arg(dir.path())
        .args(["--base-port", &base.to_string()])
        .args(["--http-base-port", &http.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let path_line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.starts_with("license path: "))
        .unwrap();
    let path = path_line.trim_start_matches("license path: ").to_string();
    // It makes the triad's certificates and says how clients find its CA.
    let ca_line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.trim_start().starts_with("export HAL_TRIAD_CA="))
        .unwrap();
    let ca = ca_line
        .trim_start()
        .trim_start_matches("export HAL_TRIAD_CA=")
        .to_string();
    assert_eq!(
        ca,
        format!(
            "{}/tls/ca.pem",
            dir.path().canonicalize().unwrap().display()
        )
    );
    assert_eq!(
        path,
        format!(
            "{base}@127.0.0.1;{}@127.0.0.1;{}@127.0.0.1",
            base + 1,
            base + 2
        )
    );

    // Wait for an active server, then take a seat of the demo feature.
    let start = Instant::now();
    let granted = loop {
        let out = run(&[
            "checkout",
            "HAL",
            "--hold",
            "0s",
            "--json",
            "--ca",
            &ca,
            "--license-path",
            &path,
        ]);
        if out.status.success() {
            break out;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{out:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let grant: serde_json::Value = serde_json::from_slice(&granted.stdout).unwrap();
    assert_eq!(grant["server"], 1);
    // Each server's status page and metrics are on the ports it printed.
    let lines: Vec<String> = lines
        .by_ref()
        .map(Result::unwrap)
        .take_while(|l| !l.starts_with("status pages:"))
        .collect();
    assert!(lines.len() < 20, "{lines:?}");
    let mut page = std::net::TcpStream::connect(("127.0.0.1", http + 2)).unwrap();
    std::io::Write::write_all(
        &mut page,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut page, &mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer}"
    );
    let pids: Vec<i32> = (1..=3)
        .map(|i| {
            let text = std::fs::read_to_string(dir.path().join(format!("server{i}.pid"))).unwrap();
            text.trim().parse().unwrap()
        })
        .collect();

    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    for pid in pids {
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && !is_zombie(pid);
        assert!(
            !alive,
            "server pid {pid} still runs after dev-cluster stopped"
        );
    }
    assert!(!dir.path().join("server1.pid").exists());
}

#[test]
fn dev_cluster_ends_when_all_its_servers_have_died() {
    let dir = tempfile::tempdir().unwrap();
    let base = pick_three_consecutive_ports();
    let mut child = Command::new(hal_net())
        .args(["dev-cluster", "--json", "--dir"])
        .arg(dir.path())
        .args(["--base-port", &base.to_string(), "--http-base-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(started["result"], "started", "{started}");
    let pids: Vec<i32> = started["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| i32::try_from(s["pid"].as_i64().unwrap()).unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{started}");
    // Killing one is part of the demo: it goes on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let exited: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(exited["result"], "exited", "{exited}");
    assert_eq!(exited["server"], 1, "{exited}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "one server died: still running"
    );
    // All three gone: nothing is left to serve, and it says so and exits 1.
    for &pid in &pids[1..] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{status:?}");
    let rest: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let last = rest.last().unwrap();
    assert_eq!(last["result"], "died", "{rest:?}");
    assert_eq!(last["exit_code"], 1, "{rest:?}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("all three servers have exited"),
        "{last}"
    );
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) == Some("Z"))
        .unwrap_or(true)
}

/// A base port whose next two ports are free too.
fn pick_three_consecutive_ports() -> u16 {
    for _ in 0..100 {
        let [base] = free_ports::<1>();
        if base < 65000
            && (0..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}
