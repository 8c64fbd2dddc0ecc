//! Running many seeds in parallel: each seed is one independent world, so the verdicts
//! (and histories) do not depend on how many run at once.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::world::{Failure, Run, WorldConfig, run};

/// `work` applied to every item, `jobs` at a time; the results in the items' order.
pub fn parallel<I: Sync, O: Send>(
    items: &[I],
    jobs: usize,
    work: impl Fn(&I) -> O + Sync,
) -> Vec<O> {
    let next = AtomicU64::new(0);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(item) = items.get(at) else {
                        return;
                    };
                    let result = work(item);
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((at, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(at, _)| *at);
    done.into_iter().map(|(_, result)| result).collect()
}

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
    let seeds: Vec<u64> = seeds.collect();
    parallel(&seeds, jobs, |&seed| {
        let outcome = run(&config(seed));
        done(seed, &outcome);
        let violation = match outcome {
            Ok(run) => run.violation.map(|v| v.to_string()),
            Err(failure) => Some(format!("{failure}\n")),
        };
        Verdict { seed, violation }
    })
}
