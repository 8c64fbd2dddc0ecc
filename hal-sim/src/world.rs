//! The simulated world of a seed sweep: three servers running hal-net's node driver over
//! turmoil, clients running hal-net's client session, a fault schedule drawn from the
//! seed, and the history of everything that happened. The seed's world is a scenario
//! ([`scenario_of`]) played by the scenario runner, the one every scenario file runs in;
//! this module holds what both share (the servers, the driver, the clients' sessions).
//!
//! One seed fixes the run: turmoil's `rng_seed`, a pinned epoch, and ChaCha generators
//! for everything the world decides (fault schedule, client ids, hold times). The same
//! seed twice writes byte-identical histories.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use hal_core::ServerEvent;
use hal_core::ServerId;
use hal_core::catalog::Catalog;
use hal_core::client::ClientConfig;
use hal_core::license::parse as parse_license;
use hal_core::plant::Plants;
use hal_core::protocol::ClientId;
use hal_core::record::{ClientEventRecord, FaultKind};
use hal_core::server::Config;
use hal_core::server::SeatChange;
use hal_core::timing::Timing;
use hal_net::config::{TIMING_FIELDS, TimingProfile, timing_field};
use hal_net::node::{EventHook, LinkTiming, Node, NodeConfig, NodeError};
use hal_net::session::{Session, Tapped};
use hal_net::storage::{FileStorage, IfBlank, StorageError};
use hal_net::wire::Identity;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::aim::Aim;
use crate::check::Violation;
use crate::clock::SimClock;
use crate::effects::Effects;
use crate::error::{Broken, HarnessError};
use crate::faults::{self, Fault, host, servers};
use crate::history::{History, now_ms};
use crate::net::SimTransport;
use crate::probe::{self, Probes};
use crate::scenario::{
    Action, ClientAct, ClientGroup, Expect, LivenessFrom, Scenario, ServerSpec, Step,
};
use crate::storage::{self, DiskCounts, SimDisk};

/// The wall clock at the start of every run: 2027-01-15T08:00:00Z.
pub const EPOCH_MS: u64 = 1_800_000_000_000;
/// The port every server listens on.
const PORT: u16 = 6200;
/// The feature every run serves.
pub const FEATURE: &str = "cad";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub seed: u64,
    pub timing: Timing,
    pub clients: usize,
    /// Faults happen in this first part of the run.
    pub chaos: Duration,
    /// Then every fault is healed, and the triad must serve again.
    pub calm: Duration,
    pub count: u32,
    /// How long a sync takes.
    pub sync_time: Duration,
    /// A bug planted on purpose, to prove the checkers catch it.
    pub planted: Option<Planted>,
    /// The most log entries a server keeps before it snapshots: small, so that runs
    /// take snapshots and send them to servers that fell behind.
    pub log_entries_max: usize,
    /// These faults instead of the ones the seed draws.
    pub faults: Option<Vec<(Duration, Fault)>>,
}

/// Bugs the world can plant, each one that an invariant must catch (README, "Planted
/// bugs"). Four are the world's own (a wrong license, a disk, a transport); the rest are
/// planted in hal-core's server or client code and exist only in a build with the
/// `plant` feature (`cargo run -p hal-sim --features plant -- plants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planted {
    /// The servers are told COUNT twice what the license says (as if they skipped the
    /// COUNT check for half the seats): no overuse must fire.
    DoubleCount,
    /// The servers never hand the role back to #1 (their failback hold is a day), while
    /// the history says the usual hold: once #1 is back and healthy, #2 keeps serving,
    /// and the role rule must fire.
    NoFailback,
    /// The servers believe a peer's hello (their transport proves nothing, as in
    /// plaintext): an impostor step in a scenario is welcomed, and its expectation (and
    /// the seats its forged snapshot wipes) must fail the run. The seed sweeps run no
    /// impostor, so there it changes nothing.
    TrustHello,
    /// Every disk's sync reports success and makes nothing durable (an fsync lost to a
    /// lying disk cache): a crashed server comes back with any prefix of what it wrote
    /// since it started, without part of what it acknowledged.
    LostFsync,
    /// A bug planted in hal-core ([`hal_core::plant::Plant`]).
    #[cfg(feature = "plant")]
    Core(hal_core::plant::Plant),
}

