//! An application that takes a seat of a feature while it works, and gives it back.
//!
//! ```sh
//! export HAL_LICENSE_PATH='6200@127.0.0.1;6201@127.0.0.1;6202@127.0.0.1'
//! export HAL_TRIAD_CA=/tmp/hal-demo/tls/ca.pem
//! cargo run -p hal-net --example checkout -- HAL 30
//! ```
//!
//! Arguments: the feature (default `HAL`) and how many seconds to work (default 10).
//! While it works, kill server #1: the seat is kept, and the change is printed.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use hal_net::client::{Client, Error, Event, Options};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let feature = args.next().unwrap_or_else(|| "HAL".to_string());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    match run(&feature, Duration::from_secs(seconds)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Denied(reason)) => {
            eprintln!("no seat of {feature}: {reason}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(feature: &str, work: Duration) -> Result<(), Error> {
    let client = Client::new(Options::from_env()?)?;
    let mut events = client.events();
    let seat = client.checkout(feature)?;
    println!("working with seat {} of {feature}", seat.handle());
    let start = Instant::now();
    while start.elapsed() < work {
        // The application's work goes here; the seat is heartbeated in the background.
        match events.wait(Duration::from_millis(500))? {
            Some(Event::FailedOver { from, to }) => {
                println!("the active server is now {to} (was {from})")
            }
            Some(Event::Lost { handle, .. }) if handle == seat.handle() => {
                eprintln!("seat {handle} lost: stopping");
                return Ok(());
            }
            _ => {}
        }
    }
    seat.checkin()?;
    println!("checked in");
    Ok(())
}
