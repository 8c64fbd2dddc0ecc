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
