//! The license tools as a user runs them: the real `hal-net` binary on good, tampered and
//! malformed files, checking exit codes and what it prints.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use tempfile::TempDir;

const TEMPLATE: &str = "\
# Acme licenses
FEATURE cad
{
  VENDOR = acme
  COUNT = 10
  HAL_SERVERS = 3
  BORROW = 24   # one day
  END = 2030-12-31
}

FEATURE cam {
  VENDOR = acme
  COUNT = 2
  HAL_SERVERS = 3
  HOSTID = aa bb cc
}
";

fn hal_net() -> Command {
    Command::cargo_bin("hal-net").unwrap()
}

/// A temporary directory holding `keys/vendor.key`, `keys/vendor.pub` and `in.lic`.
struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("in.lic"), TEMPLATE).unwrap();
        hal_net()
            .args(["license", "keygen", "--out"])
            .arg(dir.path().join("keys"))
            .assert()
            .success();
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn sign(&self, input: &str, output: &str) -> PathBuf {
        hal_net()
            .args(["license", "sign", "--key"])
            .arg(self.path("keys/vendor.key"))
            .arg(self.path(input))
            .arg("-o")
            .arg(self.path(output))
            .assert()
            .success()
            .stderr(contains("signed 2 feature(s) (cad, cam)"));
        self.path(output)
    }

    fn verify(&self, file: &Path) -> assert_cmd::assert::Assert {
        hal_net()
            .args(["license", "verify", "--pubkey"])
            .arg(self.path("keys/vendor.pub"))
            .arg(file)
            .assert()
    }
}

