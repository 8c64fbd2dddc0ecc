//! The servers' wall clocks against one reference, from the `peer_clock` records of their
//! journals: each server's clock minus the reference's, as levels that change when a
//! clock stepped. The reference is server #1's clock (the lowest server whose clock did
//! not step: levels are placed on the reference's clock, so a clock that stepped cannot
//! place them), unless the other two agree with each other and not with it: then theirs
//! (the majority's), and #1 is the server whose clock is off. Whether a server's clock
//! stepped, its own journal says (its wall clock jumped against its monotonic clock);
//! only a journal without monotonic times that advance leaves it to its peers' estimates.
//! `hal-sim check` merges journals on it, `hal-sim import` replays an incident on it and
//! `hal-net report` dates usage on it.
//!
//! It does not model drift: a drifting clock shows as a staircase of small steps, one
//! each time the estimate moved by more than [`STEP_MS_MIN`] (or the round trip). It
//! trusts a journal only for its own server's estimates: a `peer_clock` record naming
//! another server is not used.
//!
//! A clock set back reads some times twice, so a record's own time does not say which
//! level it is on; its place in its journal and its monotonic clock (`mono_ms`) do
//! ([`Clocks::true_times`]).

use std::fmt;

use hal_core::record::Record;

use super::read::{Located, ServerJournal};

