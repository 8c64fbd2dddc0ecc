//! Real `hal-net serve` processes on 127.0.0.1 for the end-to-end tests: a vendor key, a
//! signed license, three configs on free ports, and helpers that run the client verbs
//! the way an operator would. Every wait is bounded; a failing wait prints the servers'
//! logs.

#![allow(dead_code)] // each test file uses a different part
#![allow(clippy::unwrap_used)] // test support: a failed step is a failed test

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `hal-net` binary: cargo's, for hal-net's own tests; for another crate's tests
/// (which include this file by path, and build hal-net first), the one in the target
/// directory the test binary runs from (`target/debug/deps/..`).
pub fn hal_net() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_hal-net") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().unwrap();
            exe.parent().unwrap().parent().unwrap().join("hal-net")
        }
    }
}

/// For another crate's tests: builds the `hal-net` binary that [`hal_net`] runs, in the
/// target directory (and profile) the test runs from, once per test binary.
pub fn build_hal_net() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        cargo_build(&["-p", "hal-net", "--bin", "hal-net"]);
    });
}

/// `cargo build ARGS` into the target directory and profile the running test was built
/// in; the profile's directory (`target/debug`).
pub fn cargo_build(args: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.arg("build").args(args);
    // What cargo set for this test is not the build's: `ring` rebuilds when it sees
    // another CARGO_MANIFEST_DIR, and with it everything above it.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let ours = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || [
                "CARGO_TARGET_TMPDIR",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&key.as_ref());
        if ours {
            cargo.env_remove(key.as_ref());
        }
    }
    if profile.ends_with("release") {
        cargo.arg("--release");
    }
    let built = cargo
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .current_dir(workspace)
        .output()
        .unwrap();
    assert!(built.status.success(), "cargo build {args:?}: {built:?}");
    profile
}

/// The demo license of the tests: five seats, borrowing allowed.
pub const LICENSE: &str = "\
FEATURE cad
{
  VENDOR = acme
  COUNT = 5
  HAL_SERVERS = 3
  BORROW = 72
}
";

/// Three servers' files and processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ports: [u16; 3],
    pub children: [Option<Child>; 3],
    /// Which servers were started before (and so have data).
    pub started: [bool; 3],
    /// Each server's host: `127.0.0.1` for all three, or three loopback addresses that
    /// share one port ([`Cluster::one_port`]).
    pub hosts: [&'static str; 3],
    /// Top-level config lines each server's file gets besides the usual ones.
    pub extra: [String; 3],
}

/// Ports the OS says are free now (bound at once so they differ, then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// A port free now for UDP on all addresses and for TCP on each of `hosts`.
pub fn free_port_everywhere(hosts: &[&str]) -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp: Vec<_> = hosts
            .iter()
            .map(|host| TcpListener::bind((*host, port)))
            .collect();
        if tcp.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no port free for UDP and for TCP on {hosts:?} in 100 tries");
}

/// Signs `text` with the key in `dir` and writes it to `dir/name`.
pub fn write_license(dir: &Path, name: &str, text: &str) -> PathBuf {
    let source = dir.join(format!("{name}.unsigned"));
    fs::write(&source, text).unwrap();
    let out = dir.join(name);
    let status = Command::new(hal_net())
        .args(["license", "sign", "--key"])
        .arg(dir.join("vendor.key"))
        .arg(&source)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "sign: {status:?}");
    out
}

impl Cluster {
    /// Key, license and configs; nothing started. `timing` is extra `[timing]` lines.
    pub fn new(timing: &str) -> Cluster {
        Cluster::with_hosts(
            free_ports::<3>(),
            ["127.0.0.1"; 3],
            timing,
            Default::default(),
        )
    }

    /// Three servers on one port, at 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all on the
    /// loopback interface), so that one UDP broadcast to `127.255.255.255:port` reaches
    /// all three servers' discovery sockets; `extra` are top-level config lines for each.
    pub fn one_port(timing: &str, extra: [String; 3]) -> Cluster {
        let hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
        Cluster::with_hosts([free_port_everywhere(&hosts); 3], hosts, timing, extra)
    }

    /// Three servers on 127.0.0.1, each with `extra` lines in its config (before its
    /// `[tls]` section: top-level keys, or whole sections such as `[http]`).
    pub fn with_extra(timing: &str, extra: [String; 3]) -> Cluster {
        Cluster::with_hosts(free_ports::<3>(), ["127.0.0.1"; 3], timing, extra)
    }

