//! The nemesis's clients: tasks that each check a seat out with hal-net's client library
//! ([`AsyncClient`], as an application on tokio would), hold it briefly, check it in,
//! and start again, for the whole run, counting what they got. A client's library runs
//! its own failover, retries and settling of unanswered requests; this module only
//! counts outcomes and judges nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use hal_net::client::{AsyncClient, Error, Options};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::triad::FEATURE;

/// Longer than the library ever takes to answer (it gives up by itself well before).
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// How long a seat is held, ms (different per client, so cycles do not march in step).
const HOLD_MS_MIN: u64 = 50;
const HOLD_MS_SPREAD: u64 = 200;
/// The pause after a denial or a failure, so a client does not spin on a refusing triad.
const PAUSE_AFTER_REFUSAL: Duration = Duration::from_millis(100);
/// How long the clients' libraries may take to finish their last checkins.
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// What the clients got, all together.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Checkouts granted.
    pub granted: u64,
    /// Checkouts the servers refused, by the denial's name (`all_in_use`, `no_majority`).
    pub denied: BTreeMap<String, u64>,
    /// Checkouts that failed otherwise (no server reached, no answer in time), by the
    /// error's name.
    pub failed: BTreeMap<String, u64>,
    /// Checkins not confirmed (the seat is then freed by its lease).
    pub checkins_unconfirmed: u64,
    /// Seats the library reported lost before their checkin.
    pub lost: u64,
}

impl Tally {
    /// `clients: granted=.. denied=.. failed=.. ...` with the reasons.
    pub fn line(&self) -> String {
        let total = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
        let detail = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "clients: granted={} denied={} ({}) failed={} ({}) checkins_unconfirmed={} lost={}",
            self.granted,
            total(&self.denied),
            detail(&self.denied),
            total(&self.failed),
            detail(&self.failed),
            self.checkins_unconfirmed,
            self.lost
        )
    }
}

/// The running clients.
#[derive(Debug)]
pub struct Workload {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
    granted: Arc<AtomicU64>,
}

impl Workload {
    /// Starts `clients` clients of the servers of `options`, client `n` as host
    /// `nemesis-client-n`.
    pub fn start(options: &Options, clients: usize) -> Result<Workload> {
        let (stop, stopped) = watch::channel(false);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let granted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for n in 0..clients {
            let options = options.clone().host(&format!("nemesis-client-{n}"));
            let client = AsyncClient::new(options)?;
            let hold = Duration::from_millis(HOLD_MS_MIN + (n as u64 * 37) % HOLD_MS_SPREAD);
            let counters = Counters {
                tally: Arc::clone(&tally),
                granted: Arc::clone(&granted),
            };
            tasks.push(tokio::spawn(cycle(client, hold, stopped.clone(), counters)));
        }
        Ok(Workload {
            stop,
            tasks,
            tally,
            granted,
        })
    }

    /// Checkouts granted so far.
    pub fn granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }

    /// Stops the clients (each after its current cycle, its library closed) and returns
    /// what they got.
    pub async fn stop(self) -> Tally {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(REQUEST_LIMIT + CLOSE_LIMIT, task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        match self.tally.lock() {
            Ok(tally) => tally.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Where a client counts.
struct Counters {
    tally: Arc<Mutex<Tally>>,
    granted: Arc<AtomicU64>,
}

impl Counters {
    fn add(&self, f: impl FnOnce(&mut Tally)) {
        match self.tally.lock() {
            Ok(mut tally) => f(&mut tally),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// Checkout, hold, checkin, until told to stop; then closes the client.
async fn cycle(
    client: AsyncClient,
    hold: Duration,
    mut stop: watch::Receiver<bool>,
    counters: Counters,
) {
    while !*stop.borrow() {
        let outcome = tokio::time::timeout(REQUEST_LIMIT, client.checkout(FEATURE)).await;
        let refused = match outcome {
            Ok(Ok(seat)) => {
                counters.granted.fetch_add(1, Ordering::Relaxed);
                counters.add(|t| t.granted += 1);
                tokio::time::sleep(hold).await;
                let lost = seat.is_lost();
                let checkin = tokio::time::timeout(REQUEST_LIMIT, seat.checkin()).await;
                let confirmed = matches!(checkin, Ok(Ok(())));
                counters.add(|t| {
                    t.lost += u64::from(lost);
                    t.checkins_unconfirmed += u64::from(!confirmed);
                });
                false
            }
            Ok(Err(e @ Error::Denied(_))) => {
                counters.add(|t| *t.denied.entry(e.name().to_string()).or_default() += 1);
                true
            }
            Ok(Err(e)) => {
                counters.add(|t| *t.failed.entry(e.name().to_string()).or_default() += 1);
                true
            }
            Err(_) => {
                counters.add(|t| *t.failed.entry("timeout".to_string()).or_default() += 1);
                true
            }
        };
        if refused {
            // Woken early by the stop.
            let _ = tokio::time::timeout(PAUSE_AFTER_REFUSAL, stop.changed()).await;
        }
    }
    let _ = tokio::time::timeout(CLOSE_LIMIT, client.close()).await;
}
