//! The faults of DESIGN §6.2 between the servers, drawn swarm-style from the seed: each
//! seed enables its own subset of fault kinds, then draws a schedule of faults from it,
//! each healed before the next begins. The world applies them on time and records each
//! in the history; [`crate::effects`] proves each took effect (a fault that did nothing
//! is a harness bug).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::ServerId;
use hal_core::record::{FaultKind, LinkState, RoleName};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::clock::SimClock;
use crate::error::Broken;
use crate::history::History;

/// A fault, or its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Crash(ServerId),
    /// A clean stop (an operator's `systemctl stop`): the server is asked to shut down,
    /// and its process exits when it has.
    Stop(ServerId),
    Restart(ServerId),
    /// Cut one server off from the other two, both ways.
    Isolate(ServerId),
    Rejoin(ServerId),
    /// Cut the link between two servers both ways (1↔2 alone is the asymmetric cut).
    Cut(ServerId, ServerId),
    Mend(ServerId, ServerId),
    /// Drop what the first sends to the second.
    OneWay(ServerId, ServerId),
    MendOneWay(ServerId, ServerId),
    /// Hold messages between two servers (delivered on release).
    Hold(ServerId, ServerId),
    Release(ServerId, ServerId),
    /// A slow link: at most this latency.
    Slow(ServerId, ServerId, Duration),
    Fast(ServerId, ServerId),
    /// A flapping link: from `Flap` to `Steady`, the link goes down (`FlapDown`, a cut
    /// both ways) and up (`FlapUp`) again and again.
    Flap(ServerId, ServerId),
    FlapDown(ServerId, ServerId),
    FlapUp(ServerId, ServerId),
    Steady(ServerId, ServerId),
    /// A server's wall clock stepped by an offset and running at a drift (ppm).
    Clock(ServerId, i64, i64),
}

/// The kinds a seed may enable.
const KINDS: usize = 7;

pub fn servers() -> [ServerId; 3] {
    [ServerId::PRIMARY, ServerId::SECONDARY, ServerId::TIEBREAKER]
}

/// The other two servers, in id order.
pub fn peers(id: ServerId) -> Vec<ServerId> {
    servers().into_iter().filter(|&s| s != id).collect()
}

pub fn host(id: ServerId) -> String {
    format!("server{}", id.get())
}

fn pick(rng: &mut ChaCha8Rng) -> ServerId {
    servers()[rng.random_range(0..3)]
}

fn pair(rng: &mut ChaCha8Rng) -> (ServerId, ServerId) {
    let a = pick(rng);
    (a, peers(a)[rng.random_range(0..2)])
}

/// The shortest fault: long enough for a few probes to cross (or not) every link it
/// touches.
const FAULT_MIN: Duration = Duration::from_millis(300);
/// The shortest phase of a flapping link.
const FLAP_MIN_MS: u64 = 100;

/// One fault of kind `kind`, lasting `lasting`: its steps, at offsets from its start.
fn draw(
    rng: &mut ChaCha8Rng,
    kind: usize,
    lasting: Duration,
    max_skew_ms: i64,
) -> Vec<(Duration, Fault)> {
    let (start, end) = match kind {
        0 => {
            let s = pick(rng);
            (Fault::Crash(s), Fault::Restart(s))
        }
        1 => {
            let s = pick(rng);
            (Fault::Isolate(s), Fault::Rejoin(s))
        }
        2 => {
            let (a, b) = pair(rng);
            (Fault::Cut(a, b), Fault::Mend(a, b))
        }
        3 => {
            let (a, b) = pair(rng);
            (Fault::OneWay(a, b), Fault::MendOneWay(a, b))
        }
        4 => {
            let (a, b) = pair(rng);
            (Fault::Hold(a, b), Fault::Release(a, b))
        }
        5 => {
            let (a, b) = pair(rng);
            if rng.random_bool(0.5) {
                let latency = Duration::from_millis(rng.random_range(20..400));
                (Fault::Slow(a, b, latency), Fault::Fast(a, b))
            } else {
                let phase = |_down: bool| random_phase(rng);
                return flapping(a, b, lasting, phase);
            }
        }
        _ => {
            // Within the skew the protocol is built for.
            let offset = rng.random_range(-max_skew_ms / 2..=max_skew_ms / 2);
            let drift = rng.random_range(-500..=500);
            return vec![(Duration::ZERO, Fault::Clock(pick(rng), offset, drift))];
        }
    };
    vec![(Duration::ZERO, start), (lasting, end)]
}

