//! Scenario files (DESIGN §7): one field incident per TOML file — the license, the
//! timing, the servers' clocks and HostIDs, the clients, a timeline of faults and client
//! actions with what each should lead to, and checks at points in time. The format is
//! documented key by key in `scenarios/README.md`.
//!
//! [`load`] reads a file into a [`Scenario`] (every error names the file, line and key,
//! and suggests the nearest key or verb for a typo); [`run`] plays it in the simulated
//! world against the real server code, with the six invariants checked throughout, and
//! says which expectations were met; [`write`] prints a scenario back as a file (a
//! shrunk failing schedule is saved this way).

mod load;
mod report;
mod run;
mod verbs;
mod window;
mod write;

use std::collections::BTreeMap;
use std::time::Duration;

use hal_core::license::License;
use hal_core::timing::Timing;
use hal_core::{HostId, ServerId};
use hal_net::config::TimingProfile;

pub use load::{ScenarioError, ScenarioErrors, load, parse};
pub use report::{refused_json, run_json};
pub use run::{Outcome, Verdict, run};
pub use write::write;
pub(crate) use write::{block, duration, quoted, signed, write_check, write_step};

/// Every scenario file (`*.toml`) under `dir`, in path order (subfolders included).
pub fn files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The seed a scenario runs with when neither the file nor the command line gives one.
pub const DEFAULT_SEED: u64 = 1;

/// One incident, as read from its file.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as named in messages.
    pub source_name: String,
    pub name: String,
    pub story: String,
    /// The seed the file pins, if any.
    pub seed: Option<u64>,
    pub license: License,
    /// The license as text (for writing the scenario back).
    pub license_text: String,
    pub profile: TimingProfile,
    pub timing: Timing,
    /// The timers the file overrides (for writing it back).
    pub timing_overrides: Vec<(String, Duration)>,
    /// Every message between two machines takes from `latency` to `latency + jitter`.
    pub latency: Duration,
    pub jitter: Duration,
    pub servers: [ServerSpec; 3],
    pub clients: Vec<ClientGroup>,
    /// In time order (file order among steps at the same time).
    pub steps: Vec<Step>,
    /// In time order.
    pub checks: Vec<Check>,
    /// How long the run lasts.
    pub duration: Duration,
    /// Whether the file gave `duration` (else it is worked out from the timeline).
    pub duration_given: bool,
    pub liveness: LivenessFrom,
    /// When the harness reads the active server's seat table for invariant 7 (no orphan
    /// seat), if at all.
    pub audit: Option<Duration>,
    /// Whether crashes are aimed at the disks' syncs, as a seed sweep aims them
    /// ([`crate::aim`]): a file shrunk from a sweep's seed replays the same crashes.
    pub aim_crashes: bool,
    /// What the loader found odd but runnable, each naming its place in the file (a
    /// `client_lease` shorter than a client's give-up time).
    pub warnings: Vec<String>,
}

/// How one server is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The HostID of its machine; `None`: the one the license names for its slot.
    pub hostid: Option<HostId>,
    /// Its wall clock's offset from true time at the start, and its drift.
    pub clock_offset_ms: i64,
    pub clock_drift_ppm: i64,
    /// Its triad list as configured, as the servers it names (machine `serverN` is
    /// server N); the right list is `[1, 2, 3]`.
    pub triad: [ServerId; 3],
    /// How long a sync of its disk takes (writes not yet synced are lost in a crash).
    pub sync_time: Duration,
    /// The most log entries it keeps before it takes a snapshot (`None`: the server's
    /// own default); small, it snapshots often and sends snapshots to servers behind.
    pub log_entries_max: Option<usize>,
}

impl Default for ServerSpec {
    fn default() -> ServerSpec {
        ServerSpec {
            hostid: None,
            clock_offset_ms: 0,
            clock_drift_ppm: 0,
            triad: [ServerId::PRIMARY, ServerId::SECONDARY, ServerId::TIEBREAKER],
            sync_time: Duration::from_millis(2),
            log_entries_max: None,
        }
    }
}

/// Clients on one machine: one named client, or `count` of them named `name1`,
/// `name2`, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGroup {
    pub name: String,
    pub count: Option<u32>,
    /// The license path, in order.
    pub path: Vec<ServerId>,
    pub line: usize,
}

impl ClientGroup {
    /// The clients of the group, by name.
    pub fn members(&self) -> Vec<String> {
        match self.count {
            None => vec![self.name.clone()],
            Some(count) => (1..=count).map(|n| format!("{}{n}", self.name)).collect(),
        }
    }
}

/// A step of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: Duration,
    /// Where it is in the file.
    pub line: usize,
    pub action: Action,
    pub expect: Expect,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A fault between servers (or its end), ended by `heal` after `lasting` if given.
    Server {
        fault: crate::faults::Fault,
        lasting: Option<Duration>,
    },
    /// The link between two servers goes down and up for `lasting`: each phase down for
    /// `down` and up for `up`, or for 100–800 ms drawn from the seed.
    Flap {
        a: ServerId,
        b: ServerId,
        lasting: Duration,
        down: Option<Duration>,
        up: Option<Duration>,
    },
    /// Something a client (or each client of a group) does.
    Client { who: String, act: ClientAct },
    /// An impostor, a machine of its own, dials each of `targets` as a peer would and
    /// claims slot `claimed` without that server's identity; welcomed, it sends a forged
    /// snapshot and append ([`crate::impostor`]).
    Impostor {
        claimed: ServerId,
        targets: Vec<ServerId>,
    },
    /// The operator's machine removes every seat of `user` (on `host`, of `feature`), as
    /// `hal-net remove --user` does, asking the servers in turn until the active one
    /// answers.
    Remove {
        user: String,
        host: Option<String>,
        feature: Option<String>,
    },
    /// The operator's machine pushes the scenario's license with `feature`'s COUNT set to
    /// `count` (and the COUNTs of the pushes before it), as `hal-net license push` does,
    /// asking the servers in turn until the active one answers.
    SetCount { feature: String, count: u32 },
    /// The operator's machine pushes this options file, as `hal-net options push` does.
    PushOptions { text: String },
}

