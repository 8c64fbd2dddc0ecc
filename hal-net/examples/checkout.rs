//! An application that takes a seat of a feature while it works, and gives it back: the
//! Rust twin of `examples/c/checkout.c` and `examples/python/checkout.py`.
//!
//! ```sh
//! export HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1'
//! export HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem
//! cargo run -p hal-net --example checkout -- HAL 30
//! ```
//!
//! Arguments: the feature (default `HAL`) and how many seconds to work (default 10).
//! While it works, kill server #1: the seat is kept, and the change is printed.
//! Exit codes: 0 done; 1 failed otherwise; 2 denied; 3 no server reached or no answer;
//! 4 the seat was lost while working.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hal_net::client::{Client, Error, Event, Options};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let feature = args.next().unwrap_or_else(|| "HAL".to_string());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    match run(&feature, Duration::from_secs(seconds)) {
        Ok(code) => code,
        Err(error) => {
            // `Error::name()` is the same name as C's hal_status_name() and Python's reason.
            eprintln!("error: {} ({error})", error.name());
            match error {
                Error::Denied(_) => ExitCode::from(2),
                Error::Unreachable(_) | Error::NoAnswer { .. } => ExitCode::from(3),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn run(feature: &str, work: Duration) -> Result<ExitCode, Error> {
    let client = Client::new(Options::from_env()?)?;
    let mut events = client.events();
    let seat = client.checkout(feature)?;
    println!(
        "granted: {feature} seat {} by server {}",
        seat.handle(),
        seat.server()
    );
    let start = Instant::now();
    while start.elapsed() < work {
        // The application's work goes here; the seat is heartbeated in the background.
        match events.wait(Duration::from_millis(100))? {
            Some(Event::FailedOver { from, to }) => {
                println!("failed over: server {to} is active (was {from})");
            }
            Some(Event::Lost { handle, .. }) if handle == seat.handle() => {
                eprintln!("lost: seat {handle}: stop using {feature}");
                return Ok(ExitCode::from(4));
            }
            _ => {}
        }
    }
    seat.checkin()?;
    println!("checked in");
    Ok(ExitCode::SUCCESS)
}
