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
    ("failback-before-hold", 5, "8 failback hold"),
    ("count-at-propose-only", 46, "1 no overuse"),
    ("no-donation", 54, "2 role rule"),
    ("no-vote-restriction", 54, "6 liveness"),
    ("no-step-down", 229, "4 no lost seat"),
    ("retries-not-deduplicated", 38, "5 one request, one seat"),
    ("borrow-by-2", 5, "7 no orphan seat"),
    ("lease-renewed-by-any-heartbeat", 5, "7 no orphan seat"),
    ("lost-fsync", 33, "11 restarts after a crash"),
    ("lease-from-reply", 7, "9 lease lost on time"),
    ("expiry-without-skew-margin", 630, "1 no overuse"),
    ("snapshot-without-sessions", 1, "10 replicas agree"),
    ("torn-tail-is-corruption", 203, "11 restarts after a crash"),
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
