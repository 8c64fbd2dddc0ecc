//! The failover measurement shared by `hal-load failover` and the etcd side of
//! `compare-etcd.sh`. Each trial: wait until the cluster is whole and its preferred
//! member serves, run a background load, wait a random time (so the fault lands at a
//! random point of the load: mid-sync, mid-replication), then kill -9 or cut off the
//! serving member, and time from that instant to the first checkout granted to a probe
//! client that asks again every few milliseconds. The member is then restarted or healed
//! for the next trial. Random delays come from a fixed seed (ChaCha), so a run is
//! repeatable in what it asks.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::load::Seats;

/// The fault of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL to the serving member's process.
    Kill,
    /// The serving member cut off from its peers and clients.
    Partition,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Partition => "partition",
        }
    }
}

/// A three-member cluster the measurement can break and repair.
pub trait Cluster {
    type Client: Seats;
    /// A new client (number `n`, for unique identities), connected and ready.
    fn client(&mut self, n: u64) -> impl Future<Output = Result<Self::Client>>;
    /// Waits until all members are up and in touch and the member that serves when
    /// all are well serves; returns which member serves (0..3).
    fn ready(&mut self) -> impl Future<Output = Result<usize>>;
    /// Applies the fault to `member`.
    fn inject(&mut self, fault: Fault, member: usize) -> Result<()>;
    /// Undoes the fault on `member` (restarts it, or heals the partition).
    fn repair(&mut self, fault: Fault, member: usize) -> impl Future<Output = Result<()>>;
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct FailoverOptions {
    pub fault: Fault,
    pub trials: usize,
    /// Clients doing checkout + checkin around the fault.
    pub background_clients: usize,
    /// Seed of the random delays.
    pub seed: u64,
    /// A trial that has not failed over by then fails the run.
    pub give_up_after: Duration,
}

/// The failover times of every trial.
#[derive(Debug)]
pub struct FailoverReport {
    pub fault: Fault,
    /// Milliseconds, in trial order.
    pub times_ms: Vec<f64>,
}

impl FailoverReport {
    /// Nearest-rank quantile of the trial times (with 20 trials, p99 is the slowest).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.times_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    pub fn line(&self, system: &str) -> String {
        format!(
            "failover: system={system} fault={} trials={} p50_ms={:.0} p99_ms={:.0} max_ms={:.0}",
            self.fault.name(),
            self.times_ms.len(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0),
        )
    }
}

/// Runs the trials, printing each as it ends.
pub async fn measure<C: Cluster>(
    cluster: &mut C,
    options: FailoverOptions,
    system: &str,
) -> Result<FailoverReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut probe = cluster.client(0).await?;
    let mut background = Vec::new();
    for n in 0..options.background_clients {
        background.push(cluster.client(n as u64 + 1).await?);
    }
    let mut times_ms = Vec::new();
    for trial in 0..options.trials {
        let member = cluster.ready().await?;
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = background
            .drain(..)
            .map(|seats| tokio::spawn(churn(seats, Arc::clone(&stop))))
            .collect();
        let delay = Duration::from_millis(rng.random_range(200..1200));
        tokio::time::sleep(delay).await;
        let fault_at = Instant::now();
        cluster.inject(options.fault, member)?;
        let granted_at = loop {
            match tokio::time::timeout(Duration::from_secs(1), probe.checkout()).await {
                Ok(Ok(held)) => {
                    let at = Instant::now();
                    let _ = probe.checkin(held).await;
                    break at;
                }
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(_) => {}
            }
            if fault_at.elapsed() > options.give_up_after {
                bail!(
                    "{system}: trial {trial}: no checkout granted {:?} after the {} of member {}",
                    options.give_up_after,
                    options.fault.name(),
                    member + 1
                );
            }
        };
        let ms = (granted_at - fault_at).as_secs_f64() * 1000.0;
        println!(
            "  trial {trial}: {} of member {} after {delay:?} of load: first checkout granted after {ms:.0} ms",
            options.fault.name(),
            member + 1
        );
        times_ms.push(ms);
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            background.push(task.await?);
        }
        cluster.repair(options.fault, member).await?;
    }
    Ok(FailoverReport {
        fault: options.fault,
        times_ms,
    })
}

/// Checkout + checkin until told to stop; errors (the fault) are waited out.
async fn churn<S: Seats>(mut seats: S, stop: Arc<AtomicBool>) -> S {
    while !stop.load(Ordering::SeqCst) {
        let attempt = tokio::time::timeout(Duration::from_millis(500), async {
            match seats.checkout().await {
                Ok(held) => seats.checkin(held).await,
                Err(e) => Err(e),
            }
        })
        .await;
        if !matches!(attempt, Ok(Ok(()))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    seats
}