/// A link between `a` and `b` going down and up for `lasting`, each phase as long as
/// `phase` says (given whether the link goes down), cut short at the end but never to a
/// sliver shorter than [`FLAP_MIN_MS`].
pub fn flapping(
    a: ServerId,
    b: ServerId,
    lasting: Duration,
    mut phase: impl FnMut(bool) -> Duration,
) -> Vec<(Duration, Fault)> {
    let mut steps = vec![(Duration::ZERO, Fault::Flap(a, b))];
    let (mut t, mut down) = (Duration::ZERO, false);
    let min = Duration::from_millis(FLAP_MIN_MS);
    while t < lasting {
        steps.push((
            t,
            if down {
                Fault::FlapUp(a, b)
            } else {
                Fault::FlapDown(a, b)
            },
        ));
        down = !down;
        let mut this = phase(down).max(min).min(lasting - t);
        if lasting - t - this < min {
            // No sliver of a phase at the end: this one lasts to the end.
            this = lasting - t;
        }
        t += this;
    }
    if down {
        steps.push((lasting, Fault::FlapUp(a, b)));
    }
    steps.push((lasting, Fault::Steady(a, b)));
    steps
}

/// A random phase of a flapping link: 100–800 ms.
pub fn random_phase(rng: &mut ChaCha8Rng) -> Duration {
    Duration::from_millis(rng.random_range(FLAP_MIN_MS..800))
}

/// The step that ends `fault`, for a fault that has one.
pub fn heal(fault: Fault) -> Option<Fault> {
    Some(match fault {
        Fault::Crash(s) | Fault::Stop(s) => Fault::Restart(s),
        Fault::Isolate(s) => Fault::Rejoin(s),
        Fault::Cut(a, b) => Fault::Mend(a, b),
        Fault::OneWay(a, b) => Fault::MendOneWay(a, b),
        Fault::Hold(a, b) => Fault::Release(a, b),
        Fault::Slow(a, b, _) => Fault::Fast(a, b),
        Fault::Flap(a, b) => Fault::Steady(a, b),
        _ => return None,
    })
}

/// Whether `fault` ends a fault (or a phase of one) rather than starting one.
pub fn heals(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Restart(_)
            | Fault::Rejoin(_)
            | Fault::Mend(..)
            | Fault::MendOneWay(..)
            | Fault::Release(..)
            | Fault::Fast(..)
            | Fault::FlapUp(..)
            | Fault::Steady(..)
    )
}

/// The faults of one seed: its enabled kinds, then faults one after another during
/// `chaos`, each healed (a slow link: what it carries arrived) before the next begins and
/// by the end of `chaos`.
pub fn schedule(
    rng: &mut ChaCha8Rng,
    chaos: Duration,
    max_skew: Duration,
) -> Vec<(Duration, Fault)> {
    let enabled: Vec<usize> = loop {
        let kinds: Vec<usize> = (0..KINDS).filter(|_| rng.random_bool(0.5)).collect();
        if !kinds.is_empty() {
            break kinds;
        }
    };
    let max_skew_ms = i64::try_from(max_skew.as_millis()).unwrap_or(i64::MAX);
    let mut schedule = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(1_000..4_000));
    while t + FAULT_MIN <= chaos {
        let kind = enabled[rng.random_range(0..enabled.len())];
        // One fault in five outlasts a client's lease (8 s in the standard world) and the
        // expiry margin: seats expire while it lasts, on either side of it.
        let lasting_ms = if rng.random_bool(0.2) {
            rng.random_range(6_000..16_000)
        } else {
            rng.random_range(300..6_000)
        };
        let lasting = Duration::from_millis(lasting_ms).min(chaos - t);
        let mut settled = lasting;
        for (offset, fault) in draw(rng, kind, lasting, max_skew_ms) {
            if let Fault::Slow(_, _, latency) = fault {
                // Healed once what the slow link still carries has arrived.
                settled = lasting + latency;
            }
            schedule.push((t + offset, fault));
        }
        t += settled + Duration::from_millis(rng.random_range(200..4_000));
    }
    schedule
}

/// What the faults did to each directed link between servers, as turmoil holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Way {
    #[default]
    Open,
    Cut,
    Held,
}

/// The state of every directed server link, kept beside turmoil's so that a crash can
/// silence a dying server and then put its links back as they were, and the latency a
/// link returns to when it stops being slow.
#[derive(Debug)]
pub struct Book {
    ways: [[Way; 3]; 3],
    normal: (Duration, Duration),
    /// Every machine that is not a server (silenced too when a server crashes).
    others: Vec<String>,
    stops: Stops,
    /// The servers asked to stop that have not exited yet, and since when (ms).
    stopping: BTreeMap<ServerId, u64>,
    /// The servers whose process has stopped while their machine runs on.
    stopped: [bool; 3],
}

