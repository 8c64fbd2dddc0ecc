//! Automatic server discovery against real `hal-net serve` processes over TLS.
//!
//! The three servers listen on one port at 127.0.0.1, 127.0.0.2 and 127.0.0.3 (all on
//! the loopback interface), and each answers discovery on UDP `0.0.0.0:port`. Linux's
//! local routing table has `broadcast 127.255.255.255 dev lo`, so one request sent there
//! reaches all three, as a broadcast on a LAN would; multicast is joined and sent on
//! 127.0.0.1. If loopback cannot carry either here, the tests fail, saying so; they never
//! skip.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hal_net::client::{Client, Error, Options};
use hal_net::discovery::codec::{Facts, Role};
use hal_net::discovery::{Search, search_with};
use serde_json::Value;
use support::cluster::{Cluster, free_port_everywhere, hal_net, json};

const BROADCAST: &str = "127.255.255.255";
const GROUP: &str = "239.255.62.62";

/// Every server answers on the multicast group too.
fn with_group() -> [String; 3] {
    std::array::from_fn(|_| format!("discovery_multicast = \"{GROUP}\""))
}

fn started(extra: [String; 3]) -> Cluster {
    let mut cluster = Cluster::one_port("", extra);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    cluster
}

/// A `hal-net` command with none of the client's settings from this process's
/// environment.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(hal_net());
    command.args(args);
    for var in [
        "HAL_LICENSE_PATH",
        "HAL_TRIAD_CA",
        "HAL_DISCOVERY_PORT",
        "HAL_DISCOVERY_GROUP",
        "HAL_DISCOVERY_TO",
    ] {
        command.env_remove(var);
    }
    command
}

/// `hal-net discover --json` to the loopback broadcast address of `port`.
fn discover(port: u16) -> (Output, Value) {
    let port = port.to_string();
    let out = command(&[
        "discover",
        "--port",
        &port,
        "--to",
        BROADCAST,
        "--timeout",
        "500ms",
        "--json",
    ])
    .output()
    .unwrap();
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("discover printed no JSON ({e}): {out:?}"));
    (out, value)
}

/// (slot, role, leader) of each server that answered, by slot.
fn roles(found: &Value) -> Vec<(u64, String, Option<u64>)> {
    let mut roles: Vec<(u64, String, Option<u64>)> = found["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["slot"].as_u64().unwrap(),
                s["role"].as_str().unwrap().to_string(),
                s["leader"].as_u64(),
            )
        })
        .collect();
    roles.sort();
    roles
}