impl Planted {
    /// The name `hal-sim --plant` takes.
    pub fn name(self) -> &'static str {
        match self {
            Planted::DoubleCount => "double-count",
            Planted::NoFailback => "no-failback",
            Planted::TrustHello => "trust-hello",
            Planted::LostFsync => "lost-fsync",
            #[cfg(feature = "plant")]
            Planted::Core(plant) => plant.name(),
        }
    }

    /// Every bug this build can plant: the world's own, then hal-core's (with the `plant`
    /// feature).
    pub fn all() -> Vec<Planted> {
        #[allow(unused_mut)]
        let mut all = vec![
            Planted::DoubleCount,
            Planted::NoFailback,
            Planted::TrustHello,
            Planted::LostFsync,
        ];
        #[cfg(feature = "plant")]
        all.extend(hal_core::plant::Plant::ALL.map(Planted::Core));
        all
    }

    /// The bug named `name`, or why there is none: an unknown name, or one of hal-core's
    /// in a build without the `plant` feature.
    pub fn parse(name: &str) -> Result<Planted, String> {
        if let Some(planted) = Planted::all().into_iter().find(|p| p.name() == name) {
            return Ok(planted);
        }
        if hal_core::plant::Plant::ALL.iter().any(|p| p.name() == name) {
            return Err(format!(
                "'{name}' is planted in hal-core's code, which this build leaves out: \
                 build hal-sim with `--features plant` (a debug build; never a release one)"
            ));
        }
        let names: Vec<&str> = Planted::all().iter().map(|p| p.name()).collect();
        Err(format!(
            "no planted bug is called '{name}'; this build plants {}",
            names.join(", ")
        ))
    }

    /// The transport the servers run over with `planted` (or no bug) planted.
    pub(crate) fn server_transport(planted: Option<Planted>) -> SimTransport {
        if planted == Some(Planted::TrustHello) {
            SimTransport::danger_believing_hellos()
        } else {
            SimTransport::new()
        }
    }

    /// The bugs `planted` plants in hal-core's servers and clients.
    pub(crate) fn plants(planted: Option<Planted>) -> Plants {
        match planted {
            #[cfg(feature = "plant")]
            Some(Planted::Core(plant)) => Plants::only(plant),
            _ => Plants::NONE,
        }
    }
}

impl WorldConfig {
    /// The standard world: LAN timing, `clients` clients, COUNT 5. Client leases are
    /// short (8 s, heartbeats every 2 s) so that expiry happens within a run; one seed in
    /// four has clocks hours apart ([`seed_skew`]).
    pub fn lan(seed: u64, clients: usize) -> WorldConfig {
        let timing = Timing {
            client_lease: Duration::from_secs(8),
            client_heartbeat: Duration::from_secs(2),
            ..Timing::lan()
        };
        WorldConfig {
            seed,
            timing: Timing {
                max_clock_skew: seed_skew(seed, timing.max_clock_skew),
                ..timing
            },
            clients,
            chaos: Duration::from_secs(20),
            calm: Duration::from_secs(10),
            count: 5,
            sync_time: Duration::from_millis(2),
            planted: None,
            faults: None,
            log_entries_max: 16,
        }
    }
}