/// How long a server asked to stop may take to exit before the harness calls it a bug.
pub const STOP_MAX: Duration = Duration::from_secs(10);

/// Each server's switch for a clean stop: the running process holds the receiving end
/// ([`Stops::switch`], taken when it starts), the driver pulls it ([`Stops::ask`]), and
/// the process says when it has stopped ([`Stops::exited`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Stops(Arc<Mutex<[StopSlot; 3]>>);

#[derive(Debug, Default)]
struct StopSlot {
    ask: Option<tokio::sync::oneshot::Sender<()>>,
    exited: bool,
}

impl Stops {
    fn slots(&self) -> std::sync::MutexGuard<'_, [StopSlot; 3]> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new process of `s` starts: what tells it to stop.
    pub fn switch(&self, s: ServerId) -> tokio::sync::oneshot::Receiver<()> {
        let (ask, asked) = tokio::sync::oneshot::channel();
        self.slots()[s.index()] = StopSlot {
            ask: Some(ask),
            exited: false,
        };
        asked
    }

    /// Asks `s`'s process to stop; false if no process of it listens.
    fn ask(&self, s: ServerId) -> bool {
        self.slots()[s.index()]
            .ask
            .take()
            .is_some_and(|ask| ask.send(()).is_ok())
    }

    /// `s`'s process has stopped cleanly.
    pub fn exited(&self, s: ServerId) {
        self.slots()[s.index()].exited = true;
    }

    /// The servers that stopped since the last call, in id order.
    fn take_exited(&self) -> Vec<ServerId> {
        let mut slots = self.slots();
        servers()
            .into_iter()
            .filter(|s| std::mem::take(&mut slots[s.index()].exited))
            .collect()
    }
}

impl Default for Book {
    fn default() -> Book {
        Book::with_latency(NORMAL_LATENCY)
    }
}

impl Book {
    /// Links that take from `min` to `max` when nothing slows them.
    pub fn with_latency((min, max): (Duration, Duration)) -> Book {
        Book {
            ways: Default::default(),
            normal: (min, max),
            others: Vec::new(),
            stops: Stops::default(),
            stopping: BTreeMap::new(),
            stopped: [false; 3],
        }
    }

    /// Whether `s`'s process has stopped while its machine runs on.
    pub(crate) fn is_stopped(&self, s: ServerId) -> bool {
        self.stopped[s.index()]
    }

    /// The stop switches the servers' processes take.
    pub(crate) fn stops(&self) -> Stops {
        self.stops.clone()
    }

    /// The servers that stopped since the last call, recorded as stopped and returned.
    /// Their machine runs on without the server (a connection to its port is refused at
    /// once, as after a process exits). A server asked to stop that has not exited within
    /// [`STOP_MAX`] is a harness failure (the node ignored its shutdown).
    pub(crate) fn stopped(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        history: &History,
    ) -> Result<Vec<ServerId>, Broken> {
        let t_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        let exited = self.stops.take_exited();
        for &s in &exited {
            self.stopping.remove(&s);
            self.stopped[s.index()] = true;
            history.fault(t_ms, FaultKind::Stop, &[s], &[]);
            history.role(t_ms, s, RoleName::Down, 0);
        }
        let late_ms = u64::try_from(STOP_MAX.as_millis()).unwrap_or(u64::MAX);
        if let Some((s, asked)) = self.stopping.iter().find(|(_, at)| t_ms - **at > late_ms) {
            return Err(Broken::WouldNotStop {
                server: *s,
                asked_ms: *asked,
                t_ms,
            });
        }
        Ok(exited)
    }

    /// The machines besides the servers are `others` (none unless given).
    pub fn with_others(mut self, others: Vec<String>) -> Book {
        self.others = others;
        self
    }

    fn set(&mut self, a: ServerId, b: ServerId, way: Way) {
        self.ways[a.index()][b.index()] = way;
    }

    fn both(&mut self, a: ServerId, b: ServerId, way: Way) {
        self.set(a, b, way);
        self.set(b, a, way);
    }
}

