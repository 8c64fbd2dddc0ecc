//! Playing a scenario: the three servers run hal-net's node driver with the scenario's
//! license, HostIDs, triad lists, clocks and disks; each group of clients runs on its own
//! simulated machine, doing its steps in order; an operator's machine asks the servers
//! for their status at each check; an impostor's machine, if the timeline has impostor
//! steps, claims a server's slot at each. The six invariants are checked on the history
//! as it is written (the run stops at a violation); each expectation and check is judged
//! and written into the history as an `expect` record.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal_core::catalog::Catalog;
use hal_core::client::ClientEvent;
use hal_core::license::ServerPosition;
use hal_core::plant::Plants;
use hal_core::protocol::{ClientId, Handle, RemoveTarget, RequestSeq};
use hal_core::record::{
    ClientEventRecord, Entry, FaultKind, FeatureMeta, Meta, Record, ReplyRecord,
};
use hal_core::server::Role;
use hal_core::timing::Timing;
use hal_core::{HostId, ServerId};
use hal_net::session::Answered;
use hal_net::wire::{Identity, StatusReport};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Action, Answer, Check, ClientAct, ClientGroup, LivenessFrom, Scenario, Step, verbs};
use crate::aim::Aim;
use crate::check::Violation;
use crate::clock::SimClock;
use crate::effects::{Effects, NoEffect};
use crate::error::HarnessError;
use crate::faults::{self, Book, Fault, host, servers};
use crate::history::{History, now_ms};
use crate::impostor::{self, IMPOSTOR_HOST, Reception};
use crate::net::{OPERATOR_HOST, SimTransport};
use crate::probe::Probes;
use crate::storage::DiskCounts;
use crate::world::{
    ClientsCut, EPOCH_MS, Planned, Planted, ServerSetup, SimClient, SimSession, Watch, address,
    disk, disk_counts as disk_counts_of, drive, freeze_time, frozen_for, liveness_bound,
    sim_session, spawn_servers, triad_entry,
};

/// How long the operator waits for a server's status, at least.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the operator keeps asking for a removal while no server is active to make it
/// (a failover), unless the step's `within` says otherwise; a pause between rounds.
pub(super) const REMOVE_PATIENCE: Duration = Duration::from_secs(10);
const REMOVE_PAUSE: Duration = Duration::from_millis(500);
/// Who the operator's removals say asked for them.
const OPERATOR: &str = "admin@operator";

/// One expectation or check, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    pub t_ms: u64,
    /// Where the scenario file says it.
    pub line: usize,
    pub met: bool,
    pub expected: String,
    pub saw: String,
}

/// How a scenario run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every expectation and check met, no invariant violated.
    Passed,
    /// Some expectations or checks not met (how many).
    Unmet(usize),
    /// An invariant was violated (the run stopped there).
    Violation,
    /// The simulation failed or the harness found a fault that took no effect.
    Failed,
}

/// A finished scenario run.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub history: Vec<String>,
    pub violation: Option<Violation>,
    /// A failed simulation or a harness bug.
    pub failure: Option<HarnessError>,
    /// Every expectation and check, in the order judged.
    pub judged: Vec<Judged>,
    /// What each server journaled (as a real one's journal would hold it).
    pub journals: Vec<hal_net::journal::read::ServerJournal>,
    /// What the servers' disks saw (crashes, torn tails, compactions), summed.
    pub disks: DiskCounts,
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        if self.failure.is_some() {
            Verdict::Failed
        } else if self.violation.is_some() {
            Verdict::Violation
        } else {
            match self.judged.iter().filter(|j| !j.met).count() {
                0 => Verdict::Passed,
                unmet => Verdict::Unmet(unmet),
            }
        }
    }

    pub fn passed(&self) -> bool {
        self.verdict() == Verdict::Passed
    }

    /// Each unmet expectation or check, as `line N: expected ...; saw ...`.
    pub fn unmet(&self) -> impl Iterator<Item = String> + '_ {
        self.judged
            .iter()
            .filter(|j| !j.met)
            .map(|j| format!("line {}: expected {}; saw {}", j.line, j.expected, j.saw))
    }
}

/// Judgements, shared by the tasks that make them; each is also written to the history.
#[derive(Debug, Clone, Default)]
struct Judge {
    judged: Arc<Mutex<Vec<Judged>>>,
    history: History,
}

impl Judge {
    fn record(&self, t_ms: u64, line: usize, met: bool, expected: String, saw: String) {
        self.history.expectation(t_ms, line, met, &expected, &saw);
        self.judged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Judged {
                t_ms,
                line,
                met,
                expected,
                saw,
            });
    }
}

/// The seats each client's application holds now: client → (feature, handle, borrowed).
type Holdings = Arc<Mutex<BTreeMap<String, Vec<(String, Handle, bool)>>>>;

/// Runs `scenario` with `seed`, with `planted` planted in the servers.
pub fn run(scenario: &Scenario, seed: u64, planted: Option<Planted>) -> Outcome {
    let history = History::default();
    let judge = Judge {
        judged: Arc::default(),
        history: history.clone(),
    };
    let mut disks = DiskCounts::default();
    let result = play(scenario, seed, planted, &history, &judge, &mut disks);
    let mut judged = judge
        .judged
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    judged.sort_by_key(|j| (j.t_ms, j.line));
    Outcome {
        seed,
        history: history.lines(),
        violation: history.violation(),
        failure: result.err(),
        judged,
        journals: history.server_journals(),
        disks,
    }
}

/// The servers' timing, with a planted bug's change.
fn server_timing(scenario: &Scenario, planted: Option<Planted>) -> Timing {
    let mut timing = scenario.timing;
    if planted == Some(Planted::NoFailback) {
        timing.failback_hold = Duration::from_secs(86_400);
    }
    timing
}

/// The HostID of server `id`'s machine: the scenario's, else the one its slot is locked
/// to, else its machine name (no unlocked feature checks it).
pub(super) fn hostid(scenario: &Scenario, id: ServerId) -> Result<HostId, String> {
    let spec = &scenario.servers[id.index()];
    if let Some(hostid) = &spec.hostid {
        return Ok(hostid.clone());
    }
    let locked = scenario
        .license
        .features
        .iter()
        .find_map(|f| f.hostids.get(id.index()).cloned());
    match locked {
        Some(hostid) => Ok(hostid),
        None => HostId::parse(&host(id)).map_err(|why| format!("HostID of {}: {why}", host(id))),
    }
}

/// Server `id`'s setup from the scenario.
fn setup(
    scenario: &Scenario,
    id: ServerId,
    planted: Option<Planted>,
) -> Result<ServerSetup, String> {
    let spec = &scenario.servers[id.index()];
    let hostid = hostid(scenario, id)?;
    let mut catalog = Catalog::new(&scenario.license, ServerPosition::Triad(id), &hostid);
    if planted == Some(Planted::DoubleCount) {
        catalog = Catalog::from_rules(catalog.iter().map(|(name, rules)| {
            let mut rules = rules.clone();
            rules.count *= 2;
            (name.to_string(), rules)
        }));
    }
    let triad: Vec<String> = spec.triad.iter().map(|&s| triad_entry(s)).collect();
    // The server finds peer N at the N-th entry of its own list.
    let peers = servers()
        .into_iter()
        .filter(|&p| p != id)
        .map(|p| (p, address(spec.triad[p.index()])))
        .collect();
    Ok(ServerSetup {
        hostid,
        catalog,
        identity: Identity::new(triad, &scenario.license, None),
        peers,
        sync_time: spec.sync_time,
        plants: Planted::plants(planted),
        lose_syncs: planted == Some(Planted::LostFsync),
        log_entries_max: spec.log_entries_max.unwrap_or_else(|| {
            hal_core::server::Config::triad(id, scenario.timing).log_entries_max
        }),
    })
}