    fn with_hosts(
        ports: [u16; 3],
        hosts: [&'static str; 3],
        timing: &str,
        extra: [String; 3],
    ) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let keygen = Command::new(hal_net())
            .args(["license", "keygen", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(keygen.status.success(), "keygen: {keygen:?}");
        write_license(dir.path(), "cad.lic", LICENSE);
        let cluster = Cluster {
            dir,
            ports,
            children: [None, None, None],
            started: [false; 3],
            hosts,
            extra,
        };
        let servers = cluster.triad().join(",");
        let tls = Command::new(hal_net())
            .args(["tls", "init", "--servers", &servers, "--dir"])
            .arg(cluster.dir.path().join("tls"))
            .output()
            .unwrap();
        assert!(tls.status.success(), "tls init: {tls:?}");
        for id in 1..=3 {
            cluster.write_config(id, &cluster.triad(), "cad.lic", timing);
        }
        cluster
    }

    /// The triad list in role order.
    pub fn triad(&self) -> Vec<String> {
        self.ports
            .iter()
            .zip(self.hosts)
            .map(|(p, host)| format!("{p}@{host}"))
            .collect()
    }

    pub fn write_config(&self, id: usize, triad: &[String], license: &str, timing: &str) {
        let triad: Vec<String> = triad.iter().map(|t| format!("\"{t}\"")).collect();
        let text = format!(
            "id = {id}\nlisten = \"{}:{}\"\ntriad = [{}]\ndata_dir = \"data{id}\"\n\
             license = \"{license}\"\nvendor_key = \"vendor.pub\"\nhostid = \"host{id}\"\n{}\n\
             [tls]\nca = \"tls/ca.pem\"\ncert = \"tls/server{id}.pem\"\nkey = \"tls/server{id}.key\"\n\
             [timing]\nprofile = \"lan\"\n{timing}\n",
            self.hosts[id - 1],
            self.ports[id - 1],
            triad.join(", "),
            self.extra[id - 1],
        );
        fs::write(self.config(id), text).unwrap();
    }

    /// The triad's CA certificate, which clients verify the servers against.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls").join("ca.pem")
    }

    pub fn config(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("server{id}.toml"))
    }