/// Crashes server `s` so that nothing it sends while dying gets out. (Tokio drops a
/// dying runtime's tasks in an order that depends on task ids, a process-wide counter:
/// the closing messages of their sockets would reach the peers in an order that depends
/// on what other threads do. A crash modelled as a power cut sends nothing, and stays
/// deterministic.)
fn crash_silently(sim: &mut turmoil::Sim<'_>, s: ServerId, book: &Book) {
    let peers = peers(s);
    for &p in &peers {
        sim.partition_oneway(host(s), host(p));
    }
    for other in &book.others {
        sim.partition_oneway(host(s), other.as_str());
    }
    sim.crash(host(s));
    for other in &book.others {
        sim.repair_oneway(host(s), other.as_str());
    }
    for &p in &peers {
        match book.ways[s.index()][p.index()] {
            Way::Open => sim.repair_oneway(host(s), host(p)),
            Way::Cut => {}
            Way::Held => {
                sim.repair_oneway(host(s), host(p));
                sim.hold(host(s), host(p));
            }
        }
    }
}

/// The latency of a link nothing slows (the standard world's).
pub const NORMAL_LATENCY: (Duration, Duration) =
    (Duration::from_micros(200), Duration::from_millis(2));

/// Sets the latency of the link between `a` and `b` to `min..=max`.
fn set_latency(sim: &turmoil::Sim<'_>, a: ServerId, b: ServerId, (min, max): (Duration, Duration)) {
    // turmoil sets a link's minimum only together with its maximum.
    sim.set_link_latency(host(a), host(b), min);
    sim.set_link_max_message_latency(host(a), host(b), max);
}