/// What a client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAct {
    Checkout(String),
    /// A checkout that waits up to this long in the feature's queue when every seat is
    /// in use (`checkout --wait`).
    Wait(String, Duration),
    Borrow(String, u32),
    /// Checks in its oldest seat of the feature.
    Checkin(String),
    /// Returns its oldest borrowed seat of the feature early.
    Return(String),
    /// Checks out, holds (for `hold`, or 1–10 s drawn from the seed), checks in, again and
    /// again until `until`.
    Busy {
        feature: String,
        until: Duration,
        hold: Option<Duration>,
    },
    /// Works as a seed sweep's clients do, until `until`: checks out (one request in ten
    /// a borrow for an hour), holds the seat 0.1–5 s (a borrow, and one seat in eight,
    /// 8–20 s), gives it back, and after a denial tries again 0.5–3 s later; until
    /// `chaos`, its process may also die holding a seat (3 % of grants; a new process
    /// starts 0.1–2 s later) or freeze (5 %, for up to two leases). All drawn from the
    /// seed.
    Work {
        feature: String,
        until: Duration,
        chaos: Option<Duration>,
    },
    /// The client process is paused (no heartbeats) for this long.
    Freeze(Duration),
    /// The client's machine is cut off from the servers `from` for this long; `held`:
    /// its links to them hold everything instead, delivered late when it ends (what heavy
    /// loss does to TCP).
    Disconnect {
        lasting: Duration,
        from: Vec<ServerId>,
        held: bool,
    },
    /// The client process dies without checking in; the client's next step starts a new
    /// process.
    Kill,
}

/// Which answer a request should get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Granted, decided by this server (or any).
    Granted(Option<ServerId>),
    /// Denied, for this reason (or any).
    Denied(Option<String>),
    /// No server answered in time, and the request may have taken effect: the client
    /// said "outcome unknown" (and settles it later).
    Unknown,
}

/// What a step should lead to; nothing expected by default (the invariants still run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    pub answer: Option<Answer>,
    /// The answer (or the loss, with `lost`) comes within this long of the step's time.
    pub within: Option<Duration>,
    /// The client reports a seat lost (true) or does not (false) after the step.
    pub lost: Option<bool>,
    /// An impostor is refused (true, the default of an impostor step) or welcomed (false).
    pub refused: Option<bool>,
    /// The request is answered after at most this many sends (1: the first server asked
    /// answered; each redirect, retry and resend adds one).
    pub attempts_max: Option<u32>,
    /// A checkout or borrow is made only if the client holds no seat of its feature (of
    /// its kind); otherwise the step does nothing, and says so.
    pub unless_held: bool,
    /// A checkin or return is made only if the client holds such a seat; otherwise the
    /// step does nothing, and says so (instead of an unmet expectation).
    pub if_held: bool,
    /// An administrator's removal frees this many seats.
    pub removed: Option<u32>,
    /// An administrator's license push takes effect (true) or is refused (false).
    pub pushed: Option<bool>,
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        self.answer.is_none()
            && self.within.is_none()
            && self.lost.is_none()
            && self.refused.is_none()
            && self.attempts_max.is_none()
            && !self.unless_held
            && !self.if_held
            && self.removed.is_none()
            && self.pushed.is_none()
    }
}

/// What should be true at a point in time (`at`), or throughout a window (`window`,
/// from its `from` to `at`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// The instant checked, or a window's end.
    pub at: Duration,
    pub line: usize,
    /// The active server (`Some(None)`: none), as the servers report it.
    pub active: Option<Option<ServerId>>,
    /// Seats in use per feature, in the seat table an operator's `hal-net status` shows.
    pub in_use: BTreeMap<String, u32>,
    /// The seats each client holds, as features (one entry per seat), as the clients'
    /// applications know it.
    pub holds: BTreeMap<String, Vec<String>>,
    /// How many clients of each group (or a client: 0 or 1) hold a seat, as their
    /// applications know it.
    pub holders: BTreeMap<String, u32>,
    /// What holds throughout a window that ends at `at`.
    pub window: Option<Window>,
}

impl Check {
    /// When the check can be judged: at its instant, or once the window's requests have
    /// had their time to be answered.
    pub fn judged_at(&self) -> Duration {
        let answer = self
            .window
            .as_ref()
            .and_then(|w| w.answered_within)
            .unwrap_or_default();
        self.at + answer
    }
}

/// Assertions over a window of time, judged from the run's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Duration,
    /// At most this many servers report themselves active at once.
    pub active_max: Option<u32>,
    /// The active server changes at most this many times (a server becomes active that
    /// was not the last one active).
    pub active_changes_max: Option<u32>,
    /// The client or group whose requests (checkouts, borrows, checkins, returns) sent in
    /// the window `denied_only` and `answered_within` judge.
    pub client: Option<String>,
    /// Each of those requests that is denied is denied for one of these reasons
    /// (`unknown`: an outcome unknown is allowed too).
    pub denied_only: Option<Vec<String>>,
    /// Each of those requests is answered within this long of its first send.
    pub answered_within: Option<Duration>,
}

/// When the liveness invariant starts to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessFrom {
    /// Once the last fault of the timeline has healed, if everything is healed by the end.
    Auto,
    At(Duration),
    Never,
}
