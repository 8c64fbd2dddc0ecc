//! `etcd-load`: etcd measured as `hal-load` measures HAL, for `benches/compare-etcd.sh`
//! (issue 7). It drives the counting-semaphore recipe that teams use on etcd instead of
//! a license server, through the same load runner ([`hal_benches::load`]) and failover
//! measurement ([`hal_benches::failover`]), and prints the same `load: ...` and
//! `failover: ...` lines with `system=etcd`.
//!
//! ```sh
//! cargo build --release --manifest-path benches/etcd-load/Cargo.toml
//! benches/etcd-load/target/release/etcd-load load --clients 64 --half-peak
//! benches/etcd-load/target/release/etcd-load failover --trials 20
//! ```
//!
//! By default it starts its own three members on 127.0.0.1 (ports from `--base-port`,
//! 17400) and stops them when it ends; `load --endpoints a,b,c` drives a running cluster.
//!
//! # The recipe, and why this one
//!
//! The usual etcd semaphore is "in one transaction: if fewer than COUNT holder keys
//! exist, put mine with my lease", the lease kept alive as the heartbeat and the key
//! deleted at checkin. Here the COUNT seats are COUNT slot keys and a checkout is
//! `if create_revision(slot k) == 0 then put(slot k, me, lease)`, client `n` trying
//! slot `n % COUNT` first (see [`seats`]). It enforces the same limit: a slot key exists
//! only while held, so never more than COUNT holders. It is the form most favourable to
//! etcd: with COUNT = clients + 64 (as HAL's license in `hal-load`) every client finds
//! its own slot free, so a checkout is one round trip that never conflicts or retries,
//! and no transaction reads the other holders. Any difference from HAL is then etcd's
//! own cost (a Raft write synced to disk per checkout and per checkin), not the recipe's.
//!
//! Each client has its own `etcd_client::Client` connected to all three members (as
//! HAL's clients know all three servers); requests are spread over the members and
//! followers forward writes to the leader, as etcd's own clients do. Every request has a
//! limit (`--request-timeout`), so a checkout sent to a dead member, or to one that has
//! lost its leader, fails and is asked again instead of hanging.

mod cluster;
mod seats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hal_benches::cli::{self, TrialArgs};
use hal_benches::failover::{self, Fault};

use crate::cluster::{EtcdBench, EtcdCluster, EtcdOptions};
use crate::seats::{EtcdSeats, SemaphoreConfig};

/// Seats beyond the clients, as in `hal-load`.
const SPARE_SEATS: u64 = 64;

/// Default request limits (see `--request-timeout`).
const LOAD_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const FAILOVER_REQUEST_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Debug, Parser)]
#[command(about = "Load and failover measurements of a three-member etcd cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checkout + checkin cycles: throughput and latency percentiles.
    Load(LoadArgs),
    /// Time from a kill -9 of the leader to the first checkout granted.
    Failover(FailoverArgs),
}

#[derive(Debug, Args)]
struct EtcdArgs {
    /// The etcd executable.
    #[arg(long, value_name = "PATH", default_value = "etcd")]
    etcd: PathBuf,
    /// Where the started cluster keeps its files (cleared first).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The first of the six ports the cluster uses (three client, three peer).
    #[arg(long, default_value_t = 17400)]
    base_port: u16,
}

impl EtcdArgs {
    async fn start(&self) -> Result<EtcdCluster> {
        let dir = self.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("etcd-load-{}", std::process::id()))
        });
        let cluster = EtcdCluster::start(EtcdOptions {
            etcd: self.etcd.clone(),
            dir: dir.clone(),
            base_port: self.base_port,
        })
        .await?;
        let version = cluster
            .status(0)
            .await
            .map(|s| s.version().to_string())
            .unwrap_or_else(|_| "?".to_string());
        eprintln!(
            "etcd-load: etcd {version} cluster started in {} (endpoints {})",
            dir.display(),
            cluster.endpoints().join(",")
        );
        Ok(cluster)
    }
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// Limit of one etcd request: a member that died or lost its leader fails it then
    /// [default: 2s for `load`, where a timeout would only turn a slow cycle into an error
    /// left out of the latencies; 200ms for `failover`, where a checkout forwarded to the
    /// dead leader is lost and the probe should ask again soon: etcd at its best]
    #[arg(long, value_parser = humantime::parse_duration)]
    request_timeout: Option<Duration>,
    /// Each client's lease (the heartbeat renews it every third of this).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
}

impl ClientArgs {
    fn semaphore(
        &self,
        endpoints: Vec<String>,
        count: u64,
        run: &str,
        request_timeout: Duration,
    ) -> SemaphoreConfig {
        SemaphoreConfig {
            endpoints,
            count,
            lease_ttl: self.lease_ttl,
            request_timeout: self.request_timeout.unwrap_or(request_timeout),
            run: format!("{}-{run}", std::process::id()),
        }
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    shape: cli::LoadShape,
    /// Seats of the semaphore [default: clients + 64, as hal-load's license; fewer than
    /// the clients shows the recipe denying]
    #[arg(long)]
    count: Option<u64>,
    /// Drive the running members at these client URLs (comma-separated) instead of
    /// starting a cluster.
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    endpoints: Option<Vec<String>>,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    etcd: EtcdArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FaultArg {
    Kill,
}

#[derive(Debug, Args)]
struct FailoverArgs {
    #[arg(long, value_enum, default_value = "kill")]
    fault: FaultArg,
    #[command(flatten)]
    trials: TrialArgs,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    etcd: EtcdArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("etcd-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::until_signal(run(cli.command))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("etcd-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Load(args) => load_cmd(args).await,
        Command::Failover(args) => failover_cmd(args).await,
    }
}

async fn connect_all(semaphore: &SemaphoreConfig, clients: u64) -> Result<Vec<EtcdSeats>> {
    let mut all = Vec::new();
    for n in 0..clients {
        all.push(EtcdSeats::connect(semaphore, n).await?);
    }
    Ok(all)
}

async fn load_cmd(args: LoadArgs) -> Result<()> {
    // Started here (if asked) and kept until the end: dropping it stops the members.
    let mut cluster = None;
    let endpoints = match &args.endpoints {
        Some(endpoints) => endpoints.clone(),
        None => {
            let started = args.etcd.start().await?;
            let endpoints = started.endpoints();
            cluster = Some(started);
            endpoints
        }
    };
    let count = args.count.unwrap_or(args.shape.clients + SPARE_SEATS);
    // New clients per round (new leases, new names), as hal-load uses new client ids.
    let clients = |round: u64| {
        let semaphore = args.client.semaphore(
            endpoints.clone(),
            count,
            &round.to_string(),
            LOAD_REQUEST_TIMEOUT,
        );
        async move { connect_all(&semaphore, args.shape.clients).await }
    };
    args.shape.run("etcd", clients, |_| String::new()).await?;
    drop(cluster);
    Ok(())
}

async fn failover_cmd(args: FailoverArgs) -> Result<()> {
    let fault = match args.fault {
        FaultArg::Kill => Fault::Kill,
    };
    let cluster = args.etcd.start().await?;
    let count = u64::try_from(args.trials.background_clients)? + SPARE_SEATS;
    let semaphore =
        args.client
            .semaphore(cluster.endpoints(), count, "f", FAILOVER_REQUEST_TIMEOUT);
    let mut bench = EtcdBench { cluster, semaphore };
    let options = args.trials.options(fault);
    let report = failover::measure(&mut bench, options, "etcd").await?;
    println!("{}", report.line("etcd"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