/// Pairs of servers whose configs disagree (their triad lists differ), and why: their
/// handshake fails, so they are cut off from each other for the whole run.
fn refused_pairs(setups: &[ServerSetup; 3]) -> Vec<(ServerId, ServerId, String)> {
    let mut refused = Vec::new();
    for a in servers() {
        for b in servers().into_iter().filter(|&b| b > a) {
            let (ours, theirs) = (&setups[a.index()].identity, &setups[b.index()].identity);
            if let Some(why) = ours.difference(a, theirs, b) {
                refused.push((a, b, why));
            }
        }
    }
    refused
}

/// Asks `ask` (an administrator's request through the active server) again every
/// [`REMOVE_PAUSE`] while no server takes it (a failover), for the step's `within` or
/// [`REMOVE_PATIENCE`]; its first answer, or the last failure.
async fn patiently<R, E, Fut>(step: &Step, ask: impl Fn() -> Fut) -> Result<R, E>
where
    Fut: std::future::Future<Output = Result<R, E>>,
{
    let patience = step.expect.within.unwrap_or(REMOVE_PATIENCE);
    let started = turmoil::sim_elapsed().unwrap_or_default();
    loop {
        let asked = ask().await;
        let now = turmoil::sim_elapsed().unwrap_or_default();
        match asked {
            Ok(answer) => return Ok(answer),
            Err(error) if now.saturating_sub(started) + REMOVE_PAUSE > patience => {
                return Err(error);
            }
            Err(_) => tokio::time::sleep(REMOVE_PAUSE).await,
        }
    }
}

/// The license each `set_count` step pushes, in time order: the scenario's license with
/// the COUNTs of that step and of every push before it.
fn license_pushes(scenario: &Scenario) -> Vec<(Step, Arc<str>)> {
    let mut steps: Vec<&Step> = scenario
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.action,
                Action::SetCount { .. } | Action::PushOptions { .. }
            )
        })
        .collect();
    steps.sort_by_key(|s| (s.at, s.line));
    let mut license = scenario.license.clone();
    steps
        .into_iter()
        .map(|step| {
            if let Action::PushOptions { text } = &step.action {
                return (step.clone(), text.as_str().into());
            }
            if let Action::SetCount { feature, count } = &step.action
                && let Some(f) = license
                    .features
                    .iter_mut()
                    .find(|f| f.name.as_str() == feature)
            {
                f.count = Some(*count);
            }
            (step.clone(), license.to_text().into())
        })
        .collect()
}

/// The machine clients of group `name` run on.
fn group_host(name: &str) -> String {
    format!("client-{name}")
}

/// The driver's plan: the servers' clocks at the start, then what each step's verb has
/// the driver do (faults of the servers, flapping drawn from `rng`, client machines cut
/// off).
fn plan(scenario: &Scenario, rng: &mut ChaCha8Rng) -> Vec<(Duration, Planned)> {
    let mut plan = Vec::new();
    for id in servers() {
        let spec = &scenario.servers[id.index()];
        if spec.clock_offset_ms != 0 || spec.clock_drift_ppm != 0 {
            let fault = Fault::Clock(id, spec.clock_offset_ms, spec.clock_drift_ppm);
            plan.push((Duration::ZERO, Planned::Fault(fault)));
        }
    }
    for step in &scenario.steps {
        if let Some(planned) = verbs::of(&step.action).and_then(|verb| verb.plan) {
            plan.extend(planned(step, rng));
        }
    }
    // Stable: what happens at the same time keeps the file's order.
    plan.sort_by_key(|(t, _)| *t);
    plan
}

/// A fault of the servers at the step's time, and its heal after `for`.
pub(super) fn plan_fault(step: &Step, _: &mut ChaCha8Rng) -> Vec<(Duration, Planned)> {
    let Action::Server { fault, lasting } = &step.action else {
        return Vec::new();
    };
    let mut plan = vec![(step.at, Planned::Fault(*fault))];
    match (lasting, faults::heal(*fault)) {
        (Some(lasting), Some(Fault::Restart(s))) => {
            plan.push((step.at + *lasting, Planned::Recover(s)));
        }
        (Some(lasting), Some(heal)) => {
            plan.push((step.at + *lasting, Planned::Fault(heal)));
        }
        _ => {}
    }
    plan
}

/// A flapping link: its phases, each fixed by the step or drawn from `rng`.
pub(super) fn plan_flap(step: &Step, rng: &mut ChaCha8Rng) -> Vec<(Duration, Planned)> {
    let Action::Flap {
        a,
        b,
        lasting,
        down,
        up,
    } = &step.action
    else {
        return Vec::new();
    };
    let phase = |going_down: bool| {
        let fixed = if going_down { *down } else { *up };
        fixed.unwrap_or_else(|| faults::random_phase(rng))
    };
    faults::flapping(*a, *b, *lasting, phase)
        .into_iter()
        .map(|(offset, fault)| (step.at + offset, Planned::Fault(fault)))
        .collect()
}

/// A client machine cut off (or its links held) from some servers, and mended.
pub(super) fn plan_disconnect(step: &Step, _: &mut ChaCha8Rng) -> Vec<(Duration, Planned)> {
    let Action::Client {
        who,
        act:
            ClientAct::Disconnect {
                lasting,
                from,
                held,
            },
    } = &step.action
    else {
        return Vec::new();
    };
    let cut = |cut| ClientsCut {
        host: group_host(who),
        name: who.clone(),
        servers: from.clone(),
        cut,
        hold: *held,
    };
    vec![
        (step.at, Planned::Clients(cut(true))),
        (step.at + *lasting, Planned::Clients(cut(false))),
    ]
}