/// Applies `fault` now and records it; [`crate::effects`] checks that it took effect.
/// An error is a harness bug.
pub fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: Fault,
    clocks: &[SimClock; 3],
    book: &mut Book,
    history: &History,
) -> Result<(), Broken> {
    let t_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
    match fault {
        Fault::Crash(s) => {
            book.stopped[s.index()] = false;
            crash_silently(sim, s, book);
            if sim.is_host_running(host(s)) {
                return Err(Broken::RunsAfterCrash { server: s, t_ms });
            }
            history.fault(t_ms, FaultKind::Crash, &[s], &[]);
            history.role(t_ms, s, RoleName::Down, 0);
        }
        Fault::Stop(s) => {
            // Recorded when the process exits ([`Book::stopped`]); a server that is not
            // running has nothing to stop.
            if sim.is_host_running(host(s)) && book.stops.ask(s) {
                book.stopping.insert(s, t_ms);
            }
        }
        Fault::Restart(s) => {
            book.stopping.remove(&s);
            if std::mem::take(&mut book.stopped[s.index()]) {
                // A stopped server's machine still runs: what the exited process left
                // goes without a word, and the server starts again.
                crash_silently(sim, s, book);
            } else if sim.is_host_running(host(s)) {
                // A restart of a running server (an operator restarting the service):
                // its process dies first, as in a crash, so that it stays deterministic.
                crash_silently(sim, s, book);
                history.fault(t_ms, FaultKind::Crash, &[s], &[]);
                history.role(t_ms, s, RoleName::Down, 0);
            }
            sim.bounce(host(s));
            if !sim.is_host_running(host(s)) {
                return Err(Broken::DownAfterRestart { server: s, t_ms });
            }
            history.fault(t_ms, FaultKind::Restart, &[s], &[]);
        }
        Fault::Isolate(s) => {
            for o in peers(s) {
                sim.partition(host(s), host(o));
                book.both(s, o, Way::Cut);
            }
            history.fault(t_ms, FaultKind::Partition, &[s], &peers(s));
        }
        Fault::Rejoin(s) => {
            for o in peers(s) {
                sim.repair(host(s), host(o));
                book.both(s, o, Way::Open);
            }
            history.fault(t_ms, FaultKind::Repair, &[s], &peers(s));
        }
        Fault::Cut(a, b) | Fault::FlapDown(a, b) => {
            sim.partition(host(a), host(b));
            book.both(a, b, Way::Cut);
            history.fault(t_ms, FaultKind::Partition, &[a], &[b]);
        }
        Fault::Mend(a, b) | Fault::FlapUp(a, b) => {
            sim.repair(host(a), host(b));
            book.both(a, b, Way::Open);
            history.fault(t_ms, FaultKind::Repair, &[a], &[b]);
        }
        Fault::OneWay(a, b) => {
            sim.partition_oneway(host(a), host(b));
            book.set(a, b, Way::Cut);
            history.fault(t_ms, FaultKind::PartitionOneway, &[a], &[b]);
        }
        Fault::MendOneWay(a, b) => {
            sim.repair_oneway(host(a), host(b));
            book.set(a, b, Way::Open);
            history.fault(t_ms, FaultKind::RepairOneway, &[a], &[b]);
        }
        Fault::Hold(a, b) => {
            sim.hold(host(a), host(b));
            book.both(a, b, Way::Held);
            history.fault(t_ms, FaultKind::Hold, &[a], &[b]);
        }
        Fault::Release(a, b) => {
            sim.release(host(a), host(b));
            book.both(a, b, Way::Open);
            history.fault(t_ms, FaultKind::Release, &[a], &[b]);
        }
        Fault::Slow(a, b, latency) => {
            // Jitter from half the latency up to all of it.
            set_latency(sim, a, b, (latency / 2, latency));
            let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
            history.fault_with(t_ms, FaultKind::Link, &[a], &[b], |f| {
                f.state = Some(LinkState::Slow);
                f.latency_ms = Some(latency_ms);
            });
        }
        Fault::Fast(a, b) => {
            set_latency(sim, a, b, book.normal);
            history.fault_with(t_ms, FaultKind::Link, &[a], &[b], |f| {
                f.state = Some(LinkState::Normal);
            });
        }
        Fault::Flap(a, b) => {
            history.fault_with(t_ms, FaultKind::Link, &[a], &[b], |f| {
                f.state = Some(LinkState::Flapping);
            });
        }
        Fault::Steady(a, b) => {
            history.fault_with(t_ms, FaultKind::Link, &[a], &[b], |f| {
                f.state = Some(LinkState::Normal);
            });
        }
        Fault::Clock(s, offset_ms, drift_ppm) => {
            let clock = &clocks[s.index()];
            clock.set_offset(offset_ms);
            clock.set_drift(drift_ppm, sim.elapsed());
            history.fault_with(t_ms, FaultKind::Clock, &[s], &[], |f| {
                f.offset_ms = Some(offset_ms);
                f.drift_ppm = Some(drift_ppm);
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// The rules the effect checks rely on, over many seeds: faults come one at a time,
    /// each lasts long enough for probes to cross it (a flapping link's down phases too),
    /// a slow link's messages arrive before the next fault, and everything is healed by
    /// the end of the chaos.
    #[test]
    fn schedules_keep_faults_apart_and_healed_in_time() {
        let chaos = Duration::from_secs(20);
        let least = Duration::from_millis(100);
        let mut longest = Duration::ZERO;
        for seed in 0..2_000 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let schedule = schedule(&mut rng, chaos, Duration::from_secs(300));
            for pair in schedule.windows(2) {
                if heals(&pair[1].1) {
                    longest = longest.max(pair[1].0 - pair[0].0);
                }
            }
            let mut open: Option<(Duration, Fault)> = None;
            let mut down_since = None;
            let mut settled = Duration::ZERO;
            for &(t, fault) in &schedule {
                assert!(t <= chaos, "seed {seed}: {fault:?} at {t:?}");
                let flapping = matches!(open, Some((_, Fault::Flap(..))));
                match fault {
                    Fault::FlapDown(..) => {
                        assert!(flapping && down_since.is_none(), "seed {seed}: {t:?}");
                        down_since = Some(t);
                    }
                    Fault::FlapUp(..) => {
                        let since = down_since.take();
                        assert!(
                            flapping && since.is_some_and(|s| t - s >= least),
                            "seed {seed}: {t:?}"
                        );
                    }
                    Fault::Clock(..) => assert!(open.is_none() && t >= settled, "seed {seed}"),
                    _ if heals(&fault) => {
                        let Some((since, started)) = open.take() else {
                            panic!("seed {seed}: {fault:?} at {t:?} heals nothing");
                        };
                        assert!(
                            t - since >= least,
                            "seed {seed}: {started:?} healed at {t:?}"
                        );
                        assert!(down_since.is_none(), "seed {seed}: a flap ends down");
                        settled = t;
                        if let Fault::Slow(_, _, latency) = started {
                            settled += latency;
                        }
                    }
                    _ => {
                        assert!(
                            open.is_none(),
                            "seed {seed}: {fault:?} at {t:?} during {open:?}"
                        );
                        assert!(
                            t >= settled,
                            "seed {seed}: {fault:?} at {t:?} before {settled:?}"
                        );
                        open = Some((t, fault));
                    }
                }
            }
            assert_eq!(
                open, None,
                "seed {seed}: not healed by the end of the chaos"
            );
        }
        // Some faults outlast a lease of the standard world and its expiry margin.
        assert!(longest > Duration::from_secs(9), "{longest:?}");
    }
}
