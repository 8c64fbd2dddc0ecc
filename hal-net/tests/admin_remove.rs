//! `hal-net remove` against a real triad, as an administrator uses it: the admin
//! certificate is required (without it, or with a server's, nothing is removed); every
//! seat of a user is freed at once and the holders are told their seats were removed by
//! an administrator; the journals say who removed what; after a failover #2 removes a
//! seat by its handle; and an administrative request on a license client's connection,
//! or on an operator's connection without the admin certificate, is refused.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::Output;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hal_core::protocol::{ClientId, ClientRequest, Op, RemoveTarget, RequestSeq};
use hal_net::wire::{Hello, Message};
use support::cluster::{Cluster, Holder, wait_exit};
use support::wire;

/// A 4 s lease and 1 s heartbeats: a holder hears of a removal within about a second.
const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

/// `hal-net remove ARGS` with the admin certificate.
fn remove(cluster: &Cluster, args: &[&str]) -> Output {
    let tls = cluster.dir.path().join("tls");
    let mut all: Vec<String> = vec!["remove".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.push("--cert".into());
    all.push(tls.join("admin.pem").display().to_string());
    all.push("--key".into());
    all.push(tls.join("admin.key").display().to_string());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    cluster.verb(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The holder's exit and what it printed on stderr, once it has exited (within `limit`).
fn exited(holder: &mut Holder, limit: Duration) -> (Option<i32>, String) {
    let status = wait_exit(&mut holder.child, limit);
    // A holder prints with --json: its error is a JSON line on standard output.
    let mut err = String::new();
    holder.stdout.read_to_string(&mut err).unwrap();
    if let Some(stderr) = holder.child.stderr.as_mut() {
        stderr.read_to_string(&mut err).unwrap();
    }
    (status.code(), err)
}

#[test]
fn an_administrator_removes_a_users_seats_and_the_holders_are_told() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let wall_ms = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        u64::try_from(since.unwrap().as_millis()).unwrap()
    };
    let before_ms = wall_ms();
    let mut ann = [
        Holder::start_as(&cluster, "cad", "ann"),
        Holder::start_as(&cluster, "cad", "ann"),
    ];
    let bob = Holder::start_as(&cluster, "cad", "bob");
    assert_eq!(cluster.seats("cad").0, 3);
    // Status shows when each seat was checked out (the deciding server's clock).
    let status = cluster.status();
    let holders = status["features"][0]["holders"].as_array().unwrap().clone();
    assert_eq!(holders.len(), 3, "{status}");
    for holder in &holders {
        let granted = holder["granted_ms"].as_u64().unwrap();
        assert!((before_ms..=wall_ms()).contains(&granted), "{holder}");
        assert!(
            holder["granted"].as_str().unwrap().ends_with('Z'),
            "{holder}"
        );
    }
    let shown = String::from_utf8(cluster.verb(&["status"]).stdout).unwrap();
    assert_eq!(shown.matches("checked out 20").count(), 3, "{shown}");

    // Without the admin certificate: refused before anything is sent.
    let out = cluster.verb(&["remove", "--user", "ann"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("needs the admin certificate"),
        "{out:?}"
    );
    // With a server's certificate: the tool says it is not the admin's.
    let tls = cluster.dir.path().join("tls");
    let (pem, key) = (tls.join("server1.pem"), tls.join("server1.key"));
    let out = cluster.verb(&[
        "remove",
        "--user",
        "ann",
        "--cert",
        pem.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("not the admin certificate"),
        "{out:?}"
    );
    assert_eq!(cluster.seats("cad").0, 3);

    // With it: both of ann's seats go at once, bob's stays.
    let asked = Instant::now();
    let out = remove(&cluster, &["--user", "ann", "--feature", "cad", "--json"]);
    assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut removed: Vec<String> = answer["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    removed.sort();
    let mut anns: Vec<String> = ann.iter().map(Holder::handle).collect();
    anns.sort();
    assert_eq!(removed, anns);
    assert_eq!(answer["server"], 1);
    assert!(answer["by"].as_str().unwrap().contains('@'), "{answer}");
    assert_eq!(cluster.seats("cad"), (1, vec![bob.handle()]));
    // Each of ann's holders is told at its next heartbeat, as a removal, not a loss.
    for holder in &mut ann {
        let (code, err) = exited(holder, Duration::from_secs(5));
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("removed by an administrator"), "{err}");
    }
    assert!(asked.elapsed() < Duration::from_secs(5));
    // The journals of all three servers say who removed which seat.
    for id in 1..=3 {
        let journal = cluster.journal_text(id);
        for handle in &anns {
            assert!(
                journal.lines().any(|l| l.contains("\"change\":\"removed\"")
                    && l.contains(&format!("\"handle\":\"{handle}\""))
                    && l.contains("\"removed_by\"")),
                "server {id}'s journal lacks the removal of {handle}"
            );
        }
    }
    // And their logs, with the holder and who asked.
    let log = std::fs::read_to_string(cluster.log(2)).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("seat removed by an administrator"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("ann@") && line.contains("by="), "{line}");
    // Nothing of ann's is left: exit 1, said so.
    let out = remove(&cluster, &["--user", "ann"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("nothing to remove"), "{out:?}");

    // After a failover, #2 removes bob's seat by its handle (the tool finds it).
    cluster.kill9(1);
    cluster.wait_active(2, Duration::from_secs(15));
    let out = remove(&cluster, &[&bob.handle()]);
    assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    assert!(text(&out.stdout).contains("on #2"), "{out:?}");
    assert_eq!(cluster.seats("cad").0, 0);
}

/// What someone on the LAN gets for an administrative request without the admin
/// certificate: on a license client's connection the server closes it; on an operator's
/// connection it refuses, saying the admin certificate is needed. The seat stays.
#[test]
fn an_administrative_request_without_the_admin_certificate_is_refused() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let holder = Holder::start_as(&cluster, "cad", "ann");
    let request = || {
        Message::Request(ClientRequest {
            client: ClientId(77),
            seq: RequestSeq(1),
            op: Op::Remove {
                target: RemoveTarget::Holder {
                    user: "ann".into(),
                    host: None,
                    feature: None,
                },
                by: "mallory@lan".into(),
            },
        })
    };
    let tls = wire::connector(&cluster.ca(), None);
    let port = cluster.ports[0];
    let answers = wire::runtime().block_on(async {
        let mut answers = Vec::new();
        for hello in [Hello::Client, Hello::Admin] {
            let mut link = wire::link(&tls, Ipv4Addr::LOCALHOST, port).await.unwrap();
            let welcome = wire::hello(&mut link, hello).await;
            assert!(
                matches!(welcome, Some(Message::Welcome { .. })),
                "{welcome:?}"
            );
            link.send(request()).await.unwrap();
            let answer = tokio::time::timeout(Duration::from_secs(5), link.next()).await;
            answers.push(format!("{answer:?}"));
        }
        answers
    });
    // The client connection closes without an answer; the operator's is refused.
    assert!(
        answers[0].contains("Ok(None)") || answers[0].contains("Err"),
        "{}",
        answers[0]
    );
    assert!(
        answers[1].contains("needs the admin certificate"),
        "{}",
        answers[1]
    );
    assert_eq!(cluster.seats("cad"), (1, vec![holder.handle()]));
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("administrative request"), "{log}");
    holder.release();
}
