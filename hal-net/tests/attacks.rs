//! Three real servers on 127.0.0.1 attacked as someone on their LAN would: a program that
//! speaks the wire protocol, with or without certificates, from one address or many.
//! Each attack is refused (or bounded) while the triad goes on serving.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hal_core::ServerId;
use hal_core::protocol::{LogIndex, PeerBody, PeerMessage, Term};
use hal_net::wire::{Hello, Identity, Message};
use support::cluster::{Cluster, hal_net};
use support::wire::{connector, hello, link, tcp_from};
use tokio::io::AsyncWriteExt;

/// A started triad with #1 active.
fn triad() -> Cluster {
    let mut cluster = Cluster::new("");
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(15));
    cluster
}

/// A checkout held for no time, as a user would run it; panics unless granted.
fn checkout_works(cluster: &Cluster) {
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert!(
        out.status.success(),
        "the triad stopped serving: {out:?}\n{}",
        cluster.logs()
    );
}

fn peer_hello(from: ServerId, identity: Identity) -> Hello {
    Hello::Peer {
        from,
        to: ServerId::PRIMARY,
        identity,
    }
}

/// The identity the cluster's servers share, as a peer would send it.
fn identity(cluster: &Cluster) -> Identity {
    let loaded = hal_net::license_file::load(&cluster.dir.path().join("cad.lic")).unwrap();
    let key = hal_net::keys::read_verifying_key(&cluster.dir.path().join("vendor.pub")).unwrap();
    Identity::new(cluster.triad(), &loaded.license, Some(&key))
}

fn tls_file(cluster: &Cluster, name: &str) -> PathBuf {
    cluster.dir.path().join("tls").join(name)
}

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Another triad's CA and certificates for the same addresses, made as an administrator
/// would (`hal-net tls init`).
fn another_ca(cluster: &Cluster) -> tempfile::TempDir {
    let other = tempfile::tempdir().unwrap();
    let made = Command::new(hal_net())
        .args([
            "tls",
            "init",
            "--servers",
            &cluster.triad().join(","),
            "--dir",
        ])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    other
}

#[test]
fn peers_that_cannot_prove_their_slot_are_refused_and_learn_nothing() {
    let cluster = triad();
    let port = cluster.ports[0];
    let other = another_ca(&cluster);
    let rt = support::wire::runtime();
    rt.block_on(async {
        let ca = cluster.ca();
        // No certificate at all, with the real triad's identity (which is public).
        let mut bare = link(&connector(&ca, None), LOCAL, port).await.unwrap();
        let answer = hello(
            &mut bare,
            peer_hello(ServerId::SECONDARY, identity(&cluster)),
        )
        .await;
        let Some(Message::Refused { reason }) = answer else {
            panic!("a peer without a certificate was not refused: {answer:?}");
        };
        assert!(
            reason.contains("not authenticated as server #2"),
            "{reason}"
        );
        // A refusal tells nothing of the configuration: no addresses, no license.
        for secret in ["127.0.0.1", "@", "cad", "license", "triad list"] {
            assert!(
                !reason.contains(secret),
                "the refusal leaks {secret:?}: {reason}"
            );
        }
        // A slot-3 certificate claiming slot 2.
        let three = (
            tls_file(&cluster, "server3.pem"),
            tls_file(&cluster, "server3.key"),
        );
        let tls = connector(&ca, Some((&three.0, &three.1)));
        let mut link3 = link(&tls, LOCAL, port).await.unwrap();
        let answer = hello(
            &mut link3,
            peer_hello(ServerId::SECONDARY, identity(&cluster)),
        )
        .await;
        let Some(Message::Refused { reason }) = answer else {
            panic!("slot 3 posing as slot 2 was not refused: {answer:?}");
        };
        assert!(
            reason.contains("not authenticated as server #2"),
            "{reason}"
        );
        // A certificate for slot 2 from another CA: the handshake itself fails.
        let foreign = (
            other.path().join("server2.pem"),
            other.path().join("server2.key"),
        );
        let tls = connector(&ca, Some((&foreign.0, &foreign.1)));
        match link(&tls, LOCAL, port).await {
            Err(_) => {}
            Ok(mut foreign_link) => {
                let answer = hello(
                    &mut foreign_link,
                    peer_hello(ServerId::SECONDARY, identity(&cluster)),
                )
                .await;
                assert!(
                    !matches!(answer, Some(Message::Welcome { .. })),
                    "a certificate of another CA was welcomed: {answer:?}"
                );
            }
        }
    });
    checkout_works(&cluster);
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("refused a peer link from 127.0.0.1"), "{log}");
    assert!(log.contains("proved the certificate of server #3"), "{log}");
}