#[test]
fn keygen_writes_a_private_key_only_the_owner_can_read() {
    let ws = Workspace::new();
    let private = fs::read_to_string(ws.path("keys/vendor.key")).unwrap();
    let public = fs::read_to_string(ws.path("keys/vendor.pub")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(ws.path("keys/vendor.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn keygen_never_overwrites_without_force() {
    let ws = Workspace::new();
    let before = fs::read(ws.path("keys/vendor.key")).unwrap();
    hal_net()
        .args(["license", "keygen", "--out"])
        .arg(ws.path("keys"))
        .assert()
        .code(1)
        .stderr(contains("already exists").and(contains("--force")));
    assert_eq!(fs::read(ws.path("keys/vendor.key")).unwrap(), before);
    hal_net()
        .args(["license", "keygen", "--force", "--out"])
        .arg(ws.path("keys"))
        .assert()
        .success();
    assert_ne!(fs::read(ws.path("keys/vendor.key")).unwrap(), before);
}

#[test]
fn a_signed_license_verifies_and_keeps_its_comments() {
    let ws = Workspace::new();
    let signed = ws.sign("in.lic", "out.lic");
    let text = fs::read_to_string(&signed).unwrap();
    assert!(text.starts_with("# Acme licenses\nFEATURE cad\n"));
    assert!(text.contains("BORROW = 24   # one day\n"));
    assert_eq!(text.matches("  KEY = ").count(), 2);
    ws.verify(&signed)
        .success()
        .stdout(contains("ok   FEATURE cad").and(contains("ok   FEATURE cam")))
        .stdout(contains("verified: all 2 feature(s)"));
}

#[test]
fn sign_never_writes_over_the_vendor_key() {
    let ws = Workspace::new();
    let key = ws.path("keys/vendor.key");
    let before = fs::read(&key).unwrap();
    let mut outputs = vec![key.clone(), ws.path("keys/../keys/vendor.key")];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&key, ws.path("key-link.lic")).unwrap();
        fs::hard_link(&key, ws.path("key-hard.lic")).unwrap();
        outputs.push(ws.path("key-link.lic"));
        outputs.push(ws.path("key-hard.lic"));
    }
    for output in outputs {
        hal_net()
            .args(["license", "sign", "--key"])
            .arg(&key)
            .arg(ws.path("in.lic"))
            .arg("-o")
            .arg(&output)
            .assert()
            .code(1)
            .stderr(contains("is the vendor key given with --key"));
        assert_eq!(fs::read(&key).unwrap(), before, "{}", output.display());
    }
}

#[cfg(unix)]
#[test]
fn signing_a_symlink_writes_its_target_and_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    fs::set_permissions(ws.path("in.lic"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("in.lic", ws.path("current.lic")).unwrap();
    ws.sign("current.lic", "current.lic");
    let link = fs::symlink_metadata(ws.path("current.lic")).unwrap();
    assert!(link.file_type().is_symlink());
    let target = fs::metadata(ws.path("in.lic")).unwrap();
    assert_eq!(target.permissions().mode() & 0o777, 0o640);
    assert!(
        fs::read_to_string(ws.path("in.lic"))
            .unwrap()
            .contains("KEY = ")
    );
    ws.verify(&ws.path("in.lic")).success();
}

#[test]
fn the_readme_example_signs_and_verifies() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## License files").unwrap()..];
    let start = section.find("```\n").unwrap() + 4;
    let example = &section[start..start + section[start..].find("```").unwrap()];
    assert!(example.contains("FEATURE cad_modeler"), "{example}");
    let ws = Workspace::new();
    ws.write("readme.lic", example);
    hal_net()
        .args(["license", "sign", "--key"])
        .arg(ws.path("keys/vendor.key"))
        .arg(ws.path("readme.lic"))
        .arg("-o")
        .arg(ws.path("readme-signed.lic"))
        .assert()
        .success();
    ws.verify(&ws.path("readme-signed.lic")).success();
}

#[test]
fn signing_in_place_and_to_stdout_work() {
    let ws = Workspace::new();
    let signed = ws.sign("in.lic", "in.lic");
    ws.verify(&signed).success();
    let output = hal_net()
        .args(["license", "sign", "--key"])
        .arg(ws.path("keys/vendor.key"))
        .arg(ws.path("in.lic"))
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(output.status.success());
    // Signing is deterministic (ed25519), so re-signing gives the same file.
    assert_eq!(output.stdout, fs::read(&signed).unwrap());
}

#[test]
fn a_changed_value_fails_verification_naming_the_feature() {
    let ws = Workspace::new();
    let signed = fs::read_to_string(ws.sign("in.lic", "out.lic")).unwrap();
    let tampered = ws.write("tampered.lic", &signed.replace("COUNT = 10", "COUNT = 100"));
    ws.verify(&tampered)
        .code(1)
        .stdout(contains("BAD  FEATURE cad").and(contains("changed after it was signed")))
        .stdout(contains("ok   FEATURE cam"))
        .stdout(contains("FAILED: 1 of 2 feature(s) did not verify"));
}

#[test]
fn reformatting_a_signed_license_keeps_it_valid() {
    let ws = Workspace::new();
    let signed = fs::read_to_string(ws.sign("in.lic", "out.lic")).unwrap();
    let reformatted = signed
        .replace("  COUNT = 10\n", "")
        .replace(
            "  VENDOR = acme\n  HAL_SERVERS",
            "\tVENDOR=acme # moved\n\tCOUNT   =   10\n  HAL_SERVERS",
        )
        .replace("# Acme licenses\n", "");
    let path = ws.write("reformatted.lic", &reformatted);
    ws.verify(&path).success();
}

#[test]
fn another_vendors_key_fails_every_feature() {
    let ws = Workspace::new();
    let signed = ws.sign("in.lic", "out.lic");
    hal_net()
        .args(["license", "keygen", "--out"])
        .arg(ws.path("other"))
        .assert()
        .success();
    hal_net()
        .args(["license", "verify", "--pubkey"])
        .arg(ws.path("other/vendor.pub"))
        .arg(&signed)
        .assert()
        .code(1)
        .stdout(contains("FAILED: 2 of 2"));
}

#[test]
fn an_unsigned_license_does_not_verify() {
    let ws = Workspace::new();
    ws.verify(&ws.path("in.lic"))
        .code(1)
        .stdout(contains("BAD  FEATURE cad").and(contains("has no KEY")));
}

#[test]
fn a_mixed_license_does_not_verify() {
    let ws = Workspace::new();
    let normal = "FEATURE viewer {\n  VENDOR = acme\n  COUNT = 50\n}\n";
    ws.write("in.lic", &format!("{TEMPLATE}{normal}"));
    hal_net()
        .args(["license", "sign", "--key"])
        .arg(ws.path("keys/vendor.key"))
        .arg(ws.path("in.lic"))
        .arg("-o")
        .arg(ws.path("out.lic"))
        .assert()
        .success()
        .stderr(contains("warning:").and(contains("never both")));
    ws.verify(&ws.path("out.lic"))
        .code(1)
        .stdout(contains("ok   FEATURE viewer").and(contains("never both")))
        .stdout(contains(
            "FAILED: all 3 feature(s) verify, but no server can serve the file as it is",
        ))
        .stdout(contains("did not verify").not());
}

#[test]
fn verify_lists_every_reason_a_server_cannot_serve_the_file() {
    let ws = Workspace::new();
    let extra = "FEATURE viewer {\n  VENDOR = acme\n  COUNT = 50\n}\n\
                 FEATURE tool {\n  VENDOR = acme\n}\n";
    ws.write("in.lic", &format!("{TEMPLATE}{extra}"));
    hal_net()
        .args(["license", "sign", "--key"])
        .arg(ws.path("keys/vendor.key"))
        .arg(ws.path("in.lic"))
        .arg("-o")
        .arg(ws.path("out.lic"))
        .assert()
        .success()
        .stderr(contains("FEATURE tool has no COUNT").and(contains("never both")));
    let tampered = fs::read_to_string(ws.path("out.lic"))
        .unwrap()
        .replace("COUNT = 10", "COUNT = 11");
    let path = ws.write("tampered.lic", &tampered);
    ws.verify(&path)
        .code(1)
        .stdout(contains("BAD  FEATURE cad"))
        .stdout(contains("FEATURE tool has no COUNT").and(contains("never both")))
        .stdout(contains(
            "FAILED: 1 of 4 feature(s) did not verify, and no server can serve the file as it is",
        ));
}

#[test]
fn a_malformed_license_names_file_line_column_and_feature() {
    let ws = Workspace::new();
    let bad = ws.write(
        "bad.lic",
        "FEATURE cad {\n  VENDOR = acme\n  COUNT = ten\n  BORRWO = 3\n}\n",
    );
    for args in [vec!["show"], vec!["verify", "--pubkey"]] {
        let mut cmd = hal_net();
        cmd.arg("license").args(&args);
        if args.len() > 1 {
            cmd.arg(ws.path("keys/vendor.pub"));
        }
        cmd.arg(&bad)
            .assert()
            .code(1)
            .stderr(contains(
                "bad.lic:3:11: in FEATURE cad: bad COUNT value `ten`",
            ))
            .stderr(contains(
                "bad.lic:4:3: in FEATURE cad: unknown directive `BORRWO` (did you mean `BORROW`?)",
            ));
    }
    hal_net()
        .args(["license", "sign", "--key"])
        .arg(ws.path("keys/vendor.key"))
        .arg(&bad)
        .arg("-o")
        .arg(ws.path("never.lic"))
        .assert()
        .code(1);
    assert!(!ws.path("never.lic").exists());
}

#[test]
fn binary_junk_and_missing_files_are_clear_errors() {
    let ws = Workspace::new();
    let junk = ws.path("junk.lic");
    fs::write(&junk, [0x46, 0x45, 0xff, 0x00, 0x12]).unwrap();
    hal_net()
        .args(["license", "show"])
        .arg(&junk)
        .assert()
        .code(1)
        .stderr(contains("junk.lic:1:3: byte 0xff is not UTF-8"));
    hal_net()
        .args(["license", "show"])
        .arg(ws.path("nothere.lic"))
        .assert()
        .code(1)
        .stderr(contains("nothere.lic").and(contains("No such file")));
    let huge = ws.path("huge.lic");
    fs::write(&huge, vec![b'#'; 3 * 1024 * 1024]).unwrap();
    hal_net()
        .args(["license", "show"])
        .arg(&huge)
        .assert()
        .code(1)
        .stderr(contains(
            "the file is 3145728 bytes; a license file may have at most 1048576 bytes",
        ));
}

#[test]
fn swapped_key_files_are_explained() {
    let ws = Workspace::new();
    hal_net()
        .args(["license", "verify", "--pubkey"])
        .arg(ws.path("keys/vendor.key"))
        .arg(ws.path("in.lic"))
        .assert()
        .code(1)
        .stderr(contains("this is the private key"));
}

#[test]
fn show_prints_a_table_and_json() {
    let ws = Workspace::new();
    let signed = ws.sign("in.lic", "out.lic");
    hal_net()
        .args(["license", "show"])
        .arg(&signed)
        .assert()
        .success()
        .stdout(contains("2 feature(s), served by a HAL triad"))
        .stdout(
            predicate::str::is_match(r"cad\s+acme\s+-\s+10\s+yes\s+24h\s+-\s+2030-12-31\s+-\s+yes")
                .unwrap(),
        )
        .stdout(
            predicate::str::is_match(r"cam\s+acme\s+-\s+2\s+yes\s+no\s+-\s+-\s+aa,bb,cc\s+yes")
                .unwrap(),
        );
    let output = hal_net()
        .args(["license", "show", "--json"])
        .arg(&signed)
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["serve_mode"], "hal");
    assert_eq!(json["features"][0]["feature"], "cad");
    assert_eq!(json["features"][0]["count"], 10);
    assert_eq!(json["features"][0]["hal"], true);
    assert_eq!(json["features"][0]["borrow_hours_max"], 24);
    assert_eq!(json["features"][0]["end"], "2030-12-31");
    assert_eq!(
        json["features"][1]["hostids"],
        serde_json::json!(["aa", "bb", "cc"])
    );
    assert_eq!(json["features"][1]["signed"], true);
}

