//! The servers' wall clocks against one reference, from the `peer_clock` records of their
//! journals: each server's clock minus the reference's, as levels that change when a
//! clock stepped. The reference is server #1's clock (the lowest server with a journal),
//! unless the other two agree with each other and not with it: then theirs (the
//! majority's), and #1 is the server whose clock is off. `hal-sim check` merges journals
//! on it and `hal-sim import` replays an incident on it.
//!
//! It does not model drift: a drifting clock shows as a staircase of small steps, one
//! each time the estimate moved by more than [`STEP_MS_MIN`] (or the round trip). It
//! trusts a journal only for its own server's estimates: a `peer_clock` record naming
//! another server is not used.

use std::fmt;

use hal_core::record::Record;

use super::read::ServerJournal;

/// The least change of an offset taken as a step of a clock: the servers journal a new
/// estimate when it moves by 50 ms, and an estimate is off by up to half a round trip.
pub const STEP_MS_MIN: i64 = 100;
/// Two clocks within this much of each other agree (for the majority's reference).
pub const AGREE_MS: i64 = 1_000;

/// A server's offset from a time on: its wall clock minus the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// From when (true time: the reference clock, ms since 1970).
    pub from_ms: u64,
    pub offset_ms: i64,
    /// The round trip of the estimate (it is off by at most half of it).
    pub rtt_ms: u64,
}

/// Which clock the times count on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// This server's.
    Server(u8),
    /// The other two servers' (they agree), not this one's.
    Majority { odd: u8 },
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Server(server) => write!(f, "#{server}'s clock"),
            Reference::Majority { odd } => write!(
                f,
                "the clock of the two servers other than #{odd}, which agree"
            ),
        }
    }
}

/// Every server's clock against the reference.
#[derive(Debug, Clone)]
pub struct Clocks {
    pub reference: Reference,
    /// Per server (index 0 is #1): its offsets, in time order; empty when nothing was
    /// measured (its times are then taken as they are).
    pub levels: [Vec<Level>; 3],
}

/// One estimate of server `of`'s clock minus the base server's, at base time `at_ms`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    of: u8,
    at_ms: u64,
    offset_ms: i64,
    rtt_ms: u64,
}

fn shift(t: u64, by: i64) -> u64 {
    let shifted = i128::from(t) + i128::from(by);
    u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
}

impl Clocks {
    /// The clocks of the servers of `journals`.
    pub fn estimate(journals: &[ServerJournal]) -> Clocks {
        let base = journals
            .iter()
            .map(|j| j.server)
            .filter(|s| (1..=3).contains(s))
            .min()
            .unwrap_or(1);
        let mut samples = Vec::new();
        let mut indirect = Vec::new();
        for journal in journals {
            for located in &journal.entries {
                let Record::PeerClock(clock) = &located.entry.record else {
                    continue;
                };
                if clock.server != journal.server || clock.peer == clock.server {
                    continue;
                }
                if clock.server == base {
                    samples.push(Sample {
                        of: clock.peer,
                        at_ms: clock.t_ms,
                        offset_ms: clock.offset_ms,
                        rtt_ms: clock.rtt_ms,
                    });
                } else if clock.peer == base {
                    // The base's clock minus this server's, read on this server's clock.
                    samples.push(Sample {
                        of: clock.server,
                        at_ms: shift(clock.t_ms, clock.offset_ms),
                        offset_ms: clock.offset_ms.saturating_neg(),
                        rtt_ms: clock.rtt_ms,
                    });
                } else {
                    indirect.push(clock.clone());
                }
            }
        }
        let mut levels: [Vec<Level>; 3] = Default::default();
        for of in [1u8, 2, 3].into_iter().filter(|&s| s != base) {
            let mut own: Vec<Sample> = samples.iter().filter(|s| s.of == of).copied().collect();
            own.sort_by_key(|s| s.at_ms);
            levels[usize::from(of - 1)] = steps(&own);
        }
        // A server measured only against the third one: through it.
        for of in [1u8, 2, 3].into_iter().filter(|&s| s != base) {
            let (third, through) = (6 - base - of, usize::from(6 - base - of - 1));
            if !levels[usize::from(of - 1)].is_empty() || levels[through].is_empty() {
                continue;
            }
            let mut own: Vec<Sample> = indirect
                .iter()
                .filter_map(|c| {
                    let via = at_level(&levels[through], c.t_ms)?;
                    let (offset_ms, at_ms) = if c.server == third && c.peer == of {
                        (via.offset_ms.saturating_add(c.offset_ms), c.t_ms)
                    } else if c.server == of && c.peer == third {
                        (via.offset_ms.saturating_sub(c.offset_ms), c.t_ms)
                    } else {
                        return None;
                    };
                    Some(Sample {
                        of,
                        at_ms: shift(at_ms, via.offset_ms.saturating_neg()),
                        offset_ms,
                        rtt_ms: c.rtt_ms.saturating_add(via.rtt_ms),
                    })
                })
                .collect();
            own.sort_by_key(|s| s.at_ms);
            levels[usize::from(of - 1)] = steps(&own);
        }
        let reference = majority(base, &levels);
        // From offsets against the base to offsets against the reference, and from the
        // base's time to true time.
        let against = match reference {
            Reference::Server(_) => 0,
            Reference::Majority { .. } => {
                let others: Vec<i128> = levels
                    .iter()
                    .filter_map(|l| l.first().map(|l| i128::from(l.offset_ms)))
                    .collect();
                let count = i128::try_from(others.len().max(1)).unwrap_or(1);
                let mean = others.iter().sum::<i128>() / count;
                i64::try_from(mean).unwrap_or(0)
            }
        };
        if against != 0 {
            for level in levels.iter_mut().flatten() {
                level.offset_ms = level.offset_ms.saturating_sub(against);
                level.from_ms = shift(level.from_ms, against);
            }
            levels[usize::from(base - 1)] = vec![Level {
                from_ms: 0,
                offset_ms: against.saturating_neg(),
                rtt_ms: 0,
            }];
        }
        Clocks { reference, levels }
    }