/// When the liveness invariant starts: after the last fault heals, if the run ends with
/// every server up and every link whole (and no client frozen), and no two servers'
/// configs disagree (`configs_agree`: that never heals).
fn liveness_from(
    scenario: &Scenario,
    plan: &[(Duration, Planned)],
    configs_agree: bool,
) -> Option<Duration> {
    match scenario.liveness {
        LivenessFrom::Never => return None,
        LivenessFrom::At(at) => return Some(at),
        LivenessFrom::Auto if !configs_agree => return None,
        LivenessFrom::Auto => {}
    }
    // What is still wrong at the end: servers down, and per link (either way round)
    // each kind of trouble, which only its own remedy ends (a mend does not release a
    // hold); client machines cut off.
    let mut down = [false; 3];
    let mut links: BTreeMap<((u8, u8), &str), bool> = BTreeMap::new();
    let mut clients: BTreeMap<&str, i64> = BTreeMap::new();
    let mut last = Duration::ZERO;
    let link = |a: ServerId, b: ServerId| (a.get().min(b.get()), a.get().max(b.get()));
    for (t, planned) in plan {
        match planned {
            Planned::Fault(Fault::Clock(..)) => continue,
            Planned::Fault(Fault::Crash(s) | Fault::Stop(s)) => down[s.index()] = true,
            Planned::Fault(Fault::Restart(s)) | Planned::Recover(s) => down[s.index()] = false,
            Planned::Fault(Fault::Isolate(s) | Fault::Rejoin(s)) => {
                let cut = matches!(planned, Planned::Fault(Fault::Isolate(_)));
                for p in faults::peers(*s) {
                    links.insert((link(*s, p), "cut"), cut);
                }
            }
            Planned::Fault(fault) => {
                let (a, b, kind, bad) = match *fault {
                    Fault::Cut(a, b) | Fault::OneWay(a, b) | Fault::FlapDown(a, b) => {
                        (a, b, "cut", true)
                    }
                    Fault::Mend(a, b) | Fault::MendOneWay(a, b) | Fault::FlapUp(a, b) => {
                        (a, b, "cut", false)
                    }
                    Fault::Hold(a, b) => (a, b, "hold", true),
                    Fault::Release(a, b) => (a, b, "hold", false),
                    Fault::Slow(a, b, _) => (a, b, "slow", true),
                    Fault::Fast(a, b) => (a, b, "slow", false),
                    Fault::Flap(a, b) => (a, b, "flap", true),
                    Fault::Steady(a, b) => (a, b, "flap", false),
                    _ => continue,
                };
                links.insert((link(a, b), kind), bad);
            }
            Planned::Clients(cut) => {
                *clients.entry(cut.name.as_str()).or_default() += if cut.cut { 1 } else { -1 };
            }
        }
        last = last.max(*t);
    }
    for step in &scenario.steps {
        if let Action::Client {
            act: ClientAct::Freeze(d),
            ..
        } = &step.action
        {
            last = last.max(step.at + *d);
        }
    }
    let still =
        down.iter().any(|&d| d) || links.values().any(|&b| b) || clients.values().any(|&c| c > 0);
    if still {
        return None;
    }
    Some(last)
}

fn play(
    scenario: &Scenario,
    seed: u64,
    planted: Option<Planted>,
    history: &History,
    judge: &Judge,
    disk_counts: &mut DiskCounts,
) -> Result<(), HarnessError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = plan(scenario, &mut rng);
    let timing = scenario.timing;
    let features = scenario
        .license
        .features
        .iter()
        .filter_map(|f| {
            let count = f.count?;
            Some((f.name.to_string(), FeatureMeta { count, hal: f.hal }))
        })
        .collect();
    let mut meta = Meta {
        seed: Some(seed),
        scenario: Some(scenario.name.clone()),
        ..Meta::new(&timing, features)
    };
    let [s1, s2, s3] =
        servers().map(|id| setup(scenario, id, planted).map_err(HarnessError::Setup));
    let setups = [s1?, s2?, s3?];
    let refused = refused_pairs(&setups);
    if let Some(from) = liveness_from(scenario, &plan, refused.is_empty()) {
        meta.liveness_from_ms = Some(from.as_millis() as u64);
        meta.liveness_bound_ms = Some(liveness_bound(&timing).as_millis() as u64);
    }
    history.meta(meta);
    let end = scenario.duration;
    let latency = (scenario.latency, scenario.latency + scenario.jitter);
    let mut sim = crate::world::simulation(seed, end, latency);
    let clocks = servers().map(|_| SimClock::new(EPOCH_MS));
    let probes = Probes::default();
    for (a, b, why) in refused {
        history.fault_with(0, FaultKind::Partition, &[a], &[b], |f| f.cause = Some(why));
    }
    let identities = setups.clone().map(|setup| setup.identity);
    // The operator's machine only where there are checks to make (or no client machine
    // to read the seat table from): turmoil's cost is per machine and per tick, so a seed
    // sweep's world, which has none, runs without it.
    let removes: Vec<Step> = scenario
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Remove { .. }))
        .cloned()
        .collect();
    let pushes = license_pushes(scenario);
    let operator_host = !scenario.checks.is_empty()
        || !removes.is_empty()
        || !pushes.is_empty()
        || scenario.clients.is_empty();
    let others = scenario
        .clients
        .iter()
        .map(|g| group_host(&g.name))
        .chain(operator_host.then(|| OPERATOR_HOST.to_string()))
        .chain(
            impostor_steps(scenario)
                .first()
                .map(|_| IMPOSTOR_HOST.to_string()),
        )
        .collect();
    let book = Book::with_latency((scenario.latency, scenario.latency + scenario.jitter))
        .with_others(others);
    let disks = servers().map(|id| disk(seed, id, &setups[id.index()]));
    let watch = Watch {
        clocks: &clocks,
        history,
        probes: &probes,
        stops: book.stops(),
        disks: &disks,
    };
    spawn_servers(
        &mut sim,
        Planted::server_transport(planted),
        setups,
        server_timing(scenario, planted),
        &watch,
    );
    let holdings = Holdings::default();
    // Without the operator's machine, the first group's reads the seat table.
    let mut audit = (!operator_host).then_some(scenario.audit).flatten();
    for group in &scenario.clients {
        let members: Vec<Member> = group
            .members()
            .into_iter()
            .map(|name| (name, ClientId(rng.random()), rng.random()))
            .map(|(name, id, seed)| Member {
                steps: member_steps(scenario, &group.name, &name),
                path: group.path.clone(),
                timing,
                id,
                seed,
                rng: ChaCha8Rng::seed_from_u64(seed),
                until: end,
                history: history.clone(),
                judge: judge.clone(),
                holdings: holdings.clone(),
                held: Vec::new(),
                lost: Vec::new(),
                sent: Arc::default(),
                plants: Planted::plants(planted),
                restarts: 0,
                name: name.clone(),
                label: name,
            })
            .collect();
        let (audit, auditor) = (audit.take(), history.clone());
        sim.client(group_host(&group.name), async move {
            let tasks: Vec<_> = members.into_iter().map(|m| tokio::spawn(m.run())).collect();
            if let Some(at) = audit {
                tokio::spawn(crate::world::audit(at, auditor));
            }
            for task in tasks {
                task.await?;
            }
            Ok(())
        });
    }
    if operator_host {
        let mut checks = scenario.checks.clone();
        // Stable: checks judged at the same time keep their order.
        checks.sort_by_key(Check::judged_at);
        let operator = Operator {
            checks,
            removes,
            pushes,
            audit: scenario.audit,
            groups: scenario.clients.clone(),
            holdings,
            judge: judge.clone(),
            until: end,
            // Connect, hello, status: three round trips.
            status_timeout: STATUS_TIMEOUT + (scenario.latency + scenario.jitter) * 8,
        };
        sim.client(OPERATOR_HOST, operator.run());
    }
    let impostor = Impostor {
        steps: impostor_steps(scenario),
        identities,
        history: history.clone(),
        judge: judge.clone(),
        until: end,
    };
    // Only a timeline with impostor steps has the machine: another host would change
    // every other scenario's run.
    let impostor_host = (!impostor.steps.is_empty()).then_some(IMPOSTOR_HOST.to_string());
    if impostor_host.is_some() {
        sim.client(IMPOSTOR_HOST, impostor.run());
    }
    // Crashes aimed at the disks' syncs, as a seed sweep aims them, if the file asks.
    let aim = scenario.aim_crashes.then(|| Aim::new(seed, disks.clone()));
    let mut effects = Effects::new(probes);
    let driven = drive(&mut sim, plan, &clocks, history, &mut effects, book, aim);
    *disk_counts = disk_counts_of(&disks);
    driven?;
    let end_ms = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Some(failure) = history.harness() {
        return Err(HarnessError::Broken(failure));
    }
    if history.violation().is_none() {
        effects.finish(end_ms).map_err(HarnessError::NoEffect)?;
        client_cuts_took_effect(scenario, &history.lines()).map_err(HarnessError::NoEffect)?;
        history.end(end_ms);
    }
    Ok(())
}

