//! `hal-sim import` on the journals of a real triad: three `hal-net serve` processes over
//! TLS on 127.0.0.1; two holders check out from #1; #1 is killed with SIGKILL and #2
//! takes over and grants a third holder; #1 is started again and takes the active role
//! back after its failback hold; the holders check in and the triad is stopped. The
//! scenario imported from the three journals loads, passes with `hal-sim run` (its
//! expectations are the field's grants), and its run has the field's active servers:
//! #1, #2, #1. The field is the kill-and-failback run of hal-net's test support (shared
//! with the journal tests), paced so that each grant and each stretch of one active
//! server stands well away from a change of roles.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

#[path = "../../hal-net/tests/support/cluster.rs"]
mod cluster;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

use cluster::{Cluster, Pace, build_hal_net, kill_and_failback_paced};
use hal_core::record::{Record, RoleName};

const HAL_SIM: &str = env!("CARGO_BIN_EXE_hal-sim");

/// From a change of roles to a grant: long enough that the importer expects the grant
/// by its server (it does from `election_timeout + failover_delay + 1 s` on).
const SETTLE: Duration = Duration::from_secs(3);
/// From a grant to the next fault: long enough for a check of the active server and the
/// seats in use between them (a margin from the fault, a second from the grant).
const CALM: Duration = Duration::from_secs(5);

fn hal_sim(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(HAL_SIM).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The field's active servers, read straight from the journals (one machine, one clock):
/// each server that journaled becoming active, in time order, each change once.
fn field_actives(dirs: &[PathBuf]) -> Vec<u8> {
    let journals = hal_net::journal::read::read(dirs).unwrap();
    let mut roles: Vec<(u64, u8)> = journals
        .iter()
        .flat_map(|j| &j.entries)
        .filter_map(|l| match &l.entry.record {
            Record::Role(role) if role.role == RoleName::Active => Some((role.t_ms, role.server)),
            _ => None,
        })
        .collect();
    roles.sort_unstable();
    let mut actives: Vec<u8> = Vec::new();
    for (_, server) in roles {
        if actives.last() != Some(&server) {
            actives.push(server);
        }
    }
    actives
}

#[test]
fn an_imported_failover_and_failback_replays_the_fields_roles_and_grants() {
    build_hal_net();
    let started = std::time::Instant::now();
    let mut cluster = Cluster::new("failback_hold = \"2s\"");
    let pace = Pace {
        settle: SETTLE,
        calm: CALM,
    };
    let [first, second, third] = kill_and_failback_paced(&mut cluster, pace);
    assert_eq!(first.grant["server"], 1, "{}", first.grant);
    assert_eq!(second.grant["server"], 1, "{}", second.grant);
    first.release();
    second.release();
    third.release();
    sleep(CALM);
    // The standby servers first, as an operator shutting the triad down does: stopped
    // first, the active #1 would hand its role to #2 on the way out.
    for id in [3, 2, 1] {
        cluster.stop(id);
    }
    eprintln!("the field: {:?}", started.elapsed());
    let dir = cluster.dir.path();
    let data: Vec<PathBuf> = (1..=3).map(|id| cluster.data(id)).collect();
    let incident = dir.join("incident.toml");
    let mut args: Vec<&std::ffi::OsStr> = vec!["import".as_ref()];
    args.extend(data.iter().map(|d| d.as_os_str()));
    let license = dir.join("cad.lic");
    args.extend(["--license".as_ref(), license.as_os_str()]);
    args.extend(["-o".as_ref(), incident.as_os_str()]);
    let (code, out, err) = hal_sim(&args);
    assert_eq!(code, 0, "import: {out}{err}\n{}", cluster.logs());
    let text = std::fs::read_to_string(&incident).unwrap();
    // Kept for a reader of the test's output (`--nocapture`) and the target directory.
    println!("{out}\n{text}");
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("incident.toml"),
        &text,
    );
    assert!(
        out.contains("the field's active servers: #1, #2, #1"),
        "{out}"
    );
    // #1 killed (a crash, restarted), and no link fault: every link down is explained.
    assert_eq!(text.matches("\ncrash = 1\nfor = ").count(), 1, "{text}");
    assert!(!text.contains("\ncut"), "{text}");
    // The grants, far from every change of roles, are the field's.
    assert_eq!(text.matches("\ngranted_by = 1\n").count(), 2, "{text}");
    assert_eq!(text.matches("\ngranted_by = 2\n").count(), 1, "{text}");
    assert_eq!(text.matches("\ncheckin = \"cad\"\n").count(), 3, "{text}");
    // A check in each stable stretch: #1 with two seats, #2 with three, #1 with none.
    let checks: Vec<&str> = text
        .split("[[checks]]\n")
        .skip(1)
        .map(|c| c.split("\n\n").next().unwrap_or(""))
        .collect();
    let checked: Vec<(&str, &str)> = checks
        .iter()
        .map(|c| {
            let line = |key: &str| c.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("");
            (line("active = "), line("in_use = "))
        })
        .collect();
    assert_eq!(
        checked,
        [
            ("1", "{ \"cad\" = 2 }"),
            ("2", "{ \"cad\" = 3 }"),
            ("1", "{ \"cad\" = 0 }")
        ],
        "{text}"
    );

    let history = dir.join("run.jsonl");
    let (code, out, err) = hal_sim(&[
        "run".as_ref(),
        incident.as_os_str(),
        "--history".as_ref(),
        history.as_os_str(),
    ]);
    assert_eq!(code, 0, "run: {out}{err}\n{text}");
    eprintln!("imported and run: {:?}", started.elapsed());
    let lines: Vec<String> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let journals: Vec<PathBuf> = data.iter().map(|d| d.join("journal")).collect();
    let field = field_actives(&journals);
    assert_eq!(field, [1, 2, 1]);
    assert_eq!(
        hal_sim::import::roles::history_sequence(&lines),
        field,
        "{out}"
    );

    // --verify does the same run and says so.
    let again = dir.join("again.toml");
    args.pop();
    args.extend([again.as_os_str(), "--verify".as_ref()]);
    let (code, out, err) = hal_sim(&args);
    assert_eq!(code, 0, "import --verify: {out}{err}");
    assert!(
        out.contains("active servers #1, #2, #1 as in the field"),
        "{out}"
    );
}
