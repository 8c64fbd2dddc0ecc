//! `hal-net options check | push` against a real triad, as an administrator uses them:
//! every mistake of a file reported with its line (a misspelt keyword or feature with the
//! nearest name), the admin certificate required, and the rules applied by every server
//! alike: each refusal with its own reason, and a user over MAX refused by #2 after a
//! failover as by #1.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use support::cluster::{Cluster, Holder, hal_net, json};

const TIMING: &str = "client_lease = \"4s\"\nclient_heartbeat = \"1s\"";

/// Writes `text` to `name` in the cluster's directory.
fn file(cluster: &Cluster, name: &str, text: &str) -> PathBuf {
    let path = cluster.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `hal-net options push FILE --json`, with the admin certificate if `admin`.
fn push(cluster: &Cluster, path: &std::path::Path, admin: bool) -> Output {
    let tls = cluster.dir.path().join("tls");
    let path = path.display().to_string();
    let mut args: Vec<String> = vec!["options".into(), "push".into(), path, "--json".into()];
    if admin {
        for (flag, name) in [("--cert", "admin.pem"), ("--key", "admin.key")] {
            args.push(flag.into());
            args.push(tls.join(name).display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cluster.verb(&args)
}

fn denied(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    json(out)["reason"].as_str().unwrap().to_string()
}

#[test]
fn options_are_checked_with_their_lines_and_applied_by_every_server() {
    let mut cluster = Cluster::new(TIMING);
    // Mistakes first: reported with lines, nothing sent.
    let bad = file(
        &cluster,
        "bad.opt",
        "GROUP designers alice\nINCLUD cad USER ann\nMAX 1 cax USER bob\nRESERVE 1 cad GROUP desingers\n",
    );
    let license = cluster.dir.path().join("cad.lic");
    let out = Command::new(hal_net())
        .args(["options", "check"])
        .arg(&bad)
        .arg("--license")
        .arg(&license)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.opt:2: unknown keyword `INCLUD` (did you mean `INCLUDE`?)"),
        "{err}"
    );
    assert!(
        err.contains("bad.opt:3: the license has no feature `cax` (did you mean `cad`?)"),
        "{err}"
    );
    assert!(
        err.contains("bad.opt:4: GROUP desingers is not defined (did you mean `designers`?)"),
        "{err}"
    );

    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    // A file whose only mistake is a feature the license lacks: the server says so,
    // naming the file as the administrator gave it.
    let unknown = file(&cluster, "unknown.opt", "MAX 1 cax USER bob\n");
    let out = push(&cluster, &unknown, true);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let why = json(&out)["error"].as_str().unwrap().to_string();
    assert!(
        why.contains("unknown.opt:1: the license has no feature `cax` (did you mean `cad`?)"),
        "{why}"
    );

    let site = file(
        &cluster,
        "site.opt",
        "GROUP designers alice\nEXCLUDE cad USER mallory\nMAX 1 cad USER bob\nRESERVE 1 cad GROUP designers\n",
    );
    // Without the admin certificate: refused before anything is sent.
    let out = push(&cluster, &site, false);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = push(&cluster, &site, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", cluster.logs());
    let index = json(&out)["index"].as_u64().unwrap();
    // Every server applies it (the followers once they hear it is committed).
    let start = std::time::Instant::now();
    let status = loop {
        let status = cluster.status();
        if (0..3).all(|i| status["servers"][i]["options"]["index"] == index) {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{status}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for i in 0..3 {
        assert_eq!(status["servers"][i]["options"]["index"], index, "{status}");
        assert_eq!(status["servers"][i]["options"]["rules"], 3, "{status}");
    }
    let text = String::from_utf8_lossy(&cluster.verb(&["status"]).stdout).into_owned();
    assert!(
        text.contains("options ") && text.contains("3 rule(s) in force since log index"),
        "{text}"
    );

    // Each refusal its own reason. COUNT is 5.
    assert_eq!(denied(&cluster.checkout_as("cad", "mallory")), "excluded");
    let bob = Holder::start_as(&cluster, "cad", "bob");
    assert_eq!(denied(&cluster.checkout_as("cad", "bob")), "over_max");
    let _carl = Holder::start_as(&cluster, "cad", "carl");
    let _dora = Holder::start_as(&cluster, "cad", "dora");
    let _emil = Holder::start_as(&cluster, "cad", "emil");
    // One seat left, kept for the designers.
    assert_eq!(denied(&cluster.checkout_as("cad", "fred")), "reserved");
    let out = cluster.checkout_as("cad", "alice");
    assert!(out.status.success(), "{out:?}");

    // After a failover #2 applies the same rules: bob is still over his MAX.
    cluster.kill9(1);
    cluster.wait_active(2, Duration::from_secs(10));
    assert_eq!(denied(&cluster.checkout_as("cad", "bob")), "over_max");
    assert_eq!(denied(&cluster.checkout_as("cad", "mallory")), "excluded");
    bob.release();
    // An empty file clears the options: anyone may check out again.
    let empty = file(&cluster, "empty.opt", "");
    let out = push(&cluster, &empty, true);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(cluster.checkout_as("cad", "mallory").status.success());
    let log2 = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(!log2.contains("panicked"), "{log2}");
}
