//! `hal-load nemesis` for real, in short: three `hal-net serve` processes in network
//! namespaces, real faults for 40 s, clients throughout, the journals judged by
//! `hal-sim`. It needs root, network namespaces, nftables and libfaketime; where they
//! are missing it fails with what `hal-load` says is missing (it never skips).

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const HAL_LOAD: &str = env!("CARGO_BIN_EXE_hal-load");

/// The whole run: setup, 40 s of faults, the calm period, the judging.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a finished (or stopped) run printed.
struct Finished {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

/// Reads a pipe to its end on a thread of its own.
fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    let mut pipe = pipe.unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Waits for `child` up to `limit`; SIGKILL past it (its `Drop` guards clean up only on
/// a signal they can catch, so the limit is generous).
fn finish(mut child: Child, limit: Duration) -> Finished {
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            // SIGTERM first: hal-load then stops its servers and removes its network.
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            std::thread::sleep(Duration::from_secs(10));
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

#[test]
fn a_short_nemesis_run_faults_the_triad_serves_throughout_and_is_judged_clean() {
    let hal_net = support::sibling(HAL_LOAD, "hal-net", "hal-net");
    let hal_sim = support::sibling(HAL_LOAD, "hal-sim", "hal-sim");
    let dir = std::env::temp_dir().join(format!("hal-nemesis-test-{}", std::process::id()));
    let child = Command::new(HAL_LOAD)
        // Seed 6 deals each kind of fault once in 40 s (a unit test of the schedule says so).
        .args(["nemesis", "--duration", "40s", "--seed", "6"])
        .arg("--hal-net")
        .arg(&hal_net)
        .arg("--hal-sim")
        .arg(&hal_sim)
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = finish(child, RUN_LIMIT);
    let shown = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let status = run
        .status
        .unwrap_or_else(|| panic!("hal-load nemesis ran past {RUN_LIMIT:?}\n{shown}"));
    let summary = run
        .stdout
        .lines()
        .find(|l| l.starts_with("nemesis: faults="))
        .unwrap_or_else(|| panic!("no summary line ({status})\n{shown}"));
    let fields: BTreeMap<&str, &str> = summary
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    let number = |key: &str| -> u64 {
        fields[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} in {summary}"))
    };
    assert!(number("faults") > 0, "{shown}");
    let kinds = [
        "crash",
        "cut",
        "cut_oneway",
        "loss",
        "flapping",
        "latency",
        "clock",
    ];
    let faults_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("faults: "))
        .unwrap();
    for kind in kinds {
        assert!(
            faults_line.contains(&format!(" {kind}=1 ")),
            "{kind}: {shown}"
        );
    }
    assert!(number("checkouts") > 0, "{shown}");
    assert!(run.stdout.contains("replay: "), "{shown}");
    // Every fault that can be seen from outside was seen to take effect.
    assert!(
        run.stdout.contains("not seen to take effect: none"),
        "{shown}"
    );
    assert!(!run.stdout.contains("steps failed:"), "{shown}");
    assert_eq!(fields["violations"], "0", "{shown}");
    assert_eq!(fields["imported"], "passed", "{shown}");
    // The imported window is centred on the cut that took #1 away: the replay fails over
    // to #2 and back, as the field did.
    let import = std::fs::read_to_string(dir.join("hal-sim-import.out")).unwrap();
    assert!(
        import.contains("active servers #1, #2, #1 as in the field"),
        "{import}\n{shown}"
    );
    assert!(status.success(), "{shown}");
    std::fs::remove_dir_all(&dir).unwrap();
}
