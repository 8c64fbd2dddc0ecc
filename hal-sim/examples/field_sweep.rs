//! Judges the simulated servers' journals of a seed sweep with `hal-sim check`'s
//! invariants, beside the simulator's own checkers, to find the seeds where the journals
//! give a verdict the simulator does not (a false positive of the journals' checks, or a
//! violation only they see).
//!
//! `cargo run --release -p hal-sim --example field_sweep -- lan 0..200` prints one line
//! per seed where either verdict is not clean, then the counts, and the seeds where the
//! check noted that no server's clock stayed steady.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a command-line tool for developers

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hal_sim::field;
use hal_sim::world::{WorldConfig, run};

fn config(profile: &str, seed: u64) -> WorldConfig {
    let mut config = WorldConfig::lan(seed, 5);
    if profile == "wan" {
        let wan = hal_core::timing::Timing::wan();
        config.timing = hal_core::timing::Timing {
            max_clock_skew: hal_sim::world::seed_skew(seed, wan.max_clock_skew),
            ..wan
        };
    }
    config
}

/// One seed's verdicts: the simulator's, the journals' invariants, and whether the
/// journals' check noted that no clock stayed steady.
fn judge(profile: &str, seed: u64) -> (Option<String>, Vec<String>, bool) {
    match run(&config(profile, seed)) {
        Ok(outcome) => {
            let report = field::check(&outcome.journals);
            let journals = report.violations.iter().map(ToString::to_string).collect();
            let unsteady = report.notes.iter().any(|n| n.contains("stepped too"));
            (
                outcome.violation.map(|v| format!("{v:?}")),
                journals,
                unsteady,
            )
        }
        Err(failure) => (
            Some(format!("the run failed: {failure}")),
            Vec::new(),
            false,
        ),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: field_sweep lan|wan FIRST..END";
    let profile = args.get(1).expect(usage).clone();
    assert!(profile == "lan" || profile == "wan", "{usage}");
    let (first, end) = args.get(2).and_then(|r| r.split_once("..")).expect(usage);
    let (first, end): (u64, u64) = (first.parse().expect(usage), end.parse().expect(usage));
    let next = AtomicU64::new(first);
    let verdicts = Mutex::new(Vec::new());
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let verdict = judge(&profile, seed);
                    verdicts.lock().unwrap().push((seed, verdict));
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap();
    verdicts.sort_by_key(|(seed, _)| *seed);
    let (mut both, mut simulator_only, mut journals_only) = (0, 0, 0);
    let unsteady: Vec<u64> = verdicts
        .iter()
        .filter(|(_, (_, _, unsteady))| *unsteady)
        .map(|(seed, _)| *seed)
        .collect();
    for (seed, (simulator, journals, _)) in &verdicts {
        match (simulator, journals.is_empty()) {
            (None, true) => continue,
            (Some(_), false) => both += 1,
            (Some(_), true) => simulator_only += 1,
            (None, false) => journals_only += 1,
        }
        println!("seed {seed}: simulator: {simulator:?}");
        for violation in journals {
            println!("  journals: {}", violation.lines().next().unwrap_or(""));
        }
    }
    println!(
        "{profile} seeds {first}..{end}: {} run, {} clean both ways, {both} violated both ways, {simulator_only} by the simulator only, {journals_only} by the journals only",
        verdicts.len(),
        verdicts.len() - both - simulator_only - journals_only
    );
    println!(
        "{} seeds where no server's clock stayed steady (check notes it): {unsteady:?}",
        unsteady.len()
    );
}
