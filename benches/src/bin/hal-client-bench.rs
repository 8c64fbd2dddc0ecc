//! What a checkout + checkin costs through the C API (`libhal_client`, from the C program
//! `examples/c/bench.c`) against the Rust API (`hal_net::client::Client`, in this
//! process), on one triad of real servers over TLS on 127.0.0.1.
//!
//! The two run alternately, `--rounds` times each, so that the machine's other load
//! falls on both alike; each prints its time per cycle, and the verdict is the median of
//! the per-round ratios C / Rust. Build first:
//!
//! ```sh
//! cargo build --release -p hal-net -p hal-client-c -p hal-benches
//! target/release/hal-client-bench --rounds 9 --cycles 300
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use hal_benches::triad::{FEATURE, Triad, TriadOptions, sibling_hal_net};
use hal_core::timing::Timing;
use hal_net::client::{Client, Options};

#[derive(Debug, Parser)]
#[command(about = "checkout + checkin through the C API against the Rust API")]
struct Args {
    /// Rounds of each, alternating.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rounds: u32,
    /// Checkout + checkin cycles timed in each round (after 20 to warm up).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    cycles: u32,
    /// The first of three ports for the servers.
    #[arg(long, default_value_t = 26_400)]
    base_port: u16,
    /// The `hal-net` executable (default: beside this one).
    #[arg(long)]
    hal_net: Option<PathBuf>,
    /// The C compiler.
    #[arg(long, default_value = "cc")]
    cc: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let hal_net = match &args.hal_net {
        Some(path) => path.clone(),
        None => sibling_hal_net()?,
    };
    let dir = std::env::temp_dir().join(format!("hal-client-bench-{}", std::process::id()));
    let bench = compile(&args.cc, &hal_net, &dir.join("c"))?;
    let runtime = tokio::runtime::Runtime::new()?;
    let triad = runtime.block_on(Triad::start(TriadOptions {
        hal_net,
        dir: dir.join("triad"),
        base_port: args.base_port,
        count: 10,
        proxied: false,
        client_connections_max: None,
        timing: Timing::lan(),
        tls: true,
        journal: true,
    }))?;
    let ca = triad.ca().context("the triad runs TLS")?;
    let path = triad.license_path();
    let client = Client::new(Options::new(&path)?.ca(&ca))?;
    rust_cycles(&client, 20)?;

    let mut ratios = Vec::new();
    let (mut rust_ns, mut c_ns) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let rust = rust_cycles(&client, args.cycles)?;
        let c = c_cycles(&bench, &path, &ca, args.cycles)?;
        println!(
            "round {round}: rust {rust:.0} ns, c {c:.0} ns per checkout + checkin, c/rust {:.3}",
            c / rust
        );
        rust_ns.push(rust);
        c_ns.push(c);
        ratios.push(c / rust);
    }
    println!(
        "median over {} rounds of {} cycles: rust {:.0} ns, c {:.0} ns per checkout + checkin; median c/rust {:.3}",
        args.rounds,
        args.cycles,
        median(&mut rust_ns),
        median(&mut c_ns),
        median(&mut ratios)
    );
    drop(triad);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Times `cycles` checkouts + checkins through the Rust API; ns per cycle.
fn rust_cycles(client: &Client, cycles: u32) -> Result<f64> {
    let start = Instant::now();
    for _ in 0..cycles {
        client.checkout(FEATURE)?.checkin()?;
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(cycles))
}

/// Runs the C program for `cycles`; ns per cycle as it measured them.
fn c_cycles(bench: &Path, path: &str, ca: &Path, cycles: u32) -> Result<f64> {
    let out = Command::new(bench)
        .arg(cycles.to_string())
        .arg(FEATURE)
        .env("HAL_LICENSE_PATH", path)
        .env("HAL_TRIAD_CA", ca)
        .output()
        .with_context(|| format!("cannot run {}", bench.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            bench.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text.trim()
        .strip_prefix("ns_per_cycle ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{} printed {text:?}", bench.display()))
}

/// Compiles `examples/c/bench.c` against the `libhal_client.so` beside `hal_net`.
fn compile(cc: &str, hal_net: &Path, out_dir: &Path) -> Result<PathBuf> {
    let lib_dir = hal_net.parent().context("hal-net has no directory")?;
    if !lib_dir.join("libhal_client.so").exists() {
        bail!(
            "{} has no libhal_client.so: build it (cargo build --release -p hal-client-c)",
            lib_dir.display()
        );
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the benches crate has no parent directory")?;
    std::fs::create_dir_all(out_dir)?;
    let program = out_dir.join("bench");
    let out = Command::new(cc)
        .args(["-std=c99", "-O2", "-Wall", "-Werror", "-I"])
        .arg(workspace.join("hal-client-c/include"))
        .arg(workspace.join("examples/c/bench.c"))
        .arg("-L")
        .arg(lib_dir)
        .arg("-lhal_client")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&program)
        .output()
        .with_context(|| format!("cannot run {cc}"))?;
    if !out.status.success() {
        bail!("{cc} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(program)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
