//! `hal-load`: closed-loop load against a running triad (or single server). Each of
//! `--clients` clients checks a seat out and straight back in, again and again, for
//! `--duration`; at the end it prints the cycles per second and the checkout latency
//! percentiles.
//!
//! ```sh
//! hal-net dev-cluster --dir /tmp/hal-demo &
//! cargo run --release -p hal-benches --bin hal-load -- \
//!     --license-path '6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1' --feature HAL --clients 4
//! ```
//!
//! Each client holds at most one seat, so `--clients` must not exceed the feature's COUNT
//! (or some checkouts are denied with `all_in_use`, which the tool counts and reports).

use std::time::{Duration, Instant};

use clap::Parser;
use hal_core::client::{ClientConfig, ClientEvent};
use hal_core::protocol::{ClientId, RequestSeq};
use hal_core::timing::Timing;
use hal_net::addr::LicensePath;
use hal_net::clock::SystemClock;
use hal_net::session::Session;
use hal_net::transport::TcpTransport;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long = "license-path")]
    license_path: String,
    #[arg(long, default_value = "HAL")]
    feature: String,
    #[arg(long, default_value_t = 4)]
    clients: u64,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

/// What one client measured.
#[derive(Debug, Default)]
struct Tally {
    cycles: u64,
    denied: u64,
    checkout_latency: Vec<Duration>,
}

type TcpSession = Session<TcpTransport, SystemClock>;

async fn answer(session: &mut TcpSession, seq: RequestSeq) -> Result<(), String> {
    loop {
        match session.next_event().await {
            ClientEvent::Granted { seq: s, .. } | ClientEvent::Released { seq: s, .. }
                if s == seq =>
            {
                return Ok(());
            }
            ClientEvent::Denied { seq: s, reason } if s == seq => return Err(reason.to_string()),
            _ => {}
        }
    }
}

async fn client(path: Vec<String>, id: u64, feature: String, until: Instant) -> Tally {
    let config = ClientConfig::new(Timing::lan());
    let mut session = Session::new(
        TcpTransport,
        SystemClock::new(),
        path,
        ClientId(id),
        "load",
        "load",
        config,
    );
    let mut tally = Tally::default();
    while Instant::now() < until {
        let started = Instant::now();
        let seq = session.checkout(&feature);
        if answer(&mut session, seq).await.is_err() {
            tally.denied += 1;
            continue;
        }
        tally.checkout_latency.push(started.elapsed());
        let Some(&handle) = session.client().seats().keys().next() else {
            continue;
        };
        let seq = session.checkin(handle);
        if answer(&mut session, seq).await.is_ok() {
            tally.cycles += 1;
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let path: Vec<String> = LicensePath::parse(&args.license_path)?
        .addrs()
        .iter()
        .map(|a| a.connect_string())
        .collect();
    let start = Instant::now();
    let until = start + args.duration;
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| {
            let seed = u64::from(std::process::id()) << 20;
            tokio::spawn(client(
                path.clone(),
                seed + i + 1,
                args.feature.clone(),
                until,
            ))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await?;
        total.cycles += tally.cycles;
        total.denied += tally.denied;
        total.checkout_latency.extend(tally.checkout_latency);
    }
    let elapsed = start.elapsed().as_secs_f64();
    total.checkout_latency.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "clients={} cycles={} denied={} cycles_per_s={:.0} checkout_p50_ms={:.2} checkout_p99_ms={:.2}",
        args.clients,
        total.cycles,
        total.denied,
        total.cycles as f64 / elapsed,
        ms(percentile(&total.checkout_latency, 0.5)),
        ms(percentile(&total.checkout_latency, 0.99)),
    );
    Ok(())
}
