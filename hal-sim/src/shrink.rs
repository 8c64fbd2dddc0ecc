//! Shrinking a violating seed to a scenario file (`hal-sim sweep --shrink`).
//!
//! A sweep's seed draws a world: clients at work and a schedule of faults. The seed's
//! faults become the steps of a scenario (each fault with its end is one step), its
//! clients a group of busy users; the scenario is run, and must violate the same
//! invariant. Then proptest's shrinking takes steps and clients away — each is a boolean
//! that shrinks from "kept" to "dropped", kept again if the violation goes away — down to
//! a schedule where no single step or client can be dropped. The result is written as a
//! scenario file that `hal-sim run` replays to the same violation.

use std::collections::BTreeMap;
use std::time::Duration;

use hal_core::license::parse as parse_license;
use hal_net::config::{TIMING_FIELDS, TimingProfile, timing_field};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::faults::{self, Fault};
use crate::scenario::{
    self, Action, ClientAct, ClientGroup, Expect, LivenessFrom, Scenario, ServerSpec, Step,
};
use crate::world::{FEATURE, Planned, Planted, WorldConfig, client_faults, schedule_of};

/// A minimal failing scenario.
#[derive(Debug)]
pub struct Shrunk {
    pub scenario: Scenario,
    /// The invariant it violates.
    pub invariant: &'static str,
    /// Fault steps and clients before and after shrinking.
    pub steps_before: usize,
    pub clients_before: u32,
    /// Scenario runs the shrinking took.
    pub runs: usize,
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

/// The seed's faults of the client machine's links, one `disconnect` step each (a hold is
/// a `held` one), for the scenario's one group of clients, `who`.
fn client_steps(plan: &[(Duration, Planned)], who: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut open: Vec<(Duration, Vec<hal_core::ServerId>, bool)> = Vec::new();
    for (t, planned) in plan {
        let Planned::Clients(fault) = planned else {
            continue;
        };
        if fault.cut {
            open.push((*t, fault.servers.clone(), fault.hold));
            continue;
        }
        let Some(at) = open
            .iter()
            .position(|(_, servers, hold)| *servers == fault.servers && *hold == fault.hold)
        else {
            continue;
        };
        let (since, from, held) = open.remove(at);
        steps.push(Step {
            at: since,
            line: 0,
            action: Action::Client {
                who: who.to_string(),
                act: ClientAct::Disconnect {
                    lasting: *t - since,
                    from,
                    held,
                },
            },
            expect: Expect::default(),
        });
    }
    steps
}

/// Why a seed could not be shrunk to a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShrinkError {
    /// The license written for the world's feature does not parse (a bug of ours).
    #[error("the generated license does not parse: {0}")]
    License(String),
    /// The seed's faults, played by the scenario runner, violate nothing.
    #[error(
        "seed {0}'s faults, replayed as a scenario with its clients working as the sweep's do, violate no invariant (the seed's own clients did): no file written; replay the seed"
    )]
    NotReproduced(u64),
    /// proptest could not start its search.
    #[error("proptest: {0}")]
    Search(String),
}

/// The world of `config` as a scenario: its license, timing, working clients and the seed's
/// faults (of the servers and of the client machine's links).
pub fn scenario_of(config: &WorldConfig) -> Result<Scenario, ShrinkError> {
    let license_text = format!(
        "FEATURE {FEATURE}\n{{\n  VENDOR = sim\n  COUNT = {}\n  HAL_SERVERS = 3\n  BORROW = 72\n}}\n",
        config.count
    );
    let license = parse_license("generated license", license_text.as_bytes())
        .map_err(|e| ShrinkError::License(e.to_string()))?;
    let end = config.chaos + config.calm;
    let mut timing_overrides = Vec::new();
    let mut timing = config.timing;
    for key in TIMING_FIELDS {
        if let Some(value) = timing_field(&mut timing, key) {
            timing_overrides.push((key.to_string(), *value));
        }
    }
    let mut steps = steps(&schedule_of(config));
    steps.extend(client_steps(&client_faults(config), "c"));
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
        name: format!("Shrunk from sweep seed {}", config.seed),
        story: String::new(),
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
        audit: crate::world::audit_time(config),
    })
}