    pub fn log(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("server{id}.log"))
    }

    pub fn data(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("data{id}"))
    }

    /// The license path clients use.
    pub fn path(&self) -> String {
        self.triad().join(";")
    }

    /// Starts server `id`, its output appended to its log: with `--join-empty` the first
    /// time, as an operator starts a new triad, and without it after, so that every
    /// restart runs the server's check for a blank data directory.
    pub fn start(&mut self, id: usize) {
        let first = !self.started[id - 1];
        self.start_with(id, if first { &["--join-empty"] } else { &[] });
    }

    /// Starts server `id` with `args` after `serve --config FILE`.
    pub fn start_with(&mut self, id: usize, args: &[&str]) {
        self.start_binary(id, &hal_net(), args);
    }

    /// Starts server `id` as `start_with` does, running the hal-net at `binary`.
    pub fn start_binary(&mut self, id: usize, binary: &Path, args: &[&str]) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .unwrap();
        self.started[id - 1] = true;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(self.config(id))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children[id - 1] = Some(child);
    }

    pub fn start_all(&mut self) {
        for id in 1..=3 {
            self.start(id);
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The text of server `id`'s journal files, in file order.
    pub fn journal_text(&self, id: usize) -> String {
        let dir = self.data(id).join("journal");
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// `hal-net checkout FEATURE --hold 0s --json` as `user`.
    pub fn checkout_as(&self, feature: &str, user: &str) -> Output {
        Command::new(hal_net())
            .args([
                "checkout",
                feature,
                "--hold",
                "0s",
                "--json",
                "--license-path",
            ])
            .arg(self.path())
            .env("USER", user)
            .env("HAL_HOME", self.dir.path().join("client-home"))
            .env("HAL_TRIAD_CA", self.ca())
            .output()
            .unwrap()
    }

    /// Sends `signal` to server `id`.
    pub fn signal(&self, id: usize, signal: nix::sys::signal::Signal) {
        let child = self.children[id - 1].as_ref().expect("server not started");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// SIGTERM, and waits for a clean exit.
    pub fn stop(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            terminate(&child);
            let status = wait_exit(&mut child, Duration::from_secs(10));
            assert!(
                status.success(),
                "server {id} did not stop cleanly: {status:?}\n{}",
                self.logs()
            );
        }
    }

    /// Waits for server `id` to exit by itself; its exit status.
    pub fn wait_exit(&mut self, id: usize, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.children[id - 1].take().expect("server not started");
        wait_exit(&mut child, limit)
    }

    /// Whether server `id`'s process is running.
    pub fn running(&mut self, id: usize) -> bool {
        self.children[id - 1]
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// Every server's log, for failure messages.
    pub fn logs(&self) -> String {
        (1..=3)
            .map(|id| {
                let text = fs::read_to_string(self.log(id)).unwrap_or_default();
                format!("----- server{id}.log -----\n{text}")
            })
            .collect()
    }

    /// Runs a client verb with the cluster's license path.
    pub fn verb(&self, args: &[&str]) -> Output {
        Command::new(hal_net())
            .args(args)
            .arg("--license-path")
            .arg(self.path())
            .env("HAL_HOME", self.dir.path().join("client-home"))
            .env("HAL_TRIAD_CA", self.ca())
            .output()
            .unwrap()
    }

    /// `hal-net status --json`.
    pub fn status(&self) -> Value {
        let out = self.verb(&["status", "--json", "--timeout", "1s"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status output is not JSON ({e}): {out:?}"))
    }

    /// Waits until `id` is the active server and serves: it has committed (and so
    /// applied) its whole log, its term's no-op included. Status shows a server active
    /// from its election on, while its seat table may still lack committed seats (a
    /// restarted triad's leader starts from an empty one).
    pub fn wait_active(&self, id: u64, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            let status = self.status();
            let me = &status["servers"][usize::try_from(id - 1).unwrap()];
            let caught_up =
                me["commit_index"].as_u64().is_some() && me["commit_index"] == me["last_index"];
            if status["active"].as_u64() == Some(id) && caught_up {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        panic!(
            "server #{id} not active within {limit:?}: {}\n{}",
            self.status(),
            self.logs()
        );
    }

    /// An application `program` (one of the examples) run with `args`, given the
    /// cluster's license path and CA in the environment, and a borrow-record directory of
    /// the cluster's.
    pub fn app(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("HAL_LICENSE_PATH", self.path())
            .env("HAL_TRIAD_CA", self.ca())
            .env("HAL_HOME", self.dir.path().join("home"));
        command
    }

    /// Starts a checkout example (`program cad SECONDS`) working `seconds`; returns it
    /// once it printed its grant (`granted: cad seat h…`), with its output and that line.
    pub fn start_app(
        &self,
        program: &Path,
        seconds: u32,
    ) -> (Child, BufReader<ChildStdout>, String) {
        let mut child = self
            .app(program, &["cad", &seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("granted: cad seat h"),
            "{line:?}\n{}",
            self.logs()
        );
        (child, stdout, line)
    }

    /// A checkout example (C, Rust or Python: the same lines and exit codes) holds its
    /// seat across a `kill -9` of #1 (printing the failover), keeps it over two leases,
    /// and checks it in when its work is done.
    pub fn app_keeps_its_seat_across_a_kill_9(&mut self, program: &Path) {
        let (child, mut stdout, grant) = self.start_app(program, 15);
        let handle = grant.split_whitespace().nth(3).unwrap().to_string();
        assert!(grant.ends_with("by server #1\n"), "{grant}");
        assert_eq!(self.seats("cad"), (1, vec![handle.clone()]));

        self.kill9(1);
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "failed over: server #2 is active (was #1)\n");
        sleep(Duration::from_secs(9)); // over two leases: heartbeats keep it
        assert_eq!(self.seats("cad"), (1, vec![handle]));

        let out = finish_app(child, Duration::from_secs(15));
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        assert!(out.status.success(), "{out:?} {rest}");
        assert_eq!(rest, "checked in\n");
        assert_eq!(self.seats("cad").0, 0);
    }

    /// A checkout example whose seat is lost while it works (every server killed) says
    /// so and exits 4.
    pub fn app_hears_its_seat_is_lost(&mut self, program: &Path) {
        let (child, _stdout, _) = self.start_app(program, 60);
        for id in 1..=3 {
            self.kill9(id);
        }
        let out = finish_app(child, Duration::from_secs(15));
        assert_eq!(out.status.code(), Some(4), "{out:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.starts_with("lost: seat h"), "{text}");
    }

    /// Seats in use of `feature` and their handles, as status shows them.
    pub fn seats(&self, feature: &str) -> (u64, Vec<String>) {
        let status = self.status();
        let features = status["features"].as_array().cloned().unwrap_or_default();
        let f = features
            .iter()
            .find(|f| f["feature"] == feature)
            .unwrap_or_else(|| panic!("no {feature} in {status}"));
        let mut handles: Vec<String> = f["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["handle"].as_str().unwrap().to_string())
            .collect();
        handles.sort();
        (f["used"].as_u64().unwrap(), handles)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        sleep(Duration::from_millis(50));
    }
}

/// A field incident the journal tests share: a triad (its `failback_hold` short) with #1
/// active, two holders granted by #1 (users `alice` and `bob`), `kill -9` of #1, a third
/// holder granted by #2 (`carol`), #1 started again and active after the failback.
/// Returns the three holders, still holding.
pub fn kill_and_failback(cluster: &mut Cluster) -> [Holder; 3] {
    kill_and_failback_paced(cluster, Pace::BRISK)
}

/// Pauses in [`kill_and_failback_paced`]: `settle` after each change of the active server
/// (before the next grant, or before the caller goes on), `calm` after the grants (before
/// the next fault).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub settle: Duration,
    pub calm: Duration,
}

impl Pace {
    /// Each step as soon as the one before is done.
    pub const BRISK: Pace = Pace {
        settle: Duration::ZERO,
        calm: Duration::ZERO,
    };
}

/// [`kill_and_failback`] with pauses between its steps (`hal-sim import` expects a grant
/// or the active server only well away from a change of roles or a fault).
pub fn kill_and_failback_paced(cluster: &mut Cluster, pace: Pace) -> [Holder; 3] {
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    sleep(pace.settle);
    let first = Holder::start_as(cluster, "cad", "alice");
    let second = Holder::start_as(cluster, "cad", "bob");
    // A journal's writer hands lines to the OS as soon as it takes them from its buffer; a
    // kill -9 loses what it had not taken yet (the last moments). Give it that moment, so
    // that the second grant's answer is in #1's journal.
    sleep(pace.calm.max(Duration::from_millis(500)));
    cluster.kill9(1);
    cluster.wait_active(2, Duration::from_secs(10));
    sleep(pace.settle);
    let third = Holder::start_as(cluster, "cad", "carol");
    assert_eq!(third.grant["server"], 2, "{}", third.grant);
    sleep(pace.calm);
    cluster.start(1);
    cluster.wait_active(1, Duration::from_secs(15));
    sleep(pace.settle);
    [first, second, third]
}

/// A `checkout --hold` process holding a seat, with its grant read from stdout.
pub struct Holder {
    pub child: Child,
    pub grant: Value,
    /// The rest of its standard output (kept open: it prints a line when it ends).
    pub stdout: BufReader<ChildStdout>,
}

impl Holder {
    /// Starts `hal-net checkout FEATURE --hold 10m --json` and waits for its grant line.
    pub fn start(cluster: &Cluster, feature: &str) -> Holder {
        Holder::spawn(cluster, feature, &[])
    }

    /// The same, as user `user` (the client library takes it from `USER`).
    pub fn start_as(cluster: &Cluster, feature: &str, user: &str) -> Holder {
        Holder::spawn(cluster, feature, &[("USER", user)])
    }

    fn spawn(cluster: &Cluster, feature: &str, env: &[(&str, &str)]) -> Holder {
        let mut child = Command::new(hal_net())
            .envs(env.iter().copied())
            .args([
                "checkout",
                feature,
                "--hold",
                "10m",
                "--json",
                "--license-path",
            ])
            .arg(cluster.path())
            .env("HAL_TRIAD_CA", cluster.ca())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let grant: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("holder printed {line:?} ({e})\n{}", cluster.logs()));
        Holder {
            child,
            grant,
            stdout,
        }
    }

    pub fn handle(&self) -> String {
        self.grant["handle"].as_str().unwrap().to_string()
    }

    /// Whether it still runs (it exits with an error when it loses its seat).
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM: it checks its seat in and exits 0.
    pub fn release(mut self) {
        terminate(&self.child);
        let status = wait_exit(&mut self.child, Duration::from_secs(15));
        assert!(status.success(), "holder exit: {status:?}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON line a verb printed.
pub fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// Waits up to `limit` for an application started with [`Cluster::start_app`] to end;
/// what it printed besides.
pub fn finish_app(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < limit,
            "the application did not finish in {limit:?}"
        );
        sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
