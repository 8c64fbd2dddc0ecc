//! Each planted bug is caught, by the invariant and at the seed `hal-sim plants` found
//! (README, "Planted bugs"): if a change to the checkers or the world stops catching one,
//! this says which. Built only with the `plant` feature (`.ci/run` runs
//! `cargo test -p hal-sim --features plant --test plants`).

#![cfg(feature = "plant")]
#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_sim::world::{Planted, WorldConfig, run};

/// (bug, the first seed that catches it, the invariant that does).
const CAUGHT: [(&str, u64, &str); 15] = [
    ("double-count", 0, "1 no overuse"),
    ("no-failback", 5, "2 role rule"),
    ("failback-before-hold", 1, "8 failback hold"),
    ("count-at-propose-only", 259, "1 no overuse"),
    ("no-donation", 33, "2 role rule"),
    ("no-vote-restriction", 33, "4 no lost seat"),
    ("no-step-down", 14, "4 no lost seat"),
    ("retries-not-deduplicated", 38, "5 one request, one seat"),
    ("borrow-by-2", 5, "7 no orphan seat"),
    ("lease-renewed-by-any-heartbeat", 11, "7 no orphan seat"),
    ("lost-fsync", 88, "11 restarts after a crash"),
    ("lease-from-reply", 7, "9 lease lost on time"),
    ("expiry-without-skew-margin", 518, "1 no overuse"),
    ("snapshot-without-sessions", 2, "10 replicas agree"),
    ("torn-tail-is-corruption", 153, "11 restarts after a crash"),
];

fn caught(name: &str, seed: u64) -> Option<&'static str> {
    let mut config = WorldConfig::lan(seed, 5);
    config.planted = Some(Planted::parse(name).unwrap());
    let outcome = run(&config).unwrap_or_else(|f| panic!("{name} seed {seed}: {f}"));
    outcome.violation.map(|v| v.invariant)
}

#[test]
fn every_planted_bug_is_caught_at_its_seed() {
    let failed: Vec<String> = CAUGHT
        .iter()
        .filter_map(|&(name, seed, invariant)| {
            let got = caught(name, seed);
            (got != Some(invariant)).then(|| {
                format!("{name}: seed {seed} gave {got:?}, not {invariant:?} (replay: cargo run -p hal-sim --features plant -- replay --seed {seed} --plant {name})")
            })
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// A retried request applied afresh shows in the servers' journals as two seats for one
/// request: `hal-sim check`'s rule catches it from them alone.
#[test]
fn a_second_seat_for_one_request_is_caught_from_the_journals() {
    let mut config = WorldConfig::lan(38, 5);
    config.planted = Some(Planted::parse("retries-not-deduplicated").unwrap());
    let outcome = run(&config).unwrap();
    let report = hal_sim::field::check(&outcome.journals);
    let found: Vec<&str> = report.violations.iter().map(|v| v.invariant).collect();
    assert!(found.contains(&"5 one request, one seat"), "{found:?}");
}

#[test]
fn the_same_seeds_pass_without_the_bugs() {
    for (name, seed, _) in CAUGHT {
        let outcome = run(&WorldConfig::lan(seed, 5)).unwrap();
        assert_eq!(
            outcome.violation, None,
            "seed {seed} (of {name}) without the bug"
        );
    }
}

#[test]
fn the_catalogue_names_every_bug_once() {
    let names: Vec<&str> = Planted::all().iter().map(|p| p.name()).collect();
    assert_eq!(names.len(), 16, "{names:?}");
    for (name, _, _) in CAUGHT {
        assert!(names.contains(&name), "{name}");
    }
}

/// Each planted bug's seed shrinks to a scenario file that replays it: the seed's world is
/// the scenario the shrinker starts from, so the violation comes back by construction,
/// and the shrunk file, loaded back, violates the same invariant with the bug and none
/// without it.
#[test]
fn every_planted_bug_shrinks_to_a_file_that_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let failed: Vec<String> = CAUGHT
        .iter()
        .filter_map(|&(name, seed, invariant)| {
            let planted = Planted::parse(name).unwrap();
            let mut config = WorldConfig::lan(seed, 5);
            config.planted = Some(planted);
            let shrunk = match hal_sim::shrink::shrink(&config, Some(planted)) {
                Ok(shrunk) => shrunk,
                Err(e) => return Some(format!("{name} seed {seed}: {e}")),
            };
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, hal_sim::scenario::write(&shrunk.scenario)).unwrap();
            let file = hal_sim::scenario::load(&path).unwrap();
            let with = hal_sim::scenario::run(&file, seed, Some(planted));
            let without = hal_sim::scenario::run(&file, seed, None);
            let got = with.violation.as_ref().map(|v| v.invariant);
            eprintln!(
                "{name} seed {seed}: {} steps besides the work (of {} faults), {:?} of {} clients, {} runs",
                file.steps.len() - 1,
                shrunk.steps_before,
                file.clients[0].count,
                shrunk.clients_before,
                shrunk.runs
            );
            if shrunk.invariant != invariant || got != Some(invariant) {
                Some(format!(
                    "{name} seed {seed}: shrunk to {}, the file gave {got:?}, not {invariant:?}",
                    shrunk.invariant
                ))
            } else {
                without
                    .violation
                    .map(|v| format!("{name} seed {seed}: the file without the bug: {v}"))
            }
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