/// The skew bound of seed `seed`'s triad: `usual`, or in one seed in four (from a stream
/// of its own) three hours: clocks hours apart, and a triad configured for it. The
/// clocks then start up to half of it apart from true time, and the clock faults step
/// them as far, so that a server can pass a one-hour borrow's end within a run (a borrowed seat is kept until its end
/// plus the skew bound, and a borrow is granted for whole hours).
pub fn seed_skew(seed: u64, usual: Duration) -> Duration {
    // "skew" in ASCII.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x736b_6577);
    if rng.random_bool(0.25) {
        Duration::from_secs(3 * 3_600)
    } else {
        usual
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub history: Vec<String>,
    /// The first invariant violation; the run stopped there.
    pub violation: Option<Violation>,
    /// What each server journaled (as a real one's journal would hold it).
    pub journals: Vec<hal_net::journal::read::ServerJournal>,
    /// What the servers' disks saw (crashes, torn tails, compactions), summed.
    pub disks: DiskCounts,
}

/// How one server of a simulated triad is set up.
#[derive(Debug, Clone)]
pub struct ServerSetup {
    /// The license as this server applies it.
    pub catalog: Catalog,
    /// What this server tells its peers (its triad list, its license).
    pub identity: Identity,
    /// Where this server looks for each peer (from its own triad list).
    pub peers: BTreeMap<ServerId, String>,
    /// How long a sync of its disk takes.
    pub sync_time: Duration,
    /// Bugs planted in the server's code.
    pub plants: Plants,
    /// A planted bug: its disk's syncs make nothing durable.
    pub lose_syncs: bool,
    /// The most log entries kept before a snapshot.
    pub log_entries_max: usize,
    /// Its machine's HostID, which a pushed license's HOSTID locks are checked against.
    pub hostid: hal_core::HostId,
}

/// Server `id`'s entry in a triad list (`6200@server1`).
pub fn triad_entry(id: ServerId) -> String {
    format!("{PORT}@{}", host(id))
}

/// The address a client or peer dials for server `id`.
pub fn address(id: ServerId) -> String {
    format!("{}:{PORT}", host(id))
}

fn node_config(id: ServerId, timing: Timing, setup: &ServerSetup) -> NodeConfig {
    NodeConfig {
        core: Config {
            plants: setup.plants,
            log_entries_max: setup.log_entries_max,
            // A scenario's pushes are taken unsigned (the scenario's own license was
            // checked when it was loaded); the servers start from no license in the log.
            licensing: Some(hal_core::server::Licensing {
                hostid: setup.hostid.clone(),
                vendor_key: None,
                file: None,
            }),
            ..Config::triad(id, timing)
        },
        listen: format!("0.0.0.0:{PORT}"),
        peers: setup.peers.clone(),
        identity: setup.identity.clone(),
        client_connections_max: 1024,
        client_connections_per_address_max: 1024,
        certificate_expires_ms: None,
        borrow_signer: None,
        journal: hal_net::journal::Journal::off(),
        license_file: None,
        links: LinkTiming::for_timing(&timing),
    }
}

/// Records role changes of server `id` into the history.
fn role_hook(id: ServerId, history: History) -> EventHook {
    EventHook(Arc::new(move |event: &ServerEvent| {
        if let ServerEvent::SeatChanged { index, change } = event {
            history.seat(now_ms(), id, index.0, change);
        }
        on_event(id, &history, event);
    }))
}

/// The history records other than `seat` that server `id`'s `event` makes.
fn on_event(id: ServerId, history: &History, event: &ServerEvent) {
    match event {
        ServerEvent::RoleChanged { role, term } => {
            history.role(now_ms(), id, (*role).into(), term.0);
        }
        ServerEvent::SeatChanged {
            change:
                SeatChange::Granted {
                    client,
                    seq,
                    handle,
                    ..
                },
            ..
        } => history.applied_grant(now_ms(), id, *client, seq.0, &handle.to_string()),
        ServerEvent::SeatChanged {
            change: SeatChange::Removed {
                client, handle, by, ..
            },
            ..
        } => history.applied_removal(now_ms(), id, *client, &handle.to_string(), by),
        ServerEvent::Checkpoint {
            index,
            digest,
            installed,
        } => history.checkpoint(now_ms(), id, index.0, *digest, *installed),
        ServerEvent::LicenseChanged {
            index,
            text,
            by,
            restart: false,
            ..
        } => history.license(now_ms(), id, index.0, by, text),
        ServerEvent::OptionsChanged { index, text, by } => {
            history.options(now_ms(), id, index.0, by, text);
        }
        _ => {}
    }
}

/// How long a checkout may take in the liveness phase: an election (#2 waits
/// `election_timeout` + `failover_delay`), a client request timing out on a dead server
/// (`election_timeout`), and once more for a failback's hand-over, with a margin.
pub fn liveness_bound(timing: &Timing) -> Duration {
    (timing.election_timeout + timing.failover_delay) * 3
}

/// A run that could not be judged: a harness bug (a fault that took no effect) or a
/// simulation that failed (a server stopped with an error). The history up to then is
/// kept, for the timeline.
pub struct Failure {
    pub what: HarnessError,
    pub history: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.what)
    }
}

/// Only what failed: the history would drown it.
impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} records of history)",
            self.what,
            self.history.len()
        )
    }
}

/// The disk of server `id` in the run of `seed`: its crashes draw from a stream of their
/// own ("disk" in ASCII, and the server), so that the other draws do not depend on them.
pub(crate) fn disk(seed: u64, id: ServerId, setup: &ServerSetup) -> SimDisk {
    let stream = seed ^ 0x6469_736b ^ (u64::from(id.get()) << 32);
    SimDisk::new(stream, setup.sync_time, setup.lose_syncs)
}