/// Proof that each client machine cut off from servers was: no reply from those servers
/// reached its clients while the cut lasted (after what was in flight at its start). (A
/// client that sends nothing meanwhile, no seat and no request, shows nothing either way.)
fn client_cuts_took_effect(scenario: &Scenario, history: &[String]) -> Result<(), NoEffect> {
    let slowest = ms(scenario.latency + scenario.jitter) + 2;
    let mut replies: Vec<(&String, ReplyRecord)> = Vec::new();
    for (index, line) in history.iter().enumerate() {
        let entry: Entry = serde_json::from_str(line).map_err(|e| NoEffect::History {
            line: index + 1,
            what: e.to_string(),
        })?;
        if let Record::Reply(reply) = entry.record {
            replies.push((line, reply));
        }
    }
    for step in &scenario.steps {
        let Action::Client {
            who,
            act: ClientAct::Disconnect { lasting, from, .. },
        } = &step.action
        else {
            continue;
        };
        let Some(group) = scenario.clients.iter().find(|g| &g.name == who) else {
            continue;
        };
        let members = group.members();
        let ours = |reply: &ReplyRecord| {
            let label = reply.client.as_str();
            members.iter().any(|m| {
                label == m
                    || label
                        .strip_prefix(m.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            })
        };
        let across = |reply: &ReplyRecord| from.iter().any(|f| f.get() == reply.server);
        let (start, end) = (ms(step.at), ms(step.at + *lasting));
        let within = |reply: &ReplyRecord| (start + slowest..end).contains(&reply.t_ms);
        if let Some((line, _)) = replies
            .iter()
            .find(|(_, r)| ours(r) && across(r) && within(r))
        {
            return Err(NoEffect::ClientCutCrossed {
                client: who.clone(),
                servers: from
                    .iter()
                    .map(|s| format!("#{}", s.get()))
                    .collect::<Vec<_>>()
                    .join(" "),
                start,
                end,
                reply: line.to_string(),
            });
        }
    }
    Ok(())
}

/// The steps of client `name` (of group `group`): those naming it or its group.
fn member_steps(scenario: &Scenario, group: &str, name: &str) -> Vec<Step> {
    scenario
        .steps
        .iter()
        .filter(|s| matches!(&s.action, Action::Client { who, .. } if who == group || who == name))
        .cloned()
        .collect()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// "1 send", "3 sends".
fn sends(attempts: u32) -> String {
    if attempts == 1 {
        "1 send".to_string()
    } else {
        format!("{attempts} sends")
    }
}

fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// One simulated client doing its steps.
pub(super) struct Member {
    /// Its name in the scenario.
    name: String,
    /// Its name in the history (a new process after a kill gets `alice.1`).
    label: String,
    restarts: u32,
    steps: Vec<Step>,
    path: Vec<ServerId>,
    timing: Timing,
    id: ClientId,
    seed: u64,
    /// Its choices (hold times, pauses, whether to die or freeze), drawn from `seed`.
    rng: ChaCha8Rng,
    until: Duration,
    history: History,
    judge: Judge,
    holdings: Holdings,
    /// Its seats: (feature, handle, borrowed).
    held: Vec<(String, Handle, bool)>,
    /// When it was told a seat was lost.
    lost: Vec<u64>,
    /// Requests it has put on the wire (a frozen client must send none).
    sent: Arc<AtomicU64>,
    /// Bugs planted in its client code.
    plants: Plants,
}

impl Member {
    fn session(&self, id: ClientId) -> SimSession {
        let client = SimClient {
            path: &self.path,
            id,
            user: &self.name,
            label: &self.label,
            timing: self.timing,
            plants: self.plants,
        };
        sim_session(&client, &self.history, &self.sent)
    }

    fn publish(&self) {
        self.holdings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.name.clone(), self.held.clone());
    }

    /// Takes an event that is not the answer being waited for.
    fn on_event(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Lost { handle } => {
                self.history.client(
                    &self.label,
                    ClientEventRecord::Lost {
                        handle: Some(handle.to_string()),
                    },
                );
                self.held.retain(|(_, h, _)| *h != handle);
                self.lost.push(now_ms());
                self.publish();
            }
            ClientEvent::BorrowEnded { handle } => {
                self.history.client(
                    &self.label,
                    ClientEventRecord::BorrowEnd {
                        handle: Some(handle.to_string()),
                    },
                );
                self.held.retain(|(_, h, _)| *h != handle);
                self.publish();
            }
            ClientEvent::Removed { handle } => {
                self.history.client(
                    &self.label,
                    ClientEventRecord::Removed {
                        handle: Some(handle.to_string()),
                    },
                );
                self.held.retain(|(_, h, _)| *h != handle);
                self.publish();
            }
            ClientEvent::Resolved { seq, released } => {
                self.history
                    .resolved(&self.label, seq.0, released.map(|h| h.to_string()));
                if let Some(handle) = released {
                    self.held.retain(|(_, h, _)| *h != handle);
                    self.publish();
                }
            }
            _ => {}
        }
    }

    /// Keeps the session going (heartbeats, losses) until `at`.
    async fn idle_until(&mut self, session: &mut SimSession, at: Duration) {
        let at = at.min(self.until);
        let now = turmoil::sim_elapsed().unwrap_or_default();
        if at <= now {
            return;
        }
        let until = tokio::time::sleep(at - now);
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => return,
                event = session.next_event() => self.on_event(event),
            }
        }
    }

    /// Waits for the answer to `seq` (none if the run ends first).
    async fn answer(
        &mut self,
        session: &mut SimSession,
        seq: RequestSeq,
        feature: &str,
    ) -> Option<Answered> {
        let now = turmoil::sim_elapsed().unwrap_or_default();
        let until = tokio::time::sleep(self.until.saturating_sub(now));
        let answered = tokio::select! {
            () = until => return None,
            answered = session.answer(seq, |event| self.on_event(event)) => answered,
        };
        self.history.answer(&self.label, seq, feature, &answered);
        Some(answered)
    }

    async fn run(mut self) {
        let mut session = self.session(self.id);
        let steps = std::mem::take(&mut self.steps);
        for (done, step) in steps.iter().enumerate() {
            self.idle_until(&mut session, step.at).await;
            if turmoil::sim_elapsed().unwrap_or_default() >= self.until {
                self.not_started(&steps[done..]);
                break;
            }
            // The step's verb plays it (some, a disconnect, only the driver plays).
            if let Some(play) = verbs::of(&step.action).and_then(|verb| verb.play) {
                play(&mut self, &mut session, step).await;
            }
        }
        let until = self.until;
        self.idle_until(&mut session, until).await;
        self.judge_losses(&steps);
        self.history
            .client(&self.label, ClientEventRecord::Stopped { handle: None });
    }

    /// `checkout` and `borrow`: asks for a seat (unless the step says `unless_held` and
    /// one is held) and judges the answer.
    pub(super) async fn request(&mut self, session: &mut SimSession, step: &Step) {
        let (feature, hours, wait) = match &step.action {
            Action::Client {
                act: ClientAct::Checkout(feature),
                ..
            } => (feature, None, None),
            Action::Client {
                act: ClientAct::Wait(feature, wait),
                ..
            } => (feature, None, Some(*wait)),
            Action::Client {
                act: ClientAct::Borrow(feature, hours),
                ..
            } => (feature, Some(*hours), None),
            _ => return,
        };
        let borrow = hours.is_some();
        if step.expect.unless_held
            && self
                .held
                .iter()
                .any(|(f, _, b)| f == feature && *b == borrow)
        {
            self.skipped(step, true);
            return;
        }
        let seq = match (hours, wait) {
            (Some(hours), _) => session.borrow(feature, hours),
            (None, Some(wait)) => session.checkout_wait(feature, wait),
            (None, None) => session.checkout(feature),
        };
        let answer = self.answer(session, seq, feature).await;
        if let Some(Answered::Granted { handle, .. }) = &answer {
            self.held.push((feature.clone(), *handle, borrow));
            self.publish();
        }
        self.judge_answer(step, answer.as_ref());
    }

    /// `checkin` and `return`: gives back the oldest such seat held (a step with
    /// `if_held` and none held is skipped; without, it is an unmet expectation) and
    /// judges the answer.
    pub(super) async fn give_back(&mut self, session: &mut SimSession, step: &Step) {
        let (feature, borrowed) = match &step.action {
            Action::Client {
                act: ClientAct::Checkin(feature),
                ..
            } => (feature, false),
            Action::Client {
                act: ClientAct::Return(feature),
                ..
            } => (feature, true),
            _ => return,
        };
        let Some(at) = self
            .held
            .iter()
            .position(|(f, _, b)| f == feature && *b == borrowed)
        else {
            if step.expect.if_held {
                self.skipped(step, false);
                return;
            }
            let what = if borrowed { "borrowed seat" } else { "seat" };
            self.judge.record(
                now_ms(),
                step.line,
                false,
                format!(
                    "{} {} a {what} of {feature}",
                    self.name,
                    if borrowed { "returns" } else { "checks in" }
                ),
                format!("{} holds no {what} of {feature}", self.name),
            );
            return;
        };
        let (_, handle, _) = self.held.remove(at);
        self.publish();
        let seq = if borrowed {
            session.return_borrow(handle)
        } else {
            session.checkin(handle)
        };
        let answer = self.answer(session, seq, feature).await;
        self.judge_answer(step, answer.as_ref());
    }

    /// `busy`: a busy user's spell ([`Member::busy`]).
    pub(super) async fn busy_spell(&mut self, session: &mut SimSession, step: &Step) {
        if let Action::Client {
            act:
                ClientAct::Busy {
                    feature,
                    until,
                    hold,
                },
            ..
        } = &step.action
        {
            self.busy(session, feature, *until, *hold).await;
        }
    }

    /// `work`: a user at work as a seed sweep's clients are ([`Member::work`]).
    pub(super) async fn work_spell(&mut self, session: &mut SimSession, step: &Step) {
        if let Action::Client {
            act:
                ClientAct::Work {
                    feature,
                    until,
                    chaos,
                },
            ..
        } = &step.action
        {
            let chaos = chaos.unwrap_or_default();
            self.work(session, feature, (*until, chaos)).await;
        }
    }

    /// `freeze`: the process paused for the step's time.
    pub(super) async fn freeze(&mut self, _: &mut SimSession, step: &Step) {
        if let Action::Client {
            act: ClientAct::Freeze(lasting),
            ..
        } = &step.action
        {
            self.frozen_for(*lasting).await;
        }
    }

    /// `kill`: the process dies; a new one takes its place.
    pub(super) fn kill(&mut self, session: &mut SimSession) {
        *session = self.die();
    }

    /// A conditional step not taken: the client holds such a seat (`held`), or none.
    fn skipped(&self, step: &Step, held: bool) {
        let line = u64::try_from(step.line).unwrap_or(u64::MAX);
        self.history
            .client(&self.label, ClientEventRecord::Skipped { line, held });
    }

    /// The client process dies holding its seats; a new one, with a new label and
    /// client id, takes its place.
    fn die(&mut self) -> SimSession {
        for (_, handle, _) in self.held.drain(..) {
            self.history.client(
                &self.label,
                ClientEventRecord::Crashed {
                    handle: Some(handle.to_string()),
                },
            );
        }
        self.publish();
        self.restarts += 1;
        self.label = format!("{}.{}", self.name, self.restarts);
        let id = ClientId(self.rng.random());
        self.session(id)
    }

    /// A user at work as a seed sweep's clients are ([`ClientAct::Work`]), until the
    /// first of `(until, chaos)`; its process may die or freeze before the second.
    async fn work(
        &mut self,
        session: &mut SimSession,
        feature: &str,
        (until, chaos): (Duration, Duration),
    ) {
        // How long each seat is kept, from a stream of its own ("holds" in ASCII).
        let mut holds = ChaCha8Rng::seed_from_u64(self.seed ^ 0x0068_6f6c_6473);
        let until = until.min(self.until);
        let now = || turmoil::sim_elapsed().unwrap_or_default();
        while now() < until {
            let borrow = self.rng.random_bool(0.1);
            let seq = if borrow {
                session.borrow(feature, 1)
            } else {
                session.checkout(feature)
            };
            let Some(Answered::Granted { handle, .. }) = self.answer(session, seq, feature).await
            else {
                let pause = Duration::from_millis(self.rng.random_range(500..3_000));
                self.idle_until(session, now() + pause).await;
                continue;
            };
            self.held.push((feature.to_string(), handle, borrow));
            self.publish();
            if now() < chaos && self.rng.random_bool(0.03) {
                *session = self.die();
                let pause = Duration::from_millis(self.rng.random_range(100..2_000));
                tokio::time::sleep(pause).await;
                continue;
            }
            if now() < chaos && self.rng.random_bool(0.05) {
                self.freeze_a_while(chaos).await;
            }
            let hold = if borrow || holds.random_bool(1.0 / 8.0) {
                Duration::from_millis(holds.random_range(8_000..20_000))
            } else {
                Duration::from_millis(self.rng.random_range(100..5_000))
            };
            self.idle_until(session, (now() + hold).min(until)).await;
            let Some(at) = self.held.iter().position(|(_, h, _)| *h == handle) else {
                continue; // lost on the way
            };
            self.held.remove(at);
            self.publish();
            let seq = if borrow {
                session.return_borrow(handle)
            } else {
                session.checkin(handle)
            };
            self.answer(session, seq, feature).await;
        }
    }

    /// Frozen for up to two leases, thawed by `chaos`: no heartbeats, nothing sent.
    async fn freeze_a_while(&mut self, chaos: Duration) {
        let now = turmoil::sim_elapsed().unwrap_or_default();
        let frozen = freeze_time(&mut self.rng, self.timing.client_lease, now, chaos);
        self.frozen_for(frozen).await;
    }

    /// The client process paused for `lasting`: it must send nothing meanwhile.
    async fn frozen_for(&self, lasting: Duration) {
        frozen_for(&self.history, &self.label, &self.sent, lasting).await;
    }

    /// A busy user: checks out, holds the seat a while, checks in, until `until`.
    async fn busy(
        &mut self,
        session: &mut SimSession,
        feature: &str,
        until: Duration,
        hold: Option<Duration>,
    ) {
        while turmoil::sim_elapsed().unwrap_or_default() < until.min(self.until) {
            let seq = session.checkout(feature);
            let Some(Answered::Granted { handle, .. }) = self.answer(session, seq, feature).await
            else {
                let pause = Duration::from_millis(self.rng.random_range(500..3_000));
                let at = turmoil::sim_elapsed().unwrap_or_default() + pause;
                self.idle_until(session, at).await;
                continue;
            };
            self.held.push((feature.to_string(), handle, false));
            self.publish();
            let hold =
                hold.unwrap_or_else(|| Duration::from_millis(self.rng.random_range(1_000..10_000)));
            // The last hold ends with the busy spell (and the run).
            let at = (turmoil::sim_elapsed().unwrap_or_default() + hold).min(until.min(self.until));
            self.idle_until(session, at).await;
            if let Some(at) = self.held.iter().position(|(_, h, _)| *h == handle) {
                self.held.remove(at);
                self.publish();
                let seq = session.checkin(handle);
                self.answer(session, seq, feature).await;
            }
        }
    }

    /// Steps the run ended before: each expectation on them is unmet (a `lost` one is
    /// judged with the others at the end).
    fn not_started(&self, steps: &[Step]) {
        for step in steps {
            let expect = &step.expect;
            if expect.answer.is_none() && expect.within.is_none() {
                continue;
            }
            if expect.lost.is_some() {
                continue;
            }
            let act = verbs::of(&step.action).map_or("", |verb| verb.name);
            self.judge.record(
                now_ms(),
                step.line,
                false,
                format!("{} {act} at {}", self.name, secs(ms(step.at))),
                "the run ended before the step could start".to_string(),
            );
        }
    }

    /// Judges a request's expectation on its answer (`None`: none by the end of the run).
    fn judge_answer(&self, step: &Step, answer: Option<&Answered>) {
        let expect = &step.expect;
        if expect.answer.is_none() && expect.within.is_none() && expect.attempts_max.is_none() {
            return;
        }
        let now = now_ms();
        let took = now.saturating_sub(ms(step.at));
        let mut expected = match &expect.answer {
            Some(Answer::Granted(Some(by))) => format!("granted by #{}", by.get()),
            Some(Answer::Granted(None)) => "granted".to_string(),
            Some(Answer::Denied(Some(reason))) => format!("denied {reason}"),
            Some(Answer::Denied(None)) => "denied".to_string(),
            Some(Answer::Unknown) => "outcome unknown".to_string(),
            None => "answered".to_string(),
        };
        if let Some(within) = expect.within {
            expected.push_str(&format!(" within {}", humantime::format_duration(within)));
        }
        if let Some(attempts) = expect.attempts_max {
            expected.push_str(&format!(" in at most {}", sends(attempts)));
        }
        let act = verbs::of(&step.action).map_or("", |verb| verb.name);
        let expected = format!("{} {act}: {expected}", self.name);
        let (met, saw) = match answer {
            None => (false, "no answer by the end of the run".to_string()),
            Some(answered) => {
                let saw = match answered {
                    Answered::Granted { granted_by, .. } => {
                        format!("granted by #{}", granted_by.get())
                    }
                    Answered::Denied { reason, .. } => format!("denied {}", reason.name()),
                    Answered::Released { .. } => "done".to_string(),
                    Answered::Unknown { .. } => "outcome unknown".to_string(),
                };
                let right = match (&expect.answer, answered) {
                    (None, _) => true,
                    (Some(Answer::Granted(by)), Answered::Granted { granted_by, .. }) => {
                        by.is_none_or(|by| by == *granted_by)
                    }
                    (Some(Answer::Denied(reason)), Answered::Denied { reason: got, .. }) => {
                        reason.as_ref().is_none_or(|r| r == got.name())
                    }
                    (Some(Answer::Unknown), Answered::Unknown { .. }) => true,
                    _ => false,
                };
                let in_time = expect.within.is_none_or(|w| took <= ms(w));
                let attempts = answered.attempts();
                let few_enough = expect.attempts_max.is_none_or(|most| attempts <= most);
                (
                    right && in_time && few_enough,
                    format!("{saw} after {}, {}", secs(took), sends(attempts)),
                )
            }
        };
        self.judge.record(now, step.line, met, expected, saw);
    }

    /// Judges every `lost` expectation of the steps, from the losses seen.
    fn judge_losses(&self, steps: &[Step]) {
        let end = ms(self.until);
        for step in steps {
            let Some(lost) = step.expect.lost else {
                continue;
            };
            let from = ms(step.at);
            // `within` bounds the loss of a freeze or disconnect; a request's `within`
            // bounds its answer, and its seats are watched to the end of the run.
            let within = match &step.action {
                Action::Client {
                    act: ClientAct::Freeze(_) | ClientAct::Disconnect { .. },
                    ..
                } => step.expect.within,
                _ => None,
            };
            let to = within.map_or(end, |w| from + ms(w)).min(end);
            let when = self.lost.iter().find(|&&t| t >= from && t <= to);
            let window = match within {
                Some(w) => format!("within {}", humantime::format_duration(w)),
                None => "by the end of the run".to_string(),
            };
            let expected = if lost {
                format!("{} loses its seat {window}", self.name)
            } else {
                format!("{} keeps its seats ({window})", self.name)
            };
            let saw = match when {
                Some(t) => format!("seat lost at {}", secs(*t)),
                None => "no seat lost".to_string(),
            };
            self.judge
                .record(now_ms(), step.line, lost == when.is_some(), expected, saw);
        }
    }
}

