//! The invariants of DESIGN §6.3, one checker per file, fed every history record as it
//! is written (so a violation stops the run where it happens) or a finished history.
//!
//! Each checker sees the records in order, typed ([`hal_core::record::Record`]), and says,
//! at the first record that breaks its rule, what broke and which earlier records show it.
//! A line that is not a record of the history format (an unknown `kind` or value, a
//! required field missing) is not judged: reading a history stops there with an
//! [`UnreadableLine`] rather than passing over it. (Unknown fields are ignored, as the
//! format wants: a misspelt optional field still reads as absent.)

mod failback;
mod lease_loss;
pub(crate) mod leases;
mod links;
mod liveness;
mod lost_seat;
mod majority;
mod one_seat;
mod options;
mod orphans;
mod overuse;
pub(crate) mod queue;
mod replicas;
mod roles;

use std::fmt;

use hal_core::record::{Entry, Record};

/// The invariant a server breaks when it cannot start from its disk after a crash: the
/// harness sees it (the server's storage refuses its data directory), not a record.
pub const RESTARTS: &str = "11 restarts after a crash";

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant (DESIGN §6.3 numbering and name).
    pub invariant: &'static str,
    pub t_ms: u64,
    pub what: String,
    /// The records that show it, oldest first (the breaking one last).
    pub evidence: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invariant violated: {} at t={} ms: {}",
            self.invariant, self.t_ms, self.what
        )?;
        for line in &self.evidence {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// A line of a history that is not a record: no JSON object, an unknown `kind`, a field
/// missing or of the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("history line {number}: {source}")]
pub struct UnreadableLine {
    /// The line's number, from 1.
    pub number: usize,
    #[source]
    pub source: serde_json::Error,
}

/// One invariant's checker.
pub trait Invariant: Send {
    /// Takes the next record; `Err` with what broke at the first violation. `line` is the
    /// record's JSON text, for evidence.
    fn observe(&mut self, record: &Record, line: &str) -> Result<(), (String, Vec<String>)>;

    /// The invariant's name.
    fn name(&self) -> &'static str;
}

/// Every checker, fed together.
pub struct Checkers {
    invariants: Vec<Box<dyn Invariant>>,
    violation: Option<Violation>,
}

impl fmt::Debug for Checkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkers")
            .field("violation", &self.violation)
            .finish_non_exhaustive()
    }
}

impl Default for Checkers {
    fn default() -> Checkers {
        Checkers::new()
    }
}

impl Checkers {
    /// All the checkers, none having seen anything.
    pub fn new() -> Checkers {
        Checkers {
            invariants: vec![
                Box::new(overuse::NoOveruse::default()),
                Box::new(roles::RoleRule::default()),
                Box::new(majority::MajorityRule::default()),
                Box::new(lost_seat::NoLostSeat::default()),
                Box::new(one_seat::OneRequestOneSeat::default()),
                Box::new(liveness::Liveness::default()),
                Box::new(orphans::NoOrphanSeat::default()),
                Box::new(failback::FailbackHold::default()),
                Box::new(lease_loss::LeaseLoss::default()),
                Box::new(replicas::ReplicasAgree::default()),
                Box::new(options::OptionsRespected::default()),
                Box::new(queue::QueueOrder::default()),
            ],
            violation: None,
        }
    }

    /// Feeds one record as a JSON line (a history's or a journal's); keeps the first
    /// violation. `Err` if the line is not a record (it is then not judged).
    pub fn observe(&mut self, line: &str) -> Result<(), serde_json::Error> {
        let entry: Entry = serde_json::from_str(line)?;
        self.observe_record(&entry.record, line);
        Ok(())
    }

    /// Feeds one record (`line` is its JSON text, for evidence).
    pub fn observe_record(&mut self, record: &Record, line: &str) {
        if self.violation.is_some() {
            return;
        }
        for invariant in &mut self.invariants {
            if let Err((what, evidence)) = invariant.observe(record, line) {
                self.violation = Some(Violation {
                    invariant: invariant.name(),
                    // A history's meta record has no time: it is the start of the run.
                    t_ms: record.t_ms().unwrap_or(0),
                    what,
                    evidence,
                });
                return;
            }
        }
    }

    /// Keeps `violation` unless there was one already: a violation the harness saw
    /// itself, not in a record (a server that cannot start from its disk).
    pub fn violated(&mut self, violation: Violation) {
        self.violation.get_or_insert(violation);
    }

    /// The first violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Checks a whole history: its first violation, if any. Every line is read, even
    /// after a violation: a history with a line that is not a record is not judged.
    pub fn check(lines: &[String]) -> Result<Option<Violation>, UnreadableLine> {
        let mut checkers = Checkers::new();
        for (index, line) in lines.iter().enumerate() {
            checkers.observe(line).map_err(|source| UnreadableLine {
                number: index + 1,
                source,
            })?;
        }
        Ok(checkers.violation)
    }
}