/// `full` with only the fault steps and clients `keep` marks (faults first, then
/// clients; at least one client stays).
fn candidate(full: &Scenario, faults: &[usize], clients: u32, keep: &[bool]) -> Scenario {
    let mut scenario = full.clone();
    scenario.steps = full
        .steps
        .iter()
        .enumerate()
        .filter(|(i, _)| faults.iter().position(|f| f == i).is_none_or(|k| keep[k]))
        .map(|(_, s)| s.clone())
        .collect();
    let kept = keep[faults.len()..].iter().filter(|&&k| k).count();
    let count = u32::try_from(kept).unwrap_or(clients).max(1);
    scenario.clients[0].count = Some(count);
    scenario
}

/// Shrinks the violation of `config`'s seed (with `planted`, if a bug is planted) to a
/// minimal scenario. Err says why it could not (the scenario does not reproduce it).
pub fn shrink(config: &WorldConfig, planted: Option<Planted>) -> Result<Shrunk, ShrinkError> {
    let full = scenario_of(config)?;
    let seed = config.seed;
    let first = scenario::run(&full, seed, planted);
    let Some(violation) = &first.violation else {
        return Err(ShrinkError::NotReproduced(seed));
    };
    let invariant = violation.invariant;
    let fault_steps: Vec<usize> = full
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            !matches!(
                s.action,
                Action::Client {
                    act: ClientAct::Work { .. },
                    ..
                }
            )
        })
        .map(|(i, _)| i)
        .collect();
    let clients = full.clients[0].count.unwrap_or(1);
    let size = fault_steps.len() + clients as usize;
    // Every element starts "kept" (true) and shrinks to "dropped".
    let strategy = proptest::collection::vec(proptest::bool::weighted(1.0), size..=size);
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[0; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut tree = strategy
        .new_tree(&mut runner)
        .map_err(|e| ShrinkError::Search(e.to_string()))?;
    let mut runs = 1;
    // Candidates that differ only in which clients are dropped are the same scenario
    // (only the count matters): each is run once.
    let mut seen: BTreeMap<(Vec<bool>, u32), bool> = BTreeMap::new();
    let mut fails = |keep: &[bool], runs: &mut usize| {
        let scenario = candidate(&full, &fault_steps, clients, keep);
        let key = (
            keep[..fault_steps.len()].to_vec(),
            scenario.clients[0].count.unwrap_or(1),
        );
        *seen.entry(key).or_insert_with(|| {
            *runs += 1;
            let outcome = scenario::run(&scenario, seed, planted);
            outcome.violation.is_some_and(|v| v.invariant == invariant)
        })
    };
    let mut minimal = tree.current();
    if tree.simplify() {
        loop {
            let keep = tree.current();
            let more = if fails(&keep, &mut runs) {
                minimal = keep;
                tree.simplify()
            } else {
                tree.complicate()
            };
            if !more {
                break;
            }
        }
    }
    let mut scenario = candidate(&full, &fault_steps, clients, &minimal);
    let kept = fault_steps.len() - minimal[..fault_steps.len()].iter().filter(|k| !**k).count();
    scenario.story = format!(
        "Found by `hal-sim sweep` at seed {seed}: {invariant} violated. Shrunk from {} faults and {clients} clients to {kept} faults and {} clients: no single fault or client can be dropped and still violate it.",
        fault_steps.len(),
        scenario.clients[0].count.unwrap_or(1)
    );
    Ok(Shrunk {
        scenario,
        invariant,
        steps_before: fault_steps.len(),
        clients_before: clients,
        runs,
    })
}
