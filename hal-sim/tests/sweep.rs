//! The seed sweep CI runs: 100 seeds of the LAN world and 100 of the WAN world, each with
//! its own fault schedule and workload, every invariant checked as the run goes, and 16
//! LAN seeds of two minutes (the bugs of issue 20 needed longer runs to show).

use std::time::Duration;

use hal_core::timing::Timing;
use hal_sim::sweep::sweep;
use hal_sim::world::WorldConfig;

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn check(profile: &str, seeds: std::ops::Range<u64>, config: impl Fn(u64) -> WorldConfig + Sync) {
    let verdicts = sweep(seeds.clone(), jobs(), &config, |_, _| {});
    assert_eq!(verdicts.len() as u64, seeds.end - seeds.start);
    let failed: Vec<String> = verdicts
        .iter()
        .filter_map(|v| {
            let report = v.violation.as_ref()?;
            let probe = config(v.seed);
            let duration = humantime::format_duration(probe.chaos + probe.calm);
            Some(format!("seed {}: {report}replay: cargo run --release -p hal-sim -- replay --seed {} --profile {profile} --duration {duration} --clients {}", v.seed, v.seed, probe.clients))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} {profile} seeds violated:\n{}",
        failed.len(),
        verdicts.len(),
        failed.join("\n")
    );
}

#[test]
fn one_hundred_lan_seeds_keep_every_invariant() {
    check("lan", 1000..1100, |seed| WorldConfig::lan(seed, 5));
}

#[test]
fn one_hundred_wan_seeds_keep_every_invariant() {
    check("wan", 2000..2100, |seed| {
        let mut config = WorldConfig::lan(seed, 5);
        config.timing = Timing::wan();
        config.chaos = Duration::from_secs(40);
        config.calm = Duration::from_secs(20);
        config
    });
}

/// Seed 13992 broke the role rule at 86 s (a one-way cut delayed the failback).
#[test]
fn sixteen_two_minute_lan_seeds_keep_every_invariant() {
    check("lan", 13984..14000, |seed| {
        let mut config = WorldConfig::lan(seed, 5);
        config.chaos = Duration::from_secs(80);
        config.calm = Duration::from_secs(40);
        config
    });
}
