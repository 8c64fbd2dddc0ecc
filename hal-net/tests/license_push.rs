//! Changing a running triad's license, as an administrator does it: `hal-net license push`
//! with the admin certificate (without it, refused), every server switching at once with
//! no restart and no failover, held seats kept through a lowered COUNT, a license that
//! does not hold refused with its reason, the license file rewritten so that a restart
//! serves the new license; SIGHUP on a standby rereading the file and pushing it (and on a
//! single server, which pushes to itself); and a server that cannot serve the new license
//! (its HostID) saying so.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hal_core::protocol::{ClientId, ClientRequest, Op, RequestSeq};
use hal_net::wire::{Hello, Message};
use nix::sys::signal::Signal;
use serde_json::Value;
use support::cluster::{Cluster, Holder, LICENSE, json, write_license};
use support::wire;

const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

/// `hal-net license push FILE --json`, with the admin certificate if `admin`.
fn push(cluster: &Cluster, file: &Path, admin: bool) -> Output {
    let tls = cluster.dir.path().join("tls");
    let file = file.display().to_string();
    let mut args: Vec<String> = vec!["license".into(), "push".into(), file, "--json".into()];
    if admin {
        args.push("--cert".into());
        args.push(tls.join("admin.pem").display().to_string());
        args.push("--key".into());
        args.push(tls.join("admin.key").display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cluster.verb(&args)
}

/// The cluster's license with `count` seats of `cad` and `extra` lines, signed, at
/// `name` in the cluster's directory.
fn license(cluster: &Cluster, name: &str, count: u32, extra: &str) -> PathBuf {
    let text = LICENSE.replace("COUNT = 5", &format!("COUNT = {count}{extra}"));
    write_license(cluster.dir.path(), name, &text)
}

/// Each server's `license` object in `hal-net status --json`.
fn licenses(status: &Value) -> Vec<Value> {
    (0..3)
        .map(|i| status["servers"][i]["license"].clone())
        .collect()
}

/// Waits until every server reports the license in force from an index past `after`.
fn wait_switched(cluster: &Cluster, after: u64, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = licenses(&cluster.status());
        if all
            .iter()
            .all(|l| l["index"].as_u64().is_some_and(|i| i > after))
        {
            return all;
        }
        assert!(
            start.elapsed() < limit,
            "not switched: {all:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_administrator_pushes_a_license_and_every_server_switches_at_once() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    // The first leader put its license file in the log: all three serve it (the
    // followers once they hear it is committed).
    let before = wait_switched(&cluster, 0, Duration::from_secs(5));
    let adopted = before[0]["index"].as_u64().unwrap();
    assert!(adopted > 0, "{before:?}");
    assert!(before.iter().all(|l| l == &before[0]), "{before:?}");
    assert_eq!(before[0]["by"], "server #1");
    let term = cluster.status()["servers"][0]["term"].clone();
    let holders = [
        Holder::start(&cluster, "cad"),
        Holder::start(&cluster, "cad"),
    ];
    assert_eq!(cluster.seats("cad").0, 2);
    let old_text = std::fs::read_to_string(cluster.dir.path().join("cad.lic")).unwrap();

    let eight = license(&cluster, "eight.lic", 8, "");
    // Without the admin certificate: refused before anything is sent (and by the
    // servers, `a_push_without_the_admin_certificate_is_refused_by_the_server`).
    let out = push(&cluster, &eight, false);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let error = support::cluster::json(&out);
    assert_eq!(error["exit_code"], 1, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("needs the admin certificate"),
        "{error}"
    );

    let out = push(&cluster, &eight, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", cluster.logs());
    let answer = json(&out);
    assert_eq!(answer["changed"], true, "{answer}");
    assert_eq!(answer["server"], 1, "{answer}");
    let index = answer["index"].as_u64().unwrap();
    assert!(index > adopted, "{answer}");
    // The command saw every server serve it, with the new COUNT.
    for server in answer["servers"].as_array().unwrap() {
        assert_eq!(server["serves"], true, "{answer}");
        assert_eq!(server["features"]["cad"], 8, "{answer}");
        assert_eq!(server["problems"], serde_json::json!([]), "{answer}");
    }
    // No restart, no failover: the same active server in the same term; seats kept.
    let status = cluster.status();
    assert_eq!(status["active"], 1, "{status}");
    assert_eq!(status["servers"][0]["term"], term, "{status}");
    assert_eq!(status["features"][0]["count"], 8, "{status}");
    assert_eq!(cluster.seats("cad").0, 2);
    for l in licenses(&status) {
        assert_eq!(l["index"], index, "{status}");
        assert!(l["by"].as_str().unwrap().contains('@'), "{status}");
    }
    // The file the servers were started with now holds the new license (the three
    // configs share it here); the old one is kept beside it.
    let dir = cluster.dir.path();
    let wait_file = Instant::now();
    while std::fs::read_to_string(dir.join("cad.lic")).unwrap()
        != std::fs::read_to_string(&eight).unwrap()
    {
        assert!(
            wait_file.elapsed() < Duration::from_secs(5),
            "cad.lic not rewritten"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("cad.lic.previous")).unwrap(),
        old_text
    );

    // Every server's journal records the switch (so `hal-sim check` judges by the new
    // COUNT), and the push it answered.
    for id in 1..=3 {
        // The journal writer hands records over 20 ms apart at most.
        std::thread::sleep(Duration::from_millis(100));
        let journal = cluster.journal_text(id);
        let switched = journal.lines().any(|l| {
            l.contains("\"kind\":\"license\"")
                && l.contains(&format!("\"server\":{id},\"index\":{index},"))
                && l.contains("\"features\":{\"cad\":8}")
        });
        assert!(switched, "{journal}");
    }
    assert!(cluster.journal_text(1).contains("\"op\":\"push_license\""));

    // The same terms again: no change, nothing proposed.
    let out = push(&cluster, &eight, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["changed"], false, "{out:?}");
    assert_eq!(json(&out)["index"], index, "{out:?}");

    // A COUNT lowered below the seats in use keeps them and grants nothing new.
    let one = license(&cluster, "one.lic", 1, "");
    let out = push(&cluster, &one, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(cluster.seats("cad").0, 2);
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(json(&out)["reason"], "all_in_use", "{out:?}");
    for holder in holders {
        holder.release();
    }
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert!(out.status.success(), "{out:?}");

    // A license changed after it was signed: refused with the feature and its line.
    let tampered = dir.join("tampered.lic");
    let text = std::fs::read_to_string(&eight)
        .unwrap()
        .replace("COUNT = 8", "COUNT = 80");
    std::fs::write(&tampered, text).unwrap();
    let out = push(&cluster, &tampered, true);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let why = json(&out)["error"].as_str().unwrap().to_string();
    assert!(why.contains("tampered.lic:1: FEATURE cad"), "{why}");
    assert!(why.contains("KEY does not match"), "{why}");
    assert_eq!(cluster.status()["features"][0]["count"], 1);
    // A file that does not parse is refused before anything is sent.
    let broken = dir.join("broken.lic");
    std::fs::write(&broken, "FEATURE cad {\n  COUNT = many\n}\n").unwrap();
    let out = push(&cluster, &broken, true);
    assert!(!out.status.success(), "{out:?}");
    let err = json(&out)["error"].as_str().unwrap().to_string();
    assert!(err.contains("broken.lic:2"), "{err}");

    // A restarted server serves the license in force, from its log.
    cluster.stop(2);
    cluster.start(2);
    let start = Instant::now();
    loop {
        let l = licenses(&cluster.status());
        if l[1]["index"].as_u64() > Some(index) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{l:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_rereads_the_license_file_and_pushes_it_through_the_active_server() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let adopted = licenses(&cluster.status())[0]["index"].as_u64().unwrap();
    let original = std::fs::read_to_string(cluster.dir.path().join("cad.lic")).unwrap();
    // The operator edits the license file (all three configs name it here) and sends
    // SIGHUP to a standby, which pushes it through #1 with its own certificate.
    license(&cluster, "cad.lic", 7, "");
    cluster.signal(2, Signal::SIGHUP);
    let switched = wait_switched(&cluster, adopted, Duration::from_secs(10));
    assert!(switched.iter().all(|l| l == &switched[0]), "{switched:?}");
    assert_eq!(switched[0]["by"], "SIGHUP to server #2");
    let status = cluster.status();
    assert_eq!(status["features"][0]["count"], 7, "{status}");
    assert_eq!(status["active"], 1, "{status}");
    assert!(cluster.running(2), "SIGHUP must not stop a server");
    let log2 = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(log2.contains("SIGHUP: pushed the license file"), "{log2}");

    // A file that does not load: the error names it and its line; nothing changes.
    std::fs::write(
        cluster.dir.path().join("cad.lic"),
        "FEATURE cad {\n  COUNT = x\n}\n",
    )
    .unwrap();
    cluster.signal(3, Signal::SIGHUP);
    let start = Instant::now();
    let log3 = loop {
        let log3 = std::fs::read_to_string(cluster.log(3)).unwrap();
        if log3.contains("SIGHUP: the license file does not load") {
            break log3;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{log3}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(log3.contains("cad.lic:2"), "{log3}");
    assert!(cluster.running(3));
    assert_eq!(cluster.status()["features"][0]["count"], 7);

    // A file this server has read before (the one it started with, left behind as a
    // failed rewrite would leave it) is not pushed back: a SIGHUP cannot undo a push.
    std::fs::write(cluster.dir.path().join("cad.lic"), &original).unwrap();
    cluster.signal(3, Signal::SIGHUP);
    let start = Instant::now();
    while !std::fs::read_to_string(cluster.log(3))
        .unwrap()
        .contains("nothing to push")
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.status()["features"][0]["count"], 7);
}

#[test]
fn a_server_that_cannot_serve_the_new_license_says_so() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    // Locked to host1, hostX and host3: #2's machine (host2) is not among them.
    let locked = license(&cluster, "locked.lic", 6, "\n  HOSTID = host1 hostX host3");
    let out = push(&cluster, &locked, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", cluster.logs());
    let answer = json(&out);
    let servers = answer["servers"].as_array().unwrap();
    let problems = |i: usize| servers[i]["problems"].to_string();
    assert!(problems(1).contains("hostid_mismatch"), "{answer}");
    assert!(problems(1).contains("hostx"), "{answer}");
    assert_eq!(servers[0]["problems"], serde_json::json!([]), "{answer}");
    assert_eq!(servers[2]["problems"], serde_json::json!([]), "{answer}");
    // Status says so for #2, in text as an operator reads it.
    let out = cluster.verb(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CANNOT SERVE"), "{text}");
    let log2 = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(log2.contains("hostid_mismatch"), "{log2}");
}

/// An operator's connection without the admin certificate may ask for status, but a
/// license push on it is refused, saying what is needed; one too large for such a
/// connection is cut off. The license stays.
#[test]
fn a_push_without_the_admin_certificate_is_refused_by_the_server() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let text = std::fs::read_to_string(license(&cluster, "nine.lic", 9, "")).unwrap();
    let request = |text: String| {
        Message::Request(ClientRequest {
            client: ClientId(77),
            seq: RequestSeq(1),
            op: Op::PushLicense {
                text: text.into(),
                by: "mallory@lan".into(),
            },
        })
    };
    let tls = wire::connector(&cluster.ca(), None);
    let port = cluster.ports[0];
    let answers = wire::runtime().block_on(async {
        let mut answers = Vec::new();
        // A real license, then one padded past what an unproven operator may send.
        let padded = format!("{text}{}", "#".repeat(64 * 1024));
        for text in [text.clone(), padded] {
            let mut link = wire::link(&tls, std::net::Ipv4Addr::LOCALHOST, port)
                .await
                .unwrap();
            let welcome = wire::hello(&mut link, Hello::Admin).await;
            assert!(
                matches!(welcome, Some(Message::Welcome { .. })),
                "{welcome:?}"
            );
            let _ = link.send(request(text)).await;
            let answer = tokio::time::timeout(Duration::from_secs(5), link.next()).await;
            answers.push(format!("{answer:?}"));
        }
        answers
    });
    assert!(
        answers[0].contains("needs the admin certificate"),
        "{}",
        answers[0]
    );
    assert!(
        answers[1].contains("Ok(None)") || answers[1].contains("Err"),
        "{}",
        answers[1]
    );
    assert_eq!(cluster.status()["features"][0]["count"], 5);
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("refused an administrative request"), "{log}");
}

/// A single server (normal network licenses) pushes its own file on SIGHUP: it dials
/// itself with its certificate, and serves the new COUNT.
#[test]
fn a_single_server_rereads_its_license_file_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(support::cluster::hal_net())
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run(&["license", "keygen", "--out", "."]);
    let license = |count: u32| {
        let text = format!("FEATURE cad\n{{\n  VENDOR = acme\n  COUNT = {count}\n}}\n");
        std::fs::write(d.join("cad.txt"), text).unwrap();
        run(&[
            "license",
            "sign",
            "--key",
            "vendor.key",
            "cad.txt",
            "-o",
            "cad.lic",
        ]);
    };
    license(3);
    let [port] = support::cluster::free_ports::<1>();
    let entry = format!("{port}@127.0.0.1");
    run(&["tls", "init", "--servers", &entry, "--dir", "tls"]);
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\ntriad = [\"{entry}\"]\ndata_dir = \"data\"\nlicense = \"cad.lic\"\n\
         vendor_key = \"vendor.pub\"\nhostid = \"h1\"\ndiscovery = false\n[tls]\nca = \"tls/ca.pem\"\n\
         cert = \"tls/server1.pem\"\nkey = \"tls/server1.key\"\n"
    );
    std::fs::write(d.join("server.toml"), config).unwrap();
    let log = std::fs::File::create(d.join("server.log")).unwrap();
    let mut server = std::process::Command::new(support::cluster::hal_net())
        .args(["serve", "--config", "server.toml", "--join-empty"])
        .current_dir(d)
        .stderr(log)
        .spawn()
        .unwrap();
    let status = || {
        let out = std::process::Command::new(support::cluster::hal_net())
            .args([
                "status",
                "--json",
                "--timeout",
                "1s",
                "--license-path",
                &entry,
            ])
            .env("HAL_TRIAD_CA", d.join("tls/ca.pem"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null)
    };
    let wait_count = |count: u64| {
        let start = Instant::now();
        loop {
            let s = status();
            if s["features"][0]["count"] == count {
                return s;
            }
            let log = std::fs::read_to_string(d.join("server.log")).unwrap();
            assert!(start.elapsed() < Duration::from_secs(10), "{s}\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_count(3);
    license(7);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap());
    nix::sys::signal::kill(pid, Signal::SIGHUP).unwrap();
    let s = wait_count(7);
    assert_eq!(
        s["servers"][0]["license"]["by"], "SIGHUP to server #1",
        "{s}"
    );
    assert!(
        server.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the server"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
