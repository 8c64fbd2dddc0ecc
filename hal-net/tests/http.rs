//! A server's HTTP listener (`[http] listen`): Prometheus metrics, `/healthz` and
//! `/readyz`, and the status page, in headless Chromium: it loads, shows the triad, and
//! changes when #1 is killed. Needs Debian's `chromium` (`.ci/run` installs it), or
//! `HAL_CHROMIUM` naming a Chromium or Chrome; without one it fails, never skips.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::browser::chromium;
use support::cluster::{Cluster, Holder, free_ports};

/// A cluster whose servers listen for HTTP on the ports returned.
fn cluster_with_http() -> (Cluster, [u16; 3]) {
    let http = free_ports::<3>();
    let extra = http.map(|port| format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    (Cluster::with_extra("failback_hold = \"2s\"", extra), http)
}

/// `GET path` from the listener at `port`: (status code, headers, body).
fn get(port: u16, method: &str, path: &str) -> (u16, String, String) {
    get_as(port, method, path, "127.0.0.1", None)
}

/// The same, naming `host` in the request, from the local address `from` if given.
fn get_as(
    port: u16,
    method: &str,
    path: &str,
    host: &str,
    from: Option<std::net::IpAddr>,
) -> (u16, String, String) {
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let connected = match from {
        None => TcpStream::connect(to),
        Some(ip) => (|| {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            socket.bind(&std::net::SocketAddr::new(ip, 0).into())?;
            socket.connect(&to.into())?;
            Ok(socket.into())
        })(),
    };
    let mut stream: TcpStream = match connected {
        Ok(stream) => stream,
        Err(e) => return (0, String::new(), format!("cannot connect: {e}")),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A connection the listener closed at once (over its address's limit) fails here.
    if let Err(e) = write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    ) {
        return (0, String::new(), format!("cannot write: {e}"));
    }
    let mut response = String::new();
    if let Err(e) = stream.read_to_string(&mut response) {
        return (0, String::new(), format!("cannot read: {e}"));
    }
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

/// Waits until `GET path` at `port` answers `code`; its body.
fn wait_get(port: u16, path: &str, code: u16, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let (got, _, body) = get(port, "GET", path);
        if got == code {
            return body;
        }
        assert!(
            start.elapsed() < limit,
            "{path} on {port} still {got}, not {code}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of the sample `name` (with its labels, as the text shows them).
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{metrics}"))
}

#[test]
fn metrics_and_health_checks_follow_the_triad() {
    let (mut cluster, http) = cluster_with_http();
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    for &port in &http {
        assert_eq!(get(port, "GET", "/healthz").2, "ok\n");
        wait_get(port, "/readyz", 200, Duration::from_secs(10));
    }
    let holder = Holder::start(&cluster, "cad");
    let (code, head, metrics) = get(http[0], "GET", "/metrics");
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    assert_eq!(sample(&metrics, "hal_active"), 1.0);
    assert_eq!(sample(&metrics, "hal_leader"), 1.0);
    assert_eq!(sample(&metrics, "hal_seats_used{feature=\"cad\"}"), 1.0);
    assert_eq!(sample(&metrics, "hal_seats_count{feature=\"cad\"}"), 5.0);
    assert!(sample(&metrics, "hal_replies_total{result=\"granted\"}") >= 1.0);
    assert!(sample(&metrics, "hal_commit_duration_seconds_count") >= 1.0);
    assert!(sample(&metrics, "hal_fsync_duration_seconds_count") >= 1.0);
    assert_eq!(sample(&metrics, "hal_peer_connected{peer=\"2\"}"), 1.0);
    assert!(sample(&metrics, "hal_certificate_days_left") > 800.0);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        metrics.contains(&format!(
            "hal_build_info{{version=\"{version}\",storage_format=\"2\"}} 1"
        )),
        "{metrics}"
    );
    // Round trips come with the pings, every peer heartbeat.
    let start = Instant::now();
    while !get(http[0], "GET", "/metrics")
        .2
        .contains("hal_peer_rtt_seconds{peer=\"2\"}")
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no round trip to #2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A denial is counted by its reason.
    let others: Vec<Holder> = (0..4).map(|_| Holder::start(&cluster, "cad")).collect();
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let metrics = get(http[0], "GET", "/metrics").2;
    assert_eq!(
        sample(&metrics, "hal_denials_total{reason=\"all_in_use\"}"),
        1.0
    );
    assert_eq!(sample(&metrics, "hal_seats_used{feature=\"cad\"}"), 5.0);
    drop(others);
    let standby = get(http[1], "GET", "/metrics").2;
    assert_eq!(sample(&standby, "hal_active"), 0.0);
    assert_eq!(sample(&standby, "hal_leader"), 1.0);

    // #2 and #3 gone: #1 is no longer part of a majority.
    cluster.kill9(2);
    cluster.kill9(3);
    let why = wait_get(http[0], "/readyz", 503, Duration::from_secs(10));
    assert!(why.starts_with("not ready: "), "{why}");
    assert_eq!(
        get(http[0], "GET", "/healthz").0,
        200,
        "the process is still up"
    );
    drop(holder);
}

#[test]
fn the_listener_refuses_what_it_does_not_serve_and_outlasts_silent_connections() {
    let (mut cluster, http) = cluster_with_http();
    cluster.start(1);
    let port = http[0];
    wait_get(port, "/healthz", 200, Duration::from_secs(10));
    assert_eq!(get(port, "POST", "/metrics").0, 405);
    assert_eq!(get(port, "GET", "/../../etc/passwd").0, 404);
    let (code, head, _) = get(port, "GET", "/");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    // Another site's name for this address (DNS rebinding) is refused the status, not
    // the metrics, which a scraper may ask for by any name.
    let (code, _, body) = get_as(port, "GET", "/status.json", "evil.example:80", None);
    assert_eq!(code, 421, "{body}");
    let (code, _, body) = get_as(port, "GET", "/metrics", "lic1-mgmt.example:9100", None);
    assert_eq!(code, 200, "{body}");
    // Silent connections from one address take that address's few slots, not the
    // listener's: another address is answered at once, and this one once their headers
    // did not come in time.
    let silent: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let other: std::net::IpAddr = [127, 0, 0, 2].into();
    let (code, _, body) = get_as(port, "GET", "/healthz", "127.0.0.1", Some(other));
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let start = Instant::now();
    wait_get(port, "/healthz", 200, Duration::from_secs(15));
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "the silent connections held no slot: {:?}",
        start.elapsed()
    );
    drop(silent);
    // A port already taken stops the start, naming the key.
    cluster.write_config(2, &cluster.triad(), "cad.lic", "");
    let text = std::fs::read_to_string(cluster.config(2)).unwrap();
    let taken = text.replace(
        &format!("[http]\nlisten = \"127.0.0.1:{}\"", http[1]),
        &format!("[http]\nlisten = \"127.0.0.1:{port}\""),
    );
    assert_ne!(taken, text);
    std::fs::write(cluster.config(2), taken).unwrap();
    cluster.start(2);
    let status = cluster.wait_exit(2, Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(
        log.contains(&format!("http.listen: cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
}

/// The page at `port` as headless Chromium leaves it after its script ran.
fn page_dom(port: u16, profile: &std::path::Path) -> String {
    let url = format!("http://127.0.0.1:{port}/");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium().display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed on {url}:\n{stderr}");
    assert!(
        !stderr.contains("Uncaught"),
        "the page's script threw:\n{stderr}"
    );
    assert!(
        !stderr.contains("Content Security Policy"),
        "the page broke its own policy:\n{stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Loads the page until `done` says the DOM is as expected; the DOM.
fn wait_page(port: u16, profile: &std::path::Path, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let dom = page_dom(port, profile);
        if done(&dom) {
            return dom;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the page did not show what was expected:\n{dom}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_status_page_shows_the_triad_and_follows_a_failover_in_chromium() {
    let (mut cluster, http) = cluster_with_http();
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    let profile = tempfile::tempdir().unwrap();
    // A user name that is markup: the page must show it as text.
    let holder = Holder::start_as(&cluster, "cad", "<img src=x onerror=alert(1)>");
    let dom = wait_page(http[1], profile.path(), |dom| {
        dom.contains("data-health=\"ok\"") && dom.contains("1 of 5 in use")
    });
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("data-active=\"1\""), "{dom}");
    for id in 1..=3 {
        assert!(
            dom.contains(&format!("data-server=\"{id}\" data-up=\"true\"")),
            "{dom}"
        );
    }
    assert!(dom.contains("data-role=\"active\""), "{dom}");
    assert!(dom.contains("data-feature=\"cad\""), "{dom}");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;@"), "{dom}");
    assert!(
        !dom.contains("<img src=\"x\""),
        "markup from a server became markup: {dom}"
    );

    // #1 killed: #2 takes over, and the page (from #2) says so.
    drop(holder);
    cluster.kill9(1);
    let dom = wait_page(http[1], profile.path(), |dom| {
        dom.contains("data-active=\"2\"")
    });
    assert!(dom.contains("data-server=\"1\" data-up=\"false\""), "{dom}");
    assert!(dom.contains("data-health=\"degraded\""), "{dom}");
    assert!(dom.contains("server #1"), "the problems name #1: {dom}");
}