    /// The true time of `local_ms` read on server `server`'s clock.
    pub fn to_true(&self, server: u8, local_ms: u64) -> u64 {
        let levels = self.of(server);
        // The level in effect: the last one that had begun by then, on this clock.
        let level = levels
            .iter()
            .rev()
            .find(|l| shift(l.from_ms, l.offset_ms) <= local_ms)
            .or(levels.first());
        match level {
            Some(level) => shift(local_ms, level.offset_ms.saturating_neg()),
            None => local_ms,
        }
    }

    /// Server `server`'s clock minus true time at true time `t_ms` (0 if never measured).
    pub fn offset_at(&self, server: u8, t_ms: u64) -> i64 {
        at_level(self.of(server), t_ms).map_or(0, |l| l.offset_ms)
    }

    /// Server `server`'s levels.
    pub fn of(&self, server: u8) -> &[Level] {
        match server {
            1..=3 => &self.levels[usize::from(server - 1)],
            _ => &[],
        }
    }

    /// Whether any estimate of server `server`'s clock exists.
    pub fn measured(&self, server: u8) -> bool {
        !self.of(server).is_empty()
    }

    /// Server `server`'s clock minus the reference, as first estimated (`None`: never
    /// measured, as the reference server's own clock is not).
    pub fn first_offset(&self, server: u8) -> Option<i64> {
        self.of(server).first().map(|l| l.offset_ms)
    }

    /// Whether the times count on server `server`'s own clock.
    pub fn is_reference(&self, server: u8) -> bool {
        self.reference == Reference::Server(server)
    }
}

/// The level in effect at `t_ms` (the first one before any began).
fn at_level(levels: &[Level], t_ms: u64) -> Option<Level> {
    levels
        .iter()
        .rev()
        .find(|l| l.from_ms <= t_ms)
        .or(levels.first())
        .copied()
}

/// Samples in time order to levels: a new level where the estimate moved by more than
/// the step minimum and the round trip.
fn steps(samples: &[Sample]) -> Vec<Level> {
    let mut levels: Vec<Level> = Vec::new();
    for sample in samples {
        let tolerance = STEP_MS_MIN.max(i64::try_from(sample.rtt_ms).unwrap_or(i64::MAX));
        let moved = levels
            .last()
            .is_none_or(|l| l.offset_ms.abs_diff(sample.offset_ms) > tolerance.unsigned_abs());
        if moved {
            levels.push(Level {
                from_ms: sample.at_ms,
                offset_ms: sample.offset_ms,
                rtt_ms: sample.rtt_ms,
            });
        }
    }
    levels
}

