//! The certificate tools as an administrator runs them: the real `hal-net tls` binary
//! writing, refusing to overwrite, showing and renewing a triad's certificates, checked
//! against the files it leaves, against openssl where the machine has it, and against
//! the library that servers load the files with.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::SystemTime;

use assert_cmd::Command;
use hal_core::ServerId;
use hal_net::tls::{ServerTls, client_connector};
use predicates::prelude::*;
use predicates::str::contains;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const TRIAD: &str = "6200@lic1.example.com,6200@lic2.example.com,6200@127.0.0.1";
const ALL_FILES: [&str; 10] = [
    "ca.pem",
    "ca.key",
    "server1.pem",
    "server1.key",
    "server2.pem",
    "server2.key",
    "server3.pem",
    "server3.key",
    "admin.pem",
    "admin.key",
];

fn hal_net() -> Command {
    Command::cargo_bin("hal-net").unwrap()
}

/// `hal-net tls init` into `root/tls` (a directory it creates).
fn init(root: &TempDir, extra: &[&str]) -> PathBuf {
    let dir = root.path().join("tls");
    hal_net()
        .args(["tls", "init", "--servers", TRIAD, "--dir"])
        .arg(&dir)
        .args(extra)
        .assert()
        .success();
    dir
}

fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn show_json(file: &Path) -> serde_json::Value {
    let output = hal_net()
        .args(["tls", "show", "--json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let view: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    view["certificates"][0].clone()
}

/// The machine's openssl, if it has one.
fn openssl() -> Option<PathBuf> {
    let found = StdCommand::new("openssl").arg("version").output();
    match found {
        Ok(output) if output.status.success() => Some(PathBuf::from("openssl")),
        _ => None,
    }
}

#[test]
fn init_writes_a_triad_with_private_keys_0600() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tls");
    hal_net()
        .args(["tls", "init", "--servers", TRIAD, "--dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains(
            "server #2 (6200@lic2.example.com): copy ca.pem, server2.pem",
        ))
        .stdout(contains("export HAL_TRIAD_CA="))
        .stdout(contains("admin.pem and admin.key"))
        .stdout(contains("hal-net tls renew"));
    let names: Vec<String> = contents(&dir).into_iter().map(|(name, _)| name).collect();
    let mut expected: Vec<String> = ALL_FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        for name in ALL_FILES {
            let want = if name.ends_with(".key") { 0o600 } else { 0o644 };
            assert_eq!(mode(&dir.join(name)), want, "{name}");
        }
    }
}

#[test]
fn one_address_makes_a_single_servers_certificates() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tls");
    hal_net()
        .args(["tls", "init", "--servers", "6200@lic.example.com", "--dir"])
        .arg(&dir)
        .assert()
        .success();
    let names: Vec<String> = contents(&dir).into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "admin.key",
            "admin.pem",
            "ca.key",
            "ca.pem",
            "server1.key",
            "server1.pem"
        ]
    );
    assert_eq!(show_json(&dir.join("server1.pem"))["slot"], 1);
}

#[test]
fn init_refuses_to_overwrite_and_then_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(&root, &[]);
    let before = contents(&dir);
    hal_net()
        .args(["tls", "init", "--servers", TRIAD, "--dir"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(contains("refusing to overwrite"))
        .stderr(contains("ca.key"))
        .stderr(contains("--force"));
    assert_eq!(contents(&dir), before);

    // One file in the way: nothing else is written either.
    let other = root.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("server3.key"), "mine").unwrap();
    hal_net()
        .args(["tls", "init", "--servers", TRIAD, "--dir"])
        .arg(&other)
        .assert()
        .code(1)
        .stderr(contains("server3.key; nothing was written"));
    assert_eq!(
        contents(&other),
        [("server3.key".to_owned(), b"mine".to_vec())]
    );

    // Forced, everything is new, the CA too.
    init(&root, &["--force"]);
    let after = contents(&dir);
    assert_eq!(after.len(), before.len());
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        assert_ne!(old, new, "{name} was not replaced");
    }
}

#[test]
fn show_prints_the_slot_the_expiry_and_the_fingerprint() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(&root, &["--days", "90"]);
    let cert = dir.join("server2.pem");
    let der = CertificateDer::from_pem_file(&cert).unwrap();
    let digest: Vec<String> = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let fingerprint = digest.join(":");
    hal_net()
        .args(["tls", "show"])
        .arg(&cert)
        .assert()
        .success()
        .stdout(contains("role:       server #2"))
        .stdout(contains("URI:urn:hal:server:2, DNS:lic2.example.com"))
        .stdout(contains("days left"))
        .stdout(contains(fingerprint.as_str()));

    let view = show_json(&cert);
    assert_eq!(view["slot"], 2);
    assert_eq!(view["role"], "server #2");
    let days_left = view["days_left"].as_i64().unwrap();
    assert!((89..=90).contains(&days_left), "{view}");
    assert_eq!(view["sha256_fingerprint"], fingerprint.as_str());
    assert_eq!(show_json(&dir.join("ca.pem"))["role"], "CA");
    assert_eq!(show_json(&dir.join("admin.pem"))["role"], "admin");

    match openssl() {
        Some(openssl) => {
            let output = StdCommand::new(openssl)
                .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
                .arg(&cert)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            let text = String::from_utf8(output.stdout).unwrap();
            let theirs = text.trim().rsplit('=').next().unwrap();
            assert_eq!(theirs, fingerprint, "openssl printed {text}");
        }
        None => eprintln!(
            "note: no openssl on this machine; the fingerprint was checked against the \
             SHA-256 of the certificate's DER only"
        ),
    }
}