/// The operator: at each check, asks every server for its status (as `hal-net status`
/// does) and reads what the clients hold.
#[derive(Debug, Clone)]
struct Operator {
    /// In the order they are judged.
    checks: Vec<Check>,
    /// The administrative steps (`remove`), in time order.
    removes: Vec<Step>,
    /// The license pushes (`set_count`) in time order, each with the license it pushes.
    pushes: Vec<(Step, Arc<str>)>,
    /// When to read the active server's seat table for invariant 7, if at all.
    audit: Option<Duration>,
    /// The scenario's clients, to tell a group's members.
    groups: Vec<ClientGroup>,
    holdings: Holdings,
    judge: Judge,
    until: Duration,
    /// How long to wait for a server's status: a round trip over the slowest link, with
    /// room to spare.
    status_timeout: Duration,
}

impl Operator {
    async fn run(self) -> turmoil::Result {
        if let Some(at) = self.audit {
            tokio::spawn(crate::world::audit(at, self.judge.history.clone()));
        }
        for step in &self.removes {
            let (operator, step) = (self.clone(), step.clone());
            tokio::spawn(async move {
                let now = turmoil::sim_elapsed().unwrap_or_default();
                tokio::time::sleep(step.at.saturating_sub(now)).await;
                operator.remove(&step).await;
            });
        }
        if !self.pushes.is_empty() {
            // One after the other, as one administrator pushes them.
            let operator = self.clone();
            tokio::spawn(async move {
                for (step, text) in &operator.pushes {
                    let now = turmoil::sim_elapsed().unwrap_or_default();
                    tokio::time::sleep(step.at.saturating_sub(now)).await;
                    operator.push(step, text.clone()).await;
                }
            });
        }
        for check in &self.checks {
            let now = turmoil::sim_elapsed().unwrap_or_default();
            tokio::time::sleep(check.judged_at().saturating_sub(now)).await;
            // Each check on its own: one waiting for a crashed server's status must not
            // make the next one late.
            let (operator, check) = (self.clone(), check.clone());
            tokio::spawn(async move { operator.check(&check).await });
        }
        let now = turmoil::sim_elapsed().unwrap_or_default();
        tokio::time::sleep(self.until.saturating_sub(now)).await;
        Ok(())
    }

