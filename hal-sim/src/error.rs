//! What can stop a run besides a violation: a failure of the harness or of the
//! simulation, not of the code under test. A violation ([`crate::check::Violation`]) is
//! what the simulator is for; a [`HarnessError`] says the run proves nothing and the
//! harness needs fixing (DESIGN §6.2: a fault that did nothing is a harness bug).

/// Why a run could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// turmoil stopped the simulation: a host's software returned an error.
    #[error("the simulation failed: {0}")]
    Simulation(String),
    /// A fault the harness applied did not take effect, as its probes show.
    #[error("harness: {0}")]
    NoEffect(String),
    /// The harness caught itself wrong: a host still running after a crash, a frozen
    /// client that sent, a server that would not stop, a history line it cannot read.
    #[error("harness: {0}")]
    Broken(String),
    /// The run could not be set up from its scenario (a server's HostID).
    #[error("{0}")]
    Setup(String),
}

impl HarnessError {
    /// The kind, as `hal-sim run --json` writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            HarnessError::Simulation(_) => "simulation",
            HarnessError::NoEffect(_) => "no_effect",
            HarnessError::Broken(_) => "harness",
            HarnessError::Setup(_) => "setup",
        }
    }
}