/// What the servers' machines share with the harness: their clocks, the history their
/// role changes go into, the probers beside them, their stop switches and their disks.
pub(crate) struct Watch<'a> {
    pub clocks: &'a [SimClock; 3],
    pub history: &'a History,
    pub probes: &'a Probes,
    pub stops: faults::Stops,
    pub disks: &'a [SimDisk; 3],
}

/// Starts the three servers on `sim` over `transport`, each with its setup, `timing`, its
/// clock, its disk and a prober beside it.
pub(crate) fn spawn_servers(
    sim: &mut turmoil::Sim<'_>,
    transport: SimTransport,
    setups: [ServerSetup; 3],
    timing: Timing,
    watch: &Watch<'_>,
) {
    for (id, setup) in servers().into_iter().zip(setups) {
        let stops = watch.stops.clone();
        let disk = watch.disks[id.index()].clone();
        let clock = watch.clocks[id.index()].clone();
        let (history, probes) = (watch.history.clone(), watch.probes.clone());
        sim.host(host(id), move || {
            let fs = disk.boot();
            let files = disk.file_config(setup.plants);
            let (clock, hook) = (clock.clone(), role_hook(id, history.clone()));
            tokio::task::spawn_local(probe::run(id, clock.clone(), EPOCH_MS, probes.clone()));
            let (mut config, catalog) = (node_config(id, timing, &setup), setup.catalog.clone());
            config.journal = history.journal(id);
            let (stops, asked) = (stops.clone(), stops.switch(id));
            let history = history.clone();
            async move {
                let dir = std::path::Path::new(storage::DATA_DIR);
                let storage = match FileStorage::open_in(fs, dir, IfBlank::Refuse, files) {
                    Ok(storage) => storage,
                    Err(error) => return refused(&history, id, error),
                };
                let node = Node::bind(config, catalog, transport, storage, clock)
                    .await?
                    .on_event(hook);
                let stop = async move {
                    // A dropped switch (the run is over) is no request to stop.
                    if asked.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                match node.run(stop).await {
                    Err(NodeError::Storage(error)) => return refused(&history, id, error),
                    other => other?,
                }
                // The process exits: the driver takes it off the machine.
                stops.exited(id);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
}

/// A server that cannot start from its disk: a disk that only lost what the crash model
/// lets it lose must always be recoverable, so a damaged or blank data directory is a
/// violation (of "11 restarts after a crash"), and the run stops there. Any other storage
/// error fails the simulation.
fn refused(history: &History, id: ServerId, error: StorageError) -> turmoil::Result {
    match error {
        StorageError::Corrupt { .. } | StorageError::Blank { .. } => {
            history.refused_start(now_ms(), id, &error.to_string());
            Ok(())
        }
        error => Err(error.into()),
    }
}

/// The one way a simulation is built, for every world: the seed's, a pinned epoch, 1 ms
/// ticks, messages taking `min` to `max`, and a minute past `end` for the run to wind down.
pub(crate) fn simulation<'a>(
    seed: u64,
    end: Duration,
    (min, max): (Duration, Duration),
) -> turmoil::Sim<'a> {
    turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
        .simulation_duration(end + Duration::from_secs(60))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(min)
        .max_message_latency(max)
        // Room for every probe a long hold keeps back.
        .udp_capacity(4096)
        .build()
}

/// Faults at their times.
pub type Schedule = Vec<(Duration, Fault)>;

/// The fault schedule the seed draws (unless the config gives one): the servers'
/// faults, and in a triad configured for clocks hours apart, the clocks' offsets at the
/// start.
pub fn schedule_of(config: &WorldConfig) -> Schedule {
    if let Some(faults) = &config.faults {
        return faults.clone();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let skew = config.timing.max_clock_skew;
    let mut schedule = faults::schedule(&mut rng, config.chaos, skew);
    if skew >= Duration::from_secs(3_600) {
        // Clocks hours apart from the start: each one behind true time, on it or ahead
        // of it by about half the bound (from a stream of their own: "clocks" in ASCII).
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x636c_6f63_6b73);
        let half = i64::try_from(skew.as_millis() / 2).unwrap_or(i64::MAX);
        let apart = servers().into_iter().map(|s| {
            let near = rng.random_range(-half / 10..=half / 10);
            let offset = rng.random_range(-1..=1) * (half - half / 10) + near;
            (Duration::ZERO, Fault::Clock(s, offset, 0))
        });
        schedule.splice(0..0, apart);
    }
    schedule
}

/// The faults of the client machine's links, as `disconnect` steps of the group `who`:
/// the outage of [`client_outage`] if the seed has one, and with even odds some short
/// ones, one after another during the chaos (none during the outage), each a cut from one
/// server or a hold of everything between the clients and one server (what heavy loss
/// does to TCP: nothing arrives, then all of it, late), for 0.3 to 4 s. Drawn from streams
/// of their own, so that a seed's server faults do not depend on them (none when the
/// config gives its faults).
fn client_link_steps(config: &WorldConfig, who: &str) -> Vec<Step> {
    if config.faults.is_some() {
        return Vec::new();
    }
    let step = |at, lasting, from: Vec<ServerId>, held| Step {
        at,
        line: 0,
        action: Action::Client {
            who: who.to_string(),
            act: ClientAct::Disconnect {
                lasting,
                from,
                held,
            },
        },
        expect: Expect::default(),
    };
    let mut steps = Vec::new();
    let outage = client_outage(config);
    if let Some((from, to)) = outage {
        steps.push(step(from, to - from, servers().to_vec(), false));
    }
    // "clients" in ASCII, so the stream differs from the seed's own.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0063_6c69_656e_7473);
    if !rng.random_bool(0.5) {
        return steps;
    }
    let least = Duration::from_millis(300);
    let mut t = Duration::from_millis(rng.random_range(1_000..5_000));
    while t + least <= config.chaos {
        let server = servers()[rng.random_range(0..3)];
        let lasting = Duration::from_millis(rng.random_range(300..4_000)).min(config.chaos - t);
        let hold = rng.random_bool(0.5);
        // None during the outage, which a heal of one server's link would cut short.
        let apart = Duration::from_millis(500);
        if outage.is_none_or(|(from, to)| t + lasting + apart < from || to + apart < t) {
            steps.push(step(t, lasting, vec![server], hold));
        }
        t += lasting + Duration::from_millis(rng.random_range(500..5_000));
    }
    steps
}

/// The client machine off the network (a laptop leaving the VPN) for longer than a
/// lease, in one seed in four where the chaos is long enough: every seat held then is
/// lost, and the client library must say so when its lease runs out (invariant 9).
/// From a stream of its own, so that the other faults do not depend on it.
fn client_outage(config: &WorldConfig) -> Option<(Duration, Duration)> {
    // "outage" in ASCII.
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x6f75_7461_6765);
    if !rng.random_bool(0.25) {
        return None;
    }
    let lease = config.timing.client_lease;
    let lasting = lease + lease.mul_f64(rng.random_range(0.0..1.0));
    let first = Duration::from_secs(1);
    let latest = config.chaos.checked_sub(lasting)?.checked_sub(first)?;
    let from = first + latest.mul_f64(rng.random_range(0.0..1.0));
    let ms = |d: Duration| Duration::from_millis(d.as_millis() as u64);
    Some((ms(from), ms(from + lasting)))
}

/// The seed's faults, one [`Step`] per fault (its start and end together; a flapping
/// link's phases are drawn again when the scenario runs).
fn steps(schedule: &[(Duration, Fault)]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut open: Option<(Duration, Fault)> = None;
    for &(t, fault) in schedule {
        let action = match (open, fault) {
            (_, Fault::Clock(..)) => Some(Action::Server {
                fault,
                lasting: None,
            }),
            (_, Fault::FlapDown(..) | Fault::FlapUp(..)) => None,
            (Some((since, Fault::Flap(a, b))), Fault::Steady(..)) => {
                open = None;
                Some(Action::Flap {
                    a,
                    b,
                    lasting: t - since,
                    down: None,
                    up: None,
                })
            }
            (Some((since, started)), healing) if faults::heals(&healing) => {
                open = None;
                Some(Action::Server {
                    fault: started,
                    lasting: Some(t - since),
                })
            }
            (_, started) => {
                open = Some((t, started));
                None
            }
        };
        if let Some(action) = action {
            let at = match &action {
                Action::Server {
                    lasting: Some(d), ..
                }
                | Action::Flap { lasting: d, .. } => t - *d,
                _ => t,
            };
            steps.push(Step {
                at,
                line: 0,
                action,
                expect: Expect::default(),
            });
        }
    }
    if let Some((t, fault)) = open {
        steps.push(Step {
            at: t,
            line: 0,
            action: Action::Server {
                fault,
                lasting: None,
            },
            expect: Expect::default(),
        });
    }
    steps
}

/// The world of `config` as a scenario: its license, timing, a group `c` of clients at
/// work (the `work` verb) and the seed's faults (of the servers, and of the client
/// machine's links as `disconnect` steps), its crashes aimed at the disks' syncs. The
/// world is run as this scenario, so a file written from it replays the run.
pub fn scenario_of(config: &WorldConfig) -> Result<Scenario, HarnessError> {
    let license_text = format!(
        "FEATURE {FEATURE}\n{{\n  VENDOR = sim\n  COUNT = {}\n  HAL_SERVERS = 3\n  BORROW = 72\n}}\n",
        config.count
    );
    let license = parse_license("generated license", license_text.as_bytes())
        .map_err(|e| HarnessError::Setup(format!("the generated license does not parse: {e}")))?;
    let end = config.chaos + config.calm;
    let mut timing_overrides = Vec::new();
    let mut timing = config.timing;
    for key in TIMING_FIELDS {
        if let Some(value) = timing_field(&mut timing, key) {
            timing_overrides.push((key.to_string(), *value));
        }
    }
    let mut steps = steps(&schedule_of(config));
    steps.extend(client_link_steps(config, "c"));
    steps.push(Step {
        at: Duration::ZERO,
        line: 0,
        action: Action::Client {
            who: "c".into(),
            act: ClientAct::Work {
                feature: FEATURE.into(),
                until: end,
                chaos: (config.chaos > Duration::ZERO).then_some(config.chaos),
            },
        },
        expect: Expect::default(),
    });
    steps.sort_by_key(|s| s.at);
    Ok(Scenario {
        source_name: format!("seed {}", config.seed),
        name: format!("Sweep seed {}", config.seed),
        story: format!(
            "Seed {} of a seed sweep: {} clients at work, and the faults the seed draws.",
            config.seed, config.clients
        ),
        seed: Some(config.seed),
        license,
        license_text,
        profile: TimingProfile::Lan,
        timing: config.timing,
        timing_overrides,
        latency: faults::NORMAL_LATENCY.0,
        jitter: faults::NORMAL_LATENCY.1 - faults::NORMAL_LATENCY.0,
        servers: faults::servers().map(|_| ServerSpec {
            sync_time: config.sync_time,
            log_entries_max: Some(config.log_entries_max),
            ..ServerSpec::default()
        }),
        clients: vec![ClientGroup {
            name: "c".into(),
            count: Some(u32::try_from(config.clients.max(1)).unwrap_or(1)),
            path: faults::servers().to_vec(),
            line: 0,
        }],
        steps,
        checks: Vec::new(),
        duration: end,
        duration_given: true,
        liveness: LivenessFrom::At(config.chaos),
        warnings: Vec::new(),
        audit: audit_time(config),
        aim_crashes: true,
    })
}

/// Runs one world to the end: the scenario the config makes ([`scenario_of`]), played
/// by the scenario runner as a file would be.
pub fn run(config: &WorldConfig) -> Result<Run, Failure> {
    let scenario = scenario_of(config).map_err(|what| Failure {
        what,
        history: Vec::new(),
    })?;
    let outcome = crate::scenario::run(&scenario, config.seed, config.planted);
    match outcome.failure {
        Some(what) => Err(Failure {
            what,
            history: outcome.history,
        }),
        None => Ok(Run {
            history: outcome.history,
            violation: outcome.violation,
            journals: outcome.journals,
            disks: outcome.disks,
        }),
    }
}

/// What `disks` saw, summed.
pub(crate) fn disk_counts(disks: &[SimDisk; 3]) -> DiskCounts {
    disks
        .iter()
        .fold(DiskCounts::default(), |sum, disk| sum.plus(disk.counts()))
}

/// When the harness reads the active server's seat table for invariant 7: a second
/// before the end, if the run has been calm for two liveness bounds by then (time for
/// every client to settle what it gave up during the faults).
pub(crate) fn audit_time(config: &WorldConfig) -> Option<Duration> {
    let at = (config.chaos + config.calm).checked_sub(Duration::from_secs(1))?;
    let calm_enough = config.chaos + liveness_bound(&config.timing) * 2;
    (at >= calm_enough).then_some(at)
}

/// Reads the seat table of the active server at `at` and records it (`audit`).
pub(crate) async fn audit(at: Duration, history: History) {
    let now = turmoil::sim_elapsed().unwrap_or_default();
    tokio::time::sleep(at.saturating_sub(now)).await;
    let limit = Duration::from_secs(1);
    let ask = |id| async move {
        hal_net::admin::status(&SimTransport::new(), &address(id), id, limit).await
    };
    let (one, two, three) = tokio::join!(
        ask(ServerId::PRIMARY),
        ask(ServerId::SECONDARY),
        ask(ServerId::TIEBREAKER)
    );
    let active = [one, two, three]
        .into_iter()
        .flatten()
        .find(|report| report.role == hal_core::server::Role::Active);
    // No active server: the liveness check speaks to that.
    let Some(report) = active else {
        return;
    };
    let holders: Vec<(String, String)> = report
        .features
        .iter()
        .flat_map(|f| &f.holders)
        .map(|h| {
            (
                hal_core::protocol::Handle(h.handle).to_string(),
                h.user.clone(),
            )
        })
        .collect();
    history.audit(report.server, &holders);
}

/// What the driver does at a point in time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Planned {
    /// A fault between servers.
    Fault(Fault),
    /// A client machine cut off from some servers (`cut`), or back.
    Clients(ClientsCut),
    /// The end of a crash that was given a length: the server restarts, unless it
    /// already has.
    Recover(ServerId),
}

/// A client machine's network fault: the machine `host` (recorded as `name`) cut off
/// from `servers`, or mended; with `hold`, its messages to and from them held back
/// (delivered late, as a lossy link delivers over TCP), or released.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClientsCut {
    pub host: String,
    pub name: String,
    pub servers: Vec<ServerId>,
    pub cut: bool,
    pub hold: bool,
}