    /// Removes the seats a `remove` step names, as `hal-net remove` does: through the
    /// active server, asking again every half second while none answers (a failover),
    /// for the step's `within` or [`REMOVE_PATIENCE`]; then judges its expectation.
    async fn remove(&self, step: &Step) {
        let Action::Remove {
            user,
            host,
            feature,
        } = &step.action
        else {
            return;
        };
        let target = RemoveTarget::Holder {
            user: user.as_str().into(),
            host: host.as_deref().map(Into::into),
            feature: feature.as_deref().map(Into::into),
        };
        let servers: Vec<(String, ServerId)> = servers().map(|s| (address(s), s)).to_vec();
        // One request, asked again under the same number: a server that applied it
        // answers again what it did.
        let id = ClientId(0x6164_6d69_6e00_0000 | u64::try_from(step.line).unwrap_or(0));
        let removal = patiently(step, || async {
            let asked = (target.clone(), OPERATOR.into());
            let limit = self.status_timeout;
            hal_net::admin::remove(&SimTransport::new(), &servers, asked, id, limit).await
        })
        .await;
        let expect = &step.expect;
        if expect.removed.is_none() && expect.within.is_none() {
            return;
        }
        let took = now_ms().saturating_sub(ms(step.at));
        let who = match (host, feature) {
            (None, None) => user.clone(),
            (Some(h), None) => format!("{user} on {h}"),
            (None, Some(f)) => format!("{user} of {f}"),
            (Some(h), Some(f)) => format!("{user} on {h} of {f}"),
        };
        let mut expected = match expect.removed {
            Some(1) => format!("the operator removes 1 seat of {who}"),
            Some(n) => format!("the operator removes {n} seats of {who}"),
            None => format!("the operator removes the seats of {who}"),
        };
        if let Some(within) = expect.within {
            expected.push_str(&format!(" within {}", humantime::format_duration(within)));
        }
        let (freed, saw) = match &removal {
            Ok(hal_net::admin::Removal::Removed { handles, by }) => {
                let list: Vec<String> = handles.iter().map(ToString::to_string).collect();
                (
                    Some(handles.len()),
                    format!(
                        "#{} removed [{}] after {}",
                        by.get(),
                        list.join(", "),
                        secs(took)
                    ),
                )
            }
            Ok(hal_net::admin::Removal::NothingHeld { by }) => (
                Some(0),
                format!(
                    "#{} found no such seat held, after {}",
                    by.get(),
                    secs(took)
                ),
            ),
            Err(error) => (None, format!("{error}, after {}", secs(took))),
        };
        let right = match (expect.removed, freed) {
            (Some(n), Some(freed)) => usize::try_from(n).is_ok_and(|n| n == freed),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let in_time = expect.within.is_none_or(|w| took <= ms(w));
        self.judge
            .record(now_ms(), step.line, right && in_time, expected, saw);
    }

    /// Pushes `text`, as `hal-net license push` does: through the active server, asking
    /// again every half second while none answers, for the step's `within` or
    /// [`REMOVE_PATIENCE`]; then judges its expectation.
    async fn push(&self, step: &Step, text: Arc<str>) {
        let (what, options) = match &step.action {
            Action::SetCount { feature, count } => {
                (format!("license with COUNT {count} of {feature}"), false)
            }
            Action::PushOptions { .. } => ("options file".to_string(), true),
            _ => return,
        };
        let servers: Vec<(String, ServerId)> = servers().map(|s| (address(s), s)).to_vec();
        let id = ClientId(0x7075_7368_0000_0000 | u64::try_from(step.line).unwrap_or(0));
        let pushed = patiently(step, || async {
            let file = (text.clone(), OPERATOR.into());
            let transport = SimTransport::new();
            let limit = self.status_timeout;
            if options {
                hal_net::admin::push_options(&transport, &servers, file, id, limit).await
            } else {
                hal_net::admin::push_license(&transport, &servers, file, id, limit).await
            }
        })
        .await;
        let expect = &step.expect;
        if expect.pushed.is_none() && expect.within.is_none() {
            return;
        }
        let took = now_ms().saturating_sub(ms(step.at));
        let wanted = expect.pushed.unwrap_or(true);
        let mut expected = if wanted {
            format!("the operator's {what} takes effect")
        } else {
            format!("the operator's {what} is refused")
        };
        if let Some(within) = expect.within {
            expected.push_str(&format!(" within {}", humantime::format_duration(within)));
        }
        let (took_effect, saw) = match &pushed {
            Ok(hal_net::admin::Push::Pushed { index, changed, by }) => (
                true,
                format!(
                    "#{} put it in force from index {index}{} after {}",
                    by.get(),
                    if *changed { "" } else { " (no change)" },
                    secs(took)
                ),
            ),
            Ok(hal_net::admin::Push::Refused { reason, by }) => (
                false,
                format!("#{} refused it ({reason}) after {}", by.get(), secs(took)),
            ),
            Err(error) => (false, format!("{error}, after {}", secs(took))),
        };
        let in_time = expect.within.is_none_or(|w| took <= ms(w));
        self.judge.record(
            now_ms(),
            step.line,
            took_effect == wanted && in_time,
            expected,
            saw,
        );
    }

    async fn check(&self, check: &Check) {
        if check.window.is_some() {
            let history = self.judge.history.lines();
            for judged in super::window::judge(check, &history, &self.groups) {
                self.judge.record(
                    now_ms(),
                    check.line,
                    judged.met,
                    judged.expected,
                    judged.saw,
                );
            }
            return;
        }
        let at = secs(ms(check.at));
        // What the clients hold is read at the check's time; the servers' status comes
        // back a little later (a crashed server's query times out), and every judgement
        // is recorded then, so that the history stays in time order.
        let holdings = self
            .holdings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let asked = check.active.is_some() || !check.in_use.is_empty();
        let ask = |id| async move {
            if asked {
                let limit = self.status_timeout;
                Some(hal_net::admin::status(&SimTransport::new(), &address(id), id, limit).await)
            } else {
                None
            }
        };
        let (one, two, three) = tokio::join!(
            ask(ServerId::PRIMARY),
            ask(ServerId::SECONDARY),
            ask(ServerId::TIEBREAKER)
        );
        let t = now_ms();
        for (client, want) in &check.holds {
            let mut got: Vec<String> = holdings
                .get(client)
                .into_iter()
                .flatten()
                .map(|(f, _, _)| f.clone())
                .collect();
            got.sort();
            self.judge.record(
                t,
                check.line,
                &got == want,
                format!("at {at}, {client} holds [{}]", want.join(", ")),
                format!("{client} holds [{}]", got.join(", ")),
            );
        }
        for (client, want) in &check.holders {
            let members = self
                .groups
                .iter()
                .find(|g| &g.name == client)
                .map_or_else(|| vec![client.clone()], ClientGroup::members);
            let holding: Vec<&String> = members
                .iter()
                .filter(|m| holdings.get(*m).is_some_and(|seats| !seats.is_empty()))
                .collect();
            let names: Vec<&str> = holding.iter().map(|m| m.as_str()).collect();
            self.judge.record(
                t,
                check.line,
                u32::try_from(holding.len()).unwrap_or(u32::MAX) == *want,
                format!("at {at}, {want} of {client} hold a seat"),
                format!("{} hold a seat ({})", holding.len(), names.join(", ")),
            );
        }
        let reports = [one, two, three];
        let answered: Vec<&StatusReport> = reports
            .iter()
            .filter_map(|r| r.as_ref().and_then(|r| r.as_ref().ok()))
            .collect();
        if let Some(want) = check.active {
            let active: Vec<String> = answered
                .iter()
                .filter(|r| r.role == Role::Active)
                .map(|r| format!("#{}", r.server.get()))
                .collect();
            let want_text = want.map_or("none".to_string(), |s| format!("#{}", s.get()));
            let got = if active.is_empty() {
                "none".to_string()
            } else {
                active.join(" and ")
            };
            self.judge.record(
                t,
                check.line,
                got == want_text,
                format!("at {at}, active server: {want_text}"),
                format!("active server: {got}"),
            );
        }
        if !check.in_use.is_empty() {
            let source = hal_net::admin::seat_table_source(answered.iter().copied());
            for (feature, want) in &check.in_use {
                let (met, saw) = match source {
                    None => {
                        let why: Vec<String> = reports
                            .iter()
                            .zip(servers())
                            .filter_map(|(r, id)| match r {
                                Some(Err(e)) => Some(format!("#{}: {e}", id.get())),
                                _ => None,
                            })
                            .collect();
                        (false, format!("no server answered ({})", why.join("; ")))
                    }
                    Some(report) => {
                        let used = report
                            .features
                            .iter()
                            .find(|f| &f.name == feature)
                            .map_or(0, |f| f.used);
                        (
                            used == *want,
                            format!("{used} in use (seat table of #{})", report.server.get()),
                        )
                    }
                };
                self.judge.record(
                    t,
                    check.line,
                    met,
                    format!("at {at}, {want} seats of {feature} in use"),
                    saw,
                );
            }
        }
    }
}

/// The impostor steps of the timeline, in time order.
fn impostor_steps(scenario: &Scenario) -> Vec<Step> {
    scenario
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Impostor { .. }))
        .cloned()
        .collect()
}

