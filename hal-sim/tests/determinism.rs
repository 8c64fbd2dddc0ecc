//! One seed, one history: the same seed twice writes byte-identical histories, and
//! another seed writes another.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_core::record::{Entry, FaultKind, Record};
use hal_sim::world::{WorldConfig, run};

fn history(seed: u64) -> Vec<String> {
    let outcome = run(&WorldConfig::lan(seed, 5)).unwrap();
    assert_eq!(outcome.violation, None, "seed {seed}");
    outcome.history
}

/// How many records of `history` `pick` picks.
fn count(history: &[String], pick: impl Fn(&Record) -> bool) -> usize {
    history
        .iter()
        .map(|line| serde_json::from_str::<Entry>(line).unwrap().record)
        .filter(|record| pick(record))
        .count()
}

#[test]
fn one_seed_gives_one_history() {
    for seed in [1, 2] {
        let first = history(seed);
        let second = history(seed);
        let grants = count(
            &first,
            |r| matches!(r, Record::Reply(reply) if reply.grant().is_some()),
        );
        let faults = count(&first, |r| matches!(r, Record::Fault(_)));
        let roles = count(&first, |r| matches!(r, Record::Role(_)));
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

/// A WAN run of `seed`, its history.
fn wan_history(seed: u64) -> Vec<String> {
    let mut config = WorldConfig::lan(seed, 5);
    config.timing = hal_core::timing::Timing::wan();
    config.chaos = std::time::Duration::from_secs(40);
    let outcome = run(&config).unwrap();
    assert_eq!(outcome.violation, None, "seed {seed}");
    outcome.history
}

/// WAN seeds 7 and 8 crash servers mid-run (checked below). Seed 8's history once
/// depended on what other threads did: tokio shuts a dying runtime's tasks down in an order set by a process-wide task
/// counter, so the crashed server's sockets sent their closing messages in an order that
/// varied with the other tests running beside it. Crashes now silence the dying server.
/// This test runs beside the LAN one (and a busy neighbour thread) on purpose.
#[test]
fn regression_a_crash_does_not_make_the_history_depend_on_other_threads() {
    let neighbour = std::thread::spawn(|| {
        for seed in 100..104 {
            run(&WorldConfig::lan(seed, 5)).unwrap();
        }
    });
    for seed in [7, 8] {
        let first = wan_history(seed);
        let second = wan_history(seed);
        assert!(first.len() > 100, "seed {seed}: {} records", first.len());
        let crashes = count(
            &first,
            |r| matches!(r, Record::Fault(fault) if fault.fault == FaultKind::Crash),
        );
        assert!(crashes > 0, "seed {seed} no longer crashes a server");
        if let Some(at) = first.iter().zip(&second).position(|(a, b)| a != b) {
            panic!(
                "seed {seed}: two WAN runs differ first at record {at}:\n{}\n{}",
                first[at], second[at]
            );
        }
        assert_eq!(first.len(), second.len(), "seed {seed}");
    }
    neighbour.join().unwrap();
}

/// Whether `scenario` (a seed's) has what makes a seed hard to replay: a crash (aimed at
/// a disk's syncs), a fault of the client machine's links, and clocks hours apart.
fn hard_to_replay(scenario: &hal_sim::scenario::Scenario) -> bool {
    use hal_sim::faults::Fault;
    use hal_sim::scenario::{Action, ClientAct};
    let has = |pick: &dyn Fn(&Action) -> bool| scenario.steps.iter().any(|s| pick(&s.action));
    has(&|a| {
        matches!(
            a,
            Action::Server {
                fault: Fault::Crash(_),
                ..
            }
        )
    }) && has(&|a| {
        matches!(
            a,
            Action::Client {
                act: ClientAct::Disconnect { .. },
                ..
            }
        )
    }) && scenario.timing.max_clock_skew >= std::time::Duration::from_secs(3_600)
}

/// A sweep's seed is a scenario: written as a file (as `sweep --shrink` writes one) and
/// run by `hal-sim run`'s runner, it replays the seed's history byte for byte, for the
/// first seed with a crash, a fault of the client machine's links and clocks hours apart,
/// and for a seed of twenty clients.
#[test]
fn a_seed_written_as_a_scenario_file_replays_its_history() {
    let hard = (0..200)
        .find(|&seed| {
            let config = WorldConfig::lan(seed, 5);
            hard_to_replay(&hal_sim::world::scenario_of(&config).unwrap())
        })
        .expect("a seed in 0..200 with a crash, a client link fault and clocks hours apart");
    for (seed, clients) in [(hard, 5), (11, 20)] {
        let config = WorldConfig::lan(seed, clients);
        let world = run(&config).unwrap();
        let scenario = hal_sim::world::scenario_of(&config).unwrap();
        assert!(scenario.aim_crashes);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("seed-{seed}.toml"));
        std::fs::write(&path, hal_sim::scenario::write(&scenario)).unwrap();
        let loaded = hal_sim::scenario::load(&path).unwrap();
        assert!(loaded.aim_crashes, "seed {seed}");
        let replayed = hal_sim::scenario::run(&loaded, loaded.seed.unwrap(), None);
        assert!(replayed.failure.is_none(), "{:?}", replayed.failure);
        if let Some(at) = world
            .history
            .iter()
            .zip(&replayed.history)
            .position(|(a, b)| a != b)
        {
            panic!(
                "seed {seed}: the file's run differs first at record {at}:\n{}\n{}",
                world.history[at], replayed.history[at]
            );
        }
        assert_eq!(world.history.len(), replayed.history.len(), "seed {seed}");
        eprintln!(
            "seed {seed} ({clients} clients): {} records replayed",
            world.history.len()
        );
    }
}
