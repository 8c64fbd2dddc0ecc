//! Crashes aimed at a disk's syncs. A server's disk is busy a few percent of the time,
//! so a crash at a time drawn without regard to it nearly always finds every write
//! synced, and recovery (a torn log tail, a compaction cut between its renames) would
//! hardly ever run. So in seed sweeps, three crashes in four (drawn from a stream of
//! their own) wait for the server's disk to be syncing (one in three of those: for it to
//! be compacting, its renames not yet durable) and land at a random moment among the
//! syncs it has queued, or go ahead after [`AIM_WAIT_MAX`] (or half the time to the next
//! planned step, if sooner) if it does not sync.
//!
//! It does not move crashes past the next planned step (the crash's own restart, another
//! fault): a step that comes due fires the waiting crash first. Scenario files' crashes
//! are not aimed: they happen when the file says.

use std::time::Duration;

use hal_core::ServerId;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::storage::SimDisk;

/// How long a crash waits for its server's disk to sync, at most: a server syncs a few
/// times a second in the standard world.
pub const AIM_WAIT_MAX: Duration = Duration::from_secs(3);

/// The odds that a crash is aimed.
const AIMED: f64 = 0.75;

/// A crash waiting for its moment.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    server: ServerId,
    /// When it stops waiting for a sync.
    until: Duration,
    /// When it fires, once the disk was seen syncing.
    at: Option<Duration>,
    /// It waits for renames (a compaction), not any sync.
    renames: bool,
}

/// The crashes of one run, aimed at the disks' syncs.
#[derive(Debug)]
pub struct Aim {
    disks: [SimDisk; 3],
    rng: ChaCha8Rng,
    waiting: Option<Waiting>,
}

impl Aim {
    /// Aims crashes of the run of `seed` at the syncs of `disks`.
    pub fn new(seed: u64, disks: [SimDisk; 3]) -> Aim {
        Aim {
            disks,
            // "aim" in ASCII.
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0061_696d),
            waiting: None,
        }
    }

    /// Whether the crash of `server` due `now` waits (else it happens now); `next` is
    /// when the next planned step is due, if any: the server stays down half the time
    /// to it at least.
    pub fn hold(&mut self, server: ServerId, now: Duration, next: Option<Duration>) -> bool {
        if self.waiting.is_some() || !self.rng.random_bool(AIMED) {
            return false;
        }
        let wait = next.map_or(AIM_WAIT_MAX, |next| next.saturating_sub(now) / 2);
        self.waiting = Some(Waiting {
            server,
            until: now + wait.min(AIM_WAIT_MAX),
            at: None,
            renames: self.rng.random_bool(1.0 / 3.0),
        });
        true
    }

    /// The server whose waiting crash fires `now`, if any: its moment came, it waited
    /// long enough, or (`flush`) a planned step is due.
    pub fn due(&mut self, now: Duration, flush: bool) -> Option<ServerId> {
        let waiting = self.waiting.as_mut()?;
        let fire = match waiting.at {
            _ if flush => true,
            Some(at) => now >= at,
            None => {
                let disk = &self.disks[waiting.server.index()];
                let (syncs, sync_time) = (disk.syncs_queued(), disk.sync_time());
                if syncs > 0 && (!waiting.renames || disk.names_unsynced()) {
                    let queued = sync_time * u32::try_from(syncs).unwrap_or(u32::MAX);
                    let ms = self.rng.random_range(0..queued.as_millis().max(1));
                    let at = now + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                    waiting.at = Some(at);
                    now >= at
                } else {
                    now >= waiting.until
                }
            }
        };
        let server = waiting.server;
        if fire {
            self.waiting = None;
            Some(server)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed step is a failed test

    use std::path::Path;

    use hal_net::storage::{Fs, FsFile};

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn disks() -> [SimDisk; 3] {
        [1, 2, 3].map(|seed| SimDisk::new(seed, MS * 2, false))
    }

    /// An aim whose next crash waits (some seed's first draw holds it).
    fn holding(disks: &[SimDisk; 3], next: Option<Duration>) -> Aim {
        (0..)
            .map(|seed| Aim::new(seed, disks.clone()))
            .find_map(|mut aim| aim.hold(ServerId::PRIMARY, MS * 100, next).then_some(aim))
            .unwrap()
    }

    #[test]
    fn a_crash_waits_for_a_sync_and_lands_among_the_queued_ones() {
        let disks = disks();
        let mut aim = holding(&disks, None);
        assert_eq!(aim.due(MS * 101, false), None, "the disk is idle");
        let fs = disks[0].boot();
        let mut file = fs.create(Path::new("/var/lib/hal/x")).unwrap();
        file.write_all_at(b"x", 0).unwrap();
        file.sync_data().unwrap();
        file.sync_data().unwrap();
        // Two syncs of 2 ms queued at 102 ms: the crash comes within 4 ms.
        let fired = (102..110).find(|&ms| aim.due(MS * ms, false).is_some());
        assert!(fired.is_some_and(|ms| ms < 106), "{fired:?}");
    }

    #[test]
    fn a_crash_that_finds_no_sync_goes_ahead_in_time() {
        let disks = disks();
        let mut aim = holding(&disks, Some(MS * 1_100));
        // Half the time to the next step: 500 ms.
        assert_eq!(aim.due(MS * 599, false), None);
        assert_eq!(aim.due(MS * 600, false), Some(ServerId::PRIMARY));
        let mut aim = holding(&disks, None);
        assert_eq!(aim.due(MS * 100 + AIM_WAIT_MAX - MS, false), None);
        assert_eq!(
            aim.due(MS * 100 + AIM_WAIT_MAX, false),
            Some(ServerId::PRIMARY)
        );
    }

    #[test]
    fn a_planned_step_fires_the_waiting_crash_first() {
        let disks = disks();
        let mut aim = holding(&disks, None);
        assert_eq!(aim.due(MS * 101, true), Some(ServerId::PRIMARY));
        assert_eq!(aim.due(MS * 102, true), None, "fired once");
    }
}
