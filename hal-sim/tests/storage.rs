//! The standard world runs hal-net's FileStorage over simulated disks that crash as
//! DESIGN §6.2 says: at pinned seeds, its recovery runs (a torn log tail cut off, a
//! compaction cut between its renames finished on load) and the run stays clean; a
//! server whose disk cannot be recovered is a violation.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

use hal_sim::world::{Planted, WorldConfig, run};

/// The standard world of `seed` (20 clients), which must pass; what its disks saw.
fn clean(seed: u64) -> hal_sim::storage::DiskCounts {
    let outcome = run(&WorldConfig::lan(seed, 20)).unwrap();
    assert_eq!(outcome.violation, None, "seed {seed}");
    outcome.disks
}

#[test]
fn a_torn_log_tail_is_cut_off_on_restart() {
    let disks = clean(391);
    assert!(disks.writes_torn >= 1, "{disks:?}");
    assert!(disks.torn_tails_truncated >= 1, "{disks:?}");
    assert!(disks.compactions > 0, "{disks:?}");
}

#[test]
fn a_compaction_cut_between_its_renames_is_finished_on_restart() {
    let disks = clean(166);
    assert!(disks.names_lost >= 1, "{disks:?}");
    assert!(disks.compactions_finished >= 1, "{disks:?}");
}

#[test]
fn a_server_that_cannot_start_from_its_disk_is_a_violation() {
    let mut config = WorldConfig::lan(172, 5);
    config.planted = Some(Planted::LostFsync);
    let violation = run(&config).unwrap().violation.unwrap();
    assert_eq!(violation.invariant, "11 restarts after a crash");
    assert!(
        violation.what.contains("cannot start from its disk"),
        "{violation}"
    );
}
