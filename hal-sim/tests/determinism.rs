//! One seed, one history: the same seed twice writes byte-identical histories, and
//! another seed writes another.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_sim::world::{WorldConfig, run};

fn history(seed: u64) -> Vec<String> {
    let outcome = run(&WorldConfig::lan(seed, 5)).unwrap();
    assert_eq!(outcome.violation, None, "seed {seed}");
    outcome.history
}

#[test]
fn one_seed_gives_one_history() {
    for seed in [1, 2] {
        let first = history(seed);
        let second = history(seed);
        let grants = first
            .iter()
            .filter(|l| l.contains(r#""result":"granted""#))
            .count();
        let faults = first
            .iter()
            .filter(|l| l.contains(r#""kind":"fault""#))
            .count();
        let roles = first
            .iter()
            .filter(|l| l.contains(r#""kind":"role""#))
            .count();
        eprintln!(
            "seed {seed}: {} lines, {grants} grants, {faults} faults, {roles} role changes",
            first.len()
        );
        assert!(grants > 10, "seed {seed}: only {grants} grants");
        assert!(faults >= 2, "seed {seed}: only {faults} faults");
        assert!(roles >= 1, "seed {seed}: no role change recorded");
        if first != second {
            let at = first.iter().zip(&second).position(|(a, b)| a != b);
            panic!(
                "seed {seed}: two runs differ first at line {at:?}:\n{:?}\n{:?}",
                at.map(|i| &first[i]),
                at.map(|i| &second[i])
            );
        }
    }
    assert_ne!(history(1), history(2), "two seeds gave the same history");
}

#[test]
#[ignore = "prints a history for a human to read"]
fn print_history() {
    for line in history(1) {
        println!("{line}");
    }
}