/// Steps the simulation to its end, applying the planned faults on time (crashes aimed
/// at the disks' syncs, with `aim`) and checking that they take effect. An error is a
/// harness bug or a failed simulation.
pub(crate) fn drive(
    sim: &mut turmoil::Sim<'_>,
    plan: Vec<(Duration, Planned)>,
    clocks: &[SimClock; 3],
    history: &History,
    effects: &mut Effects,
    mut book: faults::Book,
    mut aim: Option<Aim>,
) -> Result<(), HarnessError> {
    let mut plan = plan.into_iter().peekable();
    let mut client_cuts: BTreeMap<(String, ServerId), u32> = BTreeMap::new();
    loop {
        let now = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(crash) = aimed(&mut aim, sim.elapsed(), false) {
            apply(sim, crash, now, clocks, &mut book, history, effects)?;
        }
        while let Some((_, planned)) = plan.next_if(|(t, _)| *t <= sim.elapsed()) {
            let next = plan.peek().map(|(t, _)| *t);
            // A crash still waiting for its moment comes before any later step.
            if let Some(crash) = aimed(&mut aim, sim.elapsed(), true) {
                apply(sim, crash, now, clocks, &mut book, history, effects)?;
            }
            let planned = match planned {
                Planned::Recover(s) if sim.is_host_running(host(s)) && !book.is_stopped(s) => {
                    continue;
                }
                Planned::Recover(s) => Planned::Fault(Fault::Restart(s)),
                other => other,
            };
            match planned {
                Planned::Recover(_) => {}
                Planned::Fault(Fault::Crash(s))
                    if aim.as_mut().is_some_and(|a| a.hold(s, sim.elapsed(), next)) => {}
                Planned::Fault(fault) => {
                    apply(sim, fault, now, clocks, &mut book, history, effects)?;
                }
                Planned::Clients(held) if held.hold => {
                    for &s in &held.servers {
                        if held.cut {
                            sim.hold(held.host.as_str(), host(s));
                        } else {
                            sim.release(held.host.as_str(), host(s));
                        }
                    }
                    let fault = if held.cut {
                        FaultKind::Hold
                    } else {
                        FaultKind::Release
                    };
                    history.clients_fault(now, fault, &held.name, &held.servers);
                }
                Planned::Clients(cut) => {
                    // Cuts of one machine may overlap: the link opens when the last ends.
                    for &s in &cut.servers {
                        let count = client_cuts.entry((cut.host.clone(), s)).or_insert(0u32);
                        if cut.cut {
                            *count += 1;
                            if *count == 1 {
                                sim.partition(cut.host.as_str(), host(s));
                            }
                        } else {
                            *count = count.saturating_sub(1);
                            if *count == 0 {
                                sim.repair(cut.host.as_str(), host(s));
                            }
                        }
                    }
                    let fault = if cut.cut {
                        FaultKind::Partition
                    } else {
                        FaultKind::Repair
                    };
                    history.clients_fault(now, fault, &cut.name, &cut.servers);
                }
            }
        }
        effects.due(now).map_err(HarnessError::NoEffect)?;
        if let Some(failure) = history.harness() {
            return Err(HarnessError::Broken(failure));
        }
        if history.violation().is_some() {
            return Ok(());
        }
        match sim.step() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => return Err(HarnessError::Simulation(error.to_string())),
        }
        for s in book.stopped(sim, history).map_err(HarnessError::Broken)? {
            let now = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
            effects
                .applied(now, Fault::Crash(s))
                .map_err(HarnessError::NoEffect)?;
        }
    }
}

