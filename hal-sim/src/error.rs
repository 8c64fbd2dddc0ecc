//! What can stop a run besides a violation: a failure of the harness or of the
//! simulation, not of the code under test. A violation ([`crate::check::Violation`]) is
//! what the simulator is for; a [`HarnessError`] says the run proves nothing and the
//! harness needs fixing (DESIGN §6.2: a fault that did nothing is a harness bug).

use hal_core::ServerId;

/// Why a run could not be judged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// turmoil stopped the simulation: a host's software returned an error.
    #[error("the simulation failed: {0}")]
    Simulation(String),
    /// A fault the harness applied did not take effect, as its probes show.
    #[error("harness: {0}")]
    NoEffect(#[from] crate::effects::NoEffect),
    /// The harness caught itself wrong: a host still running after a crash, a frozen
    /// client that sent, a server that would not stop.
    #[error("harness: {0}")]
    Broken(#[from] Broken),
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

/// How the harness caught itself wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Broken {
    #[error("#{} still runs after a crash at {t_ms} ms", .server.get())]
    RunsAfterCrash { server: ServerId, t_ms: u64 },
    #[error("#{} does not run after a restart at {t_ms} ms", .server.get())]
    DownAfterRestart { server: ServerId, t_ms: u64 },
    /// A server asked to stop (as by SIGTERM) had not exited by [`crate::faults::STOP_MAX`].
    #[error("#{} was asked to stop at {asked_ms} ms and still runs at {t_ms} ms", .server.get())]
    WouldNotStop {
        server: ServerId,
        asked_ms: u64,
        t_ms: u64,
    },
    /// A frozen client (a paused process) put requests on the wire.
    #[error("client {client} sent {sent} requests while frozen")]
    SentWhileFrozen { client: String, sent: u64 },
    /// A simulated server journaled a record that does not read back (the journal code
    /// runs as in production; the harness reads what it writes).
    #[error("server {server} journaled a record that does not read back: {what}")]
    JournalUnreadable { server: u8, what: String },
    /// The discovery world's client never finished looking for its servers.
    #[error("the client did not finish its search")]
    SearchUnfinished,
}