#[test]
fn a_client_given_the_wrong_ca_refuses_the_server() {
    let cluster = triad();
    let other = another_ca(&cluster);
    let wrong = other.path().join("ca.pem");
    let out = Command::new(hal_net())
        .args([
            "checkout",
            "cad",
            "--hold",
            "0s",
            "--license-path",
            &cluster.path(),
        ])
        .arg("--ca")
        .arg(&wrong)
        .env("HAL_HOME", cluster.dir.path().join("client-home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It names the server it could not trust (the last one it tried).
    let named = cluster
        .ports
        .iter()
        .any(|p| stderr.contains(&format!("127.0.0.1:{p}")));
    assert!(named, "{stderr}");
    assert!(
        stderr.contains("no license server could be reached"),
        "{stderr}"
    );
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    // A client told to speak plaintext to a TLS triad is told why nothing answers.
    let out = Command::new(hal_net())
        .args([
            "status",
            "--json",
            "--insecure",
            "--license-path",
            &cluster.path(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = status["servers"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("one side runs TLS and the other plaintext"),
        "{status}"
    );
    // A server whose certificate is for another slot than its place in the path.
    let swapped = format!(
        "{}@127.0.0.1;{}@127.0.0.1;{}@127.0.0.1",
        cluster.ports[1], cluster.ports[0], cluster.ports[2]
    );
    let out = Command::new(hal_net())
        .args(["status", "--json", "--license-path", &swapped])
        .env("HAL_TRIAD_CA", cluster.ca())
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = status["servers"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("is server #2 by its certificate, but server #1 is expected there"),
        "{status}"
    );
}

#[test]
fn an_authenticated_peer_sending_the_highest_term_neither_wraps_nor_stops_the_triad() {
    let mut cluster = triad();
    // The attacker holds #3's certificate; the real #3 is down.
    cluster.kill9(3);
    let rt = support::wire::runtime();
    rt.block_on(async {
        let three = (
            tls_file(&cluster, "server3.pem"),
            tls_file(&cluster, "server3.key"),
        );
        let tls = connector(&cluster.ca(), Some((&three.0, &three.1)));
        let mut liar = link(&tls, LOCAL, cluster.ports[0]).await.unwrap();
        let answer = hello(
            &mut liar,
            peer_hello(ServerId::TIEBREAKER, identity(&cluster)),
        )
        .await;
        assert!(
            matches!(answer, Some(Message::Welcome { .. })),
            "{answer:?}"
        );
        // Three seconds of messages with the highest terms and indices.
        let until = Instant::now() + Duration::from_secs(3);
        let mut sent = 0u64;
        while Instant::now() < until {
            let body = match sent % 3 {
                0 => PeerBody::PreVote {
                    last_index: LogIndex(u64::MAX),
                    last_term: Term(u64::MAX),
                },
                1 => PeerBody::RequestVote {
                    last_index: LogIndex(u64::MAX),
                    last_term: Term(u64::MAX),
                    transfer: true,
                },
                _ => PeerBody::Append {
                    prev_index: LogIndex(u64::MAX - 1),
                    prev_term: Term(u64::MAX),
                    entries: Vec::new(),
                    commit: LogIndex(u64::MAX),
                    round: u64::MAX,
                },
            };
            let message = PeerMessage {
                from: ServerId::TIEBREAKER,
                to: ServerId::PRIMARY,
                term: Term(u64::MAX - (sent % 2)),
                body,
            };
            liar.feed(Message::Peer(message)).await.unwrap();
            sent += 1;
            if sent.is_multiple_of(64) {
                liar.flush().await.unwrap();
            }
        }
        liar.flush().await.unwrap();
        assert!(sent > 1000, "only {sent} messages in 3 s");
    });
    // #3 comes back; the triad serves, at a term nowhere near the limit.
    cluster.start(3);
    checkout_works(&cluster);
    // The restarted #3 may take a moment to answer status on a loaded machine;
    // every server's term is read once all three answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    let terms = loop {
        let status = cluster.status();
        let terms: Option<Vec<u64>> = status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|server| server["term"].as_u64())
            .collect();
        match terms {
            Some(terms) if terms.len() == 3 => break terms,
            _ => assert!(
                Instant::now() < deadline,
                "not every server answered status within 20 s: {status}\n{}",
                cluster.logs()
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(terms.iter().all(|&term| term < 100), "terms {terms:?}");
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("refused a peer message"), "{log}");
    assert!(log.contains("is implausible"), "{log}");
    // Throttled: not one line per message.
    let lines = log.matches("refused a peer message").count();
    assert!(lines <= 10, "{lines} refusal lines");
}

/// Raises this process's limit of open files to its hard limit.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

#[test]
fn idle_connections_from_one_address_do_not_stop_checkouts_from_another() {
    raise_open_files();
    let cluster = triad();
    let rt = support::wire::runtime();
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let held = rt.block_on(async {
        let tls = connector(&cluster.ca(), None);
        let mut held = Vec::new();
        let mut welcomed = 0;
        for _ in 0..1024 {
            let Ok(mut idle) = link(&tls, attacker, cluster.ports[0]).await else {
                continue;
            };
            if let Some(Message::Welcome { .. }) = hello(&mut idle, Hello::Client).await {
                welcomed += 1;
            }
            held.push(idle);
        }
        assert_eq!(
            welcomed,
            hal_net::config::CLIENT_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT,
            "one address gets its own limit of connections, no more"
        );
        held
    });
    // From 127.0.0.1, a checkout goes through while the attacker holds its connections.
    checkout_works(&cluster);
    drop(held);
}

#[test]
fn silent_handshakes_from_a_clients_own_address_do_not_stop_its_checkout() {
    let cluster = triad();
    let rt = support::wire::runtime();
    let silent = rt.block_on(async {
        let mut silent = Vec::new();
        for _ in 0..40 {
            silent.push(tcp_from(LOCAL, cluster.ports[0]).await.unwrap());
        }
        silent
    });
    let started = Instant::now();
    checkout_works(&cluster);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

/// Resident memory of process `pid`, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// The most resident memory a server may reach under the memory attacks below.
const RSS_MIB_MAX: u64 = 150;

#[test]
fn partial_frames_and_huge_names_leave_memory_bounded() {
    raise_open_files();
    let cluster = triad();
    let pid = cluster.children[0].as_ref().unwrap().id();
    let before = rss_mib(pid);
    let rt = support::wire::runtime();
    let held = rt.block_on(async {
        let tls = connector(&cluster.ca(), None);
        let mut held = Vec::new();
        // 600 connections from ten addresses, each holding a partial frame as large as
        // a client may send (a 1 MiB frame is refused outright).
        for n in 0..600u32 {
            let source = Ipv4Addr::new(127, 0, 1, u8::try_from(n % 10).unwrap() + 1);
            let Ok(mut link) = link(&tls, source, cluster.ports[0]).await else {
                continue;
            };
            if hello(&mut link, Hello::Client).await.is_none() {
                continue;
            }
            let len = u32::try_from(hal_net::wire::FRAME_BYTES_MAX_CLIENT).unwrap() - 1;
            let mut partial = len.to_be_bytes().to_vec();
            partial.resize(usize::try_from(len).unwrap(), 7);
            let stream = link.get_mut();
            let _ = stream.write_all(&partial).await;
            let _ = stream.flush().await;
            held.push(link);
        }
        held
    });
    let after_frames = rss_mib(pid);
    // 300 sessions whose user names are 256 KiB (the frame is refused unread), and 300
    // whose names are just over the limit (denied as invalid): nothing of them is kept.
    rt.block_on(async {
        let tls = connector(&cluster.ca(), None);
        for n in 0..600u64 {
            let mut link = link(&tls, LOCAL, cluster.ports[0]).await.unwrap();
            assert!(matches!(
                hello(&mut link, Hello::Client).await,
                Some(Message::Welcome { .. })
            ));
            let user = if n % 2 == 0 {
                256 * 1024
            } else {
                hal_core::names::NAME_BYTES_MAX + 1
            };
            let request = hal_core::protocol::ClientRequest {
                client: hal_core::protocol::ClientId(0xa77a_c4e2_0000 + n),
                seq: hal_core::protocol::RequestSeq(1),
                op: hal_core::protocol::Op::Checkout {
                    feature: "cad".into(),
                    user: "u".repeat(user).into(),
                    host: "h".into(),
                },
            };
            let _ = link.send(Message::Request(request)).await;
            let answer = tokio::time::timeout(Duration::from_secs(5), link.next()).await;
            match answer {
                Ok(Some(Ok(Message::Reply(reply)))) => {
                    let denied = format!("{:?}", reply.result);
                    assert!(denied.contains("InvalidRequest"), "{denied}");
                }
                Ok(None | Some(Err(_))) => assert_eq!(n % 2, 0, "a short name closed the link"),
                other => panic!("{other:?}"),
            }
        }
    });
    let after_names = rss_mib(pid);
    drop(held);
    checkout_works(&cluster);
    eprintln!(
        "#1 RSS: {before} MiB at start, {after_frames} with 600 partial frames, {after_names} after 300 huge names"
    );
    assert!(after_frames <= RSS_MIB_MAX && after_names <= RSS_MIB_MAX);
    let log_bytes = std::fs::metadata(cluster.data(1).join("log"))
        .unwrap()
        .len();
    assert!(log_bytes <= 2 << 20, "the log grew to {log_bytes} bytes");
}

#[test]
fn names_with_control_characters_are_denied_and_status_shows_no_escapes() {
    let cluster = triad();
    let out = Command::new(hal_net())
        .args([
            "checkout",
            "cad",
            "--hold",
            "0s",
            "--json",
            "--license-path",
            &cluster.path(),
        ])
        .env("HAL_TRIAD_CA", cluster.ca())
        .env("USER", "mallory\u{1b}[2J\u{1b}[H")
        .env("HAL_HOME", cluster.dir.path().join("client-home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["reason"], "invalid_request", "{answer}");
    checkout_works(&cluster);
    let text = cluster.verb(&["status"]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        !text.stdout.contains(&0x1b),
        "{:?}",
        String::from_utf8_lossy(&text.stdout)
    );
}
