//! What `hal-load` and `etcd-load` share on their command lines, so that both systems are
//! measured with the same options and the same steps: the load's shape (with the
//! half-peak open loop), the failover trials, stopping on a signal, and stopping the
//! servers a tool started.

use std::future::Future;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use hal_core::timing::Timing;
use hal_net::config::{TIMING_FIELDS, timing_field};

use crate::failover::{FailoverOptions, Fault};
use crate::load::{self, LoadOptions, Mode, Report, Seats};

/// The load's shape: `load`'s options other than where the servers are.
#[derive(Debug, Clone, Args)]
pub struct LoadShape {
    /// Concurrent clients, each with at most one seat.
    #[arg(long, default_value_t = 64)]
    pub clients: u64,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to run first without measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Open loop at this many cycles per second (default: closed loop).
    #[arg(long, conflicts_with = "half_peak")]
    pub rate: Option<f64>,
    /// A closed loop to find the peak, then an open loop at half of it.
    #[arg(long)]
    pub half_peak: bool,
}

impl LoadShape {
    /// Runs the load with the clients `clients(round)` makes (round 1, and round 2 for
    /// the open loop of `--half-peak`: new clients, as a new run would have), printing
    /// each report's line for `system`; `extra` is appended to the first line.
    pub async fn run<S, F, Fut>(
        &self,
        system: &str,
        mut clients: F,
        extra: impl FnOnce(&Report) -> String,
    ) -> Result<()>
    where
        S: Seats,
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<S>>>,
    {
        let options = LoadOptions {
            mode: self.rate.map_or(Mode::Closed, |rate| Mode::Open { rate }),
            warmup: self.warmup,
            duration: self.duration,
        };
        let report = load::run(clients(1).await?, options).await;
        println!("{}{}", report.line(system), extra(&report));
        if self.half_peak {
            let rate = (report.cycles_per_s() / 2.0).max(1.0);
            let options = LoadOptions {
                mode: Mode::Open { rate },
                ..options
            };
            let open = load::run(clients(2).await?, options).await;
            println!("{}", open.line(system));
        }
        Ok(())
    }
}

/// The protocol's timers for the servers a tool starts and for its clients: the LAN
/// profile, with overrides (`--timing election_timeout=500ms`) as an operator's
/// `[timing]` section would make them.
#[derive(Debug, Clone, Default, Args)]
pub struct TimingArgs {
    /// Override one timer of the LAN profile, NAME=DURATION (repeatable): peer_heartbeat,
    /// election_timeout, failover_delay, failback_hold, client_lease, client_heartbeat,
    /// max_clock_skew.
    #[arg(long = "timing", value_name = "NAME=DURATION", value_parser = parse_timer)]
    pub overrides: Vec<(String, Duration)>,
}

impl TimingArgs {
    /// The LAN profile with the overrides, checked as a server's config would be.
    pub fn timing(&self) -> Result<Timing> {
        self.timing_from(Timing::lan())
    }

    /// `base` with the overrides, checked as a server's config would be.
    pub fn timing_from(&self, base: Timing) -> Result<Timing> {
        let mut timing = base;
        for (name, value) in &self.overrides {
            if let Some(field) = timing_field(&mut timing, name) {
                *field = *value;
            }
        }
        timing
            .validate()
            .map_err(|e| anyhow::anyhow!("--timing: {e}"))?;
        Ok(timing)
    }
}

/// One `--timing NAME=DURATION`.
fn parse_timer(text: &str) -> Result<(String, Duration), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not NAME=DURATION"))?;
    if !TIMING_FIELDS.contains(&name) {
        let known = TIMING_FIELDS.join(", ");
        return Err(format!("unknown timer '{name}' (known: {known})"));
    }
    let duration =
        humantime::parse_duration(value).map_err(|e| format!("{name}: '{value}': {e}"))?;
    Ok((name.to_owned(), duration))
}

/// The failover trials: `failover`'s options other than the fault and the cluster.
#[derive(Debug, Clone, Args)]
pub struct TrialArgs {
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Clients doing checkout + checkin around each fault.
    #[arg(long, default_value_t = 8)]
    pub background_clients: usize,
    /// Seed of the random fault times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl TrialArgs {
    pub fn options(&self, fault: Fault) -> FailoverOptions {
        FailoverOptions {
            fault,
            trials: self.trials,
            background_clients: self.background_clients,
            seed: self.seed,
            give_up_after: Duration::from_secs(30),
        }
    }
}

/// Runs `command`; SIGINT or SIGTERM drops it, which stops the servers it started.
pub async fn until_signal(command: impl Future<Output = Result<()>>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    tokio::select! {
        result = command => result,
        _ = interrupt.recv() => bail!("interrupted; the servers started were stopped"),
        _ = terminate.recv() => bail!("terminated; the servers started were stopped"),
    }
}

/// SIGTERM to every child, then waits for each (SIGKILL after 5 s in all).
pub fn stop_children(children: &mut [Option<Child>]) {
    for child in children.iter().flatten() {
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for slot in children {
        if let Some(mut child) = slot.take() {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