/// The crash `aim` holds back, if it fires `now` ([`Aim::due`]; `flush`: a planned step
/// is due, so it fires first).
fn aimed(aim: &mut Option<Aim>, now: Duration, flush: bool) -> Option<Fault> {
    aim.as_mut()
        .and_then(|a| a.due(now, flush))
        .map(Fault::Crash)
}

/// Applies `fault` now (at `now` ms) and tells `effects`.
fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: Fault,
    now: u64,
    clocks: &[SimClock; 3],
    book: &mut faults::Book,
    history: &History,
    effects: &mut Effects,
) -> Result<(), HarnessError> {
    faults::apply(sim, fault, clocks, book, history).map_err(HarnessError::Broken)?;
    effects.applied(now, fault).map_err(HarnessError::NoEffect)
}

pub(crate) type SimSession = Session<SimTransport, SimClock>;

/// How long a client freezes at `now`, drawn from `rng`: up to two leases, thawed by
/// `chaos` (the end of the faults).
pub(crate) fn freeze_time(
    rng: &mut ChaCha8Rng,
    lease: Duration,
    now: Duration,
    chaos: Duration,
) -> Duration {
    let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    let left_ms = u64::try_from(chaos.saturating_sub(now).as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..lease_ms.saturating_mul(2).min(left_ms) + 1))
}