/// The base's clock is the reference unless the other two agree with each other and
/// neither with it.
fn majority(base: u8, levels: &[Vec<Level>; 3]) -> Reference {
    let firsts: Vec<i64> = levels
        .iter()
        .filter_map(|l| l.first().map(|l| l.offset_ms))
        .collect();
    match firsts[..] {
        [a, b]
            if a.abs_diff(b) <= AGREE_MS.unsigned_abs()
                && a.unsigned_abs() > AGREE_MS.unsigned_abs()
                && b.unsigned_abs() > AGREE_MS.unsigned_abs() =>
        {
            Reference::Majority { odd: base }
        }
        _ => Reference::Server(base),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hal_core::record::{Entry, Meta, PeerClock};

    use super::*;
    use crate::journal::read::Located;

    fn journal(server: u8, clocks: &[(u64, u8, i64)]) -> ServerJournal {
        ServerJournal {
            server,
            meta: Meta::default(),
            entries: clocks
                .iter()
                .enumerate()
                .map(|(i, &(t_ms, peer, offset_ms))| Located {
                    entry: Entry::from(Record::PeerClock(PeerClock {
                        t_ms,
                        server,
                        peer,
                        offset_ms,
                        rtt_ms: 2,
                    })),
                    file: Path::new(&format!("j{server}")).into(),
                    line: i + 2,
                })
                .collect(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn offsets_are_against_server_1_from_either_side() {
        // #2 is 90 s behind #1 (seen by #1); #3 is 2 s ahead (seen by #3 only).
        let clocks = Clocks::estimate(&[
            journal(1, &[(1_000_000, 2, -90_000)]),
            journal(3, &[(1_002_000, 1, -2_000)]),
        ]);
        assert_eq!(clocks.reference, Reference::Server(1));
        assert_eq!(clocks.offset_at(2, 1_000_000), -90_000);
        assert_eq!(clocks.offset_at(3, 1_000_000), 2_000);
        assert_eq!(clocks.to_true(2, 910_000), 1_000_000);
        assert_eq!(clocks.to_true(3, 1_002_000), 1_000_000);
        assert_eq!(clocks.to_true(1, 1_000_000), 1_000_000);
    }

    #[test]
    fn a_step_of_a_clock_starts_a_new_level_and_noise_does_not() {
        let clocks = Clocks::estimate(&[journal(
            1,
            &[
                (1_000_000, 2, 10),
                (1_060_000, 2, 40),
                (1_120_000, 2, -240_000),
            ],
        )]);
        let levels = clocks.of(2);
        assert_eq!(levels.len(), 2, "{levels:?}");
        assert_eq!(levels[1].offset_ms, -240_000);
        assert_eq!(levels[1].from_ms, 1_120_000);
        assert_eq!(clocks.offset_at(2, 1_100_000), 10);
        assert_eq!(clocks.offset_at(2, 1_200_000), -240_000);
    }

    #[test]
    fn when_two_agree_and_1_does_not_the_majority_is_the_reference() {
        // #1 runs 60 s ahead of #2 and #3, which agree.
        let clocks = Clocks::estimate(&[
            journal(1, &[(1_060_000, 2, -60_000), (1_060_000, 3, -60_100)]),
            journal(2, &[(1_000_000, 3, -100)]),
        ]);
        assert_eq!(clocks.reference, Reference::Majority { odd: 1 });
        assert!(!clocks.is_reference(1));
        assert_eq!(
            clocks.reference.to_string(),
            "the clock of the two servers other than #1, which agree"
        );
        assert_eq!(clocks.offset_at(1, 1_000_000), 60_050);
        assert_eq!(clocks.first_offset(1), Some(60_050));
        assert_eq!(clocks.to_true(1, 1_060_050), 1_000_000);
        assert!(clocks.offset_at(2, 1_000_000).abs() <= 50);
        assert!(clocks.offset_at(3, 1_000_000).abs() <= 50);
        // #2's and #3's times stay (nearly) as they are: theirs is the reference.
        assert!(clocks.to_true(2, 1_000_000).abs_diff(1_000_000) <= 50);
    }

    #[test]
    fn when_only_one_other_clock_differs_1_stays_the_reference() {
        // #2 is 60 s behind #1 and #3 agrees with #1: #2 is the odd one, #1 the reference.
        let clocks =
            Clocks::estimate(&[journal(1, &[(1_000_000, 2, -60_000), (1_000_000, 3, 20)])]);
        assert_eq!(clocks.reference, Reference::Server(1));
        assert!(clocks.is_reference(1));
        assert_eq!(clocks.reference.to_string(), "#1's clock");
        assert_eq!(clocks.first_offset(1), None);
        assert_eq!(clocks.first_offset(2), Some(-60_000));
    }

    #[test]
    fn estimates_a_journal_cannot_have_made_are_not_used() {
        // #1's journal with a record of #2's, one of #1 measuring itself and peers that
        // do not exist: none is an estimate, and none breaks the reading.
        let mut one = journal(1, &[(1_000_000, 1, 5_000), (1_000_000, 0, 7_000)]);
        one.entries
            .extend(journal(1, &[(1_000_000, 9, i64::MAX)]).entries);
        one.entries
            .extend(journal(2, &[(1_000_000, 1, 3_000)]).entries);
        let clocks = Clocks::estimate(&[one]);
        assert_eq!(clocks.reference, Reference::Server(1));
        for server in [0, 1, 2, 3, 9] {
            assert!(!clocks.measured(server), "#{server}");
            assert_eq!(clocks.to_true(server, 1_000_000), 1_000_000);
        }
    }

    #[test]
    fn a_server_measured_only_by_the_third_is_placed_through_it() {
        // #2 is 5 s ahead of #1; #3 is 3 s behind #2 (only #2 measured it).
        let clocks = Clocks::estimate(&[
            journal(1, &[(1_000_000, 2, 5_000)]),
            journal(2, &[(1_005_000, 3, -3_000)]),
        ]);
        assert_eq!(clocks.reference, Reference::Server(1));
        assert_eq!(clocks.offset_at(3, 1_000_000), 2_000);
    }

    #[test]
    fn an_unmeasured_clock_is_taken_as_it_is() {
        let clocks = Clocks::estimate(&[journal(1, &[])]);
        assert!(!clocks.measured(2));
        assert_eq!(clocks.to_true(2, 5), 5);
    }
}
