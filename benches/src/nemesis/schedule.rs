//! The nemesis's fault schedule: which faults, on which servers, when and for how long,
//! drawn from one seed (ChaCha), so that a run prints its seed and `--seed` replays the
//! same schedule. Faults come one at a time with a calm period between them; the kinds
//! are dealt from a shuffled deck, so a run long enough for seven faults has each kind
//! once. Pure: this module applies nothing.

use std::time::Duration;

use hal_core::ServerId;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Calm at the start, before the first fault: the clients get going.
const FIRST_FAULT_AFTER: Duration = Duration::from_secs(2);
/// How long a fault lasts, ms.
const FAULT_MS: std::ops::RangeInclusive<u64> = 2_000..=5_000;
/// The calm after a fault, ms.
const CALM_MS: std::ops::RangeInclusive<u64> = 1_500..=3_500;
/// Percent of packets lost.
const LOSS_PCT: std::ops::RangeInclusive<u8> = 10..=60;
/// How often a flapping link changes, ms.
const FLAP_MS: std::ops::RangeInclusive<u64> = 150..=500;
/// One-way delay on a slow link, ms.
const LATENCY_MS: std::ops::RangeInclusive<u64> = 20..=250;
/// How far a server's wall clock steps, seconds either way (well inside the hour the
/// certificates are backdated by, and the LAN profile's five-minute clock skew).
const CLOCK_STEP_S: std::ops::RangeInclusive<i64> = 30..=180;

/// The kinds of fault, by the names the fault log uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Crash,
    Cut,
    CutOneway,
    Loss,
    Flapping,
    Latency,
    Clock,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Crash,
        FaultKind::Cut,
        FaultKind::CutOneway,
        FaultKind::Loss,
        FaultKind::Flapping,
        FaultKind::Latency,
        FaultKind::Clock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Cut => "cut",
            FaultKind::CutOneway => "cut_oneway",
            FaultKind::Loss => "loss",
            FaultKind::Flapping => "flapping",
            FaultKind::Latency => "latency",
            FaultKind::Clock => "clock",
        }
    }
}

/// Who is cut off from server `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// This one server.
    One(ServerId),
    /// Both other servers: `a` is isolated.
    Both,
}

/// One fault and its targets. A pair `a`, `b` is affected both ways unless said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of the server; started again from its data when the fault ends.
    Crash { server: ServerId },
    /// Nothing passes between `a` and `b` (one server, or both others).
    Cut { a: ServerId, b: Others },
    /// Nothing from `from` reaches `to`; the other way works.
    CutOneway { from: ServerId, to: ServerId },
    /// Each packet between `a` and `b` is lost with probability `pct` percent.
    Loss { a: ServerId, b: ServerId, pct: u8 },
    /// A cut between `a` and `b` made and healed every `period`.
    Flapping {
        a: ServerId,
        b: ServerId,
        period: Duration,
    },
    /// Every byte between `a` and `b` arrives `delay` late, each way.
    Latency {
        a: ServerId,
        b: ServerId,
        delay: Duration,
    },
    /// The server's wall clock (not its monotonic one) steps by `step_s` seconds, and
    /// back when the fault ends.
    Clock { server: ServerId, step_s: i64 },
}

impl std::fmt::Display for Fault {
    /// `crash #3`, `cut #1-#2`, `cut_oneway #1->#2`, `loss 30% #1-#2`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.kind().name();
        match *self {
            Fault::Crash { server } => write!(f, "{name} {server}"),
            Fault::Cut {
                a,
                b: Others::One(b),
            } => write!(f, "{name} {a}-{b}"),
            Fault::Cut { a, b: Others::Both } => write!(f, "{name} {a} from both others"),
            Fault::CutOneway { from, to } => write!(f, "{name} {from}->{to}"),
            Fault::Loss { a, b, pct } => write!(f, "{name} {pct}% {a}-{b}"),
            Fault::Flapping { a, b, period } => write!(f, "{name} {a}-{b} every {period:?}"),
            Fault::Latency { a, b, delay } => write!(f, "{name} {delay:?} {a}-{b}"),
            Fault::Clock { server, step_s } => write!(f, "{name} {server} {step_s:+}s"),
        }
    }
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Cut { .. } => FaultKind::Cut,
            Fault::CutOneway { .. } => FaultKind::CutOneway,
            Fault::Loss { .. } => FaultKind::Loss,
            Fault::Flapping { .. } => FaultKind::Flapping,
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::Clock { .. } => FaultKind::Clock,
        }
    }

    /// The servers on each side, as the fault log's `a` and `b` name them.
    pub fn sides(&self) -> (Vec<ServerId>, Vec<ServerId>) {
        match *self {
            Fault::Crash { server } | Fault::Clock { server, .. } => (vec![server], Vec::new()),
            Fault::Cut { a, b: Others::Both } => (vec![a], others(a).to_vec()),
            Fault::Cut {
                a,
                b: Others::One(b),
            }
            | Fault::Loss { a, b, .. }
            | Fault::Flapping { a, b, .. }
            | Fault::Latency { a, b, .. } => (vec![a], vec![b]),
            Fault::CutOneway { from, to } => (vec![from], vec![to]),
        }
    }
}