/// Client `label`'s process paused for `lasting` (no heartbeats): it must send nothing
/// meanwhile (`sent` counts what it put on the wire); the history says when it froze and
/// thawed.
pub(crate) async fn frozen_for(
    history: &History,
    label: &str,
    sent: &AtomicU64,
    lasting: Duration,
) {
    history.client(label, ClientEventRecord::Frozen { handle: None });
    let before = sent.load(Ordering::Relaxed);
    tokio::time::sleep(lasting).await;
    let during = sent.load(Ordering::Relaxed) - before;
    if during > 0 {
        history.harness_failure(Broken::SentWhileFrozen {
            client: label.to_string(),
            sent: during,
        });
    }
    history.client(label, ClientEventRecord::Thawed { handle: None });
}

/// Who a simulated client is, for [`sim_session`].
pub(crate) struct SimClient<'a> {
    /// Its license path: the server at each entry.
    pub path: &'a [ServerId],
    pub id: ClientId,
    /// The user it tells the servers.
    pub user: &'a str,
    /// Its name in the history.
    pub label: &'a str,
    pub timing: Timing,
    /// Bugs planted in its client code.
    pub plants: Plants,
}

/// A session for `client`, every request sent and reply received recorded in `history`,
/// and its requests counted in `sent` (a frozen client must send none).
pub(crate) fn sim_session(
    client: &SimClient<'_>,
    history: &History,
    sent: &Arc<AtomicU64>,
) -> SimSession {
    let addresses = client.path.iter().map(|&s| address(s)).collect();
    let mut session = Session::new(
        SimTransport::new(),
        SimClock::new(EPOCH_MS),
        addresses,
        client.id,
        client.user,
        "sim",
        ClientConfig {
            plants: client.plants,
            ..ClientConfig::new(client.timing)
        },
    )
    .with_slots(client.path);
    let servers = client.path.to_vec();
    history.name_client(client.id, client.label);
    let (history, label, sent) = (history.clone(), client.label.to_string(), sent.clone());
    session.tap(Box::new(move |tapped| match tapped {
        Tapped::Sent { endpoint, request } => {
            sent.fetch_add(1, Ordering::Relaxed);
            let server = servers.get(usize::from(endpoint.0)).copied();
            history.request(&label, server, request);
        }
        Tapped::Received { reply, .. } => history.reply(&label, reply),
    }));
    session
}