#[test]
fn show_names_a_file_that_is_not_a_certificate() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(&root, &[]);
    hal_net()
        .args(["tls", "show"])
        .arg(dir.join("server1.key"))
        .assert()
        .code(1)
        .stderr(contains("server1.key: not a certificate"))
        .stderr(contains("this is a private key"));
    let junk = root.path().join("junk.pem");
    fs::write(&junk, "not a certificate at all").unwrap();
    hal_net()
        .args(["tls", "show"])
        .arg(&junk)
        .assert()
        .code(1)
        .stderr(contains("junk.pem: not a certificate"));
    hal_net()
        .args(["tls", "show"])
        .arg(root.path().join("missing.pem"))
        .assert()
        .code(1)
        .stderr(contains("missing.pem: cannot read the file"));
}

#[test]
fn renew_keeps_the_ca_and_makes_certificates_that_verify() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(&root, &["--days", "30"]);
    let ca = fs::read(dir.join("ca.pem")).unwrap();
    let ca_key = fs::read(dir.join("ca.key")).unwrap();
    let old_cert = fs::read(dir.join("server1.pem")).unwrap();
    let old_key = fs::read(dir.join("server1.key")).unwrap();
    hal_net()
        .args(["tls", "renew", "--days", "400", "--dir"])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("the CA is kept"))
        .stdout(contains("restart the servers one at a time"));
    assert_eq!(fs::read(dir.join("ca.pem")).unwrap(), ca);
    assert_eq!(fs::read(dir.join("ca.key")).unwrap(), ca_key);
    assert_ne!(fs::read(dir.join("server1.pem")).unwrap(), old_cert);
    assert_ne!(fs::read(dir.join("server1.key")).unwrap(), old_key);
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("server1.key")), 0o600);

    let view = show_json(&dir.join("server3.pem"));
    assert!(view["days_left"].as_i64().unwrap() >= 399, "{view}");
    assert_eq!(view["sans"][1], "IP:127.0.0.1", "the host is kept");
    for id in ServerId::ALL {
        let n = id.get();
        ServerTls::load(
            &dir.join("ca.pem"),
            &dir.join(format!("server{n}.pem")),
            &dir.join(format!("server{n}.key")),
            id,
            SystemTime::now(),
        )
        .unwrap();
    }
    client_connector(
        &dir.join("ca.pem"),
        Some((&dir.join("admin.pem"), &dir.join("admin.key"))),
    )
    .unwrap();
    if let Some(openssl) = openssl() {
        let output = StdCommand::new(openssl)
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(dir.join("ca.pem"))
            .arg(dir.join("server1.pem"))
            .arg(dir.join("server2.pem"))
            .arg(dir.join("server3.pem"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}

#[test]
fn renew_takes_new_hosts() {
    let root = tempfile::tempdir().unwrap();
    let dir = init(&root, &[]);
    hal_net()
        .args([
            "tls",
            "renew",
            "--servers",
            "6200@new1,6200@new2,6200@new3",
            "--dir",
        ])
        .arg(&dir)
        .assert()
        .success()
        .stdout(contains("server #2 (new2)"));
    assert_eq!(show_json(&dir.join("server2.pem"))["sans"][1], "DNS:new2");
}

#[test]
fn renew_needs_the_ca() {
    let root = tempfile::tempdir().unwrap();
    hal_net()
        .args(["tls", "renew", "--dir"])
        .arg(root.path())
        .assert()
        .code(1)
        .stderr(contains("ca.pem: cannot read the file"));
}

#[test]
fn two_servers_or_a_bad_address_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("tls");
    hal_net()
        .args(["tls", "init", "--servers", "6200@a,6200@b", "--dir"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(contains("got 2"));
    hal_net()
        .args(["tls", "init", "--servers", "lic1", "--dir"])
        .arg(&dir)
        .assert()
        .code(64)
        .stderr(contains("has no '@'"));
    assert!(!dir.exists(), "nothing was written");
    hal_net()
        .args(["tls", "init", "--servers", "6200@a", "--days", "0", "--dir"])
        .arg(&dir)
        .assert()
        .code(64)
        .stderr(predicate::str::contains("--days"));
}
