//! Running many seeds in parallel: each seed is one independent world, so the verdicts
//! (and histories) do not depend on how many run at once.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::world::{Failure, Run, WorldConfig, run};

/// One seed's result.
#[derive(Debug)]
pub struct Verdict {
    pub seed: u64,
    /// The violation (or the simulation's failure), as a report.
    pub violation: Option<String>,
}

/// Runs every seed of `seeds` with `jobs` threads: `config` makes each seed's world,
/// `done` hears of each finished run (its history too) as it ends. Returns the verdicts
/// in seed order.
pub fn sweep(
    seeds: Range<u64>,
    jobs: usize,
    config: impl Fn(u64) -> WorldConfig + Sync,
    done: impl Fn(u64, &Result<Run, Failure>) + Sync,
) -> Vec<Verdict> {
    let next = AtomicU64::new(seeds.start);
    let verdicts = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    let outcome = run(&config(seed));
                    done(seed, &outcome);
                    let violation = match outcome {
                        Ok(run) => run.violation.map(|v| v.to_string()),
                        Err(failure) => Some(format!("{failure}\n")),
                    };
                    let verdict = Verdict { seed, violation };
                    verdicts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(verdict);
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap_or_else(|e| e.into_inner());
    verdicts.sort_by_key(|v| v.seed);
    verdicts
}