/// Runs `discover` until its roles are `want` (a standby learns its leader within a
/// heartbeat, and a server's role is read at most every 250 ms); the last answer.
fn discover_until(cluster: &Cluster, want: &[(u64, &str, Option<u64>)]) -> Value {
    let want: Vec<(u64, String, Option<u64>)> = want
        .iter()
        .map(|(slot, role, leader)| (*slot, role.to_string(), *leader))
        .collect();
    let start = Instant::now();
    loop {
        let (out, found) = discover(cluster.ports[0]);
        if roles(&found) == want {
            assert!(out.status.success(), "{out:?}");
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "discover found {:?}, not {want:?}: {out:?}\n{}",
            roles(&found),
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn search(cluster: &Cluster) -> Search {
    Search {
        port: cluster.ports[0],
        to: vec![SocketAddr::new(BROADCAST.parse().unwrap(), 0)],
        ..Search::default()
    }
}

#[test]
fn discover_lists_every_server_with_its_slot_role_and_the_triad() {
    let cluster = started(with_group());
    let found = discover_until(
        &cluster,
        &[
            (1, "active", Some(1)),
            (2, "standby", Some(1)),
            (3, "standby", Some(1)),
        ],
    );
    assert_eq!(found["license_path"], cluster.path().as_str());
    assert_eq!(found["triads"], 1);
    for server in found["servers"].as_array().unwrap() {
        let triad: Vec<String> = server["triad"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert_eq!(triad, cluster.triad());
        assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    }
    // The table says the same for a person.
    let port = cluster.ports[0].to_string();
    let out = command(&["discover", "--port", &port, "--to", BROADCAST])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("FROM"), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.contains(&format!("license path: {}", cluster.path())),
        "{text}"
    );
}

#[test]
fn the_servers_answer_on_their_multicast_group() {
    let cluster = started(with_group());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Only to the group: no broadcast at all.
    let group: Ipv4Addr = GROUP.parse().unwrap();
    let found = runtime.block_on(async {
        let socket = hal_net::discovery::socket::client_socket(Some(Ipv4Addr::LOCALHOST))
            .expect("a multicast socket on 127.0.0.1");
        let to = SocketAddr::from((group, cluster.ports[0]));
        search_with(&socket, &[to], 42, Duration::from_millis(500)).await
    });
    let found = found.unwrap();
    let mut slots: Vec<u8> = found
        .answers
        .iter()
        .filter_map(|d| d.answer.slot.map(|s| s.get()))
        .collect();
    slots.sort_unstable();
    assert_eq!(
        slots,
        [1, 2, 3],
        "multicast to {GROUP} on loopback: {found:?}\n{}",
        cluster.logs()
    );
    assert_eq!(found.license_path().unwrap().to_string(), cluster.path());
}

#[test]
fn a_client_given_no_license_path_discovers_the_triad_and_checks_out() {
    let cluster = started(Default::default());
    // The library.
    let options = Options::discover(&search(&cluster)).unwrap();
    assert_eq!(options.license_path(), cluster.path());
    let client = Client::new(options.ca(cluster.ca())).unwrap();
    let seat = client.checkout("cad").unwrap();
    seat.checkin().unwrap();
    // The command line, with the search in the environment.
    let out = command(&["checkout", "cad", "--hold", "1s", "--json"])
        .env("HAL_TRIAD_CA", cluster.ca())
        .env("HAL_DISCOVERY_PORT", cluster.ports[0].to_string())
        .env("HAL_DISCOVERY_TO", BROADCAST)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    assert_eq!(json(&out)["feature"], "cad", "{out:?}");
    // And status.
    let out = command(&["status", "--json"])
        .env("HAL_TRIAD_CA", cluster.ca())
        .env("HAL_DISCOVERY_PORT", cluster.ports[0].to_string())
        .env("HAL_DISCOVERY_TO", BROADCAST)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(json(&out)["active"], 1, "{out:?}");
}

#[test]
fn a_silent_server_leaves_the_triad_found_by_the_others() {
    // #2 runs with discovery off; #3 will be stopped (SIGSTOP: up, but silent).
    let extra = [String::new(), "discovery = false".into(), String::new()];
    let mut cluster = started(extra);
    discover_until(&cluster, &[(1, "active", Some(1)), (3, "standby", Some(1))]);
    let three = cluster.children[2].as_ref().unwrap().id();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(three).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let found = discover_until(&cluster, &[(1, "active", Some(1))]);
    assert_eq!(found["license_path"], cluster.path().as_str());
    // The triad found works: #1 and #2 are a majority.
    let options = Options::discover(&search(&cluster)).unwrap();
    let client = Client::new(options.ca(cluster.ca())).unwrap();
    client.checkout("cad").unwrap().checkin().unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert!(cluster.running(3));
}

#[test]
fn nothing_answering_is_a_clear_error_and_exit_status_3() {
    let port = free_port_everywhere(&["127.0.0.1"]).to_string();
    let out = command(&[
        "discover",
        "--port",
        &port,
        "--to",
        BROADCAST,
        "--timeout",
        "300ms",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no license server answered discovery on {BROADCAST}:{port} within 300 ms"
        )),
        "{stderr}"
    );
    let search = Search {
        port: port.parse().unwrap(),
        to: vec![SocketAddr::new(BROADCAST.parse().unwrap(), 0)],
        wait: Duration::from_millis(300),
        ..Search::default()
    };
    match Options::discover(&search) {
        Err(Error::Config(why)) => assert!(why.contains("no license server answered"), "{why}"),
        other => panic!("discovery with nothing answering gave {other:?}"),
    }
    // Bad arguments are refused by name, never a panic.
    let bad = command(&["discover", "--group", "10.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64), "{bad:?}");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a multicast address"));
    let bad = command(&["discover", "--port", "0"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(64), "{bad:?}");
}

/// A forger on the LAN: answers every request on UDP `0.0.0.0:port` (shared, as the
/// servers' sockets are) with `facts`, until dropped.
struct Forger {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forger {
    fn start(port: u16, facts: Facts) -> Forger {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        socket.set_reuse_address(true).unwrap();
        socket
            .bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())
            .unwrap();
        let socket: UdpSocket = socket.into();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buffer)
                    && let Ok(answer) = hal_net::discovery::answer(&buffer[..n], &facts)
                {
                    socket.send_to(&answer, from).unwrap();
                }
            }
        });
        Forger {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Forger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Facts naming `cluster`'s triad, as its server #1.
fn facts_of(cluster: &Cluster) -> Facts {
    Facts {
        triad: cluster.triad().iter().map(|t| t.parse().unwrap()).collect(),
        slot: hal_net::client::ServerId::new(1),
        role: Role::Active,
        leader: hal_net::client::ServerId::new(1),
        version: "0.1.0".into(),
    }
}

#[test]
fn a_forged_answer_gets_a_client_no_further_than_a_refused_tls_handshake() {
    // The real triad, whose CA the client trusts.
    let ours = started(Default::default());
    // Another triad with a CA of its own: what a forger points clients at.
    let mut theirs = Cluster::new("");
    theirs.start_all();
    theirs.wait_active(1, Duration::from_secs(10));

    // Alone on a port, the forger's answer is taken as a license path; the TLS
    // handshake then refuses every server of it, for none has our CA's certificate.
    let lonely = free_port_everywhere(&["127.0.0.1"]);
    let forger = Forger::start(lonely, facts_of(&theirs));
    let alone = Search {
        port: lonely,
        ..search(&ours)
    };
    let options = Options::discover(&alone).unwrap();
    assert_eq!(options.license_path(), theirs.path());
    let client = Client::new(options.ca(ours.ca())).unwrap();
    match client.checkout("cad") {
        Err(Error::Unreachable(why)) => {
            eprintln!("refused as it should be: {why}");
            assert!(why.contains("certificate"), "{why}");
        }
        other => panic!("a forged triad was served: {other:?}"),
    }
    drop(forger);

    // Beside the real servers, the forger makes two triads, and the client refuses to
    // choose, naming both.
    let _forger = Forger::start(ours.ports[0], facts_of(&theirs));
    match Options::discover(&search(&ours)) {
        Err(Error::Config(why)) => {
            assert!(why.contains("2 different triads"), "{why}");
            assert!(
                why.contains(&ours.path()) && why.contains(&theirs.path()),
                "{why}"
            );
        }
        other => panic!("a client chose between two triads: {other:?}"),
    }
}

#[test]
fn a_flood_gets_a_trickle_and_junk_or_short_requests_get_nothing() {
    use hal_net::discovery::codec::{HEADER_BYTES, Request, parse_answer};
    use hal_net::discovery::limit::ANSWERS_PER_SOURCE_MAX;

    let cluster = started(Default::default());
    let to = SocketAddr::new(BROADCAST.parse().unwrap(), cluster.ports[0]);
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_broadcast(true).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let answers = |nonce: u64| {
        let mut slots = Vec::new();
        let mut buffer = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            if let Ok(answer) = parse_answer(&buffer[..n], nonce, from) {
                slots.push(answer.slot.unwrap().get());
            }
        }
        slots
    };
    // Junk, a request cut to its header (a forger's cheap request that would be
    // amplified), a request shorter than an answer, and an oversized datagram: no
    // answer at all.
    let request = Request { nonce: 1 }.encode();
    socket.send_to(b"\x00junk", to).unwrap();
    socket.send_to(&request[..HEADER_BYTES], to).unwrap();
    socket.send_to(&request[..40], to).unwrap();
    socket.send_to(&[0xff; 1500], to).unwrap();
    assert_eq!(answers(1), Vec::<u8>::new());
    // A flood of 50 requests from one address: a few answers from each server (at most
    // ANSWERS_PER_SOURCE_MAX in each second; the flood may straddle two).
    let request = Request { nonce: 2 }.encode();
    for _ in 0..50 {
        socket.send_to(&request, to).unwrap();
    }
    let slots = answers(2);
    for slot in 1..=3 {
        let count = slots.iter().filter(|s| **s == slot).count();
        let most = 2 * ANSWERS_PER_SOURCE_MAX as usize;
        assert!(
            (1..=most).contains(&count),
            "#{slot} answered {count} of 50 requests: {slots:?}"
        );
    }
    // The servers still serve, and answer discovery again in the next second (in this
    // one, 127.0.0.1 has had its answers).
    std::thread::sleep(Duration::from_millis(1100));
    let options = Options::discover(&search(&cluster)).unwrap();
    assert_eq!(options.license_path(), cluster.path());
    let client = Client::new(options.ca(cluster.ca())).unwrap();
    client.checkout("cad").unwrap().checkin().unwrap();
}

#[test]
fn a_discovery_port_taken_by_another_program_leaves_the_servers_serving() {
    let mut cluster = Cluster::one_port("", Default::default());
    // Another program holds UDP 0.0.0.0:port without sharing it.
    let squatter = UdpSocket::bind(("0.0.0.0", cluster.ports[0])).unwrap();
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let logs = cluster.logs();
    assert_eq!(
        logs.matches("discovery is off: cannot bind UDP 0.0.0.0")
            .count(),
        3,
        "{logs}"
    );
    let client = Client::new(Options::new(&cluster.path()).unwrap().ca(cluster.ca())).unwrap();
    client.checkout("cad").unwrap().checkin().unwrap();
    drop(squatter);
    let (out, found) = discover(cluster.ports[0]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(found["servers"].as_array().unwrap().len(), 0);
}
