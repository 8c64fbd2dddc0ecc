//! Shrinking a violating seed to a scenario file (`hal-sim sweep --shrink`).
//!
//! A sweep's seed is a scenario ([`crate::world::scenario_of`]): its faults are steps
//! (each fault with its end is one step), its clients a group at work, its crashes aimed
//! as in the sweep. The sweep ran that very scenario, so running it again violates the
//! same invariant. Then proptest's shrinking takes steps and clients away — each is a
//! boolean that shrinks from "kept" to "dropped", kept again if the violation goes away —
//! down to a schedule where no single step or client can be dropped. The result is
//! written as a scenario file that `hal-sim run` replays to the same violation.

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::error::HarnessError;
use crate::scenario::{self, Action, ClientAct, Scenario};
use crate::world::{Planted, WorldConfig, scenario_of};

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

/// Why a seed could not be shrunk to a scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShrinkError {
    /// The seed's world could not be made a scenario (a bug of ours).
    #[error(transparent)]
    World(#[from] HarnessError),
    /// The seed's scenario, run again, violates nothing: the seed does not violate an
    /// invariant, or one run of a seed differs from the next (a bug of hal-sim).
    #[error(
        "seed {0}'s scenario, run again, violates no invariant: no file written (if the sweep saw it violate one, runs of one seed differ: report it with the seed)"
    )]
    NotReproduced(u64),
    /// proptest could not start its search.
    #[error("proptest: {0}")]
    Search(String),
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
    scenario.name = format!("Shrunk from sweep seed {seed}");
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
