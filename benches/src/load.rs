//! The load runner shared by `hal-load` and the etcd side of `compare-etcd.sh`: N
//! clients doing checkout + checkin against any system that implements [`Seats`], in a
//! closed loop (each client starts its next cycle when the last one ends) or an open loop
//! at a fixed rate (cycle k is due at `start + k / rate` whatever happened before, and its
//! latency counts from that due time, so a stalled server shows as latency instead of
//! silently lowering the offered load: no coordinated omission).
//!
//! Latencies go into HDR histograms (microseconds, three significant digits).

use std::future::Future;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// One client of a seat-counting system.
pub trait Seats: Send + 'static {
    /// What a granted checkout gives back, to check in.
    type Held: Send;
    /// Takes one seat; `Err` says why not.
    fn checkout(&mut self) -> impl Future<Output = Result<Self::Held, String>> + Send;
    /// Gives the seat back.
    fn checkin(&mut self, held: Self::Held) -> impl Future<Output = Result<(), String>> + Send;
}

/// How the load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Each client starts its next cycle as soon as its last one ends.
    Closed,
    /// Cycles are due at a fixed rate (per second, all clients together).
    Open { rate: f64 },
}

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub mode: Mode,
    /// Run this long first without measuring (connections, caches, the disk settle).
    pub warmup: Duration,
    /// Then measure this long.
    pub duration: Duration,
}

/// What a run measured (the warm-up left out).
#[derive(Debug)]
pub struct Report {
    pub mode: Mode,
    pub clients: usize,
    pub cycles: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Checkout latency, µs: from the cycle's due time in an open loop, from its start in
    /// a closed one.
    pub checkout_us: Histogram<u64>,
    /// Whole cycle (checkout + checkin), µs, measured the same way.
    pub cycle_us: Histogram<u64>,
    /// Open loop: how late a client took up a cycle after its due time, µs (all clients
    /// busy, or the load generator itself slow: part of the checkout latency).
    pub lateness_us: Histogram<u64>,
}

impl Report {
    pub fn cycles_per_s(&self) -> f64 {
        self.cycles as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Checkout latency at quantile `q` (0..=1), in ms.
    pub fn checkout_ms(&self, q: f64) -> f64 {
        self.checkout_us.value_at_quantile(q) as f64 / 1000.0
    }

    /// One line of `key=value` figures (what scripts parse), led by `system`.
    pub fn line(&self, system: &str) -> String {
        let mode = match self.mode {
            Mode::Closed => "closed".to_string(),
            Mode::Open { rate } => format!("open rate={rate:.0}"),
        };
        format!(
            "load: system={system} mode={mode} clients={} cycles={} errors={} cycles_per_s={:.0} \
             checkout_p50_ms={:.3} checkout_p99_ms={:.3} checkout_p999_ms={:.3} checkout_max_ms={:.3} \
             cycle_p99_ms={:.3} start_late_p50_ms={:.3} start_late_p99_ms={:.3}",
            self.clients,
            self.cycles,
            self.errors,
            self.cycles_per_s(),
            self.checkout_ms(0.5),
            self.checkout_ms(0.99),
            self.checkout_ms(0.999),
            self.checkout_us.max() as f64 / 1000.0,
            self.cycle_us.value_at_quantile(0.99) as f64 / 1000.0,
            self.lateness_us.value_at_quantile(0.5) as f64 / 1000.0,
            self.lateness_us.value_at_quantile(0.99) as f64 / 1000.0,
        )
    }
}

/// A histogram of microseconds, as every figure of `hal-load` is kept.
pub(crate) fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, three significant digits; values above are saturated.
    match Histogram::new_with_bounds(1, 600_000_000, 3) {
        Ok(h) => h,
        Err(e) => unreachable!("fixed histogram bounds are valid: {e}"),
    }
}

/// `d` in whole microseconds, at least 1 (the histograms' lowest value).
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// What one client measured.
struct Tally {
    cycles: u64,
    errors: u64,
    first_error: Option<String>,
    checkout_us: Histogram<u64>,
    cycle_us: Histogram<u64>,
    lateness_us: Histogram<u64>,
}

/// Runs the load with one task per client and merges what they measured.
pub async fn run<S: Seats>(clients: Vec<S>, options: LoadOptions) -> Report {
    let count = clients.len();
    let start = Instant::now();
    let measure_from = start + options.warmup;
    let end = measure_from + options.duration;
    let tickets = match options.mode {
        Mode::Closed => None,
        Mode::Open { rate } => Some(pacer(start.into_std(), end.into_std(), rate)),
    };
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|seats| tokio::spawn(client_loop(seats, tickets.clone(), measure_from, end)))
        .collect();
    drop(tickets);
    let mut report = Report {
        mode: options.mode,
        clients: count,
        cycles: 0,
        errors: 0,
        first_error: None,
        elapsed: options.duration,
        checkout_us: histogram(),
        cycle_us: histogram(),
        lateness_us: histogram(),
    };
    for task in tasks {
        match task.await {
            Ok(tally) => {
                report.cycles += tally.cycles;
                report.errors += tally.errors;
                report.first_error = report.first_error.take().or(tally.first_error);
                // Same bounds on both sides, so adding cannot fail.
                let _ = report.checkout_us.add(&tally.checkout_us);
                let _ = report.cycle_us.add(&tally.cycle_us);
                let _ = report.lateness_us.add(&tally.lateness_us);
            }
            Err(e) => {
                report.errors += 1;
                report
                    .first_error
                    .get_or_insert(format!("a client task failed: {e}"));
            }
        }
    }
    report
}

/// The open loop's clock: a thread of its own (the OS sleeps to tens of microseconds,
/// where the async timer rounds up to whole milliseconds) puts cycle k on the queue at
/// `start + k / rate`, with that due time. Free clients take cycles off the queue; when
/// none is free the queue grows, and the wait counts in the latency.
fn pacer(
    start: std::time::Instant,
    end: std::time::Instant,
    rate: f64,
) -> async_channel::Receiver<Instant> {
    let (tx, rx) = async_channel::unbounded();
    std::thread::spawn(move || {
        for k in 0u64.. {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            if due >= end {
                return;
            }
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send_blocking(Instant::from_std(due)).is_err() {
                return;
            }
        }
    });
    rx
}

async fn client_loop<S: Seats>(
    mut seats: S,
    tickets: Option<async_channel::Receiver<Instant>>,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally {
        cycles: 0,
        errors: 0,
        first_error: None,
        checkout_us: histogram(),
        cycle_us: histogram(),
        lateness_us: histogram(),
    };
    loop {
        let due = match &tickets {
            None => Instant::now(),
            Some(tickets) => match tickets.recv().await {
                Ok(due) => due,
                Err(_) => return tally, // the pacer is done and the queue empty
            },
        };
        if due >= end {
            return tally;
        }
        let measured = due >= measure_from;
        if measured && tickets.is_some() {
            let _ = tally.lateness_us.record(micros(due.elapsed()));
        }
        let held = match seats.checkout().await {
            Ok(held) => held,
            Err(e) => {
                if measured {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(e);
                }
                // Do not spin on a server that refuses at once.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let checked_out = Instant::now();
        let checkin = seats.checkin(held).await;
        if !measured {
            continue;
        }
        let _ = tally.checkout_us.record(micros(checked_out - due));
        match checkin {
            Ok(()) => {
                tally.cycles += 1;
                let _ = tally.cycle_us.record(micros(due.elapsed()));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
}
