//! `hal-sim check` on the journals of three real `hal-net serve` processes: a run through
//! a `kill -9` of the active server, its failover and failback, is judged clean; the same
//! journals doctored to show #2 granting while #1 was active and connected, or a server
//! granting a request a second seat, are caught, with the lines that show it.

#![allow(clippy::unwrap_used)] // a test: a failed step is a failed test

#[path = "../../hal-net/tests/support/cluster.rs"]
mod cluster;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cluster::{Cluster, Holder, build_hal_net, kill_and_failback};
use hal_core::record::{Entry, Record, SeatChangeName};

fn hal_sim(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hal-sim"))
        .arg("check")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Journals of a run: #1 active, two holders, kill -9 of #1, a holder granted by #2, #1
/// back and active again, everything released and stopped. Returns the cluster (its
/// directory holds the journals).
fn field_run() -> Cluster {
    build_hal_net();
    let mut cluster = Cluster::new("failback_hold = \"2s\"");
    let [first, second, third] = kill_and_failback(&mut cluster);
    // Calm, #1 active and connected, for longer than a failback takes.
    std::thread::sleep(Duration::from_secs(6));
    let fourth = Holder::start(&cluster, "cad");
    for holder in [first, second, third, fourth] {
        holder.release();
    }
    for id in 1..=3 {
        cluster.stop(id);
    }
    cluster
}

fn journal_dirs(cluster: &Cluster) -> Vec<PathBuf> {
    (1..=3).map(|id| cluster.data(id).join("journal")).collect()
}

/// The last journal file of server `id`.
fn last_file(cluster: &Cluster, id: usize) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(cluster.data(id).join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.pop().unwrap()
}

fn entries(path: &Path) -> Vec<Entry> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_entries(path: &Path, entries: &[Entry]) {
    let text: String = entries
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    fs::write(path, text).unwrap();
}

#[test]
fn a_real_run_is_clean_and_doctored_journals_are_caught() {
    let cluster = field_run();
    let dirs = journal_dirs(&cluster);
    let paths: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let out = hal_sim(&paths);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{out:?}");
    assert!(text.contains("of #1, #2, #3"), "{text}");
    assert!(text.contains("violations: 0"), "{text}");
    assert!(text.contains("#2's clock:"), "{text}");

    // #2's journal, doctored: the last grant #1 decided, journaled as decided by #2 (in
    // both #2's seat record and its answer), while #1 had long been active and connected.
    let file = last_file(&cluster, 2);
    let original = entries(&file);
    let mut doctored = original.clone();
    let last_grant = doctored
        .iter_mut()
        .rev()
        .find_map(|e| match &mut e.record {
            Record::Seat(seat) if seat.change == SeatChangeName::Granted => Some(seat),
            _ => None,
        })
        .expect("#2 journaled the grants it applied");
    assert_eq!(last_grant.by, Some(1));
    last_grant.by = Some(2);
    write_entries(&file, &doctored);
    let out = hal_sim(&paths);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("invariant violated: 2 role rule"), "{text}");
    assert!(
        text.contains("#2 granted while #1 had been up and connected to a peer"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}:", file.display())),
        "evidence names the file: {text}"
    );
    assert!(text.contains("violations: 1"), "{text}");

    // Instead: the same request granted a second handle on #3.
    write_entries(&file, &original);
    let file = last_file(&cluster, 3);
    let mut doctored = entries(&file);
    let grant = doctored
        .iter()
        .rev()
        .find(|e| matches!(&e.record, Record::Seat(s) if s.change == SeatChangeName::Granted))
        .unwrap()
        .clone();
    let Record::Seat(mut second) = grant.record.clone() else {
        unreachable!()
    };
    second.index += 1_000_000;
    second.handle = format!("h{}", second.index);
    doctored.push(Entry {
        record: Record::Seat(second),
        mono_ms: grant.mono_ms,
    });
    write_entries(&file, &doctored);
    let out = hal_sim(&paths);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("invariant violated: 5 one request, one seat"),
        "{text}"
    );
}

#[test]
fn unreadable_journals_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = hal_sim(&[dir.path()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no journal files"), "{err}");
    let file = dir.path().join("journal-00000001.jsonl");
    fs::write(&file, "{\"kind\":\"end\",\"t_ms\":1}\n").unwrap();
    let out = hal_sim(&[&file]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("journal-00000001.jsonl:1: the file does not start with a meta record"),
        "{err}"
    );
}