/// The least change of an offset taken as a step of a clock: the servers journal a new
/// estimate when it moves by 50 ms, and an estimate is off by up to half a round trip.
pub const STEP_MS_MIN: i64 = 100;
/// Two clocks within this much of each other agree (for the majority's reference).
pub const AGREE_MS: i64 = 1_000;
/// The fastest a wall clock is taken to drift or be slewed against the monotonic clock
/// (NTP slews at up to 500 ppm); more than this between two entries is a step.
pub const DRIFT_PPM_MAX: u64 = 1_000;
/// The most records after a process's first that are read to tell which level that first
/// one is on, when its time reads on two.
pub const LOOKAHEAD_MAX: usize = 10_000;

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
    /// Whether the clock the levels were placed on stepped too (no server's clock stayed
    /// steady): then a level may begin at the wrong time, and records near a step of any
    /// clock may be placed out of order.
    pub base_stepped: bool,
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
        let mut servers: Vec<u8> = journals
            .iter()
            .map(|j| j.server)
            .filter(|s| (1..=3).contains(s))
            .collect();
        servers.sort_unstable();
        servers.dedup();
        // Levels are placed on the base's clock, so a base whose clock stepped would
        // misplace them (a sample from before it was set back sorts after those from
        // after): the lowest server that did not step is the base.
        let candidates = servers
            .iter()
            .map(|&base| (base, levels_against(journals, base)));
        let mut first = None;
        let mut steady = None;
        for (base, levels) in candidates {
            let stepped = own_clock_stepped(journals, base)
                .unwrap_or_else(|| both_others_stepped(base, &levels));
            if !stepped {
                steady = Some((base, levels));
                break;
            }
            first.get_or_insert((base, levels));
        }
        let base_stepped = steady.is_none() && first.is_some();
        let (base, mut levels) = steady.or(first).unwrap_or_else(|| (1, Default::default()));
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
        Clocks {
            reference,
            levels,
            base_stepped,
        }
    }

    /// The true time of `local_ms` read on server `server`'s clock, on the last level
    /// that had begun by then on that clock (after a clock was set back, a time it read
    /// twice is taken as the second reading: [`Clocks::true_times`] knows better).
    pub fn to_true(&self, server: u8, local_ms: u64) -> u64 {
        latest_reading(self.of(server), local_ms)
    }

    /// The true time of each of `journal`'s entries, in its order (`None`: an entry
    /// without a time). Within one process (from a `start` record, while `mono_ms` grows)
    /// an entry is on the level in effect where the monotonic clock puts it after the
    /// entry before; a process's first entry, if its time reads on more than one level,
    /// is on the one that most of its next entries ([`LOOKAHEAD_MAX`]) agree with (the
    /// earliest on a tie). Entries without `mono_ms` are read as [`Clocks::to_true`] does.
    pub fn true_times(&self, journal: &ServerJournal) -> Vec<Option<u64>> {
        let levels = self.of(journal.server);
        let entries = &journal.entries;
        let mut times = Vec::with_capacity(entries.len());
        // The true time and monotonic time of the entry before, in this process.
        let mut before: Option<(u64, u64)> = None;
        for (i, located) in entries.iter().enumerate() {
            let entry = &located.entry;
            let Some(local_ms) = entry.record.t_ms() else {
                times.push(None);
                continue;
            };
            let expected_ms = match (before, entry.mono_ms) {
                (Some((t_ms, mono_before)), Some(mono)) if follows(located, mono_before) => {
                    Some(t_ms.saturating_add(mono - mono_before))
                }
                _ => None,
            };
            let t_ms = match expected_ms {
                Some(expected_ms) => nearest_reading(levels, local_ms, expected_ms),
                None => first_reading(levels, &entries[i..]),
            };
            before = entry.mono_ms.map(|mono| (t_ms, mono));
            times.push(Some(t_ms));
        }
        times
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

/// Whether `located` is an entry of the process that wrote an entry at monotonic
/// `mono_before`, after it: not a `start` record, and its monotonic clock went on.
fn follows(located: &Located, mono_before: u64) -> bool {
    !matches!(located.entry.record, Record::Start(_))
        && located
            .entry
            .mono_ms
            .is_some_and(|mono| mono >= mono_before)
}

/// The index of the level in effect at true time `t_ms` (the first one before any
/// began; 0 when there is none).
fn level_index(levels: &[Level], t_ms: u64) -> usize {
    levels
        .partition_point(|l| l.from_ms <= t_ms)
        .saturating_sub(1)
}

/// `local_ms` on `level`, as true time.
fn on(level: &Level, local_ms: u64) -> u64 {
    shift(local_ms, level.offset_ms.saturating_neg())
}

/// `local_ms` on the last level that had begun by then on the server's clock.
fn latest_reading(levels: &[Level], local_ms: u64) -> u64 {
    let level = levels
        .iter()
        .rev()
        .find(|l| shift(l.from_ms, l.offset_ms) <= local_ms)
        .or(levels.first());
    level.map_or(local_ms, |level| on(level, local_ms))
}

/// `local_ms` on the level (in effect at `expected_ms`, or a neighbour, for an entry at a
/// step) that puts it nearest to `expected_ms`.
fn nearest_reading(levels: &[Level], local_ms: u64, expected_ms: u64) -> u64 {
    let at = level_index(levels, expected_ms);
    let near = &levels[at.saturating_sub(1)..levels.len().min(at + 2)];
    near.iter()
        .map(|level| on(level, local_ms))
        .min_by_key(|t_ms| t_ms.abs_diff(expected_ms))
        .unwrap_or(local_ms)
}

/// The true time of `entries[0]`, the first of a process: on the one level whose span
/// holds the time it gives, or, when several do (a clock set back), the one its
/// process's next entries agree with most.
fn first_reading(levels: &[Level], entries: &[Located]) -> u64 {
    let Some(first) = entries.first() else {
        return 0;
    };
    let local_ms = first.entry.record.t_ms().unwrap_or(0);
    let (Some(mono_first), true) = (first.entry.mono_ms, levels.len() > 1) else {
        return latest_reading(levels, local_ms);
    };
    let readings: Vec<u64> = levels
        .iter()
        .enumerate()
        .map(|(i, level)| (i, on(level, local_ms)))
        .filter(|&(i, t_ms)| level_index(levels, t_ms) == i)
        .map(|(_, t_ms)| t_ms)
        .collect();
    if readings.len() < 2 {
        return readings
            .first()
            .copied()
            .unwrap_or_else(|| latest_reading(levels, local_ms));
    }
    let agreeing = |t_ms: u64| {
        let start_ms = i128::from(t_ms) - i128::from(mono_first);
        let mut mono_before = mono_first;
        let mut count = 0usize;
        for located in entries.iter().skip(1).take(LOOKAHEAD_MAX) {
            if !follows(located, mono_before) {
                break;
            }
            let (Some(mono), Some(local_ms)) = (located.entry.mono_ms, located.entry.record.t_ms())
            else {
                continue;
            };
            mono_before = mono;
            let expected_ms = u64::try_from(start_ms + i128::from(mono)).unwrap_or(0);
            let level = &levels[level_index(levels, expected_ms)];
            let tolerance_ms = STEP_MS_MIN.unsigned_abs().max(level.rtt_ms);
            if on(level, local_ms).abs_diff(expected_ms) <= tolerance_ms {
                count += 1;
            }
        }
        count
    };
    // The most agreeing; the earliest of those.
    readings
        .iter()
        .copied()
        .rev()
        .max_by_key(|&t_ms| agreeing(t_ms))
        .unwrap_or(local_ms)
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

/// Every other server's levels against `base`'s clock, placed on it: from the base's own
/// estimates and the others' estimates of it, then a server measured only against the
/// third one through it.
fn levels_against(journals: &[ServerJournal], base: u8) -> [Vec<Level>; 3] {
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
    levels
}

/// Whether `server`'s wall clock stepped, as its own journal shows it: within one
/// process, the wall clock moved away from the monotonic clock between two entries by more
/// than [`STEP_MS_MIN`] and [`DRIFT_PPM_MAX`] of the time between them. `None` when no
/// two entries of one process carry a monotonic time (or there is no journal): the
/// journal cannot say. A step while the server was down does not show here.
fn own_clock_stepped(journals: &[ServerJournal], server: u8) -> Option<bool> {
    let mut compared = false;
    for journal in journals.iter().filter(|j| j.server == server) {
        // The wall and monotonic times of the entry before, in this process (the first
        // of its monotonic millisecond: entries within one say nothing of the wall
        // clock's pace, and a step among them shows at the next millisecond).
        let mut before: Option<(u64, u64)> = None;
        for located in &journal.entries {
            let (Some(wall_ms), Some(mono_ms)) =
                (located.entry.record.t_ms(), located.entry.mono_ms)
            else {
                continue;
            };
            if let Some((wall_before, mono_before)) = before
                && follows(located, mono_before)
            {
                if mono_ms == mono_before {
                    continue;
                }
                compared = true;
                let mono_gap = mono_ms - mono_before;
                let wall_gap = i128::from(wall_ms) - i128::from(wall_before);
                let moved_ms = (wall_gap - i128::from(mono_gap)).unsigned_abs();
                let drift_ms_max = u128::from(mono_gap) * u128::from(DRIFT_PPM_MAX) / 1_000_000;
                if moved_ms > STEP_MS_MIN.unsigned_abs().into() && moved_ms > drift_ms_max {
                    return Some(true);
                }
            }
            before = Some((wall_ms, mono_ms));
        }
    }
    compared.then_some(false)
}

/// Whether `base`'s clock stepped, when its own journal cannot say: both other servers
/// show a step against it (a step of one of them shows against the base only in its own
/// levels). Two servers that stepped each on their own look the same.
fn both_others_stepped(base: u8, levels: &[Vec<Level>; 3]) -> bool {
    let stepping = (1u8..=3)
        .filter(|&s| s != base)
        .filter(|&s| levels[usize::from(s - 1)].len() > 1)
        .count();
    stepping >= 2
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

    use hal_core::record::{Entry, LinkRecord, Meta, PeerClock, Start};

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
    fn when_1s_own_clock_steps_and_back_the_next_server_is_the_reference() {
        // #1 is set back 162 s at true 1 019 000 and forward again at 1 023 000 (as
        // `hal-load nemesis`'s clock fault does); #2 and #3 see it, #1 sees them steady.
        let seen_by = |server| {
            journal(
                server,
                &[
                    (1_000_000, 1, 0),
                    (1_019_000, 1, -162_000),
                    (1_023_000, 1, 0),
                ],
            )
        };
        let clocks = Clocks::estimate(&[
            journal(
                1,
                &[(1_000_000, 2, 0), (1_000_000, 3, 0), (1_030_000, 2, 0)],
            ),
            seen_by(2),
            seen_by(3),
        ]);
        assert_eq!(clocks.reference, Reference::Server(2));
        assert_eq!(clocks.offset_at(1, 1_010_000), 0);
        assert_eq!(clocks.offset_at(1, 1_020_000), -162_000);
        assert_eq!(clocks.offset_at(1, 1_030_000), 0);
        assert_eq!(clocks.offset_at(3, 1_020_000), 0);
        assert_eq!(clocks.to_true(1, 1_040_000), 1_040_000);
    }

    /// Server `server`'s journal of `peer_clock` records with monotonic times: (its
    /// clock's time, its monotonic time, the peer, the peer's clock minus its own).
    fn journal_with_mono(server: u8, clocks: &[(u64, u64, u8, i64)]) -> ServerJournal {
        let mut journal = journal(server, &[]);
        for &(t_ms, mono_ms, peer, offset_ms) in clocks {
            let mut one = peer_clock_entry(server, t_ms, peer, offset_ms);
            one.entry.mono_ms = Some(mono_ms);
            one.line = journal.entries.len() + 2;
            journal.entries.push(one);
        }
        journal
    }

    fn peer_clock_entry(server: u8, t_ms: u64, peer: u8, offset_ms: i64) -> Located {
        let mut journal = journal(server, &[(t_ms, peer, offset_ms)]);
        journal.entries.remove(0)
    }

    /// #1's clock set back 114 s at true 1 003 000 and #2's 72 s at true 1 014 600; #3's
    /// steady (as in the simulator's LAN seed 68).
    fn two_set_back() -> [ServerJournal; 3] {
        [
            journal_with_mono(
                1,
                &[
                    (1_000_006, 6, 2, 0),
                    (1_000_006, 6, 3, 0),
                    (889_005, 3_005, 2, 114_000),
                    (889_005, 3_005, 3, 114_000),
                    (900_700, 14_700, 2, 42_000),
                ],
            ),
            journal_with_mono(
                2,
                &[
                    (1_000_006, 6, 1, 0),
                    (1_003_006, 3_006, 1, -114_000),
                    (942_700, 14_700, 1, -42_000),
                    (942_700, 14_700, 3, 72_000),
                ],
            ),
            journal_with_mono(
                3,
                &[
                    (1_000_005, 5, 1, 0),
                    (1_000_005, 5, 2, 0),
                    (1_003_005, 3_005, 1, -114_000),
                    (1_014_605, 14_605, 2, -72_000),
                ],
            ),
        ]
    }

    #[test]
    fn when_two_clocks_step_the_base_is_the_one_whose_own_journal_shows_no_step() {
        let journals = two_set_back();
        assert_eq!(own_clock_stepped(&journals, 1), Some(true));
        assert_eq!(own_clock_stepped(&journals, 2), Some(true));
        assert_eq!(own_clock_stepped(&journals, 3), Some(false));
        let clocks = Clocks::estimate(&journals);
        assert_eq!(clocks.reference, Reference::Server(3));
        assert!(!clocks.base_stepped);
        assert_eq!(clocks.offset_at(1, 1_002_000), 0);
        assert_eq!(clocks.offset_at(1, 1_010_000), -114_000);
        assert_eq!(clocks.offset_at(1, 1_020_000), -114_000);
        assert_eq!(clocks.offset_at(2, 1_010_000), 0);
        assert_eq!(clocks.offset_at(2, 1_020_000), -72_000);
        // #1's record at true 1 010 000, after its step.
        assert_eq!(clocks.to_true(1, 896_000), 1_010_000);
    }

    #[test]
    fn without_monotonic_times_two_clocks_that_stepped_leave_no_steady_base() {
        // Each server sees both others step: every base looks stepped, and the clocks
        // say so rather than pass #1's stepped clock off as steady.
        let journals = two_set_back().map(|mut journal| {
            for located in &mut journal.entries {
                located.entry.mono_ms = None;
            }
            journal
        });
        assert_eq!(own_clock_stepped(&journals, 1), None);
        assert!(Clocks::estimate(&journals).base_stepped);
    }

    #[test]
    fn a_wall_clock_drifting_or_slewed_is_not_a_step_of_it() {
        // 500 ppm for 100 s, then 80 ms in a second: neither is a step.
        let drifting = [journal_with_mono(
            1,
            &[
                (1_000_000, 0, 2, 0),
                (1_100_050, 100_000, 2, 0),
                (1_101_130, 101_000, 2, 0),
            ],
        )];
        assert_eq!(own_clock_stepped(&drifting, 1), Some(false));
        assert_eq!(own_clock_stepped(&drifting, 2), None);
        // 150 ms in a second is.
        let stepped = [journal_with_mono(
            1,
            &[(1_000_000, 0, 2, 0), (1_001_150, 1_000, 2, 0)],
        )];
        assert_eq!(own_clock_stepped(&stepped, 1), Some(true));
        // Entries within one monotonic millisecond say nothing; a step among them shows
        // at the next one.
        let still = [journal_with_mono(
            1,
            &[(1_000_000, 7, 2, 0), (1_005_000, 7, 2, 0)],
        )];
        assert_eq!(own_clock_stepped(&still, 1), None);
        let within = [journal_with_mono(
            1,
            &[
                (1_000_000, 7, 2, 0),
                (886_000, 7, 2, 0),
                (886_005, 12, 2, 0),
            ],
        )];
        assert_eq!(own_clock_stepped(&within, 1), Some(true));
        // A restart starts its monotonic clock again: not a step.
        let mut restarted = journal_with_mono(1, &[(1_000_000, 50_000, 2, 0)]);
        restarted
            .entries
            .extend(journal_with_mono(1, &[(1_010_000, 10, 2, 0)]).entries);
        assert_eq!(own_clock_stepped(&[restarted], 1), None);
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

    /// #1 measured #2's clock even with its own until true 1 008 900, and 25.4 s behind
    /// from then on (#2's clock was set back).
    fn set_back() -> Clocks {
        Clocks::estimate(&[journal(1, &[(1_000_000, 2, 0), (1_008_900, 2, -25_400)])])
    }

    /// #2's journal: (its clock's time, its monotonic time; a start record or a link).
    fn journal_of_2(entries: &[(u64, Option<u64>, bool)]) -> ServerJournal {
        let mut journal = journal(2, &[]);
        for (i, &(t_ms, mono_ms, start)) in entries.iter().enumerate() {
            let record = if start {
                Record::Start(Start {
                    t_ms,
                    server: 2,
                    version: "0".into(),
                    pid: 1,
                    recovered: Default::default(),
                })
            } else {
                Record::Link(LinkRecord {
                    t_ms,
                    server: 2,
                    peer: 3,
                    up: true,
                    reason: None,
                })
            };
            journal.entries.push(Located {
                entry: Entry { record, mono_ms },
                file: Path::new("j2").into(),
                line: i + 2,
            });
        }
        journal
    }

    #[test]
    fn a_time_read_twice_after_a_clock_was_set_back_is_placed_by_the_monotonic_clock() {
        let clocks = set_back();
        // True 1 000 005 (start), 1 005 000, then after the step 1 010 000 and 1 030 000.
        let two = journal_of_2(&[
            (1_000_005, Some(0), true),
            (1_005_000, Some(4_995), false),
            (984_600, Some(9_995), false),
            (1_004_600, Some(29_995), false),
        ]);
        assert_eq!(
            clocks.true_times(&two),
            [
                Some(1_000_005),
                Some(1_005_000),
                Some(1_010_000),
                Some(1_030_000)
            ]
        );
        // Its time alone reads on the later level.
        assert_eq!(clocks.to_true(2, 1_005_000), 1_030_400);
    }

    #[test]
    fn a_process_starting_at_a_time_read_twice_is_placed_by_its_next_records() {
        let clocks = set_back();
        // Restarted at true 1 020 000 (its clock reads 994 600, as it did at true
        // 994 600): its record at true 1 040 000 reads past the step on the later level
        // only.
        let two = journal_of_2(&[
            (994_600, Some(0), true),
            (999_600, Some(5_000), false),
            (1_014_600, Some(20_000), false),
        ]);
        assert_eq!(
            clocks.true_times(&two),
            [Some(1_020_000), Some(1_025_000), Some(1_040_000)]
        );
        // Records without a monotonic time are read on the later level, as to_true does.
        let two = journal_of_2(&[(994_600, None, true), (999_600, None, false)]);
        assert_eq!(clocks.true_times(&two), [Some(1_020_000), Some(1_025_000)]);
    }
}