/// A fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// When it starts, from the start of the fault phase.
    pub at: Duration,
    /// How long it lasts.
    pub lasts: Duration,
    pub fault: Fault,
}

/// The schedule of `seed` for a fault phase of `duration`: every fault ends by then.
pub fn plan(seed: u64, duration: Duration) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut deck = Vec::new();
    let mut planned = Vec::new();
    let mut at = FIRST_FAULT_AFTER;
    loop {
        if deck.is_empty() {
            deck.extend(FaultKind::ALL);
            deck.shuffle(&mut rng);
        }
        let Some(kind) = deck.pop() else {
            unreachable!("the deck was just filled")
        };
        let lasts = Duration::from_millis(rng.random_range(FAULT_MS));
        if at + lasts > duration {
            return planned;
        }
        let fault = draw(&mut rng, kind);
        planned.push(Planned { at, lasts, fault });
        at += lasts + Duration::from_millis(rng.random_range(CALM_MS));
    }
}

/// The two servers other than `a`, in slot order.
pub fn others(a: ServerId) -> [ServerId; 2] {
    let [x, y, z] = ServerId::ALL;
    if a == x {
        [y, z]
    } else if a == y {
        [x, z]
    } else {
        [x, y]
    }
}

/// A fault of `kind` on servers drawn at random.
fn draw(rng: &mut ChaCha8Rng, kind: FaultKind) -> Fault {
    let a = ServerId::ALL[rng.random_range(0..3)];
    let b = others(a)[rng.random_range(0..2)];
    match kind {
        FaultKind::Crash => Fault::Crash { server: a },
        FaultKind::Cut => {
            let isolate = rng.random_bool(0.5);
            let b = if isolate {
                Others::Both
            } else {
                Others::One(b)
            };
            Fault::Cut { a, b }
        }
        FaultKind::CutOneway => Fault::CutOneway { from: a, to: b },
        FaultKind::Loss => Fault::Loss {
            a,
            b,
            pct: rng.random_range(LOSS_PCT),
        },
        FaultKind::Flapping => Fault::Flapping {
            a,
            b,
            period: Duration::from_millis(rng.random_range(FLAP_MS)),
        },
        FaultKind::Latency => Fault::Latency {
            a,
            b,
            delay: Duration::from_millis(rng.random_range(LATENCY_MS)),
        },
        FaultKind::Clock => {
            let size = rng.random_range(CLOCK_STEP_S);
            let step_s = if rng.random_bool(0.5) { size } else { -size };
            Fault::Clock { server: a, step_s }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_schedule_and_another_seed_another() {
        let duration = Duration::from_secs(60);
        assert_eq!(plan(7, duration), plan(7, duration));
        assert_ne!(plan(7, duration), plan(8, duration));
    }

    #[test]
    fn the_seed_of_the_nemesis_test_deals_every_kind_in_40_s() {
        // benches/tests/nemesis.rs runs seed 6 for 40 s and expects each kind once.
        let mut kinds: Vec<FaultKind> = plan(6, Duration::from_secs(40))
            .iter()
            .map(|p| p.fault.kind())
            .collect();
        kinds.sort();
        assert_eq!(kinds, FaultKind::ALL);
    }

    #[test]
    fn faults_come_one_at_a_time_with_calm_between_and_end_in_time() {
        for seed in 0..50 {
            let duration = Duration::from_secs(40);
            let planned = plan(seed, duration);
            assert!(!planned.is_empty(), "seed {seed}");
            assert!(planned[0].at >= FIRST_FAULT_AFTER);
            for pair in planned.windows(2) {
                let calm = pair[1].at - (pair[0].at + pair[0].lasts);
                assert!(calm >= Duration::from_millis(*CALM_MS.start()), "{pair:?}");
            }
            let last = planned[planned.len() - 1];
            assert!(last.at + last.lasts <= duration, "seed {seed}");
        }
    }

    #[test]
    fn seven_faults_are_one_of_each_kind_on_two_different_servers() {
        for seed in 0..50 {
            let planned = plan(seed, Duration::from_secs(600));
            assert!(planned.len() >= 7, "seed {seed}");
            let mut kinds: Vec<FaultKind> = planned[..7].iter().map(|p| p.fault.kind()).collect();
            kinds.sort();
            assert_eq!(kinds, FaultKind::ALL, "seed {seed}");
            for p in &planned {
                let (a, b) = p.fault.sides();
                assert!(a.iter().all(|s| !b.contains(s)), "{p:?}");
                if let Fault::Clock { step_s, .. } = p.fault {
                    assert!(step_s.unsigned_abs() >= 30, "{p:?}");
                }
            }
        }
    }
}