/// The impostor's machine: at each impostor step it dials every target at once, claiming
/// the step's slot with the target's own identity (what a server tells its peers is no
/// secret); each answer is recorded and judged as it comes.
#[derive(Debug, Clone)]
struct Impostor {
    steps: Vec<Step>,
    /// Each server's identity, as it expects a peer to state it.
    identities: [Identity; 3],
    history: History,
    judge: Judge,
    until: Duration,
}

impl Impostor {
    async fn run(self) -> turmoil::Result {
        let mut attempts = Vec::new();
        for step in &self.steps {
            let Action::Impostor { claimed, targets } = &step.action else {
                continue;
            };
            let claimed = *claimed;
            let now = turmoil::sim_elapsed().unwrap_or_default();
            tokio::time::sleep(step.at.saturating_sub(now)).await;
            for &target in targets {
                let (impostor, step) = (self.clone(), step.clone());
                attempts.push(tokio::spawn(async move {
                    impostor.attempt(&step, claimed, target).await;
                }));
            }
        }
        for attempt in attempts {
            attempt.await?;
        }
        Ok(())
    }

    /// Claims `claimed` to `target`; records and judges the answer. Welcomed, it sends
    /// the forgeries and keeps the link open to the end of the run, as an attacker would.
    async fn attempt(&self, step: &Step, claimed: ServerId, target: ServerId) {
        let identity = self.identities[target.index()].clone();
        let reception = impostor::knock(claimed, target, identity).await;
        let result = reception.result();
        let mut link = match reception {
            Reception::Refused(reason) => {
                self.history
                    .impostor(claimed, target, result, Some(&reason), None);
                // The server's words are in the `impostor` record.
                self.judge_step(step, claimed, target, result, result.to_string());
                return;
            }
            Reception::Unanswered(why) => {
                self.history
                    .impostor(claimed, target, result, Some(&why), None);
                self.judge_step(step, claimed, target, result, format!("{result}: {why}"));
                return;
            }
            Reception::Welcomed(link) => link,
        };
        let (reason, term, saw) = match impostor::forge(&mut link, claimed, target).await {
            Ok(()) => {
                let term = impostor::FORGED_TERM.0;
                let saw = format!(
                    "welcomed as #{}; sent a forged snapshot (no seats) and append at term {term}",
                    claimed.get()
                );
                (None, Some(term), saw)
            }
            Err(why) => {
                let reason = format!("the forgeries did not go out: {why}");
                let saw = format!("welcomed as #{} ({reason})", claimed.get());
                (Some(reason), None, saw)
            }
        };
        self.history
            .impostor(claimed, target, result, reason.as_deref(), term);
        self.judge_step(step, claimed, target, result, saw);
        let now = turmoil::sim_elapsed().unwrap_or_default();
        tokio::time::sleep(self.until.saturating_sub(now)).await;
        drop(link);
    }

    /// Judges the step's expectation (refused, or welcomed) on the `result` `target`
    /// gave; `saw` says what happened.
    fn judge_step(
        &self,
        step: &Step,
        claimed: ServerId,
        target: ServerId,
        result: &str,
        saw: String,
    ) {
        let Some(refused) = step.expect.refused else {
            return;
        };
        let want = if refused { "refused" } else { "welcomed" };
        let expected = format!(
            "an impostor claiming #{} is {want} by #{}",
            claimed.get(),
            target.get()
        );
        self.judge
            .record(now_ms(), step.line, result == want, expected, saw);
    }
}