#[test]
fn usage_errors_exit_64_and_never_2() {
    hal_net().assert().code(64);
    hal_net()
        .args(["license", "sign", "in.lic"])
        .assert()
        .code(64)
        .stderr(contains("--key"));
    hal_net().args(["license", "frobnicate"]).assert().code(64);
    // With --json, the mistake is one JSON object on standard output.
    let out = hal_net()
        .args(["license", "frobnicate", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["exit_code"], 64, "{value}");
    assert!(
        value["error"].as_str().unwrap().contains("frobnicate"),
        "{value}"
    );
    // Help and the version are not mistakes.
    hal_net().arg("--help").assert().code(0);
    hal_net()
        .arg("--version")
        .assert()
        .code(0)
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_bundled_example_verifies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    hal_net()
        .current_dir(&root)
        .args([
            "license",
            "verify",
            "--pubkey",
            "examples/demo-vendor.pub",
            "examples/demo.lic",
        ])
        .assert()
        .success()
        .stdout(contains("ok   FEATURE cad_modeler").and(contains("ok   FEATURE cad_render")));
}

#[test]
fn verify_notes_features_outside_their_dates_but_passes() {
    let ws = Workspace::new();
    let dated = TEMPLATE
        .replace("END = 2030-12-31", "END = 2020-06-30")
        .replace(
            "  HOSTID = aa bb cc\n",
            "  HOSTID = aa bb cc\n  START = 2999-01-01\n",
        );
    ws.write("in.lic", &dated);
    let signed = ws.sign("in.lic", "out.lic");
    ws.verify(&signed)
        .success()
        .stdout(contains("note: expired on 2020-06-30 (END)"))
        .stdout(contains("note: not valid before 2999-01-01 (START)"));
}
